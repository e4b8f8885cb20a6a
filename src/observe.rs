//! What an operator watches: the Prometheus exposition of every metric the code emits
//! through the `metrics` facade, and per-route request counts and latencies.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Histogram buckets for latencies, in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// The process-wide Prometheus recorder, installed on first use. `None` when another
/// recorder was installed first (then `/metrics` says so).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// The current exposition text.
pub fn render() -> String {
    match prometheus() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => "# no recorder installed\n".to_owned(),
    }
}

/// The method as a metric label: the standard methods as they are, anything else (a client
/// may send any token) as OTHER, so no request can add a series.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("OTHER")
}

/// Counts a finished HTTP request and records its latency, by route (the matched route
/// template or `unmatched`), method (`method_label`) and status.
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    let route = route.to_owned();
    metrics::counter!(
        "encore_http_requests_total",
        "route" => route.clone(),
        "method" => method_label(method),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("encore_http_request_duration_seconds", "route" => route).record(seconds);
}

/// Registers at zero the series the dashboard and alerts query, so a fresh instance exposes
/// them before its first request or event: a rate over a series that does not exist yet is
/// no data, and an alert on it cannot fire. Registering adds nothing to a count, so calling
/// this again (every `Components::load`) changes no value. `arms` are the experiment arms
/// the server serves. The label values are the fixed sets the code counts under.
pub fn zero_at_start(arms: &[(String, String)]) {
    // What is recorded before the recorder is installed is lost (the model's info included).
    prometheus();
    for name in [
        "encore_http_shed_total",
        "encore_http_panics_total",
        "encore_http_body_timeouts_total",
        "encore_alexa_deadline_exceeded_total",
        "encore_feedback_produced_total",
        "encore_feedback_spooled_total",
        "encore_feedback_delivered_total",
        "encore_feedback_refused_total",
        "encore_feedback_set_aside_total",
        "encore_feedback_log_damaged_total",
        "encore_consumer_dead_letters_total",
        "encore_profiles_trimmed_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    for status in ["200", "400", "500", "503"] {
        metrics::counter!("encore_http_requests_total", "route" => "/alexa", "method" => "POST", "status" => status)
            .increment(0);
    }
    metrics::counter!("encore_alexa_requests_total", "type" => "LaunchRequest", "intent" => "")
        .increment(0);
    let labelled: [(&'static str, &'static str, &[&'static str]); 6] = [
        (
            "encore_verification_failures_total",
            "reason",
            &[
                "missing_header",
                "cert_url",
                "cert_fetch",
                "cert_chain",
                "cert_expired",
                "cert_name",
                "signature",
                "malformed",
                "timestamp",
                "skill_id",
            ],
        ),
        (
            "encore_auth_failures_total",
            "reason",
            &[
                "missing_token",
                "malformed_token",
                "expired_token",
                "token_not_yet_valid",
                "wrong_audience",
                "wrong_issuer",
                "wrong_algorithm",
                "bad_signature",
                "unknown_key",
                "no_subject",
            ],
        ),
        (
            "encore_recommend_cache_total",
            "result",
            &["hit", "miss", "bypass"],
        ),
        (
            "encore_remote_recommender_total",
            "outcome",
            &["ok", "fallback"],
        ),
        (
            "encore_feedback_failed_total",
            "reason",
            &["closed", "encode"],
        ),
        (
            "encore_consumer_events_total",
            "outcome",
            &["applied", "duplicate", "erased", "malformed"],
        ),
    ];
    for (name, label, values) in labelled {
        for &value in values {
            metrics::counter!(name, label => value).increment(0);
        }
    }
    for operation in [
        "profile_read",
        "profile_write",
        "queue_read",
        "queue_write",
        "mobile",
    ] {
        for kind in [
            "conflict",
            "timeout",
            "throttled",
            "unavailable",
            "corrupt",
            "refused",
        ] {
            metrics::counter!("encore_store_errors_total", "operation" => operation, "kind" => kind)
                .increment(0);
        }
    }
    for (experiment, variant) in arms {
        for kind in ["play_finished", "skipped", "stopped", "liked"] {
            metrics::counter!(
                "encore_variant_events_total",
                "experiment" => experiment.clone(),
                "variant" => variant.clone(),
                "kind" => kind
            )
            .increment(0);
        }
        let labels = [
            ("experiment", experiment.clone()),
            ("variant", variant.clone()),
        ];
        metrics::gauge!("encore_variant_window_plays", &labels).increment(0.0);
        metrics::gauge!("encore_variant_drifting", &labels).increment(0.0);
    }
}
