//! Issue 3 end to end: the RFC 9421 signature hookgate adds is verified by the independent
//! Python library (`tests/py/verifying_upstream.py`) behind the real gate, tampering is detected,
//! and the developerPayload check admits a realistic webhook and refuses everything else.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::support::hookgate::{content_digest, signing_key_b64, SIGNING_KEY};
use crate::support::tools::PyVerifier;
use crate::support::upstream::Recorded;
use crate::support::*;

fn verified(reply: &Reply, what: &str) -> Value {
    let v = reply.json();
    assert_eq!(reply.status, 200, "{what}: the verifier refused: {v}");
    assert_eq!(v["signature"], "ok", "{what}: {v}");
    assert_eq!(v["digest"], "ok", "{what}: {v}");
    assert_eq!(v["keyid"], "hookgate-1", "{what}: {v}");
    v
}

#[tokio::test]
async fn signatures_verify_with_the_python_library_through_the_real_gate() {
    let py = PyVerifier::start(&signing_key_b64(), "hookgate-1");
    let gate = GateConfig::new(&py.url)
        .set("request.max_body", "4MiB")
        .start()
        .await;

    let v = verified(
        &gate
            .post(
                "/webhooks/completed?event=done&id=42",
                scan_completed(3),
                &[],
            )
            .await,
        "query",
    );
    assert_eq!(v["path"], "/webhooks/completed?event=done&id=42");
    verified(
        &gate
            .post("/webhooks/completed", scan_completed(1), &[])
            .await,
        "no query",
    );
    let mut h1 = gate.h1().await;
    let empty = h1
        .send(request(
            "PUT",
            "/empty",
            &[(HEADER_NAME, HEADER_SECRET)],
            "",
        ))
        .await;
    assert_eq!(verified(&empty, "empty body")["body_len"], 0);
    // Keep-alive: a second signed request on the same client and upstream connections.
    verified(
        &h1.send(request(
            "POST",
            "/again?x=1",
            &[(HEADER_NAME, HEADER_SECRET)],
            "{}",
        ))
        .await,
        "keep-alive",
    );
    let big = scan_completed(3000);
    assert!(big.len() > 1024 * 1024);
    let v = verified(
        &gate.post("/webhooks/big", big.clone(), &[]).await,
        "large body",
    );
    assert_eq!(v["body_len"], big.len());

    let tls = gate
        .client()
        .alpn(&["h2"])
        .connect(gate.addr)
        .await
        .expect("handshake");
    let mut h2 = H2::over(tls).await;
    let mut req = request(
        "POST",
        "https://localhost/h2/hook?via=h2",
        &[(HEADER_NAME, HEADER_SECRET)],
        scan_completed(2),
    );
    req.headers_mut().remove("host");
    let v = verified(&h2.send(req).await, "HTTP/2");
    assert_eq!(v["path"], "/h2/hook?via=h2");
}

#[tokio::test]
async fn signatures_cover_the_upstream_base_path_and_verify() {
    let py = PyVerifier::start(&signing_key_b64(), "hookgate-1");
    let gate = GateConfig::new(&format!("{}/app/v2", py.url)).start().await;
    let v = verified(
        &gate.post("/hooks/x?q=%20a", scan_completed(1), &[]).await,
        "base path",
    );
    assert_eq!(v["path"], "/app/v2/hooks/x?q=%20a");
}

#[tokio::test]
async fn a_gate_signing_with_another_key_is_refused_by_the_verifier_and_the_401_relayed() {
    let py = PyVerifier::start(&signing_key_b64(), "hookgate-1");
    let other = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    };
    let gate = GateConfig::new(&py.url)
        .env("HOOKGATE_SIGNING_KEY", &other)
        .start()
        .await;
    let reply = gate.post("/hook", scan_completed(1), &[]).await;
    assert_eq!(reply.status, 401, "{:?}", reply.body);
    let v = reply.json();
    assert_eq!(v["signature"], "failed", "{v}");
    assert_eq!(v["check"], "signature", "{v}");
    // Relayed as the upstream's response, with hookgate's request id added.
    assert_eq!(v["headers"]["x-request-id"], reply.request_id().as_str());
    gate.expect_requests("forwarded", "ok", 1.0).await;
}

