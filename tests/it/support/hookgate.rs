//! Runs the real `hookgate` binary: a config built as a TOML table (sane test defaults, changed
//! per test with `set`/`remove`), written with the certificates into a private tempdir, secrets
//! passed as environment variables, the listen port chosen by the kernel (`127.0.0.1:0`, read back
//! from the `listening` log line) and readiness awaited on the admin `/readyz`. Killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use tempfile::TempDir;

use super::admin::{self, Metrics};
use super::client::{request, Reply, TlsClient, H1};
use super::pki::Pki;

/// The required header's value (env `HOOKGATE_HEADER_SECRET`).
pub const HEADER_SECRET: &str = "hdr-secret-5e1f0a9b7c";
/// The accepted developerPayload (env `HOOKGATE_DEVELOPER_PAYLOAD`).
pub const DEVELOPER_PAYLOAD: &str = "devpayload-c0ffee-4242";
/// The 32 raw bytes of the signing key; `signing_key_b64()` is what the config gets.
pub const SIGNING_KEY: &[u8; 32] = b"hookgate-test-signing-key-32byte";
/// The required header's name in the default config.
pub const HEADER_NAME: &str = "X-Webhook-Secret";

/// `SIGNING_KEY` as base64, the `[identity] key` format.
pub fn signing_key_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(SIGNING_KEY)
}

/// The SPEC §4 `Content-Digest` value hookgate must send for `body`: `sha-256=:BASE64:`.
pub fn content_digest(body: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    )
}

/// A hookgate configuration to start. Defaults: listen on `127.0.0.1:0` (timeouts 5 s, idle
/// 30 s), TLS with the test server certificate, `[thumbprints]` pinning `Pki::client` by SHA-256,
/// `[source_ips]` allowing `127.0.0.0/8`, the required header from env, methods POST/PUT, all
/// paths, `max_body = "1MiB"`, the given upstream (timeout 5 s, host preserve), `[identity]` from
/// env, admin on a free loopback port, JSON logs at info. No `[developer_payload]`.
pub struct GateConfig {
    table: toml::Table,
    env: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
    /// `(link, target)` pairs, created after the files (relative to the config directory).
    symlinks: Vec<(String, String)>,
}

impl GateConfig {
    pub fn new(upstream_url: &str) -> GateConfig {
        let pki = Pki::get();
        let text = format!(
            r#"
[listen]
address = "127.0.0.1:0"
handshake_timeout = "5s"
header_timeout = "5s"
idle_timeout = "30s"
shutdown_grace = "1s"

[tls]
cert = "server.pem"
key = "server.key"
min_version = "1.2"
check_validity = true

[thumbprints]
allow = ["{pin}"]

[source_ips]
allow = ["127.0.0.0/8"]

[required_header]
name = "{HEADER_NAME}"
values = [{{ env = "HOOKGATE_HEADER_SECRET" }}]
strip = true

[request]
methods = ["POST", "PUT"]
path_prefixes = ["/"]
max_body = "1MiB"

[upstream]
url = "{upstream_url}"
connect_timeout = "1s"
timeout = "5s"
host = "preserve"

[identity]
key = {{ env = "HOOKGATE_SIGNING_KEY" }}
key_id = "hookgate-1"

[log]
format = "json"
level = "info"
"#,
            pin = pki.client.sha256_hex()
        );
        GateConfig {
            table: text.parse().expect("default test config is valid TOML"),
            env: vec![
                ("HOOKGATE_HEADER_SECRET".into(), HEADER_SECRET.into()),
                (
                    "HOOKGATE_DEVELOPER_PAYLOAD".into(),
                    DEVELOPER_PAYLOAD.into(),
                ),
                ("HOOKGATE_SIGNING_KEY".into(), signing_key_b64()),
            ],
            files: Vec::new(),
            symlinks: Vec::new(),
        }
    }

    /// Sets `dotted.path` (e.g. `"listen.max_connections"`), creating tables on the way.
    pub fn set(mut self, path: &str, value: impl Into<toml::Value>) -> GateConfig {
        let (tables, key) = path.rsplit_once('.').map_or(("", path), |(t, k)| (t, k));
        let mut t = &mut self.table;
        for name in tables.split('.').filter(|s| !s.is_empty()) {
            t = t
                .entry(name)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("path goes through tables");
        }
        t.insert(key.to_owned(), value.into());
        self
    }

    /// Sets a key to a TOML literal, e.g. `("developer_payload.values", r#"[{ env = "X" }]"#)`.
    pub fn set_toml(self, path: &str, literal: &str) -> GateConfig {
        let v: toml::Table = format!("v = {literal}")
            .parse()
            .expect("valid TOML literal");
        let value = v.get("v").expect("v").clone();
        self.set(path, value)
    }

