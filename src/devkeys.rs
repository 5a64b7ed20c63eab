//! `eidca dev-keys`: a development CA hierarchy (root CA → issuing CA →
//! delegated OCSP responder), ECDSA P-256, written as PEM files.
//!
//! For development and tests only: production mode refuses these keys.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PublicKeyData, SerialNumber, SigningKey,
};
use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

use crate::signer::Signer;

/// The file names of the hierarchy, shared with the development config.
pub const ROOT_CERT: &str = "root-ca.crt";
pub const ROOT_KEY: &str = "root-ca.key";
pub const ISSUING_CERT: &str = "issuing-ca.crt";
pub const ISSUING_KEY: &str = "issuing-ca.key";
pub const OCSP_CERT: &str = "ocsp-responder.crt";
pub const OCSP_KEY: &str = "ocsp-responder.key";

/// Validity: root 20 years, issuing CA 10 years, responder one year (short,
/// because id-pkix-ocsp-nocheck means it can never be revoked, RFC 6960 §4.2.2.2.1).
const ROOT_DAYS: i64 = 20 * 365;
const ISSUING_DAYS: i64 = 10 * 365;
const RESPONDER_DAYS: i64 = 365;

const README: &str = "\
# Development CA hierarchy — NEVER FOR PRODUCTION

These keys and certificates are public (they are committed to the
repository). They exist so that `cargo run --release -- serve` and the tests
work on a fresh clone. `mode = \"production\"` refuses to start with them.

| file | what |
|---|---|
| `root-ca.crt`, `root-ca.key` | self-signed root CA (trust anchor for tests) |
| `issuing-ca.crt`, `issuing-ca.key` | issuing CA: signs certificates and CRLs |
| `ocsp-responder.crt`, `ocsp-responder.key` | delegated OCSP responder (EKU OCSPSigning, id-pkix-ocsp-nocheck, one year) |

Regenerate with `cargo run -- dev-keys --out keys-dev` (ECDSA P-256).
";

/// Why the hierarchy could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DevKeysError {
    #[error("certificate generation failed: {0}")]
    Generation(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Keys of the hierarchy that exist already (in a token, SPEC §11): their
/// certificates are made for them, and no key file is written.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExistingKeys<'a> {
    pub issuing: Option<&'a Signer>,
    pub ocsp: Option<&'a Signer>,
}

/// A key of the hierarchy: made now (and written out), or given.
enum DevKey<'a> {
    Fresh(Box<KeyPair>),
    Existing(&'a Signer),
}

impl<'a> DevKey<'a> {
    fn new(existing: Option<&'a Signer>) -> Result<Self, rcgen::Error> {
        match existing {
            Some(signer) => Ok(DevKey::Existing(signer)),
            None => {
                KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map(|k| DevKey::Fresh(Box::new(k)))
            }
        }
    }

    /// The PKCS#8 PEM of a key made now.
    fn pem(&self) -> Option<String> {
        match self {
            DevKey::Fresh(pair) => Some(pair.serialize_pem()),
            DevKey::Existing(_) => None,
        }
    }
}

impl PublicKeyData for DevKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        match self {
            DevKey::Fresh(pair) => pair.der_bytes(),
            DevKey::Existing(signer) => signer.der_bytes(),
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            DevKey::Fresh(pair) => PublicKeyData::algorithm(pair.as_ref()),
            DevKey::Existing(signer) => PublicKeyData::algorithm(*signer),
        }
    }
}

impl SigningKey for DevKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            DevKey::Fresh(pair) => pair.sign(msg),
            DevKey::Existing(signer) => SigningKey::sign(*signer, msg),
        }
    }
}

struct Node<'a> {
    params: CertificateParams,
    key: DevKey<'a>,
}

impl Node<'_> {
    fn issuer(&self) -> Issuer<'_, &DevKey<'_>> {
        Issuer::from_params(&self.params, &self.key)
    }
}

