//! Start-up: building the parts from settings, binding, serving, shutting down.

use crate::api::auth::JwtVerifier;
use crate::aws::AwsSettings;
use crate::feedback::{
    Consumer, FeedbackSink, KinesisConsumer, KinesisSink, LocalConsumer, LocalLog, ObservedSink,
    Quality, QualitySettings, create_stream, kinesis_client,
};
use crate::http::{self, Api, App, AppState, RateLimit};
use crate::interaction::InteractionModel;
use crate::recommend::{
    CachedRecommender, Catalog, CatalogRecommender, Experiment, ModelSet, RankSettings,
    Recommender, RemoteRecommender, RemoteSettings,
};
use crate::service::{Service, ServiceSettings};
use crate::settings::{FeedbackKind, ServeArgs, StorageArgs, StoreKind};
use crate::skill::Skill;
use crate::skill::verify::Verifier;
use crate::store::{CachedStore, DynamoSettings, DynamoStore, EmbeddedStore, ProfileStore};
use anyhow::Context;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The parts behind both the server and `encore say`.
pub struct Parts {
    pub service: Arc<Service>,
    pub model: Arc<InteractionModel>,
    pub store: Arc<dyn ProfileStore>,
    pub feedback: Arc<dyn FeedbackSink>,
    /// The feedback sink as the local log (with `--feedback local`), for the in-process
    /// consumer.
    pub feedback_log: Option<Arc<LocalLog>>,
    /// The Kinesis client (with `--feedback kinesis`) and the stream.
    pub kinesis: Option<(aws_sdk_kinesis::Client, String)>,
    /// The served model versions, for hot reloading.
    pub models: Arc<ModelSet>,
    /// Completion and skip rates per experiment variant, from every event sent.
    pub quality: Arc<Quality>,
}

/// Opens the configured store (without its profile cache).
pub async fn open_store(storage: &StorageArgs) -> anyhow::Result<Arc<dyn ProfileStore>> {
    Ok(match storage.store {
        StoreKind::Embedded => Arc::new(
            EmbeddedStore::open(&storage.data_dir)
                .with_context(|| format!("opening the store in {}", storage.data_dir.display()))?,
        ),
        StoreKind::Dynamodb => Arc::new(DynamoStore::connect(&dynamo_settings(storage)).await),
    })
}

pub fn dynamo_settings(storage: &StorageArgs) -> DynamoSettings {
    DynamoSettings {
        aws: aws_settings(storage),
        table: storage.table(),
    }
}

impl Parts {
    /// Loads the catalog and the interaction model and opens the configured store.
    pub async fn load(storage: &StorageArgs) -> anyhow::Result<Self> {
        let store = open_store(storage).await?;
        let kinesis = match storage.feedback {
            FeedbackKind::Kinesis => Some(kinesis_client(&aws_settings(storage)).await),
            FeedbackKind::Local => None,
        };
        Self::assemble(storage, store, kinesis)
    }

    /// Builds the parts over `store`, behind a profile cache on DynamoDB (unless its TTL is 0).
    pub fn with_store(storage: &StorageArgs, store: Arc<dyn ProfileStore>) -> anyhow::Result<Self> {
        Self::assemble(storage, store, None)
    }

    fn assemble(
        storage: &StorageArgs,
        store: Arc<dyn ProfileStore>,
        aws: Option<aws_sdk_kinesis::Client>,
    ) -> anyhow::Result<Self> {
        let catalog = Catalog::load(&storage.models).context("loading the catalog")?;
        let open_values = HashMap::from([("AMAZON.Musician".to_owned(), catalog.artists())]);
        let model = InteractionModel::load(&storage.intents, &open_values)
            .context("loading the interaction model")?;
        let (recommender, models) = build_recommender(storage, Arc::new(catalog))?;
        // The cache saves network round trips; the embedded store reads its own memory-mapped
        // file in microseconds, so a cache there would only add work.
        let store: Arc<dyn ProfileStore> = match (storage.store, storage.profile_cache_ttl_ms) {
            (StoreKind::Embedded, _) | (_, 0) => store,
            (StoreKind::Dynamodb, ttl) => Arc::new(CachedStore::new(
                store,
                Duration::from_millis(ttl),
                PROFILE_CACHE_CAPACITY,
            )),
        };
        let (feedback, feedback_log) = open_feedback(storage, aws.clone())?;
        let quality = Arc::new(Quality::default());
        let feedback: Arc<dyn FeedbackSink> =
            Arc::new(ObservedSink::new(feedback, quality.clone()));
        let settings = ServiceSettings {
            store_budget: Duration::from_millis(storage.store_budget_ms),
        };
        Ok(Parts {
            service: Arc::new(Service::new(
                store.clone(),
                recommender,
                feedback.clone(),
                settings,
            )),
            model: Arc::new(model),
            store,
            feedback,
            feedback_log,
            kinesis: aws.map(|client| (client, storage.stream.clone())),
            models,
            quality,
        })
    }
}

