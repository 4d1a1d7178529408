//! PROXY protocol (issue 5, SPEC §2 `proxy_protocol`/`trusted_proxies`, §3 step 1): v1 and v2
//! headers written by a test client before TLS, v2 LOCAL, every refusal (untrusted peer, no,
//! malformed or slow header; a source outside `[source_ips]`), and a real HAProxy sending
//! `send-proxy-v2` and `send-proxy` in TCP mode with TLS passed through.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::proxy::{self, Haproxy};
use crate::support::upstream::Recorded;
use crate::support::*;

/// A gate that requires a PROXY header from 127.0.0.0/8 and admits these source ranges.
fn behind_proxy(up: &Upstream, source_ips: &str) -> GateConfig {
    GateConfig::new(&up.url)
        .set("listen.proxy_protocol", true)
        .set_toml("listen.trusted_proxies", r#"["127.0.0.0/8"]"#)
        .set_toml("source_ips.allow", source_ips)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// Writes `header`, then does TLS as the pinned client and POSTs; returns the reply, what the
/// upstream received and the request's log line.
async fn post_after(
    gate: &Gate,
    up: &Upstream,
    header: &[u8],
) -> (Reply, Recorded, serde_json::Value) {
    let tcp = proxy::connect_with(gate.addr, header).await;
    let tls = gate.client().handshake(tcp).await.unwrap_or_else(|e| {
        panic!(
            "TLS handshake after the PROXY header: {e}\nhookgate: {}",
            gate.all_output()
        )
    });
    let reply = H1::over(tls)
        .await
        .send(request(
            "POST",
            "/hooks/proxied",
            &[
                (HEADER_NAME, HEADER_SECRET),
                ("content-type", "application/json"),
                ("x-forwarded-for", "6.6.6.6"),
            ],
            "{}",
        ))
        .await;
    assert_eq!(reply.status, 200, "admitted through the PROXY header");
    let id = reply.request_id();
    let log = gate
        .expect_log("for the request", |v| v["request_id"] == id.as_str())
        .await;
    (reply, up.single(), log)
}

/// One accepted connection, no PROXY error, no IP denial.
async fn expect_only_accepted(gate: &Gate) {
    for (result, n) in [
        ("accepted", 1.0),
        ("proxy_protocol_error", 0.0),
        ("ip_denied", 0.0),
    ] {
        gate.expect_metric("hookgate_connections_total", &[("result", result)], n)
            .await;
    }
}

#[tokio::test]
async fn a_v1_header_makes_its_source_the_client_ip_for_the_ip_check_headers_and_log() {
    let up = Upstream::start();
    let gate = behind_proxy(&up, r#"["203.0.113.0/24"]"#).start().await;
    let header = proxy::v1(addr("203.0.113.7:5000"), addr("127.0.0.1:443"));
    assert_eq!(header, b"PROXY TCP4 203.0.113.7 127.0.0.1 5000 443\r\n");
    let (_, seen, log) = post_after(&gate, &up, &header).await;
    assert_eq!(seen.header("x-forwarded-for"), "203.0.113.7");
    assert_eq!(seen.header("forwarded"), "for=203.0.113.7;proto=https");
    assert_eq!(log["client_ip"], "203.0.113.7");
    expect_only_accepted(&gate).await;
}

#[tokio::test]
async fn a_v2_tcp4_header_makes_its_source_the_client_ip() {
    let up = Upstream::start();
    let gate = behind_proxy(&up, r#"["203.0.113.0/24"]"#).start().await;
    let header = proxy::v2(addr("203.0.113.7:5000"), addr("127.0.0.1:443"));
    let (_, seen, log) = post_after(&gate, &up, &header).await;
    assert_eq!(seen.header("x-forwarded-for"), "203.0.113.7");
    assert_eq!(seen.header("forwarded"), "for=203.0.113.7;proto=https");
    assert_eq!(log["client_ip"], "203.0.113.7");
    expect_only_accepted(&gate).await;
}

#[tokio::test]
async fn a_v2_tcp6_header_gives_a_bracketed_quoted_forwarded_for() {
    let up = Upstream::start();
    let gate = behind_proxy(&up, r#"["2001:db8::/32"]"#).start().await;
    let header = proxy::v2(addr("[2001:db8::7]:5000"), addr("[2001:db8::1]:443"));
    let (_, seen, log) = post_after(&gate, &up, &header).await;
    assert_eq!(seen.header("x-forwarded-for"), "2001:db8::7");
    assert_eq!(
        seen.header("forwarded"),
        "for=\"[2001:db8::7]\";proto=https"
    );
    assert_eq!(log["client_ip"], "2001:db8::7");
    expect_only_accepted(&gate).await;
}

#[tokio::test]
async fn a_v2_local_header_keeps_the_peer_address() {
    let up = Upstream::start();
    let gate = behind_proxy(&up, r#"["127.0.0.0/8"]"#).start().await;
    let (_, seen, log) = post_after(&gate, &up, &proxy::v2_local()).await;
    assert_eq!(seen.header("x-forwarded-for"), "127.0.0.1");
    assert_eq!(seen.header("forwarded"), "for=127.0.0.1;proto=https");
    assert_eq!(log["client_ip"], "127.0.0.1");
    expect_only_accepted(&gate).await;
}

async fn expect_proxy_errors(gate: &Gate, n: f64) {
    gate.expect_metric(
        "hookgate_connections_total",
        &[("result", "proxy_protocol_error")],
        n,
    )
    .await;
}

#[tokio::test]
async fn missing_malformed_and_slow_headers_are_closed_without_tls_and_counted() {
    let up = Upstream::start();
    let gate = behind_proxy(&up, r#"["203.0.113.0/24"]"#)
        .set("listen.handshake_timeout", "500ms")
        .start()
        .await;

    // No header: the client starts TLS directly.
    let mut tcp = proxy::connect_with(gate.addr, &proxy::client_hello()).await;
    proxy::expect_closed_silently(&mut tcp).await;
    expect_proxy_errors(&gate, 1.0).await;

    // Malformed v1 and v2 headers.
    let bad_v1 = b"PROXY TCP4 203.0.113.7 not-an-address 5000 443\r\n".to_vec();
    let mut bad_v2 = proxy::v2(addr("203.0.113.7:5000"), addr("127.0.0.1:443"));
    bad_v2[12] = 0x2f; // version 2, command 15: undefined
    for (i, bad) in [bad_v1, bad_v2].iter().enumerate() {
        let mut tcp = proxy::connect_with(gate.addr, bad).await;
        proxy::expect_closed_silently(&mut tcp).await;
        expect_proxy_errors(&gate, 2.0 + i as f64).await;
    }

    // A header that never completes: closed after handshake_timeout, not before.
    let started = std::time::Instant::now();
    let mut tcp = proxy::connect_with(gate.addr, b"PROXY TCP4 203.0.113.7 127.0").await;
    proxy::expect_closed_silently(&mut tcp).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "a slow header is cut at handshake_timeout (500ms), took {took:?}"
    );
    expect_proxy_errors(&gate, 4.0).await;
    gate.expect_log("for a refused header", |v| {
        v["reason"] == "proxy_protocol_error" && v["client_ip"] == "127.0.0.1"
    })
    .await;

    // A valid header whose source is outside [source_ips].
    let header = proxy::v1(addr("198.51.100.9:5000"), addr("127.0.0.1:443"));
    let mut tcp = proxy::connect_with(gate.addr, &header).await;
    proxy::expect_closed_silently(&mut tcp).await;
    gate.expect_metric(
        "hookgate_connections_total",
        &[("result", "ip_denied")],
        1.0,
    )
    .await;
    gate.expect_log("for the denied source", |v| {
        v["reason"] == "ip_denied" && v["client_ip"] == "198.51.100.9"
    })
    .await;
    expect_proxy_errors(&gate, 4.0).await;
    gate.expect_metric("hookgate_connections_total", &[("result", "accepted")], 0.0)
        .await;
    gate.expect_metric("hookgate_tls_handshakes_total", &[("result", "ok")], 0.0)
        .await;
    up.assert_untouched();

    // The gate still admits a proper header afterwards.
    let header = proxy::v1(addr("203.0.113.8:5000"), addr("127.0.0.1:443"));
    let (_, seen, _) = post_after(&gate, &up, &header).await;
    assert_eq!(seen.header("x-forwarded-for"), "203.0.113.8");
}

#[tokio::test]
async fn a_peer_outside_trusted_proxies_is_closed_even_with_a_valid_header() {
    let up = Upstream::start();
    let gate = behind_proxy(&up, r#"["203.0.113.0/24", "127.0.0.0/8"]"#)
        .set_toml("listen.trusted_proxies", r#"["10.0.0.0/8"]"#)
        .start()
        .await;
    let header = proxy::v1(addr("203.0.113.7:5000"), addr("127.0.0.1:443"));
    let mut tcp = proxy::connect_with(gate.addr, &header).await;
    proxy::expect_closed_silently(&mut tcp).await;
    expect_proxy_errors(&gate, 1.0).await;
    gate.expect_metric("hookgate_connections_total", &[("result", "accepted")], 0.0)
        .await;
    gate.expect_log("for the untrusted peer", |v| {
        v["reason"] == "proxy_protocol_error" && v["client_ip"] == "127.0.0.1"
    })
    .await;
    up.assert_untouched();
}

/// Through a real HAProxy in TCP mode: TLS passes through, hookgate reads HAProxy's header.
async fn through_haproxy(send_proxy: &str) {
    let up = Upstream::start();
    let gate = behind_proxy(&up, r#"["127.0.0.0/8"]"#).start().await;
    let haproxy = Haproxy::start(gate.addr, send_proxy);
    // The client connects from 127.0.0.2, HAProxy reaches hookgate from 127.0.0.1: only the
    // header can tell hookgate the client's address.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(addr("127.0.0.2:0")).expect("bind 127.0.0.2");
    let tcp = socket
        .connect(haproxy.addr)
        .await
        .expect("connect to haproxy");
    let tls = gate.client().handshake(tcp).await.unwrap_or_else(|e| {
        panic!(
            "TLS through haproxy ({send_proxy}): {e}\nhaproxy: {}\nhookgate: {}",
            haproxy.stderr.text(),
            gate.all_output()
        )
    });
    let reply = H1::over(tls)
        .await
        .send(request(
            "POST",
            "/hooks/haproxy",
            &[
                (HEADER_NAME, HEADER_SECRET),
                ("content-type", "application/json"),
            ],
            "{}",
        ))
        .await;
    assert_eq!(reply.status, 200, "through haproxy {send_proxy}");
    let seen = up.single();
    // The client as HAProxy saw it, carried in HAProxy's header (the TCP peer is 127.0.0.1).
    assert_eq!(seen.header("x-forwarded-for"), "127.0.0.2");
    assert_eq!(seen.header("forwarded"), "for=127.0.0.2;proto=https");
    gate.expect_log("for the proxied request", |v| {
        v["request_id"] == reply.request_id().as_str() && v["client_ip"] == "127.0.0.2"
    })
    .await;
    gate.expect_metric("hookgate_connections_total", &[("result", "accepted")], 1.0)
        .await;
    expect_proxy_errors(&gate, 0.0).await;
}

#[tokio::test]
async fn haproxy_send_proxy_v2_in_tcp_mode_reaches_the_upstream_with_the_real_client() {
    through_haproxy("send-proxy-v2").await;
}

#[tokio::test]
async fn haproxy_send_proxy_v1_in_tcp_mode_reaches_the_upstream_with_the_real_client() {
    through_haproxy("send-proxy").await;
}
