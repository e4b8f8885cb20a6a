//! `encore consume`: folds the feedback backend (the local log or the stream) into profiles,
//! each event exactly once, and with `--archive` writes every folded page to the feedback
//! archive (the training set) before checkpointing past it.

use crate::app::{Components, aws_settings, shutdown_signal};
use crate::feedback::{Archive, POLL, Progress};
use crate::objects::Location;
use crate::settings::{StorageArgs, seconds};
use anyhow::Context;
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Stop once everything in the log has been folded in, and print the totals.
    #[arg(long)]
    pub once: bool,

    /// Also archive every folded event here (s3://BUCKET/PREFIX or a directory) as gzip
    /// JSON lines under YYYY/MM/DD/HH/, the format the stack's Firehose writes; `encore
    /// train --interactions` reads it. A page is archived before the checkpoint passes it.
    #[arg(long, value_name = "LOCATION")]
    pub archive: Option<Location>,

    /// With --archive: how long to wait after a pass that found less than a page, so a
    /// quiet stream makes one archive object per interval, not one per event.
    #[arg(long = "archive-linger-secs", default_value = "60", value_parser = seconds)]
    pub archive_linger: Duration,
}

/// `encore consume`: folds the local log into the store, until it is consumed (`once`) or
/// until Ctrl-C/SIGTERM.
pub async fn run(args: &ConsumeArgs) -> anyhow::Result<String> {
    let parts = Components::load(&args.storage).await?;
    let mut consumer = parts.consumer();
    let mut idle = POLL;
    if let Some(at) = &args.archive {
        let store = at.open(&aws_settings(&args.storage)).await;
        tracing::info!(archive = store.describe(), "archiving folded feedback");
        consumer = consumer.with_archive(Arc::new(Archive::new(store)));
        idle = args.archive_linger.max(POLL);
    }
    if !args.once {
        consumer.run(shutdown_signal(), idle).await;
        parts.store.flush().await?;
        return Ok("consumer stopped".into());
    }
    let mut total = Progress::default();
    loop {
        let p = consumer
            .pass()
            .await
            .context("folding feedback into profiles")?;
        total.applied += p.applied;
        total.duplicates += p.duplicates;
        total.malformed += p.malformed;
        total.set_aside += p.set_aside;
        if p == Progress::default() {
            break;
        }
    }
    parts.store.flush().await?;
    Ok(format!(
        "applied {} events, {} duplicates skipped, {} records set aside as dead letters ({} of them malformed; encore dead-letters list)",
        total.applied, total.duplicates, total.set_aside, total.malformed
    ))
}