/// The recommender the settings ask for: the catalog with the served models, or a remote
/// endpoint falling back to it, behind the recommendation cache unless its TTL is 0.
pub fn build_recommender(
    storage: &StorageArgs,
    catalog: Arc<Catalog>,
) -> anyhow::Result<(Arc<dyn Recommender>, Arc<ModelSet>)> {
    let args = &storage.recommender;
    let experiment = Experiment {
        name: args.experiment.clone(),
        variants: args.variants.clone(),
    };
    let models = Arc::new(
        ModelSet::load(&storage.models, catalog.clone(), experiment)
            .context("loading the model versions")?,
    );
    let settings = RankSettings {
        exploration: args.exploration,
        max_artist_run: args.max_artist_run,
        precomputed_ttl: Duration::from_secs(args.precomputed_ttl_hours * 3600),
    };
    let local = Arc::new(CatalogRecommender::with_models(
        catalog,
        models.clone(),
        settings,
    ));
    let base: Arc<dyn Recommender> = match &args.model_endpoint {
        Some(url) => Arc::new(RemoteRecommender::new(
            RemoteSettings {
                url: url.clone(),
                timeout: Duration::from_millis(args.model_endpoint_timeout_ms),
                retries: args.model_endpoint_retries,
                failure_threshold: 5,
                open_for: Duration::from_secs(10),
            },
            local,
        )),
        None => local,
    };
    let recommender: Arc<dyn Recommender> = match args.recommend_cache_ttl_ms {
        0 => base,
        ttl => Arc::new(CachedRecommender::new(
            base,
            Duration::from_millis(ttl),
            args.recommend_cache_capacity,
        )),
    };
    Ok((recommender, models))
}

impl Parts {
    /// A consumer of the local log into the store (with `--feedback local`).
    pub fn local_consumer(&self) -> Option<Consumer> {
        let log = self.feedback_log.clone()?;
        Some(Consumer::Local(LocalConsumer::new(
            log,
            self.store.clone(),
            self.service.recommender().clone(),
        )))
    }

    /// A consumer of the configured feedback backend into the store.
    pub fn consumer(&self) -> Consumer {
        match (&self.kinesis, self.local_consumer()) {
            (_, Some(local)) => local,
            (Some((client, stream)), None) => Consumer::Kinesis(KinesisConsumer::new(
                client.clone(),
                stream.clone(),
                self.store.clone(),
                self.service.recommender().clone(),
            )),
            (None, None) => unreachable!("a feedback sink is either the local log or Kinesis"),
        }
    }
}

/// The feedback sink, and the same sink as the local log when it is one.
type FeedbackParts = (Arc<dyn FeedbackSink>, Option<Arc<LocalLog>>);

/// The feedback sink: the local log, or Kinesis through a spool (needs `kinesis`).
fn open_feedback(
    storage: &StorageArgs,
    kinesis: Option<aws_sdk_kinesis::Client>,
) -> anyhow::Result<FeedbackParts> {
    match (storage.feedback, kinesis) {
        (FeedbackKind::Kinesis, Some(client)) => {
            let spool = storage.data_dir.join("feedback-spool");
            let sink = KinesisSink::start(client, storage.stream.clone(), &spool)
                .with_context(|| format!("opening the feedback spool in {}", spool.display()))?;
            Ok((Arc::new(sink), None))
        }
        _ => {
            let dir = storage.data_dir.join("feedback");
            let log = Arc::new(
                LocalLog::open(&dir)
                    .with_context(|| format!("opening the feedback log in {}", dir.display()))?,
            );
            Ok((log.clone(), Some(log)))
        }
    }
}

pub fn aws_settings(storage: &StorageArgs) -> AwsSettings {
    AwsSettings::new(
        storage.aws_endpoint.clone(),
        Duration::from_millis(storage.store_timeout_ms),
    )
}

/// How often the quality gauges are refreshed and drift is judged.
const QUALITY_EVERY: Duration = Duration::from_secs(15);

