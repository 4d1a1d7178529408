//! Who may connect, in force now: the pinned thumbprints and the source networks, each the
//! snapshot's static entries (inline and files) merged with the last good remote entries. One
//! value, swapped whole by the gate when either part changes ([`crate::Gate::install`],
//! [`crate::Gate::apply_remote`]); the accept path (before any TLS byte), the TLS verifier (in
//! the handshake) and the re-check of open connections all read it and decide by it alone.

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::allowlist::{Network, PinSet, SourceNetworks, Thumbprint};

/// The admission in force, shared by the gate and the TLS verifiers it builds.
pub(crate) type AdmissionCell = Arc<ArcSwap<Admission>>;

/// The last good remote entries per list, kept across reloads.
#[derive(Debug, Default, Clone)]
pub(crate) struct RemoteEntries {
    pub thumbprints: Vec<Thumbprint>,
    pub source_ips: Vec<Network>,
}

/// A fresh remote list's entries, for [`crate::Gate::apply_remote`].
pub(crate) enum RemoteList {
    Thumbprints(Vec<Thumbprint>),
    SourceIps(Vec<Network>),
}

/// The sets a client must match. A list that is not configured admits everyone (for pins, the
/// CA chain decides then; for networks, any address).
#[derive(Debug, Default)]
pub(crate) struct Admission {
    pins: Option<PinSet>,
    networks: Option<SourceNetworks>,
}

impl Admission {
    /// A snapshot's static entries (`None`: the list is not configured) merged with `remote`'s
    /// (`Snapshot::admission`).
    pub(crate) fn new(
        pins: Option<&[Thumbprint]>,
        networks: Option<&[Network]>,
        remote: &RemoteEntries,
    ) -> Self {
        Admission {
            pins: pins.map(|s| PinSet::new(s.iter().chain(&remote.thumbprints).copied())),
            networks: networks
                .map(|s| SourceNetworks::new(s.iter().chain(&remote.source_ips).copied())),
        }
    }

    /// A new cell holding this admission.
    pub(crate) fn into_cell(self) -> AdmissionCell {
        Arc::new(ArcSwap::from_pointee(self))
    }

    /// The one pin rule: the leaf's SHA-256, or its SHA-1 (computed only when a SHA-1 pin
    /// exists, see [`Admission::wants_sha1`]), is pinned.
    pub(crate) fn admits_leaf(&self, sha256: &[u8; 32], sha1: Option<&[u8; 20]>) -> bool {
        self.pins
            .as_ref()
            .map_or(true, |p| p.contains(sha256, sha1))
    }

    /// Whether a leaf's SHA-1 can matter (a SHA-1 pin exists).
    pub(crate) fn wants_sha1(&self) -> bool {
        self.pins.as_ref().is_some_and(PinSet::has_sha1)
    }

    pub(crate) fn admits_source(&self, ip: IpAddr) -> bool {
        self.networks.as_ref().map_or(true, |n| n.contains(ip))
    }

    /// Entries in force per list (`None`: not configured), for the gauges and `check`.
    pub(crate) fn pin_count(&self) -> Option<usize> {
        self.pins.as_ref().map(PinSet::len)
    }

    pub(crate) fn network_count(&self) -> Option<usize> {
        self.networks.as_ref().map(SourceNetworks::len)
    }
}
