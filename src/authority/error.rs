//! Why a use case did not happen (nothing was changed in any case), and why
//! the authority could not start. Each refusal is its own variant, so that
//! callers decide on the kind of refusal, never on a message.

use crate::ca::CaError;
use crate::domain::{Channel, Serial, Transition, TransitionError};
use crate::issuance::certificate::BuildError;
use crate::issuance::{CsrError, IdentityError};
use crate::revocation::CrlError;
use crate::signer::SignerError;
use crate::store::StoreError;
use crate::store::certificates::RegistrationError;

/// Why a use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("unknown profile `{asked}`; known: {}", known.join(", "))]
    UnknownProfile { asked: String, known: Vec<String> },
    #[error("certificate {0} not found")]
    CertificateNotFound(Serial),
    #[error("subscriber {0} not found")]
    SubscriberNotFound(String),
    #[error("card {0} not found")]
    CardNotFound(String),
    #[error("card {card_number} belongs to another subscriber")]
    CardOfAnotherSubscriber { card_number: String },
    /// A card change that no certificate of the card allows (SPEC §3.1).
    #[error("no certificate of card {card_number} can {}: {}", transition.name(), why.as_ref().map_or_else(|| "the card has no certificates".to_owned(), ToString::to_string))]
    NoEligibleCertificate {
        card_number: String,
        transition: Transition,
        /// Why the first certificate refused; None when the card has none.
        why: Option<TransitionError>,
    },
    /// SPEC §16: a suspension made through the RA, the emergency channel
    /// or the CLI is lifted only by an officer.
    #[error(
        "{subject} was suspended through the {suspended_by} channel; only the RA may resume it"
    )]
    LiftOnlyByOfficer {
        subject: String,
        suspended_by: Channel,
    },
    #[error("no full CRL has been published yet")]
    NoFullCrl,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("signing: {0}")]
    Crl(CrlError),
    #[error("signing: {0}")]
    Build(BuildError),
    /// SPEC §11: a key that cannot sign now (token away); nothing changed.
    #[error("the key {key} cannot sign now ({reason}); nothing was changed, retry later")]
    SignerUnavailable { key: String, reason: String },
    #[error("cannot write the publish directory {dir}: {source}")]
    PublishDir { dir: String, source: std::io::Error },
    #[error("could not draw an unused serial")]
    SerialsExhausted,
    #[error("random number generator failed")]
    Random,
    /// A stored value that cannot be shown (a time past year 9999, a PEM
    /// that cannot be framed): the record is refused rather than shown empty.
    #[error("cannot render {what}: {why}")]
    Render { what: &'static str, why: String },
}

/// What kind of refusal an [`AuthorityError`] is, for callers that map
/// refusals to their own vocabulary (HTTP statuses, exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself is wrong.
    Invalid,
    /// What the request names does not exist.
    NotFound,
    /// The request is well formed but not allowed in the current state.
    Conflict,
    /// Our fault: nothing the caller can change.
    Internal,
    /// A CA key cannot sign now; the same request may succeed later.
    SignerUnavailable,
}

impl AuthorityError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::UnknownProfile { .. } | Self::Csr(_) | Self::Identity(_) => ErrorClass::Invalid,
            Self::CertificateNotFound(_) | Self::SubscriberNotFound(_) | Self::CardNotFound(_) => {
                ErrorClass::NotFound
            }
            Self::CardOfAnotherSubscriber { .. }
            | Self::NoEligibleCertificate { .. }
            | Self::NoFullCrl
            | Self::LiftOnlyByOfficer { .. }
            | Self::Transition(_) => ErrorClass::Conflict,
            Self::Store(_)
            | Self::Crl(_)
            | Self::Build(_)
            | Self::PublishDir { .. }
            | Self::SerialsExhausted
            | Self::Random
            | Self::Render { .. } => ErrorClass::Internal,
            Self::SignerUnavailable { .. } => ErrorClass::SignerUnavailable,
        }
    }
}

impl From<SignerError> for AuthorityError {
    fn from(e: SignerError) -> Self {
        match e {
            SignerError::Unavailable { key, reason } => Self::SignerUnavailable { key, reason },
            other => Self::Crl(CrlError::Signing(other)),
        }
    }
}

impl From<CrlError> for AuthorityError {
    fn from(e: CrlError) -> Self {
        match e {
            CrlError::Signing(e) => e.into(),
            other => Self::Crl(other),
        }
    }
}

impl From<BuildError> for AuthorityError {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::Signer(e) => e.into(),
            other => Self::Build(other),
        }
    }
}

impl From<RegistrationError> for AuthorityError {
    fn from(e: RegistrationError) -> Self {
        match e {
            RegistrationError::CardOfAnotherSubscriber { card_number } => {
                Self::CardOfAnotherSubscriber { card_number }
            }
            RegistrationError::Store(s) => Self::Store(s),
        }
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
