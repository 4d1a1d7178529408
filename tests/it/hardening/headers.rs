//! The second review's request-path findings, from real clients: `;` parameters cannot skip the
//! developerPayload prefix, other proxies' trust headers never reach the upstream in any
//! spelling, Host and Transfer-Encoding are exactly what SPEC §3 allows, and an upstream answer
//! hookgate cannot relay faithfully (101, stray 1xx, Content-Length with Transfer-Encoding) is 502.

use std::io::{Read, Write};
use std::net::TcpListener;

use super::*;

fn payload_gate(up: &Upstream) -> GateConfig {
    GateConfig::new(&up.url)
        .set("request.path_prefixes", vec!["/"])
        .set("developer_payload.pointer", "/developerPayload")
        .set_toml(
            "developer_payload.values",
            r#"[{ env = "HOOKGATE_DEVELOPER_PAYLOAD" }]"#,
        )
        .set("developer_payload.path_prefixes", vec!["/hooks/"])
}

#[tokio::test]
async fn semicolon_parameters_cannot_skip_the_developer_payload_prefix() {
    let up = Upstream::start();
    let gate = payload_gate(&up).start().await;
    let wrong = r#"{"developerPayload":"not-the-payload"}"#;
    let spellings = [
        "/hooks;x/a",
        "/hooks;/a",
        "/hooks;jsessionid=1/a",
        "/HOOKS;v=2//a",
    ];
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
    // The right payload passes under every spelling, and the path goes on as received.
    let right = format!(r#"{{"developerPayload":"{DEVELOPER_PAYLOAD}"}}"#);
    for path in spellings {
        assert_eq!(gate.post(path, right.clone(), &[]).await.status, 200);
    }
    let targets: Vec<String> = up.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, spellings);
    // A `;` that is not in the prefix's segments changes nothing: /hooksx is not /hooks/.
    assert_eq!(gate.post("/hooksx;a/b", wrong, &[]).await.status, 200);
}

#[tokio::test]
async fn encoded_slashes_and_backslashes_are_refused() {
    let up = Upstream::start();
    let gate = payload_gate(&up).start().await;
    for (path, detail) in [
        ("/hooks%2fa", "encoded slash or backslash in path"),
        ("/hooks%2Fa", "encoded slash or backslash in path"),
        ("/hooks%5ca", "encoded slash or backslash in path"),
        ("/hooks\\a", "backslash in path"),
    ] {
        let mut tls = connect(&gate).await;
        let reply = exchange(&mut tls, &raw_post(path, &[], "{}")).await;
        let resp = reply.expect_response();
        resp.assert_error(400, "bad_request");
        assert_eq!(request_log(&gate, resp).await["detail"], detail, "{path}");
    }
    gate.expect_requests("error", "bad_request", 4.0).await;
    up.assert_untouched();
}

/// Every SPEC §4 name another proxy or framework may trust, sent in both spellings.
const TRUSTED_ELSEWHERE: &[&str] = &[
    "X-Real-IP",
    "X-Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "X-Cluster-Client-IP",
    "X-Original-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Port",
    "X-Forwarded-Server",
    "X-Forwarded-Ssl",
    "X-Forwarded-Scheme",
    "X-Forwarded-Prefix",
    "X-Forwarded-Client-Cert",
    "X-Forwarded-Tls-Client-Cert",
    "X-Forwarded-Tls-Client-Cert-Info",
    "X-Client-Cert",
    "X-Client-Cert-Sha1",
    "Client-Cert-Chain",
    "X-SSL-Client-Cert",
    "X-SSL-Client-Verify",
    "X-SSL-Client-S-DN",
    "X-SSL-Client-I-DN",
    "Ssl-Client-Cert",
    "Ssl-Client-Verify",
    "X-ARR-ClientCert",
    "X-Amzn-Mtls-Clientcert",
    "X-Amzn-Mtls-Clientcert-Leaf",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
    "X-Forwarded-Proto",
    "Forwarded",
    "X-Request-Id",
    // Set by hookgate on store deliveries (SPEC §9.2): never the client's on any route.
    "Hookgate-Attempt",
    "Hookgate-Received-At",
];

