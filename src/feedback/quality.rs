//! Online model quality: every event the sink is handed is tallied per experiment variant in
//! minute buckets, so completion rate, skip rate and likes per play can be read over a
//! sliding window (as Prometheus gauges), and a variant whose completion rate falls below its
//! own recent baseline by more than a margin is logged as drifting.
//!
//! A *play* is a play that ended: finished, skipped (ended before 30 s) or stopped. The
//! completion rate is finished / plays, the skip rate skipped / plays, likes per play
//! liked / plays. Counters (`encore_variant_events_total`) are exported too, so dashboards
//! can compute the same rates across instances.

use super::{Delivery, EventKind, FeedbackError, FeedbackEvent, FeedbackSink};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest window kept, in minutes (the baseline may reach back this far).
pub const KEPT_MINUTES: u64 = 24 * 60;

/// Plays, and what became of them, of one variant over some span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub plays: u64,
    pub finished: u64,
    pub skipped: u64,
    pub liked: u64,
    pub disliked: u64,
}

impl Tally {
    pub fn add(&mut self, kind: EventKind) {
        match kind {
            EventKind::PlayFinished => {
                self.plays += 1;
                self.finished += 1;
            }
            EventKind::Skipped => {
                self.plays += 1;
                self.skipped += 1;
            }
            EventKind::Stopped => self.plays += 1,
            EventKind::Liked => self.liked += 1,
            EventKind::Disliked => self.disliked += 1,
            EventKind::PlayStarted | EventKind::Failed => {}
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.plays += other.plays;
        self.finished += other.finished;
        self.skipped += other.skipped;
        self.liked += other.liked;
        self.disliked += other.disliked;
    }

    fn ratio(&self, part: u64) -> Option<f64> {
        (self.plays > 0).then(|| part as f64 / self.plays as f64)
    }

    pub fn completion_rate(&self) -> Option<f64> {
        self.ratio(self.finished)
    }

    pub fn skip_rate(&self) -> Option<f64> {
        self.ratio(self.skipped)
    }

    pub fn likes_per_play(&self) -> Option<f64> {
        self.ratio(self.liked)
    }
}

/// How the window, the baseline and drift are judged (`settings::QualityArgs` gives the
/// defaults).
#[derive(Debug, Clone, Copy)]
pub struct QualitySettings {
    /// The sliding window the gauges show.
    pub window: Duration,
    /// The span before the window that a variant's completion rate is compared with.
    pub baseline: Duration,
    /// A completion rate this much (absolute) below the baseline's is drift.
    pub drift_margin: f64,
    /// Neither the window nor the baseline is judged with fewer plays than this.
    pub min_plays: u64,
}

/// One variant's figures at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantQuality {
    pub experiment: String,
    pub variant: String,
    pub window: Tally,
    pub baseline: Tally,
    /// The window's completion rate is below the baseline's by more than the margin.
    pub drifting: bool,
}

/// Minute buckets of one variant, a ring over `KEPT_MINUTES`.
struct Ring {
    buckets: Vec<(u64, Tally)>,
}

impl Ring {
    fn new() -> Self {
        Ring {
            buckets: vec![(u64::MAX, Tally::default()); KEPT_MINUTES as usize],
        }
    }

    fn add(&mut self, minute: u64, kind: EventKind) {
        let slot = &mut self.buckets[(minute % KEPT_MINUTES) as usize];
        if slot.0 != minute {
            *slot = (minute, Tally::default());
        }
        slot.1.add(kind);
    }

    /// The tally of minutes `from..to`.
    fn sum(&self, from: u64, to: u64) -> Tally {
        let mut total = Tally::default();
        for minute in from.max(to.saturating_sub(KEPT_MINUTES))..to {
            let (m, t) = &self.buckets[(minute % KEPT_MINUTES) as usize];
            if *m == minute {
                total.merge(t);
            }
        }
        total
    }
}

