//! `encore model import`: item factors trained elsewhere as a model version.

use crate::recommend::model::{ItemFactors, VERSIONS_DIR, new_manifest, read_external_factors};
use anyhow::bail;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Import item factors trained elsewhere as a model version.
    ///
    /// FILE holds an item-id column plus a vector: JSON lines ({"id": .., "features": [..]},
    /// as Spark MLlib's ALSModel.itemFactors.write.json writes them; also item_id/factors)
    /// or a CSV with a header whose first column is the item id and the rest either one
    /// "[x, y, ..]" column or one column per dimension.
    Import(ModelImportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ModelImportArgs {
    pub file: PathBuf,
    /// The models directory: the model is written to <out>/versions/<version>/.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// The version name (default: imported-<time>).
    #[arg(long)]
    pub version: Option<String>,
    /// The regularization the factors were trained with (used to fold listeners in).
    #[arg(long, default_value_t = 0.1)]
    pub regularization: f32,
}

pub fn run(command: &ModelCommand) -> anyhow::Result<String> {
    match command {
        ModelCommand::Import(args) => import(args),
    }
}

/// `encore model import`.
fn import(args: &ModelImportArgs) -> anyhow::Result<String> {
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
