//! Issue 4, operability, against the running binary: the admin listener and a `promtool`-checked
//! scrape, the SPEC §7 JSON log lines, reload by SIGHUP and by watched files (including a
//! Kubernetes `..data` symlink swap), graceful shutdown on SIGTERM/SIGINT, and the CLI's `check`
//! and `--log-format`, and systemd socket activation. Real signals (`kill`), real files, real
//! scrapes.

mod activation;
mod admin;
mod cli;
mod logs;
mod reload;
mod shutdown;
mod watch;

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::pki::Identity;
use crate::support::*;

/// Replaces `path` the way an operator's tooling should: write a sibling, then `rename` over it,
/// so the file watcher never reads a half-written file.
pub fn write_atomically(path: &Path, contents: impl AsRef<[u8]>) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let tmp = path.with_extension(format!("tmp{}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&tmp, contents).expect("write temporary file");
    std::fs::rename(&tmp, path).expect("rename over the file");
}

/// Rewrites the running gate's config file (atomically) with `edits` (dotted key, value).
pub fn edit_config(gate: &Gate, edits: &[(&str, toml::Value)]) {
    let text = std::fs::read_to_string(gate.config_path()).expect("read config");
    let mut table: toml::Table = text.parse().expect("config is TOML");
    for (path, value) in edits {
        let (tables, key) = path.rsplit_once('.').expect("dotted key");
        let mut t = &mut table;
        for name in tables.split('.') {
            t = t
                .entry(name)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("path goes through tables");
        }
        t.insert(key.to_owned(), value.clone());
    }
    write_atomically(
        gate.config_path(),
        toml::to_string(&table).expect("serialisable"),
    );
}

/// Polls `check` every 50 ms until it holds; returns how long that took; panics after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The DER of the leaf certificate hookgate serves on a new connection from `client` (pinned:
/// an unpinned one would count as a `thumbprint_denied` handshake).
pub async fn served_leaf(gate: &Gate, client: &Identity) -> Vec<u8> {
    let tls = TlsClient::new(Some(client))
        .connect(gate.addr)
        .await
        .expect("handshake");
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .expect("server sent certificates");
    certs[0].as_ref().to_vec()
}

/// POSTs `{}` to `path` on a new connection as `client`, with `header` as the required header.
pub async fn post_as(gate: &Gate, client: &Identity, header: &str, path: &str) -> Reply {
    let tls = TlsClient::new(Some(client))
        .connect(gate.addr)
        .await
        .expect("handshake");
    H1::over(tls)
        .await
        .send(request("POST", path, &[(HEADER_NAME, header)], "{}"))
        .await
}

/// The `hookgate_config_reloads_total{result}` sample right now.
pub async fn reloads(gate: &Gate, result: &str) -> f64 {
    gate.metrics()
        .await
        .value("hookgate_config_reloads_total", &[("result", result)])
        .expect("hookgate_config_reloads_total is exported")
}

/// The `hookgate_server_cert_not_after_timestamp_seconds` sample right now.
pub async fn cert_not_after(gate: &Gate) -> f64 {
    gate.metrics()
        .await
        .value("hookgate_server_cert_not_after_timestamp_seconds", &[])
        .expect("hookgate_server_cert_not_after_timestamp_seconds is exported")
}

/// 2040-01-01T00:00:00Z, `Pki::server_rotated`'s notAfter.
pub const ROTATED_NOT_AFTER: f64 = 2_208_988_800.0;
