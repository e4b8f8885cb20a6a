//! The listening session's fast path. What the listener shows in a queue (a skip, a
//! dislike or a "next" against a track; a finish or a like for it) is noted in the queue,
//! and before the next track is chosen what has not played yet is re-ranked by it: tracks
//! by the same artist, of the same genre or near in audio features move with the signal.
//! The profile and the bandit learn from the same events through the consumer, later; this
//! works within the request that reports the event.

use super::QUEUE_LENGTH;
use crate::domain::{Queue, Track, TrackId, TrackLookup};
use crate::feedback::EventKind;
use std::sync::Arc;

/// How many tracks not yet played the re-ranking chooses among once the listener has
/// skipped: a queue with fewer gets more of its selection first (the recommender's next
/// best), so that what fits the session can come from deeper than the first 25.
const DEPTH: usize = 4 * QUEUE_LENGTH;

/// How much one place in the recommender's order weighs against the session: a track
/// like a skipped one (same genre, near features) falls some 50 places.
const RANK_STEP: f32 = 0.02;

/// What an event says about its track, for the session: negative against.
fn weight(kind: EventKind) -> Option<f32> {
    match kind {
        EventKind::Skipped => Some(-1.0),
        // Moved on after 30 s: a weaker "not this".
        EventKind::Stopped => Some(-0.3),
        EventKind::Disliked => Some(-2.0),
        EventKind::PlayFinished => Some(0.5),
        EventKind::Liked => Some(1.5),
        _ => None,
    }
}

/// Notes in `queue` what event `kind` about `track` says, if anything.
pub(super) fn note(queue: &mut Queue, track: &TrackId, kind: EventKind) {
    if let Some(w) = weight(kind) {
        queue.note(track, w);
    }
}

/// How alike two tracks are, 0 to 2.2: the same artist (1), the same genre (0.6), and
/// closeness in audio features (up to 0.6).
fn likeness(a: &Track, b: &Track) -> f32 {
    let d = a.features.distance(&b.features);
    let same = |p: &str, q: &str| !p.is_empty() && p.eq_ignore_ascii_case(q);
    let artist = if same(&a.artist, &b.artist) { 1.0 } else { 0.0 };
    let genre = if same(&a.genre, &b.genre) { 0.6 } else { 0.0 };
    artist + genre + 0.6 * (1.0 - (d / 0.5).min(1.0))
}

/// Whether the queue is re-ranked before the next track after `pos` is chosen: the
/// session has signals and the queue is not shuffled. With `Some(n)`, `n` more tracks of
/// its selection are wanted first: the listener has skipped, and fewer than `DEPTH / 2`
/// are left to choose among.
pub(super) fn wants(queue: &Queue, pos: usize) -> Option<usize> {
    if queue.shuffle || queue.session.is_empty() {
        return None;
    }
    let skipped = queue.session.iter().any(|s| s.weight < 0.0);
    let left = queue.len().saturating_sub(pos + 1);
    Some(match skipped && left < DEPTH / 2 {
        true => DEPTH - left,
        false => 0,
    })
}

/// Re-orders what follows `pos` by the session's signals: each track moves by the sum of
/// the signals times its likeness to their tracks, against `RANK_STEP` per place.
pub(super) fn rerank(queue: &mut Queue, pos: usize, tracks: &dyn TrackLookup) {
    let signals: Vec<(Arc<Track>, f32)> = queue
        .session
        .iter()
        .filter_map(|s| Some((tracks.track(&s.track)?, s.weight)))
        .collect();
    queue.reorder_after(pos, |rank, id| {
        let session: f32 = tracks.track(id).map_or(0.0, |t| {
            signals.iter().map(|(s, w)| w * likeness(&t, s)).sum()
        });
        session - RANK_STEP * rank as f32
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(artist: &str, genre: &str, energy: f32) -> Track {
        let mut t = Track::sample(&format!("{artist}-{genre}-{energy}"), artist, genre);
        t.features.energy = energy;
        t
    }

    #[test]
    fn the_same_artist_and_genre_and_near_features_are_most_alike() {
        let a = track("A", "rock", 0.8);
        assert!(likeness(&a, &track("A", "rock", 0.8)) > likeness(&a, &track("B", "rock", 0.8)));
        assert!(likeness(&a, &track("B", "rock", 0.8)) > likeness(&a, &track("B", "jazz", 0.8)));
        assert!(likeness(&a, &track("B", "jazz", 0.8)) > likeness(&a, &track("B", "jazz", 0.2)));
        assert_eq!(likeness(&a, &track("B", "jazz", 0.1)), 0.0);
    }

    #[test]
    fn only_what_the_listener_showed_is_a_signal() {
        assert!(weight(EventKind::Skipped).unwrap() < 0.0);
        assert!(weight(EventKind::Disliked).unwrap() < weight(EventKind::Skipped).unwrap());
        assert!(weight(EventKind::PlayFinished).unwrap() > 0.0);
        assert_eq!(weight(EventKind::PlayStarted), None);
        assert_eq!(weight(EventKind::Failed), None);
    }
}
