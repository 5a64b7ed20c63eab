//! Running RA use cases off the async executor, and answering a POST at
//! most once per `Idempotency-Key` (SPEC §7).
//!
//! With a key, the answer is remembered in the transaction of the change
//! (see [`Authority::commit`](crate::authority)); a retry with the same key
//! and request gets the remembered status and body (marked
//! `Idempotent-Replayed: true`) and changes nothing; the same key with
//! another request is a 422. A refusal the use case decided (400, 404,
//! 409) is remembered too, so a retry cannot turn a refusal into a change.
//! Failures on our side (5xx) are not remembered: the client may retry.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::App;
use super::error::{ApiError, Problem, answer_response};
use crate::authority::{Authority, AuthorityError, Idempotency, Outcome};
use crate::store::idempotency::{Answer, IdempotencyKey, Remembered};

/// Marks a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";

/// Runs `f` on the blocking pool (SQLite and signing block), inside the
/// request's tracing span.
pub async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&Authority) -> Result<T, AuthorityError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = Arc::clone(app);
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| f(&app.authority)))
        .await?
        .map_err(ApiError::from)
}

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
    let app = Arc::clone(app);
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| run(&app.authority, key.as_ref(), success, &render, use_case))
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
    let answer = |value: &T| -> Result<Answer, AuthorityError> {
        Ok(Answer {
            status: success.as_u16(),
            body: render(value)?,
        })
    };
    let once = key.map(|key| Idempotency {
        key,
        answer: &answer,
    });
    match use_case(authority, once.as_ref()) {
        Ok(Outcome::Done(value)) => Ok(answer_response(answer(&value)?)),
        Ok(Outcome::Replayed(prior)) => match key {
            Some(key) => replay(prior, key),
            None => Err(ApiError::internal(&"replay without an idempotency key")),
        },
        Err(e) => {
            let refusal = ApiError::from(e);
            match key {
                Some(key) if refusal.problem() != Problem::Internal => {
                    match authority.remember_refusal(key, refusal.to_answer())? {
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
    let mut response = answer_response(prior.answer);
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}
