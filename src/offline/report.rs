//! `encore report`: the A/B read-out. Reads the feedback log or stream (each event once, by
//! `event_id`), tallies plays per experiment and variant, and prints each variant's plays,
//! completion rate and skip rate with Wilson confidence intervals, and, against the control
//! variant, whether each difference is significant (a two-sided two-proportion z-test,
//! Bonferroni-corrected for the number of variants compared).
//!
//! The normal distribution's CDF and quantile are written here (about thirty lines) rather
//! than taken from a statistics crate: the ones that have them bring a linear-algebra stack
//! with them.

use crate::feedback::{FeedbackEvent, Tally};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Events counted per (experiment, variant), each event id once.
#[derive(Default)]
pub struct Tallies {
    arms: BTreeMap<(String, String), Tally>,
    seen: HashSet<u128>,
    since: Option<OffsetDateTime>,
    pub events: u64,
    pub duplicates: u64,
    pub unattributed: u64,
}

impl Tallies {
    pub fn since(since: Option<OffsetDateTime>) -> Self {
        Tallies {
            since,
            ..Tallies::default()
        }
    }

    pub fn add(&mut self, event: &FeedbackEvent) {
        if let Some(since) = self.since {
            match OffsetDateTime::parse(&event.occurred_at, &Rfc3339) {
                Ok(at) if at >= since => {}
                _ => return,
            }
        }
        let id = uuid::Uuid::parse_str(&event.event_id)
            .map(|u| u.as_u128())
            .unwrap_or_else(|_| xxhash_rust::xxh3::xxh3_128(event.event_id.as_bytes()));
        if !self.seen.insert(id) {
            self.duplicates += 1;
            return;
        }
        self.events += 1;
        let Some(variant) = &event.context.variant else {
            self.unattributed += 1;
            return;
        };
        let experiment = event.context.experiment.clone().unwrap_or_default();
        self.arms
            .entry((experiment, variant.clone()))
            .or_default()
            .add(event.kind);
    }
}

/// A proportion with its confidence interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rate {
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// A difference from the control variant.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Difference {
    /// This variant's rate minus the control's.
    pub difference: f64,
    pub p_value: f64,
    pub significant: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    pub variant: String,
    pub plays: u64,
    pub finished: u64,
    pub skipped: u64,
    pub liked: u64,
    pub disliked: u64,
    pub completion: Option<Rate>,
    pub skip: Option<Rate>,
    pub likes_per_play: Option<f64>,
    /// Against the control (none for the control itself).
    pub completion_vs_control: Option<Difference>,
    pub skip_vs_control: Option<Difference>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    /// Empty for events recorded before experiments were named in them.
    pub experiment: String,
    pub control: String,
    /// The significance level each comparison is held to (alpha over the comparisons made).
    pub alpha_per_comparison: f64,
    pub variants: Vec<VariantReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub confidence: f64,
    pub events: u64,
    pub duplicates: u64,
    pub unattributed: u64,
    pub malformed: u64,
    pub experiments: Vec<ExperimentReport>,
}

/// Builds the read-out: per experiment, `control` (or, when it has no such variant, the
/// variant with the most plays) against each other variant.
pub fn build(tallies: &Tallies, control: &str, confidence: f64, malformed: u64) -> Report {
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let mut experiments: BTreeMap<&str, Vec<(&str, &Tally)>> = BTreeMap::new();
    for ((e, v), t) in &tallies.arms {
        experiments.entry(e).or_default().push((v, t));
    }
    let experiments = experiments
        .into_iter()
        .map(|(experiment, arms)| {
            let control_arm = arms
                .iter()
                .find(|(v, _)| *v == control)
                .or_else(|| arms.iter().max_by_key(|(_, t)| t.plays))
                .copied()
                .expect("an experiment has at least one variant");
            let comparisons = (arms.len() - 1).max(1) as f64;
            let alpha = (1.0 - confidence) / comparisons;
            let variants = arms
                .iter()
                .map(|&(variant, t)| {
                    let is_control = variant == control_arm.0;
                    let c = control_arm.1;
                    let versus = |x: u64, cx: u64| {
                        (!is_control)
                            .then(|| compare(x, t.plays, cx, c.plays, alpha))
                            .flatten()
                    };
                    VariantReport {
                        variant: variant.to_owned(),
                        plays: t.plays,
                        finished: t.finished,
                        skipped: t.skipped,
                        liked: t.liked,
                        disliked: t.disliked,
                        completion: wilson(t.finished, t.plays, z),
                        skip: wilson(t.skipped, t.plays, z),
                        likes_per_play: t.likes_per_play(),
                        completion_vs_control: versus(t.finished, c.finished),
                        skip_vs_control: versus(t.skipped, c.skipped),
                    }
                })
                .collect();
            ExperimentReport {
                experiment: experiment.to_owned(),
                control: control_arm.0.to_owned(),
                alpha_per_comparison: alpha,
                variants,
            }
        })
        .collect();
    Report {
        confidence,
        events: tallies.events,
        duplicates: tallies.duplicates,
        unattributed: tallies.unattributed,
        malformed,
        experiments,
    }
}

