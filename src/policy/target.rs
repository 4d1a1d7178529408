//! Where a request is addressed (its Host and its path), checked for what two parsers could
//! read differently, rejected with 400 before any other check. Where a request ends is decided
//! elsewhere: for HTTP/1.1 by `http1::framing`, for HTTP/2 by its frames (the h2 crate refuses
//! Transfer-Encoding and conflicting or malformed Content-Length, RFC 9113 §8.1.1, §8.2.2).

use http::HeaderMap;

use super::percent::{units, Unit};
use super::Denied;

/// Exactly one host, without userinfo: one `Host` field (RFC 9112 §3.2: a request without it,
/// or with two, is refused), or an HTTP/2 `:authority` alone. A Host that disagrees with the
/// request target's authority (HTTP/2 `:authority`, or an HTTP/1 absolute-form target) is
/// ambiguous (RFC 9113 §8.3.1): which one would the upstream use?
pub(crate) fn check_host(
    authority: Option<&http::uri::Authority>,
    headers: &HeaderMap,
) -> Result<(), Denied> {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Denied::BadRequest("more than one Host"));
    }
    if authority.is_some_and(|a| a.as_str().contains('@')) {
        return Err(Denied::BadRequest(
            "userinfo in the request target's authority",
        ));
    }
    let Some(host) = host else {
        return match authority {
            Some(_) => Ok(()),
            None => Err(Denied::BadRequest("no Host header")),
        };
    };
    let parsed = http::uri::Authority::try_from(host.as_bytes())
        .map_err(|_| Denied::BadRequest("malformed Host header"))?;
    if parsed.as_str().contains('@') {
        return Err(Denied::BadRequest("userinfo in the Host header"));
    }
    match authority {
        Some(a) if !host.as_bytes().eq_ignore_ascii_case(a.as_str().as_bytes()) => Err(
            Denied::BadRequest("Host header differs from the request target's authority"),
        ),
        _ => Ok(()),
    }
}

/// A `.` or `..` segment, also percent-encoded (`%2e`), hidden behind an encoded slash or
/// backslash (`..%2f`, `..\`) or a path parameter (`..;x`, which Tomcat and Spring read as
/// `..`), which an upstream that decodes before normalising would follow. Double encoding
/// (`%25`), bytes that do not decode to UTF-8 (overlong `%c0%ae`), and an encoded `/` or any `\`
/// are refused too: no webhook needs them, and upstreams disagree on what they mean (so the
/// route a path falls under, SPEC §8, could differ from the one the upstream serves).
pub(crate) fn check_path(path: &str) -> Result<(), Denied> {
    if !path.starts_with('/') {
        return Err(Denied::BadRequest("request target is not an absolute path"));
    }
    if path.contains('\\') {
        return Err(Denied::BadRequest("backslash in path"));
    }
    let mut decoded = Vec::with_capacity(64);
    for segment in path.split('/') {
        decoded.clear();
        percent_decode(segment.as_bytes(), &mut decoded)?;
        if segment.contains("%25") {
            return Err(Denied::BadRequest("double percent-encoding in path"));
        }
        if std::str::from_utf8(&decoded).is_err() {
            return Err(Denied::BadRequest("path does not decode to UTF-8"));
        }
        if decoded.iter().any(|&b| b == b'/' || b == b'\\') {
            return Err(Denied::BadRequest("encoded slash or backslash in path"));
        }
        let name = decoded.split(|&b| b == b';').next().unwrap_or_default();
        if name == b"." || name == b".." {
            return Err(Denied::BadRequest("dot segment in path"));
        }
    }
    Ok(())
}

fn percent_decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), Denied> {
    for unit in units(input) {
        let byte = match unit {
            Unit::Plain(b) => b,
            Unit::Escaped(0) => return Err(Denied::BadRequest("NUL byte in path")),
            Unit::Escaped(b) => b,
            Unit::Malformed => {
                return Err(Denied::BadRequest("malformed percent-encoding in path"))
            }
        };
        out.push(byte);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn rejects_a_host_that_differs_from_the_authority() {
        let auth: http::uri::Authority = "hooks.example:8443".parse().expect("authority");
        let same = headers(&[("host", "HOOKS.example:8443")]);
        let other = headers(&[("host", "evil.example")]);
        assert!(check_host(Some(&auth), &same).is_ok());
        assert!(check_host(Some(&auth), &other).is_err());
        assert!(check_host(None, &other).is_ok());
        assert!(check_host(Some(&auth), &headers(&[])).is_ok());
    }

    #[test]
    fn wants_exactly_one_host_without_userinfo() {
        let auth: http::uri::Authority = "hooks.example".parse().expect("authority");
        let with_user: http::uri::Authority = "u:p@hooks.example".parse().expect("authority");
        let two = headers(&[("host", "hooks.example"), ("host", "hooks.example")]);
        for (authority, h, why) in [
            (None, headers(&[]), "no Host header"),
            (None, two.clone(), "more than one Host"),
            (Some(&auth), two, "more than one Host"),
            (
                None,
                headers(&[("host", "u@hooks.example")]),
                "userinfo in the Host header",
            ),
            (
                Some(&with_user),
                headers(&[]),
                "userinfo in the request target's authority",
            ),
            (None, headers(&[("host", "a b")]), "malformed Host header"),
        ] {
            assert_eq!(check_host(authority, &h), Err(Denied::BadRequest(why)));
        }
        assert!(check_host(None, &headers(&[("host", "hooks.example:8443")])).is_ok());
        assert!(check_host(None, &headers(&[("host", "[::1]:8443")])).is_ok());
    }

    #[test]
    fn rejects_dot_segments_plain_and_encoded() {
        for bad in [
            "/a/../b",
            "/a/./b",
            "/..",
            "/.",
            "/a/%2e%2e/b",
            "/a/%2E./b",
            "/a/.%2e",
            "/%2e",
            "/a/..%2fb",
            "/a/..%2Fetc",
            "/a/..%5cb",
            "/a/..\\b",
            "/a/%zz",
            "/a/%2",
            "/a%00b",
            "/a/..;/b",
            "/a/%2e%2e;x/b",
            "/a/.;x",
            "/a/%252e%252e/b",
            "/a/%c0%ae%c0%ae/b",
            "/hooks%2fx",
            "/hooks%2Fx",
            "/hooks%5cx",
            "/hooks\\x",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accepts_ordinary_paths_with_dots_inside_names() {
        for good in [
            "/",
            "/webhooks/copyleaks",
            "/a/.well-known/x",
            "/a/b..c",
            "/v1.2/hook",
            "/a/%41",
            "/a//b",
        ] {
            assert!(check_path(good).is_ok(), "{good}");
        }
    }
}
