//! A listener's playback queue on one device, and the AudioPlayer tokens that point into it.

use super::{Reason, Reasons, Selection, TrackId};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The most tracks a queue holds (some 60 hours of music), which keeps a stored queue far
/// below a DynamoDB item's 400 KB.
pub const MAX_TRACKS: usize = 1000;

/// Where a queue is kept: one per listener and device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueKey {
    pub user_id: String,
    pub device_id: String,
}

/// A listener's playback queue on one device.
///
/// `tracks` holds what was picked, in the recommender's order; `order` is the playback order
/// (a permutation of `0..tracks.len()`, shuffled or not) and `cursor` a position in `order`.
/// Tokens handed to the device name a track index, so they stay valid across a shuffle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    pub id: String,
    pub selection: Selection,
    pub recommendation_id: String,
    pub model_version: String,
    /// The A/B experiment that served the recommendation (empty in queues stored before it
    /// was recorded).
    #[serde(default)]
    pub experiment: String,
    /// The experiment variant that served the recommendation.
    #[serde(default = "control")]
    pub variant: String,
    pub tracks: Vec<TrackId>,
    pub order: Vec<usize>,
    pub cursor: usize,
    /// Where the current track was stopped, for Resume.
    pub offset_ms: u64,
    pub shuffle: bool,
    pub looping: bool,
    /// Counts the Play directives issued, so that no two tokens are equal even when a looping
    /// queue plays the same track again.
    pub seq: u64,
    /// The play in progress on the device, from its start to its ending (none in queues
    /// stored before plays were tracked).
    #[serde(default)]
    pub open_play: Option<OpenPlay>,
    /// The token of the last play that ended, so a second report of its end is not a second
    /// ending.
    #[serde(default)]
    pub ended: Option<String>,
    /// What the device holds as its next stream, and after which stream, so a report that
    /// comes late or twice does not enqueue a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued: Option<Enqueued>,
    /// Streams that failed in a row since one last started (see `MAX_CONSECUTIVE_FAILURES`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    /// Who started the queue, when a recognised person did (their user id): the device's
    /// reports, which name no person, are theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What the listener has shown in this queue, newest last (at most `SESSION_SIGNALS`):
    /// the session's fast path re-ranks what has not played yet by it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session: Vec<Signal>,
    /// Why each track was picked, by track index (empty in queues stored before reasons
    /// were kept): "why did you play this?" answers from it.
    #[serde(default, skip_serializing_if = "Reasons::is_empty")]
    pub reasons: Reasons,
}

/// One thing the listener showed about a track in this session: a skip, a dislike or a
/// "next" counts against it (and tracks like it), a finish or a like for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub track: TrackId,
    /// Negative against, positive for.
    pub weight: f32,
}

/// The most session signals a queue keeps (the newest).
pub const SESSION_SIGNALS: usize = 32;

/// A stream handed to the device to play after another (`Enqueue`, `ReplaceEnqueued`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The token of the stream it follows.
    pub after: String,
    /// Its own token.
    pub token: String,
}

/// After this many streams in a row fail, Encore stops trying the next track (a dead CDN
/// must not walk the listener through the whole queue) and apologises instead.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 3;

/// A play that has started and not ended. The stream may stop without the play ending: the
/// listener speaking to the device ("Alexa, I like this") or pausing stops it, and it starts
/// again from where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenPlay {
    /// The token of the stream playing it (a resume carries the play to the new stream's).
    pub token: String,
    /// How far it had played when its stream last stopped.
    pub offset_ms: u64,
    /// When its stream last stopped (Unix milliseconds), while it is stopped.
    pub stopped_at_ms: Option<i64>,
}

/// A play whose stream has been stopped this long (a pause nobody came back to) is over:
/// its ending is recorded at the next report or request about the queue, and a later resume
/// is a new play. Half an hour: longer than a phone call or a meal's interruption, shorter
/// than the gap between two listening sessions.
pub const ABANDONED_AFTER_MS: i64 = 30 * 60 * 1000;

impl OpenPlay {
    /// Whether its stream has been stopped for `ABANDONED_AFTER_MS` at `now_ms`.
    pub fn is_abandoned(&self, now_ms: i64) -> bool {
        self.stopped_at_ms
            .is_some_and(|at| now_ms.saturating_sub(at) >= ABANDONED_AFTER_MS)
    }
}

impl Queue {
    /// A queue over `tracks`, which must not be empty.
    pub fn new(
        selection: Selection,
        recommendation_id: String,
        model_version: String,
        tracks: Vec<TrackId>,
    ) -> Self {
        debug_assert!(!tracks.is_empty());
        let id = format!("{:08x}", rand::rng().random::<u32>());
        Queue {
            id,
            selection,
            recommendation_id,
            model_version,
            experiment: String::new(),
            variant: control(),
            order: (0..tracks.len()).collect(),
            tracks,
            cursor: 0,
            offset_ms: 0,
            shuffle: false,
            looping: false,
            seq: 0,
            open_play: None,
            ended: None,
            enqueued: None,
            failures: 0,
            session: Vec::new(),
            owner: None,
            reasons: Reasons::default(),
        }
    }

