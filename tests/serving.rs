//! Serving models: versions load at start and hot-reload without a failed request, and so
//! does a new catalog (every version matched to it again); an A/B split assigns listeners to
//! variants and the variant travels into feedback events, the recommendation cache
//! coalesces, counts and forgets, and a remote model endpoint falls back to the catalog
//! behind a circuit breaker.

use crate::common;

use async_trait::async_trait;
use encore::app::Components;
use encore::domain::Profile;
use encore::domain::{
    Listener, Mood, Named, Selection, Source, Track, TrackId, TrackLookup, Wanted,
};
use encore::feedback::LocalLog;
use encore::recommend::model::{ItemFactors, ItemNeighbours, ModelManifest, new_manifest};
use encore::recommend::{
    CachedRecommender, Catalog, CatalogRecommender, Experiment, ModelSet, RankSettings,
    RecommendError, RecommendRequest, Recommendation, Recommender, RemoteRecommender,
    RemoteSettings, VariantSpec, assign_variant,
};
use encore::service::{Command, Playback, PlaybackEvent, PlaybackEventKind, PlayerState};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A models directory with the demo catalog.
fn models_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["manifest.json", "catalog.csv"] {
        std::fs::copy(common::repo().join("models").join(f), dir.path().join(f)).unwrap();
    }
    dir
}

/// Writes model `version` (created at `created_at`) over the catalog's tracks: random
/// 8-dimensional factors.
fn write_version(models: &Path, version: &str, created_at: &str) {
    let catalog = Catalog::load(models).unwrap();
    let ids: Vec<String> = catalog.tracks().iter().map(|t| t.id.0.clone()).collect();
    let factors: Vec<f32> = (0..ids.len() * 8)
        .map(|i| ((i * 7919) % 101) as f32 / 101.0 - 0.5)
        .collect();
    let manifest = ModelManifest {
        version: version.into(),
        created_at: created_at.into(),
        ..new_manifest("als", 8, ids.len())
    };
    ItemFactors::new(manifest, ids, factors)
        .save(&models.join("versions").join(version))
        .unwrap();
}

/// Writes an item-item version over the catalog where `from` recommends each of `to`,
/// strongest first, and nothing else recommends anything.
fn write_item_item_version(models: &Path, version: &str, from: &TrackId, to: &[TrackId]) {
    write_item_item_rows(models, version, &[(from, to)], None);
}

/// Writes an item-item version over the catalog where each `from` of `rows` recommends its
/// `to`, strongest first, with the listener's tracks weighted by `recency_half_life`.
fn write_item_item_rows(
    models: &Path,
    version: &str,
    rows: &[(&TrackId, &[TrackId])],
    recency_half_life: Option<f32>,
) {
    let catalog = Catalog::load(models).unwrap();
    let ids: Vec<String> = catalog.tracks().iter().map(|t| t.id.0.clone()).collect();
    let row = |id: &TrackId| ids.iter().position(|i| *i == id.0).unwrap();
    let mut per_row: Vec<&[TrackId]> = vec![&[]; ids.len()];
    for (from, to) in rows {
        per_row[row(from)] = to;
    }
    let (mut indptr, mut indices, mut weights) = (vec![0usize], Vec::new(), Vec::new());
    for to in per_row {
        for (n, t) in to.iter().enumerate() {
            indices.push(row(t) as u32);
            weights.push(1.0 - 0.1 * n as f32);
        }
        indptr.push(indices.len());
    }
    let mut manifest = ModelManifest {
        version: version.into(),
        ..new_manifest("ease", 0, ids.len())
    };
    manifest.parameters.insert(
        "recency_half_life".into(),
        serde_json::json!(recency_half_life),
    );
    ItemNeighbours::new(manifest, ids, indptr, indices, weights)
        .save(&models.join("versions").join(version))
        .unwrap();
}

fn request<'a>(user: &'a str, selection: &'a Selection) -> RecommendRequest<'a> {
    RecommendRequest {
        user_id: user,
        selection,
        profile: None,
        exclude: &[],
        limit: 10,
    }
}

/// `models.reload()`, off the async threads as the watcher runs it.
async fn reload(models: &Arc<ModelSet>) -> Result<bool, encore::recommend::model::ModelError> {
    let m = models.clone();
    tokio::task::spawn_blocking(move || m.reload())
        .await
        .unwrap()
}

