//! `encore model`: import factors trained elsewhere as a version, list the versions, and
//! promote one (or roll back) by moving the pointer the servers follow, in a models
//! directory or in S3.

use crate::objects::{Location, ObjectStore};
use crate::recommend::model::{
    ItemFactors, MANIFEST_FILE, Model, new_manifest, read_external_factors,
};
use crate::recommend::{index_version, promote, publish, published, read_pointer, rollback};
use crate::settings::ObjectArgs;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Import item factors trained elsewhere as a model version.
    ///
    /// FILE holds an item-id column plus a vector: JSON lines ({"id": .., "features": [..]},
    /// as Spark MLlib's ALSModel.itemFactors.write.json writes them; also item_id/factors)
    /// or a CSV with a header whose first column is the item id and the rest either one
    /// "[x, y, ..]" column or one column per dimension.
    Import(ModelImportArgs),
    /// List the model versions, oldest upload first, and which one is promoted.
    List(ModelsArgs),
    /// Point the servers at VERSION: unpinned variants serve it from their next poll
    /// (--model-poll-secs), whatever is newer. The version before is remembered for
    /// `encore model rollback`.
    Promote(PromoteArgs),
    /// Point the servers back at the version promoted before the current one.
    Rollback(ModelsArgs),
    /// Build the ANN index "more like this" searches the whole catalog with, for a factor
    /// version in DIR written without one (`encore train` and `model import` write it
    /// themselves), or being written: the Spark job runs this (`--encore`) before it writes
    /// model.json. Servers that have the version loaded use it from their next load of it.
    Index(IndexArgs),
}

#[derive(Debug, Clone, Args)]
pub struct IndexArgs {
    /// The version's directory: item_factors.safetensors, and model.json unless the
    /// version is still being written (then the artifact's shape is taken as it is).
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ModelImportArgs {
    pub file: PathBuf,
    /// The models directory or s3://BUCKET/PREFIX: the model is written to
    /// <out>/versions/<version>/.
    #[arg(long, default_value = "models")]
    pub out: Location,
    /// The version name (default: imported-<time>).
    #[arg(long)]
    pub version: Option<String>,
    /// The regularization the factors were trained with (used to fold listeners in).
    #[arg(long, default_value_t = 0.1)]
    pub regularization: f32,
    #[command(flatten)]
    pub objects: ObjectArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ModelsArgs {
    /// The models directory or s3://BUCKET/PREFIX.
    #[arg(long, default_value = "models")]
    pub models: Location,
    #[command(flatten)]
    pub objects: ObjectArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PromoteArgs {
    /// The version to serve (a directory name under versions/).
    pub version: String,
    #[command(flatten)]
    pub at: ModelsArgs,
}

pub async fn run(command: &ModelCommand) -> anyhow::Result<String> {
    match command {
        ModelCommand::Import(args) => import(args).await,
        ModelCommand::List(args) => list(args).await,
        ModelCommand::Promote(args) => {
            let store = args.at.open().await;
            let pointer = promote(&*store, &args.version).await?;
            Ok(format!(
                "promoted {} in {} (before it: {}); servers follow at their next poll",
                pointer.version,
                store.describe(),
                pointer.history.last().map_or("none", String::as_str)
            ))
        }
        ModelCommand::Index(args) => {
            let dir = args.dir.clone();
            let built = tokio::task::spawn_blocking(move || index_version(&dir)).await??;
            Ok(format!(
                "indexed {} items in {} lists: {} ({} bytes)",
                built.items,
                built.lists,
                args.dir.join(crate::recommend::model::ANN_FILE).display(),
                built.bytes
            ))
        }
        ModelCommand::Rollback(args) => {
            let store = args.open().await;
            let pointer = rollback(&*store).await?;
            Ok(format!(
                "rolled back to {} in {}; servers follow at their next poll",
                pointer.version,
                store.describe()
            ))
        }
    }
}

impl ModelsArgs {
    async fn open(&self) -> Arc<dyn ObjectStore> {
        self.models.open(&self.objects.aws()).await
    }
}

/// `encore model list`.
async fn list(args: &ModelsArgs) -> anyhow::Result<String> {
    let store = args.open().await;
    let versions = published(&*store).await?;
    let pointer = read_pointer(&*store).await?.map(|(p, _)| p);
    let current = match &pointer {
        Some(p) => Some(p.version.as_str()),
        None => versions.last().map(|v| v.version.as_str()),
    };
    let mut out = format!(
        "{} model versions in {} ({})\n",
        versions.len(),
        store.describe(),
        match &pointer {
            Some(_) => "the promoted one is served",
            None => "nothing promoted: the newest is served",
        }
    );
    for v in &versions {
        let mark = if Some(v.version.as_str()) == current {
            "  <- served"
        } else {
            ""
        };
        let at = time::OffsetDateTime::from_unix_timestamp(v.modified)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        out += &format!("{:<40} uploaded {at}{mark}\n", v.version);
    }
    Ok(out.trim_end().to_owned())
}

/// Writes `model` as a version into `out`: saved into a models directory, or uploaded to
/// object storage with `model.json` last. Returns where it went.
pub async fn write_version(
    model: &Model,
    out: &Location,
    objects: &ObjectArgs,
) -> anyhow::Result<String> {
    let version = model.manifest().version.clone();
    if let Some(dir) = out.dir() {
        let at = dir
            .join(crate::recommend::model::VERSIONS_DIR)
            .join(&version);
        if at.join(MANIFEST_FILE).exists() {
            bail!("model version {version} already exists in {}", at.display());
        }
        model.save(&at)?;
        return Ok(at.display().to_string());
    }
    let staging = tempfile_dir()?;
    let local = staging.join(&version);
    model.save(&local)?;
    let store = out.open(&objects.aws()).await;
    let sent = publish(&*store, &local, &version).await;
    let _ = std::fs::remove_dir_all(&staging);
    sent.with_context(|| format!("uploading model {version} to {out}"))?;
    Ok(format!("{out}/versions/{version}"))
}

/// A fresh directory for a version on its way to or from object storage.
pub fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("encore-model-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `encore model import`.
async fn import(args: &ModelImportArgs) -> anyhow::Result<String> {
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
    let model = Model::Factors(ItemFactors::new(manifest, ids, factors));
    let at = write_version(&model, &args.out, &args.objects).await?;
    Ok(format!(
        "imported {} item vectors of {} dimensions as model {} in {at}",
        model.ids().len(),
        dim,
        model.manifest().version,
    ))
}
