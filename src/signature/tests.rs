use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const BODY: &[u8] = br#"{"developerPayload":"secret","scanId":"42"}"#;
const BODY_DIGEST: &str = "sha-256=:S3UPeeT4U3nJaet9wlhJCVK6hFhWHhXvrjWM0rutctk=:";
const CLIENT_CERT: &str = ":MIIBCiBmYWtlIGRlcg==:";
const CERT_SHA256: &str = "d5d408500186667b9105b403357d2d798b1bf913736e934a3d9ca8122cb92319";
const REQUEST_ID: &str = "0192f5a8-3b1c-7d2e-9f00-123456789abc";
const PY_HINT: &str = "run `pip install -r tests/py/requirements.txt` (needs python3)";

fn covered<'a>(path: &'a str, query: Option<&'a str>, digest: &'a [u8]) -> Covered<'a> {
    Covered {
        method: "POST",
        path,
        query,
        content_digest: digest,
        client_cert: CLIENT_CERT.as_bytes(),
        client_cert_sha256: CERT_SHA256.as_bytes(),
        forwarded_for: b"203.0.113.7",
        forwarded: b"for=203.0.113.7;proto=https",
        forwarded_proto: b"https",
        request_id: REQUEST_ID.as_bytes(),
        stored: None,
    }
}

