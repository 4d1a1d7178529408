//! Keeps the remote allow lists fresh: one refresh task per configured `url`, started at
//! start-up and restarted by a reload only when that source's settings change. A refresh hands
//! the fetched entries to the gate (`Gate::apply_remote`), which merges them with the static
//! ones into the admission in force; nothing here ever empties a list.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use tracing::Instrument;

use crate::admission::RemoteList;
use crate::allowlist::remote::RemoteSource;
use crate::allowlist::remote::{
    cached_at, load_cache, parse_entries, run_refresh, RefreshHooks, RefreshResult,
};
use crate::allowlist::{Network, Thumbprint};
use crate::metrics::ListKind;
use crate::snapshot::RemotePlan;
use crate::Gate;

/// The running refresh tasks: (settings key, stop signal) per list.
#[derive(Default)]
pub(crate) struct RemoteTasks {
    thumbprints: Option<(String, watch::Sender<bool>)>,
    source_ips: Option<(String, watch::Sender<bool>)>,
}

/// SPEC §10: early refreshes of a remote list when a client is refused as unknown to it.
#[derive(Default)]
pub(crate) struct EarlyRefresh {
    lists: [Early; ListKind::ALL.len()],
}

#[derive(Default)]
struct Early {
    /// Wakes the list's refresh task.
    wake: Arc<tokio::sync::Notify>,
    /// When the last early refresh was asked for.
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

/// A handshake was refused as `thumbprint_denied`, or a connection as `ip_denied`: refresh that
/// list now if it has a `url` with `refresh_on_unknown`, at most once per
/// `refresh_on_unknown_interval` however many refusals arrive (a flood of strangers must not
/// become a flood of fetches). The refused connection stays refused; a retry may get through.
pub(crate) fn on_unknown(gate: &Gate, kind: ListKind) {
    let snap = gate.snapshot();
    let remote = match kind {
        ListKind::Thumbprints => snap
            .config
            .thumbprints
            .as_ref()
            .and_then(|l| l.remote.as_ref()),
        ListKind::SourceIps => snap
            .config
            .source_ips
            .as_ref()
            .and_then(|l| l.remote.as_ref()),
    };
    let Some(remote) = remote.filter(|r| r.refresh_on_unknown) else {
        return;
    };
    let early = &gate.early_refresh.lists[kind as usize];
    let now = std::time::Instant::now();
    {
        let mut last = early.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < remote.refresh_on_unknown_interval) {
            return;
        }
        *last = Some(now);
    }
    early.wake.notify_one();
}

/// Starts, restarts or stops the refresh tasks to match the snapshot in force.
pub(crate) fn sync(gate: &Arc<Gate>) {
    let snap = gate.snapshot_full();
    let Ok(mut tasks) = gate.remote_tasks.lock() else {
        return;
    };
    sync_one::<Thumbprint>(
        gate,
        snap.remote_pins.as_ref(),
        ListKind::Thumbprints,
        &mut tasks.thumbprints,
    );
    sync_one::<Network>(
        gate,
        snap.remote_ips.as_ref(),
        ListKind::SourceIps,
        &mut tasks.source_ips,
    );
}

fn sync_one<T: Entry>(
    gate: &Arc<Gate>,
    plan: Option<&RemotePlan>,
    kind: ListKind,
    running: &mut Option<(String, watch::Sender<bool>)>,
) {
    match (plan, running.as_ref()) {
        (None, None) => {}
        (Some(plan), Some((key, _))) if *key == plan.key => {}
        (None, Some(_)) => {
            // The url was removed: its entries no longer belong to the list.
            *running = None;
            T::apply(gate, Vec::new());
        }
        (Some(plan), _) => {
            // The snapshot built this spec's source once already, to check it.
            let source = match RemoteSource::new(plan.spec.clone()) {
                Ok(source) => source,
                Err(e) => {
                    tracing::error!(list = kind.label(), detail = %e, "cannot start the allow list refresh");
                    return;
                }
            };
            // Until the first fetch answers (up to its timeout) the last cached list serves,
            // so a restart during the sender's outage keeps admitting it.
            if let Some(path) = &plan.cache {
                match load_cache(path) {
                    Ok(Some(body)) => {
                        let parsed = parse_entries(&body, T::parse);
                        if !parsed.entries.is_empty() {
                            tracing::info!(list = kind.label(), entries = parsed.entries.len(), cache = %path.display(), "allow list loaded from cache");
                            T::apply(gate, parsed.entries);
                            // SPEC §5: the age of what serves, so the stale-list alert does not
                            // fire during the very outage the cache covers.
                            if let Some(at) = cached_at(path) {
                                gate.metrics.set_allowlist_last_success(kind, at);
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(list = kind.label(), cache = %path.display(), detail = %e, "cannot read the allow list cache")
                    }
                }
            }
            let (stop_tx, stop_rx) = watch::channel(false);
            let hooks = Hooks {
                gate: gate.clone(),
                kind,
            };
            let task = run_refresh(
                source,
                plan.cache.clone(),
                plan.refresh,
                T::parse,
                hooks,
                stop_rx,
                gate.early_refresh.lists[kind as usize].wake.clone(),
            )
            .instrument(tracing::info_span!("allowlist", list = kind.label()));
            tokio::spawn(task);
            // Replacing the old sender drops it, which stops the old task.
            *running = Some((plan.key.clone(), stop_tx));
        }
    }
}

/// An allow-list entry type that a remote source can feed.
trait Entry: Sized + Eq + std::hash::Hash + Clone + Send + 'static {
    fn parse(s: &str) -> Option<Self>;
    /// The list these entries replace the remote part of.
    fn list(entries: Vec<Self>) -> RemoteList;
    /// Stores `entries` as this list's remote part; the admission in force follows.
    fn apply(gate: &Gate, entries: Vec<Self>) {
        gate.apply_remote(Self::list(entries));
    }
}

impl Entry for Thumbprint {
    fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    fn list(entries: Vec<Self>) -> RemoteList {
        RemoteList::Thumbprints(entries)
    }
}

impl Entry for Network {
    fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    fn list(entries: Vec<Self>) -> RemoteList {
        RemoteList::SourceIps(entries)
    }
}

struct Hooks {
    gate: Arc<Gate>,
    kind: ListKind,
}

impl<T: Entry> RefreshHooks<T> for Hooks {
    fn apply(&mut self, entries: Vec<T>) {
        T::apply(&self.gate, entries);
    }

    fn report(&mut self, result: RefreshResult) {
        self.gate.metrics.allowlist_refresh(self.kind, result);
        if result == RefreshResult::Success {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.gate.metrics.set_allowlist_last_success(self.kind, now);
        }
    }
}
