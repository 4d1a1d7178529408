//! A request body on hookgate's own HTTP/1.1 connection: [`BodyReader`] takes the body's bytes
//! off the connection as framing decided ([`framing::Body`]), [`RequestBody`] hands them to
//! the handler. Both run in the connection's task: the reader is polled beside the handler, and
//! a bounded channel of one chunk between them keeps the connection from reading ahead of what
//! the handler takes. A Content-Length body already read whole with its head needs neither: it
//! is taken off the buffer at once and handed over as it is.

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
    /// The whole body, when it came with its head: no channel then.
    arrived: Option<Bytes>,
    rx: Option<mpsc::Receiver<Result<Bytes, BodyError>>>,
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

/// A body framed as `body`, after its head (`buf` holds what was read past the head);
/// `expect_continue`: the client waits for `100 Continue`. A Content-Length body that came
/// whole with its head, as most webhooks do, is taken from `buf` at once and handed over as it
/// is: no channel between reader and handler, nothing more to read for it.
pub(crate) fn body(
    body: framing::Body,
    expect_continue: bool,
    buf: &mut BytesMut,
) -> (RequestBody, BodyReader) {
    let left = match body {
        framing::Body::Length(n) => Some(n),
        framing::Body::Chunked => None,
    };
    if let Some(data) = whole_in(body, expect_continue, buf) {
        let reader = BodyReader {
            state: BodyState::Done,
            tx: None,
            wanted: None,
            expects_continue: false,
        };
        let body = RequestBody {
            arrived: Some(data),
            rx: None,
            wanted: None,
            left,
            ended: false,
        };
        return (body, reader);
    }
    let state = BodyState::new(body);
    let (tx, rx) = mpsc::channel(1);
    let (wanted_tx, wanted_rx) = oneshot::channel();
    let ended = state.is_done();
    (
        RequestBody {
            arrived: None,
            rx: Some(rx),
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
        Ok(split_step(buf, &step))
    }
}

/// A Content-Length body already whole in `buf`, when no `100 Continue` is awaited: taken off
/// `buf` by one step of the same framing state the reader uses (a Content-Length body is all
/// data, so one step takes all of it).
fn whole_in(body: framing::Body, expect_continue: bool, buf: &mut BytesMut) -> Option<Bytes> {
    let framing::Body::Length(n) = body else {
        return None;
    };
    if expect_continue || n == 0 || n > buf.len() as u64 {
        return None;
    }
    let step = BodyState::new(body)
        .take(buf)
        .ok()
        .filter(|step| step.done)?;
    Some(split_step(buf, &step))
}

/// Takes what `step` consumed off the front of `buf`: the framing bytes around the data go,
/// the data is handed on without a copy.
fn split_step(buf: &mut BytesMut, step: &framing::Decoded) -> Bytes {
    let _ = buf.split_to(step.data.start);
    let data = buf.split_to(step.data.len()).freeze();
    let _ = buf.split_to(step.used - step.data.end);
    data
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
        if let Some(data) = self.arrived.take() {
            self.left = Some(0);
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let Some(rx) = &mut self.rx else {
            return Poll::Ready(None);
        };
        match rx.poll_recv(cx) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;

    async fn whole(mut body: RequestBody) -> Vec<Bytes> {
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.expect("no error").into_data().expect("data"));
        }
        frames
    }

    #[tokio::test]
    async fn a_body_that_came_with_its_head_is_handed_over_whole_and_the_next_request_stays() {
        let mut buf = BytesMut::from(&b"hello world GET / HTTP/1.1\r\n"[..]);
        let (body, reader) = body(framing::Body::Length(11), false, &mut buf);
        assert!(reader.is_done(), "nothing left to read for it");
        assert!(reader.tx.is_none() && body.rx.is_none(), "no channel");
        assert_eq!(body.size_hint().exact(), Some(11));
        assert_eq!(whole(body).await, [Bytes::from_static(b"hello world")]);
        assert_eq!(&buf[..], b" GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_body_still_arriving_or_awaiting_100_continue_goes_through_the_reader() {
        use tokio::io::AsyncWriteExt;
        for (have, expect_continue) in [(&b"hello"[..], false), (&b"hello world"[..], true)] {
            let mut buf = BytesMut::from(have);
            let (body, mut reader) = body(framing::Body::Length(11), expect_continue, &mut buf);
            assert!(!reader.is_done() && body.rx.is_some());
            assert_eq!(&buf[..], have, "nothing taken before the reader runs");
            let (mut client, mut server) = tokio::io::duplex(64);
            client
                .write_all(&b"hello world"[have.len()..])
                .await
                .expect("write");
            let (got, fed) = tokio::join!(whole(body), reader.feed(&mut server, &mut buf));
            assert!(fed.is_ok());
            assert_eq!(got.concat(), b"hello world");
        }
    }
}
