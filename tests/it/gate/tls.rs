//! TLS admission (SPEC §3 steps 1–2): pins by SHA-256 and SHA-1, validity, `client_ca` chains,
//! both together, proof of the private key, and the source-IP check before any TLS byte. Each
//! refusal is asserted as the alert the client reads plus the `hookgate_tls_handshakes_total`
//! (or `hookgate_connections_total`) label, with nothing reaching the upstream.

use std::time::Duration;

use rustls::AlertDescription;
use tokio::io::AsyncReadExt;

use crate::support::client;
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
    gate.expect_metric("hookgate_tls_handshakes_total", &[("result", "ok")], 1.0)
        .await;
    gate.expect_metric("hookgate_connections_total", &[("result", "accepted")], 1.0)
        .await;
    gate.expect_requests("forwarded", "ok", 1.0).await;
}

async fn expect_handshake_refused(
    gate: &Gate,
    client: TlsClient,
    alert: AlertDescription,
    result: &str,
) {
    assert_eq!(client.expect_alert(gate.addr).await, alert);
    gate.expect_metric("hookgate_tls_handshakes_total", &[("result", result)], 1.0)
        .await;
    gate.expect_metric("hookgate_tls_handshakes_total", &[("result", "ok")], 0.0)
        .await;
    gate.expect_requests("forwarded", "ok", 0.0).await;
}

#[tokio::test]
async fn refuses_a_client_without_certificate_in_the_handshake() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    expect_handshake_refused(
        &gate,
        TlsClient::new(None),
        AlertDescription::CertificateRequired,
        "no_client_cert",
    )
    .await;
    up.assert_untouched();
}

#[tokio::test]
async fn refuses_an_unpinned_thumbprint_in_the_handshake() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let client = TlsClient::new(Some(&Pki::get().other_client));
    expect_handshake_refused(
        &gate,
        client,
        AlertDescription::AccessDenied,
        "thumbprint_denied",
    )
    .await;
    up.assert_untouched();
}

#[tokio::test]
async fn refuses_an_unpinned_thumbprint_inside_a_tls12_handshake() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let client = TlsClient::new(Some(&Pki::get().other_client)).tls12_only();
    let err = client
        .connect(gate.addr)
        .await
        .expect_err("TLS 1.2 handshake must fail");
    assert_eq!(
        client::alert_of(&err),
        Some(AlertDescription::AccessDenied),
        "{err:?}"
    );
    gate.expect_metric(
        "hookgate_tls_handshakes_total",
        &[("result", "thumbprint_denied")],
        1.0,
    )
    .await;
    up.assert_untouched();
}

#[tokio::test]
async fn accepts_a_client_pinned_by_sha1_in_any_case_with_separators() {
    let up = Upstream::start();
    let sha1 = Pki::get().client.sha1_hex().to_uppercase();
    let pin: Vec<String> = sha1
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let gate = GateConfig::new(&up.url)
        .set("thumbprints.allow", vec![pin.join(":")])
        .start()
        .await;
    assert_eq!(gate.post("/", "{}", &[]).await.status, 200);
    assert_eq!(up.requests().len(), 1);
    gate.expect_metric("hookgate_tls_handshakes_total", &[("result", "ok")], 1.0)
        .await;
}

#[tokio::test]
async fn refuses_an_expired_pinned_certificate_in_the_handshake() {
    let up = Upstream::start();
    let pki = Pki::get();
    let gate = GateConfig::new(&up.url)
        .set("thumbprints.allow", vec![pki.expired.sha256_hex()])
        .start()
        .await;
    let client = TlsClient::new(Some(&pki.expired));
    expect_handshake_refused(
        &gate,
        client,
        AlertDescription::CertificateExpired,
        "cert_expired",
    )
    .await;
    up.assert_untouched();
}

#[tokio::test]
async fn refuses_a_not_yet_valid_pinned_certificate_as_cert_expired() {
    let up = Upstream::start();
    let pki = Pki::get();
    let gate = GateConfig::new(&up.url)
        .set("thumbprints.allow", vec![pki.not_yet_valid.sha256_hex()])
        .start()
        .await;
    let client = TlsClient::new(Some(&pki.not_yet_valid));
    expect_handshake_refused(
        &gate,
        client,
        AlertDescription::CertificateExpired,
        "cert_expired",
    )
    .await;
    up.assert_untouched();
}

