//! The README's first command: `hookgate demo` from the repository root prints a `curl` line,
//! and that exact line, run by a shell, delivers a signed webhook that the demo's echo upstream
//! verifies. Uses the fixed ports of `proxy.toml.example` (8443, 8080, 9901); every other test
//! binds ephemeral ports, so they cannot collide.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::tools::{repo_root, require_tool};

/// Kills the demo when the test ends, however it ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Both demos use the example's fixed ports: one at a time.
static FIXED_PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_curl_line_printed_by_demo_delivers_a_verified_signed_webhook() {
    demo(false);
}

/// `hookgate demo --store`: the same curl line gets 202 `stored`, the echo upstream refuses the
/// first two attempts, and the third delivers; every attempt's signature verifies.
#[test]
fn demo_store_accepts_while_the_app_fails_and_delivers_on_a_retry() {
    demo(true);
}

fn demo(store: bool) {
    let _ports = FIXED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("curl", "apt-get install -y curl");
    let mut args = vec!["demo"];
    if store {
        args.push("--store");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(&args)
        .current_dir(repo_root())
        .env_remove("HOOKGATE_HEADER_SECRET")
        .env_remove("HOOKGATE_DEVELOPER_PAYLOAD")
        .env_remove("HOOKGATE_SIGNING_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hookgate demo starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let _demo = Demo(child);

    // Everything the demo prints, line by line, from a reader thread.
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let wait_for = |seen: &mut Vec<String>, done: &dyn Fn(&[String]) -> bool, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "demo never printed {what}; it printed:\n{}",
                    seen.join("\n")
                ),
            }
        }
    };

    wait_for(
        &mut seen,
        &|s| s.iter().any(|l| l.contains("Ctrl-C stops the demo")),
        "its curl line",
    );
    let start = seen
        .iter()
        .position(|l| l.starts_with("curl "))
        .expect("a line starting with `curl `");
    let end = seen[start..]
        .iter()
        .position(|l| !l.trim_end().ends_with('\\'))
        .map(|i| start + i)
        .expect("the end of the curl command");
    let curl_line = seen[start..=end].join("\n");
    assert!(
        curl_line.contains("--cert certs/demo-client.pem"),
        "{curl_line}"
    );

    // Exactly what a reader pastes into a shell at the repository root.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{curl_line} -sS --max-time 10"))
        .current_dir(repo_root())
        .output()
        .expect("sh runs curl");
    let body = String::from_utf8_lossy(&out.stdout);
    let answer = if store {
        "\"stored\":true"
    } else {
        "\"received\":true"
    };
    assert!(
        out.status.success() && body.contains(answer),
        "curl failed: status {:?}, stdout {body}, stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let attempts = if store { 3 } else { 1 };
    wait_for(
        &mut seen,
        &|s| {
            s.iter()
                .filter(|l| l.trim_start().starts_with("body: "))
                .count()
                >= attempts
        },
        "the echo upstream's verdicts",
    );
    if store {
        for verdict in seen.iter().filter(|l| l.trim_start().starts_with("body: ")) {
            assert!(verdict.contains("signature: verified"), "{verdict}");
        }
        assert_eq!(
            seen.iter()
                .filter(|l| l.contains("answering 503 to attempt"))
                .count(),
            2,
            "{}",
            seen.join("\n")
        );
    }
    let verdict = seen
        .iter()
        .find(|l| l.trim_start().starts_with("body: "))
        .expect("verdict line");
    assert!(
        verdict.contains("Content-Digest: matches") && verdict.contains("signature: verified"),
        "the echo upstream must verify the signed request: {verdict}"
    );
    assert!(
        seen.iter().any(|l| l.contains("x-client-cert-sha256:")),
        "the echo upstream prints the identity headers:\n{}",
        seen.join("\n")
    );
}
