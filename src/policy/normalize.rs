//! The normalized path of SPEC §8, which decides which rule a path falls under however it is
//! spelled: percent-encoded unreserved characters decoded, `;` parameters dropped from each
//! segment, runs of `/` merged, ASCII case ignored. It only selects; the path is forwarded as
//! received. Encoded `/` and `\` never get here: framing refuses them (`check_path`).

use super::percent::{units, Unit};

/// `path` (as received) in normalized form.
pub(crate) fn normalized(path: &str) -> String {
    let mut out = Vec::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        // Tomcat, Jetty and Spring route `/hooks;x/a` as `/hooks/a`.
        let name = segment.split(';').next().unwrap_or_default();
        if i > 0 && out.last() != Some(&b'/') {
            out.push(b'/');
        }
        push_decoded_lowercase(&mut out, name.as_bytes());
    }
    // Only ASCII was added or changed, so the UTF-8 of `path` is intact.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// True if `path`'s normalized form starts with one of `normalized_prefixes`.
pub(crate) fn is_under(normalized_prefixes: &[String], path: &str) -> bool {
    let path = normalized(path);
    normalized_prefixes
        .iter()
        .any(|p| path.starts_with(p.as_str()))
}

/// Decodes `%XX` where it stands for an unreserved character (RFC 3986 §2.3), which every router
/// treats as the character itself; other escapes stay encoded (their hex in lowercase), and a
/// stray `%` stays as it is.
fn push_decoded_lowercase(out: &mut Vec<u8>, segment: &[u8]) {
    for unit in units(segment) {
        match unit {
            Unit::Escaped(c)
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') =>
            {
                out.push(c.to_ascii_lowercase());
            }
            Unit::Escaped(c) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'%', HEX[usize::from(c >> 4)], HEX[usize::from(c & 0xf)]]);
            }
            Unit::Malformed => out.push(b'%'),
            // Bytes of multi-byte UTF-8 are left alone; only ASCII letters fold.
            Unit::Plain(b) => out.push(b.to_ascii_lowercase()),
        }
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
