//! The use cases: issue, suspend, resume, revoke (one certificate or a whole
//! card), publish CRLs, read records. The RA API, the CLI and the
//! self-service page all come through here, so every rule is enforced once.
//!
//! Each state change and its audit record commit in one transaction; the
//! caller gets a result only after the commit (SPEC §10).

use std::sync::Arc;

use crate::clock::Clock;

use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ca::{CaError, CaKeyPair};
use crate::config::Config;
use crate::domain::lifecycle::{self, Transition, TransitionError};
use crate::domain::{CertStatus, Channel, Serial};
use crate::issuance::Profile;
use crate::issuance::certificate::BuildError;
use crate::issuance::certificate::IssuedCertificate;
use crate::issuance::csr::VerifiedCsr;
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
use crate::store::idempotency::{self, Answer, IdempotencyKey, Remembered};
use crate::store::{Store, StoreError};

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
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CertificateRecord {
    /// Lowercase hex, no leading zero bytes.
    #[schema(example = "4f3a09c2d1e8b7a6954321fedcba9876")]
    pub serial: String,
    /// `good`, `suspended` or `revoked`.
    #[schema(value_type = String, example = "good")]
    pub status: &'static str,
    /// Past notAfter (derived, never stored).
    pub expired: bool,
    /// Null when good, `certificateHold` when suspended, the RFC 5280 reason when revoked.
    #[schema(value_type = Option<String>, example = "certificateHold")]
    pub revocation_reason: Option<&'static str>,
    /// RFC 3339 UTC: when the current status began.
    pub status_since: String,
    pub subscriber_code: String,
    pub card_number: String,
    pub profile: String,
    /// RFC 3339 UTC.
    pub not_before: String,
    /// RFC 3339 UTC.
    pub not_after: String,
    /// The certificate in PEM.
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

/// Makes a use case idempotent: the answer to remember is rendered from the
/// use case's result and stored with the key in the transaction of the
/// change, and a key already answered ends the use case with that answer
/// and no change (SPEC §7 `Idempotency-Key`).
pub struct Idempotency<'a, T> {
    pub key: &'a IdempotencyKey,
    /// The answer the caller sends for this result (e.g. HTTP status and JSON).
    pub answer: &'a dyn Fn(&T) -> Answer,
}

/// What an idempotent use case did.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The change happened (and its answer is remembered, if a key was given).
    Done(T),
    /// The key was answered before: nothing changed. The caller checks that
    /// the remembered request is this one ([`Remembered::answers`]).
    Replayed(Remembered),
}

impl<T> Outcome<T> {
    /// The result of a use case run without a key, which cannot be a replay.
    fn fresh(self) -> Result<T, AuthorityError> {
        match self {
            Self::Done(value) => Ok(value),
            Self::Replayed(_) => Err(AuthorityError::Internal(
                "replayed an answer without an idempotency key".into(),
            )),
        }
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

impl From<rusqlite::Error> for CrlCommitError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// The sync window of SPEC §6: how long after a change relying parties may
/// still see the old status, and where publication stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncWindow {
    pub ocsp_max_age: time::Duration,
    pub delta_crl_interval: time::Duration,
    pub full_crl_interval: time::Duration,
    pub last_full: Option<CrlSummary>,
    pub last_delta: Option<CrlSummary>,
    /// The oldest status change that no published CRL reflects yet.
    pub oldest_unpublished_change: Option<OffsetDateTime>,
}

impl SyncWindow {
    /// For a delta-aware relying party: the larger of the OCSP max-age and
    /// the delta CRL interval.
    pub fn worst_case(&self) -> time::Duration {
        self.ocsp_max_age.max(self.delta_crl_interval)
    }
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
    /// One publication at a time in this process (API, scheduler): they
    /// would only take each other's CRL numbers. Other processes (the CLI)
    /// are handled in `publish_one`.
    publishing: std::sync::Mutex<()>,
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
            publishing: std::sync::Mutex::new(()),
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

    /// The clock's untruncated time, for scheduling.
    pub fn precise_now(&self) -> OffsetDateTime {
        self.clock.precise_now()
    }

    /// Issues a certificate: checks everything first, then signs and commits
    /// the subscriber, card, certificate, history and audit record together.
    pub fn issue(
        &self,
        request: &IssueRequest<'_>,
        actor: Actor<'_>,
    ) -> Result<CertificateRecord, AuthorityError> {
        self.issue_once(request, actor, None)?.fresh()
    }

