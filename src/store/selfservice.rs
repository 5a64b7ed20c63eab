//! The self-service page's own rows: failed attempts, counted per action
//! and per card number or client address so that throttling survives a
//! restart, and the secret key its CSRF tokens are signed with.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::{Change, Snapshot, StoreError, from_unix, to_unix};
use crate::domain::lockout::{CardAction, FailureScope};

/// The `scope` column.
fn scope_name(scope: FailureScope) -> &'static str {
    match scope {
        FailureScope::Card => "card",
        FailureScope::Client => "client",
    }
}

impl Snapshot<'_> {
    /// The failed attempts at `action` against `key` in `scope` at or after
    /// `since`, oldest first.
    pub fn failures_since(
        &self,
        action: CardAction,
        scope: FailureScope,
        key: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<OffsetDateTime>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at FROM selfservice_failures
             WHERE action = ?1 AND scope = ?2 AND key = ?3 AND at >= ?4 ORDER BY at",
        )?;
        let times = stmt
            .query_map(
                params![action.name(), scope_name(scope), key, to_unix(since)],
                |r| r.get::<_, i64>(0),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        times.into_iter().map(from_unix).collect()
    }
}

impl Change<'_> {
    /// Records one failed attempt at `action` against `key` in `scope`.
    pub fn record_failure(
        &self,
        action: CardAction,
        scope: FailureScope,
        key: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO selfservice_failures (action, scope, key, at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![action.name(), scope_name(scope), key, to_unix(at)])?;
        Ok(())
    }

    /// Forgets failed attempts older than `before`: they can no longer lock anything.
    pub fn purge_failures_before(&self, before: OffsetDateTime) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM selfservice_failures WHERE at < ?1")?
            .execute([to_unix(before)])?;
        Ok(())
    }

    /// The secret named `name`, creating it from `fresh` on first use. Two
    /// processes racing to create it agree on the first one committed.
    pub fn secret_or_insert(
        &self,
        name: &str,
        fresh: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO selfservice_keys (name, secret, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO NOTHING",
            )?
            .execute(params![name, fresh, to_unix(now)])?;
        self.conn
            .prepare_cached("SELECT secret FROM selfservice_keys WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Corrupt(format!("self-service key {name} vanished")))
    }
}
