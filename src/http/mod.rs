//! The HTTP transport: the axum router and the handlers. Handlers extract, call one
//! function of the layer below, and render; they hold no business logic.

mod alexa;
mod error;
mod v1;

pub use error::{ApiError, REQUEST_ID, current_request_id};
pub use v1::{MobileApi, ROUTES, RateLimit};

use crate::skill::Skill;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

pub struct App {
    pub skill: Skill,
    pub api: MobileApi,
}

/// Limits every route shares.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Requests handled at once; more are refused at once with 503 (load shedding) instead
    /// of queueing without bound.
    pub max_in_flight: usize,
}

pub fn router(state: AppState, limits: Limits) -> Router {
    let shed = tower::ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            metrics::counter!("encore_http_shed_total").increment(1);
            ApiError::unavailable("the server (too busy, try again)")
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_in_flight.max(1),
        ));
    Router::new()
        .route("/alexa", post(alexa::handle))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(v1::routes())
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(shed)
        // Inside `track`, so a panic's 500 carries the request id and is counted.
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(track))
        .with_state(state)
}

/// A handler that panicked answers 500 in the error shape, and the connection stays up.
fn panicked(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let cause = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("(not a string)");
    metrics::counter!("encore_http_panics_total").increment(1);
    tracing::error!(cause, "a request handler panicked");
    ApiError::Internal.into_response()
}

/// Prometheus text exposition of every metric.
async fn metrics_text() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::observe::render(),
    )
        .into_response()
}

/// 200 when the profile store, the feedback sink and the model all answer; 503 naming
/// what does not.
async fn readyz(State(state): State<AppState>) -> Response {
    let checks = state
        .0
        .api
        .service
        .readiness(std::time::Duration::from_secs(1))
        .await;
    let ready = checks.iter().all(|(_, r)| r.is_ok());
    let detail: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .map(|(name, r)| {
            let v = match r {
                Ok(()) => serde_json::json!("ok"),
                Err(e) => serde_json::json!(e),
            };
            (name.to_owned(), v)
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": ready, "checks": detail });
    (status, axum::Json(body)).into_response()
}

/// The header carrying a request's id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives every request an id (the caller's `x-request-id` when it is a sane token, a new
/// UUID otherwise) for error bodies, the response header and a span around the request,
/// so every log line of the request names it; then counts and times it by route.
async fn track(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let span = tracing::info_span!("request", request_id = %id, route = %route);
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span))
        .await;
    crate::observe::http_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}
