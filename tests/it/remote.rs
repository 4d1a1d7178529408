//! Remote allow lists (issue 5, SPEC §2 `url`/`url_ca`/`refresh`/`cache`): a local HTTPS list
//! endpoint with its own CA serves every documented response shape, then fails in every way
//! (HTTP error, no valid entry, hang, untrusted certificate) while the list in force stays; the
//! cache survives a restart during an outage; ETag revalidation; `url_headers` secrets; `check`.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::AlertDescription;
use serde_json::json;

use crate::support::hookgate::check;
use crate::support::list_server::{ListReply, ListServer};
use crate::support::pki::Identity;
use crate::support::*;

const REFRESH_TOTAL: &str = "hookgate_allowlist_refresh_total";
const ENTRIES: &str = "hookgate_allowlist_entries";
const LAST_SUCCESS: &str = "hookgate_allowlist_last_success_timestamp_seconds";

/// A gate whose `[section]` has no static entry: only `url` (trusting the list server's CA via
/// `url_ca`), refreshed every second.
fn url_only(up: &Upstream, server: &ListServer, section: &str) -> GateConfig {
    GateConfig::new(&up.url)
        .remove(&format!("{section}.allow"))
        .set(&format!("{section}.url"), server.url("/v2/security/list"))
        .set(&format!("{section}.url_ca"), "list-ca.pem")
        .set(&format!("{section}.refresh"), "1s")
        .file("list-ca.pem", ListServer::ca_pem())
}

/// Polls `probe` every 50 ms until it returns true; panics naming `what` after `within`.
async fn eventually<F, Fut>(what: &str, within: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !probe().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric(gate: &Gate, name: &str, labels: &[(&str, &str)]) -> f64 {
    let m = gate.metrics().await;
    m.value(name, labels)
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}:\n{}", m.family(name)))
}

async fn refreshes(gate: &Gate, list: &str, result: &str) -> f64 {
    metric(gate, REFRESH_TOTAL, &[("list", list), ("result", result)]).await
}

/// Waits until the `list` gauge shows `n` entries (the gauge is set after the swap).
async fn expect_entries(gate: &Gate, list: &str, n: f64) {
    gate.expect_metric(ENTRIES, &[("list", list)], n).await;
}

/// Waits until `hookgate_allowlist_refresh_total{list, result}` grew by `by` from `from`.
async fn expect_more_refreshes(gate: &Gate, list: &str, result: &str, from: f64, by: f64) {
    eventually(
        &format!("{by} more {result} refreshes of {list} (from {from})"),
        Duration::from_secs(10),
        || async { refreshes(gate, list, result).await >= from + by },
    )
    .await;
}

/// POSTs as `who` on a fresh connection with the required header.
async fn post_as(gate: &Gate, who: &Identity) -> Reply {
    let tls = TlsClient::new(Some(who))
        .connect(gate.addr)
        .await
        .expect("TLS handshake");
    H1::over(tls)
        .await
        .send(request(
            "POST",
            "/hooks/list",
            &[
                (HEADER_NAME, HEADER_SECRET),
                ("content-type", "application/json"),
            ],
            "{}",
        ))
        .await
}

