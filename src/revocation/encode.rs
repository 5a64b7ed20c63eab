//! CRL DER encoding and signing ([RFC 5280 §5.1](https://www.rfc-editor.org/rfc/rfc5280#section-5.1)).
//!
//! Entries are encoded one at a time straight into the revokedCertificates
//! buffer, so a million-entry CRL never holds a million structs beside its
//! DER. x509-cert types encode each entry and extension; the outer
//! SEQUENCEs are framed here because their length is known only at the end.

use der::Encode;
use der::asn1::{Ia5String, OctetString};
use time::OffsetDateTime;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, FreshestCrl};
use x509_cert::ext::{Extension, pkix};
use x509_cert::time::Time;

use super::CrlEntry;
use crate::domain::CrlReason;
use crate::signer::{Signer, SignerError};

/// What differs between a full and a delta CRL.
#[derive(Debug, Clone, Copy)]
pub enum CrlScope<'a> {
    /// A complete CRL that points relying parties to its deltas (§5.2.6).
    Full { freshest_crl_url: &'a str },
    /// A delta against the full CRL numbered `base_number` (§5.2.4).
    Delta { base_number: u64 },
}

/// The header fields of a CRL.
#[derive(Debug, Clone, Copy)]
pub struct CrlParams<'a> {
    /// DER of the issuing CA's subject Name, copied byte for byte.
    pub issuer_name_der: &'a [u8],
    /// The issuing CA certificate's subjectKeyIdentifier.
    pub authority_key_id: &'a [u8],
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub scope: CrlScope<'a>,
}

