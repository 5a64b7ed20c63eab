//! The registration authority API of SPEC §7, under `/api/v1`.
//!
//! Each handler is a thin function of typed extractors: [`Command`] (an
//! officer's strict JSON body and idempotency key) or [`Reader`] (any RA
//! role), calling one use case of the [`Authority`](crate::authority::Authority). The handlers are
//! registered through utoipa's router, so `/api/v1/openapi.json` is built
//! from the very routes served and cannot drift from them.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::App;
use super::auth::Reader;
use super::error::{ApiError, ProblemBody};
use super::idempotency::{answer_once, blocking, json};
use super::request::{BODY_LIMIT, Command, PathParam};
use crate::authority::{Actor, CertificateRecord, IssueRequest, SyncStatus};
use crate::domain::{Channel, RevocationReason, Serial, Transition};
use crate::revocation::CrlKind;
use crate::revocation::CrlSummary;

/// The RA routes and the OpenAPI document they make, served beside them.
pub fn router() -> Router<Arc<App>> {
    let (routes, mut openapi) = routes().split_for_parts();
    errors_are_problem_json(&mut openapi);
    let document = Arc::new(openapi.to_json().unwrap_or_default());
    routes.route(
        "/api/v1/openapi.json",
        get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                document.as_str().to_owned(),
            )
        }),
    )
}

/// The OpenAPI document of the RA API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut openapi = routes().into_openapi();
    errors_are_problem_json(&mut openapi);
    openapi
}

/// Declares every 4xx/5xx body as `application/problem+json`, which is
/// what [`ApiError`] sends (utoipa assumes `application/json`).
fn errors_are_problem_json(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    let operations = openapi
        .paths
        .paths
        .values_mut()
        .flat_map(|item| [&mut item.get, &mut item.post].into_iter().flatten());
    for operation in operations {
        for (status, response) in operation.responses.responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            if status.starts_with(['4', '5'])
                && let Some(content) = response.content.shift_remove("application/json")
            {
                response
                    .content
                    .insert(super::error::PROBLEM_JSON.to_owned(), content);
            }
        }
    }
}

fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(issue_certificate))
        .routes(routes!(get_certificate))
        .routes(routes!(suspend_certificate))
        .routes(routes!(resume_certificate))
        .routes(routes!(revoke_certificate))
        .routes(routes!(suspend_card))
        .routes(routes!(resume_card))
        .routes(routes!(revoke_card))
        .routes(routes!(subscriber_certificates))
        .routes(routes!(publish_crl))
        .routes(routes!(sync_window))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "eidca registration authority API",
        description = "Issue certificates for national eID cards, suspend, resume and revoke them, publish CRLs (SPEC §7). \
                       Every POST honours an `Idempotency-Key` header. Errors are application/problem+json (RFC 9457)."
    ),
    modifiers(&BearerAuth),
    components(schemas(ProblemBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Longest note accepted on a status change.
const MAX_NOTE_CHARS: usize = 1000;

/// `POST /api/v1/certificates`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct IssueBody {
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

/// How a suspension reached the RA.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum SuspendChannel {
    /// At the registration window.
    #[default]
    Ra,
    /// By fax with an identity document.
    Emergency,
}

/// `POST .../suspend`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SuspendBody {
    #[serde(default)]
    channel: SuspendChannel,
    /// For the status history; never logged.
    note: Option<String>,
}

/// `POST .../resume`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResumeBody {
    /// For the status history; never logged.
    note: Option<String>,
}

/// `POST .../revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    /// unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation or privilegeWithdrawn.
    #[schema(example = "keyCompromise")]
    reason: String,
    /// For the status history; never logged.
    note: Option<String>,
}

/// A status change as the authority takes it.
struct Change {
    transition: Transition,
    channel: Channel,
    note: Option<String>,
}

/// A request body that asks for a status change.
trait ChangeBody {
    fn change(self) -> Result<Change, ApiError>;
}

