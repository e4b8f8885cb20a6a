//! The mobile API as the app sees it: every endpoint, every way a token is refused, the
//! error shape with request ids, the rate limit, playlists that fit, spread and stay private,
//! and the OpenAPI document against the routes. Keys and tokens are made at test time.

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use encore::api::auth::{JwtSettings, JwtVerifier, KeySource};
use encore::app::{Components, RouterSettings, build_router};
use encore::feedback::LocalLog;
use encore::http::{ROUTES, RateLimit};
use http_body_util::BodyExt;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tower::ServiceExt;

const ISSUER: &str = "https://id.encore.example/";
const AUDIENCE: &str = "encore-mobile";

struct Key {
    encoding: EncodingKey,
    alg: Algorithm,
    kid: String,
    public_pem: String,
}

impl Key {
    fn new(kid: &str, alg: Algorithm) -> Key {
        let rcgen_alg = match alg {
            Algorithm::RS256 => &rcgen::PKCS_RSA_SHA256,
            _ => &rcgen::PKCS_ECDSA_P256_SHA256,
        };
        let pair = rcgen::KeyPair::generate_for(rcgen_alg).unwrap();
        let pem = pair.serialize_pem();
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        };
        Key {
            encoding,
            alg,
            kid: kid.into(),
            public_pem: pair.public_key_pem(),
        }
    }

    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "iat": now() })
}

fn keys() -> &'static (Key, Key) {
    static KEYS: std::sync::OnceLock<(Key, Key)> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        (
            Key::new("rsa-1", Algorithm::RS256),
            Key::new("ec-1", Algorithm::ES256),
        )
    })
}

struct App {
    router: axum::Router,
    log: Arc<LocalLog>,
    _dir: tempfile::TempDir,
}

async fn app_with(rate_limit: RateLimit, jwt: bool) -> App {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (rsa, ec) = keys();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&JwkSet {
            keys: vec![rsa.jwk(), ec.jwk()],
        })
        .unwrap(),
    )
    .unwrap();
    let verifier = if jwt {
        Some(Arc::new(
            JwtVerifier::new(JwtSettings {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                keys: KeySource::File(jwks),
                leeway: Duration::from_secs(30),
                refetch_interval: Duration::from_secs(60),
            })
            .await
            .unwrap(),
        ))
    } else {
        None
    };
    let parts = Components::load(&common::storage(dir.path()))
        .await
        .unwrap();
    let log = parts.feedback_log().cloned().expect("the local log");
    let router = build_router(
        &parts,
        None,
        RouterSettings {
            jwt: verifier,
            rate_limit,
            ..common::router_settings()
        },
    );
    App {
        router,
        log,
        _dir: dir,
    }
}

async fn app() -> App {
    app_with(
        RateLimit {
            per_minute: 6000,
            burst: 1000,
        },
        true,
    )
    .await
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl App {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let (method, uri) = (req.method().to_string(), req.uri().to_string());
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        // Every answer a test gets is held to the document first.
        common::openapi::document().check(&method, &uri, status.as_u16(), &body);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
}

fn token(user: &str) -> String {
    keys().0.sign(&claims(user))
}

/// A token with `alg: none` and no signature.
fn unsigned(user: &str) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(user))
    )
}

fn assert_error(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["error"]["code"], code, "{}", a.body);
    assert!(a.body["error"]["message"].is_string());
    let id = a.body["error"]["request_id"]
        .as_str()
        .expect("a request id");
    assert_eq!(a.headers["x-request-id"].to_str().unwrap(), id);
}

