//! Reading a CRL the way a relying party does: from its DER, signature
//! first, into plain data the tests compare. It knows nothing of the store,
//! so any test, and the relying-party simulator, can use it.

use std::collections::BTreeMap;

use der::{Decode, Encode};
use eidca::domain::Serial;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BaseCrlNumber, CrlNumber, FreshestCrl};

/// reasonCode values (RFC 5280 §5.3.1) as they appear on the wire.
pub const KEY_COMPROMISE: u8 = 1;
pub const CERTIFICATE_HOLD: u8 = 6;
pub const REMOVE_FROM_CRL: u8 = 8;

/// One revokedCertificates entry: its reasonCode and revocationDate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub reason: u8,
    pub date: OffsetDateTime,
}

/// Entries by serial (lowercase hex).
pub type Entries = BTreeMap<String, Listed>;

/// What a relying party learns from a CRL.
#[derive(Debug, Clone)]
pub struct Crl {
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// The deltaCRLIndicator: the base CRL number and whether it is critical.
    pub delta_of: Option<(u64, bool)>,
    pub freshest_crl: Option<String>,
    pub entries: Entries,
}

/// A certificate from its PEM, as the issuing CA certificate is kept.
pub fn certificate_from_pem(pem: &[u8]) -> Certificate {
    Certificate::from_der(&der::pem::decode_vec(pem).unwrap().1).unwrap()
}

fn uint(bytes: &[u8]) -> u64 {
    assert!(bytes.len() <= 8, "number longer than 64 bits");
    bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
}

fn time_of(t: x509_cert::time::Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).unwrap()
}

/// Decodes a CRL, checking what every CRL of ours must satisfy: v2, signed
/// by the issuing CA with the algorithm it names, issuer and AKI of the
/// issuing CA, only known extensions, one non-critical reasonCode per entry.
pub fn decode(der: &[u8], issuer: &Certificate) -> Crl {
    let crl =
        CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der).expect("CRL decodes");
    let tbs = &crl.tbs_cert_list;
    assert_eq!(tbs.version, x509_cert::Version::V2);
    assert_eq!(tbs.signature, crl.signature_algorithm);
    assert_eq!(
        crl.signature_algorithm.oid,
        const_oid::db::rfc5912::ECDSA_WITH_SHA_256
    );
    assert_eq!(tbs.issuer, *issuer.tbs_certificate().subject());
    let key = issuer.tbs_certificate().subject_public_key_info();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        key.subject_public_key.raw_bytes(),
    )
    .verify(&tbs.to_der().unwrap(), crl.signature.raw_bytes())
    .expect("CRL signature verifies with the issuing CA key");

    let mut decoded = Crl {
        number: 0,
        this_update: time_of(tbs.this_update),
        next_update: time_of(tbs.next_update.expect("nextUpdate present")),
        delta_of: None,
        freshest_crl: None,
        entries: Entries::new(),
    };
    read_crl_extensions(
        tbs.crl_extensions.as_deref().unwrap_or(&[]),
        issuer,
        &mut decoded,
    );
    for entry in tbs.revoked_certificates.iter().flatten() {
        let serial = Serial::from_der_integer(entry.serial_number.as_bytes()).unwrap();
        let listed = Listed {
            reason: reason_code(entry.crl_entry_extensions.as_deref().unwrap_or(&[])),
            date: time_of(entry.revocation_date),
        };
        let previous = decoded.entries.insert(serial.to_hex(), listed);
        assert!(previous.is_none(), "serial {serial} listed twice");
    }
    decoded
}

fn read_crl_extensions(exts: &[x509_cert::ext::Extension], issuer: &Certificate, crl: &mut Crl) {
    use const_oid::db::rfc5280::{
        ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_DELTA_CRL_INDICATOR,
        ID_CE_FRESHEST_CRL, ID_CE_SUBJECT_KEY_IDENTIFIER,
    };
    let ski = issuer
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == ID_CE_SUBJECT_KEY_IDENTIFIER)
        .map(|e| {
            x509_cert::ext::pkix::SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).unwrap()
        })
        .expect("issuing CA has an SKI");
    let mut seen_number = false;
    for ext in exts {
        let value = ext.extn_value.as_bytes();
        match ext.extn_id {
            ID_CE_AUTHORITY_KEY_IDENTIFIER => {
                assert!(!ext.critical);
                let aki = AuthorityKeyIdentifier::from_der(value).unwrap();
                assert_eq!(aki.key_identifier.as_ref(), Some(&ski.0), "AKI = CA's SKI");
            }
            ID_CE_CRL_NUMBER => {
                assert!(!ext.critical);
                crl.number = uint(CrlNumber::from_der(value).unwrap().0.as_bytes());
                seen_number = true;
            }
            ID_CE_DELTA_CRL_INDICATOR => {
                let base = uint(BaseCrlNumber::from_der(value).unwrap().0.as_bytes());
                crl.delta_of = Some((base, ext.critical));
            }
            ID_CE_FRESHEST_CRL => {
                assert!(!ext.critical);
                let points = FreshestCrl::from_der(value).unwrap().0;
                let Some(DistributionPointName::FullName(names)) = &points[0].distribution_point
                else {
                    panic!("freshestCRL without a full name");
                };
                let GeneralName::UniformResourceIdentifier(uri) = &names[0] else {
                    panic!("freshestCRL name is not a URI");
                };
                crl.freshest_crl = Some(uri.to_string());
            }
            other => panic!("unexpected CRL extension {other}"),
        }
    }
    assert!(seen_number, "every CRL carries a cRLNumber");
}

/// An entry without extensions is unspecified (0): RFC 5280 §5.3.1 wants
/// the reasonCode absent rather than `unspecified`.
fn reason_code(exts: &[x509_cert::ext::Extension]) -> u8 {
    if exts.is_empty() {
        return 0;
    }
    assert_eq!(exts.len(), 1, "one entry extension: reasonCode");
    assert_eq!(exts[0].extn_id, const_oid::db::rfc5280::ID_CE_CRL_REASONS);
    assert!(!exts[0].critical);
    x509_cert::ext::pkix::CrlReason::from_der(exts[0].extn_value.as_bytes()).unwrap() as u8
}

/// The view a delta-aware relying party builds: the base's entries, then
/// the delta's (removeFromCRL removes, anything else adds or replaces).
pub fn patched(base: &Crl, delta: &Crl) -> Entries {
    let mut entries = base.entries.clone();
    for (serial, listed) in &delta.entries {
        if listed.reason == REMOVE_FROM_CRL {
            entries.remove(serial);
        } else {
            entries.insert(serial.clone(), *listed);
        }
    }
    entries
}
