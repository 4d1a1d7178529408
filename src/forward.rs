//! The upstream side: a pooled HTTP/1.1 client over TCP or a Unix socket, the request URI
//! rewrite (`/BASE` + path), and the mapping of failures to 502 / 504.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::config::{self, HostMode, UpstreamTarget};

/// A request body as it arrived, chunk by chunk: forwarded without copying it into one buffer
/// (hyper writes the chunks with one `writev`).
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
            _ => std::borrow::Cow::Owned(
                self.chunks.iter().flat_map(|c| c.iter().copied()).collect(),
            ),
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

/// Pooled connections idle longer than this are closed by us first, before common app servers
/// (Node's 5 s keep-alive, for one) close them under a request in flight.
const POOL_IDLE: Duration = Duration::from_secs(4);

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
    client: Client<Connector, BodyChunks>,
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
        let connector = Connector {
            target: Arc::new(cfg.target.clone()),
            connect_timeout: cfg.connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .set_host(false)
            .build(connector);
        Upstream {
            client,
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
        s.parse().map_err(|e| {
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
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.send_within(req, self.timeout).await
    }

    /// Sends with `limit` until the response head (a store attempt: `store.attempt_timeout`).
    pub(crate) async fn send_within(
        &self,
        mut req: Request<BodyChunks>,
        limit: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        // hyper skips 1xx heads; 100 and 103 are harmless, any other one means the upstream
        // speaks a protocol hookgate does not relay (102 Processing, 104 Upload Resumption).
        let stray = Arc::new(AtomicU16::new(0));
        let seen = stray.clone();
        hyper::ext::on_informational(&mut req, move |informational| {
            let code = informational.status().as_u16();
            if code != 100 && code != 103 {
                seen.store(code, Ordering::Relaxed);
            }
        });
        let resp = match tokio::time::timeout(limit, self.client.request(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Err(UpstreamError::Unavailable(error_chain(&e))),
            Err(_) => return Err(UpstreamError::Timeout(limit)),
        };
        check_relayable(&resp, stray.load(Ordering::Relaxed))?;
        Ok(resp)
    }
}

/// SPEC §3 item 4: hookgate never asks for an upgrade (it strips `Upgrade`), so a 101 is a
/// protocol switch it cannot follow; a stray 1xx, or Content-Length beside Transfer-Encoding
/// (RFC 9112 §6.1: a sign of smuggling), is an answer two parties could read differently.
fn check_relayable(
    resp: &Response<Incoming>,
    stray_informational: u16,
) -> Result<(), UpstreamError> {
    if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        return Err(UpstreamError::Unrelayable(
            "101 Switching Protocols to a request that asked for no upgrade",
        ));
    }
    if stray_informational != 0 {
        return Err(UpstreamError::Unrelayable(
            "an informational (1xx) response other than 100 or 103",
        ));
    }
    let headers = resp.headers();
    if headers.contains_key(http::header::CONTENT_LENGTH)
        && headers.contains_key(http::header::TRANSFER_ENCODING)
    {
        return Err(UpstreamError::Unrelayable(
            "Content-Length together with Transfer-Encoding",
        ));
    }
    Ok(())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Dials the configured target whatever the URI says (the URI only keys the pool).
#[derive(Clone)]
struct Connector {
    target: Arc<UpstreamTarget>,
    connect_timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = UpstreamIo;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<UpstreamIo>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let target = self.target.clone();
        let limit = self.connect_timeout;
        Box::pin(async move {
            // Waits (within upstream.timeout) for a descriptor rather than failing with EMFILE.
            let slot = crate::limits::upstream_slot().await;
            let connect = async {
                match &*target {
                    UpstreamTarget::Tcp { host, port } => {
                        let s = TcpStream::connect((host.as_str(), *port)).await?;
                        s.set_nodelay(true)?;
                        Ok(Stream::Tcp(s))
                    }
                    UpstreamTarget::Unix(path) => UnixStream::connect(path).await.map(Stream::Unix),
                }
            };
            match tokio::time::timeout(limit, connect).await {
                Ok(stream) => stream.map(|s| UpstreamIo {
                    io: TokioIo::new(s),
                    _slot: slot,
                }),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect timed out after {limit:?}"),
                )),
            }
        })
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// The connection type the pool holds, with its share of the file descriptors.
pub(crate) struct UpstreamIo {
    io: TokioIo<Stream>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }
}
