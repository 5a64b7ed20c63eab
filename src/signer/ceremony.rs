//! Key ceremony (SPEC §11): generate a key pair where it will live, and a
//! PKCS#10 request signed by it for the root CA to certify.
//!
//! In a token the private key is made sensitive and non-extractable, so it
//! never exists outside the token; in a file it is written once, mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
};

use super::token::{P256_PARAMS, P384_PARAMS, locate, login, module, read_pin};
use super::{KeyAlgorithm, KeyRef, Signer, TokenRef};

/// Why a ceremony step failed; nothing was created.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Token(String),
    #[error(transparent)]
    Signer(#[from] super::SignerError),
}

/// `--algorithm` values.
pub fn parse_algorithm(name: &str) -> Result<KeyAlgorithm, CeremonyError> {
    Ok(match name {
        "ec-p256" => KeyAlgorithm::EcdsaP256,
        "ec-p384" => KeyAlgorithm::EcdsaP384,
        "rsa-2048" => KeyAlgorithm::Rsa { bits: 2048 },
        "rsa-3072" => KeyAlgorithm::Rsa { bits: 3072 },
        "rsa-4096" => KeyAlgorithm::Rsa { bits: 4096 },
        other => {
            return Err(CeremonyError::Refused(format!(
                "unknown algorithm `{other}`: ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096"
            )));
        }
    })
}

/// Generates a key pair at `key` and returns it, opened as a signer.
pub fn generate(key: &KeyRef, algorithm: KeyAlgorithm) -> Result<Signer, CeremonyError> {
    match key {
        KeyRef::File(path) => generate_file(path, algorithm)?,
        KeyRef::Token(token) => generate_in_token(token, algorithm)?,
    }
    Ok(Signer::open("--key", key)?)
}

fn generate_file(path: &Path, algorithm: KeyAlgorithm) -> Result<(), CeremonyError> {
    let curve = match algorithm {
        KeyAlgorithm::EcdsaP256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
        KeyAlgorithm::EcdsaP384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
        KeyAlgorithm::Rsa { bits } => {
            return Err(CeremonyError::Refused(format!(
                "eidca cannot generate RSA keys in a file (ring has no RSA key generation); \
                 use `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:{bits}`, or a token"
            )));
        }
    };
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(curve, &SystemRandom::new())
        .map_err(|_| CeremonyError::Refused("the system random number generator failed".into()))?;
    let pem = zeroize::Zeroizing::new(
        der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, pkcs8.as_ref())
            .map_err(|e| CeremonyError::Refused(e.to_string()))?,
    );
    let write = |path: &Path| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(pem.as_bytes())?;
        file.sync_all()
    };
    write(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => CeremonyError::Refused(format!(
            "{} exists; a key ceremony never overwrites a key",
            path.display()
        )),
        _ => CeremonyError::Refused(format!("cannot write {}: {e}", path.display())),
    })
}

/// C_GenerateKeyPair with the private key sensitive, non-extractable and
/// for signing only; refuses a label or id that any object already has.
fn generate_in_token(token: &TokenRef, algorithm: KeyAlgorithm) -> Result<(), CeremonyError> {
    let fail = CeremonyError::Token;
    let uri = &token.uri;
    let label = uri.object.as_deref().ok_or_else(|| {
        CeremonyError::Refused("a key to generate needs a label (`object=` in the URI)".into())
    })?;
    let context = module(&token.module).map_err(fail)?;
    let pin = read_pin(uri).map_err(fail)?;
    let slot = locate(&context, &uri.token).map_err(fail)?;
    let session = context
        .open_rw_session(slot)
        .map_err(|e| fail(format!("cannot open a read-write session: {e}")))?;
    login(&session, &pin, &uri.token).map_err(fail)?;
    let mut taken = vec![Attribute::Label(label.as_bytes().to_vec())];
    if let Some(id) = &uri.id {
        taken.push(Attribute::Id(id.clone()));
    }
    for attribute in taken {
        let existing = session
            .find_objects(std::slice::from_ref(&attribute))
            .map_err(|e| fail(format!("cannot search the token: {e}")))?;
        if !existing.is_empty() {
            return Err(CeremonyError::Refused(format!(
                "the token `{}` already holds an object with this {}; nothing was created",
                uri.token,
                if matches!(attribute, Attribute::Label(_)) {
                    "label"
                } else {
                    "id"
                }
            )));
        }
    }
    let mut names = super::token::template(uri, ObjectClass::PUBLIC_KEY);
    names.remove(0);
    let (mechanism, mut public) = match algorithm {
        KeyAlgorithm::EcdsaP256 => (
            Mechanism::EccKeyPairGen,
            vec![Attribute::EcParams(P256_PARAMS.to_vec())],
        ),
        KeyAlgorithm::EcdsaP384 => (
            Mechanism::EccKeyPairGen,
            vec![Attribute::EcParams(P384_PARAMS.to_vec())],
        ),
        KeyAlgorithm::Rsa { bits } => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::ModulusBits((bits as u64).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ],
        ),
    };
    // Signing only: no encryption, wrapping or derivation with a CA key.
    public.extend([
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
    ]);
    public.extend(names.iter().cloned());
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ];
    private.extend(names);
    session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(|e| fail(format!("C_GenerateKeyPair failed: {e}")))?;
    Ok(())
}

