//! Criterion micro-benchmarks of the per-request steps: parsing (the Alexa envelope, an
//! utterance), verification (the signature over a body with the certificate cached, and the
//! request's age and skill id), recommendation (a new listener on the demo catalog, ranking
//! afresh), and feedback events (JSON encoding and decoding, and a handover to the local log).
//!
//! Run with `cargo bench --bench micro` (release build, no network). Recommendation at 10k
//! to 1M tracks is `cargo bench --bench recommend`.

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{BatchSize, Criterion, Throughput};
use encore::domain::{Mood, Selection, Source, TrackId};
use encore::feedback::{EventContext, EventKind, FeedbackEvent, FeedbackSink, LocalLog};
use encore::interaction::InteractionModel;
use encore::recommend::{Catalog, CatalogRecommender, RecommendRequest, Recommender};
use encore::skill::envelope::RequestEnvelope;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn event() -> FeedbackEvent {
    let context = EventContext {
        mood: Some("relaxing".into()),
        recommendation_id: Some("rec-0f5d7a4e".into()),
        model_version: Some("2026-11-01T00-00-00Z".into()),
        experiment: Some("default".into()),
        variant: Some("control".into()),
        ..EventContext::default()
    };
    FeedbackEvent::new(
        "amzn1.ask.account.bench1",
        "amzn1.ask.device.bench",
        &TrackId("4uLU6hMCjMI75M1A2tKUQC".into()),
        EventKind::PlayFinished,
        187_000,
        context,
        Source::Alexa,
    )
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Parsing.
    let body = serde_json::to_vec(&common::fixture("play_mood_er", "")).unwrap();
    let catalog = Arc::new(Catalog::load(&common::repo().join("models")).unwrap());
    let open_values = HashMap::from([("AMAZON.Musician".to_owned(), catalog.artists())]);
    let model = InteractionModel::load(&common::repo().join("intents"), &open_values).unwrap();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function(
        "alexa envelope (PlayMood, JSON bytes -> RequestEnvelope)",
        |b| b.iter(|| serde_json::from_slice::<RequestEnvelope>(black_box(&body)).unwrap()),
    );
    g.throughput(Throughput::Elements(1));
    g.bench_function("utterance (en-US, \"play something relaxing\")", |b| {
        b.iter(|| {
            model
                .locale("en-US")
                .parse(black_box("play something relaxing"))
        })
    });
    g.finish();

    // Verification: the certificate is fetched and checked once, then cached, as in serving.
    let verifier = common::verifier(common::fetcher());
    let signature = common::pki().good.sign(&body);
    let cert_url = format!("{}good.pem", common::CERT_BASE);
    rt.block_on(verifier.verify_signature(Some(&cert_url), Some(&signature), &body))
        .unwrap();
    let timestamp = common::now_timestamp(0);
    let mut g = c.benchmark_group("verify");
    g.bench_function(
        "signature (RSA-2048 SHA-256 over the body, cached chain)",
        |b| {
            b.iter(|| {
                rt.block_on(verifier.verify_signature(
                    Some(&cert_url),
                    Some(black_box(&signature)),
                    black_box(&body),
                ))
                .unwrap()
            })
        },
    );
    g.bench_function("timestamp and skill id", |b| {
        b.iter(|| {
            verifier
                .check_request(black_box(&timestamp), Some(common::SKILL_ID))
                .unwrap()
        })
    });
    g.finish();

    // Recommendation: a new listener, no cache in front.
    let recommender = CatalogRecommender::new(catalog.clone());
    let selection = Selection::Mood(Mood::Relaxing);
    let mut g = c.benchmark_group("recommend");
    g.bench_function("new listener, mood, 25 tracks, demo catalog", |b| {
        b.iter(|| {
            let req = RecommendRequest {
                user_id: "bench",
                selection: &selection,
                profile: None,
                exclude: &[],
                limit: 25,
            };
            rt.block_on(recommender.recommend(req)).unwrap()
        })
    });
    g.finish();

    // Feedback events.
    let e = event();
    let encoded = serde_json::to_vec(&e).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = LocalLog::open(dir.path()).unwrap();
    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode (FeedbackEvent -> JSON)", |b| {
        b.iter(|| serde_json::to_vec(black_box(&e)).unwrap())
    });
    g.bench_function("decode (JSON -> FeedbackEvent)", |b| {
        b.iter(|| serde_json::from_slice::<FeedbackEvent>(black_box(&encoded)).unwrap())
    });
    g.bench_function(
        "send to the local log (handover, fsync off the path)",
        |b| b.iter_batched(event, |e| drop(log.send(e)), BatchSize::SmallInput),
    );
    g.finish();
    rt.block_on(log.flush()).unwrap();
    c.final_summary();
}
