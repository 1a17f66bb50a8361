//! The OpenAPI 3.1 document, generated from the handlers' annotations and the response types
//! themselves, served at `GET /api/v1/openapi.json`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use domain::{paths, settings};

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
        routes::exports::exports,
        routes::screenshots::screenshot,
        routes::queue_status::queue_status,
        routes::usage::usage,
        routes::history::history,
        routes::compare::compare,
        routes::analytics::analytics,
        routes::monitors::create,
        routes::monitors::list,
        routes::monitors::show,
        routes::monitors::change,
        routes::monitors::delete,
        routes::monitors::run,
        routes::monitors::budgets::standings,
        routes::cleanup::cleanup,
        routes::health::health,
        routes::callback_secret::callback_secret,
    ),
    // Types only parameters refer to: utoipa registers those of bodies by itself.
    components(schemas(routes::results::Format, domain::compare::Verdict, routes::monitors::budgets::StandingFilter)),
    modifiers(&Security, &StartBounds, &UnderBasePath),
    security(("api_key" = []), ("bearer" = [])),
    tags((name = "jobs", description = "Submit, watch, cancel, export and clean up jobs"), (name = "history", description = "Results over time: a URL's history, two jobs compared, the tenant's analytics per day"), (name = "monitors", description = "URLs analysed again on a schedule, each run a job"), (name = "service", description = "Service state"))
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

/// The handlers' paths are written relative to the API's base path, which is defined once
/// (`domain::paths`): the document puts them under it, as the router does.
struct UnderBasePath;

impl Modify for UnderBasePath {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = std::mem::take(&mut openapi.paths.paths);
        openapi.paths.paths = paths.into_iter().map(|(path, item)| (paths::endpoint(&path), item)).collect();
    }
}

/// `POST /start`'s bounds and defaults, from `domain::settings`, where validation reads them.
struct StartBounds;

impl Modify for StartBounds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        let Some(RefOr::T(Schema::Object(body))) =
            openapi.components.as_mut().and_then(|c| c.schemas.get_mut("StartRequest"))
        else {
            return;
        };
        let properties = &mut body.properties;
        for bounds in settings::NUMBERS {
            if let Some(RefOr::T(Schema::Object(number))) = properties.get_mut(bounds.field) {
                number.minimum = Some(bounds.min.into());
                number.maximum = Some(bounds.max.into());
                number.default = Some(bounds.default.into());
            }
        }
        // No default of its own: absent, the deployment's applies.
        let host = domain::politeness::HOST_CONCURRENCY;
        if let Some(RefOr::T(Schema::Object(number))) = properties.get_mut(host.field) {
            number.minimum = Some(host.min.into());
            number.maximum = Some(host.max.into());
        }
        if let Some(RefOr::T(Schema::Object(name))) = properties.get_mut("name") {
            (name.min_length, name.max_length) = (Some(1), Some(settings::MAX_NAME_CHARS));
        }
        if let Some(RefOr::T(Schema::Array(urls))) = properties.get_mut("urls") {
            (urls.min_items, urls.max_items) = (Some(1), Some(settings::MAX_URLS));
        }
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
            ("/history", "get"),
            ("/compare", "get"),
            ("/analytics", "get"),
            ("/monitors", "post"),
            ("/monitors", "get"),
            ("/monitors/{id}", "get"),
            ("/monitors/{id}", "patch"),
            ("/monitors/{id}", "delete"),
            ("/monitors/{id}/run", "post"),
            ("/monitors/{id}/budgets", "get"),
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

    /// Clients send and receive `pending`, not `Pending`: the document lists the wire names.
    #[test]
    fn enums_are_documented_by_their_wire_names() {
        use domain::{Category, EngineChoice, ErrorKind, JobStatus, Priority, Strategy, UrlStatus};
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let names = |all: &[&'static str]| all.iter().map(|n| serde_json::json!(n)).collect::<Vec<_>>();
        for (schema, wire) in [
            ("JobStatus", names(&JobStatus::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>())),
            ("UrlStatus", names(&UrlStatus::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>())),
            ("Priority", names(&Priority::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>())),
            ("Strategy", names(&Strategy::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>())),
            ("EngineChoice", names(&EngineChoice::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>())),
            ("Category", names(&Category::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>())),
            ("ErrorKind", names(&ErrorKind::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>())),
            ("Format", names(&["json", "csv", "jsonl"])),
        ] {
            assert_eq!(doc["components"]["schemas"][schema]["enum"].as_array(), Some(&wire), "{schema}");
        }
    }

    /// A query filter is documented as the values it takes, so that a schema-valid request is
    /// never refused (an empty or free string was, found by schemathesis).
    #[test]
    fn the_field_verdict_filter_is_documented_as_its_values() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let params = doc["paths"]["/api/v1/batch-processing/results/{id}"]["get"]["parameters"].as_array().unwrap();
        let filter = params.iter().find(|p| p["name"] == "field_overall_category").expect("documented");
        let values: Vec<&str> =
            filter["schema"]["enum"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(values, ["good", "needs_improvement", "poor", "unavailable"]);
        for value in values {
            assert!(value.parse::<domain::field::FieldFilter>().is_ok(), "{value}");
        }
        assert!("".parse::<domain::field::FieldFilter>().is_err());
    }

    /// Every `$ref` names a schema the document has, and every link an operation it has.
    #[test]
    fn references_and_links_resolve() {
        fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                        found.push(r.clone());
                    }
                    map.values().for_each(|v| walk(v, found));
                }
                serde_json::Value::Array(list) => list.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        for reference in refs {
            let name = reference.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{reference}"));
            assert!(doc["components"]["schemas"][name].is_object(), "{reference} does not resolve");
        }
        let operation_ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|operation| operation["operationId"].as_str())
            .collect();
        let start = &doc["paths"][format!("{}/start", crate::BASE_PATH)]["post"]["responses"]["201"];
        let links = start["links"].as_object().expect("POST /start's 201 links to what follows");
        for (name, link) in links {
            let target = link["operationId"].as_str().unwrap();
            assert!(operation_ids.contains(&target), "link {name} to unknown operation {target}");
            assert_eq!(link["parameters"]["id"], "$response.body#/batch_job_id", "{name}");
        }
        assert_eq!(links.len(), 3);
    }

    /// The request body's documented bounds are the ones `POST /start` enforces.
    #[test]
    fn start_request_constraints_are_the_handlers() {
        use crate::routes::start::START_FIELDS;
        use domain::settings::{MAX_NAME_CHARS, MAX_URLS, NUMBERS};
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let body = &doc["components"]["schemas"]["StartRequest"];
        assert_eq!(body["additionalProperties"], false, "unknown fields are refused");
        assert_eq!(body["properties"].as_object().unwrap().len(), START_FIELDS.len());
        assert_eq!(
            (body["properties"]["name"]["minLength"].as_u64(), body["properties"]["name"]["maxLength"].as_u64()),
            (Some(1), Some(MAX_NAME_CHARS as u64))
        );
        let urls = &body["properties"]["urls"];
        assert_eq!((urls["minItems"].as_u64(), urls["maxItems"].as_u64()), (Some(1), Some(MAX_URLS as u64)));
        for bounds in NUMBERS {
            let field = &body["properties"][bounds.field];
            assert_eq!(
                (field["minimum"].as_u64(), field["maximum"].as_u64(), field["default"].as_u64()),
                (Some(u64::from(bounds.min)), Some(u64::from(bounds.max)), Some(u64::from(bounds.default))),
                "{}",
                bounds.field
            );
        }
    }
}
