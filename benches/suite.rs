//! The benchmark suite's table: wrk drives, over loopback and in one run, the voice path
//! (PlayMood, PlaybackNearlyFinished, and Pause/Resume, all with request verification on),
//! the mobile recommendations endpoint (RS256 tokens; cache warm, and cache off), and a
//! minimal axum handler that parses the same JSON; it prints throughput, p50/p99/p99.9 and
//! each row's ratio to the minimal handler, then the servers' peak memory.
//!
//! Encore runs in child processes of this one (the bench binary started again with
//! `BENCH_ROLE=encore`), on the embedded default, so that their peak memory is their own.
//! A child makes its own test PKI and token keys, starts the server, plays one mood for every
//! listener and skips once (so that NearlyFinished and Resume have queues), writes the wrk scripts into its
//! directory and says `ready ADDR`; it stops when its stdin closes.
//!
//! Run with `benches/run-load.sh` (release build; installs `wrk`). Settings: BENCH_SECONDS
//! (10 per row, at most 30: the signed requests must stay within the 150 s the verifier
//! allows), BENCH_CONNECTIONS (32), BENCH_LISTENERS (1000).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/wrk.rs"]
mod wrk;

use axum::Json;
use axum::routing::post;
use encore::app::Components;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use wrk::{Figures, alexa_script, bearer_script, env_or, peak_rss_mib_of, run_wrk};

// The allocator the `encore` binary uses, for the servers and the yardstick alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECOMMENDATIONS: &str = "/v1/me/recommendations?mood=happy&limit=25";
const ISSUER: &str = "https://id.bench.example/";
const AUDIENCE: &str = "encore-bench";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A key pair for RS256 tokens: its JWKS written to `jwks`, and one token per user.
fn tokens(jwks: &Path, users: u64) -> Vec<String> {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let key = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("bench".into());
    std::fs::write(
        jwks,
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
    )
    .unwrap();
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    (0..users)
        .map(|u| {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some("bench".into());
            let claims = serde_json::json!({"sub": format!("bench-user-{u}"), "iss": ISSUER, "aud": AUDIENCE, "exp": exp});
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        })
        .collect()
}

/// A request fixture for listener `i`, signed now.
fn signed(name: &str, token: &str, i: u64) -> (String, String) {
    let r = common::fixture_as(name, token, &format!("amzn1.ask.account.bench{i}"));
    let body = serde_json::to_string(&r).unwrap();
    let sig = common::pki().good.sign(body.as_bytes());
    (body, sig)
}

/// The child: Encore on the embedded default in `BENCH_DIR`, verification on, the mobile API
/// on; writes the scripts and serves until stdin closes.
fn encore_role() {
    let dir = PathBuf::from(std::env::var("BENCH_DIR").unwrap());
    let cache_ms = env_or("BENCH_CACHE_MS", 60_000);
    let voice = std::env::var_os("BENCH_VOICE").is_some();
    let listeners = env_or("BENCH_LISTENERS", 1000);
    let rt = runtime();
    let addr = rt.block_on(async {
        let jwks = dir.join("jwks.json");
        let tokens = tokens(&jwks, listeners);
        let mut args = common::serve_args(false, &dir.join("data"));
        args.storage.recommender.recommend_cache_ttl = std::time::Duration::from_millis(cache_ms);
        args.storage.recommender.exploration = 0.15;
        args.api.jwt_issuer = Some(ISSUER.into());
        args.api.jwt_audience = Some(AUDIENCE.into());
        args.api.jwks_file = Some(jwks);
        // The limit is per user; the bench's users are few and fast.
        args.api.rate_limit_per_minute = 10_000_000;
        args.api.rate_limit_burst = 1_000_000;
        let parts = Components::load(&args.storage).await.unwrap();
        let verifier = common::verifier(common::fetcher());
        let app = encore::app::Server::with_parts(&args, parts, Some(verifier))
            .await
            .unwrap();
        let addr = app.local_addr();
        tokio::spawn(app.run_until(std::future::pending()));
        let write = |name: &str, lua: String| std::fs::write(dir.join(name), lua).unwrap();
        write(
            "recommendations.lua",
            bearer_script(RECOMMENDATIONS, &tokens),
        );
        if voice {
            write_voice_scripts(&dir, addr, listeners).await;
        }
        addr
    });
    println!("ready {addr}");
    // Serve until the parent closes stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(rt);
}

