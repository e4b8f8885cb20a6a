//! The mobile API under `/v1`: bearer-token authentication, a per-user rate limit, and one
//! handler per endpoint (extract, call one service function, render).

use super::{ApiError, AppState};
use crate::api::auth::{AuthError, JwtVerifier};
use crate::api::voice::{self, VoiceAnswer};
use crate::api::{
    CreatePlaylist, FeedbackBatch, FeedbackErrorDto, FeedbackResultDto, OPENAPI, PlaylistDto,
    PlaylistSummaryDto, ProfileDto, ProfilePatch, RecommendationsDto, RecommendationsQuery,
    SearchDto, SearchHitDto, SearchQuery, TrackDto, VoiceRequest, feedback_inputs,
};
use crate::domain::{Listener, Source};
use crate::interaction::InteractionModel;
use crate::service::{MobileError, Service};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::de::DeserializeOwned;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every route of the API, as (method, path): the router is built from the same handlers
/// and a test checks this list against `openapi.json` and the router.
pub const ROUTES: [(&str, &str); 11] = [
    ("get", "/v1/openapi.json"),
    ("get", "/v1/me/recommendations"),
    ("post", "/v1/playlists"),
    ("get", "/v1/me/playlists"),
    ("get", "/v1/playlists/{id}"),
    ("post", "/v1/feedback"),
    ("get", "/v1/me/profile"),
    ("patch", "/v1/me/profile"),
    ("delete", "/v1/me"),
    ("post", "/v1/voice"),
    ("get", "/v1/search"),
];

pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{delete, get, post};
    axum::Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/me/recommendations", get(recommendations))
        .route("/v1/playlists", post(create_playlist))
        .route("/v1/me/playlists", get(playlists))
        .route("/v1/playlists/{id}", get(playlist))
        .route("/v1/feedback", post(feedback))
        .route("/v1/me/profile", get(profile).patch(patch_profile))
        .route("/v1/me", delete(erase))
        .route("/v1/voice", post(voice))
        .route("/v1/search", get(search))
}

/// The API's parts: the service, the interaction model (for `/v1/voice`), the token
/// verifier (none: the API answers 503) and the per-user rate limiter.
pub struct MobileApi {
    pub service: Arc<Service>,
    pub model: Arc<InteractionModel>,
    pub verifier: Option<Arc<JwtVerifier>>,
    limiter: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

/// Requests per minute per user, and the burst allowed above the steady rate.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

impl MobileApi {
    pub fn new(
        service: Arc<Service>,
        model: Arc<InteractionModel>,
        verifier: Option<Arc<JwtVerifier>>,
        limit: RateLimit,
    ) -> Self {
        let per_minute = NonZeroU32::new(limit.per_minute.max(1)).expect("at least 1");
        let burst = NonZeroU32::new(limit.burst.max(1)).expect("at least 1");
        MobileApi {
            service,
            model,
            verifier,
            limiter: DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(per_minute).allow_burst(burst),
            ),
            checks: AtomicU64::new(0),
        }
    }
}

/// The authenticated user (the token's `sub`), within their rate limit.
pub struct User(pub String);

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let api = &state.0.api;
        let Some(verifier) = &api.verifier else {
            return Err(ApiError::unavailable(
                "the mobile API (no token verifier is configured)",
            ));
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized(AuthError::Missing))?;
        let user = verifier.verify(token).await.map_err(|e| {
            tracing::info!(reason = e.label(), "bearer token refused");
            metrics::counter!("encore_auth_failures_total", "reason" => e.label()).increment(1);
            ApiError::Unauthorized(e)
        })?;
        if let Err(not_until) = api.limiter.check_key(&user) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        // Forget users idle for a while, now and then, so the limiter's map stays small.
        if api.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            api.limiter.retain_recent();
        }
        Ok(User(user))
    }
}

/// A JSON body whose rejections use the API's error shape.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<Object<T>>::from_request(req, state).await {
            Ok(Json(Object(v))) => Ok(Body(v)),
            Err(JsonRejection::BytesRejection(r))
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::TooLarge)
            }
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::unprocessable(e.body_text())),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// A body that must be a JSON object: serde would also build a struct from an array
/// (`[null, null]`), which the OpenAPI document does not allow.
struct Object<T>(T);

impl<'de, T: DeserializeOwned> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        T::deserialize(serde_json::Value::Object(map))
            .map(Object)
            .map_err(serde::de::Error::custom)
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

impl From<MobileError> for ApiError {
    fn from(e: MobileError) -> Self {
        match e {
            MobileError::Invalid(m) => ApiError::unprocessable(m),
            MobileError::NoMatch(why) => ApiError::NoMatch(why),
            MobileError::NotFound => ApiError::NotFound,
            MobileError::Conflict(m) => ApiError::Conflict(m),
            MobileError::Unavailable { what, source } => ApiError::Unavailable {
                what: what.to_owned(),
                cause: Some(source),
            },
        }
    }
}

