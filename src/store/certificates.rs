//! Subscribers, cards, certificates and their status history.

use rusqlite::{OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::rows::{channel_at, serial_at, status_at, time_at};
use super::{Change, Snapshot, StoreError, to_unix};
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
    /// The channel of that change: who suspended a suspended certificate.
    pub status_channel: Channel,
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

/// The certificate's columns, and the channel of the change that set its
/// status (one primary-key lookup in the history).
const COLUMNS: &str = "serial, subscriber_code, card_number, profile, not_before, not_after, der, status, reason, status_since, status_seq,
     (SELECT channel FROM status_changes WHERE seq = certificates.status_seq)";

fn certificate_from_row(row: &Row<'_>) -> rusqlite::Result<CertificateRow> {
    Ok(CertificateRow {
        serial: serial_at(row, 0)?,
        subscriber_code: row.get(1)?,
        card_number: row.get(2)?,
        profile: row.get(3)?,
        not_before: time_at(row, 4)?,
        not_after: time_at(row, 5)?,
        der: row.get(6)?,
        status: status_at(row, 7)?,
        status_since: time_at(row, 9)?,
        status_seq: row.get(10)?,
        status_channel: channel_at(row, 11)?,
    })
}

/// The status of one certificate as OCSP needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusVersion {
    pub status: CertStatus,
    pub since: OffsetDateTime,
    pub version: i64,
}

impl Snapshot<'_> {
    /// Whether this serial is already taken (issued, or reserved by a failed attempt).
    pub fn serial_exists(&self, serial: &Serial) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM certificates WHERE serial = ?1")?
            .query_row([serial.to_hex()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM certificates WHERE serial = ?1"
            ))?
            .query_row([serial.to_hex()], certificate_from_row)
            .optional()?)
    }

    /// All certificates of a card, oldest first; `None` if the card is unknown.
    pub fn certificates_of_card(
        &self,
        card_number: &str,
    ) -> Result<Option<Vec<CertificateRow>>, StoreError> {
        let known = self
            .conn
            .prepare_cached("SELECT 1 FROM cards WHERE card_number = ?1")?
            .query_row([card_number], |_| Ok(()))
            .optional()?;
        if known.is_none() {
            return Ok(None);
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM certificates WHERE card_number = ?1 ORDER BY not_before, serial"
        ))?;
        let rows = stmt.query_map([card_number], certificate_from_row)?;
        Ok(Some(rows.collect::<Result<_, _>>()?))
    }

    /// The owner of a card, if the card exists.
    pub fn card_owner(&self, card_number: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT subscriber_code FROM cards WHERE card_number = ?1")?
            .query_row([card_number], |r| r.get(0))
            .optional()?)
    }

    /// All certificates of a subscriber, oldest first; `None` if the subscriber is unknown.
    pub fn certificates_of_subscriber(
        &self,
        code: &str,
    ) -> Result<Option<Vec<CertificateRow>>, StoreError> {
        let known = self
            .conn
            .prepare_cached("SELECT 1 FROM subscribers WHERE code = ?1")?
            .query_row([code], |_| Ok(()))
            .optional()?;
        if known.is_none() {
            return Ok(None);
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM certificates WHERE subscriber_code = ?1 ORDER BY not_before, serial"
        ))?;
        let rows = stmt.query_map([code], certificate_from_row)?;
        Ok(Some(rows.collect::<Result<_, _>>()?))
    }

    /// One indexed lookup: the current status and its version (the OCSP hot path).
    pub fn status_version(&self, serial_hex: &str) -> Result<Option<StatusVersion>, StoreError> {
        Ok(self.conn
            .prepare_cached(
                "SELECT status, reason, status_since, status_seq FROM certificates WHERE serial = ?1",
            )?
            .query_row([serial_hex], |row| {
                Ok(StatusVersion {
                    status: status_at(row, 0)?,
                    since: time_at(row, 2)?,
                    version: row.get(3)?,
                })
            })
            .optional()?)
    }

    /// Counts of certificates by status, for metrics.
    pub fn count_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT status, COUNT(*) FROM certificates GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Change<'_> {
    /// The certificate this change has just written. Its absence is an
    /// inconsistency of the store (a 500), never a "not found" for the
    /// caller: a refusal would be remembered under an idempotency key.
    pub fn written_certificate(&self, serial: &Serial) -> Result<CertificateRow, StoreError> {
        self.certificate(serial)?.ok_or_else(|| {
            StoreError::Corrupt(format!("certificate {serial} vanished while written"))
        })
    }

    /// Records the subscriber (updating the name the RA gives) and the card;
    /// refuses a card already registered to someone else.
    pub fn register_subscriber_and_card(
        &self,
        code: &str,
        name: &str,
        card_number: &str,
        now: OffsetDateTime,
    ) -> Result<(), RegistrationError> {
        self.conn
            .prepare_cached(
                "INSERT INTO subscribers (code, name, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(code) DO UPDATE SET name = excluded.name",
            )?
            .execute(params![code, name, to_unix(now)])?;
        let owner: Option<String> = self
            .conn
            .prepare_cached("SELECT subscriber_code FROM cards WHERE card_number = ?1")?
            .query_row([card_number], |r| r.get(0))
            .optional()?;
        match owner {
            Some(owner) if owner != code => Err(RegistrationError::CardOfAnotherSubscriber {
                card_number: card_number.to_owned(),
            }),
            Some(_) => Ok(()),
            None => {
                self.conn.prepare_cached(
                    "INSERT INTO cards (card_number, subscriber_code, created_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![card_number, code, to_unix(now)])?;
                Ok(())
            }
        }
    }

    /// Stores a newly issued certificate with status good and its first
    /// history row (which replaces no status). Returns the row's sequence number.
    pub fn insert_certificate(
        &self,
        cert: &NewCertificate<'_>,
        channel: Channel,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let serial = cert.serial.to_hex();
        self.conn.prepare_cached(
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
        self.conn
            .prepare_cached(
                "INSERT INTO status_changes (serial, at, status, reason, action, channel, note)
             VALUES (?1, ?2, 'good', NULL, 'issue', ?3, NULL)",
            )?
            .execute(params![serial, to_unix(now), channel.name()])?;
        let seq = self.conn.last_insert_rowid();
        self.conn
            .prepare_cached("UPDATE certificates SET status_seq = ?2 WHERE serial = ?1")?
            .execute(params![serial, seq])?;
        Ok(seq)
    }

    /// Writes a status change (`action`: suspend, resume, revoke) to the
    /// history, together with the status it replaces, and makes it the current
    /// status. Returns the change's sequence number (the new status version).
    pub fn record_status(
        &self,
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
        let inserted = self
            .conn
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
        let seq = self.conn.last_insert_rowid();
        self.conn.prepare_cached(
            "UPDATE certificates SET status = ?2, reason = ?3, status_since = ?4, status_seq = ?5 WHERE serial = ?1",
        )?
        .execute(params![serial, status.name(), reason, to_unix(at), seq])?;
        Ok(seq)
    }
}
