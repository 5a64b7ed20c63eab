//! Subscribers, cards, certificates and their status history.

use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{StoreError, from_unix, to_unix};
use crate::domain::{CertStatus, Channel, Serial};

/// A certificate as stored.
#[derive(Debug, Clone)]
pub struct CertificateRow {
    pub serial: Serial,
    pub subscriber_code: String,
    pub card_number: String,
    pub profile: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub der: Vec<u8>,
    pub status: CertStatus,
    pub status_since: OffsetDateTime,
    /// The status change that set the current status (the status version).
    pub status_seq: i64,
}

/// A certificate about to be stored.
#[derive(Debug, Clone)]
pub struct NewCertificate<'a> {
    pub serial: &'a Serial,
    pub subscriber_code: &'a str,
    pub card_number: &'a str,
    pub profile: &'a str,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub der: &'a [u8],
}

/// Why a subscriber or card could not be recorded as asked.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("card {card_number} belongs to another subscriber")]
    CardOfAnotherSubscriber { card_number: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for RegistrationError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

const COLUMNS: &str = "serial, subscriber_code, card_number, profile, not_before, not_after, der, status, reason, status_since, status_seq";

fn status_from_row(row: &Row<'_>, status_col: usize) -> rusqlite::Result<CertStatus> {
    let name: String = row.get(status_col)?;
    let reason: Option<u8> = row.get(status_col + 1)?;
    CertStatus::from_stored(&name, reason).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            status_col,
            rusqlite::types::Type::Text,
            format!("bad stored status {name}/{reason:?}").into(),
        )
    })
}

fn serial_from_row(row: &Row<'_>, col: usize) -> rusqlite::Result<Serial> {
    let hex: String = row.get(col)?;
    hex.parse()
        .map_err(|e: crate::domain::serial::SerialError| {
            rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, e.into())
        })
}

fn time_from_row(row: &Row<'_>, col: usize) -> rusqlite::Result<OffsetDateTime> {
    let seconds: i64 = row.get(col)?;
    from_unix(seconds).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Integer, e.into())
    })
}

fn certificate_from_row(row: &Row<'_>) -> rusqlite::Result<CertificateRow> {
    Ok(CertificateRow {
        serial: serial_from_row(row, 0)?,
        subscriber_code: row.get(1)?,
        card_number: row.get(2)?,
        profile: row.get(3)?,
        not_before: time_from_row(row, 4)?,
        not_after: time_from_row(row, 5)?,
        der: row.get(6)?,
        status: status_from_row(row, 7)?,
        status_since: time_from_row(row, 9)?,
        status_seq: row.get(10)?,
    })
}

/// Records the subscriber (updating the name the RA gives) and the card;
/// refuses a card already registered to someone else.
pub fn upsert_subscriber_and_card(
    conn: &Connection,
    code: &str,
    name: &str,
    card_number: &str,
    now: OffsetDateTime,
) -> Result<(), RegistrationError> {
    conn.prepare_cached(
        "INSERT INTO subscribers (code, name, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(code) DO UPDATE SET name = excluded.name",
    )?
    .execute(params![code, name, to_unix(now)])?;
    let owner: Option<String> = conn
        .prepare_cached("SELECT subscriber_code FROM cards WHERE card_number = ?1")?
        .query_row([card_number], |r| r.get(0))
        .optional()?;
    match owner {
        Some(owner) if owner != code => Err(RegistrationError::CardOfAnotherSubscriber {
            card_number: card_number.to_owned(),
        }),
        Some(_) => Ok(()),
        None => {
            conn.prepare_cached(
                "INSERT INTO cards (card_number, subscriber_code, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![card_number, code, to_unix(now)])?;
            Ok(())
        }
    }
}

/// Whether this serial is already taken (issued, or reserved by a failed attempt).
pub fn serial_exists(conn: &Connection, serial: &Serial) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM certificates WHERE serial = ?1")?
        .query_row([serial.to_hex()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Stores a newly issued certificate with status good and its first
/// history row (which replaces no status). Returns the row's sequence number.
pub fn insert_certificate(
    conn: &Connection,
    cert: &NewCertificate<'_>,
    channel: Channel,
    now: OffsetDateTime,
) -> Result<i64, StoreError> {
    let serial = cert.serial.to_hex();
    conn.prepare_cached(
        "INSERT INTO certificates (serial, subscriber_code, card_number, profile, not_before, not_after, der,
                                   status, reason, status_since, status_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'good', NULL, ?8, 0)",
    )?
    .execute(params![
        serial,
        cert.subscriber_code,
        cert.card_number,
        cert.profile,
        to_unix(cert.not_before),
        to_unix(cert.not_after),
        cert.der,
        to_unix(now),
    ])?;
    conn.prepare_cached(
        "INSERT INTO status_changes (serial, at, status, reason, action, channel, note)
         VALUES (?1, ?2, 'good', NULL, 'issue', ?3, NULL)",
    )?
    .execute(params![serial, to_unix(now), channel.name()])?;
    let seq = conn.last_insert_rowid();
    conn.prepare_cached("UPDATE certificates SET status_seq = ?2 WHERE serial = ?1")?
        .execute(params![serial, seq])?;
    Ok(seq)
}

/// Writes a status change (`action`: suspend, resume, revoke) to the
/// history, together with the status it replaces, and makes it the current
/// status. Returns the change's sequence number (the new status version).
pub fn record_status(
    conn: &Connection,
    serial: &Serial,
    status: CertStatus,
    at: OffsetDateTime,
    action: &str,
    channel: Channel,
    note: Option<&str>,
) -> Result<i64, StoreError> {
    let serial = serial.to_hex();
    let reason = match status {
        CertStatus::Revoked(r) => Some(r.crl_reason().code()),
        _ => None,
    };
    // The replaced status is read in the same statement that records the
    // change, so it is the one the certificate really had.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO status_changes (serial, at, status, reason, action, channel, note,
                                         prev_status, prev_reason, prev_at)
             SELECT serial, ?2, ?3, ?4, ?5, ?6, ?7, status, reason, status_since
             FROM certificates WHERE serial = ?1",
        )?
        .execute(params![
            serial,
            to_unix(at),
            status.name(),
            reason,
            action,
            channel.name(),
            note
        ])?;
    if inserted != 1 {
        return Err(StoreError::Corrupt(format!(
            "status change for unknown serial {serial}"
        )));
    }
    let seq = conn.last_insert_rowid();
    conn.prepare_cached(
        "UPDATE certificates SET status = ?2, reason = ?3, status_since = ?4, status_seq = ?5 WHERE serial = ?1",
    )?
    .execute(params![serial, status.name(), reason, to_unix(at), seq])?;
    Ok(seq)
}

