//! SPEC §5: every metric family and label value from start-up, a live scrape `promtool` accepts,
//! `/healthz`, and `/readyz` with its reason when a configured allow list is empty.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::admin::{self as scrape, Metrics};
use crate::support::tools::require_tool;
use crate::support::*;

const OUTCOMES: [&str; 4] = ["forwarded", "denied", "error", "stored"];

/// Every `(outcome, reason)` pair SPEC §5 says can occur.
const REQUEST_PAIRS: [(&str, &str); 14] = [
    ("forwarded", "ok"),
    ("denied", "method"),
    ("denied", "path"),
    ("denied", "header"),
    ("denied", "body_too_large"),
    ("denied", "developer_payload"),
    ("error", "bad_request"),
    ("error", "timeout"),
    ("error", "upstream_unavailable"),
    ("error", "upstream_timeout"),
    ("error", "shutdown"),
    ("stored", "ok"),
    ("stored", "duplicate"),
    ("error", "store_unavailable"),
];

fn assert_type(m: &Metrics, family: &str, kind: &str) {
    let line = format!("# TYPE {family} {kind}");
    assert!(
        m.0.lines().any(|l| l == line),
        "missing `{line}`:\n{}",
        m.family(family)
    );
}

fn assert_sample(m: &Metrics, name: &str, labels: &[(&str, &str)], want: f64) {
    assert_eq!(
        m.value(name, labels),
        Some(want),
        "{name}{labels:?}:\n{}",
        m.family(name)
    );
}

#[tokio::test]
async fn exports_every_spec_family_and_label_value_at_zero_from_start_up() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let m = gate.metrics().await;

    assert_type(&m, "hookgate_connections_total", "counter");
    for result in ["accepted", "ip_denied", "proxy_protocol_error"] {
        assert_sample(&m, "hookgate_connections_total", &[("result", result)], 0.0);
    }
    assert_type(&m, "hookgate_tls_handshakes_total", "counter");
    for result in [
        "ok",
        "no_client_cert",
        "thumbprint_denied",
        "chain_invalid",
        "cert_expired",
        "timeout",
        "error",
    ] {
        assert_sample(
            &m,
            "hookgate_tls_handshakes_total",
            &[("result", result)],
            0.0,
        );
    }
    assert_type(&m, "hookgate_requests_total", "counter");
    // SPEC §8: every route (`default` without [[routes]]) and `none`, every pair, at 0.
    for route in ["default", "none"] {
        for (outcome, reason) in REQUEST_PAIRS {
            assert_sample(
                &m,
                "hookgate_requests_total",
                &[("route", route), ("outcome", outcome), ("reason", reason)],
                0.0,
            );
        }
    }
    assert_type(&m, "hookgate_request_duration_seconds", "histogram");
    for route in ["default", "none"] {
        for outcome in OUTCOMES {
            let o = [("route", route), ("outcome", outcome)];
            assert_sample(&m, "hookgate_request_duration_seconds_count", &o, 0.0);
            assert_sample(&m, "hookgate_request_duration_seconds_sum", &o, 0.0);
            // Buckets from sub-millisecond local forwards up to the 30 s order of timeouts.
            for le in ["0.0005", "30", "+Inf"] {
                assert_sample(
                    &m,
                    "hookgate_request_duration_seconds_bucket",
                    &[("route", route), ("outcome", outcome), ("le", le)],
                    0.0,
                );
            }
        }
    }
    assert_type(&m, "hookgate_upstream_duration_seconds", "histogram");
    assert_sample(&m, "hookgate_upstream_duration_seconds_count", &[], 0.0);
    for le in ["0.0005", "30", "+Inf"] {
        assert_sample(
            &m,
            "hookgate_upstream_duration_seconds_bucket",
            &[("le", le)],
            0.0,
        );
    }
    assert_type(&m, "hookgate_open_connections", "gauge");
    assert_sample(&m, "hookgate_open_connections", &[], 0.0);
    assert_type(&m, "hookgate_allowlist_entries", "gauge");
    // The default test config pins one thumbprint and allows one range.
    for list in ["thumbprints", "source_ips"] {
        assert_sample(&m, "hookgate_allowlist_entries", &[("list", list)], 1.0);
        for result in ["success", "failure"] {
            assert_sample(
                &m,
                "hookgate_allowlist_refresh_total",
                &[("list", list), ("result", result)],
                0.0,
            );
        }
        assert_sample(
            &m,
            "hookgate_allowlist_last_success_timestamp_seconds",
            &[("list", list)],
            0.0,
        );
    }
    assert_type(&m, "hookgate_allowlist_refresh_total", "counter");
    assert_type(
        &m,
        "hookgate_allowlist_last_success_timestamp_seconds",
        "gauge",
    );
    assert_type(&m, "hookgate_config_reloads_total", "counter");
    for result in ["success", "failure"] {
        assert_sample(
            &m,
            "hookgate_config_reloads_total",
            &[("result", result)],
            0.0,
        );
    }
    assert_type(
        &m,
        "hookgate_server_cert_not_after_timestamp_seconds",
        "gauge",
    );
    let not_after = m
        .value("hookgate_server_cert_not_after_timestamp_seconds", &[])
        .expect("server cert notAfter exported");
    assert!(
        not_after > 2.0e9,
        "notAfter of the test server cert: {not_after}"
    );
    assert_type(&m, "hookgate_build_info", "gauge");
    assert_sample(
        &m,
        "hookgate_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    assert!(
        m.0.lines().any(|l| l.starts_with("process_")),
        "no process_* metrics"
    );
}

