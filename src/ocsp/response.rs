//! OCSP response encoding and signing ([RFC 6960 §4.2](https://www.rfc-editor.org/rfc/rfc6960#section-4.2),
//! [RFC 5019 §2.2](https://www.rfc-editor.org/rfc/rfc5019#section-2.2)).
//!
//! rasn encodes the ResponseData that is signed; the outer BasicOCSPResponse
//! and OCSPResponse are framed here so that the responder certificate and the
//! signature AlgorithmIdentifier go in as the exact DER they were loaded as,
//! without a decode/re-encode round trip on every signature.

use rasn::types::{GeneralizedTime, Integer, OctetString};
use rasn_ocsp::{CertStatus, ResponderId, ResponseData, RevokedInfo, SingleResponse};
use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use time::OffsetDateTime;

use super::request::{CertId, Nonce};
use super::status::SingleStatus;
use crate::ca::CaKeyPair;
use crate::domain::CrlReason;
use crate::signer::SignerError;

/// OCSPResponseStatus ([RFC 6960 §4.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseStatus {
    Successful,
    MalformedRequest,
    InternalError,
    TryLater,
    SigRequired,
    Unauthorized,
}

impl ResponseStatus {
    pub const ALL: [ResponseStatus; 6] = [
        Self::Successful,
        Self::MalformedRequest,
        Self::InternalError,
        Self::TryLater,
        Self::SigRequired,
        Self::Unauthorized,
    ];

    /// The ASN.1 name, as metrics show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Successful => "successful",
            Self::MalformedRequest => "malformedRequest",
            Self::InternalError => "internalError",
            Self::TryLater => "tryLater",
            Self::SigRequired => "sigRequired",
            Self::Unauthorized => "unauthorized",
        }
    }

    /// The complete OCSPResponse for an error status: the status alone, no
    /// responseBytes (RFC 6960 §4.2.1: unsigned, as there is nothing to sign).
    pub fn error_response(self) -> &'static [u8] {
        match self {
            Self::Successful => &[0x30, 0x03, 0x0a, 0x01, 0x00],
            Self::MalformedRequest => &[0x30, 0x03, 0x0a, 0x01, 0x01],
            Self::InternalError => &[0x30, 0x03, 0x0a, 0x01, 0x02],
            Self::TryLater => &[0x30, 0x03, 0x0a, 0x01, 0x03],
            Self::SigRequired => &[0x30, 0x03, 0x0a, 0x01, 0x05],
            Self::Unauthorized => &[0x30, 0x03, 0x0a, 0x01, 0x06],
        }
    }

    /// The `ENUMERATED` responseStatus field alone.
    fn status_field(self) -> &'static [u8] {
        &self.error_response()[2..]
    }
}

/// DER of the OID id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1), the only
/// response type (RFC 6960 §4.2.1).
const ID_PKIX_OCSP_BASIC: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01,
];

/// One certificate's answer, before signing.
#[derive(Debug, Clone, Copy)]
pub struct SingleAnswer<'a> {
    pub cert_id: &'a CertId,
    pub status: SingleStatus,
}

/// Signs responses with the delegated responder key (RFC 6960 §4.2.2.2):
/// its certificate, issued by the issuing CA with EKU OCSPSigning, goes in
/// `certs` so that clients can verify it against the issuer.
#[derive(Debug)]
pub struct ResponseSigner {
    key: CaKeyPair,
    /// ResponderID byKey: SHA-1 of the responder's subjectPublicKey BIT
    /// STRING contents (RFC 6960 §4.2.2.3; RFC 5019 §2.2.2 prefers byKey).
    key_hash: OctetString,
    /// `[0] EXPLICIT SEQUENCE OF Certificate` holding the responder
    /// certificate, framed once.
    certs_field: Vec<u8>,
}

