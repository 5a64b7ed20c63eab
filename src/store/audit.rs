//! The audit log as a hash chain (SPEC §10): each record carries the SHA-256
//! of the one before, so an edited, deleted or reordered record breaks the
//! chain at a place `eidca audit verify` can name.

use ring::digest::{Context, SHA256};
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use serde::Serialize;

use super::{Change, Snapshot, StoreError, to_unix};
use crate::domain::Serial;
use crate::revocation::CrlSummary;

/// The hash the first record points back to.
const GENESIS: [u8; 32] = [0; 32];

/// One audit record before it is chained.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub at: OffsetDateTime,
    /// Who: a token name, `cli`, `self-service`, `publisher`.
    pub actor: &'a str,
    /// What: `issue`, `suspend`, `resume`, `revoke`, `publish-crl`.
    pub action: &'a str,
    /// On what: a serial, a card number, a CRL number.
    pub subject: &'a str,
    /// A JSON object with the rest (never a token, a key or a CSR).
    pub detail: &'a str,
}

/// What happened, as the audit log records it: one variant per kind of
/// change, each with the fields an auditor needs (never a token, a key, a
/// CSR or a note). Fields are declared in alphabetical order, the order of
/// the JSON `detail` written before events were typed, so records stay
/// byte-for-byte alike across versions.
#[derive(Debug, Clone)]
pub enum AuditEvent<'a> {
    Issued(Issued<'a>),
    StatusChanged(StatusChanged<'a>),
    CrlPublished(CrlPublished<'a>),
}

/// A certificate was issued.
#[derive(Debug, Clone, Serialize)]
pub struct Issued<'a> {
    #[serde(skip)]
    pub serial: &'a Serial,
    pub card_number: &'a str,
    /// SHA-256 of the certificate's DER, hex.
    pub certificate_sha256: String,
    pub channel: &'static str,
    /// RFC 3339.
    pub not_after: String,
    pub profile: &'a str,
    pub subscriber_code: &'a str,
}

/// A certificate was suspended, resumed or revoked.
#[derive(Debug, Clone, Serialize)]
pub struct StatusChanged<'a> {
    #[serde(skip)]
    pub serial: &'a Serial,
    /// `suspend`, `resume` or `revoke`.
    #[serde(skip)]
    pub action: &'static str,
    pub card_number: &'a str,
    pub channel: &'static str,
    pub from: &'static str,
    /// The CRL reason of the new status, if it is listed.
    pub reason: Option<&'static str>,
    pub to: &'static str,
}

/// A CRL was published.
#[derive(Debug, Clone, Serialize)]
pub struct CrlPublished<'a> {
    #[serde(skip)]
    pub summary: &'a CrlSummary,
    pub base_number: Option<u64>,
    pub entries: u64,
    pub kind: &'static str,
    /// RFC 3339.
    pub next_update: String,
    /// SHA-256 of the CRL's DER, hex.
    pub sha256: String,
    /// RFC 3339.
    pub this_update: String,
}

impl AuditEvent<'_> {
    fn action(&self) -> &'static str {
        match self {
            Self::Issued(_) => "issue",
            Self::StatusChanged(e) => e.action,
            Self::CrlPublished(_) => "publish-crl",
        }
    }

    fn subject(&self) -> String {
        match self {
            Self::Issued(e) => e.serial.to_hex(),
            Self::StatusChanged(e) => e.serial.to_hex(),
            Self::CrlPublished(e) => e.summary.number.to_string(),
        }
    }

    fn detail(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::Issued(e) => serde_json::to_string(e),
            Self::StatusChanged(e) => serde_json::to_string(e),
            Self::CrlPublished(e) => serde_json::to_string(e),
        }
    }
}

/// The first record that does not fit the chain, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit record {id}: {problem}")]
pub struct ChainBreak {
    pub id: i64,
    pub problem: String,
}

