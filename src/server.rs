//! The accept loop: a connection permit first (beyond `max_connections`, or beyond what the
//! process's file descriptors allow, new connections wait in the kernel backlog), then the
//! source-IP check before any TLS byte, then one task per connection. On shutdown the listener
//! closes, live connections drain, and whatever is left at the end of `shutdown_grace` is cut.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::conn::Stop;
use crate::connection::{self, deny_ip};
use crate::limits;
use crate::Gate;

/// How long connections cut at the end of the grace get to write their log lines.
const CUT_WAIT: Duration = Duration::from_secs(2);

/// Binds the TLS listener with a backlog that follows `max_connections` (the kernel caps it at
/// `net.core.somaxconn`): beyond the permits, connections wait there instead of being refused.
/// Only for a socket hookgate binds itself: a socket passed by systemd (`crate::activation`)
/// keeps the backlog of its unit (`Backlog=`).
pub(crate) fn bind(addr: SocketAddr, max_connections: usize) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(max_connections.clamp(128, 65_535) as u32)
}

/// Serves until `shutdown` turns true, then stops accepting (closing the listener) and waits up
/// to `shutdown_grace` for the connections in flight before cutting them.
pub(crate) async fn serve(
    listener: TcpListener,
    gate: Arc<Gate>,
    mut shutdown: watch::Receiver<bool>,
) {
    let capacity = limits::connection_capacity();
    let configured = gate.snapshot().config.listen.max_connections;
    if configured > capacity {
        tracing::warn!(
            max_connections = configured,
            capacity,
            "listen.max_connections exceeds what the file descriptor limit allows; serving at \
             most `capacity` connections at once (raise LimitNOFILE / ulimit -n)"
        );
    }
    let mut max = configured.min(capacity);
    let permits = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(Stop::Serve);
    // Every connection task holds a clone of `drain_tx`; `recv` returns None once all are gone.
    let (drain_tx, mut drain_rx) = mpsc::channel::<()>(1);
    let mut failures = AcceptFailures::new("accept failed; backing off");
    loop {
        let configured = gate.snapshot().config.listen.max_connections;
        max = limits::resize(&permits, max, configured.min(capacity));
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    failures.reset();
                    a
                }
                Err(e) => {
                    tokio::time::sleep(failures.record(&e)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let snapshot = gate.snapshot_full();
        if !snapshot.config.listen.proxy_protocol && !gate.admission().admits_source(peer.ip()) {
            // Closed before a single TLS byte is read or written.
            deny_ip(&gate, peer.ip());
            continue;
        }
        let _ = stream.set_nodelay(true);
        let gate = gate.clone();
        let stop = stop_rx.clone();
        let drain = drain_tx.clone();
        tokio::spawn(async move {
            connection::serve(stream, peer, gate, snapshot, stop).await;
            drop(permit);
            drop(drain);
        });
    }
    drop(listener);
    drop(drain_tx);
    let _ = stop_tx.send(Stop::Drain);
    let grace = gate.snapshot().config.listen.shutdown_grace;
    if tokio::time::timeout(grace, drain_rx.recv()).await.is_err() {
        tracing::warn!(
            grace_s = grace.as_secs_f64(),
            "shutdown grace elapsed with requests still in flight; cutting them"
        );
        let _ = stop_tx.send(Stop::Cut);
        let _ = tokio::time::timeout(CUT_WAIT, drain_rx.recv()).await;
    }
}

/// Accept errors (EMFILE, ENFILE, ENOBUFS…) back off exponentially instead of spinning, and are
/// logged at most once a second with the count since the last line.
pub(crate) struct AcceptFailures {
    what: &'static str,
    delay: Duration,
    unlogged: u64,
    last_log: Option<tokio::time::Instant>,
}

impl AcceptFailures {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    /// `what`: the log message.
    pub(crate) fn new(what: &'static str) -> Self {
        AcceptFailures {
            what,
            delay: Duration::ZERO,
            unlogged: 0,
            last_log: None,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }

    /// Counts the failure and returns how long to wait before the next accept.
    pub(crate) fn record(&mut self, e: &std::io::Error) -> Duration {
        self.unlogged += 1;
        let now = tokio::time::Instant::now();
        if self
            .last_log
            .map_or(true, |t| now - t >= Duration::from_secs(1))
        {
            tracing::error!(detail = %e, failures = self.unlogged, "{}", self.what);
            self.unlogged = 0;
            self.last_log = Some(now);
        }
        self.delay = (self.delay * 2).clamp(Self::FIRST, Self::MAX);
        self.delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_exponentially_up_to_a_second() {
        let mut f = AcceptFailures::new("test");
        let e = std::io::Error::from_raw_os_error(24);
        let delays: Vec<_> = (0..9).map(|_| f.record(&e).as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        f.reset();
        assert_eq!(f.record(&e).as_millis(), 10);
    }
}
