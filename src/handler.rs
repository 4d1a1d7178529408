//! One request: the checks of SPEC §3 in order, the body read under `max_body`, identity headers
//! and signature, the upstream call, then one access-log line and the metrics from one outcome.

use std::convert::Infallible;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use tokio::sync::SemaphorePermit;

use crate::connection::Conn;
use crate::forward::{BodyChunks, UpstreamError};
use crate::identity::{self, CONTENT_DIGEST, SIGNATURE, SIGNATURE_INPUT, X_REQUEST_ID};
use crate::metrics::Reason;
use crate::policy::{framing, request, Denied};
use crate::signature::{ContentDigest, Covered};
use crate::snapshot::Snapshot;

/// What hookgate answers with: the upstream's streamed body or its own small one.
pub(crate) type Body = Either<Incoming, Full<Bytes>>;

/// How long an unread request body is still read and discarded after an early response, so the
/// client receives the response instead of a connection reset.
const LINGER: Duration = Duration::from_secs(5);

enum Failure {
    Denied(Denied),
    Upstream(UpstreamError),
}

impl From<Denied> for Failure {
    fn from(d: Denied) -> Self {
        Failure::Denied(d)
    }
}

pub(crate) async fn handle(
    req: Request<Incoming>,
    conn: &Conn,
) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let request_id = new_request_id();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut upstream_time = None;
    // Request rules come from the snapshot in force now: a reload applies to the next request
    // even on an open keep-alive connection (the TLS identity stays the connection's).
    let snap = conn.gate.snapshot.load_full();
    let result = process(req, conn, &snap, &request_id, &mut upstream_time).await;
    let elapsed = start.elapsed();
    let metrics = &conn.gate.metrics;

    let (mut response, reason, detail) = match result {
        Ok(mut resp) => {
            identity::remove_hop_by_hop(resp.headers_mut());
            (resp.map(Either::Left), Reason::Ok, None)
        }
        Err(Failure::Denied(d)) => {
            let mut resp = error_response(d.status(), &request_id);
            match d {
                Denied::Method => {
                    resp.headers_mut().insert(ALLOW, snap.allow.clone());
                }
                Denied::BodyTooLarge | Denied::BodyTimeout | Denied::NoBufferRoom => {
                    resp.headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                _ => {}
            }
            (resp, d.reason(), Some(d.detail().to_owned()))
        }
        Err(Failure::Upstream(e)) => {
            let (status, reason) = match e {
                UpstreamError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, Reason::UpstreamTimeout),
                UpstreamError::Unavailable(_) => {
                    (StatusCode::BAD_GATEWAY, Reason::UpstreamUnavailable)
                }
            };
            (
                error_response(status, &request_id),
                reason,
                Some(e.to_string()),
            )
        }
    };
    response
        .headers_mut()
        .insert(X_REQUEST_ID, request_id.clone());

    metrics.request(reason, elapsed);
    if let Some(t) = upstream_time {
        metrics.upstream_duration(t);
    }
    let upstream_ms = upstream_time.map_or(0.0, |t| t.as_secs_f64() * 1e3);
    let fields = AccessLog {
        request_id: request_id.to_str().unwrap_or_default(),
        conn,
        method: method.as_str(),
        path: uri.path(),
        status: response.status().as_u16(),
        reason,
        duration_ms: elapsed.as_secs_f64() * 1e3,
        upstream_ms,
    };
    fields.emit(detail.as_deref());
    Ok(response)
}

async fn process(
    req: Request<Incoming>,
    conn: &Conn,
    snap: &Snapshot,
    request_id: &HeaderValue,
    upstream_time: &mut Option<Duration>,
) -> Result<Response<Incoming>, Failure> {
    let (mut parts, mut body) = req.into_parts();

    let declared = declared_length(&parts.headers);
    if let Err(denied) = check_head(conn, snap, &parts, declared) {
        linger(body);
        return Err(denied.into());
    }
    let (body, digest, _buffered) = match read_body(
        &mut body,
        snap.config.request.max_body,
        snap.config.listen.header_timeout,
        &conn.gate.body_budget.permits,
    )
    .await
    {
        Ok(b) => b,
        Err(denied) => {
            linger(body);
            return Err(denied.into());
        }
    };
    let path = parts.uri.path();
    if let Some(rule) = &snap.payload {
        if request::is_under_any_spelling(&rule.path_prefixes, path) {
            request::check_developer_payload(&rule.pointer, &rule.values, &body.contiguous())?;
        }
    }

    // Strip, then set: nothing the client sent may pass for hookgate's word.
    let headers = &mut parts.headers;
    identity::strip_inbound(headers);
    if let Some(rule) = snap.header.as_ref().filter(|r| r.strip) {
        headers.remove(&rule.name);
    }
    match snap.upstream.host_override() {
        Some(host) => {
            headers.insert(HOST, host.clone());
        }
        None if !headers.contains_key(HOST) => {
            // HTTP/2 carries the host in :authority.
            if let Some(v) = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                headers.insert(HOST, v);
            }
        }
        None => {}
    }
    conn.identity.apply(headers, request_id, digest);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    let forwarded_path;
    if let Some(signer) = &snap.signer {
        forwarded_path = snap.upstream.forwarded_path(path);
        let created = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (input, signature) = signer.sign(
            &Covered {
                method: parts.method.as_str(),
                path: &forwarded_path,
                query: parts.uri.query(),
                content_digest: headers[CONTENT_DIGEST].as_bytes(),
                client_cert: conn.identity.client_cert.as_bytes(),
                client_cert_sha256: conn.identity.cert_sha256.as_bytes(),
                forwarded_for: conn.identity.forwarded_for.as_bytes(),
                request_id: request_id.as_bytes(),
            },
            created,
        );
        headers.insert(SIGNATURE_INPUT, input);
        headers.insert(SIGNATURE, signature);
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = snap.upstream.uri_for(path_and_query);
    parts.version = Version::HTTP_11;

    let sent = Instant::now();
    let result = snap.upstream.send(Request::from_parts(parts, body)).await;
    *upstream_time = Some(sent.elapsed());
    result.map_err(Failure::Upstream)
}

