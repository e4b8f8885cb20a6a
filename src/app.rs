//! The composition root: settings in, the parts built and wired (store, recommender,
//! feedback backend, router), a bound server out, and its shutdown.

use crate::api::auth::JwtVerifier;
use crate::aws::AwsSettings;
use crate::feedback::{
    Consumer, FeedbackSink, KinesisStream, LocalConsumer, LocalLog, ObservedSink, Quality,
    QualitySettings,
};
use crate::http::{self, App, AppState, MobileApi, RateLimit};
use crate::interaction::{InteractionModel, OpenValues};
use crate::recommend::{
    CachedRecommender, Catalog, CatalogRecommender, Experiment, ModelMirror, ModelSet,
    RankSettings, RankWeights, Recommender, RemoteRecommender, RemoteSettings,
};
use crate::service::{Service, ServiceSettings};
use crate::settings::{FeedbackKind, ServeArgs, StorageArgs, StoreKind};
use crate::skill::Skill;
use crate::skill::verify::Verifier;
use crate::store::{CachedStore, DynamoSettings, DynamoStore, EmbeddedStore, ProfileStore};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// The parts behind the server, `encore say` and `encore consume`.
pub struct Components {
    pub service: Arc<Service>,
    pub model: Arc<InteractionModel>,
    pub store: Arc<dyn ProfileStore>,
    /// Where events go: `backend`'s sink, behind the quality tally.
    pub feedback: Arc<dyn FeedbackSink>,
    pub backend: FeedbackBackend,
    /// Whether other instances may use the same store (DynamoDB).
    shared_store: bool,
    /// How long the local log keeps folded segments.
    feedback_retention: Duration,
    /// The served model versions, for hot reloading.
    pub models: Arc<ModelSet>,
    /// The local copy of models in object storage, polled before each reload.
    pub mirror: Option<Arc<ModelMirror>>,
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

/// The feedback backend, chosen once from `--feedback`.
#[derive(Clone)]
pub enum FeedbackBackend {
    /// The local log; `serve` folds it into profiles in process.
    Local(Arc<LocalLog>),
    /// A Kinesis stream, fed through a spool; `encore consume` folds it.
    Kinesis(KinesisStream),
}

impl FeedbackBackend {
    /// The local log, when the backend is one.
    pub fn log(&self) -> Option<&Arc<LocalLog>> {
        match self {
            FeedbackBackend::Local(log) => Some(log),
            FeedbackBackend::Kinesis(_) => None,
        }
    }
}

impl Components {
    /// Loads the catalog and the interaction model and opens the configured store and
    /// feedback backend.
    pub async fn load(storage: &StorageArgs) -> anyhow::Result<Self> {
        let store = open_store(storage).await?;
        let stream = match storage.feedback {
            FeedbackKind::Kinesis => {
                Some(KinesisStream::connect(&aws_settings(storage), &storage.stream).await)
            }
            FeedbackKind::Local => None,
        };
        let models = ModelsAt::open(storage).await?;
        Self::assemble(storage, store, stream, models)
    }

    /// Builds the parts over `store` (behind a profile cache on DynamoDB unless its TTL is
    /// 0), with feedback in the local log whatever `--feedback` says: for tests that bring
    /// their own store and a models directory.
    pub fn with_store(storage: &StorageArgs, store: Arc<dyn ProfileStore>) -> anyhow::Result<Self> {
        let Some(dir) = storage.models.dir() else {
            anyhow::bail!("--models {} is not a directory", storage.models);
        };
        Self::assemble(storage, store, None, ModelsAt::Dir(dir.to_owned()))
    }

