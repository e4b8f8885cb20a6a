//! `encore train`: a model version from interactions: implicit ALS embeddings, or an
//! item-item model (EASE, item-kNN), the kind and its settings chosen by validation, written
//! with its metrics and every validation score.

use crate::objects::Location;
use crate::offline::evaluate::{Protocol, split};
use crate::offline::select::{Blends, Candidate, Grid, choose, evaluate};
use crate::offline::train::AlsParams;
use crate::offline::{load_interactions, metrics_json, table};
use crate::recommend::model::Model;
use crate::recommend::promote;
use crate::settings::ObjectArgs;
use clap::{Args, ValueEnum};

/// Implicit-ALS parameters for training.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Model training")]
pub struct AlsArgs {
    /// Embedding dimensions.
    #[arg(long, default_value_t = 64)]
    pub factors: usize,
    /// Alternating least-squares sweeps.
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// L2 regularization (validation also tries 10).
    #[arg(long, default_value_t = 0.05)]
    pub regularization: f32,
    /// Confidence scale: an interaction of strength r counts 1 + alpha * ln(1 + r)
    /// (validation also tries 5).
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

/// The model kinds a command can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// Every kind below; validation keeps the best.
    Auto,
    /// Implicit ALS.
    Als,
    /// EASE, on the most played items.
    Ease,
    /// Cosine item-kNN.
    ItemKnn,
    /// Items by how many users had them.
    Popularity,
}

/// Which model kinds validation chooses among.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Model choice")]
pub struct ModelKindArg {
    /// Which kind of model. Each kind's settings are chosen on two validation parts held
    /// out of the training data (each user's last interaction, and every third user's
    /// latest 20%): ALS with interactions as given or each as one and a few
    /// regularizations, EASE with L2 weights 50 to 2000, item-kNN with 20 to 200
    /// neighbours; `auto` keeps the best of them.
    #[arg(long = "kind", value_enum, default_value_t = ModelKind::Auto)]
    pub kind: ModelKind,
}

impl ModelKindArg {
    /// The candidates of the chosen kind (all of them for `auto`), blends of their best
    /// tried or not.
    /// For data of `items` items (the grid shrinks on large catalogs).
    pub fn grid(&self, als: AlsParams, blends: Blends, items: usize) -> Grid {
        Grid {
            candidates: self.candidates(als, items),
            blends,
        }
    }

    fn candidates(&self, als: AlsParams, items: usize) -> Vec<Candidate> {
        let wanted = match self.kind {
            ModelKind::Auto => None,
            ModelKind::Als => Some("als"),
            ModelKind::Ease => Some("ease"),
            ModelKind::ItemKnn => Some("item-knn"),
            ModelKind::Popularity => return vec![Candidate::Popularity],
        };
        Candidate::grid(als, items)
            .into_iter()
            .filter(|c| wanted.is_none_or(|w| c.kind() == w))
            .collect()
    }
}

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// A CSV of user_id,item_id,timestamp[,rating], a feedback log directory, or the
    /// feedback archive: s3://BUCKET/PREFIX (or a local copy of it), optionally only from a
    /// time partition on (s3://BUCKET/PREFIX/2026/12/01). Archived events count once each.
    #[arg(long)]
    pub interactions: Location,
    /// The models directory or s3://BUCKET/PREFIX: the model is written to
    /// <out>/versions/<version>/ (model.json last).
    #[arg(long, default_value = "models")]
    pub out: Location,
    /// Also promote the new version (`encore model promote`), so servers following the
    /// pointer serve it from their next poll.
    #[arg(long)]
    pub promote: bool,
    #[command(flatten)]
    pub objects: ObjectArgs,
    /// k of the metrics recorded in the manifest (measured on a per-user time split first).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Skip the evaluation; the manifest then has no metrics.
    #[arg(long)]
    pub no_metrics: bool,
    #[command(flatten)]
    pub kind: ModelKindArg,
    #[command(flatten)]
    pub als: AlsArgs,
}

/// `encore train`.
pub async fn run(args: &TrainArgs) -> anyhow::Result<String> {
    if args.kind.kind == ModelKind::Popularity {
        anyhow::bail!(
            "popularity needs no model version: the catalog already ranks by it (choose als, ease, item-knn or auto)"
        );
    }
    let data = load_interactions(&args.interactions, &args.objects.aws()).await?;
    let grid = args.kind.grid(
        AlsParams::from(&args.als),
        Blends::NotTried,
        data.items.len(),
    );
    let (chosen, report, validation) = if args.no_metrics {
        eprintln!(
            "choosing the model on two validation parts ({} candidates, k = {})",
            grid.candidates.len(),
            args.k
        );
        let choice = choose(&data, args.k, &grid);
        (choice.chosen, None, choice.tried)
    } else {
        eprintln!(
            "measuring on a per-user time split, the model chosen on validation parts inside its training part (k = {})",
            args.k
        );
        let split = split(&data, Protocol::Latest(0.2));
        let report = evaluate(
            &split.train,
            &split.test,
            data.rows.len(),
            args.k,
            Protocol::Latest(0.2),
            &grid,
            20_000,
        );
        let validation = report.validation.clone();
        (report.chosen.clone(), Some(report), validation)
    };
    eprintln!(
        "training on {} interactions ({} users, {} items) with {} {}",
        data.rows.len(),
        data.users.len(),
        data.items.len(),
        chosen.kind(),
        chosen.settings()
    );
    let started = std::time::Instant::now();
    let Some(mut model) = chosen.served(&data) else {
        anyhow::bail!("validation chose {}, which cannot be served", chosen.kind());
    };
    let manifest = model.manifest_mut();
    manifest
        .data
        .insert("source".into(), args.interactions.to_string().into());
    manifest.data.insert(
        "train_seconds".into(),
        started.elapsed().as_secs_f64().into(),
    );
    if let Some(report) = &report {
        manifest.metrics = metrics_json(report);
    }
    manifest.metrics.insert(
        "validation".into(),
        serde_json::json!({
            "split": "of the training data: each user's last interaction, and every third user's latest 20%",
            "score": "NDCG@k on each part over popularity's, averaged",
            "chosen": { "kind": chosen.kind(), "settings": chosen.settings() },
            "tried": validation,
        }),
    );
    let version = manifest.version.clone();
    let at = super::model::write_version(&model, &args.out, &args.objects).await?;
    let shape = match &model {
        Model::Factors(f) => format!("{} items × {} factors", f.ids.len(), f.dim()),
        Model::Neighbours(n) => format!(
            "{} items, {} neighbours in all",
            n.ids.len(),
            n.indices.len()
        ),
    };
    let mut done = format!("wrote {} model {version} ({shape}) to {at}", chosen.kind());
    if args.promote {
        let store = args.out.open(&args.objects.aws()).await;
        promote(&*store, &version).await?;
        done += &format!(
            "\npromoted {version}: servers following {} serve it from their next poll",
            args.out
        );
    }
    if let Some(r) = report {
        done += &format!("\n{}", table(&r));
    }
    Ok(done)
}
