//! Picking tracks. `Recommender` is what the service asks. `CatalogRecommender` answers from
//! the catalog in `models/`: candidates by mood, genre, artist or likeness, scored for the
//! listener (popularity when new; affinities, taste, the served model's embeddings and skips
//! when known), reranked by a Thompson-sampling bandit, spread across artists.
//! `CachedRecommender` keeps answers per (listener, request) in moka; `RemoteRecommender`
//! asks an HTTP model endpoint and falls back to the catalog. `model` is the open model
//! format that offline training (`crate::offline`) writes and serving reads.

mod cache;
mod catalog;
pub mod model;
mod moods;
mod rank;
mod remote;
mod serving;

pub use cache::CachedRecommender;
pub use catalog::{
    BadRow, Catalog, CatalogError, CsvTracks, Manifest, TrackIx, normalize, read_tracks_csv,
    write_tracks_csv,
};
pub use moods::{FeatureRange, MoodTarget, mood_target};
pub use rank::{CatalogRecommender, RankSettings, spread_artists};
pub use remote::{Breaker, RemoteRecommender, RemoteSettings};
pub use serving::{Experiment, ModelSet, ServedModel, VariantSpec, assign_variant};

use crate::domain::{Profile, Selection, Track, TrackId, TrackLookup};
use async_trait::async_trait;
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub struct RecommendRequest<'a> {
    pub user_id: &'a str,
    pub selection: &'a Selection,
    pub profile: Option<&'a Profile>,
    /// Tracks not to return (already queued).
    pub exclude: &'a [TrackId],
    pub limit: usize,
}

#[derive(Debug, Clone)]
pub struct Recommendation {
    /// Unique per decision: feedback on these tracks carries it.
    pub id: String,
    pub model_version: String,
    /// The A/B experiment and the arm of it that served this list.
    pub experiment: String,
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
pub trait Recommender: TrackLookup {
    async fn recommend(&self, req: RecommendRequest<'_>) -> Result<Recommendation, RecommendError>;
    /// The model version new listeners are served now.
    fn model_version(&self) -> String;
    /// Forgets what was cached for `user_id` (their opinions changed).
    async fn forget(&self, _user_id: &str) {}
}

/// A fresh recommendation id.
pub(crate) fn recommendation_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
