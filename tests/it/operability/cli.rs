//! SPEC §1: `--log-format text` overrides `[log] format`; `hookgate check` exits 1 naming
//! file:line and key on a bad config, and 0 with `warning:` lines for inline secrets.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

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
    // hookgate binds its own listener here (no socket activation): any free port, no admin.
    let config = GateConfig::new(&up.url)
        .set("listen.address", "127.0.0.1:0")
        .set("admin.address", "");
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

/// `check` and `run` apply one set of rules: every bad value `check` refuses, `run` refuses at
/// start with the same `error:` line (and exit 1), before listening.
#[test]
fn check_and_run_refuse_the_same_bad_values_with_the_same_error() {
    type Bad = fn(GateConfig) -> GateConfig;
    let cases: [(&str, Bad); 9] = [
        ("log.level", |c| c.set("log.level", "inof")),
        ("log.format", |c| c.set("log.format", "yaml")),
        ("listen.max_connections", |c| {
            c.set("listen.max_connections", "many")
        }),
        ("listen.address", |c| c.set("listen.address", "nowhere:x")),
        ("required_header.values", |c| {
            c.set_toml(
                "required_header.values",
                r#"[{ env = "HOOKGATE_NOT_SET" }]"#,
            )
        }),
        ("identity.key", |c| {
            c.set_toml("identity.key", r#"{ env = "HOOKGATE_BAD_KEY" }"#)
                .env("HOOKGATE_BAD_KEY", "not base64!")
        }),
        ("tls.cert", |c| c.set("tls.cert", "missing.pem")),
        ("upstream.url", |c| {
            c.set("upstream.url", "ftp://example.com/")
        }),
        ("thumbprints.allow", |c| {
            c.set("thumbprints.allow", vec!["zz"])
        }),
    ];
    for (key, bad) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let config =
            bad(GateConfig::new("http://127.0.0.1:9").set("listen.address", "127.0.0.1:0"));
        let (path, mut check) = config.prepare(dir.path());
        let checked = check
            .arg("check")
            .arg("--config")
            .arg(&path)
            .output()
            .expect("run hookgate check");
        let (_, mut run) = config.prepare(dir.path());
        let mut child = Running(
            run.arg("run")
                .arg("--config")
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn hookgate run"),
        );
        let stderr = child.0.stderr.take().expect("stderr");
        let ran = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text).map(|_| text)
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait") {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{key}: `run` kept running on a config `check` refuses"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let ran = ran.join().expect("reader").expect("read stderr");
        let first_error = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("error:"))
                .map(str::to_owned)
        };
        let check_stderr = String::from_utf8_lossy(&checked.stderr).into_owned();
        assert_eq!(
            checked.status.code(),
            Some(1),
            "{key}: check: {check_stderr}"
        );
        assert_eq!(status.code(), Some(1), "{key}: run: {ran}");
        let error = first_error(&check_stderr);
        assert!(
            error.as_deref().is_some_and(|e| e.contains(key)),
            "{key}: check's error names the key: {check_stderr}"
        );
        assert_eq!(first_error(&ran), error, "{key}: run and check disagree");
    }
}
