//! The differential corpus: valid, edge and hostile request streams (RFC 9112 examples,
//! request-smuggling classics, every SPEC §3 and §11 case, issue 15's bytes), alone, after a
//! valid request and before one, and cut short. Every stream must satisfy [`disagreement`].
//! The streams are built in [`streams`], which `tests/it/hardening/loop_differential.rs` also
//! compiles, to run them through the real connection loop.

use super::*;

mod streams;
use streams::corpus;

const SPLITS: &[usize] = &[1, 2, 7, 100];

#[test]
fn hookgate_and_hyper_agree_on_every_message_boundary_or_hookgate_refuses() {
    let corpus = corpus();
    assert!(corpus.len() >= 500, "{} streams", corpus.len());
    let mut refused = 0;
    let mut failures = Vec::new();
    for stream in &corpus {
        for split in SPLITS.iter().copied().chain([stream.len()]) {
            if let Some(why) = tiling_violation(stream, split) {
                failures.push(format!("tiling, reads of {split}: {why}"));
            }
        }
        if let Some(why) = disagreement(stream, SPLITS) {
            let shown = String::from_utf8_lossy(&stream[..stream.len().min(300)]).into_owned();
            failures.push(format!("{shown:?}\n  {}", &why[..why.len().min(1500)]));
        }
        refused += usize::from(hookgate_reads(stream, stream.len()).refused.is_some());
    }
    assert!(
        failures.is_empty(),
        "{} of {} streams:\n{}",
        failures.len(),
        corpus.len(),
        failures[..failures.len().min(8)].join("\n")
    );
    // The corpus exercises both sides of the decision.
    assert!(
        refused > 150 && refused < corpus.len() - 150,
        "{refused} refused"
    );
}

/// Writes the corpus as seeds of the `request_framing` fuzz target (a read-size byte, then the
/// stream, up to 16 KiB): `cargo test --lib write_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/request_framing");
    std::fs::create_dir_all(&dir).expect("seed directory");
    // The limit cases (64 KiB heads) stay in the test: seeds that long would slow every run.
    for (i, stream) in corpus()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.len() <= 16 * 1024)
    {
        let seed = [&[(i % 64) as u8][..], stream].concat();
        let name = crate::digest::hex(&crate::digest::sha1(&seed));
        std::fs::write(dir.join(name), seed).expect("seed");
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/response_framing");
    std::fs::create_dir_all(&dir).expect("seed directory");
    for (bytes, to_head) in responses() {
        let seed = [&[u8::from(to_head)][..], &bytes].concat();
        let name = crate::digest::hex(&crate::digest::sha1(&seed));
        std::fs::write(dir.join(name), seed).expect("seed");
    }
}

#[test]
fn the_harness_sees_a_disagreement_when_there_is_one() {
    // hyper reads a bare-LF head; were hookgate to read nothing and refuse nothing, that is a
    // disagreement the rule must catch.
    let stream = b"GET / HTTP/1.1\nHost: h\n\n";
    assert_eq!(hyper_reads(stream).len(), 1);
    assert!(hookgate_reads(stream, 64).refused.is_some());
    assert!(disagreement(stream, SPLITS).is_none());
    let mut lenient = hookgate_reads(stream, 64);
    lenient.refused = None;
    assert!(compare(&lenient, &hyper_reads(stream)).is_some());
    // And when hookgate reads a request hyper does not, or reads it differently.
    let ok = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok";
    let ours = hookgate_reads(ok, 64);
    assert!(compare(&ours, &[]).is_some());
    let mut other = hyper_reads(ok);
    other[0].body = b"o".to_vec();
    assert!(compare(&ours, &other).is_some());
    assert!(compare(&ours, &hyper_reads(ok)).is_none());
}

/// Upstream answers: statuses, framings, interim heads, and the ambiguous or hostile ones.
fn responses() -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let framings: [(&str, &str); 9] = [
        ("Content-Length: 5\r\n", "hello"),
        ("Content-Length: 0\r\n", ""),
        ("Content-Length: 05\r\n", "hello"),
        ("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
        ("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"),
        (
            "Transfer-Encoding: chunked\r\n",
            "2;x=y\r\nhe\r\n3\r\nllo\r\n0\r\nT: 1\r\n\r\n",
        ),
        ("", "until the end"),
        ("Connection: close\r\n", "until the end"),
        ("Content-Length: 5\r\nConnection: keep-alive\r\n", "hello"),
    ];
    for status in [
        "200 OK",
        "201 Created",
        "204 No Content",
        "304 Not Modified",
        "404 Not Found",
        "500 Internal Server Error",
        "299 Odd",
    ] {
        for version in ["HTTP/1.1", "HTTP/1.0"] {
            for (framing, body) in framings {
                if version == "HTTP/1.0" && framing.contains("Transfer") {
                    continue;
                }
                for interim in [
                    "",
                    "HTTP/1.1 100 Continue\r\n\r\n",
                    "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                ] {
                    let r = format!("{interim}{version} {status}\r\nX-A: b\r\n{framing}\r\n{body}");
                    out.push((r.clone().into_bytes(), false));
                    out.push((r.into_bytes(), true));
                }
            }
        }
    }
    for hostile in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
        "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\nhello",
        "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nraw",
        "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 199 Odd\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ntoo long",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: \x01\r\n\r\nok",
        "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok",
        "http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ] {
        out.push((hostile.as_bytes().to_vec(), false));
        out.push((hostile.as_bytes().to_vec(), true));
    }
    out
}

#[test]
fn hookgates_client_and_hypers_read_every_response_alike_or_hookgate_refuses() {
    let responses = responses();
    assert!(responses.len() >= 500, "{} responses", responses.len());
    let (mut refused, mut failures) = (0, Vec::new());
    for (bytes, to_head) in &responses {
        refused += usize::from(hookgate_reads_response(bytes, *to_head).is_err());
        if let Some(why) = response_disagreement(bytes, *to_head) {
            failures.push(format!(
                "{:?} (HEAD: {to_head})\n  {why}",
                String::from_utf8_lossy(bytes)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        responses.len(),
        failures[..failures.len().min(8)].join("\n")
    );
    assert!(
        refused > 40 && refused < responses.len() - 200,
        "{refused} refused"
    );
}
