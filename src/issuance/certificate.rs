//! The end-entity certificate of SPEC §8, built with rcgen and signed by the
//! issuing CA's [`Signer`](crate::signer::Signer).

use der::Encode;
use der::asn1::{Ia5String, ObjectIdentifier};
use rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData,
    SerialNumber,
};
use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use time::OffsetDateTime;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, CertificatePolicies, FreshestCrl,
};

use super::csr::{SubjectKeyType, VerifiedCsr};
use super::identity::SubscriberIdentity;
use crate::ca::CaKeyPair;
use crate::domain::Serial;
use crate::issuance::profile::{ExtendedKeyUsage, KeyUsageBit, Profile};
use crate::revocation::encode::distribution_point;
use crate::signer::{RcgenKey, SignerError};

/// The public URLs written into every certificate (SPEC §8).
#[derive(Debug, Clone)]
pub struct CertificateUrls {
    pub full_crl: String,
    pub delta_crl: String,
    pub ocsp: String,
    pub ca_issuers: String,
}

impl CertificateUrls {
    /// The URLs under `publish.base_url`.
    pub fn under(base_url: &str) -> Self {
        Self {
            full_crl: format!("{base_url}/crl/full.crl"),
            delta_crl: format!("{base_url}/crl/delta.crl"),
            ocsp: format!("{base_url}/ocsp"),
            ca_issuers: format!("{base_url}/ca/issuing-ca.crt"),
        }
    }
}

/// A signed certificate and its validity.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub der: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Why a certificate could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("certificate encoding failed: {0}")]
    Encoding(String),
    #[error("the {field} {value:?} is not a PrintableString (X.520)")]
    NotPrintable { field: &'static str, value: String },
    #[error("the issuing CA certificate expired at {0}; it cannot issue")]
    CaExpired(OffsetDateTime),
    #[error(transparent)]
    Signer(#[from] SignerError),
}

/// The subscriber's public key as rcgen wants it: the algorithm comes from
/// the key's own SubjectPublicKeyInfo, never from the CSR's signature (the
/// rcgen P-384 trap in PKI-NOTES).
struct SubjectKey<'a> {
    csr: &'a VerifiedCsr,
}

impl PublicKeyData for SubjectKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.csr.public_key_bits
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.csr.key_type {
            SubjectKeyType::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
            SubjectKeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            SubjectKeyType::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// Builds and signs a certificate for `csr`'s key. The subject comes from
/// the subscriber record only; notAfter never passes the CA's notAfter.
#[allow(clippy::too_many_arguments)]
pub fn build_certificate(
    identity: &SubscriberIdentity,
    country: &str,
    profile: &Profile,
    csr: &VerifiedCsr,
    serial: &Serial,
    urls: &CertificateUrls,
    ca: &CaKeyPair,
    now: OffsetDateTime,
) -> Result<IssuedCertificate, BuildError> {
    let enc = |e: &dyn std::fmt::Display| BuildError::Encoding(e.to_string());
    let not_before = now.replace_nanosecond(0).map_err(|e| enc(&e))?;
    if not_before >= ca.cert.not_after {
        return Err(BuildError::CaExpired(ca.cert.not_after));
    }
    let not_after = (not_before + profile.validity).min(ca.cert.not_after);

    let mut params = CertificateParams::default();
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(SerialNumber::from_slice(&serial.der_integer_bytes()));
    params.distinguished_name = subject(identity, country, profile)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = key_usages(profile, csr.key_type);
    params.extended_key_usages = profile
        .extended_key_usage
        .iter()
        .map(|eku| match eku {
            ExtendedKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsage::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
        })
        .collect();
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![urls.full_crl.clone()],
    }];
    params.use_authority_key_identifier_extension = true;
    // RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits.
    let ski = digest(&SHA1_FOR_LEGACY_USE_ONLY, &csr.public_key_bits);
    params.key_identifier_method = KeyIdMethod::PreSpecified(ski.as_ref().to_vec());
    params.custom_extensions = custom_extensions(profile, urls).map_err(|e| enc(&e))?;

    let key = RcgenKey::new(&ca.signer);
    let issuer =
        Issuer::from_ca_cert_der(&ca.cert.der.as_slice().into(), &key).map_err(|e| enc(&e))?;
    let cert = params
        .signed_by(&SubjectKey { csr }, &issuer)
        .map_err(|e| match key.take_failure() {
            Some(failure) => BuildError::Signer(failure),
            None => enc(&e),
        })?;
    Ok(IssuedCertificate {
        der: cert.der().to_vec(),
        not_before,
        not_after,
    })
}