/// Why a CRL could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("CRL encoding failed: {0}")]
    Der(#[from] der::Error),
    #[error(transparent)]
    Signing(#[from] SignerError),
}

/// A signed CRL and the number of entries it lists.
#[derive(Debug, Clone)]
pub struct SignedCrl {
    pub der: Vec<u8>,
    pub entries: u64,
}

/// Room kept in front of the entries for the TBSCertList's fields and the
/// two outer SEQUENCE headers (an issuer name of a few hundred bytes).
const HEADROOM: usize = 1024;

/// The longest tag and length header: tag, 0x84 and four length bytes.
const MAX_HEADER_LEN: usize = 6;

/// The revokedCertificates list under construction: entries are DER-encoded
/// as they arrive, after [`HEADROOM`] bytes kept for the CRL's headers.
#[derive(Debug)]
pub struct RevokedList {
    der: Vec<u8>,
    count: u64,
    /// The reasonCode extension of each reason, encoded once (by code).
    reason_extensions: [Vec<u8>; 11],
    /// One entry's content, reused from entry to entry.
    scratch: Vec<u8>,
}

impl Default for RevokedList {
    fn default() -> Self {
        Self {
            der: vec![0; HEADROOM],
            count: 0,
            reason_extensions: Default::default(),
            scratch: Vec::new(),
        }
    }
}

impl RevokedList {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one entry. Framed here rather than through x509-cert's
    /// `RevokedCert`, which spends most of a million-entry CRL's time on
    /// allocations and nested length computations; the test
    /// `entries_encode_exactly_as_x509_cert_would` keeps the two identical.
    pub fn push(&mut self, entry: &CrlEntry) -> Result<(), CrlError> {
        let code = usize::from(entry.reason.code());
        if self.reason_extensions[code].is_empty() {
            self.reason_extensions[code] = reason_extension(entry.reason)?.to_der()?;
        }
        let body = &mut self.scratch;
        body.clear();
        push_integer(body, entry.serial.as_bytes());
        time(entry.revocation_date)?.encode_to_vec(body)?;
        // RFC 5280 §5.3.1: the reasonCode extension SHOULD be absent rather
        // than say unspecified (the OCSP answer omits it the same way).
        if entry.reason != CrlReason::Unspecified {
            push_tlv(body, 0x30, &self.reason_extensions[code]);
        }
        push_tlv(&mut self.der, 0x30, body);
        self.count += 1;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Encodes and signs a CRL with `entries` in the order given (tests only:
/// publication streams entries into a [`RevokedList`] straight from the store).
#[cfg(test)]
pub fn encode_crl(
    params: &CrlParams<'_>,
    entries: impl IntoIterator<Item = CrlEntry>,
    signer: &Signer,
) -> Result<SignedCrl, CrlError> {
    let mut list = RevokedList::new();
    for entry in entries {
        list.push(&entry)?;
    }
    sign_crl(params, list, signer)
}

/// Frames the TBSCertList around `list`, signs it, and frames the
/// CertificateList, in the list's own buffer: the headers go into the room
/// kept in front of the entries, so a 50 MB CRL is never copied whole
/// except by the final shift to the start of the buffer.
pub fn sign_crl(
    params: &CrlParams<'_>,
    list: RevokedList,
    signer: &Signer,
) -> Result<SignedCrl, CrlError> {
    let RevokedList {
        der: mut buf,
        count,
        ..
    } = list;
    let entries_len = buf.len() - HEADROOM;

    // TBSCertList fields before the entries, the entries' own header included.
    let mut head = Vec::with_capacity(512);
    // version v2 (INTEGER 1): required because of the extensions.
    head.extend_from_slice(&[0x02, 0x01, 0x01]);
    head.extend_from_slice(signer.signature_algorithm_der());
    head.extend_from_slice(params.issuer_name_der);
    time(params.this_update)?.encode_to_vec(&mut head)?;
    time(params.next_update)?.encode_to_vec(&mut head)?;
    // An empty revokedCertificates must be absent, not an empty SEQUENCE (§5.1.2.6).
    if count > 0 {
        push_header(&mut head, 0x30, entries_len);
    }
    let extensions = extensions_field(params)?;
    let mut tbs_header = Vec::with_capacity(8);
    push_header(
        &mut tbs_header,
        0x30,
        head.len() + entries_len + extensions.len(),
    );

    // The TBSCertList starts where its header and head, placed right before
    // the entries, begin; an oversized issuer name gets more room first.
    let needed = tbs_header.len() + head.len() + MAX_HEADER_LEN;
    let room = HEADROOM.max(needed);
    buf.splice(0..0, std::iter::repeat_n(0, room - HEADROOM));
    let tbs_start = room - tbs_header.len() - head.len();
    buf[tbs_start..tbs_start + tbs_header.len()].copy_from_slice(&tbs_header);
    buf[room - head.len()..room].copy_from_slice(&head);
    buf.extend_from_slice(&extensions);
    let signature = signer.sign(&buf[tbs_start..])?;

    buf.extend_from_slice(signer.signature_algorithm_der());
    push_header(&mut buf, 0x03, signature.len() + 1);
    buf.push(0); // no unused bits
    buf.extend_from_slice(&signature);
    let mut outer_header = Vec::with_capacity(MAX_HEADER_LEN);
    push_header(&mut outer_header, 0x30, buf.len() - tbs_start);
    let start = tbs_start - outer_header.len();
    buf[start..tbs_start].copy_from_slice(&outer_header);
    buf.drain(..start);
    Ok(SignedCrl {
        der: buf,
        entries: count,
    })
}

/// The `[0] EXPLICIT Extensions` field of the TBSCertList.
fn extensions_field(params: &CrlParams<'_>) -> Result<Vec<u8>, CrlError> {
    let mut extensions = Vec::new();
    for ext in crl_extensions(params)? {
        ext.encode_to_vec(&mut extensions)?;
    }
    let mut sequence = Vec::with_capacity(extensions.len() + 4);
    push_tlv(&mut sequence, 0x30, &extensions);
    let mut field = Vec::with_capacity(sequence.len() + 4);
    push_tlv(&mut field, 0xa0, &sequence);
    Ok(field)
}

/// A positive INTEGER from its big-endian magnitude (no leading zeros): a
/// 0x00 goes first when the top bit is set (X.690 §8.3).
fn push_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let pad = magnitude.first().is_some_and(|b| b & 0x80 != 0);
    out.push(0x02);
    push_length(out, magnitude.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
}

fn reason_extension(reason: CrlReason) -> Result<Extension, CrlError> {
    let value = match reason {
        CrlReason::Unspecified => pkix::CrlReason::Unspecified,
        CrlReason::KeyCompromise => pkix::CrlReason::KeyCompromise,
        CrlReason::CaCompromise => pkix::CrlReason::CaCompromise,
        CrlReason::AffiliationChanged => pkix::CrlReason::AffiliationChanged,
        CrlReason::Superseded => pkix::CrlReason::Superseded,
        CrlReason::CessationOfOperation => pkix::CrlReason::CessationOfOperation,
        CrlReason::CertificateHold => pkix::CrlReason::CertificateHold,
        CrlReason::RemoveFromCrl => pkix::CrlReason::RemoveFromCRL,
        CrlReason::PrivilegeWithdrawn => pkix::CrlReason::PrivilegeWithdrawn,
        CrlReason::AaCompromise => pkix::CrlReason::AaCompromise,
    };
    extension(const_oid::db::rfc5280::ID_CE_CRL_REASONS, false, &value)
}

fn crl_extensions(params: &CrlParams<'_>) -> Result<Vec<Extension>, CrlError> {
    use const_oid::db::rfc5280::{
        ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_DELTA_CRL_INDICATOR,
        ID_CE_FRESHEST_CRL,
    };
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(params.authority_key_id)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let number = CrlNumber(der::asn1::Uint::new(&params.number.to_be_bytes())?);
    let mut exts = vec![
        extension(ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki)?,
        extension(ID_CE_CRL_NUMBER, false, &number)?,
    ];
    match params.scope {
        CrlScope::Full { freshest_crl_url } => {
            let freshest = FreshestCrl(vec![distribution_point(freshest_crl_url)?]);
            exts.push(extension(ID_CE_FRESHEST_CRL, false, &freshest)?);
        }
        CrlScope::Delta { base_number } => {
            // §5.2.4: deltaCRLIndicator MUST be critical.
            let base = der::asn1::Uint::new(&base_number.to_be_bytes())?;
            exts.push(extension(ID_CE_DELTA_CRL_INDICATOR, true, &base)?);
        }
    }
    Ok(exts)
}

/// One DistributionPoint with a full name of one URI: the form used in
/// cRLDistributionPoints and freshestCRL.
pub fn distribution_point(url: &str) -> Result<DistributionPoint, der::Error> {
    Ok(DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(Ia5String::new(url)?),
        ])),
        reasons: None,
        crl_issuer: None,
    })
}

