//! What the load benchmarks share: running wrk against a loopback address and reading its
//! throughput and latency percentiles (p99.9 too, from the `done` hook every script made
//! here ends with). Each bench uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Command;

pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub struct Figures {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
}

/// A wrk `done` hook printing exact percentiles (wrk's own `--latency` lines stop at p99).
const PERCENTILES: &str = r#"
done = function(summary, latency, requests)
  io.write(string.format("pct50_us %d\npct99_us %d\npct999_us %d\n",
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"#;

/// A script that sends the given (body, signature) pairs to POST /alexa round-robin.
pub fn alexa_script(requests: &[(String, String)]) -> String {
    use std::fmt::Write as _;
    let mut lua = String::from("local reqs = {}\n");
    for (body, sig) in requests {
        writeln!(lua, "reqs[#reqs+1] = {{ [==[{body}]==], [==[{sig}]==] }}").unwrap();
    }
    lua += r#"
local i = 0
request = function()
  i = i % #reqs + 1
  local r = reqs[i]
  local headers = { ["Content-Type"] = "application/json", ["Signature-256"] = r[2],
    ["SignatureCertChainUrl"] = "https://s3.amazonaws.com/echo.api/good.pem" }
  return wrk.format("POST", "/alexa", headers, r[1])
end
"#;
    lua + PERCENTILES
}

/// A script that sends GET `path` with each bearer token round-robin.
pub fn bearer_script(path: &str, tokens: &[String]) -> String {
    use std::fmt::Write as _;
    let mut lua = String::from("local tokens = {}\n");
    for t in tokens {
        writeln!(lua, "tokens[#tokens+1] = \"{t}\"").unwrap();
    }
    lua += &format!(
        r#"
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "{path}", {{ ["Authorization"] = "Bearer " .. tokens[i] }})
end
"#
    );
    lua + PERCENTILES
}

pub fn millis(s: &str) -> f64 {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

pub fn run_wrk(
    addr: SocketAddr,
    path: &str,
    script: &std::path::Path,
    seconds: u64,
    connections: u64,
) -> Figures {
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("wrk is installed (benches/run-load.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = Figures {
        rps: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        p999_ms: f64::NAN,
        errors: 0,
    };
    let us = |n: &str| n.parse::<f64>().map_or(f64::NAN, |v| v / 1000.0);
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => f.rps = n.parse().unwrap_or(0.0),
            ["50%", v] => f.p50_ms = millis(v),
            ["99%", v] => f.p99_ms = millis(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => f.errors = n.parse().unwrap_or(0),
            ["pct50_us", n] => f.p50_ms = us(n),
            ["pct99_us", n] => f.p99_ms = us(n),
            ["pct999_us", n] => f.p999_ms = us(n),
            _ => {}
        }
    }
    f
}

/// This process's peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    peak_rss_mib_of("self")
}

/// The peak resident memory (VmHWM) of process `pid`, in MiB.
pub fn peak_rss_mib_of(pid: &str) -> f64 {
    status_mib_of(pid, "VmHWM")
}

/// A memory field of process `pid`'s /proc status (`VmHWM`, `RssAnon`, `RssFile`, ...;
/// `pid` may be "self"), in MiB; NaN when there is none.
pub fn status_mib_of(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
