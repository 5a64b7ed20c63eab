//! Versioned schema migrations. Each entry runs once, in order, inside one
//! transaction with the version bump; the version lives in `user_version`.

use rusqlite::Connection;

use super::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: the domain model, status history, CRLs and the audit chain.
    r#"
    CREATE TABLE subscribers (
        code        TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE cards (
        card_number     TEXT PRIMARY KEY,
        subscriber_code TEXT NOT NULL REFERENCES subscribers(code),
        created_at      INTEGER NOT NULL
    );
    -- status_seq is the status_changes row that set the current status: the
    -- version an OCSP cache entry is checked against.
    CREATE TABLE certificates (
        serial          TEXT PRIMARY KEY,
        subscriber_code TEXT NOT NULL REFERENCES subscribers(code),
        card_number     TEXT NOT NULL REFERENCES cards(card_number),
        profile         TEXT NOT NULL,
        not_before      INTEGER NOT NULL,
        not_after       INTEGER NOT NULL,
        der             BLOB NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('good', 'suspended', 'revoked')),
        reason          INTEGER,
        status_since    INTEGER NOT NULL,
        status_seq      INTEGER NOT NULL
    );
    CREATE INDEX certificates_by_card ON certificates(card_number);
    CREATE INDEX certificates_by_subscriber ON certificates(subscriber_code);
    -- The full CRL reads only listed certificates, in one index range.
    CREATE INDEX certificates_listed ON certificates(status, not_after, serial, reason, status_since)
        WHERE status != 'good';
    -- Every status a certificate ever had, issuance included. AUTOINCREMENT:
    -- a sequence number is never reused, even after the newest row is gone.
    CREATE TABLE status_changes (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        serial  TEXT NOT NULL REFERENCES certificates(serial),
        at      INTEGER NOT NULL,
        status  TEXT NOT NULL,
        reason  INTEGER,
        action  TEXT NOT NULL CHECK (action IN ('issue', 'suspend', 'resume', 'revoke')),
        channel TEXT NOT NULL,
        note    TEXT
    );
    CREATE INDEX status_changes_by_serial ON status_changes(serial, seq);
    -- covers_seq: the newest status change the CRL reflects.
    CREATE TABLE crls (
        number      INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('full', 'delta')),
        base_number INTEGER REFERENCES crls(number),
        this_update INTEGER NOT NULL,
        next_update INTEGER NOT NULL,
        covers_seq  INTEGER NOT NULL,
        entries     INTEGER NOT NULL,
        der         BLOB NOT NULL
    );
    CREATE INDEX crls_by_kind ON crls(kind, number);
    CREATE TABLE audit_log (
        id        INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        subject   TEXT NOT NULL,
        detail    TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash      BLOB NOT NULL
    );
    CREATE TABLE idempotency_keys (
        key          TEXT PRIMARY KEY,
        request_hash BLOB NOT NULL,
        status       INTEGER NOT NULL,
        body         BLOB NOT NULL,
        created_at   INTEGER NOT NULL
    );
    "#,
    // 2: the self-service page's failed attempts (throttling and lock-out
    // survive restarts) and its CSRF key.
    r#"
    CREATE TABLE selfservice_failures (
        id     INTEGER PRIMARY KEY,
        scope  TEXT NOT NULL CHECK (scope IN ('card', 'client')),
        key    TEXT NOT NULL,
        at     INTEGER NOT NULL
    );
    CREATE INDEX selfservice_failures_by_key ON selfservice_failures(scope, key, at);
    CREATE INDEX selfservice_failures_by_time ON selfservice_failures(at);
    CREATE TABLE selfservice_keys (
        name        TEXT PRIMARY KEY,
        secret      BLOB NOT NULL,
        created_at  INTEGER NOT NULL
    );
    "#,
    // 3: idempotency keys belong to one RA token (two tokens may pick the
    // same key) and expire; the table of migration 1 was never written to.
    r#"
    DROP TABLE idempotency_keys;
    CREATE TABLE idempotency_keys (
        principal    TEXT NOT NULL,
        key          TEXT NOT NULL,
        request_hash BLOB NOT NULL,
        status       INTEGER NOT NULL,
        body         BLOB NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (principal, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);
    "#,
    // 4: each status change records the status it replaced, so that a delta
    // CRL reads every certificate's status at its base from the first change
    // after the base: one range of the primary key, no lookup per
    // certificate. Rows written before this migration are filled in from
    // the row before them.
    r#"
    ALTER TABLE status_changes ADD COLUMN prev_status TEXT;
    ALTER TABLE status_changes ADD COLUMN prev_reason INTEGER;
    ALTER TABLE status_changes ADD COLUMN prev_at INTEGER;
    UPDATE status_changes SET (prev_status, prev_reason, prev_at) = (
        SELECT p.status, p.reason, p.at FROM status_changes p
        WHERE p.serial = status_changes.serial AND p.seq < status_changes.seq
        ORDER BY p.seq DESC LIMIT 1);
    "#,
    // 5: self-service failures are counted per action (SPEC §16: suspend
    // and resume apart). Which action the earlier rows were is not known;
    // they count as resume failures, the stricter rule.
    r#"
    ALTER TABLE selfservice_failures ADD COLUMN action TEXT NOT NULL DEFAULT 'resume'
        CHECK (action IN ('suspend', 'resume'));
    DROP INDEX selfservice_failures_by_key;
    CREATE INDEX selfservice_failures_by_key ON selfservice_failures(action, scope, key, at);
    "#,
];

/// Brings the schema to the newest version; refuses a database from a newer eidca.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > known {
            return Err(StoreError::SchemaTooNew {
                found: version,
                known,
            });
        }
        if version == known {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[version as usize])?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (status, prev_status, prev_reason, prev_at) of each change, in order.
    type Replaced = (String, Option<String>, Option<i64>, Option<i64>);

    fn history(conn: &Connection) -> Vec<Replaced> {
        conn.prepare(
            "SELECT status, prev_status, prev_reason, prev_at FROM status_changes ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn migration_4_fills_in_the_status_each_existing_change_replaced() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO subscribers VALUES ('A800000014', 'Test', 0);
             INSERT INTO cards VALUES ('TP03000001', 'A800000014', 0);
             INSERT INTO certificates VALUES ('4a', 'A800000014', 'TP03000001', 'p', 0, 99, x'30', 'revoked', 1, 30, 3);
             INSERT INTO status_changes (serial, at, status, reason, action, channel)
             VALUES ('4a', 10, 'good', NULL, 'issue', 'cli'),
                    ('4a', 20, 'suspended', NULL, 'suspend', 'ra'),
                    ('4a', 30, 'revoked', 1, 'revoke', 'ra');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(
            history(&conn),
            [
                ("good".into(), None, None, None),
                ("suspended".into(), Some("good".into()), None, Some(10)),
                ("revoked".into(), Some("suspended".into()), None, Some(20)),
            ]
        );
    }
}
