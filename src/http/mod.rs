//! The HTTP transport: the axum router and the handlers. Handlers extract, call one
//! function of the layer below, and render; they hold no business logic.

mod alexa;
mod error;
mod listen;
mod v1;

pub use error::{ApiError, REQUEST_ID, current_request_id};
pub use listen::{ConnectionLimits, serve};
pub use v1::{MobileApi, ROUTES, RateLimit};

use crate::service::Service;
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
    /// of queueing without bound. The health, readiness and metrics routes do not count.
    pub max_in_flight: usize,
    /// How long a request may take to send its body (then 408). Bodies are read before the
    /// request takes an in-flight slot.
    pub body_read_timeout: std::time::Duration,
}

/// The service's router. With `admin_here` it also answers `/readyz` and `/metrics`; without
/// them (they are on `admin_router`, on an address the load balancer does not expose) it
/// answers only `/healthz` of the three.
pub fn router(state: AppState, limits: Limits, admin_here: bool) -> Router {
    let shed = tower::ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            metrics::counter!("encore_http_shed_total").increment(1);
            ApiError::unavailable("the server (too busy, try again)")
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_in_flight.max(1),
        ));
    // What does the work is behind the in-flight limit; what the platform polls is not, so
    // an instance busy to its limit is still seen alive and can say whether it is ready.
    let work = Router::new()
        .route("/alexa", post(alexa::handle))
        .merge(v1::routes())
        .fallback(|| async { ApiError::NotFound })
        .layer(shed);
    let body = BodyRead {
        limit: limits.max_body_bytes,
        timeout: limits.body_read_timeout,
    };
    let polled = match admin_here {
        true => admin_routes(state.0.api.service.clone()),
        false => Router::new().route("/healthz", get(|| async { "ok" })),
    };
    polled
        .merge(work)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        // Outside the in-flight limit: a client that stalls mid-body holds no slot.
        .layer(middleware::from_fn_with_state(body, read_body))
        // Inside `track`, so a panic's 500 carries the request id and is counted.
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(track))
        .with_state(state)
}

#[derive(Clone, Copy)]
struct BodyRead {
    limit: usize,
    timeout: std::time::Duration,
}

/// Reads a request's whole body, at most `limit` bytes within `timeout`, before the request
/// goes on: one over the limit is 413 at once (by its declared length when it has one), one
/// that does not arrive in time is 408. A request without a body passes straight on.
async fn read_body(State(read): State<BodyRead>, req: Request, next: Next) -> Response {
    use axum::body::{Body, HttpBody};
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    if req.body().size_hint().lower() > read.limit as u64 {
        return ApiError::TooLarge.into_response();
    }
    let (parts, body) = req.into_parts();
    let bytes =
        match tokio::time::timeout(read.timeout, axum::body::to_bytes(body, read.limit)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                return if too_large {
                    ApiError::TooLarge.into_response()
                } else {
                    ApiError::BadRequest(format!("the request body could not be read: {e}"))
                        .into_response()
                };
            }
            Err(_) => {
                metrics::counter!("encore_http_body_timeouts_total").increment(1);
                return ApiError::BodyTimeout(read.timeout.as_secs()).into_response();
            }
        };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
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

/// What an operator's tools poll: `/healthz`, `/readyz` and `/metrics`.
fn admin_routes<S: Clone + Send + Sync + 'static>(service: Arc<Service>) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(move || readyz(service.clone())))
        .route("/metrics", get(metrics_text))
}

/// `/healthz`, `/readyz` and `/metrics` alone, for `--admin-addr`; requests to it are
/// counted and logged like the service's.
pub fn admin_router(service: Arc<Service>) -> Router {
    admin_routes(service)
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn(track))
}

/// 200 when the profile store, the feedback sink and the model all answer; 503 naming
/// what does not.
async fn readyz(service: Arc<Service>) -> Response {
    let checks = service.readiness(std::time::Duration::from_secs(1)).await;
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
