//! The one error type of the HTTP API. Every error leaves as
//! `{"error": {"code", "message", "details"}}`; internal causes are logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The body of every error response.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `malformed_request` (400), `unauthorized` (401), `not_found` (404), `conflict` (409),
    /// `payload_too_large` (413), `validation_failed` (422), `over_limit` (429 with
    /// `Retry-After`, or 422 when waiting would not help), `internal_error` (500), `not_ready`
    /// (503, with `Retry-After`).
    pub code: &'static str,
    pub message: String,
    /// `null`; for `validation_failed`, the invalid fields (`[{"field", "message"}]`), or the
    /// accepted/rejected lists when no URL was accepted; for `over_limit`, the limit (`limit`,
    /// `allowed`, `used`, `requested`, `retry_after_seconds`).
    #[schema(schema_with = details_schema)]
    pub details: Value,
}

/// The three shapes `details` takes, documented as such: clients (and schemathesis) check an
/// error body against it, and `null` or a list is not an object.
fn details_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::PartialSchema;
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let count = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0));
    let field = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("field", string())
        .property("message", string())
        .required("field")
        .required("message");
    let unaccepted = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("accepted", count())
        .property("rejected", ArrayBuilder::new().items(domain::Rejected::schema()))
        .property("duplicates_removed", count())
        .required("accepted")
        .required("rejected")
        .required("duplicates_removed");
    OneOfBuilder::new()
        .description(Some(
            "`null`; for `validation_failed`, the invalid fields, or the accepted/rejected lists when no URL was accepted; for `over_limit`, the limit run into.",
        ))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(ArrayBuilder::new().items(field))
        .item(unaccepted)
        .item(domain::tenancy::OverLimit::schema())
        .into()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Malformed(String),
    #[error("a valid API key is required (x-api-key or Authorization: Bearer)")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{message}")]
    Invalid { message: String, details: Value },
    /// Something that will be there shortly (a finished job's export being written).
    #[error("{message}")]
    NotReady { message: String, retry_after_seconds: u32 },
    /// A submission over one of the tenant's limits: `429` while waiting helps, otherwise
    /// `422` (a job larger than a whole day allows).
    #[error("{}", .0.message())]
    OverLimit(domain::tenancy::OverLimit),
    #[error("internal error")]
    Internal(#[from] domain::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::NotReady { .. } => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::OverLimit(over) if over.is_temporary() => (StatusCode::TOO_MANY_REQUESTS, "over_limit"),
            ApiError::OverLimit(_) => (StatusCode::UNPROCESSABLE_ENTITY, "over_limit"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl ApiError {
    /// A single invalid field, reported like the body validation reports its fields.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Invalid {
            message: format!("{field}: {message}"),
            details: json!([{"field": field, "message": message}]),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let details = match &self {
            ApiError::Invalid { details, .. } => details.clone(),
            ApiError::OverLimit(over) => serde_json::to_value(over).unwrap_or(Value::Null),
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                Value::Null
            }
            _ => Value::Null,
        };
        let retry_after = match &self {
            ApiError::NotReady { retry_after_seconds, .. } => Some(*retry_after_seconds),
            ApiError::OverLimit(over) => over.retry_after_seconds,
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code, message: self.to_string(), details } };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}
