//! The mobile API's wire types (`/v1`, JSON) and their mapping to and from the domain, and
//! the bearer-token verifier. The OpenAPI document (`openapi.json`) describes the same types.

pub mod auth;
pub mod voice;

use crate::domain::{Mood, Playlist, Profile, Selection, Track, TrackId};
use crate::feedback::{EventContext, EventKind};
use crate::recommend::Recommendation;
use crate::service::{FeedbackInput, PlaylistLength, PlaylistSource, PlaylistSpec, Preferences};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The OpenAPI 3 document served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

#[derive(Debug, Serialize)]
pub struct TrackDto {
    pub id: String,
    pub title: String,
    pub artist: String,
    pub album: String,
    pub genre: String,
    pub duration_ms: u64,
    pub popularity: u8,
    pub explicit: bool,
    pub stream_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub art_url: Option<String>,
    /// The year of release, when the catalog has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year: Option<u16>,
}

impl From<&Arc<Track>> for TrackDto {
    fn from(t: &Arc<Track>) -> Self {
        TrackDto {
            id: t.id.0.clone(),
            title: t.title.clone(),
            artist: t.artist.clone(),
            album: t.album.clone(),
            genre: t.genre.clone(),
            duration_ms: t.duration_ms,
            popularity: t.popularity,
            explicit: t.explicit,
            stream_url: t.stream_url.clone(),
            art_url: t.art_url.clone(),
            year: t.year,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RecommendationsDto {
    pub recommendation_id: String,
    pub model_version: String,
    pub experiment: String,
    pub variant: String,
    pub tracks: Vec<TrackDto>,
}

impl From<Recommendation> for RecommendationsDto {
    fn from(r: Recommendation) -> Self {
        RecommendationsDto {
            tracks: r.tracks.iter().map(TrackDto::from).collect(),
            recommendation_id: r.id,
            model_version: r.model_version,
            experiment: r.experiment,
            variant: r.variant,
        }
    }
}

/// `GET /v1/search` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    pub q: String,
    pub limit: Option<usize>,
}

/// `GET /v1/search` answer: the tracks whose title (or title and artist) best match the
/// query, best first, each with how well (0 to 1).
#[derive(Debug, Serialize)]
pub struct SearchDto {
    pub hits: Vec<SearchHitDto>,
}

#[derive(Debug, Serialize)]
pub struct SearchHitDto {
    pub track: TrackDto,
    #[serde(rename = "match")]
    pub quality: f32,
}

/// `GET /v1/me/recommendations` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendationsQuery {
    pub mood: Option<String>,
    pub genre: Option<String>,
    pub artist: Option<String>,
    pub limit: Option<usize>,
}

/// Whether `s` has something to read: a character that is neither white space nor a control
/// character. The OpenAPI document says the same with the pattern `[^\s\x00-\x1f\x7f-\x9f]`.
pub fn has_text(s: &str) -> bool {
    s.chars().any(|c| !c.is_whitespace() && !c.is_control())
}

/// `s` as given has 1 to `max` characters (not bytes: the document counts characters) and
/// something to read.
pub fn text_within(s: &str, max: usize) -> bool {
    has_text(s) && s.chars().count() <= max
}

/// Exactly one of mood, genre, artist (and seed tracks, for playlists).
fn selection_of(
    mood: Option<&str>,
    genre: Option<&str>,
    artist: Option<&str>,
) -> Result<Option<Selection>, String> {
    let given = [mood, genre, artist].iter().filter(|v| v.is_some()).count();
    if given > 1 {
        return Err("give only one of mood, genre and artist".into());
    }
    let nonempty = |s: &str, what: &str| {
        if text_within(s, 200) {
            Ok(s.trim().to_owned())
        } else {
            Err(format!(
                "{what} must have 1 to 200 characters, not all blank"
            ))
        }
    };
    if let Some(m) = mood {
        let mood: Mood = m.parse().map_err(|_| {
            let known: Vec<&str> = Mood::ALL.iter().map(|m| m.id()).collect();
            format!("unknown mood {m:?}; one of {}", known.join(", "))
        })?;
        return Ok(Some(Selection::Mood(mood)));
    }
    if let Some(g) = genre {
        return Ok(Some(Selection::Genre(nonempty(g, "genre")?.to_lowercase())));
    }
    if let Some(a) = artist {
        return Ok(Some(Selection::Artist(nonempty(a, "artist")?)));
    }
    Ok(None)
}

impl RecommendationsQuery {
    pub fn selection(&self) -> Result<Selection, String> {
        selection_of(
            self.mood.as_deref(),
            self.genre.as_deref(),
            self.artist.as_deref(),
        )?
        .ok_or_else(|| "give one of mood, genre or artist".into())
    }
}

/// `POST /v1/playlists` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePlaylist {
    pub name: String,
    pub mood: Option<String>,
    pub genre: Option<String>,
    pub artist: Option<String>,
    pub seed_track_ids: Option<Vec<String>>,
    pub duration_minutes: Option<u64>,
    pub track_count: Option<usize>,
}

