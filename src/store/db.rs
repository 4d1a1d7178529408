//! The store thread's side: the SQLite schema, the directory lock, and each operation.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use super::{Op, Put, StoreError, Stored};

/// At most this many requests, or this many body bytes, share one commit.
const BATCH_MAX: usize = 256;
const BATCH_MAX_BYTES: u64 = 64 << 20;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS requests (
    request_id      TEXT PRIMARY KEY,
    route           TEXT NOT NULL,
    method          TEXT NOT NULL,
    target          TEXT NOT NULL,
    headers         BLOB NOT NULL,
    body            BLOB NOT NULL,
    received_at     INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    size            INTEGER NOT NULL,
    finished_at     INTEGER
);
-- The lease reads pending requests in due order without sorting them (only the pending ones
-- are in this index); counts and clean-up read by state.
DROP INDEX IF EXISTS requests_due;
CREATE INDEX IF NOT EXISTS requests_pending ON requests (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS requests_state ON requests (state, finished_at);
CREATE TABLE IF NOT EXISTS dedup (
    key        TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    until      INTEGER NOT NULL
);
";

/// A pending request leased for one attempt.
#[derive(Debug, Clone)]
pub(crate) struct Due {
    pub stored: Stored,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub(crate) enum Finish {
    Delivered {
        id: String,
        at: i64,
    },
    Retry {
        id: String,
        next_at: i64,
        error: String,
    },
    Dead {
        id: String,
        at: i64,
        error: String,
    },
}

/// `GET /store`'s filters.
impl Finish {
    fn id(&self) -> &str {
        match self {
            Finish::Delivered { id, .. } | Finish::Retry { id, .. } | Finish::Dead { id, .. } => id,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ListQuery {
    pub state: Option<String>,
    pub route: Option<String>,
    pub limit: usize,
}

/// One row of `GET /store` (SPEC §9.6).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Listed {
    pub request_id: String,
    pub route: String,
    pub method: String,
    pub path: String,
    /// RFC 3339.
    pub received_at: String,
    pub state: String,
    pub attempts: u32,
    /// RFC 3339; `null` unless pending.
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub body_bytes: u64,
}

/// What a retry or delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Changed {
    Done,
    NotFound,
    /// Retry of a request that is still pending.
    Pending,
}

/// Requests and bytes per state, and the oldest pending request's receive time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    pub bytes: u64,
    pub oldest_pending: Option<i64>,
}

impl Counts {
    /// The count of requests in `state` (as the database spells it).
    fn of(&mut self, state: &str) -> &mut u64 {
        match state {
            "pending" => &mut self.pending,
            "delivered" => &mut self.delivered,
            _ => &mut self.dead,
        }
    }
}

pub(super) struct Db {
    conn: Connection,
    /// Wakes the checkpoint thread after a commit (it ends when this is dropped).
    checkpoint: SyncSender<()>,
    /// Requests and bytes per state, kept with every commit (this thread is the only writer):
    /// counting them in the database would read every row.
    counts: Counts,
    /// Requests an attempt is under way for, and until when (UNIX ms) that holds. In memory:
    /// this process alone owns the store, and a lease must not outlive the process (after a
    /// restart every pending request is due again). Saves a write per attempt.
    leased: HashMap<String, i64>,
    /// Held (flock) for as long as the store is open: one process per store directory.
    _lock: File,
}

/// WAL pages after which a commit checkpoints by itself: only if the checkpoint thread cannot
/// keep up (or could not open the database), so the WAL stays bounded (~40 MiB).
const AUTOCHECKPOINT_FALLBACK: u32 = 10_000;
/// The checkpoint thread's pause after each checkpoint: commits in that time share the next.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(50);
/// The checkpoint thread's nice value.
const CHECKPOINT_NICE: i32 = 10;

/// Copies committed pages from the WAL into the database file, off the commit path: a commit
/// (and with it a 202) never waits for a checkpoint's writes and fsync. PASSIVE: it never
/// blocks a writer; pages committed meanwhile wait for the next round.
fn checkpoints(path: PathBuf, kicks: Receiver<()>) {
    let conn = match Connection::open(&path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "store checkpoint thread cannot open the database; commits checkpoint themselves");
            return;
        }
    };
    // Linux's nice value is per thread: under load the threads that acknowledge come first, and
    // the checkpoint runs in what they leave (the WAL takes the difference meanwhile).
    let _ = rustix::process::setpriority_process(None, CHECKPOINT_NICE);
    while kicks.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "store checkpoint failed");
        }
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
}

