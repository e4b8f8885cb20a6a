//! A listener's profile: opinions, recent plays, preferences, and the version used for
//! optimistic locking.

use super::{AudioFeatures, TrackId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// How many recently played tracks a profile remembers (bounded so a stored item stays small).
pub const RECENT_LIMIT: usize = 100;
const OPINION_LIMIT: usize = 500;
/// Finished, skipped, liked and disliked plays after which a listener is no longer new.
pub const KNOWN_AFTER: u64 = 3;
/// How many genres and artists a profile keeps an affinity for (the strongest ones).
pub const AFFINITY_LIMIT: usize = 100;
/// How many (track, context) pairs a profile keeps bandit counters for (the most played ones).
pub const BANDIT_LIMIT: usize = 500;
/// How many tracks a precomputed recommendation list holds at most.
pub const PRECOMPUTED_LIMIT: usize = 100;
/// The weight at which the taste centroid stops slowing down: newer plays keep moving it.
const TASTE_MEMORY: f32 = 50.0;
/// The most a stored profile may weigh, roughly as JSON, whatever events arrive: well inside
/// DynamoDB's 400 KB item limit, and small enough that one listener cannot slow down the
/// embedded store's writes for others. The counts above bound each collection; this bounds
/// them together, whatever the length of the ids in them.
pub const STORED_LIMIT_BYTES: usize = 192 * 1024;
/// What an entry costs besides its strings (quotes, separators, a number or two).
const ENTRY_OVERHEAD: usize = 16;

/// Finished and skipped plays of one track: a Beta posterior's evidence for the bandit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayOutcomes {
    pub finished: u32,
    pub skipped: u32,
}

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
    #[serde(default)]
    pub finishes: u64,
    #[serde(default)]
    pub skips: u64,
    #[serde(default)]
    pub likes: u64,
    #[serde(default)]
    pub dislikes: u64,
    /// Genre -> affinity (positive: liked and finished, negative: skipped and disliked).
    #[serde(default)]
    pub genres: BTreeMap<String, f32>,
    /// Artist -> affinity, as for genres.
    #[serde(default)]
    pub artists: BTreeMap<String, f32>,
    /// `track:context` -> finished and skipped plays, for the exploration bandit (see
    /// `bandit_key`; keys without a context come from before contexts were kept).
    #[serde(default)]
    pub bandit: BTreeMap<String, PlayOutcomes>,
    /// The audio-feature centroid of the tracks the listener finished and liked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taste: Option<Taste>,
    /// Genres the listener said they prefer (the app's settings), lower case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_genres: Vec<String>,
    /// A list made offline by `encore batch-recommend`, used while fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precomputed: Option<Precomputed>,
}

/// A running mean of audio features, weighted by how strongly each track was liked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Taste {
    pub weight: f32,
    pub features: AudioFeatures,
}

/// Recommendations computed offline for one listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Precomputed {
    pub model_version: String,
    /// Unix seconds.
    pub created_at: i64,
    pub tracks: Vec<TrackId>,
}

