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
    /// Import or synthesize the track catalog.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Train item embeddings (implicit ALS) from interactions and write a model version.
    Train(TrainArgs),
    /// Compare the trained model with a popularity baseline on a per-user time split:
    /// precision@k, recall@k, NDCG@k and coverage.
    Evaluate(EvaluateArgs),
    /// Manage model versions.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Write the top k items for every user in an interaction file (excluding what they
    /// already have), to a CSV or into their profiles.
    BatchRecommend(BatchRecommendArgs),
    /// The A/B read-out: per experiment, each variant's plays, completion rate and skip rate
    /// with confidence intervals, and whether each differs significantly from the control.
    ///
    /// Reads the feedback log (--feedback local, the default, or --from DIR; a running server
    /// may keep writing it) or the whole Kinesis stream (--feedback kinesis), counting each
    /// event id once. A play is a play that ended: finished, skipped (under 30 s) or stopped.
    Report(ReportArgs),
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

    #[command(flatten)]
    pub recommender: RecommenderArgs,
}

/// How tracks are picked: exploration, the experiment over model versions, caching, and the
/// optional remote model endpoint.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Recommender")]
pub struct RecommenderArgs {
    /// Share of each list (0 to 0.5) the exploration bandit fills with Thompson samples (never
    /// the first track).
    #[arg(long, env = "ENCORE_EXPLORATION", default_value_t = 0.15)]
    pub exploration: f32,

    /// At most this many tracks by one artist in a row.
    #[arg(long, env = "ENCORE_MAX_ARTIST_RUN", default_value_t = 1)]
    pub max_artist_run: usize,

    /// Name of the A/B experiment; a listener's variant is a hash of it and their user id.
    #[arg(long, env = "ENCORE_EXPERIMENT", default_value = "default")]
    pub experiment: String,

    /// A variant of the experiment, NAME=WEIGHT, or NAME=WEIGHT@VERSION to pin a model version
    /// (unpinned variants serve the newest). Repeat the flag, or comma-separate in the
    /// environment variable.
    #[arg(
        long = "variant",
        env = "ENCORE_VARIANTS",
        value_delimiter = ',',
        default_value = "control=100"
    )]
    pub variants: Vec<crate::recommend::VariantSpec>,

    /// How often the server looks for new model versions under --models, in seconds (0: only
    /// at start).
    #[arg(long, env = "ENCORE_MODEL_POLL_SECS", default_value_t = 30)]
    pub model_poll_secs: u64,

    /// How long a ranked list stays cached per listener and request, in milliseconds (0 turns
    /// the cache off).
    #[arg(long, env = "ENCORE_RECOMMEND_CACHE_TTL_MS", default_value_t = 60_000)]
    pub recommend_cache_ttl_ms: u64,

    /// The most ranked lists cached.
    #[arg(
        long,
        env = "ENCORE_RECOMMEND_CACHE_CAPACITY",
        default_value_t = 100_000
    )]
    pub recommend_cache_capacity: u64,

    /// How long a precomputed list (`encore batch-recommend --to-profiles`) is used, in hours.
    #[arg(long, env = "ENCORE_PRECOMPUTED_TTL_HOURS", default_value_t = 24)]
    pub precomputed_ttl_hours: u64,

    /// URL of a remote model endpoint to ask instead of the local model (the local catalog
    /// answers when it fails).
    #[arg(long, env = "ENCORE_MODEL_ENDPOINT")]
    pub model_endpoint: Option<String>,

    /// Timeout of one call to the model endpoint, in milliseconds.
    #[arg(long, env = "ENCORE_MODEL_ENDPOINT_TIMEOUT_MS", default_value_t = 150)]
    pub model_endpoint_timeout_ms: u64,

    /// Retries of a failed call to the model endpoint.
    #[arg(long, env = "ENCORE_MODEL_ENDPOINT_RETRIES", default_value_t = 1)]
    pub model_endpoint_retries: u32,
}

/// Implicit-ALS parameters for training.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Model training")]
pub struct AlsArgs {
    /// Embedding dimensions.
    #[arg(long, default_value_t = 32)]
    pub factors: usize,
    /// Alternating least-squares sweeps.
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// L2 regularization.
    #[arg(long, default_value_t = 0.05)]
    pub regularization: f32,
    /// Confidence scale: an interaction of strength r counts 1 + alpha * ln(1 + r).
    #[arg(long, default_value_t = 20.0)]
    pub alpha: f32,
    /// Seed of the initial factors.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Import a CSV of tracks (Spotify audio-features export columns) as the catalog.
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
}

