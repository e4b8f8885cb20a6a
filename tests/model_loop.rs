//! The model loop on AWS parts, against the local S3/Kinesis/DynamoDB server (moto): a
//! server serves models from S3, listening makes events that the consumer folds and
//! archives to S3, `encore train` learns from the archive into S3, and the running server
//! serves the new version without a restart; a broken upload is refused while the served
//! version stays; promote and rollback move what is served; a new catalog is served without
//! a restart; a poll costs two conditional reads.
//! (Firehose's own delivery from the stream is not exercised: moto creates a
//! Kinesis-sourced delivery stream but delivers nothing, so the archive here is the one
//! `encore consume --archive` writes, in the same format.)

use crate::common;

use encore::app::{Components, aws_settings};
use encore::aws::AwsSettings;
use encore::domain::{Source, TrackId};
use encore::feedback::{
    Archive, EventContext, EventKind, FeedbackEvent, KinesisStream, read_archive,
};
use encore::objects::{DirStore, Location, ObjectStore, S3Store};
use encore::recommend::model::{ItemFactors, ModelManifest, new_manifest};
use encore::recommend::{Catalog, ModelMirror, ModelSet, promote, publish};
use encore::settings::StorageArgs;
use encore::store::DynamoStore;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn aws() -> AwsSettings {
    AwsSettings::new(Some(common::aws_endpoint()), Duration::from_secs(30))
}

/// A bucket of this test's own, and a store at `prefix` in it.
async fn bucket(name: &str, prefix: &str) -> (String, Arc<S3Store>) {
    let bucket = format!("{name}-{}", std::process::id());
    let store = S3Store::connect(&aws(), &bucket, prefix).await;
    store.ensure_bucket().await.unwrap();
    (bucket, Arc::new(store))
}

/// The demo catalog and its manifest, uploaded as a models location's root.
async fn upload_catalog(store: &dyn ObjectStore) {
    let models = common::repo().join("models");
    for f in ["manifest.json", "catalog.csv"] {
        store.upload(&models.join(f), f).await.unwrap();
    }
}

/// Publishes model `version` over the demo catalog's tracks (8 factors each); `broken`
/// truncates its factors file, as an interrupted upload would.
async fn publish_version(store: &dyn ObjectStore, version: &str, broken: bool) {
    let catalog = Catalog::load(&common::repo().join("models")).unwrap();
    let ids: Vec<String> = catalog.tracks().iter().map(|t| t.id.0.clone()).collect();
    let factors: Vec<f32> = (0..ids.len() * 8)
        .map(|i| ((i * 7919 + version.len()) % 101) as f32 / 101.0 - 0.5)
        .collect();
    let manifest = ModelManifest {
        version: version.into(),
        ..new_manifest("als", 8, ids.len())
    };
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join(version);
    ItemFactors::new(manifest, ids, factors).save(&at).unwrap();
    if broken {
        let file = at.join("item_factors.safetensors");
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    }
    publish(store, &at, version).await.unwrap();
}

