//! The PostgreSQL store of SPEC §9.5, shared by every replica: a small pool of connections, one
//! transaction per stored request (202 only after its COMMIT returned), each operation under a
//! time limit. A broken connection is dropped and a new one made on the next operation, so the
//! store recovers by itself when the database comes back.

mod sql;
mod tls;
pub(crate) mod url;

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_postgres::Client;

pub(crate) use url::Target;

use super::{Changed, Counts, Due, Finish, ListQuery, Listed, Put, StoreError, Stored};

/// Connections per process: puts, leases and finishes run side by side.
const POOL: usize = 8;
/// Connecting (TCP, TLS, authentication) must finish within this.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// Any one operation must finish within this (well inside the sender's 70 s).
const OP_LIMIT: Duration = Duration::from_secs(15);

/// How long recording an attempt's end keeps trying: within the lease's 30 s margin, so the
/// record lands while the request is still this process's.
const FINISH_PERSIST: Duration = Duration::from_secs(25);

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub(crate) struct Pg(std::sync::Arc<Inner>);

struct Inner {
    target: Target,
    idle: Mutex<Vec<Client>>,
    slots: Semaphore,
    /// Set once this process made sure the tables exist (on its first connection that works,
    /// which may come long after start-up: hookgate starts while the database is away).
    tables: tokio::sync::OnceCell<()>,
}

impl Pg {
    /// A handle on the database at `target`, and a first connection's answer: the bytes stored
    /// requests hold, or why the database cannot be used yet. Either way the handle works: each
    /// operation connects (and creates the tables when missing) until the database answers.
    pub(crate) async fn open(target: Target) -> (Pg, Result<u64, String>) {
        let pg = Pg(std::sync::Arc::new(Inner {
            target,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(POOL),
            tables: tokio::sync::OnceCell::new(),
        }));
        let held = async {
            let client = pg.connect().await?;
            let r = tokio::time::timeout(OP_LIMIT, sql::held(&client)).await;
            pg.settle(client, r).map_err(|e| e.to_string())
        }
        .await;
        (pg, held)
    }

    /// `check`: connects and runs `SELECT 1`, all within `within`.
    pub(crate) async fn probe(target: Target, within: Duration) -> Result<(), String> {
        let pg = Pg(std::sync::Arc::new(Inner {
            target,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(1),
            tables: tokio::sync::OnceCell::new(),
        }));
        let answer = async {
            let client = pg.connect().await?;
            client
                .query_one("SELECT 1", &[])
                .await
                .map(|_| ())
                .map_err(|e| pg.0.target.scrub(&describe(&e)))
        };
        tokio::time::timeout(within, answer)
            .await
            .map_err(|_| format!("the database did not answer within {within:?}"))?
    }

    pub(crate) fn loggable(&self) -> &str {
        self.0.target.loggable()
    }

    pub(crate) async fn put(&self, s: &Stored) -> Result<Put, StoreError> {
        let _slot = self.slot().await?;
        let mut c = self.take().await?;
        let r = tokio::time::timeout(OP_LIMIT, sql::insert(&mut c, s)).await;
        self.settle(c, r)
    }

    pub(crate) async fn lease(
        &self,
        now: i64,
        until: i64,
        n: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let _slot = self.slot().await?;
        let c = self.take().await?;
        let r = tokio::time::timeout(OP_LIMIT, sql::lease(&c, now, until - now, n)).await;
        self.settle(c, r)
    }

    /// Records how an attempt ended, trying again for up to [`FINISH_PERSIST`] while the
    /// database is away: a delivery whose record is lost is delivered again once its lease
    /// expires, so it is worth waiting for the database (the attempt's slot stays taken).
    pub(crate) async fn finish(&self, f: &Finish) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + FINISH_PERSIST;
        let mut wait = Duration::from_millis(250);
        loop {
            match self.finish_once(f).await {
                Err(e) if tokio::time::Instant::now() + wait < deadline => {
                    tracing::warn!(error = %e, "cannot record a delivery attempt yet; trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(4));
                }
                done => return done,
            }
        }
    }

