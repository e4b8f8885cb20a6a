//! The `encore` command line: the root parser, logging, and one file per subcommand with its
//! clap arguments and its `run`. The settings the server is built from (`ServeArgs`,
//! `StorageArgs` and their groups) live in `crate::settings`, which the composition root reads.

pub mod batch_recommend;
pub mod catalog;
pub mod consume;
pub mod dead_letters;
pub mod evaluate;
pub mod init;
pub mod model;
pub mod report;
pub mod say;
pub mod serve;
pub mod train;

use crate::settings::ServeArgs;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "encore",
    version,
    about = "Encore: the backend of a voice-assistant music skill.",
    long_about = "Encore answers Alexa requests (POST /alexa) with music for a mood, genre or artist, \
and keeps each listener's profile and playback queue. With no configuration it runs on its \
embedded default: a local data file and the demo catalog in models/, no cloud account needed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: EncoreCommand,

    /// Log filter (tracing's EnvFilter syntax, e.g. `info,encore=debug`). Default: `info`
    /// for `serve`, `warn` for `say`.
    #[arg(long, env = "ENCORE_LOG", global = true)]
    pub log: Option<String>,

    /// Log format.
    #[arg(long, env = "ENCORE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum EncoreCommand {
    /// Run the HTTP server: the Alexa skill endpoint at POST /alexa and /healthz.
    Serve(Box<ServeArgs>),
    /// Create what the configured store needs (the DynamoDB table with its TTL, or the
    /// embedded file). Safe to run again: what exists is left as it is.
    Init(init::InitArgs),
    /// Fold feedback events from the local log into profiles, exactly once each, until
    /// Ctrl-C (or, with --once, until the log is consumed). `serve` already runs this in
    /// process; use it to catch up a data directory no server is running on.
    Consume(consume::ConsumeArgs),
    /// Say something to the skill as text and print what it would answer and play.
    ///
    /// Runs the same pipeline as the voice path (interaction model, profile, recommender,
    /// queue) on the same storage as `serve`.
    Say(say::SayArgs),
    /// Import, synthesize, export or index the track catalog.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Train a model from interactions and write a model version: implicit ALS (item
    /// factors), EASE or an item-kNN (item neighbours), the kind and its settings chosen by
    /// validation unless --kind says.
    Train(train::TrainArgs),
    /// Compare popularity, ALS, EASE, item-kNN and the default's choice (each tuned by
    /// validation) on held-out interactions: precision@k, recall@k, NDCG@k, coverage,
    /// novelty and diversity.
    Evaluate(evaluate::EvaluateArgs),
    /// Manage model versions.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Write the top k items for every user in an interaction file (excluding what they
    /// already have), to a CSV or into their profiles.
    BatchRecommend(batch_recommend::BatchRecommendArgs),
    /// The A/B read-out: per experiment, each variant's plays, completion rate and skip rate
    /// with confidence intervals, and whether each differs significantly from the control.
    ///
    /// Reads the feedback log (--feedback local, the default, or --from DIR; a running server
    /// may keep writing it) or the whole Kinesis stream (--feedback kinesis), counting each
    /// event id once. A play is a play that ended: finished, skipped (under 30 s) or stopped.
    Report(report::ReportArgs),
    /// Feedback records the consumer set aside because the store refused them: list them, or
    /// replay them into profiles once the cause is fixed.
    #[command(subcommand)]
    DeadLetters(dead_letters::DeadLettersCommand),
}

impl Cli {
    /// Sets up logging to stderr as `--log` and `--log-format` ask.
    pub fn init_logging(&self) {
        let default_level = match self.command {
            EncoreCommand::Say(_) => "warn",
            _ => "info",
        };
        let filter = match &self.log {
            Some(spec) => EnvFilter::try_new(spec).unwrap_or_else(|e| {
                eprintln!("encore: ignoring --log {spec:?}: {e}");
                EnvFilter::new(default_level)
            }),
            None => EnvFilter::new(default_level),
        };
        let ansi = std::io::stderr().is_terminal();
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi);
        match self.log_format {
            // JSON escapes what a field holds.
            LogFormat::Json => builder.json().with_writer(std::io::stderr).init(),
            // Text does not: a listener's token or id holding a newline could forge a line.
            LogFormat::Text => builder.with_writer(move || OneLine { ansi }).init(),
        }
    }

    /// Runs the subcommand; what it reports goes to stdout.
    pub async fn run(&self) -> anyhow::Result<()> {
        let done = match &self.command {
            EncoreCommand::Serve(args) => return serve::run(args).await,
            EncoreCommand::Say(args) => return say::run(args).await,
            EncoreCommand::Init(args) => init::run(&args.storage).await?,
            EncoreCommand::Consume(args) => consume::run(args).await?,
            EncoreCommand::DeadLetters(command) => dead_letters::run(command).await?,
            EncoreCommand::Catalog(command) => catalog::run(command)?,
            EncoreCommand::Train(args) => train::run(args).await?,
            EncoreCommand::Evaluate(args) => evaluate::run(args).await?,
            EncoreCommand::Model(command) => model::run(command).await?,
            EncoreCommand::BatchRecommend(args) => batch_recommend::run(args).await?,
            EncoreCommand::Report(args) => {
                print!("{}", report::run(args).await?);
                return Ok(());
            }
        };
        println!("{done}");
        Ok(())
    }
}

/// Stderr for text logs, one event per line whatever its fields hold: control characters
/// inside an event (a newline in a client's token, say) are written escaped (`\n`, `\x1b`),
/// and only the event's own final newline ends the line. The formatter hands each event
/// over in one write. With colours on, the escape character is the formatter's and is kept.
struct OneLine {
    ansi: bool,
}

impl std::io::Write for OneLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr()
            .lock()
            .write_all(&one_line(buf, self.ansi))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `buf` with every control character but a final newline (and, with `ansi`, the escape
/// character) written as an escape.
fn one_line(buf: &[u8], ansi: bool) -> Vec<u8> {
    let (body, end) = match buf.split_last() {
        Some((b'\n', body)) => (body, &b"\n"[..]),
        _ => (buf, &b""[..]),
    };
    let mut out = Vec::with_capacity(buf.len());
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b),
            0x1b if ansi => out.push(b),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn a_text_log_event_stays_on_one_line() {
        let forged = b"INFO report token=x\n2026-12-01T00:00:00Z ERROR forged\r\x1b[31m\n";
        let out = String::from_utf8(super::one_line(forged, false)).unwrap();
        assert_eq!(out.matches('\n').count(), 1, "{out:?}");
        assert!(out.ends_with('\n'));
        assert!(
            out.contains("x\\n2026") && out.contains("\\x1b[31m"),
            "{out:?}"
        );
        assert!(super::one_line(b"\x1b[2mcoloured\x1b[0m\n", true).starts_with(b"\x1b[2m"));
    }

    #[test]
    fn the_command_tree_is_consistent() {
        // clap's own checks: no two flags with one name, defaults that parse, and the rest.
        super::Cli::command().debug_assert();
    }
}
