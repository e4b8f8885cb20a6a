//! Shared test support: a PKI made at test time that signs requests like the voice platform,
//! fixtures of real-shaped requests, and servers on port 0.
#![allow(dead_code)]

pub mod contract;
pub mod net;
pub mod openapi;

use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use encore::app::{Components, Server};
use encore::settings::{ApiArgs, FeedbackKind, RecommenderArgs, ServeArgs, StorageArgs, StoreKind};
use encore::skill::verify::{CertFetcher, Clock, SystemClock, Verifier};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use reqwest::Url;
use rustls_pki_types::{CertificateDer, TrustAnchor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use time::{Duration as TimeDuration, OffsetDateTime};

pub const SKILL_ID: &str = "amzn1.ask.skill.0f5d7a4e-1c3b-4b7e-9a51-2f8c6e0d1a23";
pub const CERT_BASE: &str = "https://s3.amazonaws.com/echo.api/";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The embedded store in `data_dir`, the repository's models and intents.
pub fn storage(data_dir: &Path) -> StorageArgs {
    StorageArgs {
        store: StoreKind::Embedded,
        feedback: FeedbackKind::Local,
        stream: "encore-feedback".into(),
        aws_endpoint: None,
        table_prefix: String::new(),
        store_timeout: std::time::Duration::from_millis(1000),
        profile_cache_ttl: std::time::Duration::from_millis(30_000),
        profile_cache_capacity: 100_000,
        store_budget: std::time::Duration::from_millis(150),
        // Wide: a loaded CI disk must not turn a slow commit into a 503. The tests over a
        // store that hangs set it back to the default.
        api_store_budget: std::time::Duration::from_secs(10),
        feedback_ack_budget: std::time::Duration::from_secs(1),
        apology_audio_url: None,
        session_rerank: true,
        feedback_retention: std::time::Duration::from_secs(168 * 3600),
        data_dir: data_dir.to_owned(),
        models: encore::objects::Location::Dir(repo().join("models")),
        model_cache: None,
        intents: repo().join("intents"),
        recommender: RecommenderArgs {
            // Tests that need the bandit's randomness turn it on themselves.
            exploration: 0.0,
            model_poll: std::time::Duration::from_secs(0),
            ..RecommenderArgs::from_defaults()
        },
    }
}

/// The local DynamoDB-compatible server the test command started.
pub fn aws_endpoint() -> String {
    std::env::var("ENCORE_TEST_AWS_ENDPOINT").expect(
        "ENCORE_TEST_AWS_ENDPOINT is not set: run the suite with infra/local/run-tests.sh, \
         which starts the local DynamoDB-compatible server",
    )
}

/// The local server the fault drills use: one of their own when the test command started
/// it (their load would otherwise queue every other test's calls behind theirs on a server
/// that answers one request at a time), else the shared one.
pub fn drill_aws_endpoint() -> String {
    std::env::var("ENCORE_TEST_DRILL_AWS_ENDPOINT").unwrap_or_else(|_| aws_endpoint())
}

/// DynamoDB and a Kinesis stream of its own on the local server.
pub fn kinesis_storage(data_dir: &Path, name: &str) -> StorageArgs {
    StorageArgs {
        feedback: FeedbackKind::Kinesis,
        stream: format!("{name}-{}", std::process::id()),
        ..dynamo_storage(data_dir, name)
    }
}

/// DynamoDB on the local server, in a table of its own (`prefix` keeps tests apart).
pub fn dynamo_storage(data_dir: &Path, prefix: &str) -> StorageArgs {
    StorageArgs {
        store: StoreKind::Dynamodb,
        aws_endpoint: Some(aws_endpoint()),
        table_prefix: format!("{prefix}-{}-", std::process::id()),
        ..storage(data_dir)
    }
}

/// Logs only when TEST_LOG is set.
pub fn init_tracing() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug")
                .with_test_writer()
                .try_init();
        }
    });
}

/// A certificate chain (PEM, signing certificate first) and the signing key.
pub struct Signer {
    pub chain_pem: String,
    key: RsaKeyPair,
}

impl Signer {
    pub fn sign(&self, body: &[u8]) -> String {
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), body, &mut sig)
            .expect("signing works");
        base64::engine::general_purpose::STANDARD.encode(sig)
    }
}

