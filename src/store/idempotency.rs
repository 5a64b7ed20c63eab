//! Answers remembered for `Idempotency-Key` retries (SPEC §7).
//!
//! A key belongs to one principal (an RA token name). Its row holds a hash
//! of the request and the answer given, and is written in the transaction
//! of the change it answers, so a committed change always has its answer
//! and a rolled-back one never does. Rows older than the configured time
//! to live are dead: never recalled, and purged as new ones are written.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::{Change, Snapshot, StoreError, to_unix};

/// One request's idempotency key: who sent it, the key, and what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub principal: String,
    pub key: String,
    /// SHA-256 of the request (method, path and canonical body).
    pub request_hash: [u8; 32],
}

/// An answer as the caller sent it: the status code of the caller's
/// protocol (HTTP, for the RA API) and the body. The store keeps both as
/// they are and interprets neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// An answer remembered for a key, with the hash of the request it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub request_hash: Vec<u8>,
    pub answer: SentAnswer,
}

impl Remembered {
    /// Whether `key` carries the very request this answer was for.
    pub fn answers(&self, key: &IdempotencyKey) -> bool {
        self.request_hash == key.request_hash
    }
}

impl Snapshot<'_> {
    /// The live answer remembered for `key`, if any; rows created before
    /// `alive_since` have expired.
    pub fn recall_answer(
        &self,
        key: &IdempotencyKey,
        alive_since: OffsetDateTime,
    ) -> Result<Option<Remembered>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT request_hash, status, body FROM idempotency_keys
                 WHERE principal = ?1 AND key = ?2 AND created_at >= ?3",
            )?
            .query_row(params![key.principal, key.key, to_unix(alive_since)], |r| {
                Ok(Remembered {
                    request_hash: r.get(0)?,
                    answer: SentAnswer {
                        status: r.get(1)?,
                        body: r.get(2)?,
                    },
                })
            })
            .optional()?)
    }
}

impl Change<'_> {
    /// Remembers `answer` for `key`. The caller has checked, in the same
    /// transaction, that no live answer exists; expired rows are purged first.
    pub fn remember_answer(
        &self,
        key: &IdempotencyKey,
        answer: &SentAnswer,
        now: OffsetDateTime,
        alive_since: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
            .execute([to_unix(alive_since)])?;
        self.conn.prepare_cached(
            "INSERT INTO idempotency_keys (principal, key, request_hash, status, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            key.principal,
            key.key,
            key.request_hash.as_slice(),
            answer.status,
            answer.body,
            to_unix(now)
        ])?;
        Ok(())
    }
}
