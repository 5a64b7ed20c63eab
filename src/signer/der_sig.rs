//! The DER a PKCS#11 token's raw values become: an ECDSA-Sig-Value from
//! `CKM_ECDSA`'s r‖s (RFC 5480 §2.2 / RFC 3279 §2.2.3), and an
//! RSAPublicKey from CKA_MODULUS and CKA_PUBLIC_EXPONENT (RFC 8017 §A.1.1).

use der::Encode;
use der::asn1::UintRef;

#[derive(der::Sequence)]
struct IntegerPair<'a> {
    first: UintRef<'a>,
    second: UintRef<'a>,
}

fn pair(first: &[u8], second: &[u8]) -> Result<Vec<u8>, String> {
    IntegerPair {
        first: UintRef::new(first).map_err(|e| e.to_string())?,
        second: UintRef::new(second).map_err(|e| e.to_string())?,
    }
    .to_der()
    .map_err(|e| e.to_string())
}

/// ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } from r‖s, both
/// halves as long as the curve's order.
pub fn ecdsa_sig_value(raw: &[u8], half: usize) -> Result<Vec<u8>, String> {
    if raw.len() != 2 * half {
        return Err(format!(
            "the token returned a {}-octet ECDSA signature, expected {}",
            raw.len(),
            2 * half
        ));
    }
    let (r, s) = raw.split_at(half);
    pair(r, s)
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }.
pub fn rsa_public_key(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>, String> {
    pair(modulus, exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_go_and_high_bits_get_a_zero_octet() {
        let mut raw = vec![0u8; 64];
        raw[1] = 0x7f; // r = 0x007f00…: one leading zero dropped
        raw[32] = 0x80; // s = 0x8000…: a 0x00 prepended
        let der = ecdsa_sig_value(&raw, 32).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x44, 0x02, 0x1f]);
        assert_eq!(der[4], 0x7f);
        assert_eq!(&der[35..38], &[0x02, 0x21, 0x00]);
        assert_eq!(der[38], 0x80);
    }

    #[test]
    fn a_signature_of_the_wrong_length_is_refused() {
        assert!(ecdsa_sig_value(&[1; 63], 32).is_err());
    }
}
