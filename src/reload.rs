//! Reload: SIGHUP, or a change to a watched file, re-reads the config and everything it names,
//! builds a whole new `Snapshot` and swaps it in; on any error the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::allowlist::remote::loggable_url;
use crate::config::{Config, UpstreamTarget};
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

/// What `check` prints: everything the snapshot enforces, no secret values.
pub(crate) fn summary(snap: &Snapshot) -> String {
    use std::fmt::Write;
    let c = &snap.config;
    let mut s = String::new();
    let _ = writeln!(s, "config {}: OK", c.path.display());
    let _ = writeln!(
        s,
        "listen: {} (PROXY protocol {}), at most {} connections, handshake {:?}, header {:?}, idle {:?}, shutdown grace {:?}",
        c.listen.address,
        if c.listen.proxy_protocol { "on" } else { "off" },
        c.listen.max_connections,
        c.listen.handshake_timeout,
        c.listen.header_timeout,
        c.listen.idle_timeout,
        c.listen.shutdown_grace
    );
    let _ = writeln!(
        s,
        "tls: {} (expires {}), TLS {}+, client certificate required",
        c.tls.cert.display(),
        crate::tls::describe::rfc3339(snap.cert_not_after),
        match c.tls.min_version {
            crate::config::TlsVersion::Tls12 => "1.2",
            crate::config::TlsVersion::Tls13 => "1.3",
        }
    );
    match &snap.pins {
        Some(p) => {
            let remote = c.thumbprints.as_ref().and_then(|l| l.remote.as_ref());
            let _ = writeln!(
                s,
                "thumbprints: {} pinned{}",
                p.live.load().len(),
                remote
                    .map(|r| format!(
                        " + refreshed from {} every {:?}",
                        loggable_url(&r.url),
                        r.refresh
                    ))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(s, "thumbprints: not configured");
        }
    }
    let _ = writeln!(
        s,
        "client_ca: {}; validity period {}",
        c.tls
            .client_ca
            .as_ref()
            .map_or("none".into(), |p| p.display().to_string()),
        if c.tls.check_validity || c.tls.client_ca.is_some() {
            "checked"
        } else {
            "not checked"
        }
    );
    match &snap.source_ips {
        Some(l) => {
            let remote = c.source_ips.as_ref().and_then(|l| l.remote.as_ref());
            let _ = writeln!(
                s,
                "source_ips: {} ranges{}",
                l.live.load().len(),
                remote
                    .map(|r| format!(
                        " + refreshed from {} every {:?}",
                        loggable_url(&r.url),
                        r.refresh
                    ))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(s, "source_ips: not configured (any address)");
        }
    }
    match &snap.header {
        Some(h) => {
            let _ = writeln!(
                s,
                "required_header: {} ({} accepted values), {}",
                h.name,
                h.values.len(),
                if h.strip { "stripped" } else { "forwarded" }
            );
        }
        None => {
            let _ = writeln!(s, "required_header: not configured");
        }
    }
    match &snap.payload {
        Some(p) => {
            let _ = writeln!(
                s,
                "developer_payload: {} ({} accepted values) under {:?}",
                p.pointer,
                p.values.len(),
                p.path_prefixes
            );
        }
        None => {
            let _ = writeln!(s, "developer_payload: not configured");
        }
    }
    let _ = writeln!(
        s,
        "request: methods {}, path prefixes {:?}, max body {} bytes",
        snap.allow.to_str().unwrap_or_default(),
        c.request.path_prefixes,
        c.request.max_body
    );
    let target = match &c.upstream.target {
        UpstreamTarget::Tcp { host, port } => format!("http://{host}:{port}{}", c.upstream.base),
        UpstreamTarget::Unix(p) => format!("unix:{}", p.display()),
    };
    let _ = writeln!(
        s,
        "upstream: {target} (connect timeout {:?}, response timeout {:?}, host {:?})",
        c.upstream.connect_timeout, c.upstream.timeout, c.upstream.host
    );
    match &snap.signer {
        Some(sig) => {
            let _ = writeln!(
                s,
                "identity: requests signed (RFC 9421, hmac-sha256, keyid {:?})",
                sig.key_id()
            );
        }
        None => {
            let _ = writeln!(s, "identity: not configured (no Signature headers)");
        }
    }
    let _ = writeln!(
        s,
        "admin: {}",
        c.admin.map_or("disabled".into(), |a| a.to_string())
    );
    s
}
