//! SPEC §9 durable delivery against the real binary: 202 only once stored, delivery with
//! retries and the attempt headers (signed), dead on a refusal, `Retry-After`, a full store,
//! and at least once across `kill -9` under concurrent load.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::upstream::Behavior;
use crate::support::*;

fn store_gate(up_url: &str, store: &Path) -> GateConfig {
    GateConfig::new(up_url)
        .remove("request.path_prefixes")
        .set("store.path", store.display().to_string())
        .set("store.retry_initial", "100ms")
        .set("store.retry_max", "400ms")
        .set("store.attempt_timeout", "2s")
        .set_toml(
            "routes",
            r#"[
  { name = "status", path_prefixes = ["/hooks/"], delivery = "store" },
  { name = "direct", path_prefixes = ["/direct/"] },
]"#,
        )
}

#[tokio::test]
async fn a_stored_request_is_answered_202_and_delivered_with_retries() {
    let dir = tempfile::tempdir().expect("dir");
    let up = Upstream::start();
    up.set_behavior(Behavior::respond(503, &[]));
    let gate = store_gate(&up.url, &dir.path().join("store")).start().await;
    let body = r#"{"status":0,"scannedDocument":{"scanId":"s1"}}"#;
    let reply = gate.post("/hooks/completed/s1?x=1", body, &[]).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let id = reply.request_id();
    assert_eq!(
        reply.json(),
        serde_json::json!({"stored": true, "request_id": id})
    );
    let log = gate
        .expect_log("the stored request", |v| {
            v["msg"] == "request" && v["request_id"] == id.as_str()
        })
        .await;
    assert_eq!(
        (&log["outcome"], &log["reason"], &log["route"]),
        (&"stored".into(), &"ok".into(), &"status".into())
    );
    gate.expect_metric(
        "hookgate_requests_total",
        &[("route", "status"), ("outcome", "stored"), ("reason", "ok")],
        1.0,
    )
    .await;
    // 503, 503, then 200: three attempts, numbered, with the original id and receive time.
    wait_for("two failed attempts", Duration::from_secs(5), || {
        up.requests().len() >= 2
    })
    .await;
    up.set_behavior(Behavior::default());
    wait_for("the delivery", Duration::from_secs(5), || {
        up.requests()
            .iter()
            .any(|r| r.header("hookgate-attempt") != "1" && up.requests().len() >= 3)
    })
    .await;
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "delivered")],
        1.0,
    )
    .await;
    let seen = up.requests();
    let attempts: Vec<&str> = seen.iter().map(|r| r.header("hookgate-attempt")).collect();
    assert_eq!(&attempts[..2], ["1", "2"]);
    let last = seen.last().expect("delivered");
    assert_eq!(last.target, "/hooks/completed/s1?x=1");
    assert_eq!(&last.body[..], body.as_bytes());
    assert_eq!(last.header("x-request-id"), id);
    assert_eq!(
        last.header("content-digest"),
        hookgate::content_digest(body.as_bytes())
    );
    assert!(seen
        .windows(2)
        .all(|w| w[0].header("hookgate-received-at") == w[1].header("hookgate-received-at")));
    let received = last.header("hookgate-received-at");
    assert!(
        received.ends_with('Z') && received.contains('T'),
        "{received}"
    );
    assert!(
        last.header("signature-input")
            .contains(r#""x-request-id" "hookgate-attempt" "hookgate-received-at");created="#),
        "{}",
        last.header("signature-input")
    );
    assert!(
        last.headers.get("x-webhook-secret").is_none(),
        "the required header is stripped"
    );
    assert!(
        gate.metrics().await.value(
            "hookgate_deliveries_total",
            &[("route", "status"), ("result", "retry")]
        ) >= Some(2.0)
    );
    // After delivery nothing more is sent.
    let n = up.requests().len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(up.requests().len(), n);
    // A forward route on the same gate still relays the upstream's answer.
    assert_eq!(gate.post("/direct/x", "{}", &[]).await.status, 200);
}

