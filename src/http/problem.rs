//! Problem details ([RFC 9457](https://www.rfc-editor.org/rfc/rfc9457)): the
//! one `application/problem+json` body of the service, sent by the RA API
//! ([`ApiError`], with the statuses of SPEC §7) and by the self-service JSON.
//!
//! A 5xx never carries internals in `detail`: the cause goes to the log
//! (under the request id) and the client gets a generic sentence.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::authority::{AuthorityError, ErrorClass};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The start of every problem `type` URI; the rest names the problem.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:eidca:problem:";

/// What went wrong, as far as the client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Malformed or invalid input (400).
    BadRequest,
    /// No token, or a token nobody configured (401).
    Unauthorized,
    /// A token was sent, but it is not one we know (401, RFC 6750 `invalid_token`).
    InvalidToken,
    /// A valid token whose role may not do this (403).
    Forbidden,
    /// Unknown serial, card, subscriber, CRL or route (404).
    NotFound,
    /// The route exists, the method does not (405).
    MethodNotAllowed,
    /// A lifecycle transition or registration that is not allowed (409).
    Conflict,
    /// A body that did not arrive within its deadline (408).
    RequestTimeout,
    /// A body over the limit (413).
    PayloadTooLarge,
    /// A body that is not JSON (415).
    UnsupportedMediaType,
    /// An `Idempotency-Key` reused with another request (422).
    IdempotencyKeyReused,
    /// Our fault (500).
    Internal,
    /// Too busy to answer within the request timeout (503).
    Unavailable,
    /// A CA key cannot sign now, e.g. its token is away (503, SPEC §11).
    SignerUnavailable,
}

impl Problem {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable | Self::SignerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The short, stable name in the problem `type` URI.
    fn slug(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthorized => "unauthorized",
            Self::InvalidToken => "invalid-token",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::RequestTimeout => "request-timeout",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::SignerUnavailable => "signer-unavailable",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "Bad request",
            Self::Unauthorized => "Authentication required",
            Self::InvalidToken => "Invalid token",
            Self::Forbidden => "Not allowed for this role",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Not allowed in the current state",
            Self::RequestTimeout => "Request body not received in time",
            Self::PayloadTooLarge => "Request body too large",
            Self::UnsupportedMediaType => "Request body must be JSON",
            Self::IdempotencyKeyReused => "Idempotency key reused with another request",
            Self::Internal => "Internal error",
            Self::Unavailable => "Service busy",
            Self::SignerUnavailable => "A CA key cannot sign now",
        }
    }
}

/// The problem+json body (RFC 9457 §3.1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// `urn:eidca:problem:<name>`, stable for clients to match on.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Seconds until a retry may succeed, an extension member (RFC 9457
    /// §3.2) of the self-service lock-out; the RA API never sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub retry_after_s: Option<i64>,
}

impl ProblemBody {
    /// The body as sent.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings and integers always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl IntoResponse for ProblemBody {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            self.to_json(),
        )
            .into_response()
    }
}

/// A refused request.
#[derive(Debug)]
pub struct ApiError {
    problem: Problem,
    detail: String,
}

impl ApiError {
    pub fn new(problem: Problem, detail: impl Into<String>) -> Self {
        Self {
            problem,
            detail: detail.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(Problem::BadRequest, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(Problem::NotFound, detail)
    }

    /// A failure on our side: the cause is logged, never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            Problem::Internal,
            "the request could not be completed; the server log has the cause under this request's id",
        )
    }

    pub fn problem(&self) -> Problem {
        self.problem
    }

    /// The body as sent, e.g. to remember for an idempotency key.
    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: format!("{PROBLEM_TYPE_PREFIX}{}", self.problem.slug()),
            title: self.problem.title().to_owned(),
            status: self.problem.status().as_u16(),
            detail: self.detail.clone(),
            retry_after_s: None,
        }
    }
}

/// The one place where a use case's refusal becomes a problem.
impl From<AuthorityError> for ApiError {
    fn from(e: AuthorityError) -> Self {
        match e.class() {
            ErrorClass::Invalid => Self::bad_request(e.to_string()),
            ErrorClass::NotFound => Self::not_found(e.to_string()),
            ErrorClass::Conflict => Self::new(Problem::Conflict, e.to_string()),
            ErrorClass::Internal => Self::internal(&e),
            ErrorClass::SignerUnavailable => {
                tracing::warn!(error = %e, "signer unavailable");
                Self::new(Problem::SignerUnavailable, e.to_string())
            }
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.body().into_response();
        let challenge = match self.problem {
            Problem::Unauthorized => Some(r#"Bearer realm="eidca""#),
            Problem::InvalidToken => Some(r#"Bearer realm="eidca", error="invalid_token""#),
            _ => None,
        };
        if self.problem == Problem::SignerUnavailable {
            // A token usually comes back within seconds (SPEC §11).
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// Any route that does not exist.
pub async fn no_such_route() -> ApiError {
    ApiError::not_found("no such resource")
}

/// A route that exists, asked with a method it does not serve.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        Problem::MethodNotAllowed,
        "this resource does not serve that method",
    )
}
