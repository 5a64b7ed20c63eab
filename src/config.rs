//! Configuration: TOML file, `EIDCA_<SECTION>_<KEY>` environment overrides,
//! and validation (SPEC §9).
//!
//! Every error names the key at fault, so an operator can fix the file
//! without reading the code. Relative paths resolve against the folder of
//! the configuration file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use time::Duration;

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

/// A duration written `90s`, `15m`, `24h` or `365d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(pub Duration);

impl FromStr for ConfigDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a duration like 90s, 15m, 24h or 365d");
        let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = s.split_at(unit_at);
        let n: i64 = digits.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(bad()),
        };
        n.checked_mul(seconds)
            .filter(|s| *s <= 100 * 365 * 86400)
            .map(|s| ConfigDuration(Duration::seconds(s)))
            .ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.whole_seconds())
    }
}

/// Development keys are allowed only in development mode (SPEC, issue 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Development,
    Production,
}

/// The file as written; [`Config`] is the validated form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    store: RawStore,
    publish: RawPublish,
    ocsp: RawOcsp,
    ca: RawCa,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    tokens: Vec<TokenConfig>,
    #[serde(default)]
    selfservice: RawSelfService,
    profiles: BTreeMap<String, RawProfile>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    base_url: Option<String>,
    delta_crl_interval: ConfigDuration,
    full_crl_interval: ConfigDuration,
    dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOcsp {
    max_age: ConfigDuration,
    #[serde(default = "default_max_cert_ids")]
    max_cert_ids: usize,
}

fn default_max_cert_ids() -> usize {
    20
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCa {
    country: String,
    issuing_cert: PathBuf,
    issuing_key: PathBuf,
    ocsp_cert: PathBuf,
    ocsp_key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    #[serde(default = "default_idempotency_ttl")]
    idempotency_ttl: ConfigDuration,
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
struct RawSelfService {
    #[serde(default = "default_max_failures")]
    max_failures: u32,
    #[serde(default = "default_quarter_hour")]
    failure_window: ConfigDuration,
    #[serde(default = "default_quarter_hour")]
    lockout: ConfigDuration,
}

impl Default for RawSelfService {
    fn default() -> Self {
        Self {
            max_failures: default_max_failures(),
            failure_window: default_quarter_hour(),
            lockout: default_quarter_hour(),
        }
    }
}

fn default_max_failures() -> u32 {
    5
}

fn default_quarter_hour() -> ConfigDuration {
    ConfigDuration(Duration::minutes(15))
}

/// Throttling of the self-service page (SPEC §7, "Self-service"): after
/// `max_failures` wrong pairs within `failure_window`, counted per card
/// number and per client address, further attempts are refused for `lockout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfServiceConfig {
    pub max_failures: u32,
    pub failure_window: Duration,
    pub lockout: Duration,
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    validity: ConfigDuration,
    key_usage_ec: Vec<String>,
    key_usage_rsa: Vec<String>,
    extended_key_usage: Vec<String>,
    policy_oid: String,
    #[serde(default = "yes")]
    subject_serial_number: bool,
}

fn yes() -> bool {
    true
}

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
    pub country: String,
    pub issuing_cert: PathBuf,
    pub issuing_key: PathBuf,
    pub ocsp_cert: PathBuf,
    pub ocsp_key: PathBuf,
    pub idempotency_ttl: Duration,
    pub tokens: Vec<TokenConfig>,
    pub selfservice: SelfServiceConfig,
    pub profiles: BTreeMap<String, Profile>,
}

