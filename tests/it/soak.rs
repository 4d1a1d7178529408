//! A bounded soak of the real binary: for 45 s, good clients (keep-alive HTTP/1.1 and HTTP/2,
//! small and 1–2 MiB bodies), every kind of bad client and SIGHUP reloads run side by side.
//! Every good request must reach the upstream, every refusal must be counted under its label,
//! and the process's RSS and open file descriptors must come back flat once the load stops.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::AlertDescription;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::hardening::Stalled;
use crate::operability::edit_config;
use crate::support::client::{self, Tls};
use crate::support::*;

/// How long the measured load runs (after the warm-up); `SOAK_SECS` overrides it for a longer
/// local run (the leak tolerances below stay the same, so a longer run is a stricter one).
const SOAK_SECS: u64 = 45;
/// The same load, briefly, so that pools, caches and allocator arenas exist before the baseline.
const WARM_UP: Duration = Duration::from_secs(5);
/// `listen.header_timeout`: the slowloris and stalled-body bound.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// After the load: longer than the upstream pool's 4 s idle timeout and the 5 s body linger.
const SETTLE: Duration = Duration::from_secs(6);
const RELOAD_EVERY: Duration = Duration::from_secs(3);
/// `request.max_body`; the large good bodies are 1–2 MiB.
const MAX_BODY: usize = 3 << 20;
const MIB: usize = 1 << 20;
/// Every this many requests of a good client is a large one.
const LARGE_EVERY: u64 = 24;
/// Requests per keep-alive connection before a client reconnects (exercises connection churn).
const PER_CONNECTION: u64 = 40;
/// Between two requests of one client: a soak, not a benchmark, on a shared 2-core machine.
const PAUSE: Duration = Duration::from_millis(15);
const BAD_PAUSE: Duration = Duration::from_millis(100);
/// No single exchange may take longer than this.
const OP_LIMIT: Duration = Duration::from_secs(30);
/// Flat means: fds within this many of the baseline, RSS within this many KiB of it.
const FD_SLACK: usize = 10;
const RSS_SLACK_KIB: u64 = 32 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_45_second_mixed_soak_answers_and_counts_everything_and_leaks_nothing() {
    let sink = Sink::start();
    let gate = GateConfig::new(&sink.url)
        .set("listen.header_timeout", "2s")
        .set("listen.max_connections", 1000)
        .set("request.max_body", MAX_BODY as i64)
        .set("upstream.timeout", "20s")
        .set_toml(
            "developer_payload",
            r#"{ pointer = "/developerPayload", values = [{ env = "HOOKGATE_DEVELOPER_PAYLOAD" }], path_prefixes = ["/"] }"#,
        )
        .start()
        .await;
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let mut sighups = 0;

    run_phase(&gate, &tally, WARM_UP, &mut sighups).await;
    settle(&gate).await;
    let baseline = Sample::of(gate.pid(), "baseline (after warm-up)");
    let soak_started = Instant::now();
    let soak = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(SOAK_SECS), Duration::from_secs);
    let middle = run_phase(&gate, &tally, soak, &mut sighups).await;
    let soak_took = soak_started.elapsed();
    settle(&gate).await;
    let end = Sample::of(gate.pid(), "end (after settling)");

    let metrics = gate.metrics().await;
    let log = LogCounts::of(&gate);
    println!(
        "soak: {:?} total, {soak_took:?} measured load, {sighups} SIGHUPs\n{}\n{baseline}\n{middle}\n{end}\n{log:?}",
        started.elapsed(),
        tally.summary()
    );
    tally.assert_no_failures(&gate);
    tally.assert_enough_work();
    assert_flat(&baseline, &end);
    assert_upstream_saw_exactly_the_good_requests(&tally, &sink);
    assert_counted(&metrics, &tally, &log, sighups);
}

