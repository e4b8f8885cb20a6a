//! Device reports: a stream started, nearly finished, finished, stopped or failed. A play is
//! one play from its first start to its ending, however often its stream stops and starts
//! in between (see `Queue::open_play`).

use super::ctx::Ctx;
use super::{Outcome, PlayBehavior, Playback, PlaybackEvent, PlaybackEventKind};
use crate::domain::{Enqueued, MAX_CONSECUTIVE_FAILURES, OpenPlay, Queue, Token, unix_ms_now};
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
                // A stream plays: what was enqueued is playing, and the failures in a row end.
                if queue
                    .enqueued
                    .as_ref()
                    .is_some_and(|e| e.token == event.token)
                {
                    queue.enqueued = None;
                }
                queue.failures = 0;
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
                if is_stale(&queue, &token, &event) {
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
                // The device already holds what follows this stream (the report came twice,
                // or after a shuffle or loop change replaced it).
                if queue
                    .enqueued
                    .as_ref()
                    .is_some_and(|e| e.after == event.token)
                {
                    tracing::debug!(token = event.token, "next stream already enqueued");
                    return Outcome::silent();
                }
                let Some(next) = self.next_position(&mut queue, pos).await else {
                    return Outcome::silent();
                };
                let Some(track) = self.track(&queue, next) else {
                    return Outcome::silent();
                };
                let next_token = queue.token_for(next);
                queue.enqueued = Some(Enqueued {
                    after: event.token.clone(),
                    token: next_token.to_string(),
                });
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
                // Late, or reported twice: it was dealt with, or the device has moved on.
                if is_stale(&queue, &token, &event) {
                    tracing::debug!(token = event.token, "failure report about an older stream");
                    return Outcome::silent();
                }
                let kind = EventKind::Failed;
                if !self
                    .end_reported(&mut queue, &token, &event, open_here, kind)
                    .await
                {
                    // Reported twice: it was dealt with the first time.
                    return Outcome::silent();
                }
                queue.failures += 1;
                // The device names the stream it plays: another one means the stream that
                // failed was the enqueued one, and the song playing goes on.
                let queued = self.player.is_playing()
                    && self
                        .player
                        .token
                        .as_deref()
                        .is_some_and(|playing| playing != event.token);
                tracing::warn!(user_id = %self.listener.user_id, track = %token.track_id, queued, failures = queue.failures, "playback failed");
                if queue.failures >= MAX_CONSECUTIVE_FAILURES {
                    return self.give_up(&mut queue, queued).await;
                }
                if queued {
                    let mut outcome = Outcome::silent();
                    outcome.playback = Some(self.replace_enqueued(&mut queue, pos));
                    self.save_queue(&queue).await;
                    return outcome;
                }
                self.advance(&mut queue, pos).await
            }
        }
    }

    /// After `MAX_CONSECUTIVE_FAILURES` streams failed in a row, Encore stops trying: the
    /// apology clip (`--apology-audio-url`) takes the place of the next stream, or playback
    /// stops (after the song playing, when the stream that failed was the enqueued one). A
    /// resume then says what happened and tries again.
    async fn give_up(&self, queue: &mut Queue, queued: bool) -> Outcome {
        metrics::counter!("encore_playback_given_up_total").increment(1);
        queue.enqueued = None;
        self.save_queue(queue).await;
        let mut outcome = Outcome::silent();
        outcome.playback = Some(match (&self.service.apology, queued) {
            (Some(clip), queued) => Playback::Play {
                behavior: match queued {
                    true => PlayBehavior::ReplaceEnqueued,
                    false => PlayBehavior::ReplaceAll,
                },
                token: APOLOGY_TOKEN.to_owned(),
                track: clip.clone(),
                offset_ms: 0,
                expected_previous: None,
            },
            (None, true) => Playback::ClearEnqueued,
            (None, false) => Playback::Stop,
        });
        outcome
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
        super::session::note(queue, &token.track_id, kind);
        true
    }
}

/// The apology clip's token: not a queue's, so reports about it change nothing.
pub(super) const APOLOGY_TOKEN: &str = "encore-apology";

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

/// Whether a report is about a stream older than the newest one played, or about one
/// whose play has ended: then it is late (or came twice) and changes nothing.
fn is_stale(queue: &Queue, token: &Token, event: &PlaybackEvent) -> bool {
    queue
        .newest_played_seq()
        .is_some_and(|newest| token.seq < newest)
        || queue.ended.as_deref() == Some(event.token.as_str())
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
