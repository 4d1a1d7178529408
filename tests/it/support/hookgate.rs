//! Runs the real `hookgate` binary, the one process harness: a config built as a TOML table
//! (sane test defaults, changed per test with `set`/`remove`), written with the certificates
//! into a private tempdir, secrets passed as environment variables, and the TLS and admin
//! listeners bound here (loopback, kernel-chosen ports) and passed by systemd socket activation,
//! so the test knows both addresses from its own listeners; readiness is awaited on the admin
//! `/readyz`. Killed on drop. Also `hookgate check` ([`check`]) and runs that must fail to start
//! ([`GateConfig::run_to_exit`]).

use std::io::{BufRead, BufReader};
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
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

/// A hookgate configuration to start. Defaults: no `listen.address` (`start` passes the
/// listener; timeouts 5 s, idle 30 s), TLS with the test server certificate, `[thumbprints]`
/// pinning `Pki::client` by SHA-256, `[source_ips]` allowing `127.0.0.0/8`, the required header
/// from env, methods POST/PUT, all paths, `max_body = "1MiB"`, the given upstream (timeout 5 s,
/// host preserve), `[identity]` from env, the admin listener passed by `start`, JSON logs at
/// info. No `[developer_payload]`.
pub struct GateConfig {
    table: toml::Table,
    env: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
    /// `(link, target)` pairs, created after the files (relative to the config directory).
    symlinks: Vec<(String, String)>,
    /// The command `hookgate run` runs under (see `wrapped`); empty: none.
    wrapper: Vec<String>,
}

