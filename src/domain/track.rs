//! Catalog tracks and their audio features.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A track by id, for the parts that need the catalog but not the recommender (the feedback
/// consumers fold a track's genre and artist into affinities).
pub trait TrackLookup: Send + Sync {
    fn track(&self, id: &TrackId) -> Option<Arc<Track>>;
}

/// A catalog track id (Spotify-style base62 or any opaque string without `:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrackId(pub String);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Audio features on Spotify's scales: 0..1 except tempo (BPM).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AudioFeatures {
    pub valence: f32,
    pub energy: f32,
    pub tempo: f32,
    pub danceability: f32,
    pub acousticness: f32,
    pub instrumentalness: f32,
}

impl AudioFeatures {
    /// Euclidean distance over the six features, tempo scaled by 150 BPM to weigh like
    /// the others.
    pub fn distance(&self, other: &AudioFeatures) -> f32 {
        let (a, b) = (self, other);
        ((a.valence - b.valence).powi(2)
            + (a.energy - b.energy).powi(2)
            + ((a.tempo - b.tempo) / 150.0).powi(2)
            + (a.danceability - b.danceability).powi(2)
            + (a.acousticness - b.acousticness).powi(2)
            + (a.instrumentalness - b.instrumentalness).powi(2))
        .sqrt()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub id: TrackId,
    pub title: String,
    pub artist: String,
    pub album: String,
    pub genre: String,
    pub duration_ms: u64,
    /// 0..=100.
    pub popularity: u8,
    pub explicit: bool,
    pub features: AudioFeatures,
    /// HTTPS URL of the audio stream.
    pub stream_url: String,
    /// HTTPS URL of the cover art, if the catalog has one.
    pub art_url: Option<String>,
    /// The year of release, if the catalog has it.
    pub year: Option<u16>,
}

#[cfg(test)]
impl Track {
    /// A track for unit tests: `title` is also its id; two minutes long, popularity 50.
    pub(crate) fn sample(title: &str, artist: &str, genre: &str) -> Track {
        Track {
            id: TrackId(title.into()),
            title: title.into(),
            artist: artist.into(),
            album: String::new(),
            genre: genre.into(),
            duration_ms: 120_000,
            popularity: 50,
            explicit: false,
            features: AudioFeatures::default(),
            stream_url: "https://x/y".into(),
            art_url: None,
            year: None,
        }
    }
}
