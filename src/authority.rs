//! The use cases: issue, suspend, resume, revoke (one certificate or a whole
//! card), publish CRLs, read records. The RA API, the CLI and the
//! self-service page all come through here, so every rule is enforced once.
//!
//! Each state change and its audit record commit in one transaction; the
//! caller gets a result only after the commit (SPEC §10).

use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ca::{CaError, CaKeyPair};
use crate::config::Config;
use crate::domain::lifecycle::{self, Transition, TransitionError};
use crate::domain::{CertStatus, Channel, Serial};
use crate::issuance::certificate::BuildError;
use crate::issuance::{
    CertificateUrls, CsrError, IdentityError, SubscriberIdentity, build_certificate, verify_csr,
};
use crate::revocation::{
    CrlError, CrlKind, CrlParams, CrlScope, RevokedList, delta_entries, sign_crl,
};
use crate::store::audit::{self, AuditEntry, ChainBreak};
use crate::store::certificates::{
    self as certs, CertificateRow, NewCertificate, RegistrationError,
};
use crate::store::crls::{self, CrlSummary};
use crate::store::{Store, StoreError};

/// The source of "now"; tests and the simulator inject their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The system clock, truncated to whole seconds (what certificates, CRLs
/// and OCSP carry).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap_or(now)
    }
}

/// Why a use case did not happen. Nothing was changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("signing: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for AuthorityError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<CrlError> for AuthorityError {
    fn from(e: CrlError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<BuildError> for AuthorityError {
    fn from(e: BuildError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<RegistrationError> for AuthorityError {
    fn from(e: RegistrationError) -> Self {
        match e {
            RegistrationError::CardOfAnotherSubscriber { .. } => Self::Conflict(e.to_string()),
            RegistrationError::Store(s) => Self::Store(s),
        }
    }
}

/// The certificate record of SPEC §7.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CertificateRecord {
    pub serial: String,
    pub status: &'static str,
    pub expired: bool,
    pub revocation_reason: Option<&'static str>,
    pub status_since: String,
    pub subscriber_code: String,
    pub card_number: String,
    pub profile: String,
    pub not_before: String,
    pub not_after: String,
    pub certificate: String,
}

/// RFC 3339 in UTC with a `Z`, whole seconds.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl CertificateRecord {
    pub fn new(row: &CertificateRow, now: OffsetDateTime) -> Self {
        Self {
            serial: row.serial.to_hex(),
            status: row.status.name(),
            expired: lifecycle::is_expired(row.not_after, now),
            revocation_reason: row.status.crl_reason().map(|r| r.name()),
            status_since: rfc3339(row.status_since),
            subscriber_code: row.subscriber_code.clone(),
            card_number: row.card_number.clone(),
            profile: row.profile.clone(),
            not_before: rfc3339(row.not_before),
            not_after: rfc3339(row.not_after),
            certificate: der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &row.der)
                .unwrap_or_default(),
        }
    }
}

/// What the RA asks for when it issues.
#[derive(Debug, Clone)]
pub struct IssueRequest<'a> {
    pub subscriber_code: &'a str,
    pub subscriber_name: &'a str,
    pub card_number: &'a str,
    pub profile: &'a str,
    /// PEM or DER PKCS#10.
    pub csr: &'a [u8],
}

/// Who asked for a change, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub channel: Channel,
}

/// Serial collisions are astronomically unlikely with 126 random bits, but
/// the unique constraint decides; a few retries are plenty.
const SERIAL_ATTEMPTS: usize = 4;

/// Publications built from a read snapshot before one is built inside the
/// write transaction (see `Authority::publish_one`).
const OPTIMISTIC_PUBLISH_ATTEMPTS: usize = 2;

