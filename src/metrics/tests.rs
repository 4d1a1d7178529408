use super::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// The value of the sample line `series` (name plus exact label set) in a rendered body.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("sample value is a number"))
}

#[test]
fn fresh_render_has_every_spec_family_with_its_type() {
    let body = Metrics::new("1.2.3").render();
    for (name, kind) in [
        ("hookgate_connections_total", "counter"),
        ("hookgate_tls_handshakes_total", "counter"),
        ("hookgate_requests_total", "counter"),
        ("hookgate_request_duration_seconds", "histogram"),
        ("hookgate_upstream_duration_seconds", "histogram"),
        ("hookgate_open_connections", "gauge"),
        ("hookgate_allowlist_entries", "gauge"),
        ("hookgate_allowlist_refresh_total", "counter"),
        ("hookgate_allowlist_last_success_timestamp_seconds", "gauge"),
        ("hookgate_config_reloads_total", "counter"),
        ("hookgate_server_cert_not_after_timestamp_seconds", "gauge"),
        ("hookgate_build_info", "gauge"),
    ] {
        assert!(
            body.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} {kind} missing:\n{body}"
        );
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
    }
    assert_eq!(
        sample(&body, r#"hookgate_build_info{version="1.2.3"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&body, "hookgate_open_connections"), Some(0.0));
    assert_eq!(
        sample(&body, "hookgate_upstream_duration_seconds_count"),
        Some(0.0)
    );
    assert!(
        body.contains("\nprocess_resident_memory_bytes "),
        "process metrics missing"
    );
}

#[test]
fn fresh_render_has_every_label_value_and_valid_pair_at_zero() {
    let body = Metrics::new("t").render();
    let mut series = Vec::new();
    for v in ConnectionResult::ALL {
        series.push(format!(
            r#"hookgate_connections_total{{result="{}"}}"#,
            v.label()
        ));
    }
    for v in HandshakeResult::ALL {
        series.push(format!(
            r#"hookgate_tls_handshakes_total{{result="{}"}}"#,
            v.label()
        ));
    }
    for (outcome, reasons) in [
        ("forwarded", &["ok"][..]),
        (
            "denied",
            &[
                "method",
                "path",
                "header",
                "body_too_large",
                "developer_payload",
            ],
        ),
        (
            "error",
            &[
                "bad_request",
                "timeout",
                "upstream_unavailable",
                "upstream_timeout",
                "shutdown",
            ],
        ),
    ] {
        series.push(format!(
            r#"hookgate_request_duration_seconds_count{{outcome="{outcome}",route="none"}}"#
        ));
        for reason in reasons {
            series.push(format!(
                r#"hookgate_requests_total{{outcome="{outcome}",reason="{reason}",route="none"}}"#
            ));
        }
    }
    for list in ["thumbprints", "source_ips"] {
        series.push(format!(r#"hookgate_allowlist_entries{{list="{list}"}}"#));
        series.push(format!(
            r#"hookgate_allowlist_last_success_timestamp_seconds{{list="{list}"}}"#
        ));
        for result in ["success", "failure"] {
            series.push(format!(
                r#"hookgate_allowlist_refresh_total{{list="{list}",result="{result}"}}"#
            ));
        }
    }
    for result in ["success", "failure"] {
        series.push(format!(
            r#"hookgate_config_reloads_total{{result="{result}"}}"#
        ));
    }
    series.push("hookgate_server_cert_not_after_timestamp_seconds".into());
    for s in &series {
        assert_eq!(
            sample(&body, s),
            Some(0.0),
            "{s} not present at 0 in:\n{body}"
        );
    }
    // Exactly the valid pairs: no invalid (outcome, reason) combination is exported.
    let pairs = body
        .lines()
        .filter(|l| l.starts_with("hookgate_requests_total{"))
        .count();
    assert_eq!(pairs, 16);
}

#[test]
fn reason_outcome_matches_the_spec_pairs() {
    let pairs: Vec<_> = Reason::ALL
        .iter()
        .map(|r| (r.outcome().label(), r.label()))
        .collect();
    assert_eq!(pairs[0], ("forwarded", "ok"));
    assert_eq!(pairs.iter().filter(|(o, _)| *o == "denied").count(), 5);
    assert_eq!(Reason::UpstreamTimeout.outcome(), Outcome::Error);
    assert_eq!(Reason::BadRequest.outcome(), Outcome::Error);
    // SPEC §11's two reasons.
    assert_eq!(Reason::UriTooLong.outcome().label(), "error");
    assert_eq!(Reason::UriTooLong.label(), "uri_too_long");
    assert_eq!(Reason::HeaderTooLarge.label(), "header_too_large");
    assert_eq!(Reason::DeveloperPayload.outcome(), Outcome::Denied);
}

#[test]
fn all_arrays_are_in_discriminant_order() {
    assert!(Reason::ALL
        .iter()
        .enumerate()
        .all(|(i, v)| *v as usize == i));
    assert!(HandshakeResult::ALL
        .iter()
        .enumerate()
        .all(|(i, v)| *v as usize == i));
    assert!(ConnectionResult::ALL
        .iter()
        .enumerate()
        .all(|(i, v)| *v as usize == i));
}

#[test]
fn recording_moves_exactly_the_matching_series() {
    let m = Metrics::new("t");
    m.connection(ConnectionResult::IpDenied);
    m.handshake(HandshakeResult::ThumbprintDenied);
    m.handshake(HandshakeResult::ThumbprintDenied);
    let route = m.route("default");
    route.request(Reason::Header, Duration::from_millis(3));
    route.request(Reason::Ok, Duration::from_millis(20));
    m.upstream_duration(Duration::from_millis(15));
    m.set_allowlist_entries(ListKind::SourceIps, 42);
    m.allowlist_refresh(ListKind::Thumbprints, RefreshResult::Failure);
    m.set_allowlist_last_success(ListKind::Thumbprints, 1_700_000_000.5);
    m.config_reload(true);
    m.set_server_cert_not_after(1_900_000_000);
    let body = m.render();
    let checks = [
        (r#"hookgate_connections_total{result="ip_denied"}"#, 1.0),
        (r#"hookgate_connections_total{result="accepted"}"#, 0.0),
        (
            r#"hookgate_tls_handshakes_total{result="thumbprint_denied"}"#,
            2.0,
        ),
        (
            r#"hookgate_requests_total{outcome="denied",reason="header",route="default"}"#,
            1.0,
        ),
        (
            r#"hookgate_requests_total{outcome="forwarded",reason="ok",route="default"}"#,
            1.0,
        ),
        (
            r#"hookgate_requests_total{outcome="denied",reason="path",route="default"}"#,
            0.0,
        ),
        (
            r#"hookgate_request_duration_seconds_bucket{outcome="denied",route="default",le="0.0025"}"#,
            0.0,
        ),
        (
            r#"hookgate_request_duration_seconds_bucket{outcome="denied",route="default",le="0.005"}"#,
            1.0,
        ),
        (
            r#"hookgate_request_duration_seconds_count{outcome="forwarded",route="default"}"#,
            1.0,
        ),
        (
            r#"hookgate_request_duration_seconds_count{outcome="error",route="default"}"#,
            0.0,
        ),
        ("hookgate_upstream_duration_seconds_count", 1.0),
        (
            r#"hookgate_upstream_duration_seconds_bucket{le="+Inf"}"#,
            1.0,
        ),
        (r#"hookgate_allowlist_entries{list="source_ips"}"#, 42.0),
        (
            r#"hookgate_allowlist_refresh_total{list="thumbprints",result="failure"}"#,
            1.0,
        ),
        (
            r#"hookgate_allowlist_refresh_total{list="thumbprints",result="success"}"#,
            0.0,
        ),
        (
            r#"hookgate_allowlist_last_success_timestamp_seconds{list="thumbprints"}"#,
            1_700_000_000.5,
        ),
        (r#"hookgate_config_reloads_total{result="success"}"#, 1.0),
        (
            "hookgate_server_cert_not_after_timestamp_seconds",
            1_900_000_000.0,
        ),
    ];
    for (series, want) in checks {
        assert_eq!(sample(&body, series), Some(want), "{series} in:\n{body}");
    }
}

#[test]
fn open_connection_guard_decrements_on_drop() {
    let m = Metrics::new("t");
    let a = m.open_connection();
    let b = m.open_connection();
    assert_eq!(sample(&m.render(), "hookgate_open_connections"), Some(2.0));
    drop(a);
    assert_eq!(sample(&m.render(), "hookgate_open_connections"), Some(1.0));
    drop(b);
    assert_eq!(sample(&m.render(), "hookgate_open_connections"), Some(0.0));
}

#[test]
fn promtool_accepts_a_populated_render() {
    let m = Metrics::new("0.1.0");
    m.route("default")
        .request(Reason::Ok, Duration::from_micros(800));
    m.unrouted()
        .request(Reason::UpstreamTimeout, Duration::from_secs(31));
    m.upstream_duration(Duration::from_millis(2));
    m.connection(ConnectionResult::Accepted);
    m.handshake(HandshakeResult::Ok);
    m.set_allowlist_last_success(ListKind::SourceIps, 1_700_000_000.0);
    let _open = m.open_connection();
    let body = m.render();

    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `promtool` ({e}); install it with \
                 `apt-get install -y prometheus` (Debian) or put promtool on PATH"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- body ---\n{body}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

#[test]
fn enums_declared_by_decision_modules_list_their_values_in_order() {
    // `ALL[v as usize]` indexes the arrays of children, so the label list must keep the order.
    for (i, v) in RefreshResult::ALL.iter().enumerate() {
        assert_eq!(*v as usize, i, "{v:?}");
    }
    for (i, v) in HandshakeResult::ALL.iter().enumerate() {
        assert_eq!(*v as usize, i, "{v:?}");
    }
    for (i, v) in Outcome::ALL.iter().enumerate() {
        assert_eq!(*v as usize, i, "{v:?}");
    }
    for (i, v) in Reason::ALL.iter().enumerate() {
        assert_eq!(*v as usize, i, "{v:?}");
    }
}
