//! Clients that stop talking are bounded: a body that stalls mid-way gets 408 after
//! `header_timeout` (HTTP/1.1 and HTTP/2), and an HTTP/2 peer that never answers the server's
//! SETTINGS or its GOAWAY ping is disconnected after `idle_timeout`, not held forever.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::*;

#[tokio::test]
async fn answers_408_with_connection_close_when_an_http1_body_stalls_after_four_of_a_hundred_bytes()
{
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.header_timeout", "1s")
        .start()
        .await;
    let mut tls = connect(&gate).await;
    let head = format!(
        "POST /stall HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\""
    );
    let start = Instant::now();
    let reply = client::raw_exchange(&mut tls, head.as_bytes(), Duration::from_secs(6)).await;
    let took = start.elapsed();
    let resp = reply.expect_response();
    resp.assert_error(408, "request_timeout");
    assert_eq!(resp.headers["connection"], "close");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "408 after {took:?}"
    );
    gate.expect_requests("error", "timeout", 1.0).await;
    let log = request_log(&gate, resp).await;
    assert_eq!(log["status"], 408);
    assert_eq!(log["reason"], "timeout");
    up.assert_untouched();
}

#[tokio::test]
async fn answers_408_to_an_http2_stream_whose_headers_never_get_a_body() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.header_timeout", "1s")
        .start()
        .await;
    let mut h2 = h2_stalled(&gate).await;
    let req = http::Request::builder()
        .method("POST")
        .uri("https://localhost/stall")
        .header(HEADER_NAME, HEADER_SECRET)
        .header("content-type", "application/json")
        .body(Stalled)
        .expect("request");
    let start = Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(6), h2.send_request(req))
        .await
        .expect("the stalled stream must be answered, not held")
        .expect("HTTP/2 response");
    let took = start.elapsed();
    let reply = collect(resp).await;
    reply.assert_error(408, "request_timeout");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "408 after {took:?}"
    );
    gate.expect_requests("error", "timeout", 1.0).await;
    assert_eq!(request_log(&gate, &reply).await["status"], 408);
    up.assert_untouched();
}

#[tokio::test]
async fn disconnects_an_http2_peer_that_never_answers_after_its_settings() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.idle_timeout", "1s")
        .start()
        .await;
    let mut tls = gate
        .client()
        .alpn(&["h2"])
        .connect(gate.addr)
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN h2");
    tls.write_all(H2_PREFACE_AND_SETTINGS)
        .await
        .expect("preface");
    tls.flush().await.expect("flush");
    // From here on the client acknowledges nothing: not the SETTINGS, not the GOAWAY ping.
    let (bytes, closed_after) = read_until_closed(&mut tls, Duration::from_secs(8)).await;
    let frames = h2_frames(&bytes);
    let closed_after =
        closed_after.unwrap_or_else(|| panic!("still open after 8 s; frames: {frames:?}"));
    assert!(
        closed_after < Duration::from_secs(5),
        "closed only after {closed_after:?}"
    );
    assert!(
        frames.iter().any(|f| f.0 == GOAWAY),
        "the server announced the close with GOAWAY first: {frames:?}"
    );
    gate.expect_metric("hookgate_open_connections", &[], 0.0)
        .await;
    up.assert_untouched();
}

/// `request.max_buffered` bounds the bodies buffered by all requests together: while one
/// request holds the whole budget (its upstream is slow), another waits for room up to
/// `header_timeout`, then gets 408 and is not forwarded; once the first finishes, room is back.
#[tokio::test]
async fn a_body_that_finds_no_buffer_room_within_header_timeout_gets_408() {
    let up = Upstream::start();
    up.set_behavior(Behavior::Delay(Duration::from_millis(2500)));
    let gate = GateConfig::new(&up.url)
        .set("listen.header_timeout", "1s")
        .set("request.max_body", "64KiB")
        .set("request.max_buffered", "64KiB")
        .start()
        .await;
    let body = "x".repeat(60 * 1024);
    let request = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };

    // The first request takes 60 of the 64 KiB and keeps them until its slow upstream answers.
    let mut first_tls = connect(&gate).await;
    let first_req = request("/first");
    let first = tokio::spawn(async move {
        client::raw_exchange(
            &mut first_tls,
            first_req.as_bytes(),
            Duration::from_secs(10),
        )
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut second_tls = connect(&gate).await;
    let start = Instant::now();
    let reply = client::raw_exchange(
        &mut second_tls,
        request("/second").as_bytes(),
        Duration::from_secs(6),
    )
    .await;
    let took = start.elapsed();
    let resp = reply.expect_response();
    resp.assert_error(408, "request_timeout");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2400),
        "408 after {took:?}, before the first request released its room"
    );
    let log = request_log(&gate, resp).await;
    assert!(
        log["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("max_buffered"),
        "{log}"
    );

    assert_eq!(
        first.await.expect("first request").expect_response().status,
        200
    );
    up.set_behavior(Behavior::default());
    let mut third_tls = connect(&gate).await;
    let reply = client::raw_exchange(
        &mut third_tls,
        request("/third").as_bytes(),
        Duration::from_secs(6),
    )
    .await;
    assert_eq!(
        reply.expect_response().status,
        200,
        "room is returned after a request"
    );
    let paths: Vec<String> = up.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(paths, ["/first", "/third"]);
}