impl ResponseSigner {
    pub fn new(key: CaKeyPair) -> Self {
        let key_hash = digest(&SHA1_FOR_LEGACY_USE_ONLY, &key.cert.public_key_bits)
            .as_ref()
            .to_vec()
            .into();
        let certs_field = tlv(0xa0, &[&tlv(0x30, &[&key.cert.der])]);
        Self {
            key,
            key_hash,
            certs_field,
        }
    }

    /// The responder's key.
    pub fn key(&self) -> &crate::signer::Signer {
        &self.key.signer
    }

    /// The responder certificate's notAfter: a response must not outlive it.
    pub fn certificate_not_after(&self) -> OffsetDateTime {
        self.key.cert.not_after
    }

    /// A complete, signed `successful` OCSPResponse. Every SingleResponse
    /// gets `this_update`/`next_update`; producedAt is `this_update` too. All
    /// times must be whole seconds (fractional GeneralizedTime is not DER
    /// for X.509 profiles, RFC 5280 §4.1.2.5.2); callers pass truncated times.
    pub fn sign(
        &self,
        answers: &[SingleAnswer<'_>],
        nonce: Option<&Nonce>,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, SignError> {
        let this = generalized_time(this_update)?;
        let next = generalized_time(next_update)?;
        let data = ResponseData {
            version: Integer::ZERO,
            responder_id: ResponderId::ByKey(self.key_hash.clone()),
            produced_at: this,
            responses: answers
                .iter()
                .map(|a| single_response(a, this, next))
                .collect::<Result<_, _>>()?,
            response_extensions: nonce.map(|n| vec![n.0.clone()].into()),
        };
        let tbs = rasn::der::encode(&data).map_err(|_| SignError::Encoding)?;
        let signature = self.key.signer.sign(&tbs)?;
        let mut bits = Vec::with_capacity(signature.len() + 1);
        bits.push(0); // unused bits in the last octet
        bits.extend_from_slice(&signature);
        let basic = tlv(
            0x30,
            &[
                &tbs,
                self.key.signer.signature_algorithm_der(),
                &tlv(0x03, &[&bits]),
                &self.certs_field,
            ],
        );
        let response_bytes = tlv(0x30, &[ID_PKIX_OCSP_BASIC, &tlv(0x04, &[&basic])]);
        Ok(tlv(
            0x30,
            &[
                ResponseStatus::Successful.status_field(),
                &tlv(0xa0, &[&response_bytes]),
            ],
        ))
    }
}

/// Why a response could not be signed: the client gets `internalError`.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("a time cannot be expressed as GeneralizedTime")]
    Time,
    #[error("ResponseData encoding failed")]
    Encoding,
    #[error(transparent)]
    Signing(#[from] SignerError),
}

fn single_response(
    answer: &SingleAnswer<'_>,
    this_update: GeneralizedTime,
    next_update: GeneralizedTime,
) -> Result<SingleResponse, SignError> {
    let cert_status = match answer.status {
        SingleStatus::Good => CertStatus::Good,
        SingleStatus::Unknown => CertStatus::Unknown(()),
        SingleStatus::Revoked { time, reason } => CertStatus::Revoked(RevokedInfo {
            revocation_time: generalized_time(time)?,
            revocation_reason: reason.map(crl_reason),
        }),
    };
    Ok(SingleResponse {
        cert_id: answer.cert_id.raw.clone(),
        cert_status,
        this_update,
        next_update: Some(next_update),
        single_extensions: None,
    })
}

fn crl_reason(reason: CrlReason) -> rasn_pkix::CrlReason {
    use rasn_pkix::CrlReason as Wire;
    match reason {
        CrlReason::Unspecified => Wire::Unspecified,
        CrlReason::KeyCompromise => Wire::KeyCompromise,
        CrlReason::CaCompromise => Wire::CaCompromise,
        CrlReason::AffiliationChanged => Wire::AffiliationChanged,
        CrlReason::Superseded => Wire::Superseded,
        CrlReason::CessationOfOperation => Wire::CessationOfOperation,
        CrlReason::CertificateHold => Wire::CertificateHold,
        CrlReason::RemoveFromCrl => Wire::RemoveFromCRL,
        CrlReason::PrivilegeWithdrawn => Wire::PrivilegeWithdrawn,
        CrlReason::AaCompromise => Wire::AaCompromise,
    }
}

/// A whole-second UTC GeneralizedTime: sub-second parts are dropped, because
/// rasn would otherwise encode a fraction, which pkilint and RFC 5280
/// §4.1.2.5.2 reject.
fn generalized_time(t: OffsetDateTime) -> Result<GeneralizedTime, SignError> {
    chrono::DateTime::from_timestamp(t.unix_timestamp(), 0)
        .map(|utc| utc.fixed_offset())
        .ok_or(SignError::Time)
}

/// A DER TLV with `tag` around the concatenation of `parts`.
fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    push_length(&mut out, len);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// DER definite length (X.690 §8.1.3): short form below 128, otherwise the
/// minimal big-endian octets after 0x80 | count.
fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let octets = len.to_be_bytes();
    let skip = octets.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (octets.len() - skip) as u8);
    out.extend_from_slice(&octets[skip..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsp::request::tests::{cert_id, issuer, request_der};
    use crate::ocsp::request::{HashAlgorithm, decode};
    use time::macros::datetime;

    #[test]
    fn lengths_are_minimal_der() {
        for (len, expected) in [
            (0usize, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x81, 0x80]),
            (255, vec![0x81, 0xff]),
            (256, vec![0x82, 0x01, 0x00]),
            (70_000, vec![0x83, 0x01, 0x11, 0x70]),
        ] {
            let mut out = Vec::new();
            push_length(&mut out, len);
            assert_eq!(out, expected, "{len}");
        }
    }

    #[test]
    fn error_responses_decode_as_their_status() {
        for status in ResponseStatus::ALL {
            let decoded: rasn_ocsp::OcspResponse =
                rasn::der::decode(status.error_response()).unwrap();
            assert_eq!(decoded.bytes, None);
            assert_eq!(status.error_response()[4] as isize, decoded.status as isize);
        }
    }

    #[test]
    fn single_statuses_encode_as_rfc_6960_implicit_tags() {
        let der = request_der(vec![cert_id(HashAlgorithm::Sha1, &[1])], None);
        let request = decode(&der, &issuer(), 1).unwrap();
        let t = generalized_time(datetime!(2026-01-02 03:04:05.678 UTC)).unwrap();
        let encode = |status| {
            let answer = SingleAnswer {
                cert_id: &request.cert_ids[0],
                status,
            };
            rasn::der::encode(&single_response(&answer, t, t).unwrap().cert_status).unwrap()
        };
        // good [0] IMPLICIT NULL, unknown [2] IMPLICIT NULL.
        assert_eq!(encode(SingleStatus::Good), vec![0x80, 0x00]);
        assert_eq!(encode(SingleStatus::Unknown), vec![0x82, 0x00]);
        // revoked [1] IMPLICIT SEQUENCE { GeneralizedTime, [0] EXPLICIT ENUMERATED }.
        let revoked = encode(SingleStatus::Revoked {
            time: datetime!(2026-01-02 03:04:05 UTC),
            reason: Some(CrlReason::CertificateHold),
        });
        let mut expected = vec![0xa1, 0x16, 0x18, 0x0f];
        expected.extend_from_slice(b"20260102030405Z");
        expected.extend_from_slice(&[0xa0, 0x03, 0x0a, 0x01, 0x06]);
        assert_eq!(revoked, expected);
    }

    #[test]
    fn times_are_whole_seconds() {
        let t = generalized_time(datetime!(2026-01-02 03:04:05.999 UTC)).unwrap();
        let der = rasn::der::encode(&t).unwrap();
        assert_eq!(&der[2..], b"20260102030405Z");
    }
}
