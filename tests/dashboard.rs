//! The Grafana dashboard in `infra/grafana/` queries only metrics that exist: each name it
//! uses is one the code emits (a `_bucket` series only of a histogram), the counters it
//! queries are on a fresh instance's `/metrics` at zero before any traffic, and the ones a
//! voice conversation produces are on `/metrics` after one.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use encore::app::{Components, build_router};
use encore::settings::QualityArgs;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// Every PromQL expression in the dashboard (panel targets and template queries).
fn dashboard_queries() -> Vec<String> {
    let path = common::repo().join("infra/grafana/encore-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if var["type"] == "query" {
            out.push(var["query"].as_str().unwrap().to_owned());
        }
    }
    out
}

/// The `encore_*` names in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("encore_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Every `.rs` file under `dir`, read.
fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            *out += &std::fs::read_to_string(&path).unwrap();
        }
    }
}

/// The metric names the code emits, as string literals, and which of them are histograms.
fn emitted() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut code = String::new();
    sources(&common::repo().join("src"), &mut code);
    let literals: BTreeSet<String> = code
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("encore_") && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(str::to_owned)
        .collect();
    let histograms = code
        .split("histogram!(")
        .skip(1)
        .filter_map(|call| call.trim_start().strip_prefix('"')?.split('"').next())
        .map(str::to_owned)
        .collect();
    (literals, histograms)
}

#[test]
fn every_metric_the_dashboard_queries_is_one_the_code_emits() {
    let (literals, histograms) = emitted();
    let queried: BTreeSet<String> = dashboard_queries()
        .iter()
        .flat_map(|q| metric_names(q))
        .collect();
    assert!(
        queried.len() >= 20,
        "the dashboard queries only {queried:?}"
    );
    for name in &queried {
        match name.strip_suffix("_bucket") {
            Some(base) => assert!(
                histograms.contains(base),
                "the dashboard reads {name}, but {base} is not a histogram the code records"
            ),
            None => assert!(
                literals.contains(name),
                "the dashboard reads {name}, which nothing in src/ emits"
            ),
        }
    }
    // And the dashboard covers what an operator watches.
    for needed in [
        "encore_http_request_duration_seconds_bucket",
        "encore_verification_failures_total",
        "encore_recommend_cache_total",
        "encore_feedback_spool_depth",
        "encore_consumer_millis_behind_latest",
        "encore_variant_events_total",
        "encore_variant_drifting",
    ] {
        assert!(
            queried.contains(needed),
            "the dashboard has no panel on {needed}"
        );
    }
}

async fn post(router: &axum::Router, body: Value) -> (StatusCode, Value) {
    let request = Request::post("/alexa")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, bytes) = common::call(router, request).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn what_a_conversation_produces_is_on_metrics_under_the_names_the_dashboard_reads() {
    let dir = tempfile::tempdir().unwrap();
    let parts = Components::load(&common::storage(dir.path()))
        .await
        .unwrap();
    let router = build_router(&parts, None, common::router_settings());
    // Play, start, finish after a minute (a play that ended).
    let (status, played) = post(&router, common::fixture("play_mood_er", "")).await;
    assert_eq!(status, StatusCode::OK);
    let token = played["response"]["directives"][0]["audioItem"]["stream"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no Play directive in {played:#}"))
        .to_owned();
    for (name, offset) in [("playback_started", 0), ("playback_finished", 60_000)] {
        let mut r = common::fixture(name, &token);
        r["request"]["offsetInMilliseconds"] = offset.into();
        assert_eq!(post(&router, r).await.0, StatusCode::OK, "{name}");
    }
    parts.feedback.flush().await.unwrap();
    let quality: QualityArgs = encore::settings::defaults();
    parts.quality.evaluate(&quality.settings());

    let (_, bytes) = common::call(
        &router,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    let text = String::from_utf8(bytes).unwrap();
    let exposed = metric_names(&text);
    for name in [
        "encore_http_requests_total",
        "encore_http_request_duration_seconds_bucket",
        "encore_alexa_requests_total",
        "encore_alexa_request_duration_seconds_bucket",
        "encore_recommend_cache_total",
        "encore_recommend_duration_seconds_bucket",
        "encore_feedback_produced_total",
        "encore_variant_events_total",
        "encore_variant_window_plays",
        "encore_variant_completion_rate",
        "encore_variant_skip_rate",
        "encore_variant_drifting",
    ] {
        let queried = dashboard_queries()
            .iter()
            .any(|q| metric_names(q).contains(name));
        assert!(queried, "{name} is not on the dashboard");
        assert!(
            exposed.contains(name),
            "{name} is not on /metrics after a conversation:\n{text}"
        );
    }
    // The finished play counts for the variant that served it.
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("encore_variant_window_plays{") && l.contains("variant=\"control\"")
        })
        .unwrap_or_else(|| panic!("no window plays for the control arm in:\n{text}"));
    assert!(line.contains("experiment=\"default\""), "{line}");
    assert!(line.ends_with(" 1"), "{line}");
}

/// Gauges a fresh embedded default has no value for: per Kinesis shard, of the Kinesis
/// spool, of a model directory (the default serves the catalog), and rates over plays that
/// have not happened (their play counts are exposed at zero).
const NO_VALUE_YET: [&str; 6] = [
    "encore_consumer_millis_behind_latest",
    "encore_feedback_spool_depth",
    "encore_model_info",
    "encore_variant_completion_rate",
    "encore_variant_skip_rate",
    "encore_variant_likes_per_play",
];

#[test]
fn a_fresh_instance_exposes_every_counter_the_dashboard_queries_before_any_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _lines, _, addr) = common::spawn_serve(dir.path(), "json", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let text = rt.block_on(async {
        let r = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap();
        r.text().await.unwrap()
    });
    let _ = child.kill();
    let _ = child.wait();
    let (_, histograms) = emitted();
    let exposed = metric_names(&text);
    let queried: BTreeSet<String> = dashboard_queries()
        .iter()
        .flat_map(|q| metric_names(q))
        .collect();
    let missing: Vec<&String> = queried
        .iter()
        .filter(|name| !name.ends_with("_bucket") && !histograms.contains(name.as_str()))
        .filter(|name| !NO_VALUE_YET.contains(&name.as_str()))
        .filter(|name| !exposed.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "a fresh instance does not expose {missing:?}:\n{text}"
    );
    // The ratios the error panels divide have a zero to divide by, and their numerators exist.
    for series in [
        r#"encore_http_requests_total{route="/alexa",method="POST",status="500"} 0"#,
        r#"encore_recommend_cache_total{result="hit"} 0"#,
        r#"encore_verification_failures_total{reason="signature"} 0"#,
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
}
