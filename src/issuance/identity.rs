//! Subscriber codes, names and card numbers: what the RA may send.
//!
//! Limits: a subscriber code and a card number are 4–16 characters of
//! upper-case A–Z and 0–9 (the seed's forms are `A800000014` and
//! `TP03000001`); a name is 1–64 characters (X.520 ub-common-name) with no
//! control characters and no leading or trailing space. A name is stored
//! and signed in Unicode NFC, and a name with a format character (general
//! category Cf: U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE, …)
//! or an unassigned code point is refused: either would show a relying
//! party another name than the one the RA checked (SPEC §16). The general
//! category comes from `unicode-properties`, the normal form from
//! `unicode-normalization`.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Why a subscriber field was refused; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("{field} must be 4 to 16 characters of A-Z and 0-9, got {len} characters")]
    BadLength { field: &'static str, len: usize },
    #[error("{field} may contain only upper-case A-Z and 0-9")]
    BadCharacters { field: &'static str },
    #[error(
        "subscriber name must be 1 to 64 characters without control characters or surrounding spaces"
    )]
    BadName,
    #[error(
        "subscriber name contains U+{code_point:04X}, a format character or an unassigned code point"
    )]
    InvisibleCharacter { code_point: u32 },
}

/// A validated subscriber identity and card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberIdentity {
    pub code: String,
    pub name: String,
    pub card_number: String,
}

impl SubscriberIdentity {
    pub fn new(code: &str, name: &str, card_number: &str) -> Result<Self, IdentityError> {
        Ok(Self {
            code: check_code("subscriber code", code)?,
            name: check_name(name)?,
            card_number: check_code("card number", card_number)?,
        })
    }
}

/// Checks a subscriber code or card number.
pub fn check_code(field: &'static str, value: &str) -> Result<String, IdentityError> {
    let len = value.chars().count();
    if !(4..=16).contains(&len) {
        return Err(IdentityError::BadLength { field, len });
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(IdentityError::BadCharacters { field });
    }
    Ok(value.to_owned())
}

fn check_name(name: &str) -> Result<String, IdentityError> {
    let name: String = name.nfc().collect();
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c.general_category(),
            GeneralCategory::Format | GeneralCategory::Unassigned
        )
    }) {
        return Err(IdentityError::InvisibleCharacter {
            code_point: u32::from(c),
        });
    }
    let len = name.chars().count();
    let ok = (1..=64).contains(&len) && !name.chars().any(char::is_control) && name.trim() == name;
    if ok {
        Ok(name)
    } else {
        Err(IdentityError::BadName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_seed_forms_and_unicode_names() {
        let id = SubscriberIdentity::new("A800000014", "陳大文 CHEN Ta-wen", "TP03000001").unwrap();
        assert_eq!(id.card_number, "TP03000001");
    }

    #[test]
    fn refuses_empty_long_and_odd_values() {
        assert!(SubscriberIdentity::new("", "N", "TP03000001").is_err());
        assert!(SubscriberIdentity::new("A".repeat(17).as_str(), "N", "TP03000001").is_err());
        assert!(SubscriberIdentity::new("a8000000", "N", "TP03000001").is_err());
        assert!(SubscriberIdentity::new("A800000014", "", "TP03000001").is_err());
        assert!(SubscriberIdentity::new("A800000014", &"x".repeat(65), "TP03000001").is_err());
        assert!(SubscriberIdentity::new("A800000014", "bad\nname", "TP03000001").is_err());
        assert!(SubscriberIdentity::new("A800000014", " padded", "TP03000001").is_err());
        assert!(SubscriberIdentity::new("A800000014", "N", "TP-0300").is_err());
    }

    #[test]
    fn names_are_nfc_and_without_format_or_unassigned_characters() {
        let id = SubscriberIdentity::new("A800000014", "Jose\u{301}", "TP03000001").unwrap();
        assert_eq!(id.name, "Jos\u{e9}");
        for (hidden, code_point) in [
            ("A\u{202E}B", 0x202E),
            ("A\u{200B}B", 0x200B),
            ("A\u{378}B", 0x378),
        ] {
            assert_eq!(
                SubscriberIdentity::new("A800000014", hidden, "TP03000001"),
                Err(IdentityError::InvisibleCharacter { code_point })
            );
        }
    }
}
