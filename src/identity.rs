//! What the upstream is told about the client: every inbound copy of a header the upstream might
//! trust is removed first, then hookgate sets its own (strip, then set — clients must not forge
//! identity). The per-connection part is computed once, at the end of the handshake.

use std::net::IpAddr;
use std::sync::Mutex;

use base64::Engine;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use crate::allowlist::networks::canonical;
use crate::digest::{hex, sha256};
use crate::signature::{Covered, IdentitySigner};

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// RFC 9440: the client certificate as an RFC 8941 byte sequence.
pub(crate) const CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");
pub(crate) const X_CLIENT_CERT_SHA256: HeaderName = HeaderName::from_static("x-client-cert-sha256");
/// The `X-Forwarded-Proto` value: hookgate only speaks TLS to clients.
pub(crate) const HTTPS: HeaderValue = HeaderValue::from_static("https");
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

/// Which store delivery attempt this is (1, 2, …; SPEC §9.2).
pub(crate) const HOOKGATE_ATTEMPT: HeaderName = HeaderName::from_static("hookgate-attempt");
/// When hookgate accepted a stored request (RFC 3339 UTC; SPEC §9.2).
pub(crate) const HOOKGATE_RECEIVED_AT: HeaderName = HeaderName::from_static("hookgate-received-at");

/// The headers hookgate sets itself: every inbound copy is removed first. The two store
/// headers too, on every route (an extension of SPEC §4's list: a forwarded request must not
/// carry a client's claim to be a store delivery).
const SET_BY_HOOKGATE: [HeaderName; 11] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    FORWARDED,
    X_REQUEST_ID,
    CLIENT_CERT,
    X_CLIENT_CERT_SHA256,
    CONTENT_DIGEST,
    SIGNATURE_INPUT,
    SIGNATURE,
    HOOKGATE_ATTEMPT,
    HOOKGATE_RECEIVED_AT,
];

/// SPEC §4: headers another proxy or framework may trust for the client's identity, address,
/// scheme, path or method (nginx, Envoy, Traefik, HAProxy, IIS ARR, AWS ALB, Cloudflare, Akamai,
/// IIS URL Rewrite, method-override middleware), in canonical spelling.
const TRUSTED_ELSEWHERE: [&str; 32] = [
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "x-cluster-client-ip",
    "x-original-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-forwarded-prefix",
    "x-forwarded-client-cert",
    "x-forwarded-tls-client-cert",
    "x-forwarded-tls-client-cert-info",
    "x-client-cert",
    "x-client-cert-sha1",
    "client-cert-chain",
    "x-ssl-client-cert",
    "x-ssl-client-verify",
    "x-ssl-client-s-dn",
    "x-ssl-client-i-dn",
    "ssl-client-cert",
    "ssl-client-verify",
    "x-arr-clientcert",
    "x-amzn-mtls-clientcert",
    "x-amzn-mtls-clientcert-leaf",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Every inbound header name hookgate removes before forwarding, in canonical spelling
/// (lowercase, `-`): hop-by-hop, the headers it sets, [`TRUSTED_ELSEWHERE`], the required
/// header when `strip = true`, and `request.strip_headers`. Built once per snapshot.
#[derive(Debug)]
pub(crate) struct StripList {
    names: std::collections::HashSet<HeaderName>,
}

impl StripList {
    pub(crate) fn new(extra: impl IntoIterator<Item = HeaderName>) -> Self {
        let names = HOP_BY_HOP
            .iter()
            .chain(SET_BY_HOOKGATE.iter())
            .cloned()
            .chain(TRUSTED_ELSEWHERE.iter().map(|n| HeaderName::from_static(n)))
            .chain(extra.into_iter().map(|n| canonical_name(&n).unwrap_or(n)))
            .collect();
        StripList { names }
    }

    /// Removes every listed header in every spelling (`X_Forwarded_For` is `X-Forwarded-For`
    /// to CGI/WSGI/Rack upstreams), and every header `Connection` names. Strip, then set.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        let mut doomed = connection_named(headers);
        doomed.extend(headers.keys().filter(|k| self.is_stripped(k)).cloned());
        for name in doomed {
            headers.remove(name);
        }
    }

    fn is_stripped(&self, name: &HeaderName) -> bool {
        match canonical_name(name) {
            Some(dashed) => self.names.contains(&dashed),
            None => self.names.contains(name),
        }
    }
}

