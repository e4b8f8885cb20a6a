//! `encore catalog import|synth|export|index`: the track catalog from a CSV export, or
//! synthesised, written as Parquet with its song search index saved beside it.

use crate::domain::Track;
use crate::offline::train::progress_count;
use crate::offline::{CATALOG_FILE, PLACEHOLDER_STREAM, catalog_manifest, synth};
use crate::recommend::{
    Catalog, Manifest, SEARCH_FILE, read_tracks_csv, write_tracks_csv, write_tracks_parquet,
};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Import a CSV of tracks (Spotify audio-features export columns) as the catalog, written
    /// as catalog.parquet (the columns of the CSV, typed), which serving loads in columns.
    ///
    /// Required columns: track_id, artists, track_name. Optional (defaulted when missing or
    /// empty): album_name, popularity (0), duration_ms (200000), explicit (false),
    /// danceability, energy, valence, acousticness (0.5), instrumentalness (0), tempo (120),
    /// track_genre (unknown). Other columns are ignored. Bad rows are reported with their
    /// line number and skipped; a repeated track_id keeps its first row.
    Import(CatalogImportArgs),
    /// Write a synthetic catalog of any size (and, optionally, listening histories with
    /// planted structure) for benchmarks and evaluation.
    Synth(CatalogSynthArgs),
    /// Write a models directory's catalog (Parquet or CSV) as CSV, to read it with tools
    /// that do not read Parquet.
    Export(CatalogExportArgs),
    /// Build the song search index of a models directory's catalog and save it beside it
    /// (catalog.search, named in manifest.json), so serving maps it instead of building it
    /// at start. `import` and `synth` do this themselves; run it for a catalog written
    /// elsewhere (Spark, pandas).
    Index(CatalogIndexArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CatalogIndexArgs {
    /// The models directory whose catalog to index.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CatalogExportArgs {
    /// The models directory whose catalog to export.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// The CSV file to write.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CatalogImportArgs {
    /// The CSV to import.
    pub file: PathBuf,
    /// The models directory to write catalog.parquet and manifest.json into.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// Stream URL template ({track_id} is replaced); default: the existing manifest's.
    #[arg(long)]
    pub stream_url_template: Option<String>,
    /// Cover art URL template; default: the existing manifest's.
    #[arg(long)]
    pub art_url_template: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CatalogSynthArgs {
    /// How many tracks.
    #[arg(long, default_value_t = 10_000)]
    pub tracks: usize,
    /// The directory to write catalog.parquet and manifest.json into.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write interactions.csv with this many listeners.
    #[arg(long, default_value_t = 0)]
    pub users: usize,
    /// Average plays per listener in interactions.csv.
    #[arg(long, default_value_t = 20)]
    pub plays_per_user: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

pub fn run(command: &CatalogCommand) -> anyhow::Result<String> {
    match command {
        CatalogCommand::Import(args) => import(args),
        CatalogCommand::Synth(args) => synthesize(args),
        CatalogCommand::Export(args) => export(args),
        CatalogCommand::Index(args) => index(&args.models, None),
    }
}

/// `encore catalog index`: loads the catalog (building its search index) and saves the index
/// beside it. With `manifest`, the catalog it names, and the manifest is written (naming
/// the index) only then: a server watching `models` swaps in the new catalog once, with
/// its index.
fn index(models: &std::path::Path, manifest: Option<Manifest>) -> anyhow::Result<String> {
    eprintln!("loading {} and building its search index", models.display());
    let started = std::time::Instant::now();
    let catalog = match manifest {
        Some(manifest) => Catalog::load_as(models, manifest)?,
        None => Catalog::load(models)?,
    };
    catalog.save_search_index(models)?;
    Ok(format!(
        "saved the search index of {} tracks to {} in {:.1} s",
        catalog.len(),
        models.join(SEARCH_FILE).display(),
        started.elapsed().as_secs_f64()
    ))
}

/// `encore catalog export`.
fn export(args: &CatalogExportArgs) -> anyhow::Result<String> {
    let catalog = Catalog::load(&args.models)?;
    let tracks = catalog.tracks();
    let written = write_tracks_csv(&args.out, tracks.iter().map(|t| t.as_ref()))?;
    Ok(format!(
        "wrote {written} tracks of {} to {}",
        args.models.display(),
        args.out.display()
    ))
}

/// `encore catalog import`.
fn import(args: &CatalogImportArgs) -> anyhow::Result<String> {
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
    let (bad, duplicates) = (read.bad.len(), read.duplicates);
    let manifest = catalog_manifest(
        &args.out,
        args.stream_url_template.as_ref(),
        args.art_url_template.as_ref(),
        read.tracks.len(),
        &args.file.display().to_string(),
    )?;
    // The catalog first, its search index, and the manifest that names them last.
    let written = write_tracks_parquet(&args.out.join(CATALOG_FILE), &read.tracks)?;
    drop(read);
    let indexed = index(&args.out, Some(manifest))?;
    Ok(format!(
        "imported {written} tracks into {} ({} bad rows skipped, {} repeated track ids dropped)\n{indexed}",
        args.out.display(),
        bad,
        duplicates
    ))
}

/// `encore catalog synth`. Without listeners the tracks are written as they are made, so
/// the size is bounded by the disk, not memory (100M tracks: about 6 GB of Parquet); with
/// listeners they are held, as their histories are drawn from them.
fn synthesize(args: &CatalogSynthArgs) -> anyhow::Result<String> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let manifest = catalog_manifest(&args.out, None, None, args.tracks, "encore catalog synth")?;
    let path = args.out.join(CATALOG_FILE);
    let progress = progress_count(args.tracks as u64, "tracks");
    let made = synth::each_track(args.tracks, args.seed, PLACEHOLDER_STREAM, None)
        .inspect(|_| progress.inc(1));
    let (written, tracks) = if args.users > 0 {
        let tracks: Vec<Track> = made.collect();
        (write_tracks_parquet(&path, &tracks)?, tracks)
    } else {
        (write_tracks_parquet(&path, made)?, Vec::new())
    };
    progress.finish_and_clear();
    let mut done = format!(
        "wrote {written} synthetic tracks to {}\n{}",
        args.out.display(),
        index(&args.out, Some(manifest))?
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
