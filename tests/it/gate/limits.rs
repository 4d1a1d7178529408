//! Connection limits (SPEC §2 `[listen]`): `max_connections`, `handshake_timeout`,
//! `header_timeout` against a slowloris client, and `idle_timeout`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::client;
use crate::support::*;

#[tokio::test]
async fn holds_a_connection_beyond_max_connections_until_one_closes() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.max_connections", 2)
        .start()
        .await;
    let client = gate.client();
    let first = client.connect(gate.addr).await.expect("first");
    let second = client.connect(gate.addr).await.expect("second");
    let mut third = tokio::spawn({
        let client = client.clone();
        let addr = gate.addr;
        async move { client.connect(addr).await }
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(700), &mut third)
            .await
            .is_err(),
        "a third connection must not be served while two are open"
    );
    gate.expect_metric("hookgate_open_connections", &[], 2.0)
        .await;
    drop(first);
    let tls = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a slot is free")
        .expect("task")
        .expect("handshake");
    let reply = H1::over(tls)
        .await
        .send(request("POST", "/", &[(HEADER_NAME, HEADER_SECRET)], "{}"))
        .await;
    assert_eq!(reply.status, 200);
    drop(second);
    gate.expect_metric("hookgate_connections_total", &[("result", "accepted")], 3.0)
        .await;
}

#[tokio::test]
async fn closes_a_connection_that_does_not_finish_the_handshake_in_time() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.handshake_timeout", "300ms")
        .start()
        .await;
    let started = std::time::Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(gate.addr)
        .await
        .expect("connect");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("closed within 5s")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed too early: {:?}",
        started.elapsed()
    );
    gate.expect_metric(
        "hookgate_tls_handshakes_total",
        &[("result", "timeout")],
        1.0,
    )
    .await;
    // Others are still served.
    assert_eq!(gate.post("/", "{}", &[]).await.status, 200);
}

#[tokio::test]
async fn cuts_off_a_slowloris_client_at_header_timeout_while_serving_others() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.header_timeout", "500ms")
        .start()
        .await;
    let tls = gate.client().connect(gate.addr).await.expect("handshake");
    let head = format!("POST /slow HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nContent-Length: 2\r\n\r\n{{}}");
    let started = std::time::Instant::now();
    let slowloris = tokio::spawn(async move {
        let (mut rd, mut wr) = tokio::io::split(tls);
        let writer = async {
            for b in head.as_bytes() {
                if wr.write_all(&[*b]).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let reader = client::read_raw(&mut rd, Duration::from_secs(10));
        tokio::select! {
            r = reader => r,
            _ = writer => panic!("the slowloris sent its whole head without being cut off"),
        }
    });
    // Meanwhile a normal client is served.
    let reply = gate.post("/fast", "{}", &[]).await;
    assert_eq!(reply.status, 200);
    let cut = slowloris.await.expect("slowloris task");
    let elapsed = started.elapsed();
    assert!(
        cut.closed,
        "the slowloris connection must be closed: {cut:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(3),
        "cut off after {elapsed:?}"
    );
    if let Some(resp) = &cut.response {
        // hyper may answer 408 before closing; never a forwarded response.
        assert_eq!(resp.status, 408, "{cut:?}");
    }
    assert_eq!(up.single().target, "/fast");
}

#[tokio::test]
async fn closes_a_keep_alive_connection_after_idle_timeout() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("listen.idle_timeout", "500ms")
        .start()
        .await;
    let mut tls = gate.client().connect(gate.addr).await.expect("handshake");
    let req = format!("POST / HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nContent-Length: 2\r\n\r\n{{}}");
    let reply = client::raw_exchange(&mut tls, req.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(reply.expect_response().status, 200);
    let done = std::time::Instant::now();
    let after = client::read_raw(&mut tls, Duration::from_secs(5)).await;
    let idle = done.elapsed();
    assert!(after.closed && after.bytes.is_empty(), "{after:?}");
    assert!(
        idle >= Duration::from_millis(400) && idle < Duration::from_secs(3),
        "closed after {idle:?}"
    );
}
