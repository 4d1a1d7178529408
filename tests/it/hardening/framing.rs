//! HTTP/1.1 framing is decided once (`http1::framing`), strictly: what another parser could
//! read differently is refused in hookgate's own format (SPEC §3, §11), the connection closes,
//! and nothing on it after the refusal reaches the upstream.

use super::*;

/// Writes `bytes` on a fresh connection; one response, then whether the connection closed.
async fn send_raw(gate: &Gate, bytes: &[u8]) -> (Reply, bool) {
    let mut tls = connect(gate).await;
    let reply = client::raw_exchange(&mut tls, bytes, Duration::from_secs(5)).await;
    let resp = reply.expect_response();
    let resp = Reply {
        status: resp.status,
        version: resp.version,
        headers: resp.headers.clone(),
        body: resp.body.clone(),
    };
    let closed = read_until_closed(&mut tls, Duration::from_secs(5))
        .await
        .1
        .is_some();
    (resp, closed)
}

fn head_secret() -> String {
    format!("{HEADER_NAME}: {HEADER_SECRET}")
}

#[tokio::test]
async fn refuses_the_bare_lf_trailer_that_hid_a_phantom_head_and_forwards_nothing_after_it() {
    // Issue 15's bytes: the old inspector took the bare-LF trailer lines for a request head
    // with `Content-Length: 99999999` and stopped checking, so the CL+TE request after it
    // was forwarded.
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let json = format!("{{\"pad\":\"{}\"}}", "x".repeat(62));
    assert_eq!(json.len(), 72);
    let stream = format!(
        "POST /first HTTP/1.1\r\nHost: localhost\r\n{s}\r\nTransfer-Encoding: chunked\r\n\r\n\
         48\r\n{json}\r\n0\r\n\
         \nPUT /other/phantom HTTP/1.1\nContent-Length: 99999999\n\nX: y\r\n\r\n\
         POST /second HTTP/1.1\r\nHost: localhost\r\n{s}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        s = head_secret()
    );
    let (resp, closed) = send_raw(&gate, stream.as_bytes()).await;
    resp.assert_error(400, "bad_request");
    assert!(closed, "the connection closes after a framing refusal");
    let log = request_log(&gate, &resp).await;
    assert_eq!(
        (&log["path"], &log["detail"]),
        (&"/first".into(), &"malformed trailer field".into())
    );
    gate.expect_requests("error", "bad_request", 1.0).await;
    up.assert_untouched();
}

#[tokio::test]
async fn answers_414_to_a_request_line_over_8_kib() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let path = format!("/{}", "a".repeat(9 * 1024));
    let (resp, closed) = send_raw(&gate, raw_post(&path, &[], "{}").as_bytes()).await;
    resp.assert_error(414, "uri_too_long");
    assert!(closed);
    gate.expect_requests("error", "uri_too_long", 1.0).await;
    up.assert_untouched();
}

#[tokio::test]
async fn refuses_bare_lf_heads_and_loose_chunk_lines_in_hookgates_format() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let s = head_secret();
    let cases = [
        (
            format!("POST /a HTTP/1.1\nHost: localhost\n{s}\nContent-Length: 2\n\n{{}}"),
            "bare LF in the request head",
        ),
        (
            format!("POST /a HTTP/1.1\r\nHost: localhost\r\n{s}\r\nTransfer-Encoding: chunked\r\n\r\n2 ;x\r\n{{}}\r\n0\r\n\r\n"),
            "malformed chunk size line",
        ),
        (
            format!("POST /a HTTP/1.1\r\nHost: localhost\r\n{s}\r\nTransfer-Encoding: chunked\r\n\r\n2;x=\"y\r\n{{}}\r\n0\r\n\r\n"),
            "malformed chunk extension",
        ),
    ];
    for (bytes, detail) in &cases {
        let (resp, closed) = send_raw(&gate, bytes.as_bytes()).await;
        resp.assert_error(400, "bad_request");
        assert!(closed, "{detail}");
        assert_eq!(request_log(&gate, &resp).await["detail"], *detail);
    }
    gate.expect_requests("error", "bad_request", cases.len() as f64)
        .await;
    up.assert_untouched();
    // Strict is not lenient-averse: extensions and trailers in their RFC form go through.
    let ok = format!("POST /ok HTTP/1.1\r\nHost: localhost\r\n{s}\r\nTransfer-Encoding: chunked\r\n\r\n2;name=\"v\"\r\n{{}}\r\n0\r\nX-Sum: 1\r\n\r\n");
    let (resp, _) = send_raw(&gate, ok.as_bytes()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(up.single().body, b"{}"[..]);
}

