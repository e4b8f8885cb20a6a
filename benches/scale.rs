//! Encore at catalog scale, through HTTP: for each size in BENCH_TRACKS (default 1000000) it
//! synthesises a Parquet catalog straight to disk (`synth::each_track`, as `encore catalog
//! synth` does) with its search index saved beside it (as `catalog synth` does too), and a
//! 32-dimensional factor model written row by row (`write_factors`, which builds its ANN
//! index), then starts Encore on them in a child process (verification off, the recommendation
//! cache off so every request ranks) and prints:
//! - time to ready (catalog, model and server, from the child's start);
//! - resident memory at ready and after the load: anonymous (the heap) and file-backed
//!   (pages of mapped files, which the kernel may drop), the peak (VmHWM), and bytes per
//!   track of each;
//! - PlayMood and MoreLikeThis through POST /alexa: throughput and p50/p99/p99.9 from wrk,
//!   BENCH_LISTENERS listeners (200) round-robin. Each MoreLikeThis seeds from the track the
//!   listener's queue is at, and replaces the queue: a chain of different seeds;
//! - a model swap while serving: a second version (the same files, hard-linked) is put
//!   beside the first, and the child reports how long until it serves it and the most its
//!   heap (anonymous resident memory, sampled every 10 ms) grew meanwhile;
//! - a catalog swap while serving PlayMood: a new manifest over the same files (the catalog
//!   job's last step), and the child reports how long until it serves the new catalog with
//!   the model matched to it, its heap before, at most meanwhile and a second after, and the
//!   most its whole resident memory (heap and mapped pages) grew; wrk reports PlayMood's
//!   latency while it loads.
//!
//! The data is written to a temporary directory, or kept under BENCH_MODELS_DIR/<tracks>
//! and reused when it is already there (100M tracks take a while to write: about 6 GB of
//! Parquet and 13 GB of factors).
//!
//! Run with `cargo bench --bench scale` (release; needs `wrk`, which `benches/run-load.sh`
//! installs). Settings: BENCH_TRACKS, BENCH_SECONDS (10), BENCH_CONNECTIONS (8),
//! BENCH_LISTENERS, BENCH_MODELS_DIR, and BENCH_MEMORY_LIMIT_MIB: the server in a cgroup
//! with that memory limit (root only), to see it serve while the kernel drops the pages
//! of its mapped files.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/wrk.rs"]
mod wrk;

use encore::app::Components;
use encore::objects::Location;
use encore::offline::synth;
use encore::recommend::model::{ANN_FILE, new_manifest, write_factors};
use encore::recommend::{Catalog, Manifest, write_tracks_parquet};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use wrk::{alexa_script, env_or, run_wrk, status_mib_of};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DIM: usize = 32;
/// How long a swap may take before the bench gives up on it (100M tracks: about 6 minutes).
const SWAP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30 * 60);
const SEED: u64 = 7;
const STREAM: &str = "https://audio.example/{track_id}.mp3";

