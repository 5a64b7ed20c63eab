//! The OpenAPI document of the RA API: its front matter, and what every
//! operation shares — the bearer token, the refusals of the [`Reader`] and
//! [`Command`] extractors, the `Idempotency-Key` header and problem+json
//! error bodies — declared once here instead of on every handler.

use std::collections::BTreeMap;

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};

use crate::http::auth::Reader;
use crate::http::problem::{PROBLEM_JSON, ProblemBody};
use crate::http::request::{BODY_LIMIT, Command};

/// How the path parameter `serial` is written.
pub const SERIAL_FORMAT: &str = "Hex; upper case and a leading 0x are accepted";

/// The security scheme every RA operation requires.
const BEARER: &str = "bearer";

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
pub struct ApiDoc;

/// Every RA route authenticates its caller by bearer token (see `auth`).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The finishing touches once every route is in: each operation requires
/// the bearer token, and each 4xx/5xx body is `application/problem+json`,
/// which is what [`ApiError`](crate::http::problem::ApiError) sends
/// (utoipa assumes `application/json`).
pub fn finish(openapi: &mut utoipa::openapi::OpenApi) {
    for operation in operations(openapi) {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        for (status, response) in operation.responses.responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            if status.starts_with(['4', '5'])
                && let Some(content) = response.content.shift_remove("application/json")
            {
                response.content.insert(PROBLEM_JSON.to_owned(), content);
            }
        }
    }
}

fn operations(openapi: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi
        .paths
        .paths
        .values_mut()
        .flat_map(|item| [&mut item.get, &mut item.post].into_iter().flatten())
}

/// A problem+json response.
fn problem(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ProblemBody::name())))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content)
        .build()
        .into()
}

const NO_TOKEN: &str = "No or bad token";

/// What a read can be refused with before its handler runs.
impl IntoResponses for Reader {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([("401".to_owned(), problem(NO_TOKEN))])
    }
}

/// What a change can be refused with before, or besides, its use case.
impl<T> IntoResponses for Command<T> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let too_large = format!("Body over {} KiB", BODY_LIMIT / 1024);
        BTreeMap::from([
            ("400".to_owned(), problem("Bad input (JSON, a field)")),
            ("401".to_owned(), problem(NO_TOKEN)),
            ("403".to_owned(), problem("Not an officer")),
            ("413".to_owned(), problem(&too_large)),
            (
                "422".to_owned(),
                problem("Idempotency-Key reused with another body"),
            ),
        ])
    }
}

/// The `Idempotency-Key` header every change honours.
impl<T> IntoParams for Command<T> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let key = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .description(Some(
                "Retries with the same key and body replay the first answer",
            ))
            .required(Required::False)
            .schema(Some(
                ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])),
            ))
            .build();
        vec![key]
    }
}
