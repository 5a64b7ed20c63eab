//! Cross-site request forgery protection for the self-service forms
//! (OWASP CSRF Prevention Cheat Sheet): a signed double-submit cookie plus
//! an `Origin` / `Referer` check.
//!
//! The page sets a random nonce in an `HttpOnly`, `SameSite=Strict` cookie
//! and puts `issued_at || HMAC-SHA256(key, nonce || issued_at)` in each form.
//! A POST must bring both, and they must agree: another site can neither
//! read the token nor make the browser send the cookie. The HMAC key lives
//! in the store, so forms loaded before a restart still work afterwards.

use axum::http::header::InvalidHeaderValue;
use axum::http::header::{COOKIE, HOST, ORIGIN, REFERER};
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

use crate::authority::{Authority, AuthorityError};

/// The cookie that carries the nonce.
pub const COOKIE_NAME: &str = "eidca_selfservice";

/// How long a form may stay open before it must be reloaded.
pub const TOKEN_LIFETIME: Duration = Duration::hours(2);

/// Tolerated clock difference between two processes on the same store.
const CLOCK_SKEW: Duration = Duration::minutes(1);

/// Domain separation for the MAC input.
const MAC_LABEL: &[u8] = b"eidca self-service csrf v1";

const NONCE_LEN: usize = 32;
const STAMP_LEN: usize = 8;

/// Why a POST was refused as a possible forgery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("the request comes from another site (Origin / Referer)")]
    ForeignOrigin,
    #[error("the request names no origin (neither Origin nor Referer)")]
    NoOrigin,
    #[error("the form's security cookie is missing or malformed")]
    NoCookie,
    #[error("the form's security token is missing, expired or does not match")]
    BadToken,
}

/// The random value of the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormNonce([u8; NONCE_LEN]);

impl FormNonce {
    pub fn random() -> Result<Self, AuthorityError> {
        let mut bytes = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| AuthorityError::Random)?;
        Ok(Self(bytes))
    }

    /// The nonce of the request's cookie, if it has a well-formed one.
    pub fn from_cookies(headers: &HeaderMap) -> Option<Self> {
        let value = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == COOKIE_NAME).then_some(value)
            })?;
        let bytes = hex::decode(value).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The `Set-Cookie` value; `secure` when the page is served over https.
    pub fn set_cookie(&self, secure: bool) -> Result<HeaderValue, InvalidHeaderValue> {
        let secure = if secure { "; Secure" } else { "" };
        let value = format!(
            "{COOKIE_NAME}={}; Path=/self-service; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            hex::encode(self.0),
            TOKEN_LIFETIME.whole_seconds()
        );
        HeaderValue::from_str(&value)
    }
}

/// The key that signs form tokens.
#[derive(Clone)]
pub struct CsrfKey(hmac::Key);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    /// The key of this authority's forms. Blocking: call from `spawn_blocking`.
    pub fn of(authority: &Authority) -> Result<Self, AuthorityError> {
        let secret = authority.form_secret()?;
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &secret)))
    }

    /// A form token bound to `nonce`, issued at `now`.
    pub fn token(&self, nonce: &FormNonce, now: OffsetDateTime) -> String {
        let stamp = now.unix_timestamp().to_be_bytes();
        let tag = hmac::sign(&self.0, &mac_input(nonce, &stamp));
        let mut raw = Vec::with_capacity(STAMP_LEN + tag.as_ref().len());
        raw.extend_from_slice(&stamp);
        raw.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a submitted token against the cookie's nonce (in constant time).
    pub fn verify(
        &self,
        nonce: Option<&FormNonce>,
        token: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), CsrfError> {
        let nonce = nonce.ok_or(CsrfError::NoCookie)?;
        let raw = token
            .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
            .ok_or(CsrfError::BadToken)?;
        if raw.len() <= STAMP_LEN {
            return Err(CsrfError::BadToken);
        }
        let (stamp, tag) = raw.split_at(STAMP_LEN);
        let stamp: [u8; STAMP_LEN] = stamp.try_into().map_err(|_| CsrfError::BadToken)?;
        let issued = OffsetDateTime::from_unix_timestamp(i64::from_be_bytes(stamp))
            .map_err(|_| CsrfError::BadToken)?;
        if issued > now + CLOCK_SKEW || now - issued > TOKEN_LIFETIME {
            return Err(CsrfError::BadToken);
        }
        hmac::verify(&self.0, &mac_input(nonce, &stamp), tag).map_err(|_| CsrfError::BadToken)
    }
}

fn mac_input(nonce: &FormNonce, stamp: &[u8; STAMP_LEN]) -> Vec<u8> {
    [MAC_LABEL, &nonce.0, stamp].concat()
}

