//! The track catalog: `models/manifest.json` names a CSV of tracks with the columns of common
//! Spotify audio-features exports and the URL templates for streams and cover art.

use super::{MIN_MOOD_MATCHES, mood_target};
use crate::domain::{AudioFeatures, Selection, Track, TrackId};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub version: String,
    pub created_at: String,
    pub catalog: PathBuf,
    /// `{track_id}` is replaced by the track id. Must be HTTPS: devices play nothing else.
    pub stream_url_template: String,
    pub art_url_template: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

pub struct Catalog {
    pub manifest: Manifest,
    tracks: Vec<Arc<Track>>,
    by_id: HashMap<TrackId, Arc<Track>>,
}

#[derive(Deserialize)]
struct Row {
    track_id: String,
    artists: String,
    #[serde(default)]
    album_name: String,
    track_name: String,
    #[serde(default)]
    popularity: f32,
    duration_ms: u64,
    #[serde(default, deserialize_with = "flexible_bool")]
    explicit: bool,
    danceability: f32,
    energy: f32,
    acousticness: f32,
    instrumentalness: f32,
    valence: f32,
    tempo: f32,
    #[serde(default)]
    track_genre: String,
}

/// Track ids go into AudioPlayer tokens (at most 1,024 characters, `:`-separated).
fn usable_track_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_TRACK_ID && !id.contains(':')
}

/// Longest track id accepted: leaves room in a token for the queue id, counters and index.
const MAX_TRACK_ID: usize = 256;

fn flexible_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "not a boolean: {other:?}"
        ))),
    }
}