/// The sections whose keys `EIDCA_<SECTION>_<KEY>` may override.
const OVERRIDABLE_SECTIONS: [&str; 7] = [
    "server",
    "store",
    "publish",
    "ocsp",
    "ca",
    "api",
    "selfservice",
];

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
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        apply_env_overrides(&mut table, env)?;
        let raw: RawConfig =
            table
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::validate(raw, &base, source)
    }

    fn validate(raw: RawConfig, base: &Path, source: &ConfigSource) -> Result<Self, ConfigError> {
        let listen = source
            .listen
            .clone()
            .or(raw.server.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::key(
                "server.listen",
                format!("`{listen}` is not an address like 127.0.0.1:8080"),
            ));
        }
        let base_url_explicit = raw.publish.base_url.is_some();
        let base_url = raw
            .publish
            .base_url
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://"))
            || base_url.contains(char::is_whitespace)
        {
            return Err(ConfigError::key(
                "publish.base_url",
                format!("`{base_url}` is not an http(s) URL"),
            ));
        }
        let delta = raw.publish.delta_crl_interval.0;
        let full = raw.publish.full_crl_interval.0;
        let max_age = raw.ocsp.max_age.0;
        for (key, value) in [
            ("publish.delta_crl_interval", delta),
            ("publish.full_crl_interval", full),
            ("ocsp.max_age", max_age),
        ] {
            if value < Duration::seconds(1) {
                return Err(ConfigError::key(key, "must be at least 1s"));
            }
        }
        if delta >= full {
            return Err(ConfigError::key(
                "publish.delta_crl_interval",
                format!(
                    "must be shorter than publish.full_crl_interval ({})",
                    ConfigDuration(full)
                ),
            ));
        }
        if max_age > full {
            return Err(ConfigError::key(
                "ocsp.max_age",
                format!(
                    "must not exceed publish.full_crl_interval ({})",
                    ConfigDuration(full)
                ),
            ));
        }
        if !(1..=1000).contains(&raw.ocsp.max_cert_ids) {
            return Err(ConfigError::key(
                "ocsp.max_cert_ids",
                "must be between 1 and 1000",
            ));
        }
        let country = raw.ca.country;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ConfigError::key(
                "ca.country",
                format!("`{country}` is not a two-letter ISO 3166 code"),
            ));
        }
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let issuing_cert = existing_file("ca.issuing_cert", resolve(raw.ca.issuing_cert))?;
        let issuing_key = existing_file("ca.issuing_key", resolve(raw.ca.issuing_key))?;
        let ocsp_cert = existing_file("ca.ocsp_cert", resolve(raw.ca.ocsp_cert))?;
        let ocsp_key = existing_file("ca.ocsp_key", resolve(raw.ca.ocsp_key))?;
        for (i, token) in raw.tokens.iter().enumerate() {
            let hex_ok = token.sha256.len() == 64
                && token
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok {
                return Err(ConfigError::key(
                    format!("tokens[{i}].sha256"),
                    "must be the lowercase hex SHA-256 of the token (64 characters); never the token itself",
                ));
            }
        }
        let selfservice = validate_selfservice(&raw.selfservice)?;
        let mut profiles = BTreeMap::new();
        for (name, raw_profile) in raw.profiles {
            let profile = validate_profile(&name, raw_profile)?;
            profiles.insert(name, profile);
        }
        if profiles.is_empty() {
            return Err(ConfigError::key(
                "profiles",
                "at least one profile is needed",
            ));
        }
        let data_dir = source.data_dir.clone();
        let store_path = raw
            .store
            .path
            .map(resolve)
            .unwrap_or_else(|| data_dir.join("eidca.sqlite3"));
        let publish_dir = raw
            .publish
            .dir
            .map(resolve)
            .unwrap_or_else(|| data_dir.join("publish"));
        Ok(Config {
            mode: raw.mode,
            listen,
            data_dir,
            store_path,
            base_url,
            base_url_explicit,
            delta_crl_interval: delta,
            full_crl_interval: full,
            publish_dir,
            ocsp_max_age: max_age,
            ocsp_max_cert_ids: raw.ocsp.max_cert_ids,
            country,
            issuing_cert,
            issuing_key,
            ocsp_cert,
            ocsp_key,
            idempotency_ttl: raw.api.idempotency_ttl.0,
            tokens: raw.tokens,
            selfservice,
            profiles,
        })
    }

    /// The public URL of a path under `publish.base_url`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

fn existing_file(key: &str, path: PathBuf) -> Result<PathBuf, ConfigError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(ConfigError::key(
            key,
            format!("file {} does not exist or is not a file", path.display()),
        ))
    }
}