/// Writes the catalog and one model version for `n` tracks into `dir`, unless a previous
/// run left them there.
fn write_models(dir: &Path, n: usize) {
    if dir.join("versions/v1/model.json").exists() {
        eprintln!(
            "reusing the {n}-track catalog and model in {}",
            dir.display()
        );
        save_search_index(dir);
        let version = dir.join("versions/v1");
        if !version.join(ANN_FILE).exists() {
            let started = Instant::now();
            encore::recommend::index_version(&version).unwrap();
            eprintln!(
                "built the model's ANN index in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        return;
    }
    std::fs::create_dir_all(dir).unwrap();
    let started = Instant::now();
    let written = write_tracks_parquet(
        &dir.join("catalog.parquet"),
        synth::each_track(n, SEED, STREAM, None),
    )
    .unwrap();
    assert_eq!(written, n);
    let manifest: Manifest = serde_json::from_value(serde_json::json!({
        "version": format!("synth-{n}"),
        "created_at": "2026-12-06T00:00:00Z",
        "catalog": "catalog.parquet",
        "stream_url_template": STREAM,
    }))
    .unwrap();
    manifest.write(dir).unwrap();
    eprintln!(
        "wrote {n} tracks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    write_factors(
        &dir.join("versions/v1"),
        &new_manifest("als", DIM, n),
        |r, y| {
            y.iter_mut().for_each(|f| *f = rng.random::<f32>() - 0.5);
            synth::track_id(r, SEED)
        },
    )
    .unwrap();
    eprintln!(
        "wrote the model in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    save_search_index(dir);
}

/// What the catalog job does after writing a catalog (`encore catalog index`): save its
/// song search index beside it, unless that is done.
fn save_search_index(dir: &Path) {
    if Manifest::read(dir).unwrap().search_index.is_some() {
        return;
    }
    let started = Instant::now();
    let catalog = Catalog::load(dir).unwrap();
    catalog.save_search_index(dir).unwrap();
    eprintln!(
        "saved the search index in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The child: Encore on `BENCH_MODELS`, verification and the recommendation cache off.
/// Says `ready ADDR SECONDS` once it serves and the scripts are written; stops when its
/// stdin closes.
fn encore_role() {
    let started = Instant::now();
    // The server's own log (load phases, model load) on stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("encore=info")
        .init();
    let dir = PathBuf::from(std::env::var("BENCH_DIR").unwrap());
    let models = PathBuf::from(std::env::var("BENCH_MODELS").unwrap());
    let listeners = env_or("BENCH_LISTENERS", 200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (addr, ready_s, served) = rt.block_on(async {
        let mut args = common::serve_args(true, &dir.join("data"));
        args.storage.models = Location::Dir(models.clone());
        args.storage.recommender.recommend_cache_ttl = std::time::Duration::ZERO;
        args.storage.recommender.exploration = 0.15;
        args.storage.recommender.model_poll = std::time::Duration::from_millis(500);
        let parts = Components::load(&args.storage).await.unwrap();
        let served = parts.models.clone();
        let app = encore::app::Server::with_parts(&args, parts, None)
            .await
            .unwrap();
        let addr = app.local_addr();
        tokio::spawn(app.run_until(std::future::pending()));
        let ready_s = started.elapsed().as_secs_f64();
        write_scripts(&dir, addr, listeners).await;
        (addr, ready_s, served)
    });
    println!("ready {addr} {ready_s}");
    // "swap": serve a second version of the model, and say what it took; "catalog": serve
    // the catalog again under a new manifest, and say what that took.
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {
        if line.trim() == "catalog" {
            let resident = || {
                let pid = std::process::id();
                (status_mib(pid, "RssAnon"), status_mib(pid, "RssFile"))
            };
            let (heap_before, file_before) = resident();
            let (mut heap_top, mut all_top) = (heap_before, heap_before + file_before);
            let manifest = models.join("manifest.json");
            let kept = std::fs::read(&manifest).unwrap();
            let mut next: Manifest = serde_json::from_slice(&kept).unwrap();
            let was = next.version.clone();
            next.version = format!("{was}-next");
            let started = Instant::now();
            next.write(&models).unwrap();
            while served.catalog().manifest.version == was {
                assert!(
                    started.elapsed() < SWAP_DEADLINE,
                    "the new catalog was not served within {SWAP_DEADLINE:?}: the server's log says why"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
                let (heap, file) = resident();
                heap_top = heap_top.max(heap);
                all_top = all_top.max(heap + file);
            }
            let took = started.elapsed().as_secs_f64();
            std::fs::write(&manifest, kept).unwrap();
            std::thread::sleep(std::time::Duration::from_secs(1));
            let (heap_after, _) = resident();
            println!(
                "catalog {took} {heap_before} {heap_top} {heap_after} {} {all_top}",
                heap_before + file_before
            );
        }
        if line.trim() == "swap" {
            // The load's own peak is above the swap's: sample the heap while it runs.
            let anon = || status_mib(std::process::id(), "RssAnon");
            let before = anon();
            let mut top = before;
            let started = Instant::now();
            let v1 = models.join("versions/v1");
            let v2 = models.join("versions/v2");
            let _ = std::fs::remove_dir_all(&v2);
            std::fs::create_dir_all(&v2).unwrap();
            for f in ["item_factors.safetensors", "items.txt", ANN_FILE] {
                std::fs::hard_link(v1.join(f), v2.join(f)).unwrap();
            }
            let mut manifest: Value =
                serde_json::from_slice(&std::fs::read(v1.join("model.json")).unwrap()).unwrap();
            manifest["version"] = "v2".into();
            std::fs::write(v2.join("model.json"), manifest.to_string()).unwrap();
            while served.current_version().as_deref() != Some("v2") {
                assert!(
                    started.elapsed() < SWAP_DEADLINE,
                    "the new model version was not served within {SWAP_DEADLINE:?}: the server's log says why"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
                top = top.max(anon());
            }
            let took = started.elapsed().as_secs_f64();
            let after = top.max(anon());
            std::fs::remove_dir_all(&v2).unwrap();
            println!("swapped {took} {before} {after}");
        }
        line.clear();
    }
    drop(rt);
}

/// Plays a mood for each listener (so each has a queue), then writes play.lua (PlayMood)
/// and more.lua (MoreLikeThis with the token of the track playing).
async fn write_scripts(dir: &Path, addr: SocketAddr, listeners: u64) {
    let client = reqwest::Client::new();
    let unsigned = |name: &str, token: &str, i: u64| {
        let r = common::fixture_as(name, token, &format!("amzn1.ask.account.scale{i}"));
        (serde_json::to_string(&r).unwrap(), String::new())
    };
    let mut play = Vec::new();
    let mut more = Vec::new();
    for i in 0..listeners {
        let request = unsigned("play_mood_er", "", i);
        let answer: Value = client
            .post(format!("http://{addr}/alexa"))
            .header("content-type", "application/json")
            .body(request.0.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = answer["response"]["directives"][0]["audioItem"]["stream"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no Play directive in {answer}"));
        more.push(unsigned("more_like_this", token, i));
        play.push(request);
    }
    std::fs::write(dir.join("play.lua"), alexa_script(&play)).unwrap();
    std::fs::write(dir.join("more.lua"), alexa_script(&more)).unwrap();
}

/// A field of /proc/PID/status, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    status_mib_of(&pid.to_string(), field)
}

struct Memory {
    anon: f64,
    file: f64,
    peak: f64,
}

fn memory(pid: u32) -> Memory {
    Memory {
        anon: status_mib(pid, "RssAnon"),
        file: status_mib(pid, "RssFile"),
        peak: status_mib(pid, "VmHWM"),
    }
}

/// Puts process `pid` under a memory limit of `mib` MiB in a new cgroup (v2's
/// `memory.max`, or v1's `memory.limit_in_bytes`; needs root), so the run shows what the
/// server needs resident when the kernel must drop the pages of its mapped files to keep
/// within it. Returns the group's directory, to remove once the process is gone.
fn limit_memory(pid: u32, mib: u64) -> PathBuf {
    let name = format!("encore-scale-{}", std::process::id());
    let root = Path::new("/sys/fs/cgroup");
    let v2 = std::fs::read_to_string(root.join("cgroup.controllers"))
        .is_ok_and(|c| c.contains("memory"));
    let (dir, limit) = match v2 {
        true => (root.join(&name), "memory.max"),
        false => (root.join("memory").join(&name), "memory.limit_in_bytes"),
    };
    let set = |file: &str, value: String| {
        std::fs::write(dir.join(file), value).unwrap_or_else(|e| {
            panic!(
                "BENCH_MEMORY_LIMIT_MIB needs a writable cgroup ({}): {e}",
                dir.join(file).display()
            )
        })
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!(
            "BENCH_MEMORY_LIMIT_MIB needs a writable cgroup ({}): {e}",
            dir.display()
        );
    }
    set(limit, (mib * 1024 * 1024).to_string());
    set("cgroup.procs", pid.to_string());
    dir
}

fn main() {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("encore") {
        return encore_role();
    }
    let sizes: Vec<usize> = std::env::var("BENCH_TRACKS")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let seconds = env_or("BENCH_SECONDS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 8);
    let memory_limit = std::env::var("BENCH_MEMORY_LIMIT_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let kept = std::env::var_os("BENCH_MODELS_DIR").map(PathBuf::from);
    let mut rows = Vec::new();
    let mut catalog_rows = Vec::new();
    for n in sizes {
        let temp = tempfile::tempdir().unwrap();
        let models = kept
            .as_ref()
            .map_or_else(|| temp.path().join("models"), |k| k.join(n.to_string()));
        write_models(&models, n);
        let work = temp.path().join("encore");
        std::fs::create_dir_all(&work).unwrap();
        eprintln!("starting Encore on {n} tracks");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("BENCH_ROLE", "encore")
            .env("BENCH_DIR", &work)
            .env("BENCH_MODELS", &models)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let limited = memory_limit.map(|mib| limit_memory(child.id(), mib));
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let (addr, ready_s): (SocketAddr, f64) = match words.as_slice() {
            ["ready", addr, s] => (addr.parse().unwrap(), s.parse().unwrap()),
            _ => panic!("the Encore child did not start: {line:?}"),
        };
        let at_ready = memory(child.id());
        let mut figures = Vec::new();
        for script in ["play.lua", "more.lua"] {
            let script = work.join(script);
            run_wrk(addr, "/alexa", &script, 1, connections);
            figures.push(run_wrk(addr, "/alexa", &script, seconds, connections));
        }
        let after = memory(child.id());
        use std::io::Write as _;
        let stdin = child.stdin.as_mut().unwrap();
        writeln!(stdin, "swap").unwrap();
        stdin.flush().unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        let swap: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        assert_eq!(swap.len(), 3, "the swap answered {line:?}");
        // The catalog swap, PlayMood served meanwhile.
        writeln!(stdin, "catalog").unwrap();
        stdin.flush().unwrap();
        let during = run_wrk(addr, "/alexa", &work.join("play.lua"), seconds, connections);
        line.clear();
        out.read_line(&mut line).unwrap();
        let catalog: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        assert_eq!(catalog.len(), 6, "the catalog swap answered {line:?}");
        drop(child.stdin.take());
        let _ = child.kill();
        let _ = child.wait();
        if let Some(group) = limited {
            let _ = std::fs::remove_dir(group);
        }
        let per_track = |mib: f64| mib * 1024.0 * 1024.0 / n as f64;
        rows.push(format!(
            "| {n} | {ready_s:.1} | {:.0} + {:.0} | {:.0} + {:.0} ({:.0} + {:.0} B/track) | {:.0} ({:.0} B/track) | {:.0} | {:.2} / {:.2} | {:.0} | {:.2} / {:.2} | {} | {:.1} s, +{:.0} |",
            at_ready.anon,
            at_ready.file,
            after.anon,
            after.file,
            per_track(after.anon),
            per_track(after.file),
            after.peak,
            per_track(after.peak),
            figures[0].rps,
            figures[0].p50_ms,
            figures[0].p99_ms,
            figures[1].rps,
            figures[1].p50_ms,
            figures[1].p99_ms,
            figures[0].errors + figures[1].errors,
            swap[0],
            swap[2] - swap[1],
        ));
        catalog_rows.push(format!(
            "| {n} | {:.1} | {:.0} | {:.0} (+{:.0}, {:.2}×) | {:.0} | {:.0} | {:.0} (+{:.0}, {:.2}×) | {:.0} | {:.2} / {:.2} | {} |",
            catalog[0],
            catalog[1],
            catalog[2],
            catalog[2] - catalog[1],
            catalog[2] / catalog[1],
            catalog[3],
            catalog[4],
            catalog[5],
            catalog[5] - catalog[4],
            catalog[5] / catalog[4],
            during.rps,
            during.p50_ms,
            during.p99_ms,
            during.errors,
        ));
    }
    println!(
        "\nEncore through POST /alexa, release build, loopback; wrk -t1 -c{connections}, {seconds} s per row, \
         2 worker threads, recommendation cache off; memory in MiB, anonymous + file-backed{}\n",
        memory_limit.map_or(String::new(), |mib| format!(
            "; the server under a memory limit of {mib} MiB (a cgroup), all it may keep resident"
        ))
    );
    println!(
        "| tracks | ready s | at ready | after the load | peak | PlayMood req/s | p50 / p99 ms | MoreLikeThis req/s | p50 / p99 ms | non-2xx | model swap: time, heap added at most MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!(
        "\nA catalog swap while PlayMood is served (wrk for {seconds} s from the new manifest); memory in MiB\n"
    );
    println!(
        "| tracks | swap s | heap before | heap at most | heap a second after | resident before | resident at most | PlayMood req/s meanwhile | p50 / p99 ms | non-2xx |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in catalog_rows {
        println!("{row}");
    }
}