    fn assemble(
        storage: &StorageArgs,
        store: Arc<dyn ProfileStore>,
        stream: Option<KinesisStream>,
        models_at: ModelsAt,
    ) -> anyhow::Result<Self> {
        let dir = models_at.dir();
        let catalog = Arc::new(Catalog::load(dir).context("loading the catalog")?);
        let (recommender, models) = build_recommender(storage, dir, catalog)?;
        let model =
            InteractionModel::load_with(&storage.intents, Arc::new(CatalogArtists(models.clone())))
                .context("loading the interaction model")?;
        // The cache saves network round trips; the embedded store reads its own memory-mapped
        // file in microseconds, so a cache there would only add work.
        let cached = storage.store == StoreKind::Dynamodb && !storage.profile_cache_ttl.is_zero();
        let store: Arc<dyn ProfileStore> = match cached {
            true => Arc::new(CachedStore::new(
                store,
                storage.profile_cache_ttl,
                storage.profile_cache_capacity,
            )),
            false => store,
        };
        let (sink, backend) = open_feedback(storage, stream)?;
        let arms = served_arms(&storage.recommender);
        crate::observe::zero_at_start(&arms);
        let quality = Arc::new(Quality::new(arms));
        let feedback: Arc<dyn FeedbackSink> = Arc::new(ObservedSink::new(sink, quality.clone()));
        let settings = ServiceSettings {
            store_budget: storage.store_budget,
            api_store_budget: storage.api_store_budget,
            feedback_ack_budget: storage.feedback_ack_budget,
            apology_audio_url: storage.apology_audio_url.clone(),
            session_rerank: storage.session_rerank,
        };
        Ok(Components {
            service: Arc::new(Service::new(
                store.clone(),
                recommender,
                feedback.clone(),
                settings,
            )),
            model: Arc::new(model),
            store,
            feedback,
            backend,
            shared_store: storage.store == StoreKind::Dynamodb,
            feedback_retention: storage.feedback_retention,
            models,
            mirror: models_at.mirror(),
            quality,
        })
    }
}

/// The served catalog's artists as the text parser's known `AMAZON.Musician` values: looked
/// up in the catalog's artist index as heard, with no copy per locale.
struct CatalogArtists(Arc<ModelSet>);

impl OpenValues for CatalogArtists {
    fn slot_types(&self) -> Vec<String> {
        vec![MUSICIAN.to_owned()]
    }

    fn value(&self, slot_type: &str, phrase: &str) -> Option<String> {
        if slot_type != MUSICIAN {
            return None;
        }
        let catalog = self.0.catalog();
        let first = *catalog.artist_exact(phrase)?.first()?;
        Some(catalog.at(first).artist().to_owned())
    }
}

const MUSICIAN: &str = "AMAZON.Musician";

/// The (experiment, variant) arms events may be attributed to: the configured experiment's
/// variants, and what a remote endpoint answers with when it names none.
fn served_arms(args: &crate::settings::RecommenderArgs) -> Vec<(String, String)> {
    let mut arms: Vec<(String, String)> = args
        .variants
        .iter()
        .map(|v| (args.experiment.clone(), v.name.clone()))
        .collect();
    arms.push(("remote".into(), "remote".into()));
    arms
}

/// Where the models are read from: a directory, or the local copy of an object-storage
/// location that a mirror keeps up to date.
pub enum ModelsAt {
    Dir(PathBuf),
    Mirrored(Arc<ModelMirror>),
}

impl ModelsAt {
    /// Opens `--models`: a directory as it is; `s3://` copied into `--model-cache` first.
    pub async fn open(storage: &StorageArgs) -> anyhow::Result<Self> {
        let at = &storage.models;
        if let Some(dir) = at.dir() {
            return Ok(ModelsAt::Dir(dir.to_owned()));
        }
        let objects = at.open(&aws_settings(storage)).await;
        let pinned = storage
            .recommender
            .variants
            .iter()
            .filter_map(|v| v.version.clone())
            .collect();
        let cache = storage.model_cache();
        let mirror = ModelMirror::open(objects, &cache, pinned)
            .await
            .with_context(|| format!("copying the models in {at} into {}", cache.display()))?;
        Ok(ModelsAt::Mirrored(Arc::new(mirror)))
    }

    /// The models directory to read.
    pub fn dir(&self) -> &Path {
        match self {
            ModelsAt::Dir(dir) => dir,
            ModelsAt::Mirrored(mirror) => mirror.local(),
        }
    }

