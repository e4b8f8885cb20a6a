//! Fault drills on the AWS backends (the local DynamoDB/Kinesis server the test command
//! starts), with the real `encore serve` and `encore consume` processes under load:
//!
//! 1. both processes are killed (SIGKILL) mid-load and started again;
//! 2. the serving task is replaced: `encore serve` is killed and its data directory (the
//!    spool) deleted, as when ECS replaces a task and its ephemeral disk goes with it;
//! 3. the stream is unreachable for a while (a proxy holds every Kinesis call);
//! 4. the profile store times out for a while (the proxy holds every DynamoDB call 2 s).
//!
//! Throughout, an app posts feedback batches (`POST /v1/feedback`, its own event ids,
//! retrying a batch with the same ids until it is acknowledged, as a real app does), and a
//! device asks for music (`POST /alexa`, PlayMood). After each drill the checks are: every
//! acknowledged event is on the stream, and is folded into its listener's profile exactly
//! once (the profile's count of finished plays equals the listener's acknowledged events);
//! and every voice request the server took was answered with speech.
//!
//! Each drill prints what it did; `infra/local/run-drills.sh` runs them with the output
//! shown.

use crate::common;

use common::net::FaultProxy;
use encore::feedback::KinesisStream;
use encore::settings::StorageArgs;
use encore::store::ProfileStore;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "drill-secret";
const USERS: usize = 8;
const BATCH: usize = 10;

