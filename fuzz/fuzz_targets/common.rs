//! Invariants shared by the list targets: what an accepted entry must look like.

use hookgate::fuzz_api::{parse_list_text, ListKind};

pub const KINDS: [ListKind; 2] = [ListKind::Thumbprints, ListKind::SourceIps];

/// An accepted entry is canonical: its displayed form parses back to itself, so the merged set
/// in force, the entries gauge and `hookgate check` all describe the same value.
pub fn assert_canonical_entry(entry: &str, kind: ListKind) {
    let reparsed = match kind {
        ListKind::Thumbprints => {
            let (algorithm, hex) = entry
                .split_once(':')
                .expect("thumbprint shows its algorithm");
            let digits = match algorithm {
                "sha1" => 40,
                "sha256" => 64,
                _ => panic!("unknown algorithm in {entry:?}"),
            };
            assert!(
                hex.len() == digits
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "thumbprint {entry:?} is not {digits} lowercase hex digits"
            );
            parse_list_text(hex, kind)
        }
        ListKind::SourceIps => parse_list_text(entry, kind),
    };
    assert_eq!(
        reparsed,
        Ok(vec![entry.to_owned()]),
        "{kind:?} entry {entry:?} does not round-trip"
    );
}
