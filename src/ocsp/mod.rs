//! The OCSP responder ([RFC 6960](https://www.rfc-editor.org/rfc/rfc6960), profiled by
//! [RFC 5019](https://www.rfc-editor.org/rfc/rfc5019)); SPEC §5.
//!
//! A read-side publisher: it decodes a request ([`request`]), reads each
//! certificate's status with one indexed lookup ([`lookup`]), decides the
//! answer ([`status`], pure), and serves a pre-signed response from
//! [`cache`] when the status version still matches, or signs a new one with
//! the delegated responder key ([`response`]). It never writes the store.
//! A cached response whose version was confirmed in the store's current
//! committed state ([`commits`]: nothing committed since) is served without
//! a lookup; so the hot path is a read of SQLite's WAL-index header (mapped) and
//! a memory copy, and one indexed lookup per certificate after any commit.
//! HTTP lives in `http::ocsp`; this module knows nothing of it.

pub mod cache;
pub mod commits;
pub mod lookup;
pub mod metrics;
pub mod request;
pub mod response;
pub mod status;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use der::{Decode, Encode};
use time::{Duration, OffsetDateTime};

use crate::ca::{CaCertificate, CaError, CaKeyPair};
use crate::config::Config;
use crate::store::certificates::StatusVersion;
use crate::store::{StoreError, StoreReader};
use cache::{
    CacheEntry, CacheKey, ConfirmedStatus, KnownRequest, KnownRequests, ResponseCache,
    SignedResponse, StatusMemo,
};
use commits::CommitMarker;
use lookup::StatusReader;
use metrics::Metrics;
use request::{CertId, IssuerHashes, Nonce, RequestError};
use response::{ResponseSigner, ResponseStatus, SingleAnswer};
use status::{SingleStatus, refresh_due, still_fresh};

/// Why the responder could not start.
#[derive(Debug, thiserror::Error)]
pub enum ResponderError {
    #[error("OCSP responder key (ca.ocsp_cert / ca.ocsp_key): {0}")]
    Key(#[from] CaError),
    #[error(
        "the OCSP responder certificate (ca.ocsp_cert) is not issued by the issuing CA (ca.issuing_cert): clients could not verify its responses (RFC 6960 §4.2.2.2)"
    )]
    NotDelegated,
    #[error("OCSP responder store connections: {0}")]
    Store(#[from] StoreError),
}

/// What the client gets.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A successful answer to a request without a nonce: HTTP caches may
    /// keep it until nextUpdate (RFC 5019 §6.2).
    Cacheable(Arc<SignedResponse>),
    /// An error status, or an answer echoing a nonce: never cached.
    Uncacheable { status: ResponseStatus, der: Bytes },
}

impl Answer {
    pub fn status(&self) -> ResponseStatus {
        match self {
            Self::Cacheable(_) => ResponseStatus::Successful,
            Self::Uncacheable { status, .. } => *status,
        }
    }

    /// The DER OCSPResponse.
    pub fn der(&self) -> &Bytes {
        match self {
            Self::Cacheable(signed) => &signed.der,
            Self::Uncacheable { der, .. } => der,
        }
    }

    fn error(status: ResponseStatus) -> Self {
        Self::Uncacheable {
            status,
            der: Bytes::from_static(status.error_response()),
        }
    }
}

impl RequestError {
    pub fn status(&self) -> ResponseStatus {
        match self {
            Self::Malformed(_) => ResponseStatus::MalformedRequest,
            Self::Unauthorized => ResponseStatus::Unauthorized,
        }
    }
}

/// What one [`Responder::refresh`] pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    /// Responses signed again before they passed half their validity.
    pub resigned: usize,
    /// Responses nobody received, dropped once past half their validity.
    pub dropped: usize,
    /// Responses left as they were after a store or signing failure
    /// (already logged); a request re-signs them if they pass half.
    pub failed: usize,
}

