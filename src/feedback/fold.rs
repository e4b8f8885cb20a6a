//! How one event changes a listener's profile. Pure: the consumer applies it exactly once per
//! event id, in the same transaction as the dedupe marker.

use super::{EventKind, FeedbackEvent};
use crate::domain::{Profile, STORED_LIMIT_BYTES, Track};

/// Affinity moves per event kind.
const FINISHED: f32 = 1.0;
const SKIPPED: f32 = -0.5;
const LIKED: f32 = 2.0;
const DISLIKED: f32 = -2.0;

/// The longest track id (as the contract says) and bandit context an event may add.
const MAX_ID_BYTES: usize = 256;

/// Folds `event` into `profile`. `track` is the catalog's track (for its genre and artist),
/// if the catalog still has it. Whatever the event holds, the profile stays within
/// `STORED_LIMIT_BYTES`: an event with a track id longer than the contract allows changes
/// nothing, one with an overlong context is counted without it, and a profile that grows
/// past the limit sheds its least useful entries.
pub fn fold(profile: &mut Profile, event: &FeedbackEvent, track: Option<&Track>) {
    if event.track_id.0.len() > MAX_ID_BYTES {
        return;
    }
    let affinity = |profile: &mut Profile, delta: f32| {
        if let Some(t) = track {
            profile.adjust_affinity(&t.genre, &t.artist, delta);
        }
    };
    let context = event
        .context
        .selection()
        .map(|s| s.context_key())
        .filter(|key| key.len() <= MAX_ID_BYTES)
        .unwrap_or_default();
    let taste = |profile: &mut Profile, weight: f32| {
        if let Some(t) = track {
            profile.add_taste(&t.features, weight);
        }
    };
    match event.kind {
        EventKind::PlayStarted => profile.played(&event.track_id),
        EventKind::PlayFinished => {
            profile.finishes += 1;
            profile.record_outcome(&event.track_id, &context, true);
            affinity(profile, FINISHED);
            taste(profile, FINISHED);
        }
        EventKind::Skipped => {
            profile.skips += 1;
            profile.record_outcome(&event.track_id, &context, false);
            affinity(profile, SKIPPED);
        }
        EventKind::Liked => {
            profile.likes += 1;
            profile.like(&event.track_id);
            affinity(profile, LIKED);
            taste(profile, LIKED);
        }
        EventKind::Disliked => {
            profile.dislikes += 1;
            profile.dislike(&event.track_id);
            affinity(profile, DISLIKED);
        }
        EventKind::Stopped | EventKind::Failed => {}
    }
    if profile.fit_within(STORED_LIMIT_BYTES) {
        metrics::counter!("encore_profiles_trimmed_total").increment(1);
        tracing::warn!(user_id = %profile.user_id, "profile trimmed to its stored size limit");
    }
}