    /// The queue with why each of its tracks was picked (one reason per track, in order).
    pub fn with_reasons(mut self, reasons: Reasons) -> Self {
        debug_assert_eq!(reasons.len(), self.tracks.len());
        self.reasons = reasons;
        self
    }

    /// Why the track at `index` was picked.
    pub fn reason(&self, index: usize) -> Reason {
        self.reasons.get(index)
    }

    /// Whether the invariants hold: tracks, `order` a permutation of their indices, the cursor
    /// inside it. A stored queue that breaks them is not used.
    pub fn is_consistent(&self) -> bool {
        let mut seen = vec![false; self.tracks.len()];
        let permutation = self.order.len() == self.tracks.len()
            && self
                .order
                .iter()
                .all(|&i| i < seen.len() && !std::mem::replace(&mut seen[i], true));
        let reasons = self.reasons.is_empty() || self.reasons.len() == self.tracks.len();
        !self.tracks.is_empty() && permutation && reasons && self.cursor < self.order.len()
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Track index at playback position `pos`.
    pub fn index_at(&self, pos: usize) -> usize {
        self.order[pos]
    }

    pub fn current_index(&self) -> usize {
        self.order[self.cursor]
    }

    pub fn track(&self, index: usize) -> &TrackId {
        &self.tracks[index]
    }

    pub fn current_track(&self) -> &TrackId {
        self.track(self.current_index())
    }

    /// The playback position after `pos`, wrapping around when looping.
    pub fn next_position(&self, pos: usize) -> Option<usize> {
        if pos + 1 < self.order.len() {
            Some(pos + 1)
        } else if self.looping && !self.order.is_empty() {
            Some(0)
        } else {
            None
        }
    }

    /// The playback position before `pos`, wrapping around when looping.
    pub fn previous_position(&self, pos: usize) -> Option<usize> {
        if pos > 0 {
            Some(pos - 1)
        } else if self.looping && !self.order.is_empty() {
            Some(self.order.len() - 1)
        } else {
            None
        }
    }

    /// The sequence number of the newest stream the device is known to have played: the
    /// open play's, else the last ended one's. (An enqueued stream can fail, and so end,
    /// while an older one plays on: the open play comes first.)
    pub fn newest_played_seq(&self) -> Option<u64> {
        let seq = |t: &String| t.parse::<Token>().ok().map(|t| t.seq);
        match &self.open_play {
            Some(open) => seq(&open.token),
            None => self.ended.as_ref().and_then(seq),
        }
    }

    /// Records what the listener showed about `track`, keeping the newest `SESSION_SIGNALS`.
    pub fn note(&mut self, track: &TrackId, weight: f32) {
        if self.session.len() >= SESSION_SIGNALS {
            self.session.remove(0);
        }
        self.session.push(Signal {
            track: track.clone(),
            weight,
        });
    }

    /// Puts what follows playback position `pos` in order of `score` (highest first; ties
    /// keep their order). Tokens name track indices, so every token stays valid.
    pub fn reorder_after(&mut self, pos: usize, score: impl Fn(usize, &TrackId) -> f32) {
        let Some(rest) = self.order.get(pos + 1..) else {
            return;
        };
        let mut scored: Vec<(f32, usize)> = rest
            .iter()
            .enumerate()
            .map(|(rank, &ix)| (score(rank, &self.tracks[ix]), ix))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (slot, (_, ix)) in self.order[pos + 1..].iter_mut().zip(scored) {
            *slot = ix;
        }
    }

    /// Makes `pos` the current position, from the start of its track.
    pub fn move_to(&mut self, pos: usize) {
        self.cursor = pos;
        self.offset_ms = 0;
    }

    /// A fresh token for the track at playback position `pos`.
    pub fn token_for(&mut self, pos: usize) -> Token {
        self.seq += 1;
        let index = self.order[pos];
        Token {
            queue_id: self.id.clone(),
            seq: self.seq,
            index,
            track_id: self.tracks[index].clone(),
        }
    }

    /// The playback position a token refers to, if it belongs to this queue.
    pub fn position_of(&self, token: &Token) -> Option<usize> {
        if token.queue_id != self.id || self.tracks.get(token.index) != Some(&token.track_id) {
            return None;
        }
        self.order.iter().position(|&i| i == token.index)
    }

    /// Adds tracks, each with why it was picked, at the end of the playback order, skipping
    /// any already queued, up to `MAX_TRACKS` in all.
    pub fn extend(&mut self, more: impl IntoIterator<Item = (TrackId, Reason)>) -> usize {
        // A queue stored before reasons were kept gets them from here on.
        self.reasons.0.resize(self.tracks.len(), Reason::Unrecorded);
        let mut added = 0;
        for (track, reason) in more {
            if self.tracks.len() >= MAX_TRACKS {
                break;
            }
            if !self.tracks.contains(&track) {
                self.order.push(self.tracks.len());
                self.tracks.push(track);
                self.reasons.0.push(reason);
                added += 1;
            }
        }
        added
    }

    /// Shuffle on: the current track stays current and everything else follows in random
    /// order. Shuffle off: the recommender's order again, at the current track.
    pub fn set_shuffle(&mut self, on: bool, rng: &mut impl Rng) {
        let current = self.current_index();
        if on {
            let mut rest: Vec<usize> = (0..self.tracks.len()).filter(|&i| i != current).collect();
            rest.shuffle(rng);
            self.order = std::iter::once(current).chain(rest).collect();
            self.cursor = 0;
        } else {
            self.order = (0..self.tracks.len()).collect();
            self.cursor = current;
        }
        self.shuffle = on;
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn control() -> String {
    "control".to_owned()
}

/// The AudioPlayer token: `queue:seq:index:track`. It names the queue it came from, so a
/// report about an old queue's track is recognised as stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub queue_id: String,
    pub seq: u64,
    pub index: usize,
    pub track_id: TrackId,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.queue_id, self.seq, self.index, self.track_id
        )
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not an Encore playback token")]
pub struct BadToken;

impl FromStr for Token {
    type Err = BadToken;
    fn from_str(s: &str) -> Result<Self, BadToken> {
        let mut parts = s.splitn(4, ':');
        let queue_id = parts.next().filter(|p| !p.is_empty()).ok_or(BadToken)?;
        let seq = parts.next().and_then(|p| p.parse().ok()).ok_or(BadToken)?;
        let index = parts.next().and_then(|p| p.parse().ok()).ok_or(BadToken)?;
        let track = parts.next().filter(|p| !p.is_empty()).ok_or(BadToken)?;
        Ok(Token {
            queue_id: queue_id.to_owned(),
            seq,
            index,
            track_id: TrackId(track.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Mood;

    fn queue(n: usize) -> Queue {
        let tracks = (0..n).map(|i| TrackId(format!("t{i}"))).collect();
        Queue::new(Selection::Mood(Mood::Happy), "r".into(), "m".into(), tracks)
    }

    fn is_permutation(q: &Queue) -> bool {
        let mut o = q.order.clone();
        o.sort_unstable();
        o == (0..q.len()).collect::<Vec<_>>()
    }

    #[test]
    fn next_stops_at_the_end_unless_looping() {
        let mut q = queue(3);
        assert_eq!(q.next_position(1), Some(2));
        assert_eq!(q.next_position(2), None);
        q.looping = true;
        assert_eq!(q.next_position(2), Some(0));
        assert_eq!(q.previous_position(0), Some(2));
        q.looping = false;
        assert_eq!(q.previous_position(0), None);
    }

    #[test]
    fn shuffle_keeps_the_current_track_and_every_track_once() {
        let mut q = queue(20);
        q.move_to(7);
        let current = q.current_track().clone();
        q.set_shuffle(true, &mut rand::rng());
        assert_eq!(q.current_track(), &current);
        assert!(is_permutation(&q));
        q.move_to(5);
        let current = q.current_track().clone();
        q.set_shuffle(false, &mut rand::rng());
        assert_eq!(q.current_track(), &current);
        assert_eq!(q.order, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn tokens_round_trip_and_survive_a_shuffle() {
        let mut q = queue(10);
        let token = q.token_for(4);
        let parsed: Token = token.to_string().parse().unwrap();
        assert_eq!(parsed, token);
        q.move_to(4);
        q.set_shuffle(true, &mut rand::rng());
        let pos = q.position_of(&parsed).unwrap();
        assert_eq!(q.track(q.index_at(pos)), &TrackId("t4".into()));
    }

    #[test]
    fn a_token_from_another_queue_is_not_recognised() {
        let mut a = queue(3);
        let b = queue(3);
        let token = a.token_for(0);
        assert_eq!(b.position_of(&token), None);
        assert!("garbage".parse::<Token>().is_err());
    }

    #[test]
    fn broken_queues_are_recognised() {
        let mut q = queue(3);
        assert!(q.is_consistent());
        q.cursor = 3;
        assert!(!q.is_consistent());
        let mut q = queue(3);
        q.order = vec![0, 0, 1];
        assert!(!q.is_consistent());
        let mut q = queue(3);
        q.order.pop();
        assert!(!q.is_consistent());
    }

    #[test]
    fn a_queue_never_grows_past_its_limit() {
        let mut q = queue(MAX_TRACKS - 2);
        let added = q.extend((0..10).map(|i| (TrackId(format!("new{i}")), Reason::Popular)));
        assert_eq!((added, q.len()), (2, MAX_TRACKS));
        assert!(q.is_consistent());
        let item = serde_json::to_vec(&q).unwrap();
        assert!(item.len() < 100 * 1024, "{} bytes", item.len());
    }

    #[test]
    fn extend_skips_tracks_already_queued() {
        let mut q = queue(3);
        let added = q.extend(vec![
            (TrackId("t1".into()), Reason::Genre),
            (TrackId("x".into()), Reason::Artist),
        ]);
        assert_eq!(added, 1);
        assert_eq!(q.len(), 4);
        assert!(is_permutation(&q));
        assert!(q.is_consistent());
        assert_eq!(
            (q.reason(0), q.reason(3)),
            (Reason::Unrecorded, Reason::Artist),
            "a queue without reasons keeps its tracks unrecorded and records the new ones"
        );
    }
}
