//! From the file as written to [`Config`]: one check per section, each
//! error naming the key at fault. The checks run in the order of the file's
//! sections, so the first mistake in the file is the one reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use time::Duration;

use super::raw::{RawCa, RawConfig, RawOcsp, RawProfile, RawPublish, RawSelfService};
use super::{
    Config, ConfigDuration, ConfigError, ConfigSource, SUSPEND_CARD_CEILING_MIN, SelfServiceConfig,
    TokenConfig,
};
use crate::issuance::profile::{KeyUsageBit, Profile, parse_oid};
use crate::signer::KeyRef;

/// The publication intervals and the OCSP validity, checked against each other.
struct Intervals {
    delta_crl: Duration,
    full_crl: Duration,
    ocsp_max_age: Duration,
}

/// Validates `raw`; relative paths resolve against `base`, the folder of the file.
pub(super) fn validate(
    raw: RawConfig,
    base: &Path,
    source: &ConfigSource,
) -> Result<Config, ConfigError> {
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let listen = listen(source, raw.server.listen)?;
    let base_url_explicit = raw.publish.base_url.is_some();
    let base_url = base_url(raw.publish.base_url.clone(), &listen)?;
    let intervals = intervals(&raw.publish, &raw.ocsp)?;
    let ocsp_max_cert_ids = max_cert_ids(&raw.ocsp)?;
    let (ocsp_signing_threads, ocsp_signing_queue) = signing_pool(&raw.ocsp)?;
    check_country(&raw.ca.country)?;
    let [issuing_cert, ocsp_cert] = ca_certificates(&raw.ca, resolve)?;
    let issuing_key = key_ref("ca.issuing_key", &raw.ca.issuing_key, &raw.ca, resolve)?;
    let ocsp_key = key_ref("ca.ocsp_key", &raw.ca.ocsp_key, &raw.ca, resolve)?;
    check_tokens(&raw.tokens)?;
    let selfservice = selfservice(&raw.selfservice)?;
    let profiles = profiles(raw.profiles)?;
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
        delta_crl_interval: intervals.delta_crl,
        full_crl_interval: intervals.full_crl,
        publish_dir,
        ocsp_max_age: intervals.ocsp_max_age,
        ocsp_max_cert_ids,
        ocsp_signing_threads,
        ocsp_signing_queue,
        country: raw.ca.country,
        issuing_cert,
        issuing_key,
        ocsp_cert,
        ocsp_key,
        allow_software_keys: raw.ca.allow_software_keys,
        idempotency_ttl: raw.api.idempotency_ttl.0,
        tokens: raw.tokens,
        selfservice,
        profiles,
    })
}

/// The command line wins over `server.listen`.
fn listen(source: &ConfigSource, configured: Option<String>) -> Result<String, ConfigError> {
    let listen = source
        .listen
        .clone()
        .or(configured)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    if listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(ConfigError::key(
            "server.listen",
            format!("`{listen}` is not an address like 127.0.0.1:8080"),
        ));
    }
    Ok(listen)
}

/// `publish.base_url` without a trailing slash; the listen address by default.
fn base_url(configured: Option<String>, listen: &str) -> Result<String, ConfigError> {
    let base_url = configured
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
    Ok(base_url)
}

/// A delta CRL comes more often than a full one, and an OCSP answer never
/// outlives the full CRL that could contradict it.
fn intervals(publish: &RawPublish, ocsp: &RawOcsp) -> Result<Intervals, ConfigError> {
    let delta = publish.delta_crl_interval.0;
    let full = publish.full_crl_interval.0;
    let max_age = ocsp.max_age.0;
    at_least_a_second([
        ("publish.delta_crl_interval", delta),
        ("publish.full_crl_interval", full),
        ("ocsp.max_age", max_age),
    ])?;
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
    Ok(Intervals {
        delta_crl: delta,
        full_crl: full,
        ocsp_max_age: max_age,
    })
}

fn at_least_a_second<const N: usize>(durations: [(&str, Duration); N]) -> Result<(), ConfigError> {
    match durations
        .into_iter()
        .find(|(_, value)| *value < Duration::seconds(1))
    {
        Some((key, _)) => Err(ConfigError::key(key, "must be at least 1s")),
        None => Ok(()),
    }
}

fn max_cert_ids(ocsp: &RawOcsp) -> Result<usize, ConfigError> {
    if !(1..=1000).contains(&ocsp.max_cert_ids) {
        return Err(ConfigError::key(
            "ocsp.max_cert_ids",
            "must be between 1 and 1000",
        ));
    }
    Ok(ocsp.max_cert_ids)
}