/// A root, an intermediate, and signing certificates good and bad, all made at test time.
pub struct Pki {
    pub root: CertificateDer<'static>,
    pub good: Signer,
    pub expired: Signer,
    pub wrong_name: Signer,
    pub untrusted: Signer,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn leaf(
    name: &str,
    valid: (OffsetDateTime, OffsetDateTime),
    issuer: &Issuer<'_, KeyPair>,
    intermediate_pem: &str,
) -> Signer {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let mut p = CertificateParams::new(vec![name.to_owned()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.not_before = valid.0;
    p.not_after = valid.1;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, issuer).unwrap();
    Signer {
        chain_pem: format!("{}{}", cert.pem(), intermediate_pem),
        key: RsaKeyPair::from_pkcs8(&key.serialize_der()).unwrap(),
    }
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let now = OffsetDateTime::now_utc();
        let valid = (now - TimeDuration::days(1), now + TimeDuration::days(30));
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let root_params = ca_params("Encore Test Root");
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = Issuer::new(root_params, root_key);
        let inter_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let inter_params = ca_params("Encore Test Intermediate");
        let inter = inter_params.signed_by(&inter_key, &root_issuer).unwrap();
        let inter_pem = inter.pem();
        let inter_issuer = Issuer::new(inter_params, inter_key);
        let other_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let other_params = ca_params("Somebody Else's Root");
        let other_pem = other_params.self_signed(&other_key).unwrap().pem();
        let other_issuer = Issuer::new(other_params, other_key);
        Pki {
            root: root.der().clone(),
            good: leaf("echo-api.amazon.com", valid, &inter_issuer, &inter_pem),
            expired: leaf(
                "echo-api.amazon.com",
                (now - TimeDuration::days(60), now - TimeDuration::days(1)),
                &inter_issuer,
                &inter_pem,
            ),
            wrong_name: leaf("echo-api.example.com", valid, &inter_issuer, &inter_pem),
            untrusted: leaf("echo-api.amazon.com", valid, &other_issuer, &other_pem),
        }
    })
}

/// Serves the test chains by URL, ignoring the query string as S3 does, and counts
/// downloads, in all and by URL.
pub struct StaticFetcher {
    chains: HashMap<String, String>,
    pub fetches: AtomicUsize,
    pub by_url: std::sync::Mutex<HashMap<String, usize>>,
}

impl StaticFetcher {
    /// How many times `url` was downloaded.
    pub fn fetches_of(&self, url: &str) -> usize {
        let by_url = self.by_url.lock().unwrap();
        by_url.get(url).copied().unwrap_or(0)
    }
}

#[async_trait]
impl CertFetcher for StaticFetcher {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        *self
            .by_url
            .lock()
            .unwrap()
            .entry(url.to_string())
            .or_default() += 1;
        let mut object = url.clone();
        object.set_query(None);
        self.chains
            .get(object.as_str())
            .map(|p| p.as_bytes().to_vec())
            .ok_or_else(|| "HTTP 404".to_owned())
    }
}

pub fn fetcher() -> Arc<StaticFetcher> {
    let pki = pki();
    let chains = [
        ("good", &pki.good),
        ("expired", &pki.expired),
        ("wrong-name", &pki.wrong_name),
        ("untrusted", &pki.untrusted),
    ]
    .into_iter()
    .map(|(name, s)| (format!("{CERT_BASE}{name}.pem"), s.chain_pem.clone()))
    .collect();
    Arc::new(StaticFetcher {
        chains,
        fetches: AtomicUsize::new(0),
        by_url: Default::default(),
    })
}

/// A verifier that trusts only the test root.
pub fn verifier(fetcher: Arc<StaticFetcher>) -> Verifier {
    verifier_with_clock(fetcher, Arc::new(SystemClock))
}

pub fn verifier_with_clock(fetcher: Arc<StaticFetcher>, clock: Arc<dyn Clock>) -> Verifier {
    let anchor: TrustAnchor<'static> = webpki::anchor_from_trusted_cert(&pki().root)
        .unwrap()
        .to_owned();
    Verifier::new(vec![SKILL_ID.to_owned()], vec![anchor], fetcher, clock)
}

