//! What an operator relies on: /metrics exposes the figures, /readyz tells a broken store
//! from a working one, overload is shed with a quick 503, the voice path apologises before
//! the platform's deadline when a backend hangs, and shutdown does not wait forever.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use encore::app::{Components, RouterSettings, build_router};
use encore::domain::{Playlist, Profile, Queue, QueueKey};
use encore::store::{Applied, ProfileChange, ProfileStore, StoreError};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A profile store that never answers: no real store can be made to hang on cue, so this
/// stands in for one whose network went silent.
struct Hanging;

#[async_trait::async_trait]
impl ProfileStore for Hanging {
    async fn profile(&self, _: &str) -> Result<Option<Profile>, StoreError> {
        std::future::pending().await
    }
    async fn put_profile(&self, _: &Profile) -> Result<u64, StoreError> {
        std::future::pending().await
    }
    async fn queue(&self, _: &QueueKey) -> Result<Option<Queue>, StoreError> {
        std::future::pending().await
    }
    async fn put_queue(&self, _: &QueueKey, _: &Queue) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn delete_queue(&self, _: &QueueKey) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn playlist(&self, _: &str, _: &str) -> Result<Option<Playlist>, StoreError> {
        std::future::pending().await
    }
    async fn playlists(&self, _: &str) -> Result<Vec<Playlist>, StoreError> {
        std::future::pending().await
    }
    async fn put_playlist(&self, _: &Playlist) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn erase_user(&self, _: &str) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn checkpoint(&self, _: &str, _: &str) -> Result<Option<String>, StoreError> {
        std::future::pending().await
    }
    async fn put_checkpoint(&self, _: &str, _: &str, _: &str) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn put_dead_letter(&self, _: &encore::store::DeadLetter) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn dead_letters(&self, _: usize) -> Result<Vec<encore::store::DeadLetter>, StoreError> {
        std::future::pending().await
    }
    async fn delete_dead_letter(&self, _: &str) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn apply_event(
        &self,
        _: &str,
        _: &str,
        _: i64,
        _: ProfileChange,
    ) -> Result<Applied, StoreError> {
        std::future::pending().await
    }
}

/// Components over the hanging store, with the given store budget.
fn hanging_parts(dir: &std::path::Path, budget_ms: u64) -> Components {
    let mut storage = common::storage(dir);
    storage.store_budget = std::time::Duration::from_millis(budget_ms);
    storage.api_store_budget = std::time::Duration::from_secs(1);
    Components::with_store(&storage, Arc::new(Hanging)).unwrap()
}

fn router(parts: &Components, max_in_flight: usize, deadline: Duration) -> axum::Router {
    build_router(
        parts,
        None,
        RouterSettings {
            max_in_flight,
            alexa_deadline: deadline,
            ..common::router_settings()
        },
    )
}

async fn send(router: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let (status, bytes) = common::call(router, req).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn alexa(name: &str) -> Request<Body> {
    Request::post("/alexa")
        .header("content-type", "application/json")
        .body(Body::from(common::fixture(name, "").to_string()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn readiness_names_the_dependency_that_does_not_answer() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let parts = Components::load(&common::storage(dir.path()))
        .await
        .unwrap();
    let healthy = router(&parts, 1024, Duration::from_secs(6));
    let (status, body) = send(&healthy, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["profile_store"], "ok");

    let dir2 = tempfile::tempdir().unwrap();
    let broken = router(
        &hanging_parts(dir2.path(), 150),
        1024,
        Duration::from_secs(6),
    );
    let (status, body) = send(&broken, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_ne!(body["checks"]["profile_store"], "ok");
    assert_eq!(body["checks"]["model"], "ok");
    assert_eq!(
        send(&broken, get("/healthz")).await.0,
        StatusCode::OK,
        "the process is up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voice_path_apologises_before_the_deadline_when_the_store_hangs() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    // A budget longer than the deadline: only the deadline can save the answer.
    let r = router(
        &hanging_parts(dir.path(), 30_000),
        1024,
        Duration::from_millis(300),
    );
    let started = Instant::now();
    let (status, body) = send(&r, alexa("like")).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    let speech = body["response"]["outputSpeech"]["ssml"]
        .as_str()
        .unwrap_or_default();
    assert!(!speech.is_empty(), "the listener hears something: {body}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_with_a_quick_503_instead_of_a_queue() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    // Each request holds its slot for the store budget (300 ms); two slots.
    let r = router(&hanging_parts(dir.path(), 300), 2, Duration::from_secs(6));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            send(&r, alexa("play_mood_er")).await
        }));
    }
    let mut shed = 0;
    let mut served = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                shed += 1;
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
            }
            StatusCode::OK => served += 1,
            other => panic!("{other}: {body}"),
        }
    }
    assert!(shed >= 1 && served >= 1, "{served} served, {shed} shed");
}