/// Runs every client and the reloads until `length` has passed; returns the sample taken
/// half-way. Every client stops at the deadline; none may outlive it by more than `OP_LIMIT`.
async fn run_phase(gate: &Gate, tally: &Arc<Tally>, length: Duration, sighups: &mut u64) -> Sample {
    let ctx = Arc::new(Ctx {
        addr: gate.addr,
        deadline: Instant::now() + length,
        tally: tally.clone(),
    });
    let workers = spawn_clients(&ctx);
    let middle = async {
        tokio::time::sleep(length / 2).await;
        Sample::of(gate.pid(), "middle (under load)")
    };
    let (middle, ()) = tokio::join!(middle, reload_until(gate, &ctx, sighups));
    let outlived = tokio::time::Instant::from_std(ctx.deadline + OP_LIMIT + Duration::from_secs(5));
    for mut w in workers {
        match tokio::time::timeout_at(outlived, &mut w).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => ctx.fail(format!("a client task panicked: {e}")),
            Err(_) => {
                w.abort();
                ctx.fail("a client task outlived its deadline".into());
            }
        }
    }
    middle
}

fn spawn_clients(ctx: &Arc<Ctx>) -> Vec<tokio::task::JoinHandle<()>> {
    let c = || ctx.clone();
    let mut tasks = vec![
        tokio::spawn(refused_handshakes(c(), false)),
        tokio::spawn(refused_handshakes(c(), true)),
        tokio::spawn(wrong_secrets(c())),
        tokio::spawn(too_large(c())),
        tokio::spawn(stalled_h1(c())),
        tokio::spawn(stalled_h2(c())),
    ];
    for id in 0..2 {
        tasks.push(tokio::spawn(good_h1(c(), id)));
        tasks.push(tokio::spawn(good_h2(c(), id)));
        tasks.push(tokio::spawn(slowloris(c())));
    }
    tasks
}

type Fallible<T> = Result<T, String>;

/// What every client of one phase shares.
struct Ctx {
    addr: SocketAddr,
    deadline: Instant,
    tally: Arc<Tally>,
}

impl Ctx {
    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    fn fail(&self, what: String) {
        self.tally.failures.lock().expect("lock").push(what);
    }