/// The `-` spelling of a name written with `_`, or `None` when it has no `_`.
fn canonical_name(name: &HeaderName) -> Option<HeaderName> {
    let s = name.as_str();
    if !s.contains('_') {
        return None;
    }
    HeaderName::from_bytes(s.replace('_', "-").as_bytes()).ok()
}

fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect()
}

/// Removes `Connection`, every header it names, and the fixed hop-by-hop set (responses).
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_named(headers).iter().chain(HOP_BY_HOP.iter()) {
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
        let (client_cert, cert_sha256) = cert_values(leaf_der, &leaf_sha256);
        ClientIdentity {
            client_ip: ip,
            leaf_sha256,
            leaf_sha1: with_sha1.then(|| crate::digest::sha1(leaf_der)),
            forwarded_for: value(ip.to_string()),
            forwarded: value(forwarded),
            client_cert,
            cert_sha256,
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
        headers.insert(X_FORWARDED_PROTO, HTTPS);
        headers.insert(FORWARDED, self.forwarded.clone());
        headers.insert(X_REQUEST_ID, request_id.clone());
        headers.insert(CLIENT_CERT, self.client_cert.clone());
        headers.insert(X_CLIENT_CERT_SHA256, self.cert_sha256.clone());
        headers.insert(CONTENT_DIGEST, digest);
    }
}

/// Signs the request exactly as it will be sent and adds `Signature-Input` and `Signature`:
/// `@path` and `@query` from `target` (the path and query the upstream receives), every covered
/// header from `headers` as they are at this moment (set by [`ClientIdentity::apply`] or stored
/// with the request). Forwarding and store deliveries both sign here, so what is signed cannot
/// drift from what is sent; the store headers are covered when present (SPEC §4).
pub(crate) fn sign(
    signer: &IdentitySigner,
    method: &str,
    target: &str,
    headers: &mut HeaderMap,
    created: u64,
) {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let h = |n: &HeaderName| headers.get(n).map_or(&b""[..], |v| v.as_bytes());
    let stored = match (
        headers.get(HOOKGATE_ATTEMPT),
        headers.get(HOOKGATE_RECEIVED_AT),
    ) {
        (Some(a), Some(r)) => Some((a.as_bytes(), r.as_bytes())),
        _ => None,
    };
    let (input, signature) = signer.sign(
        &Covered {
            method,
            path,
            query,
            content_digest: h(&CONTENT_DIGEST),
            client_cert: h(&CLIENT_CERT),
            client_cert_sha256: h(&X_CLIENT_CERT_SHA256),
            forwarded_for: h(&X_FORWARDED_FOR),
            forwarded: h(&FORWARDED),
            forwarded_proto: h(&X_FORWARDED_PROTO),
            request_id: h(&X_REQUEST_ID),
            stored,
        },
        created,
    );
    headers.insert(SIGNATURE_INPUT, input);
    headers.insert(SIGNATURE, signature);
}

/// The `Client-Cert` and `X-Client-Cert-SHA256` values of the certificates seen last, shared by
/// their connections: a sender opens many connections with one certificate, and the
/// `Client-Cert` value alone is ~0.9 KiB that each idle connection would otherwise hold. Keyed
/// by the SHA-256 of the DER, so an entry found is of the same certificate; emptied when full.
static RECENT_CERTS: Mutex<Vec<([u8; 32], HeaderValue, HeaderValue)>> = Mutex::new(Vec::new());
const RECENT_CERTS_MAX: usize = 64;

