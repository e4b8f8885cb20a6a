//! The one typed settings tree: command-line flags, each with an `ENCORE_*` environment
//! variable and a default. Nothing else in the code reads the environment.

use crate::objects::Location;
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    #[arg(long = "store-timeout-ms", env = "ENCORE_STORE_TIMEOUT_MS", default_value = "1000", value_parser = millis)]
    pub store_timeout: Duration,

    /// How long a profile stays in the in-process cache in front of DynamoDB, in milliseconds
    /// (0 turns it off; the embedded store needs none).
    #[arg(long = "profile-cache-ttl-ms", env = "ENCORE_PROFILE_CACHE_TTL_MS", default_value = "30000", value_parser = millis)]
    pub profile_cache_ttl: Duration,

    /// The most profiles the in-process cache in front of DynamoDB keeps.
    #[arg(long, env = "ENCORE_PROFILE_CACHE_CAPACITY", default_value_t = 100_000)]
    pub profile_cache_capacity: u64,

    /// How long the voice path waits for any one store call before it goes on without it, in
    /// milliseconds: a profile read over budget serves the listener as a new one.
    #[arg(long = "store-budget-ms", env = "ENCORE_STORE_BUDGET_MS", default_value = "150", value_parser = millis)]
    pub store_budget: Duration,

    /// How long the mobile API waits for any one store call (or a feedback batch's
    /// acknowledgement) before it answers 503, in milliseconds.
    #[arg(long = "api-store-budget-ms", env = "ENCORE_API_STORE_BUDGET_MS", default_value = "1000", value_parser = millis)]
    pub api_store_budget: Duration,

    /// How long the voice path waits for a device report's feedback event to be
    /// acknowledged (with Kinesis: accepted by the stream) before it answers anyway, in
    /// milliseconds. The platform does not resend a report, and a report's answer carries
    /// no speech, so waiting here costs the listener nothing they hear.
    #[arg(long = "feedback-ack-budget-ms", env = "ENCORE_FEEDBACK_ACK_BUDGET_MS", default_value = "1000", value_parser = millis)]
    pub feedback_ack_budget: Duration,

    /// An HTTPS URL of a short spoken clip ("Sorry, these songs won't play right now"),
    /// played when three streams in a row fail and Encore stops trying. Host it apart from
    /// the music. Without it, playback stops silently (an answer to a device report cannot
    /// speak) and the listener's next resume apologises.
    #[arg(long, env = "ENCORE_APOLOGY_AUDIO_URL", value_parser = https_url)]
    pub apology_audio_url: Option<String>,

    /// Whether a skip, a dislike or a "next" re-ranks the rest of the queue at once, by what
    /// the session has shown (`false` keeps the recommender's order: the static queue).
    #[arg(long, env = "ENCORE_SESSION_RERANK", default_value_t = true, action = clap::ArgAction::Set)]
    pub session_rerank: bool,

    /// How long the local feedback log keeps what has been folded into profiles, in hours: a
    /// segment (64 MiB) whose records are all folded and whose newest is older than this is
    /// deleted, so the log's disk is this window plus one segment. `encore train` reads the
    /// log, so keep it as long as training looks back. 0 deletes segments once folded.
    #[arg(long = "feedback-retention-hours", env = "ENCORE_FEEDBACK_RETENTION_HOURS", default_value = "168", value_parser = hours)]
    pub feedback_retention: Duration,

    /// Directory of the embedded store (profiles and playback queues).
    #[arg(long, env = "ENCORE_DATA_DIR", default_value = ".encore")]
    pub data_dir: PathBuf,

    /// Where the recommender artifacts are (manifest.json, the catalog, versions/ and the
    /// current.json pointer): a directory, or s3://BUCKET/PREFIX, which is copied into
    /// --model-cache at start and polled for a newly promoted version (credentials and
    /// region from the standard AWS sources, the endpoint from --aws-endpoint).
    #[arg(long, env = "ENCORE_MODELS", default_value = "models")]
    pub models: Location,

    /// Where the local copy of models in S3 is kept (default: <data-dir>/model-cache).
    #[arg(long, env = "ENCORE_MODEL_CACHE")]
    pub model_cache: Option<PathBuf>,

    /// Directory of the interaction model (the ask-cli skill package).
    #[arg(long, env = "ENCORE_INTENTS", default_value = "intents")]
    pub intents: PathBuf,

    #[command(flatten)]
    pub recommender: RecommenderArgs,
}