/// Runs [`Responder::refresh`] every [`status::refresh_period`] of the
/// responses' validity, on the blocking pool so that signatures never hold
/// up a runtime thread, until the task is aborted. `now` is the clock.
pub async fn refresh_forever(
    responder: Arc<Responder>,
    now: impl Fn() -> OffsetDateTime + Send + Sync + 'static,
) {
    let now = Arc::new(now);
    let mut ticks = tokio::time::interval(status::refresh_period(responder.max_age));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (responder, now) = (Arc::clone(&responder), Arc::clone(&now));
        match tokio::task::spawn_blocking(move || responder.refresh(now())).await {
            Ok(done) if done != Refreshed::default() => {
                tracing::debug!(?done, "OCSP responses refreshed");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "OCSP refresh pass failed"),
        }
    }
}

/// The responder: the issuer it answers for, its signing key, the status
/// lookups, the cache of signed responses and the metrics.
#[derive(Debug)]
pub struct Responder {
    issuer: IssuerHashes,
    signer: ResponseSigner,
    statuses: StatusReader,
    cache: ResponseCache,
    /// Statuses that answers signed per request looked up.
    confirmed: StatusMemo,
    /// Requests answered from the cache, decoded.
    known: KnownRequests,
    metrics: Metrics,
    max_age: Duration,
    max_cert_ids: usize,
}

impl Responder {
    /// Loads the responder key (`ca.ocsp_cert`, `ca.ocsp_key`), checks that
    /// the issuing CA issued it, and opens its store connections.
    pub fn open(
        config: &Config,
        issuing: &CaCertificate,
        store: &StoreReader,
    ) -> Result<Self, ResponderError> {
        let key = CaKeyPair::load(&config.ocsp_cert, &config.ocsp_key)?;
        Self::new(
            key,
            issuing,
            StatusReader::open(store)?,
            config.ocsp_max_age,
            config.ocsp_max_cert_ids,
        )
    }

