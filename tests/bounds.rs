//! Nothing a client sends adds metric series or per-name state: each test is the attack, over
//! a real listener on loopback, and then reads `/metrics` as an operator would. (The
//! Prometheus recorder is one per process, so each attack uses names of its own and looks
//! for them.)

use crate::common;
use crate::openapi::{serve_with_the_api, token_for};

use serde_json::{Value, json};

/// The id of the demo catalog's first track.
fn first_track() -> String {
    encore::recommend::Catalog::load(&common::repo().join("models"))
        .unwrap()
        .tracks()[0]
        .id
        .0
        .clone()
}

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
    let track = first_track();
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

/// A server whose connections must send their headers within 1 s and their bodies within
/// 1 s, with 16 requests in flight.
async fn serve_with_short_read_timeouts(dir: &std::path::Path) -> common::TestServer {
    let mut args = common::serve_args(true, dir);
    args.max_in_flight = 16;
    args.header_read_timeout = std::time::Duration::from_secs(1);
    args.body_read_timeout = std::time::Duration::from_secs(1);
    common::TestServer::start_with(args, None).await
}

/// Opens a connection and sends `head` and `body_start`, then nothing more.
async fn stall(server: &common::TestServer, head: &str, body_start: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body_start.as_bytes()).await.unwrap();
    stream
}

/// Everything the server sends on `stream` until it closes it (at most 10 s).
async fn until_closed(mut stream: tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut got),
    )
    .await
    .expect("the server closes a stalled connection")
    .unwrap_or_default();
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_stalled_mid_body_hold_no_request_slot_and_are_cut_at_the_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_short_read_timeouts(dir.path()).await;
    // Four times as many as there are slots, each promising 1,000 bytes and sending 9.
    let head = "POST /alexa HTTP/1.1\r\nHost: encore\r\nContent-Type: application/json\r\n\
                Content-Length: 1000\r\n\r\n";
    let mut stalled = Vec::new();
    for _ in 0..64 {
        stalled.push(stall(&server, head, "{\"version").await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Before, each stalled body held a slot: the health check and a real listener got 503
    // for as long as the connections stayed open.
    let client = reqwest::Client::new();
    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let play = common::post_raw(
        &client,
        &server,
        None,
        None,
        serde_json::to_vec(&common::fixture("play_mood_er", "")).unwrap(),
    )
    .await;
    assert_eq!(play.status(), 200, "{}", play.text().await.unwrap());
    // And the stalled ones are answered 408 and closed once the body timeout has passed.
    for stream in stalled {
        let answer = until_closed(stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"request_timeout\""), "{answer}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_stalled_in_its_headers_is_closed_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_short_read_timeouts(dir.path()).await;
    // Before, a connection that never finished its headers stayed open for ever.
    let stalled = stall(
        &server,
        "POST /alexa HTTP/1.1\r\nHost: encore\r\nX-Slow: ",
        "",
    )
    .await;
    let idle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    until_closed(stalled).await;
    // A connection that sends nothing at all is closed by the same timeout.
    until_closed(idle).await;
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_events_with_overlong_or_made_up_context_are_refused_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_the_api(dir.path()).await;
    let client = reqwest::Client::new();
    let track = first_track();
    // Before, each was accepted: a 200 KB genre went onto the stream and into the profile.
    let events = json!({"events": [
        {"track_id": track, "kind": "liked", "context": {"genre": "g".repeat(200 * 1024)}},
        {"track_id": track, "kind": "liked", "context": {"mood": "made-up"}},
        {"track_id": track, "kind": "liked", "context": {"variant": ""}},
        {"track_id": track, "kind": "liked", "context": {"seed_track_id": "no-such-track"}},
        {"track_id": track, "kind": "liked", "context": {"mood": "happy", "variant": "control"}},
    ]});
    let answer: Value = client
        .post(server.url("/v1/feedback"))
        .bearer_auth(token_for("context-attacker"))
        .json(&events)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["accepted"], 1, "{answer}");
    let errors = answer["errors"].as_array().unwrap();
    let refused: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(refused.len(), 4, "{answer}");
    assert!(refused[0].1.contains("context.genre"), "{refused:?}");
    assert!(refused[1].1.contains("context.mood"), "{refused:?}");
    assert!(refused[2].1.contains("context.variant"), "{refused:?}");
    assert!(refused[3].1.contains("seed_track_id"), "{refused:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_listener_is_not_folded_back_in_from_events_before_the_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_the_api(dir.path()).await;
    let client = reqwest::Client::new();
    let track = first_track();
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let post = |user: &str, kind: &str, at: time::OffsetDateTime, n: usize| {
        let events: Vec<Value> = (0..n)
            .map(|_| json!({"track_id": track, "kind": kind, "occurred_at": rfc3339(at)}))
            .collect();
        client
            .post(server.url("/v1/feedback"))
            .bearer_auth(token_for(user))
            .json(&json!({ "events": events }))
            .send()
    };
    let counts = |user: &str| {
        let request = client
            .get(server.url("/v1/me/profile"))
            .bearer_auth(token_for(user));
        async move {
            let profile: Value = request.send().await.unwrap().json().await.unwrap();
            (
                profile["plays"].as_u64().unwrap(),
                profile["likes"].as_u64().unwrap(),
            )
        }
    };
    for run in 0..3 {
        let user = format!("leaver-{run}");
        let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(2);
        // Events the consumer may not have folded in yet, then the erasure, then events the
        // app had queued from before it. Before, the profile came back every time.
        assert_eq!(
            post(&user, "play_started", before, 20)
                .await
                .unwrap()
                .status(),
            202
        );
        let erased = client
            .delete(server.url("/v1/me"))
            .bearer_auth(token_for(&user))
            .send()
            .await
            .unwrap();
        assert_eq!(erased.status(), 204);
        assert_eq!(
            post(&user, "play_started", before, 20)
                .await
                .unwrap()
                .status(),
            202
        );
        // One like from after the erasure: once it shows, everything before it in the log
        // has been through the consumer.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let after = time::OffsetDateTime::now_utc();
        assert_eq!(post(&user, "liked", after, 1).await.unwrap().status(), 202);
        let mut seen = (0, 0);
        for _ in 0..200 {
            seen = counts(&user).await;
            if seen.1 > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(
            seen,
            (0, 1),
            "run {run}: (plays, likes); only the like after the erasure counts"
        );
    }
    server.stop().await;
}