#[tokio::test]
async fn every_bad_token_is_refused_with_401_and_a_reason() {
    let app = app().await;
    let (rsa, ec) = keys();
    let other_rsa = Key::new("rsa-1", Algorithm::RS256);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims("u1");
        f(&mut c);
        rsa.sign(&c)
    };
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        jsonwebtoken::encode(
            &header,
            &claims("u1"),
            &EncodingKey::from_secret(b"guessable"),
        )
        .unwrap()
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "missing_token"),
        ("malformed", Some("not.a.jwt".into()), "malformed_token"),
        (
            "expired",
            Some(with(&|c| c["exp"] = json!(now() - 120))),
            "expired_token",
        ),
        (
            "not yet valid",
            Some(with(&|c| c["nbf"] = json!(now() + 600))),
            "token_not_yet_valid",
        ),
        (
            "wrong audience",
            Some(with(&|c| c["aud"] = json!("someone-else"))),
            "wrong_audience",
        ),
        (
            "wrong issuer",
            Some(with(&|c| c["iss"] = json!("https://evil.example/"))),
            "wrong_issuer",
        ),
        ("HS256", Some(hs256), "wrong_algorithm"),
        ("alg none", Some(unsigned("u1")), "wrong_algorithm"),
        (
            "forged",
            Some(other_rsa.sign(&claims("u1"))),
            "bad_signature",
        ),
        (
            "unknown kid",
            Some(Key::new("rsa-9", Algorithm::RS256).sign(&claims("u1"))),
            "unknown_key",
        ),
        (
            "no subject",
            Some(with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
            "no_subject",
        ),
    ];
    for (what, token, code) in cases {
        let a = app
            .call(Method::GET, "/v1/me/profile", token.as_deref(), None)
            .await;
        assert_error(&a, StatusCode::UNAUTHORIZED, code);
        let challenge = a.headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"encore\""),
            "{what}: {challenge}"
        );
        if code != "missing_token" {
            assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
        }
    }
    // Within the leeway, RS256 and ES256 both pass.
    let a = app
        .get("/v1/me/profile", &with(&|c| c["exp"] = json!(now() - 10)))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = app.get("/v1/me/profile", &ec.sign(&claims("u2"))).await;
    assert_eq!(
        (a.status, a.body["user_id"].as_str()),
        (StatusCode::OK, Some("u2"))
    );
}

#[tokio::test]
async fn an_unknown_key_id_fetches_the_jwks_again_at_most_once_a_minute() {
    let (rsa, _) = keys();
    let rotated = Key::new("rsa-2", Algorithm::RS256);
    let served = Arc::new(std::sync::Mutex::new(JwkSet {
        keys: vec![rsa.jwk()],
    }));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (s, f) = (served.clone(), fetches.clone());
    let jwks = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (s, f) = (s.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::to_value(&*s.lock().unwrap()).unwrap())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, jwks).await.unwrap() });
    let verifier = JwtVerifier::new(JwtSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        keys: KeySource::JwksUrl(url),
        leeway: Duration::from_secs(30),
        refetch_interval: Duration::from_secs(60),
    })
    .await
    .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched at start");
    assert_eq!(verifier.verify(&rsa.sign(&claims("a"))).await.unwrap(), "a");
    // The provider rotates in a new key: the first token signed with it triggers a fetch.
    served.lock().unwrap().keys.push(rotated.jwk());
    assert_eq!(
        verifier.verify(&rotated.sign(&claims("b"))).await.unwrap(),
        "b"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // Tokens with made-up key ids do not hammer the provider.
    for i in 0..5 {
        let stranger = Key::new(&format!("x-{i}"), Algorithm::ES256);
        assert_eq!(
            verifier.verify(&stranger.sign(&claims("c"))).await,
            Err(encore::api::auth::AuthError::UnknownKey)
        );
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "no fetch within the interval"
    );
}