/// Every check that needs only the request head, in SPEC order.
fn check_head(
    conn: &Conn,
    snap: &Snapshot,
    parts: &http::request::Parts,
    declared: Option<u64>,
) -> Result<(), Denied> {
    let rules = &snap.config.request;
    if let Some(why) = conn.next_request_framing_refusal() {
        return Err(Denied::BadRequest(why));
    }
    framing::check_framing(&parts.headers)?;
    framing::check_authority(parts.uri.authority(), &parts.headers)?;
    if parts.method != Method::CONNECT {
        framing::check_path(parts.uri.path())?;
    }
    request::check_method(&rules.methods, &parts.method)?;
    request::check_path_prefix(&rules.path_prefixes, parts.uri.path())?;
    if let Some(rule) = &snap.header {
        request::check_required_header(&rule.name, &rule.values, &parts.headers)?;
    }
    request::check_declared_length(rules.max_body, declared)
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Reads the whole body (at most `max` bytes) and its SHA-256 digest in one pass.
/// Each part of the body must arrive within `stall` (the `header_timeout`): a client that stops
/// sending mid-body must not hold its connection, and its slot, forever. Every buffered byte
/// takes room from the process-wide `budget` (returned when the permit drops, after the
/// upstream answered); waiting longer than `stall` for room ends the request like a stall.
async fn read_body<'g>(
    body: &mut Incoming,
    max: u64,
    stall: Duration,
    budget: &'g tokio::sync::Semaphore,
) -> Result<(BodyChunks, HeaderValue, Option<SemaphorePermit<'g>>), Denied> {
    let mut digest = ContentDigest::new();
    let mut chunks = BodyChunks::default();
    let mut held: Option<SemaphorePermit<'g>> = None;
    let mut held_kib = 0;
    while let Some(frame) = tokio::time::timeout(stall, body.frame())
        .await
        .map_err(|_| Denied::BodyTimeout)?
    {
        let frame = frame.map_err(|_| Denied::BadRequest("request body could not be read"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = chunks.len() + data.len() as u64;
        if total > max {
            return Err(Denied::BodyTooLarge);
        }
        let need = crate::kib(total).saturating_sub(held_kib);
        if need > 0 {
            let need = u32::try_from(need).map_err(|_| Denied::BodyTooLarge)?;
            let more = tokio::time::timeout(stall, budget.acquire_many(need))
                .await
                .map_err(|_| Denied::NoBufferRoom)?
                .map_err(|_| Denied::NoBufferRoom)?;
            held_kib += need as usize;
            match &mut held {
                Some(p) => p.merge(more),
                None => held = Some(more),
            }
        }
        digest.update(&data);
        chunks.push(data);
    }
    Ok((chunks, digest.finish(), held))
}

/// Reads and discards what is left of a body in the background, for a bounded time.
fn linger(mut body: Incoming) {
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let drain = async { while let Some(Ok(_)) = body.frame().await {} };
        let _ = tokio::time::timeout(LINGER, drain).await;
    });
}

fn error_response(status: StatusCode, request_id: &HeaderValue) -> Response<Body> {
    let word = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::GATEWAY_TIMEOUT => "upstream_timeout",
        _ => "upstream_unavailable",
    };
    let body = format!(
        "{{\"error\":\"{word}\",\"request_id\":\"{}\"}}",
        request_id.to_str().unwrap_or_default()
    );
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A fresh random 128-bit id as 32 lowercase hex digits.
fn new_request_id() -> HeaderValue {
    let mut raw = [0u8; 16];
    // The DRBG cannot fail on a supported platform; a zero id would still be a valid header.
    let _ = aws_lc_rs::rand::fill(&mut raw);
    HeaderValue::try_from(crate::allowlist::thumbprint::hex(&raw))
        .expect("hex is a valid header value")
}

struct AccessLog<'a> {
    request_id: &'a str,
    conn: &'a Conn,
    method: &'a str,
    path: &'a str,
    status: u16,
    reason: Reason,
    duration_ms: f64,
    upstream_ms: f64,
}

impl AccessLog<'_> {
    fn emit(&self, detail: Option<&str>) {
        let id = &self.conn.identity;
        let cert = id.cert_sha256.to_str().unwrap_or_default();
        let outcome = self.reason.outcome().label();
        match detail {
            None => tracing::info!(
                request_id = self.request_id,
                client_ip = %id.client_ip,
                client_cert_sha256 = cert,
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
                client_ip = %id.client_ip,
                client_cert_sha256 = cert,
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
