//! PROXY protocol v1/v2 header reader (HAProxy spec), run right after accept and before the TLS
//! handshake on a connection from a trusted proxy. It consumes exactly the header and never a byte
//! more, because the TLS ClientHello that follows on the same socket belongs to rustls.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The 12-byte v2 signature; no valid v1 header, HTTP request or TLS record starts with it.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/protocol and the 16-bit length of the rest.
const V2_FIXED_LEN: usize = 16;
/// Cap on the v2 address block plus TLVs: generous for real senders (HAProxy, AWS NLB TLVs),
/// yet small enough that a broken proxy cannot make us buffer up to 64 KiB per connection.
const V2_MAX_PAYLOAD: usize = 4096;
/// Longest possible header of either version; the reader never buffers more than this.
const MAX_HEADER_LEN: usize = V2_FIXED_LEN + V2_MAX_PAYLOAD;
const V1_PREFIX: &[u8] = b"PROXY ";
/// HAProxy spec: a v1 line is at most 107 bytes including the CRLF.
const V1_MAX_LEN: usize = 107;

/// What the PROXY header says about the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxiedSource {
    /// The original client address from the header (TCP4/TCP6, v1 or v2 PROXY command); an
    /// IPv4-mapped IPv6 address is returned as sent, the caller normalises it.
    Address(SocketAddr),
    /// v2 LOCAL command (the proxy's own health check), v2 PROXY with AF_UNSPEC, or v1
    /// `UNKNOWN`: the header names no client, so the peer's own address stays the client.
    Local,
}

impl ProxiedSource {
    /// The client address to use from here on: the header's source, or the TCP peer for `Local`.
    pub(crate) fn client_addr(self, peer: SocketAddr) -> SocketAddr {
        match self {
            ProxiedSource::Address(addr) => addr,
            ProxiedSource::Local => peer,
        }
    }
}

/// Why a connection's PROXY header was rejected; the connection must then be closed.
/// Messages never quote the peer's bytes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    #[error("reading the PROXY protocol header failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "connection closed after {received} bytes, before the PROXY protocol header was complete"
    )]
    UnexpectedEof { received: usize },
    #[error("connection does not start with a PROXY protocol v1 or v2 header")]
    NotProxyHeader,
    #[error("malformed PROXY protocol v1 header: {0}")]
    MalformedV1(&'static str),
    #[error("PROXY protocol v1 header has no CRLF within {V1_MAX_LEN} bytes")]
    V1TooLong,
    #[error("PROXY protocol v2 header has version {0}, expected 2")]
    BadV2Version(u8),
    #[error("PROXY protocol v2 header has unknown command {0}, expected LOCAL (0) or PROXY (1)")]
    BadV2Command(u8),
    #[error("PROXY protocol v2 header has unknown address family/protocol byte {0:#04x}")]
    BadV2Family(u8),
    #[error("PROXY protocol v2 header proxies {0}; only TCP over IPv4 or IPv6 is supported")]
    UnsupportedV2Transport(&'static str),
    #[error("PROXY protocol v2 header declares {declared} bytes after the fixed part, more than the {V2_MAX_PAYLOAD} accepted")]
    V2TooLong { declared: usize },
    #[error("PROXY protocol v2 header declares {declared} address bytes, {family} needs {needed}")]
    V2AddressTooShort {
        declared: usize,
        family: &'static str,
        needed: usize,
    },
}

/// Reads the PROXY header from a freshly accepted connection, consuming exactly its bytes.
///
/// Peeks to learn the header's extent and `read_exact`s only bytes known to be header, so the
/// TLS ClientHello behind it stays in the socket. An incomplete header is consumed as far as it
/// goes and the next peek waits for more data (no busy loop). No timer: the caller wraps this
/// in `tokio::time::timeout(handshake_timeout, ..)`.
pub(crate) async fn read_proxy_header(
    stream: &mut TcpStream,
) -> Result<ProxiedSource, ProxyHeaderError> {
    // buf[..consumed] has been read out of the socket; peeks land right after it, so the parser
    // always sees the header from its first byte.
    let mut buf = vec![0u8; MAX_HEADER_LEN];
    let mut consumed = 0;
    loop {
        let peeked = stream.peek(&mut buf[consumed..]).await?;
        if peeked == 0 {
            return Err(ProxyHeaderError::UnexpectedEof { received: consumed });
        }
        let seen = consumed + peeked;
        // Ok(None) means every byte seen is a strict prefix of the header, so consuming all of
        // it is safe and the next peek waits for more; Ok(Some) gives the header's exact end.
        let (end, source) = match parse_proxy_header(&buf[..seen])? {
            Some((source, len)) => (len, Some(source)),
            None => (seen, None),
        };
        // `end > consumed` because what was consumed was a strict prefix of this header; a
        // broken promise is an error, not a panic (release builds abort on panic).
        let header_part = buf
            .get_mut(consumed..end)
            .filter(|part| !part.is_empty())
            .ok_or_else(|| std::io::Error::other("PROXY header parser contradicted itself"))?;
        read_header_bytes(stream, header_part, consumed).await?;
        if let Some(source) = source {
            return Ok(source);
        }
        consumed = end;
    }
}

/// `read_exact` of bytes already seen by `peek`, so it completes without waiting.
async fn read_header_bytes(
    stream: &mut TcpStream,
    dst: &mut [u8],
    consumed: usize,
) -> Result<(), ProxyHeaderError> {
    match stream.read_exact(dst).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(ProxyHeaderError::UnexpectedEof { received: consumed })
        }
        Err(e) => Err(e.into()),
    }
}

