//! The offline commands: catalog import and synthesis, training, evaluation, model import
//! and batch inference. Each reports progress on stderr and its result on stdout.

use crate::app::open_store;
use crate::domain::{PRECOMPUTED_LIMIT, Precomputed, TrackId};
use crate::recommend::evaluate::{Report, evaluate, split_by_time, test_from, top_k};
use crate::recommend::model::{
    ItemFactors, VERSIONS_DIR, dot, new_manifest, read_external_factors,
};
use crate::recommend::train::{AlsParams, Interactions, progress_count, train_model};
use crate::recommend::{Manifest, read_tracks_csv, synth, write_tracks_csv};
use crate::settings::{
    AlsArgs, BatchRecommendArgs, CatalogImportArgs, CatalogSynthArgs, EvaluateArgs,
    ModelImportArgs, TrainArgs,
};
use crate::store::update_profile;
use anyhow::{Context, bail};
use rayon::prelude::*;
use std::path::Path;

const CATALOG_FILE: &str = "catalog.csv";
const PLACEHOLDER_STREAM: &str = "https://audio.encore.example/tracks/{track_id}.mp3";

impl From<&AlsArgs> for AlsParams {
    fn from(a: &AlsArgs) -> Self {
        AlsParams {
            factors: a.factors,
            iterations: a.iterations,
            regularization: a.regularization,
            alpha: a.alpha,
            seed: a.seed,
        }
    }
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The manifest to write into `out`: the existing one (templates kept unless overridden), or
/// a new one.
fn catalog_manifest(
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

/// `encore catalog import`.
pub fn catalog_import(args: &CatalogImportArgs) -> anyhow::Result<String> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    // Templates are applied at load; the artifact stores ids only.
    let read = read_tracks_csv(&args.file, PLACEHOLDER_STREAM, None)?;
    for bad in &read.bad {
        eprintln!(
            "{}:{}: skipped: {}",
            args.file.display(),
            bad.line,
            bad.reason
        );
    }
    if read.tracks.is_empty() {
        bail!("{}: no usable tracks", args.file.display());
    }
    let manifest = catalog_manifest(
        &args.out,
        args.stream_url_template.as_ref(),
        args.art_url_template.as_ref(),
        read.tracks.len(),
        &args.file.display().to_string(),
    )?;
    // The catalog first, the manifest that names it last.
    let written = write_tracks_csv(&args.out.join(CATALOG_FILE), &read.tracks)?;
    manifest.write(&args.out)?;
    Ok(format!(
        "imported {written} tracks into {} ({} bad rows skipped, {} repeated track ids dropped)",
        args.out.display(),
        read.bad.len(),
        read.duplicates
    ))
}

/// `encore catalog synth`.
pub fn catalog_synth(args: &CatalogSynthArgs) -> anyhow::Result<String> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let tracks = synth::tracks(args.tracks, args.seed, PLACEHOLDER_STREAM, None);
    let manifest = catalog_manifest(&args.out, None, None, tracks.len(), "encore catalog synth")?;
    write_tracks_csv(&args.out.join(CATALOG_FILE), &tracks)?;
    manifest.write(&args.out)?;
    let mut done = format!(
        "wrote {} synthetic tracks to {}",
        tracks.len(),
        args.out.display()
    );
    if args.users > 0 {
        let data = synth::interactions(&tracks, args.users, args.plays_per_user, args.seed);
        let path = args.out.join("interactions.csv");
        synth::write_interactions(&path, &data)
            .with_context(|| format!("writing {}", path.display()))?;
        done += &format!(
            "\nwrote {} interactions of {} listeners to {}",
            data.rows.len(),
            data.users.len(),
            path.display()
        );
    }
    Ok(done)
}

