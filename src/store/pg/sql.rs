//! The PostgreSQL schema and each store operation as SQL, on one connection. Same columns and
//! rules as the embedded store (`db.rs`); what differs is how replicas share it: leases are
//! taken with `FOR UPDATE SKIP LOCKED`, dedup keys are claimed with `INSERT ... ON CONFLICT`
//! inside the request's own transaction, and nothing resets another process's leases.

use bytes::Bytes;
use tokio_postgres::{Client, Error, Row};

use super::super::db::{decode_headers, encode_headers};
use super::super::{Changed, Counts, Due, Finish, ListQuery, Listed, Put, Stored};

/// Serialises schema creation between replicas starting at once (an arbitrary constant).
const SCHEMA_LOCK: i64 = 0x686f_6f6b_6761_7465;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hookgate_requests (
    request_id      TEXT PRIMARY KEY,
    route           TEXT NOT NULL,
    method          TEXT NOT NULL,
    target          TEXT NOT NULL,
    headers         BYTEA NOT NULL,
    body            BYTEA NOT NULL,
    received_at     BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    leased_until    BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    size            BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX IF NOT EXISTS hookgate_requests_due ON hookgate_requests (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS hookgate_requests_received ON hookgate_requests (received_at);
CREATE TABLE IF NOT EXISTS hookgate_dedup (
    key        TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    until      BIGINT NOT NULL
);
";

/// Creates the tables when missing; returns the bytes the stored requests hold.
pub(super) async fn create(client: &mut Client) -> Result<(), Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    tx.batch_execute(SCHEMA).await?;
    tx.commit().await
}

/// The bytes stored requests hold.
pub(super) async fn held(client: &Client) -> Result<u64, Error> {
    let held: i64 = client
        .query_one(
            "SELECT COALESCE(SUM(size), 0)::BIGINT FROM hookgate_requests",
            &[],
        )
        .await?
        .get(0);
    Ok(held.max(0) as u64)
}

/// Stores one request in its own transaction: `Ok` only after COMMIT returned. Its dedup key,
/// if any, is claimed in the same transaction; a live claim by another request (committed, or
/// committed while this waited on it) makes it a duplicate, and nothing is written.
pub(super) async fn insert(client: &mut Client, s: &Stored) -> Result<Put, Error> {
    let tx = client.transaction().await?;
    if let Some((key, until)) = &s.dedup {
        let claimed = tx
            .query_opt(
                "INSERT INTO hookgate_dedup (key, request_id, until) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET request_id = EXCLUDED.request_id, until = EXCLUDED.until
                 WHERE hookgate_dedup.until <= $4
                 RETURNING request_id",
                &[key, &s.request_id, until, &s.received_at],
            )
            .await?;
        if claimed.is_none() {
            let of: String = tx
                .query_one(
                    "SELECT request_id FROM hookgate_dedup WHERE key = $1",
                    &[key],
                )
                .await?
                .get(0);
            tx.rollback().await?;
            return Ok(Put::Duplicate { of });
        }
    }
    tx.execute(
        "INSERT INTO hookgate_requests (request_id, route, method, target, headers, body, received_at, state, next_attempt_at, size)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $7, $8)",
        &[
            &s.request_id,
            &s.route,
            &s.method,
            &s.target,
            &encode_headers(&s.headers),
            &&s.body[..],
            &s.received_at,
            &(s.size() as i64),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Put::Stored)
}

/// Leases up to `n` due requests for `lease_ms`, skipping rows another process is leasing right
/// now; a lease past `leased_until` (its process died mid-attempt) is due again. Leases are
/// set and compared on the database's clock, so replicas whose clocks disagree never take a
/// live lease from each other (`now`, this process's clock, only decides which retries are due).
pub(super) async fn lease(
    client: &Client,
    now: i64,
    lease_ms: i64,
    n: usize,
) -> Result<Vec<Due>, Error> {
    let rows = client
        .query(
            "UPDATE hookgate_requests
             SET leased_until = (extract(epoch FROM statement_timestamp()) * 1000)::BIGINT + $1
             WHERE request_id IN (SELECT request_id FROM hookgate_requests
                                  WHERE state = 'pending' AND next_attempt_at <= $2
                                    AND leased_until <= (extract(epoch FROM statement_timestamp()) * 1000)::BIGINT
                                  ORDER BY received_at LIMIT $3
                                  FOR UPDATE SKIP LOCKED)
             RETURNING request_id, route, method, target, headers, body, received_at, attempts",
            &[&lease_ms, &now, &(n as i64)],
        )
        .await?;
    let mut due: Vec<Due> = rows.iter().map(due_of).collect();
    due.sort_by_key(|d| d.stored.received_at);
    Ok(due)
}

fn due_of(r: &Row) -> Due {
    let headers: &[u8] = r.get(4);
    let body: &[u8] = r.get(5);
    Due {
        stored: Stored {
            request_id: r.get(0),
            route: r.get(1),
            method: r.get(2),
            target: r.get(3),
            headers: decode_headers(headers),
            body: Bytes::copy_from_slice(body),
            received_at: r.get(6),
            dedup: None,
        },
        attempts: r.get::<_, i32>(7).max(0) as u32,
    }
}

pub(super) async fn finish(client: &Client, finish: &Finish) -> Result<(), Error> {
    match finish {
        Finish::Delivered { id, at } => {
            client
                .execute(
                    "UPDATE hookgate_requests SET state = 'delivered', attempts = attempts + 1, finished_at = $2,
                     leased_until = 0, last_error = NULL WHERE request_id = $1",
                    &[id, at],
                )
                .await
        }
        Finish::Retry { id, next_at, error } => {
            client
                .execute(
                    "UPDATE hookgate_requests SET attempts = attempts + 1, next_attempt_at = $2, leased_until = 0,
                     last_error = $3 WHERE request_id = $1",
                    &[id, next_at, error],
                )
                .await
        }
        Finish::Dead { id, at, error } => {
            client
                .execute(
                    "UPDATE hookgate_requests SET state = 'dead', attempts = attempts + 1, finished_at = $2,
                     leased_until = 0, last_error = $3 WHERE request_id = $1",
                    &[id, at, error],
                )
                .await
        }
    }
    .map(|_| ())
}

pub(super) async fn counts(client: &Client) -> Result<Counts, Error> {
    let mut c = Counts::default();
    let rows = client
        .query(
            "SELECT state, COUNT(*), COALESCE(SUM(size), 0)::BIGINT FROM hookgate_requests GROUP BY state",
            &[],
        )
        .await?;
    for r in rows {
        let (state, n, bytes): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        let n = n.max(0) as u64;
        c.bytes += bytes.max(0) as u64;
        match state.as_str() {
            "pending" => c.pending = n,
            "delivered" => c.delivered = n,
            _ => c.dead = n,
        }
    }
    c.oldest_pending = client
        .query_one(
            "SELECT MIN(received_at) FROM hookgate_requests WHERE state = 'pending'",
            &[],
        )
        .await?
        .get(0);
    Ok(c)
}

pub(super) async fn list(client: &Client, q: &ListQuery) -> Result<Vec<Listed>, Error> {
    let rows = client
        .query(
            "SELECT request_id, route, method, target, received_at, state, attempts, next_attempt_at,
                    last_error, octet_length(body)::BIGINT
             FROM hookgate_requests
             WHERE ($1::TEXT IS NULL OR state = $1) AND ($2::TEXT IS NULL OR route = $2)
             ORDER BY received_at DESC LIMIT $3",
            &[&q.state, &q.route, &(q.limit as i64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let target: String = r.get(3);
            let state: String = r.get(5);
            let next: i64 = r.get(7);
            Listed {
                request_id: r.get(0),
                route: r.get(1),
                method: r.get(2),
                path: target.split('?').next().unwrap_or_default().to_owned(),
                received_at: crate::tls::describe::rfc3339_millis(r.get(4)),
                next_attempt_at: (state == "pending")
                    .then(|| crate::tls::describe::rfc3339_millis(next)),
                state,
                attempts: r.get::<_, i32>(6).max(0) as u32,
                last_error: r.get(8),
                body_bytes: r.get::<_, i64>(9).max(0) as u64,
            }
        })
        .collect())
}

pub(super) async fn retry(client: &Client, id: &str, now: i64) -> Result<Changed, Error> {
    let changed = client
        .execute(
            "UPDATE hookgate_requests SET state = 'pending', next_attempt_at = $2, leased_until = 0,
             finished_at = NULL WHERE request_id = $1 AND state IN ('dead', 'delivered')",
            &[&id, &now],
        )
        .await?;
    if changed > 0 {
        return Ok(Changed::Done);
    }
    let exists = client
        .query_opt(
            "SELECT 1 FROM hookgate_requests WHERE request_id = $1",
            &[&id],
        )
        .await?;
    Ok(if exists.is_some() {
        Changed::Pending
    } else {
        Changed::NotFound
    })
}

/// Removes one request; returns what happened and the bytes freed.
pub(super) async fn delete(client: &Client, id: &str) -> Result<(Changed, u64), Error> {
    let row = client
        .query_opt(
            "DELETE FROM hookgate_requests WHERE request_id = $1 RETURNING size",
            &[&id],
        )
        .await?;
    Ok(match row {
        Some(r) => (Changed::Done, r.get::<_, i64>(0).max(0) as u64),
        None => (Changed::NotFound, 0),
    })
}

/// Removes delivered requests finished before `before` and expired dedup keys; returns the
/// bytes freed.
pub(super) async fn expire(client: &mut Client, before: i64, now: i64) -> Result<u64, Error> {
    let tx = client.transaction().await?;
    let freed: i64 = tx
        .query_one(
            "WITH gone AS (DELETE FROM hookgate_requests WHERE state = 'delivered' AND finished_at < $1
                           RETURNING size)
             SELECT COALESCE(SUM(size), 0)::BIGINT FROM gone",
            &[&before],
        )
        .await?
        .get(0);
    tx.execute("DELETE FROM hookgate_dedup WHERE until < $1", &[&now])
        .await?;
    tx.commit().await?;
    Ok(freed.max(0) as u64)
}
