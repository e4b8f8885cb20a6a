//! Picking tracks. `Recommender` is what the service asks. `CatalogRecommender` answers from
//! the catalog in `models/`: candidates by mood, genre, artist or likeness, scored for the
//! listener (popularity when new; affinities, taste, the served model's embeddings and skips
//! when known), reranked by a Thompson-sampling bandit, spread across artists.
//! `CachedRecommender` keeps answers per (listener, request) in moka; `RemoteRecommender`
//! asks an HTTP model endpoint and falls back to the catalog. `model` is the open model
//! format that offline training (`crate::offline`) writes and serving reads.

mod ann;
mod cache;
mod catalog;
mod factors;
mod mapped;
pub mod model;
mod moods;
mod parquet_file;
mod published;
mod rank;
mod remote;
mod rows;
mod search;
mod serving;
mod table;

pub use ann::{Built as IndexBuilt, PROBES};
pub use cache::CachedRecommender;
pub use catalog::{
    BadRow, Catalog, CatalogError, CsvTracks, Manifest, SEARCH_FILE, Stamp, TrackIx, normalize,
    read_tracks_csv, write_tracks_csv,
};
pub use factors::{Like, ServedFactors, index_version};
pub use moods::{FeatureRange, MoodTarget, mood_target};
pub use parquet_file::{is_parquet, write_tracks_parquet};
pub use published::{
    ModelMirror, PublishError, Published, fetch_version, promote, publish, published, read_pointer,
    rollback,
};
pub use rank::{CatalogRecommender, RankSettings, RankWeights, spread_artists};
pub use remote::{Breaker, RemoteRecommender, RemoteSettings};
pub use search::{GOOD_MATCH, SearchIndex};
pub use serving::{Assigned, Experiment, ModelSet, ServedModel, VariantSpec, assign_variant};
pub use table::{TrackRef, TrackTable};

use crate::domain::{Named, Profile, Reason, Reasons, Selection, Track, TrackId, TrackLookup};
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
    pub tracks: Ranked,
}

/// A ranked list with a first track: a recommender answers with one or with an error, so no
/// caller has to promise that a list is not empty. Each track comes with why it was picked.
/// Reads as a slice of tracks.
#[derive(Debug, Clone)]
pub struct Ranked {
    tracks: Vec<Arc<Track>>,
    reasons: Vec<Reason>,
}

impl Ranked {
    /// The list, every track for the same reason, or `None` when it is empty.
    pub fn new(tracks: Vec<Arc<Track>>, reason: Reason) -> Option<Self> {
        let reasons = vec![reason; tracks.len()];
        Self::with_reasons(tracks.into_iter().zip(reasons))
    }

    /// The list of (track, why), or `None` when it is empty.
    pub fn with_reasons(picks: impl IntoIterator<Item = (Arc<Track>, Reason)>) -> Option<Self> {
        let (tracks, reasons): (Vec<_>, Vec<_>) = picks.into_iter().unzip();
        (!tracks.is_empty()).then_some(Ranked { tracks, reasons })
    }

    /// The track that plays first.
    pub fn first(&self) -> &Arc<Track> {
        &self.tracks[0]
    }

    /// Each track with why it was picked, in order.
    pub fn picks(&self) -> impl Iterator<Item = (&Arc<Track>, Reason)> {
        self.tracks.iter().zip(self.reasons.iter().copied())
    }

    /// Why each track was picked, as a queue keeps it.
    pub fn reasons(&self) -> Reasons {
        Reasons(self.reasons.clone())
    }

    pub fn into_vec(self) -> Vec<Arc<Track>> {
        self.tracks
    }
}

impl std::ops::Deref for Ranked {
    type Target = [Arc<Track>];

    fn deref(&self) -> &Self::Target {
        &self.tracks
    }
}

/// Why there is no list. A recommender that cannot rank (a remote endpoint that fails, a
/// broken model) falls back to the catalog instead of failing, so nothing else is an error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecommendError {
    #[error("no track matches {0:?}")]
    NoMatch(Selection),
}

#[async_trait]
pub trait Recommender: TrackLookup {
    async fn recommend(&self, req: RecommendRequest<'_>) -> Result<Recommendation, RecommendError>;
    /// The model version new listeners are served now.
    fn model_version(&self) -> String;
    /// The catalog's tracks that best match a song title or an album name as said (and the
    /// artist, if said), best first, each with how well it matches (0 to 1).
    fn search(&self, named: &Named, limit: usize) -> Vec<(Arc<Track>, f32)>;
    /// Forgets what was cached for `user_id` (their opinions changed).
    async fn forget(&self, _user_id: &str) {}
}

/// A fresh recommendation id.
pub(crate) fn recommendation_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