fn base_text(signer: &IdentitySigner, covered: &Covered<'_>, created: u64) -> String {
    let (buf, _) = signer.signature_base(covered, created);
    String::from_utf8(buf).expect("ASCII base")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The headers hookgate adds to a forwarded request, signed by `signer`.
fn forwarded_headers(
    signer: &IdentitySigner,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    created: u64,
) -> Vec<(&'static str, String)> {
    let digest = content_digest(body);
    let (input, signature) = signer.sign(&covered(path, query, digest.as_bytes()), created);
    let text = |v: &HeaderValue| v.to_str().expect("ASCII").to_owned();
    vec![
        ("content-digest", text(&digest)),
        ("client-cert", CLIENT_CERT.to_owned()),
        ("x-client-cert-sha256", CERT_SHA256.to_owned()),
        ("x-forwarded-for", "203.0.113.7".to_owned()),
        ("forwarded", "for=203.0.113.7;proto=https".to_owned()),
        ("x-forwarded-proto", "https".to_owned()),
        ("x-request-id", REQUEST_ID.to_owned()),
        ("signature-input", text(&input)),
        ("signature", text(&signature)),
    ]
}

#[test]
fn signature_base_is_the_rfc_9421_lines_for_a_known_request() {
    let signer = IdentitySigner::new(KEY, "hookgate-1").expect("valid");
    let covered = covered(
        "/base/hooks/scan",
        Some("id=42&x=y"),
        BODY_DIGEST.as_bytes(),
    );
    let expected = r#""@method": POST
"@path": /base/hooks/scan
"@query": ?id=42&x=y
"content-digest": sha-256=:S3UPeeT4U3nJaet9wlhJCVK6hFhWHhXvrjWM0rutctk=:
"client-cert": :MIIBCiBmYWtlIGRlcg==:
"x-client-cert-sha256": d5d408500186667b9105b403357d2d798b1bf913736e934a3d9ca8122cb92319
"x-forwarded-for": 203.0.113.7
"forwarded": for=203.0.113.7;proto=https
"x-forwarded-proto": https
"x-request-id": 0192f5a8-3b1c-7d2e-9f00-123456789abc
"@signature-params": ("@method" "@path" "@query" "content-digest" "client-cert" "x-client-cert-sha256" "x-forwarded-for" "forwarded" "x-forwarded-proto" "x-request-id");created=1700000000;keyid="hookgate-1";alg="hmac-sha256""#;
    assert_eq!(base_text(&signer, &covered, 1_700_000_000), expected);
}

#[test]
fn signs_a_known_request_with_the_exact_header_values() {
    let signer = IdentitySigner::new(KEY, "hookgate-1").expect("valid");
    let covered = covered(
        "/base/hooks/scan",
        Some("id=42&x=y"),
        BODY_DIGEST.as_bytes(),
    );
    let (input, signature) = signer.sign(&covered, 1_700_000_000);
    assert_eq!(
        input,
        r#"hookgate=("@method" "@path" "@query" "content-digest" "client-cert" "x-client-cert-sha256" "x-forwarded-for" "forwarded" "x-forwarded-proto" "x-request-id");created=1700000000;keyid="hookgate-1";alg="hmac-sha256""#
    );
    // HMAC-SHA256 of the base above, computed independently with `openssl dgst -hmac`.
    assert_eq!(
        signature,
        "hookgate=:5Ao14eM+gLr9FmVvN8F4ic/kNhLRZu4bkrY6TOVMT2g=:"
    );
}

#[test]
fn query_line_is_a_lone_question_mark_without_a_query() {
    let signer = IdentitySigner::new(KEY, "k").expect("valid");
    for query in [None, Some("")] {
        let base = base_text(&signer, &covered("/", query, b"d"), 1);
        assert!(base.contains("\n\"@query\": ?\n"), "{base}");
    }
    let base = base_text(&signer, &covered("/", Some("a=1&b"), b"d"), 1);
    assert!(base.contains("\n\"@query\": ?a=1&b\n"), "{base}");
}

#[test]
fn params_list_the_components_in_base_line_order() {
    let names: Vec<&str> = LINE_HEADS
        .iter()
        .map(|h| h.split('"').nth(1).expect("quoted"))
        .collect();
    let list = format!(
        "({});created=",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(PARAMS_HEAD, list);
}

#[test]
fn created_is_written_in_decimal_from_zero_to_the_largest_value() {
    let signer = IdentitySigner::new(KEY, "k").expect("valid");
    for created in [0, 9, 10, 1_700_000_000, u64::MAX] {
        let (input, _) = signer.sign(&covered("/", None, b"d"), created);
        let text = input.to_str().expect("ASCII");
        assert!(text.contains(&format!(";created={created};")), "{text}");
    }
}

#[test]
fn rejects_a_key_shorter_than_32_bytes_without_revealing_it() {
    let err = IdentitySigner::new(b"short-secret-key-31-bytes-long!", "k").expect_err("31 bytes");
    assert_eq!(err, SignerError::KeyTooShort { len: 31 });
    let message = err.to_string();
    assert!(message.contains("at least 32") && message.contains("openssl rand -base64 32"));
    assert!(!message.contains("short-secret"), "{message}");
    assert!(IdentitySigner::new(&[7u8; 32], "k").is_ok());
}

#[test]
fn rejects_key_ids_that_need_escaping_or_are_empty() {
    assert_eq!(
        IdentitySigner::new(KEY, "").expect_err("empty"),
        SignerError::EmptyKeyId
    );
    for (key_id, position) in [
        ("a\"b", 2),
        ("a\\b", 2),
        ("tab\t", 4),
        ("é", 1),
        ("x\u{7f}", 2),
    ] {
        let err = IdentitySigner::new(KEY, key_id).expect_err(key_id);
        assert_eq!(err, SignerError::KeyIdCharacter { position }, "{key_id:?}");
        assert!(err.to_string().contains("printable ASCII"));
    }
    let signer = IdentitySigner::new(KEY, " ~hookgate 2026-01~ ").expect("printable ASCII is fine");
    assert_eq!(signer.key_id(), " ~hookgate 2026-01~ ");
}

#[test]
fn debug_output_never_shows_the_key() {
    let signer = IdentitySigner::new(KEY, "hookgate-1").expect("valid");
    let debug = format!("{signer:?}");
    assert!(
        debug.contains("hookgate-1") && !debug.contains("0123456789"),
        "{debug}"
    );
}

#[test]
fn digest_of_an_empty_body_is_the_sha256_of_nothing() {
    let expected = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:";
    assert_eq!(content_digest(b""), expected);
    assert_eq!(ContentDigest::new().finish(), expected);
}

#[test]
fn streaming_digest_equals_the_digest_of_the_whole_body() {
    assert_eq!(content_digest(BODY), BODY_DIGEST);
    let mut streaming = ContentDigest::default();
    for chunk in BODY.chunks(5) {
        streaming.update(chunk);
    }
    assert_eq!(streaming.finish(), BODY_DIGEST);
}

/// Runs `examples/<script> --self-test` on a JSON fixture and returns its verdict.
fn self_test(
    program: &str,
    script: &str,
    fixture: &serde_json::Value,
    hint: &str,
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(script);
    let mut child = Command::new(program)
        .arg(&script)
        .arg("--self-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program} ({e}): {hint}"));
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(fixture.to_string().as_bytes())
        .expect("write fixture");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        panic!(
            "{} gave no verdict ({}): {stderr}\n{hint}",
            script.display(),
            out.status
        )
    })
}

