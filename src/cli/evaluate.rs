//! `encore evaluate`: the trained model against a popularity baseline on held-out
//! interactions.

use super::train::AlsArgs;
use crate::offline::evaluate::{evaluate, split_by_time, test_from};
use crate::offline::train::AlsParams;
use crate::offline::{read_interactions, table};
use anyhow::bail;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// A CSV of user_id,item_id,timestamp[,rating], or a feedback log directory.
    #[arg(long)]
    pub interactions: PathBuf,
    /// Length of the ranked lists scored.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Score this held-out file instead of splitting each user's history by time.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Share of each user's latest interactions held out.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Score at most this many held-out users (evenly spread).
    #[arg(long, default_value_t = 20_000)]
    pub max_users: usize,
    /// Print one JSON object with each method's metrics.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub als: AlsArgs,
}

/// `encore evaluate`.
pub fn run(args: &EvaluateArgs) -> anyhow::Result<String> {
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
