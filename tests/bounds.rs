//! Nothing a client sends adds metric series or per-name state: each test is the attack, over
//! a real listener on loopback, and then reads `/metrics` as an operator would. (The
//! Prometheus recorder is one per process, so each attack uses names of its own and looks
//! for them.)

use crate::common;
use crate::openapi::{serve_with_the_api, token_for};

use serde_json::{Value, json};

async fn metrics(client: &reqwest::Client, server: &common::TestServer) -> String {
    client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_feedback_naming_made_up_experiment_arms_is_tallied_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_the_api(dir.path()).await;
    let client = reqwest::Client::new();
    let track = encore::recommend::Catalog::load(&common::repo().join("models"))
        .unwrap()
        .tracks()[0]
        .id
        .0
        .clone();
    // Before, every made-up (experiment, variant) got a day of minute buckets and a series
    // of its own: 60 such batches grew a server to 2.6 GB.
    for batch in 0..20 {
        let events: Vec<Value> = (0..100)
            .map(|i| {
                json!({"track_id": track, "kind": "play_finished", "position_ms": 200_000,
                       "context": {"experiment": format!("armattack-x{batch}"),
                                   "variant": format!("armattack-v{i}")}})
            })
            .collect();
        let answer = client
            .post(server.url("/v1/feedback"))
            .bearer_auth(token_for("arm-attacker"))
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
    }
    let text = metrics(&client, &server).await;
    assert!(
        !text.contains("armattack-"),
        "a client's arm names became series"
    );
    let unknown = format!(
        "encore_variant_events_total{{experiment=\"{0}\",variant=\"{0}\",kind=\"play_finished\"}}",
        encore::feedback::UNKNOWN_ARM
    );
    assert!(text.contains(&unknown), "counted as unknown:\n{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_http_methods_are_counted_as_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::TestServer::start(dir.path(), None).await;
    let client = reqwest::Client::new();
    // Before, each of these (unauthenticated) requests added a series.
    for i in 0..200 {
        let method = reqwest::Method::from_bytes(format!("MATTACK{i}").as_bytes()).unwrap();
        let _ = client
            .request(method, server.url("/healthz"))
            .send()
            .await
            .unwrap();
    }
    let text = metrics(&client, &server).await;
    assert!(
        !text.contains("MATTACK"),
        "a client's method became a label"
    );
    assert!(
        text.contains("method=\"OTHER\""),
        "counted as OTHER:\n{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intent_names_the_skill_does_not_have_are_counted_as_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::TestServer::start(dir.path(), None).await;
    let client = reqwest::Client::new();
    for i in 0..100 {
        let mut request = common::fixture("play_mood_er", "");
        request["request"]["intent"]["name"] = json!(format!("IntentAttack{i}"));
        let answer = client
            .post(server.url("/alexa"))
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "the listener still hears something");
    }
    let text = metrics(&client, &server).await;
    assert!(
        !text.contains("IntentAttack"),
        "a request's intent name became a label"
    );
    assert!(
        text.contains("intent=\"OTHER\""),
        "counted as OTHER:\n{text}"
    );
    server.stop().await;
}
