//! The normalized path of SPEC §8, which decides which rule a path falls under however it is
//! spelled: percent-encoded unreserved characters decoded, `;` parameters dropped from each
//! segment, runs of `/` merged, ASCII case ignored. It only selects; the path is forwarded as
//! received. Encoded `/` and `\` never get here: framing refuses them (`check_path`).

/// `path` (as received) in normalized form.
pub(crate) fn normalized(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        // Tomcat, Jetty and Spring route `/hooks;x/a` as `/hooks/a`.
        let name = segment.split(';').next().unwrap_or_default();
        if i > 0 && !out.ends_with('/') {
            out.push('/');
        }
        push_decoded_lowercase(&mut out, name);
    }
    out
}

/// True if `path`'s normalized form starts with one of `normalized_prefixes`.
pub(crate) fn is_under(normalized_prefixes: &[String], path: &str) -> bool {
    let path = normalized(path);
    normalized_prefixes
        .iter()
        .any(|p| path.starts_with(p.as_str()))
}

/// Decodes `%XX` where it stands for an unreserved character (RFC 3986 §2.3), which every router
/// treats as the character itself; other escapes stay encoded (their hex in lowercase).
fn push_decoded_lowercase(out: &mut String, segment: &str) {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let c = (h * 16 + l) as u8;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(c.to_ascii_lowercase() as char);
                    i += 3;
                    continue;
                }
            }
        }
        // Multi-byte UTF-8 is copied as is; only ASCII letters fold.
        let len = utf8_len(bytes[i]);
        let end = (i + len).min(bytes.len());
        out.push_str(&segment[i..end].to_ascii_lowercase());
        i = end;
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_as_spec_section_8_says() {
        for (raw, want) in [
            ("/", "/"),
            ("/copyleaks/completed/42", "/copyleaks/completed/42"),
            ("/%63ompleted/x", "/completed/x"),
            ("/COPYLEAKS/Completed/", "/copyleaks/completed/"),
            ("//copyleaks///completed", "/copyleaks/completed"),
            ("/copyleaks;x/completed/", "/copyleaks/completed/"),
            ("/hooks;/a", "/hooks/a"),
            ("/hooks;jsessionid=1/a", "/hooks/a"),
            ("/;x/hooks", "/hooks"),
            ("/a;x=1/b", "/a/b"),
            ("/a%7Eb%2Dc%5F%2E", "/a~b-c_."),
            ("/a%20b%3Bc", "/a%20b%3bc"),
            ("/a%3", "/a%3"),
            ("/a%", "/a%"),
            ("/é/Ü", "/é/Ü"),
        ] {
            assert_eq!(normalized(raw), want, "{raw}");
        }
    }

    #[test]
    fn a_prefix_holds_for_every_spelling_of_its_paths() {
        let prefixes = vec![normalized("/hooks/")];
        for path in [
            "/hooks/x",
            "/%68ooks/x",
            "//hooks/x",
            "/Hooks/x",
            "/HOOKS//x",
            "/hooks;x/a",
            "/hooks;/a",
            "/hooks;jsessionid=1/a",
            "/%48OOKS;v=2//a",
        ] {
            assert!(is_under(&prefixes, path), "{path}");
        }
        for path in [
            "/hook/x",
            "/other/hooks/x",
            "/",
            "/hooksx",
            "/hooks",
            "/hooks%2fx",
        ] {
            assert!(!is_under(&prefixes, path), "{path}");
        }
    }
}
