//! hookgate's HTTP/1.1 client to the upstream, driven inline in the request's task (no
//! connection task to hand each request to and back): a pooled keep-alive connection over TCP
//! or a Unix socket, the request head and body in one vectored write, the response read by the
//! strict response framing ([`super::response`]), its body streamed from the connection, which
//! goes back to the pool once the body has been read whole.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Response;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

use super::framing::{self, BodyState, HeadScan};
use super::response::{parse_response, Delimit, Parsed};

/// Pooled connections idle longer than this are closed by us first, before common app servers
/// (Node's 5 s keep-alive, for one) close them under a request in flight.
pub(crate) const POOL_IDLE: Duration = Duration::from_secs(4);

/// Pooled connections idle this long are probed for a close before use.
const PROBE_AFTER: Duration = Duration::from_millis(500);

/// How one exchange failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connecting, writing or reading failed; `answered`: some of a response had arrived.
    Io { error: io::Error, answered: bool },
    /// The answer cannot be relayed faithfully (SPEC §3 item 4); the connection is dropped.
    Unrelayable(&'static str),
}

/// Where the upstream listens.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Tcp { host: String, port: u16 },
    Unix(std::path::PathBuf),
}

/// The connections to one upstream.
pub(crate) struct Pool {
    target: Target,
    connect_timeout: Duration,
    idle: Mutex<Idle>,
    /// A connection came back: a request waiting for a descriptor may take it instead.
    returned: tokio::sync::Notify,
}

#[derive(Default)]
struct Idle {
    conns: Vec<(Box<Connection>, Instant)>,
    /// A task closes connections idle past [`POOL_IDLE`] while any are pooled.
    reaping: bool,
}

