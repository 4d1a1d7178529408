//! Faults the gate must ride out, against the real binary: many large bodies at once in a small
//! `max_buffered`, a secret on a FIFO during a reload (and in `check`), an emptied list file, a
//! drain with requests and slow streams in flight, too few file descriptors, a body trickling past
//! `body_timeout`, a start from a stale cache, a slow PROXY header before a stalled handshake, and
//! a pinned certificate carrying a critical extension nobody understands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::operability::{edit_config, eventually, reloads};
use crate::support::admin::{self, Metrics};
use crate::support::list_server::{ListReply, ListServer};
use crate::support::pki::Identity;
use crate::support::proxy;

/// `len` bytes that differ by position and by `seed`, so a reordered, truncated or mixed-up
/// body cannot pass for the one sent.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|n| ((n * 7 + seed * 13) % 251) as u8)
        .collect()
}

/// The head of a raw HTTP/1.1 POST with the required header and these extra header lines.
fn post_head(path: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\n{extra}\r\n\r\n"
    )
}

/// The upstream's requests keyed by target, in target order.
fn by_target(up: &Upstream) -> Vec<crate::support::upstream::Recorded> {
    let mut all = up.requests();
    all.sort_by(|a, b| a.target.cmp(&b.target));
    all
}

// ---- 1. Whole-body admission to request.max_buffered ------------------------------------

#[tokio::test]
async fn eight_concurrent_4mb_bodies_with_content_length_all_pass_an_8mib_budget_in_turn() {
    const LEN: usize = 4_000_000;
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.header_timeout", "10s")
        .set("request.max_body", "4MiB")
        .set("request.max_buffered", "8MiB")
        .start()
        .await;
    let mut conns = Vec::new();
    for _ in 0..8 {
        conns.push(gate.h1().await);
    }
    let started = Instant::now();
    let uploads: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut h1)| {
            let body = bytes::Bytes::from(pattern(LEN, i));
            tokio::spawn(async move {
                let req = request(
                    "POST",
                    &format!("/upload/{i}"),
                    &[(HEADER_NAME, HEADER_SECRET)],
                    body,
                );
                let reply = tokio::time::timeout(Duration::from_secs(30), h1.send(req))
                    .await
                    .expect("every upload is answered within 30 s");
                (reply, started.elapsed())
            })
        })
        .collect();
    for (i, upload) in uploads.into_iter().enumerate() {
        let (reply, took) = upload.await.expect("upload task");
        assert_eq!(
            reply.status,
            200,
            "upload {i} after {took:?}: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "whole bodies are admitted in turn, not after waiting out header_timeout: {took:?}"
    );
    let seen = by_target(&up);
    assert_eq!(seen.len(), 8, "the upstream saw every upload");
    for (i, r) in seen.iter().enumerate() {
        assert_eq!(r.target, format!("/upload/{i}"));
        assert!(
            r.body[..] == pattern(LEN, i)[..],
            "upload {i} reached the upstream altered ({} bytes)",
            r.body.len()
        );
    }
    gate.expect_requests("forwarded", "ok", 8.0).await;
    gate.expect_requests("error", "timeout", 0.0).await;
}