/// A change made to a replayed request.
type Alter<'a> = Box<dyn FnOnce(&mut http::Request<Full<Bytes>>) + 'a>;

/// Replays a request hookgate forwarded, possibly altered, straight to the Python verifier.
async fn replay(
    py: &PyVerifier,
    seen: &Recorded,
    alter: impl FnOnce(&mut http::Request<Full<Bytes>>),
) -> (u16, Value) {
    let addr = py.url.strip_prefix("http://").expect("http url");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect verifier");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("h1");
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(seen.method.clone())
        .uri(seen.target.as_str())
        .body(Full::new(seen.body.clone()))
        .expect("request");
    *req.headers_mut() = seen.headers.clone();
    alter(&mut req);
    let resp = sender.send_request(req).await.expect("verifier response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&body).expect("verifier answers JSON"),
    )
}

#[tokio::test]
async fn the_python_verifier_detects_a_changed_body_path_query_or_covered_header() {
    let py = PyVerifier::start(&signing_key_b64(), "hookgate-1");
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    assert_eq!(
        gate.post("/hooks/scan?id=1", scan_completed(2), &[])
            .await
            .status,
        200
    );
    let seen = up.single();

    let (status, v) = replay(&py, &seen, |_| {}).await;
    assert_eq!(
        (status, &v["signature"]),
        (200, &json!("ok")),
        "unaltered replay must verify: {v}"
    );

    let set_header = |name: &'static str, value: &'static str| {
        move |r: &mut http::Request<Full<Bytes>>| {
            r.headers_mut()
                .insert(name, http::HeaderValue::from_static(value));
        }
    };
    let cases: Vec<(&str, Alter, &str)> = vec![
        (
            "body",
            Box::new(|r: &mut http::Request<Full<Bytes>>| {
                let mut b = seen.body.to_vec();
                b[10] ^= 1;
                *r.body_mut() = Full::new(Bytes::from(b));
            }),
            "digest",
        ),
        (
            "path",
            Box::new(|r: &mut http::Request<Full<Bytes>>| {
                *r.uri_mut() = "/hooks/other?id=1".parse().expect("uri")
            }),
            "signature",
        ),
        (
            "query",
            Box::new(|r: &mut http::Request<Full<Bytes>>| {
                *r.uri_mut() = "/hooks/scan?id=2".parse().expect("uri")
            }),
            "signature",
        ),
        (
            "method",
            Box::new(|r: &mut http::Request<Full<Bytes>>| *r.method_mut() = http::Method::PUT),
            "signature",
        ),
        (
            "x-forwarded-for",
            Box::new(set_header("x-forwarded-for", "203.0.113.9")),
            "signature",
        ),
        (
            "x-request-id",
            Box::new(set_header(
                "x-request-id",
                "00000000000000000000000000000000",
            )),
            "signature",
        ),
        (
            "x-client-cert-sha256",
            Box::new(set_header("x-client-cert-sha256", "00")),
            "signature",
        ),
        (
            "content-digest",
            Box::new(set_header(
                "content-digest",
                "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
            )),
            "signature",
        ),
    ];
    for (what, alter, check) in cases {
        let (status, v) = replay(&py, &seen, alter).await;
        assert_eq!(status, 401, "changed {what} must fail verification: {v}");
        assert_eq!(v["check"], check, "changed {what}: {v}");
    }
    // The key the verifier holds is the one hookgate used: a verifier with another key refuses.
    let wrong = PyVerifier::start(
        &{
            use base64::Engine;
            let mut k = *SIGNING_KEY;
            k[0] ^= 1;
            base64::engine::general_purpose::STANDARD.encode(k)
        },
        "hookgate-1",
    );
    let (status, v) = replay(&wrong, &seen, |_| {}).await;
    assert_eq!(
        (status, v["check"].as_str()),
        (401, Some("signature")),
        "{v}"
    );
}

/// A Copyleaks-style "scan completed" webhook with `n` internet results.
fn scan_completed(n: usize) -> String {
    scan_completed_with(json!(DEVELOPER_PAYLOAD), n)
}

