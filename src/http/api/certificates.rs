//! One certificate: issue it, read it, suspend, resume or revoke it; and a
//! subscriber's certificates.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::changes::{ChangeBody, ResumeBody, RevokeBody, SuspendBody};
use super::openapi::SERIAL_FORMAT;
use super::views::{CertificateList, CertificateView};
use crate::authority::{Actor, AuthorityError, CertificateRecord, IssueRequest};
use crate::domain::{Channel, Serial};
use crate::http::App;
use crate::http::auth::Reader;
use crate::http::blocking::blocking;
use crate::http::idempotency::{answer_once, json};
use crate::http::problem::{ApiError, ProblemBody};
use crate::http::request::{Command, PathParam};

/// `POST /api/v1/certificates`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    subscriber: SubscriberBody,
    #[schema(example = "TP03000001")]
    card_number: String,
    #[schema(example = "person-sign")]
    profile: String,
    /// PKCS#10 in PEM; only its public key is used (after its signature is verified).
    csr: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SubscriberBody {
    #[schema(example = "A800000014")]
    code: String,
    #[schema(example = "CHEN Ta-wen")]
    name: String,
}

/// A serial from the path; parsed after the caller's token is checked, so
/// an anonymous request is a 401 whatever its path.
fn parse_serial(text: &str) -> Result<Serial, ApiError> {
    text.parse()
        .map_err(|e| ApiError::bad_request(format!("serial `{text}`: {e}")))
}

/// The JSON of one record.
fn record_json(record: &CertificateRecord) -> Result<Vec<u8>, AuthorityError> {
    json(&CertificateView::from(record))
}

/// Issue a certificate for a card's key pair.
#[utoipa::path(
    post, path = "/api/v1/certificates", tag = "certificates",
    request_body = IssueBody,
    params(Command<IssueBody>),
    responses(
        Command<IssueBody>,
        (status = 201, description = "Issued", body = CertificateView),
        (status = 400, description = "Bad input (CSR, identity, profile, JSON)", body = ProblemBody),
        (status = 409, description = "The card belongs to another subscriber", body = ProblemBody),
    )
)]
pub async fn issue_certificate(
    State(app): State<Arc<App>>,
    command: Command<IssueBody>,
) -> Result<Response, ApiError> {
    let Command { officer, body, key } = command;
    answer_once(
        &app,
        key,
        StatusCode::CREATED,
        record_json,
        move |authority, once| {
            let request = IssueRequest {
                subscriber_code: &body.subscriber.code,
                subscriber_name: &body.subscriber.name,
                card_number: &body.card_number,
                profile: &body.profile,
                csr: body.csr.as_bytes(),
            };
            let actor = Actor {
                name: &officer.name,
                channel: Channel::Ra,
            };
            authority.issue_once(&request, actor, once)
        },
    )
    .await
}

/// One certificate's record.
#[utoipa::path(
    get, path = "/api/v1/certificates/{serial}", tag = "certificates",
    params(("serial" = String, Path, description = SERIAL_FORMAT)),
    responses(
        Reader,
        (status = 200, description = "The record", body = CertificateView),
        (status = 400, description = "Not a serial", body = ProblemBody),
        (status = 404, description = "Unknown serial", body = ProblemBody),
    )
)]
pub async fn get_certificate(
    State(app): State<Arc<App>>,
    _reader: Reader,
    PathParam(serial): PathParam,
) -> Result<Response, ApiError> {
    let serial = parse_serial(&serial)?;
    let record = blocking(&app, move |authority| authority.certificate(&serial)).await?;
    Ok(Json(CertificateView::from(&record)).into_response())
}

/// Applies a status change to one certificate.
async fn change_certificate<B: ChangeBody>(
    app: Arc<App>,
    serial: &str,
    command: Command<B>,
) -> Result<Response, ApiError> {
    let Command { officer, body, key } = command;
    let serial = parse_serial(serial)?;
    let change = body.change()?;
    answer_once(
        &app,
        key,
        StatusCode::OK,
        record_json,
        move |authority, once| {
            let actor = change.actor(&officer.name);
            authority.change_status_once(
                &serial,
                change.transition,
                change.note.as_deref(),
                actor,
                once,
            )
        },
    )
    .await
}

/// Suspend a certificate (certificateHold).
#[utoipa::path(
    post, path = "/api/v1/certificates/{serial}/suspend", tag = "certificates",
    request_body = SuspendBody,
    params(("serial" = String, Path, description = SERIAL_FORMAT), Command<SuspendBody>),
    responses(
        Command<SuspendBody>,
        (status = 200, description = "Suspended", body = CertificateView),
        (status = 404, description = "Unknown serial", body = ProblemBody),
        (status = 409, description = "Not good, or expired", body = ProblemBody),
    )
)]
pub async fn suspend_certificate(
    State(app): State<Arc<App>>,
    PathParam(serial): PathParam,
    command: Command<SuspendBody>,
) -> Result<Response, ApiError> {
    change_certificate(app, &serial, command).await
}

/// Resume a suspended certificate (removeFromCRL in the next delta CRL).
#[utoipa::path(
    post, path = "/api/v1/certificates/{serial}/resume", tag = "certificates",
    request_body = ResumeBody,
    params(("serial" = String, Path, description = SERIAL_FORMAT), Command<ResumeBody>),
    responses(
        Command<ResumeBody>,
        (status = 200, description = "Resumed", body = CertificateView),
        (status = 404, description = "Unknown serial", body = ProblemBody),
        (status = 409, description = "Not suspended, or expired", body = ProblemBody),
    )
)]
pub async fn resume_certificate(
    State(app): State<Arc<App>>,
    PathParam(serial): PathParam,
    command: Command<ResumeBody>,
) -> Result<Response, ApiError> {
    change_certificate(app, &serial, command).await
}

/// Revoke a certificate for good.
#[utoipa::path(
    post, path = "/api/v1/certificates/{serial}/revoke", tag = "certificates",
    request_body = RevokeBody,
    params(("serial" = String, Path, description = SERIAL_FORMAT), Command<RevokeBody>),
    responses(
        Command<RevokeBody>,
        (status = 200, description = "Revoked", body = CertificateView),
        (status = 400, description = "Bad input or a reason not accepted", body = ProblemBody),
        (status = 404, description = "Unknown serial", body = ProblemBody),
        (status = 409, description = "Already revoked, or expired", body = ProblemBody),
    )
)]
pub async fn revoke_certificate(
    State(app): State<Arc<App>>,
    PathParam(serial): PathParam,
    command: Command<RevokeBody>,
) -> Result<Response, ApiError> {
    change_certificate(app, &serial, command).await
}

/// Every certificate of a subscriber, oldest first.
#[utoipa::path(
    get, path = "/api/v1/subscribers/{code}/certificates", tag = "subscribers",
    params(("code" = String, Path, description = "Subscriber code")),
    responses(
        Reader,
        (status = 200, description = "The records", body = CertificateList),
        (status = 404, description = "Unknown subscriber", body = ProblemBody),
    )
)]
pub async fn subscriber_certificates(
    State(app): State<Arc<App>>,
    _reader: Reader,
    PathParam(code): PathParam,
) -> Result<Response, ApiError> {
    let records = blocking(&app, move |authority| {
        authority.certificates_of_subscriber(&code)
    })
    .await?;
    Ok(Json(CertificateList::from(records.as_slice())).into_response())
}
