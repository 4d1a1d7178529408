//! An upstream's HTTP/1.1 response, read as strictly as a request: where its head ends (CRLF
//! only, [`HeadScan`]), how its body is delimited (RFC 9112 §6.3), and why it cannot be relayed
//! faithfully (SPEC §3 item 4: 502, and the connection is dropped).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};

use super::framing::{Body, FramingFields, MAX_HEADERS};

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delimit {
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection (a response without Content-Length or
    /// Transfer-Encoding); the connection is not reused.
    Close,
}

/// A final response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Delimit,
    /// Whether the connection may carry another request afterwards.
    pub keep_alive: bool,
}

/// What one head was.
#[derive(Debug)]
pub(crate) enum Parsed {
    Final(ResponseHead),
    /// `100 Continue` or `103 Early Hints`: harmless, skipped; the final head follows.
    Interim,
}

/// Parses a complete head (as [`HeadScan`] delimited it); `to_head`: the request was HEAD.
pub(crate) fn parse_response(head: &Bytes, to_head: bool) -> Result<Parsed, &'static str> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(len)) if len == head.len() => {}
        Err(httparse::Error::TooManyHeaders) => return Err("more than 100 header fields"),
        _ => return Err("malformed response head"),
    }
    let code = resp.code.unwrap_or_default();
    let status = StatusCode::from_u16(code).map_err(|_| "malformed status code")?;
    match code {
        100 | 103 => return Ok(Parsed::Interim),
        101 => return Err("101 Switching Protocols to a request that asked for no upgrade"),
        102..=199 => return Err("an informational (1xx) response other than 100 or 103"),
        _ => {}
    }
    let http11 = resp.version == Some(1);
    // Room for `X-Request-Id`, which the handler adds: no regrowth per response.
    let mut headers = HeaderMap::with_capacity(resp.headers.len() + 2);
    let mut fields = FramingFields::default();
    for field in resp.headers.iter() {
        fields.see(field.name.as_bytes(), field.value, http11)?;
        let name =
            HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| "malformed header name")?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(field.value))
            .map_err(|_| "malformed header value")?;
        headers.append(name, value);
    }
    let framed = match fields.body()? {
        Some(Body::Length(n)) => Delimit::Length(n),
        Some(Body::Chunked) => Delimit::Chunked,
        None => Delimit::Close,
    };
    // RFC 9112 §6.3: these have no body, whatever their fields say.
    let body = if to_head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED
    {
        Delimit::Length(0)
    } else {
        framed
    };
    let keep_alive = body != Delimit::Close && fields.keep_alive(http11);
    Ok(Parsed::Final(ResponseHead {
        status,
        version: if http11 {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        },
        headers,
        body,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Result<Parsed, &'static str> {
        parse_response(&Bytes::copy_from_slice(head.as_bytes()), false)
    }

    fn body_of(head: &str) -> Delimit {
        match parse(head) {
            Ok(Parsed::Final(h)) => h.body,
            other => panic!("{head:?}: {other:?}"),
        }
    }

    #[test]
    fn delimits_bodies_as_rfc_9112_says() {
        assert_eq!(
            body_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Delimit::Length(5)
        );
        assert_eq!(
            body_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Delimit::Chunked
        );
        assert_eq!(body_of("HTTP/1.1 200 OK\r\n\r\n"), Delimit::Close);
        assert_eq!(
            body_of("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
            Delimit::Length(0)
        );
        let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        assert!(matches!(
            parse_response(&head, true),
            Ok(Parsed::Final(ResponseHead {
                body: Delimit::Length(0),
                keep_alive: true,
                ..
            }))
        ));
    }

    #[test]
    fn refuses_what_cannot_be_relayed_faithfully() {
        for (head, why) in [
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
                "101 Switching Protocols to a request that asked for no upgrade",
            ),
            (
                "HTTP/1.1 102 Processing\r\n\r\n",
                "an informational (1xx) response other than 100 or 103",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                "Content-Length together with Transfer-Encoding",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                "Transfer-Encoding other than chunked alone",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                "conflicting Content-Length values",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "malformed Content-Length",
            ),
            (
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "Transfer-Encoding in HTTP/1.0",
            ),
            ("HTTP/1.1 2000 OK\r\n\r\n", "malformed response head"),
            (
                "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
                "malformed response head",
            ),
        ] {
            assert_eq!(parse(head).err(), Some(why), "{head:?}");
        }
        assert!(matches!(
            parse("HTTP/1.1 100 Continue\r\n\r\n"),
            Ok(Parsed::Interim)
        ));
        assert!(matches!(
            parse("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
            Ok(Parsed::Interim)
        ));
    }

    #[test]
    fn keeps_the_connection_only_when_both_sides_may() {
        let keep = |head: &str| match parse(head) {
            Ok(Parsed::Final(h)) => h.keep_alive,
            other => panic!("{other:?}"),
        };
        assert!(keep("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!keep(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!keep("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(keep(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!keep("HTTP/1.1 200 OK\r\n\r\n"), "delimited by close");
    }
}
