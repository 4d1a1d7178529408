//! External programs the suite needs: `curl`, `python3` with the packages of
//! `tests/py/requirements.txt`, and the Python verifying upstream. A missing tool FAILS the test
//! with the command that installs it (CI must not silently skip the proof).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::hookgate::{Gate, Output, HEADER_NAME, HEADER_SECRET};

/// Panics unless `program --version` runs; `install` says how to get it.
pub fn require_tool(program: &str, install: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "`{program}` is required by this test but was not found or does not run; install it: {install}");
}

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Panics unless python3 can import the verifier's dependencies.
pub fn require_python_verifier() {
    require_tool("python3", "apt-get install -y python3 python3-pip");
    let out = Command::new("python3")
        .args(["-c", "import http_message_signatures, http_sf"])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 lacks the RFC 9421 verifier packages ({}); install them: pip install -r tests/py/requirements.txt",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// `tests/py/verifying_upstream.py` as a child process; killed on drop.
pub struct PyVerifier {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub stderr: Output,
}

impl PyVerifier {
    /// Starts it with this base64 key under `key_id` and waits for its `PORT n` line.
    pub fn start(key_b64: &str, key_id: &str) -> PyVerifier {
        require_python_verifier();
        let script = repo_root().join("tests/py/verifying_upstream.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--port", "0", "--key-id", key_id, "--exit-on-stdin-eof"])
            .env("HOOKGATE_SIGNING_KEY", key_b64)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3 verifying_upstream.py");
        let (port, stderr) = read_port(&mut child, "verifying upstream");
        PyVerifier {
            child,
            url: format!("http://127.0.0.1:{port}"),
            stderr,
        }
    }
}

impl Drop for PyVerifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `curl` reported.
#[derive(Debug)]
pub struct CurlReply {
    pub status: u16,
    /// `%{http_version}`: "1.1" or "2".
    pub http_version: String,
    pub body: String,
    /// The raw response head(s) curl dumped.
    pub head: String,
}

/// Runs the real `curl` against the gate as the pinned client with the required header:
/// `curl -sS [extra...] --cacert ca.pem --cert client.pem --key client.key ... https://localhost:PORT{path}`
/// (`localhost` resolved to 127.0.0.1). Blocking; the upstreams run on their own threads.
pub fn curl(gate: &Gate, path: &str, data: &str, extra: &[&str]) -> CurlReply {
    require_tool("curl", "apt-get install -y curl");
    let dir = gate.dir();
    let head_file = dir.join(format!("curl-head-{}", std::process::id()));
    let port = gate.addr.port();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(extra)
        .arg("--cacert")
        .arg(dir.join("ca.pem"))
        .arg("--cert")
        .arg(dir.join("client.pem"))
        .arg("--key")
        .arg(dir.join("client.key"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["-H", &format!("{HEADER_NAME}: {HEADER_SECRET}")])
        .args(["-H", "Content-Type: application/json"])
        .args(["--data-binary", data])
        .arg("-D")
        .arg(&head_file)
        .args(["-w", "\n%{http_code} %{http_version}"])
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        stdout
    );
    let (body, tail) = stdout.rsplit_once('\n').expect("-w line");
    let (status, version) = tail.split_once(' ').expect("status and version");
    CurlReply {
        status: status.parse().expect("numeric status"),
        http_version: version.to_owned(),
        body: body.to_owned(),
        head: std::fs::read_to_string(Path::new(&head_file)).unwrap_or_default(),
    }
}

/// An app upstream with its own router (`tests/py/router_upstream.py` on Flask, or
/// `tests/node/router.js` on Express): it answers with the name of the handler that ran.
/// Killed on drop.
pub struct RouterUpstream {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub stderr: Output,
}

impl RouterUpstream {
    /// The Flask app (`pip install -r tests/py/requirements.txt`).
    pub fn python() -> RouterUpstream {
        require_tool("python3", "apt-get install -y python3 python3-pip");
        RouterUpstream::spawn("python3", &repo_root().join("tests/py/router_upstream.py"))
    }

    /// The Express app (`npm ci --prefix tests/node`).
    pub fn node() -> RouterUpstream {
        require_tool("node", "apt-get install -y nodejs npm");
        let dir = repo_root().join("tests/node");
        assert!(
            dir.join("node_modules/express").is_dir(),
            "Express is not installed for the route test; run: npm ci --prefix tests/node"
        );
        RouterUpstream::spawn("node", &dir.join("router.js"))
    }

    fn spawn(program: &str, script: &Path) -> RouterUpstream {
        let mut child = Command::new(program)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program} {}: {e}", script.display()));
        let (port, stderr) = read_port(&mut child, &script.display().to_string());
        RouterUpstream {
            child,
            url: format!("http://127.0.0.1:{port}"),
            stderr,
        }
    }
}

impl Drop for RouterUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the `PORT n` line a test server child prints first; its stderr is collected.
fn read_port(child: &mut Child, what: &str) -> (u16, Output) {
    let stderr = Output::collect(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read PORT line");
    let port = first
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "{what} did not print `PORT n` (got {first:?}); stderr: {}",
                stderr.text()
            )
        });
    (port, stderr)
}
