use super::*;

/// Feeds `input` in pieces of `step` bytes; the events, with adjacent data merged.
fn events(input: &[u8], step: usize) -> Vec<Event> {
    let mut r = Requests::default();
    let mut out: Vec<Event> = Vec::new();
    for piece in input.chunks(step) {
        r.feed(piece, &mut |e| match (out.last_mut(), &e) {
            (
                Some(Event::Data { at, len }),
                Event::Data {
                    at: next,
                    len: more,
                },
            ) if *at + *len as u64 == *next => *len += more,
            (Some(Event::AfterClose(n)), Event::AfterClose(m)) => *n += m,
            _ => out.push(e),
        });
    }
    out
}

/// The same events whatever the read sizes.
fn events_any_split(input: &[u8]) -> Vec<Event> {
    let whole = events(input, input.len().max(1));
    for step in [1, 2, 3, 5, 7, 16, 100] {
        assert_eq!(events(input, step), whole, "reads of {step} bytes");
    }
    whole
}

fn refusal(input: &[u8]) -> Option<(u64, Refusal)> {
    events_any_split(input).into_iter().find_map(|e| match e {
        Event::Refused { index, refusal } => Some((index, refusal)),
        _ => None,
    })
}

fn malformed(input: &[u8]) -> &'static str {
    match refusal(input) {
        Some((_, Refusal::Malformed(why))) => why,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

const PLAIN: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
const CHUNKED: &[u8] = b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1;q=\"a b\"\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n";
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn head(index: u64, at: usize, len: usize, body: Body) -> Event {
    Event::Head {
        index,
        at: at as u64,
        len,
        framing: Framing {
            body,
            keep_alive: true,
        },
    }
}

#[test]
fn frames_pipelined_requests_the_same_in_any_split() {
    let stream = [PLAIN, CHUNKED, GET].concat();
    let plain_head = PLAIN.len() - 5;
    let chunked_head = b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".len();
    assert_eq!(
        events_any_split(&stream),
        vec![
            head(0, 0, plain_head, Body::Length(5)),
            Event::Data {
                at: plain_head as u64,
                len: 5
            },
            Event::End {
                index: 0,
                at: PLAIN.len() as u64
            },
            head(1, PLAIN.len(), chunked_head, Body::Chunked),
            Event::Data {
                at: (PLAIN.len() + chunked_head + b"5;ext=1;q=\"a b\"\r\n".len()) as u64,
                len: 5
            },
            Event::End {
                index: 1,
                at: (PLAIN.len() + CHUNKED.len()) as u64
            },
            head(2, PLAIN.len() + CHUNKED.len(), GET.len(), Body::Length(0)),
            Event::End {
                index: 2,
                at: stream.len() as u64
            },
        ]
    );
}

#[test]
fn a_head_inside_a_body_is_only_body() {
    let inner = b"POST /c HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    let outer = format!(
        "POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        inner.len()
    );
    let stream = [outer.as_bytes(), inner, GET].concat();
    let ev = events_any_split(&stream);
    assert_eq!(ev.len(), 5, "{ev:?}");
    assert_eq!(
        ev[1],
        Event::Data {
            at: outer.len() as u64,
            len: inner.len()
        }
    );
}

#[test]
fn refuses_ambiguous_lengths_and_codings() {
    for (head, why) in [
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "Content-Length together with Transfer-Encoding",
        ),
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 5",
            "Content-Length together with Transfer-Encoding",
        ),
        (
            "Content-Length: 5\r\nContent-Length: 6",
            "conflicting Content-Length values",
        ),
        (
            "Content-Length: 5\r\nContent-Length: 05",
            "conflicting Content-Length values",
        ),
        ("Content-Length: 5, 5", "malformed Content-Length"),
        ("Content-Length: +5", "malformed Content-Length"),
        ("Content-Length: 0x5", "malformed Content-Length"),
        ("Content-Length: ", "malformed Content-Length"),
        (
            "Content-Length: 1234567890123456789",
            "malformed Content-Length",
        ),
        (
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding other than chunked alone",
        ),
        (
            "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding other than chunked alone",
        ),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding other than chunked alone",
        ),
        (
            "Transfer-Encoding: identity",
            "Transfer-Encoding other than chunked alone",
        ),
        (
            "Transfer-Encoding: chunked ;",
            "Transfer-Encoding other than chunked alone",
        ),
    ] {
        let req = format!("POST / HTTP/1.1\r\nHost: x\r\n{head}\r\n\r\n");
        assert_eq!(malformed(req.as_bytes()), why, "{head:?}");
    }
    assert_eq!(
        malformed(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "Transfer-Encoding in HTTP/1.0"
    );
    // Repeated equal lengths are one length (RFC 9110 §8.6); `Chunked` in any case is chunked.
    let ok = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nokPOST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(refusal(ok), None);
}

