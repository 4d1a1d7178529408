//! The process-wide state every task shares, behind one `Arc`.

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use arc_swap::ArcSwap;

use crate::metrics::{self, Metrics};
use crate::snapshot::{RemoteEntries, Snapshot};
use crate::{body, refresh, store};

/// Process-wide state: the snapshot in force, the metrics, and the drain flag.
pub(crate) struct Gate {
    pub snapshot: ArcSwap<Snapshot>,
    pub metrics: std::sync::Arc<Metrics>,
    /// Set at SIGTERM/SIGINT: `/readyz` fails from that moment.
    pub draining: AtomicBool,
    /// The last good remote allow-list entries, kept across reloads.
    pub remote: Mutex<RemoteEntries>,
    /// Bumped whenever the snapshot or a merged allow list changes, so open connections
    /// re-check that their client is still admitted.
    pub generation: tokio::sync::watch::Sender<u64>,
    /// Early refreshes on refusals as unknown (SPEC §10).
    pub early_refresh: refresh::EarlyRefresh,
    /// The refresh tasks of the remote allow lists.
    pub remote_tasks: Mutex<refresh::RemoteTasks>,
    /// The durable store (SPEC §9), opened at start when `[store]` is configured.
    pub store: Option<std::sync::Arc<store::Store>>,
    /// Room for buffered request bodies (`request.max_buffered`).
    pub body_budget: body::BodyBudget,
}

impl Gate {
    /// The snapshot or a merged allow list changed: every open connection re-checks that its
    /// client is still admitted (the generation it watches moves), and the gauges that follow
    /// the lists and the server certificate are set anew.
    pub(crate) fn admission_changed(&self) {
        self.generation.send_modify(|g| *g += 1);
        let snap = self.snapshot.load();
        self.metrics.set_server_cert_not_after(snap.cert_not_after);
        if let Some(l) = &snap.pins {
            self.metrics
                .set_allowlist_entries(metrics::ListKind::Thumbprints, l.live.load().len());
        }
        if let Some(l) = &snap.source_ips {
            self.metrics
                .set_allowlist_entries(metrics::ListKind::SourceIps, l.live.load().len());
        }
    }
}
