//! Requests that two parsers could read differently are refused (400) and never forwarded: path
//! spellings that hide `..`, framing after an Upgrade/CONNECT request, an oversized head, an
//! HTTP/2 `Host` that differs from `:authority`. The developerPayload rule holds for every
//! spelling of its prefix, and underscore twins of identity headers do not reach the upstream.

use super::*;

#[tokio::test]
async fn refuses_dot_segments_hidden_by_parameters_double_encoding_and_overlong_utf8() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let refused = [
        ("/a/..;/b", "dot segment in path"),
        ("/a/%2e%2e;x/b", "dot segment in path"),
        ("/a/%252e%252e/b", "double percent-encoding in path"),
        ("/a/%c0%ae%c0%ae/b", "path does not decode to UTF-8"),
    ];
    for (path, detail) in refused {
        let reply = gate.post(path, "{}", &[]).await;
        reply.assert_error(400, "bad_request");
        let log = request_log(&gate, &reply).await;
        assert_eq!(log["path"], path);
        assert_eq!(log["detail"], detail, "{path}");
    }
    gate.expect_requests("error", "bad_request", 4.0).await;
    up.assert_untouched();
    // The gate itself is fine: an ordinary path with dots inside a name goes through.
    assert_eq!(gate.post("/a/b..c;v=1", "{}", &[]).await.status, 200);
    assert_eq!(up.single().target, "/a/b..c;v=1");
}

#[tokio::test]
async fn applies_the_developer_payload_prefix_to_every_spelling_of_the_route() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("request.path_prefixes", vec!["/"])
        .set("developer_payload.pointer", "/developerPayload")
        .set_toml(
            "developer_payload.values",
            r#"[{ env = "HOOKGATE_DEVELOPER_PAYLOAD" }]"#,
        )
        .set("developer_payload.path_prefixes", vec!["/hooks/"])
        .start()
        .await;
    let wrong = r#"{"developerPayload":"not-the-payload"}"#;
    let spellings = ["/hooks/x", "/%68ooks/x", "//hooks/x", "/Hooks/x"];
    for path in spellings {
        let reply = gate.post(path, wrong, &[]).await;
        reply.assert_error(403, "forbidden");
        let log = request_log(&gate, &reply).await;
        assert_eq!(
            (&log["path"], &log["reason"]),
            (&path.into(), &"developer_payload".into())
        );
    }
    gate.expect_requests("denied", "developer_payload", 4.0)
        .await;
    up.assert_untouched();
    // Outside the prefix the payload is not checked; inside, the right one passes.
    assert_eq!(gate.post("/other/x", wrong, &[]).await.status, 200);
    let right = format!(r#"{{"developerPayload":"{DEVELOPER_PAYLOAD}"}}"#);
    assert_eq!(gate.post("/%68ooks/ok", right, &[]).await.status, 200);
    let targets: Vec<String> = up.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/other/x", "/%68ooks/ok"]);
    gate.expect_requests("forwarded", "ok", 2.0).await;
}

/// Sends `first` then a request with both Transfer-Encoding and Content-Length on one
/// connection; `first` must get `first_status`, the second 400, and neither the second nor
/// anything after it is forwarded.
async fn ambiguous_request_after(gate: &Gate, first: &str, first_status: u16) {
    let mut tls = connect(gate).await;
    let reply = exchange(&mut tls, first).await;
    assert_eq!(
        reply.expect_response().status.as_u16(),
        first_status,
        "first request: {:?}",
        String::from_utf8_lossy(&reply.bytes)
    );
    assert!(!reply.closed, "the first request keeps the connection open");
    let second = format!(
        "POST /second HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
    );
    let reply = exchange(&mut tls, &second).await;
    let resp = reply.expect_response();
    resp.assert_error(400, "bad_request");
    let log = request_log(gate, resp).await;
    assert_eq!(log["path"], "/second");
    gate.expect_requests("error", "bad_request", 1.0).await;
}