    /// [`Self::issue`], answering a key at most once.
    pub fn issue_once(
        &self,
        request: &IssueRequest<'_>,
        actor: Actor<'_>,
        once: Option<&Idempotency<'_, CertificateRecord>>,
    ) -> Result<Outcome<CertificateRecord>, AuthorityError> {
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
        // Signed before the transaction, so that writers wait on the store only.
        let mut signed = self.sign(&identity, profile, &csr, now)?;
        self.commit(once, now, |tx| -> Result<_, AuthorityError> {
            let mut attempts = 1;
            while certs::serial_exists(tx, &signed.0)? {
                if attempts == SERIAL_ATTEMPTS {
                    return Err(AuthorityError::Internal(
                        "could not draw an unused serial".into(),
                    ));
                }
                signed = self.sign(&identity, profile, &csr, now)?;
                attempts += 1;
            }
            let (serial, issued) = &signed;
            certs::upsert_subscriber_and_card(tx, &identity.code, &identity.name, &identity.card_number, now)?;
            let new = NewCertificate {
                serial,
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
            let row = certs::get_certificate(tx, serial)?
                .ok_or_else(|| AuthorityError::Internal("issued certificate not found".into()))?;
            Ok(CertificateRecord::new(&row, now))
        })
    }

    /// Draws a serial and signs the certificate with it.
    fn sign(
        &self,
        identity: &SubscriberIdentity,
        profile: &Profile,
        csr: &VerifiedCsr,
        now: OffsetDateTime,
    ) -> Result<(Serial, IssuedCertificate), AuthorityError> {
        let serial = self.new_serial()?;
        let issued = build_certificate(
            identity,
            &self.config.country,
            profile,
            csr,
            &serial,
            &self.urls,
            &self.issuing,
            now,
        )?;
        Ok((serial, issued))
    }

    /// Runs `change` as one atomic change. With a key, a remembered answer
    /// ends it before any change, and otherwise the answer to its result is
    /// remembered in the same transaction.
    fn commit<T, E>(
        &self,
        once: Option<&Idempotency<'_, T>>,
        now: OffsetDateTime,
        change: impl FnOnce(&rusqlite::Connection) -> Result<T, E>,
    ) -> Result<Outcome<T>, E>
    where
        E: From<StoreError>,
    {
        let alive_since = now - self.config.idempotency_ttl;
        self.store.write(|tx| {
            if let Some(once) = once
                && let Some(prior) = idempotency::recall(tx, once.key, alive_since)?
            {
                return Ok(Outcome::Replayed(prior));
            }
            let value = change(tx)?;
            if let Some(once) = once {
                idempotency::remember(tx, once.key, &(once.answer)(&value), now, alive_since)?;
            }
            Ok(Outcome::Done(value))
        })
    }

    /// The live answer remembered for a key, if any (a read: no lock taken).
    pub fn recall(&self, key: &IdempotencyKey) -> Result<Option<Remembered>, AuthorityError> {
        let alive_since = self.now() - self.config.idempotency_ttl;
        Ok(self
            .store
            .with_reader(|conn| idempotency::recall(conn, key, alive_since))?)
    }

    /// Remembers the answer to a refused request (nothing changed), unless
    /// the key was answered meanwhile, in which case that answer stands.
    pub fn remember_refusal(
        &self,
        key: &IdempotencyKey,
        answer: Answer,
    ) -> Result<Outcome<Answer>, AuthorityError> {
        let once = Idempotency {
            key,
            answer: &|answer: &Answer| answer.clone(),
        };
        self.commit(Some(&once), self.now(), |_| -> Result<_, AuthorityError> {
            Ok(answer)
        })
    }

    /// The promised sync window (SPEC §6) and where publication stands.
    pub fn sync_window(&self) -> Result<SyncWindow, AuthorityError> {
        let (last_full, last_delta, oldest_unpublished_change) =
            self.store.read(|tx| -> Result<_, AuthorityError> {
                let full = crls::latest(tx, CrlKind::Full)?;
                let delta = crls::latest(tx, CrlKind::Delta)?;
                let covered = [&full, &delta]
                    .into_iter()
                    .flatten()
                    .map(|c| c.covers_seq)
                    .max()
                    .unwrap_or(0);
                Ok((full, delta, crls::oldest_change_after(tx, covered)?))
            })?;
        Ok(SyncWindow {
            ocsp_max_age: self.config.ocsp_max_age,
            delta_crl_interval: self.config.delta_crl_interval,
            full_crl_interval: self.config.full_crl_interval,
            last_full,
            last_delta,
            oldest_unpublished_change,
        })
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
        self.change_status_once(serial, transition, note, actor, None)?
            .fresh()
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
        let now = self.now();
        self.commit(once, now, |tx| -> Result<_, AuthorityError> {
            let row = certs::get_certificate(tx, serial)?
                .ok_or_else(|| AuthorityError::NotFound(format!("certificate {serial}")))?;
            let next = lifecycle::apply(row.status, row.not_after, transition, now)?;
            self.record_change(tx, &row, next, transition, note, actor, now)?;
            let row = certs::get_certificate(tx, serial)?.unwrap_or(row);
            Ok(CertificateRecord::new(&row, now))
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
        self.change_card_once(card_number, transition, note, actor, None)?
            .fresh()
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
        let now = self.now();
        self.commit(once, now, |tx| -> Result<_, AuthorityError> {
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
            let rows = certs::certificates_of_card(tx, card_number)?.unwrap_or_default();
            Ok(rows
                .iter()
                .map(|r| CertificateRecord::new(r, now))
                .collect())
        })
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
        self.publish_once(kind, actor, None)?.fresh()
    }

    /// [`Self::publish`], answering a key at most once. The key is
    /// remembered with the CRL asked for.
    pub fn publish_once(
        &self,
        kind: CrlKind,
        actor: &str,
        once: Option<&Idempotency<'_, CrlSummary>>,
    ) -> Result<Outcome<CrlSummary>, AuthorityError> {
        let _one_at_a_time = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        match kind {
            CrlKind::Full => {
                let full = self.publish_one(CrlKind::Full, actor, once)?;
                if let Outcome::Done(_) = full {
                    self.publish_one(CrlKind::Delta, actor, None)?;
                }
                Ok(full)
            }
            CrlKind::Delta => {
                if self
                    .store
                    .read(|tx| crls::latest(tx, CrlKind::Full))?
                    .is_none()
                {
                    self.publish_one(CrlKind::Full, actor, None)?;
                }
                self.publish_one(CrlKind::Delta, actor, once)
            }
        }
    }

    /// Publishes one CRL. First optimistically: built from a read snapshot,
    /// so that status changes are not held up while a large CRL is encoded
    /// and signed, and recorded only if no other publisher (another process
    /// on the same store) took its number meanwhile. After
    /// [`OPTIMISTIC_PUBLISH_ATTEMPTS`] lost races, it is built inside the
    /// write transaction, which no publisher can overtake: every publication
    /// completes, however busy the others.
    fn publish_one(
        &self,
        kind: CrlKind,
        actor: &str,
        once: Option<&Idempotency<'_, CrlSummary>>,
    ) -> Result<Outcome<CrlSummary>, AuthorityError> {
        for _ in 0..OPTIMISTIC_PUBLISH_ATTEMPTS {
            let (summary, der) = self.store.read(|tx| self.build_crl(tx, kind))?;
            if let Some(outcome) = self.commit_crl(&summary, &der, actor, once)? {
                if matches!(outcome, Outcome::Done(_)) {
                    self.write_crl_files(&summary, &der);
                }
                return Ok(outcome);
            }
        }
        let now = self.now();
        let mut der = Vec::new();
        let outcome = self.commit(once, now, |tx| -> Result<_, AuthorityError> {
            let (summary, signed) = self.build_crl(tx, kind)?;
            self.record_crl(tx, &summary, &signed, actor, now)?;
            der = signed;
            Ok(summary)
        })?;
        if let Outcome::Done(summary) = &outcome {
            self.write_crl_files(summary, &der);
        }
        Ok(outcome)
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
        self.sign_list(summary, scope, list)
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
        self.sign_list(summary, scope, list)
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

    /// Frames and signs a CRL around its entries.
    fn sign_list(
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

    /// Records a CRL built from an earlier snapshot if its number is still
    /// the next one (and, for a delta, its base still the newest full CRL).
    /// Returns `None` to retry.
    fn commit_crl(
        &self,
        summary: &CrlSummary,
        der: &[u8],
        actor: &str,
        once: Option<&Idempotency<'_, CrlSummary>>,
    ) -> Result<Option<Outcome<CrlSummary>>, AuthorityError> {
        let now = self.now();
        let committed = self.commit(once, now, |tx| -> Result<_, CrlCommitError> {
            if crls::highest_number(tx)? + 1 != summary.number {
                return Err(CrlCommitError::Stale);
            }
            if summary.base_number.is_some()
                && crls::latest(tx, CrlKind::Full)?.map(|f| f.number) != summary.base_number
            {
                return Err(CrlCommitError::Stale);
            }
            self.record_crl(tx, summary, der, actor, now)
                .map_err(CrlCommitError::Failed)?;
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
        tx: &rusqlite::Connection,
        summary: &CrlSummary,
        der: &[u8],
        actor: &str,
        now: OffsetDateTime,
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
                at: now,
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
