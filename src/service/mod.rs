//! The use cases, one file each: `play` (a selection as a new queue), `navigate` (the
//! persisted queue), `opinion` (likes and dislikes), `reports` (what the device reports),
//! `mobile` (the app's operations), over `ctx` (one command's context) and `session` (the
//! in-session re-ranking of a queue). A `Command` (what
//! the listener or the device asked) goes in with the listener and the player's state; an
//! `Outcome` (what to say, what to play, whether the session goes on) comes out. No wire format and no storage engine is known here.

mod command;
mod ctx;
mod library;
mod mobile;
mod navigate;
mod opinion;
mod play;
mod reports;
mod session;

pub use command::{
    Command, Outcome, PlayBehavior, Playback, PlaybackEvent, PlaybackEventKind, PlayerState, Reply,
    SessionEffect, SlotKind,
};
pub use mobile::{
    FeedbackInput, MAX_BATCH, MAX_LIMIT, MAX_SEARCH, MobileError, PlaylistLength, PlaylistSource,
    PlaylistSpec, Preferences,
};

use crate::domain::{Listener, QueueKey};
use crate::feedback::FeedbackSink;
use crate::recommend::{RecommendError, RecommendRequest, Recommender};
use crate::store::{ProfileStore, StoreError};
use ctx::Ctx;
use navigate::{Mode, Step};
use std::sync::Arc;
use std::time::Duration;

/// How many tracks a new queue starts with, and how many a refill adds.
pub const QUEUE_LENGTH: usize = 25;
/// How many upcoming tracks an outcome lists for text clients.
pub(crate) const UPCOMING: usize = 5;

pub struct Service {
    store: Arc<dyn ProfileStore>,
    recommender: Arc<dyn Recommender>,
    feedback: Arc<dyn FeedbackSink>,
    settings: ServiceSettings,
    /// The apology clip, as a track to play (from `ServiceSettings::apology_audio_url`).
    apology: Option<Arc<crate::domain::Track>>,
}

#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// How long the voice path waits for any one store call before it goes on without it
    /// (a profile read that misses it serves the listener as a new one).
    pub store_budget: Duration,
    /// The same bound for each store call (and feedback acknowledgement) on the mobile path,
    /// where an unanswered call becomes a 503 instead of a request that hangs.
    pub api_store_budget: Duration,
    /// How long the voice path waits for a device report's event to be acknowledged.
    pub feedback_ack_budget: Duration,
    /// A short spoken clip (HTTPS) played when streams fail one after another and Encore
    /// stops trying (`MAX_CONSECUTIVE_FAILURES`). Without it, playback stops silently (a
    /// device report's answer cannot speak) and the next resume apologises.
    pub apology_audio_url: Option<String>,
    /// Whether the session's signals re-rank the rest of a queue (`service::session`).
    pub session_rerank: bool,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            store_budget: Duration::from_millis(150),
            api_store_budget: Duration::from_secs(1),
            feedback_ack_budget: Duration::from_secs(1),
            apology_audio_url: None,
            session_rerank: true,
        }
    }
}

/// Counts a store failure by kind (`encore_store_errors_total`).
pub(crate) fn count_store_error(operation: &'static str, e: &StoreError) {
    metrics::counter!("encore_store_errors_total", "operation" => operation, "kind" => e.kind())
        .increment(1);
}

impl Service {
    pub fn new(
        store: Arc<dyn ProfileStore>,
        recommender: Arc<dyn Recommender>,
        feedback: Arc<dyn FeedbackSink>,
        settings: ServiceSettings,
    ) -> Self {
        let apology = settings.apology_audio_url.as_ref().map(|url| {
            Arc::new(crate::domain::Track {
                id: crate::domain::TrackId(reports::APOLOGY_TOKEN.to_owned()),
                title: "Encore".to_owned(),
                artist: "Playback stopped".to_owned(),
                album: String::new(),
                genre: String::new(),
                duration_ms: 10_000,
                popularity: 0,
                explicit: false,
                features: Default::default(),
                stream_url: url.clone(),
                art_url: None,
                year: None,
            })
        });
        Service {
            store,
            recommender,
            feedback,
            settings,
            apology,
        }
    }