#[tokio::test]
async fn refuses_an_ambiguous_request_that_follows_an_upgrade_request_on_the_connection() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let first = raw_post("/first", &["Upgrade: foo", "Connection: upgrade"], "{}");
    ambiguous_request_after(&gate, &first, 200).await;
    let seen = up.single();
    assert_eq!(
        (seen.target.as_str(), &seen.body[..]),
        ("/first", &b"{}"[..])
    );
    assert!(
        seen.headers.get("upgrade").is_none(),
        "Upgrade is hop-by-hop"
    );
}

#[tokio::test]
async fn refuses_an_ambiguous_request_that_follows_a_connect_request_on_the_connection() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let first = format!(
        "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n{HEADER_NAME}: {HEADER_SECRET}\r\n\r\n"
    );
    ambiguous_request_after(&gate, &first, 405).await;
    gate.expect_requests("denied", "method", 1.0).await;
    up.assert_untouched();
}

#[tokio::test]
async fn refuses_a_request_head_over_64_kib() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let big = "a".repeat(40 * 1024);
    let request = raw_post(
        "/big-head",
        &[&format!("X-Big-1: {big}"), &format!("X-Big-2: {big}")],
        "{}",
    );
    assert!(request.len() > 80 * 1024);
    let mut tls = connect(&gate).await;
    let reply = exchange(&mut tls, &request).await;
    let resp = reply.expect_response();
    // SPEC §11: 431, and the connection closes.
    resp.assert_error(431, "header_too_large");
    assert_eq!(
        resp.headers.get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    gate.expect_requests("error", "header_too_large", 1.0).await;
    assert_eq!(request_log(&gate, resp).await["path"], "/big-head");
    up.assert_untouched();
}

#[tokio::test]
async fn refuses_an_http2_request_whose_host_header_differs_from_its_authority() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let tls = gate
        .client()
        .alpn(&["h2"])
        .connect(gate.addr)
        .await
        .expect("handshake");
    let mut h2 = H2::over(tls).await;
    let hook = |host: Option<&str>| {
        let mut req = request(
            "POST",
            "https://localhost/hooks/h2",
            &[(HEADER_NAME, HEADER_SECRET)],
            "{}",
        );
        match host {
            Some(h) => req.headers_mut().insert("host", h.parse().expect("value")),
            None => req.headers_mut().remove("host"),
        };
        req
    };
    let reply = h2.send(hook(Some("evil.example"))).await;
    reply.assert_error(400, "bad_request");
    let log = request_log(&gate, &reply).await;
    assert_eq!(
        log["detail"],
        "Host header differs from the request target's authority"
    );
    gate.expect_requests("error", "bad_request", 1.0).await;
    up.assert_untouched();
    // The same request with only :authority (and with a matching Host) goes through.
    assert_eq!(h2.send(hook(None)).await.status, 200);
    assert_eq!(h2.send(hook(Some("localhost"))).await.status, 200);
    let hosts: Vec<String> = up
        .requests()
        .iter()
        .map(|r| r.header("host").to_owned())
        .collect();
    assert_eq!(hosts, ["localhost", "localhost"]);
}

#[tokio::test]
async fn strips_underscore_twins_of_identity_headers() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let reply = gate
        .post(
            "/twins",
            "{}",
            &[
                ("X_Forwarded_For", "203.0.113.66"),
                ("Client_Cert", ":Zm9yZ2Vk:"),
                ("X_Custom_Note", "kept"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200);
    let seen = up.single();
    for twin in ["x_forwarded_for", "client_cert"] {
        assert!(
            seen.headers.get(twin).is_none(),
            "{twin} reached the upstream: {:?}",
            seen.headers
        );
    }
    // Underscores as such pass (so the twins' absence is hookgate's doing, not the transport's).
    assert_eq!(seen.header("x_custom_note"), "kept");
    assert_eq!(seen.header("x-forwarded-for"), "127.0.0.1");
    assert_eq!(
        seen.header("client-cert"),
        Pki::get().client.client_cert_header()
    );
    let forged = seen
        .headers
        .iter()
        .filter(|(_, v)| v.as_bytes() == b"203.0.113.66" || v.as_bytes() == b":Zm9yZ2Vk:")
        .count();
    assert_eq!(forged, 0, "a forged value reached the upstream");
}
