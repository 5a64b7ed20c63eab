//! CRL publication (SPEC §4): the next full or delta CRL is built from the
//! store, signed, recorded with its number and audit record, and mirrored
//! into the publish directory. The schedule lives in the publisher, which
//! calls in here; this module never calls the publisher.

use time::OffsetDateTime;

use super::idempotency::{Idempotency, NoKey, Once, Outcome};
use super::issue::sha256_hex;
use super::{Authority, AuthorityError, rfc3339};
use crate::revocation::{
    CrlKind, CrlParams, CrlScope, CrlSummary, RevokedList, delta_entries, net_changes, sign_crl,
};
use crate::store::audit::{AuditEvent, CrlPublished};
use crate::store::{Change, Snapshot, StoreError};

/// Publications built from a read snapshot before one is built inside the
/// write transaction (see `Authority::publish_one`).
const OPTIMISTIC_PUBLISH_ATTEMPTS: usize = 2;

/// A signed CRL and its header, not yet recorded: the first phase of a
/// publication (`publish_one`), which the CRL benchmark also times alone.
#[derive(Debug)]
pub struct SignedCrl {
    summary: CrlSummary,
    der: Vec<u8>,
}

impl SignedCrl {
    pub fn into_parts(self) -> (CrlSummary, Vec<u8>) {
        (self.summary, self.der)
    }
}

/// A CRL commit that lost the race for its number, or failed.
enum CrlCommitError {
    Stale,
    Failed(AuthorityError),
}

impl From<StoreError> for CrlCommitError {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<AuthorityError> for CrlCommitError {
    fn from(e: AuthorityError) -> Self {
        Self::Failed(e)
    }
}

impl Authority {
    /// Publishes a CRL now. A full CRL is followed at once by a delta
    /// against it (SPEC §4); a delta with no full CRL yet publishes a full
    /// CRL first. Returns the summary of the CRL asked for.
    pub fn publish(&self, kind: CrlKind, actor: &str) -> Result<CrlSummary, AuthorityError> {
        Ok(self.publish_with(kind, actor, &NoKey)?.done())
    }

    /// [`Self::publish`], answering a key at most once. The key is
    /// remembered with the CRL asked for.
    pub fn publish_once(
        &self,
        kind: CrlKind,
        actor: &str,
        once: Option<&Idempotency<'_, CrlSummary>>,
    ) -> Result<Outcome<CrlSummary>, AuthorityError> {
        self.publish_with(kind, actor, &once)
    }

    fn publish_with<O: Once<CrlSummary>>(
        &self,
        kind: CrlKind,
        actor: &str,
        once: &O,
    ) -> Result<Outcome<CrlSummary, O::Replay>, AuthorityError> {
        let _one_at_a_time = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        match kind {
            CrlKind::Full => {
                let full = self.publish_one(CrlKind::Full, actor, once)?;
                if let Outcome::Done(_) = full {
                    self.publish_one(CrlKind::Delta, actor, &NoKey)?;
                }
                Ok(full)
            }
            CrlKind::Delta => {
                if self
                    .store
                    .read(|snapshot| snapshot.latest_crl(CrlKind::Full))?
                    .is_none()
                {
                    self.publish_one(CrlKind::Full, actor, &NoKey)?;
                }
                self.publish_one(CrlKind::Delta, actor, once)
            }
        }
    }

    /// Writes the issuing CA certificate and the newest full and delta CRLs
    /// into the publish directory. The store is the source of truth; `serve`
    /// calls this at start, so a file write that failed earlier heals.
    pub fn republish_files(&self) -> Result<(), AuthorityError> {
        let unwritable = |source| AuthorityError::PublishDir {
            dir: self.publish_dir.path().display().to_string(),
            source,
        };
        self.publish_dir
            .write("issuing-ca.crt", &self.issuing.cert.der)
            .map_err(unwritable)?;
        for kind in [CrlKind::Full, CrlKind::Delta] {
            let latest = self.store.read(|snapshot| snapshot.latest_crl_der(kind))?;
            if let Some((summary, der)) = latest {
                self.publish_dir
                    .write_crl(summary.number, summary.kind.name(), &der)
                    .map_err(unwritable)?;
            }
        }
        Ok(())
    }