/// The stack under test: the servers' flags, their processes, and the proxy before the
/// local AWS server.
struct Stack {
    proxy: FaultProxy,
    storage: StorageArgs,
    dir: tempfile::TempDir,
    port: u16,
    serve: Option<Child>,
    consume: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Stack {
    fn storage_flags(&self, data_dir: &str) -> Vec<String> {
        let s = &self.storage;
        [
            "--store",
            "dynamodb",
            "--feedback",
            "kinesis",
            "--aws-endpoint",
            &self.proxy.url,
            "--table-prefix",
            &s.table_prefix,
            "--stream",
            &s.stream,
            "--store-timeout-ms",
            "1000",
            "--data-dir",
            &self.dir.path().join(data_dir).display().to_string(),
            "--models",
            &s.models.to_string(),
            "--intents",
            &s.intents.display().to_string(),
            "--model-poll-secs",
            "0",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    }

    fn spawn(&self, args: Vec<String>) -> Child {
        common::encore_command()
            .args(args)
            .env("ENCORE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap()
    }

    /// Starts `encore serve` and waits until it answers /healthz.
    async fn start_serve(&mut self) {
        let mut args: Vec<String> = ["serve", "--no-verify", "--addr"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.push(format!("127.0.0.1:{}", self.port));
        args.extend(self.storage_flags("serve"));
        args.extend(
            [
                "--jwt-dev-secret",
                SECRET,
                "--jwt-issuer",
                "drill",
                "--jwt-audience",
                "encore",
                "--rate-limit-per-minute",
                "1000000",
                "--rate-limit-burst",
                "100000",
                "--shutdown-grace-secs",
                "5",
            ]
            .iter()
            .map(|a| a.to_string()),
        );
        self.serve = Some(self.spawn(args));
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        for _ in 0..600 {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("encore serve did not start");
    }

    fn start_consume(&mut self) {
        let mut args = vec!["consume".to_owned()];
        args.extend(self.storage_flags("consume"));
        self.consume = Some(self.spawn(args));
    }

    fn kill(child: &mut Option<Child>) {
        if let Some(mut c) = child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        Self::kill(&mut self.serve);
        Self::kill(&mut self.consume);
    }
}

/// What the load saw.
#[derive(Default)]
struct Seen {
    /// Acknowledged event ids per listener.
    acked: Mutex<HashMap<String, HashSet<String>>>,
    /// Batches sent again after no acknowledgement.
    retries: AtomicU64,
    voice_answered: AtomicU64,
    /// Voice requests the server took but answered without speech or with an error status.
    voice_bad: Mutex<Vec<String>>,
    /// Voice requests no server took (the process was down).
    voice_unreached: AtomicU64,
    /// Voice requests cut off without an answer (the process died while handling them).
    voice_cut: AtomicU64,
    voice_slowest_ms: AtomicU64,
    /// `PlaybackFinished` reports answered, per listener.
    voice_finished: Mutex<HashMap<String, u64>>,
}

fn token(user: &str) -> String {
    let claims = json!({"sub": user, "iss": "drill", "aud": "encore",
        "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn track_ids() -> Vec<String> {
    let csv = std::fs::read_to_string(common::repo().join("models/catalog.csv")).unwrap();
    csv.lines()
        .skip(1)
        .take(50)
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect()
}

/// The app: feedback batches of finished plays, each retried with the same event ids until
/// acknowledged; stops starting new batches when `stop` is set.
async fn app_load(base: String, prefix: String, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let tracks = track_ids();
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let user = format!("{prefix}-user-{}", n % USERS);
        let events: Vec<Value> = (0..BATCH)
            .map(|i| {
                json!({"event_id": uuid::Uuid::new_v4().to_string(), "device_id": "drill-phone",
                       "track_id": tracks[(n + i) % tracks.len()], "kind": "play_finished",
                       "position_ms": 180_000})
            })
            .collect();
        let ids: Vec<String> = events
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_owned())
            .collect();
        let body = json!({ "events": events });
        let mut attempts = 0;
        loop {
            let sent = client
                .post(format!("{base}/v1/feedback"))
                .bearer_auth(token(&user))
                .json(&body)
                .send()
                .await;
            if let Ok(r) = sent
                && r.status() == 202
                && let Ok(answer) = r.json::<Value>().await
                && answer["accepted"] == BATCH
            {
                seen.acked
                    .lock()
                    .unwrap()
                    .entry(user.clone())
                    .or_default()
                    .extend(ids);
                break;
            }
            attempts += 1;
            seen.retries.fetch_add(1, Ordering::SeqCst);
            assert!(attempts < 600, "a batch was never acknowledged");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The device: each round, PlayMood (which must be answered with speech when a server takes
/// it), then PlaybackStarted and PlaybackFinished for the track it started.
async fn voice_load(base: String, prefix: String, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let post = async |body: &Value| -> Option<(reqwest::StatusCode, Value)> {
        let started = Instant::now();
        let sent = client.post(format!("{base}/alexa")).json(body).send().await;
        let answer = match sent {
            Err(e) if e.is_connect() => {
                seen.voice_unreached.fetch_add(1, Ordering::SeqCst);
                return None;
            }
            Err(_) => {
                seen.voice_cut.fetch_add(1, Ordering::SeqCst);
                return None;
            }
            Ok(answer) => answer,
        };
        let status = answer.status();
        let body = answer.json().await.unwrap_or(Value::Null);
        seen.voice_slowest_ms
            .fetch_max(started.elapsed().as_millis() as u64, Ordering::SeqCst);
        Some((status, body))
    };
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let user = format!("{prefix}-listener-{}", n % 10);
        n += 1;
        tokio::time::sleep(Duration::from_millis(40)).await;
        let Some((status, played)) = post(&common::fixture_as("play_mood_er", "", &user)).await
        else {
            continue;
        };
        let speech = played["response"]["outputSpeech"]["ssml"]
            .as_str()
            .unwrap_or("");
        if status != 200 || speech.is_empty() {
            seen.voice_bad
                .lock()
                .unwrap()
                .push(format!("PlayMood: {status}: {played}"));
            continue;
        }
        seen.voice_answered.fetch_add(1, Ordering::SeqCst);
        let Some(token) =
            played["response"]["directives"][0]["audioItem"]["stream"]["token"].as_str()
        else {
            continue; // spoken words without music (nothing to report on)
        };
        let mut finished = common::fixture_as("playback_finished", token, &user);
        finished["request"]["offsetInMilliseconds"] = 200_000.into();
        let reports = [
            (
                "PlaybackStarted",
                common::fixture_as("playback_started", token, &user),
            ),
            ("PlaybackFinished", finished),
        ];
        for (name, report) in reports {
            match post(&report).await {
                Some((status, _)) if status == 200 => {
                    if name == "PlaybackFinished" {
                        *seen
                            .voice_finished
                            .lock()
                            .unwrap()
                            .entry(user.clone())
                            .or_default() += 1;
                    }
                }
                Some((status, body)) => {
                    seen.voice_bad
                        .lock()
                        .unwrap()
                        .push(format!("{name}: {status}: {body}"));
                }
                None => break,
            }
        }
    }
}

/// Runs the load while `fault` does its work, then checks that every acknowledged event is
/// on the stream and folded in exactly once, and that the voice path answered.
async fn drill(stack: &mut Stack, name: &str, kills: bool, fault: impl AsyncFnOnce(&mut Stack)) {
    println!("\n== drill: {name}");
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let base = format!("http://127.0.0.1:{}", stack.port);
    let prefix = name.split_whitespace().next().unwrap().to_owned();
    let app = tokio::spawn(app_load(
        base.clone(),
        prefix.clone(),
        seen.clone(),
        stop.clone(),
    ));
    // Three devices, each with listeners of its own. A device report is answered once its
    // event is on the stream, so one device alone asks for music only every few hundred ms.
    let voices: Vec<_> = (0..3)
        .map(|d| {
            tokio::spawn(voice_load(
                base.clone(),
                format!("{prefix}-d{d}"),
                seen.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    fault(stack).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    app.await.unwrap();
    for voice in voices {
        voice.await.unwrap();
    }

    let acked = seen.acked.lock().unwrap().clone();
    let total: usize = acked.values().map(HashSet::len).sum();
    let voice_finished = seen.voice_finished.lock().unwrap().clone();
    let cut = seen.voice_cut.load(Ordering::SeqCst);
    println!(
        "load: the app had {total} events acknowledged in batches of {BATCH} ({} batches sent again); \
         the device had {} PlayMood answered with speech and {} plays reported finished, {} requests found no server, {cut} were cut off; \
         slowest voice answer {} ms",
        seen.retries.load(Ordering::SeqCst),
        seen.voice_answered.load(Ordering::SeqCst),
        voice_finished.values().sum::<u64>(),
        seen.voice_unreached.load(Ordering::SeqCst),
        seen.voice_slowest_ms.load(Ordering::SeqCst)
    );
    let bad = seen.voice_bad.lock().unwrap().clone();
    assert!(bad.is_empty(), "voice requests answered badly: {bad:#?}");
    if !kills {
        assert_eq!(cut, 0, "voice requests went unanswered with the server up");
    }
    assert!(
        seen.voice_answered.load(Ordering::SeqCst) > 10,
        "the voice path hardly answered"
    );
    assert!(total > 0, "no event was acknowledged");

    // Every acknowledged event reaches the stream.
    // The check reads straight from the local server, which answers one call at a time and
    // is busy with the consumer: it gets 10 s a call, and a scan that fails is tried again.
    let reader = StorageArgs {
        store_timeout: Duration::from_secs(10),
        ..stack.storage.clone()
    };
    let stream =
        KinesisStream::connect(&encore::app::aws_settings(&reader), &stack.storage.stream).await;
    let wanted: HashSet<&String> = acked.values().flatten().collect();
    let started = Instant::now();
    let (mut on_stream, mut records) = (HashSet::new(), 0u64);
    while started.elapsed() < Duration::from_secs(90) {
        on_stream.clear();
        records = 0;
        let scanned = stream
            .scan(|e| {
                records += 1;
                on_stream.insert(e.event_id);
            })
            .await;
        if let Err(e) = scanned {
            println!("reading the stream failed ({e}); trying again");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        if wanted.iter().all(|id| on_stream.contains(*id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let missing = wanted.iter().filter(|id| !on_stream.contains(**id)).count();
    assert_eq!(
        missing, 0,
        "{missing} acknowledged events never reached the stream"
    );
    println!(
        "stream: every acknowledged event is there after {:.1} s ({records} records on the stream so far, {} distinct)",
        started.elapsed().as_secs_f64(),
        on_stream.len()
    );

    // ...and is folded into its listener's profile exactly once.
    let store = encore::store::DynamoStore::connect(&encore::app::dynamo_settings(&reader)).await;
    // The local server answers one call at a time, and the consumer keeps it busy: a read
    // that times out is tried again.
    let finishes = async |user: &str| {
        for _ in 0..20 {
            if let Ok(p) = store.profile(user).await {
                return p.map_or(0, |p| p.finishes);
            }
        }
        panic!("the profile of {user} could not be read");
    };
    let started = Instant::now();
    let counts = loop {
        let mut counts = Vec::new();
        for (user, ids) in &acked {
            counts.push((user.clone(), ids.len() as u64, finishes(user).await));
        }
        let caught_up = counts.iter().all(|(_, want, got)| got >= want);
        if caught_up || started.elapsed() > Duration::from_secs(120) {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // A little longer, so that a duplicate applied late would show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (user, want, _) in &counts {
        let got = finishes(user).await;
        assert_eq!(
            got, *want,
            "{user}: {want} acknowledged finished plays, {got} folded into the profile"
        );
    }
    // The device's answered reports are in its listeners' profiles too. A report cut off by
    // a kill may or may not have been recorded: at most `cut` more.
    for (user, want) in &voice_finished {
        let mut got = finishes(user).await;
        while got < *want && started.elapsed() < Duration::from_secs(150) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            got = finishes(user).await;
        }
        assert!(
            *want <= got && got <= want + cut,
            "{user}: {want} finished plays answered ({cut} requests cut off), {got} folded into the profile"
        );
    }
    println!(
        "profiles: each of {} app users has exactly its acknowledged plays folded in, and each of {} voice listeners its answered ones ({:.1} s to catch up)",
        counts.len(),
        voice_finished.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_drills_lose_nothing_acknowledged_and_keep_the_voice_path_answering() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut storage = common::kinesis_storage(dir.path(), "drill");
    storage.aws_endpoint = Some(common::drill_aws_endpoint());
    encore::cli::init::run(&storage).await.unwrap();
    let proxy = FaultProxy::start(&common::drill_aws_endpoint()).await;
    let mut stack = Stack {
        proxy,
        storage,
        dir,
        port: free_port(),
        serve: None,
        consume: None,
    };
    stack.start_serve().await;
    stack.start_consume();
    println!(
        "encore serve on 127.0.0.1:{} and encore consume, on DynamoDB and Kinesis through a fault proxy at {}",
        stack.port, stack.proxy.url
    );

    drill(
        &mut stack,
        "kill both processes mid-load",
        true,
        async |s: &mut Stack| {
            println!("SIGKILL encore serve and encore consume");
            Stack::kill(&mut s.serve);
            Stack::kill(&mut s.consume);
            tokio::time::sleep(Duration::from_secs(1)).await;
            let t = Instant::now();
            s.start_serve().await;
            s.start_consume();
            println!(
                "started both again; serve answered /healthz after {:.1} s",
                t.elapsed().as_secs_f64()
            );
        },
    )
    .await;

    drill(
        &mut stack,
        "replace the serving task (its disk gone)",
        true,
        async |s: &mut Stack| {
            println!("SIGKILL encore serve and delete its data directory, spool included");
            Stack::kill(&mut s.serve);
            std::fs::remove_dir_all(s.dir.path().join("serve")).unwrap();
            let t = Instant::now();
            s.start_serve().await;
            println!(
                "a new serve on an empty data directory answered /healthz after {:.1} s",
                t.elapsed().as_secs_f64()
            );
        },
    )
    .await;

    drill(
        &mut stack,
        "stream unreachable for 5 s",
        false,
        async |s: &mut Stack| {
            println!("cut Kinesis off (calls held without an answer)");
            s.proxy.set_kinesis_down(true);
            tokio::time::sleep(Duration::from_secs(5)).await;
            s.proxy.set_kinesis_down(false);
            println!("Kinesis back");
        },
    )
    .await;

    drill(&mut stack, "store times out for 5 s", false, async |s: &mut Stack| {
        println!("hold every DynamoDB call 2 s (past the 150 ms voice budget and the 1 s store timeout)");
        s.proxy.set_dynamo_delay(Duration::from_secs(2));
        tokio::time::sleep(Duration::from_secs(5)).await;
        s.proxy.set_dynamo_delay(Duration::ZERO);
        println!("DynamoDB back to normal");
    })
    .await;
}
