//! `encore batch-recommend`: every user's top k, to a CSV or into their profiles. With no
//! model version given, the model is chosen by validation (`--kind auto`: ALS, EASE, an
//! item-kNN or a blend of them, whichever finds more of what users went on to have) and
//! fitted on all the interactions.

use super::model::tempfile_dir;
use super::train::{AlsArgs, ModelKindArg};
use crate::app::{aws_settings, open_store};
use crate::domain::{PRECOMPUTED_LIMIT, Precomputed, TrackId};
use crate::objects::Location;
use crate::offline::evaluate::top_k;
use crate::offline::itemitem::neighbour_scores;
use crate::offline::load_interactions;
use crate::offline::select::{Blends, Fitted, choose};
use crate::offline::train::{AlsParams, Interactions, progress_count, user_had, user_recency};
use crate::recommend::fetch_version;
use crate::recommend::model::{Model, dot, new_manifest};
use crate::settings::StorageArgs;
use crate::store::update_profile;
use anyhow::{Context, bail};
use clap::Args;
use rayon::prelude::*;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct BatchRecommendArgs {
    /// A CSV of user_id,item_id,timestamp[,rating], or a feedback log directory.
    #[arg(long)]
    pub interactions: Location,
    /// How many items per user.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Write user_id,rank,item_id,score here.
    #[arg(long, required_unless_present = "to_profiles")]
    pub out: Option<PathBuf>,
    /// Use this model version instead of training on the interactions: its directory, or
    /// s3://BUCKET/PREFIX/versions/VERSION.
    #[arg(long)]
    pub model: Option<Location>,
    /// Store each user's list in their profile (the configured store), where the serving
    /// path uses it while fresh.
    #[arg(long)]
    pub to_profiles: bool,
    #[command(flatten)]
    pub kind: ModelKindArg,
    #[command(flatten)]
    pub als: AlsArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Ranked lists: per user (by interaction index), `(item, score)` best first, with the ids
/// the items index and the version the lists came from.
struct Lists {
    lists: Vec<Vec<(u32, f32)>>,
    ids: Vec<String>,
    version: String,
}

/// `encore batch-recommend`.
pub async fn run(args: &BatchRecommendArgs) -> anyhow::Result<String> {
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    let aws = aws_settings(&args.storage);
    let data = load_interactions(&args.interactions, &aws).await?;
    let k = args.k;
    let Lists {
        lists,
        ids,
        version,
    } = match &args.model {
        Some(Location::Dir(dir)) => from_version(&Model::load(dir)?, &data, k),
        Some(at) => {
            let staging = tempfile_dir()?;
            let fetched = fetch_version(&*at.open(&aws).await, &staging).await;
            let _ = std::fs::remove_dir_all(&staging);
            from_version(
                &fetched.with_context(|| format!("reading the model at {at}"))?,
                &data,
                k,
            )
        }
        None => chosen_by_validation(args, &data, k),
    };
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
                    &ids[*row as usize],
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
                .map(|(row, _)| TrackId(ids[*row as usize].clone()))
                .collect();
            let precomputed = Precomputed {
                model_version: version.clone(),
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

/// The model `--kind` and validation choose, fitted on all of `data`.
fn chosen_by_validation(args: &BatchRecommendArgs, data: &Interactions, k: usize) -> Lists {
    let grid = args
        .kind
        .grid(AlsParams::from(&args.als), Blends::Tried, data.items.len());
    eprintln!(
        "choosing the model on two validation parts ({} candidates and blends of the best; each user's last interaction, and every third user's latest 20%)",
        grid.candidates.len()
    );
    let choice = choose(data, k, &grid);
    eprintln!(
        "chose {} {}; fitting it on all {} interactions",
        choice.chosen.kind(),
        choice.chosen.settings(),
        data.rows.len()
    );
    let fitted = Fitted::fit(&choice.chosen, data);
    let history = user_recency(data);
    let had = user_had(data);
    let bar = progress_count(data.users.len() as u64, "ranking");
    let lists = (0..data.users.len())
        .into_par_iter()
        .map(|u| {
            let scores = fitted.scores(u as u32, history.row(u));
            bar.inc(1);
            top_k(&scores, k, had.row(u).0)
                .into_iter()
                .map(|i| (i, scores[i as usize]))
                .collect()
        })
        .collect();
    bar.finish_and_clear();
    Lists {
        lists,
        ids: data.items.clone(),
        version: new_manifest(choice.chosen.kind(), 0, data.items.len()).version,
    }
}

/// Each user's top k from a trained model version, from what they liked (positive
/// interactions): folded into its factors (with the confidence its manifest trained with,
/// each interaction counted once), or scored by its item-item weights (each item weighted
/// by its age as the version's recency says). Nothing they had, liked or not, is listed.
fn from_version(model: &Model, data: &Interactions, k: usize) -> Lists {
    let history = user_recency(data);
    let had = user_had(data);
    let ids = model.ids();
    // Interaction item index -> model row.
    let rows: Vec<Option<u32>> = data.items.iter().map(|id| model.row_of(id)).collect();
    let confidence = 1.0 + model.manifest().alpha() * 2f32.ln();
    let recency = model.manifest().recency();
    let bar = progress_count(data.users.len() as u64, "ranking");
    let lists = (0..data.users.len())
        .into_par_iter()
        .map(|u| {
            let (items, ages) = history.row(u);
            let (seen, seen_ages): (Vec<u32>, Vec<f32>) = items
                .iter()
                .zip(ages)
                .filter_map(|(&i, &age)| Some((rows[i as usize]?, age)))
                .unzip();
            let mut exclude: Vec<u32> = had
                .row(u)
                .0
                .iter()
                .filter_map(|&i| rows[i as usize])
                .collect();
            exclude.sort_unstable();
            bar.inc(1);
            let scores: Vec<f32> = match model {
                Model::Factors(f) => {
                    let items: Vec<(u32, f32)> = seen.iter().map(|&r| (r, confidence)).collect();
                    let Some(x) = f.fold_in(&items) else {
                        return Vec::new();
                    };
                    f.factors
                        .chunks_exact(f.dim())
                        .map(|y| dot(&x, y))
                        .collect()
                }
                Model::Neighbours(n) => {
                    neighbour_scores(ids.len(), |r| Some(n.row(r)), (&seen, &seen_ages), recency)
                }
            };
            top_k(&scores, k, &exclude)
                .into_iter()
                .map(|r| (r, scores[r as usize]))
                .collect()
        })
        .collect();
    bar.finish_and_clear();
    Lists {
        lists,
        ids: ids.to_vec(),
        version: model.manifest().version.clone(),
    }
}