#[derive(Default)]
struct State {
    /// experiment -> variant -> buckets.
    arms: HashMap<String, HashMap<String, Ring>>,
    drifting: HashSet<(String, String)>,
}

/// The tallies of every known variant, since start.
pub struct Quality {
    started: Instant,
    state: Mutex<State>,
    /// The (experiment, variant) arms the server serves. Events name their arm in a context
    /// a client may write (app feedback), so only these are tallied and labelled; any other
    /// counts under `UNKNOWN`/`UNKNOWN`. Without this a client could make a ring of a day's
    /// buckets per made-up name (60 batches grew a server to 2.6 GB).
    /// experiment -> its variants.
    known: HashMap<String, HashSet<String>>,
}

/// The experiment and variant an event is counted under when it names no known arm.
pub const UNKNOWN: &str = "unknown";

impl Quality {
    /// Tallies for the given (experiment, variant) arms.
    pub fn new(arms: impl IntoIterator<Item = (String, String)>) -> Self {
        Quality {
            started: Instant::now(),
            state: Mutex::default(),
            known: arms.into_iter().fold(HashMap::new(), |mut known, (e, v)| {
                known.entry(e).or_insert_with(HashSet::new).insert(v);
                known
            }),
        }
    }

    fn minute_now(&self) -> u64 {
        self.started.elapsed().as_secs() / 60
    }

    /// Counts `event` under its experiment and variant (events without a variant, such as
    /// mobile feedback on tracks the app found itself, are not attributed).
    pub fn observe(&self, event: &FeedbackEvent) {
        self.observe_at(event, self.minute_now());
    }

    fn observe_at(&self, event: &FeedbackEvent, minute: u64) {
        let Some(variant) = event.context.variant.as_deref() else {
            return;
        };
        let experiment = event.context.experiment.as_deref().unwrap_or("");
        // Looked up by reference: an event costs no allocation to be told apart.
        let served = self
            .known
            .get(experiment)
            .is_some_and(|variants| variants.contains(variant));
        let (experiment, variant) = match served {
            true => (experiment, variant),
            false => (UNKNOWN, UNKNOWN),
        };
        metrics::counter!(
            "encore_variant_events_total",
            "experiment" => experiment.to_owned(),
            "variant" => variant.to_owned(),
            "kind" => event.kind.as_str()
        )
        .increment(1);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let variants = match state.arms.get_mut(experiment) {
            Some(v) => v,
            None => state.arms.entry(experiment.to_owned()).or_default(),
        };
        let ring = match variants.get_mut(variant) {
            Some(r) => r,
            None => variants.entry(variant.to_owned()).or_insert_with(Ring::new),
        };
        ring.add(minute, event.kind);
    }

    /// The figures of every variant now; sets the gauges and logs a variant that starts or
    /// stops drifting.
    pub fn evaluate(&self, settings: &QualitySettings) -> Vec<VariantQuality> {
        self.evaluate_at(settings, self.minute_now())
    }