impl GateConfig {
    pub fn new(upstream_url: &str) -> GateConfig {
        let pki = Pki::get();
        let text = format!(
            r#"
[listen]
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
            wrapper: Vec::new(),
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

    /// Writes everything into `dir` (the config as is: no address is added) and returns the
    /// config path and a `hookgate` command with this config's environment and no inherited
    /// `HOOKGATE_*` or `LISTEN_*` variable; add the arguments (`check --config PATH`).
    pub fn prepare(&self, dir: &Path) -> (PathBuf, Command) {
        let config = self.write_all(dir);
        (config, self.command(env!("CARGO_BIN_EXE_hookgate"), dir))
    }

    /// Writes the files and the config into `dir`; returns the config's path.
    fn write_all(&self, dir: &Path) -> PathBuf {
        self.write_files(dir);
        let config = dir.join("hookgate.toml");
        std::fs::write(&config, self.to_toml()).expect("write config");
        config
    }

    fn command(&self, program: &str, dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(dir).stdin(Stdio::null());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("HOOKGATE_") || k.starts_with("LISTEN_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// The config as TOML text (without the addresses `start` adds).
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.table).expect("serialisable")
    }

    /// Whether `dotted.path` is set.
    fn has(&self, path: &str) -> bool {
        let mut v = Some(&self.table);
        let (tables, key) = path.rsplit_once('.').map_or(("", path), |(t, k)| (t, k));
        for name in tables.split('.').filter(|s| !s.is_empty()) {
            v = v.and_then(|t| t.get(name)).and_then(|t| t.as_table());
        }
        v.is_some_and(|t| t.contains_key(key))
    }

    /// Runs `hookgate run` under `wrapper`, a command that executes its arguments in its own
    /// process (`["prlimit", "--nofile=256:256", "--"]`), so the pid and the passed
    /// descriptors stay hookgate's.
    pub fn wrapped(mut self, wrapper: &[&str]) -> GateConfig {
        self.wrapper = wrapper.iter().map(|w| w.to_string()).collect();
        self
    }

    /// Writes everything to a fresh tempdir, binds the TLS and admin listeners (loopback,
    /// kernel-chosen ports), runs `hookgate run` with them passed by socket activation (fds 3
    /// and 4, `LISTEN_FDNAMES=listen:admin`) and waits until `/readyz` is 200. The config names
    /// the two addresses as `listen.address` and `admin.address` (as it would beside a systemd
    /// socket unit: `hookgate store` finds the admin listener there), unless the test set them:
    /// those are not bound.
    pub async fn start(self) -> Gate {
        self.start_and_wait("/readyz").await
    }

    /// Like `start`, but waits only for `/healthz` (a gate that starts not ready, e.g. with an
    /// empty allow list, or a url-only list that cannot be fetched).
    pub async fn start_unready(self) -> Gate {
        self.start_and_wait("/healthz").await
    }

    async fn start_and_wait(mut self, probe: &str) -> Gate {
        let dir = tempfile::tempdir().expect("tempdir");
        let listen = loopback_listener();
        let admin = loopback_listener();
        let addr = listen.local_addr().expect("listen address");
        let admin_addr = admin.local_addr().expect("admin address");
        for (key, a) in [("listen.address", addr), ("admin.address", admin_addr)] {
            if !self.has(key) {
                self = self.set(key, a.to_string());
            }
        }
        let activation = Activation {
            fds: vec![listen.as_fd(), admin.as_fd()],
            listen_fds: "2".into(),
            names: Some("listen:admin".into()),
        };
        let (config, mut child) = self.spawn(dir.path(), &activation);
        drop(activation);
        // hookgate holds the only copies now: they close when it does.
        drop((listen, admin));
        let stdout = Output::collect(child.stdout.take().expect("stdout"));
        let stderr = Output::collect(child.stderr.take().expect("stderr"));
        let mut gate = Gate {
            child,
            dir,
            addr,
            admin: admin_addr,
            config,
            stdout,
            stderr,
        };
        gate.wait_200(probe).await;
        gate
    }

    /// Writes everything to a fresh tempdir, runs `hookgate run` with `activation` and waits
    /// (15 s at most) for it to exit: for a start that must fail.
    pub fn run_to_exit(&self, activation: &Activation<'_>) -> Exited {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, mut child) = self.spawn(dir.path(), activation);
        let deadline = Instant::now() + Duration::from_secs(15);
        while child.try_wait().expect("try_wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("hookgate output");
        Exited {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Writes everything into `dir` and spawns `hookgate run` (under the wrapper) with
    /// `activation`'s descriptors as its 3, 4, … and `LISTEN_PID` its own pid: `sh` exports its
    /// pid (`$$`), then execs, so the same process becomes hookgate. Stdout and stderr piped.
    fn spawn(&self, dir: &Path, activation: &Activation<'_>) -> (PathBuf, Child) {
        let config = self.write_all(dir);
        let mut cmd = self.command("sh", dir);
        cmd.arg("-c")
            .arg(r#"LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@""#)
            .args(&self.wrapper)
            .arg(env!("CARGO_BIN_EXE_hookgate"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("LISTEN_FDS", &activation.listen_fds)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(names) = &activation.names {
            cmd.env("LISTEN_FDNAMES", names);
        }
        pass_fds(&mut cmd, &activation.fds);
        let child = cmd.spawn().expect("spawn hookgate");
        (config, child)
    }
}

/// Descriptors handed to `hookgate run` as its 3, 4, …, and the `LISTEN_FDS` and
/// `LISTEN_FDNAMES` (`None`: unset) announcing them; a test of bad values makes them disagree.
pub struct Activation<'a> {
    pub fds: Vec<BorrowedFd<'a>>,
    pub listen_fds: String,
    pub names: Option<String>,
}

/// How a `hookgate run` ended, and what it printed.
pub struct Exited {
    /// `None`: killed by a signal (or by `run_to_exit` after 15 s).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A listener on a kernel-chosen loopback port with the backlog hookgate gives its own
/// (`max_connections`, 10 000 by default; the kernel caps it at `net.core.somaxconn`): tests
/// queue hundreds of connections in it.
fn loopback_listener() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    // listen(2) again on a listening socket only changes its backlog.
    rustix::net::listen(&listener, 10_000).expect("raise the backlog");
    listener
}

/// Makes `fds[i]` the child's descriptor 3 + i, between fork and exec. The listeners stay
/// close-on-exec in this process, so a process another test spawns meanwhile inherits none;
/// only the child's copies (dup2) lose the flag.
fn pass_fds(cmd: &mut Command, fds: &[BorrowedFd<'_>]) {
    const FIRST: RawFd = 3;
    const MAX: usize = 8;
    assert!(fds.len() <= MAX, "at most {MAX} descriptors");
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let above = FIRST + raw.len() as RawFd;
    // SAFETY: the closure runs in the forked child, which then only calls exec: it makes raw
    // fcntl/dup2/close system calls (rustix) and does not allocate. The borrowed descriptors are
    // open until `spawn` returns (the caller holds them), and the numbers it takes over (3, 4, …)
    // are the child's own to replace.
    unsafe {
        cmd.pre_exec(move || {
            // Copies above every target first: a listener that is itself fd 3 or 4 is not
            // overwritten before it is copied. The copies are close-on-exec.
            let mut copies: [Option<OwnedFd>; MAX] = [const { None }; MAX];
            for (copy, &fd) in copies.iter_mut().zip(&raw) {
                let fd = BorrowedFd::borrow_raw(fd);
                *copy = Some(rustix::io::fcntl_dupfd_cloexec(fd, above)?);
            }
            for (target, copy) in (FIRST..).zip(copies.iter().flatten()) {
                let mut target = ManuallyDrop::new(OwnedFd::from_raw_fd(target));
                rustix::io::dup2(copy, &mut target)?;
            }
            Ok(())
        });
    }
}

/// What `hookgate check` did.
pub struct Checked {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The config file it was given (errors name it).
    pub config: PathBuf,
}

/// `hookgate check` on `text` written as `<dir>/hookgate.toml` next to the test PKI, with the
/// usual secrets in the environment plus `env`.
pub fn check(dir: &Path, text: &str, env: &[(&str, &str)]) -> Checked {
    let gate = env
        .iter()
        .fold(GateConfig::new("http://127.0.0.1:9"), |g, (k, v)| {
            g.env(k, v)
        });
    gate.write_files(dir);
    let config = dir.join("hookgate.toml");
    std::fs::write(&config, text).expect("write config");
    let out = gate
        .command(env!("CARGO_BIN_EXE_hookgate"), dir)
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run hookgate check");
    Checked {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        config,
    }
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
    dir: TempDir,
    /// The TLS listener's address (the listener passed to it).
    pub addr: SocketAddr,
    admin: SocketAddr,
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
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The admin listener's address (the listener passed to it).
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    async fn wait_200(&mut self, probe: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok((200, _)) = admin::get(self.admin(), probe).await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the reader threads a moment to drain the pipes.
                tokio::time::sleep(Duration::from_millis(50)).await;
                panic!(
                    "hookgate exited with {status}: {}\n{}",
                    self.stderr.text(),
                    self.stdout.text()
                );
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
