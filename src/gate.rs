//! The process-wide state every task shares, behind one `Arc`, and its one owner: the snapshot
//! in force and the admission sets change only through [`Gate::install`] and
//! [`Gate::apply_remote`], which keep them consistent and tell open connections to re-check.

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use arc_swap::{ArcSwap, Guard};
use std::sync::Arc;

use crate::admission::{Admission, AdmissionCell, RemoteEntries, RemoteList};
use crate::metrics::{self, Metrics};
use crate::snapshot::Snapshot;
use crate::{body, refresh, store};

/// Process-wide state: the snapshot and admission in force, the metrics, and the drain flag.
pub(crate) struct Gate {
    snapshot: ArcSwap<Snapshot>,
    /// Read by the accept path, every TLS verifier and the open-connection re-check.
    admission: AdmissionCell,
    /// The last good remote allow-list entries, kept across reloads. Its lock also orders
    /// `install` and `apply_remote`, so neither loses the other's change.
    remote: Mutex<RemoteEntries>,
    /// Moves whenever the admission in force changes: open connections re-check their client.
    generation: tokio::sync::watch::Sender<u64>,
    pub metrics: Arc<Metrics>,
    /// Set at SIGTERM/SIGINT: `/readyz` fails from that moment.
    pub draining: AtomicBool,
    /// Early refreshes on refusals as unknown (SPEC §10).
    pub early_refresh: refresh::EarlyRefresh,
    /// The refresh tasks of the remote allow lists.
    pub remote_tasks: Mutex<refresh::RemoteTasks>,
    /// The durable store (SPEC §9), opened at start when `[store]` is configured.
    pub store: Option<Arc<store::Store>>,
    /// Room for buffered request bodies (`request.max_buffered`).
    pub body_budget: body::BodyBudget,
}

impl Gate {
    /// The gate serving `snapshot`, whose TLS verifier reads `admission` (the cell it was
    /// built with).
    pub(crate) fn new(
        snapshot: Snapshot,
        admission: AdmissionCell,
        metrics: Arc<Metrics>,
        store: Option<Arc<store::Store>>,
    ) -> Gate {
        let max_buffered = snapshot.config.request.max_buffered;
        let gate = Gate {
            snapshot: ArcSwap::from_pointee(snapshot),
            admission,
            remote: Mutex::new(RemoteEntries::default()),
            generation: tokio::sync::watch::Sender::new(0),
            metrics,
            draining: AtomicBool::new(false),
            early_refresh: Default::default(),
            remote_tasks: Mutex::new(Default::default()),
            store,
            body_budget: body::BodyBudget::new(max_buffered),
        };
        gate.metrics
            .set_server_cert_not_after(gate.snapshot().cert_not_after);
        gate.admit(gate.snapshot().admission(&RemoteEntries::default()));
        gate
    }

    /// The snapshot in force (a cheap guard: for the length of one decision).
    pub(crate) fn snapshot(&self) -> Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// The snapshot in force, to hold across awaits.
    pub(crate) fn snapshot_full(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The admission sets in force.
    pub(crate) fn admission(&self) -> Guard<Arc<Admission>> {
        self.admission.load()
    }

    /// The cell a new snapshot's TLS verifier must read (a reload builds with it).
    pub(crate) fn admission_cell(&self) -> AdmissionCell {
        self.admission.clone()
    }

    /// What the admission would be with `snapshot` installed (a reload checks it first).
    pub(crate) fn admission_with(&self, snapshot: &Snapshot) -> Admission {
        snapshot.admission(&self.lock_remote())
    }

    /// Moves whenever the admission in force changes.
    pub(crate) fn watch_admission(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// A reload: `snapshot` serves from now on, with the remote entries merged into its lists.
    pub(crate) fn install(&self, snapshot: Snapshot) {
        let remote = self.lock_remote();
        let admission = snapshot.admission(&remote);
        self.snapshot.store(Arc::new(snapshot));
        self.metrics
            .set_server_cert_not_after(self.snapshot().cert_not_after);
        self.admit(admission);
    }

    /// A remote list answered: its entries replace the last ones, merged with the static ones.
    pub(crate) fn apply_remote(&self, list: RemoteList) {
        let mut remote = self.lock_remote();
        match list {
            RemoteList::Thumbprints(t) => remote.thumbprints = t,
            RemoteList::SourceIps(n) => remote.source_ips = n,
        }
        self.admit(self.snapshot().admission(&remote));
    }

    /// Swaps in `admission`, sets its gauges, and tells open connections to re-check.
    fn admit(&self, admission: Admission) {
        if let Some(n) = admission.pin_count() {
            self.metrics
                .set_allowlist_entries(metrics::ListKind::Thumbprints, n);
        }
        if let Some(n) = admission.network_count() {
            self.metrics
                .set_allowlist_entries(metrics::ListKind::SourceIps, n);
        }
        self.admission.store(Arc::new(admission));
        self.generation.send_modify(|g| *g += 1);
    }

    fn lock_remote(&self) -> std::sync::MutexGuard<'_, RemoteEntries> {
        // Entries are replaced whole under the lock: a panic elsewhere cannot leave them torn.
        self.remote.lock().unwrap_or_else(|e| e.into_inner())
    }
}