/// The OCSP signing pool's threads (by default one per two CPUs, so that
/// a flood of signatures leaves the other CPUs to everything else) and
/// queue bound.
fn signing_pool(ocsp: &RawOcsp) -> Result<(usize, usize), ConfigError> {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = ocsp.signing_threads.unwrap_or(cpus.div_ceil(2));
    if !(1..=256).contains(&threads) {
        return Err(ConfigError::key(
            "ocsp.signing_threads",
            "must be between 1 and 256",
        ));
    }
    if !(1..=65_536).contains(&ocsp.signing_queue) {
        return Err(ConfigError::key(
            "ocsp.signing_queue",
            "must be between 1 and 65536",
        ));
    }
    Ok((threads, ocsp.signing_queue))
}

fn check_country(country: &str) -> Result<(), ConfigError> {
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ConfigError::key(
            "ca.country",
            format!("`{country}` is not a two-letter ISO 3166 code"),
        ));
    }
    Ok(())
}

/// The issuing and OCSP certificates, in that order.
fn ca_certificates(
    ca: &RawCa,
    resolve: impl Fn(PathBuf) -> PathBuf,
) -> Result<[PathBuf; 2], ConfigError> {
    let file = |key: &str, path: &PathBuf| existing_file(key, resolve(path.clone()));
    Ok([
        file("ca.issuing_cert", &ca.issuing_cert)?,
        file("ca.ocsp_cert", &ca.ocsp_cert)?,
    ])
}

/// A key setting (SPEC §11): a `pkcs11:` URI, checked and given its module,
/// or a path to an existing PKCS#8 file.
fn key_ref(
    setting: &str,
    value: &str,
    ca: &RawCa,
    resolve: impl Fn(PathBuf) -> PathBuf,
) -> Result<KeyRef, ConfigError> {
    if !(1..=64).contains(&ca.pkcs11_sessions) {
        return Err(ConfigError::key(
            "ca.pkcs11_sessions",
            format!("{} is not between 1 and 64", ca.pkcs11_sessions),
        ));
    }
    let module = ca.pkcs11_module.clone().map(&resolve);
    match KeyRef::parse(value, module.as_deref(), ca.pkcs11_sessions) {
        Ok(KeyRef::File(path)) => existing_file(setting, resolve(path)).map(KeyRef::File),
        Ok(token) => Ok(token),
        Err(message) => Err(ConfigError::key(setting, message)),
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

/// Only the SHA-256 of a token belongs in the file, never the token itself.
fn check_tokens(tokens: &[TokenConfig]) -> Result<(), ConfigError> {
    for (i, token) in tokens.iter().enumerate() {
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
    Ok(())
}

fn selfservice(raw: &RawSelfService) -> Result<SelfServiceConfig, ConfigError> {
    if !(1..=1000).contains(&raw.max_failures) {
        return Err(ConfigError::key(
            "selfservice.max_failures",
            "must be between 1 and 1000",
        ));
    }
    if !(SUSPEND_CARD_CEILING_MIN..=1_000_000).contains(&raw.suspend_card_ceiling) {
        return Err(ConfigError::key(
            "selfservice.suspend_card_ceiling",
            format!("must be between {SUSPEND_CARD_CEILING_MIN} and 1000000"),
        ));
    }
    at_least_a_second([
        ("selfservice.failure_window", raw.failure_window.0),
        ("selfservice.lockout", raw.lockout.0),
    ])?;
    Ok(SelfServiceConfig {
        max_failures: raw.max_failures,
        failure_window: raw.failure_window.0,
        lockout: raw.lockout.0,
        suspend_card_ceiling: raw.suspend_card_ceiling,
    })
}

fn profiles(raw: BTreeMap<String, RawProfile>) -> Result<BTreeMap<String, Profile>, ConfigError> {
    let mut profiles = BTreeMap::new();
    for (name, raw_profile) in raw {
        let profile = profile(&name, raw_profile)?;
        profiles.insert(name, profile);
    }
    if profiles.is_empty() {
        return Err(ConfigError::key(
            "profiles",
            "at least one profile is needed",
        ));
    }
    Ok(profiles)
}

fn profile(name: &str, raw: RawProfile) -> Result<Profile, ConfigError> {
    let key = |field: &str| format!("profiles.{name}.{field}");
    let key_usage_ec = key_usages(key("key_usage_ec"), &raw.key_usage_ec)?;
    let key_usage_rsa = key_usages(key("key_usage_rsa"), &raw.key_usage_rsa)?;
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

fn key_usages(key: String, values: &[String]) -> Result<Vec<KeyUsageBit>, ConfigError> {
    if values.is_empty() {
        return Err(ConfigError::key(key, "must list at least one key usage"));
    }
    values
        .iter()
        .map(|v| v.parse().map_err(|m| ConfigError::key(key.clone(), m)))
        .collect()
}
