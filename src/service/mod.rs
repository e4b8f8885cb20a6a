//! The use cases. A `Command` (what the listener or the device asked) goes in with the
//! listener and the player's state; an `Outcome` (what to say, what to play, whether the
//! session goes on) comes out. No wire format and no storage engine is known here.

mod command;
mod mobile;
mod playback;

pub use command::{
    Command, Outcome, PlayBehavior, Playback, PlaybackEvent, PlaybackEventKind, PlayerState, Reply,
    SessionEffect, SlotKind,
};
pub use mobile::{
    FeedbackInput, MAX_BATCH, MAX_LIMIT, MobileError, PlaylistLength, PlaylistSource, PlaylistSpec,
    Preferences,
};

use crate::domain::{Listener, Profile, Queue, QueueKey, Selection, Token, Track, TrackId};
use crate::feedback::{EventContext, EventKind, FeedbackEvent, FeedbackSink};
use crate::recommend::{RecommendError, RecommendRequest, Recommender};
use crate::store::{ProfileStore, StoreError, update_profile};
use std::sync::Arc;
use std::time::Duration;

/// How many tracks a new queue starts with, and how many a refill adds.
pub const QUEUE_LENGTH: usize = 25;
/// How many upcoming tracks an outcome lists for text clients.
const UPCOMING: usize = 5;

pub struct Service {
    store: Arc<dyn ProfileStore>,
    recommender: Arc<dyn Recommender>,
    feedback: Arc<dyn FeedbackSink>,
    settings: ServiceSettings,
}

