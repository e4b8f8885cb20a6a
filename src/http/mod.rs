//! The HTTP transport: the axum router and the handlers. Handlers extract, call one
//! function of the layer below, and render; they hold no business logic.

mod alexa;
mod error;
mod v1;

pub use error::{ApiError, REQUEST_ID, current_request_id};
pub use v1::{Api, ROUTES, RateLimit};

use crate::skill::Skill;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

pub struct App {
    pub skill: Skill,
    pub api: Api,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/alexa", post(alexa::handle))
        .route("/healthz", get(|| async { "ok" }))
        .merge(v1::routes())
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// The header carrying a request's id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives every request an id: the caller's `x-request-id` when it is a sane token, a new
/// UUID otherwise. Error bodies and the response header carry it.
async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut response = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}
