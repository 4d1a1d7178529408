//! SPEC §7: one JSON object per line on stdout; every request's line carries the typed fields with
//! the metric's reason; connection-level denials carry `client_ip` and `reason`; no secret value
//! (nor a wrong value a client sent) ever appears in stdout or stderr.

use std::time::Duration;

use serde_json::Value;

use crate::support::client::{raw_exchange, Reply};
use crate::support::hookgate::{signing_key_b64, SIGNING_KEY};
use crate::support::*;

const WRONG_HEADER: &str = "wrong-header-value-7f3a";
const WRONG_PAYLOAD: &str = "wrong-payload-value-91c2";
const BODY_MARKER: &str = "body-marker-5d0e";
/// Query strings are never logged (README "Logs").
const QUERY_MARKER: &str = "query-marker-e81b";

/// The one `msg = "request"` line with this request id (panics if there is not exactly one).
async fn request_line(gate: &Gate, id: &str) -> Value {
    gate.expect_log(&format!("request {id}"), |v| v["request_id"] == id)
        .await;
    let lines: Vec<Value> = gate
        .stdout
        .json()
        .into_iter()
        .filter(|v| v["request_id"] == id)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one line for request {id}: {lines:#?}"
    );
    lines.into_iter().next().expect("one")
}

/// Asserts every SPEC §7 request field and its JSON type, and the given values.
fn assert_request_line(line: &Value, reply: &Reply, method: &str, path: &str, reason: &str) {
    let outcome = match reason {
        "ok" => "forwarded",
        "bad_request" | "upstream_unavailable" | "upstream_timeout" => "error",
        _ => "denied",
    };
    let ts = line["ts"].as_str().unwrap_or_else(|| panic!("ts: {line}"));
    assert!(
        ts.len() >= 20 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z'),
        "ts is RFC 3339 UTC: {ts}"
    );
    assert!(line["level"].is_string(), "level: {line}");
    assert_eq!(line["msg"], "request", "{line}");
    assert_eq!(line["request_id"], reply.request_id().as_str(), "{line}");
    assert_eq!(line["client_ip"], "127.0.0.1", "{line}");
    assert_eq!(
        line["client_cert_sha256"],
        Pki::get().client.sha256_hex().as_str(),
        "{line}"
    );
    assert_eq!(line["method"], method, "{line}");
    assert_eq!(line["path"], path, "{line}");
    assert_eq!(
        line["status"],
        reply.status.as_u16(),
        "status is a number: {line}"
    );
    assert_eq!(line["outcome"], outcome, "{line}");
    assert_eq!(line["reason"], reason, "{line}");
    if reason != "ok" {
        // README: a refusal or error carries the exact cause for the on-call engineer.
        assert!(
            line["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "detail on a {reason} line: {line}"
        );
    }
    for ms in ["duration_ms", "upstream_ms"] {
        let v = line[ms]
            .as_f64()
            .unwrap_or_else(|| panic!("{ms} is a number: {line}"));
        assert!(v >= 0.0, "{ms}: {line}");
    }
}

/// One request on a new connection with `header` as the required header's value.
async fn send(gate: &Gate, method: &str, path: &str, header: &str, body: String) -> Reply {
    let headers = [(HEADER_NAME, header), ("content-type", "application/json")];
    gate.h1()
        .await
        .send(request(method, path, &headers, body))
        .await
}

/// A raw HTTP/1.1 request (for a path the HTTP client would not send as is).
async fn raw_post(gate: &Gate, path: &str) -> Reply {
    let mut tls = gate.client().connect(gate.addr).await.expect("handshake");
    let bytes = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    raw_exchange(&mut tls, bytes.as_bytes(), Duration::from_secs(5))
        .await
        .response
        .expect("a response")
}

#[tokio::test]
async fn logs_one_typed_json_line_per_request_and_per_refused_connection_without_secrets() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("request.path_prefixes", vec!["/hooks/"])
        .set("request.max_body", 2048)
        .set("upstream.timeout", "300ms")
        .set("source_ips.allow", vec!["127.0.0.1/32"])
        .set("developer_payload.pointer", "/developerPayload")
        .set_toml(
            "developer_payload.values",
            r#"[{ env = "HOOKGATE_DEVELOPER_PAYLOAD" }]"#,
        )
        .set("developer_payload.path_prefixes", vec!["/hooks/dp/"])
        .start()
        .await;
    let send = |method, path, header, body| send(&gate, method, path, header, body);
    let mut expected = Vec::new();

    let body = format!(r#"{{"marker":"{BODY_MARKER}"}}"#);
    let target = format!("/hooks/ok?token={QUERY_MARKER}");
    let r = send("POST", &target, HEADER_SECRET, body).await;
    assert_eq!(r.status, 200);
    expected.push((r, "POST", "/hooks/ok", "ok"));
    let body = format!(r#"{{"developerPayload":"{DEVELOPER_PAYLOAD}"}}"#);
    let r = send("POST", "/hooks/dp/ok", HEADER_SECRET, body).await;
    assert_eq!(r.status, 200);
    expected.push((r, "POST", "/hooks/dp/ok", "ok"));
    let r = send("GET", "/hooks/m", HEADER_SECRET, String::new()).await;
    assert_eq!(r.status, 405);
    expected.push((r, "GET", "/hooks/m", "method"));
    let r = send("POST", "/elsewhere", HEADER_SECRET, "{}".into()).await;
    assert_eq!(r.status, 404);
    expected.push((r, "POST", "/elsewhere", "path"));
    let r = send("POST", "/hooks/h", WRONG_HEADER, "{}".into()).await;
    assert_eq!(r.status, 403);
    expected.push((r, "POST", "/hooks/h", "header"));
    let r = send("POST", "/hooks/big", HEADER_SECRET, "x".repeat(4096)).await;
    assert_eq!(r.status, 413);
    expected.push((r, "POST", "/hooks/big", "body_too_large"));
    let body = format!(r#"{{"developerPayload":"{WRONG_PAYLOAD}"}}"#);
    let r = send("POST", "/hooks/dp/bad", HEADER_SECRET, body).await;
    assert_eq!(r.status, 403);
    expected.push((r, "POST", "/hooks/dp/bad", "developer_payload"));
    let r = raw_post(&gate, "/hooks/../x").await;
    assert_eq!(r.status, 400);
    expected.push((r, "POST", "/hooks/../x", "bad_request"));
    up.set_behavior(Behavior::Close);
    let r = send("POST", "/hooks/up", HEADER_SECRET, "{}".into()).await;
    assert_eq!(r.status, 502);
    expected.push((r, "POST", "/hooks/up", "upstream_unavailable"));
    up.set_behavior(Behavior::Delay(Duration::from_secs(1)));
    let r = send("POST", "/hooks/late", HEADER_SECRET, "{}".into()).await;
    assert_eq!(r.status, 504);
    expected.push((r, "POST", "/hooks/late", "upstream_timeout"));

    // Connection-level denials: a source outside 127.0.0.1/32, and an unpinned certificate.
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind("127.0.0.2:0".parse().expect("addr"))
        .expect("bind 127.0.0.2");
    if let Ok(tcp) = sock.connect(gate.addr).await {
        assert!(TlsClient::new(Some(&Pki::get().client))
            .handshake(tcp)
            .await
            .is_err());
    }
    let _ = TlsClient::new(Some(&Pki::get().other_client))
        .expect_alert(gate.addr)
        .await;

    for (reply, method, path, reason) in &expected {
        let line = request_line(&gate, &reply.request_id()).await;
        assert_request_line(&line, reply, method, path, reason);
    }
    let ip = gate
        .expect_log("ip_denied", |v| v["reason"] == "ip_denied")
        .await;
    assert_eq!(ip["client_ip"], "127.0.0.2", "{ip}");
    let hs = gate
        .expect_log("thumbprint_denied", |v| v["reason"] == "thumbprint_denied")
        .await;
    assert_eq!(hs["client_ip"], "127.0.0.1", "{hs}");
    assert!(
        hs["detail"].is_string(),
        "the handshake refusal says why: {hs}"
    );
    for line in [&ip, &hs] {
        assert!(
            line["ts"].is_string() && line["level"].is_string(),
            "{line}"
        );
        assert_ne!(line["msg"], "request", "not a request line: {line}");
    }

    // Exactly one request line per request: the counters agree, and nothing arrives late.
    gate.expect_requests("error", "upstream_timeout", 1.0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let request_lines = gate
        .stdout
        .json()
        .into_iter()
        .filter(|v| v["msg"] == "request")
        .count();
    assert_eq!(request_lines, expected.len(), "{}", gate.stdout.text());
    for line in gate.stdout.lines() {
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
    }

    let out = gate.all_output();
    let key_text = String::from_utf8_lossy(SIGNING_KEY).into_owned();
    for secret in [
        HEADER_SECRET,
        DEVELOPER_PAYLOAD,
        key_text.as_str(),
        signing_key_b64().as_str(),
        WRONG_HEADER,
        WRONG_PAYLOAD,
        BODY_MARKER,
        QUERY_MARKER,
    ] {
        assert!(
            !out.contains(secret),
            "{secret:?} appears in the output:\n{out}"
        );
    }
}