fn scan_completed_with(payload: Value, n: usize) -> String {
    let internet: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "url": format!("https://example.com/articles/{i}/plagiarised-essay"),
                "id": format!("2a1b402420{i:06}"),
                "title": format!("An essay that shares {i} sentences with the submission"),
                "introduction": "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
                "matchedWords": 120 + i % 50,
                "identicalWords": 80 + i % 30,
                "similarWords": 20,
                "paraphrasedWords": 10,
                "totalWords": 1500,
                "metadata": {"filename": null, "author": "Jane Doe", "publishDate": "2023-04-01T00:00:00Z"},
                "tags": [{"code": "internet", "title": "Internet", "description": "Found on the public web"}]
            })
        })
        .collect();
    let mut body = json!({
        "status": 0,
        "scannedDocument": {
            "scanId": "hookgate-scan-2024-0001",
            "totalWords": 1532,
            "totalExcluded": 12,
            "credits": 2,
            "expectedCredits": 2,
            "creationTime": "2024-05-01T10:00:00.000000Z",
            "metadata": {"filename": "essay.docx"},
            "enabled": {"plagiarismDetection": true, "aiDetection": false}
        },
        "results": {
            "internet": internet,
            "database": [],
            "batch": [],
            "repositories": [],
            "score": {
                "identicalWords": 410,
                "minorChangedWords": 35,
                "relatedMeaningWords": 12,
                "aggregatedScore": 29.1
            }
        },
        "notifications": {"alerts": []},
        "downloadableReport": {"status": "success", "report": "https://example.com/report.pdf"}
    });
    if !payload.is_null() {
        body["developerPayload"] = payload;
    }
    body.to_string()
}

fn with_payload_check(upstream: &str) -> GateConfig {
    GateConfig::new(upstream)
        .set("developer_payload.pointer", "/developerPayload")
        .set_toml(
            "developer_payload.values",
            r#"[{ env = "HOOKGATE_DEVELOPER_PAYLOAD" }, "payload-being-rotated-out"]"#,
        )
        .set("developer_payload.path_prefixes", vec!["/"])
}

#[tokio::test]
async fn admits_a_realistic_scan_completed_webhook_with_the_developer_payload() {
    let up = Upstream::start();
    let gate = with_payload_check(&up.url).start().await;
    let body = scan_completed(5);
    assert_eq!(
        gate.post("/webhooks/copyleaks/completed", body.clone(), &[])
            .await
            .status,
        200
    );
    // Any listed value matches (rotation).
    let rotated = scan_completed_with(json!("payload-being-rotated-out"), 1);
    assert_eq!(
        gate.post("/webhooks/copyleaks/completed", rotated, &[])
            .await
            .status,
        200
    );
    let seen = up.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(&seen[0].body[..], body.as_bytes());
    gate.expect_requests("forwarded", "ok", 2.0).await;
    gate.expect_requests("denied", "developer_payload", 0.0)
        .await;
}

#[tokio::test]
async fn refuses_with_403_a_body_that_is_not_json_lacks_the_payload_or_has_a_wrong_one() {
    let up = Upstream::start();
    let gate = with_payload_check(&up.url).start().await;
    let cases = [
        ("not JSON", "status=0&developerPayload=x".to_owned()),
        ("truncated JSON", scan_completed(1)[..50].to_owned()),
        ("missing", scan_completed_with(Value::Null, 1)),
        (
            "wrong value",
            scan_completed_with(json!("devpayload-guess"), 1),
        ),
        ("number", scan_completed_with(json!(4242), 1)),
        (
            "object",
            scan_completed_with(json!({ "value": DEVELOPER_PAYLOAD }), 1),
        ),
        ("array", scan_completed_with(json!([DEVELOPER_PAYLOAD]), 1)),
        (
            "prefix only",
            scan_completed_with(json!(&DEVELOPER_PAYLOAD[..10]), 1),
        ),
        ("empty body", String::new()),
    ];
    for (what, body) in &cases {
        let reply = gate
            .post("/webhooks/copyleaks/completed", body.clone(), &[])
            .await;
        reply.assert_error(403, "forbidden");
        let id = reply.request_id();
        let line = gate
            .expect_log(what, |v| v["request_id"] == id.as_str())
            .await;
        assert_eq!(line["reason"], "developer_payload", "{what}: {line}");
        assert_eq!(line["outcome"], "denied", "{what}: {line}");
        assert_eq!(line["status"], 403, "{what}: {line}");
    }
    gate.expect_requests("denied", "developer_payload", cases.len() as f64)
        .await;
    up.assert_untouched();
    let out = gate.all_output();
    assert!(
        !out.contains(DEVELOPER_PAYLOAD) && !out.contains("devpayload-guess"),
        "a payload value was logged"
    );
}