#[test]
fn refuses_bare_line_ends_and_obs_fold_in_heads() {
    for (input, why) in [
        (
            &b"GET / HTTP/1.1\nHost: x\r\n\r\n"[..],
            "bare LF in the request head",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\n\r\n",
            "bare LF in the request head",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\n",
            "bare LF in the request head",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
            "bare CR in the request head",
        ),
        (
            b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "bare LF in the request head",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            "malformed request head",
        ),
        (
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "malformed request head",
        ),
        (
            b"GET / HTTP/1.1\r\nHo\x01st: x\r\n\r\n",
            "malformed request head",
        ),
        (
            b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n",
            "malformed request head",
        ),
        (
            b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
            "malformed request head",
        ),
        (b"GET  / HTTP/1.1\r\n\r\n", "malformed request target"),
        (b"GET / HTTP/1.2\r\n\r\n", "malformed request head"),
        (b"GET / HTTP/2.0\r\n\r\n", "malformed request head"),
        (
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "malformed request head",
        ),
        (b"G\x7fT / HTTP/1.1\r\n\r\n", "malformed request head"),
        (b"GET /a\x7fb HTTP/1.1\r\n\r\n", "malformed request target"),
        (
            b"GET http://a b/ HTTP/1.1\r\n\r\n",
            "malformed request head",
        ),
    ] {
        assert_eq!(
            malformed(input),
            why,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn refuses_bare_lf_as_soon_as_it_arrives_not_at_the_end_of_the_head() {
    // hyper would take `\n\n` for the end of this head: the refusal must come no later.
    let mut r = Requests::default();
    let mut seen = Vec::new();
    r.feed(b"POST / HTTP/1.1\r\nContent-Length: 0\n\n", &mut |e| {
        seen.push(e)
    });
    assert!(
        matches!(seen[..], [Event::Refused { index: 0, .. }]),
        "{seen:?}"
    );
}

#[test]
fn ignores_empty_lines_before_a_request_line() {
    let stream = [PLAIN, b"\r\n\r\n".as_slice(), GET].concat();
    let ev = events_any_split(&stream);
    assert_eq!(refusal(&stream), None);
    assert!(
        matches!(ev.last(), Some(Event::End { index: 1, .. })),
        "{ev:?}"
    );
}

#[test]
fn enforces_the_spec_head_limits_to_the_byte() {
    // A request line of exactly 8 KiB (without its CRLF) passes; one byte more is 414.
    let line = |n: usize| format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(n - 14));
    assert_eq!(line(MAX_REQUEST_LINE).find('\r'), Some(MAX_REQUEST_LINE));
    assert_eq!(refusal(line(MAX_REQUEST_LINE).as_bytes()), None);
    assert_eq!(
        refusal(line(MAX_REQUEST_LINE + 1).as_bytes()),
        Some((0, Refusal::UriTooLong))
    );
    // A head of exactly 64 KiB (with its final CRLF) passes; one byte more is 431.
    let head = |n: usize| format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(n - 23));
    assert_eq!(head(MAX_HEAD).len(), MAX_HEAD);
    assert_eq!(refusal(head(MAX_HEAD).as_bytes()), None);
    assert_eq!(
        refusal(head(MAX_HEAD + 1).as_bytes()),
        Some((0, Refusal::HeaderTooLarge))
    );

    let fields = |n: usize| {
        let mut s = String::from("GET / HTTP/1.1\r\n");
        for i in 0..n {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s + "\r\n"
    };
    assert_eq!(refusal(fields(MAX_HEADERS).as_bytes()), None);
    assert_eq!(
        refusal(fields(MAX_HEADERS + 1).as_bytes()),
        Some((0, Refusal::HeaderTooLarge))
    );
}

#[test]
fn refuses_loose_chunk_syntax() {
    for body in [
        &b"5 \r\nhello\r\n0\r\n\r\n"[..],
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhelloX\r\n0\r\n\r\n",
        b"\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"00000000000000005\r\nhello\r\n0\r\n\r\n",
        b"5; a=b\r\nhello\r\n0\r\n\r\n",
        b"5;\r\nhello\r\n0\r\n\r\n",
        b"5;a=\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
        b"5;a\nhello\r\n0\r\n\r\n",
        b"0\r\n\n",
        b"0\r\nX: y\n\r\n",
        b"0\r\nX: y\r\n\n",
        b"0\r\n X: y\r\n\r\n",
        b"0\r\nX y\r\n\r\n",
        b"0\r\nX: a\x01\r\n\r\n",
        b"0\r\n\rX",
    ] {
        let req = [
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(),
            body,
        ]
        .concat();
        assert!(
            matches!(refusal(&req), Some((0, Refusal::Malformed(_)))),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn the_phantom_head_of_the_trailer_exploit_is_refused() {
    // Issue 15: bare-LF trailer lines that a lenient reader took for a new request head.
    let stream = [
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(),
        b"2\r\n{}\r\n0\r\n",
        b"\nPUT /other/phantom HTTP/1.1\nContent-Length: 99999999\n\nX: y\r\n\r\n",
        b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    ]
    .concat();
    assert!(matches!(refusal(&stream), Some((0, _))));
}

#[test]
fn accepts_extensions_and_trailers_within_limits() {
    let body =
        b"a;name;n2=tok;n3=\"q \\\" s\"\r\n0123456789\r\n0;last\r\nA: 1\r\nB-2:  spaced  \r\n\r\n";
    let req = [
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(),
        body,
        GET,
    ]
    .concat();
    let ev = events_any_split(&req);
    assert_eq!(refusal(&req), None, "{ev:?}");
    assert!(matches!(ev[1], Event::Data { len: 10, .. }), "{ev:?}");
    assert_eq!(
        ev.iter().filter(|e| matches!(e, Event::End { .. })).count(),
        2
    );

    let many = (0..=MAX_TRAILERS)
        .map(|i| format!("T{i}: v\r\n"))
        .collect::<String>();
    let req = format!("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n{many}\r\n");
    assert!(refusal(req.as_bytes()).is_some());
    let ext = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_EXTENSIONS));
    let req = format!("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{ext}");
    assert!(refusal(req.as_bytes()).is_some());
}

#[test]
fn close_ends_the_stream_and_http10_closes_unless_kept_alive() {
    let close = b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n";
    let stream = [close.as_slice(), GET].concat();
    let ev = events_any_split(&stream);
    assert_eq!(ev.last(), Some(&Event::AfterClose(GET.len())));
    let ten = b"GET / HTTP/1.0\r\n\r\n";
    assert!(matches!(
        events_any_split(&[ten.as_slice(), GET].concat()).last(),
        Some(Event::AfterClose(_))
    ));
    let kept = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let ev = events_any_split(&[kept.as_slice(), GET].concat());
    assert!(
        matches!(ev.last(), Some(&Event::End { index: 1, .. })),
        "{ev:?}"
    );
}

#[test]
fn an_incomplete_message_is_neither_ended_nor_refused() {
    for cut in [10, PLAIN.len() - 1] {
        let ev = events_any_split(&PLAIN[..cut]);
        assert!(!ev
            .iter()
            .any(|e| matches!(e, Event::End { .. } | Event::Refused { .. })));
    }
}
