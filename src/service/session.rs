//! The listening session's fast path. What the listener shows in a queue (a skip, a
//! dislike or a "next" against a track; a finish or a like for it) is noted in the queue,
//! and before the next track is chosen what has not played yet is re-ranked by it: tracks
//! by the same artist, of the same genre or near in audio features move with the signal.
//! The profile and the bandit learn from the same events through the consumer, later; this
//! works within the request that reports the event.

use super::QUEUE_LENGTH;
use crate::domain::{AudioFeatures, Queue, Track, TrackId, TrackLookup};
use crate::feedback::EventKind;
use std::sync::Arc;

/// How many tracks not yet played the re-ranking chooses among once the listener has
/// skipped: a queue with fewer gets more of its selection first (the recommender's next
/// best), so that what fits the session can come from deeper than the first 25.
const DEPTH: usize = 4 * QUEUE_LENGTH;

/// How much one place in the recommender's order weighs against the session: a track
/// like a skipped one (same genre, near features) falls some 50 places.
const RANK_STEP: f32 = 0.02;

/// How much the audio features weigh, against the averaged signals of each side.
const FEATURE_WEIGHT: f32 = 2.0;

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

/// How alike two tracks are by what they are, 0 to 1.6: the same artist (1), the same
/// genre (0.6).
fn kinship(a: &Track, b: &Track) -> f32 {
    let same = |p: &str, q: &str| !p.is_empty() && p.eq_ignore_ascii_case(q);
    let artist = if same(&a.artist, &b.artist) { 1.0 } else { 0.0 };
    let genre = if same(&a.genre, &b.genre) { 0.6 } else { 0.0 };
    artist + genre
}

