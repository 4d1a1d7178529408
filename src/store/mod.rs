//! The embedded store of SPEC §9: SQLite in WAL mode with `synchronous = FULL` in a directory
//! hookgate owns (locked against a second process). One thread owns the database connection and
//! runs every operation; consecutive writes share one transaction and so one fsync (group
//! commit), and a request is acknowledged only after the commit that holds it returned.
//! A crash never makes a partial request deliverable: a row exists whole or not at all.
//! With `store.url` the same API runs on PostgreSQL shared by replicas instead ([`pg`]).

mod db;
mod pg;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::secret::Secret;

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

/// Which database a [`Store`] runs on.
enum Backend {
    /// The embedded store: operations go to its thread.
    Sqlite(mpsc::Sender<Op>),
    /// PostgreSQL shared by replicas (SPEC §9.5).
    Postgres(pg::Pg),
}

/// The store: a handle to the embedded store's thread, or to PostgreSQL. Cheap to share
/// behind an `Arc`.
pub(crate) struct Store {
    backend: Backend,
    max_bytes: AtomicU64,
    /// Bytes held by stored requests: kept by the store thread (SQLite), or an estimate of this
    /// process's view refreshed from `SUM(size)` on every [`Store::counts`] (PostgreSQL, where
    /// other replicas store too).
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
            backend: Backend::Sqlite(ops),
            max_bytes: AtomicU64::new(max_bytes),
            bytes,
            writable,
            stored: tokio::sync::Notify::new(),
        })
    }

    /// Connects to PostgreSQL at `url` (the resolved `store.url`; relative `sslrootcert`
    /// paths are taken from `base`) and creates the tables when missing. Fails only on a bad
    /// URL: a database that does not answer yet leaves the store unwritable until it does.
    /// Other processes' leases are left alone: they may be alive.
    pub(crate) async fn open_url(
        url: &Secret,
        base: &Path,
        max_bytes: u64,
    ) -> Result<Store, StoreError> {
        let target = pg::url::parse(url.expose(), base).map_err(|detail| StoreError::Open {
            path: "store.url".to_owned(),
            detail,
        })?;
        let (pg, held) = pg::Pg::open(target).await;
        let writable = match &held {
            Ok(_) => {
                tracing::info!(store = pg.loggable(), "store opened on PostgreSQL");
                true
            }
            // Started before the database (a rollout, a failover): forward routes serve, store
            // routes answer 503 and /readyz fails until an operation reaches it.
            Err(e) => {
                tracing::error!(store = pg.loggable(), error = %e, "the database cannot be used yet; store routes answer 503 until it answers");
                false
            }
        };
        Ok(Store {
            backend: Backend::Postgres(pg),
            max_bytes: AtomicU64::new(max_bytes),
            bytes: Arc::new(AtomicU64::new(held.unwrap_or(0))),
            writable: Arc::new(AtomicBool::new(writable)),
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

    /// What `check` verifies for `store.url`: the database answers `SELECT 1` within `within`.
    /// Runs its own small runtime (`check` has none).
    pub(crate) fn probe_url(url: &Secret, base: &Path, within: Duration) -> Result<(), StoreError> {
        let open = |detail| StoreError::Open {
            path: "store.url".to_owned(),
            detail,
        };
        let target = pg::url::parse(url.expose(), base).map_err(open)?;
        let name = target.loggable().to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| open(e.to_string()))?;
        runtime
            .block_on(pg::Pg::probe(target, within))
            .map_err(|detail| StoreError::Open { path: name, detail })
    }

    /// Follows a reloaded `store.max_bytes`.
    pub(crate) fn set_max_bytes(&self, max: u64) {
        self.max_bytes.store(max, Ordering::Release);
    }

    /// Stores `request`; `Ok` only once it is durable (its commit's fsync returned, or its
    /// PostgreSQL COMMIT).
    pub(crate) async fn put(&self, request: Stored) -> Result<Put, StoreError> {
        let max = self.max_bytes.load(Ordering::Acquire);
        let size = request.size();
        if self.bytes.load(Ordering::Acquire) + size > max {
            return Err(StoreError::Full { max });
        }
        let put = match &self.backend {
            Backend::Sqlite(ops) => {
                let (tx, rx) = oneshot::channel();
                send(ops, Op::Insert(request, tx))?;
                rx.await.map_err(|_| StoreError::Stopped)??
            }
            Backend::Postgres(pg) => {
                let put = self.track(pg.put(&request).await)?;
                if put == Put::Stored {
                    self.bytes.fetch_add(size, Ordering::AcqRel);
                }
                put
            }
        };
        self.stored.notify_one();
        Ok(put)
    }

    pub(crate) async fn lease(
        &self,
        now: i64,
        lease: Duration,
        n: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let lease_until = now + lease.as_millis() as i64;
        match &self.backend {
            Backend::Sqlite(ops) => {
                let (reply, rx) = oneshot::channel();
                send(
                    ops,
                    Op::Lease {
                        now,
                        lease_until,
                        n,
                        reply,
                    },
                )?;
                rx.await.map_err(|_| StoreError::Stopped)?
            }
            // A lease is a write: the poll of the delivery loop keeps `/readyz` current
            // while the database is away and after it came back.
            Backend::Postgres(pg) => self.track(pg.lease(now, lease_until, n).await),
        }
    }

    pub(crate) async fn finish(&self, finish: Finish) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(ops) => ask(ops, |tx| Op::Finish(finish, tx)).await,
            Backend::Postgres(pg) => self.track(pg.finish(&finish).await),
        }
    }

    pub(crate) async fn counts(&self) -> Result<Counts, StoreError> {
        match &self.backend {
            Backend::Sqlite(ops) => ask(ops, Op::Counts).await,
            Backend::Postgres(pg) => {
                let c = pg.counts().await?;
                self.bytes.store(c.bytes, Ordering::Release);
                Ok(c)
            }
        }
    }

    /// SPEC §9.6: stored requests, newest first.
    pub(crate) async fn list(&self, query: ListQuery) -> Result<Vec<Listed>, StoreError> {
        match &self.backend {
            Backend::Sqlite(ops) => ask(ops, |tx| Op::List(query, tx)).await,
            Backend::Postgres(pg) => pg.list(&query).await,
        }
    }

    /// A dead or delivered request becomes pending again, due now.
    pub(crate) async fn retry(&self, id: &str) -> Result<Changed, StoreError> {
        let changed = match &self.backend {
            Backend::Sqlite(ops) => ask(ops, |tx| Op::Retry(id.to_owned(), now_ms(), tx)).await?,
            Backend::Postgres(pg) => pg.retry(id, now_ms()).await?,
        };
        if changed == Changed::Done {
            self.stored.notify_one();
        }
        Ok(changed)
    }

    pub(crate) async fn delete(&self, id: &str) -> Result<Changed, StoreError> {
        match &self.backend {
            Backend::Sqlite(ops) => ask(ops, |tx| Op::Delete(id.to_owned(), tx)).await,
            Backend::Postgres(pg) => {
                let (changed, freed) = pg.delete(id).await?;
                release(&self.bytes, freed);
                Ok(changed)
            }
        }
    }

    /// Removes delivered requests finished before `before` (in the background).
    pub(crate) fn expire(&self, before: i64) {
        match &self.backend {
            Backend::Sqlite(ops) => {
                let _ = ops.send(Op::Expire(before));
            }
            Backend::Postgres(pg) => {
                let (pg, bytes) = (pg.clone(), self.bytes.clone());
                tokio::spawn(async move {
                    match pg.expire(before).await {
                        Ok(freed) => release(&bytes, freed),
                        Err(e) => tracing::warn!(error = %e, "removing delivered requests failed"),
                    }
                });
            }
        }
    }

    /// `Some(why)` while the last write failed (`/readyz`).
    pub(crate) fn unwritable(&self) -> Option<String> {
        (!self.writable.load(Ordering::Acquire))
            .then(|| "the store cannot be written (see the log)".to_owned())
    }

    /// Records whether a PostgreSQL write worked (`/readyz`); logs a failure.
    fn track<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let ok = result.is_ok();
        if self.writable.swap(ok, Ordering::AcqRel) != ok {
            match &result {
                Ok(_) => tracing::info!("the store can be written again"),
                Err(e) => tracing::error!(error = %e, "store write failed"),
            }
        }
        result
    }
}

fn send(ops: &mpsc::Sender<Op>, op: Op) -> Result<(), StoreError> {
    ops.send(op).map_err(|_| StoreError::Stopped)
}

/// Sends the operation `make` builds to the store thread and waits for its answer.
async fn ask<T>(
    ops: &mpsc::Sender<Op>,
    make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Op,
) -> Result<T, StoreError> {
    let (tx, rx) = oneshot::channel();
    send(ops, make(tx))?;
    rx.await.map_err(|_| StoreError::Stopped)?
}

fn release(bytes: &AtomicU64, freed: u64) {
    let _ = bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
        Some(b.saturating_sub(freed))
    });
}

/// UNIX milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
