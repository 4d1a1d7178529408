//! Human-readable facts about a certificate: thumbprints, RFC 4514 subject, notAfter.

use std::time::{Duration, SystemTime};

use x509_parser::prelude::*;

use crate::digest::{hex, sha1, sha256};

/// `sha1:<hex> sha256:<hex> subject="<RFC 4514 DN>" not_after=<RFC 3339 UTC>`
pub(crate) fn line(der: &[u8]) -> Result<String, String> {
    let (_, cert) =
        parse_x509_certificate(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(format!(
        "sha1:{} sha256:{} subject=\"{}\" not_after={}",
        hex(&sha1(der)),
        hex(&sha256(der)),
        rfc4514(cert.subject())
            .replace('\\', "\\\\")
            .replace('"', "\\\""),
        rfc3339(cert.validity().not_after.timestamp()),
    ))
}

/// UNIX seconds as RFC 3339 UTC (`2027-01-31T12:00:00Z`).
pub(crate) fn rfc3339(unix: i64) -> String {
    let t = if unix >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
    };
    humantime::format_rfc3339_seconds(t).to_string()
}

/// UNIX milliseconds as RFC 3339 UTC with milliseconds (`2027-01-31T12:00:00.123Z`).
pub(crate) fn rfc3339_millis(unix_ms: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(unix_ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// RFC 4514: RDNs in reverse order, `+` between multi-valued attributes, special characters escaped.
pub(crate) fn rfc4514(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = Vec::new();
    for rdn in name.iter() {
        let attrs: Vec<String> = rdn
            .iter()
            .map(|attr| {
                let oid = attr.attr_type();
                let key = short_name(&oid.to_id_string());
                let value = match attr.as_str() {
                    Ok(s) => escape(s),
                    Err(_) => format!("#{}", hex(attr.attr_value().data)),
                };
                format!("{key}={value}")
            })
            .collect();
        rdns.push(attrs.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

fn short_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => return other.to_owned(),
    }
    .to_owned()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

/// The SPEC §10 fields of a refused client certificate, for its one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefusedCert {
    pub sha256: String,
    pub sha1: String,
    /// `None` (with `parse_error`) when the DER is not a certificate x509-parser can read.
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub not_after: Option<String>,
    pub parse_error: Option<String>,
}

impl RefusedCert {
    /// What can be read of `der`: the thumbprints always, the names and date when it parses.
    pub(crate) fn of(der: &[u8]) -> RefusedCert {
        let (subject, issuer, not_after, parse_error) = match parse_x509_certificate(der) {
            Ok((_, cert)) => (
                Some(rfc4514(cert.subject())),
                Some(rfc4514(cert.issuer())),
                Some(rfc3339(cert.validity().not_after.timestamp())),
                None,
            ),
            Err(e) => (
                None,
                None,
                None,
                Some(format!("not an X.509 certificate: {e}")),
            ),
        };
        RefusedCert {
            sha256: hex(&sha256(der)),
            sha1: hex(&sha1(der)),
            subject,
            issuer,
            not_after,
            parse_error,
        }
    }
}