async fn assert_admitted(gate: &Gate, why: &str) {
    let reply = gate.post("/hooks/list", "{}", &[]).await;
    assert_eq!(reply.status, 200, "pinned client admitted {why}");
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// Fake but well-formed SHA-256 thumbprints, to give each response a distinct entry count.
fn filler(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{i:064x}")).collect()
}

#[tokio::test]
async fn thumbprints_fetched_in_every_response_shape_admit_the_pinned_client() {
    let pki = Pki::get();
    let client = pki.client.sha256_hex();
    let server = ListServer::start(ListReply::json(json!([client])));
    let up = Upstream::start();
    let gate = url_only(&up, &server, "thumbprints").start().await;

    // Ready means the first fetch was applied: the url is the only source.
    assert_admitted(&gate, "by a JSON array of strings").await;
    expect_entries(&gate, "thumbprints", 1.0).await;
    assert!(refreshes(&gate, "thumbprints", "success").await >= 1.0);
    assert_eq!(refreshes(&gate, "thumbprints", "failure").await, 0.0);
    let first = metric(&gate, LAST_SUCCESS, &[("list", "thumbprints")]).await;
    assert!(
        (now_secs() - 30.0..=now_secs() + 1.0).contains(&first),
        "last success timestamp {first} is not now"
    );
    // A second refresh a second later moves the counter and the timestamp.
    let successes = refreshes(&gate, "thumbprints", "success").await;
    expect_more_refreshes(&gate, "thumbprints", "success", successes, 1.0).await;
    let second = metric(&gate, LAST_SUCCESS, &[("list", "thumbprints")]).await;
    assert!(second > first, "timestamp moved: {first} -> {second}");

    let sha1_upper_colons = pki
        .client
        .sha1_hex()
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).expect("hex"))
        .collect::<Vec<_>>()
        .join(":");
    let f = filler(3);
    let shapes = [
        (
            "a JSON object holding an array (SHA-1, uppercase, colons)",
            ListReply::json(
                json!({"status": "ok", "data": {"certificates": [sha1_upper_colons, f[0]]}}),
            ),
            2.0,
        ),
        (
            "an array of objects whose string fields hold thumbprints",
            ListReply::json(json!([
                {"thumbprint": client, "name": "current certificate"},
                {"thumbprint": f[0], "validUntil": "2031-01-01"},
                {"sha256": f[1]},
            ])),
            3.0,
        ),
        (
            "plain text, one a line, with comments",
            ListReply::text(&format!(
                "# sender certificates\n{}\n{}  # next\n\n{}\n{}\n",
                client.to_uppercase(),
                f[0],
                f[1],
                f[2]
            )),
            4.0,
        ),
    ];
    for (shape, reply, entries) in shapes {
        server.set(reply);
        expect_entries(&gate, "thumbprints", entries).await;
        assert_admitted(&gate, &format!("by {shape}")).await;
    }

    // The fetched part is replaced, not accumulated: a list without the client locks it out
    // and admits the other certificate instead.
    server.set(ListReply::json(json!([pki.other_client.sha256_hex()])));
    expect_entries(&gate, "thumbprints", 1.0).await;
    assert_eq!(
        TlsClient::new(Some(&pki.client))
            .expect_alert(gate.addr)
            .await,
        AlertDescription::AccessDenied
    );
    assert_eq!(post_as(&gate, &pki.other_client).await.status, 200);
    assert_eq!(refreshes(&gate, "thumbprints", "failure").await, 0.0);
    assert_eq!(up.requests().len(), 5);
    gate.expect_log("for a changed list", |v| {
        v["msg"] == "allow list changed" && v["removed"].as_u64() >= Some(1)
    })
    .await;
}

