//! SPEC §6 reload by SIGHUP: a valid new config (pins, header values, upstream, server
//! certificate) applies to new connections and requests while an in-flight request finishes under
//! the old one; a broken config or certificate is logged, counted, and the old one keeps serving.

use std::time::Duration;

use super::*;
use crate::support::*;

const NEW_HEADER: &str = "hdr-secret-v2-9d8e7f";

#[tokio::test]
async fn sighup_applies_new_pins_header_upstream_and_certificate_while_in_flight_finishes_old() {
    let pki = Pki::get();
    let old_up = Upstream::start();
    old_up.set_behavior(Behavior::Delay(Duration::from_millis(1500)));
    let new_up = Upstream::start();
    let gate = GateConfig::new(&old_up.url)
        .file("header-v2.secret", format!("{NEW_HEADER}\n"))
        .file("server-rotated.pem", pki.server_rotated.cert_pem.clone())
        .file("server-rotated.key", pki.server_rotated.key_pem.clone())
        .start()
        .await;
    assert_eq!(served_leaf(&gate, &pki.client).await, pki.server.der);
    let old_not_after = cert_not_after(&gate).await;

    // A slow request under the old config, inside the old upstream when the reload happens.
    let mut conn = gate.h1().await;
    let in_flight = tokio::spawn(async move {
        conn.send(request(
            "POST",
            "/slow",
            &[(HEADER_NAME, HEADER_SECRET)],
            "{}",
        ))
        .await
    });
    eventually(
        "the old upstream holds the slow request",
        Duration::from_secs(5),
        || async { old_up.requests().len() == 1 },
    )
    .await;

    edit_config(
        &gate,
        &[
            (
                "thumbprints.allow",
                vec![pki.other_client.sha256_hex()].into(),
            ),
            (
                "required_header.values",
                toml::Value::Array(vec![toml::Value::Table(
                    [("file".to_owned(), "header-v2.secret".into())]
                        .into_iter()
                        .collect(),
                )]),
            ),
            ("upstream.url", new_up.url.clone().into()),
            ("tls.cert", "server-rotated.pem".into()),
            ("tls.key", "server-rotated.key".into()),
        ],
    );
    gate.signal("HUP");
    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "success")],
        1.0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reloads(&gate, "failure").await, 0.0);
    gate.expect_log("config reloaded", |v| v["msg"] == "config reloaded")
        .await;

    // The in-flight request finished under the old config: the old upstream answered it.
    let slow = in_flight.await.expect("in-flight request task");
    assert_eq!(slow.status, 200);
    assert_eq!(&slow.body[..], b"late", "answered by the old upstream");
    assert_eq!(old_up.requests().len(), 1);

    // New connections: the rotated server certificate, and its notAfter in the gauge.
    assert_eq!(
        served_leaf(&gate, &pki.other_client).await,
        pki.server_rotated.der
    );
    let new_not_after = cert_not_after(&gate).await;
    assert_ne!(new_not_after, old_not_after);
    assert_eq!(new_not_after, ROTATED_NOT_AFTER);
    // The new pin: the formerly pinned client is refused, the newly pinned one admitted.
    let _ = gate.client().expect_alert(gate.addr).await;
    gate.expect_metric(
        "hookgate_tls_handshakes_total",
        &[("result", "thumbprint_denied")],
        1.0,
    )
    .await;
    // The new header value; the old one is refused.
    let refused = post_as(&gate, &pki.other_client, HEADER_SECRET, "/old-secret").await;
    refused.assert_error(403, "forbidden");
    let ok = post_as(&gate, &pki.other_client, NEW_HEADER, "/new").await;
    assert_eq!(ok.status, 200);
    // The new upstream got it; the old one nothing more.
    assert_eq!(new_up.single().target, "/new");
    assert_eq!(old_up.requests().len(), 1);
    assert!(!gate.all_output().contains(NEW_HEADER));
}

#[tokio::test]
async fn sighup_with_a_syntax_error_is_logged_counted_and_the_old_config_keeps_serving() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let text = std::fs::read_to_string(gate.config_path()).expect("read config");
    write_atomically(gate.config_path(), format!("{text}\n[[[not toml\n"));
    gate.signal("HUP");
    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "failure")],
        1.0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reloads(&gate, "success").await, 0.0);
    let line = gate
        .expect_log("reload failure", |v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("reload failed"))
        })
        .await;
    assert_eq!(line["level"], "error", "{line}");
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains("hookgate.toml")),
        "the error names the file: {line}"
    );
    assert_eq!(gate.post("/still", "{}", &[]).await.status, 200);
    assert_eq!(up.single().target, "/still");
    let (status, _) = crate::support::admin::get(gate.admin(), "/readyz")
        .await
        .expect("readyz");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sighup_with_a_broken_certificate_file_keeps_serving_the_old_certificate() {
    let pki = Pki::get();
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let not_after = cert_not_after(&gate).await;
    write_atomically(
        &gate.dir().join("server.pem"),
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    gate.signal("HUP");
    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "failure")],
        1.0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reloads(&gate, "success").await, 0.0);
    gate.expect_log("reload failure", |v| {
        v["msg"]
            .as_str()
            .is_some_and(|m| m.contains("reload failed"))
            && v["error"]
                .as_str()
                .is_some_and(|e| e.contains("server.pem"))
    })
    .await;
    assert_eq!(served_leaf(&gate, &pki.client).await, pki.server.der);
    assert_eq!(cert_not_after(&gate).await, not_after);
    assert_eq!(gate.post("/still", "{}", &[]).await.status, 200);
}

#[tokio::test]
async fn sighup_with_a_new_listen_address_applies_the_rest_and_says_a_restart_is_needed() {
    let pki = Pki::get();
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let elsewhere = crate::support::free_port();
    edit_config(
        &gate,
        &[
            ("listen.address", elsewhere.to_string().into()),
            (
                "thumbprints.allow",
                vec![pki.client.sha256_hex(), pki.other_client.sha256_hex()].into(),
            ),
        ],
    );
    gate.signal("HUP");
    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "success")],
        1.0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reloads(&gate, "failure").await, 0.0);
    let line = gate
        .expect_log("the restart notice", |v| {
            v["msg"].as_str().is_some_and(|m| m.contains("restart"))
        })
        .await;
    assert_eq!(line["level"], "warn", "{line}");
    // Still on the old address, with the new pin in force.
    let ok = post_as(&gate, &pki.other_client, HEADER_SECRET, "/pinned-now").await;
    assert_eq!(ok.status, 200);
    assert!(
        std::net::TcpStream::connect(elsewhere).is_err(),
        "the new address is not bound before a restart"
    );
}

#[tokio::test]
async fn sighup_with_a_new_log_section_says_it_waits_for_a_restart_and_keeps_json() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    edit_config(
        &gate,
        &[("log.format", "text".into()), ("log.level", "debug".into())],
    );
    gate.signal("HUP");
    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "success")],
        1.0,
        Duration::from_secs(5),
    )
    .await;
    let line = gate
        .expect_log("the restart notice", |v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("restart") && m.contains("log"))
        })
        .await;
    assert_eq!(line["level"], "warn", "{line}");
    assert_eq!(gate.post("/after", "{}", &[]).await.status, 200);
    gate.expect_log("the request, still JSON", |v| v["path"] == "/after")
        .await;
}
