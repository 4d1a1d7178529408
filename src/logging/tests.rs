use super::*;
use serde_json::Value;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

/// A `MakeWriter` appending to a shared buffer, so a test can read what was logged.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Runs `f` under the JSON subscriber at `level` and returns the output text.
fn capture(level: &str, f: impl FnOnce()) -> String {
    let out = Capture::default();
    let subscriber = json_subscriber(parse_filter(level).unwrap(), out.clone());
    tracing::subscriber::with_default(subscriber, f);
    let bytes = out.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

fn parse_lines(text: &str) -> Vec<serde_json::Map<String, Value>> {
    assert!(text.ends_with('\n'), "last line not terminated: {text:?}");
    text.lines()
        .map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(m)) => m,
            other => panic!("not a JSON object line: {l:?} ({other:?})"),
        })
        .collect()
}

#[test]
fn request_event_is_one_flat_json_object_with_typed_fields() {
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let text = capture("info", || {
        tracing::info!(request_id = "abc", client_ip = %ip, status = 200u16, duration_ms = 1.25, ok = true, delta = -3i64, whole = 2.0, "request");
    });
    let lines = parse_lines(&text);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    // serde_json's Map sorts keys, so check the fixed-key order on the raw line.
    let prefix = text.split("\"request_id\"").next().unwrap();
    assert!(prefix.starts_with("{\"ts\":\""), "{text}");
    assert!(
        prefix.ends_with("\",\"level\":\"info\",\"msg\":\"request\","),
        "{text}"
    );
    assert_eq!(line["level"], "info");
    assert_eq!(line["msg"], "request");
    assert_eq!(line["request_id"], "abc");
    assert_eq!(line["client_ip"], "203.0.113.7");
    assert_eq!(line["status"].as_u64(), Some(200));
    assert_eq!(line["duration_ms"].as_f64(), Some(1.25));
    assert!(line["whole"].is_f64(), "2.0 must stay a float: {text}");
    assert_eq!(line["ok"], true);
    assert_eq!(line["delta"].as_i64(), Some(-3));
    // hookgate's own events carry no `target` (other crates' events do).
    assert!(!line.contains_key("target"), "{text}");
    assert!(!line.contains_key("message"));
}

#[test]
fn timestamp_is_rfc3339_utc_with_milliseconds() {
    let text = capture("info", || tracing::warn!("x"));
    let line = &parse_lines(&text)[0];
    let ts = line["ts"].as_str().unwrap();
    assert_eq!(ts.len(), "2024-01-02T03:04:05.678Z".len(), "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    humantime::parse_rfc3339(ts).expect("parses as RFC 3339");
    assert_eq!(line["level"], "warn");
}

#[test]
fn quotes_newlines_and_control_characters_are_escaped_on_one_line() {
    let nasty = "a\"b\\c\nd\re\tf\u{0}g\u{1b}[31mh\u{7f}é😀";
    let text = capture("info", || {
        tracing::info!(path = nasty, shown = ?nasty, "msg with \"quotes\"\nand {}", nasty);
        tracing::error!(reason = "second");
    });
    assert_eq!(text.matches('\n').count(), 2, "{text:?}");
    let lines = parse_lines(&text);
    assert_eq!(lines[0]["path"], nasty);
    assert_eq!(lines[0]["shown"], format!("{nasty:?}"));
    assert_eq!(lines[0]["msg"], format!("msg with \"quotes\"\nand {nasty}"));
    assert!(!text.contains('\u{1b}'), "raw ESC reached the output");
    // A line without a message still has `msg`, and field order does not matter.
    assert_eq!(lines[1]["msg"], "");
    assert_eq!(lines[1]["reason"], "second");
}

#[test]
fn escaping_matches_serde_json_for_every_ascii_character() {
    for c in (0u8..=0x7f).map(char::from).chain(['é', '\u{2028}', '😀']) {
        let s = format!("x{c}y");
        let mut ours = String::new();
        Escape(&mut ours).write_str(&s).unwrap();
        let theirs = serde_json::to_string(&s).unwrap();
        assert_eq!(format!("\"{ours}\""), theirs, "char {:?}", c);
    }
}

#[test]
fn reserved_and_log_fields_do_not_duplicate_keys() {
    let text = capture("info", || {
        tracing::info!(ts = 1, level = "x", target = "y", "m");
    });
    let line = &parse_lines(&text)[0];
    assert_eq!(line["field.ts"], 1);
    assert_eq!(line["field.level"], "x");
    assert_eq!(line["field.target"], "y");
    assert_eq!(line["level"], "info");
}

#[derive(Debug, thiserror::Error)]
#[error("reload failed")]
struct Outer(#[source] io::Error);

#[test]
fn errors_are_logged_with_their_source_chain() {
    let err = Outer(io::Error::new(io::ErrorKind::NotFound, "cert.pem missing"));
    let text = capture("info", || {
        let e: &(dyn std::error::Error + 'static) = &err;
        tracing::warn!(error = e, "failed");
    });
    assert_eq!(
        parse_lines(&text)[0]["error"],
        "reload failed: cert.pem missing"
    );
}

#[test]
fn level_filters_events_and_accepts_directives() {
    let text = capture("warn", || {
        tracing::info!("hidden");
        tracing::warn!("shown");
    });
    assert_eq!(parse_lines(&text).len(), 1);
    let text = capture("error,hookgate=debug", || tracing::debug!("shown"));
    assert_eq!(parse_lines(&text).len(), 1);
    assert!(parse_filter("INFO").is_ok());
    assert!(parse_filter("info,hookgate=debug").is_ok());
}

#[test]
fn misspelled_level_is_rejected_instead_of_becoming_a_target() {
    let err = parse_filter("inof").unwrap_err();
    assert!(err.to_string().contains("\"inof\""), "{err}");
    assert!(parse_filter("hookgate=loud").is_err());
}

#[test]
fn log_format_parses_from_config_and_string() {
    assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
    assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
    assert!("JSON5".parse::<LogFormat>().is_err());
    let f: LogFormat = serde_json::from_str("\"text\"").unwrap();
    assert_eq!(f, LogFormat::Text);
    assert!(serde_json::from_str::<LogFormat>("\"Text\"").is_err());
}
