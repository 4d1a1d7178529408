//! hookgate processes that `GateConfig::start` cannot give: one that is expected to stay
//! unready (`/readyz` 503, e.g. a url-only list with no fetch and no cache), and `hookgate
//! check` on a config. Both write the test PKI and the config into a caller-owned directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::admin::{self, Metrics};
use super::hookgate::{
    free_port, signing_key_b64, GateConfig, Output, DEVELOPER_PAYLOAD, HEADER_SECRET,
};
use super::pki::Pki;

/// Writes the files `GateConfig::start` writes (certificates, keys, `ca.pem`) into `dir`.
pub fn write_pki(dir: &Path) {
    let pki = Pki::get();
    for id in [&pki.server, &pki.client, &pki.ca_client] {
        id.write(dir);
    }
    std::fs::write(dir.join("ca.pem"), &pki.ca.cert_pem).expect("write CA");
}

/// The environment `GateConfig` gives hookgate, plus `extra`.
fn command(config: &Path, args: &[&str], extra: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .current_dir(config.parent().expect("config dir"))
        .stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("HOOKGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOOKGATE_HEADER_SECRET", HEADER_SECRET)
        .env("HOOKGATE_DEVELOPER_PAYLOAD", DEVELOPER_PAYLOAD)
        .env("HOOKGATE_SIGNING_KEY", signing_key_b64())
        .envs(extra.iter().copied());
    cmd
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
    write_pki(dir);
    let config = dir.join("hookgate.toml");
    std::fs::write(&config, text).expect("write config");
    let out = command(&config, &["check"], env)
        .output()
        .expect("run hookgate check");
    Checked {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        config,
    }
}

/// A hookgate process started without waiting for readiness; killed on drop.
pub struct UnreadyGate {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub stdout: Output,
    pub stderr: Output,
}

impl UnreadyGate {
    /// Writes the PKI and `cfg` (plus an admin address) into `dir`, runs `hookgate run` and
    /// returns once the TLS listener is bound (its `listening` log line).
    pub async fn start(cfg: &GateConfig, dir: &Path, env: &[(&str, &str)]) -> UnreadyGate {
        write_pki(dir);
        let admin = free_port();
        let text = format!("{}\n[admin]\naddress = \"{admin}\"\n", cfg.to_toml());
        let config = dir.join("hookgate.toml");
        std::fs::write(&config, text).expect("write config");
        let mut child = command(&config, &["run"], env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hookgate");
        let stdout = Output::collect(child.stdout.take().expect("stdout"));
        let stderr = Output::collect(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + Duration::from_secs(15);
        let addr = loop {
            if let Some(line) = stdout.find_json(|v| v["msg"] == "listening") {
                break line["address"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .expect("listening line has the bound address");
            }
            if let Ok(Some(status)) = child.try_wait() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                panic!("hookgate exited with {status}: {}", stderr.text());
            }
            assert!(Instant::now() < deadline, "no `listening` line within 15s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let gate = UnreadyGate {
            child,
            addr,
            admin,
            stdout,
            stderr,
        };
        // The admin listener may bind a moment after the TLS one.
        let deadline = Instant::now() + Duration::from_secs(5);
        while admin::get(admin, "/healthz").await.is_err() {
            assert!(Instant::now() < deadline, "admin listener not up within 5s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        gate
    }

    /// `GET /readyz`: status and body.
    pub async fn readyz(&self) -> (u16, String) {
        admin::get(self.admin, "/readyz").await.expect("readyz")
    }

    pub async fn metrics(&self) -> Metrics {
        let (status, body) = admin::get(self.admin, "/metrics").await.expect("scrape");
        assert_eq!(status, 200, "/metrics status");
        Metrics(body)
    }
}

impl Drop for UnreadyGate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
