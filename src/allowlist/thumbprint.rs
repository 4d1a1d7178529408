//! Certificate thumbprints (SHA-1 or SHA-256 of the leaf DER) and the set of pinned ones.

use std::fmt;
use std::str::FromStr;

use crate::digest::hex;

/// One pinned thumbprint, parsed from hex in any case with ':' ' ' '-' separators ignored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Thumbprint {
    Sha1([u8; 20]),
    Sha256([u8; 32]),
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0:?} is not a thumbprint: expected 40 (SHA-1) or 64 (SHA-256) hex digits, ':' ' ' '-' allowed between them")]
pub(crate) struct BadThumbprint(pub(crate) String);

impl FromStr for Thumbprint {
    type Err = BadThumbprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadThumbprint(s.chars().take(100).collect());
        let mut bytes = Vec::with_capacity(32);
        let mut high: Option<u8> = None;
        for c in s.chars() {
            if matches!(c, ':' | ' ' | '-') {
                continue;
            }
            let nibble = c.to_digit(16).ok_or_else(bad)? as u8;
            match high.take() {
                None => high = Some(nibble),
                Some(h) => bytes.push(h << 4 | nibble),
            }
        }
        if high.is_some() {
            return Err(bad());
        }
        match bytes.len() {
            20 => Ok(Thumbprint::Sha1(bytes.try_into().expect("length checked"))),
            32 => Ok(Thumbprint::Sha256(
                bytes.try_into().expect("length checked"),
            )),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, bytes): (&str, &[u8]) = match self {
            Thumbprint::Sha1(b) => ("sha1", b),
            Thumbprint::Sha256(b) => ("sha256", b),
        };
        write!(f, "{prefix}:{}", hex(bytes))
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The pinned thumbprints, sorted for binary search.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct PinSet {
    sha256: Vec<[u8; 32]>,
    sha1: Vec<[u8; 20]>,
}

impl PinSet {
    pub(crate) fn new(pins: impl IntoIterator<Item = Thumbprint>) -> Self {
        let mut set = PinSet::default();
        for pin in pins {
            match pin {
                Thumbprint::Sha1(b) => set.sha1.push(b),
                Thumbprint::Sha256(b) => set.sha256.push(b),
            }
        }
        set.sha256.sort_unstable();
        set.sha256.dedup();
        set.sha1.sort_unstable();
        set.sha1.dedup();
        set
    }

    pub(crate) fn len(&self) -> usize {
        self.sha256.len() + self.sha1.len()
    }

    /// Whether the leaf with these digests is pinned: by SHA-256, or by SHA-1 when given (the
    /// caller computes it only when [`PinSet::has_sha1`]); a missing SHA-1 never matches.
    pub(crate) fn contains(&self, leaf_sha256: &[u8; 32], leaf_sha1: Option<&[u8; 20]>) -> bool {
        self.sha256.binary_search(leaf_sha256).is_ok()
            || leaf_sha1.is_some_and(|d| self.sha1.binary_search(d).is_ok())
    }

    /// Whether any SHA-1 pin exists (then the leaf's SHA-1 is worth keeping).
    pub(crate) fn has_sha1(&self) -> bool {
        !self.sha1.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{sha1, sha256};

    const SHA256_HEX: &str = "ee22c3325df8d2f0c8785cbb8e2d254e49bb35bfe13f0b57d82836ed06d13e0e";

    #[test]
    fn parses_sha256_and_sha1_in_any_case_with_separators() {
        let a: Thumbprint = SHA256_HEX.parse().expect("plain");
        let b: Thumbprint = SHA256_HEX.to_uppercase().parse().expect("upper");
        let colons = SHA256_HEX
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect::<Vec<_>>()
            .join(":");
        let c: Thumbprint = colons.parse().expect("colons");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(matches!(
            "FD 61 0F 96 3D B8 7F 44 2B 67 C3 67 E9 E5 43 C6 C6 C0 CB 08".parse(),
            Ok(Thumbprint::Sha1(_))
        ));
        assert!(matches!(
            "fd610f96-3db87f44-2b67c367-e9e543c6-c6c0cb08".parse(),
            Ok(Thumbprint::Sha1(_))
        ));
    }

    #[test]
    fn rejects_wrong_length_odd_digits_and_non_hex() {
        for bad in [
            "",
            "abc",
            &SHA256_HEX[1..],
            &SHA256_HEX[..62],
            "zz",
            "0x12",
            "é",
        ] {
            assert!(bad.parse::<Thumbprint>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn displays_lowercase_with_algorithm() {
        let t: Thumbprint = SHA256_HEX.to_uppercase().parse().expect("valid");
        assert_eq!(t.to_string(), format!("sha256:{SHA256_HEX}"));
    }

    #[test]
    fn pin_set_matches_either_digest_of_the_leaf() {
        let der = b"not really a certificate, but bytes are bytes";
        let by256 = PinSet::new([Thumbprint::Sha256(sha256(der))]);
        let by1 = PinSet::new([Thumbprint::Sha1(sha1(der))]);
        let other = PinSet::new([Thumbprint::Sha256([7; 32])]);
        let (d256, d1) = (sha256(der), sha1(der));
        assert!(by256.contains(&d256, None));
        assert!(by1.contains(&d256, Some(&d1)));
        assert!(!by1.contains(&d256, None), "no SHA-1 given, none matched");
        assert!(!other.contains(&d256, Some(&d1)));
        assert!(!PinSet::default().contains(&d256, Some(&d1)));
    }
}
