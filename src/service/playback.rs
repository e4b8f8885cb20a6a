//! Device reports: a stream started, nearly finished, finished, stopped or failed.

use super::{Ctx, Outcome, PlayBehavior, Playback, PlaybackEvent, PlaybackEventKind};
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
            _ => return Outcome::silent(),
        };
        let Some(pos) = queue.position_of(&token) else {
            tracing::debug!(token = event.token, "report about a replaced queue");
            return Outcome::silent();
        };
        match event.kind {
            PlaybackEventKind::Started => {
                // The play reaches the profile through the feedback consumer.
                self.emit(
                    &queue,
                    &token.track_id,
                    EventKind::PlayStarted,
                    event.offset_ms,
                );
                queue.move_to(pos);
                self.save_queue(&queue).await;
                Outcome::silent()
            }
            PlaybackEventKind::Stopped => {
                self.emit(
                    &queue,
                    &token.track_id,
                    EventKind::of_ending(false, event.offset_ms),
                    event.offset_ms,
                );
                queue.cursor = pos;
                queue.offset_ms = event.offset_ms;
                self.save_queue(&queue).await;
                Outcome::silent()
            }
            PlaybackEventKind::Finished => {
                self.emit(
                    &queue,
                    &token.track_id,
                    EventKind::of_ending(true, event.offset_ms),
                    event.offset_ms,
                );
                Outcome::silent()
            }
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
                self.emit(&queue, &token.track_id, EventKind::Failed, event.offset_ms);
                tracing::warn!(user_id = %self.listener.user_id, track = %token.track_id, "playback failed, skipping");
                self.advance(&mut queue, pos).await
            }
        }
    }
}
