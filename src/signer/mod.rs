//! CA keys (SPEC §11): a PKCS#8 file or a key in a PKCS#11 token, behind
//! one [`Signer`].
//!
//! Every signature eidca makes (certificates, CRLs, OCSP responses) goes
//! through [`Signer`], so the algorithm identifier in a structure always
//! matches the key that signed it, and nothing above this module knows
//! whether ring ([`file`]) or a token ([`token`]) made the signature.

pub mod ceremony;
mod der_sig;
#[cfg(test)]
pub mod faulty;
mod file;
mod token;
pub mod uri;

use std::fmt;
use std::path::PathBuf;

pub use file::FileKey;
pub use uri::Pkcs11Uri;

/// DER of AlgorithmIdentifier { ecdsa-with-SHA256 } (parameters absent, RFC 5758 §3.2).
const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// DER of AlgorithmIdentifier { ecdsa-with-SHA384 }.
const ALG_ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
/// DER of AlgorithmIdentifier { sha256WithRSAEncryption, NULL } (RFC 4055 §5).
const ALG_RSA_SHA256: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];

/// The key types a CA or responder key may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256: the default.
    EcdsaP256,
    /// ECDSA P-384 with SHA-384.
    EcdsaP384,
    /// RSA 2048–4096 bits, PKCS#1 v1.5 with SHA-256.
    Rsa { bits: usize },
}

/// Why a key could not be loaded, or cannot sign now.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("the key file is not PEM with a PRIVATE KEY (PKCS#8) block: {0}")]
    NotPkcs8Pem(String),
    #[error("the key is not an ECDSA P-256, ECDSA P-384 or RSA 2048–4096 PKCS#8 key")]
    UnsupportedKey,
    #[error("RSA keys must have 2048 to 4096 bits; this one has {0}")]
    RsaSize(usize),
    /// A token key could not be loaded at start-up (module, token, object,
    /// PIN); the message never holds the PIN.
    #[error("{0}")]
    Token(String),
    /// The key exists but cannot sign now (token away, session lost); the
    /// request that needed the signature changes nothing and may be retried.
    #[error("the key {key} cannot sign now: {reason}")]
    Unavailable { key: String, reason: String },
}

/// A key that can sign: a file loaded into memory or an object in a token.
/// Implementations are shared by every thread; `sign` may block briefly.
pub trait Key: Send + Sync {
    fn algorithm(&self) -> KeyAlgorithm;
    /// The subjectPublicKey BIT STRING contents (an EC point, or a DER
    /// RSAPublicKey).
    fn public_key_bits(&self) -> &[u8];
    /// Signs `message` whole (hashing it as the algorithm says); the bytes
    /// go into a BIT STRING. An error says why the key cannot sign now.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// Where a key lives, as a key setting names it (SPEC §11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A PKCS#8 PEM file.
    File(PathBuf),
    /// An RFC 7512 `pkcs11:` URI, with the module it resolved to.
    Token(TokenRef),
}

/// A key in a PKCS#11 token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRef {
    pub uri: Pkcs11Uri,
    /// The module: the URI's `module-path`, else `ca.pkcs11_module`.
    pub module: PathBuf,
    /// Logged-in sessions in the pool (`ca.pkcs11_sessions`).
    pub sessions: usize,
}

impl KeyRef {
    /// A key setting as written: a `pkcs11:` URI (its module is the URI's
    /// `module-path`, else `default_module`) or a file path.
    pub fn parse(
        value: &str,
        default_module: Option<&std::path::Path>,
        sessions: usize,
    ) -> Result<Self, String> {
        if !value.starts_with("pkcs11:") {
            return Ok(KeyRef::File(PathBuf::from(value)));
        }
        let uri = Pkcs11Uri::parse(value).map_err(|e| e.to_string())?;
        let module = uri
            .module_path
            .clone()
            .or_else(|| default_module.map(PathBuf::from))
            .ok_or("the URI names no module-path and ca.pkcs11_module is not set")?;
        Ok(KeyRef::Token(TokenRef {
            uri,
            module,
            sessions,
        }))
    }
}

impl fmt::Display for KeyRef {
    /// The reference as an operator wrote it, without any PIN.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRef::File(path) => write!(f, "{}", path.display()),
            KeyRef::Token(token) => write!(f, "{}", token.uri),
        }
    }
}

