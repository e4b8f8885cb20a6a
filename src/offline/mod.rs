//! Offline work: catalog synthesis, training (implicit ALS), evaluation, the A/B report, and
//! the helpers the offline commands in `crate::cli` share. Events come in through one
//! source (`events`): the local log read without its lock, or a scan of the stream, so none
//! of this needs the server stopped. Progress goes to stderr, results to the caller.

pub mod evaluate;
pub mod events;
pub mod report;
pub mod synth;
pub mod train;

use crate::recommend::Manifest;
use evaluate::Report;
use std::path::Path;
use train::Interactions;

/// The catalog file an import or synthesis writes.
pub const CATALOG_FILE: &str = "catalog.csv";
/// The stream URL template of a catalog with none given.
pub const PLACEHOLDER_STREAM: &str = "https://audio.encore.example/tracks/{track_id}.mp3";

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

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
    manifest.extra.insert("tracks".into(), tracks.into());
    manifest.extra.insert("source".into(), source.into());
    Ok(manifest)
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

pub fn metrics_json(r: &Report) -> serde_json::Map<String, serde_json::Value> {
    let k = r.k;
    serde_json::json!({
        "split": "per-user time split, latest 20% held out",
        format!("precision@{k}"): r.als.precision,
        format!("recall@{k}"): r.als.recall,
        format!("ndcg@{k}"): r.als.ndcg,
        "coverage": r.als.coverage,
        format!("popularity_ndcg@{k}"): r.popularity.ndcg,
        format!("popularity_recall@{k}"): r.popularity.recall,
        "evaluated_users": r.evaluated_users,
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

pub fn table(r: &Report) -> String {
    let k = r.k;
    let mut out = format!(
        "{} interactions ({} for training), {} users, {} items; {} users scored\n",
        r.interactions, r.train_interactions, r.users, r.items, r.evaluated_users
    );
    out += &format!(
        "{:<12} {:>13} {:>10} {:>8} {:>9}\n",
        "method",
        format!("precision@{k}"),
        format!("recall@{k}"),
        format!("ndcg@{k}"),
        "coverage"
    );
    for (name, m) in [("als", &r.als), ("popularity", &r.popularity)] {
        out += &format!(
            "{:<12} {:>13.4} {:>10.4} {:>8.4} {:>9.4}\n",
            name, m.precision, m.recall, m.ndcg, m.coverage
        );
    }
    out.trim_end().to_owned()
}

/// Each user's items, by interaction item index.
pub fn history_of(data: &Interactions) -> Vec<Vec<u32>> {
    let mut h = vec![Vec::new(); data.users.len()];
    for r in &data.rows {
        h[r.user as usize].push(r.item);
    }
    for items in &mut h {
        items.sort_unstable();
        items.dedup();
    }
    h
}