/// Parses a PROXY header at the start of `buf`.
///
/// `Ok(Some((source, len)))`: the header is `buf[..len]` (`len <= buf.len()`); bytes after it
/// are not looked at. `Ok(None)`: `buf` is a strict prefix of a header that may still turn out
/// valid, so every byte of it is header. `Err`: this is not a valid PROXY header.
pub(crate) fn parse_proxy_header(
    buf: &[u8],
) -> Result<Option<(ProxiedSource, usize)>, ProxyHeaderError> {
    if starts_like(buf, &V2_SIGNATURE) {
        parse_v2(buf)
    } else if starts_like(buf, V1_PREFIX) {
        parse_v1(buf)
    } else {
        Err(ProxyHeaderError::NotProxyHeader)
    }
}

/// Whether `buf` and `signature` agree on their common length (true for an empty `buf`).
fn starts_like(buf: &[u8], signature: &[u8]) -> bool {
    let n = buf.len().min(signature.len());
    buf[..n] == signature[..n]
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxiedSource, usize)>, ProxyHeaderError> {
    let Some(fixed) = buf.get(..V2_FIXED_LEN) else {
        return Ok(None);
    };
    let (version, command) = (fixed[12] >> 4, fixed[12] & 0x0f);
    if version != 2 {
        return Err(ProxyHeaderError::BadV2Version(version));
    }
    if command > 1 {
        return Err(ProxyHeaderError::BadV2Command(command));
    }
    let declared = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    // Checked before waiting for the payload, so an oversized header fails at once.
    if declared > V2_MAX_PAYLOAD {
        return Err(ProxyHeaderError::V2TooLong { declared });
    }
    let len = V2_FIXED_LEN + declared;
    let Some(payload) = buf.get(V2_FIXED_LEN..len) else {
        return Ok(None);
    };
    if command == 0 {
        // LOCAL: the spec says to discard the whole block, family included, and use the
        // real connection endpoints.
        return Ok(Some((ProxiedSource::Local, len)));
    }
    let source = v2_proxied_source(fixed[13], payload)?;
    // TLVs after the addresses are skipped unparsed: none of them changes what we enforce, and
    // `declared` alone delimits the header in the stream.
    Ok(Some((source, len)))
}

