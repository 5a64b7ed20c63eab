//! Issuance (SPEC §3, §8): check everything first, sign outside the
//! transaction, then commit the subscriber, card, certificate, history and
//! audit record together.

use ring::rand::SecureRandom;
use time::OffsetDateTime;

use super::idempotency::{Idempotency, NoKey, Once, Outcome};
use super::{Actor, Authority, AuthorityError, CertificateRecord, rfc3339};
use crate::domain::Serial;
use crate::issuance::Profile;
use crate::issuance::csr::VerifiedCsr;
use crate::issuance::{IssuedCertificate, SubscriberIdentity, build_certificate, verify_csr};
use crate::store::Change;
use crate::store::audit::{AuditEvent, Issued};
use crate::store::certificates::NewCertificate;

/// Serial collisions are astronomically unlikely with 126 random bits, but
/// the unique constraint decides; a few retries are plenty.
const SERIAL_ATTEMPTS: usize = 4;

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

/// A certificate signed for a request, before it is stored.
struct Signed {
    serial: Serial,
    certificate: IssuedCertificate,
}

impl Authority {
    /// Issues a certificate.
    pub fn issue(
        &self,
        request: &IssueRequest<'_>,
        actor: Actor<'_>,
    ) -> Result<CertificateRecord, AuthorityError> {
        Ok(self.issue_with(request, actor, &NoKey)?.done())
    }

    /// [`Self::issue`], answering a key at most once.
    pub fn issue_once(
        &self,
        request: &IssueRequest<'_>,
        actor: Actor<'_>,
        once: Option<&Idempotency<'_, CertificateRecord>>,
    ) -> Result<Outcome<CertificateRecord>, AuthorityError> {
        self.issue_with(request, actor, &once)
    }

    fn issue_with<O: Once<CertificateRecord>>(
        &self,
        request: &IssueRequest<'_>,
        actor: Actor<'_>,
        once: &O,
    ) -> Result<Outcome<CertificateRecord, O::Replay>, AuthorityError> {
        let identity = SubscriberIdentity::new(
            request.subscriber_code,
            request.subscriber_name,
            request.card_number,
        )?;
        let profile = self.profile(request.profile)?;
        let csr = verify_csr(request.csr)?;
        let now = self.now();
        // Signed before the transaction, so that writers wait on the store only.
        let mut signed = self.sign(&identity, profile, &csr, now)?;
        self.commit(once, now, |change| {
            let mut attempts = 1;
            while change.serial_exists(&signed.serial)? {
                if attempts == SERIAL_ATTEMPTS {
                    return Err(AuthorityError::SerialsExhausted);
                }
                signed = self.sign(&identity, profile, &csr, now)?;
                attempts += 1;
            }
            self.record_issuance(change, &identity, profile, &signed, actor, now)
        })
    }

    fn profile(&self, name: &str) -> Result<&Profile, AuthorityError> {
        self.config
            .profiles
            .get(name)
            .ok_or_else(|| AuthorityError::UnknownProfile {
                asked: name.to_owned(),
                known: self.config.profiles.keys().cloned().collect(),
            })
    }

    /// Stores a signed certificate with its subscriber, card and audit record.
    fn record_issuance(
        &self,
        change: &Change<'_>,
        identity: &SubscriberIdentity,
        profile: &Profile,
        signed: &Signed,
        actor: Actor<'_>,
        now: OffsetDateTime,
    ) -> Result<CertificateRecord, AuthorityError> {
        let Signed {
            serial,
            certificate,
        } = signed;
        change.register_subscriber_and_card(
            &identity.code,
            &identity.name,
            &identity.card_number,
            now,
        )?;
        let new = NewCertificate {
            serial,
            subscriber_code: &identity.code,
            card_number: &identity.card_number,
            profile: &profile.name,
            not_before: certificate.not_before,
            not_after: certificate.not_after,
            der: &certificate.der,
        };
        change.insert_certificate(&new, actor.channel, now)?;
        let event = Issued {
            serial,
            card_number: &identity.card_number,
            certificate_sha256: sha256_hex(&certificate.der),
            channel: actor.channel.name(),
            not_after: rfc3339(certificate.not_after)?,
            profile: &profile.name,
            subscriber_code: &identity.code,
        };
        change.audit(now, actor.name, &AuditEvent::Issued(event))?;
        CertificateRecord::new(&change.written_certificate(serial)?, now)
    }

    /// Draws a serial and signs the certificate with it.
    fn sign(
        &self,
        identity: &SubscriberIdentity,
        profile: &Profile,
        csr: &VerifiedCsr,
        now: OffsetDateTime,
    ) -> Result<Signed, AuthorityError> {
        let serial = self.new_serial()?;
        let certificate = build_certificate(
            identity,
            &self.config.country,
            profile,
            csr,
            &serial,
            &self.urls,
            &self.issuing,
            now,
        )?;
        Ok(Signed {
            serial,
            certificate,
        })
    }

    fn new_serial(&self) -> Result<Serial, AuthorityError> {
        let mut bytes = [0u8; 16];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| AuthorityError::Random)?;
        Ok(Serial::from_random(bytes))
    }
}

/// SHA-256 of `der`, hex: how the audit log names a signed object.
pub(super) fn sha256_hex(der: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, der))
}
