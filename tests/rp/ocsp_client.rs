//! The relying party's OCSP client ([RFC 6960](https://www.rfc-editor.org/rfc/rfc6960),
//! [RFC 5019](https://www.rfc-editor.org/rfc/rfc5019) profile): one SHA-1
//! CertID a request, no nonce (so the responder may serve a pre-signed
//! answer), and a response checked the way a client must before trusting
//! it: successful, signed by a responder certificate the issuing CA signed,
//! about the serial asked.

use der::Encode;
use eidca::domain::Serial;
use eidca::ocsp::request::HashAlgorithm;
use rasn::types::{Any, Integer, IntegerType, ObjectIdentifier};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use time::OffsetDateTime;
use x509_cert::Certificate;

use super::ledger::Status;

/// id-sha1 (RFC 3279 §2.2.1), what RFC 5019 clients put in a CertID.
const ID_SHA1: [u32; 6] = [1, 3, 14, 3, 2, 26];
const DER_NULL: [u8; 2] = [0x05, 0x00];

/// What one OCSP response says about the serial asked.
#[derive(Debug, Clone, Copy)]
pub struct OcspAnswer {
    pub status: Status,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
}

impl OcspAnswer {
    /// Whether the responder served it within the first half of its
    /// validity, as SPEC §5's cache promises, given the request was sent at
    /// `sent`. Times on the wire are whole seconds, so half a validity of
    /// an odd number of seconds is rounded up.
    pub fn within_half_validity(&self, sent: OffsetDateTime) -> bool {
        let validity = self.next_update - self.this_update;
        let half = time::Duration::seconds((validity.whole_seconds() + 1) / 2);
        sent < self.this_update + half
    }
}

/// Builds requests for, and checks responses about, one issuer's certificates.
#[derive(Debug, Clone)]
pub struct OcspClient {
    issuer_name_hash: Vec<u8>,
    issuer_key_hash: Vec<u8>,
    issuer_subject_der: Vec<u8>,
    issuer_key: Vec<u8>,
}

impl OcspClient {
    pub fn new(issuer: &Certificate) -> Self {
        let tbs = issuer.tbs_certificate();
        let subject = tbs.subject().to_der().expect("issuer name encodes");
        let key = tbs
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes()
            .to_vec();
        Self {
            issuer_name_hash: HashAlgorithm::Sha1.digest(&subject).as_ref().to_vec(),
            issuer_key_hash: HashAlgorithm::Sha1.digest(&key).as_ref().to_vec(),
            issuer_subject_der: subject,
            issuer_key: key,
        }
    }

    fn cert_id(&self, serial: &Serial) -> rasn_ocsp::CertId {
        rasn_ocsp::CertId {
            hash_algorithm: rasn_pkix::AlgorithmIdentifier {
                algorithm: ObjectIdentifier::new(ID_SHA1.to_vec()).expect("id-sha1"),
                parameters: Some(Any::new(DER_NULL.to_vec())),
            },
            issuer_name_hash: self.issuer_name_hash.clone().into(),
            issuer_key_hash: self.issuer_key_hash.clone().into(),
            serial_number: Integer::try_from_signed_bytes(
                &serial.der_integer_bytes(),
                rasn::Codec::Der,
            )
            .expect("serial"),
        }
    }

    /// The DER of a request for `serial` (lowercase hex).
    pub fn request(&self, serial: &str) -> Vec<u8> {
        let serial: Serial = serial.parse().expect("serial in hex");
        let request = rasn_ocsp::OcspRequest {
            tbs_request: rasn_ocsp::TbsRequest {
                version: Integer::ZERO,
                requestor_name: None,
                request_list: vec![rasn_ocsp::Request {
                    req_cert: self.cert_id(&serial),
                    single_request_extensions: None,
                }],
                request_extensions: None,
            },
            optional_signature: None,
        };
        rasn::der::encode(&request).expect("request encodes")
    }

    /// Decodes and checks a response to [`OcspClient::request`] for `serial`.
    pub fn answer(&self, serial: &str, der: &[u8]) -> Result<OcspAnswer, String> {
        let response: rasn_ocsp::OcspResponse =
            rasn::der::decode(der).map_err(|e| format!("OCSP response does not decode: {e}"))?;
        if response.status != rasn_ocsp::OcspResponseStatus::Successful {
            return Err(format!("OCSP status {:?}", response.status));
        }
        let bytes = response.bytes.ok_or("successful response without bytes")?;
        let basic: rasn_ocsp::BasicOcspResponse = rasn::der::decode(&bytes.response)
            .map_err(|e| format!("BasicOCSPResponse does not decode: {e}"))?;
        self.check_signature(&basic)?;
        let [single] = &basic.tbs_response_data.responses[..] else {
            return Err("not exactly one SingleResponse".into());
        };
        let serial: Serial = serial.parse().expect("serial in hex");
        if single.cert_id != self.cert_id(&serial) {
            return Err(format!("answer names another CertID than {serial}"));
        }
        let status = match &single.cert_status {
            rasn_ocsp::CertStatus::Good => Status::Good,
            rasn_ocsp::CertStatus::Revoked(info) => match info.revocation_reason {
                Some(rasn_pkix::CrlReason::CertificateHold) => Status::Suspended,
                Some(reason) => Status::Revoked(reason as u8),
                None => Status::Revoked(0),
            },
            rasn_ocsp::CertStatus::Unknown(()) => return Err(format!("{serial} is unknown")),
        };
        let next_update = single
            .next_update
            .ok_or("SingleResponse without nextUpdate")?;
        Ok(OcspAnswer {
            status,
            this_update: unix(single.this_update.timestamp())?,
            next_update: unix(next_update.timestamp())?,
        })
    }

    /// The delegated responder certificate is included (SPEC §5), signed by
    /// the issuing CA, and its key signed the response data.
    fn check_signature(&self, basic: &rasn_ocsp::BasicOcspResponse) -> Result<(), String> {
        let [responder] = basic.certs.as_deref().unwrap_or_default() else {
            return Err("not exactly one responder certificate".into());
        };
        let issuer =
            rasn::der::encode(&responder.tbs_certificate.issuer).map_err(|e| e.to_string())?;
        if issuer != self.issuer_subject_der {
            return Err("responder certificate from another issuer".into());
        }
        let tbs_cert = rasn::der::encode(&responder.tbs_certificate).map_err(|e| e.to_string())?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.issuer_key)
            .verify(&tbs_cert, responder.signature_value.as_raw_slice())
            .map_err(|_| "responder certificate not signed by the issuing CA")?;
        let key = responder
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .as_raw_slice();
        let tbs = rasn::der::encode(&basic.tbs_response_data).map_err(|e| e.to_string())?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key)
            .verify(&tbs, basic.signature.as_raw_slice())
            .map_err(|_| "OCSP response signature does not verify".into())
    }
}

fn unix(seconds: i64) -> Result<OffsetDateTime, String> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| e.to_string())
}