fn subject(
    identity: &SubscriberIdentity,
    country: &str,
    profile: &Profile,
) -> Result<DistinguishedName, BuildError> {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString(printable("country", country)?),
    );
    dn.push(
        DnType::CommonName,
        DnValue::Utf8String(identity.name.clone()),
    );
    if profile.subject_serial_number {
        // id-at-serialNumber (2.5.4.5), PrintableString (X.520).
        dn.push(
            DnType::CustomDnType(vec![2, 5, 4, 5]),
            DnValue::PrintableString(printable("subscriber code", &identity.code)?),
        );
    }
    Ok(dn)
}

/// Codes are validated as A–Z/0–9 before they get here, which
/// PrintableString holds; anything else stops the signature.
fn printable(
    field: &'static str,
    value: &str,
) -> Result<rcgen::string::PrintableString, BuildError> {
    rcgen::string::PrintableString::try_from(value).map_err(|_| BuildError::NotPrintable {
        field,
        value: value.to_owned(),
    })
}

fn key_usages(profile: &Profile, key: SubjectKeyType) -> Vec<KeyUsagePurpose> {
    let bits = if key.is_rsa() {
        &profile.key_usage_rsa
    } else {
        &profile.key_usage_ec
    };
    bits.iter()
        .map(|bit| match bit {
            KeyUsageBit::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            KeyUsageBit::NonRepudiation => KeyUsagePurpose::ContentCommitment,
            KeyUsageBit::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            KeyUsageBit::DataEncipherment => KeyUsagePurpose::DataEncipherment,
            KeyUsageBit::KeyAgreement => KeyUsagePurpose::KeyAgreement,
        })
        .collect()
}

fn custom_extensions(
    profile: &Profile,
    urls: &CertificateUrls,
) -> Result<Vec<CustomExtension>, der::Error> {
    let uri = |u: &str| -> Result<GeneralName, der::Error> {
        Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(u)?))
    };
    let aia = AuthorityInfoAccessSyntax(vec![
        AccessDescription {
            access_method: const_oid::db::rfc5280::ID_AD_OCSP,
            access_location: uri(&urls.ocsp)?,
        },
        AccessDescription {
            access_method: const_oid::db::rfc5280::ID_AD_CA_ISSUERS,
            access_location: uri(&urls.ca_issuers)?,
        },
    ]);
    let freshest = FreshestCrl(vec![distribution_point(&urls.delta_crl)?]);
    let policy_oid = ObjectIdentifier::new(&dotted(&profile.policy_oid))
        .map_err(|_| der::Error::from(der::ErrorKind::OidMalformed))?;
    let policies = CertificatePolicies(vec![PolicyInformation {
        policy_identifier: policy_oid,
        policy_qualifiers: None,
    }]);
    Ok(vec![
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], aia.to_der()?),
        CustomExtension::from_oid_content(&[2, 5, 29, 46], freshest.to_der()?),
        CustomExtension::from_oid_content(&[2, 5, 29, 32], policies.to_der()?),
    ])
}

fn dotted(arcs: &[u64]) -> String {
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_outside_printable_string_stops_the_signature() {
        assert!(printable("country", "TW").is_ok());
        let refused = printable("subscriber code", "A80000001€").unwrap_err();
        assert!(
            matches!(
                refused,
                BuildError::NotPrintable {
                    field: "subscriber code",
                    ..
                }
            ),
            "{refused}"
        );
    }
}