/// The certificate authority: configuration, keys, store and clock.
pub struct Authority {
    config: Config,
    store: Store,
    issuing: CaKeyPair,
    urls: CertificateUrls,
    clock: Arc<dyn Clock>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Why the authority could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Production(#[from] crate::production::ProductionRefusal),
    #[error("issuing CA (ca.issuing_cert / ca.issuing_key): {0}")]
    IssuingCa(#[from] CaError),
    #[error("store {path}: {source}")]
    Store { path: String, source: StoreError },
}

impl Authority {
    /// Loads the issuing CA and opens the store.
    pub fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        crate::production::check(&config)?;
        if config.mode == crate::config::Mode::Development {
            tracing::warn!(
                "development mode: keys-dev/ and the development RA tokens are public; never run a real CA like this"
            );
        }
        let issuing = CaKeyPair::load(&config.issuing_cert, &config.issuing_key)?;
        let store = Store::open(&config.store_path).map_err(|source| StartError::Store {
            path: config.store_path.display().to_string(),
            source,
        })?;
        let urls = CertificateUrls::under(&config.base_url);
        Ok(Self {
            config,
            store,
            issuing,
            urls,
            clock,
            rng: SystemRandom::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn issuing_ca(&self) -> &CaKeyPair {
        &self.issuing
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Issues a certificate: checks everything first, then signs and commits
    /// the subscriber, card, certificate, history and audit record together.
    pub fn issue(
        &self,
        request: &IssueRequest<'_>,
        actor: Actor<'_>,
    ) -> Result<CertificateRecord, AuthorityError> {
        let identity = SubscriberIdentity::new(
            request.subscriber_code,
            request.subscriber_name,
            request.card_number,
        )?;
        let profile = self.config.profiles.get(request.profile).ok_or_else(|| {
            let known: Vec<&str> = self.config.profiles.keys().map(String::as_str).collect();
            AuthorityError::BadRequest(format!(
                "unknown profile `{}`; known: {}",
                request.profile,
                known.join(", ")
            ))
        })?;
        let csr = verify_csr(request.csr)?;
        let now = self.now();
        for _ in 0..SERIAL_ATTEMPTS {
            let serial = self.new_serial()?;
            let issued = build_certificate(
                &identity,
                &self.config.country,
                profile,
                &csr,
                &serial,
                &self.urls,
                &self.issuing,
                now,
            )?;
            let outcome = self.store.write(|tx| -> Result<Option<CertificateRow>, AuthorityError> {
                if certs::serial_exists(tx, &serial)? {
                    return Ok(None);
                }
                certs::upsert_subscriber_and_card(tx, &identity.code, &identity.name, &identity.card_number, now)?;
                let new = NewCertificate {
                    serial: &serial,
                    subscriber_code: &identity.code,
                    card_number: &identity.card_number,
                    profile: &profile.name,
                    not_before: issued.not_before,
                    not_after: issued.not_after,
                    der: &issued.der,
                };
                certs::insert_certificate(tx, &new, actor.channel, now)?;
                let detail = serde_json::json!({
                    "channel": actor.channel.name(),
                    "subscriber_code": identity.code,
                    "card_number": identity.card_number,
                    "profile": profile.name,
                    "not_after": rfc3339(issued.not_after),
                    "certificate_sha256": hex::encode(ring::digest::digest(&ring::digest::SHA256, &issued.der)),
                })
                .to_string();
                audit::append(tx, &AuditEntry { at: now, actor: actor.name, action: "issue", subject: &serial.to_hex(), detail: &detail })?;
                Ok(certs::get_certificate(tx, &serial)?)
            })?;
            if let Some(row) = outcome {
                return Ok(CertificateRecord::new(&row, now));
            }
        }
        Err(AuthorityError::Internal(
            "could not draw an unused serial".into(),
        ))
    }

    fn new_serial(&self) -> Result<Serial, AuthorityError> {
        let mut bytes = [0u8; 16];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| AuthorityError::Internal("random number generator failed".into()))?;
        Ok(Serial::from_random(bytes))
    }

    /// One certificate by serial.
    pub fn certificate(&self, serial: &Serial) -> Result<CertificateRecord, AuthorityError> {
        let now = self.now();
        let row = self
            .store
            .read(|tx| certs::get_certificate(tx, serial))?
            .ok_or_else(|| AuthorityError::NotFound(format!("certificate {serial}")))?;
        Ok(CertificateRecord::new(&row, now))
    }

    /// All certificates of a subscriber.
    pub fn certificates_of_subscriber(
        &self,
        code: &str,
    ) -> Result<Vec<CertificateRecord>, AuthorityError> {
        let now = self.now();
        let rows = self
            .store
            .read(|tx| certs::certificates_of_subscriber(tx, code))?
            .ok_or_else(|| AuthorityError::NotFound(format!("subscriber {code}")))?;
        Ok(rows
            .iter()
            .map(|r| CertificateRecord::new(r, now))
            .collect())
    }

    /// Suspends, resumes or revokes one certificate.
    pub fn change_status(
        &self,
        serial: &Serial,
        transition: Transition,
        note: Option<&str>,
        actor: Actor<'_>,
    ) -> Result<CertificateRecord, AuthorityError> {
        let now = self.now();
        let row = self
            .store
            .write(|tx| -> Result<CertificateRow, AuthorityError> {
                let row = certs::get_certificate(tx, serial)?
                    .ok_or_else(|| AuthorityError::NotFound(format!("certificate {serial}")))?;
                let next = lifecycle::apply(row.status, row.not_after, transition, now)?;
                self.record_change(tx, &row, next, transition, note, actor, now)?;
                Ok(certs::get_certificate(tx, serial)?.unwrap_or(row))
            })?;
        Ok(CertificateRecord::new(&row, now))
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
        let now = self.now();
        let rows = self
            .store
            .write(|tx| -> Result<Vec<CertificateRow>, AuthorityError> {
                let rows = certs::certificates_of_card(tx, card_number)?
                    .ok_or_else(|| AuthorityError::NotFound(format!("card {card_number}")))?;
                let mut changed = 0;
                let mut refusal = None;
                for row in &rows {
                    match lifecycle::apply(row.status, row.not_after, transition, now) {
                        Ok(next) => {
                            self.record_change(tx, row, next, transition, note, actor, now)?;
                            changed += 1;
                        }
                        Err(e) => refusal = refusal.or(Some(e)),
                    }
                }
                if changed == 0 {
                    let why = refusal
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "the card has no certificates".into());
                    return Err(AuthorityError::Conflict(format!(
                        "no certificate of card {card_number} can {}: {why}",
                        transition.name()
                    )));
                }
                Ok(certs::certificates_of_card(tx, card_number)?.unwrap_or_default())
            })?;
        Ok(rows
            .iter()
            .map(|r| CertificateRecord::new(r, now))
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn record_change(
        &self,
        tx: &rusqlite::Connection,
        row: &CertificateRow,
        next: CertStatus,
        transition: Transition,
        note: Option<&str>,
        actor: Actor<'_>,
        now: OffsetDateTime,
    ) -> Result<(), AuthorityError> {
        certs::record_status(
            tx,
            &row.serial,
            next,
            now,
            transition.name(),
            actor.channel,
            note,
        )?;
        let detail = serde_json::json!({
            "channel": actor.channel.name(),
            "from": row.status.name(),
            "to": next.name(),
            "reason": next.crl_reason().map(|r| r.name()),
            "card_number": row.card_number,
        })
        .to_string();
        audit::append(
            tx,
            &AuditEntry {
                at: now,
                actor: actor.name,
                action: transition.name(),
                subject: &row.serial.to_hex(),
                detail: &detail,
            },
        )?;
        Ok(())
    }

    /// Publishes a CRL now. A full CRL is followed at once by a delta
    /// against it (SPEC §4); a delta with no full CRL yet publishes a full
    /// CRL first. Returns the summary of the CRL asked for.
    pub fn publish(&self, kind: CrlKind, actor: &str) -> Result<CrlSummary, AuthorityError> {
        match kind {
            CrlKind::Full => {
                let full = self.publish_full(actor)?;
                self.publish_delta(actor)?;
                Ok(full)
            }
            CrlKind::Delta => {
                if self
                    .store
                    .read(|tx| crls::latest(tx, CrlKind::Full))?
                    .is_none()
                {
                    self.publish_full(actor)?;
                }
                self.publish_delta(actor)
            }
        }
    }

    fn publish_full(&self, actor: &str) -> Result<CrlSummary, AuthorityError> {
        self.publish_one(CrlKind::Full, actor)
    }

    fn publish_delta(&self, actor: &str) -> Result<CrlSummary, AuthorityError> {
        self.publish_one(CrlKind::Delta, actor)
    }

    /// Publishes one CRL. First optimistically: built from a read snapshot,
    /// so that status changes are not held up while a large CRL is encoded
    /// and signed, and recorded only if no other publisher (another process
    /// on the same store) took its number meanwhile. After
    /// [`OPTIMISTIC_PUBLISH_ATTEMPTS`] lost races, it is built inside the
    /// write transaction, which no publisher can overtake: every publication
    /// completes, however busy the others.
    fn publish_one(&self, kind: CrlKind, actor: &str) -> Result<CrlSummary, AuthorityError> {
        for _ in 0..OPTIMISTIC_PUBLISH_ATTEMPTS {
            let (summary, der) = self.store.read(|tx| self.build_crl(tx, kind))?;
            let recorded = self.store.write(|tx| -> Result<bool, AuthorityError> {
                if !self.still_next(tx, &summary)? {
                    return Ok(false);
                }
                self.record_crl(tx, &summary, &der, actor)?;
                Ok(true)
            })?;
            if recorded {
                self.write_crl_files(&summary, &der);
                return Ok(summary);
            }
        }
        let (summary, der) = self.store.write(|tx| {
            let (summary, der) = self.build_crl(tx, kind)?;
            self.record_crl(tx, &summary, &der, actor)?;
            Ok::<_, AuthorityError>((summary, der))
        })?;
        self.write_crl_files(&summary, &der);
        Ok(summary)
    }

    /// Builds and signs the next full CRL from one snapshot of the store,
    /// without recording it (the benchmark times this alone).
    pub fn build_full_crl(&self) -> Result<(CrlSummary, Vec<u8>), AuthorityError> {
        self.store.read(|tx| self.build_crl(tx, CrlKind::Full))
    }

    /// Builds and signs the next delta CRL from one snapshot of the store,
    /// without recording it.
    pub fn build_delta_crl(&self) -> Result<(CrlSummary, Vec<u8>), AuthorityError> {
        self.store.read(|tx| self.build_crl(tx, CrlKind::Delta))
    }

    /// Builds and signs the CRL of `kind` that would be published next, from
    /// what `tx` sees.
    fn build_crl(
        &self,
        tx: &rusqlite::Connection,
        kind: CrlKind,
    ) -> Result<(CrlSummary, Vec<u8>), AuthorityError> {
        match kind {
            CrlKind::Full => self.build_full(tx),
            CrlKind::Delta => self.build_delta(tx),
        }
    }

    /// A full CRL: every listed certificate, in one pass over the index.
    fn build_full(
        &self,
        tx: &rusqlite::Connection,
    ) -> Result<(CrlSummary, Vec<u8>), AuthorityError> {
        let previous_full = crls::latest(tx, CrlKind::Full)?;
        let mut list = RevokedList::new();
        crls::for_each_listed(tx, previous_full.map(|p| p.this_update), |listed| {
            if let Some(entry) = listed.entry() {
                list.push(&entry)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            }
            Ok(())
        })?;
        let summary = self.next_summary(tx, CrlKind::Full, None, list.len())?;
        let delta_url = format!("{}/crl/delta.crl", self.config.base_url);
        let scope = CrlScope::Full {
            freshest_crl_url: &delta_url,
        };
        self.sign(summary, scope, list)
    }

    /// A delta CRL against the newest full CRL: cost follows the changes since it.
    fn build_delta(
        &self,
        tx: &rusqlite::Connection,
    ) -> Result<(CrlSummary, Vec<u8>), AuthorityError> {
        let base = crls::latest(tx, CrlKind::Full)?
            .ok_or_else(|| AuthorityError::Conflict("no full CRL has been published yet".into()))?;
        let entries = delta_entries(&crls::changes_since(tx, base.covers_seq)?);
        let mut list = RevokedList::new();
        for entry in &entries {
            list.push(entry)?;
        }
        let summary = self.next_summary(tx, CrlKind::Delta, Some(base.number), list.len())?;
        let scope = CrlScope::Delta {
            base_number: base.number,
        };
        self.sign(summary, scope, list)
    }

    /// The header of the CRL that would be published next from this snapshot.
    fn next_summary(
        &self,
        tx: &rusqlite::Connection,
        kind: CrlKind,
        base_number: Option<u64>,
        entries: u64,
    ) -> Result<CrlSummary, AuthorityError> {
        let this_update = self.this_update(tx)?;
        let interval = match kind {
            CrlKind::Full => self.config.full_crl_interval,
            CrlKind::Delta => self.config.delta_crl_interval,
        };
        Ok(CrlSummary {
            number: crls::highest_number(tx)? + 1,
            kind,
            base_number,
            this_update,
            next_update: this_update + interval,
            covers_seq: crls::newest_change(tx)?,
            entries,
        })
    }

    fn sign(
        &self,
        summary: CrlSummary,
        scope: CrlScope<'_>,
        list: RevokedList,
    ) -> Result<(CrlSummary, Vec<u8>), AuthorityError> {
        let params = CrlParams {
            issuer_name_der: &self.issuing.cert.subject_der,
            authority_key_id: &self.issuing.cert.key_id,
            number: summary.number,
            this_update: summary.this_update,
            next_update: summary.next_update,
            scope,
        };
        let signed = sign_crl(&params, list, &self.issuing.signer)?;
        Ok((summary, signed.der))
    }

    /// Mirrors a committed CRL into the publish directory. The store stays
    /// the source of truth: a failed write is logged, not reported as a
    /// failed publication, and `serve` re-syncs the directory at start.
    fn write_crl_files(&self, summary: &CrlSummary, der: &[u8]) {
        if let Err(e) = crate::publisher::write_crl_files(&self.config.publish_dir, summary, der) {
            tracing::error!(error = %e, number = summary.number, dir = %self.config.publish_dir.display(), "cannot write CRL file");
        }
    }

    /// thisUpdate never goes backwards, even if the clock does.
    fn this_update(&self, tx: &rusqlite::Connection) -> Result<OffsetDateTime, AuthorityError> {
        let newest = [
            crls::latest(tx, CrlKind::Full)?,
            crls::latest(tx, CrlKind::Delta)?,
        ]
        .into_iter()
        .flatten()
        .map(|c| c.this_update)
        .max();
        let now = self.now();
        Ok(newest.map_or(now, |t| t.max(now)))
    }

    /// Whether a CRL built from an earlier snapshot can still be recorded:
    /// its number is still the next one and, for a delta, its base is still
    /// the newest full CRL.
    fn still_next(
        &self,
        tx: &rusqlite::Connection,
        summary: &CrlSummary,
    ) -> Result<bool, AuthorityError> {
        if crls::highest_number(tx)? + 1 != summary.number {
            return Ok(false);
        }
        Ok(summary.base_number.is_none()
            || crls::latest(tx, CrlKind::Full)?.map(|f| f.number) == summary.base_number)
    }

    /// Stores a signed CRL with its audit record.
    fn record_crl(
        &self,
        tx: &rusqlite::Connection,
        summary: &CrlSummary,
        der: &[u8],
        actor: &str,
    ) -> Result<(), AuthorityError> {
        crls::insert(tx, summary, der)?;
        let detail = serde_json::json!({
            "kind": summary.kind.name(),
            "base_number": summary.base_number,
            "this_update": rfc3339(summary.this_update),
            "next_update": rfc3339(summary.next_update),
            "entries": summary.entries,
            "sha256": hex::encode(ring::digest::digest(&ring::digest::SHA256, der)),
        })
        .to_string();
        audit::append(
            tx,
            &AuditEntry {
                at: self.now(),
                actor,
                action: "publish-crl",
                subject: &summary.number.to_string(),
                detail: &detail,
            },
        )?;
        Ok(())
    }

    /// Walks the audit chain.
    pub fn verify_audit(&self) -> Result<Result<u64, ChainBreak>, AuthorityError> {
        Ok(self.store.read(|tx| audit::verify(tx))?)
    }
}
