//! Large socket reads under TLS. rustls asks the socket for at most 4 KiB at a time, so a
//! 256 KiB body costs dozens of `recvfrom` calls. When a read fills the caller's buffer (more
//! is likely waiting), this wrapper switches to reading 64 KiB at once into its own buffer and
//! hands it out from memory; once drained the buffer is freed, so idle connections hold none.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// How much one buffered read asks the kernel for.
const CHUNK: usize = 64 * 1024;

pub(crate) struct ReadAhead<S> {
    inner: S,
    /// Buffered bytes are `buf[pos..len]`; empty (no allocation) when not buffering.
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Set when the last direct read filled the caller's buffer.
    buffering: bool,
}

impl<S> ReadAhead<S> {
    pub(crate) fn new(inner: S) -> Self {
        ReadAhead {
            inner,
            buf: Vec::new(),
            pos: 0,
            len: 0,
            buffering: false,
        }
    }

    /// Copies buffered bytes out; frees the buffer once it is drained.
    fn serve(&mut self, dst: &mut ReadBuf<'_>) {
        let n = dst.remaining().min(self.len - self.pos);
        dst.put_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
            // After a short read the sender has paused: back to direct reads, holding no memory.
            if !self.buffering {
                self.buf = Vec::new();
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.len {
            this.serve(dst);
            return Poll::Ready(Ok(()));
        }
        if !this.buffering || dst.remaining() >= CHUNK {
            let before = dst.filled().len();
            let wanted = dst.remaining();
            let result = Pin::new(&mut this.inner).poll_read(cx, dst);
            if let Poll::Ready(Ok(())) = result {
                let got = dst.filled().len() - before;
                this.buffering = got == wanted && got > 0;
            }
            return result;
        }
        if this.buf.is_empty() {
            this.buf = vec![0; CHUNK];
        }
        let mut own = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.inner).poll_read(cx, &mut own) {
            Poll::Ready(Ok(())) => {
                let got = own.filled().len();
                this.len = got;
                this.pos = 0;
                // Keep buffering only while the kernel fills whole chunks.
                this.buffering = got == CHUNK;
                if got == 0 {
                    this.buf = Vec::new();
                    return Poll::Ready(Ok(()));
                }
                this.serve(dst);
                Poll::Ready(Ok(()))
            }
            other => {
                if !matches!(other, Poll::Pending) {
                    this.buf = Vec::new();
                }
                other
            }
        }
    }
}

/// Writes go straight to the inner stream: the wrapper only changes how reads are made.
macro_rules! write_passes_through {
    ($wrapper:ident) => {
        impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $wrapper<S> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }
        }
    };
}

write_passes_through!(ReadAhead);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn delivers_every_byte_in_order_through_small_and_large_reads() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            let mut client = client;
            for piece in data.chunks(70_000) {
                client.write_all(piece).await.expect("write");
            }
        });
        let mut r = ReadAhead::new(server);
        let mut out = Vec::new();
        let mut small = [0u8; 4096];
        while out.len() < expected.len() {
            let n = r.read(&mut small).await.expect("read");
            assert!(n > 0);
            out.extend_from_slice(&small[..n]);
        }
        writer.await.expect("writer");
        assert_eq!(out, expected);
    }

    #[tokio::test]
    async fn holds_no_buffer_once_drained() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(&vec![7u8; 200_000]).await.expect("write");
        let mut r = ReadAhead::new(server);
        let mut small = [0u8; 4096];
        let mut total = 0;
        while total < 200_000 {
            total += r.read(&mut small).await.expect("read");
        }
        assert_eq!(total, 200_000);
        client.write_all(b"x").await.expect("write");
        assert_eq!(r.read(&mut small).await.expect("read"), 1);
        assert_eq!(
            r.buf.capacity(),
            0,
            "an idle connection keeps no read-ahead buffer"
        );
    }
}
