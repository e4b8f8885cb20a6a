//! Feedback throughput: events per second into the local log (durable), the time `send` adds
//! to a request, and consumer events per second into the embedded store; with
//! BENCH_AWS_ENDPOINT set (benches/run-load.sh sets it), consumer events per second into
//! DynamoDB and producer events per second into Kinesis, both on the local server.
//!
//! Run with `cargo bench --bench feedback` (or through benches/run-load.sh). Settings:
//! BENCH_EVENTS (100000 into the log), BENCH_CONSUMED (20000 into the embedded store),
//! BENCH_AWS_CONSUMED (500 into DynamoDB; the local server is slow at transactions),
//! BENCH_KINESIS_EVENTS (20000 into Kinesis).

#[path = "../tests/common/mod.rs"]
mod common;

use encore::domain::{Source, TrackId};
use encore::feedback::{
    EventContext, EventKind, FeedbackEvent, FeedbackSink, LocalConsumer, LocalLog,
};
use encore::recommend::{Catalog, CatalogRecommender, Recommender};
use encore::settings::{StorageArgs, StoreKind};
use encore::store::{EmbeddedStore, ProfileStore};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(i: usize) -> FeedbackEvent {
    let kinds = [
        EventKind::PlayStarted,
        EventKind::PlayFinished,
        EventKind::Skipped,
        EventKind::Liked,
    ];
    FeedbackEvent::new(
        &format!("user-{}", i % 1000),
        "device",
        &TrackId(format!("track-{}", i % 5000)),
        kinds[i % kinds.len()],
        40_000,
        EventContext::default(),
        Source::Alexa,
    )
}

/// Fills a log in `dir` with `n` events and waits until all are durable.
async fn fill(dir: &Path, n: usize) -> (Arc<LocalLog>, Duration, Vec<Duration>) {
    let log = Arc::new(LocalLog::open(dir).unwrap());
    let mut send_times = Vec::with_capacity(n);
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        let e = event(i);
        let t = Instant::now();
        deliveries.push(log.send(e));
        send_times.push(t.elapsed());
    }
    for d in deliveries {
        d.durable().await.unwrap();
    }
    (log, started.elapsed(), send_times)
}

async fn consume(
    log: Arc<LocalLog>,
    store: Arc<dyn ProfileStore>,
    catalog: Arc<dyn Recommender>,
) -> (u64, Duration) {
    let consumer = LocalConsumer::new(log, store, catalog);
    let started = Instant::now();
    let mut applied = 0;
    loop {
        let p = consumer.pass().await.unwrap();
        applied += p.applied;
        if p == encore::feedback::Progress::default() {
            break;
        }
    }
    (applied, started.elapsed())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let catalog: Arc<dyn Recommender> = Arc::new(CatalogRecommender::new(Arc::new(
        Catalog::load(&common::repo().join("models")).unwrap(),
    )));
    rt.block_on(async {
        let n = env_or("BENCH_EVENTS", 100_000);
        let (_, took, mut sends) = fill(&dir.path().join("log"), n).await;
        sends.sort();
        let pct = |p: f64| sends[((sends.len() as f64 * p) as usize).min(sends.len() - 1)].as_secs_f64() * 1e6;
        println!("\nfeedback producer, local log: {n} events durable in {:.2} s = {:.0} events/s", took.as_secs_f64(), n as f64 / took.as_secs_f64());
        println!("time `send` adds to a request: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us", pct(0.5), pct(0.99), pct(0.999));

        let m = env_or("BENCH_CONSUMED", 20_000);
        let (log, _, _) = fill(&dir.path().join("log-embedded"), m).await;
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("store")).unwrap());
        let (applied, took) = consume(log, store, catalog.clone()).await;
        println!("consumer into the embedded store: {applied} events in {:.2} s = {:.0} events/s", took.as_secs_f64(), applied as f64 / took.as_secs_f64());

        if let Ok(endpoint) = std::env::var("BENCH_AWS_ENDPOINT") {
            let k = env_or("BENCH_AWS_CONSUMED", 500);
            let (log, _, _) = fill(&dir.path().join("log-aws"), k).await;
            let storage = StorageArgs {
                store: StoreKind::Dynamodb,
                aws_endpoint: Some(endpoint),
                table_prefix: format!("feedback-bench-{}-", std::process::id()),
                store_timeout: std::time::Duration::from_millis(10_000),
                ..common::storage(dir.path())
            };
            encore::cli::init::run(&storage).await.unwrap();
            let store = encore::app::open_store(&storage).await.unwrap();
            let (applied, took) = consume(log, store, catalog).await;
            println!("consumer into DynamoDB (local server): {applied} events in {:.2} s = {:.0} events/s", took.as_secs_f64(), applied as f64 / took.as_secs_f64());
        } else {
            println!("(consumer into DynamoDB: run benches/run-load.sh, or set BENCH_AWS_ENDPOINT)");
        }
        if let Ok(endpoint) = std::env::var("BENCH_AWS_ENDPOINT") {
            let k = env_or("BENCH_KINESIS_EVENTS", 20_000);
            let name = format!("bench-{}", std::process::id());
            let stream = encore::feedback::KinesisStream::connect(&encore::aws::AwsSettings::new(Some(endpoint), Duration::from_secs(10)), &name).await;
            stream.create().await.unwrap();
            let sink = stream.sink(&dir.path().join("spool")).unwrap();
            let started = Instant::now();
            for i in 0..k {
                drop(sink.send(event(i)));
            }
            sink.flush().await.unwrap();
            while sink.unshipped() > 0 && started.elapsed() < Duration::from_secs(300) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let took = started.elapsed();
            println!(
                "producer into Kinesis (local server): {k} events accepted in {:.2} s = {:.0} events/s ({} left)",
                took.as_secs_f64(),
                k as f64 / took.as_secs_f64(),
                sink.unshipped()
            );
        }
    });
}
