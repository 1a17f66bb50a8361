//! Error bodies, in Google's JSON error format.

use super::*;

pub(super) fn api_key_invalid() -> ApiError {
    let message = "API key not valid. Please pass a valid API key.";
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: json!({"error": {
            "code": 400,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "badRequest"}],
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

pub(super) fn quota_exceeded(kind: QuotaKind) -> ApiError {
    let message = format!(
        "Quota exceeded for quota metric 'Queries' and limit '{}' of service '{SERVICE}' for consumer \
         'project_number:{PROJECT_NUMBER}'.",
        kind.limit_name()
    );
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        body: json!({"error": {
            "code": 429,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "rateLimitExceeded"}],
            "status": "RESOURCE_EXHAUSTED",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "quota_limit": kind.quota_limit_id(),
                    "quota_metric": format!("{SERVICE}/default"),
                    "service": SERVICE,
                    "consumer": format!("projects/{PROJECT_NUMBER}"),
                },
            }],
        }}),
    }
}

pub(super) fn invalid_value(field: &str, type_name: &str, value: &str) -> ApiError {
    // The value is quoted the way Google quotes it: as a JSON string literal.
    let quoted = Value::from(value).to_string();
    let message = format!("Invalid value at '{field}' ({type_name}), {quoted}");
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: json!({"error": {
            "code": 400,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "badRequest"}],
            "status": "INVALID_ARGUMENT",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }],
        }}),
    }
}

pub(super) fn lighthouse_error(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: json!({"error": {
            "code": 500,
            "message": message,
            "errors": [{"message": message, "domain": "lighthouse", "reason": "lighthouseUserError"}],
            "status": "INTERNAL",
        }}),
    }
}

pub(super) fn backend_internal_error() -> ApiError {
    internal_error("Internal error encountered.")
}

pub(super) fn internal_error(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: json!({"error": {
            "code": 500,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "backendError"}],
            "status": "INTERNAL",
        }}),
    }
}