#[tokio::test]
async fn two_concurrent_chunked_3mb_bodies_grow_one_at_a_time_in_a_4mib_budget() {
    const LEN: usize = 3_000_000;
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.header_timeout", "10s")
        .set("request.max_body", "4MiB")
        .set("request.max_buffered", "4MiB")
        .start()
        .await;
    let mut conns = Vec::new();
    for _ in 0..2 {
        conns.push(connect(&gate).await);
    }
    // Both send half of their body, pause, then the rest: if both could grow at once, each
    // would hold about half of the budget and wait forever for the other's room.
    let started = Instant::now();
    let resume = started + Duration::from_millis(500);
    let mut uploads = Vec::new();
    for (i, mut tls) in conns.into_iter().enumerate() {
        let mut wire =
            post_head(&format!("/chunked/{i}"), "Transfer-Encoding: chunked").into_bytes();
        for chunk in pattern(LEN, i).chunks(64 * 1024) {
            wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        uploads.push(tokio::spawn(async move {
            let (first, rest) = wire.split_at(wire.len() / 2);
            tls.write_all(first).await.expect("first half");
            tls.flush().await.expect("flush");
            tokio::time::sleep_until(resume.into()).await;
            let reply = client::raw_exchange(&mut tls, rest, Duration::from_secs(25)).await;
            (reply, started.elapsed())
        }));
    }
    for (i, upload) in uploads.into_iter().enumerate() {
        let (reply, took) = upload.await.expect("upload task");
        let resp = reply.expect_response();
        assert_eq!(
            resp.status,
            200,
            "chunked upload {i} after {took:?}: {:?}",
            String::from_utf8_lossy(&resp.body)
        );
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "both undeclared bodies done: {took:?}"
    );
    let seen = by_target(&up);
    assert_eq!(seen.len(), 2);
    for (i, r) in seen.iter().enumerate() {
        assert_eq!(r.target, format!("/chunked/{i}"));
        assert!(
            r.body[..] == pattern(LEN, i)[..],
            "chunked upload {i} reached the upstream altered ({} bytes)",
            r.body.len()
        );
        assert_eq!(r.header("content-length"), LEN.to_string());
        assert!(r.headers.get("transfer-encoding").is_none());
    }
    gate.expect_requests("forwarded", "ok", 2.0).await;
}

// ---- 2. A secret on a FIFO: reload and check are bounded --------------------------------

/// Creates a FIFO at `path`; nobody ever writes it, so a read of it blocks forever.
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo (coreutils)");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// `[{ file = "NAME" }]`, a secret list read from one file.
fn file_secret(name: &str) -> toml::Value {
    toml::Value::Array(vec![toml::Value::Table(
        [("file".to_owned(), name.into())].into_iter().collect(),
    )])
}

/// A gate whose required header comes from the regular file `header.secret`.
fn with_file_secret(up: &Upstream) -> GateConfig {
    GateConfig::new(&up.url)
        .file("header.secret", format!("{HEADER_SECRET}\n"))
        .set_toml("required_header.values", r#"[{ file = "header.secret" }]"#)
}

/// Points the running gate's required header at a FIFO nobody writes and sends SIGHUP; returns
/// the FIFO's path and when the signal was sent.
fn reload_onto_a_fifo(gate: &Gate) -> (PathBuf, Instant) {
    let fifo = gate.dir().join("hang.secret");
    mkfifo(&fifo);
    edit_config(
        gate,
        &[("required_header.values", file_secret("hang.secret"))],
    );
    let sent = Instant::now();
    gate.signal("HUP");
    (fifo, sent)
}

/// `env`: extra environment for the hookgate process (e.g. a single runtime worker).
async fn a_reload_stuck_on_a_fifo_fails_by_name_while_everything_keeps_serving(
    env: &[(&str, &str)],
) {
    let up = Upstream::start();
    let mut config = with_file_secret(&up);
    for (k, v) in env {
        config = config.env(k, v);
    }
    let gate = config.start().await;
    assert_eq!(gate.post("/before", "{}", &[]).await.status, 200);
    let (fifo, sent) = reload_onto_a_fifo(&gate);

    // During the hang: the load is still blocked in the FIFO's open, and nothing else is.
    tokio::time::sleep_until((sent + Duration::from_secs(2)).into()).await;
    assert_eq!(reloads(&gate, "failure").await, 0.0, "still loading");
    assert_eq!(reloads(&gate, "success").await, 0.0);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let asked = Instant::now();
        let (status, _) = admin::get(gate.admin(), path).await.expect(path);
        assert_eq!(status, 200, "{path} during the stuck reload");
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{path} answered slowly"
        );
    }
    let asked = Instant::now();
    let during = tokio::time::timeout(Duration::from_secs(3), gate.post("/during", "{}", &[]))
        .await
        .expect("a request is served during the stuck reload");
    assert_eq!(during.status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert!(up.requests().iter().any(|r| r.target == "/during"));

    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "failure")],
        1.0,
        Duration::from_secs(12).saturating_sub(sent.elapsed()),
    )
    .await;
    let took = sent.elapsed();
    assert!(took >= Duration::from_secs(9), "failed after {took:?}");
    assert_eq!(reloads(&gate, "failure").await, 1.0);
    assert_eq!(reloads(&gate, "success").await, 0.0);
    let fifo_name = fifo.display().to_string();
    let line = gate
        .expect_log("the stuck reload", |v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("reload failed"))
        })
        .await;
    let error = line["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&fifo_name) && error.contains("did not finish within"),
        "the failure names the FIFO: {line}"
    );
    // The previous config (its header secret) keeps serving.
    assert_eq!(gate.post("/after", "{}", &[]).await.status, 200);
    // The stuck read does not wedge later reloads: pointing back at a regular file applies.
    edit_config(
        &gate,
        &[("required_header.values", file_secret("header.secret"))],
    );
    gate.signal("HUP");
    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "success")],
        1.0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(gate.post("/recovered", "{}", &[]).await.status, 200);
}

