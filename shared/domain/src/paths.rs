//! The HTTP API's paths, defined once for the router, the OpenAPI document, the CLI and the
//! tests.

/// Every job endpoint is under this path.
pub const BASE_PATH: &str = "/api/v1/batch-processing";

/// The generated OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// An endpoint's path: `endpoint("/start")` is `/api/v1/batch-processing/start`.
pub fn endpoint(path: &str) -> String {
    format!("{BASE_PATH}{path}")
}
