//! The one typed settings tree: command-line flags, each with an `ENCORE_*` environment
//! variable and a default. Nothing else in the code reads the environment.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

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
    pub command: Command,

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
pub enum Command {
    /// Run the HTTP server: the Alexa skill endpoint at POST /alexa and /healthz.
    Serve(ServeArgs),
    /// Create what the configured store needs (the DynamoDB table with its TTL, or the
    /// embedded file). Safe to run again: what exists is left as it is.
    Init(InitArgs),
    /// Fold feedback events from the local log into profiles, exactly once each, until
    /// Ctrl-C (or, with --once, until the log is consumed). `serve` already runs this in
    /// process; use it to catch up a data directory no server is running on.
    Consume(ConsumeArgs),
    /// Say something to the skill as text and print what it would answer and play.
    ///
    /// Runs the same pipeline as the voice path (interaction model, profile, recommender,
    /// queue) on the same storage as `serve`.
    Say(SayArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// A redb file under --data-dir (one machine, no cloud account).
    Embedded,
    /// A DynamoDB table (`<table-prefix>encore`); region and credentials from the standard
    /// AWS variables.
    Dynamodb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FeedbackKind {
    /// An append-only log under --data-dir, folded into profiles by `serve` itself.
    Local,
    /// A Kinesis data stream (--stream), fed through a durable spool under --data-dir;
    /// `encore consume` folds it into profiles.
    Kinesis,
}

/// Where the data, the models and the interaction model are.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Where profiles, queues and playlists are kept.
    #[arg(long, env = "ENCORE_STORE", value_enum, default_value_t = StoreKind::Embedded)]
    pub store: StoreKind,

    /// DynamoDB and Kinesis endpoint URL, for a local compatible server (default: AWS's).
    #[arg(long, env = "ENCORE_AWS_ENDPOINT")]
    pub aws_endpoint: Option<String>,

    /// Where feedback events go.
    #[arg(long, env = "ENCORE_FEEDBACK", value_enum, default_value_t = FeedbackKind::Local)]
    pub feedback: FeedbackKind,

    /// The Kinesis stream, with --feedback kinesis.
    #[arg(long, env = "ENCORE_STREAM", default_value = "encore-feedback")]
    pub stream: String,

    /// Prefix of the DynamoDB table name (the table is `<prefix>encore`), e.g. `prod-`.
    #[arg(long, env = "ENCORE_TABLE_PREFIX", default_value = "")]
    pub table_prefix: String,

    /// Longest a DynamoDB call may take, retries included, in milliseconds (each attempt
    /// gets a third of it).
    #[arg(long, env = "ENCORE_STORE_TIMEOUT_MS", default_value_t = 1000)]
    pub store_timeout_ms: u64,

    /// How long a profile stays in the in-process cache in front of DynamoDB, in milliseconds
    /// (0 turns it off; the embedded store needs none).
    #[arg(long, env = "ENCORE_PROFILE_CACHE_TTL_MS", default_value_t = 30_000)]
    pub profile_cache_ttl_ms: u64,

    /// How long the voice path waits for any one store call before it goes on without it, in
    /// milliseconds: a profile read over budget serves the listener as a new one.
    #[arg(long, env = "ENCORE_STORE_BUDGET_MS", default_value_t = 150)]
    pub store_budget_ms: u64,

    /// Directory of the embedded store (profiles and playback queues).
    #[arg(long, env = "ENCORE_DATA_DIR", default_value = ".encore")]
    pub data_dir: PathBuf,

    /// Directory of the recommender artifacts (manifest.json and the catalog).
    #[arg(long, env = "ENCORE_MODELS", default_value = "models")]
    pub models: PathBuf,

    /// Directory of the interaction model (the ask-cli skill package).
    #[arg(long, env = "ENCORE_INTENTS", default_value = "intents")]
    pub intents: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "ENCORE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub storage: StorageArgs,

    /// Skill id(s) whose requests are accepted (repeat the flag, or comma-separate in the
    /// environment variable). Required unless --no-verify.
    #[arg(long = "skill-id", env = "ENCORE_SKILL_ID", value_delimiter = ',')]
    pub skill_ids: Vec<String>,

    /// Accept unsigned requests. For local development only: anyone who can reach the port
    /// can then act as any listener.
    #[arg(long, env = "ENCORE_NO_VERIFY")]
    pub no_verify: bool,

    /// Largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "ENCORE_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Stop once everything in the log has been folded in, and print the totals.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SayArgs {
    /// The listener to speak as.
    #[arg(long, env = "ENCORE_SAY_USER", default_value = "local-user")]
    pub user: String,

    /// Locale of the utterance (one of the locales in intents/).
    #[arg(long, env = "ENCORE_SAY_LOCALE", default_value = "en-US")]
    pub locale: String,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub storage: StorageArgs,

    /// What to say, e.g. "play something relaxing".
    #[arg(required = true, num_args = 1..)]
    pub text: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "request verification is on but no skill id is configured: pass --skill-id (ENCORE_SKILL_ID), or --no-verify for local development"
    )]
    NoSkillId,
    #[error("--max-body-bytes must be at least 1024")]
    BodyLimit,
}

impl StorageArgs {
    /// The DynamoDB table name.
    pub fn table(&self) -> String {
        format!("{}encore", self.table_prefix)
    }
}

impl ServeArgs {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !self.no_verify && self.skill_ids.iter().all(|s| s.trim().is_empty()) {
            return Err(SettingsError::NoSkillId);
        }
        if self.max_body_bytes < 1024 {
            return Err(SettingsError::BodyLimit);
        }
        Ok(())
    }
}
