//! Moving through the persisted queue: pause and stop, resume, next, previous, start over,
//! shuffle and loop, and refilling a queue that ran out.

use super::ctx::{Ctx, upcoming};
use super::{Outcome, PlayBehavior, Playback, QUEUE_LENGTH, Reply};
use crate::domain::{Enqueued, MAX_CONSECUTIVE_FAILURES, Queue, Token, unix_ms_now};
use crate::recommend::RecommendRequest;

pub(super) enum Step {
    Next,
    Previous,
    Again,
}

pub(super) enum Mode {
    Shuffle(bool),
    Loop(bool),
}

impl Ctx<'_> {
    /// Pause and stop: the stream stops, the play stays open (a resume goes on with it).
    pub(super) async fn stop(&self, said_stop: bool) -> Outcome {
        if let Ok(Some((mut queue, pos))) = self.current().await {
            queue.cursor = pos;
            queue.offset_ms = self.player.offset_ms;
            let playing = self.player.token.as_deref();
            if let Some(open) = queue
                .open_play
                .as_mut()
                .filter(|o| Some(o.token.as_str()) == playing)
            {
                open.offset_ms = self.player.offset_ms;
                open.stopped_at_ms.get_or_insert_with(unix_ms_now);
            }
            self.save_queue(&queue).await;
        }
        let mut outcome = Outcome::end(None);
        outcome.playback = Some(Playback::Stop);
        if said_stop && !self.player.is_playing() {
            outcome.reply = Some(Reply::Goodbye);
        }
        outcome
    }

    pub(super) async fn resume(&self) -> Outcome {
        let mut queue = match self.load_queue().await {
            Ok(Some(q)) => q,
            Ok(None) => return Outcome::ask(Reply::NothingToResume),
            Err(_) => return Outcome::end(Some(Reply::Trouble)),
        };
        let pos = queue.cursor;
        let Some(track) = self.track(&queue, pos) else {
            return Outcome::ask(Reply::NothingToResume);
        };
        self.end_if_abandoned(&mut queue).await;
        let token = queue.token_for(pos);
        // The paused play goes on in the new stream: its start is not a second play.
        if let Some(open) = queue.open_play.as_mut() {
            let same_track = open
                .token
                .parse::<Token>()
                .is_ok_and(|t| t.queue_id == token.queue_id && t.index == token.index);
            if same_track {
                open.token = token.to_string();
            }
        }
        queue.enqueued = None;
        // Playback stopped after streams failed in a row: say so, and try again.
        let reply = (queue.failures >= MAX_CONSECUTIVE_FAILURES).then_some(Reply::PlaybackFailing);
        queue.failures = 0;
        let offset = queue.offset_ms.min(track.duration_ms);
        self.save_queue(&queue).await;
        let mut outcome = Outcome::end(reply);
        outcome.playback = Some(Playback::play(
            PlayBehavior::ReplaceAll,
            &token,
            track,
            offset,
            None,
        ));
        outcome
    }

    pub(super) async fn step(&self, step: Step) -> Outcome {
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
    pub(super) async fn advance(&self, queue: &mut Queue, pos: usize) -> Outcome {
        // The play ends first: a skip re-ranks what the next track is chosen from.
        self.end_open_play(queue).await;
        match self.next_position(queue, pos).await {
            Some(next) => self.play_position(queue, next).await,
            None => {
                self.save_queue(queue).await;
                let mut outcome = Outcome::end(Some(Reply::EndOfQueue));
                outcome.playback = Some(Playback::Stop);
                outcome
            }
        }
    }

    pub(super) async fn play_position(&self, queue: &mut Queue, pos: usize) -> Outcome {
        let Some(track) = self.track(queue, pos) else {
            return Outcome::end(Some(Reply::Trouble));
        };
        // Encore moves on: the track that was playing has ended here, and what the device
        // had enqueued is replaced.
        self.end_open_play(queue).await;
        queue.enqueued = None;
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
    pub(super) async fn next_position(&self, queue: &mut Queue, pos: usize) -> Option<usize> {
        // What the session has shown orders what is left, before the next one is chosen.
        if self.service.settings.session_rerank
            && let Some(more) = super::session::wants(queue, pos)
        {
            if more > 0 {
                self.extend_queue(queue, more).await;
            }
            super::session::rerank(queue, pos, self.service.recommender.as_ref());
        }
        if let Some(next) = queue.next_position(pos) {
            return Some(next);
        }
        self.extend_queue(queue, QUEUE_LENGTH).await;
        queue.next_position(pos)
    }

    /// Adds up to `more` tracks of the queue's selection, none already queued (a failure
    /// is logged and adds none).
    pub(super) async fn extend_queue(&self, queue: &mut Queue, more: usize) {
        let profile = self.profile().await;
        let request = RecommendRequest {
            user_id: &self.listener.user_id,
            selection: &queue.selection,
            profile: profile.as_ref(),
            exclude: &queue.tracks,
            limit: more,
        };
        match self.service.recommend(request).await {
            Ok(rec) => {
                queue.extend(rec.tracks.picks().map(|(t, why)| (t.id.clone(), why)));
            }
            Err(e) => {
                tracing::info!(user_id = %self.listener.user_id, error = %crate::error::Chain(&e), "queue not extended")
            }
        }
    }

    /// What replaces the stream the device holds after the one it plays (at `pos`): the
    /// next track in the queue's order, or nothing. Recorded as the queue's `enqueued`.
    pub(super) fn replace_enqueued(&self, queue: &mut Queue, pos: usize) -> Playback {
        queue.enqueued = None;
        let Some((next, track)) = queue
            .next_position(pos)
            .and_then(|next| Some((next, self.track(queue, next)?)))
        else {
            return Playback::ClearEnqueued;
        };
        let token = queue.token_for(next);
        if let Some(playing) = &self.player.token {
            queue.enqueued = Some(Enqueued {
                after: playing.clone(),
                token: token.to_string(),
            });
        }
        Playback::play(PlayBehavior::ReplaceEnqueued, &token, track, 0, None)
    }

    pub(super) async fn set_mode(&self, mode: Mode) -> Outcome {
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
            outcome.playback = Some(self.replace_enqueued(&mut queue, pos));
        }
        self.save_queue(&queue).await;
        outcome
    }
}