    /// Publishes one CRL. First optimistically: built from a read snapshot,
    /// so that status changes are not held up while a large CRL is encoded
    /// and signed, and recorded only if no other publisher (another process
    /// on the same store) took its number meanwhile. After
    /// [`OPTIMISTIC_PUBLISH_ATTEMPTS`] lost races, it is built inside the
    /// write transaction, which no publisher can overtake: every publication
    /// completes, however busy the others.
    fn publish_one<O: Once<CrlSummary>>(
        &self,
        kind: CrlKind,
        actor: &str,
        once: &O,
    ) -> Result<Outcome<CrlSummary, O::Replay>, AuthorityError> {
        for _ in 0..OPTIMISTIC_PUBLISH_ATTEMPTS {
            let signed = self.draft_crl(kind)?;
            if let Some(outcome) = self.commit_crl(&signed, actor, once)? {
                if matches!(outcome, Outcome::Done(_)) {
                    self.write_crl_file(&signed);
                }
                return Ok(outcome);
            }
        }
        let now = self.now();
        let mut published = None;
        let outcome = self.commit(once, now, |change| {
            let signed = self.build_crl(change, kind)?;
            self.record_crl(change, &signed, actor, now)?;
            let summary = signed.summary.clone();
            published = Some(signed);
            Ok::<_, AuthorityError>(summary)
        })?;
        if let (Outcome::Done(_), Some(signed)) = (&outcome, &published) {
            self.write_crl_file(signed);
        }
        Ok(outcome)
    }

    /// Builds and signs the CRL of `kind` that would be published next, from
    /// one read snapshot, without recording it.
    pub fn draft_crl(&self, kind: CrlKind) -> Result<SignedCrl, AuthorityError> {
        self.store.read(|snapshot| self.build_crl(snapshot, kind))
    }

    /// Builds and signs the CRL of `kind` that would be published next, from
    /// what `snapshot` sees.
    fn build_crl(
        &self,
        snapshot: &Snapshot<'_>,
        kind: CrlKind,
    ) -> Result<SignedCrl, AuthorityError> {
        match kind {
            CrlKind::Full => self.build_full(snapshot),
            CrlKind::Delta => self.build_delta(snapshot),
        }
    }

    /// A full CRL: every listed certificate, in one pass over the index.
    fn build_full(&self, snapshot: &Snapshot<'_>) -> Result<SignedCrl, AuthorityError> {
        let previous_full = snapshot.latest_crl(CrlKind::Full)?;
        let mut list = RevokedList::new();
        snapshot.for_each_listed(previous_full.map(|p| p.this_update), |listed| match listed
            .entry()
        {
            Some(entry) => list.push(&entry).map_err(AuthorityError::from),
            None => Ok(()),
        })?;
        let summary = self.next_summary(snapshot, CrlKind::Full, None, list.len())?;
        let scope = CrlScope::Full {
            freshest_crl_url: &self.urls.delta_crl,
        };
        self.sign_list(summary, scope, list)
    }

    /// A delta CRL against the newest full CRL: cost follows the changes since it.
    fn build_delta(&self, snapshot: &Snapshot<'_>) -> Result<SignedCrl, AuthorityError> {
        let base = snapshot
            .latest_crl(CrlKind::Full)?
            .ok_or(AuthorityError::NoFullCrl)?;
        let changes = net_changes(snapshot.history_since(base.covers_seq)?);
        let mut list = RevokedList::new();
        for entry in &delta_entries(&changes) {
            list.push(entry)?;
        }
        let summary = self.next_summary(snapshot, CrlKind::Delta, Some(base.number), list.len())?;
        let scope = CrlScope::Delta {
            base_number: base.number,
        };
        self.sign_list(summary, scope, list)
    }

