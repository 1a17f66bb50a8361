//! Error bodies, in Google's JSON error format (`google.rpc.Status`).

use super::*;

/// 400 for a missing or wrong `key`, exactly as Google answers a key it does not know.
pub(super) fn api_key_invalid() -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: json!({"error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": SERVICE},
            }],
        }}),
    }
}

/// 429 for the per-minute quota; `limit` is reported as `quota_limit_value`.
pub(super) fn quota_exceeded(limit: u32) -> ApiError {
    let message = format!(
        "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service '{SERVICE}' for \
         consumer 'project_number:{PROJECT_NUMBER}'."
    );
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        body: json!({"error": {
            "code": 429,
            "message": message,
            "status": "RESOURCE_EXHAUSTED",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "quota_metric": format!("{SERVICE}/queries"),
                    "quota_limit": "queriesPerMinutePerProject",
                    "service": SERVICE,
                    "consumer": format!("projects/{PROJECT_NUMBER}"),
                    "quota_limit_value": limit.to_string(),
                },
            }],
        }}),
    }
}

/// 404: CrUX has no record for this identifier, form factor and metrics.
pub(super) fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        body: json!({"error": {"code": 404, "message": "chrome ux report data not found", "status": "NOT_FOUND"}}),
    }
}

/// 400 for a request body Google would refuse. `field` names the proto field when there is
/// one (Google's `fieldViolations` then carry it).
pub(super) fn invalid_argument(field: Option<&str>, message: &str) -> ApiError {
    let violation = match field {
        Some(field) => json!({"field": field, "description": message}),
        None => json!({"description": message}),
    };
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: json!({"error": {
            "code": 400,
            "message": message,
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}],
        }}),
    }
}

/// Google's `Invalid value at '<field>' (<type>), <value>`, the value quoted as JSON.
pub(super) fn invalid_value(field: &str, type_name: &str, value: &Value) -> ApiError {
    invalid_argument(Some(field), &format!("Invalid value at '{field}' ({type_name}), {value}"))
}

/// 500, as Google answers a transient backend failure.
pub(super) fn internal_error() -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: json!({"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}),
    }
}
