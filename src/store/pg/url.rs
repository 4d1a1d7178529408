//! `store.url` (SPEC §9.5): a `postgres://user:pass@host:port/db?sslmode=...` secret turned into
//! a connection config and the TLS it requires. The URL is never logged: errors and logs use
//! [`Target::loggable`] (no user, no password), and every error text is scrubbed of the password.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode};

use super::tls::MakeRustls;

/// A parsed `store.url`: what to connect to, and how.
#[derive(Clone)]
pub(crate) struct Target {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustls,
    /// `postgres://host:port/db (sslmode=...)`, safe for logs.
    loggable: String,
    password: Option<String>,
}

impl Target {
    /// What errors and logs name instead of the URL.
    pub(crate) fn loggable(&self) -> &str {
        &self.loggable
    }

    /// `text` with every occurrence of the password replaced (a driver may quote the URL).
    pub(crate) fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(p) if !p.is_empty() => text.replace(p.as_str(), "<redacted>"),
            _ => text.to_owned(),
        }
    }
}

/// Parses the resolved secret. `sslmode` is `disable` (plain TCP: loopback or a private link),
/// `verify-full` (the default: the chain to the system roots or `sslrootcert`, and the host
/// name), or `require`/`verify-ca` (the chain, not the name). hookgate never sends a password
/// over TLS it did not verify, so `allow` and `prefer` (which fall back to plaintext) are refused.
pub(crate) fn parse(url: &[u8], base: &Path) -> Result<Target, String> {
    let url = std::str::from_utf8(url).map_err(|_| "is not valid UTF-8".to_owned())?;
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("must be a postgres:// or postgresql:// URL".to_owned());
    }
    let password = password_of(url);
    let scrub = |t: String| match &password {
        Some(p) if !p.is_empty() => t.replace(p.as_str(), "<redacted>"),
        _ => t,
    };
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = "verify-full".to_owned();
    let mut root: Option<String> = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = percent_decode(v),
            Some(("sslrootcert", v)) => root = Some(percent_decode(v)),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| scrub(format!("is not a valid PostgreSQL URL: {e}")))?;
    let tls = match mode.as_str() {
        "disable" => {
            config.ssl_mode(SslMode::Disable);
            MakeRustls::plain()
        }
        "require" | "verify-ca" | "verify-full" => {
            config.ssl_mode(SslMode::Require);
            let roots = load_roots(root.as_deref(), base)?;
            MakeRustls::verified(build_tls(roots, mode == "verify-full")?)
        }
        "allow" | "prefer" => {
            return Err(format!(
                "sslmode={mode} may fall back to plaintext; use verify-full, verify-ca, require or (on a private network) disable"
            ))
        }
        other => return Err(format!("sslmode={other:?} is not one of disable, require, verify-ca, verify-full")),
    };
    if config.get_hosts().is_empty() {
        return Err("names no host".to_owned());
    }
    let loggable = loggable(&config, &mode);
    Ok(Target {
        config,
        tls,
        loggable,
        password,
    })
}

fn loggable(config: &tokio_postgres::Config, mode: &str) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, port)| match h {
            Host::Tcp(name) => format!("{name}:{port}"),
            Host::Unix(dir) => dir.display().to_string(),
        })
        .collect();
    format!(
        "postgres://{}/{} (sslmode={mode})",
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// The password in `scheme://user:password@host...`, as written (and percent-decoded).
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let raw = userinfo.split_once(':')?.1;
    Some(percent_decode(raw)).filter(|p| !p.is_empty())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn load_roots(file: Option<&str>, base: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match file {
        Some(file) => {
            let path = base.join(file);
            let pem = crate::fsio::read(&path)
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "sslrootcert {} holds no certificate",
                    path.display()
                ));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(
                    "no system root certificates to verify the database with; set sslrootcert=PATH"
                        .to_owned(),
                );
            }
        }
    }
    Ok(roots)
}

fn build_tls(roots: RootCertStore, check_name: bool) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("sslrootcert: {e}"))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if check_name {
        builder.with_webpki_verifier(webpki)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
    };
    Ok(config.with_no_client_auth())
}

/// `require`/`verify-ca`: the chain must verify; a name mismatch alone is accepted (webpki
/// checks the name only after the chain verified, so nothing else is waived).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        parse(url.as_bytes(), Path::new("."))
            .err()
            .expect("an error")
    }

    #[test]
    fn names_the_target_without_user_or_password() {
        let t = parse(
            b"postgres://hg:s3cr%40t@db.internal:6543/hooks?sslmode=disable&application_name=x",
            Path::new("."),
        )
        .expect("valid");
        assert_eq!(
            t.loggable(),
            "postgres://db.internal:6543/hooks (sslmode=disable)"
        );
        assert_eq!(
            t.scrub("auth failed for s3cr@t"),
            "auth failed for <redacted>"
        );
        assert_eq!(t.config.get_password(), Some(&b"s3cr@t"[..]));
    }

    #[test]
    fn refuses_modes_that_fall_back_to_plaintext_and_other_schemes() {
        assert!(err("postgres://u:p@h/db?sslmode=prefer").contains("plaintext"));
        assert!(err("postgres://u:p@h/db?sslmode=allow").contains("plaintext"));
        assert!(err("postgres://u:p@h/db?sslmode=bogus").contains("not one of"));
        assert!(err("mysql://u:p@h/db").contains("postgres://"));
        let bad = err("postgres://u:hunter2@h:notaport/db?sslmode=disable");
        assert!(!bad.contains("hunter2"), "{bad}");
    }

    #[test]
    fn a_missing_root_file_is_named() {
        let e = err("postgres://u:p@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
        assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
    }
}
