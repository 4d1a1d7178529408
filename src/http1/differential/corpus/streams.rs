//! The request streams of the differential corpus (`super`), built from bytes alone. Also
//! compiled by `tests/it/hardening/loop_differential.rs` with `#[path]`, which runs them
//! through the real connection loop: so this file names nothing but std and the three size
//! limits of `super::framing` (the integration test gives them their SPEC §11 values).

use super::framing;

/// Valid requests: methods, versions, body framings and connection options.
pub(super) fn valid() -> Vec<Vec<u8>> {
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
pub(super) fn hostile() -> Vec<Vec<u8>> {
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
pub(super) fn corpus() -> Vec<Vec<u8>> {
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
