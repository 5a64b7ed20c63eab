//! OCSP request decoding ([RFC 6960 §4.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.1),
//! profiled by [RFC 5019 §2.1](https://www.rfc-editor.org/rfc/rfc5019#section-2.1)).
//!
//! Parse, don't validate: [`decode`] turns untrusted bytes into an
//! [`OcspRequest`] whose every [`CertId`] names the issuer we serve, or into
//! the OCSP error status the client gets (`malformedRequest`,
//! `unauthorized`). Nothing here panics on any input.

use der::SliceReader;
use der::asn1::AnyRef;
use rasn::types::{IntegerType, ObjectIdentifier, OctetString, Oid};
use rasn_pkix::Extension;
use ring::digest::{self, Algorithm};

use crate::domain::Serial;

/// id-pkix-ocsp-nonce ([RFC 6960 §4.4.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.4.1)).
pub const NONCE_OID: &Oid = Oid::const_new(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 2]);

/// The longest nonce accepted ([RFC 8954 §2.1](https://www.rfc-editor.org/rfc/rfc8954#section-2.1)).
pub const MAX_NONCE_LEN: usize = 32;

/// DER of an ASN.1 NULL: the parameters of a hash AlgorithmIdentifier may be
/// absent or NULL ([RFC 5754 §2](https://www.rfc-editor.org/rfc/rfc5754#section-2)).
const DER_NULL: &[u8] = &[0x05, 0x00];

/// The hash functions a CertID may use ([RFC 6960 §4.1.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.1.1)):
/// SHA-1 is what RFC 5019 clients send; the SHA-2 family is what newer ones do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    pub const ALL: [HashAlgorithm; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    fn oid(self) -> &'static Oid {
        match self {
            Self::Sha1 => Oid::const_new(&[1, 3, 14, 3, 2, 26]),
            Self::Sha256 => Oid::const_new(&[2, 16, 840, 1, 101, 3, 4, 2, 1]),
            Self::Sha384 => Oid::const_new(&[2, 16, 840, 1, 101, 3, 4, 2, 2]),
            Self::Sha512 => Oid::const_new(&[2, 16, 840, 1, 101, 3, 4, 2, 3]),
        }
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        let oid: &Oid = oid;
        Self::ALL.into_iter().find(|h| h.oid() == oid)
    }

    fn ring(self) -> &'static Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }

    /// The hash of `data` with this function.
    pub fn digest(self, data: &[u8]) -> digest::Digest {
        digest::digest(self.ring(), data)
    }
}

/// The issuer a responder answers for, hashed the way CertIDs name it: the
/// DER of its subject Name and the contents of its subjectPublicKey BIT
/// STRING (without tag, length and unused-bits octet), for every
/// [`HashAlgorithm`].
#[derive(Debug, Clone)]
pub struct IssuerHashes {
    by_algorithm: Vec<(HashAlgorithm, Vec<u8>, Vec<u8>)>,
}

impl IssuerHashes {
    pub fn new(subject_der: &[u8], public_key_bits: &[u8]) -> Self {
        let by_algorithm = HashAlgorithm::ALL
            .into_iter()
            .map(|h| {
                let name = h.digest(subject_der).as_ref().to_vec();
                let key = h.digest(public_key_bits).as_ref().to_vec();
                (h, name, key)
            })
            .collect();
        Self { by_algorithm }
    }

    fn names(&self, hash: HashAlgorithm, name_hash: &[u8], key_hash: &[u8]) -> bool {
        self.by_algorithm
            .iter()
            .any(|(h, name, key)| *h == hash && name == name_hash && key == key_hash)
    }
}

/// How a CertID spells its hash algorithm. Two CertIDs with the same serial
/// and form encode identically, so a response signed for one can be served
/// to the other (the answer must echo the CertID, RFC 6960 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertIdForm {
    pub hash: HashAlgorithm,
    /// Parameters NULL rather than absent.
    pub null_parameters: bool,
}

/// One CertID of a request, known to name our issuer.
#[derive(Debug, Clone)]
pub struct CertId {
    /// As received; copied into the SingleResponse.
    pub raw: rasn_ocsp::CertId,
    pub form: CertIdForm,
    /// The serial as a DER INTEGER's content octets (two's complement).
    pub serial_der: Vec<u8>,
    /// `None` for a serial we can never have issued (zero, negative, longer
    /// than 20 octets): its answer is `unknown` without a lookup.
    pub serial: Option<Serial>,
}

