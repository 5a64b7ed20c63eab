//! Certificate issuance: CSR checks, subscriber identity checks, and the
//! end-entity certificate profile of SPEC §8.

pub mod certificate;
pub mod csr;
pub mod identity;
pub mod profile;

pub use certificate::{CertificateUrls, IssuedCertificate, build_certificate};
pub use csr::{CsrError, SubjectKeyType, VerifiedCsr, verify_csr};
pub use identity::{IdentityError, SubscriberIdentity};
pub use profile::Profile;
