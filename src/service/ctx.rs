//! One command's context (`Ctx`: the service, the listener, the player's state, the queue's
//! key) and what every use case does through it: store calls within the voice path's
//! budget, the profile, the queue, the current track, and feedback events made durable.

use super::{Service, count_store_error};
use crate::domain::{Listener, Profile, Queue, QueueKey, Token, Track, TrackId, unix_ms_now};
use crate::feedback::{EventContext, EventKind, FeedbackEvent};
use crate::service::{PlayerState, UPCOMING};
use crate::store::{ProfileStore, StoreError, update_profile};
use std::sync::Arc;

/// One command's context.
pub(super) struct Ctx<'a> {
    pub service: &'a Service,
    pub listener: &'a Listener,
    pub player: &'a PlayerState,
    pub key: QueueKey,
}

impl Ctx<'_> {
    pub(super) fn store(&self) -> &dyn ProfileStore {
        self.service.store.as_ref()
    }

    pub(super) fn track(&self, queue: &Queue, pos: usize) -> Option<Arc<Track>> {
        self.service
            .recommender
            .track(queue.track(queue.index_at(pos)))
    }

    /// Records an event about `track`, from `queue` (whose recommendation it names) when it is
    /// known. It hands the event to the feedback sink and waits, within
    /// `--feedback-ack-budget-ms`, until the sink acknowledges it: an answer to the device
    /// then means the event will not be lost. A sink slower than that does not hold the
    /// answer back (the event is still on its way).
    pub(super) async fn emit(
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
        // A report names no person: events about a person's queue are theirs.
        let owner = queue
            .and_then(|q| q.owner.as_deref())
            .filter(|_| self.listener.account_id.is_none());
        let event = FeedbackEvent::new(
            owner.unwrap_or(&self.listener.user_id),
            &self.listener.device_id,
            track,
            kind,
            position_ms,
            context,
            self.listener.source,
        );
        metrics::counter!("encore_feedback_events_total", "kind" => kind.as_str()).increment(1);
        let delivery = self.service.feedback.send(event);
        let budget = self.service.settings.feedback_ack_budget;
        match tokio::time::timeout(budget, delivery.durable()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(user_id = %self.listener.user_id, error = %crate::error::Chain(&e), "feedback event not made durable")
            }
            Err(_) => {
                tracing::warn!(user_id = %self.listener.user_id, "feedback event not yet acknowledged within --feedback-ack-budget-ms; answering anyway")
            }
        }
    }

    /// Ends `queue`'s open play, if it has one: its ending (a skip before 30 s, a stop after,
    /// at the furthest offset known) is recorded once, and the play is closed. Encore calls
    /// this when it moves on from the track (next, previous, start over, a dislike, a new
    /// queue, a failure) and when a paused play turns out abandoned.
    pub(super) async fn end_open_play(&self, queue: &mut Queue) {
        self.end_open_play_as(queue, false).await;
    }

    /// `end_open_play`, recording a finish when `finished`.
    pub(super) async fn end_open_play_as(&self, queue: &mut Queue, finished: bool) {
        let Some(open) = queue.open_play.take() else {
            return;
        };
        let Ok(token) = open.token.parse::<Token>() else {
            return;
        };
        // The device's offset is the freshest when it is about this stream.
        let offset = match self.player.token.as_deref() == Some(open.token.as_str()) {
            true => self.player.offset_ms.max(open.offset_ms),
            false => open.offset_ms,
        };
        let ours = token.queue_id == queue.id;
        let kind = EventKind::of_ending(finished, offset);
        self.emit(ours.then_some(&*queue), &token.track_id, kind, offset)
            .await;
        if ours {
            super::session::note(queue, &token.track_id, kind);
        }
        queue.ended = Some(open.token);
    }

    /// Ends `queue`'s open play if its stream has been stopped for `ABANDONED_AFTER_MS`.
    pub(super) async fn end_if_abandoned(&self, queue: &mut Queue) {
        if queue
            .open_play
            .as_ref()
            .is_some_and(|o| o.is_abandoned(unix_ms_now()))
        {
            self.end_open_play(queue).await;
        }
    }

    /// Runs a store call within the voice path's budget; a failure (a call over budget is a
    /// timeout) is counted under `operation` and returned.
    pub(super) async fn within<T>(
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
    pub(super) async fn profile(&self) -> Option<Profile> {
        match self
            .within("profile_read", self.store().profile(&self.listener.user_id))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(user_id = %self.listener.user_id, error = %crate::error::Chain(&e), "profile unavailable, serving as a new listener");
                None
            }
        }
    }

    /// Reads, changes and writes the profile (see `store::update_profile`) within the budget.
    pub(super) async fn update_profile(
        &self,
        change: impl FnMut(&mut Profile) + Send,
    ) -> Result<Profile, StoreError> {
        let update = update_profile(self.store(), &self.listener.user_id, change);
        self.within("profile_write", update).await
    }

    pub(super) async fn load_queue(&self) -> Result<Option<Queue>, StoreError> {
        let queue = self
            .within("queue_read", self.store().queue(&self.key))
            .await
            .inspect_err(|e| {
                tracing::error!(user_id = %self.listener.user_id, error = %crate::error::Chain(e), "queue unavailable");
            })?;
        Ok(queue.filter(|q| {
            let ok = q.is_consistent();
            if !ok {
                tracing::error!(user_id = %self.listener.user_id, queue = q.id, "stored queue is inconsistent, ignored");
            }
            ok
        }))
    }

    pub(super) async fn save_queue(&self, queue: &Queue) {
        if let Err(e) = self
            .within("queue_write", self.store().put_queue(&self.key, queue))
            .await
        {
            tracing::error!(user_id = %self.listener.user_id, error = %crate::error::Chain(&e), "queue not saved");
        }
    }

    /// The track the device is playing (by its token) or, failing that, the queue's current one.
    pub(super) async fn current(&self) -> Result<Option<(Queue, usize)>, StoreError> {
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
}

pub(super) fn upcoming(ctx: &Ctx<'_>, queue: &Queue, pos: usize) -> Vec<Arc<Track>> {
    (pos + 1..queue.len())
        .take(UPCOMING)
        .filter_map(|p| ctx.track(queue, p))
        .collect()
}

impl PlayerState {
    pub(super) fn token(&self) -> Option<Token> {
        self.token.as_deref().and_then(|t| t.parse().ok())
    }
}