impl Db {
    /// Opens the store in `dir`; returns it and the bytes its requests hold.
    pub(super) fn open(dir: &Path) -> Result<(Db, u64), String> {
        create_dir(dir)?;
        let lock = File::create(dir.join("lock")).map_err(|e| format!("lock file: {e}"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| "another hookgate process uses this store (one process per store.path)".to_owned(),
        )?;
        let path = dir.join("store.db");
        let conn = Connection::open(&path).map_err(|e| e.to_string())?;
        // WAL: a torn write is rolled back when the database is next opened, so a row exists
        // whole or not at all. Inserts commit with synchronous = FULL (the WAL is fsync'd before
        // the 202); the rest (leases, attempt results, clean-up) with NORMAL: losing one of those
        // in a power cut only means a request is delivered again, which at-least-once allows.
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_FALLBACK))
            .and_then(|()| conn.execute_batch(SCHEMA))
            .map_err(|e| e.to_string())?;
        let counts = count(&conn).map_err(|e| e.to_string())?;
        let (checkpoint, kicks) = sync_channel(1);
        std::thread::Builder::new()
            .name("hookgate-checkpoint".into())
            .spawn(move || checkpoints(path, kicks))
            .map_err(|e| e.to_string())?;
        let held = counts.bytes;
        let db = Db {
            conn,
            checkpoint,
            counts,
            leased: HashMap::new(),
            _lock: lock,
        };
        Ok((db, held))
    }

    /// Serves operations until every handle is gone.
    pub(super) fn run(mut self, ops: Receiver<Op>, bytes: &AtomicU64, writable: &AtomicBool) {
        let mut next = ops.recv().ok();
        while let Some(op) = next.take() {
            match op {
                Op::Insert(first, reply) => {
                    // Group commit: every insert already queued shares this transaction.
                    let mut batch = vec![(first, reply)];
                    let mut batch_bytes = batch[0].0.size();
                    while batch.len() < BATCH_MAX && batch_bytes < BATCH_MAX_BYTES {
                        match ops.try_recv() {
                            Ok(Op::Insert(s, r)) => {
                                batch_bytes += s.size();
                                batch.push((s, r));
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let result = self.insert(&batch);
                    writable.store(result.is_ok(), Ordering::Release);
                    match result {
                        Ok(puts) => {
                            for ((s, _), _) in
                                batch.iter().zip(&puts).filter(|(_, p)| **p == Put::Stored)
                            {
                                self.counts.pending += 1;
                                self.counts.bytes += s.size();
                            }
                            // Before the answers: a put that follows one must see its bytes.
                            bytes.store(self.counts.bytes, Ordering::Release);
                            for ((_, reply), put) in batch.into_iter().zip(puts) {
                                let _ = reply.send(Ok(put));
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, requests = batch.len(), "store write failed");
                            for (_, reply) in batch {
                                let _ = reply.send(Err(StoreError::Io(e.to_string())));
                            }
                        }
                    }
                }
                Op::Lease {
                    now,
                    lease_until,
                    n,
                    reply,
                } => {
                    let _ = reply.send(self.lease(now, lease_until, n).map_err(io));
                }
                Op::Finish(first, reply) => {
                    // Attempt results queued together share one transaction too.
                    let mut batch = vec![(first, reply)];
                    while batch.len() < BATCH_MAX {
                        match ops.try_recv() {
                            Ok(Op::Finish(f, r)) => batch.push((f, r)),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let result = self
                        .finish(batch.iter().map(|(f, _)| f))
                        .map(|finished| {
                            for (f, _) in &batch {
                                self.leased.remove(f.id());
                            }
                            self.counts.pending = self
                                .counts
                                .pending
                                .saturating_sub(finished.delivered + finished.dead);
                            self.counts.delivered += finished.delivered;
                            self.counts.dead += finished.dead;
                        })
                        .map_err(|e| e.to_string());
                    writable.store(result.is_ok(), Ordering::Release);
                    for (_, reply) in batch {
                        let _ = reply.send(result.clone().map_err(StoreError::Io));
                    }
                }
                Op::Counts(reply) => {
                    let _ = reply.send(self.oldest_pending().map_err(io));
                }
                Op::List(query, reply) => {
                    let _ = reply.send(self.list(&query).map_err(io));
                }
                Op::Retry(id, now, reply) => {
                    let _ = reply.send(self.retry(&id, now).map_err(io));
                }
                Op::Delete(id, reply) => {
                    let result = self.delete(&id).map_err(io);
                    bytes.store(self.counts.bytes, Ordering::Release);
                    let _ = reply.send(result);
                }
                Op::Expire(before) => {
                    if let Err(e) = self.expire(before) {
                        tracing::warn!(error = %e, "removing delivered requests failed");
                    }
                }
            }
            // Expire frees bytes without an answer to wait for.
            bytes.store(self.counts.bytes, Ordering::Release);
            // Full: a checkpoint is due already and will take this commit's pages too.
            let _ = self.checkpoint.try_send(());
            if next.is_none() {
                next = ops.recv().ok();
            }
        }
    }

    /// Inserts the batch in one transaction; a request whose dedup key is already there (within
    /// its window, from an earlier commit or earlier in this batch) is not inserted.
    fn insert(
        &mut self,
        batch: &[(Stored, oneshot::Sender<Result<Put, StoreError>>)],
    ) -> rusqlite::Result<Vec<Put>> {
        // Only this commit must be durable before its answer (the 202): FULL fsyncs the WAL, and
        // with it every earlier relaxed commit, which WAL keeps in order.
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        let puts = self.insert_batch(batch);
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        puts
    }

    fn insert_batch(
        &mut self,
        batch: &[(Stored, oneshot::Sender<Result<Put, StoreError>>)],
    ) -> rusqlite::Result<Vec<Put>> {
        let tx = self.conn.transaction()?;
        let mut puts = Vec::with_capacity(batch.len());
        {
            let mut seen =
                tx.prepare_cached("SELECT request_id FROM dedup WHERE key = ?1 AND until > ?2")?;
            let mut remember = tx.prepare_cached(
                "INSERT OR REPLACE INTO dedup (key, request_id, until) VALUES (?1, ?2, ?3)",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO requests (request_id, route, method, target, headers, body, received_at, state, next_attempt_at, size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?7, ?8)",
            )?;
            for (s, _) in batch {
                if let Some((key, until)) = &s.dedup {
                    let of: Option<String> =
                        match seen.query_row(params![key, s.received_at], |r| r.get(0)) {
                            Ok(id) => Some(id),
                            Err(rusqlite::Error::QueryReturnedNoRows) => None,
                            Err(e) => return Err(e),
                        };
                    if let Some(of) = of {
                        puts.push(Put::Duplicate { of });
                        continue;
                    }
                    remember.execute(params![key, s.request_id, until])?;
                }
                insert.execute(params![
                    s.request_id,
                    s.route,
                    s.method,
                    s.target,
                    encode_headers(&s.headers),
                    &s.body[..],
                    s.received_at,
                    s.size() as i64,
                ])?;
                puts.push(Put::Stored);
            }
        }
        tx.commit()?;
        Ok(puts)
    }

    fn lease(&mut self, now: i64, lease_until: i64, n: usize) -> rusqlite::Result<Vec<Due>> {
        let leased = &mut self.leased;
        leased.retain(|_, until| *until > now);
        let mut stmt = self.conn.prepare_cached(
            "SELECT request_id, route, method, target, headers, body, received_at, attempts
             FROM requests INDEXED BY requests_pending
             WHERE state = 'pending' AND next_attempt_at <= ?1
             ORDER BY next_attempt_at LIMIT ?2",
        )?;
        // Leased requests are still pending: read past them.
        let mut rows = stmt.query(params![now, (n + leased.len()) as i64])?;
        let mut due = Vec::with_capacity(n);
        while due.len() < n {
            let Some(r) = rows.next()? else { break };
            let request_id: String = r.get(0)?;
            if leased.contains_key(&request_id) {
                continue;
            }
            let headers: Vec<u8> = r.get(4)?;
            let body: Vec<u8> = r.get(5)?;
            due.push(Due {
                stored: Stored {
                    request_id,
                    route: r.get(1)?,
                    method: r.get(2)?,
                    target: r.get(3)?,
                    headers: decode_headers(&headers),
                    body: Bytes::from(body),
                    received_at: r.get(6)?,
                    dedup: None,
                },
                attempts: r.get::<_, i64>(7)?.max(0) as u32,
            });
        }
        for d in &due {
            leased.insert(d.stored.request_id.clone(), lease_until);
        }
        due.sort_by_key(|d| d.stored.received_at);
        Ok(due)
    }

    /// Records the attempts' results in one transaction; returns how many requests it made
    /// delivered and dead.
    fn finish<'a>(&mut self, batch: impl Iterator<Item = &'a Finish>) -> rusqlite::Result<Counts> {
        let tx = self.conn.transaction()?;
        let mut finished = Counts::default();
        for finish in batch {
            let changed = finish_one(&tx, finish)? > 0;
            match finish {
                Finish::Delivered { .. } if changed => finished.delivered += 1,
                Finish::Dead { .. } if changed => finished.dead += 1,
                _ => {}
            }
        }
        tx.commit()?;
        Ok(finished)
    }

    /// The counts, with the oldest pending request's receive time (the first pending row
    /// in the state index: pending rows have no `finished_at`, so they follow in rowid order,
    /// which is the order they were stored in).
    fn oldest_pending(&mut self) -> rusqlite::Result<Counts> {
        let oldest = self
            .conn
            .prepare_cached(
                "SELECT received_at FROM requests INDEXED BY requests_state
                 WHERE state = 'pending' AND finished_at IS NULL ORDER BY rowid LIMIT 1",
            )?
            .query_row([], |r| r.get(0))
            .map(Some)
            .or_else(none_if_no_rows)?;
        Ok(Counts {
            oldest_pending: oldest,
            ..self.counts.clone()
        })
    }

    fn list(&mut self, q: &ListQuery) -> rusqlite::Result<Vec<Listed>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT request_id, route, method, target, received_at, state, attempts, next_attempt_at,
                    last_error, length(body)
             FROM requests
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR route = ?2)
             ORDER BY received_at DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![q.state, q.route, q.limit as i64], |r| {
            let target: String = r.get(3)?;
            let state: String = r.get(5)?;
            let next: i64 = r.get(7)?;
            Ok(Listed {
                request_id: r.get(0)?,
                route: r.get(1)?,
                method: r.get(2)?,
                path: target.split('?').next().unwrap_or_default().to_owned(),
                received_at: crate::tls::describe::rfc3339_millis(r.get(4)?),
                next_attempt_at: (state == "pending")
                    .then(|| crate::tls::describe::rfc3339_millis(next)),
                state,
                attempts: r.get::<_, i64>(6)?.max(0) as u32,
                last_error: r.get(8)?,
                body_bytes: r.get::<_, i64>(9)?.max(0) as u64,
            })
        })?;
        rows.collect()
    }

    fn retry(&mut self, id: &str, now: i64) -> rusqlite::Result<Changed> {
        let state: Option<String> = self
            .conn
            .query_row(
                "SELECT state FROM requests WHERE request_id = ?1",
                [id],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(none_if_no_rows)?;
        let was = match state.as_deref() {
            None => return Ok(Changed::NotFound),
            Some("pending") => return Ok(Changed::Pending),
            Some("delivered") => &mut self.counts.delivered,
            Some(_) => &mut self.counts.dead,
        };
        self.conn.execute(
            "UPDATE requests SET state = 'pending', next_attempt_at = ?2,
             finished_at = NULL WHERE request_id = ?1",
            params![id, now],
        )?;
        *was -= 1;
        self.counts.pending += 1;
        Ok(Changed::Done)
    }

    fn delete(&mut self, id: &str) -> rusqlite::Result<Changed> {
        let deleted: Option<(String, i64)> = self
            .conn
            .query_row(
                "DELETE FROM requests WHERE request_id = ?1 RETURNING state, size",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map(Some)
            .or_else(none_if_no_rows)?;
        let Some((state, size)) = deleted else {
            return Ok(Changed::NotFound);
        };
        self.leased.remove(id);
        *self.counts.of(&state) -= 1;
        self.counts.bytes = self.counts.bytes.saturating_sub(size.max(0) as u64);
        Ok(Changed::Done)
    }

    /// Removes delivered requests finished before `before`.
    fn expire(&mut self, before: i64) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let (n, freed): (i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM requests
             WHERE state = 'delivered' AND finished_at < ?1",
            [before],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "DELETE FROM requests WHERE state = 'delivered' AND finished_at < ?1",
            [before],
        )?;
        tx.execute("DELETE FROM dedup WHERE until < ?1", [super::now_ms()])?;
        tx.commit()?;
        self.counts.delivered = self.counts.delivered.saturating_sub(n.max(0) as u64);
        self.counts.bytes = self.counts.bytes.saturating_sub(freed.max(0) as u64);
        Ok(())
    }
}

/// Requests and bytes per state, counted in the database (once, at open).
fn count(conn: &Connection) -> rusqlite::Result<Counts> {
    let mut c = Counts::default();
    let mut stmt = conn
        .prepare("SELECT state, COUNT(*), COALESCE(SUM(size), 0) FROM requests GROUP BY state")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (state, n, bytes) = row?;
        *c.of(&state) = n.max(0) as u64;
        c.bytes += bytes.max(0) as u64;
    }
    Ok(c)
}

