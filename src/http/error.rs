//! One error shape for every HTTP error:
//! `{"error": {"code", "message", "details", "request_id"}}`. Internal causes are logged where
//! they happen, never sent. The request id is the one `request_id` gave the request.

use crate::api::auth::AuthError;
use crate::error::{Cause, Chain};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

tokio::task_local! {
    /// The id of the request being handled (set by the `request_id` middleware).
    pub static REQUEST_ID: String;
}

/// The current request's id, if inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(AuthError),
    #[error("not found")]
    NotFound,
    /// The request is well formed but nothing in the catalog fits it.
    #[error("{0}")]
    NoMatch(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    TooLarge,
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("{message}")]
    Unprocessable { message: String, details: Value },
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// A dependency failed or is off. The cause, when there is one, is logged once when the
    /// answer is rendered and never sent.
    #[error("{what} is unavailable")]
    Unavailable { what: String, cause: Option<Cause> },
    /// A bug: the handler panicked. The cause is logged, never sent.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// `what` is off or busy, with no error underneath.
    pub fn unavailable(what: impl Into<String>) -> Self {
        ApiError::Unavailable {
            what: what.into(),
            cause: None,
        }
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound | ApiError::NoMatch(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(e) => e.label(),
            ApiError::NotFound => "not_found",
            ApiError::NoMatch(_) => "no_match",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge => "payload_too_large",
            ApiError::BodyTimeout(_) => "request_timeout",
            ApiError::Unprocessable { .. } => "unprocessable",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Unavailable {
            what,
            cause: Some(cause),
        } = &self
        {
            tracing::error!(error = %Chain(cause.as_ref()), "{what} failed");
        }
        let details = match &self {
            ApiError::Unprocessable { details, .. } => details.clone(),
            _ => Value::Null,
        };
        let body = json!({ "error": {
            "code": self.code(),
            "message": self.to_string(),
            "details": details,
            "request_id": current_request_id(),
        }});
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized(e) => {
                let value = match e {
                    AuthError::Missing => "Bearer realm=\"encore\"".to_owned(),
                    e => format!(
                        "Bearer realm=\"encore\", error=\"invalid_token\", error_description=\"{e}\""
                    ),
                };
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}
