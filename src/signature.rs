//! Signs what hookgate forwards (SPEC §4): the RFC 9421 HMAC-SHA256 `Signature-Input` /
//! `Signature` pair over the request line and the identity headers, and the RFC 9530
//! `Content-Digest` of the forwarded body. `identity` sets the covered headers first, then signs;
//! upstreams verify with `examples/verify.py` or `examples/verify.js` (README "Verifying requests in your app").

use aws_lc_rs::{digest, hmac};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use http::HeaderValue;

/// The dictionary key of hookgate's signature in `Signature-Input` and `Signature`.
pub(crate) const LABEL: &str = "hookgate";

/// Shortest accepted key: RFC 2104 §3 advises at least the hash output length (32 for SHA-256).
pub(crate) const MIN_KEY_LEN: usize = 32;

/// The start of every base line, in covered order. `@query` carries its `?` here because RFC 9421
/// §2.2.7 makes it part of the value even when the query is absent.
const LINE_HEADS: [&str; 10] = [
    "\"@method\": ",
    "\"@path\": ",
    "\"@query\": ?",
    "\"content-digest\": ",
    "\"client-cert\": ",
    "\"x-client-cert-sha256\": ",
    "\"x-forwarded-for\": ",
    "\"forwarded\": ",
    "\"x-forwarded-proto\": ",
    "\"x-request-id\": ",
];

/// The fixed covered-component list, as serialized in `@signature-params` (RFC 9421 §2.3).
/// Verifiers pin this exact list, so it never depends on configuration.
const PARAMS_HEAD: &str = "(\"@method\" \"@path\" \"@query\" \"content-digest\" \"client-cert\" \
                           \"x-client-cert-sha256\" \"x-forwarded-for\" \"forwarded\" \
                           \"x-forwarded-proto\" \"x-request-id\");created=";

/// On a store route (SPEC §9) two more lines follow `x-request-id`.
const STORE_LINE_HEADS: [&str; 2] = ["\"hookgate-attempt\": ", "\"hookgate-received-at\": "];

/// [`PARAMS_HEAD`] of a delivery attempt from the store.
const PARAMS_HEAD_STORE: &str =
    "(\"@method\" \"@path\" \"@query\" \"content-digest\" \"client-cert\" \
                                 \"x-client-cert-sha256\" \"x-forwarded-for\" \"forwarded\" \
                                 \"x-forwarded-proto\" \"x-request-id\" \"hookgate-attempt\" \
                                 \"hookgate-received-at\");created=";

const SIGNATURE_PARAMS_LINE_HEAD: &str = "\"@signature-params\": ";

/// Digits of the longest `u64`; RFC 8941 integers stop at 15, a UNIX time needs 10.
const MAX_DECIMAL_LEN: usize = 20;

/// Why an `[identity]` key or key id cannot be used. Messages never contain the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignerError {
    #[error(
        "the signing key is {len} bytes after base64 decoding but at least {MIN_KEY_LEN} are \
         required: generate one with `openssl rand -base64 32`"
    )]
    KeyTooShort { len: usize },
    #[error("key_id is empty: set it to a short name such as \"hookgate-1\"")]
    EmptyKeyId,
    #[error(
        "key_id has a character that is not allowed at position {position}: use printable ASCII \
         (space to '~') without '\"' or '\\', such as \"hookgate-2\""
    )]
    KeyIdCharacter { position: usize },
}

/// The request components hookgate signs, borrowed from the request being forwarded.
/// Header values are the exact bytes hookgate sets on the forwarded request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Covered<'a> {
    /// `@method`.
    pub method: &'a str,
    /// `@path`: the path as sent to the upstream (after any `/BASE` prefix).
    pub path: &'a str,
    /// The raw query without `?`; `@query` is `?` + query, or `?` when absent (RFC 9421 §2.2.7).
    pub query: Option<&'a str>,
    pub content_digest: &'a [u8],
    /// `Client-Cert` as sent: `:BASE64:` (RFC 9440).
    pub client_cert: &'a [u8],
    pub client_cert_sha256: &'a [u8],
    pub forwarded_for: &'a [u8],
    /// `Forwarded` (RFC 7239) as sent.
    pub forwarded: &'a [u8],
    /// `X-Forwarded-Proto` as sent (`https`).
    pub forwarded_proto: &'a [u8],
    pub request_id: &'a [u8],
    /// A delivery from the store: `Hookgate-Attempt` and `Hookgate-Received-At` as sent.
    pub stored: Option<(&'a [u8], &'a [u8])>,
}

