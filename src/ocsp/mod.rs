//! The OCSP responder ([RFC 6960](https://www.rfc-editor.org/rfc/rfc6960), profiled by
//! [RFC 5019](https://www.rfc-editor.org/rfc/rfc5019)); SPEC §5. A read-side
//! publisher: it never writes the store. HTTP lives in `http::ocsp`; this
//! module knows nothing of it.
//!
//! - `request`: decoding an OCSPRequest into CertIDs and a nonce.
//! - `lookup`: one indexed status lookup per certificate, on the
//!   responder's own connections.
//! - `commits`: "nothing committed since", from SQLite's WAL-index header.
//! - `status`: the answer a stored status gives, and validity rules (pure).
//! - `response`: signing a BasicOCSPResponse with the delegated key.
//! - `cache`: pre-signed responses, never stale.
//! - `responder`: the `Responder` and its hot path.
//! - `signing`: the bounded pool of threads that sign what requests wait for.
//! - `refresh`: responses in demand re-signed ahead of time.
//! - `metrics`: counters of answers, cache use and signatures.

pub mod cache;
pub mod commits;
pub mod lookup;
pub mod metrics;
mod refresh;
pub mod request;
mod responder;
pub mod response;
pub mod signing;
pub mod status;
#[cfg(test)]
mod tests;

pub use refresh::{Refreshed, refresh_forever};
pub use responder::{Reply, Responder, ResponderError};
