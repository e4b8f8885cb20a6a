//! Playing a selection (a mood, genre, artist, or more like the current track) as a new
//! queue, and saying what is playing and why.

use super::ctx::Ctx;
use super::{Outcome, PlayBehavior, Playback, QUEUE_LENGTH, Reply, UPCOMING};
use crate::domain::{Queue, Selection, Track};
use crate::recommend::{RecommendError, RecommendRequest};
use std::sync::Arc;

impl Ctx<'_> {
    pub(super) async fn play(&self, selection: Selection) -> Outcome {
        // The queue is read only when the device names a stream, to end its play.
        let replaced = match self.player.token() {
            Some(_) => self.load_queue().await.ok().flatten(),
            None => None,
        };
        self.play_replacing(selection, replaced).await
    }

    /// Plays `selection` as a new queue that replaces `replaced`, the device's: the play
    /// open in it has ended.
    async fn play_replacing(&self, selection: Selection, replaced: Option<Queue>) -> Outcome {
        if let Some(mut old) = replaced {
            self.end_open_play(&mut old).await;
        }
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
        };
        let first = rec.tracks.first().clone();
        let mut queue = Queue::new(
            selection.clone(),
            rec.id,
            rec.model_version,
            rec.tracks.iter().map(|t| t.id.clone()).collect(),
        )
        .with_reasons(rec.tracks.reasons());
        queue.owner = self
            .listener
            .account_id
            .as_ref()
            .map(|_| self.listener.user_id.clone());
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

    pub(super) async fn more_like_this(&self) -> Outcome {
        match self.current().await {
            Ok(Some((queue, pos))) => {
                let seed = queue.track(queue.index_at(pos)).clone();
                self.play_replacing(Selection::LikeTrack(seed), Some(queue))
                    .await
            }
            Ok(None) => Outcome::ask(Reply::NothingPlaying),
            Err(_) => Outcome::end(Some(Reply::Trouble)),
        }
    }

    pub(super) async fn what_is_playing(&self) -> Outcome {
        self.about_the_track_playing(|_, _, track| Reply::NowPlaying(track))
            .await
    }

    /// Why the track playing was picked, from its queue's record: the request that made the
    /// queue and the reason the recommender gave for the track.
    pub(super) async fn why_this_song(&self) -> Outcome {
        self.about_the_track_playing(|queue, pos, track| {
            let seed = match &queue.selection {
                Selection::LikeTrack(id) => self.service.recommender.track(id),
                _ => None,
            };
            Reply::WhyThisSong {
                track,
                reason: queue.reason(queue.index_at(pos)),
                selection: queue.selection,
                seed,
            }
        })
        .await
    }

    /// The answer `reply` gives about the track playing (its queue, position and track), or
    /// that nothing is playing.
    async fn about_the_track_playing(
        &self,
        reply: impl FnOnce(Queue, usize, Arc<Track>) -> Reply,
    ) -> Outcome {
        match self.current().await {
            Ok(Some((queue, pos))) => match self.track(&queue, pos) {
                Some(track) => Outcome::end(Some(reply(queue, pos, track))),
                None => Outcome::ask(Reply::NothingPlaying),
            },
            Ok(None) => Outcome::ask(Reply::NothingPlaying),
            Err(_) => Outcome::end(Some(Reply::Trouble)),
        }
    }
}
