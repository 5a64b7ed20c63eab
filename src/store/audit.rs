//! The audit log as a hash chain (SPEC §10): each record carries the SHA-256
//! of the one before, so an edited, deleted or reordered record breaks the
//! chain at a place `eidca audit verify` can name.

use ring::digest::{Context, SHA256};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::{StoreError, to_unix};

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

/// Appends a record inside the caller's transaction (the one that makes the change).
pub fn append(conn: &Connection, entry: &AuditEntry<'_>) -> Result<i64, StoreError> {
    let last: Option<(i64, Vec<u8>)> = conn
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
    conn.prepare_cached(
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

/// Walks the whole chain; returns the number of records, or the first break.
pub fn verify(conn: &Connection) -> Result<Result<u64, ChainBreak>, StoreError> {
    let mut stmt = conn.prepare(
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn chain(n: usize) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        for i in 0..n {
            let subject = format!("serial-{i}");
            append(
                &conn,
                &AuditEntry {
                    at: datetime!(2026-01-01 0:00 UTC),
                    actor: "cli",
                    action: "suspend",
                    subject: &subject,
                    detail: "{}",
                },
            )
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
