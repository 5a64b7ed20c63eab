//! The responder itself: it decodes a request, and serves a pre-signed
//! response from the cache when the status version still matches, or
//! looks the status up and signs a new one. A cached response whose version
//! was confirmed in the store's current committed state (nothing committed
//! since) is served without a lookup; so the hot path is a read of SQLite's
//! WAL-index header (mapped) and a memory copy, and one indexed lookup per
//! certificate after any commit.
//!
//! Answering is two steps: [`Responder::prepare`] answers whatever needs no
//! signature (cache hits, errors) and says what is left to sign;
//! [`Responder::sign`] signs it. The service runs the second step on the
//! bounded signing pool ([`Responder::respond_bounded`], SPEC §16); tools
//! and tests run both inline ([`Responder::respond`]). Only responses about
//! certificates in the store go into the cache: an answer for a serial
//! never issued is signed for its request alone, so that random serials
//! neither fill the cache nor keep the refresher busy.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use der::{Decode, Encode};
use time::{Duration, OffsetDateTime};

use super::cache::{
    self, CacheEntry, CacheKey, ConfirmedStatus, KnownRequest, KnownRequests, ResponseCache,
    SignedResponse, StatusMemo,
};
use super::commits::CommitMarker;
use super::lookup::StatusReader;
use super::metrics::Metrics;
use super::request::{self, CertId, IssuerHashes, Nonce, OcspRequest, RequestError};
use super::response::{ResponseSigner, ResponseStatus, SignError, SingleAnswer};
use super::signing::{Lane, SigningLimits, SigningPool};
use super::status::{self, SingleStatus, still_fresh};
use crate::ca::{CaCertificate, CaError, CaKeyPair};
use crate::config::Config;
use crate::signer::SignerError;
use crate::store::certificates::StatusVersion;
use crate::store::{StoreError, StoreReader};

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
    #[error("OCSP signing threads: {0}")]
    Threads(#[from] std::io::Error),
}

/// What the responder sends back for one request: the DER OCSPResponse,
/// and whether caches may keep it.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A successful answer to a request without a nonce: HTTP caches may
    /// keep it until nextUpdate (RFC 5019 §6.2).
    Cacheable(Arc<SignedResponse>),
    /// An error status, or an answer echoing a nonce: never cached.
    Uncacheable { status: ResponseStatus, der: Bytes },
}