/// A `limit` query parameter: `default` when absent, else 1 to `max`.
fn limit_within(given: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match given.unwrap_or(default) {
        limit @ 1.. if limit <= max => Ok(limit),
        _ => Err(ApiError::BadRequest(format!("limit must be 1 to {max}"))),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn recommendations(
    State(state): State<AppState>,
    User(user): User,
    q: Result<Query<RecommendationsQuery>, QueryRejection>,
) -> Result<Json<RecommendationsDto>, ApiError> {
    let q = query(q)?;
    let selection = q.selection().map_err(ApiError::BadRequest)?;
    let limit = limit_within(q.limit, 25, crate::service::MAX_LIMIT)?;
    let rec = state
        .0
        .api
        .service
        .recommendations(&user, &selection, limit)
        .await?;
    Ok(Json(rec.into()))
}

async fn search(
    State(state): State<AppState>,
    User(_): User,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<SearchDto>, ApiError> {
    let q = query(q)?;
    if !crate::api::text_within(&q.q, 200) {
        return Err(ApiError::BadRequest(
            "q must have 1 to 200 characters, not all blank".into(),
        ));
    }
    let limit = limit_within(q.limit, 10, crate::service::MAX_SEARCH)?;
    let hits = state.0.api.service.search(&q.q, limit);
    Ok(Json(SearchDto {
        hits: hits
            .into_iter()
            .map(|(t, quality)| SearchHitDto {
                track: TrackDto::from(&t),
                quality,
            })
            .collect(),
    }))
}

async fn create_playlist(
    State(state): State<AppState>,
    User(user): User,
    Body(body): Body<CreatePlaylist>,
) -> Result<(StatusCode, Json<PlaylistDto>), ApiError> {
    let spec = body.spec().map_err(ApiError::unprocessable)?;
    let (playlist, tracks) = state.0.api.service.create_playlist(&user, spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(PlaylistDto::new(&playlist, &tracks)),
    ))
}

async fn playlists(
    State(state): State<AppState>,
    User(user): User,
) -> Result<Json<serde_json::Value>, ApiError> {
    let lists = state.0.api.service.playlists(&user).await?;
    let summaries: Vec<PlaylistSummaryDto> = lists.iter().map(PlaylistSummaryDto::from).collect();
    Ok(Json(serde_json::json!({ "playlists": summaries })))
}

async fn playlist(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<Json<PlaylistDto>, ApiError> {
    let service = &state.0.api.service;
    let p = service.playlist(&user, &id).await?;
    let tracks: Vec<_> = p
        .tracks
        .iter()
        .filter_map(|t| service.recommender().track(t))
        .collect();
    Ok(Json(PlaylistDto::new(&p, &tracks)))
}

async fn feedback(
    State(state): State<AppState>,
    User(user): User,
    Body(batch): Body<FeedbackBatch>,
) -> Result<(StatusCode, Json<FeedbackResultDto>), ApiError> {
    let outcomes = state
        .0
        .api
        .service
        .record_feedback(&user, feedback_inputs(batch))
        .await?;
    let total = outcomes.len();
    let mut event_ids = Vec::with_capacity(total);
    let mut errors = Vec::new();
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(id) => event_ids.push(Some(id)),
            Err(message) => {
                event_ids.push(None);
                errors.push(FeedbackErrorDto { index, message });
            }
        }
    }
    let accepted = event_ids.iter().filter(|e| e.is_some()).count();
    // A well-formed batch is accepted as a batch, even when every event in it was refused:
    // each event's fate is in `event_ids` and `errors`.
    let status = StatusCode::ACCEPTED;
    Ok((
        status,
        Json(FeedbackResultDto {
            accepted,
            event_ids,
            errors,
        }),
    ))
}

async fn profile(
    State(state): State<AppState>,
    User(user): User,
) -> Result<Json<ProfileDto>, ApiError> {
    let p = state.0.api.service.profile_of(&user).await?;
    Ok(Json(ProfileDto::from(&p)))
}

async fn patch_profile(
    State(state): State<AppState>,
    User(user): User,
    Body(patch): Body<ProfilePatch>,
) -> Result<Json<ProfileDto>, ApiError> {
    let p = state
        .0
        .api
        .service
        .set_preferences(&user, patch.into())
        .await?;
    Ok(Json(ProfileDto::from(&p)))
}

async fn erase(State(state): State<AppState>, User(user): User) -> Result<StatusCode, ApiError> {
    state.0.api.service.erase(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The device id the mobile voice path keeps its queue under.
const VOICE_DEVICE: &str = "mobile-voice";

async fn voice(
    State(state): State<AppState>,
    User(user): User,
    Body(req): Body<VoiceRequest>,
) -> Result<Json<VoiceAnswer>, ApiError> {
    let api = &state.0.api;
    if !crate::api::text_within(&req.text, 1000) {
        return Err(ApiError::unprocessable(
            "text must have 1 to 1000 characters, not all blank",
        ));
    }
    if !api.model.locales().any(|l| l == req.locale) {
        let known: Vec<&str> = api.model.locales().collect();
        return Err(ApiError::unprocessable(format!(
            "unknown locale {:?}; one of {}",
            req.locale,
            known.join(", ")
        )));
    }
    let listener = Listener {
        user_id: user,
        account_id: None,
        device_id: VOICE_DEVICE.to_owned(),
        locale: req.locale.clone(),
        source: Source::Mobile,
    };
    let model = api.model.locale(&req.locale);
    Ok(Json(
        voice::answer(&api.service, model, &listener, &req.text).await,
    ))
}
