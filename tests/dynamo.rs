//! The DynamoDB store against the local DynamoDB-compatible server the test command starts:
//! the store contract, TTLs, optimistic locking under two writers, timeouts against a server
//! that never answers, the voice path with the store slow or down, `encore init`, and the
//! profile cache.

use crate::common;

use async_trait::async_trait;
use common::contract;
use encore::app::{Components, dynamo_settings};
use encore::cli::init::run as init;
use encore::domain::{
    Listener, Mood, Playlist, Profile, Queue, QueueKey, Selection, Source, TrackId,
};
use encore::service::{Command, Playback, PlayerState, Reply};
use encore::store::{Applied, DynamoStore, ProfileChange, ProfileStore, QUEUE_TTL, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fresh table on the local server. Each contract test runs on it bare and behind the
/// profile cache (`cached`), as the server uses it.
async fn store(name: &str) -> DynamoStore {
    let dir = std::env::temp_dir();
    let storage = common::dynamo_storage(&dir, name);
    let store = DynamoStore::connect(&dynamo_settings(&storage)).await;
    store.init().await.unwrap();
    store
}

#[tokio::test]
async fn every_item_type_round_trips() {
    contract::round_trips(&store("roundtrip").await).await;
    contract::round_trips(&cached("c-roundtrip").await).await;
}

#[tokio::test]
async fn an_erased_listener_stays_erased() {
    contract::erasure_wins_over_what_happened_before_it(&store("erased").await).await;
    contract::erasure_wins_over_what_happened_before_it(&cached("c-erased").await).await;
}

#[tokio::test]
async fn dead_letters_are_kept_listed_and_deleted() {
    contract::dead_letters_are_kept_listed_and_deleted(&store("letters").await).await;
    contract::dead_letters_are_kept_listed_and_deleted(&cached("c-letters").await).await;
}

#[tokio::test]
async fn erasing_a_listener_removes_all_of_theirs_and_nothing_else() {
    contract::erasure_is_complete_and_contained(&store("erase").await).await;
    contract::erasure_is_complete_and_contained(&cached("c-erase").await).await;
}

#[tokio::test]
async fn event_ids_are_deduplicated_per_listener() {
    contract::event_ids_are_deduplicated_per_listener(&store("dedup").await).await;
    contract::event_ids_are_deduplicated_per_listener(&cached("c-dedup").await).await;
}

#[tokio::test]
async fn ids_that_look_like_key_prefixes_stay_apart() {
    contract::ids_that_look_like_key_prefixes_stay_apart(&store("prefix").await).await;
    contract::ids_that_look_like_key_prefixes_stay_apart(&cached("c-prefix").await).await;
}

#[tokio::test]
async fn a_write_from_a_stale_read_is_refused() {
    contract::stale_writes_conflict(&store("stale").await).await;
    contract::stale_writes_conflict(&cached("c-stale").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_writers_lose_no_update() {
    contract::two_writers_lose_nothing(Arc::new(store("writers").await), 15).await;
    contract::two_writers_lose_nothing(Arc::new(cached("c-writers").await), 15).await;
}

#[tokio::test]
async fn queues_carry_a_ttl_thirty_days_out() {
    let store = store("ttl").await;
    let key = QueueKey {
        user_id: "u".into(),
        device_id: "d".into(),
    };
    let q = Queue::new(
        Selection::Mood(Mood::Sleep),
        "r".into(),
        "m".into(),
        vec![TrackId("t".into())],
    );
    store.put_queue(&key, &q).await.unwrap();
    let expires = store
        .queue_expiry(&key)
        .await
        .unwrap()
        .expect("a TTL attribute");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expected = now + QUEUE_TTL.as_secs() as i64;
    assert!(
        (expires - expected).abs() < 60,
        "expires_at {expires}, expected about {expected}"
    );
}

#[tokio::test]
async fn init_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let storage = common::dynamo_storage(dir.path(), "init");
    let first = init(&storage).await.unwrap();
    let second = init(&storage).await.unwrap();
    assert!(first.starts_with("created table"), "{first}");
    assert!(second.starts_with("already there"), "{second}");
}

/// A TCP server that accepts connections and never answers.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_typed_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = common::dynamo_storage(dir.path(), "silent");
    storage.aws_endpoint = Some(silent_server().await);
    storage.store_timeout = std::time::Duration::from_millis(600);
    let store = DynamoStore::connect(&dynamo_settings(&storage)).await;
    let started = Instant::now();
    let err = store.profile("u").await.unwrap_err();
    assert!(matches!(err, StoreError::Timeout), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let err = store.put_profile(&Profile::new("u")).await.unwrap_err();
    assert!(matches!(err, StoreError::Timeout), "{err:?}");
}

fn listener() -> Listener {
    Listener {
        user_id: "u1".into(),
        account_id: None,
        device_id: "d1".into(),
        locale: "en-US".into(),
        source: Source::Alexa,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_music_still_plays_within_budget_and_the_rest_apologises() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let mut storage = common::dynamo_storage(dir.path(), "down");
    storage.aws_endpoint = Some(silent_server().await);
    let parts = Components::load(&storage).await.unwrap();
    let started = Instant::now();
    let play = Command::Play(Selection::Mood(Mood::Relaxing));
    let out = metrics::with_local_recorder(&recorder, || {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(parts.service.handle(
                &listener(),
                &PlayerState::default(),
                play,
            ))
        })
    });
    let took = started.elapsed();
    assert!(
        matches!(out.playback, Some(Playback::Play { .. })),
        "a cold listener still gets music: {out:?}"
    );
    assert!(
        matches!(out.reply, Some(Reply::Playing { .. })),
        "and hears nothing alarming"
    );
    // The profile read and the queue write each give up after the 150 ms budget.
    assert!(took < Duration::from_millis(600), "answered after {took:?}");
    let counted: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "encore_store_errors_total")
        .map(|(.., value)| match value {
            metrics_util::debugging::DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum();
    assert!(counted >= 1, "the failure is counted");
    for command in [Command::Resume, Command::Like, Command::WhatIsPlaying] {
        let started = Instant::now();
        let out = parts
            .service
            .handle(&listener(), &PlayerState::default(), command.clone())
            .await;
        assert_eq!(out.reply, Some(Reply::Trouble), "{command:?}");
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "{command:?} took {:?}",
            started.elapsed()
        );
    }
}

/// The real store seen through a probe that counts profile reads and can slow them down
/// (slowness is the one thing the local server cannot produce on demand).
struct Probe {
    inner: DynamoStore,
    read_delay: Duration,
    reads: std::sync::atomic::AtomicUsize,
}

impl Probe {
    fn new(inner: DynamoStore, read_delay: Duration) -> Self {
        Probe {
            inner,
            read_delay,
            reads: Default::default(),
        }
    }

    fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl ProfileStore for Probe {
    async fn profile(&self, user_id: &str) -> Result<Option<Profile>, StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(self.read_delay).await;
        self.inner.profile(user_id).await
    }
    async fn put_profile(&self, profile: &Profile) -> Result<u64, StoreError> {
        self.inner.put_profile(profile).await
    }
    async fn queue(&self, key: &QueueKey) -> Result<Option<Queue>, StoreError> {
        self.inner.queue(key).await
    }
    async fn put_queue(&self, key: &QueueKey, queue: &Queue) -> Result<(), StoreError> {
        self.inner.put_queue(key, queue).await
    }
    async fn delete_queue(&self, key: &QueueKey) -> Result<(), StoreError> {
        self.inner.delete_queue(key).await
    }
    async fn playlist(&self, user: &str, id: &str) -> Result<Option<Playlist>, StoreError> {
        self.inner.playlist(user, id).await
    }
    async fn playlists(&self, user: &str) -> Result<Vec<Playlist>, StoreError> {
        self.inner.playlists(user).await
    }
    async fn put_playlist(&self, playlist: &Playlist) -> Result<(), StoreError> {
        self.inner.put_playlist(playlist).await
    }
    async fn erase_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.inner.erase_user(user_id).await
    }
    async fn checkpoint(&self, stream: &str, shard: &str) -> Result<Option<String>, StoreError> {
        self.inner.checkpoint(stream, shard).await
    }
    async fn put_checkpoint(&self, stream: &str, shard: &str, seq: &str) -> Result<(), StoreError> {
        self.inner.put_checkpoint(stream, shard, seq).await
    }
    async fn put_dead_letter(&self, l: &encore::store::DeadLetter) -> Result<(), StoreError> {
        self.inner.put_dead_letter(l).await
    }
    async fn dead_letters(&self, n: usize) -> Result<Vec<encore::store::DeadLetter>, StoreError> {
        self.inner.dead_letters(n).await
    }
    async fn delete_dead_letter(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_dead_letter(id).await
    }
    async fn apply_event(
        &self,
        event_id: &str,
        user_id: &str,
        at: i64,
        change: ProfileChange,
    ) -> Result<Applied, StoreError> {
        self.inner.apply_event(event_id, user_id, at, change).await
    }
}