#[tokio::test]
async fn checks_the_developer_payload_only_under_its_path_prefixes() {
    let up = Upstream::start();
    let gate = with_payload_check(&up.url)
        .set("developer_payload.path_prefixes", vec!["/webhooks/"])
        .start()
        .await;
    assert_eq!(
        gate.post("/health-ping", "not json at all", &[])
            .await
            .status,
        200
    );
    gate.post("/webhooks/x", "not json at all", &[])
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        gate.post("/webhooks/x", scan_completed(1), &[])
            .await
            .status,
        200
    );
    let seen = up.requests();
    assert_eq!(
        seen.iter().map(|r| r.target.as_str()).collect::<Vec<_>>(),
        ["/health-ping", "/webhooks/x"]
    );
    gate.expect_requests("denied", "developer_payload", 1.0)
        .await;
}

#[tokio::test]
async fn admits_a_five_mebibyte_realistic_webhook_with_the_developer_payload() {
    let up = Upstream::start();
    let gate = with_payload_check(&up.url)
        .set("request.max_body", "8MiB")
        .start()
        .await;
    let body = scan_completed(10_000);
    assert!(body.len() > 5 * 1024 * 1024, "{} bytes", body.len());
    let reply = tokio::time::timeout(
        Duration::from_secs(20),
        gate.post("/webhooks/big", body.clone(), &[]),
    )
    .await
    .expect("in time");
    assert_eq!(reply.status, 200);
    let seen = up.single();
    assert_eq!(seen.body.len(), body.len());
    assert!(
        seen.body == body.as_bytes(),
        "the body must arrive unchanged"
    );
    assert_eq!(
        seen.header("content-digest"),
        content_digest(body.as_bytes())
    );
    // The same body against a 5 MiB limit is refused with 413 before the payload check.
    let small = with_payload_check(&up.url)
        .set("request.max_body", "5MiB")
        .start()
        .await;
    small
        .post("/webhooks/big", body, &[])
        .await
        .assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn never_writes_secrets_or_bodies_to_stdout_or_stderr_even_at_trace_level() {
    let up = Upstream::start();
    let gate = with_payload_check(&up.url)
        .set("log.level", "trace")
        .start()
        .await;
    let marker = "body-marker-3f9c1d";
    let body = scan_completed_with(json!(DEVELOPER_PAYLOAD), 1).replace("Jane Doe", marker);
    assert_eq!(gate.post("/ok", body.clone(), &[]).await.status, 200);
    gate.post(
        "/bad-header",
        body.clone(),
        &[(HEADER_NAME, "wrong-header-value-77")],
    )
    .await
    .assert_error(403, "forbidden");
    let wrong_payload = scan_completed_with(json!("wrong-payload-value-88"), 1);
    gate.post("/bad-payload", wrong_payload, &[])
        .await
        .assert_error(403, "forbidden");
    gate.expect_requests("denied", "developer_payload", 1.0)
        .await;
    gate.expect_log("for the payload denial", |v| v["path"] == "/bad-payload")
        .await;
    let out = gate.all_output();
    assert!(
        out.contains("/bad-payload"),
        "the log must have been captured: {out}"
    );
    for secret in [
        HEADER_SECRET,
        DEVELOPER_PAYLOAD,
        &signing_key_b64(),
        "wrong-header-value-77",
        "wrong-payload-value-88",
        marker,
    ] {
        assert!(
            !out.contains(secret),
            "{secret:?} appeared in hookgate's output:\n{out}"
        );
    }
}
