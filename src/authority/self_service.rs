//! The subscriber's own use case (SPEC §7, "Self-service"): suspend or
//! resume every certificate of a card, proving only knowledge of the
//! subscriber code that owns the card number.
//!
//! Rules:
//! * a wrong code, an unknown card, or a pair that does not belong together
//!   is one and the same [`CardOutcome::PairNotRecognised`], reached by the
//!   same work (lookup, constant-time comparison, failure records);
//! * failures are counted in the store per action, per card number and per
//!   client address, and checked by the rules of [`Throttle`] (resume in
//!   full; suspend per address, and per card only against a daily ceiling,
//!   so that nobody can stop an owner from suspending); a locked counter
//!   gets [`CardOutcome::Locked`] before the pair is even looked at, so the
//!   right pair is refused too while locked;
//! * the lock check, the pair check and the failure records happen in one
//!   write transaction, so parallel guesses cannot overrun the limit.

use ring::digest::{SHA256, digest};
use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::{Actor, Authority, AuthorityError, CertificateRecord};
use crate::domain::lifecycle::is_expired;
pub use crate::domain::lockout::CardAction;
use crate::domain::lockout::{FailureScope, LockoutPolicy, Throttle};
use crate::domain::{CertStatus, Channel};
use crate::store::Change;
use crate::store::certificates::CertificateRow;

/// The audit log's actor for every self-service change.
const ACTOR: &str = "self-service";

/// The name of the secret that signs the page's forms in the store.
const FORM_SECRET: &str = "csrf";

/// One submitted form, already checked for format.
#[derive(Debug, Clone)]
pub struct CardRequest {
    pub subscriber_code: String,
    pub card_number: String,
    pub action: CardAction,
    /// The client's address, as failures are counted against it.
    pub client: String,
}

/// A certificate whose status the request changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedCertificate {
    pub profile: String,
    pub serial: String,
    pub status: &'static str,
}

/// Why the right pair still changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every current certificate is revoked: a new card must be applied for
    /// at a registration window.
    Revoked,
    /// Suspend asked, nothing is good (all suspended or revoked).
    AlreadySuspended,
    /// Resume asked, nothing is suspended.
    NotSuspended,
    /// The card has no certificate that has not expired.
    NoCurrentCertificate,
    /// Resume asked, but a suspension was made by an officer (RA,
    /// emergency channel or CLI): only an officer may lift it.
    ResumeAtRegistrationWindow,
}

/// The answer to a [`CardRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardOutcome {
    Changed {
        certificates: Vec<ChangedCertificate>,
        at: OffsetDateTime,
    },
    Refused(Refusal),
    PairNotRecognised,
    Locked {
        until: OffsetDateTime,
    },
}

/// The first, serialised step: lock check, pair check, failure records.
enum Check {
    Locked(OffsetDateTime),
    WrongPair,
    Owner(Vec<CertificateRow>),
}

impl Authority {
    /// The self-service throttling rules (`[selfservice]`).
    pub fn throttle(&self) -> Throttle {
        let c = self.config.selfservice;
        Throttle {
            lockout: LockoutPolicy {
                max_failures: c.max_failures,
                failure_window: c.failure_window,
                lockout: c.lockout,
            },
            suspend_card_ceiling: c.suspend_card_ceiling,
        }
    }

    /// Handles one self-service request. Blocking (SQLite): call from
    /// `spawn_blocking`.
    pub fn change_card_by_subscriber(
        &self,
        request: &CardRequest,
    ) -> Result<CardOutcome, AuthorityError> {
        let throttle = self.throttle();
        let now = self.now();
        let check = self
            .store
            .write(|change| check_pair(change, &throttle, request, now))?;
        let before = match check {
            Check::Locked(until) => return Ok(CardOutcome::Locked { until }),
            Check::WrongPair => {
                tracing::info!(client = %request.client, "self-service: pair not recognised");
                return Ok(CardOutcome::PairNotRecognised);
            }
            Check::Owner(before) => before,
        };
        let actor = Actor {
            name: ACTOR,
            channel: Channel::SelfService,
        };
        let note = format!(
            "self-service {} from {}",
            request.action.name(),
            request.client
        );
        match self.change_card(
            &request.card_number,
            request.action.transition(),
            Some(&note),
            actor,
        ) {
            Ok(after) => Ok(CardOutcome::Changed {
                certificates: changed(&before, &after),
                at: self.now(),
            }),
            Err(AuthorityError::NoEligibleCertificate { .. }) => Ok(CardOutcome::Refused(refusal(
                &before,
                request.action,
                self.now(),
            ))),
            Err(AuthorityError::LiftOnlyByOfficer { .. }) => {
                Ok(CardOutcome::Refused(Refusal::ResumeAtRegistrationWindow))
            }
            Err(e) => Err(e),
        }
    }