/// The nonce extension of a request, echoed as received
/// ([RFC 8954 §2.1](https://www.rfc-editor.org/rfc/rfc8954#section-2.1)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(pub Extension);

/// A decoded request: what to answer, and whether it must be fresh.
#[derive(Debug, Clone)]
pub struct OcspRequest {
    /// At least one; never more than the configured maximum.
    pub cert_ids: Vec<CertId>,
    pub nonce: Option<Nonce>,
}

/// Why a request gets no status: each variant is an OCSPResponseStatus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// `malformedRequest`: not a DER OCSPRequest we can answer.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// `unauthorized`: a CertID for an issuer (or hash function) we do not
    /// answer for (RFC 5019 §2.2.3).
    #[error("unauthorized: the request names an issuer this responder does not serve")]
    Unauthorized,
}

/// Decodes and checks a DER OCSPRequest.
pub fn decode(
    der: &[u8],
    issuer: &IssuerHashes,
    max_cert_ids: usize,
) -> Result<OcspRequest, RequestError> {
    if der.is_empty() {
        return Err(RequestError::Malformed("empty request"));
    }
    let request: rasn_ocsp::OcspRequest =
        rasn::der::decode(der).map_err(|_| RequestError::Malformed("not a DER OCSPRequest"))?;
    let tbs = request.tbs_request;
    if tbs.version != rasn::types::Integer::ZERO {
        return Err(RequestError::Malformed("only version 1 requests exist"));
    }
    match tbs.request_list.len() {
        0 => return Err(RequestError::Malformed("the request lists no CertID")),
        n if n > max_cert_ids => return Err(RequestError::Malformed("too many CertIDs")),
        _ => {}
    }
    check_serial_encodings(der, tbs.request_list.len())?;
    let nonce = match &tbs.request_extensions {
        Some(extensions) => find_nonce(extensions)?,
        None => None,
    };
    let cert_ids = tbs
        .request_list
        .into_iter()
        .map(|r| check_cert_id(r.req_cert, issuer))
        .collect::<Result<_, _>>()?;
    Ok(OcspRequest { cert_ids, nonce })
}

/// Strict DER for the serial numbers: each CertID's serialNumber must be
/// a minimally encoded INTEGER ([X.690 §8.3.2](https://www.itu.int/rec/T-REC-X.690):
/// its first nine bits are neither all zeros nor all ones), as DER demands
/// of the whole request (RFC 6960 §4.1.1). rasn accepts redundant leading
/// octets, and a serial that two encodings name could answer `good` for a
/// CertID no relying party's certificate holds; so the octets as received
/// are read again here (with `der`, which also refuses what else DER
/// forbids and rasn lets through, such as lengths not in their shortest
/// form). A negative or zero serial is well-formed DER: RFC
/// 5280 §4.1.2.2 forbids CAs to issue one, which is a rule about
/// certificates, not requests, so it stays `unknown` (we never issued it),
/// like any other serial we never issued.
fn check_serial_encodings(der: &[u8], cert_ids: usize) -> Result<(), RequestError> {
    let serials =
        received_serials(der).map_err(|_| RequestError::Malformed("not a DER OCSPRequest"))?;
    if serials.len() != cert_ids {
        return Err(RequestError::Malformed("not a DER OCSPRequest"));
    }
    match serials.into_iter().all(is_minimal_integer) {
        true => Ok(()),
        false => Err(RequestError::Malformed(
            "a CertID serial number is not a minimally encoded INTEGER",
        )),
    }
}