#[derive(Debug, Clone, Args)]
pub struct CatalogImportArgs {
    /// The CSV to import.
    pub file: PathBuf,
    /// The models directory to write catalog.csv and manifest.json into.
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
    /// The directory to write catalog.csv and manifest.json into.
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

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// A CSV of user_id,item_id,timestamp[,rating], or a feedback log directory.
    #[arg(long)]
    pub interactions: PathBuf,
    /// The models directory: the model is written to <out>/versions/<version>/.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// k of the metrics recorded in the manifest (measured on a per-user time split first).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Skip the evaluation; the manifest then has no metrics.
    #[arg(long)]
    pub no_metrics: bool,
    #[command(flatten)]
    pub als: AlsArgs,
}

#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// A CSV of user_id,item_id,timestamp[,rating], or a feedback log directory.
    #[arg(long)]
    pub interactions: PathBuf,
    /// Length of the ranked lists scored.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Score this held-out file instead of splitting each user's history by time.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Share of each user's latest interactions held out.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Score at most this many held-out users (evenly spread).
    #[arg(long, default_value_t = 20_000)]
    pub max_users: usize,
    /// Print one JSON object with each method's metrics.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub als: AlsArgs,
}

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

#[derive(Debug, Clone, Args)]
pub struct BatchRecommendArgs {
    /// A CSV of user_id,item_id,timestamp[,rating], or a feedback log directory.
    #[arg(long)]
    pub interactions: PathBuf,
    /// How many items per user.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Write user_id,rank,item_id,score here.
    #[arg(long, required_unless_present = "to_profiles")]
    pub out: Option<PathBuf>,
    /// Use this model version directory instead of training on the interactions.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Store each user's list in their profile (the configured store), where the serving
    /// path uses it while fresh.
    #[arg(long)]
    pub to_profiles: bool,
    #[command(flatten)]
    pub als: AlsArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
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

    /// Requests handled at once; past that, requests are refused at once with 503 (load
    /// shedding) rather than queued.
    #[arg(long, env = "ENCORE_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,

    /// How long the voice path may take before the listener hears an apology instead (the
    /// platform gives up after about 8 s), in milliseconds.
    #[arg(long, env = "ENCORE_ALEXA_DEADLINE_MS", default_value_t = 6000)]
    pub alexa_deadline_ms: u64,

    /// On SIGTERM or Ctrl-C: how long in-flight requests may still take, in seconds, before
    /// the server stops anyway (the feedback sink and the store are flushed after).
    #[arg(long, env = "ENCORE_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    #[command(flatten)]
    pub api: ApiArgs,

    #[command(flatten)]
    pub quality: QualityArgs,
}

/// Online model quality: the window of the per-variant rates, and when a fall in a
/// variant's completion rate is logged as drift.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Model quality")]
pub struct QualityArgs {
    /// The sliding window of the per-variant completion rate, skip rate and likes per play
    /// (the `encore_variant_*` gauges), in minutes.
    #[arg(long, env = "ENCORE_QUALITY_WINDOW_MINS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub quality_window_mins: u64,

    /// The span before the window that each variant is compared with, in hours (at most 23).
    #[arg(long, env = "ENCORE_QUALITY_BASELINE_HOURS", default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=23))]
    pub quality_baseline_hours: u64,

    /// A variant whose completion rate in the window is more than this (absolute, 0 to 1)
    /// below its baseline's is logged as drifting.
    #[arg(long, env = "ENCORE_DRIFT_MARGIN", default_value_t = 0.10)]
    pub drift_margin: f64,

    /// Plays the window and the baseline each need before drift is judged.
    #[arg(long, env = "ENCORE_DRIFT_MIN_PLAYS", default_value_t = 100)]
    pub drift_min_plays: u64,
}

impl QualityArgs {
    pub fn settings(&self) -> crate::feedback::QualitySettings {
        crate::feedback::QualitySettings {
            window: std::time::Duration::from_secs(self.quality_window_mins * 60),
            baseline: std::time::Duration::from_secs(self.quality_baseline_hours * 3600),
            drift_margin: self.drift_margin,
            min_plays: self.drift_min_plays,
        }
    }
}

/// The mobile API's authentication and rate limit. Without an issuer, an audience and one
/// key source, the API answers 503 (the Alexa endpoint works regardless).
#[derive(Clone, Args)]
#[command(next_help_heading = "Mobile API")]
pub struct ApiArgs {
    /// The `iss` every token must carry.
    #[arg(long, env = "ENCORE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// The `aud` every token must carry.
    #[arg(long, env = "ENCORE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// URL of the identity provider's JWKS (fetched at start, again on an unknown key id at
    /// most once a minute).
    #[arg(long, env = "ENCORE_JWKS_URL", conflicts_with = "jwks_file")]
    pub jwks_url: Option<String>,