fn record_hash(
    prev: &[u8],
    id: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Vec<u8> {
    let mut ctx = Context::new(&SHA256);
    ctx.update(prev);
    ctx.update(&id.to_be_bytes());
    ctx.update(&at.to_be_bytes());
    // Length prefixes keep field boundaries unambiguous.
    for field in [actor, action, subject, detail] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    ctx.finish().as_ref().to_vec()
}

impl Snapshot<'_> {
    /// Walks the whole chain; returns the number of records, or the first break.
    pub fn verify_audit(&self) -> Result<Result<u64, ChainBreak>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, actor, action, subject, detail, prev_hash, hash FROM audit_log ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut expected_prev = GENESIS.to_vec();
        let mut expected_id = 1i64;
        let mut count = 0u64;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let at: i64 = row.get(1)?;
            let (actor, action, subject, detail): (String, String, String, String) =
                (row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?);
            let prev: Vec<u8> = row.get(6)?;
            let hash: Vec<u8> = row.get(7)?;
            let fail = |problem: String| Ok(Err(ChainBreak { id, problem }));
            if id != expected_id {
                return fail(format!(
                    "expected record {expected_id} here: a record was deleted or renumbered"
                ));
            }
            if prev != expected_prev {
                return fail("its previous-hash does not match the record before it: a record was deleted, inserted or reordered".into());
            }
            if record_hash(&prev, id, at, &actor, &action, &subject, &detail) != hash {
                return fail("its content does not match its hash: the record was edited".into());
            }
            expected_prev = hash;
            expected_id += 1;
            count += 1;
        }
        Ok(Ok(count))
    }
}

impl Change<'_> {
    /// Records `event`, done by `actor` at `at`, inside this change.
    pub fn audit(
        &self,
        at: OffsetDateTime,
        actor: &str,
        event: &AuditEvent<'_>,
    ) -> Result<i64, StoreError> {
        let detail = event.detail()?;
        self.append_audit(&AuditEntry {
            at,
            actor,
            action: event.action(),
            subject: &event.subject(),
            detail: &detail,
        })
    }

    /// Appends a record inside the caller's transaction (the one that makes the change).
    fn append_audit(&self, entry: &AuditEntry<'_>) -> Result<i64, StoreError> {
        let last: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (id, prev) = match last {
            Some((id, hash)) => (id + 1, hash),
            None => (1, GENESIS.to_vec()),
        };
        let at = to_unix(entry.at);
        let hash = record_hash(
            &prev,
            id,
            at,
            entry.actor,
            entry.action,
            entry.subject,
            entry.detail,
        );
        self.conn
            .prepare_cached(
                "INSERT INTO audit_log (id, at, actor, action, subject, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                id,
                at,
                entry.actor,
                entry.action,
                entry.subject,
                entry.detail,
                prev,
                hash
            ])?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    use rusqlite::Connection;

    fn verify(conn: &Connection) -> Result<Result<u64, ChainBreak>, StoreError> {
        Snapshot { conn }.verify_audit()
    }

    fn chain(n: usize) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        for i in 0..n {
            let subject = format!("serial-{i}");
            Change(Snapshot { conn: &conn })
                .append_audit(&AuditEntry {
                    at: datetime!(2026-01-01 0:00 UTC),
                    actor: "cli",
                    action: "suspend",
                    subject: &subject,
                    detail: "{}",
                })
                .unwrap();
        }
        conn
    }

    #[test]
    fn intact_chain_verifies_with_its_count() {
        assert_eq!(verify(&chain(5)).unwrap(), Ok(5));
        assert_eq!(verify(&chain(0)).unwrap(), Ok(0));
    }

    #[test]
    fn edit_delete_and_swap_name_the_record() {
        let conn = chain(5);
        conn.execute("UPDATE audit_log SET subject = 'x' WHERE id = 3", [])
            .unwrap();
        assert_eq!(verify(&conn).unwrap().unwrap_err().id, 3);

        let conn = chain(5);
        conn.execute("DELETE FROM audit_log WHERE id = 2", [])
            .unwrap();
        assert_eq!(verify(&conn).unwrap().unwrap_err().id, 3);

        let conn = chain(5);
        conn.execute_batch(
            "UPDATE audit_log SET id = 100 WHERE id = 2;
             UPDATE audit_log SET id = 2 WHERE id = 4;
             UPDATE audit_log SET id = 4 WHERE id = 100;",
        )
        .unwrap();
        assert_eq!(verify(&conn).unwrap().unwrap_err().id, 2);
    }
}