fn extension(
    oid: const_oid::ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, CrlError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// RFC 5280 §5.1.2.4: UTCTime through 2049, GeneralizedTime after; whole
/// seconds only.
pub fn time(t: OffsetDateTime) -> Result<Time, der::Error> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let dt = der::DateTime::new(
        t.year() as u16,
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )?;
    Ok(Time::from(dt))
}

/// Appends tag, DER length and content.
pub fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    push_header(out, tag, content.len());
    out.extend_from_slice(content);
}

/// Appends the tag and DER length of `len` bytes of content that follow.
fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    push_length(out, len);
}

/// Appends a DER length in its shortest form (X.690 §10.1).
fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use x509_cert::crl::RevokedCert;
    use x509_cert::serial_number::SerialNumber;

    #[test]
    fn lengths_use_the_shortest_form() {
        let mut out = Vec::new();
        push_tlv(&mut out, 0x04, &[0; 0x7f]);
        assert_eq!(&out[..2], &[0x04, 0x7f]);
        out.clear();
        push_tlv(&mut out, 0x04, &[0; 0x80]);
        assert_eq!(&out[..3], &[0x04, 0x81, 0x80]);
        out.clear();
        push_tlv(&mut out, 0x04, &[0; 0x1234]);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn entries_encode_exactly_as_x509_cert_would() {
        let serials = [
            &[0x01][..],
            &[0x7f, 0xff],
            &[0x80],
            &[0x45; 20],
            &[0xc5; 19],
        ];
        let dates = [
            time::macros::datetime!(2026-05-01 12:34:56 UTC),
            time::macros::datetime!(2050-01-01 0:00 UTC),
        ];
        let reasons = (0..=10).filter_map(|code| CrlReason::try_from(code).ok());
        for (i, reason) in reasons.enumerate() {
            let entry = CrlEntry {
                serial: crate::domain::Serial::from_magnitude(serials[i % serials.len()]).unwrap(),
                revocation_date: dates[i % dates.len()],
                reason,
            };
            let mut list = RevokedList::new();
            list.push(&entry).unwrap();
            let expected = RevokedCert::<x509_cert::certificate::Rfc5280> {
                serial_number: SerialNumber::new(&entry.serial.der_integer_bytes()).unwrap(),
                revocation_date: time(entry.revocation_date).unwrap(),
                crl_entry_extensions: (reason != CrlReason::Unspecified)
                    .then(|| vec![reason_extension(reason).unwrap()]),
            };
            assert_eq!(
                list.der[HEADROOM..],
                expected.to_der().unwrap(),
                "{entry:?}"
            );
        }
    }

    fn p256_signer() -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = crate::signer::FileKey::from_pkcs8_der(pkcs8.as_ref()).unwrap();
        Signer::new("ca.issuing_key", Box::new(key))
    }

    #[test]
    fn signed_crls_decode_and_verify_when_empty_and_with_an_oversized_issuer() {
        let signer = p256_signer();
        let short_issuer: x509_cert::name::Name = "CN=Issuing CA,C=TW".parse().unwrap();
        let long_issuer: x509_cert::name::Name =
            format!("CN={}", "x".repeat(3000)).parse().unwrap();
        let entry = |n: u8| CrlEntry {
            serial: crate::domain::Serial::from_magnitude(&[0x40, n]).unwrap(),
            revocation_date: time::macros::datetime!(2026-05-01 0:00 UTC),
            reason: CrlReason::CertificateHold,
        };
        for (issuer, entries) in [(&short_issuer, 0), (&short_issuer, 3), (&long_issuer, 3)] {
            let issuer_der = issuer.to_der().unwrap();
            let params = CrlParams {
                issuer_name_der: &issuer_der,
                authority_key_id: &[7; 20],
                number: 300,
                this_update: time::macros::datetime!(2026-05-01 0:00 UTC),
                next_update: time::macros::datetime!(2026-05-02 0:00 UTC),
                scope: CrlScope::Delta { base_number: 299 },
            };
            let signed = encode_crl(&params, (0..entries).map(entry), &signer).unwrap();
            let crl = x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(
                &signed.der,
            )
            .unwrap();
            let tbs = &crl.tbs_cert_list;
            assert_eq!(tbs.issuer, *issuer);
            let listed = tbs.revoked_certificates.as_ref().map_or(0, Vec::len);
            assert_eq!((listed, signed.entries), (entries as usize, entries as u64));
            assert_eq!(tbs.crl_extensions.as_ref().map(Vec::len), Some(3));
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_ASN1,
                signer.public_key_bits(),
            )
            .verify(&tbs.to_der().unwrap(), crl.signature.raw_bytes())
            .unwrap();
        }
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        let utc = time(time::macros::datetime!(2049-12-31 23:59:59 UTC)).unwrap();
        assert!(matches!(utc, Time::UtcTime(_)));
        let gen_time = time(time::macros::datetime!(2050-01-01 0:00 UTC)).unwrap();
        assert!(matches!(gen_time, Time::GeneralTime(_)));
    }
}