#[tokio::test]
async fn every_refusal_of_a_head_hyper_would_have_answered_itself_is_hookgates_own() {
    // SPEC §11: these were hyper's bare 400/431 (no JSON, no X-Request-Id, no reason).
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let s = head_secret();
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let cases = [
        (
            format!("POST /a HTTP/1.1\r\nHost: localhost\r\n{s}\r\n{many}Content-Length: 2\r\n\r\n{{}}"),
            431,
            "header_too_large",
        ),
        (
            format!("POST /a HTTP/1.1\r\nHost: localhost\r\n{s}\r\nX: a\r\n folded\r\nContent-Length: 2\r\n\r\n{{}}"),
            400,
            "bad_request",
        ),
        (
            "P\u{1}ST /a HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
            400,
            "bad_request",
        ),
        (
            format!("POST /a HTTP/1.1\r\nHost: localhost\r\n{s}\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\n{{}}"),
            400,
            "bad_request",
        ),
    ];
    for (bytes, status, word) in &cases {
        let (resp, closed) = send_raw(&gate, bytes.as_bytes()).await;
        resp.assert_error(*status, word);
        assert!(closed, "{word}: the connection closes");
        request_log(&gate, &resp).await;
    }
    gate.expect_requests("error", "header_too_large", 1.0).await;
    gate.expect_requests("error", "bad_request", 3.0).await;
    up.assert_untouched();
}

#[tokio::test]
async fn answers_100_continue_only_when_the_body_is_wanted() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let head = |secret: &str| {
        format!("POST /e HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {secret}\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    };
    // The checks pass: `100 Continue`, then the body, then the answer.
    let mut tls = connect(&gate).await;
    let interim = client::raw_exchange(
        &mut tls,
        head(HEADER_SECRET).as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        interim.bytes.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&interim.bytes)
    );
    let reply = client::raw_exchange(&mut tls, b"{}", Duration::from_secs(5)).await;
    assert_eq!(reply.expect_response().status, 200);
    assert_eq!(up.single().body, b"{}"[..]);
    // A wrong secret: 403 at once, no `100 Continue`, and the connection closes.
    let (resp, closed) = send_raw(&gate, head("wrong").as_bytes()).await;
    resp.assert_error(403, "forbidden");
    assert!(closed);
}

#[tokio::test]
async fn a_refused_request_whose_body_came_with_its_head_leaves_the_pipelined_next_one_intact() {
    // The body of the first request arrives whole with its head (the handler takes it from the
    // buffer at once); the handler refuses it before reading it. The next request, pipelined
    // in the same write, must start exactly after that body: answered, and alone forwarded.
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("request.max_body", "64B")
        .start()
        .await;
    let smuggled = format!(
        "POST /smuggled HTTP/1.1\r\nHost: localhost\r\n{}\r\nContent-Length: 2\r\n\r\n{{}}",
        head_secret()
    );
    let refused = [
        // Wrong secret: refused on the head (403).
        (format!("POST /first HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: wrong\r\nContent-Length: {}\r\n\r\n{smuggled}", smuggled.len()), 403),
        // Declared length over max_body (413).
        (format!("POST /first HTTP/1.1\r\nHost: localhost\r\n{}\r\nContent-Length: {}\r\n\r\n{smuggled}{}", head_secret(), smuggled.len() + 70, "x".repeat(70)), 413),
    ];
    for (first, status) in refused {
        let next = raw_post("/next", &["Connection: close"], "{\"n\":1}");
        let mut tls = connect(&gate).await;
        tokio::io::AsyncWriteExt::write_all(&mut tls, format!("{first}{next}").as_bytes())
            .await
            .expect("write");
        tokio::io::AsyncWriteExt::flush(&mut tls)
            .await
            .expect("flush");
        let (bytes, closed) = read_until_closed(&mut tls, Duration::from_secs(5)).await;
        let text = String::from_utf8_lossy(&bytes);
        assert!(closed.is_some(), "closed after the last answer: {text}");
        let statuses: Vec<&str> = text
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &text[i + 9..i + 12])
            .collect();
        let first_status = status.to_string();
        // 413 may close the connection (its body is then not read on): nothing else may come.
        match statuses.as_slice() {
            [s, ok] => assert!(*s == first_status && *ok == "200", "{text}"),
            [s] => assert!(*s == first_status && status == 413, "{text}"),
            _ => panic!("answers {statuses:?}: {text}"),
        }
        let paths: Vec<String> = up.requests().iter().map(|r| r.target.clone()).collect();
        assert!(
            paths.iter().all(|p| p == "/next"),
            "only /next may be forwarded: {paths:?}"
        );
    }
}
