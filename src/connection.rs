//! One client connection after accept: PROXY header (if configured), source-IP check, TLS
//! handshake under `handshake_timeout`, then HTTP/1.1 or HTTP/2 until idle, closed or drained.

mod http1;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::conn::{Conn, Stop};
use crate::identity::ClientIdentity;
use crate::metrics::{ConnectionResult, OpenConnectionGuard};
use crate::policy::outcome::Reason;
use crate::proxy_protocol;
use crate::read_ahead::ReadAhead;
use crate::snapshot::Snapshot;
use crate::tls::classify_handshake_error;
use crate::tls::describe::RefusedCert;
use crate::tls::verifier::REFUSED_LEAF;
use crate::tls::HandshakeResult;
use crate::Gate;

/// The connection task; `stop` says when the process drains, then when it cuts.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    gate: Arc<Gate>,
    snapshot: Arc<Snapshot>,
    stop: watch::Receiver<Stop>,
) {
    // The task lives as long as the connection, mostly idle: it keeps the boxed future that
    // serves it and the gauge's guard. What the handshake needed is freed once it is done, and
    // the snapshot it ran under too (each request takes the one in force).
    let accepted = Box::pin(accept(stream, peer, &gate, &snapshot, stop)).await;
    drop((gate, snapshot));
    let Some((serving, _open)) = accepted else {
        return;
    };
    serving.await;
}

type Tls = tokio_rustls::server::TlsStream<ReadAhead<TcpStream>>;

/// A verified connection's HTTP/1.1 or HTTP/2 service.
type Serving = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The PROXY header (if configured), the source-IP check on its address, and the TLS
/// handshake under `handshake_timeout`; then the service of the verified connection, and its
/// place in the open-connections gauge.
async fn accept(
    mut stream: TcpStream,
    peer: SocketAddr,
    gate: &Arc<Gate>,
    snapshot: &Snapshot,
    stop: watch::Receiver<Stop>,
) -> Option<(Serving, OpenConnectionGuard)> {
    let listen = &snapshot.config.listen;
    let metrics = &gate.metrics;
    let mut client_ip = peer.ip();
    // One bound for the PROXY header and the TLS handshake together (SPEC §2).
    let handshake_deadline = tokio::time::Instant::now() + listen.handshake_timeout;
    if listen.proxy_protocol {
        match read_proxy(&mut stream, peer, snapshot, handshake_deadline).await {
            Ok(ip) => client_ip = ip,
            Err(detail) => {
                metrics.connection(ConnectionResult::ProxyProtocolError);
                tracing::warn!(client_ip = %peer.ip(), reason = "proxy_protocol_error", detail, "connection refused");
                return None;
            }
        }
        if !gate.admission().admits_source(client_ip) {
            deny_ip(gate, client_ip);
            return None;
        }
    }
    metrics.connection(ConnectionResult::Accepted);
    let open = metrics.open_connection();

    let handshake = tokio::time::timeout_at(
        handshake_deadline,
        snapshot.acceptor.accept(ReadAhead::new(stream)),
    );
    let (handshake, refused_leaf) = REFUSED_LEAF
        .scope(std::cell::RefCell::new(None), async {
            let done = handshake.await;
            (done, REFUSED_LEAF.with(|leaf| leaf.take()))
        })
        .await;
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let result = classify_handshake_error(&e);
            metrics.handshake(result);
            log_refused_handshake(client_ip, result, &e, refused_leaf.as_deref());
            if result == HandshakeResult::ThumbprintDenied {
                crate::refresh::on_unknown(gate, crate::metrics::ListKind::Thumbprints);
            }
            return None;
        }
        Err(_) => {
            metrics.handshake(HandshakeResult::Timeout);
            tracing::warn!(client_ip = %client_ip, reason = "timeout", "handshake timed out");
            return None;
        }
    };
    metrics.handshake(HandshakeResult::Ok);
    // Unreachable without a certificate: the verifier makes one mandatory. Fail closed anyway.
    let leaf = tls.get_ref().1.peer_certificates()?.first()?;
    let with_sha1 = gate.admission().wants_sha1();
    let identity = ClientIdentity::new(client_ip, leaf, with_sha1);
    let conn = Arc::new(Conn::new(gate.clone(), identity));
    // ALPN decides the protocol (RFC 9113 §3.2: h2 over TLS is negotiated, never guessed).
    let serving: Serving = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        Box::pin(serve_h2(tls, conn, stop, listen.idle_timeout))
    } else {
        let timeouts = http1::Timeouts {
            header: listen.header_timeout,
            idle: listen.idle_timeout,
        };
        Box::pin(http1::serve(tls, conn, timeouts, stop))
    };
    Some((serving, open))
}

/// Not an `async fn`, for the reason `http1::serve` is not: the TLS stream is stored once.
fn serve_h2(
    tls: Tls,
    conn: Arc<Conn>,
    stop: watch::Receiver<Stop>,
    idle: Duration,
) -> impl Future<Output = ()> + Send {
    let service = {
        let conn = conn.clone();
        hyper::service::service_fn(move |req| {
            let conn = conn.clone();
            // Boxed: hyper keeps a slot sized for this future in every connection.
            Box::pin(crate::handler::handle::<Incoming>(req, conn))
        })
    };
    let mut http = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        // Each stream may buffer up to max_body: keep the per-connection total modest.
        .max_concurrent_streams(16)
        .max_header_list_size(64 * 1024)
        .serve_connection(TokioIo::new(tls), service);
    async move {
        drive(
            Pin::new(&mut http),
            |c| c.graceful_shutdown(),
            &conn,
            stop,
            idle,
        )
        .await;
    }
}