#[tokio::test]
async fn a_reload_stuck_on_a_fifo_secret_fails_by_name_while_admin_and_requests_are_served() {
    a_reload_stuck_on_a_fifo_fails_by_name_while_everything_keeps_serving(&[]).await;
}

#[tokio::test]
async fn a_reload_stuck_on_a_fifo_secret_does_not_stall_a_single_worker_runtime() {
    a_reload_stuck_on_a_fifo_fails_by_name_while_everything_keeps_serving(&[(
        "TOKIO_WORKER_THREADS",
        "1",
    )])
    .await;
}

#[tokio::test]
async fn sigterm_during_a_reload_stuck_on_a_fifo_still_exits_0() {
    let up = Upstream::start();
    let mut gate = with_file_secret(&up).start().await;
    let (fifo, sent) = reload_onto_a_fifo(&gate);
    tokio::time::sleep_until((sent + Duration::from_secs(1)).into()).await;
    let term = Instant::now();
    gate.signal("TERM");
    let status = gate.wait_exit(Duration::from_secs(5)).await;
    let stopped = gate.stdout.find_json(|v| v["msg"] == "stopped").is_some();
    let Some(status) = status else {
        // Evidence: feed the FIFO (on a thread of its own: opening it blocks if nobody reads).
        std::thread::spawn(move || std::fs::write(fifo, b"x"));
        let after = gate.wait_exit(Duration::from_secs(3)).await;
        panic!(
            "still running 5 s after SIGTERM (`stopped` logged: {stopped}); once a byte was \
             written to the FIFO: {after:?}"
        );
    };
    assert_eq!(status.code(), Some(0), "{}", gate.stderr.text());
    assert!(
        term.elapsed() < Duration::from_secs(3),
        "{:?}",
        term.elapsed()
    );
}

/// Waits for `child` to exit (polling), killing it after `within`.
fn wait_or_kill(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn check_exits_1_naming_a_fifo_secret_it_cannot_finish_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = GateConfig::new("http://127.0.0.1:9")
        .set_toml("required_header.values", r#"[{ file = "hang.secret" }]"#);
    let (path, mut cmd) = config.prepare(dir.path());
    let fifo = dir.path().join("hang.secret");
    mkfifo(&fifo);
    let started = Instant::now();
    let mut child = cmd
        .arg("check")
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hookgate check");
    let status = wait_or_kill(&mut child, Duration::from_secs(15));
    let took = started.elapsed();
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = status.unwrap_or_else(|| panic!("check still running after 15 s: {stderr}"));
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(took < Duration::from_secs(12), "check took {took:?}");
    assert!(
        stderr.contains(&fifo.display().to_string()) && stderr.contains("did not finish within"),
        "stderr names the FIFO: {stderr}"
    );
}

// ---- 3. An emptied list file -------------------------------------------------------------

#[tokio::test]
async fn a_list_file_truncated_in_place_is_a_failed_reload_and_the_old_pins_serve_on() {
    let pki = Pki::get();
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .remove("thumbprints.allow")
        .set("thumbprints.files", vec!["pins.txt"])
        .file("pins.txt", format!("{}\n", pki.client.sha256_hex()))
        .start()
        .await;
    assert_eq!(gate.post("/before", "{}", &[]).await.status, 200);

    // In place: same inode, now empty.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(gate.dir().join("pins.txt"))
        .expect("truncate pins.txt");
    let took = eventually("a failed reload", Duration::from_secs(10), || async {
        reloads(&gate, "failure").await >= 1.0
    })
    .await;
    let line = gate
        .expect_log("the refused reload", |v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("reload failed"))
        })
        .await;
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains("pins.txt")),
        "the log names the file (after {took:?}): {line}"
    );
    assert_eq!(reloads(&gate, "success").await, 0.0);
    assert_eq!(gate.post("/after", "{}", &[]).await.status, 200);
    let (status, body) = admin::get(gate.admin(), "/readyz").await.expect("readyz");
    assert_eq!(status, 200, "{body}");
    gate.expect_metric(
        "hookgate_allowlist_entries",
        &[("list", "thumbprints")],
        1.0,
    )
    .await;
    // One failure, not one per watcher tick.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(reloads(&gate, "failure").await, 1.0);
    let paths: Vec<String> = up.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(paths, ["/before", "/after"]);
}

// ---- 4. Drain ----------------------------------------------------------------------------