impl Covered<'_> {
    fn values(&self) -> [&[u8]; 10] {
        [
            self.method.as_bytes(),
            self.path.as_bytes(),
            self.query.unwrap_or("").as_bytes(),
            self.content_digest,
            self.client_cert,
            self.client_cert_sha256,
            self.forwarded_for,
            self.forwarded,
            self.forwarded_proto,
            self.request_id,
        ]
    }
}

/// Signs forwarded requests with one `[identity]` key. Everything that does not depend on the
/// request is computed here once, so `sign` only fills one exactly-sized buffer.
pub(crate) struct IdentitySigner {
    key: hmac::Key,
    key_id: Box<str>,
    /// `;keyid="KEY_ID";alg="hmac-sha256"`: the parameters after `created`.
    params_tail: Box<str>,
    /// Bytes of the signature base that do not come from the request (`created` at its maximum).
    fixed_len: usize,
}

impl std::fmt::Debug for IdentitySigner {
    // The key stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl IdentitySigner {
    /// `key`: the decoded key bytes (at least [`MIN_KEY_LEN`]); `key_id`: the `keyid` parameter,
    /// a non-empty RFC 8941 string that needs no escaping.
    pub(crate) fn new(key: &[u8], key_id: &str) -> Result<Self, SignerError> {
        if key.len() < MIN_KEY_LEN {
            return Err(SignerError::KeyTooShort { len: key.len() });
        }
        check_key_id(key_id)?;
        let params_tail: Box<str> = format!(";keyid=\"{key_id}\";alg=\"hmac-sha256\"").into();
        let fixed_len = LINE_HEADS
            .iter()
            .chain(STORE_LINE_HEADS.iter())
            .map(|head| head.len() + 1)
            .sum::<usize>()
            + SIGNATURE_PARAMS_LINE_HEAD.len()
            + PARAMS_HEAD_STORE.len()
            + MAX_DECIMAL_LEN
            + params_tail.len();
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            key_id: key_id.into(),
            params_tail,
            fixed_len,
        })
    }

    /// The `keyid` this signer puts in every signature.
    pub(crate) fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Returns `(Signature-Input value, Signature value)` for `covered`, signed at `created`
    /// (UNIX seconds).
    pub(crate) fn sign(&self, covered: &Covered<'_>, created: u64) -> (HeaderValue, HeaderValue) {
        let (mut buf, params_start) = self.signature_base(covered, created);
        let tag = hmac::sign(&self.key, &buf);

        // Signature-Input is `hookgate=` + the parameters that end the base: write the label
        // over the end of the `"@signature-params": ` line head and copy from there into the
        // header's own exact-size allocation, instead of assembling the value a second time.
        let input_start = params_start - (LABEL.len() + 1);
        buf[input_start..params_start - 1].copy_from_slice(LABEL.as_bytes());
        buf[params_start - 1] = b'=';
        let input = HeaderValue::from_bytes(&buf[input_start..])
            .expect("parameters are a constant list, digits and a validated key_id");

        // `hookgate=:` + base64 of the 32-byte tag (44) + `:`
        let mut signature = [0u8; 55];
        signature[..10].copy_from_slice(b"hookgate=:");
        STANDARD
            .encode_slice(tag.as_ref(), &mut signature[10..54])
            .expect("a 32-byte tag encodes to exactly 44 base64 bytes");
        signature[54] = b':';
        let signature =
            HeaderValue::from_bytes(&signature).expect("the label and base64 are visible ASCII");
        (input, signature)
    }

    /// The RFC 9421 §2.5 signature base, and where the `@signature-params` value starts in it.
    fn signature_base(&self, covered: &Covered<'_>, created: u64) -> (Vec<u8>, usize) {
        let values = covered.values();
        let stored = covered.stored.map(|(attempt, at)| [attempt, at]);
        let capacity = self.fixed_len
            + values
                .iter()
                .chain(stored.iter().flatten())
                .map(|value| value.len())
                .sum::<usize>();
        let mut buf = Vec::with_capacity(capacity);
        let lines = LINE_HEADS.iter().zip(values).chain(
            stored
                .into_iter()
                .flat_map(|s| STORE_LINE_HEADS.iter().zip(s)),
        );
        for (head, value) in lines {
            // Header values and URI parts cannot hold CR or LF, which would forge a base line.
            debug_assert!(!value.iter().any(|&b| b == b'\n' || b == b'\r'));
            buf.extend_from_slice(head.as_bytes());
            buf.extend_from_slice(value);
            buf.push(b'\n');
        }
        buf.extend_from_slice(SIGNATURE_PARAMS_LINE_HEAD.as_bytes());
        let params_start = buf.len();
        let params = if covered.stored.is_some() {
            PARAMS_HEAD_STORE
        } else {
            PARAMS_HEAD
        };
        buf.extend_from_slice(params.as_bytes());
        put_decimal(&mut buf, created);
        buf.extend_from_slice(self.params_tail.as_bytes());
        debug_assert!(buf.len() <= capacity, "the base is sized once, never grown");
        (buf, params_start)
    }
}