impl CreatePlaylist {
    pub fn spec(self) -> Result<PlaylistSpec, String> {
        if !text_within(&self.name, 100) {
            return Err("name must have 1 to 100 characters, not all blank".into());
        }
        let name = self.name.trim().to_owned();
        let selection = selection_of(
            self.mood.as_deref(),
            self.genre.as_deref(),
            self.artist.as_deref(),
        )?;
        let from = match (selection, self.seed_track_ids) {
            (Some(s), None) => PlaylistSource::Selection(s),
            (None, Some(seeds)) if !seeds.is_empty() && seeds.len() <= 5 => {
                PlaylistSource::Seeds(seeds.into_iter().map(TrackId).collect())
            }
            (None, Some(_)) => return Err("seed_track_ids must hold 1 to 5 track ids".into()),
            (Some(_), Some(_)) => {
                return Err("give one of mood, genre, artist or seed_track_ids".into());
            }
            (None, None) => return Err("give one of mood, genre, artist or seed_track_ids".into()),
        };
        let length = match (self.duration_minutes, self.track_count) {
            (Some(m), None) => PlaylistLength::Minutes(m),
            (None, Some(n)) => PlaylistLength::Tracks(n),
            _ => return Err("give one of duration_minutes and track_count".into()),
        };
        Ok(PlaylistSpec { name, from, length })
    }
}

#[derive(Debug, Serialize)]
pub struct SelectionDto {
    pub by: &'static str,
    pub value: String,
    /// With `by: decade`, the genre asked for with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
}

