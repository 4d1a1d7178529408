//! What the requests of one client connection share (its gate, verified identity, in-flight
//! count for the idle timeout, raw-head framing verdicts), and whether the lists in force still
//! admit it. Below both the connection task and the request handler, so neither imports the other.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::identity::ClientIdentity;
use crate::Gate;

/// How the process tells its connections to stop: `Drain` closes them gracefully (in-flight
/// requests finish), `Cut` at the end of `shutdown_grace` closes them at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stop {
    Serve,
    Drain,
    Cut,
}

/// What every request on one connection shares.
pub(crate) struct Conn {
    pub gate: Arc<Gate>,
    pub identity: ClientIdentity,
    pub activity: Activity,
}

impl Conn {
    pub(crate) fn new(gate: Arc<Gate>, identity: ClientIdentity) -> Self {
        Conn {
            gate,
            identity,
            activity: Activity {
                opened: Instant::now(),
                in_flight: AtomicUsize::new(0),
                last_done_ms: AtomicU64::new(0),
            },
        }
    }

    /// Whether the admission in force now still admits this connection's certificate and
    /// address (by the rules the handshake and the accept path applied).
    pub(crate) fn is_still_admitted(&self) -> bool {
        let admission = self.gate.admission();
        let id = &self.identity;
        admission.admits_leaf(&id.leaf_sha256, id.leaf_sha1.as_ref())
            && admission.admits_source(id.client_ip)
    }
}

/// Requests in flight (until their response is sent whole) and the time the last one
/// finished, for the idle timeout.
pub(crate) struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    last_done_ms: AtomicU64,
}

impl Activity {
    /// How long nothing has been in flight; `None` while a request is.
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_done_ms.load(Ordering::Acquire));
        Some(self.opened.elapsed().saturating_sub(last))
    }

    /// A request started (`RequestLog::start`).
    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// A request ended: its response was sent whole, or it was cut (`RequestLog` dropped).
    pub(crate) fn end(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_done_ms.store(ms, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
