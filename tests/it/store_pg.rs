//! SPEC §9.5 on a real PostgreSQL server (support/postgres.rs starts one per test): the store
//! route on PostgreSQL (202, delivery with retries, dead, dedup), two hookgate processes on one
//! database delivering each request once, a replica killed with SIGKILL while holding leases
//! (the other takes them over after attempt_timeout + 30 s), the database stopped mid-run (503
//! store_unavailable, /readyz 503, then recovery), and `check` against the database.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::postgres::{Postgres, PASSWORD};
use crate::support::upstream::Behavior;
use crate::support::*;

fn pg_gate(up_url: &str, pg: &Postgres) -> GateConfig {
    GateConfig::new(up_url)
        .remove("request.path_prefixes")
        .set_toml("store.url", r#"{ env = "HOOKGATE_STORE_URL" }"#)
        .env("HOOKGATE_STORE_URL", &pg.url())
        .set("store.retry_initial", "100ms")
        .set("store.retry_max", "400ms")
        .set("store.attempt_timeout", "2s")
        .set_toml(
            "routes",
            r#"[
  { name = "status", path_prefixes = ["/hooks/"], delivery = "store" },
  { name = "once", path_prefixes = ["/once/"], delivery = "store", dedup = "body" },
]"#,
        )
}

/// How many times the upstream received each `X-Request-Id`.
fn arrivals(up: &Upstream) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for r in up.requests() {
        *n.entry(r.header("x-request-id").to_owned()).or_insert(0) += 1;
    }
    n
}

async fn state_of(pg: &Postgres, id: &str) -> String {
    pg.client()
        .await
        .query_one(
            "SELECT state FROM hookgate_requests WHERE request_id = $1",
            &[&id],
        )
        .await
        .expect("the request is in the database")
        .get(0)
}

#[tokio::test]
async fn on_postgres_a_request_is_202_delivered_with_retries_dead_and_deduplicated() {
    let pg = Postgres::start();
    let up = Upstream::start();
    up.set_behavior(Behavior::respond(503, &[]));
    let gate = pg_gate(&up.url, &pg).start().await;
    let body = r#"{"scannedDocument":{"scanId":"pg1"}}"#;
    let reply = gate.post("/hooks/completed/pg1?x=1", body, &[]).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let id = reply.request_id();
    assert_eq!(
        reply.json(),
        serde_json::json!({"stored": true, "request_id": id})
    );
    assert_eq!(state_of(&pg, &id).await, "pending");
    wait_for("two failed attempts", Duration::from_secs(5), || {
        up.requests().len() >= 2
    })
    .await;
    up.set_behavior(Behavior::default());
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "delivered")],
        1.0,
    )
    .await;
    let seen = up.requests();
    let attempts: Vec<&str> = seen.iter().map(|r| r.header("hookgate-attempt")).collect();
    assert_eq!(&attempts[..2], ["1", "2"]);
    let last = seen.last().expect("delivered");
    assert_eq!(last.target, "/hooks/completed/pg1?x=1");
    assert_eq!(&last.body[..], body.as_bytes());
    assert_eq!(last.header("x-request-id"), id);
    assert_eq!(
        last.header("content-digest"),
        hookgate::content_digest(body.as_bytes())
    );
    assert_eq!(state_of(&pg, &id).await, "delivered");

    // A refusal makes it dead at once: one attempt, no more.
    up.set_behavior(Behavior::respond(404, &[]));
    let dead = gate.post("/hooks/refused", "{}", &[]).await.request_id();
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "dead")],
        1.0,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(arrivals(&up)[&dead], 1, "a dead request is not tried again");
    assert_eq!(state_of(&pg, &dead).await, "dead");

    // Dedup in the transaction: the same body again is answered, not stored.
    up.set_behavior(Behavior::default());
    let first = gate.post("/once/a", r#"{"n":1}"#, &[]).await;
    let again = gate.post("/once/b", r#"{"n":1}"#, &[]).await;
    assert_eq!((first.status.as_u16(), again.status.as_u16()), (202, 202));
    assert_eq!(again.json()["duplicate_of"], first.request_id().as_str());
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "once"), ("result", "delivered")],
        1.0,
    )
    .await;
    let rows: i64 = pg
        .client()
        .await
        .query_one("SELECT COUNT(*) FROM hookgate_requests", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 3, "the duplicate was not stored");
    assert!(
        !gate.all_output().contains(PASSWORD),
        "the store.url password appears in the output"
    );
}

