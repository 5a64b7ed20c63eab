//! RA authentication and roles (SPEC §7): `Authorization: Bearer <token>`,
//! checked against the SHA-256 hashes in the configuration, in constant
//! time. [`Officer`] and [`Reader`] are the extractors handlers ask for.
//!
//! Every RA route is wrapped in [`authenticate`], so that a request
//! without a valid token is a 401 before its path or body is looked at
//! (SPEC §16).
//!
//! A missing or unknown token is a 401 with `WWW-Authenticate: Bearer`
//! ([RFC 6750 §3](https://www.rfc-editor.org/rfc/rfc6750#section-3)); a known
//! token whose role may not do the thing is a 403. Tokens are never logged.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::App;
use super::problem::{ApiError, Problem};
use crate::config::{Role, TokenConfig};

/// Who is calling: the configured name of the token and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// The configured tokens, as hashes.
pub struct Tokens {
    known: Vec<(Principal, [u8; 32])>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.known.len())
            .finish()
    }
}

impl Tokens {
    /// The configured tokens; an entry whose hash is not 64 hex digits
    /// (which configuration validation already refuses) never matches.
    pub fn new(config: &[TokenConfig]) -> Self {
        let known = config
            .iter()
            .filter_map(|t| {
                let hash: [u8; 32] = hex::decode(&t.sha256).ok()?.try_into().ok()?;
                let principal = Principal {
                    name: t.name.clone(),
                    role: t.role,
                };
                Some((principal, hash))
            })
            .collect();
        Self { known }
    }

    /// The principal a token belongs to. Every configured hash is compared,
    /// each in constant time, so timing tells nothing about which matched.
    pub fn authenticate(&self, token: &str) -> Option<&Principal> {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut found = None;
        for (principal, hash) in &self.known {
            let matches: bool = hash.ct_eq(digest.as_ref()).into();
            if matches && found.is_none() {
                found = Some(principal);
            }
        }
        found
    }

    /// The caller of a request, or the 401 to answer.
    fn caller(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Err(ApiError::new(
                Problem::Unauthorized,
                "send `Authorization: Bearer <token>`",
            ));
        };
        // Two credentials are one too many: a proxy that adds its own must
        // not make us pick one (SPEC §16).
        if values.next().is_some() {
            return Err(ApiError::new(
                Problem::Unauthorized,
                "send exactly one Authorization header",
            ));
        }
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                ApiError::new(
                    Problem::Unauthorized,
                    "the Authorization header must use the Bearer scheme",
                )
            })?;
        self.authenticate(token)
            .cloned()
            .ok_or_else(|| ApiError::new(Problem::InvalidToken, "the bearer token is not valid"))
    }
}

/// Answers 401 unless the request carries one valid token; else hands it
/// on with its [`Principal`] among its extensions.
pub async fn authenticate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match app.tokens.caller(&parts.headers) {
        Ok(principal) => {
            parts.extensions.insert(principal);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// The caller [`authenticate`] found, or (on a route it does not wrap) the
/// caller of the request's own headers.
fn caller(parts: &Parts, app: &App) -> Result<Principal, ApiError> {
    match parts.extensions.get::<Principal>() {
        Some(principal) => Ok(principal.clone()),
        None => app.tokens.caller(&parts.headers),
    }
}

/// A caller with the officer role: issue, change statuses, publish CRLs.
#[derive(Debug, Clone)]
pub struct Officer(pub Principal);

/// A caller with any RA role: read records, CRL summaries, the sync window.
#[derive(Debug, Clone)]
pub struct Reader(pub Principal);

impl FromRequestParts<Arc<App>> for Officer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let caller = caller(parts, app)?;
        match caller.role {
            Role::Officer => Ok(Officer(caller)),
            Role::Auditor => Err(ApiError::new(
                Problem::Forbidden,
                "this needs the officer role; the token has the auditor role (read only)",
            )),
        }
    }
}

impl FromRequestParts<Arc<App>> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        caller(parts, app).map(Reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let hash = |t: &str| hex::encode(ring::digest::digest(&ring::digest::SHA256, t.as_bytes()));
        Tokens::new(&[
            TokenConfig {
                name: "alice".into(),
                role: Role::Officer,
                sha256: hash("alice-token"),
            },
            TokenConfig {
                name: "bob".into(),
                role: Role::Auditor,
                sha256: hash("bob-token"),
            },
        ])
    }

    #[test]
    fn known_tokens_map_to_their_principal_and_others_to_none() {
        let tokens = tokens();
        assert_eq!(tokens.authenticate("alice-token").unwrap().name, "alice");
        assert_eq!(
            tokens.authenticate("bob-token").unwrap().role,
            Role::Auditor
        );
        assert!(tokens.authenticate("alice-token ").is_none());
        assert!(tokens.authenticate("").is_none());
    }

    #[test]
    fn debug_output_shows_no_hashes() {
        assert_eq!(format!("{:?}", tokens()), "Tokens { count: 2 }");
    }
}
