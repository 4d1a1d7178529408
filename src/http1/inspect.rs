//! The framing decision applied to an HTTP/1.1 connection that hyper serves: every byte hyper
//! reads passes through [`framing::Requests`] first (bodies are counted, never copied), and the
//! handler refuses each request the decision refused, by its index on the connection.
//!
//! Why this is enough while hyper parses too: the decision accepts a subset of what hyper
//! accepts and reads that subset the same way (the differential test and the fuzz target check
//! both), and it refuses at the first byte outside it, before hyper can have dispatched the
//! request that byte belongs to. So requests before the refused one are the same requests to
//! both, and the refused one and every later one are refused by the handler (at its start, or
//! after its body for a refusal inside a chunked body), with the connection closed.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::framing::{Event, Refusal, Requests};

/// What the decision refused on one connection, shared with its requests.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    /// The index (0-based, arrival order) of the first refused request, and why.
    refused: OnceLock<(u64, Refusal)>,
}

impl Verdicts {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Why request `index` must be refused, if it must: the refused request gets the reason,
    /// every later one a framing refusal too (nothing after a refusal is read as a request).
    pub(crate) fn refusal(&self, index: u64) -> Option<Refusal> {
        let &(from, why) = self.refused.get()?;
        match index {
            i if i == from => Some(why),
            i if i > from => Some(Refusal::Malformed(
                "a request after one whose framing was refused",
            )),
            _ => None,
        }
    }

    fn refuse_from(&self, index: u64, why: Refusal) {
        let _ = self.refused.set((index, why));
    }
}

/// The connection's stream, its requests framed on the way in.
pub(crate) struct Inspected<S> {
    inner: S,
    requests: Requests,
    verdicts: Arc<Verdicts>,
}

impl<S> Inspected<S> {
    pub(crate) fn new(inner: S, verdicts: Arc<Verdicts>) -> Self {
        Inspected {
            inner,
            requests: Requests::default(),
            verdicts,
        }
    }

    fn inspect(&mut self, data: &[u8]) {
        let verdicts = &self.verdicts;
        let mut after_close = None;
        self.requests.feed(data, &mut |event| match event {
            Event::Refused { index, refusal } => verdicts.refuse_from(index, refusal),
            Event::AfterClose(_) => after_close = Some(()),
            _ => {}
        });
        if after_close.is_some() {
            // hyper closes after such a request too; should it not, nothing more is admitted.
            self.verdicts.refuse_from(
                self.requests.index(),
                Refusal::Malformed("a request after Connection: close"),
            );
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Inspected<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.verdicts.refused.get().is_none() {
            this.inspect(&buf.filled()[before..]);
        }
        result
    }
}

crate::read_ahead::write_passes_through!(Inspected);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn verdicts_after(input: &[u8]) -> Arc<Verdicts> {
        let verdicts = Verdicts::new();
        let mut stream = Inspected::new(input, verdicts.clone());
        let mut sink = Vec::new();
        stream.read_to_end(&mut sink).await.expect("read");
        assert_eq!(sink, input, "bytes pass through unchanged");
        verdicts
    }

    #[tokio::test]
    async fn refuses_the_request_whose_framing_failed_and_all_after_it() {
        let v = verdicts_after(
            b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nokPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        )
        .await;
        assert_eq!(v.refusal(0), None);
        assert_eq!(
            v.refusal(1),
            Some(Refusal::Malformed(
                "Content-Length together with Transfer-Encoding"
            ))
        );
        assert!(v.refusal(2).is_some());
    }

    #[tokio::test]
    async fn nothing_after_connection_close_is_admitted() {
        let v =
            verdicts_after(b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
                .await;
        assert_eq!(v.refusal(0), None);
        assert!(v.refusal(1).is_some());
    }

    #[tokio::test]
    async fn clean_pipelines_are_not_refused() {
        let v = verdicts_after(
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        )
        .await;
        assert_eq!(
            (v.refusal(0), v.refusal(1), v.refusal(2)),
            (None, None, None)
        );
    }
}
