//! SPEC §1: `--log-format text` overrides `[log] format`; `hookgate check` exits 1 naming
//! file:line and key on a bad config, and 0 with `warning:` lines for inline secrets.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::hookgate::free_port;
use crate::support::*;

/// Kills the child on drop, so a failing test leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn log_format_text_on_the_command_line_overrides_json_in_the_config() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = GateConfig::new(&up.url)
        .set("listen.address", free_port().to_string())
        .set("admin.address", free_port().to_string());
    let (path, mut cmd) = config.prepare(dir.path());
    let mut child = Running(
        cmd.args(["run", "--log-format", "text", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn hookgate"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    // The first line is the start-up `listening` event, in text form.
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(15), first)
        .await
        .expect("a log line within 15s")
        .expect("reader task")
        .expect("read stdout");
    assert!(line.contains("listening"), "first line: {line:?}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&line).is_err(),
        "--log-format text must not print JSON: {line:?}"
    );
}

#[test]
fn check_exits_1_naming_file_line_and_key_of_a_bad_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = GateConfig::new("http://127.0.0.1:9").set("listen.max_connections", "many");
    let (path, mut cmd) = config.prepare(dir.path());
    let text = std::fs::read_to_string(&path).expect("read config");
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("max_connections"))
        .expect("the bad key is in the file");
    let out = cmd
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run hookgate check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let want = format!("{}:{line}: listen.max_connections", path.display());
    assert!(stderr.contains(&want), "want {want:?} in: {stderr}");
}

#[test]
fn check_exits_0_with_warning_lines_for_inline_secrets() {
    const INLINE_HEADER: &str = "inline-header-secret-3b6c";
    let dir = tempfile::tempdir().expect("tempdir");
    let config = GateConfig::new("http://127.0.0.1:9")
        .set("required_header.values", vec![INLINE_HEADER])
        .set("identity.key", crate::support::hookgate::signing_key_b64());
    let (path, mut cmd) = config.prepare(dir.path());
    let out = cmd
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run hookgate check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert!(
        warnings.len() >= 2,
        "a warning per inline secret (header value, signing key): {stderr}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("required_header"))
            && warnings.iter().any(|w| w.contains("identity")),
        "the warnings name the keys: {stderr}"
    );
    assert!(stdout.contains("OK"), "summary on stdout: {stdout}");
    for secret in [INLINE_HEADER, &crate::support::hookgate::signing_key_b64()] {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "check printed a secret value"
        );
    }
}