/// One connection, with the bytes read past what has been consumed.
pub(crate) struct Connection {
    stream: Stream,
    buf: BytesMut,
    /// Its share of the process's file descriptors (`limits::upstream_slot`).
    _slot: tokio::sync::OwnedSemaphorePermit,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Pool {
    pub(crate) fn new(target: Target, connect_timeout: Duration) -> Arc<Pool> {
        Arc::new(Pool {
            target,
            connect_timeout,
            idle: Mutex::new(Idle::default()),
            returned: tokio::sync::Notify::new(),
        })
    }

    /// Sends `head` and `body` and reads the response head; `to_head`: the request is HEAD. A
    /// pooled connection the upstream closed meanwhile (no byte of an answer came back) is
    /// retried once on a new one.
    pub(crate) async fn exchange(
        self: &Arc<Self>,
        head: &[u8],
        body: &[Bytes],
        to_head: bool,
    ) -> Result<Response<UpstreamBody>, Failure> {
        let mut fresh = false;
        loop {
            let (mut conn, reused) = match self.checkout(fresh).await {
                Ok(c) => c,
                Err(error) => {
                    return Err(Failure::Io {
                        error,
                        answered: false,
                    })
                }
            };
            match conn.exchange(head, body, to_head).await {
                Ok(head) => {
                    let state = match head.body {
                        Delimit::Length(n) => {
                            Reading::Framed(BodyState::new(framing::Body::Length(n)))
                        }
                        Delimit::Chunked => Reading::Framed(BodyState::new(framing::Body::Chunked)),
                        Delimit::Close => Reading::UntilClose,
                    };
                    let left = match head.body {
                        Delimit::Length(n) => Some(n),
                        _ => None,
                    };
                    let body = UpstreamBody {
                        conn: Some(conn),
                        reading: None,
                        done: matches!(state, Reading::Framed(ref s) if s.is_done()),
                        state,
                        left,
                        keep_alive: head.keep_alive,
                        pool: Arc::downgrade(self),
                    };
                    let mut resp = Response::new(body);
                    *resp.status_mut() = head.status;
                    *resp.version_mut() = head.version;
                    *resp.headers_mut() = head.headers;
                    if resp.body().done {
                        resp.body_mut().finish();
                    }
                    return Ok(resp);
                }
                Err(Failure::Io {
                    answered: false, ..
                }) if reused && !fresh => fresh = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// The most recently used live pooled connection, or a new one (`fresh`: always new).
    async fn checkout(&self, fresh: bool) -> io::Result<(Box<Connection>, bool)> {
        let slot = loop {
            if !fresh {
                if let Some(conn) = self.pooled() {
                    return Ok((conn, true));
                }
            }
            // Waits (within upstream.timeout) for a descriptor rather than failing with EMFILE,
            // or for a connection another request gives back.
            tokio::select! {
                slot = crate::limits::upstream_slot() => break slot,
                _ = self.returned.notified(), if !fresh => {}
            }
        };
        let connect = async {
            match &self.target {
                Target::Tcp { host, port } => {
                    let s = TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    Ok(Stream::Tcp(s))
                }
                Target::Unix(path) => UnixStream::connect(path).await.map(Stream::Unix),
            }
        };
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect timed out after {:?}", self.connect_timeout),
                )
            })??;
        // Boxed once per connection: a response body carrying it stays small.
        let conn = Box::new(Connection {
            stream,
            buf: BytesMut::new(),
            _slot: slot,
        });
        Ok((conn, false))
    }

    fn pooled(&self) -> Option<Box<Connection>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((conn, since)) = idle.conns.pop() {
            let idle = since.elapsed();
            // A connection that just came back is used as is (a failure before any byte of an
            // answer is retried on a new one); one idle a while is probed first, without a
            // system call per request under load.
            if idle < POOL_IDLE && (idle < PROBE_AFTER || conn.is_quiet()) {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(self: &Arc<Self>, conn: Box<Connection>) {
        // The reaper needs the runtime; a body dropped outside it just closes its connection.
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.conns.push((conn, Instant::now()));
        if !idle.reaping {
            idle.reaping = true;
            let pool = Arc::downgrade(self);
            tokio::spawn(reap(pool));
        }
        drop(idle);
        self.returned.notify_one();
    }
}

/// Closes pooled connections idle past [`POOL_IDLE`]; ends when none is left.
async fn reap(pool: Weak<Pool>) {
    loop {
        tokio::time::sleep(POOL_IDLE / 2).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.conns.retain(|(_, since)| since.elapsed() < POOL_IDLE);
        if idle.conns.is_empty() {
            idle.reaping = false;
            return;
        }
    }
}

impl Connection {
    /// A pooled connection is reusable while the upstream has neither closed it nor sent
    /// anything unasked.
    fn is_quiet(&self) -> bool {
        let mut probe = [0u8; 1];
        let peeked = match &self.stream {
            Stream::Tcp(s) => s.try_read(&mut probe),
            Stream::Unix(s) => s.try_read(&mut probe),
        };
        matches!(peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    async fn exchange(
        &mut self,
        head: &[u8],
        body: &[Bytes],
        to_head: bool,
    ) -> Result<super::response::ResponseHead, Failure> {
        let io = |error| Failure::Io {
            error,
            answered: false,
        };
        write_all_vectored(&mut self.stream, head, body)
            .await
            .map_err(io)?;
        loop {
            let len = self.read_head().await?;
            let head = self.buf.split_to(len).freeze();
            match parse_response(&head, to_head).map_err(Failure::Unrelayable)? {
                Parsed::Interim => continue,
                Parsed::Final(head) => return Ok(head),
            }
        }
    }

    /// Reads until a complete response head starts the buffer; its length.
    async fn read_head(&mut self) -> Result<usize, Failure> {
        let mut scan = HeadScan::default();
        loop {
            if !self.buf.is_empty() {
                match scan.advance(&self.buf) {
                    Ok(Some(len)) => return Ok(len),
                    Ok(None) => {}
                    Err(_) => return Err(Failure::Unrelayable("malformed response head")),
                }
            }
            self.buf.reserve(8 * 1024);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => {
                    return Err(Failure::Io {
                        error: io::ErrorKind::UnexpectedEof.into(),
                        answered: !self.buf.is_empty(),
                    })
                }
                Ok(_) => {}
                Err(error) => {
                    return Err(Failure::Io {
                        answered: !self.buf.is_empty(),
                        error,
                    })
                }
            }
        }
    }
}

/// Writes the head, then the body chunks, in as few `writev` calls as the socket allows
/// (usually one).
async fn write_all_vectored(stream: &mut Stream, head: &[u8], body: &[Bytes]) -> io::Result<()> {
    let part = |i: usize| if i == 0 { head } else { &body[i - 1][..] };
    let parts = 1 + body.len();
    let (mut index, mut offset) = (0, 0);
    while index < parts {
        let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&part(index)[offset..]))
            .chain((index + 1..parts).map(|i| IoSlice::new(part(i))))
            .collect();
        let mut n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while index < parts && n >= part(index).len() - offset {
            n -= part(index).len() - offset;
            index += 1;
            offset = 0;
        }
        offset += n;
    }
    stream.flush().await
}

/// A response body read from the upstream connection as the client of hookgate takes it.
pub(crate) struct UpstreamBody {
    conn: Option<Box<Connection>>,
    /// A read in progress (it owns the connection until it returns it).
    reading: Option<ReadMore>,
    state: Reading,
    /// Bytes still to come, when the length is known.
    left: Option<u64>,
    done: bool,
    keep_alive: bool,
    pool: Weak<Pool>,
}

enum Reading {
    Framed(BodyState),
    UntilClose,
}

/// One read into the connection's buffer, holding the connection until it is done.
type ReadMore = Pin<Box<dyn Future<Output = (Box<Connection>, io::Result<usize>)> + Send>>;

impl UpstreamBody {
    /// The body ended: the connection goes back to the pool when both sides allow it and
    /// nothing was sent past the response.
    fn finish(&mut self) {
        self.done = true;
        if let (Some(conn), Some(pool)) = (self.conn.take(), self.pool.upgrade()) {
            if self.keep_alive && conn.buf.is_empty() {
                pool.checkin(conn);
            }
        }
    }

    /// Decodes what is buffered; `Some` when that gave data or the end.
    fn decode(&mut self) -> Option<Result<Option<Bytes>, io::Error>> {
        let conn = self.conn.as_mut()?;
        if conn.buf.is_empty() {
            return None;
        }
        let data = match &mut self.state {
            Reading::UntilClose => conn.buf.split().freeze(),
            Reading::Framed(state) => {
                let step = match state.take(&conn.buf) {
                    Ok(step) => step,
                    Err(_) => {
                        return Some(Err(io::Error::other("malformed chunked response body")))
                    }
                };
                let _ = conn.buf.split_to(step.data.start);
                let data = conn.buf.split_to(step.data.len()).freeze();
                let _ = conn.buf.split_to(step.used - step.data.end);
                if step.done {
                    self.finish();
                }
                data
            }
        };
        if let Some(left) = &mut self.left {
            *left -= data.len() as u64;
        }
        match (data.is_empty(), self.done) {
            (false, _) => Some(Ok(Some(data))),
            (true, true) => Some(Ok(None)),
            (true, false) => None,
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(reading) = this.reading.as_mut() {
                let (conn, read) = std::task::ready!(reading.as_mut().poll(cx));
                this.reading = None;
                this.conn = Some(conn);
                match read {
                    Ok(0) if matches!(this.state, Reading::UntilClose) => {
                        this.done = true;
                        this.conn = None;
                        return Poll::Ready(None);
                    }
                    Ok(0) => {
                        this.conn = None;
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the upstream closed the connection inside the response body",
                        ))));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        this.conn = None;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            match this.decode() {
                Some(Ok(Some(data))) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Some(Ok(None)) => return Poll::Ready(None),
                Some(Err(e)) => {
                    this.conn = None;
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {}
            }
            let Some(mut conn) = this.conn.take() else {
                return Poll::Ready(None);
            };
            this.reading = Some(Box::pin(async move {
                conn.buf.reserve(16 * 1024);
                let read = conn.stream.read_buf(&mut conn.buf).await;
                (conn, read)
            }));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match self.left {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for UpstreamBody {
    /// A body dropped unread (a delivery reads only the status) whose rest is already buffered
    /// still gives its connection back.
    fn drop(&mut self) {
        while !self.done && self.reading.is_none() {
            match self.decode() {
                Some(Ok(Some(_))) => {}
                _ => break,
            }
        }
    }
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
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
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }
}