/// Profiles kept in the in-process cache at most.
const PROFILE_CACHE_CAPACITY: u64 = 100_000;

/// `encore consume`: folds the local log into the store, until it is consumed (`once`) or
/// until Ctrl-C/SIGTERM.
pub async fn consume(storage: &StorageArgs, once: bool) -> anyhow::Result<String> {
    let parts = Parts::load(storage).await?;
    let consumer = parts.consumer();
    if !once {
        consumer.run(shutdown_signal()).await;
        parts.store.flush().await?;
        return Ok("consumer stopped".into());
    }
    let mut total = crate::feedback::Progress::default();
    loop {
        let p = consumer
            .pass()
            .await
            .context("folding feedback into profiles")?;
        total.applied += p.applied;
        total.duplicates += p.duplicates;
        total.malformed += p.malformed;
        if p == crate::feedback::Progress::default() {
            break;
        }
    }
    parts.store.flush().await?;
    Ok(format!(
        "applied {} events, {} duplicates skipped, {} malformed records skipped",
        total.applied, total.duplicates, total.malformed
    ))
}

/// `encore init`: creates what the configured store needs, idempotently.
pub async fn init(storage: &StorageArgs) -> anyhow::Result<String> {
    let mut done = match storage.store {
        StoreKind::Embedded => {
            EmbeddedStore::open(&storage.data_dir)?.flush().await?;
            format!("embedded store ready in {}", storage.data_dir.display())
        }
        StoreKind::Dynamodb => {
            let store = DynamoStore::connect(&dynamo_settings(storage)).await;
            let created = store
                .init()
                .await
                .with_context(|| format!("creating table {}", store.table()))?;
            let verb = if created { "created" } else { "already there:" };
            format!(
                "{verb} table {} (TTL on {})",
                store.table(),
                crate::store::TTL_ATTRIBUTE
            )
        }
    };
    if storage.feedback == FeedbackKind::Kinesis {
        let client = kinesis_client(&aws_settings(storage)).await;
        let created = create_stream(&client, &storage.stream)
            .await
            .with_context(|| format!("creating stream {}", storage.stream))?;
        let verb = if created { "created" } else { "already there:" };
        done += &format!("\n{verb} stream {}", storage.stream);
    }
    Ok(done)
}

/// What the router needs besides the parts.
pub struct RouterSettings {
    pub max_body_bytes: usize,
    /// Requests handled at once before load shedding.
    pub max_in_flight: usize,
    /// How long the voice path may take before it apologises instead.
    pub alexa_deadline: Duration,
    /// The mobile API's token verifier (none: the API answers 503).
    pub jwt: Option<Arc<JwtVerifier>>,
    pub rate_limit: RateLimit,
}

impl RouterSettings {
    /// Builds the token verifier the settings ask for (fetching a JWKS URL now).
    pub async fn from_args(settings: &ServeArgs) -> anyhow::Result<Self> {
        let jwt = match settings.api.jwt()? {
            Some(jwt) => Some(Arc::new(
                JwtVerifier::new(jwt)
                    .await
                    .context("loading the mobile API's token keys")?,
            )),
            None => {
                tracing::warn!(
                    "the mobile API is off: no --jwt-issuer, --jwt-audience and key source"
                );
                None
            }
        };
        Ok(RouterSettings {
            max_body_bytes: settings.max_body_bytes,
            max_in_flight: settings.max_in_flight,
            alexa_deadline: Duration::from_millis(settings.alexa_deadline_ms),
            jwt,
            rate_limit: RateLimit {
                per_minute: settings.api.rate_limit_per_minute,
                burst: settings.api.rate_limit_burst,
            },
        })
    }
}

/// The router over `parts`, for a listener or for in-process tests.
pub fn build_router(
    parts: &Parts,
    verifier: Option<Verifier>,
    settings: RouterSettings,
) -> axum::Router {
    let skill = Skill::new(parts.service.clone(), parts.model.clone(), verifier)
        .with_accounts(settings.jwt.clone())
        .with_deadline(settings.alexa_deadline);
    let api = Api::new(
        parts.service.clone(),
        parts.model.clone(),
        settings.jwt,
        settings.rate_limit,
    );
    // The Prometheus recorder is process-wide; installing it here makes /metrics live.
    crate::observe::prometheus();
    let limits = http::Limits {
        max_body_bytes: settings.max_body_bytes,
        max_in_flight: settings.max_in_flight,
    };
    http::router(AppState(Arc::new(App { skill, api })), limits)
}

