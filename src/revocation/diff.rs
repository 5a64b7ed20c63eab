//! The delta CRL diff ([RFC 5280 §5.2.4](https://www.rfc-editor.org/rfc/rfc5280#section-5.2.4)):
//! what a relying party must apply to its base CRL to know the current state.

use std::collections::HashMap;

use super::{CrlEntry, HistoryRow, StatusChange};
use crate::domain::{CertStatus, CrlReason, Serial};

/// Folds the history rows recorded after a base (oldest first) into one
/// change per certificate: its status at the base is what its first row
/// replaced, its current status what its last row set. Reading the base
/// status from the history itself keeps the delta a single range read.
pub fn net_changes(history: impl IntoIterator<Item = HistoryRow>) -> Vec<StatusChange> {
    let mut changes: Vec<StatusChange> = Vec::new();
    let mut position: HashMap<Serial, usize> = HashMap::new();
    for row in history {
        match position.get(&row.serial) {
            Some(&i) => {
                changes[i].current = row.after;
                changes[i].since = row.at;
            }
            None => {
                position.insert(row.serial.clone(), changes.len());
                changes.push(StatusChange {
                    serial: row.serial,
                    base: row.before.map_or(CertStatus::Good, |(status, _)| status),
                    base_since: row.before.map(|(_, since)| since),
                    current: row.after,
                    since: row.at,
                });
            }
        }
    }
    changes
}

/// The entries of a delta CRL: every certificate whose entry now differs
/// from the base's. Newly listed certificates, those listed with a new
/// reason, and those put on hold again after a resumption (a new
/// revocationDate: when the current status began, SPEC §3.1) carry their
/// current reason; certificates the base listed and that are good again
/// carry removeFromCRL (§5.3.1). A suspension and a resumption both after
/// the base cancel out: the base never listed the certificate.
pub fn delta_entries(changes: &[StatusChange]) -> Vec<CrlEntry> {
    changes.iter().filter_map(delta_entry).collect()
}