#[derive(Debug, Clone, Copy)]
pub struct ServiceSettings {
    /// How long the voice path waits for any one store call before it goes on without it
    /// (a profile read that misses it serves the listener as a new one).
    pub store_budget: Duration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            store_budget: Duration::from_millis(150),
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
        Service {
            store,
            recommender,
            feedback,
            settings,
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
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer in time".to_owned()),
            }
        };
        let feedback = async {
            match tokio::time::timeout(within, self.feedback.flush()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
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
            user_id: listener.user_id.clone(),
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
            Command::MoreLikeThis => ctx.more_like_this().await,
            Command::WhatIsPlaying => ctx.what_is_playing().await,
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

/// One command's context.
struct Ctx<'a> {
    service: &'a Service,
    listener: &'a Listener,
    player: &'a PlayerState,
    key: QueueKey,
}

enum Step {
    Next,
    Previous,
    Again,
}

enum Mode {
    Shuffle(bool),
    Loop(bool),
}

impl Ctx<'_> {
    fn store(&self) -> &dyn ProfileStore {
        self.service.store.as_ref()
    }

    fn track(&self, queue: &Queue, pos: usize) -> Option<Arc<Track>> {
        self.service
            .recommender
            .track(queue.track(queue.index_at(pos)))
    }

    /// Records an event about `track`, from `queue` (whose recommendation it names) when it is
    /// known. It hands the event to the feedback sink and waits, within the store budget,
    /// until it is durable: an answer to the device then means the event will not be lost. A
    /// sink slower than that does not hold the answer back (the event is still on its way).
    async fn emit(
        &self,
        queue: Option<&Queue>,
        track: &TrackId,
        kind: EventKind,
        position_ms: u64,
    ) {
        let context = queue.map_or_else(EventContext::default, |queue| {
            EventContext::new(
                &queue.selection,
                &queue.recommendation_id,
                &queue.model_version,
                &queue.experiment,
                &queue.variant,
            )
        });
        let event = FeedbackEvent::new(
            &self.listener.user_id,
            &self.listener.device_id,
            track,
            kind,
            position_ms,
            context,
            self.listener.source,
        );
        metrics::counter!("encore_feedback_events_total", "kind" => kind.as_str()).increment(1);
        let delivery = self.service.feedback.send(event);
        match tokio::time::timeout(self.service.settings.store_budget, delivery.durable()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(user_id = %self.listener.user_id, error = %e, "feedback event not made durable")
            }
            Err(_) => {
                tracing::warn!(user_id = %self.listener.user_id, "feedback event not yet durable at the store budget; answering anyway")
            }
        }
    }

    /// Runs a store call within the voice path's budget; a failure (a call over budget is a
    /// timeout) is counted under `operation` and returned.
    async fn within<T>(
        &self,
        operation: &'static str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = tokio::time::timeout(self.service.settings.store_budget, call)
            .await
            .unwrap_or(Err(StoreError::Timeout));
        if let Err(e) = &result {
            count_store_error(operation, e);
        }
        result
    }

    /// The profile, or none when the store fails or is slower than the budget: the listener
    /// is then served as a new one (and nothing is written back over the stored profile).
    async fn profile(&self) -> Option<Profile> {
        match self
            .within("profile_read", self.store().profile(&self.listener.user_id))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(user_id = %self.listener.user_id, error = %e, "profile unavailable, serving as a new listener");
                None
            }
        }
    }

    /// Reads, changes and writes the profile (see `store::update_profile`) within the budget.
    async fn update_profile(
        &self,
        change: impl FnMut(&mut Profile) + Send,
    ) -> Result<Profile, StoreError> {
        let update = update_profile(self.store(), &self.listener.user_id, change);
        self.within("profile_write", update).await
    }

    async fn load_queue(&self) -> Result<Option<Queue>, StoreError> {
        let queue = self
            .within("queue_read", self.store().queue(&self.key))
            .await
            .inspect_err(|e| {
                tracing::error!(user_id = %self.listener.user_id, error = %e, "queue unavailable");
            })?;
        Ok(queue.filter(|q| {
            let ok = q.is_consistent();
            if !ok {
                tracing::error!(user_id = %self.listener.user_id, queue = q.id, "stored queue is inconsistent, ignored");
            }
            ok
        }))
    }

    async fn save_queue(&self, queue: &Queue) {
        if let Err(e) = self
            .within("queue_write", self.store().put_queue(&self.key, queue))
            .await
        {
            tracing::error!(user_id = %self.listener.user_id, error = %e, "queue not saved");
        }
    }

    async fn play(&self, selection: Selection) -> Outcome {
        let profile = self.profile().await;
        let request = RecommendRequest {
            user_id: &self.listener.user_id,
            selection: &selection,
            profile: profile.as_ref(),
            exclude: &[],
            limit: QUEUE_LENGTH,
        };
        let rec = match self.service.recommend(request).await {
            Ok(rec) => rec,
            Err(RecommendError::NoMatch(selection)) => {
                return Outcome::ask(Reply::NoMatch(selection));
            }
            Err(e) => {
                tracing::error!(error = %e, "recommender failed");
                return Outcome::end(Some(Reply::Trouble));
            }
        };
        let first = rec.tracks[0].clone();
        let mut queue = Queue::new(
            selection.clone(),
            rec.id,
            rec.model_version,
            rec.tracks.iter().map(|t| t.id.clone()).collect(),
        );
        queue.experiment = rec.experiment;
        queue.variant = rec.variant;
        let token = queue.token_for(0);
        self.save_queue(&queue).await;
        let mut outcome = Outcome::end(Some(Reply::Playing {
            selection,
            track: first.clone(),
        }));
        outcome.playback = Some(Playback::play(
            PlayBehavior::ReplaceAll,
            &token,
            first,
            0,
            None,
        ));
        outcome.upcoming = rec.tracks.iter().skip(1).take(UPCOMING).cloned().collect();
        outcome
    }

    /// The track the device is playing (by its token) or, failing that, the queue's current one.
    async fn current(&self) -> Result<Option<(Queue, usize)>, StoreError> {
        let Some(queue) = self.load_queue().await? else {
            return Ok(None);
        };
        let pos = self
            .player
            .token()
            .and_then(|t| queue.position_of(&t))
            .unwrap_or(queue.cursor);
        Ok(Some((queue, pos)))
    }

    async fn more_like_this(&self) -> Outcome {
        match self.current().await {
            Ok(Some((queue, pos))) => {
                let seed = queue.track(queue.index_at(pos)).clone();
                self.play(Selection::LikeTrack(seed)).await
            }
            Ok(None) => Outcome::ask(Reply::NothingPlaying),
            Err(_) => Outcome::end(Some(Reply::Trouble)),
        }
    }

    async fn what_is_playing(&self) -> Outcome {
        match self.current().await {
            Ok(Some((queue, pos))) => match self.track(&queue, pos) {
                Some(track) => Outcome::end(Some(Reply::NowPlaying(track))),
                None => Outcome::ask(Reply::NothingPlaying),
            },
            Ok(None) => Outcome::ask(Reply::NothingPlaying),
            Err(_) => Outcome::end(Some(Reply::Trouble)),
        }
    }

    async fn opinion(&self, like: bool) -> Outcome {
        let (mut queue, pos) = match self.current().await {
            Ok(Some(found)) => found,
            Ok(None) => return Outcome::ask(Reply::NothingPlaying),
            Err(_) => return Outcome::end(Some(Reply::Trouble)),
        };
        let Some(track) = self.track(&queue, pos) else {
            return Outcome::ask(Reply::NothingPlaying);
        };
        let id = track.id.clone();
        let stored = self
            .update_profile(|p| if like { p.like(&id) } else { p.dislike(&id) })
            .await;
        if let Err(e) = stored {
            tracing::error!(user_id = %self.listener.user_id, error = %e, "opinion not saved");
            return Outcome::end(Some(Reply::Trouble));
        }
        let kind = if like {
            EventKind::Liked
        } else {
            EventKind::Disliked
        };
        self.emit(Some(&queue), &id, kind, self.player.offset_ms)
            .await;
        // Lists ranked before the opinion are stale now.
        self.service
            .recommender
            .forget(&self.listener.user_id)
            .await;
        if like {
            return Outcome::end(Some(Reply::Liked(track)));
        }
        // A disliked track stops at once: the next one starts.
        let mut outcome = self.advance(&mut queue, pos).await;
        outcome.reply = Some(Reply::Disliked(track));
        outcome
    }

    async fn stop(&self, said_stop: bool) -> Outcome {
        if let Ok(Some((mut queue, pos))) = self.current().await {
            queue.cursor = pos;
            queue.offset_ms = self.player.offset_ms;
            self.save_queue(&queue).await;
        }
        let mut outcome = Outcome::end(None);
        outcome.playback = Some(Playback::Stop);
        if said_stop && !self.player.is_playing() {
            outcome.reply = Some(Reply::Goodbye);
        }
        outcome
    }

    async fn resume(&self) -> Outcome {
        let mut queue = match self.load_queue().await {
            Ok(Some(q)) => q,
            Ok(None) => return Outcome::ask(Reply::NothingToResume),
            Err(_) => return Outcome::end(Some(Reply::Trouble)),
        };
        let pos = queue.cursor;
        let Some(track) = self.track(&queue, pos) else {
            return Outcome::ask(Reply::NothingToResume);
        };
        let token = queue.token_for(pos);
        let offset = queue.offset_ms.min(track.duration_ms);
        self.save_queue(&queue).await;
        let mut outcome = Outcome::end(None);
        outcome.playback = Some(Playback::play(
            PlayBehavior::ReplaceAll,
            &token,
            track,
            offset,
            None,
        ));
        outcome
    }

    async fn step(&self, step: Step) -> Outcome {
        let (mut queue, pos) = match self.current().await {
            Ok(Some(found)) => found,
            Ok(None) => return Outcome::ask(Reply::NothingToResume),
            Err(_) => return Outcome::end(Some(Reply::Trouble)),
        };
        match step {
            Step::Next => self.advance(&mut queue, pos).await,
            Step::Previous => {
                // At the start of a queue that does not loop, "previous" restarts the track.
                let target = queue.previous_position(pos).unwrap_or(pos);
                self.play_position(&mut queue, target).await
            }
            Step::Again => self.play_position(&mut queue, pos).await,
        }
    }

    /// Plays what follows `pos`, refilling the queue when it has run out.
    async fn advance(&self, queue: &mut Queue, pos: usize) -> Outcome {
        match self.next_position(queue, pos).await {
            Some(next) => self.play_position(queue, next).await,
            None => {
                let mut outcome = Outcome::end(Some(Reply::EndOfQueue));
                outcome.playback = Some(Playback::Stop);
                outcome
            }
        }
    }

    async fn play_position(&self, queue: &mut Queue, pos: usize) -> Outcome {
        let Some(track) = self.track(queue, pos) else {
            return Outcome::end(Some(Reply::Trouble));
        };
        queue.move_to(pos);
        let token = queue.token_for(pos);
        self.save_queue(queue).await;
        let mut outcome = Outcome::end(None);
        outcome.upcoming = upcoming(self, queue, pos);
        outcome.playback = Some(Playback::play(
            PlayBehavior::ReplaceAll,
            &token,
            track,
            0,
            None,
        ));
        outcome
    }

    /// The position after `pos`; at the end of a queue that does not loop, more tracks of the
    /// same selection are added first.
    async fn next_position(&self, queue: &mut Queue, pos: usize) -> Option<usize> {
        if let Some(next) = queue.next_position(pos) {
            return Some(next);
        }
        let profile = self.profile().await;
        let request = RecommendRequest {
            user_id: &self.listener.user_id,
            selection: &queue.selection,
            profile: profile.as_ref(),
            exclude: &queue.tracks,
            limit: QUEUE_LENGTH,
        };
        match self.service.recommend(request).await {
            Ok(rec) => {
                queue.extend(rec.tracks.iter().map(|t| t.id.clone()));
            }
            Err(e) => {
                tracing::info!(user_id = %self.listener.user_id, error = %e, "queue not refilled")
            }
        }
        queue.next_position(pos)
    }

    async fn set_mode(&self, mode: Mode) -> Outcome {
        let (mut queue, pos) = match self.current().await {
            Ok(Some(found)) => found,
            Ok(None) => return Outcome::ask(Reply::NothingPlaying),
            Err(_) => return Outcome::end(Some(Reply::Trouble)),
        };
        queue.cursor = pos;
        let reply = match mode {
            Mode::Shuffle(on) => {
                queue.set_shuffle(on, &mut rand::rng());
                Reply::Shuffle(on)
            }
            Mode::Loop(on) => {
                queue.looping = on;
                Reply::Loop(on)
            }
        };
        let mut outcome = Outcome::end(Some(reply));
        // The device may already hold the next track of the old order: replace it.
        if self.player.is_playing() {
            outcome.playback = Some(match queue.next_position(pos) {
                Some(next) => match self.track(&queue, next) {
                    Some(track) => Playback::play(
                        PlayBehavior::ReplaceEnqueued,
                        &queue.token_for(next),
                        track,
                        0,
                        None,
                    ),
                    None => Playback::ClearEnqueued,
                },
                None => Playback::ClearEnqueued,
            });
        }
        self.save_queue(&queue).await;
        outcome
    }
}

fn upcoming(ctx: &Ctx<'_>, queue: &Queue, pos: usize) -> Vec<Arc<Track>> {
    (pos + 1..queue.len())
        .take(UPCOMING)
        .filter_map(|p| ctx.track(queue, p))
        .collect()
}

impl PlayerState {
    fn token(&self) -> Option<Token> {
        self.token.as_deref().and_then(|t| t.parse().ok())
    }
}