/// Checks that the request comes from this site: the origin named by
/// `Origin` (or, without it, by `Referer`) must be the one the browser
/// addressed (`Host`) or the configured public base URL. With
/// `require_origin`, a request naming no origin is refused too (browsers
/// always send one with a form POST).
pub fn check_origin(
    headers: &HeaderMap,
    base_url: &str,
    require_origin: bool,
) -> Result<(), CsrfError> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let claimed = match (header(ORIGIN), header(REFERER)) {
        (Some(origin), _) => origin,
        (None, Some(referer)) => referer,
        (None, None) if require_origin => return Err(CsrfError::NoOrigin),
        (None, None) => return Ok(()),
    };
    let Some((scheme, authority)) = split_origin(claimed) else {
        return Err(CsrfError::ForeignOrigin);
    };
    // An origin is scheme, host and port (RFC 6454 §4), and the page has
    // two: the one the browser addressed on our socket, which speaks plain
    // HTTP, and the public one `publish.base_url` states (https behind a
    // TLS proxy).
    let same_host = scheme.eq_ignore_ascii_case("http")
        && header(HOST).is_some_and(|host| host.eq_ignore_ascii_case(authority));
    let configured = split_origin(base_url)
        .is_some_and(|(s, a)| s.eq_ignore_ascii_case(scheme) && a.eq_ignore_ascii_case(authority));
    if same_host || configured {
        Ok(())
    } else {
        Err(CsrfError::ForeignOrigin)
    }
}

/// The scheme and authority of an origin or URL (`null` and other opaque
/// origins have none).
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty() && (scheme == "http" || scheme == "https"))
        .then_some((scheme, authority))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn key() -> CsrfKey {
        CsrfKey(hmac::Key::new(hmac::HMAC_SHA256, b"test key"))
    }

    #[test]
    fn a_token_verifies_only_with_its_own_cookie_and_in_time() {
        let (a, b) = (FormNonce([1; 32]), FormNonce([2; 32]));
        let token = key().token(&a, NOW);
        assert_eq!(key().verify(Some(&a), Some(&token), NOW), Ok(()));
        assert_eq!(
            key().verify(Some(&b), Some(&token), NOW),
            Err(CsrfError::BadToken)
        );
        assert_eq!(
            key().verify(None, Some(&token), NOW),
            Err(CsrfError::NoCookie)
        );
        assert_eq!(key().verify(Some(&a), None, NOW), Err(CsrfError::BadToken));
        let late = NOW + TOKEN_LIFETIME + Duration::seconds(1);
        assert_eq!(
            key().verify(Some(&a), Some(&token), late),
            Err(CsrfError::BadToken)
        );
        let other_key = CsrfKey(hmac::Key::new(hmac::HMAC_SHA256, b"other"));
        assert_eq!(
            other_key.verify(Some(&a), Some(&token), NOW),
            Err(CsrfError::BadToken)
        );
    }

    #[test]
    fn the_cookie_round_trips() {
        let nonce = FormNonce([7; 32]);
        let set = nonce.set_cookie(false).unwrap();
        let set = set.to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        let pair = set.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).unwrap(),
        );
        assert_eq!(FormNonce::from_cookies(&headers), Some(nonce));
    }

    fn headers(pairs: &[(axum::http::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn origins_are_checked_against_host_and_base_url() {
        let base = "https://ca.example";
        let ok = |h: &HeaderMap| check_origin(h, base, true);
        assert_eq!(
            ok(&headers(&[
                (HOST, "127.0.0.1:9"),
                (ORIGIN, "http://127.0.0.1:9")
            ])),
            Ok(())
        );
        assert_eq!(
            ok(&headers(&[
                (HOST, "10.0.0.1"),
                (ORIGIN, "https://ca.example")
            ])),
            Ok(())
        );
        assert_eq!(
            ok(&headers(&[
                (HOST, "ca.example"),
                (REFERER, "https://ca.example/self-service")
            ])),
            Ok(())
        );
        assert_eq!(
            ok(&headers(&[
                (HOST, "ca.example"),
                (ORIGIN, "https://evil.example")
            ])),
            Err(CsrfError::ForeignOrigin)
        );
        for other_scheme in ["https://127.0.0.1:9", "http://ca.example"] {
            assert_eq!(
                ok(&headers(&[(HOST, "127.0.0.1:9"), (ORIGIN, other_scheme)])),
                Err(CsrfError::ForeignOrigin),
                "{other_scheme}"
            );
        }
        assert_eq!(
            ok(&headers(&[(HOST, "ca.example"), (ORIGIN, "null")])),
            Err(CsrfError::ForeignOrigin)
        );
        assert_eq!(
            ok(&headers(&[(HOST, "ca.example")])),
            Err(CsrfError::NoOrigin)
        );
        assert_eq!(
            check_origin(&headers(&[(HOST, "ca.example")]), base, false),
            Ok(())
        );
    }
}