fn delta_entry(change: &StatusChange) -> Option<CrlEntry> {
    let unchanged = change.current == change.base && change.base_since == Some(change.since);
    let reason = match (change.current.crl_reason(), change.base.crl_reason()) {
        _ if unchanged => return None,
        (Some(now), _) => now,
        (None, Some(_)) => CrlReason::RemoveFromCrl,
        (None, None) => return None,
    };
    Some(CrlEntry {
        serial: change.serial.clone(),
        revocation_date: change.since,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;
    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::*;
    use crate::domain::{RevocationReason, Transition, lifecycle};
    use crate::revocation::ListedCertificate;

    /// A change whose base status began when the current one did, i.e. a
    /// status that did not change.
    fn change(base: CertStatus, current: CertStatus) -> StatusChange {
        StatusChange {
            serial: Serial::from_magnitude(&[1]).unwrap(),
            base,
            base_since: Some(datetime!(2026-01-01 0:00 UTC)),
            current,
            since: datetime!(2026-01-01 0:00 UTC),
        }
    }

    fn reasons(base: CertStatus, current: CertStatus) -> Vec<CrlReason> {
        delta_entries(&[change(base, current)])
            .into_iter()
            .map(|e| e.reason)
            .collect()
    }

    fn row(serial: u8, before: Option<CertStatus>, after: CertStatus, hour: u8) -> HistoryRow {
        let at = |h: u8| datetime!(2026-01-01 0:00 UTC) + time::Duration::hours(h.into());
        HistoryRow {
            serial: Serial::from_magnitude(&[serial]).unwrap(),
            before: before.map(|s| (s, at(hour - 1))),
            after,
            at: at(hour),
        }
    }

    #[test]
    fn net_change_runs_from_the_first_rows_before_to_the_last_rows_after() {
        let revoked = CertStatus::Revoked(RevocationReason::Superseded);
        let history = [
            row(1, Some(CertStatus::Good), CertStatus::Suspended, 2),
            row(2, None, CertStatus::Good, 3),
            row(1, Some(CertStatus::Suspended), revoked, 4),
            row(2, Some(CertStatus::Good), CertStatus::Suspended, 5),
        ];
        let changes = net_changes(history.clone());
        assert_eq!(changes.len(), 2);
        assert_eq!(
            (changes[0].base, changes[0].base_since, changes[0].current),
            (CertStatus::Good, history[0].before.map(|b| b.1), revoked)
        );
        assert_eq!(changes[0].since, history[2].at);
        // Issued after the base: good then, with no start time.
        assert_eq!(
            (changes[1].base, changes[1].base_since, changes[1].current),
            (CertStatus::Good, None, CertStatus::Suspended)
        );
    }

    #[test]
    fn newly_suspended_is_on_hold() {
        assert_eq!(
            reasons(CertStatus::Good, CertStatus::Suspended),
            [CrlReason::CertificateHold]
        );
    }

    #[test]
    fn resumed_since_base_is_removed() {
        assert_eq!(
            reasons(CertStatus::Suspended, CertStatus::Good),
            [CrlReason::RemoveFromCrl]
        );
    }

    #[test]
    fn hold_to_revoked_carries_the_new_reason() {
        let revoked = CertStatus::Revoked(RevocationReason::KeyCompromise);
        assert_eq!(
            reasons(CertStatus::Suspended, revoked),
            [CrlReason::KeyCompromise]
        );
    }

    #[test]
    fn hold_renewed_after_a_resume_replaces_the_base_entry_with_its_new_date() {
        // On hold at the base, resumed, then suspended again: the status is
        // the same, but an entry's revocationDate is when the current status
        // began (SPEC §3.1), and the base still shows the first hold.
        let mut renewed = change(CertStatus::Suspended, CertStatus::Suspended);
        renewed.base_since = Some(datetime!(2025-12-01 0:00 UTC));
        let entries = delta_entries(std::slice::from_ref(&renewed));
        assert_eq!(
            entries,
            [CrlEntry {
                serial: renewed.serial.clone(),
                revocation_date: renewed.since,
                reason: CrlReason::CertificateHold,
            }]
        );
    }

    #[test]
    fn unchanged_and_cancelled_changes_are_not_listed() {
        assert!(reasons(CertStatus::Good, CertStatus::Good).is_empty());
        assert!(reasons(CertStatus::Suspended, CertStatus::Suspended).is_empty());
    }

    /// Something that happens to one of a few certificates. The lifecycle
    /// refuses some of them (a resumption of a good certificate, any change
    /// to a revoked one); those record nothing, as in the store.
    #[derive(Debug, Clone, Copy)]
    enum Event {
        Issue,
        Change(Transition),
    }

    /// An event on serial 1 to 4, and whether the clock moves on a second
    /// first: several changes within one second happen too.
    fn event() -> impl Strategy<Value = (u8, Event, bool)> {
        let revoke = proptest::sample::select(RevocationReason::ALL.to_vec())
            .prop_map(|reason| Event::Change(Transition::Revoke(reason)));
        let event = prop_oneof![
            Just(Event::Issue),
            Just(Event::Change(Transition::Suspend)),
            Just(Event::Change(Transition::Resume)),
            revoke,
        ];
        (1..=4u8, event, proptest::bool::ANY)
    }

    /// The status history `events` write, in sequence order.
    fn history(events: &[(u8, Event, bool)]) -> Vec<HistoryRow> {
        let not_after = datetime!(2030-01-01 0:00 UTC);
        let mut at = datetime!(2026-01-01 0:00 UTC);
        let mut statuses: HashMap<u8, (CertStatus, OffsetDateTime)> = HashMap::new();
        let mut rows = Vec::new();
        for &(serial, event, tick) in events {
            if tick {
                at += time::Duration::seconds(1);
            }
            let before = statuses.get(&serial).copied();
            let after = match (event, before) {
                (Event::Issue, None) => CertStatus::Good,
                (Event::Change(transition), Some((current, _))) => {
                    match lifecycle::apply(current, not_after, transition, at) {
                        Ok(after) => after,
                        Err(_) => continue,
                    }
                }
                _ => continue,
            };
            statuses.insert(serial, (after, at));
            rows.push(HistoryRow {
                serial: Serial::from_magnitude(&[serial]).unwrap(),
                before,
                after,
                at,
            });
        }
        rows
    }

    /// What a full CRL made after `rows` lists: reason and revocationDate
    /// by serial.
    fn listed(rows: &[HistoryRow]) -> HashMap<Serial, (CrlReason, OffsetDateTime)> {
        let mut current = HashMap::new();
        for row in rows {
            current.insert(row.serial.clone(), (row.after, row.at));
        }
        current
            .into_iter()
            .filter_map(|(serial, (status, since))| {
                ListedCertificate {
                    serial,
                    status,
                    since,
                }
                .entry()
            })
            .map(|entry| (entry.serial, (entry.reason, entry.revocation_date)))
            .collect()
    }

    proptest! {
        /// A relying party that applies the delta to its base (RFC 5280
        /// §5.2.4: removeFromCRL removes, any other entry adds or replaces)
        /// knows exactly what a full CRL made now would list, reasons and
        /// dates included; the delta names each serial once, and removes
        /// only what the base lists.
        #[test]
        fn base_plus_delta_is_the_current_state(
            events in proptest::collection::vec(event(), 0..60),
            cut in any::<proptest::sample::Index>(),
        ) {
            let rows = history(&events);
            let after = cut.index(rows.len() + 1);
            let base = listed(&rows[..after]);
            let delta = delta_entries(&net_changes(rows[after..].to_vec()));

            let mut view = base.clone();
            let mut named = HashSet::new();
            for entry in delta {
                prop_assert!(named.insert(entry.serial.clone()), "{} twice", entry.serial);
                if entry.reason == CrlReason::RemoveFromCrl {
                    prop_assert!(base.contains_key(&entry.serial), "{} not in the base", entry.serial);
                    view.remove(&entry.serial);
                } else {
                    view.insert(entry.serial, (entry.reason, entry.revocation_date));
                }
            }
            prop_assert_eq!(view, listed(&rows));
        }
    }
}
