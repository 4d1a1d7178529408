//! One client connection after accept: PROXY header (if configured), source-IP check, TLS
//! handshake under `handshake_timeout`, then HTTP/1.1 or HTTP/2 until idle, closed or drained.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::head_inspector::{HeadInspector, Verdicts};
use crate::identity::ClientIdentity;
use crate::metrics::{ConnectionResult, HandshakeResult, Reason};
use crate::proxy_protocol;
use crate::read_ahead::ReadAhead;
use crate::snapshot::Snapshot;
use crate::tls::classify_handshake_error;
use crate::Gate;

/// What every request on one connection shares.
pub(crate) struct Conn {
    pub gate: Arc<Gate>,
    pub identity: ClientIdentity,
    activity: Activity,
    /// Requests started on this connection, to match `framing` verdicts by index.
    requests: AtomicU64,
    framing: Arc<Verdicts>,
}

impl Conn {
    /// Called once per request, in arrival order (HTTP/1.1 serves one request at a time).
    /// True when its raw head had both Content-Length and Transfer-Encoding.
    pub(crate) fn next_request_is_ambiguous(&self) -> bool {
        let index = self.requests.fetch_add(1, Ordering::AcqRel);
        self.framing.is_ambiguous(index)
    }
}

/// Requests in flight and the time the last one finished, for the idle timeout.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    last_done_ms: AtomicU64,
}

impl Activity {
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_done_ms.load(Ordering::Acquire));
        Some(self.opened.elapsed().saturating_sub(last))
    }
}

/// Decrements the in-flight count when a request's handler finishes (or is cancelled).
struct InFlight<'a>(&'a Activity);

impl<'a> InFlight<'a> {
    fn start(a: &'a Activity) -> Self {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(a)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let ms = self.0.opened.elapsed().as_millis() as u64;
        self.0.last_done_ms.store(ms, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection task. `shutdown` turns true when the process drains.
pub(crate) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    gate: Arc<Gate>,
    snapshot: Arc<Snapshot>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listen = &snapshot.config.listen;
    let metrics = &gate.metrics;
    let mut client_ip = peer.ip();
    if listen.proxy_protocol {
        match read_proxy(&mut stream, peer, &snapshot).await {
            Ok(ip) => client_ip = ip,
            Err(detail) => {
                metrics.connection(ConnectionResult::ProxyProtocolError);
                tracing::warn!(client_ip = %peer.ip(), reason = "proxy_protocol_error", detail, "connection refused");
                return;
            }
        }
        if !is_allowed_source(&snapshot, client_ip) {
            deny_ip(&gate, client_ip);
            return;
        }
    }
    metrics.connection(ConnectionResult::Accepted);
    let _open = metrics.open_connection();

    let tls = match tokio::time::timeout(
        listen.handshake_timeout,
        snapshot.acceptor.accept(ReadAhead::new(stream)),
    )
    .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let result = classify_handshake_error(&e);
            metrics.handshake(result);
            tracing::warn!(client_ip = %client_ip, reason = result.label(), detail = %e, "handshake refused");
            return;
        }
        Err(_) => {
            metrics.handshake(HandshakeResult::Timeout);
            tracing::warn!(client_ip = %client_ip, reason = "timeout", "handshake timed out");
            return;
        }
    };
    metrics.handshake(HandshakeResult::Ok);
    let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        // Unreachable: the verifier makes a certificate mandatory. Fail closed anyway.
        return;
    };
    let identity = ClientIdentity::new(client_ip, leaf);
    let framing = Verdicts::new();
    let mut io = HeadInspector::new(tls, framing.clone());
    if io.get_ref().get_ref().1.alpn_protocol() == Some(b"h2") {
        io.disable();
    }
    let conn = Arc::new(Conn {
        requests: AtomicU64::new(0),
        framing,
        identity,
        gate: gate.clone(),
        activity: Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        },
    });

    let service = {
        let conn = conn.clone();
        hyper::service::service_fn(move |req| {
            let conn = conn.clone();
            async move {
                let _busy = InFlight::start(&conn.activity);
                crate::handler::handle(req, &conn).await
            }
        })
    };
    let builder = http_builder(&snapshot);
    let http = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(http);
    // Idle: no request in flight for idle_timeout. HTTP/1.1 also has hyper's header_timeout,
    // which runs from the end of the handshake and from the end of each response.
    let idle_limit = listen.idle_timeout;
    let mut closing = false;
    loop {
        let check_in = conn
            .activity
            .idle_for()
            .map_or(idle_limit, |idle| idle_limit.saturating_sub(idle));
        tokio::select! {
            result = http.as_mut() => {
                if let Err(e) = result {
                    connection_error(&conn, &*e);
                }
                break;
            }
            _ = shutdown.changed(), if !closing => {
                http.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep(check_in.max(Duration::from_millis(10))), if !closing => {
                if conn.activity.idle_for().is_some_and(|idle| idle >= idle_limit) {
                    http.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

fn http_builder(snapshot: &Snapshot) -> auto::Builder<TokioExecutor> {
    let listen = &snapshot.config.listen;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(listen.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128)
        .max_header_list_size(64 * 1024);
    builder
}

/// A connection-level HTTP error: unparsable requests count as `bad_request`.
fn connection_error(conn: &Conn, e: &(dyn std::error::Error + 'static)) {
    let ip = conn.identity.client_ip;
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        if h.is_parse() || h.is_parse_status() {
            conn.gate
                .metrics
                .request(Reason::BadRequest, Duration::ZERO);
            tracing::warn!(client_ip = %ip, reason = "bad_request", detail = %h, "malformed request");
            return;
        }
        if h.is_timeout() {
            tracing::info!(client_ip = %ip, reason = "header_timeout", "request head not received in time");
            return;
        }
    }
    tracing::debug!(client_ip = %ip, detail = %e, "connection ended with an error");
}

async fn read_proxy(
    stream: &mut TcpStream,
    peer: SocketAddr,
    snapshot: &Snapshot,
) -> Result<IpAddr, String> {
    let listen = &snapshot.config.listen;
    if !listen.trusted_proxies.contains(peer.ip()) {
        return Err("peer is not in listen.trusted_proxies".into());
    }
    match tokio::time::timeout(
        listen.handshake_timeout,
        proxy_protocol::read_proxy_header(stream),
    )
    .await
    {
        Ok(Ok(source)) => Ok(source.client_addr(peer).ip()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no PROXY header within handshake_timeout".into()),
    }
}

pub(crate) fn is_allowed_source(snapshot: &Snapshot, ip: IpAddr) -> bool {
    snapshot
        .source_ips
        .as_ref()
        .map_or(true, |list| list.live.load().contains(ip))
}

pub(crate) fn deny_ip(gate: &Gate, ip: IpAddr) {
    gate.metrics.connection(ConnectionResult::IpDenied);
    tracing::warn!(client_ip = %ip, reason = "ip_denied", "connection refused");
}