#[tokio::test]
async fn a_refusal_makes_it_dead_and_retry_after_is_honoured() {
    let dir = tempfile::tempdir().expect("dir");
    let up = Upstream::start();
    up.set_behavior(Behavior::respond(404, &[]));
    let gate = store_gate(&up.url, &dir.path().join("store"))
        .set("store.retry_max", "5s")
        .start()
        .await;
    assert_eq!(gate.post("/hooks/a", "{}", &[]).await.status, 202);
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "dead")],
        1.0,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(up.requests().len(), 1, "a dead request is not tried again");

    // 429 with Retry-After: 2 waits about 2 s, not the 100 ms backoff.
    up.set_behavior(Behavior::respond(429, &[("retry-after", "2")]));
    assert_eq!(gate.post("/hooks/b", "{}", &[]).await.status, 202);
    wait_for("the first attempt", Duration::from_secs(5), || {
        up.requests().len() >= 2
    })
    .await;
    let first = Instant::now();
    up.set_behavior(Behavior::default());
    wait_for("the retry", Duration::from_secs(5), || {
        up.requests().len() >= 3
    })
    .await;
    let waited = first.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "retried after {waited:?}"
    );
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "delivered")],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn a_full_store_answers_503_store_unavailable_and_never_2xx() {
    let dir = tempfile::tempdir().expect("dir");
    let up = Upstream::start();
    up.set_behavior(Behavior::respond(503, &[]));
    let gate = store_gate(&up.url, &dir.path().join("store"))
        .set("store.max_bytes", "20KiB")
        .start()
        .await;
    let big = "x".repeat(12 * 1024);
    assert_eq!(gate.post("/hooks/1", big.clone(), &[]).await.status, 202);
    let reply = gate.post("/hooks/2", big, &[]).await;
    reply.assert_error(503, "store_unavailable");
    assert_eq!(reply.headers["retry-after"], "30");
    gate.expect_metric(
        "hookgate_requests_total",
        &[
            ("route", "status"),
            ("outcome", "error"),
            ("reason", "store_unavailable"),
        ],
        1.0,
    )
    .await;
    let log = gate
        .expect_log("the refusal", |v| v["reason"] == "store_unavailable")
        .await;
    assert!(
        log["detail"].as_str().unwrap_or_default().contains("full"),
        "{log}"
    );
}

/// A real full disk, not `max_bytes`: the store on a 1 MiB tmpfs fills up. Every request is
/// answered 202 or 503 `store_unavailable` (never a 2xx it could not store), `/readyz` fails,
/// and every request that got its 202 is delivered, byte-identical, once the app takes them.
/// Needs root (to mount); skipped with a message otherwise (`.ci/run` runs as root).
#[tokio::test]
async fn a_full_disk_answers_503_and_what_was_acknowledged_is_delivered() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "hookgate-test",
            &disk.display().to_string(),
        ])
        .status()
        .expect("mount");
    assert!(mounted.success(), "mount -t tmpfs failed");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(disk.clone());
    let up = Upstream::start();
    up.set_behavior(Behavior::respond(503, &[]));
    let gate = store_gate(&up.url, &disk.join("store")).start().await;
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..64 {
        let body = format!("{i:04}").repeat(16 * 1024); // 64 KiB, each distinct
        let reply = gate.post(&format!("/hooks/{i}"), body.clone(), &[]).await;
        match reply.status.as_u16() {
            202 => acked.push((reply.request_id(), body)),
            _ => {
                reply.assert_error(503, "store_unavailable");
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
        }
    }
    assert!(
        refused > 0,
        "1 MiB never filled up ({} acknowledged)",
        acked.len()
    );
    assert!(!acked.is_empty(), "nothing was stored at all");
    let (status, body) = admin::get(gate.admin(), "/readyz").await.expect("readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("store"), "{body}");
    up.set_behavior(Behavior::default());
    wait_for(
        "every acknowledged request delivered",
        Duration::from_secs(20),
        || {
            let got = up.requests();
            acked.iter().all(|(id, body)| {
                got.iter()
                    .any(|r| r.header("x-request-id") == id && r.body == body.as_bytes())
            })
        },
    )
    .await;
}

#[tokio::test]
async fn an_unwritable_store_directory_fails_check_and_start() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let up = Upstream::start();
    let text = store_gate(&up.url, &file.join("store")).to_toml();
    let env = [
        ("HOOKGATE_HEADER_SECRET", HEADER_SECRET),
        ("HOOKGATE_SIGNING_KEY", &hookgate::signing_key_b64()),
    ];
    let out = crate::support::hookgate::check(dir.path(), &text, &env);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("store.path") && out.stderr.contains("not-a-dir"),
        "{}",
        out.stderr
    );
}