fn selection_dto(s: &Selection) -> SelectionDto {
    match s {
        Selection::Mood(m) => SelectionDto {
            by: "mood",
            value: m.id().to_owned(),
            genre: None,
        },
        Selection::Genre(g) => SelectionDto {
            by: "genre",
            value: g.clone(),
            genre: None,
        },
        Selection::Artist(a) => SelectionDto {
            by: "artist",
            value: a.clone(),
            genre: None,
        },
        Selection::LikeTrack(t) => SelectionDto {
            by: "like_track",
            value: t.0.clone(),
            genre: None,
        },
        Selection::Decade { decade, genre } => SelectionDto {
            by: "decade",
            value: decade.to_string(),
            genre: genre.clone(),
        },
        Selection::Unheard => SelectionDto {
            by: "unheard",
            value: String::new(),
            genre: None,
        },
    }
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[derive(Debug, Serialize)]
pub struct PlaylistDto {
    pub id: String,
    pub name: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<SelectionDto>,
    pub track_count: usize,
    pub duration_ms: u64,
    pub tracks: Vec<TrackDto>,
}

impl PlaylistDto {
    /// `tracks` are the playlist's tracks that the catalog still has, in order.
    pub fn new(p: &Playlist, tracks: &[Arc<Track>]) -> Self {
        PlaylistDto {
            id: p.id.clone(),
            name: p.name.clone(),
            created_at: rfc3339(p.created_at),
            selection: p.selection.as_ref().map(selection_dto),
            track_count: tracks.len(),
            duration_ms: tracks.iter().map(|t| t.duration_ms).sum(),
            tracks: tracks.iter().map(TrackDto::from).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PlaylistSummaryDto {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub track_count: usize,
}

impl From<&Playlist> for PlaylistSummaryDto {
    fn from(p: &Playlist) -> Self {
        PlaylistSummaryDto {
            id: p.id.clone(),
            name: p.name.clone(),
            created_at: rfc3339(p.created_at),
            track_count: p.tracks.len(),
        }
    }
}

/// `POST /v1/feedback` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBatch {
    /// Objects, each checked on its own (one that is not a `FeedbackEventIn` is refused
    /// alone).
    pub events: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackEventIn {
    event_id: Option<String>,
    #[serde(default = "mobile_device")]
    device_id: String,
    track_id: String,
    kind: EventKind,
    #[serde(default)]
    position_ms: u64,
    occurred_at: Option<String>,
    #[serde(default)]
    context: EventContext,
}

fn mobile_device() -> String {
    "mobile".into()
}

/// Each event of a batch as the service takes it, or why it cannot be read.
pub fn feedback_inputs(batch: FeedbackBatch) -> Vec<Result<FeedbackInput, String>> {
    batch
        .events
        .into_iter()
        .map(|v| {
            let e: FeedbackEventIn =
                serde_json::from_value(serde_json::Value::Object(v)).map_err(|e| e.to_string())?;
            Ok(FeedbackInput {
                event_id: e.event_id,
                device_id: e.device_id,
                track_id: TrackId(e.track_id),
                kind: e.kind,
                position_ms: e.position_ms,
                occurred_at: e.occurred_at,
                context: e.context,
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct FeedbackErrorDto {
    pub index: usize,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct FeedbackResultDto {
    pub accepted: usize,
    /// Per event in the batch: its id when accepted, `null` when refused.
    pub event_ids: Vec<Option<String>>,
    pub errors: Vec<FeedbackErrorDto>,
}

#[derive(Debug, Serialize)]
pub struct ProfileDto {
    pub user_id: String,
    pub explicit_allowed: bool,
    pub preferred_genres: Vec<String>,
    pub plays: u64,
    pub finishes: u64,
    pub skips: u64,
    pub likes: u64,
    pub dislikes: u64,
    pub liked: Vec<String>,
    pub top_genres: Vec<String>,
    pub top_artists: Vec<String>,
}

fn strongest(map: &std::collections::BTreeMap<String, f32>, n: usize) -> Vec<String> {
    let mut v: Vec<(&String, &f32)> = map.iter().filter(|(_, a)| **a > 0.0).collect();
    v.sort_by(|a, b| b.1.total_cmp(a.1));
    v.into_iter().take(n).map(|(k, _)| k.clone()).collect()
}

impl From<&Profile> for ProfileDto {
    fn from(p: &Profile) -> Self {
        ProfileDto {
            user_id: p.user_id.clone(),
            explicit_allowed: p.explicit_allowed,
            preferred_genres: p.preferred_genres.clone(),
            plays: p.plays,
            finishes: p.finishes,
            skips: p.skips,
            likes: p.likes,
            dislikes: p.dislikes,
            liked: p.liked.iter().take(50).map(|t| t.0.clone()).collect(),
            top_genres: strongest(&p.genres, 5),
            top_artists: strongest(&p.artists, 5),
        }
    }
}

/// `PATCH /v1/me/profile` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub explicit_allowed: Option<bool>,
    pub preferred_genres: Option<Vec<String>>,
}

impl From<ProfilePatch> for Preferences {
    fn from(p: ProfilePatch) -> Self {
        Preferences {
            explicit_allowed: p.explicit_allowed,
            preferred_genres: p.preferred_genres,
        }
    }
}

/// `POST /v1/voice` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceRequest {
    pub text: String,
    #[serde(default = "default_locale")]
    pub locale: String,
}

fn default_locale() -> String {
    "en-US".into()
}
