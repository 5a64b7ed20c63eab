//! The JSON variant of the two POSTs, for a mobile client: the same
//! [`Answer`] as the page, as a JSON result or an RFC 9457 problem.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;

use super::answer::Answer;
use crate::http::problem::{PROBLEM_TYPE_PREFIX, ProblemBody};

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

/// A refusal as problem details, typed `urn:eidca:problem:self-service:`
/// and [`Answer::slug`], with `retry_after_s` when locked.
fn problem(answer: &Answer) -> Response {
    ProblemBody {
        kind: format!("{PROBLEM_TYPE_PREFIX}self-service:{}", answer.slug()),
        title: answer.title().en,
        status: answer.status().as_u16(),
        detail: answer.detail().en,
        retry_after_s: answer.retry_after(),
    }
    .into_response()
}
