//! Device reports: a stream started, nearly finished, finished, stopped or failed.

use super::ctx::Ctx;
use super::{Outcome, PlayBehavior, Playback, PlaybackEvent, PlaybackEventKind};
use crate::domain::Token;
use crate::feedback::EventKind;

impl Ctx<'_> {
    pub(super) async fn playback_event(&self, event: PlaybackEvent) -> Outcome {
        let Ok(token) = event.token.parse::<Token>() else {
            tracing::info!(
                token = event.token,
                "report about a stream that is not ours"
            );
            return Outcome::silent();
        };
        let mut queue = match self.load_queue().await {
            Ok(Some(q)) => q,
            _ => {
                // The queue could not be read (or its write had failed).
                self.emit_from_token(&token, &event).await;
                return Outcome::silent();
            }
        };
        let Some(pos) = queue.position_of(&token) else {
            tracing::debug!(token = event.token, "report about a replaced queue");
            self.emit_from_token(&token, &event).await;
            return Outcome::silent();
        };
        // The play reaches the profile through the feedback consumer.
        if let Some(kind) = event_kind(&event) {
            self.emit(Some(&queue), &token.track_id, kind, event.offset_ms)
                .await;
        }
        match event.kind {
            PlaybackEventKind::Started => {
                queue.move_to(pos);
                self.save_queue(&queue).await;
                Outcome::silent()
            }
            PlaybackEventKind::Stopped => {
                queue.cursor = pos;
                queue.offset_ms = event.offset_ms;
                self.save_queue(&queue).await;
                Outcome::silent()
            }
            PlaybackEventKind::Finished => Outcome::silent(),
            PlaybackEventKind::NearlyFinished => {
                let Some(next) = self.next_position(&mut queue, pos).await else {
                    return Outcome::silent();
                };
                let Some(track) = self.track(&queue, next) else {
                    return Outcome::silent();
                };
                let next_token = queue.token_for(next);
                self.save_queue(&queue).await;
                let mut outcome = Outcome::silent();
                outcome.playback = Some(Playback::play(
                    PlayBehavior::Enqueue,
                    &next_token,
                    track,
                    0,
                    Some(event.token),
                ));
                outcome
            }
            PlaybackEventKind::Failed => {
                tracing::warn!(user_id = %self.listener.user_id, track = %token.track_id, "playback failed, skipping");
                self.advance(&mut queue, pos).await
            }
        }
    }
}

impl Ctx<'_> {
    /// Records a report's event when its queue is not at hand (unreadable, or replaced
    /// since): the play still happened, so it counts, without the recommendation's context.
    /// Only for a track of ours: a token is echoed by the device, not made by it.
    async fn emit_from_token(&self, token: &Token, event: &PlaybackEvent) {
        let known = self.service.recommender.track(&token.track_id).is_some();
        if let (true, Some(kind)) = (known, event_kind(event)) {
            self.emit(None, &token.track_id, kind, event.offset_ms)
                .await;
        }
    }
}

/// The event a device report makes: a start, an ending (the 30 s rule applied) or a failure.
/// NearlyFinished makes none.
fn event_kind(event: &PlaybackEvent) -> Option<EventKind> {
    match event.kind {
        PlaybackEventKind::Started => Some(EventKind::PlayStarted),
        PlaybackEventKind::Stopped => Some(EventKind::of_ending(false, event.offset_ms)),
        PlaybackEventKind::Finished => Some(EventKind::of_ending(true, event.offset_ms)),
        PlaybackEventKind::Failed => Some(EventKind::Failed),
        PlaybackEventKind::NearlyFinished => None,
    }
}