fn checked_note(note: Option<String>) -> Result<Option<String>, ApiError> {
    match note {
        Some(n) if n.chars().count() > MAX_NOTE_CHARS => Err(ApiError::bad_request(format!(
            "note is longer than {MAX_NOTE_CHARS} characters"
        ))),
        note => Ok(note),
    }
}

impl ChangeBody for SuspendBody {
    fn change(self) -> Result<Change, ApiError> {
        let channel = match self.channel {
            SuspendChannel::Ra => Channel::Ra,
            SuspendChannel::Emergency => Channel::Emergency,
        };
        Ok(Change {
            transition: Transition::Suspend,
            channel,
            note: checked_note(self.note)?,
        })
    }
}

impl ChangeBody for ResumeBody {
    fn change(self) -> Result<Change, ApiError> {
        Ok(Change {
            transition: Transition::Resume,
            channel: Channel::Ra,
            note: checked_note(self.note)?,
        })
    }
}

impl ChangeBody for RevokeBody {
    fn change(self) -> Result<Change, ApiError> {
        let reason: RevocationReason =
            self.reason
                .parse()
                .map_err(|e: crate::domain::reason::RevocationReasonError| {
                    ApiError::bad_request(e.to_string())
                })?;
        Ok(Change {
            transition: Transition::Revoke(reason),
            channel: Channel::Ra,
            note: checked_note(self.note)?,
        })
    }
}

/// `POST /api/v1/crls`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    kind: CrlKindName,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum CrlKindName {
    Full,
    Delta,
}

impl From<CrlKindName> for CrlKind {
    fn from(k: CrlKindName) -> Self {
        match k {
            CrlKindName::Full => CrlKind::Full,
            CrlKindName::Delta => CrlKind::Delta,
        }
    }
}

impl From<CrlKind> for CrlKindName {
    fn from(k: CrlKind) -> Self {
        match k {
            CrlKind::Full => CrlKindName::Full,
            CrlKind::Delta => CrlKindName::Delta,
        }
    }
}

/// A card operation's answer.
#[derive(Debug, Serialize, ToSchema)]
struct CardRecords<'a> {
    card_number: &'a str,
    /// Every certificate of the card, changed or not.
    certificates: &'a [CertificateRecord],
}

/// A subscriber's certificates.
#[derive(Debug, Serialize, ToSchema)]
struct CertificateList {
    certificates: Vec<CertificateRecord>,
}

/// A published CRL (SPEC §7 CRL summary).
#[derive(Debug, Serialize, ToSchema)]
pub struct CrlSummaryView {
    number: u64,
    kind: CrlKindName,
    /// The base full CRL of a delta; null for a full CRL.
    base_number: Option<u64>,
    /// RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    this_update: OffsetDateTime,
    /// RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    next_update: OffsetDateTime,
    /// Number of entries.
    entries: u64,
}

impl From<&CrlSummary> for CrlSummaryView {
    fn from(s: &CrlSummary) -> Self {
        Self {
            number: s.number,
            kind: s.kind.into(),
            base_number: s.base_number,
            this_update: s.this_update,
            next_update: s.next_update,
            entries: s.entries,
        }
    }
}

/// The sync window (SPEC §6).
#[derive(Debug, Serialize, ToSchema)]
struct SyncWindowView {
    ocsp_max_age_s: i64,
    delta_crl_interval_s: i64,
    full_crl_interval_s: i64,
    /// The larger of the OCSP max-age and the delta CRL interval.
    worst_case_s: i64,
    last_full: Option<CrlSummaryView>,
    last_delta: Option<CrlSummaryView>,
    /// RFC 3339 UTC: the oldest status change no published CRL shows yet.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    oldest_unpublished_change: Option<OffsetDateTime>,
}

