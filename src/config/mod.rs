//! Configuration: TOML file, `EIDCA_<SECTION>_<KEY>` environment overrides,
//! and validation (SPEC §9).
//!
//! Every error names the key at fault, so an operator can fix the file
//! without reading the code. Relative paths resolve against the folder of
//! the configuration file.

mod duration;
mod env;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::Duration;

pub use duration::ConfigDuration;

use crate::issuance::profile::Profile;
use crate::signer::KeyRef;

/// Why the configuration was refused; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("configuration key `{key}`: {message}")]
    Key { key: String, message: String },
}

impl ConfigError {
    fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Key {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Development keys are allowed only in development mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Development,
    Production,
}

/// Throttling of the self-service page (SPEC §7, "Self-service"): after
/// `max_failures` wrong pairs within `failure_window`, counted per card
/// number and per client address, further attempts are refused for `lockout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfServiceConfig {
    pub max_failures: u32,
    pub failure_window: Duration,
    pub lockout: Duration,
    /// Wrong suspend pairs a card number takes in any 24 hours, from any
    /// number of addresses, before its suspend attempts are refused too.
    pub suspend_card_ceiling: u32,
}

/// The lowest `selfservice.suspend_card_ceiling` (SPEC §16): below it, a
/// crowd of guessers could keep an owner from suspending too cheaply.
pub const SUSPEND_CARD_CEILING_MIN: u32 = 100;

/// What a bearer token may do (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Issue certificates, change statuses, publish CRLs.
    Officer,
    /// Read only.
    Auditor,
}

/// One RA token: only the SHA-256 of the token is configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub role: Role,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub listen: String,
    pub data_dir: PathBuf,
    pub store_path: PathBuf,
    pub base_url: String,
    pub base_url_explicit: bool,
    pub delta_crl_interval: Duration,
    pub full_crl_interval: Duration,
    pub publish_dir: PathBuf,
    pub ocsp_max_age: Duration,
    pub ocsp_max_cert_ids: usize,
    /// Threads that sign OCSP responses a request needs at once (`ocsp.signing_threads`).
    pub ocsp_signing_threads: usize,
    /// Signatures that may wait for them, per queue (`ocsp.signing_queue`).
    pub ocsp_signing_queue: usize,
    pub country: String,
    pub issuing_cert: PathBuf,
    pub issuing_key: KeyRef,
    pub ocsp_cert: PathBuf,
    pub ocsp_key: KeyRef,
    /// `ca.allow_software_keys`: production mode accepts CA keys in files.
    pub allow_software_keys: bool,
    pub idempotency_ttl: Duration,
    pub tokens: Vec<TokenConfig>,
    pub selfservice: SelfServiceConfig,
    pub profiles: BTreeMap<String, Profile>,
}

/// Where the configuration comes from and what the command line overrides.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub listen: Option<String>,
    pub data_dir: PathBuf,
}

impl Config {
    /// Reads, overrides from the process environment, and validates.
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        Self::load_with_env(source, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        source: &ConfigSource,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let path = &source.path;
        let invalid = |e: toml::de::Error| ConfigError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let mut table: toml::Table = text.parse().map_err(invalid)?;
        env::apply_env_overrides(&mut table, env)?;
        let raw: raw::RawConfig = table.try_into().map_err(invalid)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        validate::validate(raw, &base, source)
    }
}
