//! Answering a POST at most once per `Idempotency-Key` (SPEC §7).
//!
//! With a key, the answer is remembered in the transaction of the change
//! (see [`Authority::commit`](crate::authority)); a retry with the same key
//! and request gets the remembered status and body (marked
//! `Idempotent-Replayed: true`) and changes nothing; the same key with
//! another request is a 422. A refusal the use case decided (400, 404,
//! 409) is remembered too, so a retry cannot turn a refusal into a change.
//! Failures on our side (5xx) are not remembered: the client may retry.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::App;
use super::blocking::blocking;
use super::problem::{ApiError, PROBLEM_JSON, Problem};
use crate::authority::{Authority, AuthorityError, Idempotency, Outcome};
use crate::store::idempotency::{IdempotencyKey, Remembered, SentAnswer};

/// Marks a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";

/// JSON bytes of an answer body. A value that cannot be serialised fails
/// the use case (a 500 with nothing committed), never an empty body.
pub fn json<V: Serialize + ?Sized>(value: &V) -> Result<Vec<u8>, AuthorityError> {
    serde_json::to_vec(value).map_err(|e| AuthorityError::Render {
        what: "an answer as JSON",
        why: e.to_string(),
    })
}

/// Runs a state-changing use case and answers it, at most once per key.
/// `render` gives the body of a successful answer (status `success`).
pub async fn answer_once<T, R, U>(
    app: &Arc<App>,
    key: Option<IdempotencyKey>,
    success: StatusCode,
    render: R,
    use_case: U,
) -> Result<Response, ApiError>
where
    T: Send + 'static,
    R: Fn(&T) -> Result<Vec<u8>, AuthorityError> + Send + 'static,
    U: for<'a> FnOnce(
            &Authority,
            Option<&Idempotency<'a, T>>,
        ) -> Result<Outcome<T>, AuthorityError>
        + Send
        + 'static,
{
    blocking(app, move |authority| {
        Ok(run(authority, key.as_ref(), success, &render, use_case))
    })
    .await?
}

fn run<T, R, U>(
    authority: &Authority,
    key: Option<&IdempotencyKey>,
    success: StatusCode,
    render: &R,
    use_case: U,
) -> Result<Response, ApiError>
where
    R: Fn(&T) -> Result<Vec<u8>, AuthorityError>,
    U: for<'a> FnOnce(
        &Authority,
        Option<&Idempotency<'a, T>>,
    ) -> Result<Outcome<T>, AuthorityError>,
{
    // A plain read first: a retry of a finished request takes no write lock.
    if let Some(key) = key
        && let Some(prior) = authority.recall(key)?
    {
        return replay(prior, key);
    }
    let answer = |value: &T| Ok(to_answer(success, render(value)?));
    let once = key.map(|key| Idempotency {
        key,
        answer: &answer,
    });
    match use_case(authority, once.as_ref()) {
        Ok(Outcome::Done(value)) => Ok(response(answer(&value)?)),
        Ok(Outcome::Replayed(prior)) => match key {
            Some(key) => replay(prior, key),
            None => Err(ApiError::internal(&"replay without an idempotency key")),
        },
        Err(e) => {
            let refusal = ApiError::from(e);
            match key {
                Some(key) if refusal.problem() != Problem::Internal => {
                    let remembered =
                        to_answer(refusal.problem().status(), refusal.body().to_json());
                    match authority.remember_refusal(key, remembered)? {
                        Outcome::Done(_) => Err(refusal),
                        Outcome::Replayed(prior) => replay(prior, key),
                    }
                }
                _ => Err(refusal),
            }
        }
    }
}

/// The remembered answer, if it answered this very request; else a 422.
fn replay(prior: Remembered, key: &IdempotencyKey) -> Result<Response, ApiError> {
    if !prior.answers(key) {
        return Err(ApiError::new(
            Problem::IdempotencyKeyReused,
            "this Idempotency-Key was already used with a different request; use a new key",
        ));
    }
    let mut response = response(prior.answer);
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

// The store keeps an answer as it was sent; these two are the only places
// that know how it holds one.

/// The answer to remember: its status and body.
fn to_answer(status: StatusCode, body: Vec<u8>) -> SentAnswer {
    SentAnswer {
        status: status.as_u16(),
        body,
    }
}

/// A response from a remembered or fresh answer: JSON for success,
/// problem+json for a refusal.
fn response(answer: SentAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let media = if status.is_success() {
        "application/json"
    } else {
        PROBLEM_JSON
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(media))],
        answer.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_cannot_be_serialised_is_an_error_not_an_empty_body() {
        let keys_not_strings = std::collections::BTreeMap::from([((1, 2), 3)]);
        assert!(matches!(
            json(&keys_not_strings),
            Err(AuthorityError::Render { .. })
        ));
        assert_eq!(json(&[1, 2]).unwrap(), b"[1,2]");
    }
}