/// The bandit counter key of `track` played in `context` (see `Selection::context_key`).
/// Track ids never contain `:`.
pub fn bandit_key(track: &TrackId, context: &str) -> String {
    format!("{}:{context}", track.0)
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
            finishes: 0,
            skips: 0,
            likes: 0,
            dislikes: 0,
            genres: BTreeMap::new(),
            artists: BTreeMap::new(),
            bandit: BTreeMap::new(),
            taste: None,
            preferred_genres: Vec::new(),
            precomputed: None,
        }
    }

    /// Whether the profile holds enough history to personalize on.
    pub fn is_known(&self) -> bool {
        self.finishes + self.likes + self.skips + self.dislikes >= KNOWN_AFTER
    }

    /// Moves the taste centroid towards `features` with `weight`.
    pub fn add_taste(&mut self, features: &AudioFeatures, weight: f32) {
        let taste = self.taste.get_or_insert(Taste {
            weight: 0.0,
            features: *features,
        });
        let w = weight / (taste.weight + weight);
        let f = &mut taste.features;
        for (mine, theirs) in [
            (&mut f.valence, features.valence),
            (&mut f.energy, features.energy),
            (&mut f.tempo, features.tempo),
            (&mut f.danceability, features.danceability),
            (&mut f.acousticness, features.acousticness),
            (&mut f.instrumentalness, features.instrumentalness),
        ] {
            *mine += w * (theirs - *mine);
        }
        taste.weight = (taste.weight + weight).min(TASTE_MEMORY);
    }

    /// Finished and skipped plays in `context`, by track id: read once per ranking instead
    /// of one key lookup per candidate.
    pub fn outcomes_in(&self, context: &str) -> HashMap<&str, PlayOutcomes> {
        self.bandit
            .iter()
            .filter_map(|(key, o)| {
                let (track, ctx) = key.split_once(':')?;
                (ctx == context).then_some((track, *o))
            })
            .collect()
    }

    /// Moves the affinities for `genre` and `artist` by `delta`, keeping the strongest
    /// `AFFINITY_LIMIT` of each.
    pub fn adjust_affinity(&mut self, genre: &str, artist: &str, delta: f32) {
        for (map, key) in [(&mut self.genres, genre), (&mut self.artists, artist)] {
            *map.entry(key.to_owned()).or_default() += delta;
            if map.len() > AFFINITY_LIMIT {
                let weakest = map
                    .iter()
                    .min_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .map(|(k, _)| k.clone());
                if let Some(k) = weakest {
                    map.remove(&k);
                }
            }
        }
    }

    /// Records a finished (`true`) or skipped play of `track` in `context` for the bandit,
    /// keeping the `BANDIT_LIMIT` pairs with the most evidence.
    pub fn record_outcome(&mut self, track: &TrackId, context: &str, finished: bool) {
        let key = bandit_key(track, context);
        let entry = self.bandit.entry(key.clone()).or_default();
        if finished {
            entry.finished += 1;
        } else {
            entry.skipped += 1;
        }
        if self.bandit.len() > BANDIT_LIMIT {
            let least = self
                .bandit
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, o)| o.finished + o.skipped)
                .map(|(t, _)| t.clone());
            if let Some(t) = least {
                self.bandit.remove(&t);
            }
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

    /// The tracks the profile remembers the listener hearing: recent plays, likes,
    /// dislikes and every track with a finished or skipped play in any context. Each list
    /// is bounded (`RECENT_LIMIT`, `OPINION_LIMIT`, `BANDIT_LIMIT`), so a long history's
    /// oldest plays are forgotten.
    pub fn heard(&self) -> std::collections::HashSet<&str> {
        let opinions = self.recent.iter().chain(&self.liked).chain(&self.disliked);
        let played = self
            .bandit
            .keys()
            .map(|key| key.split_once(':').map_or(key.as_str(), |(track, _)| track));
        opinions.map(|t| t.0.as_str()).chain(played).collect()
    }

    /// About what the profile weighs stored (its strings and a fixed cost per entry).
    pub fn approximate_bytes(&self) -> usize {
        let ids =
            |list: &[TrackId]| -> usize { list.iter().map(|t| t.0.len() + ENTRY_OVERHEAD).sum() };
        let keys = |map: &BTreeMap<String, f32>| -> usize {
            map.keys().map(|k| k.len() + ENTRY_OVERHEAD).sum()
        };
        let precomputed = self
            .precomputed
            .as_ref()
            .map_or(0, |p| p.model_version.len() + ids(&p.tracks));
        1024 + self.user_id.len()
            + ids(&self.liked)
            + ids(&self.disliked)
            + ids(&self.recent)
            + keys(&self.genres)
            + keys(&self.artists)
            + self
                .bandit
                .keys()
                .map(|k| k.len() + 2 * ENTRY_OVERHEAD)
                .sum::<usize>()
            + self
                .preferred_genres
                .iter()
                .map(|g| g.len() + ENTRY_OVERHEAD)
                .sum::<usize>()
            + precomputed
    }

    /// Sheds the least useful entries until the profile weighs at most `limit` bytes
    /// (`approximate_bytes`): a quarter of the bandit counters with the least evidence, then
    /// of the weakest affinities, then the oldest plays and opinions, in rounds. Counts and
    /// the taste centroid are kept. Returns whether anything was shed.
    pub fn fit_within(&mut self, limit: usize) -> bool {
        let mut shed = false;
        while self.approximate_bytes() > limit {
            let before = self.approximate_bytes();
            shed_quarter_by(&mut self.bandit, |o| o.finished + o.skipped);
            shed_weakest_quarter(&mut self.genres);
            shed_weakest_quarter(&mut self.artists);
            for list in [&mut self.recent, &mut self.liked, &mut self.disliked] {
                list.truncate(list.len() - list.len().div_ceil(4));
            }
            if let Some(p) = &mut self.precomputed {
                p.tracks.truncate(p.tracks.len() / 2);
            }
            shed = true;
            if self.approximate_bytes() >= before {
                break;
            }
        }
        shed
    }
}

