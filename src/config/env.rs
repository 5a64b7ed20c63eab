//! `EIDCA_<SECTION>_<KEY>` environment overrides, applied to the TOML table
//! before it is deserialised, so an override is checked like the file.

use super::ConfigError;

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

/// Applies `EIDCA_<SECTION>_<KEY>=value` to the table. The value is read as
/// a TOML value when it parses as one (numbers, booleans, quoted strings)
/// and as a plain string otherwise, so `EIDCA_PUBLISH_DELTA_CRL_INTERVAL=2s` works.
pub(super) fn apply_env_overrides(
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
        let Some((section, key)) = section_and_key(rest) else {
            continue;
        };
        let entry = table
            .entry(section.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = entry.as_table_mut() else {
            return Err(ConfigError::key(section, "must be a table"));
        };
        section_table.insert(key, toml_value(value));
    }
    Ok(())
}

/// `PUBLISH_DELTA_CRL_INTERVAL` → (`publish`, `delta_crl_interval`).
fn section_and_key(rest: &str) -> Option<(&'static str, String)> {
    OVERRIDABLE_SECTIONS.iter().find_map(|section| {
        let prefix = format!("{}_", section.to_uppercase());
        rest.strip_prefix(&prefix)
            .map(|key| (*section, key.to_lowercase()))
    })
}

fn toml_value(value: String) -> toml::Value {
    format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or(toml::Value::String(value))
}
