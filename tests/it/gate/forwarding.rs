//! Forwarding (SPEC §3 step 4 and §4): 502/504, the identity headers the upstream receives
//! (strip, then set), request ids, `/BASE`, Unix sockets, `Host`, HTTP/2 clients, the pooled
//! upstream connection, and the real `curl`.

use std::time::Duration;

use bytes::Bytes;

use crate::support::hookgate::content_digest;
use crate::support::*;
use crate::support::{tools, upstream};

#[tokio::test]
async fn answers_502_when_the_upstream_refuses_connections() {
    let gate = GateConfig::new(&Upstream::closed_port_url()).start().await;
    gate.post("/", "{}", &[])
        .await
        .assert_error(502, "upstream_unavailable");
    gate.expect_requests("error", "upstream_unavailable", 1.0)
        .await;
}

#[tokio::test]
async fn answers_502_when_the_upstream_closes_without_a_response() {
    let up = Upstream::start();
    up.set_behavior(Behavior::Close);
    let gate = GateConfig::new(&up.url).start().await;
    gate.post("/", "{}", &[])
        .await
        .assert_error(502, "upstream_unavailable");
    gate.expect_requests("error", "upstream_unavailable", 1.0)
        .await;
    assert!(!up.requests().is_empty());
}

#[tokio::test]
async fn answers_504_when_the_upstream_head_is_later_than_the_timeout() {
    let up = Upstream::start();
    up.set_behavior(Behavior::Delay(Duration::from_secs(3)));
    let gate = GateConfig::new(&up.url)
        .set("upstream.timeout", "300ms")
        .start()
        .await;
    let started = std::time::Instant::now();
    let reply = gate.post("/slow", "{}", &[]).await;
    reply.assert_error(504, "upstream_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(up.single().header("x-request-id"), reply.request_id());
    gate.expect_requests("error", "upstream_timeout", 1.0).await;
}

#[tokio::test]
async fn upstream_sees_only_hookgates_identity_headers_whatever_the_client_forges() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let body = r#"{"status":0}"#;
    let forged = [
        ("x-forwarded-for", "203.0.113.66"),
        ("x-forwarded-proto", "http"),
        ("forwarded", "for=203.0.113.66;proto=http"),
        ("client-cert", ":Zm9yZ2Vk:"),
        ("x-client-cert-sha256", "00ff"),
        ("x-request-id", "forged-request-id"),
        ("content-digest", "sha-256=:AAAA:"),
        ("signature", "hookgate=:AAAA:"),
        ("signature-input", "hookgate=();created=1"),
        ("x-real-ip", "203.0.113.66"),
        ("connection", "keep-alive, x-hop-secret"),
        ("x-hop-secret", "must-not-pass"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers"),
        ("trailer", "x-late"),
        ("upgrade", "websocket"),
        ("x-app-header", "kept"),
    ];
    let reply = gate.post("/hooks/a?x=1", body, &forged).await;
    assert_eq!(reply.status, 200);
    let seen = up.single();
    let pki = Pki::get();
    assert_eq!(seen.version, http::Version::HTTP_11);
    assert_eq!(seen.header("x-forwarded-for"), "127.0.0.1");
    assert_eq!(seen.header("x-forwarded-proto"), "https");
    assert_eq!(seen.header("forwarded"), "for=127.0.0.1;proto=https");
    assert_eq!(seen.header("x-request-id"), reply.request_id());
    assert_eq!(reply.request_id().len(), 32);
    assert!(reply
        .request_id()
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(seen.header("client-cert"), pki.client.client_cert_header());
    assert_eq!(seen.header("x-client-cert-sha256"), pki.client.sha256_hex());
    assert_eq!(
        seen.header("content-digest"),
        content_digest(body.as_bytes())
    );
    assert_eq!(seen.header("content-length"), body.len().to_string());
    assert_eq!(seen.header("host"), "localhost");
    assert_eq!(seen.header("x-app-header"), "kept");
    assert_eq!(seen.header("content-type"), "application/json");
    let input = seen.header("signature-input");
    let prefix = r#"hookgate=("@method" "@path" "@query" "content-digest" "client-cert" "x-client-cert-sha256" "x-forwarded-for" "forwarded" "x-forwarded-proto" "x-request-id");created="#;
    let rest = input
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("Signature-Input: {input}"));
    let (created, params) = rest.split_once(';').expect("params after created");
    assert_eq!(params, r#"keyid="hookgate-1";alg="hmac-sha256""#);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let created: u64 = created.parse().expect("created is an integer");
    assert!(now.abs_diff(created) < 60, "created {created} vs now {now}");
    let sig = seen.header("signature");
    let sig_b64 = sig
        .strip_prefix("hookgate=:")
        .and_then(|s| s.strip_suffix(':'))
        .expect("hookgate=:B64:");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sig_b64)
        .expect("base64");
    assert_eq!(raw.len(), 32, "HMAC-SHA256 is 32 bytes");
    assert_ne!(sig, "hookgate=:AAAA:");
    for gone in [
        "x-webhook-secret",
        "x-real-ip",
        "connection",
        "x-hop-secret",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
    ] {
        assert!(
            seen.headers.get(gone).is_none(),
            "{gone} must not reach the upstream: {:?}",
            seen.headers
        );
    }
}

#[tokio::test]
async fn keeps_the_required_header_when_strip_is_false_and_omits_signatures_without_identity() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("required_header.strip", false)
        .remove("identity")
        .start()
        .await;
    assert_eq!(gate.post("/", "", &[]).await.status, 200);
    let seen = up.single();
    assert_eq!(seen.header("x-webhook-secret"), HEADER_SECRET);
    assert!(seen.headers.get("signature").is_none());
    assert!(seen.headers.get("signature-input").is_none());
    // Content-Digest is sent for an empty body too.
    assert_eq!(
        seen.header("content-digest"),
        "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    );
    assert_eq!(seen.header("content-digest"), content_digest(b""));
}

#[tokio::test]
async fn every_response_carries_the_request_id_the_upstream_and_the_log_saw() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("request.path_prefixes", vec!["/hooks/"])
        .start()
        .await;
    let ok = gate.post("/hooks/1", "{}", &[]).await;
    assert_eq!(ok.status, 200);
    let denied = gate.post("/nope", "{}", &[]).await;
    denied.assert_error(404, "not_found");
    let ids = [ok.request_id(), denied.request_id()];
    assert_ne!(ids[0], ids[1]);
    assert_eq!(up.single().header("x-request-id"), ids[0]);
    for (id, status, reason) in [(&ids[0], 200, "ok"), (&ids[1], 404, "path")] {
        let line = gate
            .expect_log("for the request", |v| v["request_id"] == id.as_str())
            .await;
        assert_eq!(line["status"], status);
        assert_eq!(line["reason"], reason);
        assert_eq!(line["client_ip"], "127.0.0.1");
        assert_eq!(line["client_cert_sha256"], Pki::get().client.sha256_hex());
        assert_eq!(line["method"], "POST");
        for field in [
            "ts",
            "level",
            "msg",
            "path",
            "outcome",
            "duration_ms",
            "upstream_ms",
        ] {
            assert!(line.get(field).is_some(), "log line lacks {field}: {line}");
        }
    }
}

