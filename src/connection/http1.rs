//! hookgate's own HTTP/1.1 connection, after the TLS handshake (the protocol pieces are in
//! `http1`; this is where they meet the handler): read a head (framing decides
//! where it ends), hand the request to the handler while its body is read off the connection,
//! write the answer, and go on with the next request or close. Every refusal is answered in
//! hookgate's format (SPEC §11), then the connection closes.
//!
//! The timeouts of SPEC §2: `header_timeout` from the end of the handshake, or of the previous
//! response, to a complete head; `idle_timeout` with nothing in flight. A drain closes an idle
//! connection at once and a busy one after its response; the cut at the end of the grace, or a
//! client no longer admitted after a reload or a list refresh, ends it as `drive` does for
//! HTTP/2.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, EXPECT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::conn::{Conn, Stop};
use crate::http1::body::{self, BodyError, BodyReader};
use crate::http1::framing::{self, HeadScan, Refusal, MAX_HEADERS};
use crate::http1::respond::write_response;

/// The unread rest of a body, after an early answer, is read and discarded this long at most.
const LINGER: Duration = Duration::from_secs(5);

pub(crate) struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
}

/// Serves the connection until it closes.
///
/// Not an `async fn`: its arguments would be stored twice in the future (rust-lang/rust#62958),
/// and the TLS stream is the biggest part of what an idle connection holds.
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve<S>(
    mut io: S,
    conn: Arc<Conn>,
    timeouts: Timeouts,
    mut stop: watch::Receiver<Stop>,
) -> impl Future<Output = ()> + Send
where
    S: AsyncBufRead + AsyncWrite + Unpin + Send,
{
    async move {
        let mut buf = BytesMut::new();
        let mut admission = conn.gate.watch_admission();
        let mut first = true;
        loop {
            let next = next_head(
                &mut io,
                &mut buf,
                &conn,
                &timeouts,
                &mut stop,
                &mut admission,
                first,
            )
            .await;
            first = false;
            let head = match next {
                Next::Head(len) => Ok(len),
                Next::Refused(refusal) => Err(refusal),
                Next::Close => return,
            };
            // Boxed: the connection's task, alive while the connection idles, is not sized for
            // what one request (or a refusal) needs.
            let exchange = Box::pin(exchange(
                head,
                &mut io,
                &mut buf,
                &conn,
                &mut stop,
                &mut admission,
            ));
            if exchange.await == After::Close {
                return;
            }
        }
    }
}

#[derive(PartialEq)]
enum After {
    KeepAlive,
    Close,
}

/// One request, from its head (`Ok`: its length at the start of `buf`) to the end of its
/// answer and of its unread body; a refusal is answered and ends the connection.
async fn exchange<S>(
    head: Result<usize, Refusal>,
    io: &mut S,
    buf: &mut BytesMut,
    conn: &Arc<Conn>,
    stop: &mut watch::Receiver<Stop>,
    admission: &mut watch::Receiver<u64>,
) -> After
where
    S: AsyncBufRead + AsyncWrite + Unpin + Send,
{
    let len = match head {
        Ok(len) => len,
        Err(refusal) => {
            refuse(io, conn, buf, refusal).await;
            return After::Close;
        }
    };
    let head = buf.split_to(len).freeze();
    let (request, framing, expects_continue) = match request_of(&head) {
        Ok(parts) => parts,
        Err(refusal) => {
            refuse(io, conn, &head, refusal).await;
            return After::Close;
        }
    };
    let head_only = request.method() == Method::HEAD;
    let version = request.version();
    let (body, mut reader) = body::body(framing.body, expects_continue, buf);
    let mut close = !framing.keep_alive || *stop.borrow() != Stop::Serve;

    let mut handling = std::pin::pin!(crate::handler::handle(request.map(|()| body), conn.clone()));
    let mut fed = reader.is_done();
    let mut feed_failed = false;
    let response = {
        let feeding = feed(&mut reader, io, buf);
        tokio::pin!(feeding);
        loop {
            tokio::select! {
                response = &mut handling => break response,
                result = &mut feeding, if !fed => {
                    fed = true;
                    feed_failed = result.is_err();
                }
                changed = stop.changed() => match now(changed, stop) {
                    Stop::Cut => return After::Close,
                    Stop::Drain => close = true,
                    Stop::Serve => {}
                },
                _ = admission.changed() => {
                    if !conn.is_still_admitted() {
                        no_longer_admitted(conn);
                        close = true;
                    }
                }
            }
        }
    };
    let Ok(response) = response;
    close |= feed_failed
        || response
            .headers()
            .get_all(CONNECTION)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    // Answered before the whole body was read: the rest is read and discarded after the
    // answer (a lingering close, or on to the next request), unless the client waits for a
    // `100 Continue` that was never sent or the body itself was refused.
    let unread = !reader.is_done();
    let linger = unread && !reader.expects_continue && !feed_failed;
    close |= unread && !linger;
    let written = tokio::select! {
        written = write_response(io, response, version, head_only, close) => written,
        _ = cut(stop) => return After::Close,
    };
    close |= !matches!(written, Ok(true));
    if linger && written.is_ok() {
        let discarded = tokio::select! {
            d = tokio::time::timeout(LINGER, reader.discard(io, buf)) => d,
            _ = cut(stop) => return After::Close,
        };
        close |= !matches!(discarded, Ok(Ok(())));
    }
    if close {
        let _ = io.shutdown().await;
        return After::Close;
    }
    After::KeepAlive
}

enum Next {
    /// A complete head of this many bytes starts `buf`.
    Head(usize),
    Refused(Refusal),
    Close,
}