/// The demo catalog with version v1, served from a models directory of its own.
fn serving_v1() -> (
    tempfile::TempDir,
    Arc<Catalog>,
    Arc<ModelSet>,
    Arc<CatalogRecommender>,
) {
    let dir = models_dir();
    write_version(dir.path(), "v1", "2026-01-01T00:00:00Z");
    let catalog = Arc::new(Catalog::load(dir.path()).unwrap());
    let models =
        Arc::new(ModelSet::load(dir.path(), catalog.clone(), Experiment::default()).unwrap());
    let r = Arc::new(CatalogRecommender::with_models(
        models.clone(),
        RankSettings::default(),
    ));
    (dir, catalog, models, r)
}

/// Listeners asking, one for each of `selections`, each asking again as soon as it is
/// answered, until `stop`.
struct Askers {
    stop: Arc<std::sync::atomic::AtomicBool>,
    asking: Vec<tokio::task::JoinHandle<usize>>,
}

fn keep_asking<'a>(
    r: &Arc<CatalogRecommender>,
    selections: impl IntoIterator<Item = &'a Selection>,
) -> Askers {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asking = selections
        .into_iter()
        .enumerate()
        .map(|(i, selection)| {
            let (r, stop, selection) = (r.clone(), stop.clone(), selection.clone());
            tokio::spawn(async move {
                let mut answered = 0;
                while !stop.load(Ordering::Relaxed) {
                    let user = format!("user{i}-{answered}");
                    let rec = r
                        .recommend(request(&user, &selection))
                        .await
                        .expect("every request is answered");
                    assert!(!rec.tracks.is_empty());
                    answered += 1;
                    tokio::task::yield_now().await;
                }
                answered
            })
        })
        .collect();
    Askers { stop, asking }
}

