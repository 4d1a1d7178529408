//! The developerPayload lookup (`policy::pointer::lookup`, one pass, nothing built but the value
//! found) beside the full `serde_json::Value` parse and `Value::pointer`: both refuse a body or
//! both find the same value (or nothing). Input: a pointer line starting with `/` then the body,
//! or else the first byte picks one of the pointers below and the rest is the body.
#![no_main]

use hookgate::fuzz_api::json_pointer_disagreement;
use libfuzzer_sys::fuzz_target;

const POINTERS: [&str; 8] = [
    "/developerPayload",
    "",
    "/a/0",
    "/a~1b/m~0n",
    "/0",
    "/meta/p",
    "/",
    "/list/1/p",
];

fuzz_target!(|data: &[u8]| {
    let (pointer, body) = match data.first() {
        Some(b'/') => {
            let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
            let Ok(pointer) = std::str::from_utf8(&data[..end]) else {
                return;
            };
            (pointer, data.get(end + 1..).unwrap_or_default())
        }
        Some(&b) => (POINTERS[usize::from(b) % POINTERS.len()], &data[1..]),
        None => return,
    };
    if let Some(why) = json_pointer_disagreement(body, pointer) {
        panic!("pointer {pointer:?}: {why}");
    }
});
