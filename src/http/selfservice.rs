//! The subscriber's self-service page (SPEC §7, "Self-service"): suspend or
//! resume every certificate of a card with subscriber code and IC card
//! number, from a browser (HTML form) or a mobile client (JSON).
//!
//! Handlers here are thin: the rules live in the authority
//! ([`crate::authority::self_service`]: pair check, throttling), [`csrf`] (forgery protection), [`answer`] (what each
//! outcome is called and which status it gets), and the answer is rendered
//! by [`page`] or [`json`] according to the request's `Content-Type`.

pub mod answer;
pub mod client;
pub mod csrf;
mod headers;
mod json;
mod page;
pub mod words;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use http_body_util::BodyExt;
use serde::Deserialize;

use self::answer::Answer;
use self::client::ClientAddress;
use self::csrf::{CsrfKey, FormNonce};
use super::App;
use super::blocking::blocking;
use crate::authority::self_service::{CardAction, CardOutcome, CardRequest};
use crate::authority::{Authority, AuthorityError};
use crate::issuance::identity::check_code;

/// Where the page's stylesheet is served (the CSP allows styles from here only).
pub const STYLESHEET_PATH: &str = "/self-service/style.css";

const STYLESHEET: &str = include_str!("selfservice/style.css");

/// Two short codes and a token fit many times over.
const BODY_LIMIT: usize = 4 * 1024;

/// The page, its stylesheet and the two POSTs, with the security headers.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/self-service", get(form_page))
        .route(STYLESHEET_PATH, get(stylesheet))
        .route("/self-service/suspend", post(suspend))
        .route("/self-service/resume", post(resume))
        .layer(middleware::from_fn(headers::security_headers))
}

/// `GET /self-service`: the two forms, each with a CSRF token bound to the
/// nonce cookie (kept if the browser already has one, so open tabs stay valid).
async fn form_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let existing = FormNonce::from_cookies(&headers);
    let secure = app.authority.config().base_url.starts_with("https://");
    let prepared = step(&app, move |authority| {
        let key = CsrfKey::of(authority)?;
        let nonce = match existing {
            Some(nonce) => nonce,
            None => FormNonce::random()?,
        };
        let token = key.token(&nonce, authority.now());
        let cookie = nonce
            .set_cookie(secure)
            .map_err(|e| AuthorityError::Render {
                what: "the self-service cookie",
                why: e.to_string(),
            })?;
        Ok((cookie, token))
    })
    .await;
    let Some((cookie, token)) = prepared else {
        return render(Format::Html, &Answer::Internal);
    };
    let markup = page::form_page(&page::FormPage {
        csrf_token: &token,
        window: app.authority.sync_window(),
        throttle: app.authority.throttle(),
    });
    let mut response = markup.into_response();
    response.headers_mut().insert(SET_COOKIE, cookie);
    response
}

async fn stylesheet() -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// `POST /self-service/suspend`.
async fn suspend(
    State(app): State<Arc<App>>,
    client: ClientAddress,
    headers: HeaderMap,
    body: Body,
) -> Response {
    submit(&app, client, &headers, body, CardAction::Suspend).await
}

/// `POST /self-service/resume`.
async fn resume(
    State(app): State<Arc<App>>,
    client: ClientAddress,
    headers: HeaderMap,
    body: Body,
) -> Response {
    submit(&app, client, &headers, body, CardAction::Resume).await
}

/// The body, read up to [`BODY_LIMIT`]: a longer one is answered in the
/// request's own format (page or problem+json), and the connection is
/// closed after it, since the rest of the body was never read.
async fn read_body(body: Body) -> Result<Bytes, Answer> {
    match http_body_util::Limited::new(body, BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Answer::TooLarge),
        Err(_) => Err(Answer::BadInput),
    }
}

/// How the request was sent, and so how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `application/x-www-form-urlencoded`, answered with a page.
    Html,
    /// `application/json`, answered with JSON or problem+json.
    Json,
}

impl Format {
    fn of(headers: &HeaderMap) -> Option<Self> {
        let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-www-form-urlencoded" => Some(Self::Html),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// The submitted fields (SPEC §7); the token only in the HTML form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    subscriber_code: String,
    card_number: String,
    #[serde(default)]
    csrf_token: Option<String>,
}

impl Fields {
    fn parse(format: Format, body: &[u8]) -> Option<Self> {
        match format {
            Format::Html => serde_urlencoded::from_bytes(body).ok(),
            Format::Json => serde_json::from_slice(body).ok(),
        }
    }

    /// Upper-cases and checks both codes (4–16 of A–Z, 0–9).
    fn into_request(self, action: CardAction, client: ClientAddress) -> Option<CardRequest> {
        let code = |field, value: &str| check_code(field, &value.trim().to_ascii_uppercase()).ok();
        Some(CardRequest {
            subscriber_code: code("subscriber code", &self.subscriber_code)?,
            card_number: code("card number", &self.card_number)?,
            action,
            client: client.0,
        })
    }
}

async fn submit(
    app: &Arc<App>,
    client: ClientAddress,
    headers: &HeaderMap,
    body: Body,
    action: CardAction,
) -> Response {
    let Some(format) = Format::of(headers) else {
        return render(Format::Json, &Answer::UnsupportedMediaType);
    };
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(answer) => {
            let mut response = render(format, &answer);
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    let answer = decide(app, client, headers, &body, action, format).await;
    render(format, &answer)
}

/// Origin check, parsing, CSRF token, then the card request itself.
/// A JSON request needs no token: a browser cannot send one cross-site
/// without a CORS preflight, which this service never grants; its
/// `Origin`, when present, is checked all the same.
async fn decide(
    app: &Arc<App>,
    client: ClientAddress,
    headers: &HeaderMap,
    body: &[u8],
    action: CardAction,
    format: Format,
) -> Answer {
    let config = app.authority.config();
    if let Err(e) = csrf::check_origin(headers, &config.base_url, format == Format::Html) {
        return Answer::Forgery(e);
    }
    let Some(fields) = Fields::parse(format, body) else {
        return Answer::BadInput;
    };
    let nonce = FormNonce::from_cookies(headers);
    step(app, move |authority| {
        if format == Format::Html {
            let key = CsrfKey::of(authority)?;
            let now = authority.now();
            if let Err(e) = key.verify(nonce.as_ref(), fields.csrf_token.as_deref(), now) {
                return Ok(Answer::Forgery(e));
            }
        }
        let Some(request) = fields.into_request(action, client) else {
            return Ok(Answer::BadInput);
        };
        let outcome = authority.change_card_by_subscriber(&request)?;
        Ok(answer_to(authority, outcome, &request))
    })
    .await
    .unwrap_or(Answer::Internal)
}

fn answer_to(authority: &Authority, outcome: CardOutcome, request: &CardRequest) -> Answer {
    Answer::of(
        outcome,
        request.action,
        &request.card_number,
        authority.sync_window(),
        authority.throttle(),
        authority.now(),
    )
}

fn render(format: Format, answer: &Answer) -> Response {
    let mut response = match format {
        Format::Html => (answer.status(), page::answer_page(answer)).into_response(),
        Format::Json => json::response(answer),
    };
    if let Some(seconds) = answer.retry_after() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A step of a request on the blocking pool; a failure is logged here and
/// reaches the client as [`Answer::Internal`].
async fn step<T: Send + 'static>(
    app: &Arc<App>,
    work: impl FnOnce(&Authority) -> Result<T, AuthorityError> + Send + 'static,
) -> Option<T> {
    blocking(app, work)
        .await
        .inspect_err(|e| tracing::error!(error = ?e, "self-service request failed"))
        .ok()
}
