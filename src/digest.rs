//! SHA-256, SHA-1 and lowercase hex: for certificate thumbprints, request ids, dedup keys and
//! the body digest's neighbours alike.

use aws_lc_rs::digest;

/// Lowercase hex without separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// SHA-256 of a certificate's DER.
pub(crate) fn sha256(der: &[u8]) -> [u8; 32] {
    digest::digest(&digest::SHA256, der)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// SHA-1 of a certificate's DER (thumbprints only; SHA-1 is what many vendors publish).
pub(crate) fn sha1(der: &[u8]) -> [u8; 20] {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .try_into()
        .expect("SHA-1 is 20 bytes")
}
