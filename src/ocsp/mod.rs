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
mod refresh;
pub mod request;
mod responder;
pub mod response;
pub mod status;
#[cfg(test)]
mod tests;

pub use refresh::{Refreshed, refresh_forever};
pub use responder::{Reply, Responder, ResponderError};
