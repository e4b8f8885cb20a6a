//! Feedback events and the local log: the events a conversation produces match the public
//! schema and round-trip the Rust type; the skip rule; acknowledged events survive a drop
//! without shutdown; a torn final record is cut off and nothing else; segments roll.

use crate::common;

use common::{TestServer, fetcher, fixture, pki, post_signed, verifier};
use encore::domain::{Source, TrackId};
use encore::feedback::{EventContext, EventKind, FeedbackEvent, FeedbackSink, LocalLog};
use serde_json::Value;
use std::io::Write;

fn schema() -> jsonschema::Validator {
    let path = common::repo().join("schemas/feedback-event.v1.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn event(i: usize) -> FeedbackEvent {
    FeedbackEvent::new(
        &format!("user-{}", i % 7),
        "device",
        &TrackId(format!("track-{i}")),
        EventKind::PlayStarted,
        0,
        EventContext::default(),
        Source::Mobile,
    )
}

async fn post(
    server: &TestServer,
    client: &reqwest::Client,
    name: &str,
    token: &str,
    offset: u64,
) -> Value {
    let mut request = fixture(name, token);
    request["context"]["AudioPlayer"]["offsetInMilliseconds"] = offset.into();
    if request["request"].get("offsetInMilliseconds").is_some() {
        request["request"]["offsetInMilliseconds"] = offset.into();
    }
    let r = post_signed(client, server, &request, &pki().good, "good").await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn token(r: &Value) -> String {
    r["response"]["directives"][0]["audioItem"]["stream"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_conversation_produces_schema_valid_events_with_the_skip_rule_applied() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Some(verifier(fetcher()))).await;
    let client = reqwest::Client::new();
    let t1 = token(&post(&server, &client, "play_mood_er", "", 0).await);
    post(&server, &client, "playback_started", &t1, 0).await;
    let t2 = token(&post(&server, &client, "playback_nearly_finished", &t1, 180_000).await);
    post(&server, &client, "playback_finished", &t1, 212_000).await;
    post(&server, &client, "playback_started", &t2, 0).await;
    post(&server, &client, "like", &t2, 5_000).await;
    // "next" after 12 s: the device reports the stream stopped at 12 s, a skip.
    let t3 = token(&post(&server, &client, "next", &t2, 12_000).await);
    post(&server, &client, "playback_stopped", &t2, 12_000).await;
    post(&server, &client, "playback_started", &t3, 0).await;
    // Stopped at 95 s (the listener spoke to the device), then the stream fails: one play,
    // ended by the failure.
    post(&server, &client, "playback_stopped", &t3, 95_000).await;
    post(&server, &client, "playback_failed", &t3, 0).await;
    server.stop().await;

    let log = LocalLog::open(&dir.path().join("feedback")).unwrap();
    let events = common::logged_events(&log);
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    use EventKind::*;
    assert_eq!(
        kinds,
        [
            PlayStarted,
            PlayFinished,
            PlayStarted,
            Liked,
            Skipped,
            PlayStarted,
            Failed
        ]
    );
    let validator = schema();
    let mut ids = std::collections::HashSet::new();
    for e in &events {
        let json = serde_json::to_value(e).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{json}: {errors:?}");
        let back: FeedbackEvent = serde_json::from_value(json).unwrap();
        assert_eq!(&back, e, "the Rust type round-trips");
        assert!(ids.insert(e.event_id.clone()), "event ids are unique");
        assert_eq!(e.source, Source::Alexa);
        assert_eq!(e.context.mood.as_deref(), Some("relaxing"));
        assert!(e.context.recommendation_id.is_some() && e.context.model_version.is_some());
    }
    assert_eq!(events[1].position_ms, 212_000);
    assert_eq!(events[4].position_ms, 12_000);
}

#[test]
fn the_schema_rejects_what_consumers_could_not_read() {
    let validator = schema();
    let good = serde_json::to_value(event(1)).unwrap();
    assert!(validator.is_valid(&good));
    for (field, bad) in [
        ("kind", Value::from("paused")),
        ("position_ms", Value::from(-1)),
        ("event_id", Value::from("not-a-uuid")),
    ] {
        let mut e = good.clone();
        e[field] = bad;
        assert!(!validator.is_valid(&e), "{field}");
    }
    let mut missing = good;
    missing.as_object_mut().unwrap().remove("user_id");
    assert!(!validator.is_valid(&missing));
}

#[tokio::test]
async fn acknowledged_events_survive_a_drop_without_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let n = 500;
    let mut sent = Vec::new();
    {
        let log = LocalLog::open(dir.path()).unwrap();
        let deliveries: Vec<_> = (0..n)
            .map(|i| {
                let e = event(i);
                sent.push(e.event_id.clone());
                log.send(e)
            })
            .collect();
        for d in deliveries {
            d.durable().await.unwrap();
        }
        // Dropped here: no flush, no shutdown.
    }
    let log = LocalLog::open(dir.path()).unwrap();
    let read: Vec<String> = common::logged_events(&log)
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(read, sent, "every acknowledged event, in order");
}

#[tokio::test]
async fn a_torn_final_record_is_cut_off_and_appending_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = LocalLog::open(dir.path()).unwrap();
        for i in 0..10 {
            log.send(event(i)).durable().await.unwrap();
        }
    }
    // A crash in the middle of an append: a header promising 300 bytes, and only 20 of them.
    let segment = dir.path().join(format!("{:020}.log", 0));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    file.write_all(&300u32.to_le_bytes()).unwrap();
    file.write_all(&0xdead_beefu32.to_le_bytes()).unwrap();
    file.write_all(&[b'x'; 20]).unwrap();
    drop(file);

    let log = LocalLog::open(dir.path()).unwrap();
    assert_eq!(log.end(), 10, "the ten good records stay");
    log.send(event(10)).durable().await.unwrap();
    let read = log.read(0, 100).unwrap();
    assert_eq!(read.len(), 11);
    assert!(read.iter().all(|r| r.event.is_ok()));
    assert_eq!(read[10].offset, 10);
}