/// Removes the quarter (rounded up) of `map`'s entries with the least `evidence`.
fn shed_quarter_by<V>(map: &mut BTreeMap<String, V>, evidence: impl Fn(&V) -> u32) {
    let mut order: Vec<(u32, String)> = map.iter().map(|(k, v)| (evidence(v), k.clone())).collect();
    order.sort_unstable();
    for (_, k) in order.into_iter().take(map.len().div_ceil(4)) {
        map.remove(&k);
    }
}

/// Removes the quarter (rounded up) of the affinities nearest zero.
fn shed_weakest_quarter(map: &mut BTreeMap<String, f32>) {
    let mut order: Vec<(f32, String)> = map.iter().map(|(k, v)| (v.abs(), k.clone())).collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    for (_, k) in order.into_iter().take(map.len().div_ceil(4)) {
        map.remove(&k);
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
    fn affinities_and_bandit_counters_stay_bounded() {
        let mut p = Profile::new("u");
        for i in 0..(AFFINITY_LIMIT + 20) {
            p.adjust_affinity(&format!("g{i}"), &format!("a{i}"), 1.0 + i as f32);
        }
        assert_eq!(p.genres.len(), AFFINITY_LIMIT);
        assert!(!p.genres.contains_key("g0"), "the weakest goes");
        for i in 0..(BANDIT_LIMIT + 20) {
            p.record_outcome(&TrackId(format!("t{i}")), "mood=happy", i % 2 == 0);
        }
        assert_eq!(p.bandit.len(), BANDIT_LIMIT);
        let item = serde_json::to_vec(&p).unwrap();
        assert!(item.len() < 100 * 1024, "{} bytes", item.len());
    }

    #[test]
    fn a_profile_of_the_longest_ids_sheds_its_least_useful_entries_to_fit() {
        let mut p = Profile::new("u");
        let long = |i: usize| TrackId(format!("{i:0>256}"));
        for i in 0..(OPINION_LIMIT * 2 + RECENT_LIMIT + BANDIT_LIMIT) {
            p.like(&long(i));
            p.dislike(&long(i + 100_000));
            p.played(&long(i));
            p.record_outcome(&long(i), &format!("genre={}", "g".repeat(256)), i % 3 == 0);
        }
        assert!(
            p.approximate_bytes() > STORED_LIMIT_BYTES,
            "the attack is too small"
        );
        let finished_best = p
            .bandit
            .iter()
            .max_by_key(|(_, o)| o.finished + o.skipped)
            .map(|(k, _)| k.clone())
            .unwrap();
        assert!(p.fit_within(STORED_LIMIT_BYTES));
        let stored = serde_json::to_vec(&p).unwrap().len();
        assert!(stored <= STORED_LIMIT_BYTES, "{stored} bytes");
        assert!(
            p.bandit.contains_key(&finished_best),
            "the most evidence stays"
        );
        assert_eq!(
            p.liked[0],
            long(OPINION_LIMIT * 2 + RECENT_LIMIT + BANDIT_LIMIT - 1)
        );
        assert!(
            !p.fit_within(STORED_LIMIT_BYTES),
            "a profile that fits is left as it is"
        );
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
