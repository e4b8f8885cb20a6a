//! Load benchmark of `GET /v1/me/recommendations` on loopback, JWT verification on (RS256,
//! keys from a JWKS file made here): wrk drives, in one run, a minimal axum handler that
//! answers a small JSON, Encore with the recommendation cache on (after a warm-up every
//! request is a hit) and Encore with it off (every request ranks afresh), and prints
//! throughput, p50/p99 and each one's ratio to the minimal handler.
//!
//! Run with `benches/run-load.sh` or `cargo bench --bench api_load` (needs `wrk`).
//! Settings: BENCH_SECONDS (10), BENCH_CONNECTIONS (32), BENCH_USERS (1000 tokens,
//! round-robin).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "wrk.rs"]
mod wrk;

use encore::app::{Application, Parts};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::fmt::Write as _;
use std::net::SocketAddr;
use wrk::{env_or, peak_rss_mib, run_wrk};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PATH: &str = "/v1/me/recommendations?mood=happy&limit=25";

fn wrk_script(tokens: &[String]) -> String {
    let mut lua = String::from("local tokens = {}\n");
    for t in tokens {
        writeln!(lua, "tokens[#tokens+1] = \"{t}\"").unwrap();
    }
    lua += &format!(
        r#"
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "{PATH}", {{ ["Authorization"] = "Bearer " .. tokens[i] }})
end
"#
    );
    lua
}

async fn encore(dir: &std::path::Path, jwks: &std::path::Path, cache_ms: u64) -> SocketAddr {
    let mut args = common::serve_args(true, dir);
    args.storage.recommender.recommend_cache_ttl_ms = cache_ms;
    args.storage.recommender.exploration = 0.15;
    args.api.jwt_issuer = Some("https://id.bench.example/".into());
    args.api.jwt_audience = Some("encore-bench".into());
    args.api.jwks_file = Some(jwks.to_owned());
    // The limit is per user; the bench's users are few and fast.
    args.api.rate_limit_per_minute = 10_000_000;
    args.api.rate_limit_burst = 1_000_000;
    let parts = Parts::load(&args.storage).await.unwrap();
    let app = Application::with_parts(&args, parts, None).await.unwrap();
    let addr = app.local_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    addr
}

fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let users = env_or("BENCH_USERS", 1000);
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let key = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("bench".into());
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
    )
    .unwrap();
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let tokens: Vec<String> = (0..users)
        .map(|u| {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some("bench".into());
            let claims = serde_json::json!({"sub": format!("user{u}"), "iss": "https://id.bench.example/", "aud": "encore-bench", "exp": exp});
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        })
        .collect();
    let script = dir.path().join("api.lua");
    std::fs::write(&script, wrk_script(&tokens)).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let targets: Vec<(&str, SocketAddr)> = rt.block_on(async {
        let app = axum::Router::new().route(
            "/v1/me/recommendations",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({"tracks": [], "ok": true}))
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let minimal = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        vec![
            ("minimal axum handler (small JSON)", minimal),
            (
                "encore, JWT on, recommendation cache hit",
                encore(&dir.path().join("hit"), &jwks, 600_000).await,
            ),
            (
                "encore, JWT on, cache off (every request a miss)",
                encore(&dir.path().join("miss"), &jwks, 0).await,
            ),
        ]
    });
    for (_, addr) in &targets {
        run_wrk(*addr, PATH, &script, 2, connections);
    }
    let figures: Vec<wrk::Figures> = targets
        .iter()
        .map(|(_, addr)| run_wrk(*addr, PATH, &script, seconds, connections))
        .collect();
    println!(
        "\nGET {PATH}, {seconds} s per target, {connections} connections, wrk -t1, server on 2 worker threads, {users} users round-robin\n"
    );
    println!(
        "{:<50} {:>10} {:>9} {:>9} {:>7} {:>7}",
        "target", "req/s", "p50 ms", "p99 ms", "ratio", "non-2xx"
    );
    for ((name, _), f) in targets.iter().zip(&figures) {
        println!(
            "{:<50} {:>10.0} {:>9.3} {:>9.3} {:>7.2} {:>7}",
            name,
            f.rps,
            f.p50_ms,
            f.p99_ms,
            f.rps / figures[0].rps,
            f.errors
        );
    }
    println!(
        "\npeak memory of this process (all servers): {:.1} MiB",
        peak_rss_mib()
    );
}
