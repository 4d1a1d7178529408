use super::*;

fn verdicts_after(input: &[u8], step: usize) -> Arc<Verdicts> {
    let verdicts = Verdicts::new();
    let mut i = HeadInspector::new((), verdicts.clone());
    for piece in input.chunks(step) {
        i.inspect(piece);
    }
    verdicts
}

#[test]
fn an_upgrade_request_does_not_hide_a_later_ambiguous_one() {
    let v = verdicts_after(
        b"POST /a HTTP/1.1\r\nUpgrade: foo\r\nContent-Length: 2\r\n\r\nokPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        7,
    );
    assert_eq!(v.refusal(0), None);
    assert!(v.refusal(1).is_some());
}

#[test]
fn an_oversized_head_and_everything_after_it_is_refused() {
    let big = [
        b"GET /ok HTTP/1.1\r\n\r\n".as_slice(),
        b"GET / HTTP/1.1\r\nX: ",
        &vec![b'a'; MAX_HEAD + 10],
        b"\r\n\r\n",
    ]
    .concat();
    let v = verdicts_after(&big, 4096);
    assert_eq!(v.refusal(0), None);
    assert!(v.refusal(1).is_some());
    assert!(v.refusal(7).is_some());
}

#[test]
fn a_bad_chunk_size_refuses_what_follows() {
    let v = verdicts_after(
        b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        3,
    );
    assert_eq!(v.refusal(0), None);
    assert!(v.refusal(1).is_some());
}
