//! The responder against a fresh store with the dev hierarchy's keys:
//! statuses, the cache, the refresher, nonces and error statuses.

use std::path::PathBuf;
use std::sync::Arc;

use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::lookup::StatusReader;
use super::request::HashAlgorithm;
use super::request::tests::{cert_id_for, nonce_extension, request_der};
use super::response::ResponseStatus;
use super::signing::{Lane, SigningLimits};
use super::{Refreshed, Reply, Responder};
use crate::ca::{CaCertificate, CaKeyPair};
use crate::devkeys;
use crate::domain::{CertStatus, Channel, RevocationReason, Serial};
use crate::signer::faulty::{self, Switch};
use crate::store::certificates::NewCertificate;
use crate::store::{Store, StoreError, StoreReader};

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

const SIGNING: SigningLimits = SigningLimits {
    threads: 1,
    queue: 16,
};

/// A responder over a fresh store, with the dev hierarchy's keys.
struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    issuing: CaCertificate,
    responder: Arc<Responder>,
    responder_key: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        Self::with_signing(SIGNING)
    }

    fn with_signing(signing: SigningLimits) -> Self {
        Self::with_key(signing, |key| key)
    }

    /// A fixture whose responder key can be taken away.
    fn with_faulty_key() -> (Self, Switch) {
        let mut switch = None;
        let fixture = Self::with_key(SIGNING, |key| {
            let (signer, away) = faulty::signer("ca.ocsp_key", &key.1);
            switch = Some(away);
            (CaKeyPair { signer, ..key.0 }, key.1)
        });
        (fixture, switch.unwrap())
    }

    /// `adapt` gets the responder's key and the path of its key file.
    fn with_key(
        signing: SigningLimits,
        adapt: impl FnOnce((CaKeyPair, PathBuf)) -> (CaKeyPair, PathBuf),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        devkeys::generate(dir.path(), NOW).unwrap();
        let load = |cert, key| {
            let key = crate::signer::KeyRef::File(dir.path().join(key));
            CaKeyPair::load(&dir.path().join(cert), "ca.ocsp_key", &key).unwrap()
        };
        let issuing = load(devkeys::ISSUING_CERT, devkeys::ISSUING_KEY).cert;
        let key_file = dir.path().join(devkeys::OCSP_KEY);
        let (key, _) = adapt((load(devkeys::OCSP_CERT, devkeys::OCSP_KEY), key_file));
        let responder_key = key.cert.public_key_bits.clone();
        let store = Arc::new(Store::open(&dir.path().join("eidca.sqlite3")).unwrap());
        let statuses = StatusReader::open(&StoreReader::of(&store)).unwrap();
        let limits = (Duration::minutes(10), 3);
        let responder = Arc::new(Responder::new(key, &issuing, statuses, limits, signing).unwrap());
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
    fn verified(&self, answer: &Reply) -> rasn_ocsp::ResponseData {
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
    fn status_of(&self, answer: &Reply) -> rasn_ocsp::CertStatus {
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
    let key_hash = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &f.responder_key);
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
    let Reply::Cacheable(signed) = late else {
        panic!("no nonce: cacheable")
    };
    assert_eq!(signed.this_update, NOW + Duration::minutes(5));
}

fn this_update(answer: &Reply) -> OffsetDateTime {
    match answer {
        Reply::Cacheable(signed) => signed.this_update,
        Reply::Uncacheable { .. } => panic!("no nonce: cacheable"),
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
        Reply::Uncacheable {
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

/// Occupies the pool's only thread until the returned sender is dropped.
fn block_the_signing_thread(responder: &Responder) -> std::sync::mpsc::Sender<()> {
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let blocker = move || {
        let _ = started_tx.send(());
        let _ = released.recv();
    };
    responder.pool.submit(Lane::PerRequest, blocker).unwrap();
    started.recv().unwrap();
    release
}

#[tokio::test]
async fn a_full_signing_queue_answers_try_later_while_cached_answers_flow() {
    let f = Fixture::with_signing(SigningLimits {
        threads: 1,
        queue: 1,
    });
    let s = serial(1);
    f.issue(&s);
    let responder = Arc::clone(&f.responder);
    let plain = f.request(&[&s], false);
    let cached = responder.respond_bounded(&plain, NOW).await;
    assert_eq!(f.status_of(&cached), rasn_ocsp::CertStatus::Good);

    let release = block_the_signing_thread(&responder);
    let nonce = f.request(&[&s], true);
    let waiting = tokio::spawn({
        let (responder, nonce) = (Arc::clone(&responder), nonce.clone());
        async move { responder.respond_bounded(&nonce, NOW).await }
    });
    for _ in 0..100_000 {
        if responder.pool.queued() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        responder.pool.queued(),
        1,
        "the nonce request waits its turn"
    );
    // The queue of answers signed per request is full: nonces, several
    // CertIDs and serials never issued are refused at once...
    let never = f.request(&[&serial(9)], false);
    let several = f.request(&[&s, &serial(9)], false);
    for request in [&nonce, &never, &several] {
        let refused = responder.respond_bounded(request, NOW).await;
        assert_eq!(refused.status(), ResponseStatus::TryLater);
        assert_eq!(
            &refused.der()[..],
            ResponseStatus::TryLater.error_response()
        );
    }
    // ... while the cache still answers, without a signature.
    let again = responder.respond_bounded(&plain, NOW).await;
    assert_eq!(again.der(), cached.der());

    drop(release);
    let answer = waiting.await.unwrap();
    let extensions = f.verified(&answer).response_extensions.unwrap();
    assert_eq!(extensions.to_vec(), vec![nonce_extension(16)]);
    assert_eq!(f.status_of(&answer), rasn_ocsp::CertStatus::Good);
    let metrics = responder.metrics();
    assert_eq!(metrics.responses(ResponseStatus::TryLater), 3);
    assert_eq!(metrics.responses(ResponseStatus::Successful), 3);
    let text = responder.render_prometheus();
    assert!(
        text.contains("eidca_ocsp_signing_refused_total 3\n"),
        "{text}"
    );
    assert!(text.contains("eidca_ocsp_signing_queued 0\n"), "{text}");
}

#[tokio::test]
async fn a_cache_miss_is_queued_when_the_per_request_queue_is_full() {
    let f = Fixture::with_signing(SigningLimits {
        threads: 1,
        queue: 1,
    });
    let (s, other) = (serial(1), serial(2));
    f.issue(&s);
    f.issue(&other);
    let responder = Arc::clone(&f.responder);
    let release = block_the_signing_thread(&responder);
    let spawn = |request: Vec<u8>| {
        let responder = Arc::clone(&responder);
        tokio::spawn(async move { responder.respond_bounded(&request, NOW).await })
    };
    let nonce = spawn(f.request(&[&s], true));
    let miss = spawn(f.request(&[&other], false));
    for _ in 0..100_000 {
        if responder.pool.queued() == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(responder.pool.queued(), 2, "one job in each queue");
    drop(release);
    let (miss, nonce) = (miss.await.unwrap(), nonce.await.unwrap());
    assert_eq!(f.status_of(&miss), rasn_ocsp::CertStatus::Good);
    assert_eq!(f.status_of(&nonce), rasn_ocsp::CertStatus::Good);
    assert_eq!(f.responder.cache.len(), 1, "the miss was cached");
}

#[test]
fn answers_for_serials_never_issued_are_signed_but_not_kept() {
    let f = Fixture::new();
    let (s, never) = (serial(1), serial(2));
    f.issue(&s);
    for _ in 0..3 {
        let answer = f.responder.respond(&f.request(&[&never], false), NOW);
        assert_eq!(f.status_of(&answer), rasn_ocsp::CertStatus::Unknown(()));
        let answer = f.responder.respond(&f.request(&[&never], true), NOW);
        assert_eq!(f.status_of(&answer), rasn_ocsp::CertStatus::Unknown(()));
    }
    assert!(f.responder.cache.is_empty());
    assert!(f.responder.known.is_empty(), "nor remembered decoded");
    assert!(f.responder.confirmed.is_empty(), "nor their status");
    f.responder.respond(&f.request(&[&s], false), NOW);
    f.responder.respond(&f.request(&[&s], true), NOW);
    assert_eq!(f.responder.cache.len(), 1);
    assert_eq!(f.responder.known.len(), 1);
    assert_eq!(
        f.responder.refresh(NOW + Duration::minutes(3)).resigned,
        1,
        "the refresher signs only the issued certificate's answer"
    );
}

/// SPEC §11: while the responder key cannot sign, an answer that needs a
/// new signature is `tryLater`, a cached answer still within its validity
/// is served, and signing resumes once the key is back.
#[test]
fn a_key_that_cannot_sign_gives_try_later_but_keeps_serving_valid_cached_answers() {
    let (f, switch) = Fixture::with_faulty_key();
    let s = serial(1);
    f.issue(&s);
    let request = f.request(&[&s], false);
    let first = f.responder.respond(&request, NOW);
    assert_eq!(first.status(), ResponseStatus::Successful);

    switch.away();
    // Past half its validity it would be signed again; it still holds.
    let past_half = NOW + Duration::minutes(7);
    assert_eq!(f.responder.respond(&request, past_half).der(), first.der());
    let nonce = f.responder.respond(&f.request(&[&s], true), past_half);
    assert_eq!(nonce.status(), ResponseStatus::TryLater);
    let past_next_update = NOW + Duration::minutes(11);
    let expired = f.responder.respond(&request, past_next_update);
    assert_eq!(expired.status(), ResponseStatus::TryLater);
    // A status change makes the cached answer wrong: never served.
    f.change(&s, CertStatus::Suspended, past_half);
    let changed = f.responder.respond(&request, past_half);
    assert_eq!(changed.status(), ResponseStatus::TryLater);

    switch.back();
    let renewed = f.responder.respond(&request, past_next_update);
    assert_eq!(renewed.status(), ResponseStatus::Successful);
    assert_ne!(renewed.der(), first.der());
}