#[tokio::test]
async fn source_ranges_fetched_from_the_url_decide_before_tls() {
    let server = ListServer::start(ListReply::text("127.0.0.0/8\n"));
    let up = Upstream::start();
    let gate = url_only(&up, &server, "source_ips").start().await;
    assert_admitted(&gate, "from 127.0.0.1 by a text list").await;
    expect_entries(&gate, "source_ips", 1.0).await;
    assert!(metric(&gate, LAST_SUCCESS, &[("list", "source_ips")]).await > 0.0);

    server.set(ListReply::json(
        json!({"ipRanges": {"v4": ["10.0.0.0/8", "192.0.2.0/24"]}}),
    ));
    expect_entries(&gate, "source_ips", 2.0).await;
    let mut tcp = tokio::net::TcpStream::connect(gate.addr)
        .await
        .expect("connect");
    proxy::expect_closed_silently(&mut tcp).await;
    gate.expect_metric(
        "hookgate_connections_total",
        &[("result", "ip_denied")],
        1.0,
    )
    .await;
    gate.expect_log("for the denied connection", |v| {
        v["reason"] == "ip_denied" && v["client_ip"] == "127.0.0.1"
    })
    .await;

    server.set(ListReply::json(json!([
        {"cidr": "127.0.0.0/8", "region": "local"},
        {"cidr": "198.51.100.0/24"},
        {"cidr": "2001:db8::/32"},
    ])));
    expect_entries(&gate, "source_ips", 3.0).await;
    assert_admitted(&gate, "again by an array of objects").await;
    assert_eq!(refreshes(&gate, "source_ips", "failure").await, 0.0);
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test]
async fn failed_refreshes_never_empty_or_shrink_the_list_in_force() {
    let pki = Pki::get();
    let good = json!([pki.client.sha256_hex()]);
    let server = ListServer::start(ListReply::json(good.clone()));
    let up = Upstream::start();
    let gate = url_only(&up, &server, "thumbprints").start().await;
    assert_admitted(&gate, "after the good fetch").await;

    // (what, reply, whether the server presents the certificate url_ca trusts)
    let failures = [
        ("an HTTP 500", ListReply::status(500), true),
        (
            "a 200 error page with no valid entry",
            ListReply::text("<html><body>Service Unavailable</body></html>\n"),
            true,
        ),
        (
            "a JSON body whose entries all fail to parse",
            ListReply::json(json!({"certificates": ["zz", 42, "abc"]})),
            true,
        ),
        (
            "a server certificate url_ca does not trust",
            ListReply::json(good.clone()),
            false,
        ),
    ];
    for (what, reply, trusted) in failures {
        let before = refreshes(&gate, "thumbprints", "failure").await;
        server.set(reply);
        server.use_trusted_cert(trusted);
        // Two failures: the second one surely fetched after the switch.
        expect_more_refreshes(&gate, "thumbprints", "failure", before, 2.0).await;
        assert_admitted(&gate, &format!("after {what}")).await;
        assert_eq!(
            metric(&gate, ENTRIES, &[("list", "thumbprints")]).await,
            1.0,
            "entries after {what}"
        );
    }
    assert!(server.requests().iter().any(|r| r.answered == Some(500)));
    gate.expect_log("for a failed refresh", |v| {
        v["level"] == "warn"
            && v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("keeping the current list"))
    })
    .await;

    // The loop survives all of it: a good list with a new entry is applied again.
    server.use_trusted_cert(true);
    server.set(ListReply::json(json!([
        pki.client.sha256_hex(),
        pki.other_client.sha256_hex()
    ])));
    expect_entries(&gate, "thumbprints", 2.0).await;
    assert_eq!(post_as(&gate, &pki.other_client).await.status, 200);
}

/// The whole-fetch timeout is 30 s (not configurable), so this test takes about 31 s; it runs
/// in parallel with the rest.
#[tokio::test]
async fn a_list_server_that_hangs_past_the_timeout_is_a_failure_that_keeps_the_list() {
    let pki = Pki::get();
    let server = ListServer::start(ListReply::json(json!([pki.client.sha256_hex()])));
    let up = Upstream::start();
    let gate = url_only(&up, &server, "thumbprints").start().await;
    server.set(ListReply::Hang);
    let hung = server.requests().len() + 1;
    server.wait_requests(hung, Duration::from_secs(5)).await;
    let started = Instant::now();
    assert_admitted(&gate, "while the fetch hangs").await;
    eventually(
        "a failed refresh after the 30 s fetch timeout",
        Duration::from_secs(40),
        || async { refreshes(&gate, "thumbprints", "failure").await >= 1.0 },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(25),
        "failure counted only after the timeout, not after {:?}",
        started.elapsed()
    );
    assert_admitted(&gate, "after the timeout").await;
    expect_entries(&gate, "thumbprints", 1.0).await;
    gate.expect_log("for the timeout", |v| {
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("took longer than"))
    })
    .await;
}

