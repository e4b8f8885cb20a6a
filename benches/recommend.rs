//! Recommender latency and model load cost by catalog size.
//!
//! For each size in BENCH_TRACKS (default 10000,100000,1000000) it writes a synthetic
//! Parquet catalog and a 32-dimensional model version to a temporary models directory, then
//! prints:
//! - catalog load and model load time, the anonymous resident memory (heap) each added,
//!   and the pages of mapped files (the catalog's words, the model's exact factors) resident
//!   after both loads;
//! - recommend latency p50/p99 on a cache miss (a known listener with history, a different
//!   listener each call, moods, genres, artists and "more like this" mixed, exploration on)
//!   and on a cache hit (the recommendation cache in front), from BENCH_CALLS calls each;
//! - criterion's estimate of the same two means;
//! - "more like this" by the model: recall@50 of `ServedFactors::like` (the seed's
//!   neighbourhood scored exactly, and the ANN index's lists nearest the seed by int8 codes
//!   with an exact rerank) against the exact 50 nearest by cosine over the whole catalog,
//!   for 100 seeds, by how many lists it reads, with its latency;
//! - the song search: index build time and bytes per track, query latency p50/p99 and how
//!   often the track asked for comes first, for titles as written and with a word misheard
//!   (a letter dropped), BENCH_CALLS queries of random catalog titles with their artist.
//!
//! Run with `cargo bench --bench recommend`. Loopback-free: nothing leaves the process.

#[path = "support/wrk.rs"]
mod wrk;

use criterion::Criterion;
use encore::domain::{Mood, Profile, Selection, Track, TrackId, Wanted};
use encore::offline::synth;
use encore::recommend::model::{ItemFactors, new_manifest};
use encore::recommend::{
    CachedRecommender, Catalog, CatalogRecommender, Experiment, Like, Manifest, ModelSet, PROBES,
    RankSettings, RecommendRequest, Recommender, SearchIndex, ServedFactors, write_tracks_parquet,
};
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wrk::status_mib_of;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DIM: usize = 32;

/// A field of this process's /proc status (`RssAnon`, `RssFile`), in MiB.
fn status_mib(field: &str) -> f64 {
    status_mib_of("self", field)
}

/// Anonymous resident memory (the heap): what mapped files add is counted apart.
fn rss_mib() -> f64 {
    status_mib("RssAnon")
}

fn write_models(dir: &Path, n: usize) {
    let tracks = synth::tracks(n, 7, "https://audio.example/{track_id}.mp3", None);
    write_tracks_parquet(&dir.join("catalog.parquet"), &tracks).unwrap();
    let manifest: Manifest = serde_json::from_value(serde_json::json!({
        "version": format!("synth-{n}"),
        "created_at": "2026-11-23T00:00:00Z",
        "catalog": "catalog.parquet",
        "stream_url_template": "https://audio.example/{track_id}.mp3",
    }))
    .unwrap();
    manifest.write(dir).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let ids: Vec<String> = tracks.iter().map(|t| t.id.0.clone()).collect();
    let factors: Vec<f32> = (0..n * DIM).map(|_| rng.random::<f32>() - 0.5).collect();
    ItemFactors::new(new_manifest("als", DIM, n), ids, factors)
        .save(&dir.join("versions/v1"))
        .unwrap();
}

/// A listener with history: finishes, likes and affinities over a random slice of tracks.
fn known_listener(catalog: &Catalog, user: usize, rng: &mut impl Rng) -> Profile {
    let mut p = Profile::new(format!("user{user}"));
    for _ in 0..40 {
        let t = catalog
            .at(rng.random_range(0..catalog.len()) as u32)
            .to_track();
        p.played(&t.id);
        p.finishes += 1;
        p.record_outcome(&t.id, "mood=happy", true);
        p.adjust_affinity(&t.genre, &t.artist, 1.0);
        p.add_taste(&t.features, 1.0);
    }
    for _ in 0..10 {
        let t = catalog
            .at(rng.random_range(0..catalog.len()) as u32)
            .to_track();
        p.like(&t.id);
        p.likes += 1;
    }
    p
}

fn selection(catalog: &Catalog, i: usize, rng: &mut impl Rng) -> Selection {
    match i % 11 {
        0..8 => Selection::Mood(Mood::ALL[i % 8]),
        8 => Selection::Genre(
            catalog
                .at(rng.random_range(0..catalog.len()) as u32)
                .genre()
                .to_owned(),
        ),
        9 => Selection::Artist(
            catalog
                .at(rng.random_range(0..catalog.len()) as u32)
                .artist()
                .to_owned(),
        ),
        _ => Selection::LikeTrack(TrackId(
            catalog
                .at(rng.random_range(0..catalog.len()) as u32)
                .id()
                .to_owned(),
        )),
    }
}

