//! SPEC §10: a refused handshake logs the certificate it refused (fields checked against
//! openssl), and a sender's rotation is followed within seconds: a refusal as unknown starts
//! one early refresh of the list per `refresh_on_unknown_interval`, however many refusals come.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::list_server::{ListReply, ListServer};
use crate::support::pki::Identity;
use crate::support::*;

/// What openssl says of `who`'s certificate: SHA-256, SHA-1, RFC 4514 subject and issuer, and
/// notAfter in RFC 3339.
fn openssl_fields(who: &Identity) -> [String; 5] {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pem, _) = who.write(dir.path());
    let out = Command::new("openssl")
        .args([
            "x509", "-noout", "-nameopt", "RFC2253", "-dateopt", "iso_8601",
        ])
        .args([
            "-fingerprint",
            "-sha256",
            "-subject",
            "-issuer",
            "-enddate",
            "-in",
        ])
        .arg(&pem)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .trim()
            .to_owned()
    };
    let hex = |f: String| f.replace(':', "").to_ascii_lowercase();
    let sha1 = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(&pem)
        .output()
        .expect("run openssl");
    let sha1 = String::from_utf8_lossy(&sha1.stdout)
        .trim()
        .split_once('=')
        .map(|(_, v)| hex(v.to_owned()))
        .expect("sha1 fingerprint");
    // "2040-01-01 00:00:00Z" -> "2040-01-01T00:00:00Z"
    let not_after = field("notAfter=").replacen(' ', "T", 1);
    [
        hex(field("sha256 Fingerprint=")),
        sha1,
        field("subject="),
        field("issuer="),
        not_after,
    ]
}

async fn refused_line(gate: &Gate, sha256: &str, reason: &str) -> serde_json::Value {
    gate.expect_log("the refused handshake", |v| {
        v["msg"] == "handshake refused"
            && v["client_cert_sha256"] == sha256
            && v["reason"] == reason
    })
    .await
}

#[tokio::test]
async fn a_refused_handshake_logs_the_certificate_it_refused() {
    let pki = Pki::get();
    let up = Upstream::start();
    // Pin the expired and not-yet-valid ones too, so they get past the pins to the validity check.
    let gate = GateConfig::new(&up.url)
        .set(
            "thumbprints.allow",
            vec![
                pki.client.sha256_hex(),
                pki.expired.sha256_hex(),
                pki.not_yet_valid.sha256_hex(),
            ],
        )
        .start()
        .await;
    let cases: [(TlsClient, &Identity, &str); 4] = [
        (
            TlsClient::new(Some(&pki.other_client)),
            &pki.other_client,
            "thumbprint_denied",
        ),
        (
            TlsClient::new(Some(&pki.expired)),
            &pki.expired,
            "cert_expired",
        ),
        (
            TlsClient::new(Some(&pki.not_yet_valid)),
            &pki.not_yet_valid,
            "cert_expired",
        ),
        // The pinned certificate without its private key: no proof of key.
        (
            TlsClient::with_key(&pki.client, &pki.other_client.key_der),
            &pki.client,
            "error",
        ),
    ];
    for (client, who, reason) in &cases {
        let _ = client.connect(gate.addr).await;
        let [sha256, sha1, subject, issuer, not_after] = openssl_fields(who);
        let line = refused_line(&gate, &sha256, reason).await;
        assert_eq!(line["client_cert_sha1"], sha1.as_str(), "{line}");
        assert_eq!(line["client_cert_subject"], subject.as_str(), "{line}");
        assert_eq!(line["client_cert_issuer"], issuer.as_str(), "{line}");
        assert_eq!(line["client_cert_not_after"], not_after.as_str(), "{line}");
        assert_eq!(line["client_ip"], "127.0.0.1");
    }
    // One line per refused handshake, also when the certificate is refused at two points.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = gate
        .stdout
        .json()
        .into_iter()
        .filter(|v| v["msg"] == "handshake refused")
        .count();
    assert_eq!(lines, cases.len(), "{}", gate.stdout.text());
    // No certificate: the line has none of the fields.
    let _ = TlsClient::new(None).connect(gate.addr).await;
    let line = gate
        .expect_log("no certificate", |v| v["reason"] == "no_client_cert")
        .await;
    assert!(line.get("client_cert_sha256").is_none(), "{line}");
    // The pinned client with its key is admitted.
    assert_eq!(gate.post("/ok", "{}", &[]).await.status, 200);
}

fn rotating(up: &Upstream, server: &ListServer, section: &str) -> GateConfig {
    GateConfig::new(&up.url)
        .remove(&format!("{section}.allow"))
        .set(&format!("{section}.url"), server.url("/v2/security/list"))
        .set(&format!("{section}.url_ca"), "list-ca.pem")
        .set(&format!("{section}.refresh"), "24h")
        .file("list-ca.pem", ListServer::ca_pem())
}