#[tokio::test]
async fn metrics_expose_requests_by_route_intent_and_reason() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let parts = Components::load(&common::storage(dir.path()))
        .await
        .unwrap();
    let r = router(&parts, 1024, Duration::from_secs(6));
    let (status, play) = send(&r, alexa("play_mood_er")).await;
    assert_eq!(status, StatusCode::OK);
    let token = play["response"]["directives"][0]["audioItem"]["stream"]["token"]
        .as_str()
        .unwrap();
    let started = Request::post("/alexa")
        .header("content-type", "application/json")
        .body(Body::from(
            common::fixture("playback_started", token).to_string(),
        ))
        .unwrap();
    assert_eq!(send(&r, started).await.0, StatusCode::OK);
    send(&r, get("/v1/me/profile")).await;
    let (status, body) = common::call(&r, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    for needle in [
        "encore_http_requests_total{route=\"/alexa\",method=\"POST\",status=\"200\"}",
        "encore_http_request_duration_seconds_bucket{route=\"/alexa\"",
        "encore_alexa_requests_total{type=\"IntentRequest\",intent=\"PlayMoodIntent\"}",
        "encore_recommend_duration_seconds_bucket",
        "encore_recommend_cache_total{result=\"miss\"}",
        "encore_http_requests_total{route=\"/v1/me/profile\",method=\"GET\",status=\"503\"}",
        "encore_feedback_produced_total",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_requests_in_flight_only_until_the_grace_period_ends() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut args = common::serve_args(true, dir.path());
    args.alexa_deadline = std::time::Duration::from_millis(30_000);
    args.shutdown_grace = std::time::Duration::from_secs(1);
    let took = stop_with_a_request_in_flight(&args, hanging_parts(dir.path(), 30_000)).await;
    assert!(
        took >= Duration::from_millis(900),
        "it waited for the request: {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "but not beyond the grace period: {took:?}"
    );
}

/// Serves `parts`, sends a voice request that hangs on the store, stops the server while it
/// is in flight and returns how long the stop took. (In the binary the process then exits
/// and takes the connection with it.)
async fn stop_with_a_request_in_flight(
    args: &encore::settings::ServeArgs,
    parts: Components,
) -> Duration {
    let server = common::TestServer::start_with_parts(args, parts, None).await;
    let hanging = tokio::spawn(
        reqwest::Client::new()
            .post(server.url("/alexa"))
            .json(&common::fixture("like", ""))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!hanging.is_finished(), "the request is in flight");
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), server.stop())
        .await
        .expect("the server stops");
    let took = started.elapsed();
    hanging.abort();
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_play_is_recorded_even_when_the_store_cannot_say_which_queue_it_was_from() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let parts = hanging_parts(dir.path(), 100);
    let r = router(&parts, 1024, Duration::from_secs(6));
    let track = encore::recommend::Catalog::load(&common::repo().join("models"))
        .unwrap()
        .tracks()[0]
        .id
        .clone();
    let token = format!("0badc0de:3:0:{track}");
    let mut finished = common::fixture("playback_finished", &token);
    finished["request"]["offsetInMilliseconds"] = 200_000.into();
    let request = Request::post("/alexa")
        .header("content-type", "application/json")
        .body(Body::from(finished.to_string()))
        .unwrap();
    assert_eq!(send(&r, request).await.0, StatusCode::OK);
    // Answered means durable: the event is in the log already, without a recommendation's
    // context (the queue could not be read), but with the track and the 30 s rule applied.
    let events = common::logged_events(parts.feedback_log().unwrap());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, encore::feedback::EventKind::PlayFinished);
    assert_eq!(events[0].track_id, track);
    assert_eq!(events[0].context, encore::feedback::EventContext::default());
}