/// 25 tracks for listener `p`.
fn request_for<'a>(p: &'a Profile, selection: &'a Selection) -> RecommendRequest<'a> {
    RecommendRequest {
        user_id: &p.user_id,
        selection,
        profile: Some(p),
        exclude: &[],
        limit: 25,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

/// In a fresh process (this bench re-run with BENCH_LOAD_DIR set): load the catalog and the
/// model from that directory and print seconds and resident MiB added by each, so memory
/// left over from generating the data does not blur the figures.
fn measure_load(dir: &Path) {
    let base = rss_mib();
    let base_file = status_mib("RssFile");
    let started = Instant::now();
    let catalog = Arc::new(Catalog::load(dir).unwrap());
    let catalog_s = started.elapsed().as_secs_f64();
    let after_catalog = rss_mib();
    let started = Instant::now();
    let models = ModelSet::load(dir, catalog.clone(), Experiment::default()).unwrap();
    let model_s = started.elapsed().as_secs_f64();
    let after_model = rss_mib();
    std::hint::black_box(&models);
    println!(
        "{catalog_s} {} {model_s} {} {}",
        after_catalog - base,
        after_model - after_catalog,
        status_mib("RssFile") - base_file
    );
}

fn load_in_child(dir: &Path) -> (f64, f64, f64, f64, f64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("BENCH_LOAD_DIR", dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(v.len(), 5, "the load measurement printed {text:?}");
    (v[0], v[1], v[2], v[3], v[4])
}

fn main() {
    if let Some(dir) = std::env::var_os("BENCH_LOAD_DIR") {
        measure_load(Path::new(&dir));
        return;
    }
    let sizes: Vec<usize> = std::env::var("BENCH_TRACKS")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut searches = Vec::new();
    let mut recalls = Vec::new();
    let mut criterion = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    println!(
        "| tracks | catalog load s | catalog heap MiB | model load s | model heap MiB | mapped pages resident MiB | miss p50 ms | miss p99 ms | hit p50 ms | hit p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        write_models(dir.path(), n);
        let (catalog_s, catalog_mib, model_s, model_mib, mapped_mib) = load_in_child(dir.path());
        let catalog = Arc::new(Catalog::load(dir.path()).unwrap());
        let models =
            Arc::new(ModelSet::load(dir.path(), catalog.clone(), Experiment::default()).unwrap());
        let settings = RankSettings {
            exploration: 0.15,
            ..RankSettings::default()
        };
        let direct = Arc::new(CatalogRecommender::with_models(models.clone(), settings));
        let cached = CachedRecommender::new(direct.clone(), Duration::from_secs(600), 100_000);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let listeners: Vec<Profile> = (0..200)
            .map(|u| known_listener(&catalog, u, &mut rng))
            .collect();
        let requests: Vec<Selection> = (0..calls)
            .map(|i| selection(&catalog, i, &mut rng))
            .collect();
        // Misses: a different listener and request each call.
        let mut miss: Vec<Duration> = rt.block_on(async {
            let mut out = Vec::with_capacity(calls);
            for (i, sel) in requests.iter().enumerate() {
                let p = &listeners[i % listeners.len()];
                let req = request_for(p, sel);
                let t = Instant::now();
                let rec = direct.recommend(req).await;
                out.push(t.elapsed());
                std::hint::black_box(rec.ok());
            }
            out
        });
        // Hits: the same listener and request again, behind the cache.
        let p = &listeners[0];
        let sel = Selection::Mood(Mood::Happy);
        let req = request_for(p, &sel);
        let mut hit: Vec<Duration> = rt.block_on(async {
            cached.recommend(req).await.unwrap();
            let mut out = Vec::with_capacity(calls);
            for _ in 0..calls {
                let t = Instant::now();
                let rec = cached.recommend(req).await;
                out.push(t.elapsed());
                std::hint::black_box(rec.ok());
            }
            out
        });
        miss.sort();
        hit.sort();
        println!(
            "| {n} | {catalog_s:.2} | {catalog_mib:.0} | {model_s:.2} | {model_mib:.0} | {mapped_mib:.0} | {:.3} | {:.3} | {:.4} | {:.4} |",
            percentile(&miss, 0.5),
            percentile(&miss, 0.99),
            percentile(&hit, 0.5),
            percentile(&hit, 0.99)
        );
        searches.push(search_row(&catalog, calls, &mut rng));
        let model = models.assign("bench-recall").model;
        if let Some(factors) = model.as_deref().and_then(|m| m.factors()) {
            recalls.extend(recall_rows(&catalog, factors, &mut rng));
        }
        let mut group = criterion.benchmark_group(format!("recommend/{n}"));
        let mut i = 0usize;
        group.bench_function("miss", |b| {
            b.iter(|| {
                i += 1;
                let p = &listeners[i % listeners.len()];
                let sel = &requests[i % requests.len()];
                let req = request_for(p, sel);
                rt.block_on(direct.recommend(req)).ok()
            })
        });
        group.bench_function("hit", |b| {
            b.iter(|| rt.block_on(cached.recommend(req)).ok())
        });
        group.finish();
    }
    println!(
        "\n| tracks | search index build s | index bytes/track | query p50 ms | query p99 ms | asked-for first, as written | with a misheard word |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in searches {
        println!("{row}");
    }
    println!(
        "\n| tracks | more like this searches | recall@50 over the whole catalog | like p50 ms | like p99 ms |"
    );
    println!("|---|---|---|---|---|");
    for row in recalls {
        println!("{row}");
    }
    criterion.final_summary();
}

/// The recall table's rows: for 100 random seeds, the 50 nearest tracks by exact cosine
/// over the whole catalog against what `like` returns, reading the neighbourhood alone (no
/// lists) and the ANN index's nearest 8, 16, `PROBES` and 64 lists, with `like`'s latency.
fn recall_rows(catalog: &Catalog, factors: &ServedFactors, rng: &mut impl Rng) -> Vec<String> {
    const K: usize = 50;
    let n = catalog.len() as u32;
    let norms: Vec<f32> = (0..n)
        .map(|i| {
            factors
                .vector(i)
                .map_or(0.0, |y| y.iter().map(|f| f * f).sum::<f32>().sqrt())
        })
        .collect();
    let top = |mut scored: Vec<(f32, u32)>| -> Vec<u32> {
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(K).map(|(_, i)| i).collect()
    };
    let seeds: Vec<u32> = (0..100).map(|_| rng.random_range(0..n)).collect();
    let exact: Vec<Vec<u32>> = seeds
        .iter()
        .map(|&seed| {
            let s = factors.vector(seed).unwrap();
            let cos = |i: u32| {
                factors.score(&s, i).unwrap_or(f32::MIN)
                    / (norms[seed as usize] * norms[i as usize]).max(1e-6)
            };
            top((0..n).filter(|&i| i != seed).map(|i| (cos(i), i)).collect())
        })
        .collect();
    let mut rows = Vec::new();
    for probes in [0, 8, 16, PROBES, 64] {
        let (mut found, mut latencies) = (0, Vec::new());
        for (&seed, want) in seeds.iter().zip(&exact) {
            let t = Instant::now();
            let Like { near, .. } = factors
                .like_probing(seed, catalog.neighbourhood(seed), K, probes)
                .unwrap();
            latencies.push(t.elapsed());
            let got: std::collections::HashSet<u32> = top(near).into_iter().collect();
            found += want.iter().filter(|i| got.contains(i)).count();
        }
        latencies.sort();
        rows.push(format!(
            "| {n} | {} | {:.3} | {:.3} | {:.3} |",
            match (probes, factors.has_index()) {
                (0, _) => "neighbourhood only".to_owned(),
                (_, false) => "no index".to_owned(),
                (p, true) => format!("+ {p} lists"),
            },
            found as f64 / (K * seeds.len()) as f64,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        ));
    }
    rows
}

/// The search table's row for `catalog`: build the index, then ask for `calls` random
/// titles with their artist, as written and with one letter dropped from the longest word.
fn search_row(catalog: &Catalog, calls: usize, rng: &mut impl Rng) -> String {
    let started = Instant::now();
    let index = SearchIndex::build(catalog.table(), 0).unwrap();
    let build_s = started.elapsed().as_secs_f64();
    let per_track = index.mapped_bytes() as f64 / catalog.len() as f64;
    let table = catalog.table();
    let (mut latencies, mut exact, mut misheard) = (Vec::with_capacity(2 * calls), 0, 0);
    // The same title by the same artist is the same song for a listener.
    let same = |a: &Track, b: &Track| a.title == b.title && a.artist == b.artist;
    for _ in 0..calls {
        let wanted = &catalog
            .at(rng.random_range(0..catalog.len()) as u32)
            .to_track();
        for (said, hits) in [
            (wanted.title.clone(), &mut exact),
            (mishear(&wanted.title), &mut misheard),
        ] {
            let t = Instant::now();
            let found = index.search(table, Wanted::Song, &said, Some(&wanted.artist), 1);
            latencies.push(t.elapsed());
            if found
                .first()
                .is_some_and(|h| same(&catalog.at(h.track).to_track(), wanted))
            {
                *hits += 1;
            }
        }
    }
    latencies.sort();
    format!(
        "| {} | {build_s:.2} | {per_track:.0} | {:.3} | {:.3} | {:.1}% | {:.1}% |",
        catalog.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        100.0 * exact as f64 / calls as f64,
        100.0 * misheard as f64 / calls as f64,
    )
}

/// `title` with the middle letter of its longest word dropped ("Window" -> "Windw").
fn mishear(title: &str) -> String {
    let longest = title
        .split_whitespace()
        .max_by_key(|w| w.len())
        .unwrap_or_default();
    let chars: Vec<char> = longest.chars().collect();
    let mut changed: String = chars.iter().collect();
    if chars.len() >= 4 {
        changed = chars
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != chars.len() / 2)
            .map(|(_, c)| c)
            .collect();
    }
    title.replacen(longest, &changed, 1)
}
