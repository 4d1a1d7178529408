//! Reload: SIGHUP, or a change to a watched file, re-reads the config and everything it names,
//! builds a whole new `Snapshot` and swaps it in; on any error the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::admission::Admission;
use crate::config::{Config, ConfigError};
use crate::snapshot::Snapshot;
use crate::{fsio, Gate};

/// How often watched files are looked at (SPEC: a change is picked up within 10 s).
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Installs the SIGHUP handler and takes the watcher's first look, then spawns both. Awaited
/// before the gate reports ready: a SIGHUP or a file change from then on is not missed (an
/// early SIGHUP would otherwise end the process, a change before the first look go unseen).
pub(crate) async fn spawn(
    gate: Arc<Gate>,
    config_path: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler");
        return;
    };
    let mut watcher = Watcher::new(config_path.clone());
    let mut seen = watcher.look(&gate).await;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                _ = hup.recv() => "SIGHUP",
                _ = tick.tick() => {
                    // A look that failed (EMFILE, a hung mount) is no change: try again later.
                    match watcher.look(&gate).await {
                        Some(now) if seen.as_ref() != Some(&now) => {
                            seen = Some(now);
                            "file change"
                        }
                        _ => continue,
                    }
                }
                _ = shutdown.changed() => return,
            };
            reload(&gate, &config_path, trigger).await;
            // The new config may name other files.
            if let Some(now) = watcher.look(&gate).await {
                seen = Some(now);
            }
        }
    });
}

/// Loads and builds off the runtime under [`fsio::LOAD_LIMIT`], then swaps; the old snapshot
/// keeps serving if anything fails.
pub(crate) async fn reload(gate: &Arc<Gate>, config_path: &Path, trigger: &str) -> bool {
    let path = config_path.to_owned();
    let metrics = gate.metrics.clone();
    let admission = gate.admission_cell();
    let built = fsio::bounded_async(fsio::LOAD_LIMIT, move || {
        Config::load(&path).and_then(|c| Snapshot::build(c, &admission, &metrics))
    })
    .await
    .map_err(|stuck| ConfigError::stuck(config_path, &stuck))
    .and_then(|built| built)
    .and_then(|new| match emptied_list(&new, &gate.admission_with(&new)) {
        Some(e) => Err(e),
        None => Ok(new),
    });
    match built {
        Ok(new) => {
            let old = gate.snapshot();
            if new.config.listen.address != old.config.listen.address
                || new.config.admin != old.config.admin
            {
                tracing::warn!("listen.address or admin.address changed: the new address takes effect after a restart");
            }
            let store_path = |c: &Config| c.store.as_ref().map(|s| s.path.clone());
            if store_path(&new.config) != store_path(&old.config) {
                tracing::warn!("store.path or store.url changed (or [store] was added or removed): the store in use stays until a restart; the other [store] keys apply now");
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
            gate.install(new);
            crate::refresh::sync(gate);
            gate.body_budget
                .resize(gate.snapshot().config.request.max_buffered);
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

/// SPEC §6: a reload that would leave a configured list with no entry (an emptied or truncated
/// list file, say) fails, naming the list's files; at start-up an empty list fails closed instead.
/// `admission` is what `new` would put in force, with the remote entries.
fn emptied_list(new: &Snapshot, admission: &Admission) -> Option<ConfigError> {
    let c = &new.config;
    let files = |files: &[PathBuf]| {
        let names: Vec<String> = files
            .iter()
            .map(|f| c.resolve_path(f).display().to_string())
            .collect();
        if names.is_empty() {
            String::new()
        } else {
            format!(" (read from {})", names.join(", "))
        }
    };
    if let (Some(0), Some(cfg)) = (admission.pin_count(), &c.thumbprints) {
        return Some(c.error(
            "thumbprints",
            format!(
                "the new config leaves [thumbprints] with no entry{}; the previous lists keep serving",
                files(&cfg.files)
            ),
        ));
    }
    if let (Some(0), Some(cfg)) = (admission.network_count(), &c.source_ips) {
        return Some(c.error(
            "source_ips",
            format!(
                "the new config leaves [source_ips] with no entry{}; the previous lists keep serving",
                files(&cfg.files)
            ),
        ));
    }
    None
}

/// Watches the config file and every file it names that SPEC §6 says is watched, by the config
/// in force and by the one on disk: after a failed reload the latter may name a file that does
/// not exist yet (a Kubernetes ConfigMap updated before its Secret), whose arrival must be
/// picked up.
struct Watcher {
    config_path: PathBuf,
    /// Files named by the config on disk when it last parsed.
    on_disk: Arc<std::sync::Mutex<Vec<PathBuf>>>,
}

impl Watcher {
    fn new(config_path: PathBuf) -> Self {
        Watcher {
            config_path,
            on_disk: Arc::default(),
        }
    }

    /// The fingerprint of every watched file, or `None` when a file could not be looked at
    /// (any error but "not found", or the look hung): that is no change.
    async fn look(&mut self, gate: &Gate) -> Option<Print> {
        let snap = gate.snapshot_full();
        let config_path = self.config_path.clone();
        let on_disk = self.on_disk.clone();
        fsio::bounded_async(fsio::LOAD_LIMIT, move || {
            let mut files = named_files(&snap.config, &config_path);
            let mut known = on_disk.lock().ok()?;
            if let Ok(c) = Config::load(&config_path) {
                *known = named_files(&c, &config_path);
            }
            files.extend(known.iter().cloned());
            fingerprint(&files)
        })
        .await
        .ok()
        .flatten()
    }
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

fn fingerprint(files: &[PathBuf]) -> Option<Print> {
    use std::io::ErrorKind::NotFound;
    use std::os::unix::fs::MetadataExt;
    let look = |f: &PathBuf| -> std::io::Result<_> {
        let target = std::fs::canonicalize(f)?;
        let m = std::fs::metadata(&target)?;
        Ok((target, m.ino(), m.len(), m.modified()?))
    };
    files
        .iter()
        .map(|f| match look(f) {
            Ok(print) => Some(Some(print)),
            Err(e) if e.kind() == NotFound => Some(None),
            Err(_) => None,
        })
        .collect()
}
