//! The feedback consumer folds the local log into profiles exactly once per event, on the
//! embedded store and on DynamoDB (the local server): a restart mid-stream, records replayed
//! after a crash before the checkpoint, duplicated records and a malformed record leave every
//! counter equal to the number of distinct events. And the whole loop on the embedded default:
//! play -> event -> profile -> next pick.

use crate::common;

use common::{TestServer, fetcher, fixture, pki, post_signed, verifier};
use encore::domain::{Source, TrackId};
use encore::feedback::{
    EventContext, EventKind, FeedbackEvent, FeedbackSink, LOCAL_SHARD, LOCAL_STREAM, LocalConsumer,
    LocalLog,
};
use encore::recommend::{Catalog, CatalogRecommender, Recommender};
use encore::store::{EmbeddedStore, ProfileStore};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

fn catalog() -> Arc<dyn Recommender> {
    Arc::new(CatalogRecommender::new(Arc::new(
        Catalog::load(&common::repo().join("models")).unwrap(),
    )))
}

/// Per listener: 10 plays started, 4 finished, 3 skipped, 2 likes, 1 dislike.
const SCRIPT: [(EventKind, usize); 5] = [
    (EventKind::PlayStarted, 10),
    (EventKind::PlayFinished, 4),
    (EventKind::Skipped, 3),
    (EventKind::Liked, 2),
    (EventKind::Disliked, 1),
];
const USERS: usize = 3;

fn events(tracks: &[TrackId]) -> Vec<FeedbackEvent> {
    let mut out = Vec::new();
    for u in 0..USERS {
        for (kind, count) in SCRIPT {
            for i in 0..count {
                let track = &tracks[(u * 31 + i) % tracks.len()];
                out.push(FeedbackEvent::new(
                    &format!("user{u}"),
                    "d",
                    track,
                    kind,
                    40_000,
                    EventContext::default(),
                    Source::Alexa,
                ));
            }
        }
    }
    out
}

/// A record with a good checksum whose payload is not an event.
fn append_malformed(dir: &Path) {
    let segment = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .unwrap();
    let payload = b"{\"schema_version\": 1, \"this is\": not json";
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(segment)
        .unwrap();
    file.write_all(&(payload.len() as u32).to_le_bytes())
        .unwrap();
    file.write_all(&crc32fast::hash(payload).to_le_bytes())
        .unwrap();
    file.write_all(payload).unwrap();
}

async fn exactly_once(store: Arc<dyn ProfileStore>) {
    let dir = tempfile::tempdir().unwrap();
    let recommender = catalog();
    let tracks: Vec<TrackId> = (0..40)
        .map(|i| {
            let sel =
                encore::domain::Selection::Genre(["jazz", "rock", "pop", "folk"][i % 4].into());
            futures_first(&recommender, &sel, i / 4)
        })
        .collect();
    let all = events(&tracks);
    let distinct = all.len();
    {
        let log = LocalLog::open(dir.path()).unwrap();
        for e in &all[..distinct / 2] {
            log.send(e.clone()).durable().await.unwrap();
        }
    }
    append_malformed(dir.path());
    let log = Arc::new(LocalLog::open(dir.path()).unwrap());
    for e in &all[distinct / 2..] {
        log.send(e.clone()).durable().await.unwrap();
    }
    // The stream delivers some records twice.
    for e in all.iter().step_by(4) {
        log.send(e.clone()).durable().await.unwrap();
    }

    let first = LocalConsumer::new(log.clone(), store.clone(), recommender.clone()).with_batch(7);
    let mut seen = encore::feedback::Progress::default();
    for _ in 0..4 {
        let p = first.pass().await.unwrap();
        seen.applied += p.applied;
        seen.duplicates += p.duplicates;
        seen.malformed += p.malformed;
    }
    // A crash after applying, before checkpointing: the next consumer starts 10 records back.
    let at = first.position().await.unwrap();
    store
        .put_checkpoint(LOCAL_STREAM, LOCAL_SHARD, &(at - 10).to_string())
        .await
        .unwrap();
    drop(first);

    let restarted = LocalConsumer::new(log.clone(), store.clone(), recommender).with_batch(50);
    loop {
        let p = restarted.pass().await.unwrap();
        seen.applied += p.applied;
        seen.duplicates += p.duplicates;
        seen.malformed += p.malformed;
        if p == encore::feedback::Progress::default() {
            break;
        }
    }
    assert_eq!(
        seen.applied as usize, distinct,
        "each distinct event applied once"
    );
    assert_eq!(
        seen.duplicates as usize,
        all.iter().step_by(4).count() + 10,
        "the duplicates and the replayed records"
    );
    assert!(
        seen.malformed >= 1,
        "the malformed record was skipped, not fatal"
    );
    assert_eq!(restarted.position().await.unwrap(), log.end());
    for u in 0..USERS {
        let p = store.profile(&format!("user{u}")).await.unwrap().unwrap();
        assert_eq!(
            (p.plays, p.finishes, p.skips, p.likes, p.dislikes),
            (10, 4, 3, 2, 1),
            "user{u}"
        );
        assert_eq!(p.recent.len(), 10);
        assert!(
            !p.genres.is_empty() && !p.artists.is_empty(),
            "affinities follow the events"
        );
        let outcomes: u32 = p.bandit.values().map(|o| o.finished + o.skipped).sum();
        assert_eq!(outcomes, 7, "bandit counters: 4 finished + 3 skipped");
    }
}

