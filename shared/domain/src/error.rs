use thiserror::Error;

/// Every failure the shared adapters report. Handlers map these onto their own responses
/// (an HTTP status, a failed SQS record); the messages are for logs, never for clients.
#[derive(Debug, Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("DynamoDB {operation}: {message}")]
    Store { operation: &'static str, message: String },
    #[error("a stored item is malformed: {0}")]
    Corrupt(String),
    #[error("SQS {operation}: {message}")]
    Queue { operation: &'static str, message: String },
    #[error("EventBridge {operation}: {message}")]
    Events { operation: &'static str, message: String },
    #[error("S3 {operation}: {message}")]
    Exports { operation: &'static str, message: String },
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
}

impl Error {
    /// Wraps an SDK error with the operation that failed, keeping the service's own message
    /// (the SDK's `Display` says only "service error").
    pub fn store<E>(operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        Error::Store { operation, message: error_chain(&err) }
    }

    pub fn events<E>(operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        Error::Events { operation, message: error_chain(&err) }
    }

    pub fn exports<E>(operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        Error::Exports { operation, message: error_chain(&err) }
    }

    pub fn queue<E>(operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        Error::Queue { operation, message: error_chain(&err) }
    }
}

/// The error and all its sources on one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
