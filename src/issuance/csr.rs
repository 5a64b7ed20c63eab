//! PKCS#10 requests ([RFC 2986](https://www.rfc-editor.org/rfc/rfc2986)):
//! parse, check the key type, and verify proof of possession.
//!
//! Parsed with x509-cert and verified with ring over the exact bytes of
//! certificationRequestInfo as received, because rcgen refuses requested
//! extensions that real cards put in their CSRs and infers the key type from
//! the signature algorithm (PKI-NOTES). Only the public key is used; the
//! requested subject and extensions are ignored (SPEC §7).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1,
    SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier as Oid, UintRef};
use der::{Decode, Encode, Sequence};
use ring::signature::{self, VerificationAlgorithm};
use x509_cert::request::CertReqInfo;
use x509_cert::spki::AlgorithmIdentifierRef;

/// Larger than any real CSR (an RSA-4096 request is about 1.7 KB of PEM).
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// The key types eidca certifies (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKeyType {
    Rsa { bits: usize },
    EcP256,
    EcP384,
}

impl SubjectKeyType {
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa { .. })
    }
}

/// A CSR whose signature verified: the key it certifies.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    pub key_type: SubjectKeyType,
    /// subjectPublicKey BIT STRING contents.
    pub public_key_bits: Vec<u8>,
}

/// Why a CSR was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("the CSR is larger than {MAX_CSR_BYTES} bytes")]
    TooLarge,
    #[error("the CSR is not PEM (CERTIFICATE REQUEST) or DER PKCS#10: {0}")]
    Malformed(String),
    #[error(
        "unsupported key type: only RSA of 2048 bits or more and EC P-256 / P-384 are accepted"
    )]
    UnsupportedKey,
    #[error("RSA key of {0} bits is too weak: at least 2048 bits are required")]
    WeakRsaKey(usize),
    #[error("the CSR's signature algorithm {0} is not supported for this key type")]
    UnsupportedSignature(String),
    #[error("the CSR's signature does not verify: no proof of possession of the private key")]
    BadSignature,
}

/// CertificationRequest with the info kept as raw DER, so the signature is
/// checked over exactly the bytes that were signed.
#[derive(Sequence)]
struct RawCertReq<'a> {
    info: AnyRef<'a>,
    algorithm: AlgorithmIdentifierRef<'a>,
    signature: BitStringRef<'a>,
}

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    exponent: UintRef<'a>,
}

/// Parses a PEM or DER CSR, checks its key, and verifies its self-signature.
pub fn verify_csr(input: &[u8]) -> Result<VerifiedCsr, CsrError> {
    if input.len() > MAX_CSR_BYTES {
        return Err(CsrError::TooLarge);
    }
    let der = to_der(input)?;
    let raw = RawCertReq::from_der(&der).map_err(|e| CsrError::Malformed(e.to_string()))?;
    let info_der = raw
        .info
        .to_der()
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    let info = CertReqInfo::from_der(&info_der).map_err(|e| CsrError::Malformed(e.to_string()))?;
    let spki = &info.public_key;
    let public_key_bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CsrError::Malformed("public key BIT STRING has unused bits".into()))?
        .to_vec();
    let key_type = key_type(
        spki.algorithm.oid,
        spki.algorithm.parameters.as_ref(),
        &public_key_bits,
    )?;
    let verifier = verification_algorithm(key_type, raw.algorithm.oid)?;
    let sig = raw.signature.as_bytes().ok_or(CsrError::BadSignature)?;
    verifier
        .verify(
            public_key_bits.as_slice().into(),
            info_der.as_slice().into(),
            sig.into(),
        )
        .map_err(|_| CsrError::BadSignature)?;
    Ok(VerifiedCsr {
        key_type,
        public_key_bits,
    })
}

fn to_der(input: &[u8]) -> Result<Vec<u8>, CsrError> {
    let trimmed = input.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN") {
        return Ok(input.to_vec());
    }
    let (label, der) = der::pem::decode_vec(trimmed.trim_ascii_end())
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    match label {
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Ok(der),
        other => Err(CsrError::Malformed(format!(
            "PEM block is `{other}`, not CERTIFICATE REQUEST"
        ))),
    }
}

