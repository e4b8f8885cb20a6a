//! `encore evaluate`: popularity, ALS, EASE and item-kNN (each tuned by validation inside
//! the training part), the default's choice and the serving path's own ranking (with
//! `--sweep-serving`, under other weights too), on held-out interactions.

use super::train::{AlsArgs, ModelKindArg};
use crate::objects::Location;
use crate::offline::evaluate::{Judge, Protocol, split, test_from};
use crate::offline::ranker::ServingPath;
use crate::offline::select::{Blends, Scored, evaluate};
use crate::offline::train::{AlsParams, Interactions, Strength, user_items};
use crate::offline::{load_interactions, read_interactions, table};
use crate::recommend::RankWeights;
use crate::settings::ObjectArgs;
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// How the held-out part is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// Each user's latest --test-fraction of interactions.
    Time,
    /// Each user's last interaction (next-item).
    Last,
}

#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// A CSV of user_id,item_id,timestamp[,rating], a feedback log directory, or the
    /// feedback archive (s3://BUCKET/PREFIX[/YYYY/MM/DD], or a local copy of it).
    #[arg(long)]
    pub interactions: Location,
    /// Length of the ranked lists scored.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Score this held-out file instead of splitting each user's history by time.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// How each user's history is split (validation inside the training part is held out
    /// the same way).
    #[arg(long, value_enum, default_value_t = ProtocolArg::Time)]
    pub protocol: ProtocolArg,
    /// Share of each user's latest interactions held out (with --protocol time).
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Score at most this many held-out users (evenly spread).
    #[arg(long, default_value_t = 20_000)]
    pub max_users: usize,
    /// Also write the split used here as DIR/train.csv and DIR/test.csv
    /// (user_id,item_id,timestamp,rating), for scoring other tools on the same one.
    #[arg(long, value_name = "DIR")]
    pub split_out: Option<PathBuf>,
    /// Also score the serving path with each of its blend's weights (`RankWeights`) in turn
    /// zeroed, halved and doubled, beside the defaults.
    #[arg(long)]
    pub sweep_serving: bool,
    /// Print one JSON object with each method's metrics.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub kind: ModelKindArg,
    #[command(flatten)]
    pub als: AlsArgs,
    #[command(flatten)]
    pub objects: ObjectArgs,
}

/// `encore evaluate`.
pub async fn run(args: &EvaluateArgs) -> anyhow::Result<String> {
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    if !(0.0..1.0).contains(&args.test_fraction) {
        bail!("--test-fraction must be at least 0 and below 1");
    }
    let protocol = match args.protocol {
        ProtocolArg::Time => Protocol::Latest(args.test_fraction),
        ProtocolArg::Last => Protocol::Last,
    };
    let data = load_interactions(&args.interactions, &args.objects.aws()).await?;
    let total = data.rows.len();
    let (train, test) = match &args.test {
        Some(path) => {
            let held = read_interactions(path)?;
            let mut train = data;
            let test = test_from(&mut train, &held);
            (train, test)
        }
        None => {
            let split = split(&data, protocol);
            (split.train, split.test)
        }
    };
    if test.is_empty() {
        bail!("nothing to score: no user has held-out interactions");
    }
    let grid = args
        .kind
        .grid(AlsParams::from(&args.als), Blends::Tried, train.items.len());
    if let Some(dir) = &args.split_out {
        write_split(dir, &train, &test)
            .with_context(|| format!("writing the split to {}", dir.display()))?;
    }
    let mut report = evaluate(
        &train,
        &test,
        total,
        args.k,
        protocol,
        &grid,
        args.max_users,
    );
    // The serving path on the same split, scoring the same users.
    let scored: Vec<(u32, Vec<u32>)> = test
        .into_iter()
        .filter(|(u, _)| report.scored_users.binary_search(u).is_ok())
        .collect();
    let started = std::time::Instant::now();
    let path = ServingPath::build(&train, &report);
    let judge = Judge::new(&user_items(&train, Strength::Binary), train.items.len());
    let defaults = RankWeights::default();
    let serving = path
        .score(&train, &scored, args.k, &judge, "default", defaults)
        .await;
    report.methods.insert(
        "serving".into(),
        Scored {
            settings: serde_json::json!({ "served": path.served.kind(), "weights": defaults }),
            metrics: serving.metrics,
            fit_seconds: started.elapsed().as_secs_f64(),
        },
    );
    if args.sweep_serving {
        for (name, weights) in defaults.sweep() {
            let s = path
                .score(&train, &scored, args.k, &judge, &name, weights)
                .await;
            report.sweep.push(s);
        }
    }
    Ok(if args.json {
        serde_json::to_string(&report)?
    } else {
        table(&report)
    })
}

/// The training rows as they are, and each held-out item as a row (timestamp 0, rating 1).
fn write_split(dir: &Path, train: &Interactions, test: &[(u32, Vec<u32>)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let header = ["user_id", "item_id", "timestamp", "rating"];
    let mut w = csv::Writer::from_path(dir.join("train.csv"))?;
    w.write_record(header)?;
    for r in &train.rows {
        w.write_record([
            train.users[r.user as usize].as_str(),
            &train.items[r.item as usize],
            &r.ts.to_string(),
            &r.weight.to_string(),
        ])?;
    }
    w.flush()?;
    let mut w = csv::Writer::from_path(dir.join("test.csv"))?;
    w.write_record(header)?;
    for (u, items) in test {
        for &i in items {
            w.write_record([
                train.users[*u as usize].as_str(),
                &train.items[i as usize],
                "0",
                "1",
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}