fn base_params(
    organization: &str,
    cn: &str,
    key: &impl PublicKeyData,
    now: OffsetDateTime,
    days: i64,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        rcgen::DnValue::PrintableString(
            rcgen::string::PrintableString::try_from("TW").expect("printable"),
        ),
    );
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.not_before = now;
    params.not_after = now + Duration::days(days);
    let mut serial = [0u8; 16];
    // SystemRandom only fails if the OS has no entropy source at all.
    let _ = SystemRandom::new().fill(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x40;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.key_identifier_method = KeyIdMethod::PreSpecified(
        digest(&SHA1_FOR_LEGACY_USE_ONLY, key.der_bytes())
            .as_ref()
            .to_vec(),
    );
    params
}

/// The organizationName of every certificate `eidca dev-keys` makes:
/// production mode refuses a hierarchy that carries it.
pub const ORGANIZATION: &str = "eidca development (not for production)";

/// Generates a new development hierarchy into `dir` (created if needed).
pub fn generate(dir: &Path, now: OffsetDateTime) -> Result<(), DevKeysError> {
    generate_for(dir, ORGANIZATION, now)
}

/// [`generate`] with another organizationName: a throw-away hierarchy that
/// production checks do not recognise as a development one (the tests of
/// production mode run on one).
pub fn generate_for(
    dir: &Path,
    organization: &str,
    now: OffsetDateTime,
) -> Result<(), DevKeysError> {
    generate_with(dir, organization, now, ExistingKeys::default())
}

/// [`generate_for`], certifying `existing` keys instead of making new ones
/// for the issuing CA or the responder.
pub fn generate_with(
    dir: &Path,
    organization: &str,
    now: OffsetDateTime,
    existing: ExistingKeys<'_>,
) -> Result<(), DevKeysError> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let write = |name: &str, contents: &str, secret: bool| -> Result<(), DevKeysError> {
        let path = dir.join(name);
        let err = |source| DevKeysError::Write {
            path: path.display().to_string(),
            source,
        };
        std::fs::write(&path, contents).map_err(err)?;
        if secret {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        }
        Ok(())
    };
    std::fs::create_dir_all(dir).map_err(|source| DevKeysError::Write {
        path: dir.display().to_string(),
        source,
    })?;

    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut root_params = base_params(
        organization,
        "eidca Development Root CA",
        &root_key,
        now,
        ROOT_DAYS,
    );
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_cert = root_params.self_signed(&root_key)?;
    let root = Node {
        params: root_params,
        key: DevKey::Fresh(Box::new(root_key)),
    };

    let issuing_key = DevKey::new(existing.issuing)?;
    let mut issuing_params = base_params(
        organization,
        "eidca Development Issuing CA",
        &issuing_key,
        now,
        ISSUING_DAYS,
    );
    issuing_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    issuing_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    issuing_params.use_authority_key_identifier_extension = true;
    let issuing_cert = issuing_params.signed_by(&issuing_key, &root.issuer())?;
    let issuing = Node {
        params: issuing_params,
        key: issuing_key,
    };

    let ocsp_key = DevKey::new(existing.ocsp)?;
    let mut ocsp_params = base_params(
        organization,
        "eidca Development OCSP Responder",
        &ocsp_key,
        now,
        RESPONDER_DAYS,
    );
    ocsp_params.is_ca = IsCa::ExplicitNoCa;
    ocsp_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    ocsp_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    ocsp_params.use_authority_key_identifier_extension = true;
    // id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1), value NULL.
    ocsp_params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5],
        vec![0x05, 0x00],
    )];
    let ocsp_cert = ocsp_params.signed_by(&ocsp_key, &issuing.issuer())?;

    write(ROOT_CERT, &root_cert.pem(), false)?;
    for (name, key) in [
        (ROOT_KEY, &root.key),
        (ISSUING_KEY, &issuing.key),
        (OCSP_KEY, &ocsp_key),
    ] {
        if let Some(pem) = key.pem() {
            write(name, &pem, true)?;
        }
    }
    write(ISSUING_CERT, &issuing_cert.pem(), false)?;
    write(OCSP_CERT, &ocsp_cert.pem(), false)?;
    write("README.md", README, false)?;
    Ok(())
}