/// How near two tracks are in each audio feature, 0 to 1 apiece (a triangle kernel a
/// fifth of the scale wide; tempo over 30 BPM).
fn nearness(a: &AudioFeatures, b: &AudioFeatures) -> [f32; 6] {
    let k = |x: f32, y: f32, h: f32| (1.0 - (x - y).abs() / h).max(0.0);
    [
        k(a.valence, b.valence, 0.2),
        k(a.energy, b.energy, 0.2),
        k(a.tempo, b.tempo, 30.0),
        k(a.danceability, b.danceability, 0.2),
        k(a.acousticness, b.acousticness, 0.2),
        k(a.instrumentalness, b.instrumentalness, 0.2),
    ]
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

/// Re-orders what follows `pos` by the session's signals, against `RANK_STEP` per place.
/// A track moves by the sum of the signals times its kinship to their tracks (artist,
/// genre), and by each audio feature on its own: how near it is to the liked tracks'
/// values on average, less how near to the skipped tracks'. Features are weighed apart and
/// the two sides averaged, so a feature the listener does not care about (skipped and
/// finished tracks spread alike over it) cancels out, and the one they do care about adds up.
pub(super) fn rerank(queue: &mut Queue, pos: usize, tracks: &dyn TrackLookup) {
    let signals: Vec<(Arc<Track>, f32)> = queue
        .session
        .iter()
        .filter_map(|s| Some((tracks.track(&s.track)?, s.weight)))
        .collect();
    let side = |positive: bool| -> f32 {
        signals
            .iter()
            .filter(|(_, w)| (*w > 0.0) == positive)
            .map(|(_, w)| w.abs())
            .sum::<f32>()
            .max(1.0)
    };
    let (liked, skipped) = (side(true), side(false));
    queue.reorder_after(pos, |rank, id| {
        let session: f32 = tracks.track(id).map_or(0.0, |t| {
            signals
                .iter()
                .map(|(s, w)| {
                    let near: f32 = nearness(&t.features, &s.features).iter().sum();
                    let per_side = if *w > 0.0 { liked } else { skipped };
                    w * kinship(&t, s) + FEATURE_WEIGHT * w / per_side * near
                })
                .sum()
        });
        session - RANK_STEP * rank as f32
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Mood, Selection};

    fn track(artist: &str, genre: &str, energy: f32) -> Track {
        let mut t = Track::sample(&format!("{artist}-{genre}-{energy}"), artist, genre);
        t.features.energy = energy;
        t
    }

    #[test]
    fn the_same_artist_then_the_same_genre_are_kin() {
        let a = track("A", "rock", 0.8);
        assert!(kinship(&a, &track("A", "rock", 0.1)) > kinship(&a, &track("B", "rock", 0.8)));
        assert!(kinship(&a, &track("B", "rock", 0.1)) > kinship(&a, &track("B", "jazz", 0.8)));
        assert_eq!(kinship(&a, &track("B", "jazz", 0.8)), 0.0);
    }

    #[test]
    fn each_feature_is_near_on_its_own() {
        let a = track("A", "rock", 0.8).features;
        let near = nearness(&a, &track("B", "jazz", 0.75).features);
        assert!(near[1] > 0.5 && near[1] < 1.0);
        assert_eq!(near[0], 1.0);
        assert_eq!(nearness(&a, &track("B", "jazz", 0.2).features)[1], 0.0);
    }

    struct Lookup(Vec<Arc<Track>>);

    impl TrackLookup for Lookup {
        fn track(&self, id: &TrackId) -> Option<Arc<Track>> {
            self.0.iter().find(|t| &t.id == id).cloned()
        }
    }

    /// A track of energy `energy` that differs from the session's tracks in danceability
    /// and acousticness (`odd`), so that by all six features at once it is near none of them.
    fn candidate(name: &str, energy: f32, odd: bool) -> Track {
        let mut t = track(name, "pop", energy);
        let (x, y) = if odd { (0.95, 0.05) } else { (0.05, 0.95) };
        t.features.danceability = x;
        t.features.acousticness = y;
        t
    }

    #[test]
    fn the_one_feature_the_listener_cares_about_reorders_the_rest() {
        // Skipped two loud tracks and finished two quiet ones, of two genres and valences each.
        let mut played = Vec::new();
        for (name, energy, valence, genre) in [
            ("loud-1", 0.9, 0.2, "rock"),
            ("quiet-1", 0.2, 0.2, "rock"),
            ("loud-2", 0.9, 0.8, "jazz"),
            ("quiet-2", 0.2, 0.8, "jazz"),
        ] {
            let mut t = track(name, genre, energy);
            t.features.valence = valence;
            t.features.danceability = 0.5;
            t.features.acousticness = 0.5;
            played.push(t);
        }
        // What is left, the loud ones first in the recommender's order.
        let left = [
            candidate("next-loud-1", 0.85, true),
            candidate("next-loud-2", 0.95, false),
            candidate("next-loud-3", 0.8, true),
            candidate("next-quiet-1", 0.25, false),
            candidate("next-quiet-2", 0.15, true),
            candidate("next-quiet-3", 0.2, false),
        ];
        let all: Vec<Arc<Track>> = played.into_iter().chain(left).map(Arc::new).collect();
        let ids = all.iter().map(|t| t.id.clone()).collect();
        let mut queue = Queue::new(Selection::Mood(Mood::Relaxing), "r".into(), "m".into(), ids);
        for t in &all[..4] {
            let kind = match t.features.energy > 0.5 {
                true => EventKind::Skipped,
                false => EventKind::PlayFinished,
            };
            note(&mut queue, &t.id, kind);
        }

        rerank(&mut queue, 3, &Lookup(all.clone()));

        let next: Vec<&str> = (4..7)
            .map(|pos| queue.track(queue.index_at(pos)).0.as_str())
            .collect();
        assert!(next.iter().all(|n| n.starts_with("next-quiet")), "{next:?}");
        let current = &queue.track(queue.index_at(3)).0;
        assert!(
            current.starts_with("quiet-2"),
            "what played stays, not {current}"
        );
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
