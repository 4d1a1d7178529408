//! hookgate: a mutual-TLS gate for webhooks.
//!
//! One request's path through the program, in module order:
//! 1. [`server`] accepts TCP under a connection permit and checks the source IP (after a
//!    PROXY header, [`proxy_protocol`], when configured) before any TLS byte.
//! 2. [`connection`] runs the TLS handshake ([`tls`]: pins, CA chain, validity, proof of key)
//!    under `handshake_timeout`, then serves HTTP/1.1 or HTTP/2 on one [`snapshot`].
//! 3. [`handler`] applies the request checks of [`policy`] in SPEC order, reads the body under
//!    `max_body`, and hands it to [`identity`] (strip, then set and sign via [`signature`]).
//! 4. [`forward`] sends it to the upstream over a pooled connection; failures become 502/504.
//! 5. One access-log line ([`logging`]) and the [`metrics`], from one outcome value.
//!
//! Around it: [`config`] (the TOML, validated), [`allowlist`] (static, file and remote lists),
//! [`reload`] (SIGHUP and file changes), [`admin`] (`/healthz`, `/readyz`, `/metrics`).
#![forbid(unsafe_code)]

pub(crate) mod admin;
pub(crate) mod allowlist;
pub mod commands;
pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod demo;
pub(crate) mod forward;
pub(crate) mod handler;
pub(crate) mod head_inspector;
pub(crate) mod identity;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod policy;
pub(crate) mod proxy_protocol;
pub(crate) mod read_ahead;
pub(crate) mod refresh;
pub(crate) mod reload;
pub(crate) mod secret;
pub(crate) mod server;
pub(crate) mod signature;
pub(crate) mod snapshot;
pub(crate) mod tls;

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use arc_swap::ArcSwap;

use crate::metrics::Metrics;
use crate::snapshot::{RemoteEntries, Snapshot};

/// Process-wide state: the snapshot in force, the metrics, and the drain flag.
pub(crate) struct Gate {
    pub snapshot: ArcSwap<Snapshot>,
    pub metrics: Metrics,
    /// Set at SIGTERM/SIGINT: `/readyz` fails from that moment.
    pub draining: AtomicBool,
    /// The last good remote allow-list entries, kept across reloads.
    pub remote: Mutex<RemoteEntries>,
    /// The refresh tasks of the remote allow lists.
    pub remote_tasks: Mutex<refresh::RemoteTasks>,
}

/// The crate version, as `hookgate --version` and `hookgate_build_info` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