/// Accepts only what RFC 8941 §3.3.3 allows in a string without escapes, so the key id can be
/// written between quotes as is and every verifier reads back the same value. Config
/// validation applies this same rule, so `check` refuses what the signer would.
pub(crate) fn check_key_id(key_id: &str) -> Result<(), SignerError> {
    if key_id.is_empty() {
        return Err(SignerError::EmptyKeyId);
    }
    match key_id
        .chars()
        .position(|c| !matches!(c, ' '..='~') || c == '"' || c == '\\')
    {
        Some(index) => Err(SignerError::KeyIdCharacter {
            position: index + 1,
        }),
        None => Ok(()),
    }
}

fn put_decimal(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; MAX_DECIMAL_LEN];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[start..]);
}

/// Streaming RFC 9530 `Content-Digest` (`sha-256`) for a body that arrives in chunks.
#[derive(Clone)]
pub(crate) struct ContentDigest {
    context: digest::Context,
}

impl Default for ContentDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl ContentDigest {
    pub(crate) fn new() -> Self {
        Self {
            context: digest::Context::new(&digest::SHA256),
        }
    }

    /// Feeds the next chunk of the body, in order.
    pub(crate) fn update(&mut self, chunk: &[u8]) {
        self.context.update(chunk);
    }

    /// The header value `sha-256=:BASE64:` over every chunk fed so far.
    pub(crate) fn finish(self) -> HeaderValue {
        digest_header(self.context.finish())
    }
}

/// `Content-Digest` of a whole body: `sha-256=:BASE64:` (RFC 9530), also for an empty body.
#[cfg(test)]
pub(crate) fn content_digest(body: &[u8]) -> HeaderValue {
    digest_header(digest::digest(&digest::SHA256, body))
}

fn digest_header(digest: digest::Digest) -> HeaderValue {
    // `sha-256=:` + base64 of the 32-byte digest (44) + `:`
    let mut value = [0u8; 54];
    value[..9].copy_from_slice(b"sha-256=:");
    STANDARD
        .encode_slice(digest.as_ref(), &mut value[9..53])
        .expect("a 32-byte digest encodes to exactly 44 base64 bytes");
    value[53] = b':';
    HeaderValue::from_bytes(&value).expect("the prefix and base64 are visible ASCII")
}

#[cfg(test)]
mod tests;
