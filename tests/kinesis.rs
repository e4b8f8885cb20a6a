//! Feedback through Kinesis, against the local server the test command starts (moto's, which
//! serves Kinesis and DynamoDB): nothing acknowledged is lost through an outage or a producer
//! killed mid-flight; only refused records are retried (a fake endpoint makes Kinesis refuse
//! some, which the local server never does); the consumer counts each distinct event once
//! through duplicates, a malformed record, a restart and a replay.

use crate::common;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{Shard, ShardIteratorType};
use base64::Engine;
use common::net::{Proxy, fake_http};
use encore::aws::AwsSettings;
use encore::domain::TrackLookup;
use encore::domain::{Source, TrackId};
use encore::feedback::{
    Consumer, EventContext, EventKind, FeedbackEvent, FeedbackSink, KinesisSink, KinesisStream,
};
use encore::recommend::{Catalog, CatalogRecommender};
use encore::store::{EmbeddedStore, ProfileStore};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn event(i: usize) -> FeedbackEvent {
    FeedbackEvent::new(
        &format!("user{}", i % 5),
        "d",
        &TrackId(format!("t{i}")),
        EventKind::PlayStarted,
        0,
        EventContext::default(),
        Source::Alexa,
    )
}

/// Calls through a proxy or a fake time out in 900 ms, so an outage is seen quickly; calls
/// straight to the local server get 10 s, as a loaded CI machine can keep it that long.
fn settings_at(endpoint: &str) -> AwsSettings {
    let timeout = if endpoint == common::aws_endpoint() {
        Duration::from_secs(10)
    } else {
        Duration::from_millis(900)
    };
    AwsSettings::new(Some(endpoint.to_owned()), timeout)
}

/// The SDK's own client, for what the tests check below Encore's stream handle.
async fn client_at(endpoint: &str) -> Client {
    Client::new(&encore::aws::sdk_config(&settings_at(endpoint)).await)
}

/// Encore's handle on `stream` through `endpoint` (the local server or a proxy before it).
async fn stream_at(endpoint: &str, stream: &str) -> KinesisStream {
    KinesisStream::connect(&settings_at(endpoint), stream).await
}

async fn new_stream(name: &str) -> (Client, String) {
    let client = client_at(&common::aws_endpoint()).await;
    let stream = format!("{name}-{}", std::process::id());
    stream_at(&common::aws_endpoint(), &stream)
        .await
        .create()
        .await
        .unwrap();
    (client, stream)
}

/// The stream's shards (open and closed).
async fn shards(client: &Client, stream: &str) -> Vec<Shard> {
    let out = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap();
    out.shards().to_vec()
}

/// An iterator at the start of `shard`.
async fn from_the_start(client: &Client, stream: &str, shard: &str) -> String {
    let it = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    it.shard_iterator().unwrap().to_owned()
}

/// Every event on the stream, read straight from every shard.
async fn read_stream(_client: &Client, stream: &str) -> Vec<FeedbackEvent> {
    let mut out = Vec::new();
    stream_at(&common::aws_endpoint(), stream)
        .await
        .scan(|e| out.push(e))
        .await
        .unwrap();
    out
}