fn validate_selfservice(raw: &RawSelfService) -> Result<SelfServiceConfig, ConfigError> {
    if !(1..=1000).contains(&raw.max_failures) {
        return Err(ConfigError::key(
            "selfservice.max_failures",
            "must be between 1 and 1000",
        ));
    }
    for (key, value) in [
        ("selfservice.failure_window", raw.failure_window.0),
        ("selfservice.lockout", raw.lockout.0),
    ] {
        if value < Duration::seconds(1) {
            return Err(ConfigError::key(key, "must be at least 1s"));
        }
    }
    Ok(SelfServiceConfig {
        max_failures: raw.max_failures,
        failure_window: raw.failure_window.0,
        lockout: raw.lockout.0,
    })
}

fn validate_profile(name: &str, raw: RawProfile) -> Result<Profile, ConfigError> {
    let key = |field: &str| format!("profiles.{name}.{field}");
    let parse_all = |field: &str, values: &[String]| -> Result<Vec<KeyUsageBit>, ConfigError> {
        if values.is_empty() {
            return Err(ConfigError::key(
                key(field),
                "must list at least one key usage",
            ));
        }
        values
            .iter()
            .map(|v| v.parse().map_err(|m| ConfigError::key(key(field), m)))
            .collect()
    };
    let key_usage_ec = parse_all("key_usage_ec", &raw.key_usage_ec)?;
    let key_usage_rsa = parse_all("key_usage_rsa", &raw.key_usage_rsa)?;
    let extended_key_usage = raw
        .extended_key_usage
        .iter()
        .map(|v| {
            v.parse()
                .map_err(|m| ConfigError::key(key("extended_key_usage"), m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let policy_oid = parse_oid(&raw.policy_oid).ok_or_else(|| {
        ConfigError::key(
            key("policy_oid"),
            format!("`{}` is not a dotted OID", raw.policy_oid),
        )
    })?;
    if raw.validity.0 < Duration::hours(1) {
        return Err(ConfigError::key(key("validity"), "must be at least 1h"));
    }
    Ok(Profile {
        name: name.to_owned(),
        validity: raw.validity.0,
        key_usage_ec,
        key_usage_rsa,
        extended_key_usage,
        policy_oid,
        subject_serial_number: raw.subject_serial_number,
    })
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

/// Applies `EIDCA_<SECTION>_<KEY>=value` to the table. The value is read as
/// a TOML value when it parses as one (numbers, booleans, quoted strings)
/// and as a plain string otherwise, so `EIDCA_PUBLISH_DELTA_CRL_INTERVAL=2s` works.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("EIDCA_") else {
            continue;
        };
        if rest == "MODE" {
            table.insert("mode".into(), toml::Value::String(value.to_lowercase()));
            continue;
        }
        let Some((section, key)) = OVERRIDABLE_SECTIONS.iter().find_map(|section| {
            let prefix = format!("{}_", section.to_uppercase());
            rest.strip_prefix(&prefix)
                .map(|key| (*section, key.to_lowercase()))
        }) else {
            continue;
        };
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(value));
        let entry = table
            .entry(section.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = entry.as_table_mut() else {
            return Err(ConfigError::key(section, "must be a table"));
        };
        section_table.insert(key, parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_refuse_garbage() {
        assert_eq!(
            "90s".parse::<ConfigDuration>().unwrap().0,
            Duration::seconds(90)
        );
        assert_eq!(
            "15m".parse::<ConfigDuration>().unwrap().0,
            Duration::minutes(15)
        );
        assert_eq!(
            "24h".parse::<ConfigDuration>().unwrap().0,
            Duration::hours(24)
        );
        assert_eq!("2d".parse::<ConfigDuration>().unwrap().0, Duration::days(2));
        for bad in ["", "15", "m", "1.5h", "-1s", "10 m", "99999999999999d"] {
            assert!(bad.parse::<ConfigDuration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn oids_parse() {
        assert_eq!(parse_oid("1.3.6.1"), Some(vec![1, 3, 6, 1]));
        assert_eq!(parse_oid("3.1"), None);
        assert_eq!(parse_oid("1"), None);
        assert_eq!(parse_oid("1.x"), None);
    }
}