fn none_if_no_rows<T>(e: rusqlite::Error) -> rusqlite::Result<Option<T>> {
    match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(None),
        e => Err(e),
    }
}

/// Records one attempt's result on a pending request; returns the rows changed (0 if the
/// request was removed or retried by hand meanwhile).
fn finish_one(tx: &rusqlite::Transaction<'_>, finish: &Finish) -> rusqlite::Result<usize> {
    match finish {
        Finish::Delivered { id, at } => tx.prepare_cached(
            "UPDATE requests SET state = 'delivered', attempts = attempts + 1, finished_at = ?2,
                 last_error = NULL WHERE request_id = ?1 AND state = 'pending'",
        )?
        .execute(params![id, at]),
        Finish::Retry { id, next_at, error } => tx
            .prepare_cached(
                "UPDATE requests SET attempts = attempts + 1, next_attempt_at = ?2,
                 last_error = ?3 WHERE request_id = ?1 AND state = 'pending'",
            )?
            .execute(params![id, next_at, error]),
        Finish::Dead { id, at, error } => tx
            .prepare_cached(
                "UPDATE requests SET state = 'dead', attempts = attempts + 1, finished_at = ?2,
                 last_error = ?3 WHERE request_id = ?1 AND state = 'pending'",
            )?
            .execute(params![id, at, error]),
    }
}