/// `check` says where the store is and which routes store (and how they deduplicate).
#[test]
fn check_prints_the_store_and_each_routes_delivery() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    let text = store_gate("http://127.0.0.1:9", &store)
        .set_toml(
            "routes",
            r#"[
  { name = "status", path_prefixes = ["/hooks/"], delivery = "store", dedup = "/scan/id", dedup_window = "1h" },
  { name = "direct", path_prefixes = ["/direct/"] },
]"#,
        )
        .to_toml();
    let env = [
        ("HOOKGATE_HEADER_SECRET", HEADER_SECRET),
        ("HOOKGATE_SIGNING_KEY", &hookgate::signing_key_b64()),
    ];
    let out = crate::support::hookgate::check(dir.path(), &text, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for line in [
        format!("store: embedded (SQLite) in {}; at most 1073741824 bytes; 16 attempts at once, each within 2s; retries from 100ms to 400ms, dead after 259200s; delivered kept 86400s", store.display()),
        "  delivery: store (202 once durable, then delivered with retries), deduplicated by the JSON pointer /scan/id within 3600s".to_owned(),
        "  delivery: forward (the upstream's answer is relayed)".to_owned(),
    ] {
        assert!(out.stdout.contains(&line), "missing {line:?} in:\n{}", out.stdout);
    }
}

/// At least once across `kill -9`: under concurrent load the process is killed at a random
/// moment; after a restart on the same store every request that got its 202 arrives, body
/// byte-identical. Repeated `HOOKGATE_CRASH_RUNS` times (default 20).
#[tokio::test]
async fn every_acknowledged_request_survives_kill_9() {
    let runs: usize = std::env::var("HOOKGATE_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut acked = 0;
    for run in 0..runs {
        acked += crash_once(run).await;
    }
    // Not vacuous: the kills came while requests were being acknowledged.
    assert!(
        acked >= runs * 2,
        "only {acked} requests acknowledged in {runs} runs"
    );
}

async fn crash_once(run: usize) -> usize {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    let up = Upstream::start();
    // The upstream refuses at first, so requests pile up in the store when the kill comes.
    up.set_behavior(Behavior::respond(503, &[]));
    let gate = store_gate(&up.url, &store).start().await;
    let addr = gate.addr;
    let mut senders = Vec::new();
    for client in 0..4 {
        let tls = gate.client();
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..200 {
                let body = format!(
                    "{{\"run\":{run},\"client\":{client},\"i\":{i},\"pad\":\"{}\"}}",
                    "p".repeat(i * 7 % 500)
                );
                let Ok(conn) = tls.connect(addr).await else {
                    break;
                };
                let mut h1 = client::H1::over(conn).await;
                let req = client::request(
                    "POST",
                    &format!("/hooks/{client}/{i}"),
                    &[(HEADER_NAME, HEADER_SECRET)],
                    body.clone(),
                );
                match tokio::time::timeout(Duration::from_secs(3), h1.try_send(req)).await {
                    Ok(Some(reply)) if reply.status == 202 => {
                        acked.push((reply.request_id(), body))
                    }
                    _ => break,
                }
            }
            acked
        }));
    }
    // Kill at a pseudo-random moment in the first half second of the load.
    let delay = 120 + (run as u64 * 37) % 450;
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let mut gate = gate;
    gate.signal("KILL");
    let _ = gate.wait_exit(Duration::from_secs(5)).await;
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.expect("sender"));
    }
    // Restart on the same store with a working upstream: everything acknowledged arrives.
    up.set_behavior(Behavior::default());
    let restarted = store_gate(&up.url, &store).start().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = up.requests();
        let delivered: std::collections::HashMap<&str, &[u8]> = seen
            .iter()
            .filter(|r| r.headers.get("x-request-id").is_some())
            .map(|r| (r.header("x-request-id"), &r.body[..]))
            .collect();
        let missing: Vec<&String> = acked
            .iter()
            .filter(|(id, _)| !delivered.contains_key(id.as_str()))
            .map(|(id, _)| id)
            .collect();
        if missing.is_empty() {
            // Every attempt of every acknowledged request carried its body unchanged.
            for (id, body) in &acked {
                for got in seen.iter().filter(|r| r.header("x-request-id") == id) {
                    assert_eq!(&got.body[..], body.as_bytes(), "run {run}: body of {id}");
                }
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "run {run}: {} of {} acknowledged requests never arrived (killed after {delay} ms)",
            missing.len(),
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "crash run {run}: killed after {delay} ms, {} acknowledged, all delivered",
        acked.len()
    );
    drop(restarted);
    acked.len()
}