/// Ten durable records in a fresh log in `dir`, then the segment's bytes.
async fn ten_records(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let log = LocalLog::open(dir).unwrap();
    for i in 0..10 {
        log.send(event(i)).durable().await.unwrap();
    }
    drop(log);
    let segment = dir.join(format!("{:020}.log", 0));
    let bytes = std::fs::read(&segment).unwrap();
    (segment, bytes)
}

/// Which records of `log` decode, by number.
fn decodable(log: &LocalLog) -> Vec<(u64, bool)> {
    log.read(0, 100)
        .unwrap()
        .into_iter()
        .map(|r| (r.offset, r.event.is_ok()))
        .collect()
}

#[tokio::test]
async fn damage_before_the_end_is_stepped_over_as_one_record_and_the_log_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (segment, mut bytes) = ten_records(dir.path()).await;
    bytes[20] ^= 0xff; // inside the first record's payload
    std::fs::write(&segment, bytes).unwrap();

    let log = LocalLog::open(dir.path()).expect("a damaged log still opens");
    assert_eq!(log.end(), 10, "the damaged record keeps its number");
    let read = decodable(&log);
    let expected: Vec<(u64, bool)> = (0..10).map(|i| (i, i != 0)).collect();
    assert_eq!(read, expected, "only the damaged record fails to decode");
    let damaged = log.read(0, 1).unwrap().remove(0).event.unwrap_err();
    assert!(damaged.contains("damaged record"), "{damaged}");
    log.send(event(10)).durable().await.unwrap();
    assert_eq!(
        decodable(&log).last(),
        Some(&(10, true)),
        "appending goes on"
    );
}

#[tokio::test]
async fn a_damaged_header_is_stepped_over_to_the_next_good_record() {
    let dir = tempfile::tempdir().unwrap();
    let (segment, mut bytes) = ten_records(dir.path()).await;
    // The fourth record's length: walk the headers to it and make it absurd.
    let mut at = 0;
    for _ in 0..3 {
        at += 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    }
    bytes[at..at + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    std::fs::write(&segment, bytes).unwrap();

    let log = LocalLog::open(dir.path()).expect("a damaged log still opens");
    assert_eq!(log.end(), 10);
    let expected: Vec<(u64, bool)> = (0..10).map(|i| (i, i != 3)).collect();
    assert_eq!(decodable(&log), expected);
    let events = log.read(4, 6).unwrap();
    let ids: Vec<String> = events
        .into_iter()
        .map(|r| r.event.unwrap().track_id.0)
        .collect();
    let sent: Vec<String> = (4..10).map(|i| format!("track-{i}")).collect();
    assert_eq!(
        ids, sent,
        "the records after the damage are the ones written there"
    );
}

#[tokio::test]
async fn records_are_read_in_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = LocalLog::open_with_segment_size(dir.path(), 2_000).unwrap();
    let mut sent = Vec::new();
    for i in 0..60 {
        let e = event(i);
        sent.push(e.event_id.clone());
        log.send(e).durable().await.unwrap();
    }
    let segments = common::segment_count(dir.path());
    assert!(segments > 3, "{segments} segments");
    let all: Vec<String> = common::logged_events(&log)
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(all, sent);
    let tail: Vec<u64> = log
        .read(37, 5)
        .unwrap()
        .into_iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(tail, [37, 38, 39, 40, 41]);
    drop(log);
    let reopened = LocalLog::open_with_segment_size(dir.path(), 2_000).unwrap();
    assert_eq!(reopened.end(), 60);
}

#[tokio::test]
async fn the_local_log_keeps_the_sink_contract() {
    let dir = tempfile::tempdir().unwrap();
    let log = LocalLog::open(dir.path()).unwrap();
    common::contract::sink_keeps_what_it_acknowledged(&log, async || common::logged_events(&log))
        .await;
}

#[tokio::test]
async fn the_observed_sink_keeps_the_sink_contract() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(LocalLog::open(dir.path()).unwrap());
    let quality = std::sync::Arc::new(encore::feedback::Quality::new([]));
    let observed = encore::feedback::ObservedSink::new(log.clone(), quality);
    common::contract::sink_keeps_what_it_acknowledged(&observed, async || {
        common::logged_events(&log)
    })
    .await;
}

#[tokio::test]
async fn a_zero_filled_tail_is_torn_not_records() {
    // A crash can leave a segment extended with zeros (the size was made durable, the data
    // was not). Zeros read as an empty record with a matching checksum; they are not events.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = LocalLog::open(dir.path()).unwrap();
        for i in 0..3 {
            log.send(event(i)).durable().await.unwrap();
        }
    }
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap()
        .write_all(&[0u8; 4096])
        .unwrap();
    let log = LocalLog::open(dir.path()).unwrap();
    assert_eq!(log.end(), 3, "the zeros are not records");
    log.send(event(3)).durable().await.unwrap();
    let records = log.read(0, 100).unwrap();
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r.event.is_ok()), "{records:?}");
}
