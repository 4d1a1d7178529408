//! PROXY protocol v1/v2 header parser (`proxy_protocol::parse_proxy_header`), fed the bytes a
//! trusted proxy's connection starts with. Beyond "no panic", it checks the promises the
//! socket reader (`read_proxy_header`) builds on: it consumes exactly what the parser says.
#![no_main]

use hookgate::fuzz_api::parse_proxy_header;
use libfuzzer_sys::fuzz_target;

/// v2 signature, the 16-byte fixed part, and the largest accepted payload.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
const V2_FIXED_LEN: usize = 16;
const MAX_HEADER_LEN: usize = V2_FIXED_LEN + 4096;
const V1_MAX_LEN: usize = 107;

fuzz_target!(|data: &[u8]| {
    let got = parse_proxy_header(data);
    assert_eq!(got, parse_proxy_header(data), "parsing is deterministic");

    // Never looks past the longest possible header.
    let capped = &data[..data.len().min(MAX_HEADER_LEN)];
    assert_eq!(
        got,
        parse_proxy_header(capped),
        "bytes past {MAX_HEADER_LEN} changed the result"
    );

    match &got {
        Ok(Some((_, len))) => {
            let len = *len;
            assert!(
                len > 0 && len <= data.len(),
                "claims {len} of {} bytes",
                data.len()
            );
            // The header delimits itself: the bytes after it (the ClientHello) are not looked at.
            assert_eq!(
                got,
                parse_proxy_header(&data[..len]),
                "header alone parses differently"
            );
            if data.starts_with(V2_SIGNATURE) {
                let declared = usize::from(u16::from_be_bytes([data[14], data[15]]));
                assert_eq!(
                    len,
                    V2_FIXED_LEN + declared,
                    "v2 length is the declared one"
                );
            } else {
                assert!(
                    data.starts_with(b"PROXY "),
                    "accepted a header that is neither v1 nor v2"
                );
                assert!(len <= V1_MAX_LEN, "v1 header of {len} bytes");
                assert_eq!(&data[len - 2..len], b"\r\n", "v1 header ends with CRLF");
            }
        }
        Ok(None) => assert!(
            data.len() < MAX_HEADER_LEN,
            "an incomplete header of {} bytes",
            data.len()
        ),
        Err(_) => {}
    }

    // The reader parses growing prefixes of the same stream: every prefix must be a consistent
    // view of it. A complete header seen early is the final answer, an error stays an error,
    // and "incomplete" of the whole means "incomplete" of every prefix.
    for end in 0..capped.len() {
        match parse_proxy_header(&capped[..end]) {
            Ok(Some(header)) => assert_eq!(got, Ok(Some(header)), "prefix of {end} bytes"),
            Err(e) => assert!(
                got.is_err(),
                "prefix of {end} bytes failed ({e}), whole did not"
            ),
            Ok(None) => {}
        }
    }
});