    fn evaluate_at(&self, settings: &QualitySettings, minute: u64) -> Vec<VariantQuality> {
        let to = minute + 1;
        let window = (settings.window.as_secs() / 60).max(1);
        let baseline = (settings.baseline.as_secs() / 60).clamp(1, KEPT_MINUTES - window);
        let split = to.saturating_sub(window);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (experiment, variants) in &state.arms {
            for (variant, ring) in variants {
                let now = ring.sum(split, to);
                let before = ring.sum(split.saturating_sub(baseline), split);
                let drifting = match (now.completion_rate(), before.completion_rate()) {
                    (Some(n), Some(b)) => {
                        now.plays >= settings.min_plays
                            && before.plays >= settings.min_plays
                            && b - n > settings.drift_margin
                    }
                    _ => false,
                };
                out.push(VariantQuality {
                    experiment: experiment.clone(),
                    variant: variant.clone(),
                    window: now,
                    baseline: before,
                    drifting,
                });
            }
        }
        out.sort_by(|a, b| (&a.experiment, &a.variant).cmp(&(&b.experiment, &b.variant)));
        for q in &out {
            publish(q);
            let key = (q.experiment.clone(), q.variant.clone());
            let rate = |t: &Tally| t.completion_rate().unwrap_or(f64::NAN);
            if q.drifting && state.drifting.insert(key.clone()) {
                tracing::warn!(
                    experiment = %q.experiment,
                    variant = %q.variant,
                    completion_rate = rate(&q.window),
                    baseline_completion_rate = rate(&q.baseline),
                    plays = q.window.plays,
                    baseline_plays = q.baseline.plays,
                    margin = settings.drift_margin,
                    window_mins = window,
                    "model quality drift: the variant's completion rate fell below its baseline"
                );
            } else if !q.drifting && state.drifting.remove(&key) {
                tracing::info!(
                    experiment = %q.experiment,
                    variant = %q.variant,
                    completion_rate = rate(&q.window),
                    "model quality drift over: the variant's completion rate is back within the margin"
                );
            }
        }
        out
    }

    /// Evaluates every `every` until `stop` resolves.
    pub async fn watch(
        self: Arc<Self>,
        settings: QualitySettings,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = ticks.tick() => { self.evaluate(&settings); }
                () = &mut stop => return,
            }
        }
    }
}

/// The window's figures as gauges, by experiment and variant.
fn publish(q: &VariantQuality) {
    let labels = [
        ("experiment", q.experiment.clone()),
        ("variant", q.variant.clone()),
    ];
    metrics::gauge!("encore_variant_window_plays", &labels).set(q.window.plays as f64);
    let rates = [
        ("encore_variant_completion_rate", q.window.completion_rate()),
        ("encore_variant_skip_rate", q.window.skip_rate()),
        ("encore_variant_likes_per_play", q.window.likes_per_play()),
    ];
    for (name, value) in rates {
        if let Some(v) = value {
            metrics::gauge!(name, &labels).set(v);
        }
    }
    metrics::gauge!("encore_variant_drifting", &labels).set(if q.drifting { 1.0 } else { 0.0 });
}

/// A sink that tallies each event for `Quality` and hands it on.
pub struct ObservedSink {
    inner: Arc<dyn FeedbackSink>,
    quality: Arc<Quality>,
}

impl ObservedSink {
    pub fn new(inner: Arc<dyn FeedbackSink>, quality: Arc<Quality>) -> Self {
        ObservedSink { inner, quality }
    }
}

#[async_trait]
impl FeedbackSink for ObservedSink {
    fn send(&self, event: FeedbackEvent) -> Delivery {
        self.quality.observe(&event);
        self.inner.send(event)
    }

    async fn flush(&self) -> Result<(), FeedbackError> {
        self.inner.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Source, TrackId};
    use crate::feedback::EventContext;

    fn event(variant: &str, kind: EventKind) -> FeedbackEvent {
        let context = EventContext {
            experiment: Some("ranker".into()),
            variant: Some(variant.into()),
            ..EventContext::default()
        };
        FeedbackEvent::new(
            "u",
            "d",
            &TrackId("t".into()),
            kind,
            60_000,
            context,
            Source::Alexa,
        )
    }

    fn settings() -> QualitySettings {
        QualitySettings {
            window: Duration::from_secs(10 * 60),
            baseline: Duration::from_secs(60 * 60),
            drift_margin: 0.1,
            min_plays: 20,
        }
    }

    /// `n` plays of `variant` in `minute`, `finished` of them finished, the rest skipped.
    fn plays(q: &Quality, variant: &str, minute: u64, n: u64, finished: u64) {
        for i in 0..n {
            let kind = if i < finished {
                EventKind::PlayFinished
            } else {
                EventKind::Skipped
            };
            q.observe_at(&event(variant, kind), minute);
        }
    }

