//! SPEC §8 routes against the real binary: each kind of webhook under its own checks and
//! upstream, the order of checks, `route` in metrics and logs, reload, and the proof that no
//! other spelling of a route's path reaches an app's handler under another route's weaker
//! policy — with Flask's and Express's routers deciding which handler a raw target reaches.

use std::time::Duration;

use crate::support::client::{self, RawReply};
use crate::support::tools::RouterUpstream;
use crate::support::*;

const EXPORT_HEADER: &str = "X-Export-Secret";
const EXPORT_SECRET: &str = "export-s3cret-9";

/// The README's recipe for the sender: status webhooks with the WAF header and developerPayload,
/// export artifacts with their own header, no payload, a larger body and (optionally) their own
/// upstream.
fn recipe(status_up: &str, export_up: &str) -> GateConfig {
    GateConfig::new(status_up)
        .remove("request.path_prefixes")
        .set("developer_payload.pointer", "/developerPayload")
        .set_toml(
            "developer_payload.values",
            r#"[{ env = "HOOKGATE_DEVELOPER_PAYLOAD" }]"#,
        )
        .env("EXPORT_SECRET", EXPORT_SECRET)
        .set_toml(
            "routes",
            &format!(
                r#"[
  {{ name = "status", path_prefixes = ["/copyleaks/completed/", "/copyleaks/error/"], methods = ["POST"], max_body = "64KiB" }},
  {{ name = "export", path_prefixes = ["/copyleaks/export/"], methods = ["PUT", "POST"], max_body = "1MiB", developer_payload = false, required_header = {{ name = "{EXPORT_HEADER}", values = [{{ env = "EXPORT_SECRET" }}] }}, upstream = {{ url = "{export_up}" }} }},
]"#
            ),
        )
}

fn raw_request(method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut s = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s
}

async fn send(gate: &Gate, request: &str) -> RawReply {
    let mut tls = gate.client().connect(gate.addr).await.expect("handshake");
    client::raw_exchange(&mut tls, request.as_bytes(), Duration::from_secs(5)).await
}