    /// Runs `step` until the deadline; a failed step is recorded and followed by a pause.
    async fn repeat<F, Fut>(&self, mut step: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Fallible<()>>,
    {
        while self.running() {
            if let Err(e) = step().await {
                self.fail(e);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }

    /// A TCP connection and a TLS handshake as `client`.
    async fn connect(&self, client: &TlsClient) -> Fallible<Tls> {
        let tls = within("TLS connect", client.connect(self.addr)).await?;
        self.tally.bump(&self.tally.connections);
        tls.map_err(|e| format!("TLS connect: {e}"))
    }

    async fn connect_pinned(&self, alpn: &str) -> Fallible<Tls> {
        let client = TlsClient::new(Some(&Pki::get().client)).alpn(&[alpn]);
        let tls = self.connect(&client).await?;
        self.tally.bump(&self.tally.pinned);
        Ok(tls)
    }
}

/// `fut`, or an error naming `what` after [`OP_LIMIT`].
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> Fallible<T> {
    tokio::time::timeout(OP_LIMIT, fut)
        .await
        .map_err(|_| format!("{what}: nothing within {OP_LIMIT:?}"))
}

/// Every count the clients keep, and what the good ones sent (target, body length).
#[derive(Default)]
struct Tally {
    good_h1: AtomicU64,
    good_h2: AtomicU64,
    good_large: AtomicU64,
    no_cert: AtomicU64,
    unpinned: AtomicU64,
    wrong_header: AtomicU64,
    wrong_payload: AtomicU64,
    too_large: AtomicU64,
    slowloris: AtomicU64,
    stalled_h1: AtomicU64,
    stalled_h2: AtomicU64,
    /// TCP connections to the TLS listener, and those that completed a pinned handshake.
    connections: AtomicU64,
    pinned: AtomicU64,
    sent: Mutex<Vec<(String, usize)>>,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn bump(&self, n: &AtomicU64) {
        n.fetch_add(1, Ordering::Relaxed);
    }

    fn get(n: &AtomicU64) -> u64 {
        n.load(Ordering::Relaxed)
    }

    fn good(&self) -> u64 {
        Tally::get(&self.good_h1) + Tally::get(&self.good_h2)
    }

    fn stalled(&self) -> u64 {
        Tally::get(&self.stalled_h1) + Tally::get(&self.stalled_h2)
    }

    fn answered_good(&self, target: String, len: usize, h2: bool) {
        self.bump(if h2 { &self.good_h2 } else { &self.good_h1 });
        if len >= MIB {
            self.bump(&self.good_large);
        }
        self.sent.lock().expect("lock").push((target, len));
    }

    fn summary(&self) -> String {
        let g = Tally::get;
        format!(
            "good: {} HTTP/1.1 + {} HTTP/2 ({} of 1-2 MiB); bad: {} no cert, {} unpinned, \
             {} wrong header, {} wrong developerPayload, {} over max_body, {} slowloris, \
             {} + {} stalled bodies (HTTP/1.1 + HTTP/2); {} connections ({} pinned)",
            g(&self.good_h1),
            g(&self.good_h2),
            g(&self.good_large),
            g(&self.no_cert),
            g(&self.unpinned),
            g(&self.wrong_header),
            g(&self.wrong_payload),
            g(&self.too_large),
            g(&self.slowloris),
            g(&self.stalled_h1),
            g(&self.stalled_h2),
            g(&self.connections),
            g(&self.pinned),
        )
    }

    fn assert_no_failures(&self, gate: &Gate) {
        let failures = self.failures.lock().expect("lock");
        if !failures.is_empty() {
            let lines = gate.stdout.lines();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            panic!(
                "{} client failures, the first ones:\n{}\nlast log lines:\n{tail}\n{}",
                failures.len(),
                failures[..failures.len().min(15)].join("\n"),
                gate.stderr.text()
            );
        }
    }

    /// A soak that did almost nothing proves nothing.
    fn assert_enough_work(&self) {
        let g = Tally::get;
        assert!(self.good() >= 500, "only {} good requests", self.good());
        assert!(
            g(&self.good_large) >= 20,
            "only {} large bodies",
            g(&self.good_large)
        );
        for (what, n) in [
            ("no cert", &self.no_cert),
            ("unpinned", &self.unpinned),
            ("wrong header", &self.wrong_header),
            ("wrong developerPayload", &self.wrong_payload),
            ("too large", &self.too_large),
            ("slowloris", &self.slowloris),
            ("stalled HTTP/1.1", &self.stalled_h1),
            ("stalled HTTP/2", &self.stalled_h2),
        ] {
            assert!(g(n) >= 5, "only {} {what} clients", g(n));
        }
    }
}

/// The `seq`th body of a good client: JSON with the right developerPayload; every
/// `LARGE_EVERY`th is 1–2 MiB, the others under 1 KiB.
fn good_body(seq: u64) -> Bytes {
    let len = if seq % LARGE_EVERY == LARGE_EVERY - 1 {
        MIB + (seq as usize * 104_729) % MIB
    } else {
        64 + (seq as usize * 31) % 700
    };
    let head = format!(r#"{{"developerPayload":"{DEVELOPER_PAYLOAD}","seq":{seq},"pad":""#);
    let pad = len.saturating_sub(head.len() + 2);
    let mut body = Vec::with_capacity(head.len() + pad + 2);
    body.extend_from_slice(head.as_bytes());
    body.resize(head.len() + pad, b'x');
    body.extend_from_slice(b"\"}");
    body.into()
}

/// A response read whole.
async fn read_reply(resp: http::Response<hyper::body::Incoming>) -> Fallible<(StatusCode, Bytes)> {
    let status = resp.status();
    let body = within("response body", resp.into_body().collect())
        .await?
        .map_err(|e| format!("response body: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// hookgate's own error answer: this status and `{"error":word,...}`.
fn check_error(what: &str, got: StatusCode, body: &[u8], status: u16, word: &str) -> Fallible<()> {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if got.as_u16() == status && json["error"] == word {
        return Ok(());
    }
    Err(format!(
        "{what}: want {status} {word}, got {got} {:?}",
        String::from_utf8_lossy(body)
    ))
}

/// A pinned HTTP/1.1 connection driven by hyper, and its connection task.
async fn open_h1(ctx: &Ctx) -> Fallible<(http1::SendRequest<Full<Bytes>>, Driver)> {
    let tls = ctx.connect_pinned("http/1.1").await?;
    let (sender, conn) = within("HTTP/1.1 handshake", http1::handshake(TokioIo::new(tls)))
        .await?
        .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
    Ok((sender, tokio::spawn(async move { drop(conn.await) })))
}

/// A pinned HTTP/2 connection (ALPN `h2`) driven by hyper, and its connection task.
async fn open_h2<B>(ctx: &Ctx) -> Fallible<(http2::SendRequest<B>, Driver)>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tls = ctx.connect_pinned("h2").await?;
    if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err("ALPN did not select h2".into());
    }
    let (sender, conn) = within(
        "HTTP/2 handshake",
        http2::handshake(TokioExecutor::new(), TokioIo::new(tls)),
    )
    .await?
    .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    Ok((sender, tokio::spawn(async move { drop(conn.await) })))
}

type Driver = tokio::task::JoinHandle<()>;

/// One request on a keep-alive HTTP/1.1 connection, its answer read whole.
async fn send_h1(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    what: &str,
    req: http::Request<Full<Bytes>>,
) -> Fallible<(StatusCode, Bytes)> {
    let exchange = async {
        sender.ready().await?;
        sender.send_request(req).await
    };
    let resp = within(what, exchange)
        .await?
        .map_err(|e| format!("{what}: {e}"))?;
    read_reply(resp).await
}

/// One request on an HTTP/2 connection, its answer read whole.
async fn send_h2<B: http_body::Body + Send + 'static>(
    sender: &mut http2::SendRequest<B>,
    what: &str,
    req: http::Request<B>,
) -> Fallible<(StatusCode, Bytes)> {
    let exchange = async {
        sender.ready().await?;
        sender.send_request(req).await
    };
    let resp = within(what, exchange)
        .await?
        .map_err(|e| format!("{what}: {e}"))?;
    read_reply(resp).await
}

/// A good request must be answered 200; then it is counted (and later looked for upstream).
fn answered(
    ctx: &Ctx,
    target: String,
    len: usize,
    h2: bool,
    got: (StatusCode, Bytes),
) -> Fallible<()> {
    if got.0 != StatusCode::OK {
        return Err(format!(
            "{target}: {} {:?}",
            got.0,
            String::from_utf8_lossy(&got.1)
        ));
    }
    ctx.tally.answered_good(target, len, h2);
    Ok(())
}

/// Keep-alive HTTP/1.1: `PER_CONNECTION` good POSTs a connection, then a fresh one.
async fn good_h1(ctx: Arc<Ctx>, worker: u64) {
    let mut next = 0;
    ctx.repeat(|| {
        let ctx = ctx.clone();
        let first = next;
        next += PER_CONNECTION;
        async move {
            let (mut sender, driver) = open_h1(&ctx).await?;
            for seq in first..first + PER_CONNECTION {
                if !ctx.running() {
                    break;
                }
                let target = format!("/soak/good/h1-{worker}/{seq}");
                let body = good_body(seq);
                let len = body.len();
                let headers = [
                    (HEADER_NAME, HEADER_SECRET),
                    ("content-type", "application/json"),
                ];
                let req = client::request("POST", &target, &headers, body);
                let got = send_h1(&mut sender, &target, req).await?;
                answered(&ctx, target, len, false, got)?;
                tokio::time::sleep(PAUSE).await;
            }
            drop(sender);
            let _ = within("closing", driver).await;
            Ok(())
        }
    })
    .await;
}

/// HTTP/2: two streams at a time on one connection, `PER_CONNECTION` requests each.
async fn good_h2(ctx: Arc<Ctx>, worker: u64) {
    let mut round = 0;
    ctx.repeat(|| {
        let ctx = ctx.clone();
        round += 1;
        let round = round;
        async move {
            let (sender, driver) = open_h2(&ctx).await?;
            let stream =
                |s: u64| h2_stream(&ctx, sender.clone(), format!("h2-{worker}-{s}"), round);
            let result = tokio::try_join!(stream(0), stream(1));
            drop(sender);
            let _ = within("closing", driver).await;
            result.map(|_| ())
        }
    })
    .await;
}

async fn h2_stream(
    ctx: &Ctx,
    mut sender: http2::SendRequest<Full<Bytes>>,
    name: String,
    round: u64,
) -> Fallible<()> {
    for seq in round * PER_CONNECTION..(round + 1) * PER_CONNECTION {
        if !ctx.running() {
            break;
        }
        let target = format!("/soak/good/{name}/{seq}");
        let body = good_body(seq + 7);
        let len = body.len();
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("https://localhost{target}"))
            .header(HEADER_NAME, HEADER_SECRET)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("valid request");
        let got = send_h2(&mut sender, &target, req).await?;
        answered(ctx, target, len, true, got)?;
        tokio::time::sleep(PAUSE).await;
    }
    Ok(())
}

/// No client certificate, or an `unpinned` one: refused inside the handshake.
async fn refused_handshakes(ctx: Arc<Ctx>, unpinned: bool) {
    let (client, want, count) = if unpinned {
        (
            TlsClient::new(Some(&Pki::get().other_client)),
            AlertDescription::AccessDenied,
            &ctx.tally.unpinned,
        )
    } else {
        (
            TlsClient::new(None),
            AlertDescription::CertificateRequired,
            &ctx.tally.no_cert,
        )
    };
    ctx.repeat(|| async {
        let alert = expect_alert(&ctx, &client).await?;
        if alert != want {
            return Err(format!("handshake refused with {alert:?}, want {want:?}"));
        }
        ctx.tally.bump(count);
        tokio::time::sleep(BAD_PAUSE).await;
        Ok(())
    })
    .await;
}

/// Like `TlsClient::expect_alert`, as a result: with TLS 1.3 the alert arrives after the
/// client's side of the handshake, so a request is written and the read must fail with it.
async fn expect_alert(ctx: &Ctx, client: &TlsClient) -> Fallible<AlertDescription> {
    let tcp = within("TCP connect", tokio::net::TcpStream::connect(ctx.addr))
        .await?
        .map_err(|e| format!("TCP connect: {e}"))?;
    ctx.tally.bump(&ctx.tally.connections);
    let err = match within("TLS handshake", client.handshake(tcp)).await? {
        Err(e) => e,
        Ok(mut tls) => {
            let request = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n";
            let _ = within("write", tls.write_all(request)).await?;
            let mut buf = Vec::new();
            match within("the alert", tls.read_to_end(&mut buf)).await? {
                Ok(_) => return Err(format!("no alert but {:?}", String::from_utf8_lossy(&buf))),
                Err(e) => e,
            }
        }
    };
    client::alert_of(&err).ok_or_else(|| format!("no TLS alert: {err:?}"))
}

/// A wrong required-header value, then a wrong developerPayload, on one keep-alive connection:
/// each 403, the connection kept.
async fn wrong_secrets(ctx: Arc<Ctx>) {
    ctx.repeat(|| async {
        let (mut sender, driver) = open_h1(&ctx).await?;
        for i in 0..PER_CONNECTION {
            if !ctx.running() {
                break;
            }
            let (secret, payload, count) = if i % 2 == 0 {
                (
                    "hdr-secret-wrong",
                    DEVELOPER_PAYLOAD,
                    &ctx.tally.wrong_header,
                )
            } else {
                (HEADER_SECRET, "devpayload-wrong", &ctx.tally.wrong_payload)
            };
            let body = format!(r#"{{"developerPayload":"{payload}"}}"#);
            let req = client::request("POST", "/soak/bad/secret", &[(HEADER_NAME, secret)], body);
            let (status, body) = send_h1(&mut sender, "wrong secret", req).await?;
            check_error("wrong secret", status, &body, 403, "forbidden")?;
            ctx.tally.bump(count);
            tokio::time::sleep(BAD_PAUSE / 2).await;
        }
        drop(sender);
        let _ = within("closing", driver).await;
        Ok(())
    })
    .await;
}

/// Over `max_body`: mostly a declared Content-Length (413 before the body is read), every
/// fourth time a chunked body that only crosses the limit while it streams (413 then).
async fn too_large(ctx: Arc<Ctx>) {
    let mut round = 0u64;
    ctx.repeat(|| {
        round += 1;
        let streamed = round % 4 == 0;
        let ctx = ctx.clone();
        async move {
            let mut tls = ctx.connect_pinned("http/1.1").await?;
            let request = if streamed {
                chunked_over_max_body()
            } else {
                declared_over_max_body()
            };
            within("write", tls.write_all(&request))
                .await?
                .map_err(|e| format!("write (streamed: {streamed}): {e}"))?;
            let reply = client::read_raw(&mut tls, OP_LIMIT).await;
            let resp = reply
                .response
                .ok_or_else(|| format!("no 413 (streamed: {streamed}): {:?}", reply.bytes))?;
            check_error(
                "over max_body",
                resp.status,
                &resp.body,
                413,
                "payload_too_large",
            )?;
            ctx.tally.bump(&ctx.tally.too_large);
            tokio::time::sleep(BAD_PAUSE).await;
            Ok(())
        }
    })
    .await;
}

fn declared_over_max_body() -> Vec<u8> {
    format!(
        "POST /soak/bad/large HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nContent-Length: {}\r\n\r\n{{\"a\":",
        MAX_BODY + 1
    )
    .into_bytes()
}

/// `max_body` + 64 KiB in 64 KiB chunks.
fn chunked_over_max_body() -> Vec<u8> {
    const CHUNK: usize = 64 << 10;
    let mut req = format!(
        "POST /soak/bad/large-chunked HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..MAX_BODY / CHUNK + 1 {
        req.extend_from_slice(format!("{CHUNK:x}\r\n").as_bytes());
        req.resize(req.len() + CHUNK, b'x');
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

/// A request head dribbled a byte every 250 ms: closed (no response, or a 408) once
/// `header_timeout` has passed, well before the head could ever be complete.
async fn slowloris(ctx: Arc<Ctx>) {
    ctx.repeat(|| async {
        let mut tls = ctx.connect_pinned("http/1.1").await?;
        let start = Instant::now();
        let head =
            format!("POST /soak/bad/slowloris HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: ");
        let mut unsent = head.as_bytes().iter().chain(std::iter::repeat(&b'a'));
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let closed_after = loop {
            if start.elapsed() > HEADER_TIMEOUT + Duration::from_secs(6) {
                return Err("slowloris: still open 8 s after connecting".into());
            }
            let byte = *unsent.next().expect("endless");
            let write = async { tls.write_all(&[byte]).await.and(tls.flush().await) };
            if !matches!(within("dribble", write).await?, Ok(())) {
                break start.elapsed();
            }
            match tokio::time::timeout(Duration::from_millis(250), tls.read(&mut buf)).await {
                Err(_) => continue,
                Ok(Ok(0)) | Ok(Err(_)) => break start.elapsed(),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
        };
        if !(got.is_empty() || got.starts_with(b"HTTP/1.1 408")) {
            return Err(format!("slowloris got {:?}", String::from_utf8_lossy(&got)));
        }
        if closed_after < HEADER_TIMEOUT - Duration::from_millis(200) {
            return Err(format!("slowloris closed after only {closed_after:?}"));
        }
        ctx.tally.bump(&ctx.tally.slowloris);
        Ok(())
    })
    .await;
}

/// 4 of a declared 100 body bytes, then nothing: 408 after `header_timeout`, connection closed.
async fn stalled_h1(ctx: Arc<Ctx>) {
    ctx.repeat(|| async {
        let mut tls = ctx.connect_pinned("http/1.1").await?;
        let head = format!(
            "POST /soak/bad/stall HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\""
        );
        let start = Instant::now();
        within("write", tls.write_all(head.as_bytes()))
            .await?
            .map_err(|e| format!("write: {e}"))?;
        let reply = client::read_raw(&mut tls, OP_LIMIT).await;
        let resp = reply.response.ok_or_else(|| format!("no 408: {:?}", reply.bytes))?;
        check_error("stalled body", resp.status, &resp.body, 408, "request_timeout")?;
        if resp.headers.get("connection").map(|v| v.as_bytes()) != Some(b"close") {
            return Err(format!("408 without Connection: close: {:?}", resp.headers));
        }
        check_stall_time("HTTP/1.1", start.elapsed())?;
        ctx.tally.bump(&ctx.tally.stalled_h1);
        Ok(())
    })
    .await;
}

/// An HTTP/2 stream whose HEADERS never get a body: 408 after `header_timeout`.
async fn stalled_h2(ctx: Arc<Ctx>) {
    ctx.repeat(|| async {
        let (mut sender, driver) = open_h2(&ctx).await?;
        let req = http::Request::builder()
            .method("POST")
            .uri("https://localhost/soak/bad/stall-h2")
            .header(HEADER_NAME, HEADER_SECRET)
            .header("content-type", "application/json")
            .body(Stalled)
            .expect("request");
        let start = Instant::now();
        let (status, body) = send_h2(&mut sender, "stalled HTTP/2 stream", req).await?;
        check_error("stalled HTTP/2 body", status, &body, 408, "request_timeout")?;
        check_stall_time("HTTP/2", start.elapsed())?;
        // The stalled body never ends on the client's side either: close the connection.
        driver.abort();
        ctx.tally.bump(&ctx.tally.stalled_h2);
        Ok(())
    })
    .await;
}

fn check_stall_time(what: &str, took: Duration) -> Fallible<()> {
    if took >= HEADER_TIMEOUT - Duration::from_millis(200) && took < HEADER_TIMEOUT * 4 {
        return Ok(());
    }
    Err(format!("{what} stalled body answered after {took:?}"))
}

/// SIGHUP every `RELOAD_EVERY` until the phase ends, toggling `listen.max_connections`
/// (1000 ↔ 1001); each must be counted as a successful reload before the next one.
async fn reload_until(gate: &Gate, ctx: &Ctx, sighups: &mut u64) {
    loop {
        let next = Instant::now() + RELOAD_EVERY;
        if next >= ctx.deadline {
            return;
        }
        tokio::time::sleep_until(next.into()).await;
        edit_config(
            gate,
            &[(
                "listen.max_connections",
                (1000 + (*sighups as i64 + 1) % 2).into(),
            )],
        );
        gate.signal("HUP");
        *sighups += 1;
        gate.expect_metric_at_least(
            "hookgate_config_reloads_total",
            &[("result", "success")],
            *sighups as f64,
            Duration::from_secs(10),
        )
        .await;
    }
}

/// Waits for every connection to close, then for the upstream pool and lingering bodies.
async fn settle(gate: &Gate) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let open = gate.metrics().await.value("hookgate_open_connections", &[]);
        if open == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hookgate_open_connections still {open:?} after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(SETTLE).await;
}

/// The hookgate process's resident memory, open file descriptors and threads at one moment.
struct Sample {
    label: &'static str,
    rss_kib: u64,
    fds: usize,
    threads: u64,
}

impl Sample {
    fn of(pid: u32, label: &'static str) -> Sample {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("/proc fd")
            .count();
        Sample {
            label,
            rss_kib: field("VmRSS:"),
            fds,
            threads: field("Threads:"),
        }
    }
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<26} RSS {:>7} KiB, {:>4} fds, {:>3} threads",
            self.label, self.rss_kib, self.fds, self.threads
        )
    }
}

fn assert_flat(baseline: &Sample, end: &Sample) {
    assert!(
        end.fds <= baseline.fds + FD_SLACK,
        "file descriptors grew: {baseline} -> {end}"
    );
    assert!(
        end.rss_kib <= baseline.rss_kib + RSS_SLACK_KIB,
        "resident memory grew by more than {RSS_SLACK_KIB} KiB: {baseline} -> {end}"
    );
}

/// A counting upstream that keeps no bodies: `(target, body length)` of each request, and how
/// many arrived unsigned or still carrying the required header.
struct Sink {
    url: String,
    state: Arc<SinkState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct SinkState {
    seen: Mutex<Vec<(String, usize)>>,
    unsigned: AtomicU64,
    secret_forwarded: AtomicU64,
}

impl Sink {
    /// Serves on its own thread and runtime, like `Upstream`, so client load never stalls it.
    fn start() -> Sink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind sink");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(SinkState::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("sink runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let accept = async {
                    while let Ok((s, _)) = l.accept().await {
                        let st = st.clone();
                        let service = hyper::service::service_fn(move |req| sink(req, st.clone()));
                        tokio::spawn(
                            hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(s), service),
                        );
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Sink {
            url,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<(String, usize)> {
        self.state.seen.lock().expect("lock").clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn sink(
    req: http::Request<hyper::body::Incoming>,
    state: Arc<SinkState>,
) -> Result<http::Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let len = body.collect().await?.to_bytes().len();
    if !parts.headers.contains_key("signature") {
        state.unsigned.fetch_add(1, Ordering::Relaxed);
    }
    if parts.headers.contains_key(HEADER_NAME) {
        state.secret_forwarded.fetch_add(1, Ordering::Relaxed);
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or("", |p| p.as_str())
        .to_owned();
    state.seen.lock().expect("lock").push((target, len));
    Ok(http::Response::new(Full::new(Bytes::from_static(
        br#"{"upstream":"ok"}"#,
    ))))
}

fn assert_upstream_saw_exactly_the_good_requests(tally: &Tally, sink: &Sink) {
    let mut sent = tally.sent.lock().expect("lock").clone();
    let mut seen = sink.seen();
    sent.sort();
    seen.sort();
    if sent != seen {
        let missing: Vec<_> = sent.iter().filter(|r| !seen.contains(r)).take(5).collect();
        let extra: Vec<_> = seen.iter().filter(|r| !sent.contains(r)).take(5).collect();
        panic!(
            "upstream saw {} requests, clients got 200 for {}; missing {missing:?}, extra {extra:?}",
            seen.len(),
            sent.len()
        );
    }
    assert_eq!(
        sink.state.unsigned.load(Ordering::Relaxed),
        0,
        "unsigned requests forwarded"
    );
    assert_eq!(
        sink.state.secret_forwarded.load(Ordering::Relaxed),
        0,
        "required header not stripped"
    );
}

/// What the access log says, counted once at the end.
#[derive(Debug)]
struct LogCounts {
    header_timeouts: u64,
    sighup_reloads: u64,
    file_change_reloads: u64,
}

impl LogCounts {
    fn of(gate: &Gate) -> LogCounts {
        let mut c = LogCounts {
            header_timeouts: 0,
            sighup_reloads: 0,
            file_change_reloads: 0,
        };
        for v in gate.stdout.json() {
            if v["reason"] == "header_timeout" {
                c.header_timeouts += 1;
            } else if v["msg"] == "config reloaded" && v["trigger"] == "SIGHUP" {
                c.sighup_reloads += 1;
            } else if v["msg"] == "config reloaded" {
                c.file_change_reloads += 1;
            }
        }
        c
    }
}

fn assert_counted(m: &admin::Metrics, tally: &Tally, log: &LogCounts, sighups: u64) {
    let g = |n: &AtomicU64| Tally::get(n) as f64;
    let requests = |outcome: &str, reason: &str| {
        m.value(
            "hookgate_requests_total",
            &[("outcome", outcome), ("reason", reason)],
        )
    };
    let handshakes = |result: &str| m.value("hookgate_tls_handshakes_total", &[("result", result)]);
    let reloads = |result: &str| m.value("hookgate_config_reloads_total", &[("result", result)]);
    let checks = [
        (
            "forwarded/ok",
            requests("forwarded", "ok"),
            tally.good() as f64,
        ),
        (
            "denied/header",
            requests("denied", "header"),
            g(&tally.wrong_header),
        ),
        (
            "denied/developer_payload",
            requests("denied", "developer_payload"),
            g(&tally.wrong_payload),
        ),
        (
            "denied/body_too_large",
            requests("denied", "body_too_large"),
            g(&tally.too_large),
        ),
        (
            "error/timeout",
            requests("error", "timeout"),
            tally.stalled() as f64,
        ),
        ("error/bad_request", requests("error", "bad_request"), 0.0),
        (
            "error/upstream_unavailable",
            requests("error", "upstream_unavailable"),
            0.0,
        ),
        (
            "error/upstream_timeout",
            requests("error", "upstream_timeout"),
            0.0,
        ),
        ("handshake ok", handshakes("ok"), g(&tally.pinned)),
        (
            "handshake no_client_cert",
            handshakes("no_client_cert"),
            g(&tally.no_cert),
        ),
        (
            "handshake thumbprint_denied",
            handshakes("thumbprint_denied"),
            g(&tally.unpinned),
        ),
        ("handshake timeout", handshakes("timeout"), 0.0),
        (
            "connections accepted",
            m.value("hookgate_connections_total", &[("result", "accepted")]),
            g(&tally.connections),
        ),
        ("reloads failure", reloads("failure"), 0.0),
        (
            "open connections",
            m.value("hookgate_open_connections", &[]),
            0.0,
        ),
    ];
    let wrong: Vec<String> = checks
        .iter()
        .filter(|(_, got, want)| *got != Some(*want))
        .map(|(what, got, want)| format!("{what}: want {want}, got {got:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "metrics disagree with the clients:\n{}",
        wrong.join("\n")
    );
    // The config file is watched too: a watcher tick between an edit and its SIGHUP may reload
    // once more ("file change"); every SIGHUP must still be its own successful reload.
    assert_eq!(log.sighup_reloads, sighups, "SIGHUP reloads logged");
    assert_eq!(
        reloads("success"),
        Some((sighups + log.file_change_reloads) as f64),
        "successful reloads: {sighups} SIGHUPs + {} file changes",
        log.file_change_reloads
    );
    assert!(log.file_change_reloads <= sighups, "{log:?}");
    assert!(
        log.header_timeouts >= Tally::get(&tally.slowloris),
        "each slowloris close is logged as header_timeout: {log:?}"
    );
}
