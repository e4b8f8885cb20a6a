//! A listener's profile: opinions, recent plays, preferences, and the version used for
//! optimistic locking.

use super::TrackId;
use serde::{Deserialize, Serialize};

/// How many recently played tracks a profile remembers (bounded so a stored item stays small).
pub const RECENT_LIMIT: usize = 100;
const OPINION_LIMIT: usize = 500;

/// What Encore knows about a listener. `version` is the optimistic-locking counter: a store
/// refuses a write whose version does not follow the stored one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub user_id: String,
    pub version: u64,
    pub explicit_allowed: bool,
    pub liked: Vec<TrackId>,
    pub disliked: Vec<TrackId>,
    /// Most recent first.
    pub recent: Vec<TrackId>,
    pub plays: u64,
}

impl Profile {
    pub fn new(user_id: impl Into<String>) -> Self {
        Profile {
            user_id: user_id.into(),
            version: 0,
            explicit_allowed: true,
            liked: Vec::new(),
            disliked: Vec::new(),
            recent: Vec::new(),
            plays: 0,
        }
    }

    pub fn like(&mut self, track: &TrackId) {
        self.disliked.retain(|t| t != track);
        push_bounded(&mut self.liked, track, OPINION_LIMIT);
    }

    pub fn dislike(&mut self, track: &TrackId) {
        self.liked.retain(|t| t != track);
        push_bounded(&mut self.disliked, track, OPINION_LIMIT);
    }

    pub fn played(&mut self, track: &TrackId) {
        self.plays += 1;
        push_bounded(&mut self.recent, track, RECENT_LIMIT);
    }

    pub fn dislikes(&self, track: &TrackId) -> bool {
        self.disliked.contains(track)
    }
}

/// Moves `track` to the front of `list`, keeping at most `limit` entries.
fn push_bounded(list: &mut Vec<TrackId>, track: &TrackId, limit: usize) {
    list.retain(|t| t != track);
    list.insert(0, track.clone());
    list.truncate(limit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_history_is_bounded_and_most_recent_first() {
        let mut p = Profile::new("u");
        for i in 0..(RECENT_LIMIT + 10) {
            p.played(&TrackId(format!("t{i}")));
        }
        assert_eq!(p.recent.len(), RECENT_LIMIT);
        assert_eq!(p.recent[0], TrackId(format!("t{}", RECENT_LIMIT + 9)));
        assert_eq!(p.plays, (RECENT_LIMIT + 10) as u64);
    }

    #[test]
    fn liking_a_disliked_track_reverses_the_opinion() {
        let mut p = Profile::new("u");
        let t = TrackId("a".into());
        p.dislike(&t);
        p.like(&t);
        assert!(!p.dislikes(&t));
        assert_eq!(p.liked, vec![t]);
    }
}