fn status_body() -> String {
    format!(r#"{{"status":0,"developerPayload":"{DEVELOPER_PAYLOAD}"}}"#)
}

async fn log_of(gate: &Gate, reply: &Reply) -> serde_json::Value {
    let id = reply.request_id();
    gate.expect_log("for the request", |v| {
        v["msg"] == "request" && v["request_id"] == id.as_str()
    })
    .await
}

#[tokio::test]
async fn each_kind_of_webhook_gets_its_own_checks_and_upstream() {
    let status_up = Upstream::start();
    let export_up = Upstream::start();
    let gate = recipe(&status_up.url, &export_up.url).start().await;
    let waf = (HEADER_NAME, HEADER_SECRET);
    let export = (EXPORT_HEADER, EXPORT_SECRET);

    // Admitted where they must be, each to its own upstream.
    let ok = send(
        &gate,
        &raw_request("POST", "/copyleaks/completed/42", &[waf], &status_body()),
    )
    .await;
    assert_eq!(ok.expect_response().status, 200);
    assert_eq!(log_of(&gate, ok.expect_response()).await["route"], "status");
    let artifact = "%PDF-1.7 binary report";
    let ok = send(
        &gate,
        &raw_request(
            "PUT",
            "/copyleaks/export/42/pdf-report",
            &[export],
            artifact,
        ),
    )
    .await;
    assert_eq!(ok.expect_response().status, 200);
    assert_eq!(log_of(&gate, ok.expect_response()).await["route"], "export");
    assert_eq!(status_up.single().target, "/copyleaks/completed/42");
    let seen = export_up.single();
    assert_eq!(
        (&seen.target[..], &seen.body[..]),
        ("/copyleaks/export/42/pdf-report", artifact.as_bytes())
    );
    assert!(
        seen.headers.get(EXPORT_HEADER).is_none(),
        "the route's header is stripped"
    );

    // Refused where they must be, in SPEC §8 order, each under its route.
    let cases: Vec<(String, u16, &str, &str, &str)> = vec![
        (
            raw_request("POST", "/elsewhere", &[waf], "{}"),
            404,
            "none",
            "denied",
            "path",
        ),
        (
            raw_request("PUT", "/copyleaks/completed/42", &[waf], &status_body()),
            405,
            "status",
            "denied",
            "method",
        ),
        (
            raw_request("POST", "/copyleaks/completed/42", &[export], &status_body()),
            403,
            "status",
            "denied",
            "header",
        ),
        (
            raw_request(
                "POST",
                "/copyleaks/completed/42",
                &[waf],
                &"x".repeat(70_000),
            ),
            413,
            "status",
            "denied",
            "body_too_large",
        ),
        (
            raw_request("POST", "/copyleaks/error/42", &[waf], r#"{"status":1}"#),
            403,
            "status",
            "denied",
            "developer_payload",
        ),
        // The export route does not take the status route's header, and wants its own.
        (
            raw_request("PUT", "/copyleaks/export/42/json", &[waf], "{}"),
            403,
            "export",
            "denied",
            "header",
        ),
        (
            raw_request("DELETE", "/copyleaks/export/42/json", &[export], ""),
            405,
            "export",
            "denied",
            "method",
        ),
        (
            raw_request("POST", "/copyleaks/../copyleaks/export/1", &[export], ""),
            400,
            "none",
            "error",
            "bad_request",
        ),
    ];
    for (request, status, route, outcome, reason) in &cases {
        let reply = send(&gate, request).await;
        let resp = reply.expect_response();
        assert_eq!(resp.status.as_u16(), *status, "{request:.60}");
        let log = log_of(&gate, resp).await;
        assert_eq!(
            (&log["route"], &log["reason"]),
            (&(*route).into(), &(*reason).into()),
            "{request:.60}"
        );
        gate.expect_metric(
            "hookgate_requests_total",
            &[("route", route), ("outcome", outcome), ("reason", reason)],
            1.0,
        )
        .await;
        if *status == 405 {
            let allow = resp.headers["allow"].to_str().expect("ascii");
            assert_eq!(
                allow,
                if *route == "status" {
                    "POST"
                } else {
                    "PUT, POST"
                }
            );
        }
    }
    assert_eq!(status_up.requests().len(), 1);
    assert_eq!(export_up.requests().len(), 1);
    gate.expect_metric(
        "hookgate_requests_total",
        &[
            ("route", "status"),
            ("outcome", "forwarded"),
            ("reason", "ok"),
        ],
        1.0,
    )
    .await;
    // Every route's series exists, the ones nothing happened to at 0.
    gate.expect_metric(
        "hookgate_requests_total",
        &[
            ("route", "export"),
            ("outcome", "error"),
            ("reason", "upstream_timeout"),
        ],
        0.0,
    )
    .await;
}

#[tokio::test]
async fn other_spellings_of_a_status_path_stay_under_the_status_policy() {
    let status_up = Upstream::start();
    let export_up = Upstream::start();
    let gate = recipe(&status_up.url, &export_up.url).start().await;
    // An export-only sender (another customer of the same certificate) spells a status path
    // so that a weaker route might take it: every spelling is still the status route.
    for target in [
        "/copyleaks/%63ompleted/42",
        "/COPYLEAKS/completed/42",
        "/Copyleaks/Completed/42",
        "//copyleaks/completed/42",
        "/copyleaks//completed/42",
        "/copyleaks;x/completed/42",
        "/copyleaks/completed;jsessionid=1/42",
        "/%63%6F%70%79leaks/completed/42",
    ] {
        let request = raw_request(
            "POST",
            target,
            &[(EXPORT_HEADER, EXPORT_SECRET), (HEADER_NAME, HEADER_SECRET)],
            r#"{"status":0}"#,
        );
        let reply = send(&gate, &request).await;
        let resp = reply.expect_response();
        resp.assert_error(403, "forbidden");
        let log = log_of(&gate, resp).await;
        assert_eq!(
            (&log["route"], &log["reason"]),
            (&"status".into(), &"developer_payload".into()),
            "{target}"
        );
        // With the status secrets the same spelling is admitted, forwarded as received.
        let reply = send(
            &gate,
            &raw_request(
                "POST",
                target,
                &[(HEADER_NAME, HEADER_SECRET)],
                &status_body(),
            ),
        )
        .await;
        assert_eq!(reply.expect_response().status, 200, "{target}");
        assert_eq!(
            status_up.requests().last().expect("forwarded").target,
            target
        );
    }
    export_up.assert_untouched();
}

/// Raw targets an attacker might try to reach the app's status handler through the export
/// route (or no route): case, percent-encoding, slashes, `;` parameters, dot segments, encoded
/// separators. Each is a spelling of `/copyleaks/completed/42` or of an export path.
fn spellings() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let base = "/copyleaks/completed/42";
    out.push(base.into());
    out.push("/copyleaks/export/42".into());
    // Every letter of the status path percent-encoded, upper and lower hex.
    for (i, c) in base
        .char_indices()
        .filter(|(_, c)| c.is_ascii_alphanumeric())
    {
        for hex in [format!("%{:02X}", c as u8), format!("%{:02x}", c as u8)] {
            out.push(format!("{}{hex}{}", &base[..i], &base[i + 1..]));
        }
        out.push(format!(
            "{}{}{}",
            &base[..i],
            c.to_ascii_uppercase(),
            &base[i + 1..]
        ));
    }
    for t in [
        "//copyleaks/completed/42",
        "/copyleaks//completed/42",
        "/copyleaks/completed//42",
        "/copyleaks;/completed/42",
        "/copyleaks;a=b/completed/42",
        "/copyleaks/completed;x/42",
        "/copyleaks/export/../completed/42",
        "/copyleaks/export/%2e%2e/completed/42",
        "/copyleaks/export/..;/completed/42",
        "/copyleaks/export%2f..%2fcompleted/42",
        "/copyleaks/export/%2E%2E%2Fcompleted/42",
        "/copyleaks/export\\..\\completed/42",
        "/copyleaks/completed%2f42",
        "/copyleaks%2fcompleted/42",
        "/copyleaks/./completed/42",
        "/copyleaks/export/42/../../completed/42",
        "/copyleaks/export;/completed/42",
        "/copyleaks/export/;/../completed/42",
        "/copyleaks/%65xport/42",
        "/COPYLEAKS/EXPORT/42",
        "/copyleaks/completed/42?x=/copyleaks/export/",
        "/copyleaks/completed/42#/copyleaks/export/",
        "/copyleaks/completed%00/42",
        "/copyleaks/completed%20/42",
        "/copyleaks/completed/42%3b",
        "/copyleaks/completed%3B/42",
        "/copyleaks/complet%C3%A9d/42",
        "/copyleaks/completed/%34%32",
        "/copyleaks/export/completed/42",
        "http://localhost/copyleaks/completed/42",
    ] {
        out.push(t.into());
    }
    out
}

/// For each spelling, sent with the export route's credentials only (no developerPayload): if
/// hookgate admits it, the app's router must not run its status handler. And the same spelling
/// with the status credentials, where hookgate admits it, must not run the export handler.
async fn no_spelling_crosses_policies(app: RouterUpstream, framework: &str) {
    let gate = recipe(&app.url, &app.url).start().await;
    let mut admitted = 0;
    let mut reached = std::collections::BTreeMap::<String, Vec<String>>::new();
    for target in spellings() {
        let as_export = raw_request(
            "PUT",
            &target,
            &[(EXPORT_HEADER, EXPORT_SECRET)],
            r#"{"status":0}"#,
        );
        let reply = send(&gate, &as_export).await;
        let Some(resp) = reply.response.as_ref() else {
            continue; // closed: not admitted
        };
        let handler = match String::from_utf8_lossy(&resp.body) {
            b if b.starts_with("{\"error\"") => format!("hookgate {}", resp.status.as_u16()),
            b => b.into_owned(),
        };
        if resp.status.as_u16() < 300 {
            admitted += 1;
        }
        assert_ne!(
            handler, "status",
            "{framework}: {target} reached the status handler with export credentials (hookgate answered {})",
            resp.status
        );
        reached.entry(handler).or_default().push(target.clone());

        let as_status = raw_request(
            "POST",
            &target,
            &[(HEADER_NAME, HEADER_SECRET)],
            &status_body(),
        );
        let reply = send(&gate, &as_status).await;
        if let Some(resp) = reply.response.as_ref() {
            assert_ne!(
                String::from_utf8_lossy(&resp.body),
                "export",
                "{framework}: {target} reached the export handler with status credentials"
            );
        }
    }
    // The proof is not vacuous: the export route does reach the app, and so does status.
    assert!(
        reached
            .get("export")
            .is_some_and(|t| t.contains(&"/copyleaks/export/42".to_string())),
        "{framework}: {reached:?}"
    );
    assert!(admitted >= 1, "{framework}: nothing admitted: {reached:?}");
    let ok = send(
        &gate,
        &raw_request(
            "POST",
            "/copyleaks/completed/42",
            &[(HEADER_NAME, HEADER_SECRET)],
            &status_body(),
        ),
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&ok.expect_response().body),
        "status",
        "{framework}"
    );
    println!("{framework}: handlers reached with export credentials: {reached:?}");
}

