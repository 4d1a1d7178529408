//! `thumbprints.files` / `source_ips.files` text (`allowlist::parse_list_text`), for both entry
//! types. Checks that one bad line rejects the file naming *that* line, that accepted entries
//! are canonical, and that the remote list's plain-text reading of the same bytes agrees.
#![no_main]

#[path = "common.rs"]
mod common;

use hookgate::fuzz_api::{parse_list_text, parse_remote_list};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // List files are read with `read_to_string`: anything else is a read error before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    for kind in common::KINDS {
        let got = parse_list_text(text, kind);
        assert_eq!(got, parse_list_text(text, kind), "parsing is deterministic");
        match &got {
            Ok(entries) => {
                assert!(entries.len() <= lines.len(), "more entries than lines");
                for entry in entries {
                    common::assert_canonical_entry(entry, kind);
                }
            }
            Err((line, message)) => {
                let line = *line;
                assert!(
                    (1..=lines.len()).contains(&line),
                    "error on line {line} of {}",
                    lines.len()
                );
                assert!(!message.is_empty());
                // The named line is the first bad one: it fails alone, with the same message,
                // and everything before it parses.
                assert_eq!(
                    parse_list_text(lines[line - 1], kind),
                    Err((1, message.clone())),
                    "line {line} alone"
                );
                assert!(
                    parse_list_text(&lines[..line - 1].join("\n"), kind).is_ok(),
                    "lines before {line}"
                );
            }
        }

        // A remote list body that is plain text follows the same line rules, except that a bad
        // line is skipped instead of rejecting the body (SPEC §2). Bodies that look like JSON,
        // or start with a BOM (stripped only for remote bodies), read differently by design.
        let json_like = text.trim_start().starts_with(['[', '{']);
        if !json_like && !text.starts_with('\u{feff}') {
            let remote = parse_remote_list(data, kind);
            assert_eq!(
                remote.rejected, None,
                "plain UTF-8 text is never rejected as a whole"
            );
            match &got {
                Ok(entries) => {
                    assert_eq!(
                        &remote.entries, entries,
                        "file and remote text readings differ"
                    );
                    assert_eq!(remote.skipped, 0, "remote skipped a line the file accepts");
                }
                Err(_) => assert!(
                    remote.skipped >= 1,
                    "remote accepted every line of a rejected file"
                ),
            }
        }
    }
});