/// A key, named after the configuration key that refers to it, able to
/// sign for its certificate.
pub struct Signer {
    key: Box<dyn Key>,
    /// The setting that names the key (`ca.issuing_key`, …): errors and
    /// `/healthz` name it.
    setting: String,
    /// The last [`Signer::health`] probe: when, and why it failed.
    probed: std::sync::Mutex<Option<(std::time::Instant, Option<String>)>>,
}

/// How long a health probe's verdict stands: `/healthz` polled by many
/// monitors costs at most one signature a second per key.
const PROBE_STANDS: std::time::Duration = std::time::Duration::from_secs(1);

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Signer")
            .field("setting", &self.setting)
            .field("algorithm", &self.key.algorithm())
            .finish()
    }
}

impl Signer {
    /// Opens the key `key` names; `setting` is the configuration key.
    pub fn open(setting: &str, key: &KeyRef) -> Result<Self, SignerError> {
        let key: Box<dyn Key> = match key {
            KeyRef::File(path) => Box::new(FileKey::load(path)?),
            KeyRef::Token(token) => Box::new(token::TokenKey::open(token)?),
        };
        Ok(Self::new(setting, key))
    }

    /// A signer over any [`Key`] (tests inject failing keys this way).
    pub fn new(setting: &str, key: Box<dyn Key>) -> Self {
        Self {
            key,
            setting: setting.to_owned(),
            probed: std::sync::Mutex::new(None),
        }
    }

    /// The configuration key that names this key.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.key.algorithm()
    }

    /// Signs `message` whole; the returned bytes go into a BIT STRING.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.key
            .sign(message)
            .map_err(|reason| SignerError::Unavailable {
                key: self.setting.clone(),
                reason,
            })
    }

    /// Whether the key can sign now: one signature over a fixed message,
    /// at most once per second; `Err` says why not.
    pub fn health(&self) -> Result<(), String> {
        let mut probed = self
            .probed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        let verdict = match &*probed {
            Some((at, verdict)) if now.duration_since(*at) < PROBE_STANDS => verdict.clone(),
            _ => {
                let verdict = self
                    .sign(b"eidca health probe")
                    .err()
                    .map(|e| e.to_string());
                *probed = Some((now, verdict.clone()));
                verdict
            }
        };
        verdict.map_or(Ok(()), Err)
    }

    /// DER of the signature AlgorithmIdentifier this key produces.
    pub fn signature_algorithm_der(&self) -> &'static [u8] {
        match self.key.algorithm() {
            KeyAlgorithm::EcdsaP256 => ALG_ECDSA_SHA256,
            KeyAlgorithm::EcdsaP384 => ALG_ECDSA_SHA384,
            KeyAlgorithm::Rsa { .. } => ALG_RSA_SHA256,
        }
    }

    /// The subjectPublicKey BIT STRING contents (an EC point, or a DER
    /// RSAPublicKey).
    pub fn public_key_bits(&self) -> &[u8] {
        self.key.public_key_bits()
    }

    /// The public key as a PEM SubjectPublicKeyInfo.
    pub fn public_key_pem(&self) -> Result<String, String> {
        use rcgen::PublicKeyData;
        der::pem::encode_string(
            "PUBLIC KEY",
            der::pem::LineEnding::LF,
            &self.subject_public_key_info(),
        )
        .map_err(|e| e.to_string())
    }
}

impl rcgen::PublicKeyData for Signer {
    fn der_bytes(&self) -> &[u8] {
        self.public_key_bits()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.key.algorithm() {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl rcgen::SigningKey for Signer {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Signer::sign(self, msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// The signer as rcgen's `SigningKey`, keeping why a signature failed
/// (rcgen's own error has no room for it), so that a token that is away
/// is reported as such and not as an encoding error.
pub struct RcgenKey<'a> {
    signer: &'a Signer,
    failure: std::cell::RefCell<Option<SignerError>>,
}

impl<'a> RcgenKey<'a> {
    pub fn new(signer: &'a Signer) -> Self {
        Self {
            signer,
            failure: std::cell::RefCell::new(None),
        }
    }

    /// Why the last signature failed, if it did.
    pub fn take_failure(&self) -> Option<SignerError> {
        self.failure.borrow_mut().take()
    }
}

impl rcgen::PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.signer.public_key_bits()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        rcgen::PublicKeyData::algorithm(self.signer)
    }
}

impl rcgen::SigningKey for RcgenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.signer.sign(msg).map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            rcgen::Error::RemoteKeyError
        })
    }
}