/// Plays a mood for each listener and skips to its second track, then writes the voice
/// scripts: PlayMood; NearlyFinished on each listener's first and second stream in turn (a
/// device reports each stream once: the same report again would be answered as a
/// duplicate, which is not the path to measure); Pause and Resume in turn.
async fn write_voice_scripts(dir: &Path, addr: SocketAddr, listeners: u64) {
    let client = reqwest::Client::new();
    let send = |(body, sig): (String, String)| {
        let client = client.clone();
        async move {
            let answer: Value = client
                .post(format!("http://{addr}/alexa"))
                .header("content-type", "application/json")
                .header("Signature-256", sig)
                .header(
                    "SignatureCertChainUrl",
                    format!("{}good.pem", common::CERT_BASE),
                )
                .body(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["response"]["directives"][0]["audioItem"]["stream"]["token"]
                .as_str()
                .unwrap_or_else(|| panic!("no Play directive in {answer}"))
                .to_owned()
        }
    };
    let mut nearly = [Vec::new(), Vec::new()];
    let mut pause_resume = Vec::new();
    let play: Vec<(String, String)> = (0..listeners)
        .map(|i| signed("play_mood_er", "", i))
        .collect();
    for (i, request) in play.iter().enumerate() {
        let i = i as u64;
        let first = send(request.clone()).await;
        let second = send(signed("next", &first, i)).await;
        nearly[0].push(signed("playback_nearly_finished", &first, i));
        nearly[1].push(signed("playback_nearly_finished", &second, i));
        pause_resume.push(signed("pause", &second, i));
        pause_resume.push(signed("resume", &second, i));
    }
    let nearly: Vec<(String, String)> = nearly.concat();
    std::fs::write(dir.join("play.lua"), alexa_script(&play)).unwrap();
    std::fs::write(dir.join("nearly.lua"), alexa_script(&nearly)).unwrap();
    std::fs::write(dir.join("pause-resume.lua"), alexa_script(&pause_resume)).unwrap();
}

/// An Encore child process, stopped (stdin closed, then killed) when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Server {
    fn start(dir: PathBuf, cache_ms: u64, voice: bool, listeners: u64) -> Server {
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env("BENCH_ROLE", "encore")
            .env("BENCH_DIR", &dir)
            .env("BENCH_CACHE_MS", cache_ms.to_string())
            .env("BENCH_LISTENERS", listeners.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if voice {
            cmd.env("BENCH_VOICE", "1");
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("the Encore child did not start: {line:?}"))
            .parse()
            .unwrap();
        Server { child, addr, dir }
    }

    fn script(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The process's peak resident memory so far (VmHWM), in MiB.
    fn peak_mib(&self) -> f64 {
        peak_rss_mib_of(&self.child.id().to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Row {
    name: &'static str,
    addr: SocketAddr,
    path: &'static str,
    script: PathBuf,
}

fn main() {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("encore") {
        return encore_role();
    }
    let seconds = env_or("BENCH_SECONDS", 10).min(30);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let listeners = env_or("BENCH_LISTENERS", 1000);
    let dir = tempfile::tempdir().unwrap();

    // The yardstick, in this process on a runtime of its own: parse the same JSON body,
    // answer a small JSON.
    let yardstick = runtime();
    let minimal: SocketAddr = yardstick.block_on(async {
        let app = axum::Router::new().route("/alexa", post(|Json(body): Json<Value>| async move {
            Json(serde_json::json!({ "version": "1.0", "response": { "ok": body.get("version").is_some() } }))
        }));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        addr
    });

    eprintln!("starting Encore (embedded default) and preparing {listeners} listeners' queues");
    let encore = Server::start(dir.path().join("encore"), 60_000, true, listeners);
    let uncached = Server::start(dir.path().join("uncached"), 0, false, listeners);

    // The signed requests were made when the child started: the voice rows come first.
    let rows = [
        Row {
            name: "voice: PlayMood (verified)",
            addr: encore.addr,
            path: "/alexa",
            script: encore.script("play.lua"),
        },
        Row {
            name: "voice: PlaybackNearlyFinished (verified)",
            addr: encore.addr,
            path: "/alexa",
            script: encore.script("nearly.lua"),
        },
        Row {
            name: "voice: Pause / Resume (verified)",
            addr: encore.addr,
            path: "/alexa",
            script: encore.script("pause-resume.lua"),
        },
        Row {
            name: "mobile: recommendations, cache warm",
            addr: encore.addr,
            path: RECOMMENDATIONS,
            script: encore.script("recommendations.lua"),
        },
        Row {
            name: "mobile: recommendations, cache off",
            addr: uncached.addr,
            path: RECOMMENDATIONS,
            script: uncached.script("recommendations.lua"),
        },
        Row {
            name: "minimal axum handler (parses the JSON)",
            addr: minimal,
            path: "/alexa",
            script: encore.script("play.lua"),
        },
    ];
    let figures: Vec<Figures> = rows
        .iter()
        .map(|r| {
            eprintln!("{}: 1 s warm-up, {seconds} s measured", r.name);
            run_wrk(r.addr, r.path, &r.script, 1, connections);
            run_wrk(r.addr, r.path, &r.script, seconds, connections)
        })
        .collect();
    let base = figures.last().unwrap().rps;

    println!(
        "\nEncore on the embedded default, release build, loopback; wrk -t1 -c{connections}, {seconds} s per row; \
         each server on 2 worker threads; {listeners} listeners (users) round-robin\n"
    );
    println!(
        "{:<42} {:>9} {:>8} {:>8} {:>9} {:>6} {:>8}",
        "target", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "ratio", "non-2xx"
    );
    for (r, f) in rows.iter().zip(&figures) {
        println!(
            "{:<42} {:>9.0} {:>8.3} {:>8.3} {:>9.3} {:>6.2} {:>8}",
            r.name,
            f.rps,
            f.p50_ms,
            f.p99_ms,
            f.p999_ms,
            f.rps / base,
            f.errors
        );
    }
    println!(
        "\npeak memory (VmHWM): Encore, voice and mobile rows {:.1} MiB; Encore with the recommendation cache off {:.1} MiB",
        encore.peak_mib(),
        uncached.peak_mib()
    );
    if figures.iter().any(|f| f.errors > 0) {
        println!(
            "some requests were answered with an error status: the rows that show them are not comparable"
        );
    }
}
