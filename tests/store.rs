//! The embedded store: the store contract, durability across a reopen.

use crate::common;

use common::contract;
use encore::domain::{Mood, Queue, QueueKey, Selection, TrackId};
use encore::store::{EmbeddedStore, ProfileStore};
use std::sync::Arc;

#[tokio::test]
async fn every_item_type_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    contract::round_trips(&EmbeddedStore::open(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn a_write_from_a_stale_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    contract::stale_writes_conflict(&EmbeddedStore::open(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_writers_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    contract::two_writers_lose_nothing(Arc::new(EmbeddedStore::open(dir.path()).unwrap()), 40)
        .await;
}

#[tokio::test]
async fn writes_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = QueueKey {
        user_id: "u1".into(),
        device_id: "d1".into(),
    };
    let q = Queue::new(
        Selection::Mood(Mood::Sad),
        "r".into(),
        "m".into(),
        vec![TrackId("a".into())],
    );
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        encore::store::update_profile(&store, "u1", |p| p.like(&TrackId("a".into())))
            .await
            .unwrap();
        store.put_queue(&key, &q).await.unwrap();
        store.put_checkpoint("s", "0", "42").await.unwrap();
        // Dropped without an explicit flush: the store makes its writes durable on drop.
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(
        store.profile("u1").await.unwrap().unwrap().liked,
        vec![TrackId("a".into())]
    );
    assert_eq!(store.queue(&key).await.unwrap(), Some(q));
    assert_eq!(
        store.checkpoint("s", "0").await.unwrap().as_deref(),
        Some("42")
    );
}

#[tokio::test]
async fn event_ids_are_deduplicated_per_listener() {
    let dir = tempfile::tempdir().unwrap();
    contract::event_ids_are_deduplicated_per_listener(&EmbeddedStore::open(dir.path()).unwrap())
        .await;
}

#[tokio::test]
async fn an_erased_listener_stays_erased() {
    let dir = tempfile::tempdir().unwrap();
    contract::erasure_wins_over_what_happened_before_it(&EmbeddedStore::open(dir.path()).unwrap())
        .await;
}

#[tokio::test]
async fn dead_letters_are_kept_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    contract::dead_letters_are_kept_listed_and_deleted(&EmbeddedStore::open(dir.path()).unwrap())
        .await;
}

#[tokio::test]
async fn ids_that_look_like_key_prefixes_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    contract::ids_that_look_like_key_prefixes_stay_apart(&EmbeddedStore::open(dir.path()).unwrap())
        .await;
}

#[tokio::test]
async fn erasing_a_listener_removes_all_of_theirs_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    contract::erasure_is_complete_and_contained(&EmbeddedStore::open(dir.path()).unwrap()).await;
}
