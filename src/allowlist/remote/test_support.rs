//! What the unit tests of `remote` share: the integration suite's HTTPS list server (one module
//! for both suites, included from `tests/`) and a source that trusts it.

use http::Uri;

use super::{RemoteSource, RemoteSpec};

// The unit tests use less of it than the integration suite does.
#[allow(dead_code)]
#[path = "../../../tests/it/support/list_server.rs"]
mod list_server;

pub(super) use list_server::{ListReply, ListServer};

/// A source for `url` trusting the list server's CA, with a short timeout.
pub(super) fn source(url: &str) -> RemoteSource {
    let mut spec = RemoteSpec::new(url.parse::<Uri>().expect("test url"));
    spec.ca_pem = Some(ListServer::ca_pem().as_bytes().to_vec());
    spec.timeout = std::time::Duration::from_secs(5);
    RemoteSource::new(spec).expect("valid spec")
}

/// A loopback address where nothing listens (bound, then released).
pub(super) fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// A listener that is never accepted from: a connection completes in the kernel's backlog and
/// then hears nothing (no TLS handshake).
pub(super) fn silent_listener() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind")
}
