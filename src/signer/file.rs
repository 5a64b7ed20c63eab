//! A key in a PKCS#8 PEM file, held in memory; ring signs.

use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use zeroize::Zeroizing;

use super::{Key, KeyAlgorithm, SignerError};

enum KeyPairKind {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key held in memory only.
pub struct FileKey {
    key: KeyPairKind,
    algorithm: KeyAlgorithm,
    rng: SystemRandom,
}

impl FileKey {
    /// Reads a PKCS#8 PEM file; the file's bytes are wiped after use.
    pub fn load(path: &Path) -> Result<Self, SignerError> {
        let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            SignerError::NotPkcs8Pem(format!("cannot read {}: {e}", path.display()))
        })?);
        Self::from_pkcs8_pem(&pem)
    }

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
}

impl Key for FileKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_bits(&self) -> &[u8] {
        match &self.key {
            KeyPairKind::Ecdsa(pair) => pair.public_key().as_ref(),
            KeyPairKind::Rsa(pair) => pair.public_key().as_ref(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        // ring fails only when the system has no randomness left.
        let failed = |_| "the system random number generator failed".to_owned();
        match &self.key {
            KeyPairKind::Ecdsa(pair) => pair
                .sign(&self.rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(failed),
            KeyPairKind::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;

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
            let key = FileKey::from_pkcs8_der(&generated(signing)).unwrap();
            let signer = Signer::new("ca.issuing_key", Box::new(key));
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
            FileKey::from_pkcs8_pem(sec1),
            Err(SignerError::NotPkcs8Pem(_))
        ));
        assert!(matches!(
            FileKey::from_pkcs8_der(b"garbage"),
            Err(SignerError::UnsupportedKey)
        ));
    }

    #[test]
    fn debug_output_holds_no_key_material() {
        let key = FileKey::from_pkcs8_der(&generated(&signature::ECDSA_P256_SHA256_ASN1_SIGNING))
            .unwrap();
        let signer = Signer::new("ca.ocsp_key", Box::new(key));
        assert_eq!(
            format!("{signer:?}"),
            "Signer { setting: \"ca.ocsp_key\", algorithm: EcdsaP256 }"
        );
    }
}
