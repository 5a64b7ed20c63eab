//! The registration authority API of SPEC §7, under `/api/v1`.
//!
//! Each handler is a thin function of typed extractors: [`Command`] (an
//! officer's strict JSON body and idempotency key) or [`Reader`] (any RA
//! role), calling one use case of the [`Authority`](crate::authority::Authority).
//! The handlers are registered through utoipa's router, so
//! `/api/v1/openapi.json` is built from the very routes served and cannot
//! drift from them.
//!
//! [`Command`]: crate::http::request::Command
//! [`Reader`]: crate::http::auth::Reader

mod cards;
mod certificates;
mod changes;
mod crls;
mod openapi;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::App;
use super::request::BODY_LIMIT;

/// The RA routes, each authenticated first, and the OpenAPI document they
/// make, served beside them to anyone (it describes the API and holds no
/// data). A document that cannot be written stops start-up rather than
/// being served empty.
pub fn router(app: &Arc<App>) -> Result<Router<Arc<App>>, serde_json::Error> {
    let (routes, mut openapi) = routes().split_for_parts();
    openapi::finish(&mut openapi);
    let document = Arc::new(openapi.to_json()?);
    let authenticated = routes.route_layer(axum::middleware::from_fn_with_state(
        Arc::clone(app),
        super::auth::authenticate,
    ));
    Ok(authenticated.route(
        "/api/v1/openapi.json",
        get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                document.as_str().to_owned(),
            )
        }),
    ))
}

/// The OpenAPI document of the RA API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut openapi = routes().into_openapi();
    openapi::finish(&mut openapi);
    openapi
}

fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(certificates::issue_certificate))
        .routes(routes!(certificates::get_certificate))
        .routes(routes!(certificates::suspend_certificate))
        .routes(routes!(certificates::resume_certificate))
        .routes(routes!(certificates::revoke_certificate))
        .routes(routes!(cards::suspend_card))
        .routes(routes!(cards::resume_card))
        .routes(routes!(cards::revoke_card))
        .routes(routes!(certificates::subscriber_certificates))
        .routes(routes!(crls::publish_crl))
        .routes(routes!(crls::sync_window))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
