//! The upstream side: the request URI rewrite (`/BASE` + path), the request head as sent, the
//! pooled HTTP/1.1 client (`http1::client`) under `upstream.timeout`, and the mapping of
//! failures to 502 / 504.

use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, Uri};

use crate::config::{self, HostMode, UpstreamTarget};
use crate::http1::client::{Failure, Pool, Target, UpstreamBody};

/// A request body as it arrived, chunk by chunk: forwarded without copying it into one buffer
/// (the client writes the head and the chunks with one `writev`).
#[derive(Debug, Default)]
pub(crate) struct BodyChunks {
    chunks: std::collections::VecDeque<Bytes>,
    len: u64,
}

impl BodyChunks {
    pub(crate) fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len() as u64;
        self.chunks.push_back(chunk);
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The body as one `Bytes` (for the store); copies only when it arrived in several chunks.
    pub(crate) fn into_bytes(mut self) -> Bytes {
        match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.pop_front().unwrap_or_default(),
            _ => Bytes::from(self.contiguous().into_owned()),
        }
    }

    /// The body in one piece; copies only when it arrived in several chunks.
    pub(crate) fn contiguous(&self) -> std::borrow::Cow<'_, [u8]> {
        match self.chunks.len() {
            0 => std::borrow::Cow::Borrowed(&[]),
            1 => std::borrow::Cow::Borrowed(&self.chunks[0]),
            _ => {
                // One allocation of the exact size and a memcpy per chunk: collecting a byte
                // iterator instead cost ~125 µs per 256 KiB request (`DEVPAYLOAD=1
                // bench-results/profile.sh BIN C`: 595 -> 470 µs CPU/request).
                let mut whole = Vec::with_capacity(self.len as usize);
                for chunk in &self.chunks {
                    whole.extend_from_slice(chunk);
                }
                std::borrow::Cow::Owned(whole)
            }
        }
    }
}

impl http_body::Body for BodyChunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let next = this.chunks.pop_front();
        if let Some(c) = &next {
            this.len -= c.len() as u64;
        }
        Poll::Ready(next.map(|c| Ok(http_body::Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.len)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    #[error("no response head from the upstream within {0:?}")]
    Timeout(Duration),
    /// An answer hookgate cannot relay faithfully (SPEC §3 item 4); its connection is dropped.
    #[error("upstream answer not relayable: {0}")]
    Unrelayable(&'static str),
}

/// The upstream application, as one pooled client.
pub(crate) struct Upstream {
    pool: Arc<Pool>,
    /// `http://host:port` (or a fixed name for a Unix socket): the pool key.
    origin: String,
    base: String,
    /// `Some` when `host = "upstream"`.
    host: Option<HeaderValue>,
    timeout: Duration,
}

impl Upstream {
    pub(crate) fn new(cfg: &config::Upstream) -> Self {
        let (origin, authority) = match &cfg.target {
            UpstreamTarget::Tcp { host, port } => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                (format!("http://{host}:{port}"), format!("{host}:{port}"))
            }
            UpstreamTarget::Unix(_) => ("http://localhost".to_owned(), "localhost".to_owned()),
        };
        Upstream {
            pool: Pool::new(
                match &cfg.target {
                    UpstreamTarget::Tcp { host, port } => Target::Tcp {
                        host: host.clone(),
                        port: *port,
                    },
                    UpstreamTarget::Unix(path) => Target::Unix(path.clone()),
                },
                cfg.connect_timeout,
            ),
            origin,
            base: cfg.base.clone(),
            host: (cfg.host == HostMode::Upstream).then(|| {
                HeaderValue::try_from(authority).expect("host:port is a valid header value")
            }),
            timeout: cfg.timeout,
        }
    }

    /// The path and query the upstream receives: `/BASE` + the request's own. Signed, stored
    /// and sent as this one string.
    pub(crate) fn target_for(&self, uri: &Uri) -> String {
        let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut s = String::with_capacity(self.base.len() + pq.len());
        s.push_str(&self.base);
        s.push_str(pq);
        s
    }

    /// The upstream URI of `target` (from [`Self::target_for`], now or when it was stored).
    pub(crate) fn uri_for_target(&self, target: &str) -> Result<Uri, UpstreamError> {
        let mut s = String::with_capacity(self.origin.len() + target.len());
        s.push_str(&self.origin);
        s.push_str(target);
        // From the String itself: `parse` would copy it once more.
        Uri::try_from(s).map_err(|e| {
            UpstreamError::Unavailable(format!("cannot form the upstream URI for {target:?}: {e}"))
        })
    }

    pub(crate) fn host_override(&self) -> Option<&HeaderValue> {
        self.host.as_ref()
    }

    /// Sends under `upstream.timeout` (until the response head).
    pub(crate) async fn send(
        &self,
        req: Request<BodyChunks>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        self.send_within(req, self.timeout).await
    }

    /// Sends with `limit` until the response head (a store attempt: `store.attempt_timeout`).
    pub(crate) async fn send_within(
        &self,
        req: Request<BodyChunks>,
        limit: Duration,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let (parts, mut body) = req.into_parts();
        let head = request_head(&parts, body.len());
        let chunks = body.chunks.make_contiguous();
        let to_head = parts.method == Method::HEAD;
        match tokio::time::timeout(limit, self.pool.exchange(&head, chunks, to_head)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(Failure::Io { error, .. })) => {
                Err(UpstreamError::Unavailable(error.to_string()))
            }
            Ok(Err(Failure::Unrelayable(why))) => Err(UpstreamError::Unrelayable(why)),
            Err(_) => Err(UpstreamError::Timeout(limit)),
        }
    }
}

/// The request head as the upstream receives it: origin-form target, every header as the
/// handler left it (stripped, set and signed), and the body's length.
fn request_head(parts: &http::request::Parts, body_len: u64) -> Vec<u8> {
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    // Sized once: the `Client-Cert` value alone (~1 KiB) outgrew an estimate per field.
    let fields: usize = (parts.headers.iter())
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    let line = parts.method.as_str().len() + " ".len() + target.len() + " HTTP/1.1\r\n".len();
    let capacity = line + fields + "content-length: \r\n\r\n".len() + 20;
    let mut head = Vec::with_capacity(capacity);
    head.extend_from_slice(parts.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        if name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    // Always a length, also 0: the upstream never has to guess where the body ends.
    let _ = write!(head, "content-length: {body_len}\r\n\r\n");
    debug_assert!(
        head.len() <= capacity,
        "the head is sized once, never grown"
    );
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_join_in_order_without_loss() {
        let mut body = BodyChunks::default();
        assert!(body.contiguous().is_empty());
        body.push(Bytes::from_static(b"{\"a\":"));
        assert!(matches!(body.contiguous(), std::borrow::Cow::Borrowed(_)));
        body.push(Bytes::new());
        body.push(Bytes::from_static(b"\"bc\"}"));
        assert_eq!(&body.contiguous()[..], b"{\"a\":\"bc\"}");
        assert_eq!(body.len(), 10);
        assert_eq!(&body.into_bytes()[..], b"{\"a\":\"bc\"}");
    }
}