/// The client address of a v2 PROXY command, from the family/protocol byte and the payload.
fn v2_proxied_source(fam: u8, payload: &[u8]) -> Result<ProxiedSource, ProxyHeaderError> {
    const STREAM: u8 = 1;
    let (family, protocol) = (fam >> 4, fam & 0x0f);
    if family > 3 || protocol > 2 {
        return Err(ProxyHeaderError::BadV2Family(fam));
    }
    match (family, protocol) {
        // AF_UNSPEC names no client, like v1 UNKNOWN; the spec lets us keep the real endpoints.
        (0, _) => Ok(ProxiedSource::Local),
        (3, _) => Err(ProxyHeaderError::UnsupportedV2Transport("a unix socket")),
        (_, STREAM) => {
            let (name, needed) = if family == 1 {
                ("AF_INET", 12)
            } else {
                ("AF_INET6", 36)
            };
            let a = payload
                .get(..needed)
                .ok_or(ProxyHeaderError::V2AddressTooShort {
                    declared: payload.len(),
                    family: name,
                    needed,
                })?;
            let (ip, port) = if family == 1 {
                let src: [u8; 4] = a[..4].try_into().expect("slice of 4 bytes");
                (IpAddr::from(src), [a[8], a[9]])
            } else {
                let src: [u8; 16] = a[..16].try_into().expect("slice of 16 bytes");
                (IpAddr::from(src), [a[32], a[33]])
            };
            Ok(ProxiedSource::Address(SocketAddr::new(
                ip,
                u16::from_be_bytes(port),
            )))
        }
        (_, 2) => Err(ProxyHeaderError::UnsupportedV2Transport("UDP (DGRAM)")),
        _ => Err(ProxyHeaderError::UnsupportedV2Transport(
            "an unspecified protocol",
        )),
    }
}

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxiedSource, usize)>, ProxyHeaderError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX_LEN {
            Err(ProxyHeaderError::V1TooLong)
        } else {
            Ok(None)
        };
    };
    let line = match lf.checked_sub(1).map(|cr| (&window[..cr], window[cr])) {
        Some((line, b'\r')) => line,
        _ => return Err(ProxyHeaderError::MalformedV1("line does not end with CRLF")),
    };
    let source = parse_v1_line(line)?;
    Ok(Some((source, lf + 1)))
}