impl Askers {
    /// Stops them; each must have been answered at least once.
    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for a in self.asking {
            assert!(a.await.unwrap() > 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_served_without_a_restart_or_a_failed_request() {
    let (dir, _, models, r) = serving_v1();
    let selection = Selection::Mood(Mood::Happy);
    assert_eq!(
        r.recommend(request("u", &selection))
            .await
            .unwrap()
            .model_version,
        "v1"
    );

    // Listeners keep asking while versions come and go.
    let askers = keep_asking(&r, [&selection; 4]);
    // A half-written version (no manifest yet) is not picked up.
    std::fs::create_dir_all(dir.path().join("versions/v3-partial")).unwrap();
    write_version(dir.path(), "v2", "2026-02-01T00:00:00Z");
    assert!(reload(&models).await.unwrap());
    // A broken newer version fails to load; v2 stays.
    write_version(dir.path(), "v4", "2026-03-01T00:00:00Z");
    std::fs::write(
        dir.path().join("versions/v4/item_factors.safetensors"),
        b"garbage",
    )
    .unwrap();
    assert!(reload(&models).await.is_err());
    tokio::time::sleep(Duration::from_millis(100)).await;
    askers.stop().await;
    assert_eq!(
        r.recommend(request("u", &selection))
            .await
            .unwrap()
            .model_version,
        "v2"
    );
    assert_eq!(r.model_version(), "v2");
}

#[tokio::test]
async fn the_ab_split_follows_the_hash_and_the_variant_travels_into_feedback_events() {
    let dir = models_dir();
    write_version(dir.path(), "v1", "2026-01-01T00:00:00Z");
    write_version(dir.path(), "v2", "2026-02-01T00:00:00Z");
    let data = tempfile::tempdir().unwrap();
    let mut storage = common::storage(data.path());
    storage.models = encore::objects::Location::Dir(dir.path().to_owned());
    storage.recommender.experiment = "ranker-test".into();
    storage.recommender.variants = vec!["old=50@v1".parse().unwrap(), "new=50".parse().unwrap()];
    let variants: Vec<VariantSpec> = storage.recommender.variants.clone();
    let parts = Components::load(&storage).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    for u in 0..40 {
        let user = format!("listener-{u}");
        let expected = assign_variant(&user, "ranker-test", &variants);
        let (variant, version) = [("old", "v1"), ("new", "v2")][expected];
        let listener = Listener {
            user_id: user.clone(),
            account_id: None,
            device_id: "d".into(),
            locale: "en-US".into(),
            source: Source::Alexa,
        };
        let out = parts
            .service
            .handle(
                &listener,
                &PlayerState::default(),
                Command::Play(Selection::Mood(Mood::Sad)),
            )
            .await;
        let Some(Playback::Play { token, .. }) = out.playback else {
            panic!("{user}: no music: {out:?}")
        };
        let finished = Command::Playback(PlaybackEvent {
            kind: PlaybackEventKind::Finished,
            token: token.clone(),
            offset_ms: 200_000,
        });
        let playing = PlayerState {
            token: Some(token),
            offset_ms: 200_000,
            playing: true,
        };
        parts.service.handle(&listener, &playing, finished).await;
        seen.insert((user, variant, version));
    }
    assert!(
        seen.iter().any(|s| s.1 == "old") && seen.iter().any(|s| s.1 == "new"),
        "both arms get listeners"
    );
    parts.feedback.flush().await.unwrap();
    drop(parts);
    let log = LocalLog::open(&data.path().join("feedback")).unwrap();
    let events = common::logged_events(&log);
    assert!(events.len() >= 40);
    for (user, variant, version) in &seen {
        let mine: Vec<_> = events.iter().filter(|e| &e.user_id == user).collect();
        assert!(!mine.is_empty(), "{user}");
        for e in mine {
            assert_eq!(e.context.variant.as_deref(), Some(*variant), "{user}");
            assert_eq!(
                e.context.experiment.as_deref(),
                Some("ranker-test"),
                "{user}"
            );
            assert_eq!(e.context.model_version.as_deref(), Some(*version), "{user}");
            assert!(e.context.recommendation_id.is_some());
        }
    }
}

/// Counts the calls that reach the recommender behind the cache.
struct Counting {
    inner: CatalogRecommender,
    calls: AtomicUsize,
}

#[async_trait]
impl Recommender for Counting {
    async fn recommend(&self, req: RecommendRequest<'_>) -> Result<Recommendation, RecommendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // Long enough for concurrent requests to pile up on the same key.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.inner.recommend(req).await
    }
    fn model_version(&self) -> String {
        self.inner.model_version()
    }
    fn search(&self, named: &Named, limit: usize) -> Vec<(Arc<Track>, f32)> {
        self.inner.search(named, limit)
    }
}

fn cache_counts(
    snapshotter: &metrics_util::debugging::Snapshotter,
) -> std::collections::HashMap<String, u64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "encore_recommend_cache_total")
        .map(|(key, _, _, value)| {
            let label = key.key().labels().next().unwrap().value().to_owned();
            let n = match value {
                metrics_util::debugging::DebugValue::Counter(n) => n,
                _ => 0,
            };
            (label, n)
        })
        .collect()
}

#[test]
fn the_cache_coalesces_counts_and_forgets_a_listener_after_an_opinion() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let catalog = Arc::new(Catalog::load(&common::repo().join("models")).unwrap());
    let counting = Arc::new(Counting {
        inner: CatalogRecommender::new(catalog),
        calls: AtomicUsize::new(0),
    });
    let cache = Arc::new(CachedRecommender::new(
        counting.clone(),
        Duration::from_secs(60),
        1000,
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let selection = Selection::Mood(Mood::Focus);
            let answers = futures_join(&cache, &selection, 10).await;
            assert_eq!(
                counting.calls.load(Ordering::SeqCst),
                1,
                "ten concurrent misses, one computation"
            );
            assert!(
                answers.windows(2).all(|w| w[0] == w[1]),
                "all got the same list"
            );

            // Queued tracks are skipped from the cached list, without recomputing.
            let first = cache.recommend(request("u", &selection)).await.unwrap();
            let queued: Vec<TrackId> = first.tracks.iter().map(|t| t.id.clone()).collect();
            let more = cache
                .recommend(RecommendRequest {
                    exclude: &queued,
                    ..request("u", &selection)
                })
                .await
                .unwrap();
            assert!(more.tracks.iter().all(|t| !queued.contains(&t.id)));
            assert_eq!(more.tracks.len(), 10);
            assert_eq!(counting.calls.load(Ordering::SeqCst), 1);

            // Another listener, another entry; a like forgets only that listener's lists.
            cache.recommend(request("other", &selection)).await.unwrap();
            assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
            cache.forget("u").await;
            cache.recommend(request("u", &selection)).await.unwrap();
            cache.recommend(request("other", &selection)).await.unwrap();
            assert_eq!(
                counting.calls.load(Ordering::SeqCst),
                3,
                "u recomputed, other still cached"
            );
        })
    });
    let counts = cache_counts(&snapshotter);
    assert_eq!(counts.get("miss"), Some(&3), "{counts:?}");
    assert!(counts.get("hit").copied().unwrap_or(0) >= 11, "{counts:?}");
}

