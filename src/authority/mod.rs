//! The authority: the one component that decides. Issue, suspend, resume,
//! revoke (one certificate or a whole card), publish CRLs, the subscriber's
//! self-service, and the reads behind them. The RA API, the CLI and the
//! self-service page all come through here, so every rule is enforced once.
//!
//! It holds the only writable [`Store`](crate::store::Store); each state change and its audit
//! record commit in one transaction, and the caller gets a result only
//! after the commit (SPEC §10). The read side (publisher, OCSP responder,
//! downloads) gets a [`StoreReader`](crate::store::StoreReader) from [`Authority::reader`](crate::authority::Authority::reader).

mod error;
mod idempotency;
mod issue;
mod publish;
mod record;
pub mod self_service;
mod status;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use ring::rand::SystemRandom;
use time::OffsetDateTime;

use crate::ca::CaKeyPair;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{Serial, SyncWindow};
use crate::issuance::CertificateUrls;
use crate::publish_dir::PublishDir;
use crate::revocation::{CrlKind, CrlSummary, LatestCrls};
use crate::store::audit::ChainBreak;
use crate::store::{Store, StoreReader};

pub use error::{AuthorityError, ErrorClass, StartError};
pub use idempotency::{Idempotency, Outcome};
pub use issue::IssueRequest;
pub use publish::SignedCrl;
pub use record::{Actor, CertificateRecord, rfc3339};

/// The sync window of SPEC §6 and where publication stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    pub window: SyncWindow,
    pub last_full: Option<CrlSummary>,
    pub last_delta: Option<CrlSummary>,
    /// The oldest status change that no published CRL reflects yet.
    pub oldest_unpublished_change: Option<OffsetDateTime>,
}

/// Which published CRL a download names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlFile {
    /// The newest of a kind (`full.crl`, `delta.crl`).
    Latest(CrlKind),
    /// Any ever published (`<number>.crl`).
    Number(u64),
}

/// What the store holds, in figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFigures {
    /// Stored status name and count (expired certificates included).
    pub certificates_by_status: Vec<(String, i64)>,
    pub latest: LatestCrls,
}

/// The certificate authority: configuration, keys, store and clock.
pub struct Authority {
    config: Config,
    store: Arc<Store>,
    issuing: CaKeyPair,
    urls: CertificateUrls,
    publish_dir: PublishDir,
    clock: Arc<dyn Clock>,
    rng: SystemRandom,
    /// One publication at a time in this process (API, scheduler): they
    /// would only take each other's CRL numbers. Other processes (the CLI)
    /// are handled in `publish_one`.
    publishing: std::sync::Mutex<()>,
    /// The self-service form secret, read from the store once.
    form_secret: OnceLock<Vec<u8>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
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
        let issuing = CaKeyPair::load(&config.issuing_cert, "ca.issuing_key", &config.issuing_key)?;
        let store = Store::open(&config.store_path).map_err(|source| StartError::Store {
            path: config.store_path.display().to_string(),
            source,
        })?;
        Ok(Self {
            urls: CertificateUrls::under(&config.base_url),
            publish_dir: PublishDir::new(&config.publish_dir),
            config,
            store: Arc::new(store),
            issuing,
            clock,
            rng: SystemRandom::new(),
            publishing: std::sync::Mutex::new(()),
            form_secret: OnceLock::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A read-only handle on the store, for the read side.
    pub fn reader(&self) -> StoreReader {
        StoreReader::of(&self.store)
    }

    pub fn issuing_ca(&self) -> &CaKeyPair {
        &self.issuing
    }

    /// Signs with `signer` from now on (a fault-injecting key in tests).
    #[cfg(test)]
    pub(crate) fn replace_issuing_signer(&mut self, signer: crate::signer::Signer) {
        self.issuing.signer = signer;
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The clock's untruncated time, for scheduling.
    pub fn precise_now(&self) -> OffsetDateTime {
        self.clock.precise_now()
    }

    /// One certificate by serial.
    pub fn certificate(&self, serial: &Serial) -> Result<CertificateRecord, AuthorityError> {
        let now = self.now();
        let row = self
            .store
            .read(|snapshot| snapshot.certificate(serial))?
            .ok_or_else(|| AuthorityError::CertificateNotFound(serial.clone()))?;
        CertificateRecord::new(&row, now)
    }

    /// All certificates of a subscriber.
    pub fn certificates_of_subscriber(
        &self,
        code: &str,
    ) -> Result<Vec<CertificateRecord>, AuthorityError> {
        let now = self.now();
        let rows = self
            .store
            .read(|snapshot| snapshot.certificates_of_subscriber(code))?
            .ok_or_else(|| AuthorityError::SubscriberNotFound(code.to_owned()))?;
        CertificateRecord::all(&rows, now)
    }

    /// The newest full and delta CRLs, as the publication schedule needs them.
    pub fn latest_crls(&self) -> Result<LatestCrls, AuthorityError> {
        Ok(self.store.read(|snapshot| snapshot.latest_crls())?)
    }

    /// A published CRL with its DER, as served for download: the newest of
    /// a kind, or any by number (a single read, no transaction).
    pub fn crl_file(
        &self,
        which: CrlFile,
    ) -> Result<Option<(CrlSummary, Vec<u8>)>, AuthorityError> {
        Ok(self.store.with_reader(|snapshot| match which {
            CrlFile::Latest(kind) => snapshot.latest_crl_der(kind),
            CrlFile::Number(number) => snapshot.crl_by_number(number),
        })?)
    }

    /// Certificates by stored status, and the newest full and delta CRLs:
    /// what `/metrics` reports of the store, from one snapshot.
    pub fn store_figures(&self) -> Result<StoreFigures, AuthorityError> {
        self.store.read(|snapshot| {
            Ok(StoreFigures {
                certificates_by_status: snapshot.count_by_status()?,
                latest: snapshot.latest_crls()?,
            })
        })
    }

    /// The promised sync window (SPEC §6), from the configured intervals.
    pub fn sync_window(&self) -> SyncWindow {
        SyncWindow {
            ocsp_max_age: self.config.ocsp_max_age,
            delta_crl_interval: self.config.delta_crl_interval,
            full_crl_interval: self.config.full_crl_interval,
        }
    }

    /// The promised sync window and where publication stands.
    pub fn sync_status(&self) -> Result<SyncStatus, AuthorityError> {
        let (latest, oldest_unpublished_change) =
            self.store.read(|snapshot| -> Result<_, AuthorityError> {
                let latest = snapshot.latest_crls()?;
                let oldest = snapshot.oldest_change_after(latest.covers_seq())?;
                Ok((latest, oldest))
            })?;
        Ok(SyncStatus {
            window: self.sync_window(),
            last_full: latest.full,
            last_delta: latest.delta,
            oldest_unpublished_change,
        })
    }

    /// Walks the audit chain.
    pub fn verify_audit(&self) -> Result<Result<u64, ChainBreak>, AuthorityError> {
        Ok(self.store.read(|snapshot| snapshot.verify_audit())?)
    }
}
