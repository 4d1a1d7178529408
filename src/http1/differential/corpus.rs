//! The differential corpus: valid, edge and hostile request streams (RFC 9112 examples,
//! request-smuggling classics, every SPEC §3 and §11 case, issue 15's bytes), alone, after a
//! valid request and before one, and cut short. Every stream must satisfy [`disagreement`].

use super::*;

const SPLITS: &[usize] = &[1, 2, 7, 100];

/// Valid requests: methods, versions, body framings and connection options.
fn valid() -> Vec<Vec<u8>> {
    let bodies: [(&str, &str); 8] = [
        ("", ""),
        ("Content-Length: 0\r\n", ""),
        ("Content-Length: 5\r\n", "hello"),
        ("Content-Length: 005\r\n", "hello"),
        ("Content-Length:   5   \r\n", "hello"),
        ("Content-Length: 2\r\nContent-Length: 2\r\n", "{}"),
        ("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"),
        (
            "Transfer-Encoding: Chunked\r\n",
            "3;a=b;c=\"d e\"\r\nabc\r\nA\r\n0123456789\r\n0;z\r\nT: 1\r\nU-v: x y\r\n\r\n",
        ),
    ];
    let mut out = Vec::new();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        for (framing, body) in bodies {
            for connection in ["", "Connection: keep-alive\r\n", "Connection: close\r\n"] {
                out.push(
                    format!("{method} /hooks/a?x=1 HTTP/1.1\r\nHost: example.com\r\n{framing}{connection}\r\n{body}")
                        .into_bytes(),
                );
            }
            if !framing.contains("Transfer") {
                out.push(
                    format!(
                        "{method} /old HTTP/1.0\r\n{framing}Connection: keep-alive\r\n\r\n{body}"
                    )
                    .into_bytes(),
                );
            }
        }
    }
    for raw in [
        // RFC 9112 §3.2 target forms, §3.2.4 asterisk form, and an authority-form CONNECT.
        &b"GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\nHost: www.example.org\r\n\r\n"[..],
        b"OPTIONS * HTTP/1.1\r\nHost: www.example.org:8001\r\n\r\n",
        b"CONNECT server.example.com:80 HTTP/1.1\r\nHost: server.example.com\r\n\r\n",
        b"GET /where?q=now HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
        // RFC 9112 §7.1 style chunked body with a trailer.
        b"POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: Expires\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n10\r\n1234567890abcdef\r\n0\r\nExpires: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n",
        b"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
        b"POST /u HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\nok",
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: h\r\nCONTENT-LENGTH: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n000\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffff\r\n",
    ] {
        out.push(raw.to_vec());
    }
    out
}