fn fixture(path: &str, query: Option<&str>, body: &[u8], created: u64) -> serde_json::Value {
    let signer = IdentitySigner::new(KEY, "hookgate-1").expect("valid");
    let headers: serde_json::Map<String, serde_json::Value> =
        forwarded_headers(&signer, path, query, body, created)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into()))
            .collect();
    serde_json::json!({
        "method": "POST", "path": path, "query": query, "headers": headers,
        "body_base64": STANDARD.encode(body), "keys": { "hookgate-1": STANDARD.encode(KEY) },
        "max_age": 300,
    })
}

#[test]
fn python_http_message_signatures_verifies_what_the_signer_produces() {
    let good = fixture("/base/hooks/scan", Some("id=42&x=y"), BODY, now());
    let verdict = self_test("python3", "verify.py", &good, PY_HINT);
    assert_eq!(verdict["ok"], true, "{verdict}");
    let no_query = fixture("/hooks", None, b"", now());
    assert_eq!(
        self_test("python3", "verify.py", &no_query, PY_HINT)["ok"],
        true
    );

    let mut tampered = good.clone();
    tampered["body_base64"] = STANDARD.encode(b"{}").into();
    let verdict = self_test("python3", "verify.py", &tampered, PY_HINT);
    assert_eq!(
        (verdict["ok"].clone(), verdict["check"].clone()),
        (false.into(), "digest".into())
    );
}

#[test]
fn node_verifier_accepts_the_signature_and_rejects_tampering() {
    let hint = "install Node.js 20 so that `node` is on PATH";
    let good = fixture("/base/hooks/scan", Some("id=42&x=y"), BODY, now());
    assert_eq!(self_test("node", "verify.js", &good, hint)["ok"], true);
    let no_query = fixture("/hooks", None, b"", now());
    assert_eq!(self_test("node", "verify.js", &no_query, hint)["ok"], true);

    let mut moved = good.clone();
    moved["path"] = "/base/hooks/other".into();
    assert_eq!(
        self_test("node", "verify.js", &moved, hint)["check"],
        "signature"
    );
    let mut tampered = good.clone();
    tampered["body_base64"] = STANDARD.encode(b"{}").into();
    assert_eq!(
        self_test("node", "verify.js", &tampered, hint)["check"],
        "digest"
    );
    let old = fixture("/hooks", None, b"", now() - 301);
    assert_eq!(self_test("node", "verify.js", &old, hint)["check"], "age");
}

/// tests/py/verifying_upstream.py, killed when dropped.
struct VerifyingUpstream {
    child: Child,
    port: u16,
}

impl Drop for VerifyingUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_verifying_upstream() -> VerifyingUpstream {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/verifying_upstream.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            "--port",
            "0",
            "--key-id",
            "hookgate-1",
            "--exit-on-stdin-eof",
        ])
        .env("HOOKGATE_SIGNING_KEY", STANDARD.encode(KEY))
        .stdin(Stdio::piped()) // held open: the server exits when this test process goes away
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start python3 ({e}): {PY_HINT}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("read");
    let port = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok());
    let port =
        port.unwrap_or_else(|| panic!("verifying upstream did not start ({line:?}): {PY_HINT}"));
    VerifyingUpstream { child, port }
}