#[tokio::test]
async fn no_spelling_of_a_trusted_header_reaches_the_upstream() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("request.strip_headers", vec!["X-Internal-User"])
        .start()
        .await;
    let forged = "forged-by-client";
    let mut lines: Vec<String> = Vec::new();
    for name in TRUSTED_ELSEWHERE {
        lines.push(format!("{name}: {forged}"));
        lines.push(format!("{}: {forged}", name.replace('-', "_")));
    }
    lines.push(format!("X_Webhook_Secret: {HEADER_SECRET}"));
    lines.push(format!("X-Internal-User: {forged}"));
    lines.push(format!("x_internal_user: {forged}"));
    lines.push("X-Scan-Id: 42".into());
    let extra: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut tls = connect(&gate).await;
    let reply = exchange(&mut tls, &raw_post("/strip", &extra, "{}")).await;
    assert_eq!(reply.expect_response().status, 200);
    let seen = up.single();
    let leaked: Vec<_> = seen
        .headers
        .iter()
        .filter(|(_, v)| {
            v.as_bytes() == forged.as_bytes() || v.as_bytes() == HEADER_SECRET.as_bytes()
        })
        .map(|(k, _)| k.as_str().to_owned())
        .collect();
    assert!(leaked.is_empty(), "reached the upstream: {leaked:?}");
    for name in [
        "x_webhook_secret",
        "x-webhook-secret",
        "x-internal-user",
        "x_real_ip",
    ] {
        assert!(seen.headers.get(name).is_none(), "{name}");
    }
    // What hookgate sets itself is there once; an ordinary header passes.
    assert_eq!(seen.header("x-forwarded-proto"), "https");
    assert_eq!(seen.header("forwarded"), "for=127.0.0.1;proto=https");
    assert_eq!(
        seen.header("x-request-id"),
        reply.expect_response().request_id()
    );
    assert_eq!(seen.header("x-scan-id"), "42");
}

#[tokio::test]
async fn method_override_headers_cannot_get_around_request_methods() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let reply = gate
        .post(
            "/m",
            "{}",
            &[
                ("X-HTTP-Method-Override", "DELETE"),
                ("X-Method-Override", "DELETE"),
                ("X_HTTP_Method", "DELETE"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200);
    let seen = up.single();
    assert_eq!(seen.method, "POST");
    let overrides = seen
        .headers
        .values()
        .filter(|v| v.as_bytes() == b"DELETE")
        .count();
    assert_eq!(overrides, 0, "{:?}", seen.headers);
}

#[tokio::test]
async fn host_must_be_one_without_userinfo() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let secret = format!("{HEADER_NAME}: {HEADER_SECRET}");
    let cases = [
        (
            format!("POST /h HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n{secret}\r\nContent-Length: 2\r\n\r\n{{}}"),
            "more than one Host",
        ),
        (
            format!("POST /h HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n{secret}\r\nContent-Length: 2\r\n\r\n{{}}"),
            "more than one Host",
        ),
        (
            format!("POST /h HTTP/1.1\r\n{secret}\r\nContent-Length: 2\r\n\r\n{{}}"),
            "no Host header",
        ),
        (
            format!("POST /h HTTP/1.1\r\nHost: user:pw@localhost\r\n{secret}\r\nContent-Length: 2\r\n\r\n{{}}"),
            "userinfo in the Host header",
        ),
        (
            format!("POST https://user@localhost/h HTTP/1.1\r\nHost: user@localhost\r\n{secret}\r\nContent-Length: 2\r\n\r\n{{}}"),
            "userinfo in the request target's authority",
        ),
    ];
    for (request, detail) in &cases {
        let mut tls = connect(&gate).await;
        let reply = exchange(&mut tls, request).await;
        let resp = reply.expect_response();
        resp.assert_error(400, "bad_request");
        assert_eq!(
            request_log(&gate, resp).await["detail"],
            *detail,
            "{request}"
        );
    }
    gate.expect_requests("error", "bad_request", cases.len() as f64)
        .await;
    up.assert_untouched();

    // HTTP/2: `:authority` plus two `host` fields.
    let tls = gate
        .client()
        .alpn(&["h2"])
        .connect(gate.addr)
        .await
        .expect("handshake");
    let mut h2 = client::H2::over(tls).await;
    let req = http::Request::builder()
        .method("POST")
        .uri("https://localhost/h2")
        .header("host", "localhost")
        .header("host", "localhost")
        .header(HEADER_NAME, HEADER_SECRET)
        .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
        .expect("request");
    h2.send(req).await.assert_error(400, "bad_request");
    up.assert_untouched();
    // One Host, or :authority alone, goes through.
    assert_eq!(gate.post("/ok", "{}", &[]).await.status, 200);
    let req = http::Request::builder()
        .method("POST")
        .uri("https://localhost/ok2")
        .header(HEADER_NAME, HEADER_SECRET)
        .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
        .expect("request");
    assert_eq!(h2.send(req).await.status, 200);
    let hosts: Vec<String> = up
        .requests()
        .iter()
        .map(|r| r.header("host").to_owned())
        .collect();
    assert_eq!(hosts, ["localhost", "localhost"]);
}

