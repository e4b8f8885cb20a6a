//! The embedded store: round trips, optimistic locking under concurrent writers, durability
//! across a reopen; and the voice path when the store is down.

mod common;

use async_trait::async_trait;
use encore::app::Parts;
use encore::domain::{Listener, Mood, Profile, Queue, QueueKey, Selection, TrackId};
use encore::service::{Command, Playback, PlayerState, Reply};
use encore::store::{EmbeddedStore, ProfileStore, StoreError, update_profile};
use std::sync::Arc;

fn queue() -> Queue {
    Queue::new(
        Selection::Mood(Mood::Focus),
        "rec".into(),
        "v1".into(),
        vec![TrackId("a".into()), TrackId("b".into())],
    )
}

#[tokio::test]
async fn profiles_and_queues_round_trip_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = QueueKey {
        user_id: "u1".into(),
        device_id: "d1".into(),
    };
    let q = queue();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.profile("u1").await.unwrap(), None);
        let saved = update_profile(&store, "u1", |p| p.like(&TrackId("a".into())))
            .await
            .unwrap();
        assert_eq!(saved.version, 1);
        store.put_queue(&key, &q).await.unwrap();
        // Dropped without an explicit flush: the store makes its writes durable on drop.
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let p = store.profile("u1").await.unwrap().unwrap();
    assert_eq!(p.liked, vec![TrackId("a".into())]);
    assert_eq!(p.version, 1);
    assert_eq!(store.queue(&key).await.unwrap(), Some(q));
    let other_device = QueueKey {
        user_id: "u1".into(),
        device_id: "d2".into(),
    };
    assert_eq!(
        store.queue(&other_device).await.unwrap(),
        None,
        "queues are per device"
    );
    store.delete_queue(&key).await.unwrap();
    assert_eq!(store.queue(&key).await.unwrap(), None);
}

#[tokio::test]
async fn a_write_from_a_stale_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let first = Profile::new("u1");
    assert_eq!(store.put_profile(&first).await.unwrap(), 1);
    // Same version again: someone else already wrote version 1.
    assert!(matches!(
        store.put_profile(&first).await,
        Err(StoreError::Conflict)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_writers_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    update_profile(store.as_ref(), "shared", |p| {
                        p.played(&TrackId(format!("w{w}-{i}")))
                    })
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let p = store.profile("shared").await.unwrap().unwrap();
    assert_eq!(p.plays, 80);
    assert_eq!(p.version, 80);
    assert_eq!(p.recent.len(), 80);
}

/// A store that is down: every call fails. (A real embedded file cannot be made to fail on
/// demand, so this is the one place a stand-in is used.)
struct DownStore;

#[async_trait]
impl ProfileStore for DownStore {
    async fn profile(&self, _: &str) -> Result<Option<Profile>, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn put_profile(&self, _: &Profile) -> Result<u64, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn queue(&self, _: &QueueKey) -> Result<Option<Queue>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn put_queue(&self, _: &QueueKey, _: &Queue) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn delete_queue(&self, _: &QueueKey) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
}

#[tokio::test]
async fn with_the_store_down_music_still_plays_and_other_requests_apologise() {
    let dir = tempfile::tempdir().unwrap();
    let parts = Parts::with_store(&common::storage(dir.path()), Arc::new(DownStore)).unwrap();
    let listener = Listener {
        user_id: "u1".into(),
        device_id: "d1".into(),
        locale: "en-US".into(),
    };
    let out = parts
        .service
        .handle(
            &listener,
            &PlayerState::default(),
            Command::Play(Selection::Mood(Mood::Relaxing)),
        )
        .await;
    assert!(
        matches!(out.playback, Some(Playback::Play { .. })),
        "a cold listener still gets music: {out:?}"
    );
    assert!(matches!(out.reply, Some(Reply::Playing { .. })));
    for command in [
        Command::Resume,
        Command::Next,
        Command::Like,
        Command::WhatIsPlaying,
    ] {
        let out = parts
            .service
            .handle(&listener, &PlayerState::default(), command.clone())
            .await;
        assert_eq!(out.reply, Some(Reply::Trouble), "{command:?}");
    }
}
