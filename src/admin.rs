//! The admin listener (plain HTTP): `/healthz`, `/readyz` with the reason when not ready, and
//! `/metrics` in the Prometheus text format.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::Gate;

/// Serves until the process exits: it stays up through the drain, so `/readyz` can answer 503.
pub(crate) async fn serve(listener: TcpListener, gate: Arc<Gate>) {
    let mut failures = crate::server::AcceptFailures::new("admin accept failed; backing off");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(a) => {
                failures.reset();
                a
            }
            Err(e) => {
                tokio::time::sleep(failures.record(&e)).await;
                continue;
            }
        };
        let gate = gate.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let gate = gate.clone();
                async move {
                    let uri = req.uri();
                    let api = crate::store_api::answer(
                        &gate,
                        req.method(),
                        uri.path(),
                        uri.query(),
                        req.headers(),
                    )
                    .await;
                    Ok::<_, Infallible>(api.unwrap_or_else(|| route(&req, &gate)))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn route(req: &Request<Incoming>, gate: &Gate) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match not_ready_reason(gate) {
            None => text(StatusCode::OK, "ready\n".into()),
            Some(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        "/metrics" => {
            let mut resp = text(StatusCode::OK, gate.metrics.render());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /healthz, /readyz or /metrics\n".into(),
        ),
    }
}

/// `None` when ready: listening, every configured allow list non-empty, not draining.
pub(crate) fn not_ready_reason(gate: &Gate) -> Option<String> {
    if gate.draining.load(Ordering::Acquire) {
        return Some("draining (shutting down)".into());
    }
    let admission = gate.admission();
    if admission.pin_count() == Some(0) {
        return Some("the [thumbprints] allow list is empty, so every client is refused".into());
    }
    if admission.network_count() == Some(0) {
        return Some("the [source_ips] allow list is empty, so every connection is refused".into());
    }
    let snap = gate.snapshot();
    // SPEC §9.7: not ready while the store cannot be written.
    if let Some(why) = gate.store.as_ref().and_then(|s| s.unwritable()) {
        return Some(why);
    }
    if gate.store.is_none() && snap.routes.iter().any(|r| r.store) {
        return Some("a store route has no store open ([store] waits for a restart)".into());
    }
    None
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