#[tokio::test]
async fn removes_hop_by_hop_headers_from_the_upstream_response() {
    let up = Upstream::start();
    up.set_behavior(Behavior::Respond {
        status: 201,
        headers: vec![
            ("connection".into(), "x-up-hop".into()),
            ("x-up-hop".into(), "internal".into()),
            ("keep-alive".into(), "timeout=1".into()),
            ("x-app".into(), "kept".into()),
        ],
        body: Bytes::from_static(b"created"),
    });
    let gate = GateConfig::new(&up.url).start().await;
    let reply = gate.post("/", "{}", &[]).await;
    assert_eq!(reply.status, 201);
    assert_eq!(&reply.body[..], b"created");
    assert_eq!(reply.headers["x-app"], "kept");
    for gone in ["x-up-hop", "keep-alive"] {
        assert!(
            reply.headers.get(gone).is_none(),
            "{gone} relayed: {:?}",
            reply.headers
        );
    }
    assert_eq!(up.single().header("x-request-id"), reply.request_id());
}

#[tokio::test]
async fn prepends_the_upstream_base_path() {
    let up = Upstream::start();
    let gate = GateConfig::new(&format!("{}/base/v1", up.url))
        .start()
        .await;
    assert_eq!(gate.post("/hooks/x?q=1&r=2", "{}", &[]).await.status, 200);
    assert_eq!(up.single().target, "/base/v1/hooks/x?q=1&r=2");
}

