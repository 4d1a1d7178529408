//! One request's access-log line and metrics, written exactly once: when its response has been
//! sent whole, or when the request is cut short (the drain's grace ran out, the client went
//! away). A [`RequestLog`] lives from the start of the request until its response body is
//! dropped, so it also marks the connection busy for the idle timeout while a response streams.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Uri};
use http_body::{Body, Frame, SizeHint};

use crate::conn::Conn;
use crate::metrics::RouteMetrics;
use crate::policy::outcome::Reason;

/// What is known of a request so far, and its line once it ends.
pub(crate) struct RequestLog {
    conn: Arc<Conn>,
    start: Instant,
    request_id: HeaderValue,
    method: Method,
    uri: Uri,
    /// The route's series (`route="none"` until the route is known).
    route: Arc<RouteMetrics>,
    /// Set when the response head is ready; `None` while the request is being handled.
    status: Option<u16>,
    reason: Reason,
    detail: Option<String>,
    upstream: Option<Duration>,
    /// The response body was sent whole (or there was none to send).
    complete: bool,
}

impl RequestLog {
    /// Starts the line of a request, and counts it in flight on its connection.
    pub(crate) fn start(
        conn: Arc<Conn>,
        request_id: HeaderValue,
        method: Method,
        uri: Uri,
    ) -> Self {
        conn.activity.begin();
        RequestLog {
            route: conn.gate.metrics.unrouted(),
            conn,
            start: Instant::now(),
            request_id,
            method,
            uri,
            status: None,
            reason: Reason::Ok,
            detail: None,
            upstream: None,
            complete: false,
        }
    }

    pub(crate) fn conn_arc(&self) -> Arc<Conn> {
        self.conn.clone()
    }

    /// The request's route is known (or, with `unrouted`, known to be none).
    pub(crate) fn set_route(&mut self, route: &Arc<RouteMetrics>) {
        self.route = route.clone();
    }

    pub(crate) fn route_name(&self) -> &str {
        self.route.name()
    }

    /// Records how long the upstream took to answer with a head.
    pub(crate) fn upstream_time(&mut self, t: Duration) {
        self.upstream = Some(t);
    }

    /// Records the response decided on; `streams`: its body is still to be sent.
    pub(crate) fn respond(
        &mut self,
        status: u16,
        reason: Reason,
        detail: Option<String>,
        streams: bool,
    ) {
        self.status = Some(status);
        self.reason = reason;
        self.detail = detail;
        self.complete = !streams;
    }

    fn emit(&mut self) {
        let draining = self.conn.gate.draining.load(Ordering::Acquire);
        if self.status.is_none() && !draining {
            // hyper dropped the request because its client closed the connection: nothing was
            // refused or forwarded, so it counts under no outcome.
            tracing::info!(
                request_id = self.request_id.to_str().unwrap_or_default(),
                route = self.route.name(),
                client_ip = %self.conn.identity.client_ip,
                method = self.method.as_str(),
                path = self.uri.path(),
                reason = "client_closed",
                duration_ms = self.start.elapsed().as_secs_f64() * 1e3,
                "request abandoned by the client before the response"
            );
            return;
        }
        if !self.complete {
            if draining {
                // The grace ran out first (SPEC §6): the client got no or a partial answer.
                self.reason = Reason::Shutdown;
                self.detail = Some(match self.status {
                    None => "cut by the end of shutdown_grace before the response".into(),
                    Some(_) => "response cut by the end of shutdown_grace".into(),
                });
            } else {
                let why = "the client went away before the response was complete";
                self.detail = Some(
                    self.detail
                        .take()
                        .map_or(why.into(), |d| format!("{d}; {why}")),
                );
            }
        }
        let elapsed = self.start.elapsed();
        self.route.request(self.reason, elapsed);
        if let Some(t) = self.upstream {
            self.conn.gate.metrics.upstream_duration(t);
        }
        let id = &self.conn.identity;
        let line = Line {
            request_id: self.request_id.to_str().unwrap_or_default(),
            route: self.route.name(),
            client_ip: &id.client_ip,
            client_cert_sha256: id.cert_sha256.to_str().unwrap_or_default(),
            method: self.method.as_str(),
            path: self.uri.path(),
            // A request cut before its response: hookgate sent nothing (0).
            status: self.status.unwrap_or(0),
            reason: self.reason,
            duration_ms: elapsed.as_secs_f64() * 1e3,
            upstream_ms: self.upstream.map_or(0.0, |t| t.as_secs_f64() * 1e3),
        };
        line.emit(self.detail.as_deref());
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        self.emit();
        self.conn.activity.end();
    }
}

/// A response body that carries its request's [`RequestLog`] until it has been sent whole.
pub(crate) struct Logged<B> {
    inner: B,
    log: Option<RequestLog>,
}

impl<B: Body<Data = Bytes> + Unpin> Logged<B> {
    pub(crate) fn new(inner: B, log: RequestLog) -> Self {
        Logged {
            inner,
            log: Some(log),
        }
    }

    fn finish(&mut self) {
        if let Some(mut log) = self.log.take() {
            log.complete = true;
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Logged<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.finish(),
            Poll::Ready(Some(Err(_))) => {
                if let Some(log) = &mut self.log {
                    log.detail = Some("the upstream's response body broke off".into());
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Logged<B> {
    fn drop(&mut self) {
        // hyper drops a body it never polls (HEAD, 204, 304, an empty body): nothing was cut.
        if let Some(log) = &mut self.log {
            if log.status.is_some_and(|s| s == 204 || s == 304) || log.method == Method::HEAD {
                log.complete = true;
            }
        }
    }
}

/// The SPEC §7 fields of one request line.
struct Line<'a> {
    request_id: &'a str,
    route: &'a str,
    client_ip: &'a std::net::IpAddr,
    client_cert_sha256: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    reason: Reason,
    duration_ms: f64,
    upstream_ms: f64,
}

impl Line<'_> {
    fn emit(&self, detail: Option<&str>) {
        let outcome = self.reason.outcome().label();
        match detail {
            None => tracing::info!(
                request_id = self.request_id,
                route = self.route,
                client_ip = %self.client_ip,
                client_cert_sha256 = self.client_cert_sha256,
                method = self.method,
                path = self.path,
                status = self.status,
                outcome,
                reason = self.reason.label(),
                duration_ms = self.duration_ms,
                upstream_ms = self.upstream_ms,
                "request"
            ),
            Some(detail) => tracing::warn!(
                request_id = self.request_id,
                route = self.route,
                client_ip = %self.client_ip,
                client_cert_sha256 = self.client_cert_sha256,
                method = self.method,
                path = self.path,
                status = self.status,
                outcome,
                reason = self.reason.label(),
                detail,
                duration_ms = self.duration_ms,
                upstream_ms = self.upstream_ms,
                "request"
            ),
        }
    }
}