/// Sends a small raw POST to `path` on `tls` and reads the reply for up to `wait`; returns it
/// and how long it took from the call.
fn spawn_post(
    mut tls: client::Tls,
    path: &str,
    wait: Duration,
) -> tokio::task::JoinHandle<(client::RawReply, Duration)> {
    let req = raw_post(path, &[], "{}");
    tokio::spawn(async move {
        let started = Instant::now();
        let reply = client::raw_exchange(&mut tls, req.as_bytes(), wait).await;
        (reply, started.elapsed())
    })
}

async fn until_upstream_holds(up: &Upstream, n: usize) {
    eventually(
        "the upstream holds the request",
        Duration::from_secs(5),
        || async { up.requests().len() >= n },
    )
    .await;
}

#[tokio::test]
async fn sigterm_lets_a_request_longer_than_idle_timeout_finish_within_shutdown_grace() {
    let up = Upstream::start();
    up.set_behavior(Behavior::Delay(Duration::from_secs(6)));
    let mut gate = GateConfig::new(&up.url)
        .set("listen.shutdown_grace", "15s")
        .set("listen.idle_timeout", "3s")
        .set("upstream.timeout", "10s")
        .start()
        .await;
    let started = Instant::now();
    let in_flight = spawn_post(connect(&gate).await, "/slow", Duration::from_secs(12));
    until_upstream_holds(&up, 1).await;
    tokio::time::sleep_until((started + Duration::from_millis(500)).into()).await;
    gate.signal("TERM");

    let (reply, took) = in_flight.await.expect("in-flight task");
    let resp = reply.expect_response();
    assert_eq!(resp.status, 200, "answered through the drain");
    assert_eq!(&resp.body[..], b"late");
    assert!(
        took >= Duration::from_millis(5800) && took < Duration::from_secs(9),
        "the answer came with the upstream's, at {took:?}"
    );
    let status = gate
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits once the request is done");
    assert_eq!(status.code(), Some(0), "{}", gate.stderr.text());
    let exited = started.elapsed();
    assert!(
        exited < Duration::from_secs(10),
        "exits after the drain, not at the grace's end: {exited:?}"
    );
    let log = request_log(&gate, resp).await;
    assert_eq!(log["outcome"], "forwarded", "{log}");
    assert_eq!(log["reason"], "ok", "{log}");
}

#[tokio::test]
async fn the_end_of_shutdown_grace_cuts_a_request_and_logs_it_as_shutdown() {
    let up = Upstream::start();
    up.set_behavior(Behavior::Delay(Duration::from_secs(10)));
    let mut gate = GateConfig::new(&up.url)
        .set("listen.shutdown_grace", "2s")
        .set("upstream.timeout", "15s")
        .start()
        .await;
    let shutdown = [("outcome", "error"), ("reason", "shutdown")];
    let at_start = gate.metrics().await;
    let in_flight = spawn_post(connect(&gate).await, "/cut", Duration::from_secs(12));
    until_upstream_holds(&up, 1).await;

    // Scrape as long as the admin listener answers: the cut request's metric may show up in
    // the short time between the cut and the exit.
    let admin_addr = gate.admin();
    let scraper = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut last = None;
        while Instant::now() < deadline {
            match admin::get(admin_addr, "/metrics").await {
                Ok((200, body)) => last = Metrics(body).value("hookgate_requests_total", &shutdown),
                _ => return last,
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        last
    });
    let sent = Instant::now();
    gate.signal("TERM");
    let status = gate
        .wait_exit(Duration::from_secs(6))
        .await
        .expect("exits at the end of shutdown_grace (2 s), not with the 10 s upstream");
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "{}", gate.stderr.text());
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "exits about shutdown_grace after SIGTERM: {took:?}"
    );
    let (reply, _) = in_flight.await.expect("in-flight task");
    assert!(
        reply.response.is_none(),
        "the cut request got no response: {reply:?}"
    );
    let line = gate
        .expect_log("the cut request", |v| {
            v["msg"] == "request" && v["path"] == "/cut"
        })
        .await;
    assert_eq!(line["outcome"], "error", "{line}");
    assert_eq!(line["reason"], "shutdown", "{line}");
    assert!(
        line["detail"]
            .as_str()
            .is_some_and(|d| d.contains("shutdown_grace")),
        "{line}"
    );
    let scraped = scraper.await.expect("scraper task");
    // Present from start-up (zero), and 1 if a scrape landed between the cut and the exit.
    assert_eq!(
        at_start.value("hookgate_requests_total", &shutdown),
        Some(0.0),
        "{}",
        at_start.family("hookgate_requests_total")
    );
    assert!(
        matches!(scraped, Some(v) if v == 0.0 || v == 1.0),
        "{scraped:?}"
    );
    eprintln!("error/shutdown seen by the last scrape before the exit: {scraped:?}");
}