/// A PKCS#10 request for `subject` (`C=TW,O=…,CN=…`), signed by `key`.
pub fn csr(key: &Signer, subject: &str) -> Result<String, CeremonyError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(subject)?;
    let rcgen_key = super::RcgenKey::new(key);
    let request =
        params
            .serialize_request(&rcgen_key)
            .map_err(|e| match rcgen_key.take_failure() {
                Some(failure) => CeremonyError::Signer(failure),
                None => CeremonyError::Refused(format!("cannot sign the request: {e}")),
            })?;
    request
        .pem()
        .map_err(|e| CeremonyError::Refused(format!("cannot encode the request: {e}")))
}

/// `C=TW,O=Ministry,CN=eID Issuing CA 2026` (a comma inside a value is
/// written `\,`), in the order given.
fn distinguished_name(subject: &str) -> Result<DistinguishedName, CeremonyError> {
    let refused = |m: String| CeremonyError::Refused(format!("--subject: {m}"));
    let mut dn = DistinguishedName::new();
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = subject.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ',' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    for part in parts {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| refused(format!("`{part}` is not NAME=value")))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(refused(format!("`{}` has no value", name.trim())));
        }
        let kind = match name.trim() {
            "C" => DnType::CountryName,
            "ST" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "CN" => DnType::CommonName,
            "serialNumber" => DnType::CustomDnType(vec![2, 5, 4, 5]),
            other => {
                return Err(refused(format!(
                    "`{other}` is not one of C, ST, L, O, OU, CN, serialNumber"
                )));
            }
        };
        let value = match kind {
            DnType::CountryName | DnType::CustomDnType(_) => DnValue::PrintableString(
                value
                    .try_into()
                    .map_err(|_| refused(format!("`{value}` is not a PrintableString")))?,
            ),
            _ => DnValue::Utf8String(value.to_owned()),
        };
        dn.push(kind, value);
    }
    if !dn.iter().any(|(t, _)| *t == DnType::CommonName) {
        return Err(refused("a CA's subject needs a CN".into()));
    }
    Ok(dn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_their_order_and_escaped_commas() {
        let dn = distinguished_name(r"C=TW, O=Ministry\, of Interior ,CN=eID CA").unwrap();
        let names: Vec<_> = dn.iter().map(|(t, _)| t.clone()).collect();
        assert_eq!(
            names,
            [
                DnType::CountryName,
                DnType::OrganizationName,
                DnType::CommonName
            ]
        );
        assert_eq!(
            dn.get(&DnType::OrganizationName),
            Some(&DnValue::Utf8String("Ministry, of Interior".into()))
        );
    }

    #[test]
    fn bad_subjects_are_refused_by_name() {
        for (subject, needle) in [
            ("C=TW,O=x", "needs a CN"),
            ("C=TW,X=1,CN=a", "`X`"),
            ("CN", "not NAME=value"),
            ("C=T_W,CN=a", "PrintableString"),
            ("CN=", "no value"),
        ] {
            let e = distinguished_name(subject).unwrap_err().to_string();
            assert!(e.contains(needle), "{subject}: {e}");
        }
    }

    #[test]
    fn a_file_key_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let key = KeyRef::File(path.clone());
        let signer = generate(&key, KeyAlgorithm::EcdsaP384).unwrap();
        assert_eq!(signer.key_algorithm(), KeyAlgorithm::EcdsaP384);
        let before = std::fs::read(&path).unwrap();
        assert!(generate(&key, KeyAlgorithm::EcdsaP256).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let csr = csr(&signer, "C=TW,CN=test").unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    }
}
