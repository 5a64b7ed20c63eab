//! Status changes (SPEC §3.1): suspend, resume or revoke one certificate,
//! or every eligible certificate of a card at once.

use time::OffsetDateTime;

use super::idempotency::{Idempotency, NoKey, Once, Outcome};
use super::{Actor, Authority, AuthorityError, CertificateRecord};
use crate::domain::lifecycle::{self, Transition};
use crate::domain::{CertStatus, Serial};
use crate::store::audit::{AuditEvent, StatusChanged};
use crate::store::certificates::CertificateRow;
use crate::store::{Change, StoreError};

impl Authority {
    /// Suspends, resumes or revokes one certificate.
    pub fn change_status(
        &self,
        serial: &Serial,
        transition: Transition,
        note: Option<&str>,
        actor: Actor<'_>,
    ) -> Result<CertificateRecord, AuthorityError> {
        Ok(self
            .change_status_with(serial, transition, note, actor, &NoKey)?
            .done())
    }

    /// [`Self::change_status`], answering a key at most once.
    pub fn change_status_once(
        &self,
        serial: &Serial,
        transition: Transition,
        note: Option<&str>,
        actor: Actor<'_>,
        once: Option<&Idempotency<'_, CertificateRecord>>,
    ) -> Result<Outcome<CertificateRecord>, AuthorityError> {
        self.change_status_with(serial, transition, note, actor, &once)
    }

    fn change_status_with<O: Once<CertificateRecord>>(
        &self,
        serial: &Serial,
        transition: Transition,
        note: Option<&str>,
        actor: Actor<'_>,
        once: &O,
    ) -> Result<Outcome<CertificateRecord, O::Replay>, AuthorityError> {
        let now = self.now();
        self.commit(once, now, |change| {
            let row = change
                .certificate(serial)?
                .ok_or_else(|| AuthorityError::CertificateNotFound(serial.clone()))?;
            may_lift(
                &format!("certificate {serial}"),
                [&row],
                transition,
                actor,
                now,
            )?;
            let next = lifecycle::apply(row.status, row.not_after, transition, now)?;
            record_change(change, &row, next, transition, note, actor, now)?;
            CertificateRecord::new(&change.written_certificate(serial)?, now)
        })
    }

    /// Applies a transition to every eligible, non-expired certificate of a
    /// card, all or nothing (SPEC §3.1). Refused when none is eligible.
    pub fn change_card(
        &self,
        card_number: &str,
        transition: Transition,
        note: Option<&str>,
        actor: Actor<'_>,
    ) -> Result<Vec<CertificateRecord>, AuthorityError> {
        Ok(self
            .change_card_with(card_number, transition, note, actor, &NoKey)?
            .done())
    }

    /// [`Self::change_card`], answering a key at most once.
    pub fn change_card_once(
        &self,
        card_number: &str,
        transition: Transition,
        note: Option<&str>,
        actor: Actor<'_>,
        once: Option<&Idempotency<'_, Vec<CertificateRecord>>>,
    ) -> Result<Outcome<Vec<CertificateRecord>>, AuthorityError> {
        self.change_card_with(card_number, transition, note, actor, &once)
    }

    fn change_card_with<O: Once<Vec<CertificateRecord>>>(
        &self,
        card_number: &str,
        transition: Transition,
        note: Option<&str>,
        actor: Actor<'_>,
        once: &O,
    ) -> Result<Outcome<Vec<CertificateRecord>, O::Replay>, AuthorityError> {
        let now = self.now();
        self.commit(once, now, |change| {
            let rows = change
                .certificates_of_card(card_number)?
                .ok_or_else(|| AuthorityError::CardNotFound(card_number.to_owned()))?;
            // All or nothing: one suspension the actor may not lift refuses the card.
            may_lift(
                &format!("card {card_number}"),
                &rows,
                transition,
                actor,
                now,
            )?;
            let mut changed = 0;
            let mut why = None;
            for row in &rows {
                match lifecycle::apply(row.status, row.not_after, transition, now) {
                    Ok(next) => {
                        record_change(change, row, next, transition, note, actor, now)?;
                        changed += 1;
                    }
                    Err(e) => why = why.or(Some(e)),
                }
            }
            if changed == 0 {
                return Err(AuthorityError::NoEligibleCertificate {
                    card_number: card_number.to_owned(),
                    transition,
                    why,
                });
            }
            let rows = change.certificates_of_card(card_number)?.ok_or_else(|| {
                StoreError::Corrupt(format!("card {card_number} vanished while changed"))
            })?;
            CertificateRecord::all(&rows, now)
        })
    }
}

/// Refuses a resume by `actor` of any current suspension among `rows` that
/// its channel may not lift ([`lifecycle::may_lift`]). Decided inside the
/// change, so a suspension committed just before cannot slip through.
fn may_lift<'r>(
    subject: &str,
    rows: impl IntoIterator<Item = &'r CertificateRow>,
    transition: Transition,
    actor: Actor<'_>,
    now: OffsetDateTime,
) -> Result<(), AuthorityError> {
    if transition != Transition::Resume {
        return Ok(());
    }
    let refused = rows.into_iter().find(|row| {
        row.status == CertStatus::Suspended
            && !lifecycle::is_expired(row.not_after, now)
            && !lifecycle::may_lift(row.status_channel, actor.channel)
    });
    match refused {
        Some(row) => Err(AuthorityError::LiftOnlyByOfficer {
            subject: subject.to_owned(),
            suspended_by: row.status_channel,
        }),
        None => Ok(()),
    }
}

/// Writes one certificate's change to the history and the audit log.
fn record_change(
    change: &Change<'_>,
    row: &CertificateRow,
    next: CertStatus,
    transition: Transition,
    note: Option<&str>,
    actor: Actor<'_>,
    now: OffsetDateTime,
) -> Result<(), AuthorityError> {
    change.record_status(
        &row.serial,
        next,
        now,
        transition.name(),
        actor.channel,
        note,
    )?;
    let event = StatusChanged {
        serial: &row.serial,
        action: transition.name(),
        card_number: &row.card_number,
        channel: actor.channel.name(),
        from: row.status.name(),
        reason: next.crl_reason().map(|r| r.name()),
        to: next.name(),
    };
    change.audit(now, actor.name, &AuditEvent::StatusChanged(event))?;
    Ok(())
}