fn chain_mode(up: &Upstream) -> GateConfig {
    GateConfig::new(&up.url)
        .remove("thumbprints")
        .set("tls.client_ca", "ca.pem")
}

#[tokio::test]
async fn accepts_a_ca_signed_client_in_client_ca_mode() {
    let up = Upstream::start();
    let gate = chain_mode(&up).start().await;
    let tls = TlsClient::new(Some(&Pki::get().ca_client))
        .connect(gate.addr)
        .await
        .expect("handshake");
    let reply = H1::over(tls)
        .await
        .send(request("POST", "/", &[(HEADER_NAME, HEADER_SECRET)], "{}"))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        up.single().header("x-client-cert-sha256"),
        Pki::get().ca_client.sha256_hex()
    );
}

#[tokio::test]
async fn refuses_a_client_from_another_ca_in_client_ca_mode() {
    let up = Upstream::start();
    let gate = chain_mode(&up).start().await;
    let client = TlsClient::new(Some(&Pki::get().foreign_client));
    expect_handshake_refused(&gate, client, AlertDescription::UnknownCA, "chain_invalid").await;
    up.assert_untouched();
}

#[tokio::test]
async fn refuses_a_pinned_certificate_presented_with_another_key() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let pki = Pki::get();
    // The pinned certificate, but the handshake signature comes from another key.
    let client = TlsClient::with_key(&pki.client, &pki.other_client.key_der);
    expect_handshake_refused(&gate, client, AlertDescription::DecryptError, "error").await;
    up.assert_untouched();
}

#[tokio::test]
async fn requires_both_pin_and_chain_when_both_are_configured() {
    let up = Upstream::start();
    let pki = Pki::get();
    let gate = chain_mode(&up)
        .set(
            "thumbprints.allow",
            vec![pki.ca_client.sha256_hex(), pki.client.sha256_hex()],
        )
        .start()
        .await;
    // Pinned and chained: admitted.
    let tls = TlsClient::new(Some(&pki.ca_client))
        .connect(gate.addr)
        .await
        .expect("handshake");
    let reply = H1::over(tls)
        .await
        .send(request("POST", "/", &[(HEADER_NAME, HEADER_SECRET)], ""))
        .await;
    assert_eq!(reply.status, 200);
    // Chained but not pinned.
    let alert = TlsClient::new(Some(&pki.ca_client2))
        .expect_alert(gate.addr)
        .await;
    assert_eq!(alert, AlertDescription::AccessDenied);
    gate.expect_metric(
        "hookgate_tls_handshakes_total",
        &[("result", "thumbprint_denied")],
        1.0,
    )
    .await;
    // Pinned but self-signed (no chain to client_ca).
    let alert = TlsClient::new(Some(&pki.client))
        .expect_alert(gate.addr)
        .await;
    assert_eq!(alert, AlertDescription::UnknownCA);
    gate.expect_metric(
        "hookgate_tls_handshakes_total",
        &[("result", "chain_invalid")],
        1.0,
    )
    .await;
    gate.expect_metric("hookgate_tls_handshakes_total", &[("result", "ok")], 1.0)
        .await;
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn closes_a_denied_source_ip_before_any_tls_byte() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("source_ips.allow", vec!["10.0.0.0/8"])
        .start()
        .await;
    // A raw TCP client that sends nothing: hookgate must close without writing a byte.
    let mut tcp = tokio::net::TcpStream::connect(gate.addr)
        .await
        .expect("TCP connect");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("closed within 5s");
    match read {
        Ok(n) => assert_eq!(n, 0, "no byte may be written: {:?}", &buf[..n]),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e:?}"),
    }
    // A real TLS client gets an I/O error, not an alert.
    let err = gate
        .client()
        .connect(gate.addr)
        .await
        .expect_err("no handshake");
    assert_eq!(client::alert_of(&err), None, "{err:?}");
    gate.expect_metric(
        "hookgate_connections_total",
        &[("result", "ip_denied")],
        2.0,
    )
    .await;
    gate.expect_metric("hookgate_connections_total", &[("result", "accepted")], 0.0)
        .await;
    for result in ["ok", "error", "no_client_cert", "timeout"] {
        gate.expect_metric("hookgate_tls_handshakes_total", &[("result", result)], 0.0)
            .await;
    }
    up.assert_untouched();
}
