//! Writing a response on hookgate's own HTTP/1.1 connection: the status line, the handler's
//! headers (hop-by-hop ones are hookgate's to set), the framing chosen here (the declared or
//! exact length, else chunked; none for HEAD, 1xx, 204 and 304), `Date`, and `Connection:
//! close` on the last response; then the body. A small body goes out in one write with its head.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Write as _};
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderValue, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Body data up to this size is copied behind the head, so both leave in one write.
const COALESCE: usize = 16 * 1024;

/// Writes `resp`; `head_only` for a HEAD request, `close` when no request follows. Returns
/// whether the connection may carry another request (an HTTP/1.0 body of unknown length is
/// delimited by closing). An error means the response could not be sent whole: close.
pub(crate) async fn write_response<S, B>(
    io: &mut S,
    resp: Response<B>,
    version: Version,
    head_only: bool,
    close: bool,
) -> io::Result<bool>
where
    S: AsyncWrite + Unpin,
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let length = match no_body {
        true => None,
        false => declared.or_else(|| body.size_hint().exact()),
    };
    let chunked = !no_body && length.is_none() && version == Version::HTTP_11;
    let close = close || (!no_body && length.is_none() && !chunked);

    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(match version {
        Version::HTTP_10 => b"HTTP/1.0 ",
        _ => b"HTTP/1.1 ",
    });
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == CONNECTION || name == TRANSFER_ENCODING || name == CONTENT_LENGTH {
            continue;
        }
        header(&mut out, name.as_str(), value.as_bytes());
    }
    // A HEAD answer says how long the body would have been.
    let shown = length.or(declared.filter(|_| head_only && !no_body));
    if let Some(n) = shown {
        let _ = write!(out, "content-length: {n}\r\n");
    }
    if chunked && !head_only {
        header(&mut out, "transfer-encoding", b"chunked");
    }
    if !parts.headers.contains_key(DATE) {
        header(&mut out, "date", date().as_bytes());
    }
    if close {
        header(&mut out, "connection", b"close");
    } else if version == Version::HTTP_10 {
        header(&mut out, "connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");

    if head_only || no_body {
        // Never polled: `Logged` counts a HEAD, 204 or 304 answer as sent whole when dropped.
        drop(body);
        io.write_all(&out).await?;
        io.flush().await?;
        return Ok(!close);
    }
    let mut sent: u64 = 0;
    // The first frame, if it is ready now, goes out with the head.
    let mut ready = {
        // `Frame` only calls `poll_frame`: dropping it while pending loses nothing.
        let mut next = std::pin::pin!(body.frame());
        match std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await {
            Poll::Ready(frame) => Some(frame),
            Poll::Pending => None,
        }
    };
    loop {
        let frame = match ready.take() {
            Some(frame) => frame,
            None => {
                if !out.is_empty() {
                    io.write_all(&out).await?;
                    io.flush().await?;
                    out.clear();
                }
                body.frame().await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err(io::Error::other(e.to_string())),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                // Trailers and empty frames: nothing to send on HTTP/1.1 here.
                _ => continue,
            },
        };
        sent += data.len() as u64;
        if length.is_some_and(|n| sent > n) {
            return Err(io::Error::other(
                "the body is longer than its Content-Length",
            ));
        }
        if chunked {
            let _ = write!(out, "{:x}\r\n", data.len());
        }
        if data.len() <= COALESCE {
            out.extend_from_slice(&data);
        } else {
            io.write_all(&out).await?;
            out.clear();
            io.write_all(&data).await?;
        }
        if chunked {
            out.extend_from_slice(b"\r\n");
        }
        if out.len() >= COALESCE {
            io.write_all(&out).await?;
            out.clear();
        }
    }
    if length.is_some_and(|n| sent != n) {
        return Err(io::Error::other(
            "the body is shorter than its Content-Length",
        ));
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    if !out.is_empty() {
        io.write_all(&out).await?;
    }
    io.flush().await?;
    Ok(!close)
}

fn header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `Date` value, formatted once a second per thread.
fn date() -> HeaderValue {
    thread_local! {
        static CACHE: RefCell<(u64, Option<HeaderValue>)> = const { RefCell::new((0, None)) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs || cache.1.is_none() {
            let value = HeaderValue::try_from(httpdate::fmt_http_date(now))
                .expect("an HTTP date is a valid header value");
            *cache = (secs, Some(value));
        }
        cache.1.clone().expect("just set")
    })
}