/// Waits (at most 60 s) until `models` serves `version`.
async fn served(models: &ModelSet, version: &str) {
    let started = Instant::now();
    while models.current_version().as_deref() != Some(version) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still serving {:?}, not {version}",
            models.current_version()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `encore ARGS` against the local server: whether it succeeded, and its output.
fn encore(args: &[&str]) -> (bool, String) {
    let out = common::encore_command()
        .args(args)
        .args(["--aws-endpoint", &common::aws_endpoint()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn storage_from_s3(data: &Path, models: &str) -> StorageArgs {
    let mut storage = common::kinesis_storage(data, "loop");
    storage.models = models.parse().unwrap();
    storage.model_cache = Some(data.join("model-cache"));
    storage.recommender.model_poll = Duration::from_millis(300);
    // The local server is shared with the whole suite: give its calls room.
    storage.store_timeout = Duration::from_secs(10);
    storage
}

/// What a server on `s3://BUCKET/models` holds: its served models and its text parser.
struct ServerParts {
    models: Arc<ModelSet>,
    model: Arc<encore::interaction::InteractionModel>,
}

/// A bucket of this test's own (named after `name`) with the demo catalog and `version` in
/// `models`, and a server on it (verification off, polling every 300 ms) with its local
/// copy and data in `data`.
async fn serve_from_s3(
    name: &str,
    version: &str,
    data: &Path,
) -> (String, Arc<S3Store>, common::TestServer, ServerParts) {
    let (bucket, store) = bucket(name, "models").await;
    upload_catalog(&*store).await;
    publish_version(&*store, version, false).await;
    let mut storage = common::storage(data);
    storage.aws_endpoint = Some(common::aws_endpoint());
    storage.models = format!("s3://{bucket}/models").parse().unwrap();
    storage.model_cache = Some(data.join("model-cache"));
    storage.recommender.model_poll = Duration::from_millis(300);
    let parts = Components::load(&storage).await.unwrap();
    let held = ServerParts {
        models: parts.models.clone(),
        model: parts.model.clone(),
    };
    let mut args = common::serve_args(true, data);
    args.storage = storage;
    let server = common::TestServer::start_with_parts(&args, parts, None).await;
    (bucket, store, server, held)
}

#[tokio::test]
async fn a_server_follows_promotion_in_s3_and_refuses_a_broken_upload() {
    let data = tempfile::tempdir().unwrap();
    let (bucket, store, server, parts) =
        serve_from_s3("encore-promote", "loop-v1", data.path()).await;
    let models = parts.models.clone();
    // Nothing promoted: the newest upload is served.
    assert_eq!(models.current_version().as_deref(), Some("loop-v1"));
    let answer = alexa(&server, &common::fixture("play_mood_er", "")).await;
    assert_eq!(
        answer["response"]["directives"][0]["type"], "AudioPlayer.Play",
        "{answer}"
    );

    publish_version(&*store, "loop-v2", false).await;
    let (ok, out) = encore(&[
        "model",
        "promote",
        "loop-v2",
        "--models",
        &format!("s3://{bucket}/models"),
    ]);
    assert!(ok, "{out}");
    served(&models, "loop-v2").await;

    // A broken upload, promoted: refused, and the served version stays.
    publish_version(&*store, "loop-v3", true).await;
    promote(&*store, "loop-v3").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(models.current_version().as_deref(), Some("loop-v2"));
    assert!(
        !data.path().join("model-cache/versions/loop-v3").exists(),
        "a refused version is not kept"
    );

    // Promote an older one, then roll back to the one before it.
    let (ok, out) = encore(&[
        "model",
        "promote",
        "loop-v1",
        "--models",
        &format!("s3://{bucket}/models"),
    ]);
    assert!(ok, "{out}");
    served(&models, "loop-v1").await;
    let (ok, out) = encore(&[
        "model",
        "rollback",
        "--models",
        &format!("s3://{bucket}/models"),
    ]);
    assert!(ok && out.contains("rolled back to loop-v3"), "{out}");
    let (ok, out) = encore(&[
        "model",
        "rollback",
        "--models",
        &format!("s3://{bucket}/models"),
    ]);
    assert!(ok && out.contains("rolled back to loop-v2"), "{out}");
    served(&models, "loop-v2").await;
    let (ok, out) = encore(&[
        "model",
        "list",
        "--models",
        &format!("s3://{bucket}/models"),
    ]);
    assert!(
        ok && out.contains("loop-v2") && out.contains("<- served"),
        "{out}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_poll_is_two_conditional_reads_when_nothing_moved() {
    let (name, store) = bucket("encore-poll", "m").await;
    upload_catalog(&*store).await;
    publish_version(&*store, "poll-v1", false).await;
    // A sibling prefix that starts with the same letters is another location.
    let sibling = S3Store::connect(&aws(), &name, "m-old").await;
    publish_version(&sibling, "not-mine", false).await;
    let listed = store.list("", None).await.unwrap();
    assert!(
        listed.iter().all(|o| !o.key.contains("not-mine")),
        "only this location's objects: {listed:?}"
    );
    assert_eq!(
        listed.len(),
        6,
        "manifest, catalog, and poll-v1's four files (model.json, items, factors, ANN index)"
    );
    let cache = tempfile::tempdir().unwrap();
    let mirror = ModelMirror::open(store.clone(), cache.path(), vec![])
        .await
        .unwrap();
    // No pointer: the catalog manifest's conditional read, a read that finds no pointer,
    // and a listing of versions/.
    let before = mirror.requests();
    assert!(!mirror.refresh().await.unwrap());
    assert_eq!(mirror.requests() - before, 3);
    promote(&*store, "poll-v1").await.unwrap();
    mirror.refresh().await.unwrap();
    let before = mirror.requests();
    for _ in 0..5 {
        assert!(!mirror.refresh().await.unwrap());
    }
    assert_eq!(
        mirror.requests() - before,
        10,
        "two conditional reads per poll: the catalog manifest and the pointer"
    );
}

/// A finished play of `track` by `user`, `minutes` ago.
fn finished(user: &str, track: &TrackId) -> FeedbackEvent {
    FeedbackEvent::new(
        user,
        "device",
        track,
        EventKind::PlayFinished,
        180_000,
        EventContext::default(),
        Source::Alexa,
    )
}

#[tokio::test]
async fn listening_is_archived_trained_on_and_served_without_a_restart() {
    let (bucket, models_store) = bucket("encore-loop", "models").await;
    upload_catalog(&*models_store).await;
    publish_version(&*models_store, "loop-start", false).await;
    let data = tempfile::tempdir().unwrap();
    let storage = storage_from_s3(data.path(), &format!("s3://{bucket}/models"));
    DynamoStore::connect(&encore::app::dynamo_settings(&storage))
        .await
        .init()
        .await
        .unwrap();
    KinesisStream::connect(&aws_settings(&storage), &storage.stream)
        .await
        .create()
        .await
        .unwrap();
    let parts = Components::load(&storage).await.unwrap();
    let models = parts.models.clone();
    let sink = parts.feedback.clone();
    let mut args = common::serve_args(true, data.path());
    args.storage = storage.clone();
    let server = common::TestServer::start_with_parts(&args, parts, None).await;
    assert_eq!(models.current_version().as_deref(), Some("loop-start"));

    // A conversation: a mood, the device's reports.
    let http = reqwest::Client::new();
    let alexa = |body: Value| {
        let http = http.clone();
        let url = server.url("/alexa");
        async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap_or_default()
        }
    };
    let played = alexa(common::fixture_as("play_mood_er", "", "loop-listener")).await;
    let token = played["response"]["directives"][0]["audioItem"]["stream"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    alexa(common::fixture_as(
        "playback_started",
        &token,
        "loop-listener",
    ))
    .await;
    alexa(common::fixture_as(
        "playback_finished",
        &token,
        "loop-listener",
    ))
    .await;
    // And the listening of many more listeners, through the same sink: 40 listeners in two
    // taste groups over the catalog's first 40 tracks.
    let catalog = Catalog::load(&common::repo().join("models")).unwrap();
    let tracks: Vec<TrackId> = catalog
        .tracks()
        .iter()
        .take(40)
        .map(|t| t.id.clone())
        .collect();
    let mut sent = 0;
    for u in 0..40 {
        let group = u % 2;
        for t in tracks.iter().skip(group * 20).take(20).step_by(1 + u % 3) {
            let _ = sink.send(finished(&format!("loop-user-{u}"), t));
            sent += 1;
        }
    }
    sink.flush().await.unwrap();

    // The consumer folds the stream and archives each page before checkpointing.
    let archive_at: Location = format!("s3://{bucket}/archive").parse().unwrap();
    let archive_store = archive_at.open(&aws_settings(&storage)).await;
    let consumer_parts = Components::load(&storage_from_s3(
        &data.path().join("consumer"),
        &format!("s3://{bucket}/models"),
    ))
    .await
    .unwrap();
    let consumer = consumer_parts
        .consumer()
        .with_archive(Arc::new(Archive::new(archive_store.clone())));
    // The conversation's start and finish, and what was sent; the spool ships in batches
    // of 500, so the last may reach the stream after a first pass. A pass that fails (the
    // shared local server is slow under the whole suite) keeps its checkpoint and is tried
    // again, as `Consumer::run` does; what it archived before failing may be archived twice.
    let expected = sent + 2;
    let mut archived: Vec<FeedbackEvent> = Vec::new();
    let distinct = |events: &[FeedbackEvent]| {
        events
            .iter()
            .map(|e| (e.user_id.clone(), e.event_id.clone()))
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    let started = Instant::now();
    while distinct(&archived) < expected && started.elapsed() < Duration::from_secs(60) {
        let _ = consumer.pass().await;
        archived.clear();
        read_archive(&*archive_store, None, |e| archived.push(e))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(distinct(&archived), expected, "every event archived");
    let objects = archive_store.list("", None).await.unwrap();
    assert!(
        objects
            .iter()
            .all(|o| o.key.ends_with(".gz") && o.key.split('/').count() == 5),
        "time-partitioned gzip objects: {objects:?}"
    );
    assert!(
        archived
            .iter()
            .any(|e| e.user_id == "loop-listener" && e.kind == EventKind::PlayFinished)
    );
    let twice_already = archived.len() - expected;
    // A page archived twice (a crash between the archive and the checkpoint) counts once.
    Archive::new(archive_store.clone())
        .write(&archived[..10])
        .await
        .unwrap();

    // Train from the archive into S3 and promote; the running server follows.
    let (ok, out) = encore(&[
        "train",
        "--interactions",
        &format!("s3://{bucket}/archive"),
        "--out",
        &format!("s3://{bucket}/models"),
        "--kind",
        "item-knn",
        "--no-metrics",
        "--promote",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("{} duplicates counted once", 10 + twice_already)),
        "{out}"
    );
    let version = out
        .lines()
        .find_map(|l| l.strip_prefix("promoted "))
        .and_then(|l| l.split(':').next())
        .expect("the promoted version")
        .to_owned();
    served(&models, &version).await;

    // Batch lists from the archive with that version, read from S3 too.
    let lists = data.path().join("top.csv");
    let (ok, out) = encore(&[
        "batch-recommend",
        "--interactions",
        &format!("s3://{bucket}/archive"),
        "--model",
        &format!("s3://{bucket}/models/versions/{version}"),
        "--k",
        "5",
        "--out",
        &lists.to_string_lossy(),
    ]);
    assert!(ok, "{out}");
    let rows = std::fs::read_to_string(&lists).unwrap();
    assert!(
        rows.lines().any(|l| l.starts_with("loop-user-1,1,")),
        "a list for a listener of the archive: {rows}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_local_copy_of_the_archive_trains_like_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(&dir.path().join("archive"));
    let catalog = Catalog::load(&common::repo().join("models")).unwrap();
    let tracks: Vec<TrackId> = catalog
        .tracks()
        .iter()
        .take(10)
        .map(|t| t.id.clone())
        .collect();
    let events: Vec<FeedbackEvent> = (0..10)
        .flat_map(|u| {
            tracks
                .iter()
                .take(3 + u % 5)
                .map(move |t| finished(&format!("u{u}"), t))
        })
        .collect();
    Archive::new(Arc::new(store)).write(&events).await.unwrap();
    let out_dir = dir.path().join("models");
    let (ok, out, err) = common::run_encore(&[
        "train",
        "--interactions",
        &dir.path().join("archive").to_string_lossy(),
        "--out",
        &out_dir.to_string_lossy(),
        "--kind",
        "item-knn",
        "--no-metrics",
    ]);
    assert!(ok, "{out}{err}");
    assert!(err.contains(&format!("{} events", events.len())), "{err}");
    assert_eq!(
        std::fs::read_dir(out_dir.join("versions")).unwrap().count(),
        1
    );
}

#[tokio::test]
async fn encore_consume_archives_what_it_folds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let catalog = Catalog::load(&common::repo().join("models")).unwrap();
    let events: Vec<FeedbackEvent> = catalog
        .tracks()
        .iter()
        .take(12)
        .map(|t| finished("archived-listener", &t.id))
        .collect();
    {
        let parts = Components::load(&common::storage(&data)).await.unwrap();
        for e in &events {
            let _ = parts.feedback.send(e.clone());
        }
        parts.feedback.flush().await.unwrap();
        parts.store.flush().await.unwrap();
    }
    let archive = dir.path().join("archive");
    let (ok, out, err) = common::run_encore(&[
        "consume",
        "--once",
        "--data-dir",
        &data.to_string_lossy(),
        "--archive",
        &archive.to_string_lossy(),
    ]);
    assert!(ok && out.contains("applied 12 events"), "{out}{err}");
    let mut ids = Vec::new();
    let read = read_archive(&DirStore::new(&archive), None, |e| ids.push(e.event_id))
        .await
        .unwrap();
    assert_eq!(read.objects, 1, "one page, one object");
    let sent: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(ids, sent, "every folded event, in order");
}

/// `request` posted to the server's `/alexa` (verification is off), and its answer.
async fn alexa(server: &common::TestServer, request: &Value) -> Value {
    reqwest::Client::new()
        .post(server.url("/alexa"))
        .json(request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// What the server answers "play Nova Lumen" with: the first Play directive's track id.
async fn play_nova_lumen(server: &common::TestServer) -> Option<String> {
    let mut request = common::fixture("play_artist", "");
    request["request"]["intent"]["slots"]["artist"]["value"] = "nova lumen".into();
    request["request"]["intent"]["slots"]["artist"]["slotValue"]["value"] = "nova lumen".into();
    let answer = alexa(server, &request).await;
    assert!(
        answer["response"]["outputSpeech"].is_object()
            || answer["response"]["directives"][0].is_object(),
        "the listener hears something: {answer}"
    );
    let url = answer["response"]["directives"][0]["audioItem"]["stream"]["url"].as_str()?;
    Some(url.rsplit('/').next()?.split('.').next()?.to_owned())
}

#[tokio::test]
async fn a_new_catalog_in_s3_is_served_without_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let (_, store, server, parts) = serve_from_s3("encore-catalog", "cat-v1", data.path()).await;
    let (models, parser) = (parts.models.clone(), parts.model.clone());
    let before = models.catalog().manifest.version.clone();
    assert_eq!(
        play_nova_lumen(&server).await,
        None,
        "not in the catalog yet"
    );

    // The catalog job's files, the manifest last (as the runbook says).
    common::import_next_catalog(&data.path().join("models"));
    for f in ["catalog.parquet", "catalog.search", "manifest.json"] {
        store
            .upload(&data.path().join("models").join(f), f)
            .await
            .unwrap();
    }
    let started = Instant::now();
    while models.catalog().manifest.version == before {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still serving catalog {before}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let demo = Catalog::load(&common::repo().join("models")).unwrap().len();
    let catalog = models.catalog();
    assert_eq!(catalog.len(), demo - 1 + 12, "{}", catalog.manifest.version);
    assert!(
        catalog.manifest.search_index.is_some(),
        "the job's search index came along"
    );
    let played = play_nova_lumen(&server).await;
    assert!(
        played.as_deref().is_some_and(|id| id.starts_with("nova")),
        "{played:?}"
    );
    // The served version is matched to the new catalog, and the text parser knows the
    // new artist by the catalog's spelling.
    assert_eq!(models.current_version().as_deref(), Some("cat-v1"));
    assert_eq!(models.assign("someone").model.unwrap().known, demo - 1);
    let parsed = parser.locale("en-US").parse("play nova lumen");
    let artist = parsed.slots.values().find_map(|s| s.id.clone());
    assert_eq!(artist.as_deref(), Some("Nova Lumen"), "{parsed:?}");
    server.stop().await;
}
