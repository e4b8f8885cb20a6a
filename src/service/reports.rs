//! Device reports: a stream started, nearly finished, finished, stopped or failed. A play is
//! one play from its first start to its ending, however often its stream stops and starts
//! in between (see `Queue::open_play`).

use super::ctx::Ctx;
use super::{Outcome, PlayBehavior, Playback, PlaybackEvent, PlaybackEventKind};
use crate::domain::{OpenPlay, Queue, Token, unix_ms_now};
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
        // A pause nobody came back to has ended, whatever this report says next.
        self.end_if_abandoned(&mut queue).await;
        let open_here = queue
            .open_play
            .as_ref()
            .is_some_and(|open| open.token == event.token);
        match event.kind {
            PlaybackEventKind::Started => {
                match queue.open_play.as_mut() {
                    // The stream of the open play again: the listener spoke, or resumed.
                    Some(open) if open_here => open.stopped_at_ms = None,
                    _ => {
                        // Another play still open: the device has moved on from it. A device
                        // moves on by itself only when a track ends (its Finished report was
                        // lost); from a stopped one, something else did.
                        let finished = queue
                            .open_play
                            .as_ref()
                            .is_some_and(|o| o.stopped_at_ms.is_none());
                        self.end_open_play_as(&mut queue, finished).await;
                        self.emit(
                            Some(&queue),
                            &token.track_id,
                            EventKind::PlayStarted,
                            event.offset_ms,
                        )
                        .await;
                        queue.open_play = Some(OpenPlay {
                            token: event.token.clone(),
                            offset_ms: event.offset_ms,
                            stopped_at_ms: None,
                        });
                    }
                }
                queue.move_to(pos);
                self.save_queue(&queue).await;
                Outcome::silent()
            }
            // A stop is not an ending: the listener speaking to the device stops the stream
            // too, and it starts again. The play ends when it finishes, when Encore moves on,
            // or when it stays stopped (`ABANDONED_AFTER_MS`).
            PlaybackEventKind::Stopped => {
                // A late report about a stream older than the newest one played, or about
                // one whose play has ended, moves nothing back.
                let stale = queue
                    .newest_played_seq()
                    .is_some_and(|newest| token.seq < newest)
                    || queue.ended.as_deref() == Some(event.token.as_str());
                if stale {
                    tracing::debug!(token = event.token, "stop report about an older stream");
                    return Outcome::silent();
                }
                queue.cursor = pos;
                queue.offset_ms = event.offset_ms;
                if let Some(open) = queue.open_play.as_mut().filter(|_| open_here) {
                    open.offset_ms = event.offset_ms;
                    open.stopped_at_ms = Some(unix_ms_now());
                }
                self.save_queue(&queue).await;
                Outcome::silent()
            }
            PlaybackEventKind::Finished => {
                let kind = EventKind::PlayFinished;
                if self
                    .end_reported(&mut queue, &token, &event, open_here, kind)
                    .await
                {
                    self.save_queue(&queue).await;
                }
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
                tracing::warn!(user_id = %self.listener.user_id, track = %token.track_id, "playback failed, skipping");
                let kind = EventKind::Failed;
                self.end_reported(&mut queue, &token, &event, open_here, kind)
                    .await;
                self.advance(&mut queue, pos).await
            }
        }
    }

    /// Ends the play a Finished or Failed report is about, recording `kind`: the open one
    /// when it is this stream's, else (its start report was lost) the stream's own, unless
    /// that has ended already (the report came twice). Whether it ended here.
    async fn end_reported(
        &self,
        queue: &mut Queue,
        token: &Token,
        event: &PlaybackEvent,
        open_here: bool,
        kind: EventKind,
    ) -> bool {
        if queue.ended.as_deref() == Some(event.token.as_str()) {
            return false;
        }
        if open_here {
            queue.open_play = None;
        }
        queue.ended = Some(event.token.clone());
        self.emit(Some(queue), &token.track_id, kind, event.offset_ms)
            .await;
        true
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

/// The event a device report makes when its queue is not at hand: a start, a finish or a
/// failure. A stop (an interruption, as likely as an ending) and NearlyFinished make none.
fn event_kind(event: &PlaybackEvent) -> Option<EventKind> {
    match event.kind {
        PlaybackEventKind::Started => Some(EventKind::PlayStarted),
        PlaybackEventKind::Finished => Some(EventKind::PlayFinished),
        PlaybackEventKind::Failed => Some(EventKind::Failed),
        PlaybackEventKind::Stopped | PlaybackEventKind::NearlyFinished => None,
    }
}
