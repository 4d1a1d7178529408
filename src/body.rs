//! The request body: read whole (hookgate checks and signs it before forwarding) under
//! `max_body`, `header_timeout` between chunks and `body_timeout` in all, with room taken from
//! the process-wide [`BodyBudget`]; and the lingering close that discards an unread rest.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{MutexGuard, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::forward::BodyChunks;
use crate::policy::Denied;
use crate::signature::ContentDigest;

/// How long an unread request body is still read and discarded after an early response, so the
/// client receives the response instead of a connection reset.
const LINGER: Duration = Duration::from_secs(5);

/// Room taken up front by a body whose length is not declared (chunked, or HTTP/2 without
/// Content-Length); beyond it the body grows under [`BodyBudget::grow`].
const UNDECLARED_START: u64 = 64 << 10;

/// Room for buffered request bodies, in KiB (`request.max_buffered`), shared by all requests so
/// that many large bodies at once cannot exhaust memory.
///
/// Whole bodies are admitted, first come first served (tokio's semaphore is fair): a declared
/// Content-Length is reserved before the first byte is read, so two bodies never each hold half
/// of the room and wait for the other. Bodies of unknown length start with 64 KiB and only one
/// of them at a time may grow beyond it, so they cannot deadlock each other either.
pub(crate) struct BodyBudget {
    permits: Semaphore,
    size_kib: Mutex<usize>,
    grow: tokio::sync::Mutex<()>,
}

impl BodyBudget {
    pub(crate) fn new(bytes: u64) -> Self {
        let kib = kib(bytes);
        BodyBudget {
            permits: Semaphore::new(kib),
            size_kib: Mutex::new(kib),
            grow: tokio::sync::Mutex::new(()),
        }
    }

    /// Follows a reloaded `request.max_buffered`: grows at once; shrinks as bodies are released.
    pub(crate) fn resize(&self, bytes: u64) {
        if let Ok(mut size) = self.size_kib.lock() {
            *size = crate::limits::resize(&self.permits, *size, kib(bytes));
        }
    }

    /// KiB free now (for tests and `/metrics`-free diagnostics).
    #[cfg(test)]
    fn available_kib(&self) -> usize {
        self.permits.available_permits()
    }
}

/// Bytes to whole KiB, rounded up, capped to what a semaphore holds.
fn kib(bytes: u64) -> usize {
    usize::try_from(bytes.div_ceil(1024))
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS)
}

/// The limits one body is read under.
pub(crate) struct Limits {
    /// `max_body`: more is 413.
    pub max: u64,
    /// `header_timeout`: the longest wait for the next chunk, and for room in the budget.
    pub stall: Duration,
    /// `body_timeout`: the whole body must have arrived by then.
    pub deadline: Instant,
}

/// A body read whole: its chunks, its `Content-Digest`, and the budget room it holds until it
/// is dropped (after the upstream answered).
pub(crate) struct ReadBody<'b> {
    pub chunks: BodyChunks,
    pub digest: HeaderValue,
    /// Drop it once the chunks are sent.
    pub room: Option<SemaphorePermit<'b>>,
}

/// A request body as a connection delivers it: hyper's (HTTP/2) or hookgate's own (HTTP/1.1).
pub(crate) trait Inbound: http_body::Body<Data = Bytes> + Send + Unpin + 'static {
    /// Why reading failed, as the answer says it.
    fn denial(error: &Self::Error) -> Denied;
    /// The rest is not wanted: discard it without holding up the answer.
    fn linger(self);
}

impl Inbound for Incoming {
    fn denial(_: &hyper::Error) -> Denied {
        Denied::BadRequest("request body could not be read")
    }

    /// Reads and discards what is left in the background, for a bounded time.
    fn linger(mut self) {
        if self.is_end_stream() {
            return;
        }
        tokio::spawn(async move {
            let drain = async { while let Some(Ok(_)) = self.frame().await {} };
            let _ = tokio::time::timeout(LINGER, drain).await;
        });
    }
}

