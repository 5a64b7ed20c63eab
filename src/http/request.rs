//! Typed extractors for RA requests: a strict JSON body with its officer and
//! idempotency key ([`Command`]), and path segments ([`PathParam`]). Every
//! rejection is an [`ApiError`], so bad input gets problem+json, never
//! axum's plain-text 422.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::App;
use super::auth::{Officer, Principal};
use super::problem::{ApiError, Problem};
use crate::store::idempotency::IdempotencyKey;

/// The largest JSON body accepted (a CSR in PEM is a few KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The request header that makes a POST idempotent (SPEC §7).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Longest idempotency key accepted.
const MAX_KEY_LEN: usize = 255;

/// An RA POST: the officer who sent it, its body parsed strictly (unknown
/// fields refused) and its idempotency key, if any. The token is checked
/// before anything else is looked at, so an anonymous request is a 401
/// whatever its body.
#[derive(Debug)]
pub struct Command<T> {
    pub officer: Principal,
    pub body: T,
    pub key: Option<IdempotencyKey>,
}

impl<T: DeserializeOwned> FromRequest<Arc<App>> for Command<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let Officer(officer) = Officer::from_request_parts(&mut parts, app).await?;
        let key = idempotency_key(&parts.headers)?;
        let target = format!("{} {}", parts.method, parts.uri.path());
        let json_declared = is_json(&parts.headers);
        let bytes = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        Problem::PayloadTooLarge,
                        format!("the body is larger than {BODY_LIMIT} bytes"),
                    )
                } else {
                    ApiError::bad_request("the request body could not be read")
                }
            })?;
        // An empty body is an empty object: `POST .../resume` needs no body.
        let value: serde_json::Value = if bytes.is_empty() {
            serde_json::Value::Object(Default::default())
        } else if !json_declared {
            return Err(ApiError::new(
                Problem::UnsupportedMediaType,
                "send the body with `Content-Type: application/json`",
            ));
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?
        };
        let key = key.map(|key| IdempotencyKey {
            principal: officer.name.clone(),
            key,
            request_hash: request_hash(&target, &value),
        });
        let body = T::deserialize(value)
            .map_err(|e| ApiError::bad_request(format!("the body does not fit: {e}")))?;
        Ok(Command { officer, body, key })
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|media| {
            let media = media.trim().to_ascii_lowercase();
            media == "application/json" || media.ends_with("+json")
        })
        .unwrap_or(false)
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    let visible = key.bytes().all(|b| b.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_KEY_LEN || !visible {
        return Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// SHA-256 of the method, the path and the body in canonical JSON (keys
/// sorted, no spaces): the same request retried hashes the same however
/// its JSON was laid out.
fn request_hash(target: &str, body: &serde_json::Value) -> [u8; 32] {
    let mut canonical = String::new();
    write_canonical(body, &mut canonical);
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(target.as_bytes());
    ctx.update(b"\n");
    ctx.update(canonical.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(ctx.finish().as_ref());
    hash
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// One path segment as text; a segment that is not valid percent-encoded
/// UTF-8 is a 400 problem.
#[derive(Debug)]
pub struct PathParam(pub String);

impl FromRequestParts<Arc<App>> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let Path(value) = Path::<String>::from_request_parts(parts, app)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        Ok(PathParam(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_hash_ignores_layout_and_key_order() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "é"}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":"\u00e9","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(request_hash("POST /x", &a), request_hash("POST /x", &b));
        assert_ne!(request_hash("POST /x", &a), request_hash("POST /y", &a));
        let c: serde_json::Value =
            serde_json::from_str(r#"{"b": 2, "a": {"y": [1, 2], "x": "é"}}"#).unwrap();
        assert_ne!(request_hash("POST /x", &a), request_hash("POST /x", &c));
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_of_bounded_length() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(IDEMPOTENCY_KEY, v.parse().unwrap());
            h
        };
        assert_eq!(idempotency_key(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            idempotency_key(&headers("k-1")).unwrap().as_deref(),
            Some("k-1")
        );
        assert!(idempotency_key(&headers("two words")).is_err());
        assert!(idempotency_key(&headers(&"k".repeat(256))).is_err());
    }
}
