//! The use case behind both forms: a subscriber asks to suspend or resume
//! every certificate of a card, proving only knowledge of the subscriber
//! code that owns the card number.
//!
//! Rules (SPEC §7, "Self-service"):
//! * a wrong code, an unknown card, or a pair that does not belong together
//!   is one and the same [`Outcome::PairNotRecognised`], reached by the same
//!   work (lookup, constant-time comparison, failure records);
//! * failures are counted per card number and per client address in the
//!   store; a locked key gets [`Outcome::Locked`] before the pair is even
//!   looked at, so the right pair is refused too while locked;
//! * the lock check, the pair check and the failure records happen in one
//!   write transaction, so parallel guesses cannot overrun the limit.

use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::client::ClientAddress;
use super::lockout::LockoutPolicy;
use crate::authority::{Actor, Authority, AuthorityError, CertificateRecord};
use crate::domain::lifecycle::{Transition, is_expired};
use crate::domain::{CertStatus, Channel};
use crate::store::certificates::{self as certs, CertificateRow};
use crate::store::selfservice::{self as failures, FailureScope};

/// The audit log's actor for every self-service change.
const ACTOR: &str = "self-service";

/// What the subscriber can do on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAction {
    Suspend,
    Resume,
}

impl CardAction {
    pub fn transition(self) -> Transition {
        match self {
            Self::Suspend => Transition::Suspend,
            Self::Resume => Transition::Resume,
        }
    }

    pub fn name(self) -> &'static str {
        self.transition().name()
    }
}

/// One submitted form, already checked for format.
#[derive(Debug, Clone)]
pub struct CardRequest {
    pub subscriber_code: String,
    pub card_number: String,
    pub action: CardAction,
    pub client: ClientAddress,
}

/// A certificate as the result page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedCertificate {
    pub profile: String,
    pub serial: String,
    pub status: &'static str,
}

impl ChangedCertificate {
    /// The serial with its middle hidden: enough to match it with the
    /// card's documents, too little to look anything up by.
    pub fn masked_serial(&self) -> String {
        mask_serial(&self.serial)
    }
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
}

/// The answer to a [`CardRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
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

/// Handles one request. Blocking (SQLite): call from `spawn_blocking`.
pub fn handle(authority: &Authority, request: &CardRequest) -> Result<Outcome, AuthorityError> {
    let policy = LockoutPolicy::from(authority.config().selfservice);
    let now = authority.now();
    let check = authority
        .store()
        .write(|tx| check_pair(tx, &policy, request, now))?;
    let before = match check {
        Check::Locked(until) => return Ok(Outcome::Locked { until }),
        Check::WrongPair => {
            tracing::info!(client = %request.client.0, "self-service: pair not recognised");
            return Ok(Outcome::PairNotRecognised);
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
        request.client.0
    );
    match authority.change_card(
        &request.card_number,
        request.action.transition(),
        Some(&note),
        actor,
    ) {
        Ok(after) => Ok(Outcome::Changed {
            certificates: changed(&before, &after),
            at: authority.now(),
        }),
        Err(AuthorityError::Conflict(_)) => Ok(Outcome::Refused(refusal(
            &before,
            request.action,
            authority.now(),
        ))),
        Err(e) => Err(e),
    }
}

fn check_pair(
    tx: &rusqlite::Connection,
    policy: &LockoutPolicy,
    request: &CardRequest,
    now: OffsetDateTime,
) -> Result<Check, AuthorityError> {
    let keys = [
        (FailureScope::Card, request.card_number.as_str()),
        (FailureScope::Client, request.client.0.as_str()),
    ];
    let mut locked_until = None;
    for (scope, key) in keys {
        let recent = failures::failures_since(tx, scope, key, policy.horizon(now))?;
        locked_until = locked_until.max(policy.locked_until(&recent, now));
    }
    if let Some(until) = locked_until {
        return Ok(Check::Locked(until));
    }
    let owner = certs::card_owner(tx, &request.card_number)?;
    if !same_code(owner.as_deref(), &request.subscriber_code) {
        for (scope, key) in keys {
            failures::record_failure(tx, scope, key, now)?;
        }
        failures::purge_failures_before(tx, policy.horizon(now))?;
        return Ok(Check::WrongPair);
    }
    let before = certs::certificates_of_card(tx, &request.card_number)?.unwrap_or_default();
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

/// `3f2a…9c1e`: the first and last four hex digits.
pub fn mask_serial(hex: &str) -> String {
    const SHOWN: usize = 4;
    if hex.len() <= 2 * SHOWN || !hex.is_ascii() {
        return hex.to_owned();
    }
    format!("{}…{}", &hex[..SHOWN], &hex[hex.len() - SHOWN..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_masked_in_the_middle() {
        assert_eq!(mask_serial("3f2a00112233445566779c1e"), "3f2a…9c1e");
        assert_eq!(mask_serial("1234"), "1234");
    }

    #[test]
    fn codes_match_only_an_existing_owner() {
        assert!(same_code(Some("A800000014"), "A800000014"));
        assert!(!same_code(Some("A800000014"), "A800000015"));
        assert!(!same_code(None, "A800000014"));
        assert!(!same_code(None, ""));
    }
}
