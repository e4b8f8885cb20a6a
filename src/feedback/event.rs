//! The feedback event: a public contract (`schemas/feedback-event.v1.json`). Teams outside
//! this project read these records, so fields are only ever added, and a breaking change
//! means a new `schema_version` (and a new schema file) alongside the old one.

use crate::domain::{Selection, Source, TrackId};
use serde::{Deserialize, Serialize};

/// The version this code writes.
pub const SCHEMA_VERSION: u32 = 1;

/// A play that ends (stopped, or reported finished) before this is a skip.
pub const SKIP_THRESHOLD_MS: u64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    PlayStarted,
    PlayFinished,
    Skipped,
    Stopped,
    Liked,
    Disliked,
    Failed,
}

impl EventKind {
    /// The name on the wire (and in metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PlayStarted => "play_started",
            EventKind::PlayFinished => "play_finished",
            EventKind::Skipped => "skipped",
            EventKind::Stopped => "stopped",
            EventKind::Liked => "liked",
            EventKind::Disliked => "disliked",
            EventKind::Failed => "failed",
        }
    }

    /// The kind of a play that ended at `position_ms`, having `finished` or not: a play that
    /// finished is finished (a track shorter than the threshold too), one that did not is a
    /// skip before `SKIP_THRESHOLD_MS` and a stop after. The one place this rule lives.
    pub fn of_ending(finished: bool, position_ms: u64) -> EventKind {
        if finished {
            EventKind::PlayFinished
        } else if position_ms < SKIP_THRESHOLD_MS {
            EventKind::Skipped
        } else {
            EventKind::Stopped
        }
    }

    /// The kind of a play a client says finished at `position_ms`, of a track `duration_ms`
    /// long: before `SKIP_THRESHOLD_MS` it is a finish only if that is (within a second) the
    /// track's end, and a skip otherwise, whatever the client called it.
    pub fn of_finish(position_ms: u64, duration_ms: u64) -> EventKind {
        let at_end = position_ms.saturating_add(1_000) >= duration_ms;
        Self::of_ending(position_ms >= SKIP_THRESHOLD_MS || at_end, position_ms)
    }
}

/// What produced the track: the request (at most one of mood, genre, artist, seed track,
/// decade and unheard, except that a decade may come with a genre) and the recommendation it
/// came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mood: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_track_id: Option<String>,
    /// The first year of the decade asked for, 1980 for "play 80s rock" (added within
    /// version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decade: Option<u16>,
    /// True for "play something new": tracks the listener had not heard (added within
    /// version 1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unheard: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// The A/B experiment the variant belongs to (added within version 1; absent in older
    /// records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// The longest string a context field may hold (as `schemas/feedback-event.v1.json` says).
pub const MAX_CONTEXT_CHARS: usize = 256;

impl EventContext {
    /// Whether a client may send this context: a mood the skill knows, and every string
    /// within `MAX_CONTEXT_CHARS`. Returns why not.
    pub fn check(&self) -> Result<(), String> {
        if let Some(mood) = &self.mood
            && mood.parse::<crate::domain::Mood>().is_err()
        {
            let known: Vec<&str> = crate::domain::Mood::ALL.iter().map(|m| m.id()).collect();
            return Err(format!("context.mood must be one of {}", known.join(", ")));
        }
        if let Some(decade) = self.decade
            && !crate::domain::is_decade(decade)
        {
            return Err(format!(
                "context.decade must be the first year of a decade from {} to {}",
                crate::domain::DECADES.start(),
                crate::domain::DECADES.end()
            ));
        }
        for (name, value) in [
            ("mood", &self.mood),
            ("genre", &self.genre),
            ("artist", &self.artist),
            ("seed_track_id", &self.seed_track_id),
            ("recommendation_id", &self.recommendation_id),
            ("model_version", &self.model_version),
            ("experiment", &self.experiment),
            ("variant", &self.variant),
        ] {
            if let Some(v) = value
                && (v.is_empty() || v.chars().count() > MAX_CONTEXT_CHARS)
            {
                return Err(format!(
                    "context.{name} must have 1 to {MAX_CONTEXT_CHARS} characters"
                ));
            }
        }
        Ok(())
    }

