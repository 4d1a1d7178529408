//! The security review's fixes, against the real binary: stalled bodies and silent HTTP/2 peers
//! are bounded, path spellings and framing tricks are refused, developerPayload prefixes hold for
//! every spelling, underscore twins of identity headers are stripped, and a reload reaches the
//! connections that are already open (closing those it no longer admits).

mod faults;
mod framing;
mod headers;
mod loop_differential;
mod reload;
mod requests;
mod stalls;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;

use crate::support::client::{self, Tls};
use crate::support::*;

/// The HTTP/2 client connection preface (RFC 9113 §3.4) followed by an empty SETTINGS frame.
pub const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// HTTP/2 frame type GOAWAY.
pub const GOAWAY: u8 = 0x7;

/// One HTTP/2 frame header as received: `(type, flags, stream id)`.
pub type FrameHead = (u8, u8, u32);

/// The frame headers in `bytes` (what a server wrote after its preface), in order; a trailing
/// partial frame is ignored.
pub fn h2_frames(bytes: &[u8]) -> Vec<FrameHead> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        frames.push((rest[3], rest[4], stream));
        rest = rest.get(9 + len..).unwrap_or_default();
    }
    frames
}

/// Reads until the server closes the connection (EOF or error); returns what arrived and how
/// long the close took, or `None` if the connection was still open after `within`.
pub async fn read_until_closed(tls: &mut Tls, within: Duration) -> (Vec<u8>, Option<Duration>) {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + within;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, tls.read(&mut chunk)).await {
            Err(_) => return (bytes, None),
            Ok(Ok(0)) | Ok(Err(_)) => return (bytes, Some(start.elapsed())),
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A raw HTTP/1.1 `POST` with the required header, `Host: localhost`, `Content-Length` of
/// `body`, the `extra` header lines (each without CRLF) and the body.
pub fn raw_post(path: &str, extra: &[&str], body: &str) -> String {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{HEADER_NAME}: {HEADER_SECRET}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    format!("{head}\r\n{body}")
}

/// A fresh TLS connection with the pinned client (ALPN `http/1.1`).
pub async fn connect(gate: &Gate) -> Tls {
    gate.client().connect(gate.addr).await.expect("handshake")
}

/// Writes `bytes` on `tls` and reads one response (5 s at most).
pub async fn exchange(tls: &mut Tls, bytes: &str) -> client::RawReply {
    client::raw_exchange(tls, bytes.as_bytes(), Duration::from_secs(5)).await
}

/// A request body that never sends a byte and never ends: the request goes out as HEADERS
/// without END_STREAM (HTTP/2), and nothing follows.
pub struct Stalled;

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

/// An HTTP/2 connection (hyper) with the pinned client whose request bodies are [`Stalled`].
pub async fn h2_stalled(gate: &Gate) -> hyper::client::conn::http2::SendRequest<Stalled> {
    let tls = gate
        .client()
        .alpn(&["h2"])
        .connect(gate.addr)
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN h2");
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    sender
}

/// The JSON access-log line for the request whose response carried `reply`'s `X-Request-Id`.
pub async fn request_log(gate: &Gate, reply: &Reply) -> serde_json::Value {
    let id = reply.request_id();
    gate.expect_log("for the request", |v| {
        v["msg"] == "request" && v["request_id"] == id.as_str()
    })
    .await
}

/// Reads a whole hyper response into a [`Reply`].
pub async fn collect(resp: http::Response<hyper::body::Incoming>) -> Reply {
    use http_body_util::BodyExt;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}