#[tokio::test]
async fn the_cache_keeps_admitting_across_a_restart_during_the_senders_outage() {
    let pki = Pki::get();
    let body = json!({"data": [pki.client.sha256_hex()]}).to_string();
    let server = ListServer::start(ListReply::json(serde_json::from_str(&body).expect("json")));
    let up = Upstream::start();
    let keep = tempfile::tempdir().expect("tempdir");
    let cache = keep.path().join("thumbprints.cache");
    let config = |server: &ListServer| {
        url_only(&up, server, "thumbprints")
            .set("thumbprints.cache", cache.to_str().expect("utf-8 path"))
    };

    let first = config(&server).start().await;
    assert_admitted(&first, "before the outage").await;
    eventually(
        "the cache file holds the body",
        Duration::from_secs(5),
        || async { std::fs::read_to_string(&cache).is_ok_and(|c| c == body) },
    )
    .await;
    drop(first);

    // The endpoint accepts but never answers: readiness can only come from the cache, read
    // before the first fetch (which would take 30 s to fail).
    server.set(ListReply::Hang);
    let started = Instant::now();
    let second = config(&server).start().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_admitted(&second, "from the cache while the endpoint hangs").await;
    expect_entries(&second, "thumbprints", 1.0).await;
    assert_eq!(refreshes(&second, "thumbprints", "success").await, 0.0);
    assert_eq!(refreshes(&second, "thumbprints", "failure").await, 0.0);
    second
        .expect_log("for the cache", |v| {
            v["msg"] == "allow list loaded from cache"
        })
        .await;
    drop(second);

    // The endpoint is down (connection refused).
    let url_ca_and_url = config(&server);
    drop(server);
    let third = url_ca_and_url.start().await;
    assert_admitted(&third, "from the cache while the endpoint is down").await;
    eventually("a failed refresh", Duration::from_secs(5), || async {
        refreshes(&third, "thumbprints", "failure").await >= 1.0
    })
    .await;
    assert_admitted(&third, "after the failed refresh").await;
    assert_eq!(
        admin::get(third.admin(), "/readyz")
            .await
            .expect("readyz")
            .0,
        200
    );
    assert_eq!(std::fs::read_to_string(&cache).expect("cache"), body);
}

