//! `encore report`, the A/B read-out, as an analyst uses it: from a feedback log (the binary)
//! and from the Kinesis stream on the local server. A real difference between variants is
//! called significant, noise is not, and a redelivered event is counted once.

use crate::common;

use encore::cli::report::ReportArgs;
use encore::domain::{Source, TrackId};
use encore::feedback::{
    EventContext, EventKind, FeedbackEvent, FeedbackSink, KinesisStream, LocalLog,
};
use encore::settings::FeedbackKind;
use serde_json::Value;
use std::path::Path;

fn play(experiment: &str, variant: &str, kind: EventKind, user: usize) -> FeedbackEvent {
    let context = EventContext {
        experiment: Some(experiment.into()),
        variant: Some(variant.into()),
        model_version: Some("v1".into()),
        mood: Some("relaxing".into()),
        ..EventContext::default()
    };
    FeedbackEvent::new(
        &format!("user{user}"),
        "device",
        &TrackId(format!("track{}", user % 50)),
        kind,
        120_000,
        context,
        Source::Alexa,
    )
}

/// `plays` ended plays of `variant`, `finished` of them finished, the rest skipped, with a
/// like on every tenth and a start before each.
fn variant_events(
    experiment: &str,
    variant: &str,
    plays: usize,
    finished: usize,
) -> Vec<FeedbackEvent> {
    let mut out = Vec::new();
    for i in 0..plays {
        out.push(play(experiment, variant, EventKind::PlayStarted, i));
        let kind = if i < finished {
            EventKind::PlayFinished
        } else {
            EventKind::Skipped
        };
        out.push(play(experiment, variant, kind, i));
        if i % 10 == 0 {
            out.push(play(experiment, variant, EventKind::Liked, i));
        }
    }
    out
}

/// The events of two experiments: `ranker` with a real difference (50% vs 60% completion
/// over 1,000 plays each), `artwork` with noise (50% vs 51% over 200 each).
fn experiment_events() -> Vec<FeedbackEvent> {
    let mut events = variant_events("ranker", "control", 1000, 500);
    events.extend(variant_events("ranker", "als-v2", 1000, 600));
    events.extend(variant_events("artwork", "control", 200, 100));
    events.extend(variant_events("artwork", "square", 200, 102));
    events
}

async fn write_log(dir: &Path, events: &[FeedbackEvent]) {
    let log = LocalLog::open(dir).unwrap();
    for e in events {
        drop(log.send(e.clone()));
    }
    log.flush().await.unwrap();
}

fn variant<'a>(report: &'a Value, experiment: &str, variant: &str) -> &'a Value {
    report["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["experiment"] == experiment)
        .and_then(|e| {
            e["variants"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["variant"] == variant)
        })
        .unwrap_or_else(|| panic!("no {experiment}/{variant} in {report:#}"))
}

fn report(args: &[&str]) -> (bool, String, String) {
    common::run_encore(&[&["report"], args].concat())
}

#[tokio::test]
async fn the_report_calls_a_real_difference_significant_and_noise_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("feedback");
    let events = experiment_events();
    // A redelivered event (same id) and one that names no variant.
    let mut written = events.clone();
    written.push(events[1].clone());
    let mut stray = play("ranker", "control", EventKind::PlayFinished, 1);
    stray.context = EventContext::default();
    written.push(stray);
    write_log(&log, &written).await;

    let (ok, out, err) = report(&["--from", log.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["events"], events.len() as u64 + 1, "{r:#}");
    assert_eq!(r["duplicates"], 1);
    assert_eq!(r["unattributed"], 1);

    let control = variant(&r, "ranker", "control");
    assert_eq!(control["plays"], 1000);
    assert_eq!(control["finished"], 500);
    assert_eq!(control["liked"], 100);
    assert!(control["completion_vs_control"].is_null());
    let v2 = variant(&r, "ranker", "als-v2");
    assert_eq!(v2["plays"], 1000);
    let c = &v2["completion"];
    assert!(
        c["low"].as_f64().unwrap() < 0.6 && c["high"].as_f64().unwrap() > 0.6,
        "{c}"
    );
    assert_eq!(v2["completion_vs_control"]["significant"], true, "{v2:#}");
    assert!((v2["completion_vs_control"]["difference"].as_f64().unwrap() - 0.1).abs() < 1e-9);
    assert_eq!(v2["skip_vs_control"]["significant"], true);
    let square = variant(&r, "artwork", "square");
    assert_eq!(
        square["completion_vs_control"]["significant"], false,
        "{square:#}"
    );

    // The text read-out says the same to a person.
    let (ok, out, err) = report(&["--from", log.to_str().unwrap(), "--only", "ranker"]);
    assert!(ok, "{err}");
    assert!(out.contains("experiment ranker, control control"), "{out}");
    assert!(!out.contains("artwork"), "{out}");
    let verdict = out
        .lines()
        .find(|l| l.contains("als-v2 vs control"))
        .unwrap();
    assert!(
        verdict.contains("completion +0.100") && verdict.contains("): significant"),
        "{out}"
    );

    // --since leaves out what came before.
    let (ok, out, _) = report(&[
        "--from",
        log.to_str().unwrap(),
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert!(ok && out.contains("no plays attributed"), "{out}");
}

#[test]
fn the_report_refuses_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let (ok, _, err) = report(&["--from", missing.to_str().unwrap()]);
    assert!(!ok && err.contains("no feedback log in"), "{err}");
    let (ok, _, err) = report(&[
        "--from",
        dir.path().to_str().unwrap(),
        "--since",
        "yesterday",
    ]);
    assert!(!ok && err.contains("RFC 3339"), "{err}");
    let (ok, _, err) = report(&[
        "--from",
        dir.path().to_str().unwrap(),
        "--confidence",
        "1.5",
    ]);
    assert!(!ok && err.contains("--confidence"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_reads_the_whole_stream_counting_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = common::kinesis_storage(dir.path(), "report");
    // Nothing here is about timeouts: a local server kept busy by the other tests may be slow.
    storage.store_timeout = std::time::Duration::from_secs(10);
    let stream =
        KinesisStream::connect(&encore::app::aws_settings(&storage), &storage.stream).await;
    stream.create().await.unwrap();
    let sink = stream.sink(&dir.path().join("spool")).unwrap();
    let events = experiment_events();
    // Every event once, and the first hundred again (a producer's retry after a lost answer).
    for e in events.iter().chain(&events[..100]) {
        drop(sink.send(e.clone()));
    }
    sink.flush().await.unwrap();
    for _ in 0..600 {
        if sink.unshipped() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sink.unshipped(), 0, "the spool never drained");
    // The stream holds every event at least once: the hundred re-sent ones, and any record
    // the SDK sent again after an attempt timed out (a loaded local server can be slow).
    let mut records = 0u64;
    stream.scan(|_| records += 1).await.unwrap();
    assert!(records >= events.len() as u64 + 100, "{records} records");

    let args = ReportArgs {
        storage: storage.clone(),
        from: None,
        only: None,
        control: "control".into(),
        confidence: 0.95,
        since: None,
        json: true,
    };
    assert_eq!(args.storage.feedback, FeedbackKind::Kinesis);
    let r: Value = serde_json::from_str(&encore::cli::report::run(&args).await.unwrap()).unwrap();
    assert_eq!(r["events"], events.len() as u64, "{r:#}");
    assert_eq!(r["duplicates"], records - events.len() as u64);
    assert_eq!(variant(&r, "ranker", "als-v2")["finished"], 600);
    assert_eq!(
        variant(&r, "ranker", "als-v2")["completion_vs_control"]["significant"],
        true
    );
}
