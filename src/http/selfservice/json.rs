//! The JSON variant of the two POSTs, for a mobile client: the same
//! [`Answer`] as the page, as a JSON result or an RFC 9457 problem.

use axum::Json;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;

use super::answer::Answer;

/// Prefix of the problem types; the last part is [`Answer::slug`].
pub const PROBLEM_TYPE_PREFIX: &str = "urn:eidca:problem:self-service:";

/// The body of a successful suspend or resume.
#[derive(Debug, Serialize)]
struct Changed<'a> {
    action: &'static str,
    card_number: &'a str,
    certificates: Vec<Certificate<'a>>,
    #[serde(with = "time::serde::rfc3339")]
    changed_at: OffsetDateTime,
    /// When OCSP and delta-CRL users see the change.
    #[serde(with = "time::serde::rfc3339")]
    visible_by: OffsetDateTime,
    /// When users of full CRLs only see it.
    #[serde(with = "time::serde::rfc3339")]
    full_crl_by: OffsetDateTime,
}

#[derive(Debug, Serialize)]
struct Certificate<'a> {
    profile: &'a str,
    serial_masked: String,
    status: &'static str,
}

/// RFC 9457 problem details, plus `retry_after_s` when locked.
#[derive(Debug, Serialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_s: Option<i64>,
}

pub fn response(answer: &Answer) -> Response {
    match answer {
        Answer::Changed {
            action,
            card_number,
            certificates,
            at,
            window,
        } => Json(Changed {
            action: action.name(),
            card_number,
            certificates: certificates
                .iter()
                .map(|c| Certificate {
                    profile: &c.profile,
                    serial_masked: super::answer::mask_serial(&c.serial),
                    status: c.status,
                })
                .collect(),
            changed_at: *at,
            visible_by: window.visible_by(*at),
            full_crl_by: window.full_crl_by(*at),
        })
        .into_response(),
        _ => problem(answer),
    }
}

fn problem(answer: &Answer) -> Response {
    let status = answer.status();
    let body = Problem {
        kind: format!("{PROBLEM_TYPE_PREFIX}{}", answer.slug()),
        title: answer.title().en,
        status: status.as_u16(),
        detail: answer.detail().en,
        retry_after_s: answer.retry_after(),
    };
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}
