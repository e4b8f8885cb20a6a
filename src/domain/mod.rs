//! The domain: tracks, moods, listeners' profiles and playback queues. Pure data and rules;
//! nothing here knows about HTTP, Alexa's wire format or a storage engine.

mod mood;
mod playlist;
mod profile;
mod queue;
mod reason;
mod track;

pub use mood::Mood;
pub use playlist::Playlist;
pub use profile::{
    KNOWN_AFTER, PRECOMPUTED_LIMIT, PlayOutcomes, Precomputed, Profile, RECENT_LIMIT,
    STORED_LIMIT_BYTES, Taste, bandit_key,
};
pub use queue::{
    ABANDONED_AFTER_MS, Enqueued, MAX_CONSECUTIVE_FAILURES, OpenPlay, Queue, QueueKey,
    SESSION_SIGNALS, Signal, Token,
};
pub use reason::{Reason, Reasons};
pub use track::{AudioFeatures, Track, TrackId, TrackLookup};

use serde::{Deserialize, Serialize};

/// Now, in Unix milliseconds: the unit of the times kept with queues and erasures.
pub fn unix_ms_now() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// What a listener asked to hear. It is kept with the queue so the queue can be refilled
/// with more of the same when it runs out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum Selection {
    Mood(Mood),
    /// A genre id as in the catalog (`jazz`, `hip-hop`).
    Genre(String),
    /// An artist name as the listener said it; matched against the catalog.
    Artist(String),
    /// Tracks that sound like this one.
    LikeTrack(TrackId),
    /// Tracks released in the decade starting at `decade` (1980 for the eighties), of
    /// `genre` when one was said ("play 80s rock").
    Decade {
        decade: u16,
        genre: Option<String>,
    },
    /// Tracks the listener has never heard, as far as their profile remembers, from their
    /// affinities ("play something new").
    Unheard,
}

/// The first year of the decade `year` falls in (1987 -> 1980).
pub fn decade_of(year: u16) -> u16 {
    year - year % 10
}

/// The decades a listener can ask for: the 1900s to the 2090s.
pub const DECADES: std::ops::RangeInclusive<u16> = 1900..=2090;

/// Whether `year` starts one of `DECADES`.
pub fn is_decade(year: u16) -> bool {
    DECADES.contains(&year) && year.is_multiple_of(10)
}

impl Selection {
    /// The context a play happened in, for the bandit's counters: `mood=relaxing`,
    /// `genre=jazz`, `artist=<name, lower case>`, `like` (every "more like this"),
    /// `decade=1980` or `decade=1980,genre=rock`, or `unheard`.
    pub fn context_key(&self) -> String {
        match self {
            Selection::Mood(m) => format!("mood={m}"),
            Selection::Genre(g) => format!("genre={}", g.to_lowercase()),
            Selection::Artist(a) => format!("artist={}", a.to_lowercase()),
            Selection::LikeTrack(_) => "like".to_owned(),
            Selection::Decade {
                decade,
                genre: None,
            } => format!("decade={decade}"),
            Selection::Decade {
                decade,
                genre: Some(g),
            } => format!("decade={decade},genre={}", g.to_lowercase()),
            Selection::Unheard => "unheard".to_owned(),
        }
    }
}

/// What a listener asked for by name: a song by its title, or an album by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Song,
    Album,
}

/// A song or an album as a listener named it, and the artist if they said one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub wanted: Wanted,
    pub name: String,
    pub artist: Option<String>,
}

/// Who is asking, on which device, through which client: queues are kept per listener and
/// device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Whose profile and feedback this is: a recognised person's, else the account's.
    pub user_id: String,
    /// The account a recognised person (`context.System.person`) speaks through: the
    /// device's queues are the account's, so its reports (which name no person) find them.
    /// None when no person was recognised.
    pub account_id: Option<String>,
    pub device_id: String,
    pub locale: String,
    pub source: Source,
}

/// The client a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The voice platform.
    Alexa,
    /// The mobile app (and the text path).
    Mobile,
}