/// One HTTP/1.1 exchange on a kept-alive connection; returns the status and JSON body.
fn exchange(
    conn: &mut BufReader<TcpStream>,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
    chunked: bool,
) -> (u16, serde_json::Value) {
    let mut request = format!("POST {target} HTTP/1.1\r\nHost: upstream\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut bytes = if chunked {
        request.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut bytes = request.into_bytes();
        for chunk in body.chunks(7) {
            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend_from_slice(chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        bytes
    } else {
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    };
    conn.get_mut().write_all(&bytes).expect("send request");
    bytes.clear();
    let mut line = String::new();
    conn.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("HTTP status");
    let mut length = None;
    loop {
        line.clear();
        conn.read_line(&mut line).expect("header line");
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok();
            }
        }
    }
    let mut payload = vec![0; length.expect("keep-alive responses carry Content-Length")];
    conn.read_exact(&mut payload).expect("body");
    (status, serde_json::from_slice(&payload).expect("JSON body"))
}

#[test]
fn verifying_upstream_accepts_signed_requests_and_refuses_tampering_on_one_connection() {
    let upstream = start_verifying_upstream();
    let stream = TcpStream::connect(("127.0.0.1", upstream.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut conn = BufReader::new(stream);
    let signer = IdentitySigner::new(KEY, "hookgate-1").expect("valid");
    let signed = forwarded_headers(&signer, "/base/hooks/scan", Some("id=42"), BODY, now());

    let (status, json) = exchange(&mut conn, "/base/hooks/scan?id=42", &signed, BODY, false);
    assert_eq!(
        (status, &json["signature"], &json["digest"]),
        (200, &"ok".into(), &"ok".into()),
        "{json}"
    );
    assert_eq!(json["path"], "/base/hooks/scan?id=42");
    assert_eq!(json["headers"]["x-forwarded-for"], "203.0.113.7");
    assert_eq!(json["body_len"], BODY.len());
    let (status, json) = exchange(&mut conn, "/base/hooks/scan?id=42", &signed, BODY, true);
    assert_eq!(status, 200, "chunked body: {json}");
    let empty = forwarded_headers(&signer, "/hooks", None, b"", now());
    assert_eq!(exchange(&mut conn, "/hooks", &empty, b"", false).0, 200);

    let (status, json) = exchange(&mut conn, "/base/hooks/scan?id=42", &signed, b"{}", false);
    assert_eq!(
        (status, &json["check"]),
        (401, &"digest".into()),
        "changed body: {json}"
    );
    let (status, json) = exchange(&mut conn, "/base/hooks/other?id=42", &signed, BODY, false);
    assert_eq!(
        (status, &json["check"]),
        (401, &"signature".into()),
        "changed path: {json}"
    );
    let (status, json) = exchange(&mut conn, "/base/hooks/scan?id=43", &signed, BODY, false);
    assert_eq!(
        (status, &json["check"]),
        (401, &"signature".into()),
        "changed query: {json}"
    );
    // x-forwarded-for, forwarded, x-forwarded-proto: each is covered.
    for (index, changed) in [
        (3, "198.51.100.9"),
        (4, "for=198.51.100.9;proto=https"),
        (5, "http"),
    ] {
        let mut forged = signed.clone();
        forged[index].1 = changed.to_owned();
        let (status, json) = exchange(&mut conn, "/base/hooks/scan?id=42", &forged, BODY, false);
        assert_eq!(
            (status, &json["check"]),
            (401, &"signature".into()),
            "changed {}: {json}",
            forged[index].0
        );
    }
    let other_key = IdentitySigner::new(&[9u8; 32], "hookgate-1").expect("valid");
    let wrong = forwarded_headers(&other_key, "/base/hooks/scan", Some("id=42"), BODY, now());
    let (status, json) = exchange(&mut conn, "/base/hooks/scan?id=42", &wrong, BODY, false);
    assert_eq!(
        (status, &json["check"]),
        (401, &"signature".into()),
        "other key: {json}"
    );
    let stale = forwarded_headers(
        &signer,
        "/base/hooks/scan",
        Some("id=42"),
        BODY,
        now() - 600,
    );
    let (status, json) = exchange(&mut conn, "/base/hooks/scan?id=42", &stale, BODY, false);
    assert_eq!(
        (status, &json["check"]),
        (401, &"age".into()),
        "old signature: {json}"
    );
}
