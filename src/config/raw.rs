//! The configuration file as written, before validation; defaults of the
//! optional keys live here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use time::Duration;

use super::{ConfigDuration, Mode, TokenConfig};

/// The file as written; [`super::Config`] is the validated form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub store: RawStore,
    pub publish: RawPublish,
    pub ocsp: RawOcsp,
    pub ca: RawCa,
    #[serde(default)]
    pub api: RawApi,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    #[serde(default)]
    pub selfservice: RawSelfService,
    pub profiles: BTreeMap<String, RawProfile>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub path: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublish {
    pub base_url: Option<String>,
    pub delta_crl_interval: ConfigDuration,
    pub full_crl_interval: ConfigDuration,
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOcsp {
    pub max_age: ConfigDuration,
    #[serde(default = "default_max_cert_ids")]
    pub max_cert_ids: usize,
    /// Threads of the signing pool; by default one per two CPUs.
    pub signing_threads: Option<usize>,
    #[serde(default = "default_signing_queue")]
    pub signing_queue: usize,
}

fn default_max_cert_ids() -> usize {
    20
}

/// At ~40 µs a P-256 answer, a full queue is about 10 ms of one thread's work.
fn default_signing_queue() -> usize {
    256
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCa {
    pub country: String,
    pub issuing_cert: PathBuf,
    /// A PKCS#8 file or a `pkcs11:` URI (SPEC §11).
    pub issuing_key: String,
    pub ocsp_cert: PathBuf,
    pub ocsp_key: String,
    /// The PKCS#11 module of URIs that name no `module-path`.
    pub pkcs11_module: Option<PathBuf>,
    #[serde(default = "default_pkcs11_sessions")]
    pub pkcs11_sessions: usize,
    #[serde(default)]
    pub allow_software_keys: bool,
}

/// SPEC §11: four logged-in sessions per token key.
fn default_pkcs11_sessions() -> usize {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    #[serde(default = "default_idempotency_ttl")]
    pub idempotency_ttl: ConfigDuration,
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            idempotency_ttl: default_idempotency_ttl(),
        }
    }
}

fn default_idempotency_ttl() -> ConfigDuration {
    ConfigDuration(Duration::hours(24))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelfService {
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    #[serde(default = "default_quarter_hour")]
    pub failure_window: ConfigDuration,
    #[serde(default = "default_quarter_hour")]
    pub lockout: ConfigDuration,
    #[serde(default = "default_suspend_card_ceiling")]
    pub suspend_card_ceiling: u32,
}

impl Default for RawSelfService {
    fn default() -> Self {
        Self {
            max_failures: default_max_failures(),
            failure_window: default_quarter_hour(),
            lockout: default_quarter_hour(),
            suspend_card_ceiling: default_suspend_card_ceiling(),
        }
    }
}

fn default_max_failures() -> u32 {
    5
}

fn default_suspend_card_ceiling() -> u32 {
    super::SUSPEND_CARD_CEILING_MIN
}

fn default_quarter_hour() -> ConfigDuration {
    ConfigDuration(Duration::minutes(15))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub validity: ConfigDuration,
    pub key_usage_ec: Vec<String>,
    pub key_usage_rsa: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub policy_oid: String,
    #[serde(default = "yes")]
    pub subject_serial_number: bool,
}

fn yes() -> bool {
    true
}
