//! Remote allow-list response bodies (`allowlist::remote::parse_entries`: JSON array, object
//! holding arrays, array of objects, or plain text), with the entry parsers hookgate's refresh
//! uses for thumbprints and source networks. Checks the log-safety bounds and entry shape.
#![no_main]

#[path = "common.rs"]
mod common;

use hookgate::fuzz_api::parse_remote_list;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in common::KINDS {
        let got = parse_remote_list(data, kind);
        assert_eq!(
            got,
            parse_remote_list(data, kind),
            "parsing is deterministic"
        );
        if got.rejected.is_some() {
            // A malformed body is a failed refresh as a whole: nothing may leak through.
            assert!(got.entries.is_empty() && got.skipped == 0 && got.skipped_samples.is_empty());
        }
        assert!(
            std::str::from_utf8(data).is_ok() || got.rejected.is_some(),
            "non-UTF-8 accepted"
        );
        // Samples go to the log: bounded in number and length, no control characters.
        assert_eq!(got.skipped_samples.len(), got.skipped.min(5));
        for sample in &got.skipped_samples {
            assert!(
                sample.chars().count() <= 80,
                "sample of {} chars",
                sample.chars().count()
            );
            assert!(
                !sample.chars().any(char::is_control),
                "control character in {sample:?}"
            );
        }
        for entry in &got.entries {
            common::assert_canonical_entry(entry, kind);
        }
    }
});
