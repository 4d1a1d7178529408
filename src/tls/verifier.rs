//! The client-certificate verifier: pins (SHA-1/SHA-256 of the leaf), an optional CA chain,
//! and the validity period, all decided inside the handshake so a refused client never gets HTTP.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::admission::AdmissionCell;
use crate::digest::{sha1, sha256};

tokio::task_local! {
    /// The leaf certificate a handshake refused, set by the verifier for the connection task
    /// that runs the handshake (it logs it, SPEC §10). Only the refusal path writes it.
    pub(crate) static REFUSED_LEAF: std::cell::RefCell<Option<Vec<u8>>>;
}

/// Remembers `der` as the refused leaf when `result` is a refusal, inside a handshake run under
/// [`REFUSED_LEAF`] (elsewhere, as in `check`, there is nobody to tell).
fn note_refusal<T>(der: &[u8], result: Result<T, Error>) -> Result<T, Error> {
    if result.is_err() {
        let _ = REFUSED_LEAF.try_with(|cell| {
            cell.borrow_mut().get_or_insert_with(|| der.to_vec());
        });
    }
    result
}

/// Both configured checks must pass; proof of the private key is always verified.
pub(crate) struct ClientVerifier {
    /// The pins in force (the gate swaps them; `None` inside: no `[thumbprints]`).
    admission: AdmissionCell,
    chain: Option<Arc<dyn ClientCertVerifier>>,
    check_validity: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    pub(crate) fn new(
        admission: AdmissionCell,
        chain: Option<Arc<dyn ClientCertVerifier>>,
        check_validity: bool,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Self {
        ClientVerifier {
            admission,
            chain,
            check_validity,
            algorithms,
        }
    }
}

impl std::fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientVerifier")
            .field("chain", &self.chain)
            .field("check_validity", &self.check_validity)
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Pinned self-signed senders have no CA to hint; an empty list makes clients send any cert.
        self.chain
            .as_ref()
            .map_or(&[], |chain| chain.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        note_refusal(end_entity, self.verify_leaf(end_entity, intermediates, now))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let verified = rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms);
        note_refusal(cert, verified)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let verified = rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms);
        note_refusal(cert, verified)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientVerifier {
    fn verify_leaf(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let admission = self.admission.load();
        let leaf_sha1 = admission.wants_sha1().then(|| sha1(end_entity));
        if !admission.admits_leaf(&sha256(end_entity), leaf_sha1.as_ref()) {
            return Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        match &self.chain {
            // webpki path validation checks the validity period of every certificate itself.
            Some(chain) => {
                chain.verify_client_cert(end_entity, intermediates, now)?;
            }
            None => {
                check_parses(end_entity)?;
                if self.check_validity {
                    check_validity(end_entity, now)?;
                }
            }
        }
        Ok(ClientCertVerified::assertion())
    }
}

/// A pinned certificate must parse as webpki parses it when it checks the handshake signature;
/// checked here so that a critical extension webpki does not know is refused as such
/// (`chain_invalid`) instead of surfacing later as an unclassified error.
fn check_parses(der: &CertificateDer<'_>) -> Result<(), Error> {
    match webpki::EndEntityCert::try_from(der) {
        Ok(_) => Ok(()),
        Err(webpki::Error::UnsupportedCriticalExtension) => Err(Error::InvalidCertificate(
            CertificateError::UnhandledCriticalExtension,
        )),
        Err(_) => Err(Error::InvalidCertificate(CertificateError::BadEncoding)),
    }
}

/// notBefore <= now <= notAfter for a certificate that is not chain-validated (a pinned one).
fn check_validity(der: &[u8], now: UnixTime) -> Result<(), Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now > validity.not_after.timestamp() {
        return Err(Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(())
}
