//! One request: the checks of SPEC §3 in order, the body read under `max_body`, identity headers,
//! then stored or signed and forwarded ([`store_or_forward`]), then one access-log line and the
//! metrics from one outcome.

mod store_or_forward;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderValue, Method, Request, Response};
use http_body::Body as _;
use http_body_util::{Either, Full};

use crate::answer::Ended;
use crate::body::{read_body, Inbound, Limits};
use crate::config::Routing;
use crate::conn::Conn;
use crate::http1::client::UpstreamBody;
use crate::http1::framing::Refusal;
use crate::identity::X_REQUEST_ID;
use crate::policy::{request, target, Denied};
use crate::request_log::{Logged, RequestLog};
use crate::routes::Route;
use crate::snapshot::Snapshot;
use store_or_forward::{forward_request, store_request};

/// What hookgate answers with: the upstream's streamed body or its own small one, carrying the
/// request's log line until it has been sent.
pub(crate) type Body = Logged<Either<UpstreamBody, Full<Bytes>>>;

pub(crate) async fn handle<B: Inbound>(
    req: Request<B>,
    conn: Arc<Conn>,
) -> Result<Response<Body>, Infallible> {
    let request_id = new_request_id();
    let mut log = RequestLog::start(
        conn,
        request_id.clone(),
        req.method().clone(),
        req.uri().clone(),
    );
    // Request rules come from the snapshot in force now: a reload applies to the next request
    // even on an open keep-alive connection (the TLS identity stays the connection's).
    let conn = log.conn_arc();
    let snap = conn.gate.snapshot_full();
    let result = process(req, &conn, &mut log, &snap, &request_id).await;

    let ended = result.unwrap_or_else(|e| e);
    // 405 names the methods of the route the request was refused on.
    let allow = matches!(ended, Ended::Denied(Denied::Method))
        .then(|| snap.routes.iter().find(|r| r.name() == log.route_name()))
        .flatten()
        .map(|r| &r.allow);
    Ok(answer(ended, log, request_id, allow))
}

/// A request the HTTP/1.1 framing refused before it could be read whole (SPEC §11): answered,
/// logged and counted like any refusal.
pub(crate) fn refused(
    conn: Arc<Conn>,
    method: Method,
    uri: http::Uri,
    refusal: Refusal,
) -> Response<Body> {
    let request_id = new_request_id();
    let log = RequestLog::start(conn, request_id.clone(), method, uri);
    answer(
        Ended::Denied(Denied::Framing(refusal)),
        log,
        request_id,
        None,
    )
}

/// The response for `ended`, carrying the request's log line until it has been sent.
fn answer(
    ended: Ended,
    mut log: RequestLog,
    request_id: HeaderValue,
    allow: Option<&HeaderValue>,
) -> Response<Body> {
    let (reason, detail) = (ended.reason(), ended.detail());
    let mut response = ended.into_response(&request_id, allow);
    response.headers_mut().insert(X_REQUEST_ID, request_id);
    let streams = !response.body().is_end_stream();
    log.respond(response.status().as_u16(), reason, detail, streams);
    response.map(|body| Logged::new(body, log))
}

/// `Ok`: every check passed and it was forwarded or stored; `Err`: it ended early (`?` on
/// a refusal or failure).
async fn process<B: Inbound>(
    req: Request<B>,
    conn: &Conn,
    log: &mut RequestLog,
    snap: &Snapshot,
    request_id: &HeaderValue,
) -> Result<Ended, Ended> {
    let (mut parts, mut body) = req.into_parts();

    let declared = declared_length(&parts.headers);
    let route = match check_head(conn, snap, &parts, declared, log) {
        Ok(route) => route,
        Err(denied) => {
            body.linger();
            return Err(Ended::Denied(denied));
        }
    };
    let listen = &snap.config.listen;
    let limits = Limits {
        max: route.max_body,
        stall: listen.header_timeout,
        deadline: tokio::time::Instant::now() + listen.body_timeout,
    };
    let read = match read_body(&mut body, declared, &limits, &conn.gate.body_budget).await {
        Ok(b) => b,
        Err(denied) => {
            body.linger();
            return Err(Ended::Denied(denied));
        }
    };
    let path = parts.uri.path();
    if let Some(rule) = route.payload.as_ref().filter(|r| r.applies_to(path)) {
        let whole = read.chunks.contiguous();
        request::check_developer_payload(&rule.pointer, &rule.values, &whole)
            .map_err(Ended::Denied)?;
    }

    // Strip, then set: nothing the client sent may pass for hookgate's word.
    let upstream = &route.upstream;
    let headers = &mut parts.headers;
    route.strip.apply(headers);
    match upstream.host_override() {
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
    conn.identity.apply(headers, request_id, read.digest);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(read.chunks.len()));

    let ended = if route.store {
        let store = conn.gate.store.as_deref();
        store_request(store, route, &parts, read.chunks, request_id).await
    } else {
        forward_request(snap.signer.as_ref(), upstream, parts, read.chunks, log).await
    };
    // The body's room in the budget is given back once it was stored or sent.
    drop(read.room);
    ended
}

