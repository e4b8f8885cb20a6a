//! The mobile app's use cases: recommendations, playlists, feedback batches and profile
//! preferences. Same profiles, recommender and feedback sink as the voice path.

use super::{Service, count_store_error};
use crate::domain::{Named, Playlist, Profile, Selection, Source, Track, TrackId, Wanted};
use crate::feedback::{EventContext, EventKind, FeedbackError, FeedbackEvent};
use crate::recommend::{RecommendError, RecommendRequest, Recommendation};
use crate::store::{StoreError, update_profile};
use std::sync::Arc;

/// The most tracks one recommendation request returns.
pub const MAX_LIMIT: usize = 100;
/// The most hits one search returns.
pub const MAX_SEARCH: usize = 50;
/// The most feedback events in one batch.
pub const MAX_BATCH: usize = 500;
/// The longest playlist, in minutes, and the most tracks.
pub const MAX_PLAYLIST_MINUTES: u64 = 600;
pub const MAX_PLAYLIST_TRACKS: usize = 200;
/// The most playlists a listener keeps.
pub const MAX_PLAYLISTS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum MobileError {
    #[error("{0}")]
    Invalid(String),
    /// Nothing in the catalog fits (no track for the selection, an unknown seed, too little
    /// music for the length asked).
    #[error("{0}")]
    NoMatch(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// A backend failed; `what` names it for the client, the source says why (logged where
    /// the error is answered, never sent).
    #[error("{what} is unavailable")]
    Unavailable {
        what: &'static str,
        #[source]
        source: crate::error::Cause,
    },
}

impl From<StoreError> for MobileError {
    fn from(e: StoreError) -> Self {
        count_store_error("mobile", &e);
        MobileError::Unavailable {
            what: "the profile store",
            source: crate::error::cause(e),
        }
    }
}

impl From<RecommendError> for MobileError {
    fn from(e: RecommendError) -> Self {
        match e {
            RecommendError::NoMatch(_) => {
                MobileError::NoMatch("no track matches the request".into())
            }
        }
    }
}

/// What a playlist is built from, and how long it is.
#[derive(Debug, Clone)]
pub struct PlaylistSpec {
    pub name: String,
    pub from: PlaylistSource,
    pub length: PlaylistLength,
}

#[derive(Debug, Clone)]
pub enum PlaylistSource {
    Selection(Selection),
    Seeds(Vec<TrackId>),
}

#[derive(Debug, Clone, Copy)]
pub enum PlaylistLength {
    Minutes(u64),
    Tracks(usize),
}

/// One event of a feedback batch, as the app reports it.
#[derive(Debug, Clone)]
pub struct FeedbackInput {
    pub event_id: Option<String>,
    pub device_id: String,
    pub track_id: TrackId,
    pub kind: EventKind,
    pub position_ms: u64,
    pub occurred_at: Option<String>,
    pub context: EventContext,
}

/// Preferences the listener sets.
#[derive(Debug, Clone, Default)]
pub struct Preferences {
    pub explicit_allowed: Option<bool>,
    pub preferred_genres: Option<Vec<String>>,
}

/// How far from now an event's `occurred_at` may be.
const MAX_EVENT_AGE_SECS: i64 = 30 * 24 * 3600;
const MAX_EVENT_AHEAD_SECS: i64 = 300;

impl Service {
    /// A store call on the mobile path, within `api_store_budget`: one that does not answer
    /// in time is a timeout (a 503 the app can retry), never a request that hangs.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.settings.api_store_budget, call)
            .await
            .unwrap_or(Err(StoreError::Timeout))
    }

    /// The stored profile, or a new one; store failures are errors here (the app can retry).
    pub async fn profile_of(&self, user_id: &str) -> Result<Profile, MobileError> {
        Ok(self
            .bounded(self.store.profile(user_id))
            .await?
            .unwrap_or_else(|| Profile::new(user_id)))
    }

    pub async fn recommendations(
        &self,
        user_id: &str,
        selection: &Selection,
        limit: usize,
    ) -> Result<Recommendation, MobileError> {
        let profile = self.profile_of(user_id).await?;
        Ok(self
            .recommend(RecommendRequest {
                user_id,
                selection,
                profile: Some(&profile),
                exclude: &[],
                limit: limit.clamp(1, MAX_LIMIT),
            })
            .await?)
    }

    /// The tracks whose title (or title and artist) best match `text`, best first, each
    /// with how well it matches (0 to 1); the voice path's song search.
    pub fn search(&self, text: &str, limit: usize) -> Vec<(Arc<Track>, f32)> {
        let named = Named {
            wanted: Wanted::Song,
            name: text.to_owned(),
            artist: None,
        };
        self.recommender.search(&named, limit.clamp(1, MAX_SEARCH))
    }

    /// Builds and stores a playlist: ordered as recommended (artists spread), no repeats, and
    /// for a duration at most one track longer than asked.
    pub async fn create_playlist(
        &self,
        user_id: &str,
        spec: PlaylistSpec,
    ) -> Result<(Playlist, Vec<Arc<Track>>), MobileError> {
        // The cheap refusal first.
        if self.bounded(self.store.playlists(user_id)).await?.len() >= MAX_PLAYLISTS {
            return Err(MobileError::Conflict(format!(
                "a listener keeps at most {MAX_PLAYLISTS} playlists"
            )));
        }
        let profile = self.profile_of(user_id).await?;
        let selections: Vec<Selection> = match &spec.from {
            PlaylistSource::Selection(s) => vec![s.clone()],
            PlaylistSource::Seeds(seeds) => {
                for s in seeds {
                    if self.recommender.track(s).is_none() {
                        return Err(MobileError::NoMatch(format!("unknown seed track {s}")));
                    }
                }
                seeds.iter().cloned().map(Selection::LikeTrack).collect()
            }
        };
        // Candidates from each selection, interleaved.
        let mut lists = Vec::new();
        for selection in &selections {
            let rec = self
                .recommend(RecommendRequest {
                    user_id,
                    selection,
                    profile: Some(&profile),
                    exclude: &[],
                    limit: MAX_PLAYLIST_TRACKS,
                })
                .await;
            if let Ok(rec) = rec {
                lists.push(rec.tracks.into_vec());
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut pool: Vec<Arc<Track>> = Vec::new();
        let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            for list in &lists {
                if let Some(t) = list.get(i)
                    && seen.insert(t.id.clone())
                {
                    pool.push(t.clone());
                }
            }
        }
        if pool.is_empty() {
            return Err(MobileError::NoMatch("no track matches the request".into()));
        }
        let tracks = fit(pool, spec.length)?;
        let playlist = Playlist {
            id: uuid::Uuid::new_v4().simple().to_string(),
            user_id: user_id.to_owned(),
            name: spec.name,
            selection: match spec.from {
                PlaylistSource::Selection(s) => Some(s),
                PlaylistSource::Seeds(_) => None,
            },
            tracks: tracks.iter().map(|t| t.id.clone()).collect(),
            created_at: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        self.bounded(self.store.put_playlist(&playlist)).await?;
        Ok((playlist, tracks))
    }

    pub async fn playlists(&self, user_id: &str) -> Result<Vec<Playlist>, MobileError> {
        Ok(self.bounded(self.store.playlists(user_id)).await?)
    }

    /// The listener's playlist `id`: another listener's is "not found".
    pub async fn playlist(&self, user_id: &str, id: &str) -> Result<Playlist, MobileError> {
        self.bounded(self.store.playlist(user_id, id))
            .await?
            .filter(|p| p.user_id == user_id)
            .ok_or(MobileError::NotFound)
    }

    /// Validates each event (some may come already refused, e.g. unreadable); sends the
    /// valid ones to the feedback sink and waits until they are durable. Returns, per event
    /// of the batch, its id or why it was refused.
    pub async fn record_feedback(
        &self,
        user_id: &str,
        events: Vec<Result<FeedbackInput, String>>,
    ) -> Result<Vec<Result<String, String>>, MobileError> {
        if events.len() > MAX_BATCH {
            return Err(MobileError::Invalid(format!(
                "at most {MAX_BATCH} events per batch"
            )));
        }
        let now = time::OffsetDateTime::now_utc();
        let mut results = Vec::with_capacity(events.len());
        let mut deliveries = Vec::new();
        for input in events {
            match input.and_then(|input| self.event_of(user_id, input, now)) {
                Ok(event) => {
                    results.push(Ok(event.event_id.clone()));
                    if matches!(event.kind, EventKind::Liked | EventKind::Disliked) {
                        self.recommender.forget(user_id).await;
                    }
                    deliveries.push(self.feedback.send(event));
                }
                Err(reason) => results.push(Err(reason)),
            }
        }
        for d in deliveries {
            let budget = self.settings.api_store_budget;
            let durable = match tokio::time::timeout(budget, d.durable()).await {
                Ok(done) => done,
                Err(_) => Err(FeedbackError::Io(crate::error::message(
                    "not durable within the budget",
                ))),
            };
            durable.map_err(|e| MobileError::Unavailable {
                what: "the feedback sink",
                source: crate::error::cause(e),
            })?;
        }
        Ok(results)
    }

    fn event_of(
        &self,
        user_id: &str,
        input: FeedbackInput,
        now: time::OffsetDateTime,
    ) -> Result<FeedbackEvent, String> {
        let Some(track) = self.recommender.track(&input.track_id) else {
            return Err(format!("unknown track {}", input.track_id));
        };
        if input.device_id.is_empty() || input.device_id.len() > 256 {
            return Err("device_id must have 1 to 256 characters".into());
        }
        input.context.check()?;
        if let Some(seed) = &input.context.seed_track_id
            && self.recommender.track(&TrackId(seed.clone())).is_none()
        {
            return Err("context.seed_track_id is not a catalog track".into());
        }
        let kind = match input.kind {
            EventKind::PlayFinished => EventKind::of_finish(input.position_ms, track.duration_ms),
            EventKind::Stopped => EventKind::of_ending(false, input.position_ms),
            k => k,
        };
        let mut event = FeedbackEvent::new(
            user_id,
            &input.device_id,
            &input.track_id,
            kind,
            input.position_ms,
            input.context,
            Source::Mobile,
        );
        if let Some(id) = input.event_id {
            uuid::Uuid::parse_str(&id).map_err(|_| format!("event_id {id:?} is not a UUID"))?;
            event.event_id = id;
        }
        if let Some(at) = input.occurred_at {
            let t =
                time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| format!("occurred_at {at:?} is not RFC 3339"))?;
            let age = (now - t).whole_seconds();
            if !(-MAX_EVENT_AHEAD_SECS..=MAX_EVENT_AGE_SECS).contains(&age) {
                return Err(format!(
                    "occurred_at {at} is more than 30 days old or in the future"
                ));
            }
            event.occurred_at = at;
        }
        Ok(event)
    }

    /// Erases the listener's profile, queues and playlists.
    pub async fn erase(&self, user_id: &str) -> Result<(), MobileError> {
        self.bounded(self.store.erase_user(user_id)).await?;
        self.recommender.forget(user_id).await;
        tracing::info!(user_id, "listener erased");
        Ok(())
    }

    pub async fn set_preferences(
        &self,
        user_id: &str,
        prefs: Preferences,
    ) -> Result<Profile, MobileError> {
        if let Some(genres) = &prefs.preferred_genres
            && (genres.len() > 20
                || genres
                    .iter()
                    .any(|g| g.is_empty() || g.chars().count() > 64))
        {
            return Err(MobileError::Invalid(
                "preferred_genres: at most 20 genres of 1 to 64 characters".into(),
            ));
        }
        let profile = self
            .bounded(update_profile(self.store.as_ref(), user_id, |p| {
                if let Some(e) = prefs.explicit_allowed {
                    p.explicit_allowed = e;
                }
                if let Some(g) = &prefs.preferred_genres {
                    p.preferred_genres = g.iter().map(|g| g.to_lowercase()).collect();
                }
            }))
            .await?;
        self.recommender.forget(user_id).await;
        Ok(profile)
    }
}

/// The first tracks of `pool` that make up `length`: for a duration, tracks are added until
/// the total reaches it, so it runs over by less than the last track.
fn fit(pool: Vec<Arc<Track>>, length: PlaylistLength) -> Result<Vec<Arc<Track>>, MobileError> {
    match length {
        PlaylistLength::Tracks(n) => {
            if n == 0 || n > MAX_PLAYLIST_TRACKS {
                return Err(MobileError::Invalid(format!(
                    "track_count must be 1 to {MAX_PLAYLIST_TRACKS}"
                )));
            }
            Ok(pool.into_iter().take(n).collect())
        }
        PlaylistLength::Minutes(m) => {
            if m == 0 || m > MAX_PLAYLIST_MINUTES {
                return Err(MobileError::Invalid(format!(
                    "duration_minutes must be 1 to {MAX_PLAYLIST_MINUTES}"
                )));
            }
            let target = m * 60_000;
            let mut total = 0;
            let mut out = Vec::new();
            for t in pool {
                if total >= target || out.len() == MAX_PLAYLIST_TRACKS {
                    break;
                }
                total += t.duration_ms;
                out.push(t);
            }
            if total < target {
                return Err(MobileError::NoMatch(format!(
                    "only {} minutes of music match the request",
                    total / 60_000
                )));
            }
            Ok(out)
        }
    }
}
