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
mod tests;
