//! The accept loop: a connection permit first (beyond `max_connections`, or beyond what the
//! process's file descriptors allow, new connections wait in the kernel backlog), then the
//! source-IP check before any TLS byte, then one task per connection. On shutdown the listener
//! closes, live connections drain, and whatever is left at the end of `shutdown_grace` is cut.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::connection::{self, deny_ip, is_allowed_source, Stop};
use crate::Gate;

/// File descriptors kept free for everything but client connections: the admin listener and
/// its scrapes, reloads, list refreshes, logs.
const RESERVED_FDS: u64 = 64;

/// How long connections cut at the end of the grace get to write their log lines.
const CUT_WAIT: Duration = Duration::from_secs(2);

/// Binds the TLS listener with a backlog that follows `max_connections` (the kernel caps it at
/// `net.core.somaxconn`): beyond the permits, connections wait there instead of being refused.
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

/// Raises the soft file-descriptor limit to the hard one (once) and returns how many client
/// connections it leaves room for: the descriptors but [`RESERVED_FDS`], half for client
/// connections, half for upstream connections ([`upstream_slot`]), so that running out of
/// descriptors delays new connections and requests instead of breaking the admin listener.
pub(crate) fn connection_capacity() -> usize {
    static CAPACITY: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CAPACITY.get_or_init(raise_fd_limit)
}

/// One upstream connection's share of the descriptors: held for as long as the connection is
/// open. An HTTP/2 client connection can have 16 requests in flight, each on an upstream
/// connection of its own, so client connections alone do not bound the upstream side.
pub(crate) async fn upstream_slot() -> tokio::sync::OwnedSemaphorePermit {
    static SLOTS: std::sync::OnceLock<Arc<Semaphore>> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        Arc::new(Semaphore::new(
            connection_capacity().min(Semaphore::MAX_PERMITS),
        ))
    });
    slots
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed")
}

fn raise_fd_limit() -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    match limit.current {
        None => usize::MAX,
        Some(n) => usize::try_from(n.saturating_sub(RESERVED_FDS) / 2)
            .unwrap_or(usize::MAX)
            .max(1),
    }
}

/// Serves until `shutdown` turns true, then stops accepting (closing the listener) and waits up
/// to `shutdown_grace` for the connections in flight before cutting them.
pub(crate) async fn serve(
    listener: TcpListener,
    gate: Arc<Gate>,
    mut shutdown: watch::Receiver<bool>,
) {
    let capacity = connection_capacity();
    let configured = gate.snapshot.load().config.listen.max_connections;
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
        let configured = gate.snapshot.load().config.listen.max_connections;
        max = resize(&permits, max, configured.min(capacity));
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
        let snapshot = gate.snapshot.load_full();
        if !snapshot.config.listen.proxy_protocol && !is_allowed_source(&snapshot, peer.ip()) {
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
    let grace = gate.snapshot.load().config.listen.shutdown_grace;
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

/// Follows a reloaded `max_connections`: grows at once; shrinks as permits come free.
pub(crate) fn resize(permits: &Semaphore, current: usize, wanted: usize) -> usize {
    if wanted > current {
        permits.add_permits(wanted - current);
        wanted
    } else if wanted < current {
        current - permits.forget_permits(current - wanted)
    } else {
        current
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