fn cert_values(leaf_der: &[u8], leaf_sha256: &[u8; 32]) -> (HeaderValue, HeaderValue) {
    let lock = || RECENT_CERTS.lock().unwrap_or_else(|e| e.into_inner());
    let shared = |recent: &[([u8; 32], HeaderValue, HeaderValue)]| {
        let (_, cert, sha256) = recent.iter().find(|(key, ..)| key == leaf_sha256)?;
        Some((cert.clone(), sha256.clone()))
    };
    if let Some(values) = shared(&lock()) {
        return values;
    }
    // Encoded without the lock: handshakes of other certificates need not wait for it.
    let cert = format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(leaf_der)
    );
    let values = (value(cert), value(hex(leaf_sha256)));
    let mut recent = lock();
    // Another handshake of this certificate may have got here first: share its values.
    if let Some(values) = shared(&recent) {
        return values;
    }
    if recent.len() == RECENT_CERTS_MAX {
        recent.clear();
    }
    recent.push((*leaf_sha256, values.0.clone(), values.1.clone()));
    values
}

fn value(s: String) -> HeaderValue {
    HeaderValue::try_from(s).expect("IP addresses, base64 and hex are valid header values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_connection_named_hop_by_hop_and_spoofed_headers_in_every_spelling() {
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
            ("x-ssl-client-cert", "forged"),
            ("x_arr_clientcert", "forged"),
            ("x-http-method-override", "DELETE"),
            ("x_original_url", "/admin"),
            ("true-client-ip", "1.2.3.4"),
            ("x-webhook-secret", "s3cret"),
            ("x_webhook_secret", "s3cret"),
            ("x-internal-user", "admin"),
            ("x_internal_user", "admin"),
            ("content-type", "application/json"),
            ("x-scan-id", "42"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let list = StripList::new([
            HeaderName::from_static("x-webhook-secret"),
            HeaderName::from_static("x_internal_user"),
        ]);
        list.apply(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-scan-id"]);
    }

    #[test]
    fn every_spec_name_is_stripped_in_both_spellings() {
        let list = StripList::new([]);
        let set_by_hookgate = SET_BY_HOOKGATE;
        for name in TRUSTED_ELSEWHERE
            .iter()
            .copied()
            .chain(set_by_hookgate.iter().map(|n| n.as_str()))
        {
            let mut h = HeaderMap::new();
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_static("x"),
            );
            let twin = name.replace('-', "_");
            h.insert(
                HeaderName::from_bytes(twin.as_bytes()).expect("name"),
                HeaderValue::from_static("x"),
            );
            list.apply(&mut h);
            assert!(h.is_empty(), "{name}");
        }
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

    #[test]
    fn connections_with_one_certificate_share_its_header_values() {
        let ip = "203.0.113.7".parse().expect("ip");
        let (a, b) = (
            ClientIdentity::new(ip, b"one certificate", false),
            ClientIdentity::new(ip, b"one certificate", false),
        );
        assert_eq!(
            a.client_cert.as_bytes().as_ptr(),
            b.client_cert.as_bytes().as_ptr()
        );
        assert_eq!(
            a.cert_sha256.as_bytes().as_ptr(),
            b.cert_sha256.as_bytes().as_ptr()
        );
        // Another certificate gets its own values, also once the table was emptied when full.
        for i in 0..=RECENT_CERTS_MAX {
            let der = format!("certificate {i}");
            let other = ClientIdentity::new(ip, der.as_bytes(), false);
            let expected = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
            assert_eq!(other.client_cert, format!(":{expected}:").as_str());
            assert_eq!(other.cert_sha256, hex(&sha256(der.as_bytes())).as_str());
        }
        assert_eq!(a.client_cert, ":b25lIGNlcnRpZmljYXRl:");
    }
}