/// Two processes on one database, the upstream slow at first: every request is delivered,
/// none twice, and both processes deliver.
#[tokio::test]
async fn two_replicas_deliver_everything_once() {
    let pg = Postgres::start();
    let up = Upstream::start();
    up.set_behavior(Behavior::Delay(Duration::from_millis(400)));
    let a = pg_gate(&up.url, &pg)
        .set("store.concurrency", 4)
        .start()
        .await;
    let b = pg_gate(&up.url, &pg)
        .set("store.concurrency", 4)
        .start()
        .await;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..60 {
        let gate = if i % 2 == 0 { &a } else { &b };
        let reply = gate
            .post(&format!("/hooks/{i}"), format!("{{\"i\":{i}}}"), &[])
            .await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        ids.push(reply.request_id());
        if i == 20 {
            up.set_behavior(Behavior::default());
        }
    }
    eprintln!("60 puts over two replicas took {:?}", started.elapsed());
    wait_for("every request delivered", Duration::from_secs(30), || {
        let n = arrivals(&up);
        ids.iter().all(|id| n.contains_key(id))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let n = arrivals(&up);
    let twice: Vec<_> = n.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(n.len(), 60);
    let delivered = |m: &admin::Metrics| {
        m.value(
            "hookgate_deliveries_total",
            &[("route", "status"), ("result", "delivered")],
        )
        .unwrap_or(0.0)
    };
    let (da, db) = (delivered(&a.metrics().await), delivered(&b.metrics().await));
    assert_eq!(da + db, 60.0, "a {da} + b {db}");
    assert!(
        da > 0.0 && db > 0.0,
        "both replicas deliver: a {da}, b {db}"
    );
}

/// A replica killed while its attempts are in flight: its leases hold (the survivor does not
/// reset them at start), and after attempt_timeout + 30 s the survivor delivers everything.
#[tokio::test]
async fn a_killed_replicas_leases_are_taken_over_after_they_expire() {
    let pg = Postgres::start();
    let up = Upstream::start();
    up.set_behavior(Behavior::Delay(Duration::from_secs(20)));
    let mut a = pg_gate(&up.url, &pg).start().await;
    let posts: Vec<_> = (0..8)
        .map(|i| {
            let tls = a.client();
            let addr = a.addr;
            tokio::spawn(async move {
                let mut h1 = client::H1::over(tls.connect(addr).await.expect("tls")).await;
                h1.send(client::request(
                    "POST",
                    &format!("/hooks/k{i}"),
                    &[(HEADER_NAME, HEADER_SECRET)],
                    format!("{{\"k\":{i}}}"),
                ))
                .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for p in posts {
        let reply = p.await.expect("post");
        assert_eq!(reply.status, 202);
        ids.push(reply.request_id());
    }
    wait_for("every attempt in flight", Duration::from_secs(2), || {
        up.requests().len() >= ids.len()
    })
    .await;
    a.signal("KILL");
    let killed = Instant::now();
    a.wait_exit(Duration::from_secs(5)).await.expect("killed");
    up.set_behavior(Behavior::default());
    let b = pg_gate(&up.url, &pg).start().await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        up.requests().len(),
        ids.len(),
        "a live-looking lease was taken before it expired"
    );
    wait_for("the takeover", Duration::from_secs(45), || {
        let n = arrivals(&up);
        ids.iter().all(|id| n.get(id) == Some(&2))
    })
    .await;
    let took = killed.elapsed();
    eprintln!("leases of the killed replica taken over {took:?} after the kill");
    assert!(took >= Duration::from_secs(28), "taken over after {took:?}");
    b.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "delivered")],
        ids.len() as f64,
    )
    .await;
}

/// The database stopped mid-run: store routes answer 503 store_unavailable with Retry-After
/// and /readyz fails; started again, 202 again and what was pending is delivered.
#[tokio::test]
async fn a_stopped_database_answers_503_then_recovers() {
    let pg = Postgres::start();
    let up = Upstream::start();
    up.set_behavior(Behavior::respond(429, &[("retry-after", "2")]));
    let gate = pg_gate(&up.url, &pg)
        .set("store.retry_max", "5s")
        .start()
        .await;
    let pending = gate.post("/hooks/before", "{}", &[]).await;
    assert_eq!(pending.status, 202);
    wait_for("the first attempt", Duration::from_secs(5), || {
        !up.requests().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    pg.stop();
    let reply = gate.post("/hooks/during", "{}", &[]).await;
    reply.assert_error(503, "store_unavailable");
    assert_eq!(reply.headers["retry-after"], "30");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = admin::get(gate.admin(), "/readyz").await.expect("readyz");
        if status == 503 {
            assert!(body.contains("store"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gate.expect_metric(
        "hookgate_requests_total",
        &[
            ("route", "status"),
            ("outcome", "error"),
            ("reason", "store_unavailable"),
        ],
        1.0,
    )
    .await;
    up.set_behavior(Behavior::default());
    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(15);
    while admin::get(gate.admin(), "/readyz").await.expect("readyz").0 != 200 {
        assert!(Instant::now() < deadline, "/readyz did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = gate.post("/hooks/after", "{}", &[]).await;
    assert_eq!(after.status, 202, "{:?}", after.body);
    let (p, a) = (pending.request_id(), after.request_id());
    wait_for(
        "the pending and the new request delivered",
        Duration::from_secs(15),
        || {
            up.requests()
                .iter()
                .any(|r| r.header("x-request-id") == p && r.header("hookgate-attempt") != "1")
                && arrivals(&up).contains_key(&a)
        },
    )
    .await;
    let rows: Vec<String> = pg
        .client()
        .await
        .query(
            "SELECT target FROM hookgate_requests ORDER BY received_at",
            &[],
        )
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        !gate.all_output().contains(PASSWORD),
        "the store.url password appears in the output"
    );
    assert_eq!(
        rows,
        ["/hooks/before", "/hooks/after"],
        "the 503 one was not stored"
    );
}

/// Started before its database (a rollout, a failover): hookgate serves forward routes, store
/// routes answer 503 and `/readyz` fails; once the database answers (tables created then),
/// store routes accept and deliver.
#[tokio::test]
async fn started_while_the_database_is_down_it_serves_then_stores_once_it_answers() {
    let pg = Postgres::start();
    pg.stop();
    let up = Upstream::start();
    let gate = pg_gate(&up.url, &pg)
        .set_toml(
            "routes",
            r#"[
  { name = "status", path_prefixes = ["/hooks/"], delivery = "store" },
  { name = "direct", path_prefixes = ["/direct/"] },
]"#,
        )
        .start_unready()
        .await;
    let (status, body) = admin::get(gate.admin(), "/readyz").await.expect("readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("store"), "{body}");
    assert_eq!(gate.post("/direct/a", "{}", &[]).await.status, 200);
    gate.post("/hooks/early", "{}", &[])
        .await
        .assert_error(503, "store_unavailable");
    assert!(
        gate.all_output()
            .contains("the database cannot be used yet"),
        "{}",
        gate.all_output()
    );
    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(15);
    while admin::get(gate.admin(), "/readyz").await.expect("readyz").0 != 200 {
        assert!(Instant::now() < deadline, "/readyz did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = gate.post("/hooks/late", "{}", &[]).await;
    assert_eq!(stored.status, 202, "{:?}", stored.body);
    let id = stored.request_id();
    wait_for(
        "the stored request delivered",
        Duration::from_secs(15),
        || arrivals(&up).contains_key(&id),
    )
    .await;
    assert!(!gate.all_output().contains(PASSWORD));
}

#[tokio::test]
async fn check_verifies_that_the_database_answers_and_never_prints_the_password() {
    let pg = Postgres::start();
    let up = Upstream::start();
    let dir = tempfile::tempdir().expect("dir");
    let text = pg_gate(&up.url, &pg).to_toml();
    let env = |url: String| {
        vec![
            (
                "HOOKGATE_HEADER_SECRET".to_owned(),
                HEADER_SECRET.to_owned(),
            ),
            (
                "HOOKGATE_SIGNING_KEY".to_owned(),
                hookgate::signing_key_b64(),
            ),
            ("HOOKGATE_STORE_URL".to_owned(), url),
        ]
    };
    let run = |vars: Vec<(String, String)>| {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        crate::support::hookgate::check(dir.path(), &text, &vars)
    };
    let ok = run(env(pg.url()));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let wrong = pg.url().replace(PASSWORD, "not-the-pw-77");
    let out = run(env(wrong));
    assert_eq!(out.code, 1);
    eprintln!("check with a wrong password: {}", out.stderr.trim());
    assert!(out.stderr.contains("store.url"), "{}", out.stderr);
    assert!(!out.stderr.contains("not-the-pw-77"), "{}", out.stderr);
    let closed = pg.url().replace(&pg.addr.port().to_string(), "1");
    let out = run(env(closed));
    assert_eq!(out.code, 1);
    eprintln!("check with nothing listening: {}", out.stderr.trim());
    assert!(
        out.stderr.contains("store.url") && out.stderr.contains("127.0.0.1:1"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(PASSWORD), "{}", out.stderr);
}

/// `sslmode=verify-full` with `sslrootcert` (relative to the config's directory): the gate's
/// connections are TLS (rustls), and a root that did not sign the server's certificate fails
/// `check` naming store.url.
#[tokio::test]
async fn verify_full_tls_to_postgres_with_sslrootcert() {
    let pg = Postgres::start_tls();
    let up = Upstream::start();
    let url = |root: &str| {
        format!(
            "postgres://{}:{PASSWORD}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={root}",
            crate::support::postgres::USER,
            pg.addr.port()
        )
    };
    let gate = pg_gate(&up.url, &pg)
        .env("HOOKGATE_STORE_URL", &url("ca.pem"))
        .start()
        .await;
    assert_eq!(gate.post("/hooks/tls", "{}", &[]).await.status, 202);
    gate.expect_metric(
        "hookgate_deliveries_total",
        &[("route", "status"), ("result", "delivered")],
        1.0,
    )
    .await;
    let tls: i64 = pg
        .client()
        .await
        .query_one("SELECT COUNT(*) FROM pg_stat_ssl WHERE ssl", &[])
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(tls >= 1, "no TLS connection from the gate");

    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("other.pem"), &Pki::get().client.cert_pem).expect("write");
    let text = pg_gate(&up.url, &pg).to_toml();
    let other = url("other.pem");
    let env = [
        ("HOOKGATE_HEADER_SECRET", HEADER_SECRET),
        ("HOOKGATE_SIGNING_KEY", &hookgate::signing_key_b64()),
        ("HOOKGATE_STORE_URL", other.as_str()),
    ];
    let out = crate::support::hookgate::check(dir.path(), &text, &env);
    assert_eq!(out.code, 1, "{}", out.stdout);
    eprintln!("check with another root: {}", out.stderr.trim());
    assert!(
        out.stderr.contains("store.url") && out.stderr.contains("certificate"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(PASSWORD), "{}", out.stderr);
}

/// Not a check, a measurement (`cargo test --test it put_latency -- --ignored --nocapture`):
/// 8 clients on keep-alive connections, 150 store requests each, on PostgreSQL and on the
/// embedded store for comparison; prints p50/p99 and requests per second.
#[tokio::test]
#[ignore]
async fn put_latency_on_postgres_and_sqlite() {
    let pg = Postgres::start();
    let up = Upstream::start();
    let dir = tempfile::tempdir().expect("dir");
    let on_pg = pg_gate(&up.url, &pg).start().await;
    measure("postgres", &on_pg).await;
    drop(on_pg);
    let on_sqlite = pg_gate(&up.url, &pg)
        .remove("store.url")
        .set("store.path", dir.path().join("s").display().to_string())
        .start()
        .await;
    measure("sqlite", &on_sqlite).await;
}

async fn measure(name: &str, gate: &Gate) {
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (tls, addr) = (gate.client(), gate.addr);
            tokio::spawn(async move {
                let mut h1 = client::H1::over(tls.connect(addr).await.expect("tls")).await;
                let mut took = Vec::new();
                for i in 0..150 {
                    let t = Instant::now();
                    let reply = h1
                        .send(client::request(
                            "POST",
                            &format!("/hooks/{c}/{i}"),
                            &[(HEADER_NAME, HEADER_SECRET)],
                            format!("{{\"c\":{c},\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(512)),
                        ))
                        .await;
                    assert_eq!(reply.status, 202);
                    took.push(t.elapsed());
                }
                took
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.expect("client"));
    }
    let wall = started.elapsed();
    all.sort();
    eprintln!(
        "{name}: {} puts in {wall:?} = {:.0}/s; p50 {:?} p99 {:?} max {:?}",
        all.len(),
        all.len() as f64 / wall.as_secs_f64(),
        all[all.len() / 2],
        all[all.len() * 99 / 100],
        all[all.len() - 1]
    );
}