/// A response body fed by a channel: each message is one DATA frame.
struct Fed(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Fed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// An upstream that answers every request with `body` (Content-Length set) sent in `pieces`
/// DATA writes, `gap` apart: a large export streamed slowly. Stops when the task is aborted.
fn slow_body_upstream(
    body: Bytes,
    pieces: usize,
    gap: Duration,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        while let Ok((tcp, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let body = body.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let _ = req.into_body().collect().await;
                            let (tx, rx) = tokio::sync::mpsc::channel(1);
                            let len = body.len();
                            let step = len.div_ceil(pieces);
                            tokio::spawn(async move {
                                for start in (0..len).step_by(step) {
                                    tokio::time::sleep(gap).await;
                                    let end = (start + step).min(len);
                                    if tx.send(body.slice(start..end)).await.is_err() {
                                        return;
                                    }
                                }
                            });
                            let resp = http::Response::builder()
                                .header("content-length", len)
                                .header("content-type", "application/octet-stream")
                                .body(Fed(rx))
                                .expect("response");
                            Ok::<_, Infallible>(resp)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_response_streaming_longer_than_idle_timeout_arrives_whole() {
    const LEN: usize = 25_000_000;
    let body = Bytes::from(pattern(LEN, 3));
    let (url, upstream) = slow_body_upstream(body.clone(), 100, Duration::from_millis(50));
    let gate = GateConfig::new(&url)
        .set("listen.idle_timeout", "2s")
        .start()
        .await;
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(30), gate.post("/export", "{}", &[]))
        .await
        .expect("the streamed response ends within 30 s");
    let took = started.elapsed();
    assert_eq!(reply.status, 200);
    assert!(
        took >= Duration::from_millis(4500),
        "the body really streamed over more than twice idle_timeout: {took:?}"
    );
    assert_eq!(reply.body.len(), LEN, "arrived whole after {took:?}");
    assert!(reply.body == body, "the streamed body arrived altered");
    let log = request_log(&gate, &reply).await;
    assert_eq!(log["outcome"], "forwarded", "{log}");
    assert_eq!(log["reason"], "ok", "{log}");
    assert!(log.get("detail").is_none(), "{log}");
    upstream.abort();
}

// ---- 5. File descriptor exhaustion -------------------------------------------------------

/// The soft and hard RLIMIT_NOFILE the fd test runs hookgate under.
const NOFILE: u64 = 256;

/// A hookgate started under `prlimit --nofile=N:N`, which execs it in its own process.
async fn limited(config: GateConfig) -> Gate {
    crate::support::tools::require_tool("prlimit", "apt-get install -y util-linux");
    let nofile = format!("--nofile={NOFILE}:{NOFILE}");
    config.wrapped(&["prlimit", &nofile, "--"]).start().await
}

/// How many JSON log lines `gate` wrote with this `msg`.
fn count_lines(gate: &Gate, msg: &str) -> usize {
    gate.stdout
        .json()
        .iter()
        .filter(|v| v["msg"] == msg)
        .count()
}

/// POSTs `{}` as the pinned client on a new connection to `addr`.
async fn post_to(addr: SocketAddr, path: &str) -> Reply {
    let tls = pinned().connect(addr).await.expect("handshake");
    H1::over(tls)
        .await
        .send(request("POST", path, &[(HEADER_NAME, HEADER_SECRET)], "{}"))
        .await
}

/// A TLS client presenting the pinned `Pki::client`.
fn pinned() -> TlsClient {
    TlsClient::new(Some(&Pki::get().client))
}

#[tokio::test]
async fn with_256_file_descriptors_400_held_connections_queue_and_admin_reload_and_service_go_on() {
    let up = Upstream::start();
    let gate = limited(
        GateConfig::new(&up.url)
            .set("listen.handshake_timeout", "30s")
            .set("listen.header_timeout", "60s")
            .set("listen.idle_timeout", "60s"),
    )
    .await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", gate.pid()))
        .expect("read /proc/PID/limits");
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    assert!(
        nofile
            .split_whitespace()
            .filter(|w| *w == NOFILE.to_string())
            .count()
            == 2,
        "hookgate runs under the limit: {nofile}"
    );
    let capacity = ((NOFILE - 64) / 2) as f64;
    // Logged at start; the harness no longer waits for a start-up line, so wait for it here.
    let warning = gate
        .expect_log(
            "warning that max_connections exceeds the fd capacity",
            |v| {
                v["msg"]
                    .as_str()
                    .is_some_and(|m| m.contains("file descriptor limit"))
            },
        )
        .await;
    assert_eq!(warning["capacity"].as_f64(), Some(capacity), "{warning}");

    // 400 connections that stay open: the first `capacity` complete TLS, the rest wait.
    let (release, held) = tokio::sync::watch::channel(false);
    let handshaken = Arc::new(AtomicUsize::new(0));
    let client = pinned();
    let opened = Instant::now();
    let mut holders = Vec::new();
    for _ in 0..400 {
        let tcp = TcpStream::connect(gate.addr)
            .await
            .expect("the kernel backlog takes the connection");
        let (client, mut held, handshaken) = (client.clone(), held.clone(), handshaken.clone());
        holders.push(tokio::spawn(async move {
            let tls = tokio::select! {
                tls = client.handshake(tcp) => tls.ok(),
                _ = held.wait_for(|released| *released) => None,
            };
            if tls.is_some() {
                handshaken.fetch_add(1, Ordering::SeqCst);
                let _ = held.wait_for(|released| *released).await;
            }
            drop(tls);
        }));
    }
    eventually(
        "the first connections complete TLS",
        Duration::from_secs(15),
        || async { handshaken.load(Ordering::SeqCst) >= capacity as usize },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        handshaken.load(Ordering::SeqCst),
        capacity as usize,
        "no more connections at once than the descriptors allow"
    );

    let asked = Instant::now();
    let m = tokio::time::timeout(Duration::from_secs(2), gate.metrics())
        .await
        .expect("/metrics answers within 2 s");
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert_eq!(m.value("hookgate_open_connections", &[]), Some(capacity));
    let (status, _) = admin::get(gate.admin(), "/healthz").await.expect("healthz");
    assert_eq!(status, 200);
    let secs = opened.elapsed().as_secs() as usize + 1;
    let failures = count_lines(&gate, "accept failed; backing off");
    assert!(
        failures <= 2 * secs,
        "{failures} `accept failed` lines in {secs} s"
    );

    // A reload needs descriptors too (the config, the certificates).
    gate.signal("HUP");
    eventually("a successful reload", Duration::from_secs(5), || async {
        gate.metrics()
            .await
            .value("hookgate_config_reloads_total", &[("result", "success")])
            == Some(1.0)
    })
    .await;
    assert_eq!(
        gate.metrics()
            .await
            .value("hookgate_config_reloads_total", &[("result", "failure")]),
        Some(0.0)
    );

    // A new client waits in the backlog while the held connections fill the capacity...
    let waiting = tokio::spawn(post_to(gate.addr, "/queued"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "served beyond the capacity");
    // ...and is served once they close.
    release.send(true).expect("holders listen");
    for h in holders {
        h.await.expect("holder task");
    }
    let queued = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("the queued request is served after the connections closed")
        .expect("queued task");
    assert_eq!(queued.status, 200);
    assert_eq!(post_to(gate.addr, "/fresh").await.status, 200);
    let paths: Vec<String> = up.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(paths, ["/queued", "/fresh"]);
    let secs = opened.elapsed().as_secs() as usize + 1;
    let failures = count_lines(&gate, "accept failed; backing off");
    assert!(
        failures <= 2 * secs,
        "{failures} `accept failed` lines in {secs} s"
    );
    assert_eq!(count_lines(&gate, "admin accept failed"), 0);
}

#[tokio::test]
async fn with_256_file_descriptors_http2_streams_do_not_run_the_gate_out_of_descriptors() {
    let up = Upstream::start();
    up.set_behavior(Behavior::Delay(Duration::from_secs(2)));
    let gate = limited(GateConfig::new(&up.url).set("upstream.timeout", "15s")).await;
    // 20 connections, far below the capacity of 96, with 16 requests in flight on each.
    let mut streams = Vec::new();
    for c in 0..20 {
        let tls = pinned()
            .alpn(&["h2"])
            .connect(gate.addr)
            .await
            .expect("handshake");
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(conn);
        for s in 0..16 {
            let mut sender = sender.clone();
            streams.push(tokio::spawn(async move {
                let req = http::Request::builder()
                    .method("POST")
                    .uri(format!("https://localhost/h2/{c}/{s}"))
                    .header(HEADER_NAME, HEADER_SECRET)
                    .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
                    .expect("request");
                let answer = async {
                    sender.ready().await.ok()?;
                    Some(sender.send_request(req).await.ok()?.status().as_u16())
                };
                tokio::time::timeout(Duration::from_secs(20), answer)
                    .await
                    .ok()
                    .flatten()
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let scrape = tokio::time::timeout(Duration::from_secs(2), admin::get(gate.admin(), "/metrics"))
        .await
        .map(|r| r.map(|(status, _)| status).ok());
    let fds = std::fs::read_dir(format!("/proc/{}/fd", gate.pid())).map(|d| d.count());
    let mut statuses = std::collections::BTreeMap::new();
    for stream in streams {
        *statuses
            .entry(stream.await.expect("stream task"))
            .or_insert(0) += 1;
    }
    let accept_failures = count_lines(&gate, "accept failed; backing off");
    let a_502 = gate
        .stdout
        .find_json(|v| v["reason"] == "upstream_unavailable")
        .map(|v| v["detail"].clone());
    let detail = format!(
        "statuses {statuses:?}; /metrics during: {scrape:?}; open fds during: {fds:?}; \
         `accept failed` lines: {accept_failures}; a 502's detail: {a_502:?}"
    );
    assert_eq!(statuses.get(&Some(200)), Some(&320), "{detail}");
    assert_eq!(scrape, Ok(Some(200)), "{detail}");
    assert_eq!(accept_failures, 0, "{detail}");
}

// ---- 6. listen.body_timeout --------------------------------------------------------------

#[tokio::test]
async fn a_body_trickling_one_byte_every_500ms_gets_408_at_body_timeout() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.body_timeout", "2s")
        .set("listen.header_timeout", "1s")
        .start()
        .await;
    let (mut rd, mut wr) = tokio::io::split(connect(&gate).await);
    let head = post_head(
        "/trickle",
        "Content-Type: application/json\r\nContent-Length: 100",
    );
    wr.write_all(head.as_bytes()).await.expect("head");
    wr.flush().await.expect("flush");
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if wr.write_all(b"x").await.is_err() || wr.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let reply = client::read_raw(&mut rd, Duration::from_secs(6)).await;
    let took = started.elapsed();
    trickle.abort();
    let resp = reply.expect_response();
    resp.assert_error(408, "request_timeout");
    assert_eq!(resp.headers["connection"], "close");
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_millis(3500),
        "408 at body_timeout (2 s), though no gap reached header_timeout: {took:?}"
    );
    gate.expect_requests("error", "timeout", 1.0).await;
    let log = request_log(&gate, resp).await;
    assert_eq!(log["status"], 408, "{log}");
    assert_eq!(log["reason"], "timeout", "{log}");
    assert!(
        log["detail"]
            .as_str()
            .is_some_and(|d| d.contains("body_timeout")),
        "{log}"
    );
    up.assert_untouched();
}

// ---- 7. Started from a cache -------------------------------------------------------------

#[tokio::test]
async fn a_list_started_from_its_cache_reports_the_caches_age_as_last_success() {
    let pki = Pki::get();
    let up = Upstream::start();
    let server = ListServer::start(ListReply::status(500));
    let keep = tempfile::tempdir().expect("tempdir");
    let cache = keep.path().join("pins.cache");
    std::fs::write(&cache, format!("{}\n", pki.client.sha256_hex())).expect("write cache");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let fetched_at = now - 3600;
    let touched = Command::new("touch")
        .arg("-d")
        .arg(format!("@{fetched_at}"))
        .arg(&cache)
        .status()
        .expect("run touch");
    assert!(touched.success());

    let gate = GateConfig::new(&up.url)
        .remove("thumbprints.allow")
        .set(
            "thumbprints.url",
            server.url("/v2/security/client-certificates"),
        )
        .set("thumbprints.url_ca", "list-ca.pem")
        .set("thumbprints.refresh", "1s")
        .set("thumbprints.cache", cache.to_str().expect("utf-8 path"))
        .file("list-ca.pem", ListServer::ca_pem())
        .start()
        .await;
    // The endpoint fails (500), and keeps failing: the cache is what serves.
    gate.expect_metric_at_least(
        "hookgate_allowlist_refresh_total",
        &[("list", "thumbprints"), ("result", "failure")],
        1.0,
        Duration::from_secs(5),
    )
    .await;
    assert!(server.requests().iter().all(|r| r.answered == Some(500)));
    let m = gate.metrics().await;
    let last = m
        .value(
            "hookgate_allowlist_last_success_timestamp_seconds",
            &[("list", "thumbprints")],
        )
        .expect("the gauge is exported");
    assert!(
        (last - fetched_at as f64).abs() <= 1.0,
        "last success {last}, the cache was written at {fetched_at}"
    );
    assert_eq!(
        m.value(
            "hookgate_allowlist_refresh_total",
            &[("list", "thumbprints"), ("result", "success")]
        ),
        Some(0.0)
    );
    assert_eq!(gate.post("/from-cache", "{}", &[]).await.status, 200);
    assert_eq!(up.single().target, "/from-cache");
    let (status, body) = admin::get(gate.admin(), "/readyz").await.expect("readyz");
    assert_eq!(status, 200, "{body}");
}

// ---- 8. One handshake_timeout for the PROXY header and TLS -------------------------------

#[tokio::test]
async fn a_late_proxy_header_leaves_the_handshake_only_the_rest_of_handshake_timeout() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.proxy_protocol", true)
        .set_toml("listen.trusted_proxies", r#"["127.0.0.1/32"]"#)
        .set("listen.handshake_timeout", "2s")
        .start()
        .await;
    let mut tcp = TcpStream::connect(gate.addr).await.expect("connect");
    let connected = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let source: SocketAddr = "127.0.0.9:5000".parse().expect("addr");
    tcp.write_all(&proxy::v1(source, gate.addr))
        .await
        .expect("PROXY header");
    // TLS starts (a real ClientHello), then the client says nothing more.
    tcp.write_all(&proxy::client_hello())
        .await
        .expect("ClientHello");
    let mut answered = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::from_std(connected + Duration::from_secs(6));
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => panic!("the connection was still open 6 s after accept"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answered += n,
        }
    }
    let took = connected.elapsed();
    assert!(
        answered > 0,
        "the ServerHello shows the PROXY header was taken and TLS began"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(2900),
        "closed {took:?} after accept: the header's 1.5 s count against the 2 s"
    );
    gate.expect_metric(
        "hookgate_tls_handshakes_total",
        &[("result", "timeout")],
        1.0,
    )
    .await;
    gate.expect_metric("hookgate_connections_total", &[("result", "accepted")], 1.0)
        .await;
    gate.expect_metric(
        "hookgate_connections_total",
        &[("result", "proxy_protocol_error")],
        0.0,
    )
    .await;
    let line = gate
        .expect_log("the handshake timeout", |v| {
            v["msg"] == "handshake timed out"
        })
        .await;
    assert_eq!(line["client_ip"], "127.0.0.9", "{line}");
    up.assert_untouched();
}

// ---- 9. A critical extension nobody understands ------------------------------------------

/// A self-signed client certificate carrying the critical private extension 1.3.6.1.4.1.55555.1.
fn client_with_critical_extension() -> Identity {
    use rcgen::{CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name
        .push(DnType::CommonName, "critical-extension-client");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    // The value is DER NULL; what matters is the critical flag on an unknown OID.
    let mut ext =
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![0x05, 0x00]);
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    let cert = p.self_signed(&key).expect("self-sign");
    Identity {
        name: "critical-extension",
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

#[tokio::test]
async fn a_pinned_certificate_with_an_unknown_critical_extension_is_refused_as_chain_invalid() {
    let critical = client_with_critical_extension();
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("thumbprints.allow", vec![critical.sha256_hex()])
        .start()
        .await;
    let client = TlsClient::new(Some(&critical));
    let alert = client.expect_alert(gate.addr).await;
    let alert12 = client.clone().tls12_only().expect_alert(gate.addr).await;
    let line = gate
        .expect_log("the refused handshake", |v| v["msg"] == "handshake refused")
        .await;
    let m = gate.metrics().await;
    let by_result: Vec<(&str, Option<f64>)> = ["chain_invalid", "error", "ok"]
        .into_iter()
        .map(|r| {
            (
                r,
                m.value("hookgate_tls_handshakes_total", &[("result", r)]),
            )
        })
        .collect();
    assert_eq!(
        line["reason"], "chain_invalid",
        "alerts {alert:?} / {alert12:?}; metrics {by_result:?}; log {line}"
    );
    gate.expect_metric(
        "hookgate_tls_handshakes_total",
        &[("result", "chain_invalid")],
        2.0,
    )
    .await;
    gate.expect_metric("hookgate_tls_handshakes_total", &[("result", "ok")], 0.0)
        .await;
    up.assert_untouched();
}
