//! Certificate profiles (SPEC §8, §9): validity, key usages, extended key
//! usages and the policy OID an issued certificate carries.

use std::str::FromStr;

use time::Duration;

/// A keyUsage bit a profile may set (RFC 5280 §4.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsageBit {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
}

impl FromStr for KeyUsageBit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "digitalSignature" => Self::DigitalSignature,
            "nonRepudiation" | "contentCommitment" => Self::NonRepudiation,
            "keyEncipherment" => Self::KeyEncipherment,
            "dataEncipherment" => Self::DataEncipherment,
            "keyAgreement" => Self::KeyAgreement,
            _ => return Err(format!("unknown key usage `{s}`")),
        })
    }
}

/// An extendedKeyUsage purpose a profile may set (RFC 5280 §4.2.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtendedKeyUsage {
    ClientAuth,
    EmailProtection,
}

impl FromStr for ExtendedKeyUsage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "clientAuth" => Ok(Self::ClientAuth),
            "emailProtection" => Ok(Self::EmailProtection),
            _ => Err(format!(
                "unknown extended key usage `{s}`; accepted: clientAuth, emailProtection"
            )),
        }
    }
}

/// A certificate profile (SPEC §8, §9).
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub validity: Duration,
    pub key_usage_ec: Vec<KeyUsageBit>,
    pub key_usage_rsa: Vec<KeyUsageBit>,
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// Dotted certificate policy OID.
    pub policy_oid: Vec<u64>,
    pub subject_serial_number: bool,
}

/// Parses a dotted OID such as `1.3.6.1.4.1.99999.1.1`.
pub fn parse_oid(s: &str) -> Option<Vec<u64>> {
    let arcs: Vec<u64> = s
        .split('.')
        .map(|a| a.parse().ok())
        .collect::<Option<_>>()?;
    let valid = arcs.len() >= 2 && arcs[0] <= 2 && (arcs[0] == 2 || arcs[1] < 40);
    valid.then_some(arcs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_parse() {
        assert_eq!(parse_oid("1.3.6.1"), Some(vec![1, 3, 6, 1]));
        assert_eq!(parse_oid("3.1"), None);
        assert_eq!(parse_oid("1"), None);
        assert_eq!(parse_oid("1.x"), None);
    }
}