#[tokio::test]
async fn promtool_accepts_a_live_scrape_taken_after_traffic() {
    require_tool("promtool", "apt-get install -y prometheus");
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    assert_eq!(gate.post("/hooks/a", "{}", &[]).await.status, 200);
    assert_eq!(gate.post("/hooks/b", "{}", &[("x", "y")]).await.status, 200);
    let denied = gate
        .h1()
        .await
        .send(request("POST", "/hooks/c", &[], "{}"))
        .await;
    assert_eq!(denied.status, 403);
    let _ = TlsClient::new(Some(&Pki::get().other_client))
        .expect_alert(gate.addr)
        .await;
    gate.expect_requests("forwarded", "ok", 2.0).await;
    gate.expect_requests("denied", "header", 1.0).await;
    let scrape = gate.metrics().await;
    assert_sample(
        &scrape,
        "hookgate_request_duration_seconds_count",
        &[("outcome", "forwarded")],
        2.0,
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(scrape.0.as_bytes())
        .expect("feed the scrape to promtool");
    let out = promtool.wait_with_output().expect("promtool finished");
    assert!(
        out.status.success(),
        "promtool check metrics rejected the scrape ({}):\n{}{}\n--- scrape ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        scrape.0
    );
}

#[tokio::test]
async fn healthz_and_readyz_answer_200_while_serving() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let (status, _) = scrape::get(gate.admin(), "/healthz")
        .await
        .expect("healthz");
    assert_eq!(status, 200);
    let (status, body) = scrape::get(gate.admin(), "/readyz").await.expect("readyz");
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn readyz_is_503_with_the_reason_while_a_configured_list_is_empty() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("thumbprints.allow", Vec::<String>::new())
        .set("thumbprints.files", vec!["pins.txt"])
        .file("pins.txt", "# no sender certificate pinned yet\n")
        .start_unready()
        .await;
    let (status, body) = scrape::get(gate.admin(), "/readyz").await.expect("readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("thumbprints"),
        "the reason names the list: {body}"
    );
    let (status, _) = scrape::get(gate.admin(), "/healthz")
        .await
        .expect("healthz");
    assert_eq!(status, 200, "alive although not ready");
    gate.expect_metric(
        "hookgate_allowlist_entries",
        &[("list", "thumbprints")],
        0.0,
    )
    .await;
    // Fail closed: the otherwise pinned client is refused.
    let _ = gate.client().expect_alert(gate.addr).await;
    up.assert_untouched();
}

#[test]
fn the_readme_alert_rules_pass_promtool_check_rules() {
    require_tool("promtool", "apt-get install -y prometheus");
    let readme = std::fs::read_to_string(crate::support::tools::repo_root().join("README.md"))
        .expect("read README.md");
    let alerts = readme
        .split_once("### Alerts")
        .and_then(|(_, rest)| rest.split_once("```yaml\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("README has a ```yaml block under ### Alerts");
    for family in [
        "hookgate_tls_handshakes_total",
        "hookgate_requests_total",
        "hookgate_allowlist_last_success_timestamp_seconds",
        "hookgate_server_cert_not_after_timestamp_seconds",
        "hookgate_config_reloads_total",
    ] {
        assert!(alerts.contains(family), "no alert on {family}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("hookgate-alerts.yml");
    std::fs::write(&rules, alerts).expect("write rules");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules rejected the README alerts:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn open_connections_counts_the_tls_connections_open_now() {
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    let mut first = gate.h1().await;
    let reply = first
        .send(request("POST", "/", &[(HEADER_NAME, HEADER_SECRET)], "{}"))
        .await;
    assert_eq!(reply.status, 200);
    let second = gate.h1().await;
    gate.expect_metric("hookgate_open_connections", &[], 2.0)
        .await;
    drop(first);
    drop(second);
    gate.expect_metric("hookgate_open_connections", &[], 0.0)
        .await;
}
