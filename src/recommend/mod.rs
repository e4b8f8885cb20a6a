//! Picking tracks. `Recommender` is what the service asks; `CatalogRecommender` answers from
//! the catalog in `models/` by mood, genre, artist or likeness, popularity first, with the
//! listener's filters applied. Candidate lists are cached in process (moka).

mod catalog;
mod moods;

pub use catalog::{Catalog, CatalogError, Manifest};
pub use moods::{FeatureRange, MoodTarget, mood_target};

use crate::domain::{Profile, Selection, Track, TrackId};
use async_trait::async_trait;
use moka::future::Cache;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RecommendRequest<'a> {
    pub selection: &'a Selection,
    pub profile: Option<&'a Profile>,
    /// Tracks not to return (already queued).
    pub exclude: &'a [TrackId],
    pub limit: usize,
}

#[derive(Debug, Clone)]
pub struct Recommendation {
    pub id: String,
    pub model_version: String,
    pub variant: String,
    pub tracks: Vec<Arc<Track>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error("no track matches {0:?}")]
    NoMatch(Selection),
    #[error("the recommender is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Recommender: Send + Sync {
    async fn recommend(&self, req: RecommendRequest<'_>) -> Result<Recommendation, RecommendError>;
    fn track(&self, id: &TrackId) -> Option<Arc<Track>>;
    fn model_version(&self) -> &str;
}

/// How many candidates one selection yields before the listener's filters.
const CANDIDATES: usize = 300;
/// The fewest tracks a mood should offer before its ranges are relaxed.
const MIN_MOOD_MATCHES: usize = 40;

pub struct CatalogRecommender {
    catalog: Arc<Catalog>,
    candidates: Cache<Selection, Arc<[Arc<Track>]>>,
}

impl CatalogRecommender {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        CatalogRecommender {
            catalog,
            candidates: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    async fn candidates(&self, selection: &Selection) -> Result<Arc<[Arc<Track>]>, RecommendError> {
        if let Some(hit) = self.candidates.get(selection).await {
            return Ok(hit);
        }
        let found: Arc<[Arc<Track>]> = self.catalog.candidates(selection, CANDIDATES).into();
        if found.is_empty() {
            return Err(RecommendError::NoMatch(selection.clone()));
        }
        self.candidates
            .insert(selection.clone(), found.clone())
            .await;
        Ok(found)
    }
}

#[async_trait]
impl Recommender for CatalogRecommender {
    async fn recommend(&self, req: RecommendRequest<'_>) -> Result<Recommendation, RecommendError> {
        let candidates = self.candidates(req.selection).await?;
        let excluded: HashSet<&TrackId> = req.exclude.iter().collect();
        let allowed = |t: &&Arc<Track>| {
            !excluded.contains(&t.id)
                && req
                    .profile
                    .is_none_or(|p| !p.dislikes(&t.id) && (p.explicit_allowed || !t.explicit))
        };
        let recent: HashSet<&TrackId> = req
            .profile
            .map(|p| p.recent.iter().collect())
            .unwrap_or_default();
        // Fresh tracks first; recently played ones only when nothing else is left.
        let (fresh, stale): (Vec<&Arc<Track>>, Vec<&Arc<Track>>) = candidates
            .iter()
            .filter(allowed)
            .partition(|t| !recent.contains(&t.id));
        let tracks = spread_artists(fresh.into_iter().chain(stale), req.limit);
        if tracks.is_empty() {
            return Err(RecommendError::NoMatch(req.selection.clone()));
        }
        Ok(Recommendation {
            id: uuid::Uuid::new_v4().simple().to_string(),
            model_version: self.catalog.manifest.version.clone(),
            variant: "control".to_owned(),
            tracks,
        })
    }

    fn track(&self, id: &TrackId) -> Option<Arc<Track>> {
        self.catalog.track(id)
    }

    fn model_version(&self) -> &str {
        &self.catalog.manifest.version
    }
}

/// Takes up to `limit` tracks in order, never the same artist twice in a row while another
/// artist is waiting.
fn spread_artists<'a>(
    tracks: impl Iterator<Item = &'a Arc<Track>>,
    limit: usize,
) -> Vec<Arc<Track>> {
    let mut out: Vec<Arc<Track>> = Vec::with_capacity(limit);
    let mut waiting: Vec<&Arc<Track>> = Vec::new();
    let mut source = tracks.peekable();
    while out.len() < limit {
        let last_artist = out.last().map(|t| t.artist.as_str());
        if let Some(i) = waiting
            .iter()
            .position(|t| Some(t.artist.as_str()) != last_artist)
        {
            out.push(waiting.remove(i).clone());
            continue;
        }
        match source.next() {
            Some(t) if Some(t.artist.as_str()) == last_artist => waiting.push(t),
            Some(t) => out.push(t.clone()),
            None if !waiting.is_empty() => out.push(waiting.remove(0).clone()),
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: &str, artist: &str) -> Arc<Track> {
        Arc::new(Track {
            id: TrackId(id.into()),
            title: id.into(),
            artist: artist.into(),
            album: String::new(),
            genre: "pop".into(),
            duration_ms: 1000,
            popularity: 50,
            explicit: false,
            features: Default::default(),
            stream_url: "https://x/y".into(),
            art_url: None,
        })
    }

    #[test]
    fn artist_spread_avoids_back_to_back_artists() {
        let ts = [
            track("1", "a"),
            track("2", "a"),
            track("3", "a"),
            track("4", "b"),
            track("5", "c"),
        ];
        let picked: Vec<String> = spread_artists(ts.iter(), 5)
            .iter()
            .map(|t| t.artist.clone())
            .collect();
        assert_eq!(picked.len(), 5);
        for pair in picked.windows(2).take(3) {
            assert_ne!(pair[0], pair[1], "{picked:?}");
        }
    }
}