    /// The request that produced the track, when the event names one.
    pub fn selection(&self) -> Option<Selection> {
        if let Some(decade) = self.decade {
            return Some(Selection::Decade {
                decade,
                genre: self.genre.clone(),
            });
        }
        if self.unheard {
            return Some(Selection::Unheard);
        }
        if let Some(m) = &self.mood {
            return m.parse().ok().map(Selection::Mood);
        }
        if let Some(g) = &self.genre {
            return Some(Selection::Genre(g.clone()));
        }
        if let Some(a) = &self.artist {
            return Some(Selection::Artist(a.clone()));
        }
        self.seed_track_id
            .as_ref()
            .map(|t| Selection::LikeTrack(TrackId(t.clone())))
    }

    pub fn new(
        selection: &Selection,
        recommendation_id: &str,
        model_version: &str,
        experiment: &str,
        variant: &str,
    ) -> Self {
        let mut context = EventContext {
            recommendation_id: Some(recommendation_id.to_owned()),
            model_version: Some(model_version.to_owned()),
            experiment: (!experiment.is_empty()).then(|| experiment.to_owned()),
            variant: Some(variant.to_owned()),
            ..EventContext::default()
        };
        match selection {
            Selection::Mood(m) => context.mood = Some(m.id().to_owned()),
            Selection::Genre(g) => context.genre = Some(g.clone()),
            Selection::Artist(a) => context.artist = Some(a.clone()),
            Selection::LikeTrack(t) => context.seed_track_id = Some(t.0.clone()),
            Selection::Decade { decade, genre } => {
                context.decade = Some(*decade);
                context.genre = genre.clone();
            }
            Selection::Unheard => context.unheard = true,
        }
        context
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackEvent {
    pub schema_version: u32,
    /// Unique, made where the event happened: consumers deduplicate on it.
    pub event_id: String,
    pub user_id: String,
    pub device_id: String,
    pub track_id: TrackId,
    pub kind: EventKind,
    /// Where in the track it happened.
    pub position_ms: u64,
    pub context: EventContext,
    pub source: Source,
    /// RFC 3339, UTC, millisecond precision.
    pub occurred_at: String,
}

impl FeedbackEvent {
    /// When it happened, in Unix milliseconds; an unreadable time counts as the earliest
    /// possible (so an erasure always covers it).
    pub fn occurred_at_ms(&self) -> i64 {
        time::OffsetDateTime::parse(
            &self.occurred_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_or(i64::MIN, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// A new event with a fresh id, happening now.
    pub fn new(
        user_id: &str,
        device_id: &str,
        track_id: &TrackId,
        kind: EventKind,
        position_ms: u64,
        context: EventContext,
        source: Source,
    ) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let now = now
            .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
            .unwrap_or(now);
        FeedbackEvent {
            schema_version: SCHEMA_VERSION,
            event_id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            track_id: track_id.clone(),
            kind,
            position_ms,
            context,
            source,
            occurred_at: now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decade_and_something_new_survive_the_trip_through_an_event() {
        for selection in [
            Selection::Decade {
                decade: 1980,
                genre: Some("rock".into()),
            },
            Selection::Decade {
                decade: 1990,
                genre: None,
            },
            Selection::Unheard,
        ] {
            let context = EventContext::new(&selection, "r", "v", "", "control");
            let json = serde_json::to_string(&context).unwrap();
            let back: EventContext = serde_json::from_str(&json).unwrap();
            assert_eq!(back.check(), Ok(()), "{json}");
            assert_eq!(back.selection(), Some(selection), "{json}");
        }
        let odd = EventContext {
            decade: Some(1985),
            ..EventContext::default()
        };
        assert!(odd.check().is_err(), "1985 starts no decade");
    }

    #[test]
    fn a_play_that_ends_before_thirty_seconds_is_a_skip() {
        assert_eq!(EventKind::of_ending(false, 29_999), EventKind::Skipped);
        // A track shorter than the threshold that played to its end was not skipped.
        assert_eq!(EventKind::of_ending(true, 10_000), EventKind::PlayFinished);
        assert_eq!(EventKind::of_ending(false, 30_000), EventKind::Stopped);
        assert_eq!(EventKind::of_ending(true, 200_000), EventKind::PlayFinished);
        // A client's "finished" 12 s into a 3-minute track is a skip; at the end of a 12 s one,
        // a finish.
        assert_eq!(EventKind::of_finish(12_000, 180_000), EventKind::Skipped);
        assert_eq!(
            EventKind::of_finish(12_000, 12_500),
            EventKind::PlayFinished
        );
    }
}