    /// The secret that signs the self-service forms, created in the store on
    /// first use (two processes racing agree on the first one committed) and
    /// kept for the life of this authority. Blocking: call from `spawn_blocking`.
    pub fn form_secret(&self) -> Result<Vec<u8>, AuthorityError> {
        if let Some(secret) = self.form_secret.get() {
            return Ok(secret.clone());
        }
        let mut fresh = [0u8; 32];
        self.rng
            .fill(&mut fresh)
            .map_err(|_| AuthorityError::Random)?;
        let now = self.now();
        let secret = self
            .store
            .write(|change| change.secret_or_insert(FORM_SECRET, &fresh, now))?;
        Ok(self.form_secret.get_or_init(|| secret).clone())
    }
}

fn check_pair(
    change: &Change<'_>,
    throttle: &Throttle,
    request: &CardRequest,
    now: OffsetDateTime,
) -> Result<Check, AuthorityError> {
    let key_of = |scope| match scope {
        FailureScope::Card => request.card_number.as_str(),
        FailureScope::Client => request.client.as_str(),
    };
    let limits = throttle.limits(request.action);
    let mut locked_until = None;
    for (scope, limit) in limits {
        let recent =
            change.failures_since(request.action, scope, key_of(scope), limit.horizon(now))?;
        locked_until = locked_until.max(limit.locked_until(&recent, now));
    }
    if let Some(until) = locked_until {
        return Ok(Check::Locked(until));
    }
    let owner = change.card_owner(&request.card_number)?;
    if !same_code(owner.as_deref(), &request.subscriber_code) {
        for (scope, _) in limits {
            change.record_failure(request.action, scope, key_of(scope), now)?;
        }
        change.purge_failures_before(throttle.horizon(now))?;
        return Ok(Check::WrongPair);
    }
    let before = change
        .certificates_of_card(&request.card_number)?
        .unwrap_or_default();
    Ok(Check::Owner(before))
}

/// Compares in constant time, and compares something even for an unknown
/// card, so the answer's timing does not tell which part was wrong.
fn same_code(owner: Option<&str>, typed: &str) -> bool {
    let owner_digest = digest(&SHA256, owner.unwrap_or_default().as_bytes());
    let typed_digest = digest(&SHA256, typed.as_bytes());
    let equal: bool = owner_digest.as_ref().ct_eq(typed_digest.as_ref()).into();
    equal & owner.is_some()
}

/// The certificates whose status the change altered, in the card's order.
fn changed(before: &[CertificateRow], after: &[CertificateRecord]) -> Vec<ChangedCertificate> {
    after
        .iter()
        .filter(|record| {
            before
                .iter()
                .find(|row| row.serial.to_hex() == record.serial)
                .is_none_or(|row| row.status.name() != record.status)
        })
        .map(|record| ChangedCertificate {
            profile: record.profile.clone(),
            serial: record.serial.clone(),
            status: record.status,
        })
        .collect()
}

/// Why nothing could change, from the card's certificates as they were.
fn refusal(before: &[CertificateRow], action: CardAction, now: OffsetDateTime) -> Refusal {
    let current: Vec<&CertificateRow> = before
        .iter()
        .filter(|row| !is_expired(row.not_after, now))
        .collect();
    if current.is_empty() {
        Refusal::NoCurrentCertificate
    } else if current
        .iter()
        .all(|row| matches!(row.status, CertStatus::Revoked(_)))
    {
        Refusal::Revoked
    } else {
        match action {
            CardAction::Suspend => Refusal::AlreadySuspended,
            CardAction::Resume => Refusal::NotSuspended,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_only_an_existing_owner() {
        assert!(same_code(Some("A800000014"), "A800000014"));
        assert!(!same_code(Some("A800000014"), "A800000015"));
        assert!(!same_code(None, "A800000014"));
        assert!(!same_code(None, ""));
    }
}
