//! Load benchmark of POST /alexa on loopback: wrk drives, in one run, a minimal axum handler
//! that parses the same JSON body, Encore with verification off, and Encore with
//! verification on (requests signed by a test PKI made here), and prints throughput,
//! p50/p99 latency and each one's ratio to the minimal handler.
//!
//! With BENCH_AWS_ENDPOINT set (benches/run-load.sh starts the local DynamoDB-compatible
//! server and sets it), it also drives Encore on DynamoDB with the profile cache on and off,
//! next to the embedded default at the same (smaller) number of connections.
//!
//! Run with `benches/run-load.sh` (release build; installs `wrk` and the local server).
//! Settings: BENCH_SECONDS (10), BENCH_CONNECTIONS (32), BENCH_AWS_CONNECTIONS (8),
//! BENCH_LISTENERS (1000 distinct listeners, round-robin), BENCH_PROFILE_ONLY (load one
//! target by its key, e.g. `minimal`, `off`, `on`, `aws-cache`, for a profiler).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/wrk.rs"]
mod wrk;

use axum::Json;
use axum::routing::post;
use encore::app::{Components, Server};
use encore::settings::{StorageArgs, StoreKind};
use serde_json::Value;
use std::net::SocketAddr;
use wrk::{Figures, alexa_script, env_or, peak_rss_mib, run_wrk};

// The allocator the `encore` binary uses, for the servers and the yardstick alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Target {
    name: String,
    key: &'static str,
    addr: SocketAddr,
    connections: u64,
}

impl Target {
    /// Starts Encore on `storage` on a loopback port, verifying requests with the test PKI or not.
    async fn start(
        name: &str,
        key: &'static str,
        storage: StorageArgs,
        verify: bool,
        connections: u64,
    ) -> Target {
        let mut args = common::serve_args(!verify, &storage.data_dir);
        args.storage = storage;
        let verifier = verify.then(|| common::verifier(common::fetcher()));
        let parts = Components::load(&args.storage).await.unwrap();
        let app = Server::with_parts(&args, parts, verifier).await.unwrap();
        let addr = app.local_addr();
        tokio::spawn(app.run_until(std::future::pending()));
        Target {
            name: name.into(),
            key,
            addr,
            connections,
        }
    }
}

fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let listeners = env_or("BENCH_LISTENERS", 1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let aws = std::env::var("BENCH_AWS_ENDPOINT").ok();
    let aws_connections = env_or("BENCH_AWS_CONNECTIONS", 8);
    let targets: Vec<Target> = rt.block_on(async {
        // The yardstick: parse the same JSON body, answer a small JSON.
        let app = axum::Router::new().route("/alexa", post(|Json(body): Json<Value>| async move {
            Json(serde_json::json!({ "version": "1.0", "response": { "ok": body.get("version").is_some() } }))
        }));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let minimal = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });

        let embedded = |sub: &str| common::storage(&dir.path().join(sub));
        let mut targets = vec![
            Target { name: "minimal axum handler (parses the JSON)".into(), key: "minimal", addr: minimal, connections },
            Target::start("encore, embedded, verification off", "off", embedded("off"), false, connections).await,
            Target::start("encore, embedded, verification on", "on", embedded("on"), true, connections).await,
        ];
        if let Some(endpoint) = &aws {
            let dynamo = |cache_ms: u64| StorageArgs {
                store: StoreKind::Dynamodb,
                aws_endpoint: Some(endpoint.clone()),
                table_prefix: format!("bench-{}-", std::process::id()),
                profile_cache_ttl: std::time::Duration::from_millis(cache_ms),
                ..embedded(&format!("aws-{cache_ms}"))
            };
            encore::cli::init::run(&dynamo(0)).await.expect("creating the bench table");
            let n = aws_connections;
            targets.push(Target::start("encore, embedded, verification on", "on-few", embedded("few"), true, n).await);
            targets.push(Target::start("encore, dynamodb, cache on, verification on", "aws-cache", dynamo(30_000), true, n).await);
            targets.push(Target::start("encore, dynamodb, cache off, verification on", "aws-nocache", dynamo(0), true, n).await);
        }
        targets
    });

    // PlayMoodIntent requests from distinct listeners, signed now (they stay fresh for 150 s).
    let signer = &common::pki().good;
    let requests: Vec<(String, String)> = (0..listeners)
        .map(|i| {
            let r = common::fixture_as("play_mood_er", "", &format!("amzn1.ask.account.bench{i}"));
            let body = serde_json::to_string(&r).unwrap();
            let sig = signer.sign(body.as_bytes());
            (body, sig)
        })
        .collect();
    let script = dir.path().join("alexa.lua");
    std::fs::write(&script, alexa_script(&requests)).unwrap();

    if let Ok(only) = std::env::var("BENCH_PROFILE_ONLY") {
        // For a profiler: load one target only (by its key: `minimal`, `off`, `on`, ...) and stop.
        let t = targets
            .iter()
            .find(|t| t.key == only)
            .expect("a known target key");
        let f = run_wrk(t.addr, "/alexa", &script, seconds, t.connections);
        println!(
            "{only}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms",
            f.rps, f.p50_ms, f.p99_ms
        );
        return;
    }
    // Warm up each target briefly (caches, connections), then measure.
    for t in &targets {
        run_wrk(t.addr, "/alexa", &script, 1, t.connections);
    }
    let figures: Vec<Figures> = targets
        .iter()
        .map(|t| run_wrk(t.addr, "/alexa", &script, seconds, t.connections))
        .collect();

    println!(
        "\nPOST /alexa, PlayMoodIntent, {seconds} s per target, wrk -t1, server on 2 worker threads, {listeners} listeners round-robin\n"
    );
    println!(
        "{:<48} {:>5} {:>10} {:>9} {:>9} {:>7} {:>7}",
        "target", "conns", "req/s", "p50 ms", "p99 ms", "ratio", "non-2xx"
    );
    let base = &figures[0];
    for (t, f) in targets.iter().zip(&figures) {
        let ratio = if t.connections == targets[0].connections {
            format!("{:.2}", f.rps / base.rps)
        } else {
            "-".into()
        };
        println!(
            "{:<48} {:>5} {:>10.0} {:>9.3} {:>9.3} {:>7} {:>7}",
            t.name, t.connections, f.rps, f.p50_ms, f.p99_ms, ratio, f.errors
        );
    }
    if aws.is_none() {
        println!(
            "\n(DynamoDB rows: run benches/run-load.sh, which starts the local server, or set BENCH_AWS_ENDPOINT)"
        );
    }
    println!(
        "\npeak memory of this process (all servers): {:.1} MiB",
        peak_rss_mib()
    );
}