/// Hostile and malformed requests, each of which hookgate must refuse or read as hyper does.
fn hostile() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let post = |headers: &str, body: &str| {
        format!("POST /s HTTP/1.1\r\nHost: h\r\n{headers}\r\n{body}").into_bytes()
    };
    // Smuggling classics: CL.TE, TE.CL, TE.TE with obfuscated codings.
    for headers in [
        "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n",
        "Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: identity, chunked\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked \r\n",
        "Transfer-Encoding:\tchunked\r\n",
        "Transfer-Encoding : chunked\r\n",
        " Transfer-Encoding: chunked\r\n",
        "X: y\r\n Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding:\r\n chunked\r\n",
        "Transfer_Encoding: chunked\r\n",
        "Transfer-Encoding: \"chunked\"\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
        "Content-Length: 0\r\nContent-Length: 6\r\n",
        "Content-Length: 6, 6\r\n",
        "Content-Length: 6,6\r\n",
        "Content-Length: +6\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 6.0\r\n",
        "Content-Length: 0x6\r\n",
        "Content-Length: 6 6\r\n",
        "Content-Length: 99999999999999999999\r\n",
        "Content-Length: 18446744073709551615\r\n",
        "Content-Length:\r\n",
        "Content-Length : 6\r\n",
        "Content-Length\r\n",
        "Content-Length: \x0b6\r\n",
    ] {
        out.push(post(
            headers,
            "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
        ));
    }
    // Line ends and bytes a lenient parser takes differently.
    for raw in [
        &b"POST /s HTTP/1.1\nHost: h\nContent-Length: 2\n\nok"[..],
        b"POST /s HTTP/1.1\r\nHost: h\nContent-Length: 2\r\n\r\nok",
        b"POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\nok",
        b"POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 2\n\r\nok",
        b"POST /s HTTP/1.1\r\nHost: h\rContent-Length: 2\r\n\r\nok",
        b"POST /s HTTP/1.1\r\nHost: h\r\nX: a\rb\r\nContent-Length: 2\r\n\r\nok",
        b"POST /s HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
        b"POST /s HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n",
        b"POST /s HTTP/1.1\r\nHost: h\r\nX: a\x1bb\r\n\r\n",
        b"POST /s HTTP/1.1\r\nHo st: h\r\n\r\n",
        b"POST /s HTTP/1.1\r\n: h\r\n\r\n",
        b"POST /s HTTP/1.1\r\nHost h\r\n\r\n",
        b"POST /s HTTP/1.1\r\nX\x80: v\r\n\r\n",
        b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
        b"GET /\tx HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        b"GET / http/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/01.1\r\nHost: h\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET // HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET a HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nokGET /after HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /after HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\nGET /after HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: close\xff\r\n\r\nGET /after HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: \"close\"\r\n\r\nGET /after HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\nGET /after HTTP/1.1\r\n\r\n",
    ] {
        out.push(raw.to_vec());
    }
    // Chunked bodies: sizes, extensions, data terminators and trailers.
    for body in [
        "5 \r\nhello\r\n0\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "5\t\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5\rhello\r\n0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello0\r\n\r\n",
        "5\r\nhelloXX\r\n0\r\n\r\n",
        "5\r\nhel\r\n0\r\n\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
        "+5\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "5g\r\nhello\r\n0\r\n\r\n",
        "00000000000000005\r\nhello\r\n0\r\n\r\n",
        "0000000000000005\r\nhello\r\n0\r\n\r\n",
        "ffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        "10000000000000000\r\nhello\r\n0\r\n\r\n",
        "\r\nhello\r\n0\r\n\r\n",
        "5;\r\nhello\r\n0\r\n\r\n",
        "5; a=b\r\nhello\r\n0\r\n\r\n",
        "5 ;a=b\r\nhello\r\n0\r\n\r\n",
        "5;a = b\r\nhello\r\n0\r\n\r\n",
        "5;a=\r\nhello\r\n0\r\n\r\n",
        "5;=b\r\nhello\r\n0\r\n\r\n",
        "5;a=\"b\r\nhello\r\n0\r\n\r\n",
        "5;a=\"b\\\"\"\r\nhello\r\n0\r\n\r\n",
        "5;a=b\"c\"\r\nhello\r\n0\r\n\r\n",
        "5;a\nhello\r\n0\r\n\r\n",
        "5;a\rhello\r\n0\r\n\r\n",
        "5;a\x00\r\nhello\r\n0\r\n\r\n",
        "5;\u{ff}\r\nhello\r\n0\r\n\r\n",
        "0\r\n\n",
        "0\r\n\r\r\n",
        "0\n\r\n",
        "0\r\nX: y\n\r\n",
        "0\r\nX: y\r\n\n",
        "0\r\nX: y\r\r\n\r\n",
        "0\r\nX: y\nZ: w\r\n\r\n",
        "0\r\n X: y\r\n\r\n",
        "0\r\nX y\r\n\r\n",
        "0\r\nX : y\r\n\r\n",
        "0\r\n:y\r\n\r\n",
        "0\r\nX: a\x01b\r\n\r\n",
        "0\r\nX: a\x7fb\r\n\r\n",
        "0\r\nX:\r\n\r\n",
        "0\r\nContent-Length: 5\r\n\r\n",
        "0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "0\r\n\nPUT /other/phantom HTTP/1.1\nContent-Length: 99999999\n\nX: y\r\n\r\n",
        "0\r\n\r\nGARBAGE",
        "0\r\n\r\n\r\n",
    ] {
        out.push(post("Transfer-Encoding: chunked\r\n", body));
    }
    // Issue 15's exploit, whole: the phantom head, then a CL+TE request.
    out.push(
        [
            post("Transfer-Encoding: chunked\r\n", "48\r\n"),
            b"{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\r\n0\r\n".to_vec(),
            b"\nPUT /other/phantom HTTP/1.1\nContent-Length: 99999999\n\nX: y\r\n\r\n".to_vec(),
            post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"),
        ]
        .concat(),
    );
    // SPEC §11 limits, just inside and just outside.
    let line = |n: usize| format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(n));
    out.push(line(framing::MAX_REQUEST_LINE - 20).into_bytes());
    out.push(line(framing::MAX_REQUEST_LINE + 10).into_bytes());
    out.push(line(70_000).into_bytes());
    let big = |n: usize| format!("GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n", "a".repeat(n));
    out.push(big(framing::MAX_HEAD - 100).into_bytes());
    out.push(big(framing::MAX_HEAD).into_bytes());
    out.push(big(300_000).into_bytes());
    let fields = |n: usize| {
        let mut s = String::from("GET / HTTP/1.1\r\n");
        for i in 0..n {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        (s + "\r\n").into_bytes()
    };
    out.push(fields(framing::MAX_HEADERS));
    out.push(fields(framing::MAX_HEADERS + 1));
    let trailers = |n: usize| {
        let t: String = (0..n).map(|i| format!("T{i}: v\r\n")).collect();
        post("Transfer-Encoding: chunked\r\n", &format!("0\r\n{t}\r\n"))
    };
    out.push(trailers(32));
    out.push(trailers(33));
    out.push(trailers(101));
    out.push(post(
        "Transfer-Encoding: chunked\r\n",
        &format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(20_000)),
    ));
    out
}

/// Each request alone, after a valid one, before one, and cut short.
fn corpus() -> Vec<Vec<u8>> {
    let good = b"POST /first HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}".to_vec();
    let next = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
    let mut out = Vec::new();
    for one in valid().into_iter().chain(hostile()) {
        out.push([good.clone(), one.clone()].concat());
        out.push([one.clone(), next.clone()].concat());
        for cut in [one.len() / 3, one.len() - 1] {
            out.push(one[..cut].to_vec());
        }
        out.push(one);
    }
    out
}

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
