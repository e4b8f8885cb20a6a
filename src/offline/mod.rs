//! Offline work: catalog synthesis, training (implicit ALS), evaluation, the A/B report, and
//! the helpers the offline commands in `crate::cli` share. Events come in through one
//! source (`events`): the local log read without its lock, or a scan of the stream, so none
//! of this needs the server stopped. Progress goes to stderr, results to the caller.

pub mod evaluate;
pub mod events;
pub mod itemitem;
pub mod ranker;
pub mod report;
pub mod select;
pub mod synth;
pub mod train;

use crate::aws::AwsSettings;
use crate::feedback::{read_archive, split_since};
use crate::objects::{DirStore, Location, ObjectStore};
use crate::recommend::Manifest;
use crate::recommend::model::now_rfc3339;
use anyhow::Context;
use select::Report;
use std::collections::HashSet;
use std::path::Path;
use train::Interactions;

/// The catalog file an import or synthesis writes.
pub const CATALOG_FILE: &str = "catalog.parquet";
/// The stream URL template of a catalog with none given.
pub const PLACEHOLDER_STREAM: &str = "https://audio.encore.example/tracks/{track_id}.mp3";

/// The manifest to write into `out`: the existing one (templates kept unless overridden), or
/// a new one.
pub fn catalog_manifest(
    out: &Path,
    stream: Option<&String>,
    art: Option<&String>,
    tracks: usize,
    source: &str,
) -> anyhow::Result<Manifest> {
    let mut manifest = match Manifest::read(out) {
        Ok(m) => m,
        Err(_) => Manifest {
            version: String::new(),
            created_at: String::new(),
            catalog: CATALOG_FILE.into(),
            stream_url_template: PLACEHOLDER_STREAM.into(),
            art_url_template: None,
            search_index: None,
            extra: Default::default(),
        },
    };
    if let Some(s) = stream {
        manifest.stream_url_template = s.clone();
    }
    if let Some(a) = art {
        manifest.art_url_template = Some(a.clone());
    }
    manifest.check_templates().map_err(anyhow::Error::msg)?;
    let now = now_rfc3339();
    manifest.version = format!("catalog-{}", now.replace([':', '-'], ""));
    manifest.created_at = now;
    manifest.catalog = CATALOG_FILE.into();
    // A new catalog: the index saved for the old one is written again after it.
    manifest.search_index = None;
    manifest.extra.insert("tracks".into(), tracks.into());
    manifest.extra.insert("source".into(), source.into());
    Ok(manifest)
}

/// Reads interactions from `at`: a CSV file, a feedback log directory, or the feedback
/// archive (`s3://BUCKET/PREFIX`, or a local copy of one: a directory of `.gz` objects),
/// optionally from a time partition on (`.../2026/12/01`). Each archived event counts once
/// (by listener and event id), however often it was archived.
pub async fn load_interactions(at: &Location, aws: &AwsSettings) -> anyhow::Result<Interactions> {
    if let Some(path) = at.dir()
        && !is_archive(path).await
    {
        return read_interactions(path);
    }
    let (archive, since) = match at {
        Location::Dir(path) => {
            let (dir, since) = split_since(&path.to_string_lossy());
            (Location::Dir(dir.into()), since)
        }
        Location::S3 { bucket, prefix } => {
            let (prefix, since) = split_since(prefix);
            let bucket = bucket.clone();
            (Location::S3 { bucket, prefix }, since)
        }
    };
    let store = archive.open(aws).await;
    eprintln!(
        "reading the feedback archive in {}{}",
        store.describe(),
        since
            .as_deref()
            .map(|s| format!(" since {s}"))
            .unwrap_or_default()
    );
    let bar = indicatif::ProgressBar::new_spinner().with_message("archived events read");
    let mut data = Interactions::default();
    let mut seen: HashSet<u128> = HashSet::new();
    let mut duplicates = 0u64;
    let read = read_archive(&*store, since.as_deref(), |event| {
        bar.inc(1);
        let key = [event.user_id.as_bytes(), b"\0", event.event_id.as_bytes()].concat();
        if seen.insert(xxhash_rust::xxh3::xxh3_128(&key)) {
            data.push_event(&event);
        } else {
            duplicates += 1;
        }
    })
    .await
    .with_context(|| format!("reading the feedback archive in {}", store.describe()))?;
    bar.finish_and_clear();
    eprintln!(
        "{} objects, {} events ({} duplicates counted once, {} records not events), {} interactions",
        read.objects,
        read.events,
        duplicates,
        read.malformed,
        data.rows.len()
    );
    if data.rows.is_empty() {
        anyhow::bail!("no usable interactions in the archive {}", store.describe());
    }
    Ok(data)
}

