//! Decoding of stored columns into domain values, shared by every query.
//! A value the schema does not allow is an error naming the column and the
//! value, never a default.

use rusqlite::Row;
use rusqlite::types::Type;
use time::OffsetDateTime;

use super::from_unix;
use crate::domain::status::UnknownChannel;
use crate::domain::{CertStatus, Channel, Serial};
use crate::revocation::CrlKind;

/// A column that does not hold what the schema promises.
pub(super) fn bad_column(col: usize, kind: Type, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, kind, message.into())
}

/// A stored status (a name and, at `col + 1`, a reason code); None when the
/// name is NULL (no status: before issuance), an error when it is unknown.
/// Reads the text in place: the full CRL decodes a million of these.
pub(super) fn status_or_null_at(row: &Row<'_>, col: usize) -> rusqlite::Result<Option<CertStatus>> {
    let text = |e| bad_column(col, Type::Text, format!("{e}"));
    let Some(name) = row.get_ref(col)?.as_str_or_null().map_err(text)? else {
        return Ok(None);
    };
    let reason: Option<u8> = row.get(col + 1)?;
    CertStatus::from_stored(name, reason)
        .map(Some)
        .ok_or_else(|| {
            bad_column(
                col,
                Type::Text,
                format!("unknown stored status {name}/{reason:?}"),
            )
        })
}

/// A stored status that the schema requires (NOT NULL).
pub(super) fn status_at(row: &Row<'_>, col: usize) -> rusqlite::Result<CertStatus> {
    status_or_null_at(row, col)?
        .ok_or_else(|| bad_column(col, Type::Null, "a status is missing".into()))
}

/// A serial stored as canonical lowercase hex.
pub(super) fn serial_at(row: &Row<'_>, col: usize) -> rusqlite::Result<Serial> {
    let hex = row
        .get_ref(col)?
        .as_str()
        .map_err(|e| bad_column(col, Type::Text, format!("{e}")))?;
    hex.parse()
        .map_err(|e| bad_column(col, Type::Text, format!("serial {hex}: {e}")))
}

/// A time stored as unix seconds.
pub(super) fn time_at(row: &Row<'_>, col: usize) -> rusqlite::Result<OffsetDateTime> {
    from_unix(row.get(col)?).map_err(|e| bad_column(col, Type::Integer, e.to_string()))
}

/// A channel stored by name.
pub(super) fn channel_at(row: &Row<'_>, col: usize) -> rusqlite::Result<Channel> {
    let name = row
        .get_ref(col)?
        .as_str()
        .map_err(|e| bad_column(col, Type::Text, format!("{e}")))?;
    name.parse()
        .map_err(|e: UnknownChannel| bad_column(col, Type::Text, format!("stored {e}")))
}

/// A CRL kind stored by name.
pub(super) fn crl_kind_at(row: &Row<'_>, col: usize) -> rusqlite::Result<CrlKind> {
    let name = row
        .get_ref(col)?
        .as_str()
        .map_err(|e| bad_column(col, Type::Text, format!("{e}")))?;
    CrlKind::from_name(name)
        .ok_or_else(|| bad_column(col, Type::Text, format!("unknown stored CRL kind {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn decode<T>(sql: &str, f: impl Fn(&Row<'_>) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        Connection::open_in_memory()
            .unwrap()
            .query_row(sql, [], |row| f(row))
    }

    #[test]
    fn unknown_stored_values_are_errors_that_name_them() {
        let kind = decode("SELECT 'weird'", |r| crl_kind_at(r, 0)).unwrap_err();
        assert!(
            kind.to_string()
                .contains("unknown stored CRL kind \"weird\""),
            "{kind}"
        );
        assert_eq!(
            decode("SELECT 'delta'", |r| crl_kind_at(r, 0)).unwrap(),
            CrlKind::Delta
        );
        let status = decode("SELECT 'lost', NULL", |r| status_at(r, 0)).unwrap_err();
        assert!(
            status.to_string().contains("unknown stored status lost"),
            "{status}"
        );
        let missing = decode("SELECT NULL, NULL", |r| status_at(r, 0)).unwrap_err();
        assert!(
            missing.to_string().contains("a status is missing"),
            "{missing}"
        );
        let serial = decode("SELECT 'zz'", |r| serial_at(r, 0)).unwrap_err();
        assert!(serial.to_string().contains("serial zz"), "{serial}");
    }
}
