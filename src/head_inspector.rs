//! Sees each HTTP/1.1 request head as raw bytes, before hyper normalises it. hyper resolves a
//! request with both Content-Length and Transfer-Encoding itself (RFC 9112 §6.3: it drops the
//! Content-Length), so the handler could never refuse it; SPEC §3 wants such ambiguous framing
//! refused with 400. This wrapper follows the message framing of the bytes it passes through
//! (without copying bodies) and records which request, by index, had both headers.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// A head (or chunk line) longer than this is not followed: the connection fails closed.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
const NONE: u64 = u64::MAX;

/// The verdicts, shared with the connection's handler.
#[derive(Debug)]
pub(crate) struct Verdicts {
    /// Index (0-based, in arrival order) of the first request with Content-Length and
    /// Transfer-Encoding. hyper closes the connection after such a request, so one is enough.
    ambiguous: AtomicU64,
    /// From this request index on, the framing could not be followed (a head or chunk line
    /// that does not parse or is too long): fail closed, refuse every such request.
    lost_from: AtomicU64,
}

impl Verdicts {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Verdicts {
            ambiguous: AtomicU64::new(NONE),
            lost_from: AtomicU64::new(NONE),
        })
    }

    /// Why the request with this index must be refused, if it must.
    pub(crate) fn refusal(&self, request_index: u64) -> Option<&'static str> {
        if self.ambiguous.load(Ordering::Acquire) == request_index {
            Some("Content-Length together with Transfer-Encoding")
        } else if request_index >= self.lost_from.load(Ordering::Acquire) {
            Some("HTTP/1.1 framing that hookgate cannot follow")
        } else {
            None
        }
    }

    fn lose_from(&self, request_index: u64) {
        self.lost_from.fetch_min(request_index, Ordering::AcqRel);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Collecting a request head.
    Head,
    /// Skipping a Content-Length body.
    Body(u64),
    /// A chunk-size line (or the CRLF that ends a chunk's data).
    ChunkSize,
    /// Chunk data.
    ChunkData(u64),
    /// Trailer lines after the last chunk, up to an empty line.
    Trailers,
    /// Framing not followed any further (recorded in `Verdicts::lost_from`).
    Done,
}

/// The connection's stream, inspected on the way in.
pub(crate) struct HeadInspector<S> {
    inner: S,
    state: State,
    /// A head or line that spans reads (never a body).
    pending: Vec<u8>,
    requests: u64,
    verdicts: Arc<Verdicts>,
}

impl<S> HeadInspector<S> {
    pub(crate) fn new(inner: S, verdicts: Arc<Verdicts>) -> Self {
        HeadInspector {
            inner,
            state: State::Head,
            pending: Vec::new(),
            requests: 0,
            verdicts,
        }
    }

    fn inspect(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let used = match self.state {
                State::Done => return,
                State::Body(n) | State::ChunkData(n) => {
                    let take = n.min(data.len() as u64);
                    self.state = match (self.state, n == take) {
                        (State::Body(_), true) => State::Head,
                        (State::Body(_), false) => State::Body(n - take),
                        (_, true) => State::ChunkSize,
                        (_, false) => State::ChunkData(n - take),
                    };
                    take as usize
                }
                State::Head => self.take_head(data),
                State::ChunkSize | State::Trailers => self.take_line(data),
            };
            data = &data[used..];
            if self.state == State::Done {
                // Fail closed: nothing from here on can be checked, so nothing is admitted.
                self.verdicts.lose_from(self.requests);
                return;
            }
        }
    }

    /// Parses the head with httparse, as hyper does; returns the bytes of `data` it used.
    fn take_head(&mut self, data: &[u8]) -> usize {
        let (buf, already) = if self.pending.is_empty() {
            (data, 0)
        } else {
            let already = self.pending.len();
            self.pending
                .extend_from_slice(&data[..data.len().min(MAX_HEAD)]);
            (&self.pending[..], already)
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let next = match req.parse(buf) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => {
                let next = on_head(&mut self.requests, &self.verdicts, &req);
                self.pending.clear();
                self.state = next;
                return len - already;
            }
            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => {
                if already == 0 {
                    self.pending.extend_from_slice(data);
                }
                return data.len();
            }
            _ => State::Done,
        };
        self.pending = Vec::new();
        self.state = next;
        data.len()
    }

    /// Collects one line of the chunked framing; returns the bytes of `data` it used.
    fn take_line(&mut self, data: &[u8]) -> usize {
        let Some(end) = data.iter().position(|&b| b == b'\n') else {
            self.pending.extend_from_slice(data);
            if self.pending.len() > MAX_HEAD {
                self.state = State::Done;
            }
            return data.len();
        };
        self.pending.extend_from_slice(&data[..end]);
        let line = self.pending.strip_suffix(b"\r").unwrap_or(&self.pending);
        self.state = match self.state {
            State::Trailers if line.is_empty() => State::Head,
            State::Trailers => State::Trailers,
            _ => chunk_size(line),
        };
        self.pending.clear();
        end + 1
    }
}

/// Records the verdict for one complete head and returns how its body is framed.
fn on_head(requests: &mut u64, verdicts: &Verdicts, req: &httparse::Request<'_, '_>) -> State {
    let index = *requests;
    *requests += 1;
    let mut te_chunked = None;
    let mut length = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te_chunked = Some(ends_with_chunked(h.value));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                Some(n) => length = Some(n),
                None => {
                    verdicts.lose_from(index);
                    return State::Done;
                }
            }
        }
    }
    if te_chunked.is_some() && length.is_some() {
        let _ =
            verdicts
                .ambiguous
                .compare_exchange(NONE, index, Ordering::AcqRel, Ordering::Acquire);
    }
    // hookgate serves no upgrades (no `with_upgrades`): an `Upgrade` or CONNECT request is an
    // ordinary request to hyper, and the next head follows its body like any other.
    match (te_chunked, length) {
        (Some(true), _) => State::ChunkSize,
        (Some(false), _) => {
            verdicts.lose_from(index);
            State::Done
        }
        (None, Some(n)) if n > 0 => State::Body(n),
        _ => State::Head,
    }
}

/// A chunk-size line: hex digits, optional `;extensions`. Empty: the CRLF after chunk data.
fn chunk_size(line: &[u8]) -> State {
    if line.is_empty() {
        return State::ChunkSize;
    }
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    match std::str::from_utf8(digits)
        .ok()
        .map(|d| u64::from_str_radix(d.trim(), 16))
    {
        Some(Ok(0)) => State::Trailers,
        Some(Ok(n)) => State::ChunkData(n),
        _ => State::Done,
    }
}

fn ends_with_chunked(value: &[u8]) -> bool {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadInspector<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.state != State::Done {
            // Bodies are only counted, never copied.
            this.inspect(&buf.filled()[before..]);
        }
        result
    }
}

crate::read_ahead::write_passes_through!(HeadInspector);

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fail_closed_tests;
