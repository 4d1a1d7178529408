use super::*;

/// Feeds `input` in pieces of `step` bytes; returns the ambiguous index (NONE if none)
/// and the number of heads seen.
fn run(input: &[u8], step: usize) -> (u64, u64, State) {
    let verdicts = Verdicts::new();
    let mut i = HeadInspector::new((), verdicts.clone());
    for piece in input.chunks(step) {
        i.inspect(piece);
    }
    (
        verdicts.ambiguous.load(Ordering::Acquire),
        i.requests,
        i.state,
    )
}

const PLAIN: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
const CHUNKED: &[u8] = b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n";
const BOTH: &[u8] = b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
const BOTH_TE_FIRST: &[u8] =
    b"POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n";

#[test]
fn plain_and_chunked_requests_are_not_ambiguous_in_any_split() {
    let stream = [PLAIN, CHUNKED, PLAIN, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
    for step in [1, 2, 3, 7, 64, 4096] {
        assert_eq!(run(&stream, step), (NONE, 4, State::Head), "step {step}");
    }
}

#[test]
fn flags_the_request_with_both_content_length_and_transfer_encoding() {
    for both in [BOTH, BOTH_TE_FIRST] {
        let stream = [PLAIN, CHUNKED, both].concat();
        for step in [1, 5, 4096] {
            let (ambiguous, heads, _) = run(&stream, step);
            assert_eq!((ambiguous, heads), (2, 3), "step {step}");
        }
    }
}

#[test]
fn a_smuggled_head_inside_a_body_is_not_a_request() {
    // The body of a Content-Length request looks like a CL+TE head: it is only counted.
    let body = BOTH;
    let head = format!("POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len());
    let stream = [head.as_bytes(), body, PLAIN].concat();
    assert_eq!(run(&stream, 3), (NONE, 2, State::Head));
}

#[test]
fn fails_closed_on_http2_prefaces_and_oversized_heads() {
    assert_eq!(run(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 4).2, State::Done);
    assert_eq!(
        run(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 4).2,
        State::Head
    );
    let huge = [
        b"GET / HTTP/1.1\r\nX: ".as_slice(),
        &vec![b'a'; MAX_HEAD + 10],
    ]
    .concat();
    assert_eq!(run(&huge, 1000).2, State::Done);
}

#[test]
fn bare_lf_line_endings_are_followed_like_hyper_does() {
    let stream = b"POST /a HTTP/1.1\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\nPOST /b HTTP/1.1\nContent-Length: 1\nTransfer-Encoding: chunked\n\n0\n\n";
    assert_eq!(run(stream, 2), (1, 2, State::Head));
}
