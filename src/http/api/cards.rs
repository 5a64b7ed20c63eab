//! Every certificate of a card at once: suspend, resume or revoke them,
//! all or nothing.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::changes::{ChangeBody, ResumeBody, RevokeBody, SuspendBody};
use super::views::CardRecords;
use crate::authority::CertificateRecord;
use crate::http::App;
use crate::http::idempotency::{answer_once, json};
use crate::http::problem::{ApiError, ProblemBody};
use crate::http::request::{Command, PathParam};

/// Applies a status change to every eligible certificate of a card.
async fn change_card<B: ChangeBody>(
    app: Arc<App>,
    card_number: String,
    command: Command<B>,
) -> Result<Response, ApiError> {
    let Command { officer, body, key } = command;
    let change = body.change()?;
    let shown = card_number.clone();
    let render = move |records: &Vec<CertificateRecord>| json(&CardRecords::new(&shown, records));
    answer_once(&app, key, StatusCode::OK, render, move |authority, once| {
        let actor = change.actor(&officer.name);
        authority.change_card_once(
            &card_number,
            change.transition,
            change.note.as_deref(),
            actor,
            once,
        )
    })
    .await
}

/// Suspend every good certificate of a card, all or nothing.
#[utoipa::path(
    post, path = "/api/v1/cards/{card_number}/suspend", tag = "cards",
    request_body = SuspendBody,
    params(("card_number" = String, Path), Command<SuspendBody>),
    responses(
        Command<SuspendBody>,
        (status = 200, description = "The card's certificates after the change", body = CardRecords),
        (status = 404, description = "Unknown card", body = ProblemBody),
        (status = 409, description = "No certificate of the card can be suspended", body = ProblemBody),
    )
)]
pub async fn suspend_card(
    State(app): State<Arc<App>>,
    PathParam(card): PathParam,
    command: Command<SuspendBody>,
) -> Result<Response, ApiError> {
    change_card(app, card, command).await
}

/// Resume every suspended certificate of a card, all or nothing.
#[utoipa::path(
    post, path = "/api/v1/cards/{card_number}/resume", tag = "cards",
    request_body = ResumeBody,
    params(("card_number" = String, Path), Command<ResumeBody>),
    responses(
        Command<ResumeBody>,
        (status = 200, description = "The card's certificates after the change", body = CardRecords),
        (status = 404, description = "Unknown card", body = ProblemBody),
        (status = 409, description = "No certificate of the card can be resumed", body = ProblemBody),
    )
)]
pub async fn resume_card(
    State(app): State<Arc<App>>,
    PathParam(card): PathParam,
    command: Command<ResumeBody>,
) -> Result<Response, ApiError> {
    change_card(app, card, command).await
}

/// Revoke every good or suspended certificate of a card, all or nothing.
#[utoipa::path(
    post, path = "/api/v1/cards/{card_number}/revoke", tag = "cards",
    request_body = RevokeBody,
    params(("card_number" = String, Path), Command<RevokeBody>),
    responses(
        Command<RevokeBody>,
        (status = 200, description = "The card's certificates after the change", body = CardRecords),
        (status = 400, description = "Bad input or a reason not accepted", body = ProblemBody),
        (status = 404, description = "Unknown card", body = ProblemBody),
        (status = 409, description = "No certificate of the card can be revoked", body = ProblemBody),
    )
)]
pub async fn revoke_card(
    State(app): State<Arc<App>>,
    PathParam(card): PathParam,
    command: Command<RevokeBody>,
) -> Result<Response, ApiError> {
    change_card(app, card, command).await
}
