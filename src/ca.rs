//! A CA certificate with its private key: the issuing CA (certificates and
//! CRLs) and the delegated OCSP responder are both one of these.

use std::path::Path;

use der::{Decode, Encode};
use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use crate::signer::{KeyRef, Signer, SignerError};

/// Why a CA certificate or key could not be loaded; names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a PEM or DER X.509 certificate: {message}")]
    BadCertificate { path: String, message: String },
    #[error("{setting} = {key}: {source}")]
    BadKey {
        setting: String,
        key: String,
        source: SignerError,
    },
    #[error("the private key {key} does not belong to the certificate {cert}")]
    KeyMismatch { cert: String, key: String },
}

/// The parts of a CA certificate eidca uses.
#[derive(Debug, Clone)]
pub struct CaCertificate {
    pub der: Vec<u8>,
    /// DER of the subject Name: the issuer field of what this CA signs.
    pub subject_der: Vec<u8>,
    /// subjectKeyIdentifier (or, if absent, SHA-1 of the key, RFC 5280 §4.2.1.2).
    pub key_id: Vec<u8>,
    /// subjectPublicKey BIT STRING contents.
    pub public_key_bits: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl CaCertificate {
    /// Parses a certificate from PEM or DER.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let der = if bytes.starts_with(b"-----BEGIN") {
            let (label, der) = der::pem::decode_vec(bytes).map_err(|e| e.to_string())?;
            if label != "CERTIFICATE" {
                return Err(format!("expected a CERTIFICATE PEM block, found `{label}`"));
            }
            der
        } else {
            bytes.to_vec()
        };
        let cert = Certificate::from_der(&der).map_err(|e| e.to_string())?;
        let tbs = cert.tbs_certificate();
        let public_key_bits = tbs
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes()
            .to_vec();
        let key_id = match tbs.get_extension::<SubjectKeyIdentifier>() {
            Ok(Some((_, ski))) => ski.0.as_bytes().to_vec(),
            _ => digest(&SHA1_FOR_LEGACY_USE_ONLY, &public_key_bits)
                .as_ref()
                .to_vec(),
        };
        let unix = |t: &x509_cert::time::Time| {
            OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64)
                .map_err(|e| e.to_string())
        };
        Ok(CaCertificate {
            subject_der: tbs.subject().to_der().map_err(|e| e.to_string())?,
            key_id,
            public_key_bits,
            not_before: unix(&tbs.validity().not_before)?,
            not_after: unix(&tbs.validity().not_after)?,
            der,
        })
    }
}

/// A certificate and the private key that belongs to it.
#[derive(Debug)]
pub struct CaKeyPair {
    pub cert: CaCertificate,
    pub signer: Signer,
}

impl CaKeyPair {
    /// Reads the certificate, opens the key (`key_setting` names it in
    /// errors and health reports) and checks that the key matches the
    /// certificate.
    pub fn load(cert_path: &Path, key_setting: &str, key: &KeyRef) -> Result<Self, CaError> {
        let cert_name = cert_path.display().to_string();
        let cert_bytes = std::fs::read(cert_path).map_err(|source| CaError::Read {
            path: cert_name.clone(),
            source,
        })?;
        let cert =
            CaCertificate::parse(&cert_bytes).map_err(|message| CaError::BadCertificate {
                path: cert_name.clone(),
                message,
            })?;
        let signer = Signer::open(key_setting, key).map_err(|source| CaError::BadKey {
            setting: key_setting.to_owned(),
            key: key.to_string(),
            source,
        })?;
        if signer.public_key_bits() != cert.public_key_bits.as_slice() {
            return Err(CaError::KeyMismatch {
                cert: cert_name,
                key: format!("{key_setting} = {key}"),
            });
        }
        Ok(CaKeyPair { cert, signer })
    }
}