    pub fn feedback(&self) -> &Arc<dyn FeedbackSink> {
        &self.feedback
    }

    pub fn recommender(&self) -> &Arc<dyn Recommender> {
        &self.recommender
    }

    pub fn store(&self) -> &Arc<dyn ProfileStore> {
        &self.store
    }

    /// Asks the recommender, recording how long it took (`encore_recommend_duration_seconds`).
    pub(crate) async fn recommend(
        &self,
        request: RecommendRequest<'_>,
    ) -> Result<crate::recommend::Recommendation, RecommendError> {
        let started = std::time::Instant::now();
        let rec = self.recommender.recommend(request).await;
        metrics::histogram!("encore_recommend_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        rec
    }

    /// Whether each dependency answers: the profile store (a read), the feedback sink (a
    /// flush) and the recommender (a model version), each within `within`.
    pub async fn readiness(&self, within: Duration) -> Vec<(&'static str, Result<(), String>)> {
        let store = async {
            match tokio::time::timeout(within, self.store.profile("encore-readiness-probe")).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(crate::error::Chain(&e).to_string()),
                Err(_) => Err("no answer in time".to_owned()),
            }
        };
        let feedback = async {
            match tokio::time::timeout(within, self.feedback.flush()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(crate::error::Chain(&e).to_string()),
                Err(_) => Err("no answer in time".to_owned()),
            }
        };
        let (store, feedback) = tokio::join!(store, feedback);
        let model = match self.recommender.model_version() {
            v if v.is_empty() => Err("no model loaded".to_owned()),
            _ => Ok(()),
        };
        vec![
            ("profile_store", store),
            ("feedback_sink", feedback),
            ("model", model),
        ]
    }

    pub async fn handle(
        &self,
        listener: &Listener,
        player: &PlayerState,
        command: Command,
    ) -> Outcome {
        let key = QueueKey {
            user_id: listener
                .account_id
                .as_ref()
                .unwrap_or(&listener.user_id)
                .clone(),
            device_id: listener.device_id.clone(),
        };
        let ctx = Ctx {
            service: self,
            listener,
            player,
            key,
        };
        match command {
            Command::Launch => Outcome::ask(Reply::Welcome),
            Command::Help => Outcome::ask(Reply::Help),
            Command::Fallback => Outcome::ask(Reply::Fallback),
            Command::Missing(slot) => Outcome::ask(Reply::AskFor(slot)),
            Command::NavigateHome | Command::SessionEnded => Outcome::end(None),
            Command::Play(selection) => ctx.play(selection).await,
            Command::PlayNamed(named) => ctx.play_named(named).await,
            Command::PlayPlaylist(name) => ctx.play_playlist(name).await,
            Command::PlayFavourites => ctx.play_favourites().await,
            Command::MoreLikeThis => ctx.more_like_this().await,
            Command::WhatIsPlaying => ctx.what_is_playing().await,
            Command::WhyThisSong => ctx.why_this_song().await,
            Command::Like => ctx.opinion(true).await,
            Command::Dislike => ctx.opinion(false).await,
            Command::Pause => ctx.stop(false).await,
            Command::Stop => ctx.stop(true).await,
            Command::Resume => ctx.resume().await,
            Command::Next => ctx.step(Step::Next).await,
            Command::Previous => ctx.step(Step::Previous).await,
            Command::StartOver => ctx.step(Step::Again).await,
            Command::Shuffle(on) => ctx.set_mode(Mode::Shuffle(on)).await,
            Command::Loop(on) => ctx.set_mode(Mode::Loop(on)).await,
            Command::Playback(event) => ctx.playback_event(event).await,
        }
    }
}
