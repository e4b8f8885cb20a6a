//! `encore consume`: folds the feedback backend (the local log or the stream) into profiles,
//! each event exactly once.

use crate::app::{Components, shutdown_signal};
use crate::feedback::Progress;
use crate::settings::StorageArgs;
use anyhow::Context;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Stop once everything in the log has been folded in, and print the totals.
    #[arg(long)]
    pub once: bool,
}

/// `encore consume`: folds the local log into the store, until it is consumed (`once`) or
/// until Ctrl-C/SIGTERM.
pub async fn run(args: &ConsumeArgs) -> anyhow::Result<String> {
    let parts = Components::load(&args.storage).await?;
    let consumer = parts.consumer();
    if !args.once {
        consumer.run(shutdown_signal()).await;
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