    fn quality() -> Quality {
        Quality::new(["a", "b"].map(|v| ("ranker".to_owned(), v.to_owned())))
    }

    #[test]
    fn an_arm_the_server_does_not_serve_is_counted_as_unknown_not_kept_apart() {
        let q = quality();
        for i in 0..500 {
            q.observe_at(&event(&format!("made-up-{i}"), EventKind::PlayFinished), 1);
        }
        plays(&q, "a", 1, 3, 3);
        let out = q.evaluate_at(&settings(), 2);
        let arms: Vec<(&str, &str, u64)> = out
            .iter()
            .map(|v| (v.experiment.as_str(), v.variant.as_str(), v.window.plays))
            .collect();
        assert_eq!(arms.len(), 2, "{arms:?}");
        assert!(arms.contains(&("ranker", "a", 3)), "{arms:?}");
        assert!(arms.contains(&(UNKNOWN, UNKNOWN, 500)), "{arms:?}");
    }

    #[test]
    fn rates_cover_the_window_only() {
        let q = quality();
        plays(&q, "a", 0, 10, 10); // outside a 10-minute window at minute 30
        plays(&q, "a", 25, 10, 5);
        q.observe_at(&event("a", EventKind::Liked), 25);
        q.observe_at(&event("a", EventKind::PlayStarted), 25);
        let out = q.evaluate_at(&settings(), 30);
        assert_eq!(out.len(), 1);
        let w = out[0].window;
        assert_eq!((w.plays, w.finished, w.skipped, w.liked), (10, 5, 5, 1));
        assert_eq!(w.completion_rate(), Some(0.5));
        assert_eq!(w.likes_per_play(), Some(0.1));
        assert_eq!(out[0].baseline.plays, 10);
    }

    #[test]
    fn a_fall_in_completion_beyond_the_margin_is_drift_and_a_recovery_ends_it() {
        let q = quality();
        // Baseline: 80% completion over the hour before the window.
        for m in 0..50 {
            plays(&q, "a", m, 10, 8);
            plays(&q, "b", m, 10, 8);
        }
        // Window: a falls to 60%; b stays at 80% (a stopped play counts as a play).
        for m in 50..60 {
            plays(&q, "a", m, 10, 6);
            plays(&q, "b", m, 9, 8);
            q.observe_at(&event("b", EventKind::Stopped), m);
        }
        let out = q.evaluate_at(&settings(), 59);
        let a = out.iter().find(|v| v.variant == "a").unwrap();
        let b = out.iter().find(|v| v.variant == "b").unwrap();
        assert!(a.drifting, "{a:?}");
        assert!(!b.drifting, "{b:?}");
        assert_eq!(
            (b.window.plays, b.window.completion_rate()),
            (100, Some(0.8))
        );
        assert_eq!(a.baseline.completion_rate(), Some(0.8));
        // Later, a's window is back at 80%.
        for m in 60..70 {
            plays(&q, "a", m, 10, 8);
        }
        let out = q.evaluate_at(&settings(), 69);
        assert!(!out.iter().find(|v| v.variant == "a").unwrap().drifting);
    }

    #[test]
    fn too_few_plays_are_not_judged() {
        let q = quality();
        plays(&q, "a", 0, 30, 30);
        plays(&q, "a", 55, 5, 0);
        let out = q.evaluate_at(&settings(), 59);
        assert_eq!(out[0].window.completion_rate(), Some(0.0));
        assert!(!out[0].drifting);
    }

    #[test]
    fn buckets_older_than_a_day_are_forgotten() {
        let q = quality();
        plays(&q, "a", 5, 10, 10);
        // A day later the same slot of the ring is reused.
        plays(&q, "a", 5 + KEPT_MINUTES, 10, 0);
        let out = q.evaluate_at(&settings(), 5 + KEPT_MINUTES);
        assert_eq!(out[0].window.plays, 10);
        assert_eq!(out[0].window.finished, 0);
    }
}
