//! HTTP/1.1 request framing (`http1::framing`), fed the bytes a client's connection carries.
//! Beyond "no panic": every byte belongs to exactly one request or comes after the refusal
//! (or after `Connection: close`); read sizes do not change the reading; and hyper 1's server,
//! fed the same bytes, reads every request hookgate read as the same request and no request
//! hookgate neither read nor refused (`http1::differential`).
#![no_main]

use hookgate::fuzz_api::{http1_disagreement, http1_tiling_violation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a read size, so the fuzzer explores where reads split the stream.
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let split = usize::from(split % 64) + 1;
    if let Some(why) = http1_tiling_violation(stream, split) {
        panic!("tiling: {why}");
    }
    if let Some(why) = http1_disagreement(stream, &[split]) {
        panic!("differential: {why}");
    }
});
