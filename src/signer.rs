//! CA keys: load a PKCS#8 key, sign, and describe the signature algorithm.
//!
//! Every signature eidca makes (certificates, CRLs, OCSP responses) goes
//! through [`Signer`], so the algorithm identifier in a structure always
//! matches the key that signed it. ring does the cryptography.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use zeroize::Zeroizing;

/// DER of AlgorithmIdentifier { ecdsa-with-SHA256 } (parameters absent, RFC 5758 §3.2).
const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// DER of AlgorithmIdentifier { ecdsa-with-SHA384 }.
const ALG_ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
/// DER of AlgorithmIdentifier { sha256WithRSAEncryption, NULL } (RFC 4055 §5).
const ALG_RSA_SHA256: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];

/// The key types a CA or responder key may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256: the default.
    EcdsaP256,
    /// ECDSA P-384 with SHA-384.
    EcdsaP384,
    /// RSA 2048–4096 bits, PKCS#1 v1.5 with SHA-256.
    Rsa { bits: usize },
}

enum KeyPairKind {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// Why a private key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("the key file is not PEM with a PRIVATE KEY (PKCS#8) block: {0}")]
    NotPkcs8Pem(String),
    #[error("the key is not an ECDSA P-256, ECDSA P-384 or RSA 2048–4096 PKCS#8 key")]
    UnsupportedKey,
    #[error("RSA keys must have 2048 to 4096 bits; this one has {0}")]
    RsaSize(usize),
    #[error("signing failed")]
    SigningFailed,
}

/// A private key held in memory only, able to sign for its certificate.
pub struct Signer {
    key: KeyPairKind,
    algorithm: KeyAlgorithm,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Signer")
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl Signer {
    /// Loads a PKCS#8 private key from PEM (`-----BEGIN PRIVATE KEY-----`).
    /// The decoded bytes are wiped when this returns.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, SignerError> {
        let (label, der) = der::pem::decode_vec(pem.as_bytes())
            .map_err(|e| SignerError::NotPkcs8Pem(e.to_string()))?;
        let der = Zeroizing::new(der);
        if label != "PRIVATE KEY" {
            return Err(SignerError::NotPkcs8Pem(format!(
                "found a `{label}` block; convert it with `openssl pkcs8 -topk8 -nocrypt`"
            )));
        }
        Self::from_pkcs8_der(&der)
    }

    /// Loads a PKCS#8 private key from DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SignerError> {
        let rng = SystemRandom::new();
        let ecdsa = [
            (
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                KeyAlgorithm::EcdsaP256,
            ),
            (
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                KeyAlgorithm::EcdsaP384,
            ),
        ];
        for (alg, algorithm) in ecdsa {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(alg, der, &rng) {
                return Ok(Self {
                    key: KeyPairKind::Ecdsa(pair),
                    algorithm,
                    rng,
                });
            }
        }
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| SignerError::UnsupportedKey)?;
        let bits = pair.public().modulus_len() * 8;
        if !(2048..=4096).contains(&bits) {
            return Err(SignerError::RsaSize(bits));
        }
        Ok(Self {
            key: KeyPairKind::Rsa(pair),
            algorithm: KeyAlgorithm::Rsa { bits },
            rng,
        })
    }

    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Signs `message` whole; the returned bytes go into a BIT STRING.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match &self.key {
            KeyPairKind::Ecdsa(pair) => pair
                .sign(&self.rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| SignerError::SigningFailed),
            KeyPairKind::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| SignerError::SigningFailed)?;
                Ok(sig)
            }
        }
    }

    /// DER of the signature AlgorithmIdentifier this key produces.
    pub fn signature_algorithm_der(&self) -> &'static [u8] {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => ALG_ECDSA_SHA256,
            KeyAlgorithm::EcdsaP384 => ALG_ECDSA_SHA384,
            KeyAlgorithm::Rsa { .. } => ALG_RSA_SHA256,
        }
    }

    /// The subjectPublicKey BIT STRING contents (an EC point, or a DER
    /// RSAPublicKey).
    pub fn public_key_bits(&self) -> &[u8] {
        match &self.key {
            KeyPairKind::Ecdsa(pair) => pair.public_key().as_ref(),
            KeyPairKind::Rsa(pair) => pair.public_key().as_ref(),
        }
    }
}

impl rcgen::PublicKeyData for Signer {
    fn der_bytes(&self) -> &[u8] {
        self.public_key_bits()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl rcgen::SigningKey for Signer {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Signer::sign(self, msg).map_err(|_| rcgen::Error::RingUnspecified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(alg: &'static signature::EcdsaSigningAlgorithm) -> Vec<u8> {
        EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn loads_p256_and_p384_and_signatures_verify() {
        let cases = [
            (
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P256_SHA256_ASN1,
                KeyAlgorithm::EcdsaP256,
            ),
            (
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &signature::ECDSA_P384_SHA384_ASN1,
                KeyAlgorithm::EcdsaP384,
            ),
        ];
        for (signing, verifying, expected) in cases {
            let signer = Signer::from_pkcs8_der(&generated(signing)).unwrap();
            assert_eq!(signer.key_algorithm(), expected);
            let sig = signer.sign(b"tbs").unwrap();
            signature::UnparsedPublicKey::new(verifying, signer.public_key_bits())
                .verify(b"tbs", &sig)
                .unwrap();
        }
    }

    #[test]
    fn refuses_non_pkcs8_pem_and_garbage() {
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(matches!(
            Signer::from_pkcs8_pem(sec1),
            Err(SignerError::NotPkcs8Pem(_))
        ));
        assert!(matches!(
            Signer::from_pkcs8_der(b"garbage"),
            Err(SignerError::UnsupportedKey)
        ));
    }

    #[test]
    fn debug_output_holds_no_key_material() {
        let signer =
            Signer::from_pkcs8_der(&generated(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)).unwrap();
        assert_eq!(format!("{signer:?}"), "Signer { algorithm: EcdsaP256 }");
    }
}