    pub fn mirror(&self) -> Option<Arc<ModelMirror>> {
        match self {
            ModelsAt::Dir(_) => None,
            ModelsAt::Mirrored(mirror) => Some(mirror.clone()),
        }
    }
}

/// The recommender the settings ask for: the catalog with the served models (from
/// `models_dir`), or a remote endpoint falling back to it, behind the recommendation cache
/// unless its TTL is 0.
pub fn build_recommender(
    storage: &StorageArgs,
    models_dir: &Path,
    catalog: Arc<Catalog>,
) -> anyhow::Result<(Arc<dyn Recommender>, Arc<ModelSet>)> {
    let args = &storage.recommender;
    let experiment = Experiment {
        name: args.experiment.clone(),
        variants: args.variants.clone(),
    };
    let models = Arc::new(
        ModelSet::load(models_dir, catalog, experiment).context("loading the model versions")?,
    );
    let settings = RankSettings {
        exploration: args.exploration,
        max_artist_run: args.max_artist_run,
        precomputed_ttl: args.precomputed_ttl,
        weights: RankWeights::default(),
    };
    let local = Arc::new(CatalogRecommender::with_models(models.clone(), settings));
    let base: Arc<dyn Recommender> = match &args.model_endpoint {
        Some(url) => Arc::new(RemoteRecommender::new(
            RemoteSettings {
                url: url.clone(),
                timeout: args.model_endpoint_timeout,
                retries: args.model_endpoint_retries,
                failure_threshold: args.model_endpoint_breaker_failures,
                open_for: args.model_endpoint_breaker_open,
            },
            local,
        )),
        None => local,
    };
    let recommender: Arc<dyn Recommender> = match args.recommend_cache_ttl.is_zero() {
        true => base,
        false => Arc::new(CachedRecommender::new(
            base,
            args.recommend_cache_ttl,
            args.recommend_cache_capacity,
        )),
    };
    Ok((recommender, models))
}

impl Components {
    /// The local log (with `--feedback local`).
    pub fn feedback_log(&self) -> Option<&Arc<LocalLog>> {
        self.backend.log()
    }

    /// A consumer of the configured feedback backend into the store.
    pub fn consumer(&self) -> Consumer {
        let catalog = self.service.recommender().clone();
        match &self.backend {
            FeedbackBackend::Local(log) => {
                let consumer = LocalConsumer::new(log.clone(), self.store.clone(), catalog)
                    .with_retention(self.feedback_retention);
                // The embedded store is one file with one writer, beside its one log; a
                // DynamoDB table may have many instances' logs folding into it.
                Consumer::Local(match self.shared_store {
                    true => consumer.of_shared_store(),
                    false => consumer,
                })
            }
            FeedbackBackend::Kinesis(stream) => {
                Consumer::Kinesis(stream.consumer(self.store.clone(), catalog))
            }
        }
    }
}

/// The feedback sink and the backend it writes to: the local log, or the stream through a
/// spool (when `stream` is given).
fn open_feedback(
    storage: &StorageArgs,
    stream: Option<KinesisStream>,
) -> anyhow::Result<(Arc<dyn FeedbackSink>, FeedbackBackend)> {
    match stream {
        Some(stream) => {
            let spool = storage.data_dir.join("feedback-spool");
            let sink = stream
                .sink(&spool)
                .with_context(|| format!("opening the feedback spool in {}", spool.display()))?;
            Ok((Arc::new(sink), FeedbackBackend::Kinesis(stream)))
        }
        None => {
            let dir = storage.data_dir.join("feedback");
            let log = Arc::new(
                LocalLog::open(&dir)
                    .with_context(|| format!("opening the feedback log in {}", dir.display()))?,
            );
            Ok((log.clone(), FeedbackBackend::Local(log)))
        }
    }
}

pub fn aws_settings(storage: &StorageArgs) -> AwsSettings {
    AwsSettings::new(storage.aws_endpoint.clone(), storage.store_timeout)
}

/// What the router needs besides the parts.
pub struct RouterSettings {
    pub max_body_bytes: usize,
    /// Requests handled at once before load shedding.
    pub max_in_flight: usize,
    /// How long a request may take to send its body.
    pub body_read_timeout: Duration,
    /// How long the voice path may take before it apologises instead.
    pub alexa_deadline: Duration,
    /// The mobile API's token verifier (none: the API answers 503).
    pub jwt: Option<Arc<JwtVerifier>>,
    pub rate_limit: RateLimit,
    /// Whether `/readyz` and `/metrics` are on their own address (`--admin-addr`) rather
    /// than on the service's.
    pub admin_apart: bool,
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
            body_read_timeout: settings.body_read_timeout,
            alexa_deadline: settings.alexa_deadline,
            jwt,
            rate_limit: RateLimit {
                per_minute: settings.api.rate_limit_per_minute,
                burst: settings.api.rate_limit_burst,
            },
            admin_apart: settings.admin_addr.is_some(),
        })
    }
}