    /// A responder from its parts: the responder key, the issuer it answers
    /// for, its status lookups, the validity of its responses and the most
    /// CertIDs it answers in one request.
    pub fn new(
        key: CaKeyPair,
        issuing: &CaCertificate,
        statuses: StatusReader,
        max_age: Duration,
        max_cert_ids: usize,
    ) -> Result<Self, ResponderError> {
        if !issued_by(&key.cert, issuing) {
            return Err(ResponderError::NotDelegated);
        }
        Ok(Self {
            issuer: IssuerHashes::new(&issuing.subject_der, &issuing.public_key_bits),
            signer: ResponseSigner::new(key),
            statuses,
            cache: ResponseCache::default(),
            confirmed: StatusMemo::default(),
            known: KnownRequests::with_capacity(cache::KNOWN_REQUESTS),
            metrics: Metrics::default(),
            max_age,
            max_cert_ids,
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Answers a DER OCSPRequest at `now`. Never fails: every problem is an
    /// OCSP error status.
    pub fn respond(&self, request_der: &[u8], now: OffsetDateTime) -> Answer {
        let answer = match self.known.get(request_der) {
            Some(known) => self.answer_from_cache(&known, now),
            None => self.decode_and_answer(request_der, now),
        }
        .unwrap_or_else(Answer::error);
        self.metrics.response(answer.status());
        answer
    }

    /// Answers a request not seen before (or forgotten), remembering its
    /// decoding if its answer is one the cache can hold.
    fn decode_and_answer(
        &self,
        request_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<Answer, ResponseStatus> {
        let request = request::decode(request_der, &self.issuer, self.max_cert_ids)
            .map_err(|e| e.status())?;
        match (&request.nonce, &request.cert_ids[..]) {
            (None, [cert_id]) => {
                let known = Arc::new(KnownRequest {
                    key: cache_key(cert_id),
                    cert_id: cert_id.clone(),
                });
                self.known
                    .insert(request_der.into(), Arc::clone(&known), |_| true);
                self.answer_from_cache(&known, now)
            }
            (nonce, cert_ids) => self.answer_fresh(cert_ids, nonce.as_ref(), now),
        }
    }

    /// Answers with an error status without looking at the request (it was
    /// too large or never arrived), counting it like any other answer.
    pub fn refuse(&self, status: ResponseStatus) -> Answer {
        self.metrics.response(status);
        Answer::error(status)
    }

    /// The hot path. The store's commit marker is read first; a cached
    /// response still in the first half of its validity is served as is if
    /// nothing was committed since its status version was last read (no
    /// lookup at all), or else if one indexed lookup finds the same version.
    /// Otherwise a new response is signed and cached.
    fn answer_from_cache(
        &self,
        known: &Arc<KnownRequest>,
        now: OffsetDateTime,
    ) -> Result<Answer, ResponseStatus> {
        let (cert_id, key) = (&known.cert_id, &known.key);
        // Read before the lookup: any version read afterwards is at least as
        // new as the state this marker names.
        let marker = self.statuses.commit_marker();
        let max_age = self.max_age;
        let fresh = |e: &CacheEntry| still_fresh(e.response.this_update, max_age, now);
        let cached = self.cache.get(key).filter(fresh);
        if let Some(entry) = cached
            .as_ref()
            .filter(|e| marker.is_some() && e.confirmed_at == marker)
        {
            return Ok(self.hit(entry));
        }
        let stored = self.lookup(cert_id)?;
        let version = stored.as_ref().map(|s| s.version);
        if let Some(entry) = cached.filter(|e| e.version == version) {
            // Remember that it is current in this state, so that the next
            // requests need no lookup until something is committed.
            let confirmed = CacheEntry {
                confirmed_at: marker,
                ..entry.clone()
            };
            self.cache.insert(key.clone(), confirmed, fresh);
            return Ok(self.hit(&entry));
        }
        self.metrics.cache_miss();
        let status = decide(stored);
        self.metrics.cert_status(status);
        let entry = self.signed_entry(Arc::clone(known), version, status, marker, now)?;
        let signed = Arc::clone(&entry.response);
        signed.mark_served();
        self.cache.insert(key.clone(), entry, fresh);
        Ok(Answer::Cacheable(signed))
    }

    fn hit(&self, entry: &CacheEntry) -> Answer {
        self.metrics.cache_hit();
        self.metrics.cert_status(entry.status);
        entry.response.mark_served();
        Answer::Cacheable(Arc::clone(&entry.response))
    }

    /// A cache entry for `request` with a response signed now, stating the
    /// status of `version` as confirmed at `marker`.
    fn signed_entry(
        &self,
        request: Arc<KnownRequest>,
        version: Option<i64>,
        status: SingleStatus,
        marker: Option<CommitMarker>,
        now: OffsetDateTime,
    ) -> Result<CacheEntry, ResponseStatus> {
        let answer = SingleAnswer {
            cert_id: &request.cert_id,
            status,
        };
        let (der, (this_update, next_update)) = self.sign(&[answer], None, now)?;
        Ok(CacheEntry {
            version,
            status,
            confirmed_at: marker,
            response: Arc::new(SignedResponse::new(der, this_update, next_update)),
            request,
        })
    }

    /// Re-signs, ahead of time, the cached responses that are a quarter
    /// through their validity and that a client received since they were
    /// signed; drops those nobody received that can no longer be served.
    /// Requests then find a fresh response instead of signing one (issue 6):
    /// this runs beside them, one signature at a time, holding no lock while
    /// it signs. It never makes an answer staler: a re-signed response
    /// states the status read now (or confirmed in the current committed
    /// state), and replaces its entry only if no request replaced it since.
    /// An entry the refresher misses (store trouble, a pass that overran)
    /// is still re-signed by the first request that finds it past half.
    pub fn refresh(&self, now: OffsetDateTime) -> Refreshed {
        let max_age = self.max_age;
        let mut done = Refreshed::default();
        for (key, entry) in self
            .cache
            .due(|e| refresh_due(e.response.this_update, max_age, now))
        {
            let expected = Arc::clone(&entry.response);
            let replacement = if entry.response.was_served() {
                match self.resigned(entry, now) {
                    Ok(resigned) => Some(resigned),
                    Err(_) => {
                        done.failed += 1;
                        continue;
                    }
                }
            } else if still_fresh(entry.response.this_update, max_age, now) {
                // Nobody asked yet; look again at the next pass.
                continue;
            } else {
                None
            };
            let resigned = replacement.is_some();
            if self.cache.replace(key, &expected, replacement) {
                match resigned {
                    true => done.resigned += 1,
                    false => done.dropped += 1,
                }
            }
        }
        self.metrics.refresh(done.resigned, done.dropped);
        done
    }

    /// `entry` signed again with the status current now.
    fn resigned(
        &self,
        entry: CacheEntry,
        now: OffsetDateTime,
    ) -> Result<CacheEntry, ResponseStatus> {
        let marker = self.statuses.commit_marker();
        let (version, status) = if marker.is_some() && entry.confirmed_at == marker {
            (entry.version, entry.status)
        } else {
            let stored = self.lookup(&entry.request.cert_id)?;
            (stored.as_ref().map(|s| s.version), decide(stored))
        };
        self.signed_entry(entry.request, version, status, marker, now)
    }

    /// A response signed for this request only: it echoes a nonce, or
    /// answers several CertIDs at once (RFC 5019 clients ask for one).
    fn answer_fresh(
        &self,
        cert_ids: &[CertId],
        nonce: Option<&Nonce>,
        now: OffsetDateTime,
    ) -> Result<Answer, ResponseStatus> {
        let marker = self.statuses.commit_marker();
        let answers = cert_ids
            .iter()
            .map(|cert_id| {
                let status = self.current_status(cert_id, marker)?;
                self.metrics.cert_status(status);
                Ok(SingleAnswer { cert_id, status })
            })
            .collect::<Result<Vec<_>, ResponseStatus>>()?;
        let (der, (this_update, next_update)) = self.sign(&answers, nonce, now)?;
        Ok(match nonce {
            Some(_) => Answer::Uncacheable {
                status: ResponseStatus::Successful,
                der: der.into(),
            },
            None => Answer::Cacheable(Arc::new(SignedResponse::new(der, this_update, next_update))),
        })
    }

    /// A CertID's status now: what a cached response or an earlier lookup
    /// says if it was confirmed in the current committed state, else one
    /// indexed lookup (remembered for the next answer until a commit).
    fn current_status(
        &self,
        cert_id: &CertId,
        marker: Option<CommitMarker>,
    ) -> Result<SingleStatus, ResponseStatus> {
        let key = cache_key(cert_id);
        let Some(marker) = marker else {
            return Ok(decide(self.lookup(cert_id)?));
        };
        let cached = self.cache.get(&key);
        if let Some(entry) = cached.filter(|e| e.confirmed_at == Some(marker)) {
            return Ok(entry.status);
        }
        let remembered = self.confirmed.get(&key);
        if let Some(known) = remembered.filter(|c| c.confirmed_at == marker) {
            return Ok(known.status);
        }
        let status = decide(self.lookup(cert_id)?);
        let confirmed = ConfirmedStatus {
            status,
            confirmed_at: marker,
        };
        self.confirmed
            .insert(key, confirmed, |c| c.confirmed_at == marker);
        Ok(status)
    }

    /// A store failure is transient (the database is busy or being
    /// replaced): the client should retry, RFC 6960 §2.3 `tryLater`.
    fn lookup(&self, cert_id: &CertId) -> Result<Option<StatusVersion>, ResponseStatus> {
        let Some(serial) = &cert_id.serial else {
            return Ok(None);
        };
        self.metrics.store_lookup();
        self.statuses.status(serial).map_err(|e| {
            tracing::warn!(error = %e, "OCSP status lookup failed");
            ResponseStatus::TryLater
        })
    }

    /// A signed response and its (thisUpdate, nextUpdate).
    fn sign(
        &self,
        answers: &[SingleAnswer<'_>],
        nonce: Option<&Nonce>,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, (OffsetDateTime, OffsetDateTime)), ResponseStatus> {
        let started = Instant::now();
        let this_update = now.replace_nanosecond(0).unwrap_or(now);
        // A response must not claim validity beyond its signer's certificate.
        let next_update = (this_update + self.max_age).min(self.signer.certificate_not_after());
        let der = self
            .signer
            .sign(answers, nonce, this_update, next_update)
            .map_err(|e| {
                tracing::error!(error = %e, "OCSP response signing failed");
                ResponseStatus::InternalError
            })?;
        self.metrics.signed(started.elapsed());
        Ok((der, (this_update, next_update)))
    }
}

fn cache_key(cert_id: &CertId) -> CacheKey {
    CacheKey {
        serial_der: cert_id.serial_der.as_slice().into(),
        form: cert_id.form,
    }
}

fn decide(stored: Option<StatusVersion>) -> SingleStatus {
    status::decide(stored.map(|s| (s.status, s.since)))
}

/// Whether `cert` names `issuer` as its issuer. Signature checks are the
/// clients' job; this catches a responder certificate from another hierarchy.
fn issued_by(cert: &CaCertificate, issuer: &CaCertificate) -> bool {
    x509_cert::Certificate::from_der(&cert.der)
        .ok()
        .and_then(|c| c.tbs_certificate().issuer().to_der().ok())
        .is_some_and(|name| name == issuer.subject_der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devkeys;
    use crate::domain::{CertStatus, Channel, RevocationReason, Serial};
    use crate::ocsp::request::HashAlgorithm;
    use crate::ocsp::request::tests::{cert_id_for, nonce_extension, request_der};
    use crate::store::Store;
    use crate::store::certificates::NewCertificate;
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    /// A responder over a fresh store, with the dev hierarchy's keys.
    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<Store>,
        issuing: CaCertificate,
        responder: Responder,
        responder_key: Vec<u8>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            devkeys::generate(dir.path(), NOW).unwrap();
            let load =
                |cert, key| CaKeyPair::load(&dir.path().join(cert), &dir.path().join(key)).unwrap();
            let issuing = load(devkeys::ISSUING_CERT, devkeys::ISSUING_KEY).cert;
            let key = load(devkeys::OCSP_CERT, devkeys::OCSP_KEY);
            let responder_key = key.cert.public_key_bits.clone();
            let store = Store::open(&dir.path().join("eidca.sqlite3")).unwrap();
            let store = Arc::new(store);
            let statuses = StatusReader::open(&StoreReader::of(&store)).unwrap();
            let responder =
                Responder::new(key, &issuing, statuses, Duration::minutes(10), 3).unwrap();
            Self {
                _dir: dir,
                store,
                issuing,
                responder,
                responder_key,
            }
        }

        fn issue(&self, serial: &Serial) {
            self.store
                .write(|tx| -> Result<(), StoreError> {
                    tx.register_subscriber_and_card("A800000014", "Test", "TP03000001", NOW)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    let new = NewCertificate {
                        serial,
                        subscriber_code: "A800000014",
                        card_number: "TP03000001",
                        profile: "person-sign",
                        not_before: NOW,
                        not_after: NOW + Duration::days(365),
                        der: b"not a certificate",
                    };
                    tx.insert_certificate(&new, Channel::Cli, NOW)?;
                    Ok(())
                })
                .unwrap();
        }

        fn change(&self, serial: &Serial, status: CertStatus, at: OffsetDateTime) {
            self.store
                .write(|tx| tx.record_status(serial, status, at, "suspend", Channel::Cli, None))
                .unwrap();
        }

        fn request(&self, serials: &[&Serial], nonce: bool) -> Vec<u8> {
            let ids = serials
                .iter()
                .map(|s| {
                    cert_id_for(
                        HashAlgorithm::Sha1,
                        &s.der_integer_bytes(),
                        &self.issuing.subject_der,
                        &self.issuing.public_key_bits,
                    )
                })
                .collect();
            request_der(ids, nonce.then(|| vec![nonce_extension(16)]))
        }

        /// The answer's SingleResponses, after checking the signature.
        fn verified(&self, answer: &Answer) -> rasn_ocsp::ResponseData {
            let response: rasn_ocsp::OcspResponse = rasn::der::decode(answer.der()).unwrap();
            assert_eq!(response.status, rasn_ocsp::OcspResponseStatus::Successful);
            let bytes = response.bytes.unwrap();
            let basic: rasn_ocsp::BasicOcspResponse = rasn::der::decode(&bytes.response).unwrap();
            let tbs = rasn::der::encode(&basic.tbs_response_data).unwrap();
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.responder_key)
                .verify(&tbs, basic.signature.as_raw_slice())
                .expect("signature verifies with the responder key");
            assert_eq!(basic.certs.map(|c| c.len()), Some(1));
            basic.tbs_response_data
        }

        /// The certStatus of the first SingleResponse, signature checked.
        fn status_of(&self, answer: &Answer) -> rasn_ocsp::CertStatus {
            self.verified(answer).responses[0].cert_status.clone()
        }

        /// A fixture with one certificate issued, and its serial.
        fn issued() -> (Self, Serial) {
            let f = Self::new();
            let s = serial(1);
            f.issue(&s);
            (f, s)
        }
    }

    fn serial(n: u8) -> Serial {
        Serial::from_random([n; 16])
    }

    #[test]
    fn answers_good_revoked_and_unknown_in_one_signed_response() {
        let f = Fixture::new();
        let (good, held, never) = (serial(1), serial(2), serial(3));
        f.issue(&good);
        f.issue(&held);
        f.change(&held, CertStatus::Suspended, NOW);
        let answer = f
            .responder
            .respond(&f.request(&[&good, &held, &never], false), NOW);
        let data = f.verified(&answer);
        let statuses: Vec<_> = data
            .responses
            .iter()
            .map(|r| r.cert_status.clone())
            .collect();
        assert_eq!(statuses[0], rasn_ocsp::CertStatus::Good);
        let rasn_ocsp::CertStatus::Revoked(info) = &statuses[1] else {
            panic!("suspended must be revoked: {statuses:?}")
        };
        assert_eq!(
            info.revocation_reason,
            Some(rasn_pkix::CrlReason::CertificateHold)
        );
        assert_eq!(info.revocation_time.timestamp(), NOW.unix_timestamp());
        assert_eq!(statuses[2], rasn_ocsp::CertStatus::Unknown(()));
        let response = &data.responses[0];
        assert_eq!(response.this_update.timestamp(), NOW.unix_timestamp());
        assert_eq!(
            response.next_update.map(|t| t.timestamp()),
            Some((NOW + Duration::minutes(10)).unix_timestamp())
        );
        let key_hash =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &f.responder_key);
        assert_eq!(
            data.responder_id,
            rasn_ocsp::ResponderId::ByKey(key_hash.as_ref().to_vec().into())
        );
    }

    #[test]
    fn cached_response_is_served_until_the_status_version_changes() {
        let (f, s) = Fixture::issued();
        let request = f.request(&[&s], false);
        let first = f.responder.respond(&request, NOW);
        let again = f.responder.respond(&request, NOW + Duration::seconds(60));
        assert_eq!(first.der(), again.der(), "served from the cache");
        assert_eq!(f.responder.metrics().cache(), (1, 1));
        assert_eq!(
            f.responder.metrics().store_lookups(),
            1,
            "nothing committed since the first answer: no lookup"
        );

        f.change(&s, CertStatus::Suspended, NOW + Duration::seconds(61));
        let after = f.responder.respond(&request, NOW + Duration::seconds(62));
        assert_ne!(after.der(), first.der());
        assert!(matches!(
            f.status_of(&after),
            rasn_ocsp::CertStatus::Revoked(_)
        ));
        f.change(&s, CertStatus::Good, NOW + Duration::seconds(63));
        let resumed = f.responder.respond(&request, NOW + Duration::seconds(63));
        assert_eq!(f.status_of(&resumed), rasn_ocsp::CertStatus::Good);
        f.change(
            &s,
            CertStatus::Revoked(RevocationReason::KeyCompromise),
            NOW + Duration::seconds(64),
        );
        let revoked = f.responder.respond(&request, NOW + Duration::seconds(64));
        let rasn_ocsp::CertStatus::Revoked(info) = &f.status_of(&revoked) else {
            panic!("revoked expected")
        };
        assert_eq!(
            info.revocation_reason,
            Some(rasn_pkix::CrlReason::KeyCompromise)
        );
    }

    #[test]
    fn a_commit_elsewhere_costs_one_lookup_and_no_signature() {
        let f = Fixture::new();
        let (s, other) = (serial(1), serial(2));
        f.issue(&s);
        let request = f.request(&[&s], false);
        let first = f.responder.respond(&request, NOW);
        f.issue(&other);
        for _ in 0..3 {
            assert_eq!(f.responder.respond(&request, NOW).der(), first.der());
        }
        assert_eq!(f.responder.metrics().store_lookups(), 2);
        assert_eq!(f.responder.metrics().cache(), (3, 1));
    }

    #[test]
    fn cached_response_is_resigned_past_half_its_validity() {
        let (f, s) = Fixture::issued();
        let request = f.request(&[&s], false);
        let first = f.responder.respond(&request, NOW);
        let late = f.responder.respond(&request, NOW + Duration::minutes(5));
        assert_ne!(first.der(), late.der());
        let Answer::Cacheable(signed) = late else {
            panic!("no nonce: cacheable")
        };
        assert_eq!(signed.this_update, NOW + Duration::minutes(5));
    }

    fn this_update(answer: &Answer) -> OffsetDateTime {
        match answer {
            Answer::Cacheable(signed) => signed.this_update,
            Answer::Uncacheable { .. } => panic!("no nonce: cacheable"),
        }
    }

    #[test]
    fn the_refresher_re_signs_what_clients_receive_before_half_its_validity() {
        let (f, s) = Fixture::issued();
        let request = f.request(&[&s], false);
        f.responder.respond(&request, NOW);
        assert_eq!(
            f.responder.refresh(NOW + Duration::minutes(2)),
            Refreshed::default(),
            "not yet a quarter through"
        );
        let resigned_at = NOW + Duration::minutes(3);
        assert_eq!(f.responder.refresh(resigned_at).resigned, 1);
        // Past half the first response's validity, the request finds the
        // refreshed one: a hit, no signature while the client waits.
        let late = f.responder.respond(&request, NOW + Duration::minutes(6));
        assert_eq!(this_update(&late), resigned_at);
        assert_eq!(f.responder.metrics().cache(), (1, 1));
        assert_eq!(f.status_of(&late), rasn_ocsp::CertStatus::Good);
    }

    #[test]
    fn the_refresher_drops_what_nobody_asked_for_once_it_cannot_be_served() {
        let (f, s) = Fixture::issued();
        f.responder.respond(&f.request(&[&s], false), NOW);
        let resigned_at = NOW + Duration::minutes(3);
        assert_eq!(f.responder.refresh(resigned_at).resigned, 1);
        // Nobody received the re-signed response: it is not signed again,
        // and leaves the cache when it could no longer be served.
        let quarter = resigned_at + Duration::minutes(3);
        assert_eq!(f.responder.refresh(quarter), Refreshed::default());
        let half = resigned_at + Duration::minutes(5);
        assert_eq!(
            f.responder.refresh(half),
            Refreshed {
                dropped: 1,
                ..Refreshed::default()
            }
        );
        assert!(f.responder.cache.is_empty());
        let text = f.responder.metrics().render_prometheus();
        assert!(text.contains("eidca_ocsp_refreshed_total 1\n"), "{text}");
        assert!(text.contains("eidca_ocsp_refresh_dropped_total 1\n"));
    }

    #[test]
    fn a_refreshed_response_states_the_status_committed_before_it() {
        let (f, s) = Fixture::issued();
        let request = f.request(&[&s], false);
        f.responder.respond(&request, NOW);
        f.change(&s, CertStatus::Suspended, NOW + Duration::minutes(1));
        assert_eq!(f.responder.refresh(NOW + Duration::minutes(3)).resigned, 1);
        let lookups = f.responder.metrics().store_lookups();
        let held = f.responder.respond(&request, NOW + Duration::minutes(4));
        assert!(matches!(
            f.status_of(&held),
            rasn_ocsp::CertStatus::Revoked(_)
        ));
        assert_eq!(
            f.responder.metrics().store_lookups(),
            lookups,
            "confirmed by the refresher in the current state: no lookup"
        );
        assert_eq!(f.responder.metrics().cache(), (1, 1));
    }

    #[test]
    fn a_serial_issued_after_an_unknown_answer_is_good_at_once() {
        let f = Fixture::new();
        let s = serial(1);
        let request = f.request(&[&s], false);
        let before = f.responder.respond(&request, NOW);
        assert_eq!(f.status_of(&before), rasn_ocsp::CertStatus::Unknown(()));
        f.issue(&s);
        let after = f.responder.respond(&request, NOW);
        assert_eq!(f.status_of(&after), rasn_ocsp::CertStatus::Good);
    }

    #[test]
    fn nonce_answers_are_fresh_echo_the_nonce_and_are_not_cacheable() {
        let (f, s) = Fixture::issued();
        let request = f.request(&[&s], true);
        let answer = f.responder.respond(&request, NOW);
        assert!(matches!(
            answer,
            Answer::Uncacheable {
                status: ResponseStatus::Successful,
                ..
            }
        ));
        let extensions = f.verified(&answer).response_extensions.unwrap();
        assert_eq!(extensions.to_vec(), vec![nonce_extension(16)]);
        assert_eq!(f.responder.metrics().cache(), (0, 0));
        assert_eq!(f.responder.metrics().store_lookups(), 1);
    }

    #[test]
    fn a_nonce_answer_takes_the_status_of_a_confirmed_cache_entry() {
        let (f, s) = Fixture::issued();
        f.responder.respond(&f.request(&[&s], false), NOW);
        let nonce = f.request(&[&s], true);
        f.responder.respond(&nonce, NOW);
        assert_eq!(
            f.responder.metrics().store_lookups(),
            1,
            "confirmed: no lookup"
        );
        f.change(&s, CertStatus::Suspended, NOW);
        let held = f.responder.respond(&nonce, NOW);
        assert_eq!(
            f.responder.metrics().store_lookups(),
            2,
            "a commit: a lookup"
        );
        assert!(matches!(
            f.status_of(&held),
            rasn_ocsp::CertStatus::Revoked(_)
        ));
    }

    #[test]
    fn nonce_answers_look_a_status_up_once_per_commit() {
        let (f, s) = Fixture::issued();
        let nonce = f.request(&[&s], true);
        for _ in 0..3 {
            f.responder.respond(&nonce, NOW);
        }
        assert_eq!(f.responder.metrics().store_lookups(), 1);
        f.change(&s, CertStatus::Suspended, NOW);
        for _ in 0..3 {
            let held = f.responder.respond(&nonce, NOW);
            assert!(matches!(
                f.status_of(&held),
                rasn_ocsp::CertStatus::Revoked(_)
            ));
        }
        assert_eq!(f.responder.metrics().store_lookups(), 2);
        assert_eq!(
            f.responder.metrics().cache(),
            (0, 0),
            "nothing signed to keep"
        );
    }

    #[test]
    fn errors_are_bare_statuses_and_counted() {
        let f = Fixture::new();
        let too_many = f.request(&[&serial(1), &serial(2), &serial(3), &serial(4)], false);
        let other_issuer = request_der(
            vec![cert_id_for(HashAlgorithm::Sha1, &[1], b"name", b"key")],
            None,
        );
        for (der, status) in [
            (&b""[..], ResponseStatus::MalformedRequest),
            (&b"\x30\x80"[..], ResponseStatus::MalformedRequest),
            (&too_many[..], ResponseStatus::MalformedRequest),
            (&other_issuer[..], ResponseStatus::Unauthorized),
        ] {
            let answer = f.responder.respond(der, NOW);
            assert_eq!(answer.status(), status);
            assert_eq!(&answer.der()[..], status.error_response());
        }
        assert_eq!(
            f.responder
                .metrics()
                .responses(ResponseStatus::MalformedRequest),
            3
        );
        assert_eq!(
            f.responder
                .metrics()
                .responses(ResponseStatus::Unauthorized),
            1
        );
    }
}