/// The first track of `selection` at `index` in popularity order (a real catalog track).
fn futures_first(
    recommender: &Arc<dyn Recommender>,
    selection: &encore::domain::Selection,
    index: usize,
) -> TrackId {
    let rt = tokio::runtime::Handle::current();
    let r = recommender.clone();
    let sel = selection.clone();
    std::thread::spawn(move || {
        rt.block_on(async move {
            let rec = r
                .recommend(encore::recommend::RecommendRequest {
                    user_id: "anyone",
                    selection: &sel,
                    profile: None,
                    exclude: &[],
                    limit: 25,
                })
                .await
                .unwrap();
            rec.tracks[index % rec.tracks.len()].id.clone()
        })
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_counts_once_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    exactly_once(Arc::new(EmbeddedStore::open(dir.path()).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_counts_once_on_dynamodb() {
    let dir = tempfile::tempdir().unwrap();
    let storage = common::dynamo_storage(dir.path(), "consumer");
    encore::cli::init::run(&storage).await.unwrap();
    exactly_once(encore::app::open_store(&storage).await.unwrap()).await;
}

#[tokio::test]
async fn the_whole_loop_play_event_profile_next_pick() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), Some(verifier(fetcher()))).await;
    let client = reqwest::Client::new();
    let post = |name: &'static str, token: String| {
        let (client, server) = (&client, &server);
        async move {
            let r = post_signed(client, server, &fixture(name, &token), &pki().good, "good").await;
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let first = post("play_mood_er", String::new()).await;
    let stream = &first["response"]["directives"][0]["audioItem"]["stream"];
    let (token, first_url) = (
        stream["token"].as_str().unwrap().to_owned(),
        stream["url"].as_str().unwrap().to_owned(),
    );
    post("playback_started", token).await;
    // The in-process consumer folds the play into the profile within moments...
    let store_dir = dir.path().to_owned();
    let mut recorded = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let again = post("play_mood_er", String::new()).await;
        let url = again["response"]["directives"][0]["audioItem"]["stream"]["url"]
            .as_str()
            .unwrap()
            .to_owned();
        // ...and the next pick leaves the track just played out.
        if url != first_url {
            recorded = true;
            break;
        }
    }
    assert!(recorded, "the play never reached the next pick");
    server.stop().await;
    let store = EmbeddedStore::open(&store_dir).unwrap();
    let user = fixture("launch", "")["context"]["System"]["user"]["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let profile = store.profile(&user).await.unwrap().unwrap();
    assert_eq!(profile.plays, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_with_their_own_logs_on_one_table_keep_their_own_checkpoints() {
    // Two servers on one DynamoDB table, each with --feedback local: two logs, one store.
    let tracks: Vec<TrackId> = Catalog::load(&common::repo().join("models"))
        .unwrap()
        .tracks()
        .iter()
        .take(10)
        .map(|t| t.id.clone())
        .collect();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let plays = [6u64, 4];
    let mut instances = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let storage = common::dynamo_storage(dir.path(), "two-logs");
        if i == 0 {
            encore::cli::init::run(&storage).await.unwrap();
        }
        instances.push(encore::app::Components::load(&storage).await.unwrap());
    }
    for (i, parts) in instances.iter().enumerate() {
        for track in tracks.iter().take(plays[i] as usize) {
            let e = FeedbackEvent::new(
                &format!("two-logs-listener-{i}"),
                "d",
                track,
                EventKind::PlayFinished,
                200_000,
                EventContext::default(),
                Source::Alexa,
            );
            parts.feedback.send(e).durable().await.unwrap();
        }
    }
    // The first instance folds its log first; the second then folds its own.
    for parts in &instances {
        let consumer = parts.consumer();
        while consumer.pass().await.unwrap().applied > 0 {}
    }
    for (i, parts) in instances.iter().enumerate() {
        let profile = parts
            .store
            .profile(&format!("two-logs-listener-{i}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("listener {i}'s plays were never folded in"));
        assert_eq!(profile.finishes, plays[i], "instance {i}");
    }
}

#[tokio::test]
async fn events_with_huge_contexts_keep_a_profile_within_its_stored_size() {
    // The events reach the log unchecked, as records from another producer would: each
    // finished play names a new 200 KB genre and a 256-character track id. Before, three of
    // them pushed a profile past DynamoDB's 400 KB item limit, and 190 made the embedded
    // store 227 MB.
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ProfileStore> =
        Arc::new(EmbeddedStore::open(&dir.path().join("store")).unwrap());
    let log = Arc::new(LocalLog::open(&dir.path().join("log")).unwrap());
    let huge = "g".repeat(200 * 1024);
    for i in 0..60 {
        let context = EventContext {
            genre: Some(format!("{i}{huge}")),
            ..EventContext::default()
        };
        let track = TrackId(format!("{i:0>256}"));
        for kind in [
            EventKind::PlayStarted,
            EventKind::PlayFinished,
            EventKind::Liked,
        ] {
            let event = FeedbackEvent::new(
                "hoarder",
                "d",
                &track,
                kind,
                200_000,
                context.clone(),
                Source::Mobile,
            );
            log.send(event).durable().await.unwrap();
        }
    }
    let consumer = LocalConsumer::new(log, store.clone(), catalog()).with_batch(50);
    let mut applied = 0;
    loop {
        let p = consumer.pass().await.unwrap();
        applied += p.applied;
        if p == encore::feedback::Progress::default() {
            break;
        }
    }
    assert_eq!(applied, 180, "every event is applied");
    let profile = store.profile("hoarder").await.unwrap().unwrap();
    assert_eq!((profile.finishes, profile.likes), (60, 60));
    let stored = serde_json::to_vec(&profile).unwrap().len();
    assert!(
        stored <= encore::domain::STORED_LIMIT_BYTES,
        "the profile weighs {stored} bytes"
    );
}

#[tokio::test]
async fn a_record_the_store_refuses_is_set_aside_and_the_records_after_it_go_on() {
    use encore::cli::dead_letters::{DeadLettersCommand, ListArgs, ReplayArgs, run};
    let dir = tempfile::tempdir().unwrap();
    let storage = common::dynamo_storage(dir.path(), "poison");
    let dynamo = encore::store::DynamoStore::connect(&encore::app::dynamo_settings(&storage)).await;
    dynamo.init().await.unwrap();
    let store: Arc<dyn ProfileStore> = Arc::new(dynamo);
    let log = Arc::new(LocalLog::open(&dir.path().join("log")).unwrap());
    let track = Catalog::load(&common::repo().join("models"))
        .unwrap()
        .tracks()[0]
        .id
        .clone();
    // A user id past DynamoDB's 2,048-byte key limit: the store refuses its event every
    // time. Before, the pass failed on it again and again, and nothing after it was folded.
    let poison_user = "p".repeat(3000);
    for user in ["before", poison_user.as_str(), "after"] {
        let event = FeedbackEvent::new(
            user,
            "d",
            &track,
            EventKind::Liked,
            0,
            EventContext::default(),
            Source::Mobile,
        );
        log.send(event).durable().await.unwrap();
    }
    let consumer = LocalConsumer::new(log, store.clone(), catalog());
    let mut total = encore::feedback::Progress::default();
    for _ in 0..3 {
        let p = consumer
            .pass()
            .await
            .unwrap_or_else(|e| panic!("the pass stopped at the refused record: {e}"));
        total.applied += p.applied;
        total.set_aside += p.set_aside;
    }
    assert_eq!((total.applied, total.set_aside), (2, 1));
    for user in ["before", "after"] {
        let profile = store.profile(user).await.unwrap().unwrap();
        assert_eq!(profile.liked, vec![track.clone()], "{user}");
    }
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let record: FeedbackEvent =
        serde_json::from_str(letters[0].record.as_deref().unwrap()).unwrap();
    assert_eq!(record.user_id, poison_user);
    assert!(
        letters[0].reason.contains("refused"),
        "{}",
        letters[0].reason
    );
    // The operator's view, and a replay that cannot succeed yet: the letter stays.
    let listed = run(&DeadLettersCommand::List(ListArgs {
        storage: storage.clone(),
        limit: 10,
        json: false,
    }))
    .await
    .unwrap();
    assert!(listed.contains(&letters[0].id), "{listed}");
    assert!(listed.ends_with("1 dead letter(s)"), "{listed}");
    let replayed = run(&DeadLettersCommand::Replay(ReplayArgs {
        storage,
        id: None,
        limit: 10,
    }))
    .await
    .unwrap();
    assert!(
        replayed.contains("0 dead letter(s) into profiles; 1 still refused"),
        "{replayed}"
    );
    assert_eq!(store.dead_letters(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_dead_letter_replays_into_its_profile_once_and_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ProfileStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let track = Catalog::load(&common::repo().join("models"))
        .unwrap()
        .tracks()[0]
        .id
        .clone();
    let event = FeedbackEvent::new(
        "patient",
        "d",
        &track,
        EventKind::Liked,
        0,
        EventContext::default(),
        Source::Mobile,
    );
    let letter = encore::store::DeadLetter::new(
        "local-log/0/7".into(),
        &serde_json::to_vec(&event).unwrap(),
        "the store refused it".into(),
    );
    store.put_dead_letter(&letter).await.unwrap();
    let catalog: Arc<dyn encore::domain::TrackLookup> = catalog();
    let replayed = encore::feedback::replay(&store, &catalog, &letter)
        .await
        .unwrap();
    assert_eq!(replayed, encore::feedback::Replayed::Applied);
    assert!(store.dead_letters(10).await.unwrap().is_empty());
    // Replayed twice (a letter set aside again by a consumer that restarted): counted once.
    encore::feedback::replay(&store, &catalog, &letter)
        .await
        .unwrap();
    let profile = store.profile("patient").await.unwrap().unwrap();
    assert_eq!((profile.likes, profile.liked.len()), (1, 1));
}

/// A store and a log of small segments in `dir` holding `events(..)`'s 60 events.
async fn small_segments(dir: &Path) -> (Arc<dyn ProfileStore>, Arc<LocalLog>) {
    let store: Arc<dyn ProfileStore> = Arc::new(EmbeddedStore::open(&dir.join("store")).unwrap());
    let log = Arc::new(LocalLog::open_with_segment_size(&dir.join("log"), 2_000).unwrap());
    let tracks: Vec<TrackId> = (0..20).map(|i| TrackId(format!("t{i}"))).collect();
    for e in events(&tracks) {
        log.send(e).durable().await.unwrap();
    }
    (store, log)
}

#[tokio::test]
async fn the_local_log_is_trimmed_once_folded_and_past_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = small_segments(dir.path()).await;
    let logdir = dir.path().join("log");
    let before = common::segment_count(&logdir);
    assert!(before > 5, "{before} segments");

    // Folded half way: only the segments wholly before the checkpoint are deleted.
    let consumer = LocalConsumer::new(log.clone(), store.clone(), catalog())
        .with_retention(std::time::Duration::ZERO)
        .with_batch(30);
    consumer.pass().await.unwrap();
    let after_half = common::segment_count(&logdir);
    assert!(
        after_half < before && after_half > 1,
        "{before} -> {after_half}"
    );
    let left: Vec<u64> = log.read(0, 100).unwrap().iter().map(|r| r.offset).collect();
    assert!(left[0] > 0 && left[0] <= 30, "kept from record {}", left[0]);
    assert_eq!(left.last(), Some(&59), "nothing unfolded is deleted");

    // Folded to the end: only the segment being written is left, and numbering goes on.
    while consumer.pass().await.unwrap() != encore::feedback::Progress::default() {}
    assert_eq!(common::segment_count(&logdir), 1);
    drop(consumer);
    drop(log);
    let reopened = LocalLog::open_with_segment_size(&logdir, 2_000).unwrap();
    assert_eq!(reopened.end(), 60);
}

#[tokio::test]
async fn folded_segments_inside_the_retention_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = small_segments(dir.path()).await;
    let before = common::segment_count(&dir.path().join("log"));
    let consumer = LocalConsumer::new(log.clone(), store, catalog())
        .with_retention(std::time::Duration::from_secs(3600));
    while consumer.pass().await.unwrap() != encore::feedback::Progress::default() {}
    assert_eq!(common::segment_count(&dir.path().join("log")), before);
    assert_eq!(log.read(0, 100).unwrap().len(), 60, "all still readable");
}