impl From<&SyncStatus> for SyncWindowView {
    fn from(w: &SyncStatus) -> Self {
        Self {
            ocsp_max_age_s: w.window.ocsp_max_age.whole_seconds(),
            delta_crl_interval_s: w.window.delta_crl_interval.whole_seconds(),
            full_crl_interval_s: w.window.full_crl_interval.whole_seconds(),
            worst_case_s: w.window.worst_case().whole_seconds(),
            last_full: w.last_full.as_ref().map(Into::into),
            last_delta: w.last_delta.as_ref().map(Into::into),
            oldest_unpublished_change: w.oldest_unpublished_change,
        }
    }
}

fn parse_serial(text: &str) -> Result<Serial, ApiError> {
    text.parse()
        .map_err(|e| ApiError::bad_request(format!("serial `{text}`: {e}")))
}

fn officer_actor<'a>(name: &'a str, channel: Channel) -> Actor<'a> {
    Actor { name, channel }
}

/// Issue a certificate for a card's key pair.
#[utoipa::path(
    post, path = "/api/v1/certificates", tag = "certificates",
    request_body = IssueBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body replay the first answer")),
    responses(
        (status = 201, description = "Issued", body = CertificateRecord),
        (status = 400, description = "Bad input (CSR, identity, profile, JSON)", body = ProblemBody),
        (status = 401, description = "No or bad token", body = ProblemBody),
        (status = 403, description = "Not an officer", body = ProblemBody),
        (status = 409, description = "The card belongs to another subscriber", body = ProblemBody),
        (status = 413, description = "Body over 64 KiB", body = ProblemBody),
        (status = 422, description = "Idempotency-Key reused with another body", body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn issue_certificate(
    State(app): State<Arc<App>>,
    command: Command<IssueBody>,
) -> Result<Response, ApiError> {
    let Command { officer, body, key } = command;
    answer_once(
        &app,
        key,
        StatusCode::CREATED,
        json,
        move |authority, once| {
            let request = IssueRequest {
                subscriber_code: &body.subscriber.code,
                subscriber_name: &body.subscriber.name,
                card_number: &body.card_number,
                profile: &body.profile,
                csr: body.csr.as_bytes(),
            };
            authority.issue_once(&request, officer_actor(&officer.name, Channel::Ra), once)
        },
    )
    .await
}

/// One certificate's record.
#[utoipa::path(
    get, path = "/api/v1/certificates/{serial}", tag = "certificates",
    params(("serial" = String, Path, description = "Hex; upper case and a leading 0x are accepted")),
    responses(
        (status = 200, description = "The record", body = CertificateRecord),
        (status = 400, description = "Not a serial", body = ProblemBody),
        (status = 401, description = "No or bad token", body = ProblemBody),
        (status = 404, description = "Unknown serial", body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn get_certificate(
    State(app): State<Arc<App>>,
    _reader: Reader,
    PathParam(serial): PathParam,
) -> Result<Json<CertificateRecord>, ApiError> {
    let serial = parse_serial(&serial)?;
    Ok(Json(
        blocking(&app, move |authority| authority.certificate(&serial)).await?,
    ))
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
    answer_once(&app, key, StatusCode::OK, json, move |authority, once| {
        let actor = officer_actor(&officer.name, change.channel);
        authority.change_status_once(
            &serial,
            change.transition,
            change.note.as_deref(),
            actor,
            once,
        )
    })
    .await
}

/// Applies a status change to every eligible certificate of a card.
async fn change_card<B: ChangeBody>(
    app: Arc<App>,
    card_number: String,
    command: Command<B>,
) -> Result<Response, ApiError> {
    let Command { officer, body, key } = command;
    let change = body.change()?;
    let shown = card_number.clone();
    let render = move |records: &Vec<CertificateRecord>| {
        json(&CardRecords {
            card_number: &shown,
            certificates: records,
        })
    };
    answer_once(&app, key, StatusCode::OK, render, move |authority, once| {
        let actor = officer_actor(&officer.name, change.channel);
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

/// Suspend a certificate (certificateHold).
#[utoipa::path(
    post, path = "/api/v1/certificates/{serial}/suspend", tag = "certificates",
    request_body = SuspendBody,
    params(
        ("serial" = String, Path, description = "Hex; upper case and a leading 0x are accepted"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body replay the first answer"),
    ),
    responses(
        (status = 200, description = "Suspended", body = CertificateRecord),
        (status = 400, body = ProblemBody), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, description = "Not good, or expired", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 422, body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn suspend_certificate(
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
    params(
        ("serial" = String, Path, description = "Hex; upper case and a leading 0x are accepted"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body replay the first answer"),
    ),
    responses(
        (status = 200, description = "Resumed", body = CertificateRecord),
        (status = 400, body = ProblemBody), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, description = "Not suspended, or expired", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 422, body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn resume_certificate(
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
    params(
        ("serial" = String, Path, description = "Hex; upper case and a leading 0x are accepted"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body replay the first answer"),
    ),
    responses(
        (status = 200, description = "Revoked", body = CertificateRecord),
        (status = 400, description = "Bad input or a reason not accepted", body = ProblemBody),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, description = "Already revoked, or expired", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 422, body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn revoke_certificate(
    State(app): State<Arc<App>>,
    PathParam(serial): PathParam,
    command: Command<RevokeBody>,
) -> Result<Response, ApiError> {
    change_certificate(app, &serial, command).await
}

/// Suspend every good certificate of a card, all or nothing.
#[utoipa::path(
    post, path = "/api/v1/cards/{card_number}/suspend", tag = "cards",
    request_body = SuspendBody,
    params(
        ("card_number" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body replay the first answer"),
    ),
    responses(
        (status = 200, description = "The card's certificates after the change", body = CardRecords),
        (status = 400, body = ProblemBody), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, description = "No certificate of the card can be suspended", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 422, body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn suspend_card(
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
    params(
        ("card_number" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body replay the first answer"),
    ),
    responses(
        (status = 200, description = "The card's certificates after the change", body = CardRecords),
        (status = 400, body = ProblemBody), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, description = "No certificate of the card can be resumed", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 422, body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn resume_card(
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
    params(
        ("card_number" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body replay the first answer"),
    ),
    responses(
        (status = 200, description = "The card's certificates after the change", body = CardRecords),
        (status = 400, body = ProblemBody), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, description = "No certificate of the card can be revoked", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 422, body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn revoke_card(
    State(app): State<Arc<App>>,
    PathParam(card): PathParam,
    command: Command<RevokeBody>,
) -> Result<Response, ApiError> {
    change_card(app, card, command).await
}

/// Every certificate of a subscriber, oldest first.
#[utoipa::path(
    get, path = "/api/v1/subscribers/{code}/certificates", tag = "subscribers",
    params(("code" = String, Path, description = "Subscriber code")),
    responses(
        (status = 200, description = "The records", body = CertificateList),
        (status = 401, body = ProblemBody),
        (status = 404, description = "Unknown subscriber", body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn subscriber_certificates(
    State(app): State<Arc<App>>,
    _reader: Reader,
    PathParam(code): PathParam,
) -> Result<Json<CertificateList>, ApiError> {
    let certificates = blocking(&app, move |authority| {
        authority.certificates_of_subscriber(&code)
    })
    .await?;
    Ok(Json(CertificateList { certificates }))
}

/// Publish a CRL now (a full CRL is followed by a delta against it).
#[utoipa::path(
    post, path = "/api/v1/crls", tag = "crls",
    request_body = PublishBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body replay the first answer")),
    responses(
        (status = 201, description = "The CRL asked for", body = CrlSummaryView),
        (status = 400, body = ProblemBody), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 409, description = "Another publisher kept taking the next number", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 422, body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn publish_crl(
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
        (status = 200, description = "The sync window", body = SyncWindowView),
        (status = 401, body = ProblemBody),
    ),
    security(("bearer" = []))
)]
async fn sync_window(
    State(app): State<Arc<App>>,
    _reader: Reader,
) -> Result<Json<SyncWindowView>, ApiError> {
    let window = blocking(&app, |authority| authority.sync_status()).await?;
    Ok(Json(SyncWindowView::from(&window)))
}
