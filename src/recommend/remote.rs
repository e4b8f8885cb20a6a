//! A recommender behind an HTTP model endpoint (optional backend). Each call has a timeout
//! and bounded retries; a circuit breaker stops calling an endpoint that keeps failing and
//! lets one probe through after a pause. Whatever goes wrong, the listener hears music: the
//! local catalog answers instead, marked as variant `fallback`.
//!
//! The endpoint contract (JSON both ways):
//! request  `{"user_id", "selection": {"by", "value"}, "limit", "exclude": [ids],
//!            "liked": [ids], "disliked": [ids], "recent": [ids], "explicit_allowed"}`
//! response `{"model_version", "experiment"?, "variant"?, "recommendation_id"?, "track_ids": [ids]}`

use super::rank::CatalogRecommender;
use super::{
    Ranked, RecommendError, RecommendRequest, Recommendation, Recommender, recommendation_id,
};
use crate::domain::{Named, Reason, Track, TrackId, TrackLookup};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RemoteSettings {
    pub url: String,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts after the first, on a timeout, a connection error or a 5xx.
    pub retries: u32,
    /// Consecutive failed calls that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before it lets one probe through.
    pub open_for: Duration,
}

/// A consecutive-failures circuit breaker: closed, open for a while, then half-open (one
/// probe; its success closes the breaker, its failure opens it again).
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            open_for,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a call may go out now.
    pub fn allow(&self) -> bool {
        let mut s = self.state();
        match s.open_until {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) if s.probing => false,
            Some(_) => {
                s.probing = true;
                true
            }
        }
    }

    pub fn success(&self) {
        *self.state() = BreakerState::default();
    }

    pub fn failure(&self) {
        let mut s = self.state();
        s.failures += 1;
        if s.probing || s.failures >= self.threshold {
            if s.open_until.is_none() || s.probing {
                tracing::warn!(
                    failures = s.failures,
                    open_for_ms = self.open_for.as_millis() as u64,
                    "model endpoint breaker open"
                );
            }
            s.open_until = Some(Instant::now() + self.open_for);
            s.probing = false;
        }
    }

    pub fn is_open(&self) -> bool {
        self.state().open_until.is_some()
    }
}

#[derive(Deserialize)]
struct Answer {
    model_version: String,
    #[serde(default)]
    experiment: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    recommendation_id: Option<String>,
    track_ids: Vec<TrackId>,
}

pub struct RemoteRecommender {
    client: reqwest::Client,
    settings: RemoteSettings,
    breaker: Breaker,
    local: Arc<CatalogRecommender>,
}

/// How many of each profile list travel to the endpoint.
const PROFILE_ITEMS: usize = 50;

impl RemoteRecommender {
    pub fn new(settings: RemoteSettings, local: Arc<CatalogRecommender>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .expect("a reqwest client with timeouts builds");
        RemoteRecommender {
            breaker: Breaker::new(settings.failure_threshold, settings.open_for),
            client,
            settings,
            local,
        }
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    async fn call(&self, req: &RecommendRequest<'_>) -> Result<Answer, String> {
        fn list(ids: Option<&Vec<TrackId>>) -> &[TrackId] {
            ids.map(|v| &v[..v.len().min(PROFILE_ITEMS)]).unwrap_or(&[])
        }
        let body = serde_json::json!({
            "user_id": req.user_id,
            "selection": req.selection,
            "limit": req.limit,
            "exclude": req.exclude,
            "liked": list(req.profile.map(|p| &p.liked)),
            "disliked": list(req.profile.map(|p| &p.disliked)),
            "recent": list(req.profile.map(|p| &p.recent)),
            "explicit_allowed": req.profile.is_none_or(|p| p.explicit_allowed),
        });
        let mut last = String::new();
        for attempt in 0..=self.settings.retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(10 << attempt.min(4))).await;
            }
            match self
                .client
                .post(&self.settings.url)
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    return r
                        .json::<Answer>()
                        .await
                        .map_err(|e| format!("bad answer: {e}"));
                }
                Ok(r) if r.status().is_server_error() => last = format!("status {}", r.status()),
                // A 4xx will not get better by asking again.
                Ok(r) => return Err(format!("status {}", r.status())),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    async fn fallback(
        &self,
        req: RecommendRequest<'_>,
        why: &str,
    ) -> Result<Recommendation, RecommendError> {
        metrics::counter!("encore_remote_recommender_total", "outcome" => "fallback").increment(1);
        tracing::warn!(
            reason = why,
            "model endpoint unavailable; answering from the local catalog"
        );
        let mut rec = self.local.recommend(req).await?;
        rec.variant = "fallback".into();
        Ok(rec)
    }
}

#[async_trait]
impl Recommender for RemoteRecommender {
    async fn recommend(&self, req: RecommendRequest<'_>) -> Result<Recommendation, RecommendError> {
        if !self.breaker.allow() {
            return self.fallback(req, "breaker open").await;
        }
        let answer = match self.call(&req).await {
            Ok(a) => {
                self.breaker.success();
                a
            }
            Err(e) => {
                self.breaker.failure();
                return self.fallback(req, &e).await;
            }
        };
        let tracks: Vec<Arc<Track>> = answer
            .track_ids
            .iter()
            .filter(|id| !req.exclude.contains(id))
            .filter_map(|id| self.local.track(id))
            .filter(|t| {
                req.profile
                    .is_none_or(|p| !p.dislikes(&t.id) && (p.explicit_allowed || !t.explicit))
            })
            .take(req.limit)
            .collect();
        // The endpoint says which tracks, not why: its model picked them.
        let Some(tracks) = Ranked::new(tracks, Reason::Model) else {
            return self.fallback(req, "no known track in the answer").await;
        };
        metrics::counter!("encore_remote_recommender_total", "outcome" => "ok").increment(1);
        Ok(Recommendation {
            id: answer.recommendation_id.unwrap_or_else(recommendation_id),
            model_version: answer.model_version,
            experiment: answer.experiment.unwrap_or_else(|| "remote".into()),
            variant: answer.variant.unwrap_or_else(|| "remote".into()),
            tracks,
        })
    }

    fn model_version(&self) -> String {
        "remote".into()
    }

    /// Names are looked up in the local catalog: the endpoint ranks, it does not search.
    fn search(&self, named: &Named, limit: usize) -> Vec<(Arc<Track>, f32)> {
        self.local.search(named, limit)
    }
}

impl TrackLookup for RemoteRecommender {
    fn track(&self, id: &TrackId) -> Option<Arc<Track>> {
        self.local.track(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_failures_and_probes_once_after_the_pause() {
        let b = Breaker::new(3, Duration::from_millis(30));
        for _ in 0..2 {
            assert!(b.allow());
            b.failure();
        }
        assert!(b.allow(), "two failures keep it closed");
        b.failure();
        assert!(!b.allow(), "the third opens it");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one probe after the pause");
        assert!(!b.allow(), "and only one");
        b.failure();
        assert!(!b.allow(), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.success();
        assert!(b.allow() && b.allow(), "a good probe closes it");
    }
}
