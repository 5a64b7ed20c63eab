//! CRL publication on demand, and the sync window it keeps (SPEC §6).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::{CrlKindName, CrlSummaryView, SyncWindowView};
use crate::http::App;
use crate::http::auth::Reader;
use crate::http::blocking::blocking;
use crate::http::idempotency::{answer_once, json};
use crate::http::problem::{ApiError, ProblemBody};
use crate::http::request::Command;
use crate::revocation::CrlSummary;

/// `POST /api/v1/crls`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    kind: CrlKindName,
}

/// Publish a CRL now (a full CRL is followed by a delta against it).
#[utoipa::path(
    post, path = "/api/v1/crls", tag = "crls",
    request_body = PublishBody,
    params(Command<PublishBody>),
    responses(
        Command<PublishBody>,
        (status = 201, description = "The CRL asked for", body = CrlSummaryView),
        (status = 409, description = "Another publisher kept taking the next number", body = ProblemBody),
    )
)]
pub async fn publish_crl(
    State(app): State<Arc<App>>,
    command: Command<PublishBody>,
) -> Result<Response, ApiError> {
    let Command { officer, body, key } = command;
    let render = |summary: &CrlSummary| json(&CrlSummaryView::from(summary));
    answer_once(
        &app,
        key,
        StatusCode::CREATED,
        render,
        move |authority, once| authority.publish_once(body.kind.into(), &officer.name, once),
    )
    .await
}

/// The promised sync window and where CRL publication stands.
#[utoipa::path(
    get, path = "/api/v1/sync-window", tag = "crls",
    responses(
        Reader,
        (status = 200, description = "The sync window", body = SyncWindowView),
    )
)]
pub async fn sync_window(
    State(app): State<Arc<App>>,
    _reader: Reader,
) -> Result<Json<SyncWindowView>, ApiError> {
    let window = blocking(&app, |authority| authority.sync_status()).await?;
    Ok(Json(SyncWindowView::from(&window)))
}
