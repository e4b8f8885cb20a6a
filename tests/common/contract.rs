//! What every `ProfileStore` must do, run against each backend.

use encore::domain::{Mood, Playlist, Profile, Queue, QueueKey, Selection, TrackId};
use encore::store::{ProfileStore, StoreError, update_profile};
use std::sync::Arc;

fn queue() -> Queue {
    Queue::new(
        Selection::Mood(Mood::Focus),
        "rec".into(),
        "v1".into(),
        vec![TrackId("a".into()), TrackId("b".into())],
    )
}

/// Every item type goes in and comes back out unchanged.
pub async fn round_trips(store: &dyn ProfileStore) {
    assert_eq!(store.profile("u1").await.unwrap(), None);
    let saved = update_profile(store, "u1", |p| p.like(&TrackId("a".into())))
        .await
        .unwrap();
    assert_eq!(saved.version, 1);
    let read = store.profile("u1").await.unwrap().unwrap();
    assert_eq!(read, saved);

    let key = QueueKey {
        user_id: "u1".into(),
        device_id: "d1".into(),
    };
    let q = queue();
    store.put_queue(&key, &q).await.unwrap();
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

    let playlist = |id: &str, user: &str, at: i64| Playlist {
        id: id.into(),
        user_id: user.into(),
        name: format!("list {id}"),
        selection: Some(Selection::Genre("jazz".into())),
        tracks: vec![TrackId("a".into()), TrackId("b".into())],
        created_at: at,
    };
    store.put_playlist(&playlist("p2", "u1", 20)).await.unwrap();
    store.put_playlist(&playlist("p1", "u1", 10)).await.unwrap();
    store.put_playlist(&playlist("p3", "u2", 5)).await.unwrap();
    assert_eq!(
        store.playlist("u1", "p1").await.unwrap(),
        Some(playlist("p1", "u1", 10))
    );
    assert_eq!(
        store.playlist("u2", "p1").await.unwrap(),
        None,
        "a playlist belongs to its owner"
    );
    let mine: Vec<String> = store
        .playlists("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(mine, ["p1", "p2"], "only the owner's, oldest first");

    assert_eq!(store.checkpoint("feedback", "shard-0").await.unwrap(), None);
    store
        .put_checkpoint("feedback", "shard-0", "4960001")
        .await
        .unwrap();
    store
        .put_checkpoint("feedback", "shard-0", "4960002")
        .await
        .unwrap();
    store
        .put_checkpoint("feedback", "shard-1", "17")
        .await
        .unwrap();
    assert_eq!(
        store
            .checkpoint("feedback", "shard-0")
            .await
            .unwrap()
            .as_deref(),
        Some("4960002")
    );
    assert_eq!(store.checkpoint("other", "shard-0").await.unwrap(), None);
}

/// A write from a stale read is refused.
pub async fn stale_writes_conflict(store: &dyn ProfileStore) {
    let first = Profile::new("stale");
    assert_eq!(store.put_profile(&first).await.unwrap(), 1);
    assert!(matches!(
        store.put_profile(&first).await,
        Err(StoreError::Conflict)
    ));
}

/// Two writers updating one profile at once lose no update. A writer that loses every
/// attempt is told so (`Conflict`) and tries again, as the consumer does on its next pass:
/// on a slow server one writer can lose many rounds in a row, and that is not a lost update.
pub async fn two_writers_lose_nothing(store: Arc<dyn ProfileStore>, updates: usize) {
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..updates {
                    let track = TrackId(format!("w{w}-{i}"));
                    let mut calls = 0;
                    loop {
                        calls += 1;
                        match update_profile(store.as_ref(), "shared", |p| p.played(&track)).await {
                            Ok(_) => break,
                            Err(encore::store::StoreError::Conflict) if calls < 10 => {}
                            Err(e) => panic!("update {i} of writer {w}: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let p = store.profile("shared").await.unwrap().unwrap();
    assert_eq!(p.plays, 2 * updates as u64);
    assert_eq!(p.version, 2 * updates as u64);
}

/// Erasing a listener removes their profile, every queue and every playlist, and nothing of
/// anyone else's (including a listener whose id starts with theirs).
pub async fn erasure_is_complete_and_contained(store: &dyn ProfileStore) {
    let users = ["erase-me", "erase-me-not"];
    for user in users {
        update_profile(store, user, |p| p.like(&TrackId("a".into())))
            .await
            .unwrap();
        for device in ["d1", "d2"] {
            let key = QueueKey {
                user_id: user.into(),
                device_id: device.into(),
            };
            store.put_queue(&key, &queue()).await.unwrap();
        }
        for id in ["p1", "p2"] {
            store
                .put_playlist(&Playlist {
                    id: id.into(),
                    user_id: user.into(),
                    name: "n".into(),
                    selection: None,
                    tracks: vec![TrackId("a".into())],
                    created_at: 1,
                })
                .await
                .unwrap();
        }
    }
    store.erase_user("erase-me").await.unwrap();
    store.flush().await.unwrap();
    for (user, kept) in [("erase-me", false), ("erase-me-not", true)] {
        assert_eq!(store.profile(user).await.unwrap().is_some(), kept, "{user}");
        assert_eq!(
            store.playlists(user).await.unwrap().len(),
            if kept { 2 } else { 0 },
            "{user}"
        );
        for device in ["d1", "d2"] {
            let key = QueueKey {
                user_id: user.into(),
                device_id: device.into(),
            };
            assert_eq!(
                store.queue(&key).await.unwrap().is_some(),
                kept,
                "{user} {device}"
            );
        }
    }
    store.erase_user("nobody").await.unwrap();
}

/// What every `FeedbackSink` must do: an event it acknowledged can be read back from where
/// the sink keeps it (at least once: a stream may hold a record twice), whether the caller
/// waited for each acknowledgement or handed many over and flushed; and a flush with nothing
/// pending returns. `read_back` reads what the sink's backend now holds.
pub async fn sink_keeps_what_it_acknowledged(
    sink: &dyn encore::feedback::FeedbackSink,
    read_back: impl AsyncFn() -> Vec<encore::feedback::FeedbackEvent>,
) {
    use encore::domain::Source;
    use encore::feedback::{EventContext, EventKind, FeedbackEvent};
    let events: Vec<FeedbackEvent> = (0..60)
        .map(|i| {
            FeedbackEvent::new(
                &format!("contract-user{}", i % 7),
                "device",
                &TrackId(format!("t{i}")),
                EventKind::PlayFinished,
                200_000,
                EventContext::default(),
                Source::Mobile,
            )
        })
        .collect();
    for e in &events[..20] {
        sink.send(e.clone())
            .durable()
            .await
            .expect("an acknowledgement");
    }
    let deliveries: Vec<_> = events[20..].iter().map(|e| sink.send(e.clone())).collect();
    sink.flush().await.expect("a flush");
    for d in deliveries {
        d.durable().await.expect("an acknowledgement");
    }
    let held: std::collections::HashSet<String> =
        read_back().await.into_iter().map(|e| e.event_id).collect();
    let missing: Vec<&str> = events
        .iter()
        .map(|e| e.event_id.as_str())
        .filter(|id| !held.contains(*id))
        .collect();
    assert!(missing.is_empty(), "acknowledged but not kept: {missing:?}");
    sink.flush().await.expect("a flush with nothing pending");
}

/// Ids are opaque: one that contains another's id and a separator the store might use
/// (`\u{1f}`, `#`, `/`) neither sees nor erases the other's playlists.
pub async fn ids_that_look_like_key_prefixes_stay_apart(store: &dyn ProfileStore) {
    let victim = "victim";
    let attackers = ["victim\u{1f}x", "victim#x", "victim/x", "victim\u{1f}"];
    for user in std::iter::once(victim).chain(attackers) {
        store
            .put_playlist(&Playlist {
                id: "p1".into(),
                user_id: user.into(),
                name: format!("of {user}"),
                selection: None,
                tracks: vec![TrackId("a".into())],
                created_at: 1,
            })
            .await
            .unwrap();
    }
    let mine = store.playlists(victim).await.unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].user_id, victim);
    for attacker in attackers {
        store.erase_user(attacker).await.unwrap();
        let theirs = store.playlists(attacker).await.unwrap();
        assert!(theirs.is_empty(), "{attacker}: {theirs:?}");
    }
    store.flush().await.unwrap();
    let kept = store.playlists(victim).await.unwrap();
    assert_eq!(
        kept.len(),
        1,
        "another id's erasure took the victim's: {kept:?}"
    );
    assert!(store.playlist(victim, "p1").await.unwrap().is_some());
}

/// An event id is the app's or the device's to make, so two listeners may send the same one:
/// each listener's event is applied once, and neither is taken for the other's duplicate.
pub async fn event_ids_are_deduplicated_per_listener(store: &dyn ProfileStore) {
    use encore::store::Applied;
    let like = |t: &str| -> encore::store::ProfileChange {
        let t = TrackId(t.into());
        std::sync::Arc::new(move |p: &mut Profile| p.like(&t))
    };
    assert_eq!(
        store
            .apply_event("shared-id", "first-listener", now_ms(), like("a"))
            .await
            .unwrap(),
        Applied::Now
    );
    assert_eq!(
        store
            .apply_event("shared-id", "second-listener", now_ms(), like("b"))
            .await
            .unwrap(),
        Applied::Now,
        "another listener's event with the same id was dropped as a duplicate"
    );
    assert_eq!(
        store
            .apply_event("shared-id", "first-listener", now_ms(), like("c"))
            .await
            .unwrap(),
        Applied::Already,
        "the same listener's repeat is a duplicate"
    );
    let second = store.profile("second-listener").await.unwrap().unwrap();
    assert_eq!(second.liked, vec![TrackId("b".into())]);
    let first = store.profile("first-listener").await.unwrap().unwrap();
    assert_eq!(first.liked, vec![TrackId("a".into())]);
}

/// Dead letters: kept with their record, listed in id order, replaced by id, deleted.
pub async fn dead_letters_are_kept_listed_and_deleted(store: &dyn ProfileStore) {
    use encore::store::DeadLetter;
    assert!(store.dead_letters(10).await.unwrap().is_empty());
    let second = DeadLetter::new(
        "s/0/00000000000000000002".into(),
        b"{\"b\":2}",
        "why".into(),
    );
    let first = DeadLetter::new(
        "s/0/00000000000000000001".into(),
        b"{\"a\":1}",
        "why".into(),
    );
    let unreadable = DeadLetter::new("s/1/9".into(), &[0xff, 0xfe], "not text".into());
    for letter in [&second, &first, &unreadable] {
        store.put_dead_letter(letter).await.unwrap();
    }
    let again = DeadLetter {
        reason: "still refused".into(),
        ..first.clone()
    };
    store.put_dead_letter(&again).await.unwrap();
    let listed = store.dead_letters(10).await.unwrap();
    assert_eq!(listed, vec![again, second.clone(), unreadable.clone()]);
    assert_eq!(listed[2].record, None);
    assert_eq!(listed[2].bytes, 2);
    assert_eq!(store.dead_letters(1).await.unwrap().len(), 1);
    store.delete_dead_letter(&first.id).await.unwrap();
    assert_eq!(
        store.dead_letters(10).await.unwrap(),
        vec![second, unreadable]
    );
}

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// An erased listener stays erased: events from before the erasure (still in the log, or
/// redelivered) change nothing, a write from a read before it cannot put the profile back,
/// and what the listener does afterwards counts.
pub async fn erasure_wins_over_what_happened_before_it(store: &dyn ProfileStore) {
    use encore::store::{Applied, StoreError};
    let like = |t: &str| -> encore::store::ProfileChange {
        let t = TrackId(t.into());
        std::sync::Arc::new(move |p: &mut Profile| p.like(&t))
    };
    let before = now_ms();
    assert_eq!(
        store
            .apply_event("e1", "leaver", before, like("a"))
            .await
            .unwrap(),
        Applied::Now
    );
    let read_before = store.profile("leaver").await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store.erase_user("leaver").await.unwrap();
    assert_eq!(
        store
            .apply_event("e2", "leaver", before, like("b"))
            .await
            .unwrap(),
        Applied::Erased,
        "an event from before the erasure was folded back in"
    );
    assert_eq!(store.profile("leaver").await.unwrap(), None);
    let mut stale = read_before.clone();
    stale.like(&TrackId("c".into()));
    assert!(
        matches!(store.put_profile(&stale).await, Err(StoreError::Conflict)),
        "a write from a read before the erasure went through"
    );
    assert_eq!(store.profile("leaver").await.unwrap(), None);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(
        store
            .apply_event("e3", "leaver", now_ms(), like("d"))
            .await
            .unwrap(),
        Applied::Now
    );
    let after = store.profile("leaver").await.unwrap().unwrap();
    assert_eq!(
        after.liked,
        vec![TrackId("d".into())],
        "only the new like, on a new profile"
    );
}
