//! Reload: SIGHUP, or a change to a watched file, re-reads the config and everything it names,
//! builds a whole new `Snapshot` and swaps it in; on any error the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::ListKind;
use crate::snapshot::Snapshot;
use crate::Gate;

/// How often watched files are looked at (SPEC: a change is picked up within 10 s).
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Spawns the SIGHUP handler and the file watcher.
pub(crate) fn spawn(gate: Arc<Gate>, config_path: PathBuf, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot install the SIGHUP handler");
            return;
        };
        let mut seen = fingerprint(&watched_files(&gate.snapshot.load(), &config_path));
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                _ = hup.recv() => "SIGHUP",
                _ = tick.tick() => {
                    let now = fingerprint(&watched_files(&gate.snapshot.load(), &config_path));
                    if now == seen { continue; }
                    "file change"
                }
                _ = shutdown.changed() => return,
            };
            reload(&gate, &config_path, trigger);
            // The new config may name other files.
            seen = fingerprint(&watched_files(&gate.snapshot.load(), &config_path));
        }
    });
}

/// Loads, builds and swaps; the old snapshot keeps serving if anything fails.
pub(crate) fn reload(gate: &Arc<Gate>, config_path: &Path, trigger: &str) -> bool {
    let remote = gate.remote.lock().map(|r| r.clone()).unwrap_or_default();
    let built = Config::load(config_path).and_then(|c| Snapshot::build(c, &remote));
    match built {
        Ok(new) => {
            let old = gate.snapshot.load();
            if new.config.listen.address != old.config.listen.address
                || new.config.admin != old.config.admin
            {
                tracing::warn!("listen.address or admin.address changed: the new address takes effect after a restart");
            }
            if new.config.log_format != old.config.log_format
                || new.config.log_level != old.config.log_level
            {
                tracing::warn!(
                    "[log] changed: the new format and level take effect after a restart"
                );
            }
            for w in &new.warnings {
                tracing::warn!(detail = %w, "config warning");
            }
            gate.snapshot.store(Arc::new(new));
            // A remote refresh may have landed while this snapshot was built.
            if let Ok(remote) = gate.remote.lock() {
                let snap = gate.snapshot.load();
                if let Some(l) = &snap.pins {
                    l.merge_remote(&remote.thumbprints);
                }
                if let Some(l) = &snap.source_ips {
                    l.merge_remote(&remote.source_ips);
                }
            }
            crate::refresh::sync(gate);
            gate.body_budget
                .resize(gate.snapshot.load().config.request.max_buffered);
            publish_gauges(gate);
            gate.metrics.config_reload(true);
            tracing::info!(trigger, "config reloaded");
            true
        }
        Err(e) => {
            gate.metrics.config_reload(false);
            tracing::error!(trigger, error = %e, "config reload failed; the previous config keeps serving");
            false
        }
    }
}

/// Gauges that follow the snapshot in force.
pub(crate) fn publish_gauges(gate: &Gate) {
    gate.generation.send_modify(|g| *g += 1);
    let snap = gate.snapshot.load();
    gate.metrics.set_server_cert_not_after(snap.cert_not_after);
    if let Some(l) = &snap.pins {
        gate.metrics
            .set_allowlist_entries(ListKind::Thumbprints, l.live.load().len());
    }
    if let Some(l) = &snap.source_ips {
        gate.metrics
            .set_allowlist_entries(ListKind::SourceIps, l.live.load().len());
    }
}

/// The config file and every file it names that SPEC §6 says is watched, by the config in force
/// and by the one on disk: after a failed reload the latter may name a file that does not exist
/// yet (a Kubernetes ConfigMap updated before its Secret), whose arrival must be picked up.
fn watched_files(snap: &Snapshot, config_path: &Path) -> Vec<PathBuf> {
    let mut files = named_files(&snap.config, config_path);
    if let Ok(on_disk) = Config::load(config_path) {
        files.extend(named_files(&on_disk, config_path));
    }
    files
}

fn named_files(c: &Config, config_path: &Path) -> Vec<PathBuf> {
    let mut files = vec![
        config_path.to_owned(),
        c.resolve_path(&c.tls.cert),
        c.resolve_path(&c.tls.key),
    ];
    files.extend(c.tls.client_ca.iter().map(|p| c.resolve_path(p)));
    if let Some(l) = &c.thumbprints {
        files.extend(l.files.iter().map(|p| c.resolve_path(p)));
    }
    if let Some(l) = &c.source_ips {
        files.extend(l.files.iter().map(|p| c.resolve_path(p)));
    }
    files
}

/// What identifies a file's content cheaply: where its symlinks lead (a Kubernetes `..data`
/// swap changes this), its inode, size and mtime.
type Print = Vec<Option<(PathBuf, u64, u64, SystemTime)>>;

fn fingerprint(files: &[PathBuf]) -> Print {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|f| {
            let target = std::fs::canonicalize(f).ok()?;
            let m = std::fs::metadata(&target).ok()?;
            Some((target, m.ino(), m.len(), m.modified().ok()?))
        })
        .collect()
}