#[tokio::test]
async fn a_slow_store_serves_the_listener_cold_and_leaves_the_stored_profile_alone() {
    let store = store("slow").await;
    let disliked = TrackId("x".into());
    let saved = encore::store::update_profile(&store, "u1", |p| {
        p.dislike(&disliked);
        p.explicit_allowed = false;
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut storage = common::dynamo_storage(dir.path(), "slow");
    storage.profile_cache_ttl = std::time::Duration::from_millis(0);
    let parts = Components::with_store(
        &storage,
        Arc::new(Probe::new(store.clone(), Duration::from_secs(2))),
    )
    .unwrap();
    let started = Instant::now();
    let out = parts
        .service
        .handle(
            &listener(),
            &PlayerState::default(),
            Command::Play(Selection::Mood(Mood::Party)),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(out.reply, Some(Reply::Playing { .. })));
    assert_eq!(
        store.profile("u1").await.unwrap(),
        Some(saved),
        "the stored profile is untouched"
    );
}

#[tokio::test]
async fn the_profile_cache_saves_reads_and_sees_its_own_writes() {
    let inner = Arc::new(Probe::new(store("cache").await, Duration::ZERO));
    let cached = encore::store::CachedStore::new(inner.clone(), Duration::from_secs(30), 1000);
    for _ in 0..5 {
        cached.profile("u1").await.unwrap();
    }
    assert_eq!(inner.reads(), 1, "one read for five asks");
    let liked = TrackId("t".into());
    encore::store::update_profile(&cached, "u1", |p| p.like(&liked))
        .await
        .unwrap();
    let seen = cached.profile("u1").await.unwrap().unwrap();
    assert_eq!(
        seen.liked,
        vec![liked],
        "the cache holds the instance's own write"
    );
    // A write elsewhere (another instance) makes ours conflict; the retry reads the store.
    let mut elsewhere = inner.inner.profile("u1").await.unwrap().unwrap();
    elsewhere.plays = 99;
    inner.inner.put_profile(&elsewhere).await.unwrap();
    let after = encore::store::update_profile(&cached, "u1", |p| p.explicit_allowed = false)
        .await
        .unwrap();
    assert_eq!(
        (after.plays, after.explicit_allowed),
        (99, false),
        "no update lost across instances"
    );
}

/// An HTTP server that answers every call the way DynamoDB answers when it throttles (the
/// local server never throttles, so this is the one place the case can be made).
async fn throttling_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let url = common::net::fake_http(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate of requests exceeds the allowed throughput."}"#;
        ("400 Bad Request".into(), "application/x-amz-json-1.0".into(), body.as_bytes().to_vec())
    })
    .await;
    (url, calls)
}

#[tokio::test]
async fn throttling_is_retried_then_surfaces_as_a_typed_error() {
    let (endpoint, calls) = throttling_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut storage = common::dynamo_storage(dir.path(), "throttled");
    storage.aws_endpoint = Some(endpoint);
    storage.store_timeout = std::time::Duration::from_millis(3000);
    let store = DynamoStore::connect(&dynamo_settings(&storage)).await;
    let err = store.profile("u").await.unwrap_err();
    assert!(matches!(err, StoreError::Throttled), "{err:?}");
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "the standard retry policy tries three times"
    );
}

/// The store as the server builds it on DynamoDB: behind the in-process profile cache.
async fn cached(name: &str) -> encore::store::CachedStore {
    encore::store::CachedStore::new(Arc::new(store(name).await), Duration::from_secs(30), 1000)
}
