//! eidca: the back end of a certificate authority for national electronic-ID
//! certificates on smart cards.
//!
//! The crate is cut by role (the map is also at the top of README.md):
//!
//! ```text
//!   HTTP (http/) ─┐                      ┌─ domain/, issuance/, revocation/  (pure: decide)
//!   CLI (main.rs) ┴─→ authority/ ────────┼─ signer, ca                        (sign)
//!                     (the one decider)  └─ store/ (Store: the only writer)
//!
//!   read side:  publisher ─→ authority (asks it to publish)
//!               ocsp/      ─→ store::StoreReader (reads, never writes)
//! ```
//!
//! Only [`authority::Authority`] holds a writable [`store::Store`]; the read
//! side gets a [`store::StoreReader`]. Nothing in [`domain`] imports the
//! crate's I/O.

// The exceptions, each with its reasons, are `ocsp::commits` (a shared
// mapping of SQLite's WAL-index header) and one call in `ocsp::signing`
// (setpriority(2): the signing threads' lower priority).
#![deny(unsafe_code)]

/// The one decider: issue, status changes, self-service, CRL publication, and the reads behind them.
pub mod authority;
/// CA certificates with their keys (issuing CA, OCSP responder).
pub mod ca;
/// The source of "now" (system or injected).
pub mod clock;
/// Configuration file, environment overrides and validation.
pub mod config;
/// The development CA hierarchy generator (`eidca dev-keys`).
pub mod devkeys;
/// Pure core: serials, statuses, reasons, transitions, lock-out rule, sync window.
pub mod domain;
/// The HTTP service: RA API, public downloads, self-service page, OCSP over HTTP.
pub mod http;
/// Certificate issuance: CSR checks and the end-entity profile.
pub mod issuance;
/// The OCSP responder: request decoding, status lookup, signing, the never-stale cache.
pub mod ocsp;
/// Start-up refusals of production mode.
pub mod production;
/// The publish directory: files replaced atomically.
pub mod publish_dir;
/// The publication schedule: when the next CRL is due (read side).
pub mod publisher;
/// Full and delta CRLs: the pure diff and the DER encoding.
pub mod revocation;
/// CA keys: load, sign, describe.
pub mod signer;
/// The SQLite store, the only writer: queries named after what they mean, the audit chain.
pub mod store;