async fn wait_drained(sink: &KinesisSink) {
    for _ in 0..300 {
        if sink.unshipped() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} events never left the spool", sink.unshipped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_produced_during_an_outage_are_all_delivered_after_it() {
    let (direct, stream) = new_stream("outage").await;
    let proxy = Proxy::start(&common::aws_endpoint(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = stream_at(&proxy.url, &stream)
        .await
        .sink(dir.path())
        .unwrap();
    let n = 300;
    let deliveries: Vec<_> = (0..n).map(|i| sink.send(event(i))).collect();
    for d in deliveries {
        d.durable()
            .await
            .expect("acknowledged once spooled, stream or no stream");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.unshipped(),
        n as u64,
        "nothing got through while the stream was unreachable"
    );
    assert!(read_stream(&direct, &stream).await.is_empty());

    proxy.set_up(true);
    wait_drained(&sink).await;
    let ids: HashSet<String> = read_stream(&direct, &stream)
        .await
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        ids.len(),
        n,
        "every event delivered once the stream is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_killed_mid_flight_loses_nothing_it_acknowledged() {
    let (direct, stream) = new_stream("killed").await;
    let proxy = Proxy::start(&common::aws_endpoint(), true).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sent = HashSet::new();
    {
        let sink = stream_at(&proxy.url, &stream)
            .await
            .sink(dir.path())
            .unwrap();
        for i in 0..100 {
            let e = event(i);
            sent.insert(e.event_id.clone());
            sink.send(e).durable().await.unwrap();
        }
        wait_drained(&sink).await;
        proxy.set_up(false);
        for i in 100..250 {
            let e = event(i);
            sent.insert(e.event_id.clone());
            sink.send(e).durable().await.unwrap();
        }
        // Killed: dropped without a flush, with 150 acknowledged events not shipped.
        assert!(sink.unshipped() > 0);
    }
    proxy.set_up(true);
    let restarted = stream_at(&proxy.url, &stream)
        .await
        .sink(dir.path())
        .unwrap();
    wait_drained(&restarted).await;
    let delivered: HashSet<String> = read_stream(&direct, &stream)
        .await
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        delivered, sent,
        "every acknowledged event reached the stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_records_kinesis_refused_are_sent_again() {
    // A fake Kinesis that refuses every third record the first time it sees it.
    let attempts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let batches: Arc<Mutex<Vec<usize>>> = Arc::default();
    let (seen, sizes) = (attempts.clone(), batches.clone());
    let url = fake_http(move |req| {
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let records = body["Records"].as_array().cloned().unwrap_or_default();
        sizes.lock().unwrap().push(records.len());
        let mut failed = 0;
        let results: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                let data = base64::engine::general_purpose::STANDARD.decode(r["Data"].as_str().unwrap()).unwrap();
                let event: FeedbackEvent = serde_json::from_slice(&data).unwrap();
                let n: usize = event.track_id.0.trim_start_matches('t').parse().unwrap();
                let mut seen = seen.lock().unwrap();
                let count = seen.entry(event.event_id).or_default();
                *count += 1;
                if n.is_multiple_of(3) && *count == 1 {
                    failed += 1;
                    serde_json::json!({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"})
                } else {
                    serde_json::json!({"SequenceNumber": "1", "ShardId": "shardId-000000000000"})
                }
            })
            .collect();
        let reply = serde_json::json!({"FailedRecordCount": failed, "Records": results});
        ("200 OK".into(), "application/x-amz-json-1.1".into(), reply.to_string().into_bytes())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sink = stream_at(&url, "fake").await.sink(dir.path()).unwrap();
    let n = 1200;
    for i in 0..n {
        drop(sink.send(event(i)));
    }
    sink.flush().await.unwrap();
    wait_drained(&sink).await;
    let attempts = attempts.lock().unwrap();
    assert_eq!(attempts.len(), n, "every event sent");
    for (id, count) in attempts.iter() {
        assert!(*count <= 2, "{id} sent {count} times");
    }
    let resent = attempts.values().filter(|c| **c == 2).count();
    assert_eq!(
        resent,
        n.div_ceil(3),
        "exactly the refused third was sent again"
    );
    assert!(
        batches.lock().unwrap().iter().all(|b| *b <= 500),
        "batches hold at most 500 records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_counts_each_distinct_event_once() {
    let (direct, stream) = new_stream("consume").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = stream_at(&common::aws_endpoint(), &stream)
        .await
        .sink(&dir.path().join("spool"))
        .unwrap();
    // Handed over without waiting for each acknowledgement (which comes once the stream has
    // the record), so they ship in a few calls.
    let first: Vec<FeedbackEvent> = (0..40).map(event).collect();
    for e in &first {
        drop(sink.send(e.clone()));
    }
    // Duplicated records on the stream, and one that is not an event at all.
    for e in first.iter().step_by(3) {
        drop(sink.send(e.clone()));
    }
    sink.flush().await.unwrap();
    wait_drained(&sink).await;
    direct
        .put_record()
        .stream_name(&stream)
        .partition_key("user0")
        .data(Blob::new(&b"{not an event"[..]))
        .send()
        .await
        .unwrap();

    let store: Arc<dyn ProfileStore> =
        Arc::new(EmbeddedStore::open(&dir.path().join("store")).unwrap());
    let catalog: Arc<dyn TrackLookup> = Arc::new(CatalogRecommender::new(Arc::new(
        Catalog::load(&common::repo().join("models")).unwrap(),
    )));
    let kinesis = stream_at(&common::aws_endpoint(), &stream).await;
    let consumer = || Consumer::Kinesis(kinesis.consumer(store.clone(), catalog.clone()));
    let p = consumer().pass().await.unwrap();
    assert_eq!((p.applied, p.duplicates, p.malformed), (40, 14, 1));

    // More events, then a restarted consumer: it resumes at its checkpoints.
    for i in 40..60 {
        drop(sink.send(event(i)));
    }
    sink.flush().await.unwrap();
    wait_drained(&sink).await;
    let p = consumer().pass().await.unwrap();
    assert_eq!(
        (p.applied, p.duplicates),
        (20, 0),
        "a restart resumes where it stopped"
    );

    // A replay (checkpoints moved back to each shard's first record) changes no counter.
    for shard in shards(&direct, &stream).await {
        let it = from_the_start(&direct, &stream, shard.shard_id()).await;
        let page = direct
            .get_records()
            .shard_iterator(it)
            .limit(1)
            .send()
            .await
            .unwrap();
        if let Some(first) = page.records().first() {
            store
                .put_checkpoint(&stream, shard.shard_id(), first.sequence_number())
                .await
                .unwrap();
        }
    }
    let p = consumer().pass().await.unwrap();
    assert_eq!(p.applied, 0, "a replay applies nothing again");
    assert!(p.duplicates > 0, "the replay did read the stream again");
    for u in 0..5 {
        let profile = store.profile(&format!("user{u}")).await.unwrap().unwrap();
        assert_eq!(
            profile.plays, 12,
            "user{u}: 60 distinct plays over 5 listeners"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_kinesis_then_consume_into_dynamodb() {
    let dir = tempfile::tempdir().unwrap();
    let storage = common::kinesis_storage(dir.path(), "loop");
    encore::cli::init::run(&storage).await.unwrap();
    let server =
        common::TestServer::start_on(storage.clone(), Some(common::verifier(common::fetcher())))
            .await;
    let client = reqwest::Client::new();
    let post = |name: &'static str, token: String| {
        let (client, server) = (&client, &server);
        async move {
            let r = common::post_signed(
                client,
                server,
                &common::fixture(name, &token),
                &common::pki().good,
                "good",
            )
            .await;
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let r = post("play_mood_er", String::new()).await;
    let token = r["response"]["directives"][0]["audioItem"]["stream"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    post("playback_started", token.clone()).await;
    post("playback_finished", token).await;
    // A graceful stop drains the spool to the stream.
    server.stop().await;

    let parts = encore::app::Components::load(&storage).await.unwrap();
    let progress = parts.consumer().pass().await.unwrap();
    assert_eq!(progress.applied, 2, "play_started and play_finished");
    let user = common::fixture("launch", "")["context"]["System"]["user"]["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let profile = parts.store.profile(&user).await.unwrap().unwrap();
    assert_eq!((profile.plays, profile.finishes), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reshard_the_consumer_reads_parents_then_children() {
    let (direct, stream) = new_stream("reshard").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = stream_at(&common::aws_endpoint(), &stream)
        .await
        .sink(&dir.path().join("spool"))
        .unwrap();
    for i in 0..30 {
        sink.send(event(i)).durable().await.unwrap();
    }
    wait_drained(&sink).await;
    let parent = shards(&direct, &stream).await[0].clone();
    let hash_range = parent.hash_key_range().unwrap();
    let start: u128 = hash_range.starting_hash_key().parse().unwrap();
    let end: u128 = hash_range.ending_hash_key().parse().unwrap();
    direct
        .split_shard()
        .stream_name(&stream)
        .shard_to_split(parent.shard_id())
        .new_starting_hash_key((start + (end - start) / 2).to_string())
        .send()
        .await
        .unwrap();
    for _ in 0..50 {
        let summary = direct
            .describe_stream_summary()
            .stream_name(&stream)
            .send()
            .await
            .unwrap();
        if summary
            .stream_description_summary()
            .unwrap()
            .stream_status()
            .as_str()
            == "ACTIVE"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 30..60 {
        sink.send(event(i)).durable().await.unwrap();
    }
    wait_drained(&sink).await;
    assert!(
        shards(&direct, &stream).await.len() >= 3,
        "the parent and its two children"
    );

    let store: Arc<dyn ProfileStore> =
        Arc::new(EmbeddedStore::open(&dir.path().join("store")).unwrap());
    let catalog: Arc<dyn TrackLookup> = Arc::new(CatalogRecommender::new(Arc::new(
        Catalog::load(&common::repo().join("models")).unwrap(),
    )));
    let kinesis = stream_at(&common::aws_endpoint(), &stream).await;
    let consumer = Consumer::Kinesis(kinesis.consumer(store.clone(), catalog));
    let p = consumer.pass().await.unwrap();
    assert_eq!(
        p.applied, 60,
        "every event, from the parent and the children"
    );
    let parent_checkpoint = store.checkpoint(&stream, parent.shard_id()).await.unwrap();
    assert_eq!(
        parent_checkpoint.as_deref(),
        Some("SHARD_END"),
        "the closed parent is read to its end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kinesis_sink_keeps_the_sink_contract() {
    let (direct, stream) = new_stream("contract").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = stream_at(&common::aws_endpoint(), &stream)
        .await
        .sink(dir.path())
        .unwrap();
    // What Kinesis holds once the spool has drained to it.
    common::contract::sink_keeps_what_it_acknowledged(&sink, async || {
        wait_drained(&sink).await;
        read_stream(&direct, &stream).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_too_long_for_a_partition_key_still_ships_and_stalls_no_one() {
    let (direct, stream) = new_stream("longkey").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = stream_at(&common::aws_endpoint(), &stream)
        .await
        .sink(dir.path())
        .unwrap();
    // Before, Kinesis refused every call holding this listener's 300-character key, and
    // the shipper retried it for ever: nobody's events were delivered, across restarts.
    let long_user = "l".repeat(300);
    let mut sent = Vec::new();
    for i in 0..20 {
        let mut e = event(i);
        if i % 4 == 0 {
            e.user_id = long_user.clone();
        }
        sent.push(e.event_id.clone());
        drop(sink.send(e));
    }
    sink.flush().await.unwrap();
    wait_drained(&sink).await;
    let delivered: HashSet<String> = read_stream(&direct, &stream)
        .await
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(delivered, sent.into_iter().collect::<HashSet<_>>());
    // One listener, one key: all of theirs on one shard, in order.
    let key = encore::feedback::partition_key(&long_user);
    assert!(key.chars().count() <= 256, "{key}");
    assert_eq!(key, encore::feedback::partition_key(&long_user));
    let mut keyed = 0;
    for shard in shards(&direct, &stream).await {
        let it = from_the_start(&direct, &stream, shard.shard_id()).await;
        let page = direct
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .unwrap();
        keyed += page
            .records()
            .iter()
            .filter(|r| r.partition_key() == key)
            .count();
    }
    assert_eq!(keyed, 5, "the long id's events carry its hashed key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_makes_kinesis_refuse_the_whole_call_is_found_and_set_aside() {
    // A fake Kinesis that refuses any call holding the track "poison" as invalid (as it
    // does a record over 1 MB): the local server cannot be made to refuse one record so.
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = accepted.clone();
    let url = fake_http(move |req| {
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let events: Vec<FeedbackEvent> = body["Records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(r["Data"].as_str().unwrap())
                    .unwrap();
                serde_json::from_slice(&data).unwrap()
            })
            .collect();
        if events.iter().any(|e| e.track_id.0 == "poison") {
            let error = serde_json::json!({"__type": "InvalidArgumentException", "message": "record too large"});
            return ("400 Bad Request".into(), "application/x-amz-json-1.1".into(), error.to_string().into_bytes());
        }
        let results: Vec<serde_json::Value> = events
            .iter()
            .map(|_| serde_json::json!({"SequenceNumber": "1", "ShardId": "shardId-000000000000"}))
            .collect();
        kept.lock().unwrap().extend(events.into_iter().map(|e| e.event_id));
        let reply = serde_json::json!({"FailedRecordCount": 0, "Records": results});
        ("200 OK".into(), "application/x-amz-json-1.1".into(), reply.to_string().into_bytes())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sink = stream_at(&url, "fake").await.sink(dir.path()).unwrap();
    let mut good = Vec::new();
    for i in 0..300 {
        let mut e = event(i);
        if i == 137 {
            e.track_id = TrackId("poison".into());
        } else {
            good.push(e.event_id.clone());
        }
        drop(sink.send(e));
    }
    sink.flush().await.unwrap();
    // Before, the whole batch was retried for ever and nothing after it shipped.
    wait_drained(&sink).await;
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), good.len(), "each good record accepted once");
    assert_eq!(
        accepted.iter().collect::<HashSet<_>>(),
        good.iter().collect::<HashSet<_>>()
    );
    let set_aside =
        std::fs::read_to_string(dir.path().join(encore::feedback::SET_ASIDE_FILE)).unwrap();
    assert_eq!(set_aside.lines().count(), 1, "{set_aside}");
    assert!(set_aside.contains("poison"), "{set_aside}");
}
