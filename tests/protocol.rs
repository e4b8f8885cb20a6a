//! The Alexa protocol in process (router + oneshot, verification off): every fixture request
//! type gets the answer its type allows, every response validates against the JSON Schema
//! generated from the ask-sdk-model typings, and bad input gets a clear error.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use encore::app::{Components, build_router};
use serde_json::Value;
use std::sync::OnceLock;

struct Harness {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let parts = Components::load(&common::storage(dir.path()))
        .await
        .unwrap();
    Harness {
        router: build_router(&parts, None, common::router_settings()),
        _dir: dir,
    }
}

fn schema() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let path = common::repo().join("tests/schema/alexa-response.schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).unwrap()
    })
}

fn assert_valid(name: &str, response: &Value) {
    let errors: Vec<String> = schema()
        .iter_errors(response)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: response does not match the ask-sdk-model schema:\n{}\n{response:#}",
        errors.join("\n")
    );
}

async fn post(h: &Harness, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let request = Request::post("/alexa")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    common::call(&h.router, request).await
}

async fn ask(h: &Harness, request: &Value) -> Value {
    let (status, body) = post(h, serde_json::to_vec(request).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(body.len() <= 24 * 1024, "response over 24 KB");
    serde_json::from_slice(&body).unwrap()
}

fn speech(r: &Value) -> &str {
    r["response"]["outputSpeech"]["ssml"].as_str().unwrap_or("")
}

/// Starts playback and returns the token of the first track.
async fn start_playing(h: &Harness) -> String {
    let r = ask(h, &common::fixture("play_mood_er", "")).await;
    r["response"]["directives"][0]["audioItem"]["stream"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_fixture_gets_a_valid_response_its_type_allows() {
    let h = harness().await;
    let token = start_playing(&h).await;
    let names = common::fixture_names();
    assert!(names.len() >= 35, "fixtures missing: {names:?}");
    for name in names {
        let request = common::fixture(&name, &token);
        let kind = request["request"]["type"].as_str().unwrap().to_owned();
        let response = ask(&h, &request).await;
        assert_valid(&name, &response);
        assert_eq!(response["version"], "1.0");
        let r = &response["response"];
        let device_report =
            kind.starts_with("AudioPlayer.") || kind.starts_with("PlaybackController.");
        if device_report {
            for field in ["outputSpeech", "card", "reprompt", "shouldEndSession"] {
                assert!(
                    r.get(field).is_none(),
                    "{name}: a {kind} response must not carry {field}: {r}"
                );
            }
        } else if matches!(
            kind.as_str(),
            "SessionEndedRequest" | "System.ExceptionEncountered"
        ) || !kind.contains("Request")
        {
            assert_eq!(
                r,
                &serde_json::json!({}),
                "{name}: {kind} gets an empty response"
            );
        } else {
            assert!(r["shouldEndSession"].is_boolean(), "{name}: {r}");
            if r["shouldEndSession"] == false {
                assert!(
                    r["outputSpeech"].is_object() && r["reprompt"].is_object(),
                    "{name}: an open session asks something: {r}"
                );
            } else if name != "navigate_home" {
                assert!(
                    r["outputSpeech"].is_object() || r["directives"].is_array(),
                    "{name}: {kind} should answer something: {r}"
                );
            }
        }
        for d in r["directives"].as_array().into_iter().flatten() {
            if d["type"] == "AudioPlayer.Play" {
                let stream = &d["audioItem"]["stream"];
                assert!(
                    stream["url"].as_str().unwrap().starts_with("https://"),
                    "{name}: stream URL must be HTTPS"
                );
                assert!(stream["token"].as_str().unwrap().len() < 1024);
            }
        }
        if let Some(s) = r["outputSpeech"]["ssml"].as_str() {
            assert!(
                s.starts_with("<speak>") && s.ends_with("</speak>") && s.chars().count() <= 8000
            );
        }
    }
}

#[tokio::test]
async fn play_mood_speaks_and_starts_a_mood_consistent_track() {
    let h = harness().await;
    let r = ask(&h, &common::fixture("play_mood_er", "")).await;
    assert!(speech(&r).contains("relaxing"), "{r}");
    assert_eq!(r["response"]["shouldEndSession"], true);
    let d = &r["response"]["directives"][0];
    assert_eq!(d["type"], "AudioPlayer.Play");
    assert_eq!(d["playBehavior"], "REPLACE_ALL");
    assert_eq!(d["audioItem"]["stream"]["offsetInMilliseconds"], 0);
    let title = d["audioItem"]["metadata"]["title"].as_str().unwrap();
    assert!(speech(&r).contains(title), "the speech names the track");
    assert_eq!(r["response"]["card"]["type"], "Standard");
}

#[tokio::test]
async fn slot_values_resolve_through_synonyms_without_entity_resolution() {
    let h = harness().await;
    let r = ask(&h, &common::fixture("play_mood_synonym", "")).await;
    assert!(
        speech(&r).contains("relaxing"),
        "'calm' is a synonym of relaxing: {r}"
    );
    assert_eq!(r["response"]["directives"][0]["type"], "AudioPlayer.Play");
}

#[tokio::test]
async fn a_missing_or_unknown_mood_is_asked_for_and_the_session_stays_open() {
    let h = harness().await;
    for name in ["play_mood_missing", "play_mood_unknown"] {
        let r = ask(&h, &common::fixture(name, "")).await;
        assert!(speech(&r).contains("Which mood"), "{name}: {r}");
        assert_eq!(r["response"]["shouldEndSession"], false);
        assert!(r["response"]["reprompt"]["outputSpeech"].is_object());
        // The dialog model's slot samples hear the answer ("relaxing", "something calm"):
        // the one directive asks Alexa for the mood slot of the same intent, emptied.
        assert_valid(name, &r);
        let directives = r["response"]["directives"].as_array().unwrap();
        assert_eq!(directives.len(), 1, "{name}: {r}");
        assert_eq!(directives[0]["type"], "Dialog.ElicitSlot");
        assert_eq!(directives[0]["slotToElicit"], "mood");
        let intent = &directives[0]["updatedIntent"];
        assert_eq!(intent["name"], "PlayMoodIntent");
        assert_eq!(intent["slots"]["mood"]["name"], "mood");
        assert!(
            intent["slots"]["mood"].get("value").is_none(),
            "{name}: {r}"
        );
    }
}

#[tokio::test]
async fn unknown_intents_get_helpful_fallback_speech() {
    let h = harness().await;
    let r = ask(&h, &common::fixture("unknown_intent", "")).await;
    assert!(speech(&r).contains("play something relaxing"), "{r}");
    assert_eq!(r["response"]["shouldEndSession"], false);
}

#[tokio::test]
async fn requests_are_answered_in_the_language_of_their_locale() {
    let h = harness().await;
    for (locale, words) in [
        ("de-DE", "Ich spiele entspannte Musik"),
        ("de-AT", "Ich spiele entspannte Musik"),
        ("fr-FR", "parti : musique relaxante. Voici"),
        ("fr-CA", "parti : musique relaxante. Voici"),
        ("es-ES", "Pongo música relajante"),
        ("es-MX", "Pongo música relajante"),
        ("es-US", "Pongo música relajante"),
        ("it-IT", "Metto musica rilassante"),
        ("pt-BR", "Tocando música relaxante"),
        ("nl-NL", "Ik speel ontspannen muziek"),
        ("ja-JP", "Playing relaxing music"),
    ] {
        let mut request = common::fixture("play_mood_er", "");
        request["request"]["locale"] = locale.into();
        let r = ask(&h, &request).await;
        assert!(speech(&r).contains(words), "{locale}: {r}");
    }
}

#[tokio::test]
async fn malformed_json_is_refused_with_a_clear_json_error() {
    let h = harness().await;
    for body in [&b"{not json"[..], b"", b"{\"version\":\"1.0\"}", b"[1,2,3]"] {
        let (status, bytes) = post(&h, body.to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let error: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(error["error"]["code"], "bad_request");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("malformed request"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn an_oversize_body_is_refused_with_413() {
    let h = harness().await;
    let mut request = common::fixture("launch", "");
    request["padding"] = "x".repeat(70 * 1024).into();
    let (status, bytes) = post(&h, serde_json::to_vec(&request).unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let error: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(error["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn reports_about_a_stale_token_change_nothing() {
    let h = harness().await;
    start_playing(&h).await;
    let r = ask(
        &h,
        &common::fixture("playback_nearly_finished", "0000dead:1:0:not-a-track"),
    )
    .await;
    assert_eq!(
        r["response"],
        serde_json::json!({}),
        "no directive for a queue we did not make"
    );
}

/// The schema check can fail: a misspelled field or a wrong enum value is caught.
#[test]
fn the_schema_rejects_what_the_platform_would_reject() {
    let good = serde_json::json!({"version": "1.0", "response": {"directives": [{"type": "AudioPlayer.Play", "playBehavior": "ENQUEUE",
        "audioItem": {"stream": {"url": "https://a/b.mp3", "token": "t", "expectedPreviousToken": "s", "offsetInMilliseconds": 0}}}]}});
    assert!(schema().is_valid(&good));
    let mut misspelled = good.clone();
    misspelled["response"]["directives"][0]["playBehaviour"] = "ENQUEUE".into();
    assert!(!schema().is_valid(&misspelled));
    let mut wrong_enum = good.clone();
    wrong_enum["response"]["directives"][0]["playBehavior"] = "ENQUEUE_LATER".into();
    assert!(!schema().is_valid(&wrong_enum));
    let mut no_token = good;
    no_token["response"]["directives"][0]["audioItem"]["stream"]
        .as_object_mut()
        .unwrap()
        .remove("token");
    assert!(!schema().is_valid(&no_token));
}

#[tokio::test]
async fn an_entity_resolution_id_counts_only_from_the_skills_own_slot_types() {
    // AMAZON.Musician may resolve through Alexa Entities: its id is an IRI, not a value of
    // ours, so the artist is what was heard.
    let h = harness().await;
    let mut request = common::fixture("play_artist", "");
    request["request"]["intent"]["slots"]["artist"]["resolutions"] = serde_json::json!({
        "resolutionsPerAuthority": [{
            "authority": "AlexaEntities",
            "status": { "code": "ER_SUCCESS_MATCH" },
            "values": [{ "value": {
                "name": "Theo Dubois",
                "id": "https://ak.amazon.com/1745fd7a-7b0f-4b1e-9f0e-EXAMPLE"
            } }]
        }]
    });
    let r = ask(&h, &request).await;
    assert_valid("play_artist with an Alexa Entities resolution", &r);
    assert_eq!(
        r["response"]["directives"][0]["type"], "AudioPlayer.Play",
        "{r}"
    );
    assert!(speech(&r).to_lowercase().contains("theo dubois"), "{r}");
}

#[tokio::test]
async fn a_device_without_an_audio_player_hears_why_instead_of_a_directive_it_cannot_play() {
    let h = harness().await;
    let mut request = common::fixture("play_mood_er", "");
    request["context"]["System"]["device"]["supportedInterfaces"] = serde_json::json!({});
    let r = ask(&h, &request).await;
    assert_valid("play_mood_er without AudioPlayer", &r);
    assert!(r["response"].get("directives").is_none(), "{r}");
    assert!(speech(&r).contains("play music from Encore"), "{r}");
    // What needs no audio still works there.
    let mut help = common::fixture("help", "");
    help["context"]["System"]["device"]["supportedInterfaces"] = serde_json::json!({});
    let r = ask(&h, &help).await;
    assert!(speech(&r).contains("What would you like to hear"), "{r}");
}
