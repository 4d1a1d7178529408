//! Shared helpers for the `it` integration test binary. Every test starts its own hookgate
//! process ([`hookgate::GateConfig::start`]) with its own tempdir, ports and upstream, so tests
//! run in parallel; every child process and server is stopped on drop.
//!
//! - [`pki`]: rcgen certificates (CA, server, pinned / unpinned / expired / CA-signed clients).
//! - [`hookgate`]: the process harness: config builder, listeners passed by socket activation,
//!   process guard, log collection, metric and log assertions; `hookgate check`.
//! - [`upstream`]: a recording HTTP/1.1 upstream that can respond, delay or close.
//! - [`client`]: the TLS client (any cert, mismatched key), HTTP/1.1, HTTP/2 and raw requests.
//! - [`admin`]: `/readyz`, `/metrics` scrapes and a Prometheus sample lookup.
//! - [`list_server`]: an HTTPS remote allow-list endpoint (own CA for `url_ca`) whose replies
//!   the test switches: any body shape, HTTP errors, hangs, an untrusted certificate; ETag/304.
//! - [`proxy`]: PROXY v1/v2 headers, a raw ClientHello, "closed without a byte", real HAProxy.
//! - [`tools`]: `curl`, `python3` and the Python RFC 9421 verifying upstream (fail if missing).
//!
//! A typical test:
//!
//! ```ignore
//! let up = Upstream::start();                          // recording upstream, own thread
//! let gate = GateConfig::new(&up.url)                  // test defaults, see GateConfig::new
//!     .set("listen.max_connections", 2)                // any dotted key; .remove("source_ips")
//!     .start()                                         // tempdir, spawn, wait for /readyz
//!     .await;
//! let reply = gate.post("/hooks/x", "{}", &[]).await;  // pinned client + required header
//! assert_eq!(reply.status, 200);
//! assert_eq!(up.single().header("x-request-id"), reply.request_id());
//! gate.expect_requests("forwarded", "ok", 1.0).await;  // polls /metrics
//! let alert = TlsClient::new(Some(&Pki::get().other_client)).expect_alert(gate.addr).await;
//! ```
//!
//! For a PROXY header before TLS: connect a `TcpStream` to `gate.addr`, write the header, then
//! `TlsClient::handshake(tcp)`. Files a config names (lists, CA bundles) go in with
//! `GateConfig::file`; `gate.config_path()` and `gate.pid()` serve reload/signal tests.
// Not every module of the test binary uses every helper.
#![allow(dead_code)]

pub mod admin;
pub mod client;
pub mod hookgate;
pub mod list_server;
pub mod pki;
pub mod postgres;
pub mod proxy;
pub mod tools;
pub mod upstream;

pub use client::{request, Reply, TlsClient, H1, H2};
pub use hookgate::{Gate, GateConfig, DEVELOPER_PAYLOAD, HEADER_NAME, HEADER_SECRET};
pub use pki::Pki;
pub use upstream::{Behavior, Upstream};

/// A free loopback port (bound, then released) for a process that cannot be handed a listener
/// (PostgreSQL, HAProxy), or an address nothing listens on. hookgate is handed its listeners.
pub fn free_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Polls `done` every 20 ms until it holds; fails naming `what` after `within`.
pub async fn wait_for(what: &str, within: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