/// The content octets of every CertID's serialNumber, as received, in
/// request order. Called once rasn decoded the request, so only the
/// structure is walked (the types are known to be right):
/// `OCSPRequest { tbsRequest { [0] version, [1] requestorName,
/// requestList SEQUENCE OF Request { reqCert CertID { hashAlgorithm,
/// issuerNameHash, issuerKeyHash, serialNumber } … } … } … }`.
fn received_serials(der: &[u8]) -> der::Result<Vec<&[u8]>> {
    use der::{Decode, Reader, Tag, Tagged};
    let mut request = inside(AnyRef::from_der(der)?)?;
    let mut tbs = inside(request.decode()?)?;
    // version and requestorName are context-specific: the list is the
    // first SEQUENCE.
    let list = loop {
        let field: AnyRef<'_> = tbs.decode()?;
        if field.tag() == Tag::Sequence {
            break field;
        }
    };
    let mut list = inside(list)?;
    let mut serials = Vec::new();
    while !list.is_finished() {
        let mut single = inside(list.decode()?)?;
        let mut cert_id = inside(single.decode()?)?;
        for _hash_algorithm_name_hash_key_hash in 0..3 {
            cert_id.decode::<AnyRef<'_>>()?;
        }
        serials.push(cert_id.decode::<AnyRef<'_>>()?.value());
    }
    Ok(serials)
}

/// A reader of a TLV's contents.
fn inside(tlv: AnyRef<'_>) -> der::Result<SliceReader<'_>> {
    SliceReader::new(tlv.value())
}

/// Whether INTEGER content octets are the minimal two's-complement form.
fn is_minimal_integer(content: &[u8]) -> bool {
    match content {
        [] => false,
        [0x00, next, ..] => next & 0x80 != 0,
        [0xff, next, ..] => next & 0x80 == 0,
        _ => true,
    }
}

/// The nonce, if any: at most one, its value an OCTET STRING of 1 to 32
/// octets (RFC 8954 §2.1). Other request extensions are ignored.
fn find_nonce(extensions: &[Extension]) -> Result<Option<Nonce>, RequestError> {
    let mut nonces = extensions.iter().filter(|e| &*e.extn_id == NONCE_OID);
    let Some(extension) = nonces.next() else {
        return Ok(None);
    };
    if nonces.next().is_some() {
        return Err(RequestError::Malformed("more than one nonce"));
    }
    let value: OctetString = rasn::der::decode(&extension.extn_value)
        .map_err(|_| RequestError::Malformed("the nonce is not an OCTET STRING"))?;
    if !(1..=MAX_NONCE_LEN).contains(&value.len()) {
        return Err(RequestError::Malformed("the nonce must be 1 to 32 octets"));
    }
    Ok(Some(Nonce(extension.clone())))
}

fn check_cert_id(raw: rasn_ocsp::CertId, issuer: &IssuerHashes) -> Result<CertId, RequestError> {
    let algorithm = &raw.hash_algorithm;
    let hash = HashAlgorithm::from_oid(&algorithm.algorithm).ok_or(RequestError::Unauthorized)?;
    let null_parameters = match algorithm.parameters.as_ref().map(|p| p.as_bytes()) {
        None => false,
        Some(DER_NULL) => true,
        Some(_) => {
            return Err(RequestError::Malformed(
                "hash algorithm parameters must be absent or NULL",
            ));
        }
    };
    if !issuer.names(hash, &raw.issuer_name_hash, &raw.issuer_key_hash) {
        return Err(RequestError::Unauthorized);
    }
    let serial_der = {
        let (bytes, len) = raw.serial_number.to_signed_bytes_be();
        bytes.as_ref().get(..len).unwrap_or_default().to_vec()
    };
    let serial = Serial::from_der_integer(&serial_der).ok();
    Ok(CertId {
        raw,
        form: CertIdForm {
            hash,
            null_parameters,
        },
        serial_der,
        serial,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rasn::types::{Any, Integer};
    use rasn_pkix::AlgorithmIdentifier;

    pub const ISSUER_NAME: &[u8] = b"\x30\x0b\x31\x09\x30\x07\x06\x03\x55\x04\x03\x0c\x00";
    pub const ISSUER_KEY: &[u8] = b"\x04an EC point";

    pub fn issuer() -> IssuerHashes {
        IssuerHashes::new(ISSUER_NAME, ISSUER_KEY)
    }

    /// A CertID for our issuer (or, with `name`/`key`, for another).
    pub fn cert_id_for(
        hash: HashAlgorithm,
        serial: &[u8],
        name: &[u8],
        key: &[u8],
    ) -> rasn_ocsp::CertId {
        rasn_ocsp::CertId {
            hash_algorithm: AlgorithmIdentifier {
                algorithm: ObjectIdentifier::new(hash.oid().to_vec()).expect("oid"),
                parameters: Some(Any::new(DER_NULL.to_vec())),
            },
            issuer_name_hash: hash.digest(name).as_ref().to_vec().into(),
            issuer_key_hash: hash.digest(key).as_ref().to_vec().into(),
            serial_number: Integer::try_from_signed_bytes(serial, rasn::Codec::Der).expect("int"),
        }
    }

    pub fn cert_id(hash: HashAlgorithm, serial: &[u8]) -> rasn_ocsp::CertId {
        cert_id_for(hash, serial, ISSUER_NAME, ISSUER_KEY)
    }

    pub fn request_der(ids: Vec<rasn_ocsp::CertId>, extensions: Option<Vec<Extension>>) -> Vec<u8> {
        let request = rasn_ocsp::OcspRequest {
            tbs_request: rasn_ocsp::TbsRequest {
                version: Integer::ZERO,
                requestor_name: None,
                request_list: ids
                    .into_iter()
                    .map(|req_cert| rasn_ocsp::Request {
                        req_cert,
                        single_request_extensions: None,
                    })
                    .collect(),
                request_extensions: extensions.map(Into::into),
            },
            optional_signature: None,
        };
        rasn::der::encode(&request).expect("encode request")
    }

    pub fn nonce_extension(len: usize) -> Extension {
        let value = OctetString::from(vec![0x5a; len]);
        Extension {
            extn_id: ObjectIdentifier::new(NONCE_OID.to_vec()).expect("oid"),
            critical: false,
            extn_value: rasn::der::encode(&value).expect("nonce").into(),
        }
    }

    #[test]
    fn decodes_sha1_and_sha256_cert_ids_with_their_serials() {
        let der = request_der(
            vec![
                cert_id(HashAlgorithm::Sha1, &[0x40, 1, 2]),
                cert_id(HashAlgorithm::Sha256, &[0x00, 0x80, 1]),
            ],
            None,
        );
        let request = decode(&der, &issuer(), 20).unwrap();
        assert_eq!(request.nonce, None);
        let [sha1, sha256] = &request.cert_ids[..] else {
            panic!("two CertIDs expected")
        };
        assert_eq!(sha1.form.hash, HashAlgorithm::Sha1);
        assert!(sha1.form.null_parameters);
        assert_eq!(sha1.serial.as_ref().unwrap().to_hex(), "400102");
        assert_eq!(sha256.form.hash, HashAlgorithm::Sha256);
        assert_eq!(sha256.serial.as_ref().unwrap().to_hex(), "8001");
        assert_eq!(sha256.serial_der, vec![0x00, 0x80, 1]);
    }

    #[test]
    fn garbage_empty_and_truncated_input_is_malformed() {
        let good = request_der(vec![cert_id(HashAlgorithm::Sha1, &[1])], None);
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            b"hello, world".to_vec(),
            good[..good.len() - 1].to_vec(),
            [good.clone(), vec![0]].concat(),
            request_der(vec![], None),
        ];
        for der in cases {
            assert!(
                matches!(decode(&der, &issuer(), 20), Err(RequestError::Malformed(_))),
                "{der:02x?}"
            );
        }
    }

    #[test]
    fn more_cert_ids_than_allowed_is_malformed() {
        let ids = |n| {
            (0..n)
                .map(|i| cert_id(HashAlgorithm::Sha1, &[1, i]))
                .collect()
        };
        assert!(decode(&request_der(ids(3), None), &issuer(), 3).is_ok());
        assert_eq!(
            decode(&request_der(ids(4), None), &issuer(), 3).unwrap_err(),
            RequestError::Malformed("too many CertIDs")
        );
    }

    #[test]
    fn another_issuer_or_unknown_hash_is_unauthorized() {
        let other_name = cert_id_for(HashAlgorithm::Sha1, &[1], b"other", ISSUER_KEY);
        let other_key = cert_id_for(HashAlgorithm::Sha256, &[1], ISSUER_NAME, b"other");
        let mut md5 = cert_id(HashAlgorithm::Sha1, &[1]);
        md5.hash_algorithm.algorithm =
            ObjectIdentifier::new(vec![1, 2, 840, 113549, 2, 5]).expect("oid");
        for id in [other_name, other_key, md5] {
            let der = request_der(vec![cert_id(HashAlgorithm::Sha1, &[2]), id], None);
            assert_eq!(
                decode(&der, &issuer(), 20).unwrap_err(),
                RequestError::Unauthorized
            );
        }
    }

    #[test]
    fn nonce_of_one_to_32_octets_is_kept_longer_or_empty_is_malformed() {
        let ids = || vec![cert_id(HashAlgorithm::Sha1, &[1])];
        for len in [1, 16, 32] {
            let der = request_der(ids(), Some(vec![nonce_extension(len)]));
            let nonce = decode(&der, &issuer(), 20).unwrap().nonce;
            assert_eq!(nonce, Some(Nonce(nonce_extension(len))));
        }
        for len in [0, 33, 128] {
            let der = request_der(ids(), Some(vec![nonce_extension(len)]));
            assert!(matches!(
                decode(&der, &issuer(), 20),
                Err(RequestError::Malformed(_))
            ));
        }
    }

    #[test]
    fn serials_we_never_issue_decode_without_a_serial() {
        for serial in [&[0u8][..], &[0xff], &[0x01; 21]] {
            let der = request_der(vec![cert_id(HashAlgorithm::Sha1, serial)], None);
            let request = decode(&der, &issuer(), 20).unwrap();
            assert_eq!(request.cert_ids[0].serial, None);
        }
    }

    /// A DER TLV (short or long form length) around `content`.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
            n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    /// A request for our issuer whose one CertID has `serial` as its
    /// serialNumber TLV, octet for octet (rasn would encode it minimally).
    fn request_with_serial_tlv(serial: &[u8]) -> Vec<u8> {
        let hash = HashAlgorithm::Sha1;
        let algorithm = tlv(
            0x30,
            &[
                tlv(0x06, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]),
                DER_NULL.to_vec(),
            ]
            .concat(),
        );
        let cert_id = [
            algorithm,
            tlv(0x04, hash.digest(ISSUER_NAME).as_ref()),
            tlv(0x04, hash.digest(ISSUER_KEY).as_ref()),
            serial.to_vec(),
        ]
        .concat();
        let request = tlv(0x30, &tlv(0x30, &cert_id));
        tlv(0x30, &tlv(0x30, &tlv(0x30, &request)))
    }

    #[test]
    fn the_hand_made_request_is_what_rasn_makes() {
        assert_eq!(
            request_with_serial_tlv(&[0x02, 0x02, 0x00, 0x80]),
            request_der(vec![cert_id(HashAlgorithm::Sha1, &[0x00, 0x80])], None)
        );
    }

    #[test]
    fn a_serial_with_redundant_leading_octets_is_malformed() {
        // X.690 §8.3.2: the first nine bits of an INTEGER are never all
        // zeros nor all ones.
        for serial in [
            &[0x02, 0x02, 0x00, 0x7f][..],
            &[0x02, 0x03, 0x00, 0x00, 0x80],
            &[
                0x02, 0x11, 0x00, 0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
            ],
            &[0x02, 0x02, 0xff, 0x80],
            &[0x02, 0x00],
        ] {
            assert!(
                matches!(
                    decode(&request_with_serial_tlv(serial), &issuer(), 20),
                    Err(RequestError::Malformed(_))
                ),
                "{serial:02x?}"
            );
        }
    }

    #[test]
    fn minimal_serials_decode_even_negative_ones_which_we_never_issue() {
        for (serial, issuable) in [
            (&[0x02, 0x01, 0x7f][..], true),
            (&[0x02, 0x02, 0x00, 0x80], true),
            (&[0x02, 0x01, 0x00], false),
            (&[0x02, 0x01, 0xff], false),
            (&[0x02, 0x02, 0xff, 0x7f], false),
        ] {
            let request = decode(&request_with_serial_tlv(serial), &issuer(), 20)
                .unwrap_or_else(|e| panic!("{serial:02x?}: {e}"));
            assert_eq!(
                request.cert_ids[0].serial.is_some(),
                issuable,
                "{serial:02x?}"
            );
        }
    }

    #[test]
    fn a_length_not_in_its_shortest_form_is_malformed() {
        let good = request_with_serial_tlv(&[0x02, 0x01, 0x7f]);
        assert!(decode(&good, &issuer(), 20).is_ok());
        // The outermost length again, as 0x81 nn.
        let long_form = [&[0x30, 0x81][..], &good[1..]].concat();
        assert!(matches!(
            decode(&long_form, &issuer(), 20),
            Err(RequestError::Malformed(_))
        ));
    }

    #[test]
    fn every_cert_id_serial_is_checked_not_only_the_first() {
        let good = request_der(vec![cert_id(HashAlgorithm::Sha1, &[0x7f])], None);
        let one = &good[4..]; // inside OCSPRequest and TBSRequest: the requestList
        let one_request = &one[2..]; // a Request
        let bad = request_with_serial_tlv(&[0x02, 0x02, 0x00, 0x7f]);
        let bad_request = &bad[6..];
        let list = tlv(0x30, &[one_request, bad_request].concat());
        let der = tlv(0x30, &tlv(0x30, &list));
        assert!(matches!(
            decode(&der, &issuer(), 20),
            Err(RequestError::Malformed(_))
        ));
        let list = tlv(0x30, &[one_request, one_request].concat());
        let both_fine = decode(&tlv(0x30, &tlv(0x30, &list)), &issuer(), 20);
        assert_eq!(both_fine.map(|r| r.cert_ids.len()), Ok(2));
    }
}