/// Whether a directory (or what a path names) holds a copy of the feedback archive rather
/// than a feedback log or a CSV: a directory with `.gz` objects under it.
async fn is_archive(path: &Path) -> bool {
    if !path.is_dir() {
        return false;
    }
    let root = split_since(&path.to_string_lossy()).0;
    let store = DirStore::new(Path::new(&root));
    store
        .list("", None)
        .await
        .is_ok_and(|objects| objects.iter().any(|o| o.key.ends_with(".gz")))
}

pub fn read_interactions(path: &Path) -> anyhow::Result<Interactions> {
    let data = Interactions::read(path)?;
    if !data.bad.is_empty() {
        eprintln!(
            "{}: {} bad rows skipped (first at line {}: {})",
            path.display(),
            data.bad.len(),
            data.bad[0].line,
            data.bad[0].reason
        );
    }
    Ok(data)
}

/// What a model version's manifest records of an evaluation: each method's test metrics
/// and which the default chose.
pub fn metrics_json(r: &Report) -> serde_json::Map<String, serde_json::Value> {
    let k = r.k;
    let mut out = serde_json::Map::new();
    out.insert("split".into(), r.protocol.to_string().into());
    out.insert("k".into(), k.into());
    out.insert("evaluated_users".into(), r.evaluated_users.into());
    out.insert("default".into(), r.default.clone().into());
    for (name, s) in &r.methods {
        out.insert(
            name.clone(),
            serde_json::json!({
                format!("precision@{k}"): s.metrics.precision,
                format!("recall@{k}"): s.metrics.recall,
                format!("ndcg@{k}"): s.metrics.ndcg,
                "coverage": s.metrics.coverage,
                "novelty": s.metrics.novelty,
                "diversity": s.metrics.diversity,
                "settings": s.settings,
            }),
        );
    }
    out
}

/// The evaluation as a table: one row per method, the default's choice marked.
pub fn table(r: &Report) -> String {
    let k = r.k;
    let mut out = format!(
        "{} interactions ({} for training), {} users, {} items; {} users scored; {}\n",
        r.interactions, r.train_interactions, r.users, r.items, r.evaluated_users, r.protocol
    );
    out += &format!(
        "{:<12} {:>13} {:>10} {:>8} {:>9} {:>8} {:>10} {:>7}  settings\n",
        "method",
        format!("precision@{k}"),
        format!("recall@{k}"),
        format!("ndcg@{k}"),
        "coverage",
        "novelty",
        "diversity",
        "fit s"
    );
    for (name, s) in &r.methods {
        let m = &s.metrics;
        let mark = if *name == r.default { " (default)" } else { "" };
        out += &format!(
            "{:<12} {:>13.4} {:>10.4} {:>8.4} {:>9.4} {:>8.2} {:>10.3} {:>7.1}  {}{mark}\n",
            name,
            m.precision,
            m.recall,
            m.ndcg,
            m.coverage,
            m.novelty,
            m.diversity,
            s.fit_seconds,
            s.settings
        );
    }
    if !r.sweep.is_empty() {
        out += "the serving path with one weight changed:\n";
    }
    for s in &r.sweep {
        let m = &s.metrics;
        out += &format!(
            "{:<26} {:>13.4} {:>10.4} {:>8.4} {:>9.4} {:>8.2} {:>10.3}\n",
            s.name, m.precision, m.recall, m.ndcg, m.coverage, m.novelty, m.diversity
        );
    }
    out.trim_end().to_owned()
}