/// The Wilson score interval of `successes` out of `n` (none without trials).
pub fn wilson(successes: u64, n: u64, z: f64) -> Option<Rate> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Rate {
        rate: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// A two-sided two-proportion z-test (pooled) of x1/n1 against x2/n2.
pub fn compare(x1: u64, n1: u64, x2: u64, n2: u64, alpha: f64) -> Option<Difference> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    let p_value = if se == 0.0 {
        if p1 == p2 { 1.0 } else { 0.0 }
    } else {
        2.0 * (1.0 - normal_cdf(((p1 - p2) / se).abs()))
    };
    Some(Difference {
        difference: p1 - p2,
        p_value,
        significant: p_value < alpha,
    })
}

/// The standard normal CDF, from erfc (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The standard normal quantile, by bisection on `normal_cdf` (called once per report).
pub fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0, 10.0);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// The read-out as text: one table per experiment, then the comparisons with the control.
pub fn render(report: &Report) -> String {
    use std::fmt::Write as _;
    let pct = (report.confidence * 100.0).round();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} events read ({} duplicates ignored, {} without a variant, {} malformed records)",
        report.events, report.duplicates, report.unattributed, report.malformed
    );
    if report.experiments.is_empty() {
        out += "no plays attributed to an experiment variant\n";
    }
    let rate = |r: Option<Rate>| match r {
        Some(r) => format!("{:.3} [{:.3}, {:.3}]", r.rate, r.low, r.high),
        None => "-".to_owned(),
    };
    for e in &report.experiments {
        let name = match e.experiment.as_str() {
            "" => "(unnamed: events from before experiments were recorded)",
            n => n,
        };
        let _ = writeln!(out, "\nexperiment {name}, control {}", e.control);
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>26} {:>26} {:>11}",
            "variant",
            "plays",
            format!("completion ({pct}% CI)"),
            format!("skip rate ({pct}% CI)"),
            "likes/play"
        );
        for v in &e.variants {
            let likes = v
                .likes_per_play
                .map_or("-".to_owned(), |l| format!("{l:.3}"));
            let _ = writeln!(
                out,
                "{:<16} {:>9} {:>26} {:>26} {:>11}",
                v.variant,
                v.plays,
                rate(v.completion),
                rate(v.skip),
                likes
            );
        }
        for v in e.variants.iter().filter(|v| v.variant != e.control) {
            let verdict = |what: &str, d: Option<Difference>| match d {
                Some(d) => format!(
                    "{what} {:+.3} (p = {:.4}): {}",
                    d.difference,
                    d.p_value,
                    if d.significant {
                        "significant"
                    } else {
                        "not significant"
                    }
                ),
                None => format!("{what}: no plays to compare"),
            };
            let _ = writeln!(
                out,
                "  {} vs {}: {}; {}",
                v.variant,
                e.control,
                verdict("completion", v.completion_vs_control),
                verdict("skip rate", v.skip_vs_control)
            );
        }
        if e.variants.len() > 1 {
            let _ = writeln!(
                out,
                "  (two-sided two-proportion z-tests, each at alpha {:.4}: {:.2} over {} comparison(s))",
                e.alpha_per_comparison,
                1.0 - report.confidence,
                e.variants.len() - 1
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_distribution_matches_its_tables() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.995) - 2.575_829).abs() < 1e-5);
    }

    #[test]
    fn wilson_intervals_match_published_values() {
        // 81 of 263 at 95%: 0.2553 to 0.3662 (Newcombe 1998, example).
        let r = wilson(81, 263, normal_quantile(0.975)).unwrap();
        assert!(
            (r.low - 0.2553).abs() < 5e-4 && (r.high - 0.3662).abs() < 5e-4,
            "{r:?}"
        );
        // All successes: the interval stays inside [0, 1] and below 1 at its low end.
        let all = wilson(10, 10, 1.96).unwrap();
        assert!(all.high <= 1.0 && all.low < 1.0 && all.low > 0.6);
        assert!(wilson(0, 0, 1.96).is_none());
    }

    #[test]
    fn a_two_proportion_test_tells_a_real_difference_from_noise() {
        // 60% vs 50% over 1,000 plays each: z about 4.5, clearly significant.
        let d = compare(600, 1000, 500, 1000, 0.05).unwrap();
        assert!((d.difference - 0.1).abs() < 1e-12);
        assert!(d.p_value < 1e-4 && d.significant, "{d:?}");
        // 52% vs 50% over 100 plays each: noise.
        let d = compare(52, 100, 50, 100, 0.05).unwrap();
        assert!(d.p_value > 0.7 && !d.significant, "{d:?}");
        assert!(compare(1, 0, 1, 10, 0.05).is_none());
    }
}
