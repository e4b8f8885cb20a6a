//! `encore batch-recommend`: every user's top k, to a CSV or into their profiles.

use super::train::AlsArgs;
use crate::app::open_store;
use crate::domain::{PRECOMPUTED_LIMIT, Precomputed, TrackId};
use crate::offline::evaluate::top_k;
use crate::offline::train::{AlsParams, progress_count, train_model};
use crate::offline::{history_of, read_interactions};
use crate::recommend::model::{ItemFactors, dot};
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
    pub interactions: PathBuf,
    /// How many items per user.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Write user_id,rank,item_id,score here.
    #[arg(long, required_unless_present = "to_profiles")]
    pub out: Option<PathBuf>,
    /// Use this model version directory instead of training on the interactions.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Store each user's list in their profile (the configured store), where the serving
    /// path uses it while fresh.
    #[arg(long)]
    pub to_profiles: bool,
    #[command(flatten)]
    pub als: AlsArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `encore batch-recommend`.
pub async fn run(args: &BatchRecommendArgs) -> anyhow::Result<String> {
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