/// Fetches within `within` after `from` requests, then none for `quiet`.
async fn fetches_settle(server: &ListServer, want: usize, quiet: Duration) {
    server.wait_requests(want, Duration::from_secs(5)).await;
    tokio::time::sleep(quiet).await;
    assert_eq!(server.requests().len(), want, "no further fetch");
}

#[tokio::test]
async fn a_new_sender_certificate_is_followed_at_its_first_refusal() {
    let pki = Pki::get();
    let old_pin = pki.other_client.sha256_hex();
    let server = ListServer::start(ListReply::json(json!([old_pin])));
    let up = Upstream::start();
    let gate = rotating(&up, &server, "thumbprints").start().await;
    server.wait_requests(1, Duration::from_secs(5)).await;

    // The sender rotates to `client` and publishes it; hookgate does not know yet.
    server.set(ListReply::json(json!([old_pin, pki.client.sha256_hex()])));
    let started = Instant::now();
    let _ = gate.client().connect(gate.addr).await;
    gate.expect_metric(
        "hookgate_tls_handshakes_total",
        &[("result", "thumbprint_denied")],
        1.0,
    )
    .await;
    // One early fetch, at once; the retry a moment later is admitted.
    server.wait_requests(2, Duration::from_secs(5)).await;
    gate.expect_metric(
        "hookgate_allowlist_entries",
        &[("list", "thumbprints")],
        2.0,
    )
    .await;
    assert_eq!(
        gate.post("/rotated", "{}", &[]).await.status,
        200,
        "admitted after the early refresh"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    gate.expect_log("the early refresh", |v| {
        v["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("early allow list refresh"))
    })
    .await;
    assert!(
        gate.metrics().await.value(
            "hookgate_allowlist_refresh_total",
            &[("list", "thumbprints"), ("result", "success")]
        ) >= Some(2.0)
    );

    // A flood of strangers within the interval: refused and counted, and no further fetch.
    for _ in 0..20 {
        let _ = TlsClient::new(Some(&pki.ca_client))
            .connect(gate.addr)
            .await;
    }
    gate.expect_metric(
        "hookgate_tls_handshakes_total",
        &[("result", "thumbprint_denied")],
        21.0,
    )
    .await;
    fetches_settle(&server, 2, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn refresh_on_unknown_false_keeps_the_schedule() {
    let pki = Pki::get();
    let server = ListServer::start(ListReply::json(json!([pki.other_client.sha256_hex()])));
    let up = Upstream::start();
    let gate = rotating(&up, &server, "thumbprints")
        .set("thumbprints.refresh_on_unknown", false)
        .start()
        .await;
    server.wait_requests(1, Duration::from_secs(5)).await;
    server.set(ListReply::json(json!([pki.client.sha256_hex()])));
    for _ in 0..3 {
        let _ = gate.client().connect(gate.addr).await;
    }
    gate.expect_metric(
        "hookgate_tls_handshakes_total",
        &[("result", "thumbprint_denied")],
        3.0,
    )
    .await;
    fetches_settle(&server, 1, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_new_sender_address_range_is_followed_at_its_first_refusal() {
    let server = ListServer::start(ListReply::text("192.0.2.0/24\n"));
    let up = Upstream::start();
    let gate = rotating(&up, &server, "source_ips")
        .set("source_ips.refresh_on_unknown_interval", "1h")
        .start()
        .await;
    server.wait_requests(1, Duration::from_secs(5)).await;
    server.set(ListReply::text("192.0.2.0/24\n127.0.0.0/8\n"));
    let mut tcp = tokio::net::TcpStream::connect(gate.addr)
        .await
        .expect("connect");
    proxy::expect_closed_silently(&mut tcp).await;
    gate.expect_metric(
        "hookgate_connections_total",
        &[("result", "ip_denied")],
        1.0,
    )
    .await;
    server.wait_requests(2, Duration::from_secs(5)).await;
    gate.expect_metric("hookgate_allowlist_entries", &[("list", "source_ips")], 2.0)
        .await;
    assert_eq!(gate.post("/from-new-range", "{}", &[]).await.status, 200);
    fetches_settle(&server, 2, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn check_prints_the_early_refresh_settings_per_list() {
    let server = ListServer::start(ListReply::json(json!([Pki::get().client.sha256_hex()])));
    let up = Upstream::start();
    let text = rotating(&up, &server, "thumbprints")
        .set("source_ips.url", server.url("/ips"))
        .set("source_ips.url_ca", "list-ca.pem")
        .set("source_ips.refresh_on_unknown", false)
        .to_toml();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("list-ca.pem"), ListServer::ca_pem()).expect("write ca");
    let env = [
        ("HOOKGATE_HEADER_SECRET", HEADER_SECRET),
        ("HOOKGATE_SIGNING_KEY", &hookgate::signing_key_b64()),
    ];
    let out = crate::support::hookgate::check(dir.path(), &text, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("every 86400s, early on a refusal as unknown, at most every 300s"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("not early on refusals (refresh_on_unknown = false)"),
        "{}",
        out.stdout
    );
}