/// The attempt's signature (with `hookgate-attempt` and `hookgate-received-at`) verifies in the
/// README's Python verifier on the off-the-shelf RFC 9421 library: the verifying upstream
/// answers 401 to anything else, which would make the request dead.
#[tokio::test]
async fn a_delivery_from_the_store_verifies_in_the_python_verifier() {
    let dir = tempfile::tempdir().expect("dir");
    let py = tools::PyVerifier::start(&hookgate::signing_key_b64(), "hookgate-1");
    let gate = store_gate(&py.url, &dir.path().join("store")).start().await;
    let reply = gate.post("/hooks/verified?scan=1", r#"{"a":1}"#, &[]).await;
    assert_eq!(reply.status, 202);
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "delivered")],
        1.0,
    )
    .await;
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "dead")],
        0.0,
    )
    .await;
}

/// One plain HTTP/1.1 call to the admin listener: `(status, body)`.
async fn admin_call(gate: &Gate, method: &str, target: &str, token: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(gate.admin())
        .await
        .expect("admin");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!("{method} {target} HTTP/1.1\r\nHost: admin\r\n{auth}Connection: close\r\nContent-Length: 0\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut raw))
        .await
        .expect("admin answers")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

const TOKEN: &str = "admin-t0ken-for-tests";

fn hookgate_cli(gate: &Gate, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(args)
        .arg("--config")
        .arg(gate.config_path())
        .env("HOOKGATE_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("run hookgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_store_api_and_cli_list_retry_and_purge() {
    let dir = tempfile::tempdir().expect("dir");
    let up = Upstream::start();
    up.set_behavior(Behavior::respond(410, &[]));
    // Without admin.token the API does not exist.
    let plain = store_gate(&up.url, &dir.path().join("plain")).start().await;
    assert_eq!(
        admin_call(&plain, "GET", "/store", Some(TOKEN)).await.0,
        404
    );
    drop(plain);

    let gate = store_gate(&up.url, &dir.path().join("store"))
        .set_toml("admin.token", r#"{ env = "HOOKGATE_ADMIN_TOKEN" }"#)
        .env("HOOKGATE_ADMIN_TOKEN", TOKEN)
        .start()
        .await;
    let id = gate.post("/hooks/gone?q=1", "{}", &[]).await.request_id();
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "dead")],
        1.0,
    )
    .await;
    for token in [None, Some("wrong")] {
        assert_eq!(
            admin_call(&gate, "GET", "/store", token).await.0,
            401,
            "{token:?}"
        );
    }
    let (status, body) = admin_call(
        &gate,
        "GET",
        "/store?state=dead&route=status&limit=5",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rows: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let row = &rows[0];
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(
        (&row["request_id"], &row["state"], &row["attempts"]),
        (&id.as_str().into(), &"dead".into(), &1.into())
    );
    assert_eq!(
        (&row["route"], &row["method"], &row["path"]),
        (&"status".into(), &"POST".into(), &"/hooks/gone".into())
    );
    assert_eq!(row["body_bytes"], 2);
    assert!(
        row["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("410"),
        "{row}"
    );
    for key in ["received_at", "next_attempt_at"] {
        assert!(row.get(key).is_some(), "{key} in {row}");
    }
    assert_eq!(
        admin_call(&gate, "GET", "/store?state=odd", Some(TOKEN))
            .await
            .0,
        400
    );

    // CLI: list shows it; retry --dead delivers it once the app accepts.
    let (code, out, err) = hookgate_cli(&gate, &["store", "list", "--state", "dead"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("REQUEST_ID") && out.contains(&id) && out.contains("dead"),
        "{out}"
    );
    up.set_behavior(Behavior::default());
    let (code, out, err) = hookgate_cli(&gate, &["store", "retry", "--dead"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id) && out.contains("pending again"), "{out}");
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "delivered")],
        1.0,
    )
    .await;
    assert_eq!(
        up.requests()
            .last()
            .expect("delivered")
            .header("hookgate-attempt"),
        "2"
    );
    // A pending one cannot be retried (409); a delivered one can, through the API.
    let (status, _) = admin_call(&gate, "POST", &format!("/store/{id}/retry"), Some(TOKEN)).await;
    assert_eq!(status, 200);
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "delivered")],
        2.0,
    )
    .await;
    // Purge removes it; a second purge finds nothing.
    let (code, out, err) = hookgate_cli(&gate, &["store", "purge", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed"), "{out}");
    let (code, out, _) = hookgate_cli(&gate, &["store", "purge", &id]);
    assert_eq!(code, 1);
    assert!(out.contains("404"), "{out}");
    assert_eq!(
        admin_call(&gate, "DELETE", &format!("/store/{id}"), Some(TOKEN))
            .await
            .0,
        404
    );
    let (_, body) = admin_call(&gate, "GET", "/store", Some(TOKEN)).await;
    assert_eq!(body, "[]");
}

#[tokio::test]
async fn a_duplicate_within_the_window_is_answered_but_not_stored_again() {
    let dir = tempfile::tempdir().expect("dir");
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .remove("request.path_prefixes")
        .set("store.path", dir.path().join("store").display().to_string())
        .set_toml(
            "routes",
            r#"[
  { name = "body", path_prefixes = ["/b/"], delivery = "store", dedup = "body" },
  { name = "scan", path_prefixes = ["/s/"], delivery = "store", dedup = "/scannedDocument/scanId", dedup_window = "1h" },
  { name = "path", path_prefixes = ["/p/"], delivery = "store", dedup = "path" },
]"#,
        )
        .start()
        .await;
    let first = gate.post("/b/1", r#"{"x":1}"#, &[]).await;
    let again = gate.post("/b/2", r#"{"x":1}"#, &[]).await;
    assert_eq!((first.status.as_u16(), again.status.as_u16()), (202, 202));
    assert_eq!(
        again.json(),
        serde_json::json!({"stored": true, "request_id": again.request_id(), "duplicate_of": first.request_id()})
    );
    gate.expect_metric(
        "hookgate_requests_total",
        &[
            ("route", "body"),
            ("outcome", "stored"),
            ("reason", "duplicate"),
        ],
        1.0,
    )
    .await;
    // The pointer: the same scanId is a duplicate, another one or none is stored.
    let scan = |id: &str| format!(r#"{{"scannedDocument":{{"scanId":"{id}"}}}}"#);
    assert_eq!(gate.post("/s/a", scan("42"), &[]).await.status, 202);
    assert!(gate
        .post("/s/b", scan("42"), &[])
        .await
        .json()
        .get("duplicate_of")
        .is_some());
    assert!(gate
        .post("/s/c", scan("43"), &[])
        .await
        .json()
        .get("duplicate_of")
        .is_none());
    assert!(gate
        .post("/s/d", "{}", &[])
        .await
        .json()
        .get("duplicate_of")
        .is_none());
    assert!(gate
        .post("/s/e", "{}", &[])
        .await
        .json()
        .get("duplicate_of")
        .is_none());
    // The path, normalized: another spelling of it is the same key.
    assert_eq!(gate.post("/p/x", "{}", &[]).await.status, 202);
    assert!(gate
        .post("/P//x", "{}", &[])
        .await
        .json()
        .get("duplicate_of")
        .is_some());
    // What was stored is delivered once each: body 1, scan 42, 43, two without it, path 1.
    wait_for("six deliveries", Duration::from_secs(10), || {
        up.requests().len() >= 6
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(up.requests().len(), 6);
}
