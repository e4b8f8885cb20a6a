//! Playing a selection (a mood, genre, artist, or more like the current track) or a song or
//! album asked for by name as a new queue, and saying what is playing and why.

use super::ctx::Ctx;
use super::{Outcome, PlayBehavior, Playback, QUEUE_LENGTH, Reply, UPCOMING};
use crate::domain::{Named, Queue, Reason, Reasons, Selection, Track, TrackId, Wanted};
use crate::recommend::{GOOD_MATCH, RecommendError, RecommendRequest, recommendation_id};
use std::sync::Arc;

/// How many tracks an album search looks through for the album's own.
const ALBUM_SEARCH: usize = 200;

/// What the catalog has under a name.
#[derive(Default)]
struct Found {
    /// The tracks to play first, when something matches well.
    lead: Option<Vec<Arc<Track>>>,
    /// Otherwise the nearest match, to suggest its artist.
    nearest: Option<Arc<Track>>,
}

impl Ctx<'_> {
    pub(super) async fn play(&self, selection: Selection) -> Outcome {
        let replaced = self.replaced().await;
        match self.play_replacing(selection, replaced, Vec::new()).await {
            Ok(outcome) => outcome,
            // "play hello": no artist by that name, but perhaps a song.
            Err(RecommendError::NoMatch(Selection::Artist(name))) => {
                let named = Named {
                    wanted: Wanted::Song,
                    name,
                    artist: None,
                };
                match self.find(&named).lead {
                    Some(lead) => self.play_found(lead, None).await,
                    None => Outcome::ask(Reply::NoMatch(Selection::Artist(named.name))),
                }
            }
            Err(RecommendError::NoMatch(selection)) => Outcome::ask(Reply::NoMatch(selection)),
        }
    }

    /// Plays a song or an album asked for by name, then more like it. A song that is no
    /// song may be an artist ("play adele" heard as a title); nothing that matches well is
    /// answered with the artist of the nearest match, or a mood, to ask for instead.
    pub(super) async fn play_named(&self, named: Named) -> Outcome {
        let replaced = self.replaced().await;
        let found = self.find(&named);
        if let Some(lead) = found.lead {
            return self.play_found(lead, replaced).await;
        }
        if named.wanted == Wanted::Song && named.artist.is_none() {
            let artist = Selection::Artist(named.name.clone());
            if let Ok(outcome) = self.play_replacing(artist, replaced, Vec::new()).await {
                return outcome;
            }
        }
        Outcome::ask(Reply::NotFound {
            named,
            artist: found.nearest.map(|t| t.artist.clone()),
        })
    }

    /// The queue the device is playing from, whose play the new queue ends. It is read
    /// only when the device names a stream.
    pub(super) async fn replaced(&self) -> Option<Queue> {
        match self.player.token() {
            Some(_) => self.load_queue().await.ok().flatten(),
            None => None,
        }
    }

    /// What the catalog has under a name: the tracks to play first (the song, or the
    /// album's tracks) when one matches well, else the nearest match, if any.
    fn find(&self, named: &Named) -> Found {
        let limit = match named.wanted {
            Wanted::Song => 1,
            Wanted::Album => ALBUM_SEARCH,
        };
        let hits = self.service.recommender.search(named, limit);
        let Some((best, quality)) = hits.first().cloned() else {
            return Found::default();
        };
        if quality < GOOD_MATCH {
            return Found {
                lead: None,
                nearest: Some(best),
            };
        }
        let lead = match named.wanted {
            Wanted::Song => vec![best],
            // The album's tracks all match alike; another album that shares words does not.
            Wanted::Album => hits
                .into_iter()
                .filter(|(t, _)| t.album == best.album && t.artist == best.artist)
                .map(|(t, _)| t)
                .collect(),
        };
        Found {
            lead: Some(lead),
            nearest: None,
        }
    }

    /// Plays the song or the album's tracks in `lead` first, then more like the first.
    async fn play_found(&self, lead: Vec<Arc<Track>>, replaced: Option<Queue>) -> Outcome {
        let wanted = match lead.len() {
            1 => Wanted::Song,
            _ => Wanted::Album,
        };
        let track = lead[0].clone();
        self.play_lead(lead, replaced, Reply::PlayingNamed { wanted, track })
            .await
    }

    /// Plays `lead` (not empty: a song, an album's tracks, a playlist, the favourites) first
    /// and then more like its first track, as a new queue replacing `replaced`, answering
    /// with `reply`.
    pub(super) async fn play_lead(
        &self,
        lead: Vec<Arc<Track>>,
        replaced: Option<Queue>,
        reply: Reply,
    ) -> Outcome {
        let selection = Selection::LikeTrack(lead[0].id.clone());
        match self.play_replacing(selection, replaced, lead).await {
            Ok(mut outcome) => {
                outcome.reply = Some(reply);
                outcome
            }
            // A lead always plays, with or without more like it.
            Err(_) => Outcome::end(Some(Reply::Trouble)),
        }
    }

    /// Plays `selection` as a new queue that replaces `replaced`, the device's: the play
    /// open in it has ended. Tracks in `lead` play first (asked for by name); with a lead,
    /// a selection that matches nothing more still plays the lead.
    async fn play_replacing(
        &self,
        selection: Selection,
        replaced: Option<Queue>,
        lead: Vec<Arc<Track>>,
    ) -> Result<Outcome, RecommendError> {
        if let Some(mut old) = replaced {
            self.end_open_play(&mut old).await;
        }
        let profile = self.profile().await;
        let exclude: Vec<TrackId> = lead.iter().map(|t| t.id.clone()).collect();
        let request = RecommendRequest {
            user_id: &self.listener.user_id,
            selection: &selection,
            profile: profile.as_ref(),
            exclude: &exclude,
            limit: QUEUE_LENGTH.saturating_sub(lead.len()).max(UPCOMING),
        };
        let rec = match self.service.recommend(request).await {
            Ok(rec) => Some(rec),
            Err(_) if !lead.is_empty() => None,
            Err(e) => return Err(e),
        };
        let requested = lead.into_iter().map(|t| (t, Reason::Requested));
        let picks: Vec<(Arc<Track>, Reason)> = match &rec {
            Some(rec) => requested
                .chain(rec.tracks.picks().map(|(t, why)| (t.clone(), why)))
                .collect(),
            None => requested.collect(),
        };
        let first = picks[0].0.clone();
        let (id, model_version, arm) = match rec {
            Some(rec) => (
                rec.id,
                rec.model_version,
                Some((rec.experiment, rec.variant)),
            ),
            None => (
                recommendation_id(),
                self.service.recommender.model_version(),
                None,
            ),
        };
        let mut queue = Queue::new(
            selection.clone(),
            id,
            model_version,
            picks.iter().map(|(t, _)| t.id.clone()).collect(),
        )
        .with_reasons(Reasons(picks.iter().map(|(_, why)| *why).collect()));
        queue.owner = self
            .listener
            .account_id
            .as_ref()
            .map(|_| self.listener.user_id.clone());
        if let Some((experiment, variant)) = arm {
            queue.experiment = experiment;
            queue.variant = variant;
        }
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
        outcome.upcoming = picks
            .into_iter()
            .skip(1)
            .take(UPCOMING)
            .map(|(t, _)| t)
            .collect();
        Ok(outcome)
    }

    pub(super) async fn more_like_this(&self) -> Outcome {
        match self.current().await {
            Ok(Some((queue, pos))) => {
                let seed = queue.track(queue.index_at(pos)).clone();
                match self
                    .play_replacing(Selection::LikeTrack(seed), Some(queue), Vec::new())
                    .await
                {
                    Ok(outcome) => outcome,
                    Err(RecommendError::NoMatch(s)) => Outcome::ask(Reply::NoMatch(s)),
                }
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