/// The endpoint of object storage for the offline commands that read or write models or
/// the archive in S3 (credentials and region from the standard AWS sources).
#[derive(Debug, Clone, Args)]
pub struct ObjectArgs {
    /// S3 endpoint URL, for a local compatible server (default: AWS's).
    #[arg(long, env = "ENCORE_AWS_ENDPOINT")]
    pub aws_endpoint: Option<String>,
}

impl ObjectArgs {
    pub fn aws(&self) -> crate::aws::AwsSettings {
        crate::aws::AwsSettings::new(self.aws_endpoint.clone(), Duration::from_secs(60))
    }
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
    #[arg(long = "model-poll-secs", env = "ENCORE_MODEL_POLL_SECS", default_value = "30", value_parser = seconds)]
    pub model_poll: Duration,

    /// How long a ranked list stays cached per listener and request, in milliseconds (0 turns
    /// the cache off).
    #[arg(long = "recommend-cache-ttl-ms", env = "ENCORE_RECOMMEND_CACHE_TTL_MS", default_value = "60000", value_parser = millis)]
    pub recommend_cache_ttl: Duration,

    /// The most ranked lists cached.
    #[arg(
        long,
        env = "ENCORE_RECOMMEND_CACHE_CAPACITY",
        default_value_t = 100_000
    )]
    pub recommend_cache_capacity: u64,

    /// How long a precomputed list (`encore batch-recommend --to-profiles`) is used, in hours.
    #[arg(long = "precomputed-ttl-hours", env = "ENCORE_PRECOMPUTED_TTL_HOURS", default_value = "24", value_parser = hours)]
    pub precomputed_ttl: Duration,

    /// URL of a remote model endpoint to ask instead of the local model (the local catalog
    /// answers when it fails).
    #[arg(long, env = "ENCORE_MODEL_ENDPOINT")]
    pub model_endpoint: Option<String>,

    /// Timeout of one call to the model endpoint, in milliseconds.
    #[arg(long = "model-endpoint-timeout-ms", env = "ENCORE_MODEL_ENDPOINT_TIMEOUT_MS", default_value = "150", value_parser = millis)]
    pub model_endpoint_timeout: Duration,

    /// Retries of a failed call to the model endpoint.
    #[arg(long, env = "ENCORE_MODEL_ENDPOINT_RETRIES", default_value_t = 1)]
    pub model_endpoint_retries: u32,

    /// Failed calls in a row that open the model endpoint's breaker (while it is open, the
    /// local catalog answers without asking).
    #[arg(long, env = "ENCORE_MODEL_ENDPOINT_BREAKER_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub model_endpoint_breaker_failures: u32,

    /// How long an open breaker stays open before one call tries the endpoint again, in
    /// seconds.
    #[arg(long = "model-endpoint-breaker-open-secs", env = "ENCORE_MODEL_ENDPOINT_BREAKER_OPEN_SECS", default_value = "10", value_parser = seconds)]
    pub model_endpoint_breaker_open: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "ENCORE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// A second address for `/readyz` and `/metrics` (and `/healthz`), which are then not
    /// served on `--addr`: give the load balancer `--addr` only, and point its health check
    /// and the metrics scraper here. Unset: all three are on `--addr`.
    #[arg(long = "admin-addr", env = "ENCORE_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,

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

    /// How long a connection may take to send a request's headers, in seconds; an idle
    /// keep-alive connection is closed after the same time. Keep it above the load balancer's
    /// idle timeout (60 s on an ALB), so the balancer never reuses a connection Encore is
    /// closing.
    #[arg(long = "header-read-timeout-secs", env = "ENCORE_HEADER_READ_TIMEOUT_SECS", default_value = "65", value_parser = seconds)]
    pub header_read_timeout: Duration,

    /// How long a request may take to send its body, in seconds (then 408). A body is read
    /// before the request takes one of the --max-in-flight slots, so a client that stalls
    /// mid-body holds none.
    #[arg(long = "body-read-timeout-secs", env = "ENCORE_BODY_READ_TIMEOUT_SECS", default_value = "10", value_parser = seconds)]
    pub body_read_timeout: Duration,

    /// Connections open at once; past that, new ones wait in the listen backlog. Each may
    /// hold up to --max-body-bytes while its body is read.
    #[arg(long, env = "ENCORE_MAX_CONNECTIONS", default_value_t = 2048)]
    pub max_connections: usize,

    /// How long the voice path may take before the listener hears an apology instead (the
    /// platform gives up after about 8 s), in milliseconds.
    #[arg(long = "alexa-deadline-ms", env = "ENCORE_ALEXA_DEADLINE_MS", default_value = "6000", value_parser = millis)]
    pub alexa_deadline: Duration,

    /// On SIGTERM or Ctrl-C: how long the whole stop may take, in seconds. In-flight requests
    /// get the first three quarters; flushing the feedback sink, the last consumer pass and
    /// the store flush share what is left, and the process exits by the deadline whatever a
    /// backend does. Keep it below the platform's kill timeout (ECS StopTimeout).
    #[arg(long = "shutdown-grace-secs", env = "ENCORE_SHUTDOWN_GRACE_SECS", default_value = "20", value_parser = seconds)]
    pub shutdown_grace: Duration,

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
    #[arg(long = "quality-window-mins", env = "ENCORE_QUALITY_WINDOW_MINS", default_value = "15", value_parser = window_minutes)]
    pub quality_window: Duration,

    /// The span before the window that each variant is compared with, in hours (at most 23).
    #[arg(long = "quality-baseline-hours", env = "ENCORE_QUALITY_BASELINE_HOURS", default_value = "6", value_parser = baseline_hours)]
    pub quality_baseline: Duration,

    /// A variant whose completion rate in the window is more than this (absolute, 0 to 1)
    /// below its baseline's is logged as drifting.
    #[arg(long, env = "ENCORE_DRIFT_MARGIN", default_value_t = 0.10)]
    pub drift_margin: f64,

    /// Plays the window and the baseline each need before drift is judged.
    #[arg(long, env = "ENCORE_DRIFT_MIN_PLAYS", default_value_t = 100)]
    pub drift_min_plays: u64,

    /// How often the gauges are refreshed and drift is judged, in seconds.
    #[arg(long = "quality-refresh-secs", env = "ENCORE_QUALITY_REFRESH_SECS", default_value = "15", value_parser = seconds)]
    pub quality_refresh: Duration,
}