async fn futures_join(
    cache: &Arc<CachedRecommender>,
    selection: &Selection,
    n: usize,
) -> Vec<Vec<TrackId>> {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..n {
                let (cache, selection) = (cache.clone(), selection.clone());
                set.spawn_local(async move {
                    let r = cache.recommend(request("u", &selection)).await.unwrap();
                    r.tracks.iter().map(|t| t.id.clone()).collect::<Vec<_>>()
                });
            }
            set.join_all().await
        })
        .await
}

/// A model endpoint on loopback: answers with the given track ids, or hangs, or fails; counts
/// the calls it gets.
async fn model_endpoint(mode: &'static str, tracks: Vec<String>) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/recommend",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let calls = counter.clone();
            let tracks = tracks.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                assert!(body["user_id"].is_string() && body["selection"]["by"].is_string());
                match mode {
                    "hang" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        (axum::http::StatusCode::OK, String::new())
                    }
                    "fail" => (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new()),
                    _ => (
                        axum::http::StatusCode::OK,
                        serde_json::json!({"model_version": "remote-7", "variant": "treatment", "track_ids": tracks}).to_string(),
                    ),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/recommend"), calls)
}

fn remote(url: String, local: Arc<CatalogRecommender>) -> RemoteRecommender {
    RemoteRecommender::new(
        RemoteSettings {
            url,
            timeout: Duration::from_millis(100),
            retries: 1,
            failure_threshold: 3,
            open_for: Duration::from_secs(60),
        },
        local,
    )
}