#[tokio::test]
async fn transfer_encoding_must_be_chunked_alone() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let chunked = |coding: &str| {
        format!(
            "POST /te HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nTransfer-Encoding: {coding}\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
        )
    };
    for coding in ["gzip, chunked", "foo, chunked", "chunked, chunked"] {
        let mut tls = connect(&gate).await;
        let reply = exchange(&mut tls, &chunked(coding)).await;
        let resp = reply.expect_response();
        resp.assert_error(400, "bad_request");
        assert_eq!(
            request_log(&gate, resp).await["detail"],
            "Transfer-Encoding other than chunked alone",
            "{coding}"
        );
    }
    up.assert_untouched();
    let mut tls = connect(&gate).await;
    assert_eq!(
        exchange(&mut tls, &chunked("chunked"))
            .await
            .expect_response()
            .status,
        200
    );
    let seen = up.single();
    assert_eq!(
        (&seen.body[..], seen.header("content-length")),
        (&b"{}"[..], "2")
    );
}

/// An upstream that answers every request with `answer` (raw bytes), then closes.
fn raw_upstream(answer: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head and the small body (hookgate always sends Content-Length).
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let _ = s.write_all(answer);
        }
    });
    url
}

#[tokio::test]
async fn an_answer_hookgate_cannot_relay_faithfully_is_a_502() {
    let cases: [(&[u8], &str); 4] = [
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\nraw bytes",
            "101 Switching Protocols",
        ),
        (
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "informational (1xx)",
        ),
        (
            b"HTTP/1.1 199 Whatever\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "informational (1xx)",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "Content-Length together with Transfer-Encoding",
        ),
    ];
    for (answer, detail) in cases {
        let gate = GateConfig::new(&raw_upstream(answer)).start().await;
        let reply = gate.post("/up", "{}", &[]).await;
        reply.assert_error(502, "upstream_unavailable");
        let log = request_log(&gate, &reply).await;
        assert!(
            log["detail"].as_str().unwrap_or_default().contains(detail),
            "{log}"
        );
        gate.expect_requests("error", "upstream_unavailable", 1.0)
            .await;
    }
    // 100 and 103 before the final answer are fine: the final answer is relayed.
    for answer in [
        &b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
        &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"[..],
    ] {
        let gate = GateConfig::new(&raw_upstream(answer)).start().await;
        let reply = gate.post("/up", "{}", &[]).await;
        assert!(reply.status == 200 || reply.status == 201, "{:?}", reply.status);
        assert_eq!(&reply.body[..], b"ok");
    }
}

#[tokio::test]
async fn a_body_trickled_past_body_timeout_gets_408() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.header_timeout", "1s")
        .set("listen.body_timeout", "2s")
        .start()
        .await;
    let mut tls = connect(&gate).await;
    let head = format!(
        "POST /trickle HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nContent-Length: 100\r\n\r\n"
    );
    use tokio::io::AsyncWriteExt;
    tls.write_all(head.as_bytes()).await.expect("head");
    let start = Instant::now();
    // One byte every 400 ms: never a stall of header_timeout, but never done either.
    let trickle = async {
        for _ in 0..100 {
            if tls.write_all(b"x").await.is_err() {
                break;
            }
            let _ = tls.flush().await;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(2600), trickle).await;
    let reply = client::read_raw(&mut tls, Duration::from_secs(3)).await;
    let took = start.elapsed();
    let resp = reply.expect_response();
    resp.assert_error(408, "request_timeout");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let log = request_log(&gate, resp).await;
    assert_eq!(log["reason"], "timeout");
    assert_eq!(
        log["detail"],
        "body not complete within listen.body_timeout"
    );
    gate.expect_requests("error", "timeout", 1.0).await;
    up.assert_untouched();
}