impl QualityArgs {
    pub fn settings(&self) -> crate::feedback::QualitySettings {
        crate::feedback::QualitySettings {
            window: self.quality_window,
            baseline: self.quality_baseline,
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
    #[arg(long = "jwt-leeway-secs", env = "ENCORE_JWT_LEEWAY_SECS", default_value = "30", value_parser = seconds)]
    pub jwt_leeway: Duration,

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
            .field("jwt_leeway", &self.jwt_leeway)
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
            jwt_leeway: Duration::from_secs(30),
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
                leeway: self.jwt_leeway,
                refetch_interval: Duration::from_secs(60),
            })),
            _ => Err(SettingsError::Jwt(
                "the mobile API needs --jwt-issuer, --jwt-audience and one of --jwks-url, --jwks-file, --jwt-dev-secret",
            )),
        }
    }
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

    /// Where the local copy of models in object storage goes.
    pub fn model_cache(&self) -> PathBuf {
        self.model_cache
            .clone()
            .unwrap_or_else(|| self.data_dir.join("model-cache"))
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

/// A whole number of a unit, as a `Duration`: the flags keep their unit in their names
/// (`--store-timeout-ms`), the code sees only `Duration`s.
fn whole(
    s: &str,
    unit: Duration,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if !range.contains(&n) {
        return Err(format!(
            "{n} is not within {}..={}",
            range.start(),
            range.end()
        ));
    }
    Ok(unit * u32::try_from(n).map_err(|_| format!("{n} is too large"))?)
}

fn millis(s: &str) -> Result<Duration, String> {
    whole(s, Duration::from_millis(1), 0..=u32::MAX as u64)
}

/// A whole number of seconds, as a flag takes it.
pub fn seconds(s: &str) -> Result<Duration, String> {
    whole(s, Duration::from_secs(1), 0..=u32::MAX as u64)
}

fn hours(s: &str) -> Result<Duration, String> {
    whole(s, Duration::from_secs(3600), 0..=u32::MAX as u64)
}

/// The quality window: 1 to 60 minutes.
fn window_minutes(s: &str) -> Result<Duration, String> {
    whole(s, Duration::from_secs(60), 1..=60)
}

/// The quality baseline: 1 to 23 hours (the tallies keep a day).
fn baseline_hours(s: &str) -> Result<Duration, String> {
    whole(s, Duration::from_secs(3600), 1..=23)
}

/// An `https://` URL (the AudioPlayer plays nothing else).
fn https_url(s: &str) -> Result<String, String> {
    match s.strip_prefix("https://") {
        Some(rest) if !rest.is_empty() && s.len() <= 1024 => Ok(s.to_owned()),
        _ => Err(format!(
            "{s:?} is not an https:// URL of at most 1024 bytes"
        )),
    }
}
