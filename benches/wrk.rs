//! What the load benchmarks share: running wrk against a loopback address and reading its
//! throughput and latency percentiles.

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
    pub errors: u64,
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
        errors: 0,
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => f.rps = n.parse().unwrap_or(0.0),
            ["50%", v] => f.p50_ms = millis(v),
            ["99%", v] => f.p99_ms = millis(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => f.errors = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    f
}

pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
