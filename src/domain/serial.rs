//! Certificate serial numbers ([RFC 5280 §4.1.2.2](https://www.rfc-editor.org/rfc/rfc5280#section-4.1.2.2)).

use std::fmt;
use std::str::FromStr;

/// Bytes of randomness in a new serial: 16 bytes with the top two bits fixed
/// leave 126 random bits, well above the 64 that CA/B and SPEC §3 ask for.
const SERIAL_LEN: usize = 16;

/// A positive certificate serial number, held as its big-endian magnitude
/// without leading zero bytes (the canonical form shown as lowercase hex).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

/// Why a serial string or byte string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    #[error("serial is empty")]
    Empty,
    #[error("serial is not hexadecimal")]
    NotHex,
    #[error("serial is longer than 20 bytes (RFC 5280 §4.1.2.2)")]
    TooLong,
    #[error("serial is zero")]
    Zero,
    #[error("serial is negative (RFC 5280 §4.1.2.2 asks for a positive integer)")]
    Negative,
}

impl Serial {
    /// Draws a fresh serial from the given random bytes. The first byte has
    /// its top bit cleared (positive, no DER padding byte) and bit 6 set (no
    /// leading zero byte), so every serial is exactly 16 bytes long.
    pub fn from_random(mut bytes: [u8; SERIAL_LEN]) -> Self {
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        Serial(bytes.to_vec())
    }

    /// Builds a serial from the content octets of a DER INTEGER (which may
    /// carry a leading 0x00 to stay positive).
    pub fn from_der_integer(bytes: &[u8]) -> Result<Self, SerialError> {
        if bytes.first().is_some_and(|b| b & 0x80 != 0) {
            // Negative serials are never ours; refused rather than having
            // their sign silently flipped.
            return Err(SerialError::Negative);
        }
        Self::from_magnitude(bytes)
    }

    /// Builds a serial from big-endian magnitude bytes (leading zeros allowed).
    pub fn from_magnitude(bytes: &[u8]) -> Result<Self, SerialError> {
        let start = bytes.iter().position(|b| *b != 0);
        match start {
            None if bytes.is_empty() => Err(SerialError::Empty),
            None => Err(SerialError::Zero),
            Some(i) if bytes.len() - i > 20 => Err(SerialError::TooLong),
            Some(i) => Ok(Serial(bytes[i..].to_vec())),
        }
    }

    /// The magnitude bytes (no leading zeros).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The content octets of the DER INTEGER: the magnitude, with a 0x00
    /// prefix when its top bit is set.
    pub fn der_integer_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        if self.0[0] & 0x80 != 0 {
            out.push(0);
        }
        out.extend_from_slice(&self.0);
        out
    }

    /// Lowercase hex without leading zero bytes: the form used in the API,
    /// the store and the CLI.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl FromStr for Serial {
    type Err = SerialError;

    /// Accepts lower or upper case hex, with or without a `0x` prefix, with
    /// or without leading zeros (SPEC §7).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if digits.is_empty() {
            return Err(SerialError::Empty);
        }
        if digits.len() > 64 {
            return Err(SerialError::TooLong);
        }
        // Decoded on the stack, right-aligned (an odd count of digits means a
        // leading half byte), in one pass: a full CRL parses a million serials.
        let mut buf = [0u8; 32];
        let len = digits.len().div_ceil(2);
        for (i, digit) in digits.bytes().rev().enumerate() {
            let value = char::from(digit).to_digit(16).ok_or(SerialError::NotHex)? as u8;
            buf[len - 1 - i / 2] |= value << (4 * (i % 2));
        }
        Self::from_magnitude(&buf[..len])
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serial_is_positive_and_sixteen_bytes() {
        for first in [0x00u8, 0x3f, 0x80, 0xff] {
            let mut bytes = [0xa5; SERIAL_LEN];
            bytes[0] = first;
            let serial = Serial::from_random(bytes);
            assert_eq!(serial.as_bytes().len(), 16);
            assert_eq!(serial.as_bytes()[0] & 0xc0, 0x40);
            assert_eq!(serial.der_integer_bytes().len(), 16);
        }
    }

    #[test]
    fn parses_upper_case_prefixed_and_padded_forms() {
        let canonical: Serial = "4a0b".parse().unwrap();
        assert_eq!("0x4A0B".parse::<Serial>().unwrap(), canonical);
        assert_eq!("00004a0b".parse::<Serial>().unwrap(), canonical);
        assert_eq!(canonical.to_hex(), "4a0b");
        assert_eq!("abc".parse::<Serial>().unwrap().to_hex(), "0abc");
    }

    proptest::proptest! {
        #[test]
        fn hex_round_trips_in_every_accepted_spelling(
            magnitude in proptest::collection::vec(proptest::num::u8::ANY, 1..=20),
            zeros in 0usize..3,
        ) {
            proptest::prop_assume!(magnitude[0] != 0);
            let serial = Serial::from_magnitude(&magnitude).unwrap();
            let hex = serial.to_hex();
            let padded = format!("0x{}{}", "0".repeat(zeros), hex.to_uppercase());
            proptest::prop_assert_eq!(hex.parse::<Serial>().unwrap(), serial.clone());
            proptest::prop_assert_eq!(padded.parse::<Serial>().unwrap(), serial.clone());
            // An odd number of digits: the first byte's high half is implied.
            let trimmed = hex.trim_start_matches('0');
            proptest::prop_assert_eq!(trimmed.parse::<Serial>().unwrap(), serial);
        }
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!("".parse::<Serial>(), Err(SerialError::Empty));
        assert_eq!("0x".parse::<Serial>(), Err(SerialError::Empty));
        assert_eq!("xyz".parse::<Serial>(), Err(SerialError::NotHex));
        assert_eq!("00".parse::<Serial>(), Err(SerialError::Zero));
        assert_eq!("ab".repeat(21).parse::<Serial>(), Err(SerialError::TooLong));
    }

    #[test]
    fn der_integer_round_trip_adds_and_strips_padding() {
        let serial = Serial::from_magnitude(&[0x80, 1]).unwrap();
        assert_eq!(serial.der_integer_bytes(), vec![0, 0x80, 1]);
        assert_eq!(Serial::from_der_integer(&[0, 0x80, 1]).unwrap(), serial);
        assert_eq!(
            Serial::from_der_integer(&[0x80]),
            Err(SerialError::Negative)
        );
    }
}