fn io(e: rusqlite::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

fn create_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create the directory: {e}"))
}

/// `check`: the directory can be created and written (a file made, fsync'd and removed), and an
/// existing database opens.
pub(super) fn probe(dir: &Path) -> Result<(), String> {
    use std::io::Write;
    create_dir(dir)?;
    let test = dir.join(format!(".check.{}", std::process::id()));
    let written = File::create(&test)
        .and_then(|mut f| f.write_all(b"hookgate check\n").and_then(|()| f.sync_all()));
    let _ = std::fs::remove_file(&test);
    written.map_err(|e| format!("the directory is not writable: {e}"))?;
    let db = dir.join("store.db");
    if db.exists() {
        let conn = Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
        conn.query_row("SELECT COUNT(*) FROM requests", [], |r| r.get::<_, i64>(0))
            .map_err(|e| format!("the database does not answer: {e}"))?;
    }
    Ok(())
}

/// Headers as `u16 name length, name, u32 value length, value`, repeated.
pub(super) fn encode_headers(headers: &[(String, Bytes)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(headers.iter().map(|(k, v)| k.len() + v.len() + 6).sum());
    for (name, value) in headers {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// The inverse of [`encode_headers`]; a truncated tail (which SQLite never returns) is dropped.
pub(super) fn decode_headers(mut raw: &[u8]) -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    loop {
        let Some((len, rest)) = raw.split_first_chunk::<2>() else {
            return out;
        };
        let n = u16::from_be_bytes(*len) as usize;
        let Some((name, rest)) = rest.split_at_checked(n) else {
            return out;
        };
        let Some((len, rest)) = rest.split_first_chunk::<4>() else {
            return out;
        };
        let v = u32::from_be_bytes(*len) as usize;
        let Some((value, rest)) = rest.split_at_checked(v) else {
            return out;
        };
        out.push((
            String::from_utf8_lossy(name).into_owned(),
            Bytes::copy_from_slice(value),
        ));
        raw = rest;
    }
}

#[cfg(test)]
pub(super) fn encode_for_test(headers: &[(String, Bytes)]) -> Vec<u8> {
    encode_headers(headers)
}