    /// Removes a whole section or key (`"source_ips"`, `"identity.key_id"`).
    pub fn remove(mut self, path: &str) -> GateConfig {
        let (tables, key) = path.rsplit_once('.').map_or(("", path), |(t, k)| (t, k));
        let mut t = &mut self.table;
        for name in tables.split('.').filter(|s| !s.is_empty()) {
            t = t
                .get_mut(name)
                .and_then(|v| v.as_table_mut())
                .expect("path exists");
        }
        t.remove(key);
        self
    }

    /// Sets an environment variable for the hookgate process (e.g. another signing key).
    pub fn env(mut self, name: &str, value: &str) -> GateConfig {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.into(), value.into()));
        self
    }

    /// Writes an extra file into the config directory (relative config paths resolve there);
    /// `name` may contain directories, which are created.
    pub fn file(mut self, name: &str, contents: impl Into<Vec<u8>>) -> GateConfig {
        self.files.push((name.into(), contents.into()));
        self
    }

    /// Creates the symlink `link -> target` in the config directory after the files (a
    /// Kubernetes-style Secret volume: `certs/tls.crt -> ..data/tls.crt`).
    pub fn symlink(mut self, link: &str, target: &str) -> GateConfig {
        self.symlinks.push((link.into(), target.into()));
        self
    }

    /// Writes the certificates, the extra files and symlinks into `dir`.
    fn write_files(&self, dir: &Path) {
        let pki = Pki::get();
        for id in [&pki.server, &pki.client, &pki.ca_client] {
            id.write(dir);
        }
        std::fs::write(dir.join("ca.pem"), &pki.ca.cert_pem).expect("write CA");
        for (name, contents) in &self.files {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create directories");
            }
            std::fs::write(path, contents).expect("write extra file");
        }
        for (link, target) in &self.symlinks {
            std::os::unix::fs::symlink(target, dir.join(link)).expect("create symlink");
        }
    }

    /// Writes everything into `dir` (the config as is: no admin section is added) and returns
    /// the config path and a `hookgate` command with this config's environment and no inherited
    /// `HOOKGATE_*` variable; add the arguments (`check --config PATH`).
    pub fn prepare(&self, dir: &Path) -> (PathBuf, Command) {
        self.write_files(dir);
        let config = dir.join("hookgate.toml");
        std::fs::write(&config, self.to_toml()).expect("write config");
        (config, self.command(dir))
    }

    fn command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookgate"));
        cmd.current_dir(dir).stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("HOOKGATE_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// The config as TOML text (without the admin section `start` adds).
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.table).expect("serialisable")
    }

    /// Writes everything to a fresh tempdir, runs `hookgate run`, waits until `/readyz` is 200.
    /// The admin port is picked free just before start; a lost race is retried.
    pub async fn start(self) -> Gate {
        self.start_and_wait("/readyz").await
    }

    /// Like `start`, but waits only for `/healthz` (a gate that starts not ready, e.g. with an
    /// empty allow list).
    pub async fn start_unready(self) -> Gate {
        self.start_and_wait("/healthz").await
    }

    async fn start_and_wait(self, probe: &str) -> Gate {
        let dir = tempfile::tempdir().expect("tempdir");
        self.write_files(dir.path());
        let mut last = String::new();
        for _ in 0..5 {
            match self.try_start(&dir).await {
                Ok(mut gate) => {
                    gate.dir = Some(dir);
                    gate.wait_200(probe).await;
                    return gate;
                }
                Err(e) if e.contains("admin.address") => last = e,
                Err(e) => panic!("hookgate did not start: {e}"),
            }
        }
        panic!("hookgate did not start (admin port races): {last}");
    }

    async fn try_start(&self, dir: &TempDir) -> Result<Gate, String> {
        let admin = free_port();
        let mut table = self.table.clone();
        // An [admin] section without an address (say, only a token) gets the free port too.
        let section = table
            .entry("admin")
            .or_insert_with(|| toml::Table::new().into());
        if let Some(a) = section.as_table_mut() {
            a.entry("address")
                .or_insert_with(|| admin.to_string().into());
        }
        let config = dir.path().join("hookgate.toml");
        std::fs::write(&config, toml::to_string(&table).expect("TOML")).expect("write config");
        let mut cmd = self.command(dir.path());
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn hookgate");
        let stdout = Output::collect(child.stdout.take().expect("stdout"));
        let stderr = Output::collect(child.stderr.take().expect("stderr"));
        let mut gate = Gate {
            child,
            dir: None,
            addr: "0.0.0.0:0".parse().expect("addr"),
            admin: None,
            config,
            stdout,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(line) = gate.stdout.find_json(|v| v["msg"] == "listening") {
                gate.addr = line["address"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .expect("listening line has the bound address");
                gate.admin = table
                    .get("admin")
                    .and_then(|a| a.get("address"))
                    .and_then(|a| a.as_str())
                    .and_then(|a| a.parse().ok());
                return Ok(gate);
            }
            if let Ok(Some(status)) = gate.child.try_wait() {
                // Give the reader threads a moment to drain the pipes.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Err(format!(
                    "exited with {status}; stderr: {}; stdout: {}",
                    gate.stderr.text(),
                    gate.stdout.text()
                ));
            }
            assert!(
                Instant::now() < deadline,
                "no `listening` line within 15s: {}",
                gate.stdout.text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Lines a child process wrote to one of its pipes, collected by a reader thread.
#[derive(Clone, Default)]
pub struct Output {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Output {
    /// Starts a thread that appends every line of `pipe`.
    pub fn collect(pipe: impl std::io::Read + Send + 'static) -> Output {
        let out = Output::default();
        let lines = out.lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("lock").push(line);
            }
        });
        out
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Every line that parses as a JSON object.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.is_object())
            .collect()
    }

    /// The first JSON line matching `pred`.
    pub fn find_json(
        &self,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        self.json().into_iter().find(|v| pred(v))
    }
}

