//! Issue 2, the core gate, end to end: TLS admission (pins, CA chain, validity, proof of key),
//! the IP check before TLS, the request checks in SPEC §3 order, forwarding with the SPEC §4
//! headers, and the connection limits. Each test asserts what the client got, what the upstream
//! got, and the metric label.

use std::time::Duration;

use rustls::AlertDescription;

use crate::support::*;

#[tokio::test]
async fn forwards_a_pinned_client_request_and_relays_the_upstream_response() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let reply = gate.post("/hooks/x?a=1", r#"{"k":"v"}"#, &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], br#"{"upstream":"ok"}"#);
    assert_eq!(reply.headers["x-upstream"], "recorded");
    let seen = up.single();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/hooks/x?a=1");
    assert_eq!(&seen.body[..], br#"{"k":"v"}"#);
    assert_eq!(seen.header("x-request-id"), reply.request_id());
    gate.expect_metric("hookgate_tls_handshakes_total", &[("result", "ok")], 1.0).await;
    gate.expect_metric("hookgate_connections_total", &[("result", "accepted")], 1.0).await;
    gate.expect_requests("forwarded", "ok", 1.0).await;
}

async fn expect_handshake_refused(gate: &Gate, client: TlsClient, alert: AlertDescription, result: &str) {
    assert_eq!(client.expect_alert(gate.addr).await, alert);
    gate.expect_metric("hookgate_tls_handshakes_total", &[("result", result)], 1.0).await;
    gate.expect_metric("hookgate_tls_handshakes_total", &[("result", "ok")], 0.0).await;
    gate.expect_requests("forwarded", "ok", 0.0).await;
}

#[tokio::test]
async fn refuses_a_client_without_certificate_in_the_handshake() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    expect_handshake_refused(&gate, TlsClient::new(None), AlertDescription::CertificateRequired, "no_client_cert").await;
    up.assert_untouched();
}

#[tokio::test]
async fn refuses_an_unpinned_thumbprint_in_the_handshake() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let client = TlsClient::new(Some(&Pki::get().other_client));
    expect_handshake_refused(&gate, client, AlertDescription::AccessDenied, "thumbprint_denied").await;
    up.assert_untouched();
}
