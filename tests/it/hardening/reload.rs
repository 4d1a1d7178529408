//! A reload reaches connections that are already open: one whose certificate pin or source
//! address the new config no longer admits is closed (logged `no_longer_admitted`), and the
//! next request on a kept-alive connection is judged by the new request rules.

use std::time::{Duration, Instant};

use super::*;
use crate::operability::edit_config;

/// Opens a keep-alive connection and gets one 200 on it, applies `edits` with SIGHUP, then
/// expects hookgate to close that idle connection within a few seconds and say why in the log.
async fn reload_closes_an_open_connection(edits: &[(&str, toml::Value)]) {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let mut tls = connect(&gate).await;
    let reply = exchange(&mut tls, &raw_post("/before", &[], "{}")).await;
    assert_eq!(reply.expect_response().status, 200);
    assert!(!reply.closed);

    edit_config(&gate, edits);
    let sent = Instant::now();
    gate.signal("HUP");
    let (bytes, closed_after) = read_until_closed(&mut tls, Duration::from_secs(6)).await;
    assert!(
        closed_after.is_some(),
        "the connection was still open {:?} after the reload; output:\n{}",
        sent.elapsed(),
        gate.all_output()
    );
    assert!(bytes.is_empty(), "no response was asked for: {bytes:?}");
    let line = gate
        .expect_log("no_longer_admitted", |v| {
            v["reason"] == "no_longer_admitted"
        })
        .await;
    assert_eq!(line["client_ip"], "127.0.0.1");
    gate.expect_metric("hookgate_open_connections", &[], 0.0)
        .await;
    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "success")],
        1.0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(up.single().target, "/before");
}

#[tokio::test]
async fn closes_an_open_connection_when_a_reload_removes_its_pin() {
    let other = Pki::get().other_client.sha256_hex();
    reload_closes_an_open_connection(&[("thumbprints.allow", vec![other].into())]).await;
}

#[tokio::test]
async fn closes_an_open_connection_when_a_reload_excludes_its_source_address() {
    reload_closes_an_open_connection(&[("source_ips.allow", vec!["10.0.0.0/8"].into())]).await;
}

#[tokio::test]
async fn applies_a_reloaded_required_header_to_the_next_request_on_an_open_connection() {
    const NEW_SECRET: &str = "hdr-secret-rotated-77aa";
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let mut tls = connect(&gate).await;
    let reply = exchange(&mut tls, &raw_post("/old-ok", &[], "{}")).await;
    assert_eq!(reply.expect_response().status, 200);

    edit_config(
        &gate,
        &[("required_header.values", vec![NEW_SECRET].into())],
    );
    gate.signal("HUP");
    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "success")],
        1.0,
        Duration::from_secs(5),
    )
    .await;

    // The same TLS stream: the old value is refused now, the new one admitted.
    let reply = exchange(&mut tls, &raw_post("/old-refused", &[], "{}")).await;
    reply.expect_response().assert_error(403, "forbidden");
    assert!(!reply.closed, "a 403 keeps the connection: {reply:?}");
    let with_new = format!(
        "POST /new-ok HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {NEW_SECRET}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let reply = exchange(&mut tls, &with_new).await;
    assert_eq!(reply.expect_response().status, 200);
    gate.expect_requests("denied", "header", 1.0).await;
    let targets: Vec<String> = up.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/old-ok", "/new-ok"]);
    assert!(
        up.requests()
            .iter()
            .all(|r| r.headers.get(HEADER_NAME).is_none()),
        "the required header is stripped"
    );
}
