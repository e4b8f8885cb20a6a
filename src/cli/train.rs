//! `encore train`: item embeddings (implicit ALS) from interactions, written as a model
//! version with its metrics.

use crate::offline::evaluate::{evaluate, split_by_time};
use crate::offline::train::{AlsParams, train_model};
use crate::offline::{metrics_json, read_interactions, table};
use crate::recommend::model::VERSIONS_DIR;
use clap::Args;
use std::path::PathBuf;

/// Implicit-ALS parameters for training.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Model training")]
pub struct AlsArgs {
    /// Embedding dimensions.
    #[arg(long, default_value_t = 32)]
    pub factors: usize,
    /// Alternating least-squares sweeps.
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// L2 regularization.
    #[arg(long, default_value_t = 0.05)]
    pub regularization: f32,
    /// Confidence scale: an interaction of strength r counts 1 + alpha * ln(1 + r).
    #[arg(long, default_value_t = 20.0)]
    pub alpha: f32,
    /// Seed of the initial factors.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

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

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// A CSV of user_id,item_id,timestamp[,rating], or a feedback log directory.
    #[arg(long)]
    pub interactions: PathBuf,
    /// The models directory: the model is written to <out>/versions/<version>/.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// k of the metrics recorded in the manifest (measured on a per-user time split first).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Skip the evaluation; the manifest then has no metrics.
    #[arg(long)]
    pub no_metrics: bool,
    #[command(flatten)]
    pub als: AlsArgs,
}

/// `encore train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<String> {
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