impl Inbound for crate::http1::body::RequestBody {
    fn denial(error: &crate::http1::body::BodyError) -> Denied {
        match error {
            crate::http1::body::BodyError::Refused(r) => Denied::Framing(*r),
            crate::http1::body::BodyError::Closed => {
                Denied::BadRequest("request body could not be read")
            }
        }
    }

    /// The connection discards the rest itself, after the answer (`http1::serve`).
    fn linger(self) {}
}

/// Reads the whole body (at most `limits.max` bytes) and its SHA-256 in one pass.
pub(crate) async fn read_body<'b, B: Inbound>(
    body: &mut B,
    declared: Option<u64>,
    limits: &Limits,
    budget: &'b BodyBudget,
) -> Result<ReadBody<'b>, Denied> {
    let mut digest = ContentDigest::new();
    let mut chunks = BodyChunks::default();
    // A declared length was checked against max_body already; reserve all of it now.
    let first = declared.unwrap_or(UNDECLARED_START.min(limits.max));
    let mut room = take(budget, kib(first), limits).await?;
    let mut held_kib = kib(first);
    let mut growing: Option<MutexGuard<'_, ()>> = None;
    loop {
        let wait = limits
            .stall
            .min(limits.deadline.saturating_duration_since(Instant::now()));
        let frame = match tokio::time::timeout(wait, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) if Instant::now() >= limits.deadline => {
                return Err(Denied::BodyTimeout(
                    "body not complete within listen.body_timeout",
                ))
            }
            Err(_) => {
                return Err(Denied::BodyTimeout(
                    "request body stalled for longer than listen.header_timeout",
                ))
            }
        };
        let frame = frame.map_err(|e| B::denial(&e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = chunks.len() + data.len() as u64;
        if total > limits.max {
            return Err(Denied::BodyTooLarge);
        }
        let need = kib(total).saturating_sub(held_kib);
        if need > 0 {
            if growing.is_none() {
                let lock = tokio::time::timeout(limits.stall, budget.grow.lock());
                growing = Some(lock.await.map_err(|_| Denied::NoBufferRoom)?);
            }
            let more = take(budget, need, limits).await?;
            held_kib += need;
            match &mut room {
                Some(p) => p.merge(more.expect("need > 0 takes a permit")),
                None => room = more,
            }
        }
        digest.update(&data);
        chunks.push(data);
    }
    Ok(ReadBody {
        chunks,
        digest: digest.finish(),
        room,
    })
}

/// Takes `kib` from the budget, waiting at most `stall` (and never past the deadline).
async fn take<'b>(
    budget: &'b BodyBudget,
    kib: usize,
    limits: &Limits,
) -> Result<Option<SemaphorePermit<'b>>, Denied> {
    if kib == 0 {
        return Ok(None);
    }
    let n = u32::try_from(kib).map_err(|_| Denied::BodyTooLarge)?;
    let wait = limits
        .stall
        .min(limits.deadline.saturating_duration_since(Instant::now()));
    match tokio::time::timeout(wait, budget.permits.acquire_many(n)).await {
        Ok(Ok(permit)) => Ok(Some(permit)),
        // The semaphore is never closed; fail closed all the same.
        Ok(Err(_)) | Err(_) => Err(Denied::NoBufferRoom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_bytes_up_to_whole_kib() {
        assert_eq!((kib(0), kib(1), kib(1024), kib(1025)), (0, 1, 1, 2));
    }

    #[tokio::test]
    async fn a_reserved_body_returns_its_room_when_dropped() {
        let budget = BodyBudget::new(1 << 20);
        let limits = Limits {
            max: 1 << 20,
            stall: Duration::from_millis(50),
            deadline: Instant::now() + Duration::from_secs(1),
        };
        let held = take(&budget, 600, &limits).await.expect("room");
        assert_eq!(budget.available_kib(), 424);
        // Not enough left: refused after `stall`, without taking a part of it.
        assert_eq!(
            take(&budget, 600, &limits).await.err(),
            Some(Denied::NoBufferRoom)
        );
        assert_eq!(budget.available_kib(), 424);
        drop(held);
        assert_eq!(budget.available_kib(), 1024);
        budget.resize(2 << 20);
        assert_eq!(budget.available_kib(), 2048);
    }
}