impl Reply {
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

/// What a request needs once everything that takes no signature is done.
#[derive(Debug)]
enum Step {
    Answered(Reply),
    Sign(Signing),
}

/// The signature a request waits for.
#[derive(Debug)]
enum Signing {
    /// A response for the cache: one CertID without nonce, of a certificate
    /// in the store, that the cache holds no current answer for.
    ForCache {
        known: Arc<KnownRequest>,
        stored: StatusVersion,
        marker: Option<CommitMarker>,
        /// The request's DER, to remember decoded once its answer is
        /// cached (`None`: remembered already).
        remember: Option<Box<[u8]>>,
        /// A cached response of the same status version, past half its
        /// validity but not past nextUpdate: served if no key can sign.
        fallback: Option<CacheEntry>,
    },
    /// `unknown` for one CertID without nonce, never issued: signed for
    /// this request alone, never kept.
    Unknown(Arc<KnownRequest>),
    /// A nonce or several CertIDs: statuses looked up and signed for this
    /// request alone.
    PerRequest(OcspRequest),
}

impl Signing {
    fn lane(&self) -> Lane {
        match self {
            Self::ForCache { .. } => Lane::Cache,
            Self::Unknown(_) | Self::PerRequest(_) => Lane::PerRequest,
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

/// The responder: the issuer it answers for, its signing key, the status
/// lookups, the cache of signed responses and the metrics.
#[derive(Debug)]
pub struct Responder {
    issuer: IssuerHashes,
    signer: ResponseSigner,
    pub(super) statuses: StatusReader,
    pub(super) cache: ResponseCache,
    /// Statuses that answers signed per request looked up.
    pub(super) confirmed: StatusMemo,
    /// Requests answered from the cache, decoded.
    pub(super) known: KnownRequests,
    pub(super) metrics: Metrics,
    pub(super) max_age: Duration,
    max_cert_ids: usize,
    /// Where every signature a request waits for is made.
    pub(super) pool: SigningPool,
}

impl Responder {
    /// Loads the responder key (`ca.ocsp_cert`, `ca.ocsp_key`), checks that
    /// the issuing CA issued it, and opens its store connections.
    pub fn open(
        config: &Config,
        issuing: &CaCertificate,
        store: &StoreReader,
    ) -> Result<Self, ResponderError> {
        let key = CaKeyPair::load(&config.ocsp_cert, "ca.ocsp_key", &config.ocsp_key)?;
        let signing = SigningLimits {
            threads: config.ocsp_signing_threads,
            queue: config.ocsp_signing_queue,
        };
        Self::new(
            key,
            issuing,
            StatusReader::open(store)?,
            (config.ocsp_max_age, config.ocsp_max_cert_ids),
            signing,
        )
    }

    /// A responder from its parts: the responder key, the issuer it answers
    /// for, its status lookups, the validity of its responses and the most
    /// CertIDs it answers in one request, and its signing pool's size.
    pub fn new(
        key: CaKeyPair,
        issuing: &CaCertificate,
        statuses: StatusReader,
        (max_age, max_cert_ids): (Duration, usize),
        signing: SigningLimits,
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
            pool: SigningPool::start(signing)?,
        })
    }

    /// The key that signs the responses (`ca.ocsp_key`).
    pub fn key(&self) -> &crate::signer::Signer {
        self.signer.key()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The responder's metrics in the Prometheus text format, with the
    /// gauges of what it holds read now.
    pub fn render_prometheus(&self) -> String {
        self.metrics.cached_responses(self.cache.len());
        self.metrics.signing_queued(self.pool.queued());
        self.metrics.render_prometheus()
    }

    /// Answers a DER OCSPRequest at `now`, signing on the calling thread.
    /// Never fails: every problem is an OCSP error status. For tools and
    /// tests; the service answers with [`Self::respond_bounded`].
    pub fn respond(&self, request_der: &[u8], now: OffsetDateTime) -> Reply {
        let answer = match self.prepare(request_der, now) {
            Ok(Step::Answered(reply)) => Ok(reply),
            Ok(Step::Sign(signing)) => self.sign(signing, now),
            Err(status) => Err(status),
        }
        .unwrap_or_else(Reply::error);
        self.metrics.response(answer.status());
        answer
    }

    /// Answers a DER OCSPRequest at `now` as [`Self::respond`] does, but
    /// any signature it needs is made on the signing pool: this future
    /// never signs, and it answers `tryLater` at once when the pool's
    /// queue is full (SPEC §16).
    pub async fn respond_bounded(
        self: &Arc<Self>,
        request_der: &[u8],
        now: OffsetDateTime,
    ) -> Reply {
        let answer = match self.prepare(request_der, now) {
            Ok(Step::Answered(reply)) => reply,
            Ok(Step::Sign(signing)) => self.sign_on_pool(signing, now).await,
            Err(status) => Reply::error(status),
        };
        self.metrics.response(answer.status());
        answer
    }

    /// Hands `signing` to the pool and waits for its answer.
    async fn sign_on_pool(self: &Arc<Self>, signing: Signing, now: OffsetDateTime) -> Reply {
        let lane = signing.lane();
        let (sender, answer) = tokio::sync::oneshot::channel();
        let responder = Arc::clone(self);
        let job = move || {
            let _ = sender.send(responder.sign(signing, now));
        };
        if self.pool.submit(lane, job).is_err() {
            self.metrics.signing_refused();
            return Reply::error(ResponseStatus::TryLater);
        }
        match answer.await {
            Ok(signed) => signed.unwrap_or_else(Reply::error),
            // The job was dropped unrun (the pool is closing) or panicked.
            Err(_) => Reply::error(ResponseStatus::InternalError),
        }
    }

    /// Answers what needs no signature: errors, and requests the cache
    /// answers. A request seen before is not decoded again.
    fn prepare(&self, request_der: &[u8], now: OffsetDateTime) -> Result<Step, ResponseStatus> {
        if let Some(known) = self.known.get(request_der) {
            return self.answer_from_cache(known, None, now);
        }
        let request = request::decode(request_der, &self.issuer, self.max_cert_ids)
            .map_err(|e| e.status())?;
        match (&request.nonce, &request.cert_ids[..]) {
            (None, [cert_id]) => {
                let known = Arc::new(KnownRequest {
                    key: cache_key(cert_id),
                    cert_id: cert_id.clone(),
                });
                self.answer_from_cache(known, Some(request_der.into()), now)
            }
            _ => Ok(Step::Sign(Signing::PerRequest(request))),
        }
    }

    /// Makes the signature `signing` names, and the answer it gives.
    fn sign(&self, signing: Signing, now: OffsetDateTime) -> Result<Reply, ResponseStatus> {
        match signing {
            Signing::ForCache {
                known,
                stored,
                marker,
                remember,
                fallback,
            } => {
                let signed = self.sign_for_cache(known, stored, marker, remember, now);
                match (signed, fallback) {
                    // A key that cannot sign: the answer in hand still holds.
                    (Err(ResponseStatus::TryLater), Some(entry)) => Ok(self.hit(&entry)),
                    (signed, _) => signed,
                }
            }
            Signing::Unknown(known) => self.sign_unknown(&known.cert_id, now),
            Signing::PerRequest(request) => {
                self.answer_fresh(&request.cert_ids, request.nonce.as_ref(), now)
            }
        }
    }

    /// `unknown` for a serial never issued: cacheable by HTTP caches, but
    /// not kept here.
    fn sign_unknown(&self, cert_id: &CertId, now: OffsetDateTime) -> Result<Reply, ResponseStatus> {
        self.metrics.cache_miss();
        self.metrics.cert_status(SingleStatus::Unknown);
        let answer = SingleAnswer {
            cert_id,
            status: SingleStatus::Unknown,
        };
        let (der, (this_update, next_update)) = self.sign_answers(&[answer], None, now)?;
        let signed = SignedResponse::new(der, this_update, next_update);
        Ok(Reply::Cacheable(Arc::new(signed)))
    }

    /// Answers with an error status without looking at the request (it was
    /// too large or never arrived), counting it like any other answer.
    pub fn refuse(&self, status: ResponseStatus) -> Reply {
        self.metrics.response(status);
        Reply::error(status)
    }

    /// The hot path. The store's commit marker is read first; a cached
    /// response still in the first half of its validity is served as is if
    /// nothing was committed since its status version was last read (no
    /// lookup at all), or else if one indexed lookup finds the same version.
    /// Otherwise a new response must be signed: for the cache if the
    /// certificate is in the store, for this request alone if not.
    /// `remember` is the request's DER if it is not remembered decoded yet.
    fn answer_from_cache(
        &self,
        known: Arc<KnownRequest>,
        remember: Option<Box<[u8]>>,
        now: OffsetDateTime,
    ) -> Result<Step, ResponseStatus> {
        // Read before the lookup: any version read afterwards is at least as
        // new as the state this marker names.
        let marker = self.statuses.commit_marker();
        let max_age = self.max_age;
        let fresh = |e: &CacheEntry| still_fresh(e.response.this_update, max_age, now);
        let held = self.cache.get(&known.key);
        let cached = held.clone().filter(fresh);
        if let Some(entry) = cached
            .as_ref()
            .filter(|e| marker.is_some() && e.confirmed_at == marker)
        {
            self.remember(remember, known);
            return Ok(Step::Answered(self.hit(entry)));
        }
        let Some(stored) = self.lookup(&known.cert_id)? else {
            return Ok(Step::Sign(Signing::Unknown(known)));
        };
        if let Some(entry) = cached.filter(|e| e.version == Some(stored.version)) {
            // Remember that it is current in this state, so that the next
            // requests need no lookup until something is committed.
            let confirmed = CacheEntry {
                confirmed_at: marker,
                ..entry.clone()
            };
            self.cache.insert(known.key.clone(), confirmed, fresh);
            self.remember(remember, known);
            return Ok(Step::Answered(self.hit(&entry)));
        }
        let fallback =
            held.filter(|e| e.version == Some(stored.version) && now < e.response.next_update);
        Ok(Step::Sign(Signing::ForCache {
            known,
            stored,
            marker,
            remember,
            fallback,
        }))
    }

    /// Signs the answer for a certificate in the store and caches it.
    fn sign_for_cache(
        &self,
        known: Arc<KnownRequest>,
        stored: StatusVersion,
        marker: Option<CommitMarker>,
        remember: Option<Box<[u8]>>,
        now: OffsetDateTime,
    ) -> Result<Reply, ResponseStatus> {
        self.metrics.cache_miss();
        let version = Some(stored.version);
        let status = decide(Some(stored));
        self.metrics.cert_status(status);
        let key = known.key.clone();
        let entry = self.signed_entry(Arc::clone(&known), version, status, marker, now)?;
        let signed = Arc::clone(&entry.response);
        signed.mark_served();
        let max_age = self.max_age;
        self.cache.insert(key, entry, |e| {
            still_fresh(e.response.this_update, max_age, now)
        });
        self.remember(remember, known);
        Ok(Reply::Cacheable(signed))
    }

    /// Remembers a request answered from the cache by its DER, decoded.
    fn remember(&self, request_der: Option<Box<[u8]>>, known: Arc<KnownRequest>) {
        if let Some(der) = request_der {
            self.known.insert(der, known, |_| true);
        }
    }

    fn hit(&self, entry: &CacheEntry) -> Reply {
        self.metrics.cache_hit();
        self.metrics.cert_status(entry.status);
        entry.response.mark_served();
        Reply::Cacheable(Arc::clone(&entry.response))
    }

    /// A cache entry for `request` with a response signed now, stating the
    /// status of `version` as confirmed at `marker`.
    pub(super) fn signed_entry(
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
        let (der, (this_update, next_update)) = self.sign_answers(&[answer], None, now)?;
        Ok(CacheEntry {
            version,
            status,
            confirmed_at: marker,
            response: Arc::new(SignedResponse::new(der, this_update, next_update)),
            request,
        })
    }

    /// A response signed for this request only: it echoes a nonce, or
    /// answers several CertIDs at once (RFC 5019 clients ask for one).
    fn answer_fresh(
        &self,
        cert_ids: &[CertId],
        nonce: Option<&Nonce>,
        now: OffsetDateTime,
    ) -> Result<Reply, ResponseStatus> {
        let marker = self.statuses.commit_marker();
        let answers = cert_ids
            .iter()
            .map(|cert_id| {
                let status = self.current_status(cert_id, marker)?;
                self.metrics.cert_status(status);
                Ok(SingleAnswer { cert_id, status })
            })
            .collect::<Result<Vec<_>, ResponseStatus>>()?;
        let (der, (this_update, next_update)) = self.sign_answers(&answers, nonce, now)?;
        Ok(match nonce {
            Some(_) => Reply::Uncacheable {
                status: ResponseStatus::Successful,
                der: der.into(),
            },
            None => Reply::Cacheable(Arc::new(SignedResponse::new(der, this_update, next_update))),
        })
    }

    /// A CertID's status now: what a cached response or an earlier lookup
    /// says if it was confirmed in the current committed state, else one
    /// indexed lookup (remembered for the next answer until a commit, unless
    /// the serial was never issued: random serials must not fill the memo).
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
        if status != SingleStatus::Unknown {
            let confirmed = ConfirmedStatus {
                status,
                confirmed_at: marker,
            };
            self.confirmed
                .insert(key, confirmed, |c| c.confirmed_at == marker);
        }
        Ok(status)
    }

    /// A store failure is transient (the database is busy or being
    /// replaced): the client should retry, RFC 6960 §2.3 `tryLater`.
    pub(super) fn lookup(&self, cert_id: &CertId) -> Result<Option<StatusVersion>, ResponseStatus> {
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
    fn sign_answers(
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
            .map_err(|e| match e {
                // SPEC §11: the key is away; the client retries.
                SignError::Signing(SignerError::Unavailable { .. }) => {
                    tracing::warn!(error = %e, "OCSP response not signed");
                    ResponseStatus::TryLater
                }
                e => {
                    tracing::error!(error = %e, "OCSP response signing failed");
                    ResponseStatus::InternalError
                }
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

pub(super) fn decide(stored: Option<StatusVersion>) -> SingleStatus {
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
