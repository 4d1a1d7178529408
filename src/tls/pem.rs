//! PEM and DER loading for certificates and keys; errors name the file.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub(crate) enum PemError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate (or a malformed one: {detail})", path.display())]
    NoCertificates { path: PathBuf, detail: String },
    #[error("{} holds no usable private key (PKCS#8, SEC1 or PKCS#1 PEM expected): {detail}", path.display())]
    NoKey { path: PathBuf, detail: String },
}

/// All certificates of a PEM bundle, or the single certificate of a DER file.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let bytes = crate::fsio::read(path).map_err(|source| PemError::Read {
        path: path.to_owned(),
        source,
    })?;
    certs_from_bytes(&bytes).map_err(|detail| PemError::NoCertificates {
        path: path.to_owned(),
        detail,
    })
}

/// PEM (any number of CERTIFICATE blocks) or, when the bytes are not PEM, one DER certificate.
pub(crate) fn certs_from_bytes(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    if bytes.first() == Some(&0x30) {
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block".into());
    }
    Ok(certs)
}

pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    let bytes = crate::fsio::read(path).map_err(|source| PemError::Read {
        path: path.to_owned(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| PemError::NoKey {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}
