//! Not a stable API; for `benches/` only. Thin wrappers over the crate-private hot paths, so
//! `cargo bench --bench hot_paths` can time them without the full harness. Each wrapper only
//! converts types and calls the real function; nothing here is used by hookgate itself.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{allowlist, http1, identity, policy, secret, signature};

/// SHA-256 of a certificate's DER (hookgate computes it once per handshake).
pub fn sha256(der: &[u8]) -> [u8; 32] {
    crate::digest::sha256(der)
}

/// SHA-1 of a certificate's DER (for SHA-1 pins).
pub fn sha1(der: &[u8]) -> [u8; 20] {
    crate::digest::sha1(der)
}

/// Lowercase hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    crate::digest::hex(bytes)
}

/// `allowlist::thumbprint::PinSet`; panics on a bad thumbprint (bench inputs are fixed).
pub struct PinSet(allowlist::thumbprint::PinSet);

impl PinSet {
    pub fn new<'a>(hex_pins: impl IntoIterator<Item = &'a str>) -> Self {
        let pins = hex_pins
            .into_iter()
            .map(|pin| pin.parse().expect("bench pins are valid thumbprints"));
        PinSet(allowlist::thumbprint::PinSet::new(pins))
    }

    /// As the TLS verifier decides: the SHA-1 is computed only when a SHA-1 pin exists.
    pub fn is_pinned(&self, leaf_sha256: &[u8; 32], leaf_der: &[u8]) -> bool {
        let sha1 = self.0.has_sha1().then(|| crate::digest::sha1(leaf_der));
        self.0.contains(leaf_sha256, sha1.as_ref())
    }
}

/// `allowlist::networks::SourceNetworks`; panics on a bad CIDR (bench inputs are fixed).
pub struct SourceNetworks(allowlist::networks::SourceNetworks);

impl SourceNetworks {
    pub fn new<'a>(cidrs: impl IntoIterator<Item = &'a str>) -> Self {
        let nets = cidrs
            .into_iter()
            .map(|cidr| cidr.parse().expect("bench networks are valid CIDRs"));
        SourceNetworks(allowlist::networks::SourceNetworks::new(nets))
    }

    /// Disjoint ranges after merging.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }
}

/// Mirror of `signature::Covered` (same fields, same meaning).
#[derive(Debug, Clone, Copy)]
pub struct Covered<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub content_digest: &'a [u8],
    pub client_cert: &'a [u8],
    pub client_cert_sha256: &'a [u8],
    pub forwarded_for: &'a [u8],
    pub forwarded: &'a [u8],
    pub forwarded_proto: &'a [u8],
    pub request_id: &'a [u8],
}

/// `signature::IdentitySigner`; panics on a short key or bad key id.
pub struct IdentitySigner(signature::IdentitySigner);

impl IdentitySigner {
    pub fn new(key: &[u8], key_id: &str) -> Self {
        IdentitySigner(signature::IdentitySigner::new(key, key_id).expect("bench key is valid"))
    }

    /// `(Signature-Input, Signature)`.
    pub fn sign(&self, c: &Covered<'_>, created: u64) -> (HeaderValue, HeaderValue) {
        let covered = signature::Covered {
            method: c.method,
            path: c.path,
            query: c.query,
            content_digest: c.content_digest,
            client_cert: c.client_cert,
            client_cert_sha256: c.client_cert_sha256,
            forwarded_for: c.forwarded_for,
            forwarded: c.forwarded,
            forwarded_proto: c.forwarded_proto,
            request_id: c.request_id,
            stored: None,
        };
        self.0.sign(&covered, created)
    }
}

/// The streaming `signature::ContentDigest` fed `chunks` in order.
pub fn content_digest<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> HeaderValue {
    let mut digest = signature::ContentDigest::new();
    for chunk in chunks {
        digest.update(chunk);
    }
    digest.finish()
}

/// `identity::StripList::apply` with the SPEC §4 list and the default required header.
pub fn strip_inbound(headers: &mut HeaderMap) {
    thread_local! {
        static LIST: identity::StripList =
            identity::StripList::new([HeaderName::from_static("x-webhook-secret")]);
    }
    LIST.with(|l| l.apply(headers));
}

/// `identity::ClientIdentity` (built once per connection in hookgate).
pub struct ClientIdentity(identity::ClientIdentity);

impl ClientIdentity {
    pub fn new(client_ip: IpAddr, leaf_der: &[u8]) -> Self {
        ClientIdentity(identity::ClientIdentity::new(client_ip, leaf_der, false))
    }

    pub fn apply(&self, headers: &mut HeaderMap, request_id: &HeaderValue, digest: HeaderValue) {
        self.0.apply(headers, request_id, digest);
    }
}

/// `policy::target::check_path`; `Err` carries the denial detail.
pub fn check_path(path: &str) -> Result<(), &'static str> {
    policy::target::check_path(path).map_err(policy::Denied::detail)
}

/// `policy::request::check_required_header` with its accepted values resolved once.
pub struct RequiredHeader {
    name: HeaderName,
    values: Vec<secret::Secret>,
}

impl RequiredHeader {
    pub fn new<'a>(name: &str, values: impl IntoIterator<Item = &'a str>) -> Self {
        let values = values
            .into_iter()
            .map(|v| {
                secret::SecretSource::Inline(v.to_owned())
                    .resolve(std::path::Path::new("."))
                    .expect("inline bench secrets are not empty")
            })
            .collect();
        RequiredHeader {
            name: HeaderName::from_bytes(name.as_bytes()).expect("bench header name is valid"),
            values,
        }
    }

    /// `Err` carries the denial detail.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        policy::request::check_required_header(&self.name, &self.values, headers)
            .map_err(policy::Denied::detail)
    }
}

/// Drives `http1::framing::Requests` over in-memory bytes, in reads of at most `read_size`
/// bytes, as a connection feeds it.
pub struct HeadReader {
    read_size: usize,
}

impl HeadReader {
    pub fn new(read_size: usize) -> Self {
        HeadReader { read_size }
    }

    /// Frames all of `wire` with a fresh decision; true if the first request was refused.
    pub fn inspect(&mut self, wire: &[u8]) -> bool {
        let mut requests = http1::framing::Requests::default();
        let mut refused = false;
        for piece in wire.chunks(self.read_size) {
            requests.feed(piece, &mut |e| {
                refused |= matches!(e, http1::framing::Event::Refused { index: 0, .. })
            });
        }
        refused
    }
}