    /// The header of the CRL that would be published next from this snapshot.
    fn next_summary(
        &self,
        snapshot: &Snapshot<'_>,
        kind: CrlKind,
        base_number: Option<u64>,
        entries: u64,
    ) -> Result<CrlSummary, AuthorityError> {
        let this_update = self.this_update(snapshot)?;
        let interval = match kind {
            CrlKind::Full => self.config.full_crl_interval,
            CrlKind::Delta => self.config.delta_crl_interval,
        };
        Ok(CrlSummary {
            number: snapshot.highest_crl_number()? + 1,
            kind,
            base_number,
            this_update,
            next_update: this_update + interval,
            covers_seq: snapshot.newest_change()?,
            entries,
        })
    }

    /// Frames and signs a CRL around its entries.
    fn sign_list(
        &self,
        summary: CrlSummary,
        scope: CrlScope<'_>,
        list: RevokedList,
    ) -> Result<SignedCrl, AuthorityError> {
        let params = CrlParams {
            issuer_name_der: &self.issuing.cert.subject_der,
            authority_key_id: &self.issuing.cert.key_id,
            number: summary.number,
            this_update: summary.this_update,
            next_update: summary.next_update,
            scope,
        };
        let signed = sign_crl(&params, list, &self.issuing.signer)?;
        Ok(SignedCrl {
            summary,
            der: signed.der,
        })
    }

    /// Mirrors a committed CRL into the publish directory. The store stays
    /// the source of truth: a failed write is logged, not reported as a
    /// failed publication, and `serve` re-syncs the directory at start.
    fn write_crl_file(&self, signed: &SignedCrl) {
        let SignedCrl { summary, der } = signed;
        if let Err(e) = self
            .publish_dir
            .write_crl(summary.number, summary.kind.name(), der)
        {
            tracing::error!(error = %e, number = summary.number, dir = %self.publish_dir.path().display(), "cannot write CRL file");
        }
    }

    /// thisUpdate never goes backwards, even if the clock does.
    fn this_update(&self, snapshot: &Snapshot<'_>) -> Result<OffsetDateTime, AuthorityError> {
        let newest = snapshot.latest_crls()?.newest_this_update();
        let now = self.now();
        Ok(newest.map_or(now, |t| t.max(now)))
    }

    /// Records a CRL built from an earlier snapshot if its number is still
    /// the next one (and, for a delta, its base still the newest full CRL).
    /// Returns `None` to retry.
    fn commit_crl<O: Once<CrlSummary>>(
        &self,
        signed: &SignedCrl,
        actor: &str,
        once: &O,
    ) -> Result<Option<Outcome<CrlSummary, O::Replay>>, AuthorityError> {
        let now = self.now();
        let summary = &signed.summary;
        let committed = self.commit(once, now, |change| -> Result<_, CrlCommitError> {
            if change.highest_crl_number()? + 1 != summary.number {
                return Err(CrlCommitError::Stale);
            }
            if summary.base_number.is_some()
                && change.latest_crl(CrlKind::Full)?.map(|f| f.number) != summary.base_number
            {
                return Err(CrlCommitError::Stale);
            }
            self.record_crl(change, signed, actor, now)?;
            Ok(summary.clone())
        });
        match committed {
            Ok(outcome) => Ok(Some(outcome)),
            Err(CrlCommitError::Stale) => Ok(None),
            Err(CrlCommitError::Failed(e)) => Err(e),
        }
    }

    /// Stores a signed CRL with its audit record.
    fn record_crl(
        &self,
        change: &Change<'_>,
        signed: &SignedCrl,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(), AuthorityError> {
        let SignedCrl { summary, der } = signed;
        change.insert_crl(summary, der)?;
        let event = CrlPublished {
            summary,
            base_number: summary.base_number,
            entries: summary.entries,
            kind: summary.kind.name(),
            next_update: rfc3339(summary.next_update)?,
            sha256: sha256_hex(der),
            this_update: rfc3339(summary.this_update)?,
        };
        change.audit(now, actor, &AuditEvent::CrlPublished(event))?;
        Ok(())
    }
}
