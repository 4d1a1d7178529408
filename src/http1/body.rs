//! A request body on hookgate's own HTTP/1.1 connection: [`BodyReader`] takes the body's bytes
//! off the connection as framing decided ([`framing::Body`]), [`RequestBody`] hands them to
//! the handler. Both run in the connection's task: the reader is polled beside the handler, and
//! a bounded channel of one chunk between them keeps the connection from reading ahead of what
//! the handler takes.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};

use super::framing::{self, BodyState, Refusal};

/// Why a body could not be read whole.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BodyError {
    /// Its chunked framing was refused (the connection's verdicts say why).
    Refused(Refusal),
    /// The client closed the connection, or reading failed.
    Closed,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Refused(r) => write!(f, "request body framing refused: {r:?}"),
            BodyError::Closed => f.write_str("the connection closed before the body ended"),
        }
    }
}

impl std::error::Error for BodyError {}

/// The handler's side: the chunks, in order, then the end (or an error).
pub(crate) struct RequestBody {
    rx: mpsc::Receiver<Result<Bytes, BodyError>>,
    /// Fired on the first poll: the reader may answer `100 Continue` and start reading.
    wanted: Option<oneshot::Sender<()>>,
    /// Bytes still to come, when the length is known.
    left: Option<u64>,
    ended: bool,
}

/// The connection's side: where the body stands, kept across the reader's polls (and after the
/// handler answered, to discard the rest).
pub(crate) struct BodyReader {
    state: BodyState,
    tx: Option<mpsc::Sender<Result<Bytes, BodyError>>>,
    wanted: Option<oneshot::Receiver<()>>,
    /// The client sent `Expect: 100-continue` and no `100 Continue` has gone out yet.
    pub expects_continue: bool,
}

/// A body framed as `body`; `expect_continue`: the client waits for `100 Continue`.
pub(crate) fn body(body: framing::Body, expect_continue: bool) -> (RequestBody, BodyReader) {
    let (tx, rx) = mpsc::channel(1);
    let (wanted_tx, wanted_rx) = oneshot::channel();
    let left = match body {
        framing::Body::Length(n) => Some(n),
        framing::Body::Chunked => None,
    };
    let state = BodyState::new(body);
    let ended = state.is_done();
    (
        RequestBody {
            rx,
            wanted: Some(wanted_tx),
            left,
            ended,
        },
        BodyReader {
            state,
            tx: (!ended).then_some(tx),
            wanted: Some(wanted_rx),
            expects_continue: expect_continue && !ended,
        },
    )
}

impl BodyReader {
    /// Whether the whole body has been taken off the connection.
    pub(crate) fn is_done(&self) -> bool {
        self.state.is_done()
    }

    /// Waits until the handler first asks for the body (then `100 Continue` may be sent);
    /// `false` if it never will (it answered without the body).
    pub(crate) async fn wanted(&mut self) -> bool {
        match self.wanted.take() {
            Some(rx) => rx.await.is_ok(),
            None => true,
        }
    }

    /// Reads the body off `io` (bytes already read are in `buf`) and hands it to the handler,
    /// until it ends, the handler drops it, or reading fails. Cancel-safe between chunks.
    pub(crate) async fn feed<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        buf: &mut BytesMut,
    ) -> Result<(), BodyError> {
        while !self.is_done() {
            let chunk = match self.next_chunk(io, buf).await {
                Ok(chunk) => chunk,
                Err(e) => {
                    if let Some(tx) = self.tx.take() {
                        let _ = tx.send(Err(e)).await;
                    }
                    return Err(e);
                }
            };
            let Some(tx) = &self.tx else {
                continue;
            };
            if !chunk.is_empty() && tx.send(Ok(chunk)).await.is_err() {
                // The handler answered without the rest: it is discarded (`discard`).
                self.tx = None;
            }
        }
        self.tx = None;
        Ok(())
    }

    /// Reads and drops what is left of the body (the handler no longer wants it).
    pub(crate) async fn discard<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        buf: &mut BytesMut,
    ) -> Result<(), BodyError> {
        self.tx = None;
        while !self.is_done() {
            self.next_chunk(io, buf).await?;
        }
        Ok(())
    }

    /// The next run of body data (possibly empty, after framing bytes), reading when needed.
    async fn next_chunk<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        buf: &mut BytesMut,
    ) -> Result<Bytes, BodyError> {
        if buf.is_empty() {
            buf.reserve(16 * 1024);
            match io.read_buf(buf).await {
                Ok(0) | Err(_) => return Err(BodyError::Closed),
                Ok(_) => {}
            }
        }
        let step = self.state.take(buf).map_err(BodyError::Refused)?;
        // The framing bytes around the data go; the data is handed on without a copy.
        let _ = buf.split_to(step.data.start);
        let data = buf.split_to(step.data.len()).freeze();
        let _ = buf.split_to(step.used - step.data.end);
        Ok(data)
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(wanted) = self.wanted.take() {
            let _ = wanted.send(());
        }
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(data))) => {
                if let Some(left) = &mut self.left {
                    *left -= data.len() as u64;
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(e))) => {
                self.ended = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.left == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        match self.left {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