fn key_type(
    algorithm: ObjectIdentifier,
    parameters: Option<&der::Any>,
    public_key_bits: &[u8],
) -> Result<SubjectKeyType, CsrError> {
    if algorithm == RSA_ENCRYPTION {
        let key = RsaPublicKey::from_der(public_key_bits)
            .map_err(|e| CsrError::Malformed(e.to_string()))?;
        let modulus = key.modulus.as_bytes();
        let bits = modulus.len() * 8 - modulus.first().map_or(0, |b| b.leading_zeros() as usize);
        if bits < 2048 {
            return Err(CsrError::WeakRsaKey(bits));
        }
        if bits > 8192 {
            return Err(CsrError::UnsupportedKey);
        }
        return Ok(SubjectKeyType::Rsa { bits });
    }
    if algorithm == ID_EC_PUBLIC_KEY {
        let curve: Oid = parameters
            .and_then(|p| p.decode_as().ok())
            .ok_or(CsrError::UnsupportedKey)?;
        return match curve {
            c if c == SECP_256_R_1 => Ok(SubjectKeyType::EcP256),
            c if c == SECP_384_R_1 => Ok(SubjectKeyType::EcP384),
            _ => Err(CsrError::UnsupportedKey),
        };
    }
    Err(CsrError::UnsupportedKey)
}

fn verification_algorithm(
    key: SubjectKeyType,
    signature: ObjectIdentifier,
) -> Result<&'static dyn VerificationAlgorithm, CsrError> {
    let alg: &'static dyn VerificationAlgorithm = match key {
        SubjectKeyType::Rsa { .. } if signature == SHA_256_WITH_RSA_ENCRYPTION => {
            &signature::RSA_PKCS1_2048_8192_SHA256
        }
        SubjectKeyType::Rsa { .. } if signature == SHA_384_WITH_RSA_ENCRYPTION => {
            &signature::RSA_PKCS1_2048_8192_SHA384
        }
        SubjectKeyType::Rsa { .. } if signature == SHA_512_WITH_RSA_ENCRYPTION => {
            &signature::RSA_PKCS1_2048_8192_SHA512
        }
        SubjectKeyType::EcP256 if signature == ECDSA_WITH_SHA_256 => {
            &signature::ECDSA_P256_SHA256_ASN1
        }
        SubjectKeyType::EcP256 if signature == ECDSA_WITH_SHA_384 => {
            &signature::ECDSA_P256_SHA384_ASN1
        }
        SubjectKeyType::EcP384 if signature == ECDSA_WITH_SHA_256 => {
            &signature::ECDSA_P384_SHA256_ASN1
        }
        SubjectKeyType::EcP384 if signature == ECDSA_WITH_SHA_384 => {
            &signature::ECDSA_P384_SHA384_ASN1
        }
        _ => return Err(CsrError::UnsupportedSignature(signature.to_string())),
    };
    Ok(alg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256: &[u8] = include_bytes!("../../fixtures/p256.csr");
    const P384_DER: &[u8] = include_bytes!("../../fixtures/p384.csr.der");
    const RSA2048: &[u8] = include_bytes!("../../fixtures/rsa2048.csr");
    const RSA1024: &[u8] = include_bytes!("../../fixtures/rsa1024-weak.csr");

    #[test]
    fn accepts_the_supported_key_types_in_pem_and_der() {
        assert_eq!(verify_csr(P256).unwrap().key_type, SubjectKeyType::EcP256);
        assert_eq!(
            verify_csr(P384_DER).unwrap().key_type,
            SubjectKeyType::EcP384
        );
        assert_eq!(
            verify_csr(RSA2048).unwrap().key_type,
            SubjectKeyType::Rsa { bits: 2048 }
        );
    }

    #[test]
    fn refuses_weak_rsa() {
        assert_eq!(verify_csr(RSA1024).unwrap_err(), CsrError::WeakRsaKey(1024));
    }

    #[test]
    fn refuses_a_flipped_bit_anywhere_in_the_signed_part() {
        let der = to_der(P256).unwrap();
        // Past the outer header, inside certificationRequestInfo's public key.
        for i in [60, 80, 100] {
            let mut tampered = der.clone();
            tampered[i] ^= 0x01;
            assert!(verify_csr(&tampered).is_err(), "byte {i}");
        }
    }

    #[test]
    fn refuses_oversized_input_before_parsing() {
        assert_eq!(
            verify_csr(&vec![0x30; MAX_CSR_BYTES + 1]).unwrap_err(),
            CsrError::TooLarge
        );
    }
}