/// A bound, ready server. Tests build it on port 0 and read `local_addr()`.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    store: Arc<dyn ProfileStore>,
    feedback: Arc<dyn FeedbackSink>,
    /// The in-process consumer, with `--feedback local`.
    consumer: Option<Consumer>,
    models: Arc<ModelSet>,
    model_poll: Duration,
    quality: Arc<Quality>,
    quality_settings: QualitySettings,
    /// How long in-flight requests may run after the shutdown signal.
    shutdown_grace: Duration,
}

impl Application {
    /// Builds everything from settings, with the production request verifier unless
    /// verification is off.
    pub async fn build(settings: &ServeArgs) -> anyhow::Result<Self> {
        settings.validate()?;
        let verifier = if settings.no_verify {
            tracing::warn!("request verification is OFF: for local development only");
            None
        } else {
            Some(
                Verifier::production(settings.skill_ids.clone())
                    .context("building the certificate fetcher")?,
            )
        };
        let parts = Parts::load(&settings.storage).await?;
        Self::with_parts(settings, parts, verifier).await
    }

    /// Builds from ready parts and a verifier of the caller's choosing (tests inject one
    /// that trusts their own CA).
    pub async fn with_parts(
        settings: &ServeArgs,
        parts: Parts,
        verifier: Option<Verifier>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("binding {}", settings.addr))?;
        let router = build_router(&parts, verifier, RouterSettings::from_args(settings).await?);
        Ok(Application {
            listener,
            router,
            consumer: parts.local_consumer(),
            store: parts.store,
            feedback: parts.feedback,
            models: parts.models,
            model_poll: Duration::from_secs(settings.storage.recommender.model_poll_secs),
            quality: parts.quality,
            quality_settings: settings.quality.settings(),
            shutdown_grace: Duration::from_secs(settings.shutdown_grace_secs),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, then makes the
    /// feedback log durable, lets the consumer fold the rest into profiles, and makes the
    /// store durable.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "listening");
        // The consumer folds feedback into profiles in process, until the server has stopped
        // and the log is flushed; then it makes a last pass.
        let (stop_consumer, consumer_stop) = tokio::sync::oneshot::channel::<()>();
        let consumer = self.consumer.map(|c| {
            tokio::spawn(c.run(async {
                let _ = consumer_stop.await;
            }))
        });
        let watcher =
            (!self.model_poll.is_zero()).then(|| self.models.clone().watch(self.model_poll));
        let (stop_quality, quality_stop) = tokio::sync::oneshot::channel::<()>();
        let quality = tokio::spawn(self.quality.clone().watch(
            self.quality_settings,
            QUALITY_EVERY,
            async {
                let _ = quality_stop.await;
            },
        ));
        // Stop accepting on the signal; give in-flight requests until the grace period ends.
        let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
        let serve = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = signalled.send(());
            })
            .into_future();
        let grace = self.shutdown_grace;
        let deadline = async move {
            if on_signal.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            served = serve => served?,
            () = deadline => tracing::warn!(grace_secs = grace.as_secs(), "requests still in flight at the shutdown deadline; stopping anyway"),
        }
        if let Some(w) = watcher {
            w.abort();
        }
        let _ = stop_quality.send(());
        let _ = quality.await;
        // Each step after serving is bounded too: a backend that hangs must not keep the
        // process from stopping. What the consumer has not folded in stays in the log (its
        // position is not advanced) and is folded in at the next start.
        let bounded = |step: &'static str| {
            move |r: Result<anyhow::Result<()>, tokio::time::error::Elapsed>| match r {
                Ok(done) => done,
                Err(_) => {
                    tracing::error!(
                        step,
                        grace_secs = grace.as_secs(),
                        "shutdown step did not finish in time; stopping anyway"
                    );
                    Ok(())
                }
            }
        };
        let flush_feedback = async {
            self.feedback
                .flush()
                .await
                .context("flushing the feedback log")
        };
        bounded("feedback flush")(tokio::time::timeout(grace, flush_feedback).await)?;
        let _ = stop_consumer.send(());
        if let Some(consumer) = consumer {
            let drained = async { consumer.await.context("the feedback consumer") };
            bounded("feedback consumer")(tokio::time::timeout(grace, drained).await)?;
        }
        let flush_store = async { self.store.flush().await.context("flushing the store") };
        bounded("store flush")(tokio::time::timeout(grace, flush_store).await)?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