/// Parses the line without its CRLF, strictly: single spaces, addresses of the stated family.
fn parse_v1_line(line: &[u8]) -> Result<ProxiedSource, ProxyHeaderError> {
    // The spec says anything after UNKNOWN up to the CRLF is to be ignored.
    if line == b"PROXY UNKNOWN" || line.starts_with(b"PROXY UNKNOWN ") {
        return Ok(ProxiedSource::Local);
    }
    let line = std::str::from_utf8(line)
        .map_err(|_| ProxyHeaderError::MalformedV1("header is not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let [_proxy, protocol, src, dst, sport, dport] = fields[..] else {
        return Err(ProxyHeaderError::MalformedV1(
            "expected 6 fields separated by single spaces",
        ));
    };
    let (src_ip, dst_ok) = match protocol {
        "TCP4" => (
            src.parse::<Ipv4Addr>().map(IpAddr::V4),
            dst.parse::<Ipv4Addr>().is_ok(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().map(IpAddr::V6),
            dst.parse::<Ipv6Addr>().is_ok(),
        ),
        _ => {
            return Err(ProxyHeaderError::MalformedV1(
                "protocol is not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    let src_ip = src_ip
        .map_err(|_| ProxyHeaderError::MalformedV1("source address invalid for the protocol"))?;
    if !dst_ok {
        return Err(ProxyHeaderError::MalformedV1(
            "destination address invalid for the protocol",
        ));
    }
    let src_port = parse_v1_port(sport)?;
    parse_v1_port(dport)?;
    Ok(ProxiedSource::Address(SocketAddr::new(src_ip, src_port)))
}

/// A decimal port 0-65535: digits only (no sign, no spaces) and no leading zero.
fn parse_v1_port(s: &str) -> Result<u16, ProxyHeaderError> {
    let canonical = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    canonical
        .then(|| s.parse::<u16>().ok())
        .flatten()
        .ok_or(ProxyHeaderError::MalformedV1(
            "port is not a decimal number 0-65535",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    const V1_TCP4: &[u8] = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n";
    const V1_TCP6: &[u8] = b"PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 65535 0\r\n";
    const V1_UNKNOWN: &[u8] = b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";

    fn v2(ver_cmd: u8, fam: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([ver_cmd, fam]);
        h.extend(
            u16::try_from(payload.len())
                .expect("test payload fits")
                .to_be_bytes(),
        );
        h.extend(payload);
        h
    }

    fn v2_tcp4(tlvs: &[u8]) -> Vec<u8> {
        let mut p = vec![203, 0, 113, 7, 192, 0, 2, 1, 0xdc, 0x04, 0x01, 0xbb];
        p.extend(tlvs);
        v2(0x21, 0x11, &p)
    }

    fn v2_tcp6(tlvs: &[u8]) -> Vec<u8> {
        let mut p = "2001:db8::1"
            .parse::<Ipv6Addr>()
            .expect("ip")
            .octets()
            .to_vec();
        p.extend("2001:db8::2".parse::<Ipv6Addr>().expect("ip").octets());
        p.extend([0x30, 0x39, 0x01, 0xbb]);
        p.extend(tlvs);
        v2(0x21, 0x21, &p)
    }

    /// An ALPN TLV ("h2") and an authority TLV, as HAProxy may send them.
    const TLVS: &[u8] = b"\x01\x00\x02h2\x02\x00\x0bexample.com";

    fn addr(s: &str) -> ProxiedSource {
        ProxiedSource::Address(s.parse().expect("test address"))
    }

    fn parsed(buf: &[u8]) -> (ProxiedSource, usize) {
        parse_proxy_header(buf)
            .expect("valid header")
            .expect("complete header")
    }

    #[test]
    fn parses_every_valid_v1_form() {
        assert_eq!(parsed(V1_TCP4), (addr("203.0.113.7:56324"), V1_TCP4.len()));
        assert_eq!(
            parsed(V1_TCP6),
            (addr("[2001:db8::1]:65535"), V1_TCP6.len())
        );
        assert_eq!(parsed(V1_UNKNOWN), (ProxiedSource::Local, V1_UNKNOWN.len()));
        assert_eq!(parsed(b"PROXY UNKNOWN\r\n"), (ProxiedSource::Local, 15));
        let mapped = b"PROXY TCP6 ::ffff:203.0.113.7 ::1 1 2\r\n";
        assert_eq!(parsed(mapped).0, addr("[::ffff:203.0.113.7]:1"));
    }

    #[test]
    fn parses_a_107_byte_v1_header_but_not_more() {
        let mut max = b"PROXY UNKNOWN ".to_vec();
        max.resize(V1_MAX_LEN - 2, b'x');
        max.extend(b"\r\n");
        assert_eq!(parsed(&max), (ProxiedSource::Local, V1_MAX_LEN));
        max.insert(20, b'x');
        assert!(matches!(
            parse_proxy_header(&max),
            Err(ProxyHeaderError::V1TooLong)
        ));
    }

    #[test]
    fn parses_every_valid_v2_form() {
        let cases = [
            (v2_tcp4(&[]), addr("203.0.113.7:56324")),
            (v2_tcp4(TLVS), addr("203.0.113.7:56324")),
            (v2_tcp6(&[]), addr("[2001:db8::1]:12345")),
            (v2_tcp6(TLVS), addr("[2001:db8::1]:12345")),
            (v2(0x20, 0x00, &[]), ProxiedSource::Local),
            (v2(0x20, 0x11, &[1; 12]), ProxiedSource::Local),
            (v2(0x21, 0x00, &[]), ProxiedSource::Local),
        ];
        for (header, want) in cases {
            assert_eq!(parsed(&header), (want, header.len()), "{header:x?}");
        }
    }

    #[test]
    fn stops_at_the_header_end_and_ignores_what_follows() {
        for header in [V1_TCP4.to_vec(), v2_tcp4(TLVS), v2(0x20, 0, &[])] {
            let mut with_hello = header.clone();
            with_hello.extend(b"\x16\x03\x01\x02\x00\x01");
            assert_eq!(parsed(&with_hello).1, header.len());
        }
    }

    #[test]
    fn asks_for_more_bytes_for_every_strict_prefix() {
        for header in [
            V1_TCP4.to_vec(),
            V1_TCP6.to_vec(),
            v2_tcp6(TLVS),
            v2(0x20, 0, &[]),
        ] {
            for cut in 0..header.len() {
                let got = parse_proxy_header(&header[..cut]).expect("prefix is not an error");
                assert!(got.is_none(), "cut at {cut} of {header:x?}");
            }
        }
    }

    fn rejects(buf: &[u8]) -> ProxyHeaderError {
        match parse_proxy_header(buf) {
            Err(e) => e,
            Ok(got) => panic!("accepted {:?}: {got:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn rejects_malformed_v1_headers() {
        let bad: &[&[u8]] = &[
            b"PROXY TCP4  203.0.113.7 192.0.2.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2 \r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2 3\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 +1 2\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1 -2\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 01 2\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 2\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1 999999\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1  2\r\n",
            b"PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.7 ::1 1 2\r\n",
            b"PROXY TCP6 203.0.113.7 ::1 1 2\r\n",
            b"PROXY TCP6 ::1 203.0.113.7 1 2\r\n",
            b"PROXY TCP4 203.000.113.7 192.0.2.1 1 2\r\n",
            b"PROXY TCP4 203.0.113 192.0.2.1 1 2\r\n",
            b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
            b"PROXY TCP5 203.0.113.7 192.0.2.1 1 2\r\n",
            b"PROXY tcp4 203.0.113.7 192.0.2.1 1 2\r\n",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY \r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\r\n",
            b"PROXY TCP4 203.0.113.7\t192.0.2.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1 \xff2\r\n",
            b"PROXY\tTCP4 203.0.113.7 192.0.2.1 1 2\r\n",
            b"proxy TCP4 203.0.113.7 192.0.2.1 1 2\r\n",
        ];
        for header in bad {
            let e = rejects(header);
            assert!(
                matches!(
                    e,
                    ProxyHeaderError::MalformedV1(_) | ProxyHeaderError::NotProxyHeader
                ),
                "{e}"
            );
        }
        assert!(matches!(
            rejects(&[b'P'; 200]),
            ProxyHeaderError::NotProxyHeader
        ));
        let mut endless = b"PROXY TCP4 ".to_vec();
        endless.resize(V1_MAX_LEN, b'1');
        assert!(matches!(rejects(&endless), ProxyHeaderError::V1TooLong));
    }

    #[test]
    fn rejects_malformed_v2_headers() {
        use ProxyHeaderError as E;
        let addrs4 = [1u8; 12];
        assert!(matches!(
            rejects(&v2(0x11, 0x11, &addrs4)),
            E::BadV2Version(1)
        ));
        assert!(matches!(
            rejects(&v2(0x31, 0x11, &addrs4)),
            E::BadV2Version(3)
        ));
        assert!(matches!(
            rejects(&v2(0x22, 0x11, &addrs4)),
            E::BadV2Command(2)
        ));
        assert!(matches!(
            rejects(&v2(0x2f, 0x11, &addrs4)),
            E::BadV2Command(15)
        ));
        assert!(matches!(
            rejects(&v2(0x21, 0x41, &addrs4)),
            E::BadV2Family(0x41)
        ));
        assert!(matches!(
            rejects(&v2(0x21, 0x13, &addrs4)),
            E::BadV2Family(0x13)
        ));
        for unsupported in [0x12, 0x22, 0x31, 0x32, 0x10, 0x20] {
            let e = rejects(&v2(0x21, unsupported, &[1; 216]));
            assert!(
                matches!(e, E::UnsupportedV2Transport(_)),
                "{unsupported:#x}: {e}"
            );
        }
        let e = rejects(&v2(0x21, 0x11, &[1; 11]));
        assert!(matches!(
            e,
            E::V2AddressTooShort {
                declared: 11,
                needed: 12,
                ..
            }
        ));
        let e = rejects(&v2(0x21, 0x21, &[1; 35]));
        assert!(matches!(
            e,
            E::V2AddressTooShort {
                declared: 35,
                needed: 36,
                ..
            }
        ));
        let e = rejects(&v2(0x21, 0x21, &[1; 12]));
        assert!(matches!(e, E::V2AddressTooShort { .. }));
        assert!(matches!(
            parsed(&v2(0x21, 0x11, &[0; V2_MAX_PAYLOAD])).1,
            MAX_HEADER_LEN
        ));
        // The oversized length is refused from the fixed part alone, without its payload.
        let mut too_long = v2(0x21, 0x11, &[]);
        too_long[14..16].copy_from_slice(&4097u16.to_be_bytes());
        assert!(matches!(
            rejects(&too_long),
            E::V2TooLong { declared: 4097 }
        ));
        let mut bad_sig = v2_tcp4(&[]);
        bad_sig[11] = b'\r';
        assert!(matches!(rejects(&bad_sig), E::NotProxyHeader));
    }

    #[test]
    fn rejects_a_tls_client_hello_and_plain_http() {
        let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        for start in [
            &hello[..],
            &hello[..1],
            b"POST /hook HTTP/1.1\r\n",
            b"\r\n\r\n\0\r\nQUIX",
        ] {
            assert!(matches!(rejects(start), ProxyHeaderError::NotProxyHeader));
        }
    }

    /// What HAProxy 2.6.12 (Debian 12) sent with `send-proxy`, `send-proxy-v2` and
    /// `send-proxy-v2 proxy-v2-options crc32c,unique-id`, each followed by the client's first
    /// bytes `\x16\x03\x01AFTER`; captured with a raw TCP listener behind a TCP-mode backend.
    const HAPROXY_CAPTURES: [(&str, &str); 5] = [
        ("50524f58592054435034203132372e302e302e31203132372e302e302e312034313931302035393139350d0a1603014146544552", "127.0.0.1:41910"),
        ("50524f58592054435036203a3a31203a3a312034303839342035393139350d0a1603014146544552", "[::1]:40894"),
        ("0d0a0d0a000d0a515549540a2111000c7f0000017f00000190f2acaf1603014146544552", "127.0.0.1:37106"),
        ("0d0a0d0a000d0a515549540a212100240000000000000000000000000000000100000000000000000000000000000001b3c8acaf1603014146544552", "[::1]:46024"),
        ("0d0a0d0a000d0a515549540a2111003f7f0000017f000001bae6b48b03000434bdbf6e05002937463030303030313a424145365f37463030303030313a423438425f36423042373243305f303030341603014146544552", "127.0.0.1:47846"),
    ];

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    #[test]
    fn parses_headers_captured_from_haproxy() {
        for (hex, client) in HAPROXY_CAPTURES {
            let bytes = unhex(hex);
            let after = b"\x16\x03\x01AFTER".len();
            assert_eq!(parsed(&bytes), (addr(client), bytes.len() - after), "{hex}");
        }
    }

    /// A connected pair over real loopback TCP: (client side, accepted server side).
    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"));
        let (client, accepted) = tokio::join!(client, listener.accept());
        let client = client.expect("connect");
        client.set_nodelay(true).expect("nodelay");
        (client, accepted.expect("accept").0)
    }

    /// Writes `bytes` in `chunk`-sized writes with pauses, so the reader sees partial headers.
    async fn trickle(client: &mut TcpStream, bytes: &[u8], chunk: usize) {
        for part in bytes.chunks(chunk) {
            client.write_all(part).await.expect("write");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn reads_a_trickled_header_and_leaves_the_next_bytes_unread() {
        let after = b"\x16\x03\x01\x00\x05hello";
        let cases = [
            (V1_TCP4.to_vec(), addr("203.0.113.7:56324"), 1),
            (V1_UNKNOWN.to_vec(), ProxiedSource::Local, 3),
            (v2_tcp4(TLVS), addr("203.0.113.7:56324"), 1),
            (v2_tcp6(TLVS), addr("[2001:db8::1]:12345"), 5),
            (v2(0x20, 0x00, &[]), ProxiedSource::Local, 7),
        ];
        for (header, want, chunk) in cases {
            let (mut client, mut server) = tcp_pair().await;
            let writer = tokio::spawn(async move {
                // The last header byte shares a segment with what follows, as a ClientHello
                // sent right behind the header would.
                let (head, last) = header.split_at(header.len() - 1);
                trickle(&mut client, head, chunk).await;
                trickle(&mut client, &[last, &after[..]].concat(), 32).await;
                client.shutdown().await.expect("shutdown");
                client
            });
            assert_eq!(read_proxy_header(&mut server).await.expect("header"), want);
            let mut rest = Vec::new();
            server.read_to_end(&mut rest).await.expect("read rest");
            assert_eq!(rest, after);
            drop(writer.await.expect("writer"));
        }
    }

    #[tokio::test]
    async fn reads_a_header_sent_together_with_the_client_hello() {
        let (mut client, mut server) = tcp_pair().await;
        let mut bytes = v2_tcp4(TLVS);
        bytes.extend(b"\x16\x03\x01");
        client.write_all(&bytes).await.expect("write");
        let source = read_proxy_header(&mut server).await.expect("header");
        assert_eq!(
            source
                .client_addr("127.0.0.1:1".parse().expect("ip"))
                .port(),
            56324
        );
        let mut next = [0u8; 3];
        let read = tokio::time::timeout(Duration::from_secs(5), server.read_exact(&mut next));
        read.await
            .expect("bytes after the header still unread")
            .expect("read");
        assert_eq!(&next, b"\x16\x03\x01");
    }

    #[tokio::test]
    async fn fails_on_eof_in_the_middle_of_the_header() {
        for header in [V1_TCP6.to_vec(), v2_tcp6(&[]), v2_tcp6(&[])[..10].to_vec()] {
            let (mut client, mut server) = tcp_pair().await;
            let half = header.len() / 2;
            trickle(&mut client, &header[..half], 3).await;
            client.shutdown().await.expect("shutdown");
            let e = read_proxy_header(&mut server).await.expect_err("truncated");
            assert!(matches!(e, ProxyHeaderError::UnexpectedEof { received } if received == half));
        }
    }

    #[tokio::test]
    async fn rejects_a_client_hello_at_once_without_waiting_for_more() {
        let (mut client, mut server) = tcp_pair().await;
        client
            .write_all(b"\x16\x03\x01\x02\x00")
            .await
            .expect("write");
        let got = tokio::time::timeout(Duration::from_secs(5), read_proxy_header(&mut server));
        let e = got.await.expect("no waiting").expect_err("not a header");
        assert!(matches!(e, ProxyHeaderError::NotProxyHeader));
        drop(client);
    }

    #[tokio::test]
    async fn waits_for_the_rest_of_an_incomplete_header() {
        let (mut client, mut server) = tcp_pair().await;
        client.write_all(&V1_TCP4[..20]).await.expect("write");
        let got = tokio::time::timeout(Duration::from_millis(100), read_proxy_header(&mut server));
        assert!(
            got.await.is_err(),
            "an incomplete header must keep the reader waiting"
        );
        drop(client);
    }

    /// xorshift64*: deterministic, dependency-free randomness for the fuzz test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        fn byte(&mut self) -> u8 {
            self.next() as u8
        }
    }

    fn mutate(rng: &mut Rng, buf: &mut Vec<u8>) {
        for _ in 0..=rng.below(4) {
            let at = rng.below(buf.len() + 1);
            match rng.below(6) {
                0 if at < buf.len() => buf[at] ^= 1 << rng.below(8),
                1 => buf.truncate(at),
                2 => (0..=rng.below(8)).for_each(|_| buf.insert(at, rng.byte())),
                3 if at < buf.len() => drop(buf.remove(at)),
                4 if at < buf.len() => buf[at] = rng.byte(),
                // Valid-looking lengths and separators steer mutations into deep paths.
                _ => buf.insert(
                    at,
                    *b" \r\n0.:\x00\x10".get(rng.below(8)).expect("in range"),
                ),
            }
        }
    }

    fn check_invariants(rng: &mut Rng, buf: &[u8]) {
        if let Ok(Some((source, n))) = parse_proxy_header(buf) {
            assert!(n <= buf.len(), "length {n} beyond {} bytes", buf.len());
            // The header alone decides the result, and every shorter prefix asks for more: the
            // reader relies on this to consume Ok(None) bytes safely.
            assert_eq!(parsed(&buf[..n]), (source, n));
            let cut = rng.below(n);
            assert!(
                matches!(parse_proxy_header(&buf[..cut]), Ok(None)),
                "{buf:x?} cut {cut}"
            );
        }
    }

    #[test]
    fn survives_200k_random_mutations_and_random_bytes() {
        let seeds = [
            V1_TCP4.to_vec(),
            V1_TCP6.to_vec(),
            V1_UNKNOWN.to_vec(),
            v2_tcp4(&[]),
            v2_tcp4(TLVS),
            v2_tcp6(&[]),
            v2_tcp6(TLVS),
            v2(0x20, 0x00, &[]),
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for i in 0..240_000 {
            let mut buf = if i % 8 == 7 {
                (0..rng.below(64)).map(|_| rng.byte()).collect()
            } else {
                seeds[rng.below(seeds.len())].clone()
            };
            mutate(&mut rng, &mut buf);
            check_invariants(&mut rng, &buf);
            accepted += usize::from(matches!(parse_proxy_header(&buf), Ok(Some(_))));
        }
        // Some mutations must stay valid, or the fuzzer is only exercising the first check.
        assert!(accepted > 1_000, "only {accepted} mutated headers parsed");
    }
}