#[tokio::test]
async fn a_remote_model_answers_and_when_it_fails_the_catalog_does() {
    let catalog = Arc::new(Catalog::load(&common::repo().join("models")).unwrap());
    let local = Arc::new(CatalogRecommender::new(catalog.clone()));
    let ids: Vec<String> = catalog
        .tracks()
        .iter()
        .skip(100)
        .take(5)
        .map(|t| t.id.0.clone())
        .collect();
    let mut with_unknown = ids.clone();
    with_unknown.insert(0, "not-in-catalog".into());
    let selection = Selection::Mood(Mood::Relaxing);

    let (url, _) = model_endpoint("ok", with_unknown).await;
    let rec = remote(url, local.clone())
        .recommend(request("u", &selection))
        .await
        .unwrap();
    assert_eq!(
        (rec.model_version.as_str(), rec.variant.as_str()),
        ("remote-7", "treatment")
    );
    let got: Vec<String> = rec.tracks.iter().map(|t| t.id.0.clone()).collect();
    assert_eq!(got, ids, "unknown ids are dropped, the order kept");

    for mode in ["hang", "fail"] {
        let (url, calls) = model_endpoint(mode, vec![]).await;
        let r = remote(url, local.clone());
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let rec = r.recommend(request("u", &selection)).await.unwrap();
            assert_eq!(rec.variant, "fallback", "{mode}");
            assert!(
                !rec.tracks.is_empty(),
                "{mode}: the listener still hears music"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{mode}: bounded by timeout and retries"
            );
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            6,
            "{mode}: 3 calls, each retried once"
        );
        assert!(r.breaker().is_open(), "{mode}");
        for _ in 0..5 {
            assert_eq!(
                r.recommend(request("u", &selection)).await.unwrap().variant,
                "fallback"
            );
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            6,
            "{mode}: the open breaker stops the calls"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_picks_up_a_new_version_by_itself() {
    let dir = models_dir();
    let catalog = Arc::new(Catalog::load(dir.path()).unwrap());
    let models = Arc::new(ModelSet::load(dir.path(), catalog, Experiment::default()).unwrap());
    assert_eq!(
        models.current_version(),
        None,
        "no version yet: the catalog alone serves"
    );
    let watcher = models.clone().watch(Duration::from_millis(20), None);
    write_version(dir.path(), "v9", "2026-05-01T00:00:00Z");
    let mut served = None;
    for _ in 0..250 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        served = models.current_version();
        if served.is_some() {
            break;
        }
    }
    watcher.abort();
    assert_eq!(served.as_deref(), Some("v9"));
}

impl TrackLookup for Counting {
    fn track(&self, id: &TrackId) -> Option<Arc<Track>> {
        self.inner.track(id)
    }
}

#[tokio::test]
async fn an_item_item_version_serves_its_neighbours_after_a_track_and_to_a_listener_who_liked_it() {
    let dir = models_dir();
    let catalog = Catalog::load(dir.path()).unwrap();
    // A seed, and three jazz tracks of other artists from deep in the catalog's jazz list,
    // where neither popularity nor the audio features would put them first.
    let seed = catalog.tracks()[0].clone();
    let mut artists = std::collections::HashSet::from([seed.artist.clone()]);
    let deep: Vec<TrackId> = catalog
        .tracks()
        .iter()
        .filter(|t| t.genre == "jazz")
        .skip(40)
        .filter(|t| artists.insert(t.artist.clone()))
        .take(3)
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(deep.len(), 3, "the demo catalog has deep jazz");
    write_item_item_version(dir.path(), "ease-1", &seed.id, &deep);
    let catalog = Arc::new(catalog);
    let models =
        Arc::new(ModelSet::load(dir.path(), catalog.clone(), Experiment::default()).unwrap());
    let r = CatalogRecommender::with_models(models, RankSettings::default());

    // "More like this": the model's neighbours of the seed are played; from the catalog
    // alone they are not.
    let like = Selection::LikeTrack(seed.id.clone());
    let rec = r.recommend(request("u", &like)).await.unwrap();
    assert_eq!(rec.model_version, "ease-1");
    let ids = |rec: &Recommendation| -> Vec<TrackId> {
        rec.tracks.iter().map(|t| t.id.clone()).collect()
    };
    assert!(
        deep.iter().all(|t| ids(&rec).contains(t)),
        "{:?}",
        ids(&rec)
    );
    let plain = CatalogRecommender::new(r.catalog().clone());
    let without = plain.recommend(request("u", &like)).await.unwrap();
    assert!(
        deep.iter().all(|t| !ids(&without).contains(t)),
        "{:?}",
        ids(&without)
    );

    // A listener who liked the seed hears its neighbours first among the jazz; a new
    // listener does not.
    let mut fan = Profile::new("fan");
    fan.liked.push(seed.id.clone());
    fan.likes = 3;
    let jazz = Selection::Genre("jazz".into());
    let top = |rec: &Recommendation| -> Vec<TrackId> {
        rec.tracks.iter().take(3).map(|t| t.id.clone()).collect()
    };
    let warm = r
        .recommend(RecommendRequest {
            profile: Some(&fan),
            ..request("fan", &jazz)
        })
        .await
        .unwrap();
    assert_eq!(top(&warm), deep);
    let cold = r.recommend(request("new", &jazz)).await.unwrap();
    assert!(
        top(&cold).iter().all(|t| !deep.contains(t)),
        "{:?}",
        top(&cold)
    );
}

#[tokio::test]
async fn an_item_item_version_with_recency_follows_what_the_listener_played_last() {
    // Two older tracks recommend the same deep jazz, the latest one other deep jazz.
    let dir = models_dir();
    let catalog = Catalog::load(dir.path()).unwrap();
    let jazz: Vec<TrackId> = catalog
        .tracks()
        .iter()
        .filter(|t| t.genre == "jazz")
        .skip(40)
        .map(|t| t.id.clone())
        .collect();
    let (older, latest) = (jazz[0..2].to_vec(), jazz[4].clone());
    let (theirs, its) = (jazz[10..12].to_vec(), jazz[14..16].to_vec());
    let mut listener = Profile::new("l");
    listener.recent = vec![latest.clone(), older[0].clone(), older[1].clone()];
    listener.finishes = 3;
    let jazz_please = Selection::Genre("jazz".into());
    let top_two = |half_life: Option<f32>| {
        let dir = models_dir();
        let rows: [(&TrackId, &[TrackId]); 3] =
            [(&older[0], &theirs), (&older[1], &theirs), (&latest, &its)];
        write_item_item_rows(dir.path(), "ease-1", &rows, half_life);
        let catalog = Arc::new(Catalog::load(dir.path()).unwrap());
        let models =
            Arc::new(ModelSet::load(dir.path(), catalog.clone(), Experiment::default()).unwrap());
        let r = CatalogRecommender::with_models(models, RankSettings::default());
        let listener = &listener;
        let jazz_please = &jazz_please;
        async move {
            let rec = r
                .recommend(RecommendRequest {
                    profile: Some(listener),
                    ..request("l", jazz_please)
                })
                .await
                .unwrap();
            rec.tracks
                .iter()
                .filter(|t| !listener.recent.contains(&t.id))
                .take(2)
                .map(|t| t.id.clone())
                .collect::<Vec<_>>()
        }
    };
    drop(dir);
    // All alike, the two older tracks outweigh the latest; halving every track back, the
    // latest leads.
    assert_eq!(top_two(None).await, theirs);
    assert_eq!(top_two(Some(1.0)).await, its);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_catalog_is_served_without_a_restart_or_a_failed_request() {
    let (dir, catalog, models, r) = serving_v1();
    let new_artist = Selection::Artist(common::NEW_ARTIST.into());
    assert!(matches!(
        r.recommend(request("u", &new_artist)).await,
        Err(RecommendError::NoMatch(_))
    ));
    let first = catalog.tracks()[0].id.clone();
    let known_before = models.assign("u").model.unwrap().known;
    // A request that started before the swap.
    let in_flight = models.assign("u");

    // Listeners keep asking, a mood and "more like this", while the catalog changes.
    let seed = catalog.tracks()[5].id.clone();
    let happy = Selection::Mood(Mood::Happy);
    let like = Selection::LikeTrack(seed.clone());
    let askers = keep_asking(&r, [&happy, &like, &happy, &like]);
    let dropped = common::import_next_catalog(dir.path());
    assert_eq!(dropped, first);
    assert!(
        reload(&models).await.unwrap(),
        "a new manifest is a new catalog"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    askers.stop().await;

    // The new catalog is served: its tracks are recommended, searched and looked up; the
    // one it dropped is gone.
    let rec = r.recommend(request("u", &new_artist)).await.unwrap();
    assert!(
        rec.tracks.iter().all(|t| t.artist == common::NEW_ARTIST),
        "{rec:?}"
    );
    assert_eq!(rec.model_version, "v1", "the served version stays");
    let asked = Named {
        wanted: Wanted::Song,
        name: "aurora number 7".into(),
        artist: Some(common::NEW_ARTIST.into()),
    };
    let found = r.search(&asked, 1);
    assert_eq!(found.first().map(|(t, _)| t.id.0.as_str()), Some("nova07"));
    assert!(r.track(&TrackId("nova03".into())).is_some());
    assert!(r.track(&dropped).is_none());
    for _ in 0..20 {
        let rec = r
            .recommend(request("u", &Selection::Mood(Mood::Happy)))
            .await
            .unwrap();
        assert!(rec.tracks.iter().all(|t| t.id != dropped));
    }
    // The version is matched to the new catalog: the dropped track is no longer among
    // the ones it knows, and its rows follow the new order ("more like this" by the model).
    let model = models.assign("u").model.unwrap();
    assert_eq!(model.known, known_before - 1);
    let like = r
        .recommend(request("u", &Selection::LikeTrack(seed.clone())))
        .await
        .unwrap();
    assert!(like.tracks.iter().all(|t| t.id != seed && t.id != dropped));
    // The request that started before keeps the catalog it started with, and the old
    // catalog is freed once the last one holding it is done.
    assert!(in_flight.catalog.track(&dropped).is_some());
    assert!(in_flight.catalog.track(&TrackId("nova03".into())).is_none());
    let old = Arc::downgrade(&catalog);
    drop((catalog, in_flight));
    assert!(old.upgrade().is_none(), "the old catalog is still held");

    // A catalog that does not load: the served one stays, and it is not tried again until
    // its manifest changes.
    let manifest = dir.path().join("manifest.json");
    let served = std::fs::read(&manifest).unwrap();
    let mut broken = encore::recommend::Manifest::read(dir.path()).unwrap();
    broken.version = "broken".into();
    broken.catalog = "missing.parquet".into();
    broken.write(dir.path()).unwrap();
    let failed = reload(&models).await;
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| format!("{:?}", e).contains("missing.parquet")),
        "{failed:?}"
    );
    assert!(!reload(&models).await.unwrap());
    assert!(r.track(&TrackId("nova03".into())).is_some());
    assert_ne!(r.catalog().manifest.version, "broken");

    // A manifest that cannot be read holds back no new version.
    std::fs::write(&manifest, served).unwrap();
    write_version(dir.path(), "v2", "2026-02-01T00:00:00Z");
    std::fs::remove_file(&manifest).unwrap();
    assert!(reload(&models).await.unwrap());
    assert_eq!(models.current_version().as_deref(), Some("v2"));
    assert!(r.track(&TrackId("nova03".into())).is_some());
}
