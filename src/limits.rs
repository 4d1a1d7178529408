//! Process-wide limits: the file descriptors the process may use, shared between client
//! connections and upstream connections, and resizing a semaphore that follows a reload.
//! A leaf module: the accept loop, the body budget, the upstream client and the delivery loop
//! all use it, and it uses none of them.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// File descriptors kept free for everything but client connections: the admin listener and
/// its scrapes, reloads, list refreshes, logs.
pub(crate) const RESERVED_FDS: u64 = 64;

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

/// Follows a reloaded size of `permits` (`max_connections`, `max_buffered`, `concurrency`):
/// grows at once; shrinks as permits come free.
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