/// The router over `parts`, for a listener or for in-process tests.
pub fn build_router(
    parts: &Components,
    verifier: Option<Verifier>,
    settings: RouterSettings,
) -> axum::Router {
    let skill = Skill::new(parts.service.clone(), parts.model.clone(), verifier)
        .with_accounts(settings.jwt.clone())
        .with_deadline(settings.alexa_deadline);
    let api = MobileApi::new(
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
        body_read_timeout: settings.body_read_timeout,
    };
    http::router(
        AppState(Arc::new(App { skill, api })),
        limits,
        !settings.admin_apart,
    )
}

/// A bound, ready server. Tests build it on port 0 and read `local_addr()`.
pub struct Server {
    listener: TcpListener,
    router: axum::Router,
    /// `--admin-addr`'s listener and its router (readiness and metrics).
    admin: Option<(TcpListener, axum::Router)>,
    connections: http::ConnectionLimits,
    store: Arc<dyn ProfileStore>,
    feedback: Arc<dyn FeedbackSink>,
    /// The in-process consumer, with `--feedback local`.
    consumer: Option<Consumer>,
    models: Arc<ModelSet>,
    mirror: Option<Arc<ModelMirror>>,
    model_poll: Duration,
    quality: Arc<Quality>,
    quality_settings: QualitySettings,
    /// How often the quality gauges are refreshed.
    quality_refresh: Duration,
    /// How long in-flight requests may run after the shutdown signal.
    shutdown_grace: Duration,
}