    /// A local JWKS file or PEM public key instead of --jwks-url.
    #[arg(long, env = "ENCORE_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,

    /// Accept HS256 tokens signed with this secret instead: development only.
    #[arg(long, env = "ENCORE_JWT_DEV_SECRET", hide_env_values = true, conflicts_with_all = ["jwks_url", "jwks_file"])]
    pub jwt_dev_secret: Option<String>,

    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[arg(long, env = "ENCORE_JWT_LEEWAY_SECS", default_value_t = 30)]
    pub jwt_leeway_secs: u64,

    /// Requests per minute each user may make to the API.
    #[arg(long, env = "ENCORE_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,

    /// Requests a user may make at once above the steady rate.
    #[arg(long, env = "ENCORE_RATE_LIMIT_BURST", default_value_t = 60)]
    pub rate_limit_burst: u32,
}

/// Never prints the development secret.
impl std::fmt::Debug for ApiArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiArgs")
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("jwks_url", &self.jwks_url)
            .field("jwks_file", &self.jwks_file)
            .field(
                "jwt_dev_secret",
                &self.jwt_dev_secret.as_ref().map(|_| "<hidden>"),
            )
            .field("jwt_leeway_secs", &self.jwt_leeway_secs)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .finish()
    }
}

impl Default for ApiArgs {
    fn default() -> Self {
        ApiArgs {
            jwt_issuer: None,
            jwt_audience: None,
            jwks_url: None,
            jwks_file: None,
            jwt_dev_secret: None,
            jwt_leeway_secs: 30,
            rate_limit_per_minute: 600,
            rate_limit_burst: 60,
        }
    }
}

impl ApiArgs {
    /// The token verifier's settings, or `None` when the API is not configured.
    pub fn jwt(&self) -> Result<Option<crate::api::auth::JwtSettings>, SettingsError> {
        use crate::api::auth::{JwtSettings, KeySource};
        let keys = match (&self.jwks_url, &self.jwks_file, &self.jwt_dev_secret) {
            (Some(url), None, None) => Some(KeySource::JwksUrl(url.clone())),
            (None, Some(file), None) => Some(KeySource::File(file.clone())),
            (None, None, Some(secret)) => Some(KeySource::DevSecret(secret.clone())),
            (None, None, None) => None,
            _ => {
                return Err(SettingsError::Jwt(
                    "give one of --jwks-url, --jwks-file and --jwt-dev-secret",
                ));
            }
        };
        match (keys, &self.jwt_issuer, &self.jwt_audience) {
            (None, None, None) => Ok(None),
            (Some(keys), Some(issuer), Some(audience)) => Ok(Some(JwtSettings {
                issuer: issuer.clone(),
                audience: audience.clone(),
                keys,
                leeway: std::time::Duration::from_secs(self.jwt_leeway_secs),
                refetch_interval: std::time::Duration::from_secs(60),
            })),
            _ => Err(SettingsError::Jwt(
                "the mobile API needs --jwt-issuer, --jwt-audience and one of --jwks-url, --jwks-file, --jwt-dev-secret",
            )),
        }
    }
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
    #[error("--exploration must be between 0 and 0.5")]
    Exploration,
    #[error("the experiment needs at least one variant with a weight above 0")]
    NoVariant,
    #[error("{0}")]
    Jwt(&'static str),
    #[error("--drift-margin must be between 0 and 1")]
    DriftMargin,
}

/// A group of flags as their defaults give them (their environment variables apply).
pub fn defaults<T: Args + clap::FromArgMatches>() -> T {
    let matches = T::augment_args(clap::Command::new("encore")).get_matches_from(["encore"]);
    T::from_arg_matches(&matches).expect("every flag of the group has a default")
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
        self.api.jwt()?;
        if !(0.0..=1.0).contains(&self.quality.drift_margin) {
            return Err(SettingsError::DriftMargin);
        }
        self.storage.recommender.validate()
    }
}

impl RecommenderArgs {
    /// The settings as the flags' defaults give them (their environment variables apply).
    pub fn from_defaults() -> Self {
        defaults()
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(0.0..=0.5).contains(&self.exploration) {
            return Err(SettingsError::Exploration);
        }
        if self.variants.iter().all(|v| v.weight == 0) {
            return Err(SettingsError::NoVariant);
        }
        Ok(())
    }
}
