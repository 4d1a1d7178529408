//! The embedded store of SPEC §9: SQLite in WAL mode with `synchronous = FULL` in a directory
//! hookgate owns (locked against a second process). One thread owns the database connection and
//! runs every operation; consecutive writes share one transaction and so one fsync (group
//! commit), and a request is acknowledged only after the commit that holds it returned.
//! A crash never makes a partial request deliverable: a row exists whole or not at all.

mod db;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

pub(crate) use db::{Changed, Counts, Due, Finish, ListQuery, Listed};

/// Why a request could not be stored (its client gets 503 `store_unavailable`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("the store is full (store.max_bytes {max} bytes)")]
    Full { max: u64 },
    #[error("cannot open the store at {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("store write failed: {0}")]
    Io(String),
    #[error("the store has stopped")]
    Stopped,
}

/// One accepted request as it is stored: what the upstream will receive, but the signature,
/// which each attempt makes anew.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub request_id: String,
    pub route: String,
    pub method: String,
    /// Path and query as sent to the upstream (after the `/BASE` rewrite).
    pub target: String,
    pub headers: Vec<(String, Bytes)>,
    pub body: Bytes,
    /// UNIX milliseconds.
    pub received_at: i64,
    /// SPEC §9.4: the route's dedup key of this request, and until when (UNIX ms) it counts.
    pub dedup: Option<(String, i64)>,
}

/// What storing a request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Put {
    Stored,
    /// Not stored: a request with the same dedup key was stored within the window.
    Duplicate {
        of: String,
    },
}

impl Stored {
    /// What it takes of `store.max_bytes`.
    pub(crate) fn size(&self) -> u64 {
        let heads: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum();
        (self.body.len() + heads + self.target.len() + 64) as u64
    }
}

pub(crate) enum Op {
    Insert(Stored, oneshot::Sender<Result<Put, StoreError>>),
    /// Leases up to `n` due pending requests until `lease_until` (UNIX ms).
    Lease {
        now: i64,
        lease_until: i64,
        n: usize,
        reply: oneshot::Sender<Result<Vec<Due>, StoreError>>,
    },
    Finish(Finish, oneshot::Sender<Result<(), StoreError>>),
    Counts(oneshot::Sender<Result<Counts, StoreError>>),
    /// Removes delivered requests older than the given UNIX ms.
    Expire(i64),
    List(ListQuery, oneshot::Sender<Result<Vec<Listed>, StoreError>>),
    /// A dead or delivered request back to pending, due at the given UNIX ms.
    Retry(String, i64, oneshot::Sender<Result<Changed, StoreError>>),
    Delete(String, oneshot::Sender<Result<Changed, StoreError>>),
}

/// The store: a handle to its thread. Cheap to share behind an `Arc`.
pub(crate) struct Store {
    ops: mpsc::Sender<Op>,
    max_bytes: AtomicU64,
    /// Bytes held by stored requests, kept by the store thread.
    bytes: Arc<AtomicU64>,
    /// False after a failed write, true after a good one (`/readyz`).
    writable: Arc<AtomicBool>,
    /// Wakes the delivery loop when a request was stored.
    pub(crate) stored: tokio::sync::Notify,
}

impl Store {
    /// Opens (creating it if needed) the store in `dir`; fails if another process holds it.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Result<Store, StoreError> {
        let bytes = Arc::new(AtomicU64::new(0));
        let writable = Arc::new(AtomicBool::new(true));
        let (db, held) = db::Db::open(dir).map_err(|detail| StoreError::Open {
            path: dir.display().to_string(),
            detail,
        })?;
        bytes.store(held, Ordering::Release);
        let (ops, rx) = mpsc::channel();
        let (b, w) = (bytes.clone(), writable.clone());
        std::thread::Builder::new()
            .name("hookgate-store".into())
            .spawn(move || db.run(rx, &b, &w))
            .map_err(|e| StoreError::Open {
                path: dir.display().to_string(),
                detail: e.to_string(),
            })?;
        Ok(Store {
            ops,
            max_bytes: AtomicU64::new(max_bytes),
            bytes,
            writable,
            stored: tokio::sync::Notify::new(),
        })
    }

    /// What `check` verifies without taking the store: the directory can be created and written.
    pub(crate) fn probe(dir: &Path) -> Result<(), StoreError> {
        db::probe(dir).map_err(|detail| StoreError::Open {
            path: dir.display().to_string(),
            detail,
        })
    }

    /// Follows a reloaded `store.max_bytes`.
    pub(crate) fn set_max_bytes(&self, max: u64) {
        self.max_bytes.store(max, Ordering::Release);
    }

    /// Stores `request`; `Ok` only once it is durable (its commit's fsync returned).
    pub(crate) async fn put(&self, request: Stored) -> Result<Put, StoreError> {
        let max = self.max_bytes.load(Ordering::Acquire);
        if self.bytes.load(Ordering::Acquire) + request.size() > max {
            return Err(StoreError::Full { max });
        }
        let (tx, rx) = oneshot::channel();
        self.send(Op::Insert(request, tx))?;
        let put = rx.await.map_err(|_| StoreError::Stopped)??;
        self.stored.notify_one();
        Ok(put)
    }

    pub(crate) async fn lease(
        &self,
        now: i64,
        lease: Duration,
        n: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let lease_until = now + lease.as_millis() as i64;
        self.send(Op::Lease {
            now,
            lease_until,
            n,
            reply,
        })?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    pub(crate) async fn finish(&self, finish: Finish) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Finish(finish, tx))?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    pub(crate) async fn counts(&self) -> Result<Counts, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Counts(tx))?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// SPEC §9.6: stored requests, newest first.
    pub(crate) async fn list(&self, query: ListQuery) -> Result<Vec<Listed>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::List(query, tx))?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// A dead or delivered request becomes pending again, due now.
    pub(crate) async fn retry(&self, id: &str) -> Result<Changed, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Retry(id.to_owned(), now_ms(), tx))?;
        let changed = rx.await.map_err(|_| StoreError::Stopped)??;
        if changed == Changed::Done {
            self.stored.notify_one();
        }
        Ok(changed)
    }

    pub(crate) async fn delete(&self, id: &str) -> Result<Changed, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Delete(id.to_owned(), tx))?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    pub(crate) fn expire(&self, before: i64) {
        let _ = self.ops.send(Op::Expire(before));
    }

    /// `Some(why)` while the last write failed (`/readyz`).
    pub(crate) fn unwritable(&self) -> Option<String> {
        (!self.writable.load(Ordering::Acquire))
            .then(|| "the store cannot be written (see the log)".to_owned())
    }

    fn send(&self, op: Op) -> Result<(), StoreError> {
        self.ops.send(op).map_err(|_| StoreError::Stopped)
    }
}

/// UNIX milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