    async fn finish_once(&self, f: &Finish) -> Result<(), StoreError> {
        let _slot = self.slot().await?;
        let c = self.take().await?;
        let r = tokio::time::timeout(OP_LIMIT, sql::finish(&c, f)).await;
        self.settle(c, r)
    }

    pub(crate) async fn counts(&self) -> Result<Counts, StoreError> {
        let _slot = self.slot().await?;
        let c = self.take().await?;
        let r = tokio::time::timeout(OP_LIMIT, sql::counts(&c)).await;
        self.settle(c, r)
    }

    pub(crate) async fn list(&self, q: &ListQuery) -> Result<Vec<Listed>, StoreError> {
        let _slot = self.slot().await?;
        let c = self.take().await?;
        let r = tokio::time::timeout(OP_LIMIT, sql::list(&c, q)).await;
        self.settle(c, r)
    }

    pub(crate) async fn retry(&self, id: &str, now: i64) -> Result<Changed, StoreError> {
        let _slot = self.slot().await?;
        let c = self.take().await?;
        let r = tokio::time::timeout(OP_LIMIT, sql::retry(&c, id, now)).await;
        self.settle(c, r)
    }

    pub(crate) async fn delete(&self, id: &str) -> Result<(Changed, u64), StoreError> {
        let _slot = self.slot().await?;
        let c = self.take().await?;
        let r = tokio::time::timeout(OP_LIMIT, sql::delete(&c, id)).await;
        self.settle(c, r)
    }

    pub(crate) async fn expire(&self, before: i64) -> Result<u64, StoreError> {
        let _slot = self.slot().await?;
        let mut c = self.take().await?;
        let r = tokio::time::timeout(OP_LIMIT, sql::expire(&mut c, before, super::now_ms())).await;
        self.settle(c, r)
    }

    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, StoreError> {
        self.0
            .slots
            .acquire()
            .await
            .map_err(|_| StoreError::Stopped)
    }

    /// An idle connection that is still open, or a new one (the caller holds a slot).
    async fn take(&self) -> Result<Client, StoreError> {
        loop {
            let idle = self.0.idle.lock().ok().and_then(|mut v| v.pop());
            match idle {
                Some(c) if !c.is_closed() => return Ok(c),
                Some(_) => continue,
                None => break,
            }
        }
        self.connect().await.map_err(StoreError::Io)
    }

    /// A new connection; the first one that works also creates the tables when missing.
    async fn connect(&self) -> Result<Client, String> {
        let mut client = self.connect_only().await?;
        self.0
            .tables
            .get_or_try_init(|| async {
                tokio::time::timeout(OP_LIMIT, sql::create(&mut client))
                    .await
                    .map_err(|_| format!("creating the tables took more than {OP_LIMIT:?}"))?
                    .map_err(|e| self.0.target.scrub(&describe(&e)))
            })
            .await?;
        Ok(client)
    }

    async fn connect_only(&self) -> Result<Client, String> {
        let t = &self.0.target;
        let connecting = t.config.connect(t.tls.clone());
        let (client, connection) = tokio::time::timeout(CONNECT_LIMIT, connecting)
            .await
            .map_err(|_| format!("cannot connect within {CONNECT_LIMIT:?}"))?
            .map_err(|e| t.scrub(&format!("cannot connect: {}", describe(&e))))?;
        let target = t.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                let detail = target.scrub(&describe(&e));
                tracing::warn!(
                    store = target.loggable(),
                    error = detail,
                    "database connection lost"
                );
            }
        });
        Ok(client)
    }

    /// Keeps a connection that answered; drops one that failed or timed out (it may be
    /// mid-protocol or its server gone), so the next operation connects afresh.
    fn settle<T>(
        &self,
        client: Client,
        r: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        match r {
            Ok(Ok(v)) => {
                self.give_back(client);
                Ok(v)
            }
            Ok(Err(e)) => Err(StoreError::Io(self.0.target.scrub(&describe(&e)))),
            Err(_) => Err(StoreError::Io(format!(
                "the database did not answer within {OP_LIMIT:?}"
            ))),
        }
    }

    fn give_back(&self, client: Client) {
        if let Ok(mut idle) = self.0.idle.lock() {
            idle.push(client);
        }
    }
}

/// The error with its causes (tokio-postgres puts the useful part in `source`).
fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}