/// The system clock moved by a settable number of seconds.
#[derive(Default)]
pub struct MovableClock {
    pub offset_secs: std::sync::atomic::AtomicI64,
}

impl Clock for MovableClock {
    fn now(&self) -> std::time::SystemTime {
        let offset = self.offset_secs.load(Ordering::SeqCst);
        let now = std::time::SystemTime::now();
        if offset >= 0 {
            now + std::time::Duration::from_secs(offset as u64)
        } else {
            now - std::time::Duration::from_secs(offset.unsigned_abs())
        }
    }
}

/// A request fixture from tests/fixtures/requests, with `{{TOKEN}}` replaced and the
/// timestamp set to now.
pub fn fixture(name: &str, token: &str) -> Value {
    let path = repo()
        .join("tests/fixtures/requests")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Value = serde_json::from_str(&text.replace("{{TOKEN}}", token)).unwrap();
    v["request"]["timestamp"] = Value::String(now_timestamp(0));
    v
}

/// `fixture(name, token)` as listener `user` sends it.
pub fn fixture_as(name: &str, token: &str, user: &str) -> Value {
    let mut r = fixture(name, token);
    r["context"]["System"]["user"]["userId"] = user.into();
    if r.get("session").is_some() {
        r["session"]["user"]["userId"] = user.into();
    }
    r
}

pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("tests/fixtures/requests"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Every durable event in the feedback log, in order (each record must decode).
pub fn logged_events(log: &encore::feedback::LocalLog) -> Vec<encore::feedback::FeedbackEvent> {
    log.read(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| r.event.unwrap())
        .collect()
}

/// Sends `request` to the in-process `router`: the status and the body's bytes.
pub async fn call(
    router: &axum::Router,
    request: axum::http::Request<axum::body::Body>,
) -> (axum::http::StatusCode, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

/// The `encore` binary, run from the repository root with no logging or verification
/// settings from the environment.
pub fn encore_command() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_encore"));
    c.current_dir(repo())
        .env_remove("ENCORE_LOG")
        .env_remove("ENCORE_SKILL_ID")
        .env_remove("ENCORE_NO_VERIFY");
    c
}

/// The artist of the tracks `import_next_catalog` adds.
pub const NEW_ARTIST: &str = "Nova Lumen";

/// The demo catalog without its first track and with 12 tracks by `NEW_ARTIST` ("Aurora
/// Number 0" to 11, ids nova00 to nova11), imported into `models` as the catalog job does
/// (`encore catalog import`: the Parquet catalog, its search index, and the manifest last).
/// Returns the id of the track it dropped.
pub fn import_next_catalog(models: &Path) -> encore::domain::TrackId {
    use encore::domain::{Track, TrackId};
    let demo = encore::recommend::Catalog::load(&repo().join("models")).unwrap();
    let mut tracks: Vec<Track> = demo.tracks().iter().map(|t| (**t).clone()).collect();
    let dropped = tracks.remove(0).id;
    let template = tracks[0].clone();
    tracks.extend((0..12).map(|i| Track {
        id: TrackId(format!("nova{i:02}")),
        title: format!("Aurora Number {i}"),
        artist: NEW_ARTIST.into(),
        popularity: 90,
        ..template.clone()
    }));
    let csv = tempfile::NamedTempFile::new().unwrap();
    encore::recommend::write_tracks_csv(csv.path(), &tracks).unwrap();
    let out = encore_command()
        .args(["catalog", "import"])
        .arg(csv.path())
        .arg("--out")
        .arg(models)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dropped
}

/// Runs `encore ARGS`: whether it succeeded, its stdout and its stderr.
pub fn run_encore(args: &[&str]) -> (bool, String, String) {
    let out = encore_command().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn now_timestamp(offset_secs: i64) -> String {
    let t = OffsetDateTime::now_utc() + TimeDuration::seconds(offset_secs);
    t.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub fn serve_args(no_verify: bool, data_dir: &Path) -> ServeArgs {
    ServeArgs {
        addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: None,
        storage: storage(data_dir),
        skill_ids: vec![SKILL_ID.to_owned()],
        no_verify,
        max_body_bytes: 256 * 1024,
        max_in_flight: 1024,
        header_read_timeout: std::time::Duration::from_secs(65),
        body_read_timeout: std::time::Duration::from_secs(10),
        max_connections: 2048,
        alexa_deadline: std::time::Duration::from_millis(6000),
        shutdown_grace: std::time::Duration::from_secs(20),
        api: ApiArgs::default(),
        quality: encore::settings::defaults(),
    }
}

/// A server on a real listener (port 0), stopped when dropped.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start(data_dir: &Path, verifier: Option<Verifier>) -> TestServer {
        Self::start_on(storage(data_dir), verifier).await
    }

    /// A server on the given storage (e.g. `dynamo_storage`).
    pub async fn start_on(storage: StorageArgs, verifier: Option<Verifier>) -> TestServer {
        let mut args = serve_args(verifier.is_none(), &storage.data_dir);
        args.storage = storage;
        Self::start_with(args, verifier).await
    }

    /// A server with the given settings (e.g. the mobile API on).
    pub async fn start_with(args: ServeArgs, verifier: Option<Verifier>) -> TestServer {
        let parts = Components::load(&args.storage).await.unwrap();
        Self::start_with_parts(&args, parts, verifier).await
    }

    /// A server over parts the test built (e.g. over a store that hangs or panics).
    pub async fn start_with_parts(
        args: &ServeArgs,
        parts: Components,
        verifier: Option<Verifier>,
    ) -> TestServer {
        init_tracing();
        let app = Server::with_parts(args, parts, verifier).await.unwrap();
        let addr = app.local_addr();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops gracefully and waits until the store is closed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// POSTs `body` to /alexa with the given signature headers (absent when `None`).
pub async fn post_raw(
    client: &reqwest::Client,
    server: &TestServer,
    cert_url: Option<&str>,
    signature: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = client
        .post(server.url("/alexa"))
        .header("Content-Type", "application/json");
    if let Some(url) = cert_url {
        request = request.header("SignatureCertChainUrl", url);
    }
    if let Some(signature) = signature {
        request = request.header("Signature-256", signature);
    }
    request.body(body).send().await.unwrap()
}

/// POSTs `body` to /alexa, signed with `signer` and served from `cert` (a name under CERT_BASE).
pub async fn post_signed(
    client: &reqwest::Client,
    server: &TestServer,
    body: &Value,
    signer: &Signer,
    cert: &str,
) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).unwrap();
    let signature = signer.sign(&bytes);
    let url = format!("{CERT_BASE}{cert}.pem");
    post_raw(client, server, Some(&url), Some(&signature), bytes).await
}

/// The in-process router's settings as the tests use them: 64 KiB bodies, 1,024 requests in
/// flight, a 6 s voice deadline, no mobile API verifier, a generous rate limit.
pub fn router_settings() -> encore::app::RouterSettings {
    encore::app::RouterSettings {
        max_body_bytes: 64 * 1024,
        max_in_flight: 1024,
        body_read_timeout: std::time::Duration::from_secs(10),
        alexa_deadline: std::time::Duration::from_secs(6),
        jwt: None,
        rate_limit: encore::http::RateLimit {
            per_minute: 600,
            burst: 60,
        },
        admin_apart: false,
    }
}

/// The stderr lines of a child process.
pub type Lines = std::io::Lines<std::io::BufReader<std::process::ChildStderr>>;

/// `encore serve --no-verify` on a free port with logs in `format` and `extra` arguments: the
/// child, its stderr from after the `listening` line, the lines before it, and the address
/// it listens on.
pub fn spawn_serve(
    dir: &Path,
    format: &str,
    extra: &[&str],
) -> (std::process::Child, Lines, Vec<String>, String) {
    use std::io::BufRead;
    let mut child = encore_command()
        .args([
            "serve",
            "--no-verify",
            "--addr",
            "127.0.0.1:0",
            "--log-format",
            format,
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut before = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        let addr = match v["fields"]["message"] == "listening" {
            true => v["fields"]["addr"].as_str().map(str::to_owned),
            false => line.find(" listening addr=").map(|at| {
                line[at + 16..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned()
            }),
        };
        match addr {
            Some(addr) => return (child, lines, before, addr),
            None => before.push(line),
        }
    }
}

/// How many segment files a feedback log directory holds.
pub fn segment_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count()
}