#[tokio::test]
async fn no_spelling_reaches_flasks_status_handler_under_the_export_policy() {
    no_spelling_crosses_policies(RouterUpstream::python(), "Flask").await;
}

#[tokio::test]
async fn no_spelling_reaches_express_status_handler_under_the_export_policy() {
    no_spelling_crosses_policies(RouterUpstream::node(), "Express").await;
}

#[tokio::test]
async fn a_reload_adds_changes_and_removes_routes() {
    let up = Upstream::start();
    let gate = recipe(&up.url, &up.url).start().await;
    let waf = (HEADER_NAME, HEADER_SECRET);
    let indexed = raw_request("POST", "/copyleaks/indexed/7", &[waf], &status_body());
    assert_eq!(send(&gate, &indexed).await.expect_response().status, 404);
    // Add `indexed`, drop `export`, let `status` take PUT too.
    let text = std::fs::read_to_string(gate.config_path()).expect("config");
    let mut table: toml::Table = text.parse().expect("config is TOML");
    table.remove("routes");
    // The sections, then the new routes (a TOML file's tables may come in any order).
    let head = toml::to_string(&table).expect("serialize");
    let routes = r#"
[[routes]]
name = "status"
path_prefixes = ["/copyleaks/completed/", "/copyleaks/error/", "/copyleaks/indexed/"]
methods = ["POST", "PUT"]
"#;
    std::fs::write(gate.config_path(), format!("{head}{routes}")).expect("write");
    gate.signal("HUP");
    let reloaded = gate
        .expect_log("the reload", |v| {
            v["msg"].as_str().is_some_and(|m| m.contains("reload"))
        })
        .await;
    assert_eq!(reloaded["msg"], "config reloaded", "{reloaded}");
    let reply = send(&gate, &indexed).await;
    assert_eq!(reply.expect_response().status, 200);
    assert_eq!(
        log_of(&gate, reply.expect_response()).await["route"],
        "status"
    );
    let put = raw_request("PUT", "/copyleaks/completed/7", &[waf], &status_body());
    assert_eq!(send(&gate, &put).await.expect_response().status, 200);
    let export = raw_request(
        "PUT",
        "/copyleaks/export/7",
        &[(EXPORT_HEADER, EXPORT_SECRET)],
        "x",
    );
    let reply = send(&gate, &export).await;
    assert_eq!(reply.expect_response().status, 404);
    assert_eq!(
        log_of(&gate, reply.expect_response()).await["route"],
        "none"
    );
    // A broken route keeps the working ones.
    std::fs::write(
        gate.config_path(),
        format!("{head}{routes}\n[[routes]]\nname = \"dup\"\npath_prefixes = [\"/COPYLEAKS/Completed/\"]\n"),
    )
    .expect("write");
    gate.signal("HUP");
    gate.expect_metric(
        "hookgate_config_reloads_total",
        &[("result", "failure")],
        1.0,
    )
    .await;
    let log = gate
        .expect_log("the failed reload", |v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("reload failed"))
        })
        .await;
    let error = log["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("routes[1].path_prefixes") && error.contains("\"status\""),
        "{error}"
    );
    assert_eq!(send(&gate, &indexed).await.expect_response().status, 200);
}

