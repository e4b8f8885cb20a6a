//! The recommendation cache: one ranked list per (listener, request) in moka, with a TTL and
//! a size bound. The key holds the profile's version, so a list lives only while what it
//! was ranked from is unchanged (a play folded in makes a new one). Concurrent misses for one key wait for a single computation (moka
//! coalesces them). A like or dislike forgets the listener's lists by moving them to a new
//! generation, which also discards an answer computed while the opinion was being recorded.

use super::{Ranked, RecommendError, RecommendRequest, Recommendation, Recommender};
use crate::domain::{Named, Reason, Selection, Track, TrackId, TrackLookup};
use async_trait::async_trait;
use moka::future::Cache;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How many tracks a cached list keeps, so later requests can skip what is already queued.
const CACHED_TRACKS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    user: String,
    generation: u64,
    profile_version: u64,
    selection: Selection,
}

pub struct CachedRecommender {
    inner: Arc<dyn Recommender>,
    answers: Cache<Key, Arc<Recommendation>>,
    generations: Cache<String, u64>,
}

impl CachedRecommender {
    pub fn new(inner: Arc<dyn Recommender>, ttl: Duration, capacity: u64) -> Self {
        CachedRecommender {
            inner,
            answers: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            // Outlives every answer of the generation it replaced.
            generations: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl * 2)
                .build(),
        }
    }

    fn count(result: &'static str) {
        metrics::counter!("encore_recommend_cache_total", "result" => result).increment(1);
    }
}

#[async_trait]
impl Recommender for CachedRecommender {
    async fn recommend(&self, req: RecommendRequest<'_>) -> Result<Recommendation, RecommendError> {
        let generation = self.generations.get(req.user_id).await.unwrap_or(0);
        let key = Key {
            user: req.user_id.to_owned(),
            generation,
            profile_version: req.profile.map_or(0, |p| p.version),
            selection: req.selection.clone(),
        };
        let full = RecommendRequest {
            exclude: &[],
            limit: CACHED_TRACKS.max(req.limit),
            ..req
        };
        let entry = self
            .answers
            .entry(key)
            .or_try_insert_with(async { self.inner.recommend(full).await.map(Arc::new) })
            .await
            .map_err(|e| RecommendError::clone(&e))?;
        Self::count(if entry.is_fresh() { "miss" } else { "hit" });
        let cached = entry.into_value();
        let excluded: HashSet<&TrackId> = req.exclude.iter().collect();
        let picks: Vec<(Arc<Track>, Reason)> = cached
            .tracks
            .picks()
            .filter(|(t, _)| !excluded.contains(&t.id))
            .take(req.limit)
            .map(|(t, why)| (t.clone(), why))
            .collect();
        let used_up = picks.len() < req.limit.min(cached.tracks.len()) && !req.exclude.is_empty();
        let Some(tracks) = Ranked::with_reasons(picks).filter(|_| !used_up) else {
            // The cached list is used up by what is queued: rank afresh around it.
            Self::count("bypass");
            return self.inner.recommend(req).await;
        };
        Ok(Recommendation {
            id: cached.id.clone(),
            model_version: cached.model_version.clone(),
            experiment: cached.experiment.clone(),
            variant: cached.variant.clone(),
            tracks,
        })
    }

    fn model_version(&self) -> String {
        self.inner.model_version()
    }

    fn search(&self, named: &Named, limit: usize) -> Vec<(Arc<Track>, f32)> {
        self.inner.search(named, limit)
    }

    async fn forget(&self, user_id: &str) {
        let next = self.generations.get(user_id).await.unwrap_or(0) + 1;
        self.generations.insert(user_id.to_owned(), next).await;
        self.inner.forget(user_id).await;
    }
}

impl TrackLookup for CachedRecommender {
    fn track(&self, id: &TrackId) -> Option<Arc<Track>> {
        self.inner.track(id)
    }
}