impl Server {
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
        let parts = Components::load(&settings.storage).await?;
        Self::with_parts(settings, parts, verifier).await
    }

    /// Builds from ready parts and a verifier of the caller's choosing (tests inject one
    /// that trusts their own CA).
    pub async fn with_parts(
        settings: &ServeArgs,
        parts: Components,
        verifier: Option<Verifier>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("binding {}", settings.addr))?;
        let router = build_router(&parts, verifier, RouterSettings::from_args(settings).await?);
        let admin = match settings.admin_addr {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the admin address {addr}"))?;
                Some((listener, http::admin_router(parts.service.clone())))
            }
            None => None,
        };
        // With the local log, the server folds it into profiles itself.
        let consumer = parts.feedback_log().is_some().then(|| parts.consumer());
        Ok(Server {
            listener,
            router,
            admin,
            connections: http::ConnectionLimits {
                header_read_timeout: settings.header_read_timeout,
                max_connections: settings.max_connections,
            },
            consumer,
            store: parts.store,
            feedback: parts.feedback,
            models: parts.models,
            mirror: parts.mirror,
            model_poll: settings.storage.recommender.model_poll,
            quality: parts.quality,
            quality_settings: settings.quality.settings(),
            quality_refresh: settings.quality.quality_refresh,
            shutdown_grace: settings.shutdown_grace,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/readyz` and `/metrics` are served when `--admin-addr` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        let (listener, _) = self.admin.as_ref()?;
        listener.local_addr().ok()
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, then makes the
    /// feedback log durable, lets the consumer fold the rest into profiles, and makes the
    /// store durable.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr();
        // The admin address answers until the service has stopped serving, so readiness and
        // metrics stay visible while requests drain.
        let (stop_admin, admin_stop) = tokio::sync::oneshot::channel::<()>();
        if let Some(at) = self.admin_addr() {
            tracing::info!(admin_addr = %at, "serving /healthz, /readyz and /metrics on the admin address");
        }
        let admin = self.admin.map(|(listener, router)| {
            tokio::spawn(http::serve(listener, router, self.connections, async {
                let _ = admin_stop.await;
            }))
        });
        tracing::info!(addr = %addr, "listening");
        // The consumer folds feedback into profiles in process, until the server has stopped
        // and the log is flushed; then it makes a last pass.
        let (stop_consumer, consumer_stop) = tokio::sync::oneshot::channel::<()>();
        let consumer = self.consumer.map(|c| {
            tokio::spawn(c.run(
                async {
                    let _ = consumer_stop.await;
                },
                crate::feedback::POLL,
            ))
        });
        let watcher = (!self.model_poll.is_zero()).then(|| {
            self.models
                .clone()
                .watch(self.model_poll, self.mirror.clone())
        });
        let (stop_quality, quality_stop) = tokio::sync::oneshot::channel::<()>();
        let quality = tokio::spawn(self.quality.clone().watch(
            self.quality_settings,
            self.quality_refresh,
            async {
                let _ = quality_stop.await;
            },
        ));
        // One deadline for the whole stop, from the signal: in-flight requests may use the
        // first three quarters of the grace, the flushes after them what is left.
        let (signalled, on_signal) = tokio::sync::oneshot::channel::<Instant>();
        let serve = http::serve(self.listener, self.router, self.connections, async move {
            shutdown.await;
            let _ = signalled.send(Instant::now() + self.shutdown_grace);
        });
        let grace = self.shutdown_grace;
        let (deadline_tx, deadline_rx) = tokio::sync::oneshot::channel::<Instant>();
        let requests_end = async move {
            match on_signal.await {
                Ok(deadline) => {
                    let _ = deadline_tx.send(deadline);
                    tokio::time::sleep_until(deadline - grace / 4).await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = serve => {}
            () = requests_end => tracing::warn!(grace_secs = grace.as_secs(), "requests still in flight at the shutdown deadline; stopping anyway"),
        }
        // Served to the end without a signal (the listener failed): the grace starts now.
        let deadline = deadline_rx.await.unwrap_or_else(|_| Instant::now() + grace);
        let _ = stop_admin.send(());
        if let Some(admin) = admin {
            let abort = admin.abort_handle();
            if tokio::time::timeout_at(deadline, admin).await.is_err() {
                abort.abort();
            }
        }
        if let Some(w) = watcher {
            w.abort();
        }
        let _ = stop_quality.send(());
        let _ = quality.await;
        // Each step after serving ends by the same deadline: a backend that hangs must not
        // keep the process from stopping before the platform kills it. What the consumer has
        // not folded in stays in the log (its position is not advanced) and is folded in at
        // the next start.
        let bounded = |step: &'static str| {
            move |r: Result<anyhow::Result<()>, tokio::time::error::Elapsed>| match r {
                Ok(done) => done,
                Err(_) => {
                    tracing::error!(
                        step,
                        grace_secs = grace.as_secs(),
                        "shutdown step did not finish by the deadline; stopping anyway"
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
        bounded("feedback flush")(tokio::time::timeout_at(deadline, flush_feedback).await)?;
        let _ = stop_consumer.send(());
        if let Some(consumer) = consumer {
            let drained = async { consumer.await.context("the feedback consumer") };
            bounded("feedback consumer")(tokio::time::timeout_at(deadline, drained).await)?;
        }
        let flush_store = async { self.store.flush().await.context("flushing the store") };
        bounded("store flush")(tokio::time::timeout_at(deadline, flush_store).await)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Track;
    use crate::recommend::{Experiment, Manifest};

    #[test]
    fn the_text_parser_knows_catalog_artists_as_they_are_said() {
        let manifest = Manifest::for_tests();
        let tracks = ["AC/DC", "Destiny's Child", "Theo Dubois"]
            .iter()
            .enumerate()
            .map(|(i, a)| Track::sample(&format!("t{i}"), a, "rock"))
            .collect();
        let catalog = Arc::new(Catalog::from_tracks(manifest, tracks));
        let artists = CatalogArtists(Arc::new(ModelSet::empty(catalog, Experiment::default())));
        let value = |phrase: &str| artists.value(MUSICIAN, phrase);
        assert_eq!(value("ac dc").as_deref(), Some("AC/DC"));
        assert_eq!(value("destiny's child").as_deref(), Some("Destiny's Child"));
        assert_eq!(value("theo dubois").as_deref(), Some("Theo Dubois"));
        assert_eq!(value("theo"), None);
        assert_eq!(artists.value("AMAZON.Genre", "theo dubois"), None);
        // Through a locale's parser, the name resolves to the catalog's spelling.
        let intents = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
        let model = InteractionModel::load_with(&intents, Arc::new(artists)).unwrap();
        let parsed = model.locale("en-US").parse("play ac dc");
        let artist = parsed.slots.values().find_map(|s| s.id.clone());
        assert_eq!(artist.as_deref(), Some("AC/DC"), "{parsed:?}");
    }
}
