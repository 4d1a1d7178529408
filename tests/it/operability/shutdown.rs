//! SPEC §6 shutdown: on SIGTERM or SIGINT `/readyz` turns 503 at once (while the process still
//! runs), the listener is closed, an in-flight request completes within `shutdown_grace`, and the
//! process exits 0; a request longer than the grace does not hold the exit beyond it.

use std::time::{Duration, Instant};

use crate::support::admin;
use crate::support::client::{raw_exchange, RawReply};
use crate::support::*;

/// Starts a POST on its own connection and returns its eventual raw reply.
async fn start_in_flight(gate: &Gate) -> tokio::task::JoinHandle<RawReply> {
    let mut tls = gate.client().connect(gate.addr).await.expect("handshake");
    tokio::spawn(async move {
        let req = format!(
            "POST /slow HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nContent-Length: 2\r\n\r\n{{}}"
        );
        raw_exchange(&mut tls, req.as_bytes(), Duration::from_secs(10)).await
    })
}

async fn wait_until_upstream_holds_it(up: &Upstream) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the slow request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn drains_an_in_flight_request_then_exits_0(signal: &str) {
    let up = Upstream::start();
    up.set_behavior(Behavior::Delay(Duration::from_millis(1500)));
    let mut gate = GateConfig::new(&up.url)
        .set("listen.shutdown_grace", "5s")
        .start()
        .await;
    let in_flight = start_in_flight(&gate).await;
    wait_until_upstream_holds_it(&up).await;

    let sent = Instant::now();
    gate.signal(signal);
    // /readyz turns 503 at once, answered by the still running process.
    loop {
        match admin::get(gate.admin(), "/readyz").await {
            Ok((200, _)) => {}
            Ok((503, body)) => {
                assert!(body.contains("draining"), "reason in the body: {body}");
                break;
            }
            other => panic!("/readyz after {signal} must answer 503, got {other:?}"),
        }
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "/readyz still 200 2s after {signal}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !in_flight.is_finished(),
        "503 was observed while the request was still in flight"
    );
    // The listener closes: new connections are refused.
    loop {
        match tokio::net::TcpStream::connect(gate.addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ => {
                assert!(
                    sent.elapsed() < Duration::from_secs(2),
                    "the listener still accepts 2s after {signal}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    let reply = in_flight.await.expect("in-flight task");
    let resp = reply.expect_response();
    assert_eq!(resp.status, 200, "the in-flight request completes");
    assert_eq!(&resp.body[..], b"late");
    let status = gate
        .wait_exit(Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("still running 5s (shutdown_grace) after {signal}"));
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "{}", gate.stderr.text());
    assert!(
        took < Duration::from_secs(4),
        "exits once drained, well before shutdown_grace: {took:?}"
    );
    gate.expect_log("draining", |v| {
        v["msg"] == "draining" && v["signal"] == format!("SIG{signal}")
    })
    .await;
}

#[tokio::test]
async fn sigterm_fails_readiness_closes_the_listener_drains_in_flight_and_exits_0() {
    drains_an_in_flight_request_then_exits_0("TERM").await;
}

#[tokio::test]
async fn sigint_behaves_like_sigterm() {
    drains_an_in_flight_request_then_exits_0("INT").await;
}

#[tokio::test]
async fn a_request_longer_than_shutdown_grace_does_not_hold_the_exit() {
    let up = Upstream::start();
    up.set_behavior(Behavior::Delay(Duration::from_secs(4)));
    let mut gate = GateConfig::new(&up.url)
        .set("listen.shutdown_grace", "1s")
        .start()
        .await;
    let in_flight = start_in_flight(&gate).await;
    wait_until_upstream_holds_it(&up).await;
    let sent = Instant::now();
    gate.signal("TERM");
    let status = gate
        .wait_exit(Duration::from_secs(4))
        .await
        .expect("exits after shutdown_grace, not after the 4s upstream");
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "{}", gate.stderr.text());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "exits about shutdown_grace (1s) after SIGTERM: {took:?}"
    );
    let reply = in_flight.await.expect("in-flight task");
    assert!(
        !matches!(&reply.response, Some(r) if r.status == 200),
        "the cut-off request cannot have succeeded: {reply:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_does_not_hold_the_drain() {
    let up = Upstream::start();
    let mut gate = GateConfig::new(&up.url)
        .set("listen.shutdown_grace", "5s")
        .start()
        .await;
    // One request done; the connection stays open, idle (idle_timeout is 30 s).
    let mut idle = gate.h1().await;
    let reply = idle
        .send(request("POST", "/", &[(HEADER_NAME, HEADER_SECRET)], "{}"))
        .await;
    assert_eq!(reply.status, 200);
    let sent = Instant::now();
    gate.signal("TERM");
    let status = gate
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits before shutdown_grace ends");
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "{}", gate.stderr.text());
    assert!(
        took < Duration::from_secs(2),
        "an idle keep-alive connection is closed at once, not waited for: {took:?}"
    );
    drop(idle);
}