impl Catalog {
    /// Loads `dir/manifest.json` and the catalog it names. Bad rows are reported by line
    /// number and skipped.
    pub fn load(dir: &Path) -> Result<Self, CatalogError> {
        let manifest_path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&manifest_path).map_err(|source| CatalogError::Io {
            path: manifest_path.clone(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| CatalogError::Invalid {
                path: manifest_path.clone(),
                message: e.to_string(),
            })?;
        for template in
            std::iter::once(&manifest.stream_url_template).chain(&manifest.art_url_template)
        {
            if !template.starts_with("https://") {
                return Err(CatalogError::Invalid {
                    path: manifest_path,
                    message: format!("URL template {template:?} is not HTTPS"),
                });
            }
        }
        let csv_path = dir.join(&manifest.catalog);
        let mut reader = csv::Reader::from_path(&csv_path).map_err(|e| CatalogError::Invalid {
            path: csv_path.clone(),
            message: e.to_string(),
        })?;
        let mut tracks = Vec::new();
        let mut skipped = 0usize;
        for row in reader.deserialize::<Row>() {
            match row {
                Ok(row) if !usable_track_id(&row.track_id) => {
                    skipped += 1;
                    tracing::warn!(path = %csv_path.display(), track_id = row.track_id, "bad track id, row skipped");
                }
                Ok(row) => tracks.push(Arc::new(track_from_row(row, &manifest))),
                Err(e) => {
                    skipped += 1;
                    let line = e.position().map(|p| p.line()).unwrap_or_default();
                    tracing::warn!(path = %csv_path.display(), line, error = %e, "bad catalog row skipped");
                }
            }
        }
        if tracks.is_empty() {
            return Err(CatalogError::Invalid {
                path: csv_path,
                message: "no usable tracks".into(),
            });
        }
        let by_id = tracks.iter().map(|t| (t.id.clone(), t.clone())).collect();
        tracing::info!(
            tracks = tracks.len(),
            skipped,
            version = manifest.version,
            "catalog loaded"
        );
        Ok(Catalog {
            manifest,
            tracks,
            by_id,
        })
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    pub fn track(&self, id: &TrackId) -> Option<Arc<Track>> {
        self.by_id.get(id).cloned()
    }

    /// Up to `limit` tracks for `selection`, best first.
    pub fn candidates(&self, selection: &Selection, limit: usize) -> Vec<Arc<Track>> {
        let mut found: Vec<Arc<Track>> = match selection {
            Selection::Mood(mood) => {
                let target = mood_target(*mood);
                let mut scored: Vec<(f32, &Arc<Track>)> = self
                    .tracks
                    .iter()
                    .map(|t| (target.distance(&t.features), t))
                    .collect();
                let inside = scored.iter().filter(|(d, _)| *d == 0.0).count();
                if inside >= MIN_MOOD_MATCHES {
                    scored.retain(|(d, _)| *d == 0.0);
                    scored.sort_by_key(|s| std::cmp::Reverse(s.1.popularity));
                } else {
                    // Too few fit exactly: the nearest tracks, popular ones first among equals.
                    scored.sort_by(|a, b| {
                        a.0.total_cmp(&b.0)
                            .then(b.1.popularity.cmp(&a.1.popularity))
                    });
                    scored.truncate(limit.max(MIN_MOOD_MATCHES));
                }
                return scored
                    .into_iter()
                    .take(limit)
                    .map(|(_, t)| t.clone())
                    .collect();
            }
            Selection::Genre(genre) => self
                .tracks
                .iter()
                .filter(|t| t.genre.eq_ignore_ascii_case(genre))
                .cloned()
                .collect(),
            Selection::Artist(name) => {
                let wanted = normalize(name);
                let exact: Vec<_> = self
                    .tracks
                    .iter()
                    .filter(|t| normalize(&t.artist) == wanted)
                    .cloned()
                    .collect();
                if exact.is_empty() && wanted.len() >= 3 {
                    self.tracks
                        .iter()
                        .filter(|t| normalize(&t.artist).contains(&wanted))
                        .cloned()
                        .collect()
                } else {
                    exact
                }
            }
            Selection::LikeTrack(id) => {
                let Some(seed) = self.track(id) else {
                    return Vec::new();
                };
                let mut scored: Vec<(f32, &Arc<Track>)> = self
                    .tracks
                    .iter()
                    .filter(|t| t.id != seed.id)
                    .map(|t| (likeness(&seed, t), t))
                    .collect();
                scored.sort_by(|a, b| a.0.total_cmp(&b.0));
                return scored
                    .into_iter()
                    .take(limit)
                    .map(|(_, t)| t.clone())
                    .collect();
            }
        };
        found.sort_by_key(|t| std::cmp::Reverse(t.popularity));
        found.truncate(limit);
        found
    }

    /// Every artist name in the catalog, for the text parser's artist slot.
    pub fn artists(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tracks.iter().map(|t| t.artist.clone()).collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Smaller is more alike: distance in audio features, less for the same genre and artist.
fn likeness(seed: &Track, other: &Track) -> f32 {
    let a = &seed.features;
    let b = &other.features;
    let d = (a.valence - b.valence).powi(2)
        + (a.energy - b.energy).powi(2)
        + ((a.tempo - b.tempo) / 150.0).powi(2)
        + (a.danceability - b.danceability).powi(2)
        + (a.acousticness - b.acousticness).powi(2)
        + (a.instrumentalness - b.instrumentalness).powi(2);
    let genre = if seed.genre == other.genre { 0.0 } else { 0.15 };
    let artist = if seed.artist == other.artist {
        -0.02
    } else {
        0.0
    };
    d + genre + artist
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn track_from_row(row: Row, manifest: &Manifest) -> Track {
    let url = |template: &str| template.replace("{track_id}", &row.track_id);
    Track {
        stream_url: url(&manifest.stream_url_template),
        art_url: manifest.art_url_template.as_deref().map(url),
        id: TrackId(row.track_id.clone()),
        title: row.track_name,
        // Spotify exports join several artists with ';': the first one leads.
        artist: row
            .artists
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        album: row.album_name,
        genre: row.track_genre.to_ascii_lowercase(),
        duration_ms: row.duration_ms,
        popularity: row.popularity.clamp(0.0, 100.0) as u8,
        explicit: row.explicit,
        features: AudioFeatures {
            valence: row.valence,
            energy: row.energy,
            tempo: row.tempo,
            danceability: row.danceability,
            acousticness: row.acousticness,
            instrumentalness: row.instrumentalness,
        },
    }
}
