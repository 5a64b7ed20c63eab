//! Production-mode start-up checks: a production CA must not run
//! with the public development keys, readable key files, a readable data
//! directory, the development RA tokens, or URLs guessed from the listen
//! address.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use der::Decode;

use crate::ca::CaCertificate;
use crate::config::{Config, Mode};
use crate::devkeys;
use crate::signer::KeyRef;
use crate::signer::uri::PinSource;

/// The committed development certificates; their public keys are refused
/// in production whatever the files are called.
const DEV_CERTS: [&str; 3] = [
    include_str!("../keys-dev/root-ca.crt"),
    include_str!("../keys-dev/issuing-ca.crt"),
    include_str!("../keys-dev/ocsp-responder.crt"),
];

/// SHA-256 of the development RA tokens `dev-officer-token` and `dev-auditor-token`.
const DEV_TOKEN_HASHES: [&str; 2] = [
    "c130ed9f928632bb2741eb43744301dea78acecae9023fb49b05c7f171257f85",
    "98cf681f2a5cde03b61e87f21f50956519de249c09b0b0c5af316ce8ddd861a7",
];

/// Why production mode refused to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductionRefusal {
    #[error(
        "production mode refuses {key} = {path}: it is a public development key from keys-dev/"
    )]
    DevelopmentKey { key: &'static str, path: String },
    #[error(
        "production mode refuses {key} = {path}: it belongs to a hierarchy made by `eidca dev-keys` (organizationName \"{organization}\")"
    )]
    DevelopmentHierarchy {
        key: &'static str,
        path: String,
        organization: &'static str,
    },
    #[error(
        "production mode refuses {key} = {path}: the key file is readable by group or others (mode {mode:o}); chmod 600 it"
    )]
    KeyFileReadable {
        key: &'static str,
        path: String,
        mode: u32,
    },
    #[error(
        "production mode refuses {key} = {path}: a CA key in a file; keep it in a token (a pkcs11: URI) or set ca.allow_software_keys = true"
    )]
    SoftwareKey { key: &'static str, path: String },
    #[error(
        "production mode refuses {key}: its pkcs11: URI carries pin-value; use pin-source=file:<path> so the PIN is not in the configuration"
    )]
    PinValue { key: &'static str },
    #[error(
        "production mode refuses the data directory {path}: it is readable by group or others (mode {mode:o}) and holds every card's subscriber code; chmod 700 it"
    )]
    DataDirReadable { path: String, mode: u32 },
    #[error(
        "production mode refuses token `{name}`: it is a development token (dev-officer-token / dev-auditor-token)"
    )]
    DevelopmentToken { name: String },
    #[error(
        "production mode requires publish.base_url to be set explicitly: it goes into every certificate"
    )]
    ImplicitBaseUrl,
    #[error("cannot check {key} = {path}: {message}")]
    Unreadable {
        key: &'static str,
        path: String,
        message: String,
    },
}

/// Runs every production check; in development mode there is nothing to check.
pub fn check(config: &Config) -> Result<(), ProductionRefusal> {
    if config.mode == Mode::Development {
        return Ok(());
    }
    for (key, reference) in [
        ("ca.issuing_key", &config.issuing_key),
        ("ca.ocsp_key", &config.ocsp_key),
    ] {
        refuse_key(key, reference, config.allow_software_keys)?;
    }
    for (key, path) in [
        ("ca.issuing_cert", &config.issuing_cert),
        ("ca.ocsp_cert", &config.ocsp_cert),
    ] {
        refuse_development_certificate(key, path)?;
    }
    refuse_readable_data_dir(config.store_path.parent())?;
    if let Some(token) = config
        .tokens
        .iter()
        .find(|t| DEV_TOKEN_HASHES.contains(&t.sha256.as_str()))
    {
        return Err(ProductionRefusal::DevelopmentToken {
            name: token.name.clone(),
        });
    }
    if !config.base_url_explicit {
        return Err(ProductionRefusal::ImplicitBaseUrl);
    }
    Ok(())
}

/// The public keys of the development hierarchy (a key file matches its
/// certificate, which `CaKeyPair::load` checks, so comparing the
/// certificates' keys covers the private keys too).
fn development_public_keys() -> Vec<Vec<u8>> {
    DEV_CERTS
        .iter()
        .filter_map(|pem| CaCertificate::parse(pem.as_bytes()).ok())
        .map(|c| c.public_key_bits)
        .collect()
}

fn refuse_development_certificate(key: &'static str, path: &Path) -> Result<(), ProductionRefusal> {
    let unreadable = |message: String| ProductionRefusal::Unreadable {
        key,
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    let cert = CaCertificate::parse(&bytes).map_err(unreadable)?;
    if development_public_keys().contains(&cert.public_key_bits) {
        return Err(ProductionRefusal::DevelopmentKey {
            key,
            path: path.display().to_string(),
        });
    }
    if made_by_dev_keys(&cert.subject_der).map_err(unreadable)? {
        return Err(ProductionRefusal::DevelopmentHierarchy {
            key,
            path: path.display().to_string(),
            organization: devkeys::ORGANIZATION,
        });
    }
    Ok(())
}

/// The store's directory, if it exists yet (the store creates it 0700).
fn refuse_readable_data_dir(dir: Option<&Path>) -> Result<(), ProductionRefusal> {
    let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mode = match std::fs::metadata(dir) {
        Ok(metadata) => metadata.permissions().mode() & 0o777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(ProductionRefusal::Unreadable {
                key: "store.path",
                path: dir.display().to_string(),
                message: e.to_string(),
            });
        }
    };
    if mode & 0o077 != 0 {
        return Err(ProductionRefusal::DataDirReadable {
            path: dir.display().to_string(),
            mode,
        });
    }
    Ok(())
}

/// Whether a subject names the organization of `eidca dev-keys`.
fn made_by_dev_keys(subject_der: &[u8]) -> Result<bool, String> {
    let subject = x509_cert::name::Name::from_der(subject_der).map_err(|e| e.to_string())?;
    Ok(subject
        .to_string()
        .split(',')
        .any(|rdn| rdn == format!("O={}", devkeys::ORGANIZATION)))
}

/// SPEC §11: CA keys in tokens, their PINs out of the configuration; a
/// software key only when the operator says so, and then not readable.
fn refuse_key(
    key: &'static str,
    reference: &KeyRef,
    allow_software_keys: bool,
) -> Result<(), ProductionRefusal> {
    match reference {
        KeyRef::Token(token) => match token.uri.pin {
            Some(PinSource::Value(_)) => Err(ProductionRefusal::PinValue { key }),
            _ => Ok(()),
        },
        KeyRef::File(path) if !allow_software_keys => Err(ProductionRefusal::SoftwareKey {
            key,
            path: path.display().to_string(),
        }),
        KeyRef::File(path) => refuse_readable_key(key, path),
    }
}

fn refuse_readable_key(key: &'static str, path: &Path) -> Result<(), ProductionRefusal> {
    let metadata = std::fs::metadata(path).map_err(|e| ProductionRefusal::Unreadable {
        key,
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ProductionRefusal::KeyFileReadable {
            key,
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_keys_are_known() {
        assert_eq!(development_public_keys().len(), 3);
    }

    #[test]
    fn dev_token_hashes_match_the_dev_tokens() {
        for (token, hash) in ["dev-officer-token", "dev-auditor-token"]
            .iter()
            .zip(DEV_TOKEN_HASHES)
        {
            let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
            assert_eq!(hex::encode(digest), hash);
        }
    }
}