#[tokio::test]
async fn a_finished_play_from_a_replaced_queue_still_counts_and_a_made_up_track_does_not() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let parts = Components::load(&common::storage(dir.path()))
        .await
        .unwrap();
    let r = router(&parts, 1024, Duration::from_secs(6));
    let token = |answer: &Value| {
        answer["response"]["directives"][0]["audioItem"]["stream"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = token(&send(&r, alexa("play_mood_er")).await.1);
    let second = token(&send(&r, alexa("play_mood_er")).await.1);
    assert_ne!(first, second, "the second request replaced the queue");
    let report = |token: &str| {
        let mut finished = common::fixture("playback_finished", token);
        finished["request"]["offsetInMilliseconds"] = 200_000.into();
        Request::post("/alexa")
            .header("content-type", "application/json")
            .body(Body::from(finished.to_string()))
            .unwrap()
    };
    assert_eq!(send(&r, report(&first)).await.0, StatusCode::OK);
    assert_eq!(
        send(&r, report("0000dead:1:0:not-a-track")).await.0,
        StatusCode::OK
    );
    let events = common::logged_events(parts.feedback_log().unwrap());
    assert_eq!(events.len(), 1, "{events:?}");
    let played: encore::domain::Token = first.parse().unwrap();
    assert_eq!(events[0].track_id, played.track_id);
    assert_eq!(events[0].kind, encore::feedback::EventKind::PlayFinished);
}

/// The hanging store, except that shutdown's flush hangs too.
struct HangingFlush;

#[async_trait::async_trait]
impl ProfileStore for HangingFlush {
    async fn profile(&self, u: &str) -> Result<Option<Profile>, StoreError> {
        Hanging.profile(u).await
    }
    async fn put_profile(&self, p: &Profile) -> Result<u64, StoreError> {
        Hanging.put_profile(p).await
    }
    async fn queue(&self, k: &QueueKey) -> Result<Option<Queue>, StoreError> {
        Hanging.queue(k).await
    }
    async fn put_queue(&self, k: &QueueKey, q: &Queue) -> Result<(), StoreError> {
        Hanging.put_queue(k, q).await
    }
    async fn delete_queue(&self, k: &QueueKey) -> Result<(), StoreError> {
        Hanging.delete_queue(k).await
    }
    async fn playlist(&self, u: &str, id: &str) -> Result<Option<Playlist>, StoreError> {
        Hanging.playlist(u, id).await
    }
    async fn playlists(&self, u: &str) -> Result<Vec<Playlist>, StoreError> {
        Hanging.playlists(u).await
    }
    async fn put_playlist(&self, p: &Playlist) -> Result<(), StoreError> {
        Hanging.put_playlist(p).await
    }
    async fn erase_user(&self, u: &str) -> Result<(), StoreError> {
        Hanging.erase_user(u).await
    }
    async fn checkpoint(&self, s: &str, sh: &str) -> Result<Option<String>, StoreError> {
        Hanging.checkpoint(s, sh).await
    }
    async fn put_checkpoint(&self, s: &str, sh: &str, p: &str) -> Result<(), StoreError> {
        Hanging.put_checkpoint(s, sh, p).await
    }
    async fn put_dead_letter(&self, l: &encore::store::DeadLetter) -> Result<(), StoreError> {
        Hanging.put_dead_letter(l).await
    }
    async fn dead_letters(&self, n: usize) -> Result<Vec<encore::store::DeadLetter>, StoreError> {
        Hanging.dead_letters(n).await
    }
    async fn delete_dead_letter(&self, id: &str) -> Result<(), StoreError> {
        Hanging.delete_dead_letter(id).await
    }
    async fn apply_event(
        &self,
        u: &str,
        e: &str,
        at: i64,
        c: ProfileChange,
    ) -> Result<Applied, StoreError> {
        Hanging.apply_event(u, e, at, c).await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_stop_ends_by_one_deadline_however_many_steps_hang() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut args = common::serve_args(true, dir.path());
    args.alexa_deadline = Duration::from_secs(30);
    args.shutdown_grace = Duration::from_secs(2);
    let mut storage = common::storage(dir.path());
    storage.store_budget = Duration::from_secs(30);
    // A request in flight that hangs on the store, then a store flush that hangs: with a
    // grace per step the stop would take several graces, past the platform's kill.
    let parts = Components::with_store(&storage, Arc::new(HangingFlush)).unwrap();
    let took = stop_with_a_request_in_flight(&args, parts).await;
    assert!(
        took >= Duration::from_millis(1400),
        "requests in flight had their share of the grace: {took:?}"
    );
    assert!(
        took < Duration::from_millis(2600),
        "the stop ended by the one deadline (grace 2 s): {took:?}"
    );
}

/// A store whose every read panics: a bug on the request path, on cue.
struct Panicking;

#[async_trait::async_trait]
impl ProfileStore for Panicking {
    async fn profile(&self, _: &str) -> Result<Option<Profile>, StoreError> {
        panic!("a bug in the store adapter")
    }
    async fn put_profile(&self, _: &Profile) -> Result<u64, StoreError> {
        panic!("a bug in the store adapter")
    }
    async fn queue(&self, _: &QueueKey) -> Result<Option<Queue>, StoreError> {
        panic!("a bug in the store adapter")
    }
    async fn put_queue(&self, _: &QueueKey, _: &Queue) -> Result<(), StoreError> {
        panic!("a bug in the store adapter")
    }
    async fn delete_queue(&self, _: &QueueKey) -> Result<(), StoreError> {
        panic!("a bug in the store adapter")
    }
    async fn playlist(&self, _: &str, _: &str) -> Result<Option<Playlist>, StoreError> {
        panic!("a bug in the store adapter")
    }
    async fn playlists(&self, _: &str) -> Result<Vec<Playlist>, StoreError> {
        panic!("a bug in the store adapter")
    }
    async fn put_playlist(&self, _: &Playlist) -> Result<(), StoreError> {
        panic!("a bug in the store adapter")
    }
    async fn erase_user(&self, _: &str) -> Result<(), StoreError> {
        panic!("a bug in the store adapter")
    }
    async fn checkpoint(&self, _: &str, _: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    async fn put_checkpoint(&self, _: &str, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn put_dead_letter(&self, _: &encore::store::DeadLetter) -> Result<(), StoreError> {
        Ok(())
    }
    async fn dead_letters(&self, _: usize) -> Result<Vec<encore::store::DeadLetter>, StoreError> {
        Ok(Vec::new())
    }
    async fn delete_dead_letter(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn apply_event(
        &self,
        _: &str,
        _: &str,
        _: i64,
        _: ProfileChange,
    ) -> Result<Applied, StoreError> {
        panic!("a bug in the store adapter")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_the_request_path_answers_500_in_the_error_shape_and_keeps_the_connection() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let args = common::serve_args(true, dir.path());
    let parts = Components::with_store(&common::storage(dir.path()), Arc::new(Panicking)).unwrap();
    let server = common::TestServer::start_with_parts(&args, parts, None).await;
    // One connection for everything: a dropped connection would fail the second request.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for _ in 0..2 {
        let response = client
            .post(server.url("/alexa"))
            .header("x-request-id", "panic-probe")
            .json(&common::fixture("play_mood_er", ""))
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert_eq!(body["error"]["request_id"], "panic-probe", "{body}");
        assert!(
            !body.to_string().contains("store adapter"),
            "the cause is not sent: {body}"
        );
    }
    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the server still serves");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mobile_request_on_a_store_that_never_answers_gets_503_within_its_budget() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut args = common::serve_args(true, dir.path());
    args.api = crate::openapi::api_args();
    args.shutdown_grace = Duration::from_secs(1);
    let parts = hanging_parts(dir.path(), 150);
    let server = common::TestServer::start_with_parts(&args, parts, None).await;
    let client = reqwest::Client::new();
    let token = crate::openapi::token_for("patient-app-user");
    for (method, path) in [
        (reqwest::Method::GET, "/v1/me/profile"),
        (reqwest::Method::GET, "/v1/me/playlists"),
        (reqwest::Method::DELETE, "/v1/me"),
    ] {
        // Before, these waited for the store as long as it took: here, for ever.
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            client
                .request(method.clone(), server.url(path))
                .bearer_auth(&token)
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} {path} hung on the store"))
        .unwrap();
        assert_eq!(answer.status(), 503, "{method} {path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
    }
    tokio::time::timeout(Duration::from_secs(30), server.stop())
        .await
        .expect("the server stops");
}