fn read_interactions(path: &Path) -> anyhow::Result<Interactions> {
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

/// `encore train`.
pub fn train(args: &TrainArgs) -> anyhow::Result<String> {
    let params = AlsParams::from(&args.als);
    let data = read_interactions(&args.interactions)?;
    let metrics = if args.no_metrics {
        None
    } else {
        eprintln!("measuring on a per-user time split (k = {})", args.k);
        let split = split_by_time(&data, 0.2);
        Some(evaluate(
            split.train,
            split.test,
            data.rows.len(),
            args.k,
            params,
            20_000,
        ))
    };
    eprintln!(
        "training on {} interactions ({} users, {} items)",
        data.rows.len(),
        data.users.len(),
        data.items.len()
    );
    let started = std::time::Instant::now();
    let (mut model, _, _) = train_model(&data, params);
    model.manifest.data.insert(
        "source".into(),
        args.interactions.display().to_string().into(),
    );
    model.manifest.data.insert(
        "train_seconds".into(),
        started.elapsed().as_secs_f64().into(),
    );
    if let Some(report) = &metrics {
        model.manifest.metrics = metrics_json(report);
    }
    let dir = args.out.join(VERSIONS_DIR).join(&model.manifest.version);
    model.save(&dir)?;
    let mut done = format!(
        "wrote model {} ({} items × {} factors) to {}",
        model.manifest.version,
        model.ids.len(),
        model.dim(),
        dir.display()
    );
    if let Some(r) = metrics {
        done += &format!("\n{}", table(&r));
    }
    Ok(done)
}

fn metrics_json(r: &Report) -> serde_json::Map<String, serde_json::Value> {
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

fn table(r: &Report) -> String {
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

/// `encore evaluate`.
pub fn run_evaluate(args: &EvaluateArgs) -> anyhow::Result<String> {
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    if !(0.0..1.0).contains(&args.test_fraction) {
        bail!("--test-fraction must be at least 0 and below 1");
    }
    let params = AlsParams::from(&args.als);
    let data = read_interactions(&args.interactions)?;
    let total = data.rows.len();
    let (train, test) = match &args.test {
        Some(path) => {
            let held = read_interactions(path)?;
            let mut train = data;
            let test = test_from(&mut train, &held);
            (train, test)
        }
        None => {
            let split = split_by_time(&data, args.test_fraction);
            (split.train, split.test)
        }
    };
    if test.is_empty() {
        bail!("nothing to score: no user has held-out interactions");
    }
    let report = evaluate(train, test, total, args.k, params, args.max_users);
    Ok(if args.json {
        serde_json::to_string(&report)?
    } else {
        table(&report)
    })
}

/// `encore model import`.
pub fn model_import(args: &ModelImportArgs) -> anyhow::Result<String> {
    let (ids, factors, dim) = read_external_factors(&args.file)?;
    let mut manifest = new_manifest("imported", dim, ids.len());
    if let Some(v) = &args.version {
        if v.is_empty() || v.contains(['/', '\\']) || v.starts_with('.') {
            bail!("--version {v:?} cannot name a directory");
        }
        manifest.version = v.clone();
    }
    manifest
        .data
        .insert("source".into(), args.file.display().to_string().into());
    manifest
        .parameters
        .insert("regularization".into(), args.regularization.into());
    let dir = args.out.join(VERSIONS_DIR).join(&manifest.version);
    if dir.join("model.json").exists() {
        bail!(
            "model version {} already exists in {}",
            manifest.version,
            dir.display()
        );
    }
    let model = ItemFactors::new(manifest, ids, factors);
    model.save(&dir)?;
    Ok(format!(
        "imported {} item vectors of {} dimensions as model {} in {}",
        model.ids.len(),
        dim,
        model.manifest.version,
        dir.display()
    ))
}

/// `encore batch-recommend`.
pub async fn batch_recommend(args: &BatchRecommendArgs) -> anyhow::Result<String> {
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    let data = read_interactions(&args.interactions)?;
    let k = args.k;
    // Per user: the model's top k, excluding their history.
    let (model, user_vectors, history): (ItemFactors, Option<Vec<f32>>, _) = match &args.model {
        Some(dir) => {
            let model = ItemFactors::load(dir)?;
            (model, None, history_of(&data))
        }
        None => {
            let (model, trained, user_items) = train_model(&data, AlsParams::from(&args.als));
            let history: Vec<Vec<u32>> = (0..user_items.rows())
                .map(|u| user_items.row(u).0.to_vec())
                .collect();
            (model, Some(trained.users), history)
        }
    };
    let d = model.dim();
    // Interaction item index -> model row.
    let rows: Vec<Option<u32>> = data.items.iter().map(|id| model.row_of(id)).collect();
    let bar = progress_count(data.users.len() as u64, "ranking");
    let lists: Vec<Vec<(u32, f32)>> = (0..data.users.len())
        .into_par_iter()
        .map(|u| {
            let seen: Vec<u32> = {
                let mut s: Vec<u32> = history[u]
                    .iter()
                    .filter_map(|&i| rows[i as usize])
                    .collect();
                s.sort_unstable();
                s
            };
            let x: Option<Vec<f32>> = match &user_vectors {
                Some(users) => Some(users[u * d..(u + 1) * d].to_vec()),
                None => {
                    let items: Vec<(u32, f32)> =
                        seen.iter().map(|&r| (r, 1.0 + 20.0 * 2f32.ln())).collect();
                    model.fold_in(&items)
                }
            };
            bar.inc(1);
            let Some(x) = x else { return Vec::new() };
            let scores: Vec<f32> = model.factors.chunks_exact(d).map(|y| dot(&x, y)).collect();
            top_k(&scores, k, &seen)
                .into_iter()
                .map(|r| (r, scores[r as usize]))
                .collect()
        })
        .collect();
    bar.finish_and_clear();
    let mut done = Vec::new();
    if let Some(out) = &args.out {
        let mut w =
            csv::Writer::from_path(out).with_context(|| format!("writing {}", out.display()))?;
        w.write_record(["user_id", "rank", "item_id", "score"])?;
        for (u, list) in lists.iter().enumerate() {
            for (rank, (row, score)) in list.iter().enumerate() {
                w.write_record([
                    data.users[u].as_str(),
                    &(rank + 1).to_string(),
                    &model.ids[*row as usize],
                    &format!("{score:.6}"),
                ])?;
            }
        }
        w.flush()?;
        done.push(format!(
            "wrote the top {k} of {} users to {}",
            data.users.len(),
            out.display()
        ));
    }
    if args.to_profiles {
        let store = open_store(&args.storage).await?;
        let created_at = time::OffsetDateTime::now_utc().unix_timestamp();
        let bar = progress_count(lists.len() as u64, "storing in profiles");
        let mut stored = 0usize;
        for (u, list) in lists.iter().enumerate() {
            let tracks: Vec<TrackId> = list
                .iter()
                .take(PRECOMPUTED_LIMIT)
                .map(|(row, _)| TrackId(model.ids[*row as usize].clone()))
                .collect();
            let precomputed = Precomputed {
                model_version: model.manifest.version.clone(),
                created_at,
                tracks,
            };
            update_profile(store.as_ref(), &data.users[u], |p| {
                p.precomputed = Some(precomputed.clone())
            })
            .await
            .with_context(|| format!("storing the list of {}", data.users[u]))?;
            stored += 1;
            bar.inc(1);
        }
        bar.finish_and_clear();
        store.flush().await?;
        done.push(format!(
            "stored the lists of {stored} users in their profiles"
        ));
    }
    Ok(done.join("\n"))
}

/// Each user's items, by interaction item index.
fn history_of(data: &Interactions) -> Vec<Vec<u32>> {
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
