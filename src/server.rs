//! The accept loop: a connection permit first (beyond `max_connections` new connections wait in
//! the kernel backlog), then the source-IP check before any TLS byte, then one task per
//! connection. On shutdown the listener closes and live connections drain under a deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::connection::{self, deny_ip, is_allowed_source};
use crate::Gate;

/// Serves until `shutdown` turns true, then stops accepting (closing the listener) and waits up
/// to `shutdown_grace` for the connections in flight.
pub(crate) async fn serve(
    listener: TcpListener,
    gate: Arc<Gate>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut max = gate.snapshot.load().config.listen.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    // Every connection task holds a clone of `drain_tx`; `recv` returns None once all are gone.
    let (drain_tx, mut drain_rx) = mpsc::channel::<()>(1);
    loop {
        max = resize(
            &permits,
            max,
            gate.snapshot.load().config.listen.max_connections,
        );
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::error!(detail = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
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
        let shutdown = shutdown.clone();
        let drain = drain_tx.clone();
        tokio::spawn(async move {
            connection::serve(stream, peer, gate, snapshot, shutdown).await;
            drop(permit);
            drop(drain);
        });
    }
    drop(listener);
    drop(drain_tx);
    let grace = gate.snapshot.load().config.listen.shutdown_grace;
    if tokio::time::timeout(grace, drain_rx.recv()).await.is_err() {
        tracing::warn!(
            grace_s = grace.as_secs_f64(),
            "shutdown grace elapsed with connections still open; closing them"
        );
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