/// A running hookgate process; killed (and its tempdir removed) on drop.
pub struct Gate {
    child: Child,
    dir: Option<TempDir>,
    /// The TLS listener's bound address.
    pub addr: SocketAddr,
    admin: Option<SocketAddr>,
    config: PathBuf,
    /// Its stdout (JSON log lines).
    pub stdout: Output,
    /// Its stderr (`warning:` lines, errors).
    pub stderr: Output,
}

impl Gate {
    /// The config directory (holds `server.pem`, `client.pem/.key`, `ca-client.pem/.key`,
    /// `ca.pem`, `hookgate.toml` and any extra files).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("started").path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The admin listener's address.
    pub fn admin(&self) -> SocketAddr {
        self.admin.expect("admin is enabled")
    }

    async fn wait_200(&mut self, probe: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok((200, _)) = admin::get(self.admin(), probe).await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("hookgate exited with {status}: {}", self.stderr.text());
            }
            assert!(Instant::now() < deadline, "{probe} not 200 within 10s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends a real signal (`kill -s NAME PID`), e.g. `"HUP"`, `"TERM"`, `"INT"`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run `kill` ({e}); install it: apt-get install -y procps")
            });
        assert!(status.success(), "kill -s {name} failed: {status}");
    }

    /// Polls until the process exits; `None` if it is still running after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A scrape of `/metrics`.
    pub async fn metrics(&self) -> Metrics {
        let (status, body) = admin::get(self.admin(), "/metrics").await.expect("scrape");
        assert_eq!(status, 200, "/metrics status");
        Metrics(body)
    }

    /// Polls `/metrics` until the sample `name{labels}` equals `want` (counters are updated
    /// after the client already saw the outcome); panics with the actual value after 5 s.
    pub async fn expect_metric(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let m = self.metrics().await;
            let got = m.value(name, labels);
            if got == Some(want) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{name}{labels:?}: want {want}, got {got:?}\n{}",
                    m.family(name)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `/metrics` until the sample `name{labels}` is at least `min` (a counter that a
    /// file-watcher tick may bump once more); returns it; panics after `within`.
    pub async fn expect_metric_at_least(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        min: f64,
        within: Duration,
    ) -> f64 {
        let deadline = Instant::now() + within;
        loop {
            let m = self.metrics().await;
            match m.value(name, labels) {
                Some(v) if v >= min => return v,
                got if Instant::now() > deadline => {
                    panic!("{name}{labels:?}: want >= {min}, got {got:?} after {within:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// `hookgate_requests_total{outcome, reason}` must reach `want`.
    pub async fn expect_requests(&self, outcome: &str, reason: &str, want: f64) {
        self.expect_metric(
            "hookgate_requests_total",
            &[("outcome", outcome), ("reason", reason)],
            want,
        )
        .await;
    }

    /// Polls stdout until a JSON log line matches `pred`; panics after 5 s.
    pub async fn expect_log(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(v) = self.stdout.find_json(&pred) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no log line {what}:\n{}",
                self.stdout.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A TLS client presenting the pinned `Pki::client` certificate.
    pub fn client(&self) -> TlsClient {
        TlsClient::new(Some(&Pki::get().client))
    }

    /// A fresh HTTP/1.1 connection with the pinned client.
    pub async fn h1(&self) -> H1 {
        H1::over(self.client().connect(self.addr).await.expect("handshake")).await
    }

    /// POSTs `body` to `path` on a fresh connection with the pinned client and the required
    /// header (plus `extra` headers).
    pub async fn post(
        &self,
        path: &str,
        body: impl Into<bytes::Bytes>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut headers = vec![
            (HEADER_NAME, HEADER_SECRET),
            ("content-type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        self.h1()
            .await
            .send(request("POST", path, &headers, body))
            .await
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout.text(), self.stderr.text())
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