#[test]
fn check_prints_each_route_and_warns_about_one_without_a_secret() {
    let open = r#"
[[routes]]
name = "open"
path_prefixes = ["/open/"]
required_header = false
developer_payload = false
"#;
    let text = format!(
        "{}{open}",
        recipe("http://127.0.0.1:9", "http://127.0.0.1:10").to_toml()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("HOOKGATE_HEADER_SECRET", HEADER_SECRET),
        ("HOOKGATE_DEVELOPER_PAYLOAD", DEVELOPER_PAYLOAD),
        ("HOOKGATE_SIGNING_KEY", &hookgate::signing_key_b64()),
        ("EXPORT_SECRET", EXPORT_SECRET),
    ];
    let out = crate::support::hookgate::check(dir.path(), &text, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for line in [
        r#"route status: paths ["/copyleaks/completed/", "/copyleaks/error/"] (the longest prefix of the normalized path), methods POST, max body 65536 bytes"#,
        "  required_header: x-webhook-secret (1 accepted values), stripped",
        "  developer_payload: /developerPayload (1 accepted values) on the whole route",
        r#"route export: paths ["/copyleaks/export/"] (the longest prefix of the normalized path), methods PUT, POST, max body 1048576 bytes"#,
        "  required_header: x-export-secret (1 accepted values), stripped",
        "  developer_payload: not checked",
        "  delivery: forward (the upstream's answer is relayed)",
        "http://127.0.0.1:10 (connect timeout 1s, response timeout 5s, host Preserve), its own connection pool",
        "route open: paths",
    ] {
        assert!(out.stdout.contains(line), "missing {line:?} in:\n{}", out.stdout);
    }
    assert!(
        out.stderr.contains(r#"warning: route "open" has neither required_header nor developer_payload: any customer of the sender can deliver to it"#),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(r#"route "status""#), "{}", out.stderr);
    assert!(!out.stdout.contains(EXPORT_SECRET) && !out.stderr.contains(EXPORT_SECRET));
}