pub fn get_certificate(
    conn: &Connection,
    serial: &Serial,
) -> Result<Option<CertificateRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM certificates WHERE serial = ?1"
        ))?
        .query_row([serial.to_hex()], certificate_from_row)
        .optional()?)
}

/// All certificates of a card, oldest first; `None` if the card is unknown.
pub fn certificates_of_card(
    conn: &Connection,
    card_number: &str,
) -> Result<Option<Vec<CertificateRow>>, StoreError> {
    let known = conn
        .prepare_cached("SELECT 1 FROM cards WHERE card_number = ?1")?
        .query_row([card_number], |_| Ok(()))
        .optional()?;
    if known.is_none() {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM certificates WHERE card_number = ?1 ORDER BY not_before, serial"
    ))?;
    let rows = stmt.query_map([card_number], certificate_from_row)?;
    Ok(Some(rows.collect::<Result<_, _>>()?))
}

/// The owner of a card, if the card exists.
pub fn card_owner(conn: &Connection, card_number: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT subscriber_code FROM cards WHERE card_number = ?1")?
        .query_row([card_number], |r| r.get(0))
        .optional()?)
}

/// All certificates of a subscriber, oldest first; `None` if the subscriber is unknown.
pub fn certificates_of_subscriber(
    conn: &Connection,
    code: &str,
) -> Result<Option<Vec<CertificateRow>>, StoreError> {
    let known = conn
        .prepare_cached("SELECT 1 FROM subscribers WHERE code = ?1")?
        .query_row([code], |_| Ok(()))
        .optional()?;
    if known.is_none() {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM certificates WHERE subscriber_code = ?1 ORDER BY not_before, serial"
    ))?;
    let rows = stmt.query_map([code], certificate_from_row)?;
    Ok(Some(rows.collect::<Result<_, _>>()?))
}

/// The status of one certificate as OCSP needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusVersion {
    pub status: CertStatus,
    pub since: OffsetDateTime,
    pub version: i64,
}

/// One indexed lookup: the current status and its version (the OCSP hot path).
pub fn status_version(
    conn: &Connection,
    serial_hex: &str,
) -> Result<Option<StatusVersion>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT status, reason, status_since, status_seq FROM certificates WHERE serial = ?1",
        )?
        .query_row([serial_hex], |row| {
            Ok(StatusVersion {
                status: status_from_row(row, 0)?,
                since: time_from_row(row, 2)?,
                version: row.get(3)?,
            })
        })
        .optional()?)
}

/// Counts of certificates by status, for metrics.
pub fn count_by_status(conn: &Connection) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT status, COUNT(*) FROM certificates GROUP BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
