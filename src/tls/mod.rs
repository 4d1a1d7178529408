//! TLS termination: the rustls server config built from `[tls]`, and what a failed handshake
//! means for the metrics.

pub(crate) mod describe;
pub(crate) mod pem;
pub(crate) mod verifier;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{CertificateError, RootCertStore, ServerConfig};
use rustls_pki_types::CertificateDer;

use crate::config::TlsVersion;
pub(crate) use verifier::ClientVerifier;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error(transparent)]
    Pem(#[from] pem::PemError),
    #[error("{}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
}

impl TlsError {
    /// The file the error is about.
    pub(crate) fn path(&self) -> &std::path::Path {
        match self {
            TlsError::Pem(
                pem::PemError::Read { path, .. }
                | pem::PemError::NoCertificates { path, .. }
                | pem::PemError::NoKey { path, .. },
            )
            | TlsError::Invalid { path, .. } => path,
        }
    }
}

/// What `[tls]` needs resolved from disk.
pub(crate) struct TlsInputs<'a> {
    pub cert: &'a std::path::Path,
    pub key: &'a std::path::Path,
    pub client_ca: Option<&'a std::path::Path>,
    pub min_version: TlsVersion,
    pub check_validity: bool,
    /// The pins in force, read by the verifier at each handshake.
    pub admission: crate::admission::AdmissionCell,
}

/// The server config plus facts about the served certificate.
pub(crate) struct ServerTls {
    pub config: Arc<ServerConfig>,
    /// notAfter of the served leaf, for the expiry gauge.
    pub cert_not_after: i64,
}

pub(crate) fn build_server_tls(inputs: TlsInputs<'_>) -> Result<ServerTls, TlsError> {
    let provider = Arc::new(provider());
    let chain = pem::load_certs(inputs.cert)?;
    let key = pem::load_key(inputs.key)?;
    let cert_not_after = not_after(&chain[0]).map_err(|detail| TlsError::Invalid {
        path: inputs.cert.to_owned(),
        detail,
    })?;

    let ca_verifier = match inputs.client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in pem::load_certs(path)? {
                roots.add(cert).map_err(|e| TlsError::Invalid {
                    path: path.to_owned(),
                    detail: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| TlsError::Invalid {
                    path: path.to_owned(),
                    detail: e.to_string(),
                })?;
            Some(v)
        }
        None => None,
    };
    let verifier = ClientVerifier::new(
        inputs.admission,
        ca_verifier,
        inputs.check_validity,
        provider.signature_verification_algorithms,
    );
    let versions: &[&rustls::SupportedProtocolVersion] = match inputs.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Invalid {
            path: inputs.cert.to_owned(),
            detail: e.to_string(),
        })?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid {
            path: inputs.key.to_owned(),
            detail: format!(
                "the key does not fit the certificate {}: {e}",
                inputs.cert.display()
            ),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    // Webhook senders open a fresh connection per delivery and never resume: issuing tickets
    // or caching sessions would be pure cost (and resumption would skip client authentication).
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    Ok(ServerTls {
        config: Arc::new(config),
        cert_not_after,
    })
}

/// aws-lc-rs with AES-128-GCM/SHA-256 suites preferred: SHA-256 has CPU instructions (SHA-NI)
/// where SHA-384 has none, and the handshake hashes its transcript and derives keys with the
/// suite's hash; AES-128 is as safe for this purpose and cheaper. The server's order wins
/// (`ignore_client_order`) because clients usually list AES-256 first.
fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite as S;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    let rank = |s: S| match s {
        S::TLS13_AES_128_GCM_SHA256 => 0,
        S::TLS13_AES_256_GCM_SHA384 => 1,
        S::TLS13_CHACHA20_POLY1305_SHA256 => 2,
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 3,
        _ => 4,
    };
    provider.cipher_suites.sort_by_key(|s| rank(s.suite()));
    provider
}

fn not_after(der: &CertificateDer<'_>) -> Result<i64, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("cannot parse the leaf certificate: {e}"))?;
    Ok(cert.validity().not_after.timestamp())
}

/// How a TLS handshake ended. `CertExpired` also covers "not yet valid"; `Error` is anything
/// else (e.g. no common TLS version). `metrics` gives each its `result` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum HandshakeResult {
    Ok,
    NoClientCert,
    ThumbprintDenied,
    ChainInvalid,
    CertExpired,
    Timeout,
    Error,
}

/// Classifies a failed handshake.
pub(crate) fn classify_handshake_error(err: &std::io::Error) -> HandshakeResult {
    let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return HandshakeResult::Error;
    };
    match tls {
        rustls::Error::NoCertificatesPresented => HandshakeResult::NoClientCert,
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::ApplicationVerificationFailure => HandshakeResult::ThumbprintDenied,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => HandshakeResult::CertExpired,
            CertificateError::UnknownIssuer
            | CertificateError::NotValidForName
            | CertificateError::NotValidForNameContext { .. }
            | CertificateError::InvalidPurpose
            | CertificateError::InvalidPurposeContext { .. }
            | CertificateError::Revoked
            | CertificateError::UnhandledCriticalExtension
            | CertificateError::BadEncoding => HandshakeResult::ChainInvalid,
            // BadSignature: no proof of the private key (or a forged chain signature).
            _ => HandshakeResult::Error,
        },
        _ => HandshakeResult::Error,
    }
}
