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