#[tokio::test]
async fn search_finds_songs_as_the_voice_path_does_and_refuses_what_is_no_query() {
    let app = app().await;
    let t = token("listener-1");
    let a = app
        .get("/v1/search?q=burning%20nigt%20theo%20dubois", &t)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let first = &a.body["hits"][0];
    assert_eq!(first["track"]["title"], "Burning Night", "{}", a.body);
    assert_eq!(first["track"]["artist"], "Theo Dubois", "{}", a.body);
    assert!(first["match"].as_f64().unwrap() >= 0.6, "{}", a.body);
    let a = app.get("/v1/search?q=burning%20night&limit=3", &t).await;
    assert_eq!(a.body["hits"].as_array().unwrap().len(), 3, "{}", a.body);
    // Nothing like it: an empty list, not an error.
    let a = app.get("/v1/search?q=zzqx%20vvkp", &t).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["hits"], serde_json::json!([]));
    for bad in [
        "/v1/search".to_owned(),
        "/v1/search?q=%20%20".to_owned(),
        format!("/v1/search?q={}", "a".repeat(201)),
        "/v1/search?q=hello&limit=0".to_owned(),
        "/v1/search?q=hello&limit=51".to_owned(),
        "/v1/search?q=hello&color=red".to_owned(),
    ] {
        assert_error(
            &app.get(&bad, &t).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
}

#[tokio::test]
async fn recommendations_carry_their_id_model_version_and_variant() {
    let app = app().await;
    let t = token("listener-1");
    let a = app
        .get("/v1/me/recommendations?mood=relaxing&limit=10", &t)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["tracks"].as_array().unwrap().len(), 10);
    for field in [
        "recommendation_id",
        "model_version",
        "experiment",
        "variant",
    ] {
        assert!(
            a.body[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {}",
            a.body
        );
    }
    let track = &a.body["tracks"][0];
    assert!(
        track["stream_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    let a = app.get("/v1/me/recommendations?genre=jazz", &t).await;
    assert!(
        a.body["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["genre"] == "jazz")
    );
    assert_error(
        &app.get("/v1/me/recommendations?mood=grumpy", &t).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &app.get("/v1/me/recommendations", &t).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &app.get("/v1/me/recommendations?mood=sad&genre=jazz", &t)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &app.get("/v1/me/recommendations?mood=sad&limit=0", &t).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &app.get("/v1/me/recommendations?genre=polka", &t).await,
        StatusCode::NOT_FOUND,
        "no_match",
    );
}

#[tokio::test]
async fn playlists_fit_the_duration_spread_artists_and_stay_with_their_owner() {
    let app = app().await;
    let owner = token("owner");
    for (body, minutes) in [
        (
            json!({"name": "Evening", "mood": "relaxing", "duration_minutes": 45}),
            45u64,
        ),
        (
            json!({"name": "Seeds", "seed_track_ids": [], "track_count": 1}),
            0,
        ),
    ] {
        let a = app.post("/v1/playlists", &owner, body).await;
        if minutes == 0 {
            assert_error(&a, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
            continue;
        }
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        let tracks = a.body["tracks"].as_array().unwrap();
        let durations: Vec<u64> = tracks
            .iter()
            .map(|t| t["duration_ms"].as_u64().unwrap())
            .collect();
        let total: u64 = durations.iter().sum();
        let target = minutes * 60_000;
        assert!(
            total >= target && total - durations.last().unwrap() < target,
            "{total} ms for {target} ms"
        );
        assert_eq!(a.body["duration_ms"].as_u64(), Some(total));
        let ids: std::collections::HashSet<&str> =
            tracks.iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), tracks.len(), "no repeats");
        let artists: Vec<&str> = tracks
            .iter()
            .map(|t| t["artist"].as_str().unwrap())
            .collect();
        assert!(
            artists.windows(2).all(|w| w[0] != w[1]),
            "no artist twice in a row: {artists:?}"
        );
        let id = a.body["id"].as_str().unwrap().to_owned();
        let mine = app.get(&format!("/v1/playlists/{id}"), &owner).await;
        assert_eq!(mine.status, StatusCode::OK);
        assert_eq!(mine.body["tracks"], a.body["tracks"]);
        let theirs = app
            .get(&format!("/v1/playlists/{id}"), &token("someone-else"))
            .await;
        assert_error(&theirs, StatusCode::NOT_FOUND, "not_found");
        let list = app.get("/v1/me/playlists", &owner).await;
        assert_eq!(list.body["playlists"][0]["id"], id.as_str());
        assert_eq!(
            app.get("/v1/me/playlists", &token("someone-else"))
                .await
                .body["playlists"],
            json!([])
        );
    }
    // Seeds and a track count.
    let seed = app
        .get("/v1/me/recommendations?genre=classical&limit=1", &owner)
        .await
        .body["tracks"][0]["id"]
        .clone();
    let a = app
        .post(
            "/v1/playlists",
            &owner,
            json!({"name": "Like it", "seed_track_ids": [seed], "track_count": 12}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["tracks"].as_array().unwrap().len(), 12);
    for (bad, why) in [
        (
            json!({"name": "x", "mood": "sad", "genre": "jazz", "track_count": 5}),
            "two selections",
        ),
        (json!({"name": "x", "mood": "sad"}), "no length"),
        (
            json!({"name": "", "mood": "sad", "track_count": 5}),
            "no name",
        ),
        (
            json!({"name": "x", "mood": "sad", "track_count": 5, "colour": "blue"}),
            "unknown field",
        ),
    ] {
        let a = app.post("/v1/playlists", &owner, bad).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{why}: {}",
            a.body
        );
    }
    // Well formed, but nothing in the catalog fits: 404, the way an unknown id is.
    for (body, why) in [
        (
            json!({"name": "x", "seed_track_ids": ["nope"], "track_count": 5}),
            "unknown seed track nope",
        ),
        (
            json!({"name": "x", "genre": "jazz", "duration_minutes": 600}),
            "minutes of music match",
        ),
    ] {
        let a = app.post("/v1/playlists", &owner, body).await;
        assert_error(&a, StatusCode::NOT_FOUND, "no_match");
        let message = a.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{message}");
    }
    assert_error(
        &app.call(
            Method::GET,
            "/v1/playlists/does-not-exist",
            Some(&owner),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn a_feedback_batch_keeps_the_good_events_and_names_the_bad_ones() {
    let app = app().await;
    let t = token("fan");
    let tracks = app
        .get("/v1/me/recommendations?mood=happy&limit=3", &t)
        .await
        .body["tracks"]
        .clone();
    let id = |i: usize| tracks[i]["id"].as_str().unwrap().to_owned();
    let retried = uuid::Uuid::new_v4().to_string();
    let batch = json!({"events": [
        {"track_id": id(0), "kind": "play_finished", "position_ms": 200000, "event_id": retried, "context": {"mood": "happy"}},
        {"track_id": "no-such-track", "kind": "liked"},
        {"track_id": id(1), "kind": "play_finished", "position_ms": 12000},
        {"track_id": id(2), "kind": "exploded"},
        {"track_id": id(2), "kind": "liked", "device_id": "phone-7"},
    ]});
    let a = app.post("/v1/feedback", &t, batch).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.body["accepted"], 3);
    let errors: Vec<u64> = a.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(errors, [1, 3]);
    assert_eq!(
        a.body["event_ids"][0],
        retried.as_str(),
        "the app's event id is kept"
    );
    assert!(a.body["event_ids"][1].is_null());
    // Accepted means durable: the events are in the log, with the 30 s rule applied.
    let events = common::logged_events(&app.log);
    let kinds: Vec<String> = events.iter().map(|e| format!("{:?}", e.kind)).collect();
    assert_eq!(kinds, ["PlayFinished", "Skipped", "Liked"]);
    assert!(
        events
            .iter()
            .all(|e| e.user_id == "fan" && e.source == encore::domain::Source::Mobile)
    );
    assert_eq!(events[2].device_id, "phone-7");
    let all_bad = app
        .post(
            "/v1/feedback",
            &t,
            json!({"events": [{"track_id": "nope", "kind": "liked"}]}),
        )
        .await;
    // A well-formed batch is accepted as a batch; its events' fates are in the body.
    assert_eq!(all_bad.status, StatusCode::ACCEPTED);
    assert_eq!(all_bad.body["accepted"], 0, "{}", all_bad.body);
    assert_eq!(all_bad.body["errors"][0]["index"], 0, "{}", all_bad.body);
    let too_many: Vec<Value> = (0..501)
        .map(|_| json!({"track_id": id(0), "kind": "liked"}))
        .collect();
    assert_error(
        &app.post("/v1/feedback", &t, json!({"events": too_many}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    );
}

#[tokio::test]
async fn the_profile_can_be_read_changed_and_erased() {
    let app = app().await;
    let t = token("private-person");
    let a = app.get("/v1/me/profile", &t).await;
    assert_eq!(
        (
            a.body["explicit_allowed"].as_bool(),
            a.body["plays"].as_u64()
        ),
        (Some(true), Some(0))
    );
    let a = app
        .call(
            Method::PATCH,
            "/v1/me/profile",
            Some(&t),
            Some(json!({"explicit_allowed": false, "preferred_genres": ["Hip-Hop"]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["preferred_genres"], json!(["hip-hop"]));
    let recs = app
        .get("/v1/me/recommendations?genre=hip-hop&limit=25", &t)
        .await;
    assert!(
        recs.body["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["explicit"] == false),
        "explicit tracks are gone"
    );
    let bad = app
        .call(
            Method::PATCH,
            "/v1/me/profile",
            Some(&t),
            Some(json!({"explicit_allowed": "sometimes"})),
        )
        .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    app.post(
        "/v1/playlists",
        &t,
        json!({"name": "Mine", "mood": "sad", "track_count": 5}),
    )
    .await;
    app.post("/v1/voice", &t, json!({"text": "play something happy"}))
        .await;
    let gone = app.call(Method::DELETE, "/v1/me", Some(&t), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let a = app.get("/v1/me/profile", &t).await;
    assert_eq!(
        (
            a.body["explicit_allowed"].as_bool(),
            a.body["preferred_genres"].clone()
        ),
        (Some(true), json!([]))
    );
    assert_eq!(
        app.get("/v1/me/playlists", &t).await.body["playlists"],
        json!([])
    );
    let said = app
        .post("/v1/voice", &t, json!({"text": "what is playing"}))
        .await;
    assert!(
        said.body["playback"].is_null(),
        "the queue went too: {}",
        said.body
    );
}

#[tokio::test]
async fn the_voice_endpoint_answers_like_the_voice_path() {
    let app = app().await;
    let t = token("talker");
    let a = app
        .post(
            "/v1/voice",
            &t,
            json!({"text": "play something relaxing", "locale": "en-US"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["intent"]["name"], "PlayMoodIntent");
    assert_eq!(a.body["playback"]["action"], "play");
    assert!(
        a.body["speech"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("relax")
    );
    // Every language: a mood asked for as people say it there plays, answered in that
    // language.
    for (locale, text, answer) in [
        (
            "de-DE",
            "spiel etwas entspanntes",
            "Ich spiele entspannte Musik",
        ),
        (
            "fr-FR",
            "mets quelque chose de calme",
            "C'est parti : musique relaxante",
        ),
        (
            "fr-CA",
            "fais jouer de la musique relaxe",
            "C'est parti : musique relaxante",
        ),
        ("es-ES", "ponme algo tranquilo", "Pongo música relajante"),
        (
            "es-MX",
            "pon unas rolas tranquilas",
            "Pongo música relajante",
        ),
        ("es-US", "pon música suave", "Pongo música relajante"),
        (
            "it-IT",
            "metti qualcosa di rilassante",
            "Metto musica rilassante",
        ),
        (
            "pt-BR",
            "toca uma música tranquila",
            "Tocando música relaxante",
        ),
        (
            "nl-NL",
            "speel rustige muziek",
            "Ik speel ontspannen muziek",
        ),
    ] {
        let a = app
            .post("/v1/voice", &t, json!({"text": text, "locale": locale}))
            .await;
        assert_eq!(
            a.body["intent"]["name"], "PlayMoodIntent",
            "{locale}: {}",
            a.body
        );
        assert_eq!(a.body["playback"]["action"], "play", "{locale}: {}", a.body);
        assert!(
            a.body["speech"].as_str().unwrap().starts_with(answer),
            "{locale}: {}",
            a.body
        );
    }
    assert_error(
        &app.post("/v1/voice", &t, json!({"text": "hi", "locale": "xx-XX"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    );
    assert_error(
        &app.post("/v1/voice", &t, json!({"text": "  "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    );
}

#[tokio::test]
async fn errors_share_one_shape_with_limits_and_request_ids() {
    let limited_app = app_with(
        RateLimit {
            per_minute: 60,
            burst: 3,
        },
        true,
    )
    .await;
    let t = token("busy");
    for _ in 0..3 {
        assert_eq!(
            limited_app.get("/v1/me/profile", &t).await.status,
            StatusCode::OK
        );
    }
    let limited = limited_app.get("/v1/me/profile", &t).await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        limited_app
            .get("/v1/me/profile", &token("calm"))
            .await
            .status,
        StatusCode::OK,
        "per user"
    );

    let app = app().await;
    let t = token("big");
    let huge = json!({"events": [{"track_id": "x".repeat(70 * 1024), "kind": "liked"}]});
    assert_error(
        &app.post("/v1/feedback", &t, huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let req = Request::post("/v1/feedback")
        .header("authorization", format!("Bearer {t}"))
        .header("content-type", "application/json")
        .header("x-request-id", "trace-me-123")
        .body(Body::from("{not json"))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-123");
    let body: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"]["request_id"], "trace-me-123");
    assert_eq!(body["error"]["code"], "bad_request");
    assert_error(
        &app.get("/v1/nowhere", &t).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let off = app_with(
        RateLimit {
            per_minute: 60,
            burst: 3,
        },
        false,
    )
    .await;
    assert_error(
        &off.get("/v1/me/profile", &t).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let app = app().await;
    let doc = app.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut routed: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routed.sort();
    assert_eq!(
        documented, routed,
        "openapi.json and the router list the same operations"
    );
    for (method, path) in &routed {
        let concrete = path.replace("{id}", "some-id");
        let a = app
            .call(
                method.to_uppercase().parse().unwrap(),
                &concrete,
                None,
                None,
            )
            .await;
        let expected = if path == "/v1/openapi.json" {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(
            a.status, expected,
            "{method} {path} is routed (and guarded)"
        );
    }
    // Every documented response names a status the error shape covers, and every schema
    // reference resolves.
    let text = doc.body.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            doc.body["components"]["schemas"].get(name).is_some(),
            "{name} is defined"
        );
    }
}

#[tokio::test]
async fn a_linked_alexa_account_is_the_same_listener_as_the_app_user() {
    let app = app().await;
    let alexa = |name: &str, token: &str, linked: Option<&str>| {
        let mut v = common::fixture(name, token);
        if let Some(t) = linked {
            for path in [&["context", "System", "user"][..], &["session", "user"][..]] {
                let mut user = &mut v;
                for key in path {
                    user = &mut user[*key];
                }
                if let Some(u) = user.as_object_mut() {
                    u.insert("accessToken".into(), json!(t));
                }
            }
        }
        v
    };
    let linked = token("linked-listener");
    let play = app
        .call(
            Method::POST,
            "/alexa",
            None,
            Some(alexa("play_mood_er", "", Some(&linked))),
        )
        .await;
    let stream = &play.body["response"]["directives"][0]["audioItem"]["stream"];
    let playing = stream["token"].as_str().expect("music").to_owned();
    let like = app
        .call(
            Method::POST,
            "/alexa",
            None,
            Some(alexa("like", &playing, Some(&linked))),
        )
        .await;
    assert_eq!(like.status, StatusCode::OK, "{}", like.body);
    // The like lands in the app user's profile.
    let profile = app.get("/v1/me/profile", &linked).await;
    assert_eq!(
        profile.body["liked"][0],
        stream["url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".mp3")
    );
    // A token that does not verify is not served as anyone else (the platform user's queue
    // would be found without a word): the listener is asked to link again.
    let forged = Key::new("rsa-1", Algorithm::RS256).sign(&claims("linked-listener"));
    let play = app
        .call(
            Method::POST,
            "/alexa",
            None,
            Some(alexa("play_mood_er", "", Some(&forged))),
        )
        .await;
    assert_eq!(play.status, StatusCode::OK);
    let response = &play.body["response"];
    assert_eq!(response["card"]["type"], "LinkAccount", "{}", play.body);
    assert!(response.get("directives").is_none(), "{}", play.body);
    assert!(
        response["outputSpeech"]["ssml"]
            .as_str()
            .unwrap()
            .contains("link it again")
    );
    // A device report under a refused token records nothing, as anyone.
    let report = app
        .call(
            Method::POST,
            "/alexa",
            None,
            Some(alexa("dislike", &playing, Some(&forged))),
        )
        .await;
    assert_eq!(report.body["response"]["card"]["type"], "LinkAccount");
    let profile = app.get("/v1/me/profile", &linked).await;
    assert_eq!(profile.body["liked"].as_array().unwrap().len(), 1);
    assert_eq!(profile.body["dislikes"], 0, "{}", profile.body);
}

#[test]
fn the_document_check_refuses_an_undeclared_status_and_a_body_off_its_schema() {
    let doc = common::openapi::document();
    let refused = |status: u16, body: Value| {
        std::panic::catch_unwind(|| doc.check("GET", "/v1/me/profile", status, &body)).is_err()
    };
    let profile = json!({
        "user_id": "u", "explicit_allowed": true, "preferred_genres": [], "plays": 0,
        "finishes": 0, "skips": 0, "likes": 0, "dislikes": 0, "liked": [], "top_genres": [],
        "top_artists": [],
    });
    assert!(!refused(200, profile.clone()), "a documented answer passes");
    assert!(refused(418, profile.clone()), "an undeclared status");
    let mut off = profile;
    off["plays"] = json!("many");
    assert!(refused(200, off), "a body off its schema");
    let a_playlist = "/v1/playlists/abc?x=1";
    assert!(
        std::panic::catch_unwind(|| doc.check("GET", a_playlist, 200, &json!({"id": 1}))).is_err(),
        "path templates match, and the query is ignored"
    );
}

#[tokio::test]
async fn a_pem_key_file_accepts_tokens_that_name_a_key_id() {
    // Identity providers put a kid in every token; a PEM file has none to match it with.
    let dir = tempfile::tempdir().unwrap();
    let (rsa, ec) = keys();
    for key in [rsa, ec] {
        let pem = dir.path().join(format!("{}.pem", key.kid));
        std::fs::write(&pem, &key.public_pem).unwrap();
        let verifier = JwtVerifier::new(JwtSettings {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            keys: KeySource::File(pem),
            leeway: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(60),
        })
        .await
        .unwrap();
        assert_eq!(
            verifier
                .verify(&key.sign(&claims("pem-user")))
                .await
                .unwrap(),
            "pem-user",
            "{}",
            key.kid
        );
        let other = Key::new("other", key.alg);
        assert!(
            verifier
                .verify(&other.sign(&claims("pem-user")))
                .await
                .is_err(),
            "another key's signature is still refused"
        );
    }
}

#[tokio::test]
async fn an_unlinked_alexa_listener_is_offered_the_link_on_opening_the_skill_and_still_served() {
    let app = app().await;
    let launch = app
        .call(
            Method::POST,
            "/alexa",
            None,
            Some(common::fixture("launch", "")),
        )
        .await;
    assert_eq!(launch.status, StatusCode::OK);
    let response = &launch.body["response"];
    assert_eq!(response["card"]["type"], "LinkAccount", "{}", launch.body);
    assert!(
        response["outputSpeech"]["ssml"]
            .as_str()
            .unwrap()
            .contains("What would you like to hear"),
        "{}",
        launch.body
    );
    // Linking is offered, not required: music plays without it, with no card in the way.
    let play = app
        .call(
            Method::POST,
            "/alexa",
            None,
            Some(common::fixture("play_mood_er", "")),
        )
        .await;
    let response = &play.body["response"];
    assert_eq!(
        response["directives"][0]["type"], "AudioPlayer.Play",
        "{}",
        play.body
    );
    assert_ne!(response["card"]["type"], "LinkAccount", "{}", play.body);
}
