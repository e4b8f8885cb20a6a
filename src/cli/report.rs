//! `encore report`: the A/B read-out of the feedback events.

use crate::app::aws_settings;
use crate::feedback::KinesisStream;
use crate::offline::events::EventSource;
use crate::offline::report::{Tallies, build, render};
use crate::settings::{FeedbackKind, StorageArgs};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Read this feedback log directory instead of the configured backend.
    #[arg(long)]
    pub from: Option<PathBuf>,

    /// Only this experiment (all by default).
    #[arg(long, value_name = "EXPERIMENT")]
    pub only: Option<String>,

    /// The variant the others are compared with (when an experiment has none by this name,
    /// its variant with the most plays).
    #[arg(long, default_value = "control")]
    pub control: String,

    /// Confidence level of the intervals; the tests' significance level is one minus it,
    /// divided by the number of comparisons in the experiment.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,

    /// Only events that occurred at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,

    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `encore report`: reads the configured feedback backend (or `--from DIR`) and prints the
/// read-out.
pub async fn run(args: &ReportArgs) -> anyhow::Result<String> {
    if !(0.5..1.0).contains(&args.confidence) {
        anyhow::bail!("--confidence must be at least 0.5 and below 1");
    }
    let since = args
        .since
        .as_deref()
        .map(|s| OffsetDateTime::parse(s, &Rfc3339))
        .transpose()
        .context("--since takes an RFC 3339 time, e.g. 2026-11-01T00:00:00Z")?;
    let mut tallies = Tallies::since(since);
    let storage = &args.storage;
    let source = match (&args.from, storage.feedback) {
        (None, FeedbackKind::Kinesis) => EventSource::Stream(
            KinesisStream::connect(&aws_settings(storage), &storage.stream).await,
        ),
        (from, _) => EventSource::Log(
            from.clone()
                .unwrap_or_else(|| storage.data_dir.join("feedback")),
        ),
    };
    let malformed = source
        .read(|e| tallies.add(&e))
        .await
        .context("reading the feedback events")?;
    let mut report = build(&tallies, &args.control, args.confidence, malformed);
    if let Some(only) = &args.only {
        report.experiments.retain(|e| &e.experiment == only);
    }
    Ok(if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        render(&report)
    })
}
