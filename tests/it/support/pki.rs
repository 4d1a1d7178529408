//! The test PKI, generated once per test binary with rcgen: a CA and its server certificate, the
//! pinned self-signed client, an unpinned one, expired and not-yet-valid ones, CA-signed clients
//! and a client from a foreign CA. Every certificate is ECDSA P-256.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aws_lc_rs::digest;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// One certificate with its private key, as PEM and DER.
pub struct Identity {
    /// A short name, used for file names (`<name>.pem`, `<name>.key`).
    pub name: &'static str,
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate's DER: what hookgate thumbprints and forwards as `Client-Cert`.
    pub der: Vec<u8>,
    /// The private key as PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl Identity {
    /// Lowercase hex SHA-256 of the DER (the form `X-Client-Cert-Sha256` uses).
    pub fn sha256_hex(&self) -> String {
        hex(digest::digest(&digest::SHA256, &self.der).as_ref())
    }

    /// Lowercase hex SHA-1 of the DER.
    pub fn sha1_hex(&self) -> String {
        hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der).as_ref())
    }

    /// `:BASE64(DER):`, the RFC 9440 `Client-Cert` value.
    pub fn client_cert_header(&self) -> String {
        format!(
            ":{}:",
            base64::engine::general_purpose::STANDARD.encode(&self.der)
        )
    }

    /// Writes `<dir>/<name>.pem` and `<dir>/<name>.key`; returns both paths.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{}.pem", self.name));
        let key = dir.join(format!("{}.key", self.name));
        std::fs::write(&cert, &self.cert_pem).expect("write certificate");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
}

/// Every certificate the tests use. Built once (`Pki::get`), shared read-only by all tests.
pub struct Pki {
    /// The CA that signed `server`, `ca_client` and `ca_client2` (used as `tls.client_ca`).
    pub ca: Identity,
    /// hookgate's server certificate: SANs `localhost` and `127.0.0.1`.
    pub server: Identity,
    /// The rotated server certificate (reload tests): same SANs and CA, another key, and
    /// notAfter 2040-01-01 so `hookgate_server_cert_not_after_timestamp_seconds` moves.
    pub server_rotated: Identity,
    /// Self-signed, valid: the client the default config pins (by SHA-256).
    pub client: Identity,
    /// Self-signed, valid, never pinned by default.
    pub other_client: Identity,
    /// Self-signed, expired in 2002.
    pub expired: Identity,
    /// Self-signed, valid only from 2090.
    pub not_yet_valid: Identity,
    /// Signed by `ca`, with the clientAuth EKU.
    pub ca_client: Identity,
    /// Another client signed by `ca`.
    pub ca_client2: Identity,
    /// A CA hookgate never trusts, and a client it signed.
    pub foreign_ca: Identity,
    pub foreign_client: Identity,
}

static PKI: OnceLock<Pki> = OnceLock::new();

impl Pki {
    /// The shared PKI (generated on first use).
    pub fn get() -> &'static Pki {
        PKI.get_or_init(Pki::generate)
    }

    fn generate() -> Pki {
        let (ca, ca_cert, ca_key) = make_ca("ca", "hookgate test CA");
        let (foreign_ca, foreign_cert, foreign_key) = make_ca("foreign-ca", "foreign test CA");
        let server_cert = |name: &'static str, not_after: Option<i32>| {
            let key = KeyPair::generate().expect("key");
            let mut p =
                CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                    .expect("params");
            p.distinguished_name.push(DnType::CommonName, "localhost");
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            if let Some(year) = not_after {
                p.not_after = rcgen::date_time_ymd(year, 1, 1);
            }
            let cert = p.signed_by(&key, &ca_cert, &ca_key).expect("sign server");
            identity(name, &cert, &key)
        };
        let server = server_cert("server", None);
        let server_rotated = server_cert("server-rotated", Some(2040));
        let signed_client = |name: &'static str, issuer: &rcgen::Certificate, ik: &KeyPair| {
            let key = KeyPair::generate().expect("key");
            let cert = client_params(name)
                .signed_by(&key, issuer, ik)
                .expect("sign client");
            identity(name, &cert, &key)
        };
        Pki {
            server,
            server_rotated,
            client: self_signed("client", None),
            other_client: self_signed("other-client", None),
            expired: self_signed("expired", Some((2001, 2002))),
            not_yet_valid: self_signed("not-yet-valid", Some((2090, 2099))),
            ca_client: signed_client("ca-client", &ca_cert, &ca_key),
            ca_client2: signed_client("ca-client2", &ca_cert, &ca_key),
            foreign_client: signed_client("foreign-client", &foreign_cert, &foreign_key),
            ca,
            foreign_ca,
        }
    }
}

fn make_ca(name: &'static str, cn: &str) -> (Identity, rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).expect("self-sign CA");
    (identity(name, &cert, &key), cert, key)
}

fn client_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Webhook Sender Test");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p
}

/// `validity`: `(first year, last year)`, each from January 1st.
fn self_signed(name: &'static str, validity: Option<(i32, i32)>) -> Identity {
    let key = KeyPair::generate().expect("key");
    let mut p = client_params(name);
    if let Some((from, to)) = validity {
        p.not_before = rcgen::date_time_ymd(from, 1, 1);
        p.not_after = rcgen::date_time_ymd(to, 1, 1);
    }
    let cert = p.self_signed(&key).expect("self-sign client");
    identity(name, &cert, &key)
}

fn identity(name: &'static str, cert: &rcgen::Certificate, key: &KeyPair) -> Identity {
    Identity {
        name,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

/// Lowercase hex, no separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
