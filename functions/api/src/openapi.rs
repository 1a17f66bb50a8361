//! The OpenAPI 3.1 document, generated from the handlers' annotations and the response types
//! themselves, served at `GET /api/v1/openapi.json`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "speedbatch",
        description = "Batch web-page speed analysis: submit URLs, watch progress, export results."
    ),
    paths(
        routes::start::start,
        routes::progress::progress,
        routes::jobs::jobs,
        routes::cancel::cancel,
        routes::results::results,
        routes::queue_status::queue_status,
        routes::cleanup::cleanup,
        routes::health::health,
        routes::callback_secret::callback_secret,
    ),
    modifiers(&Security),
    security(("api_key" = []), ("bearer" = [])),
    tags((name = "jobs", description = "Submit, watch, cancel, export and clean up jobs"), (name = "service", description = "Service state"))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_every_endpoint_in_openapi_3_1() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        let base = crate::BASE_PATH;
        for (path, method) in [
            ("/start", "post"),
            ("/progress/{id}", "get"),
            ("/jobs", "get"),
            ("/cancel/{id}", "post"),
            ("/results/{id}", "get"),
            ("/queue/status", "get"),
            ("/cleanup", "delete"),
            ("/health", "get"),
            ("/callback-secret", "get"),
        ] {
            let operation = &doc["paths"][format!("{base}{path}")][method];
            assert!(operation.is_object(), "{method} {path} is not documented");
            assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
        }
        assert_eq!(doc["paths"][format!("{base}/health")]["get"]["security"], serde_json::json!([{}]), "no key");
        for schema in ["JobView", "StartRequest", "StartResponse", "Results", "ErrorBody", "JobStatus", "ErrorKind"] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema} missing");
        }
    }
}
