//! The HTTP transport: the axum router and the handlers. Handlers extract, call one
//! function of the layer below, and render; they hold no business logic.

mod alexa;
mod error;

pub use error::ApiError;

use crate::skill::Skill;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

pub struct App {
    pub skill: Skill,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/alexa", post(alexa::handle))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}