/// Serves until the connection ends; closes it gracefully when the process drains or when no
/// request has been in flight for `idle_limit` (HTTP/1.1 also has hyper's header_timeout, which
/// runs from the end of the handshake and from the end of each response). A request is in
/// flight until its response has been sent whole, so neither closing cuts a streaming answer.
async fn drive<F: Future<Output = hyper::Result<()>>>(
    mut http: Pin<&mut F>,
    graceful_shutdown: impl Fn(Pin<&mut F>),
    conn: &Conn,
    mut stop: watch::Receiver<Stop>,
    idle_limit: Duration,
) {
    let mut generation = conn.gate.watch_admission();
    // Closing for idleness or a lost admission: the peer gets `idle_limit` to finish once
    // nothing is in flight (an HTTP/2 peer that never answers the GOAWAY ping must not keep the
    // connection). A drain has no such bound: the server cuts it at the end of shutdown_grace.
    let mut close_by: Option<tokio::time::Instant> = None;
    let mut draining = false;
    loop {
        let check_in = conn
            .activity
            .idle_for()
            .map_or(idle_limit, |idle| idle_limit.saturating_sub(idle));
        let close = |http: Pin<&mut F>, close_by: &mut Option<tokio::time::Instant>| {
            graceful_shutdown(http);
            *close_by = Some(tokio::time::Instant::now() + idle_limit);
        };
        let closing = close_by.is_some() || draining;
        tokio::select! {
            result = http.as_mut() => {
                if let Err(e) = result {
                    connection_error(conn, &e);
                }
                break;
            }
            changed = stop.changed() => {
                let now = *stop.borrow_and_update();
                if changed.is_err() || now == Stop::Cut {
                    break;
                }
                if now == Stop::Drain && !draining {
                    draining = true;
                    if close_by.is_none() {
                        graceful_shutdown(http.as_mut());
                    }
                    close_by = None;
                }
            }
            _ = tokio::time::sleep(check_in.max(Duration::from_millis(10))), if !closing => {
                if conn.activity.idle_for().is_some_and(|idle| idle >= idle_limit) {
                    close(http.as_mut(), &mut close_by);
                }
            }
            // A reload or list refresh may have removed this client's pin or address.
            _ = generation.changed(), if !closing => {
                if !conn.is_still_admitted() {
                    tracing::warn!(client_ip = %conn.identity.client_ip, reason = "no_longer_admitted",
                        "closing a connection whose client certificate or address is no longer allowed");
                    close(http.as_mut(), &mut close_by);
                }
            }
            _ = tokio::time::sleep_until(close_by.unwrap_or_else(tokio::time::Instant::now)), if close_by.is_some() => break,
        }
    }
}

/// A connection-level HTTP error: unparsable requests count as `bad_request`.
fn connection_error(conn: &Conn, h: &hyper::Error) {
    let ip = conn.identity.client_ip;
    {
        if h.is_parse() || h.is_parse_status() {
            conn.gate
                .metrics
                .unrouted()
                .request(Reason::BadRequest, Duration::ZERO);
            tracing::warn!(client_ip = %ip, route = crate::metrics::UNROUTED, reason = "bad_request", detail = %h, "malformed request");
            return;
        }
        if h.is_timeout() {
            tracing::info!(client_ip = %ip, reason = "header_timeout", "request head not received in time");
            return;
        }
    }
    tracing::debug!(client_ip = %ip, detail = %h, "connection ended with an error");
}

async fn read_proxy(
    stream: &mut TcpStream,
    peer: SocketAddr,
    snapshot: &Snapshot,
    deadline: tokio::time::Instant,
) -> Result<IpAddr, String> {
    let listen = &snapshot.config.listen;
    if !listen.trusted_proxies.contains(peer.ip()) {
        return Err("peer is not in listen.trusted_proxies".into());
    }
    match tokio::time::timeout_at(deadline, proxy_protocol::read_proxy_header(stream)).await {
        Ok(Ok(source)) => Ok(source.client_addr(peer).ip()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no PROXY header within handshake_timeout".into()),
    }
}

/// One line per refused handshake; when a certificate was presented, its SPEC §10 fields, so an
/// operator sees at once which new certificate a sender started to use.
fn log_refused_handshake(
    client_ip: IpAddr,
    result: HandshakeResult,
    error: &std::io::Error,
    leaf: Option<&[u8]>,
) {
    let reason = result.label();
    let Some(der) = leaf else {
        tracing::warn!(client_ip = %client_ip, reason, detail = %error, "handshake refused");
        return;
    };
    let cert = RefusedCert::of(der);
    tracing::warn!(
        client_ip = %client_ip,
        reason,
        detail = %error,
        client_cert_sha256 = cert.sha256,
        client_cert_sha1 = cert.sha1,
        client_cert_subject = cert.subject,
        client_cert_issuer = cert.issuer,
        client_cert_not_after = cert.not_after,
        client_cert_parse_error = cert.parse_error,
        "handshake refused"
    );
}

pub(crate) fn deny_ip(gate: &Gate, ip: IpAddr) {
    gate.metrics.connection(ConnectionResult::IpDenied);
    tracing::warn!(client_ip = %ip, reason = "ip_denied", "connection refused");
    crate::refresh::on_unknown(gate, crate::metrics::ListKind::SourceIps);
}
