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
mod tests;
