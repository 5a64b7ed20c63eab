//! eidca: the back end of a certificate authority for national electronic-ID
//! certificates on smart cards.
//!
//! Data flows one way: CLI or HTTP → [`authority`] → ([`domain`], [`signer`],
//! [`store`]) → back.
#![deny(unsafe_code)]

/// The use cases: issue, status changes, CRL publication.
pub mod authority;
/// CA certificates with their keys (issuing CA, OCSP responder).
pub mod ca;
/// The source of "now" (system or injected).
pub mod clock;
/// Configuration file, environment overrides and validation.
pub mod config;
/// The development CA hierarchy generator (`eidca dev-keys`).
pub mod devkeys;
/// Pure lifecycle core: serials, statuses, reasons, transitions.
pub mod domain;
/// The HTTP service.
pub mod http;
/// Certificate issuance: CSR checks and the end-entity profile.
pub mod issuance;
/// The OCSP responder: request decoding, status lookup, signing, the never-stale cache.
pub mod ocsp;
/// Start-up refusals of production mode.
pub mod production;
/// Scheduled CRL publication and the publish directory.
pub mod publisher;
/// Full and delta CRLs: the pure diff and the DER encoding.
pub mod revocation;
/// CA keys: load, sign, describe.
pub mod signer;
/// The SQLite store: schema, certificates, CRLs, the audit chain.
pub mod store;
