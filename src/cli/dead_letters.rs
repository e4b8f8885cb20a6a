//! `encore dead-letters`: the feedback records the consumer set aside because the store
//! refused them, listed, and replayed once what refused them is fixed.

use crate::app::Components;
use crate::feedback::{Replayed, replay};
use crate::settings::StorageArgs;
use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// One line per record set aside: its id (stream/shard/position), when, its size and
    /// why. With --json, the letters as JSON lines (the record included).
    List(ListArgs),
    /// Fold the records set aside into profiles again, each exactly once: one that is
    /// applied (or was already) is removed; one still refused stays, with the new reason.
    Replay(ReplayArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub storage: StorageArgs,

    /// The most letters shown.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,

    /// JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Only the letter with this id (as `list` shows it).
    #[arg(long)]
    pub id: Option<String>,

    /// The most letters replayed in this run.
    #[arg(long, default_value_t = 10_000)]
    pub limit: usize,
}

pub async fn run(command: &DeadLettersCommand) -> anyhow::Result<String> {
    match command {
        DeadLettersCommand::List(args) => list(args).await,
        DeadLettersCommand::Replay(args) => replay_all(args).await,
    }
}

async fn list(args: &ListArgs) -> anyhow::Result<String> {
    let parts = Components::load(&args.storage).await?;
    let letters = parts
        .store
        .dead_letters(args.limit)
        .await
        .context("reading the dead letters")?;
    let mut out = String::new();
    for letter in &letters {
        let line = if args.json {
            serde_json::to_string(letter)?
        } else {
            let at = time::OffsetDateTime::from_unix_timestamp(letter.at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| letter.at.to_string());
            let kept = if letter.record.is_some() {
                ""
            } else {
                ", record not kept"
            };
            format!(
                "{}  {at}  {} bytes{kept}  {}",
                letter.id,
                letter.bytes,
                letter.reason.escape_debug()
            )
        };
        out.push_str(&line);
        out.push('\n');
    }
    if !args.json {
        out.push_str(&format!("{} dead letter(s)", letters.len()));
    }
    Ok(out.trim_end().to_owned())
}

async fn replay_all(args: &ReplayArgs) -> anyhow::Result<String> {
    let parts = Components::load(&args.storage).await?;
    let catalog: std::sync::Arc<dyn crate::domain::TrackLookup> =
        parts.service.recommender().clone();
    let letters = parts
        .store
        .dead_letters(args.limit)
        .await
        .context("reading the dead letters")?;
    let (mut applied, mut kept) = (0, 0);
    for letter in letters
        .iter()
        .filter(|l| args.id.as_ref().is_none_or(|id| *id == l.id))
    {
        match replay(&parts.store, &catalog, letter)
            .await
            .with_context(|| format!("replaying {}", letter.id))?
        {
            Replayed::Applied => applied += 1,
            Replayed::Kept(reason) => {
                tracing::warn!(id = letter.id, reason, "dead letter still refused; kept");
                kept += 1;
            }
        }
    }
    parts.store.flush().await?;
    Ok(format!(
        "replayed {applied} dead letter(s) into profiles; {kept} still refused and kept"
    ))
}
