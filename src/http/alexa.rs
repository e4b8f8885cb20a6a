//! POST /alexa: the raw body and the signature headers go to the skill; its answer, or its
//! refusal (HTTP 400, as the platform's protocol wants), comes back.

use super::{ApiError, AppState};
use crate::skill::SignedRequest;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            tracing::warn!("alexa request refused: body too large");
            return ApiError::TooLarge.into_response();
        }
        Err(rejection) => return ApiError::BadRequest(rejection.body_text()).into_response(),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request = SignedRequest {
        cert_url: header("SignatureCertChainUrl"),
        signature: header("Signature-256"),
        body: &body,
    };
    match state.0.skill.handle(request).await {
        Ok(envelope) => (
            [(header::CONTENT_TYPE, "application/json")],
            envelope.to_bytes(),
        )
            .into_response(),
        Err(rejection) => {
            tracing::warn!(reason = rejection.label(), detail = %rejection, "alexa request refused");
            metrics::counter!("encore_verification_failures_total", "reason" => rejection.label())
                .increment(1);
            ApiError::BadRequest(rejection.to_string()).into_response()
        }
    }
}