/// Waits for the next complete head under `header_timeout` and `idle_timeout`.
async fn next_head<S: AsyncBufRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
    conn: &Conn,
    timeouts: &Timeouts,
    stop: &mut watch::Receiver<Stop>,
    admission: &mut watch::Receiver<u64>,
    first: bool,
) -> Next {
    let mut scan = HeadScan::default();
    let started = Instant::now();
    let (head_by, idle_by) = (started + timeouts.header, started + timeouts.idle);
    loop {
        if !buf.is_empty() {
            match scan.advance(buf) {
                Ok(Some(len)) => return Next::Head(len),
                Ok(None) => {}
                Err(refusal) => return Next::Refused(refusal),
            }
        }
        let idle = buf.is_empty();
        tokio::select! {
            read = read_more(io, buf) => match read {
                Ok(n) if n > 0 => {}
                // The client closed (mid-head or between requests) or the connection failed.
                _ => return Next::Close,
            },
            _ = tokio::time::sleep_until(head_by) => {
                // An idle keep-alive connection simply ends; a head begun and not finished,
                // or none at all after the handshake, is a slow client.
                if !idle || first {
                    tracing::info!(client_ip = %conn.identity.client_ip, reason = "header_timeout", "request head not received in time");
                }
                return Next::Close;
            }
            _ = tokio::time::sleep_until(idle_by), if idle => return Next::Close,
            changed = stop.changed() => {
                if now(changed, stop) == Stop::Cut || idle {
                    return Next::Close;
                }
            }
            _ = admission.changed() => {
                if !conn.is_still_admitted() {
                    no_longer_admitted(conn);
                    return Next::Close;
                }
            }
        }
    }
}

/// Reads what has arrived into `buf`. An empty `buf` (an idle connection) holds no memory
/// until bytes are there: they wait in the TLS layer's buffer, not in ours.
async fn read_more<S: AsyncBufRead + Unpin>(io: &mut S, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.is_empty() {
        *buf = BytesMut::new();
        let arrived = io.fill_buf().await?;
        let n = arrived.len();
        if n == 0 {
            return Ok(0);
        }
        buf.reserve(n.max(8 * 1024));
        buf.extend_from_slice(arrived);
        io.consume(n);
        return Ok(n);
    }
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(8 * 1024);
    }
    io.read_buf(buf).await
}

/// Answers `100 Continue` when the handler first asks for the body, then reads it.
async fn feed<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut BodyReader,
    io: &mut S,
    buf: &mut BytesMut,
) -> Result<(), BodyError> {
    if reader.expects_continue {
        if !reader.wanted().await {
            return Ok(());
        }
        io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|_| BodyError::Closed)?;
        io.flush().await.map_err(|_| BodyError::Closed)?;
        reader.expects_continue = false;
    }
    reader.feed(io, buf).await
}

/// The request a complete head describes, its framing, and whether it expects `100 Continue`.
fn request_of(head: &Bytes) -> Result<(Request<()>, framing::Framing, bool), Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (parsed, framing) = framing::parse_head(head, &mut fields)?;
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| Refusal::Malformed("malformed request head"))?;
    let target = parsed.path.unwrap_or_default().as_bytes();
    let uri = Uri::from_maybe_shared(head.slice_ref(target))
        .map_err(|_| Refusal::Malformed("malformed request target"))?;
    // Room for what the handler sets (identity, digest, signature): no regrowth per request.
    let mut headers = HeaderMap::with_capacity(parsed.headers.len() + 12);
    let mut expects_continue = false;
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| Refusal::Malformed("malformed request head"))?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(field.value))
            .map_err(|_| Refusal::Malformed("malformed request head"))?;
        expects_continue |=
            name == EXPECT && value.as_bytes().eq_ignore_ascii_case(b"100-continue");
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    *request.headers_mut() = headers;
    Ok((request, framing, expects_continue))
}

/// Answers a refused stream in hookgate's format and closes the connection. The log line names
/// the method and target of the request line when they can be read.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    conn: &Arc<Conn>,
    head: &[u8],
    refusal: Refusal,
) {
    let (method, uri) = request_line(head);
    let response = crate::handler::refused(conn.clone(), method, uri, refusal);
    let _ = write_response(io, response, Version::HTTP_11, false, true).await;
    let _ = io.shutdown().await;
}

/// The method and target of a head's first line, as far as they are readable; `-` and `*` if not.
fn request_line(head: &[u8]) -> (Method, Uri) {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let method = words
        .next()
        .and_then(|m| Method::from_bytes(m).ok())
        .unwrap_or_else(|| Method::from_bytes(b"-").expect("a token"));
    let uri = words
        .next()
        .filter(|t| t.len() <= framing::MAX_REQUEST_LINE)
        .and_then(|t| Uri::try_from(t).ok())
        .unwrap_or_else(|| Uri::from_static("*"));
    (method, uri)
}

/// Where the process stands after `stop` changed (a closed channel is the end).
fn now(changed: Result<(), watch::error::RecvError>, stop: &watch::Receiver<Stop>) -> Stop {
    match changed {
        Ok(()) => *stop.borrow(),
        Err(_) => Stop::Cut,
    }
}

/// Resolves when the process cuts its connections.
async fn cut(stop: &mut watch::Receiver<Stop>) {
    if *stop.borrow() == Stop::Cut {
        return;
    }
    loop {
        let changed = stop.changed().await;
        if now(changed, stop) == Stop::Cut {
            return;
        }
    }
}

fn no_longer_admitted(conn: &Conn) {
    tracing::warn!(client_ip = %conn.identity.client_ip, reason = "no_longer_admitted",
        "closing a connection whose client certificate or address is no longer allowed");
}