/// Every check that needs only the request head, in SPEC order, and the request's route (which
/// the log line and the metrics report from the moment it is known).
fn check_head<'s>(
    conn: &Conn,
    snap: &'s Snapshot,
    parts: &http::request::Parts,
    declared: Option<u64>,
    log: &mut RequestLog,
) -> Result<&'s Route, Denied> {
    target::check_host(parts.uri.authority(), &parts.headers)?;
    if parts.method != Method::CONNECT {
        target::check_path(parts.uri.path())?;
    }
    let path = parts.uri.path();
    let route = match snap.routes.routing() {
        // SPEC §3 without routes: the method (405) is checked before the path (404).
        Routing::Default => {
            let default = snap.routes.iter().next().ok_or(Denied::Path)?;
            log.set_route(&default.metrics);
            request::check_method(&default.methods, &parts.method)?;
            snap.routes.select(path).ok_or_else(|| {
                log.set_route(&conn.gate.metrics.unrouted());
                Denied::Path
            })?
        }
        // SPEC §8: framing, route, then the route's methods.
        Routing::Routes => {
            let route = snap.routes.select(path).ok_or(Denied::Path)?;
            log.set_route(&route.metrics);
            request::check_method(&route.methods, &parts.method)?;
            route
        }
    };
    if let Some(rule) = &route.header {
        request::check_required_header(&rule.name, &rule.values, &parts.headers)?;
    }
    request::check_declared_length(route.max_body, declared)?;
    Ok(route)
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A fresh 128-bit id as 32 lowercase hex digits: the UNIX time in milliseconds (48 bits) and
/// 80 random bits, as in a UUIDv7. Ids made later sort later, so the store's index on them
/// grows at one end and a commit rewrites a few of its pages, not one per request.
fn new_request_id() -> HeaderValue {
    let mut raw = [0u8; 16];
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    raw[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    random_bytes(&mut raw[6..]);
    HeaderValue::try_from(crate::digest::hex(&raw)).expect("hex is a valid header value")
}

/// Fills `out` from a per-thread block of the system DRBG's output, refilled every 102 ids:
/// one DRBG call (with its RDRAND reseed) per request cost 2 % of a keep-alive request's CPU.
/// The ids are public (header, log, store) and need to be unique, not secret; a block drawn
/// before a fork or a VM snapshot could be handed out twice, which the DRBG itself would
/// notice — hookgate does not fork, and a cloned VM's ids are told apart by their time.
fn random_bytes(out: &mut [u8]) {
    const BLOCK: usize = 1024;
    thread_local! {
        static BLOCK_LEFT: std::cell::RefCell<([u8; BLOCK], usize)> =
            const { std::cell::RefCell::new(([0; BLOCK], 0)) };
    }
    BLOCK_LEFT.with_borrow_mut(|(block, left)| {
        if *left < out.len() {
            if aws_lc_rs::rand::fill(block).is_err() {
                // Cannot happen on a supported platform; if it did, spoil one id, not a block.
                let _ = aws_lc_rs::rand::fill(out);
                return;
            }
            *left = BLOCK;
        }
        out.copy_from_slice(&block[*left - out.len()..*left]);
        *left -= out.len();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_and_hex_across_refills() {
        // 1,000 ids span nine refills of the per-thread random block.
        let ids: Vec<String> = (0..1000)
            .map(|_| new_request_id().to_str().unwrap().to_owned())
            .collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), 32);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
        // The random part is not constant: 80 bits, no two alike, none all zero.
        assert!(ids.iter().all(|id| &id[12..] != "00000000000000000000"));
    }
}
