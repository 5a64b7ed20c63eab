//! Idempotent use cases (SPEC §7 `Idempotency-Key`): the answer to remember
//! is rendered from the use case's result and stored with the key in the
//! transaction of the change, and a key already answered ends the use case
//! with that answer and no change.

use std::convert::Infallible;

use time::OffsetDateTime;

use super::{Authority, AuthorityError};
use crate::store::idempotency::{IdempotencyKey, Remembered, SentAnswer};
use crate::store::{Change, StoreError};

/// Makes a use case idempotent.
pub struct Idempotency<'a, T> {
    pub key: &'a IdempotencyKey,
    /// The answer the caller sends for this result (e.g. HTTP status and
    /// JSON). A result that cannot be rendered fails the use case: nothing
    /// is committed, so no empty answer is ever remembered.
    pub answer: &'a dyn Fn(&T) -> Result<SentAnswer, AuthorityError>,
}

/// What an idempotent use case did. `R` is what a replay carries: a
/// [`Remembered`] answer, or [`Infallible`] for a use case run without a
/// key, which cannot be a replay.
#[derive(Debug)]
pub enum Outcome<T, R = Remembered> {
    /// The change happened (and its answer is remembered, if a key was given).
    Done(T),
    /// The key was answered before: nothing changed. The caller checks that
    /// the remembered request is this one ([`Remembered::answers`]).
    Replayed(R),
}

impl<T> Outcome<T, Infallible> {
    /// The result of a use case run without a key.
    pub(super) fn done(self) -> T {
        match self {
            Self::Done(value) => value,
            Self::Replayed(never) => match never {},
        }
    }
}

/// How a change is made idempotent, or not at all.
pub(super) trait Once<T> {
    type Replay;

    /// The answer already given for this key, if any.
    fn recall(
        &self,
        change: &Change<'_>,
        alive_since: OffsetDateTime,
    ) -> Result<Option<Self::Replay>, AuthorityError>;

    /// Remembers the answer to `value` in the change that produced it.
    fn remember(
        &self,
        change: &Change<'_>,
        value: &T,
        now: OffsetDateTime,
        alive_since: OffsetDateTime,
    ) -> Result<(), AuthorityError>;
}

/// A change with no key.
pub(super) struct NoKey;

impl<T> Once<T> for NoKey {
    type Replay = Infallible;

    fn recall(
        &self,
        _: &Change<'_>,
        _: OffsetDateTime,
    ) -> Result<Option<Infallible>, AuthorityError> {
        Ok(None)
    }

    fn remember(
        &self,
        _: &Change<'_>,
        _: &T,
        _: OffsetDateTime,
        _: OffsetDateTime,
    ) -> Result<(), AuthorityError> {
        Ok(())
    }
}

impl<T> Once<T> for Option<&Idempotency<'_, T>> {
    type Replay = Remembered;

    fn recall(
        &self,
        change: &Change<'_>,
        alive_since: OffsetDateTime,
    ) -> Result<Option<Remembered>, AuthorityError> {
        match self {
            Some(once) => Ok(change.recall_answer(once.key, alive_since)?),
            None => Ok(None),
        }
    }

    fn remember(
        &self,
        change: &Change<'_>,
        value: &T,
        now: OffsetDateTime,
        alive_since: OffsetDateTime,
    ) -> Result<(), AuthorityError> {
        if let Some(once) = self {
            change.remember_answer(once.key, &(once.answer)(value)?, now, alive_since)?;
        }
        Ok(())
    }
}

impl Authority {
    /// Runs `change` as one atomic change. With a key, a remembered answer
    /// ends it before any change, and otherwise the answer to its result is
    /// remembered in the same transaction.
    pub(super) fn commit<T, O, E>(
        &self,
        once: &O,
        now: OffsetDateTime,
        change: impl FnOnce(&Change<'_>) -> Result<T, E>,
    ) -> Result<Outcome<T, O::Replay>, E>
    where
        O: Once<T>,
        E: From<StoreError> + From<AuthorityError>,
    {
        let alive_since = now - self.config.idempotency_ttl;
        self.store.write(|tx| {
            if let Some(prior) = once.recall(tx, alive_since)? {
                return Ok(Outcome::Replayed(prior));
            }
            let value = change(tx)?;
            once.remember(tx, &value, now, alive_since)?;
            Ok(Outcome::Done(value))
        })
    }

    /// The live answer remembered for a key, if any (a read: no lock taken).
    pub fn recall(&self, key: &IdempotencyKey) -> Result<Option<Remembered>, AuthorityError> {
        let alive_since = self.now() - self.config.idempotency_ttl;
        Ok(self
            .store
            .with_reader(|snapshot| snapshot.recall_answer(key, alive_since))?)
    }

    /// Remembers the answer to a refused request (nothing changed), unless
    /// the key was answered meanwhile, in which case that answer stands.
    pub fn remember_refusal(
        &self,
        key: &IdempotencyKey,
        answer: SentAnswer,
    ) -> Result<Outcome<SentAnswer>, AuthorityError> {
        let once = Idempotency {
            key,
            answer: &|answer: &SentAnswer| Ok(answer.clone()),
        };
        self.commit(&Some(&once), self.now(), |_| -> Result<_, AuthorityError> {
            Ok(answer)
        })
    }
}
