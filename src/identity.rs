//! What the upstream is told about the client: every inbound copy of a header the upstream might
//! trust is removed first, then hookgate sets its own (strip, then set — clients must not forge
//! identity). The per-connection part is computed once, at the end of the handshake.

use std::net::IpAddr;

use base64::Engine;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use crate::allowlist::networks::canonical;
use crate::allowlist::thumbprint::{hex, sha256};

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// RFC 9440: the client certificate as an RFC 8941 byte sequence.
pub(crate) const CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");
pub(crate) const X_CLIENT_CERT_SHA256: HeaderName = HeaderName::from_static("x-client-cert-sha256");
/// RFC 9530 digest of the forwarded body.
pub(crate) const CONTENT_DIGEST: HeaderName = HeaderName::from_static("content-digest");
/// RFC 9421 signature headers.
pub(crate) const SIGNATURE_INPUT: HeaderName = HeaderName::from_static("signature-input");
pub(crate) const SIGNATURE: HeaderName = HeaderName::from_static("signature");

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded in either direction.
const HOP_BY_HOP: [HeaderName; 8] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    // hookgate buffers the body itself; an upstream must not be asked for 100-continue.
    http::header::EXPECT,
];

/// Inbound headers an upstream might take as hookgate's word. The SPEC §4 set, plus the
/// identity headers other proxies use (nginx, Envoy, RFC 9440's chain), so a client cannot
/// smuggle them past an upstream configured for another proxy.
const SPOOFABLE: [HeaderName; 16] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    FORWARDED,
    X_REQUEST_ID,
    CLIENT_CERT,
    X_CLIENT_CERT_SHA256,
    CONTENT_DIGEST,
    SIGNATURE_INPUT,
    SIGNATURE,
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("client-cert-chain"),
    HeaderName::from_static("x-client-cert"),
    HeaderName::from_static("x-client-cert-sha1"),
    HeaderName::from_static("x-forwarded-client-cert"),
];

/// Removes hop-by-hop headers (and every header `Connection` names) and spoofable ones.
pub(crate) fn strip_inbound(headers: &mut HeaderMap) {
    remove_hop_by_hop(headers);
    for name in &SPOOFABLE {
        headers.remove(name);
    }
    // CGI/WSGI-style upstreams read `X_Forwarded_For` as `X-Forwarded-For`: drop such twins.
    let twins: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().contains('_'))
        .filter(|k| {
            let dashed = k.as_str().replace('_', "-");
            SPOOFABLE
                .iter()
                .chain(HOP_BY_HOP.iter())
                .any(|n| n.as_str() == dashed)
        })
        .cloned()
        .collect();
    for name in twins {
        headers.remove(name);
    }
}

/// Removes `Connection`, every header it names, and the fixed hop-by-hop set.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// The verified client, as the upstream sees it; built once per connection.
#[derive(Clone, Debug)]
pub(crate) struct ClientIdentity {
    pub client_ip: IpAddr,
    /// Digests of the leaf, to re-check pins after a reload without keeping the certificate.
    pub leaf_sha256: [u8; 32],
    pub leaf_sha1: Option<[u8; 20]>,
    pub forwarded_for: HeaderValue,
    pub forwarded: HeaderValue,
    pub client_cert: HeaderValue,
    pub cert_sha256: HeaderValue,
}

impl ClientIdentity {
    /// `with_sha1`: compute the leaf's SHA-1 too (only worth it when SHA-1 pins exist).
    pub(crate) fn new(client_ip: IpAddr, leaf_der: &[u8], with_sha1: bool) -> Self {
        let leaf_sha256 = sha256(leaf_der);
        let ip = canonical(client_ip);
        let forwarded = match ip {
            IpAddr::V4(v4) => format!("for={v4};proto=https"),
            IpAddr::V6(v6) => format!("for=\"[{v6}]\";proto=https"),
        };
        let cert = format!(
            ":{}:",
            base64::engine::general_purpose::STANDARD.encode(leaf_der)
        );
        ClientIdentity {
            client_ip: ip,
            leaf_sha256,
            leaf_sha1: with_sha1.then(|| crate::allowlist::thumbprint::sha1(leaf_der)),
            forwarded_for: value(ip.to_string()),
            forwarded: value(forwarded),
            client_cert: value(cert),
            cert_sha256: value(hex(&leaf_sha256)),
        }
    }

    /// Sets the identity headers (after `strip_inbound`).
    pub(crate) fn apply(
        &self,
        headers: &mut HeaderMap,
        request_id: &HeaderValue,
        digest: HeaderValue,
    ) {
        headers.insert(X_FORWARDED_FOR, self.forwarded_for.clone());
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        headers.insert(FORWARDED, self.forwarded.clone());
        headers.insert(X_REQUEST_ID, request_id.clone());
        headers.insert(CLIENT_CERT, self.client_cert.clone());
        headers.insert(X_CLIENT_CERT_SHA256, self.cert_sha256.clone());
        headers.insert(CONTENT_DIGEST, digest);
    }
}

fn value(s: String) -> HeaderValue {
    HeaderValue::try_from(s).expect("IP addresses, base64 and hex are valid header values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_connection_named_hop_by_hop_and_spoofed_headers() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("x-forwarded-for", "203.0.113.66"),
            ("forwarded", "for=203.0.113.66"),
            ("client-cert", ":Zm9yZ2Vk:"),
            ("x-client-cert-sha256", "forged"),
            ("signature", "hookgate=:AAAA:"),
            ("x-real-ip", "1.2.3.4"),
            ("x_forwarded_for", "203.0.113.66"),
            ("client_cert", ":Zm9yZ2Vk:"),
            ("content-type", "application/json"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_inbound(&mut h);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-type"]);
    }

    #[test]
    fn ipv4_mapped_clients_are_reported_as_ipv4_and_ipv6_is_bracketed() {
        let v4 = ClientIdentity::new("::ffff:203.0.113.7".parse().expect("ip"), b"der", false);
        assert_eq!(v4.forwarded_for, "203.0.113.7");
        assert_eq!(v4.forwarded, "for=203.0.113.7;proto=https");
        let v6 = ClientIdentity::new("2001:db8::1".parse().expect("ip"), b"der", true);
        assert_eq!(v6.forwarded, "for=\"[2001:db8::1]\";proto=https");
        assert_eq!(v6.client_cert, ":ZGVy:");
        assert_eq!(v6.cert_sha256.len(), 64);
    }
}