#[tokio::test]
async fn a_url_only_list_with_no_cache_and_the_server_down_denies_everyone_and_is_not_ready() {
    let server = ListServer::start(ListReply::text("unused\n"));
    let up = Upstream::start();
    let cfg = url_only(&up, &server, "thumbprints");
    drop(server);
    let gate = cfg.start_unready().await;
    let (status, body) = admin::get(gate.admin(), "/readyz").await.expect("readyz");
    assert_eq!(status, 503, "readyz body: {body}");
    assert!(
        body.contains("thumbprints"),
        "readyz names the list: {body}"
    );
    assert_eq!(
        TlsClient::new(Some(&Pki::get().client))
            .expect_alert(gate.addr)
            .await,
        AlertDescription::AccessDenied
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = gate.metrics().await;
        let failed = m.value(
            REFRESH_TOTAL,
            &[("list", "thumbprints"), ("result", "failure")],
        );
        let denied = m.value(
            "hookgate_tls_handshakes_total",
            &[("result", "thumbprint_denied")],
        );
        if failed >= Some(1.0) && denied == Some(1.0) {
            assert_eq!(m.value(ENTRIES, &[("list", "thumbprints")]), Some(0.0));
            assert_eq!(m.value(LAST_SUCCESS, &[("list", "thumbprints")]), Some(0.0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "refresh failure / thumbprint_denied not counted:\n{}\n{}",
            m.family(REFRESH_TOTAL),
            m.family("hookgate_tls_handshakes_total")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        admin::get(gate.admin(), "/readyz").await.expect("readyz").0,
        503,
        "still not ready after the failure"
    );
    up.assert_untouched();
}

#[tokio::test]
async fn an_unchanged_list_is_revalidated_with_if_none_match_and_a_304_counts_as_success() {
    let pki = Pki::get();
    let server = ListServer::start(
        ListReply::json(json!([pki.client.sha256_hex()])).with_etag("\"list-v1\""),
    );
    let up = Upstream::start();
    let gate = url_only(&up, &server, "thumbprints").start().await;
    let seen = server.wait_requests(3, Duration::from_secs(10)).await;
    assert!(
        seen[0].headers.get("if-none-match").is_none(),
        "first fetch is unconditional"
    );
    assert_eq!(seen[0].answered, Some(200));
    for later in &seen[1..] {
        assert_eq!(
            later.headers.get("if-none-match").map(|v| v.as_bytes()),
            Some(&b"\"list-v1\""[..]),
            "revalidation carries the ETag"
        );
        assert_eq!(later.answered, Some(304));
    }
    expect_more_refreshes(&gate, "thumbprints", "success", 0.0, 3.0).await;
    assert_eq!(refreshes(&gate, "thumbprints", "failure").await, 0.0);
    expect_entries(&gate, "thumbprints", 1.0).await;
    assert_admitted(&gate, "after 304s").await;
    gate.expect_log("for the 304", |v| v["msg"] == "allow list not modified")
        .await;
}

#[tokio::test]
async fn url_headers_reach_the_list_server_and_their_values_are_never_printed() {
    const TOKEN: &str = "Bearer list-token-7c3e91d0aa55";
    let pki = Pki::get();
    let server = ListServer::start(ListReply::json(json!([pki.client.sha256_hex()])));
    let up = Upstream::start();
    let cfg = url_only(&up, &server, "thumbprints")
        .set_toml(
            "thumbprints.url_headers",
            r#"{ Authorization = { env = "LIST_TOKEN" } }"#,
        )
        .set("log.level", "debug")
        .env("LIST_TOKEN", TOKEN);
    let text = cfg.to_toml();
    let gate = cfg.start().await;
    let seen = server.wait_requests(2, Duration::from_secs(10)).await;
    for r in &seen {
        assert_eq!(
            r.headers.get("authorization").map(|v| v.as_bytes()),
            Some(TOKEN.as_bytes())
        );
    }
    assert_admitted(&gate, "with a token-protected list").await;
    // Make the fetch fail too: error paths must not print it either.
    server.set(ListReply::status(401));
    let before = refreshes(&gate, "thumbprints", "failure").await;
    expect_more_refreshes(&gate, "thumbprints", "failure", before, 1.0).await;
    let output = gate.all_output();
    assert!(output.contains("allow list"), "refreshes are logged");
    assert!(
        !output.contains("list-token-7c3e91d0aa55"),
        "the url_headers secret leaked into hookgate's output"
    );

    // `check` resolves the secret and prints a summary; it must not print it either.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("list-ca.pem"), ListServer::ca_pem()).expect("write");
    let checked = check(dir.path(), &text, &[("LIST_TOKEN", TOKEN)]);
    let printed = format!("{}{}", checked.stdout, checked.stderr);
    assert_eq!(checked.code, 0, "check: {printed}");
    assert!(
        !printed.contains("list-token-7c3e91d0aa55"),
        "check: {printed}"
    );
}

/// The 1-based line of `key = ...` inside `[section]` of a rendered config.
fn line_of(text: &str, section: &str, key: &str) -> usize {
    let header = format!("[{section}]");
    let start = text
        .lines()
        .position(|l| l.trim() == header)
        .unwrap_or_else(|| panic!("no {header} in:\n{text}"));
    let offset = text
        .lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with('['))
        .position(|l| l.starts_with(&format!("{key} =")))
        .unwrap_or_else(|| panic!("no {key} in {header}:\n{text}"));
    start + 1 + offset + 1
}

#[tokio::test]
async fn check_rejects_a_cleartext_url_and_a_missing_url_ca_naming_file_line_and_key() {
    let up = Upstream::start();
    let cases = [
        (
            GateConfig::new(&up.url).set("thumbprints.url", "http://127.0.0.1:9/list"),
            "thumbprints",
            "url",
            "https://",
        ),
        (
            GateConfig::new(&up.url)
                .set("source_ips.url", "https://127.0.0.1:9/ips")
                .set("source_ips.url_ca", "no-such-ca.pem"),
            "source_ips",
            "url_ca",
            "no-such-ca.pem",
        ),
        (
            // A file that exists but holds no certificate.
            GateConfig::new(&up.url)
                .set("thumbprints.url", "https://127.0.0.1:9/list")
                .set("thumbprints.url_ca", "server.key"),
            "thumbprints",
            "url_ca",
            "no CERTIFICATE",
        ),
    ];
    for (cfg, section, key, says) in cases {
        let text = cfg.to_toml();
        let dir = tempfile::tempdir().expect("tempdir");
        let checked = check(dir.path(), &text, &[]);
        let (code, stderr) = (checked.code, checked.stderr);
        let line = line_of(&text, section, key);
        let want = format!("{}:{line}: {section}.{key}: ", checked.config.display());
        assert_eq!(code, 1, "check must fail for {section}.{key}: {stderr}");
        assert!(
            stderr.contains(&want),
            "error names file:line:key ({want}):\n{stderr}\nconfig:\n{text}"
        );
        assert!(stderr.contains(says), "error says {says:?}: {stderr}");
    }
}
