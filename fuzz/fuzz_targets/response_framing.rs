//! HTTP/1.1 response framing (`http1::response` and the body decoder), fed the bytes an
//! upstream answers with. Beyond "no panic": every response hookgate's client reads whole,
//! hyper 1's client, fed the same bytes, reads as the same response (status, header fields,
//! body); anything else hookgate refuses (SPEC §3 item 4: 502).
#![no_main]

use hookgate::fuzz_api::http1_response_disagreement;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte's low bit: the request was HEAD.
    let Some((&flags, answer)) = data.split_first() else {
        return;
    };
    if let Some(why) = http1_response_disagreement(answer, flags & 1 == 1) {
        panic!("differential: {why}");
    }
});