#[tokio::test]
async fn forwards_to_a_unix_socket_upstream() {
    let sock_dir = tempfile::tempdir().expect("tempdir");
    let up = Upstream::start_unix(&upstream::socket_path(sock_dir.path()));
    let gate = GateConfig::new(&up.url).start().await;
    let reply = gate.post("/unix?a=b", "{}", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], br#"{"upstream":"ok"}"#);
    let seen = up.single();
    assert_eq!(seen.target, "/unix?a=b");
    assert_eq!(seen.header("host"), "localhost");
    assert_eq!(seen.header("x-request-id"), reply.request_id());
}

#[tokio::test]
async fn sends_the_upstream_authority_as_host_when_host_is_upstream() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("upstream.host", "upstream")
        .start()
        .await;
    assert_eq!(gate.post("/", "{}", &[]).await.status, 200);
    let authority = up.url.strip_prefix("http://").expect("http url");
    assert_eq!(up.single().header("host"), authority);
}

#[tokio::test]
async fn serves_http2_clients_via_alpn_and_speaks_http11_upstream() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let tls = gate
        .client()
        .alpn(&["h2", "http/1.1"])
        .connect(gate.addr)
        .await
        .expect("handshake");
    let mut h2 = H2::over(tls).await;
    let headers = [
        (HEADER_NAME, HEADER_SECRET),
        ("x-forwarded-for", "198.51.100.1"),
    ];
    let mut ids = Vec::new();
    for i in 0..2 {
        let mut req = request(
            "POST",
            &format!("https://localhost/h2/{i}?v=2"),
            &headers,
            "{\"h2\":true}",
        );
        req.headers_mut().remove("host");
        let reply = h2.send(req).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.version, http::Version::HTTP_2);
        ids.push(reply.request_id());
    }
    let seen = up.requests();
    assert_eq!(seen.len(), 2);
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.version, http::Version::HTTP_11);
        assert_eq!(s.target, format!("/h2/{i}?v=2"));
        assert_eq!(s.header("host"), "localhost");
        assert_eq!(s.header("x-forwarded-for"), "127.0.0.1");
        assert_eq!(s.header("x-request-id"), ids[i]);
        assert_eq!(&s.body[..], b"{\"h2\":true}");
    }
    // An HTTP/2 denial is hookgate's JSON error too.
    let mut req = request("POST", "https://localhost/", &[], "{}");
    req.headers_mut().remove("host");
    h2.send(req).await.assert_error(403, "forbidden");
}

#[tokio::test]
async fn reuses_one_pooled_upstream_connection_across_client_connections() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    for _ in 0..3 {
        assert_eq!(gate.post("/", "{}", &[]).await.status, 200);
    }
    let mut h1 = gate.h1().await;
    for _ in 0..2 {
        let r = h1
            .send(request("POST", "/", &[(HEADER_NAME, HEADER_SECRET)], "{}"))
            .await;
        assert_eq!(r.status, 200);
    }
    let seen = up.requests();
    assert_eq!(seen.len(), 5);
    assert!(
        seen.iter().all(|r| r.connection == 0),
        "{:?}",
        seen.iter().map(|r| r.connection).collect::<Vec<_>>()
    );
    assert_eq!(up.connections(), 1);
}

#[tokio::test]
async fn curl_goes_through_over_http11_and_http2() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let body = r#"{"status":0,"developerPayload":"x"}"#;
    // Blocking is fine here: hookgate and the upstream do not run on this test's runtime.
    let h1 = tools::curl(&gate, "/curl/1?via=curl", body, &["--http1.1"]);
    let h2 = tools::curl(&gate, "/curl/2", body, &["--http2"]);
    assert_eq!(
        (h1.status, h1.http_version.as_str()),
        (200, "1.1"),
        "{h1:?}"
    );
    assert_eq!((h2.status, h2.http_version.as_str()), (200, "2"), "{h2:?}");
    assert_eq!(h1.body, r#"{"upstream":"ok"}"#);
    assert!(
        h2.head.to_ascii_lowercase().contains("x-request-id: "),
        "{}",
        h2.head
    );
    let seen = up.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].target, "/curl/1?via=curl");
    assert_eq!(seen[1].target, "/curl/2");
    for s in &seen {
        assert_eq!(&s.body[..], body.as_bytes());
        assert_eq!(
            s.header("x-client-cert-sha256"),
            Pki::get().client.sha256_hex()
        );
    }
    gate.expect_requests("forwarded", "ok", 2.0).await;
}
