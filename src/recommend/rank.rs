//! Ranking for one listener: candidates for the request, filters, a personal score, a
//! Thompson-sampling rerank for exploration and an artist spread.
//!
//! Scores, with the default weights of `RankWeights` (known listeners; a new one gets
//! popularity alone):
//! - popularity, a little (0.25 × popularity/100);
//! - genre and artist affinities from the profile (0.5 × tanh(affinity/4) each);
//! - closeness to the listener's taste centroid in audio features (up to 0.5);
//! - the served model (weight 1), from the listener's liked, finished and recent tracks:
//!   for embeddings, the dot product of the listener's vector folded in from those and the
//!   track's; for an item-item model (EASE, item-kNN), the track's summed weights from
//!   those, scaled so the listener's strongest is 1;
//! - the bandit's posterior mean for the track in this context, centred (finished raise it,
//!   skips lower it);
//! - a bonus for tracks on the listener's fresh precomputed list, by their place on it (1.5
//!   for the first, down to 1.0 for the last): the offline model ranked them for this
//!   listener, so they lead, in its order;
//! - a bonus (0.3, new listeners too) for the genres the listener said they prefer.
//!
//! Disliked, queued and (when the profile forbids them) explicit tracks are never returned;
//! recently played ones only when nothing else is left.
//!
//! Each returned track carries its reason (`domain::Reason`): an explored slot is a track
//! being tried; otherwise the strongest personal term when it adds at least `REASON_FLOOR`
//! (popularity is shared by every candidate, so a personal term that lifted the track tells
//! more), else its popularity.

use super::catalog::{Catalog, TrackIx, best_first, likeness, normalize};
use super::factors::Like;
use super::serving::{Assigned, Experiment, Had, Listener, ModelSet, ServedModel};
use super::table::TrackRef;
use super::{
    Ranked, RecommendError, RecommendRequest, Recommendation, Recommender, mood_target,
    recommendation_id,
};
use crate::domain::{Named, Profile, Reason, Selection, Track, TrackId, TrackLookup, decade_of};
use async_trait::async_trait;
use moka::future::Cache;
use rand::Rng;
use rand_distr::{Beta, Distribution};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The tracks of the listener's fresh precomputed list, each with its place's share of the
/// bonus (1.5 for the first, down to 1 for the last).
type Precomputed = std::collections::HashMap<TrackIx, f32>;

/// The listener's finished and skipped plays in the request's context, by track id.
type Outcomes<'a> = std::collections::HashMap<&'a str, crate::domain::PlayOutcomes>;

/// How many candidates one selection yields before the listener's filters.
const CANDIDATES: usize = 300;
/// How many of the listener's strongest artists add their fitting tracks to the candidates.
const AFFINITY_ARTISTS: usize = 3;
/// How many of the listener's strongest genres add their tracks to "something new".
const AFFINITY_GENRES: usize = 3;
/// How many unheard tracks each of those genres adds.
const UNHEARD_PER_AFFINITY: usize = 100;
/// The most profile items folded into a listener's vector.
const FOLD_IN_ITEMS: usize = 200;
/// The least a personal term must add to a score to be given as the track's reason.
const REASON_FLOOR: f32 = 0.1;

/// One candidate's score, term by term: their sum ranks it, the strongest is its reason.
#[derive(Debug, Clone, Copy, Default)]
struct Terms {
    popularity: f32,
    genre: f32,
    artist: f32,
    preferred_genre: f32,
    taste: f32,
    bandit: f32,
    /// The model's embedding score and the precomputed list's bonus.
    model: f32,
    /// For "more like this": nearness to the seed.
    closeness: f32,
}

impl Terms {
    fn total(&self) -> f32 {
        self.popularity
            + self.genre
            + self.artist
            + self.preferred_genre
            + self.taste
            + self.bandit
            + self.model
            + self.closeness
    }

    fn reason(&self) -> Reason {
        let terms = [
            (self.closeness, Reason::Similar),
            (self.artist, Reason::Artist),
            (self.genre, Reason::Genre),
            (self.preferred_genre, Reason::PreferredGenre),
            (self.model, Reason::Model),
            (self.bandit, Reason::FinishedBefore),
            (self.taste, Reason::Sound),
        ];
        // The first of equal terms wins: the order above is the tie-break.
        let (best, why) =
            terms.into_iter().fold(
                (f32::MIN, Reason::Popular),
                |a, b| if b.0 > a.0 { b } else { a },
            );
        if best >= REASON_FLOOR {
            why
        } else {
            Reason::Popular
        }
    }
}

/// The weights of the score's terms: the one place the blend is set, so `encore evaluate`
/// can score the serving path with others (`--sweep-serving`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RankWeights {
    /// Popularity (0 to 1) for a listener the profile does not know yet: all they have.
    pub popularity_new: f32,
    /// Popularity for a known listener.
    pub popularity: f32,
    /// Genre affinity, as `tanh(affinity / 4)`.
    pub genre: f32,
    /// Artist affinity, as `tanh(affinity / 4)`.
    pub artist: f32,
    /// Closeness to the taste centroid in audio features (1 at the centroid, 0 from 0.6).
    pub taste: f32,
    /// The served model's score.
    pub model: f32,
    /// The bandit's posterior mean in the request's context, centred (-0.5 to 0.5).
    pub bandit: f32,
    /// Being on the listener's fresh precomputed list (1.5 times the weight for its first
    /// track, down to the weight for its last).
    pub precomputed: f32,
    /// A genre the listener said they prefer (new listeners too).
    pub preferred_genre: f32,
    /// "More like this": nearness to the seed by its place among the candidates (the whole
    /// weight for the nearest, falling to 0 for the last), and for an item-item model's own
    /// neighbours of the seed half the weight again, scaled by theirs (the strongest 1).
    pub closeness: f32,
}

impl Default for RankWeights {
    fn default() -> Self {
        RankWeights {
            popularity_new: 1.0,
            popularity: 0.25,
            genre: 0.5,
            artist: 0.5,
            taste: 0.5,
            model: 1.0,
            bandit: 1.0,
            precomputed: 1.0,
            preferred_genre: 0.3,
            closeness: 2.0,
        }
    }
}

/// One of `RankWeights`' fields, to change it by name.
type WeightField = fn(&mut RankWeights) -> &mut f32;

impl RankWeights {
    /// The weights one at a time halved, zeroed and doubled: what `evaluate` sweeps.
    pub fn sweep(&self) -> Vec<(String, RankWeights)> {
        let mut out = Vec::new();
        let fields: [(&str, WeightField); 10] = [
            ("popularity_new", |w| &mut w.popularity_new),
            ("popularity", |w| &mut w.popularity),
            ("genre", |w| &mut w.genre),
            ("artist", |w| &mut w.artist),
            ("taste", |w| &mut w.taste),
            ("model", |w| &mut w.model),
            ("bandit", |w| &mut w.bandit),
            ("precomputed", |w| &mut w.precomputed),
            ("preferred_genre", |w| &mut w.preferred_genre),
            ("closeness", |w| &mut w.closeness),
        ];
        for (name, field) in fields {
            for scale in [0.0, 0.5, 2.0] {
                let mut w = *self;
                let value = field(&mut w);
                *value *= scale;
                out.push((format!("{name}={:.3}", *value), w));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankSettings {
    /// Share of each list (0 to 0.5) filled by the bandit's Thompson samples instead of the
    /// best scores; never the first track, never two explored tracks in a row.
    pub exploration: f32,
    /// At most this many tracks by one artist in a row (while other artists are left).
    pub max_artist_run: usize,
    /// How long a precomputed list from `encore batch-recommend` is used.
    pub precomputed_ttl: Duration,
    pub weights: RankWeights,
}

impl Default for RankSettings {
    fn default() -> Self {
        RankSettings {
            exploration: 0.0,
            max_artist_run: 1,
            precomputed_ttl: Duration::from_secs(24 * 3600),
            weights: RankWeights::default(),
        }
    }
}

/// Ranks from the catalog and the model versions `ModelSet` serves (which swaps both).
pub struct CatalogRecommender {
    models: Arc<ModelSet>,
    settings: RankSettings,
    /// Candidates per (catalog generation, selection, model version): track indexes are
    /// the catalog's own.
    candidates: Cache<(u64, Selection, String), Arc<[TrackIx]>>,
}

/// One request's ranking: the catalog it was assigned (kept to its end, whatever is
/// swapped in meanwhile) and the settings.
struct Ranking<'a> {
    catalog: &'a Catalog,
    settings: &'a RankSettings,
}

impl CatalogRecommender {
    /// The catalog alone: no model, no exploration.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let models = Arc::new(ModelSet::empty(catalog, Experiment::default()));
        Self::with_models(models, RankSettings::default())
    }

    pub fn with_models(models: Arc<ModelSet>, settings: RankSettings) -> Self {
        CatalogRecommender {
            models,
            settings,
            candidates: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
        }
    }

    /// The catalog served now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.models.catalog()
    }

    pub fn models(&self) -> &Arc<ModelSet> {
        &self.models
    }

    async fn candidates(
        &self,
        r: &Ranking<'_>,
        selection: &Selection,
        model: Option<&ServedModel>,
    ) -> Arc<[TrackIx]> {
        let version = model.map(|m| m.version().to_owned()).unwrap_or_default();
        let key = (r.catalog.generation(), selection.clone(), version);
        self.candidates
            .get_with(key, async { r.find_candidates(selection, model).into() })
            .await
    }
}

impl Ranking<'_> {
    fn find_candidates(&self, selection: &Selection, model: Option<&ServedModel>) -> Vec<TrackIx> {
        // "More like this" by the model's embeddings when it knows the seed.
        if let (Selection::LikeTrack(id), Some(factors)) =
            (selection, model.and_then(|m| m.factors()))
            && let Some(seed) = self.catalog.index_of(id)
            && let Some(Like {
                near: mut scored,
                unknown,
            }) = factors.like(seed, self.catalog.neighbourhood(seed), CANDIDATES)
        {
            // Unknown to the model: audio features, scaled to a similarity.
            let s = self.catalog.at(seed);
            scored.extend(
                unknown
                    .into_iter()
                    .map(|i| (0.5 - likeness(s, self.catalog.at(i)), i)),
            );
            return best_first(scored, CANDIDATES);
        }
        // An item-item model's neighbours of the seed first, then the catalog's.
        if let (Selection::LikeTrack(id), Some(model)) = (selection, model)
            && let Some(seed) = self.catalog.index_of(id)
            && let (neighbours, _) = model.neighbours(seed)
            && !neighbours.is_empty()
        {
            let mut seen = HashSet::from([seed]);
            return neighbours
                .iter()
                .copied()
                .chain(self.catalog.candidates(selection, CANDIDATES))
                .filter(|&ix| seen.insert(ix))
                .take(CANDIDATES)
                .collect();
        }
        self.catalog.candidates(selection, CANDIDATES)
    }

    /// Whether track `ix` fits `selection` (for candidates from outside its pool).
    fn fits(&self, selection: &Selection, ix: TrackIx) -> bool {
        let t = self.catalog.at(ix);
        match selection {
            Selection::Mood(m) => mood_target(*m).distance(&t.features()) == 0.0,
            Selection::Genre(g) => t.genre().eq_ignore_ascii_case(g),
            Selection::Artist(a) => normalize(t.artist()) == normalize(a),
            Selection::Decade { decade, genre } => {
                t.year().is_some_and(|y| decade_of(y) == *decade)
                    && genre
                        .as_ref()
                        .is_none_or(|g| t.genre().eq_ignore_ascii_case(g))
            }
            // Whether the listener heard it is the filter's business, not the pool's.
            Selection::Unheard => true,
            Selection::LikeTrack(_) => false,
        }
    }

    /// The listener's own candidates: their fresh precomputed list and the tracks of their
    /// strongest artists, where they fit the request; for "something new", also the
    /// popular tracks of their strongest genres.
    fn personal_candidates(
        &self,
        selection: &Selection,
        profile: &Profile,
    ) -> (Vec<TrackIx>, Precomputed) {
        let mut extra = Vec::new();
        let mut precomputed = Precomputed::new();
        if let Some(p) = &profile.precomputed {
            let age = time::OffsetDateTime::now_utc().unix_timestamp() - p.created_at;
            if age >= 0 && (age as u64) < self.settings.precomputed_ttl.as_secs() {
                let n = p.tracks.len().max(1) as f32;
                for (place, id) in p.tracks.iter().enumerate() {
                    if let Some(ix) = self.catalog.index_of(id) {
                        // Being on it lifts a track past popularity; its order adds.
                        precomputed
                            .entry(ix)
                            .or_insert(1.5 - 0.5 * place as f32 / n);
                        if self.fits(selection, ix) {
                            extra.push(ix);
                        }
                    }
                }
            }
        }
        if let Selection::Unheard = selection {
            let heard = profile.heard();
            let mut genres: Vec<(&String, &f32)> =
                profile.genres.iter().filter(|(_, a)| **a > 0.0).collect();
            genres.sort_by(|a, b| b.1.total_cmp(a.1));
            for (genre, _) in genres.into_iter().take(AFFINITY_GENRES) {
                let fresh = self
                    .catalog
                    .candidates(&Selection::Genre(genre.clone()), CANDIDATES)
                    .into_iter()
                    .filter(|&ix| !heard.contains(self.catalog.at(ix).id()));
                extra.extend(fresh.take(UNHEARD_PER_AFFINITY));
            }
        }
        if let Selection::Mood(_) | Selection::Unheard = selection {
            let mut artists: Vec<(&String, &f32)> =
                profile.artists.iter().filter(|(_, a)| **a > 0.0).collect();
            artists.sort_by(|a, b| b.1.total_cmp(a.1));
            for (name, _) in artists.into_iter().take(AFFINITY_ARTISTS) {
                if let Some(tracks) = self.catalog.artist_exact(name) {
                    extra.extend(
                        tracks
                            .iter()
                            .take(50)
                            .copied()
                            .filter(|&ix| self.fits(selection, ix)),
                    );
                }
            }
        }
        (extra, precomputed)
    }

    /// The listener in the model's terms, from their liked, finished and recent tracks. A
    /// track's age is its place in the recent list (most recent first); tracks liked or
    /// finished but not among the recent ones count as older than all of those.
    fn listener(&self, profile: &Profile, model: &ServedModel) -> Option<Listener> {
        let alpha = model.manifest().alpha();
        let conf = |strength: f32| 1.0 + alpha * (1.0 + strength).ln();
        let finished = profile
            .bandit
            .iter()
            .filter(|(_, o)| o.finished > 0)
            .map(|(key, o)| {
                let track = key.split(':').next().unwrap_or(key);
                (TrackId(track.to_owned()), o.finished as f32)
            });
        let liked = profile.liked.iter().map(|t| (t.clone(), 3.0));
        let recent = profile.recent.iter().map(|t| (t.clone(), 1.0));
        // Only an item-item version with a half-life reads the ages.
        let places: HashMap<&TrackId, usize> = if model.weighs_recency() {
            profile
                .recent
                .iter()
                .enumerate()
                .map(|(n, t)| (t, n))
                .collect()
        } else {
            HashMap::new()
        };
        let age_of = |t: &TrackId| *places.get(t).unwrap_or(&profile.recent.len()) as f32;
        let mut seen = HashSet::new();
        let items: Vec<Had> = liked
            .chain(finished)
            .chain(recent)
            .filter_map(|(t, strength)| {
                let ix = self.catalog.index_of(&t)?;
                seen.insert(ix).then(|| Had {
                    track: ix,
                    confidence: conf(strength),
                    age: age_of(&t),
                })
            })
            .take(FOLD_IN_ITEMS)
            .collect();
        model.listener(&items)
    }

    /// Track `ix`'s score for the listener, term by term (`closeness` is left to the caller).
    fn score(
        &self,
        ix: TrackIx,
        profile: Option<&Profile>,
        outcomes: &Outcomes<'_>,
        user: Option<&Listener>,
        model: Option<&ServedModel>,
        precomputed: &Precomputed,
    ) -> Terms {
        let w = &self.settings.weights;
        let t = self.catalog.at(ix);
        let popularity = t.popularity() as f32 / 100.0;
        let precomputed = w.precomputed * precomputed.get(&ix).copied().unwrap_or(0.0);
        let preferred_genre =
            if profile.is_some_and(|p| p.preferred_genres.iter().any(|g| g == t.genre())) {
                w.preferred_genre
            } else {
                0.0
            };
        let Some(p) = profile.filter(|p| p.is_known()) else {
            return Terms {
                popularity: w.popularity_new * popularity,
                preferred_genre,
                model: precomputed,
                ..Terms::default()
            };
        };
        let affinity = |a: Option<&f32>| (a.copied().unwrap_or(0.0) / 4.0).tanh();
        let taste = p.taste.map_or(0.0, |taste| {
            let d = taste.features.distance(&t.features());
            w.taste * (1.0 - (d / 0.6).min(1.0))
        });
        let embedding = match (user, model) {
            (Some(u), Some(m)) => u.score(m, ix),
            _ => 0.0,
        };
        let o = outcomes.get(t.id()).copied().unwrap_or_default();
        let bandit = (o.finished as f32 + 1.0) / ((o.finished + o.skipped) as f32 + 2.0) - 0.5;
        Terms {
            popularity: w.popularity * popularity,
            genre: w.genre * affinity(p.genres.get(t.genre())),
            artist: w.artist * affinity(p.artists.get(t.artist())),
            preferred_genre,
            taste,
            bandit: w.bandit * bandit,
            model: w.model * embedding + precomputed,
            closeness: 0.0,
        }
    }
}

/// A Thompson sample of track `t`'s chance to be finished in `context`: Beta(1 + finished,
/// 1 + skipped). A track never played in the context draws from Beta(1, 1), so cold tracks
/// get their chance.
fn thompson(outcomes: &Outcomes<'_>, t: TrackRef<'_>, rng: &mut impl Rng) -> f32 {
    let o = outcomes.get(t.id()).copied().unwrap_or_default();
    Beta::new(1.0 + o.finished as f32, 1.0 + o.skipped as f32)
        .map(|b| b.sample(rng))
        .unwrap_or(0.5)
}

#[async_trait]
impl Recommender for CatalogRecommender {
    async fn recommend(&self, req: RecommendRequest<'_>) -> Result<Recommendation, RecommendError> {
        let Assigned {
            variant,
            catalog,
            model,
        } = self.models.assign(req.user_id);
        let r = Ranking {
            catalog: &catalog,
            settings: &self.settings,
        };
        let model = model.as_deref();
        let pool = self.candidates(&r, req.selection, model).await;
        let (extra, precomputed) = match req.profile {
            Some(p) => r.personal_candidates(req.selection, p),
            None => Default::default(),
        };
        let excluded: HashSet<&str> = req.exclude.iter().map(|t| t.0.as_str()).collect();
        let disliked: HashSet<&str> = req
            .profile
            .map(|p| p.disliked.iter().map(|t| t.0.as_str()).collect())
            .unwrap_or_default();
        // "Something new" never offers what the listener has heard.
        let heard = match (req.selection, req.profile) {
            (Selection::Unheard, Some(p)) => p.heard(),
            _ => HashSet::new(),
        };
        let allowed = |t: TrackRef<'_>| {
            !excluded.contains(t.id())
                && !heard.contains(t.id())
                && !disliked.contains(t.id())
                && req
                    .profile
                    .is_none_or(|p| p.explicit_allowed || !t.explicit())
        };
        r.catalog.prefetch_ids(&pool);
        r.catalog.prefetch_ids(&extra);
        let mut seen = HashSet::with_capacity(pool.len() + extra.len());
        let candidates: Vec<TrackIx> = pool
            .iter()
            .chain(&extra)
            .copied()
            .filter(|&ix| seen.insert(ix) && allowed(r.catalog.at(ix)))
            .collect();
        if candidates.is_empty() {
            return Err(RecommendError::NoMatch(req.selection.clone()));
        }
        let context = req.selection.context_key();
        let outcomes: Outcomes<'_> = req
            .profile
            .map(|p| p.outcomes_in(&context))
            .unwrap_or_default();
        let known = req.profile.filter(|p| p.is_known());
        let user = match (known, model) {
            (Some(p), Some(m)) => r.listener(p, m),
            _ => None,
        };
        // The listener's vector scores every candidate by its exact factors: read them
        // ahead together (of a catalog larger than memory, most are on disk).
        if let (Some(Listener::Vector(_)), Some(factors)) = (&user, model.and_then(|m| m.factors()))
        {
            factors.prefetch(candidates.iter().copied());
        }
        // "More like this" candidates come nearest first: closeness outweighs the rest. An
        // item-item model's own neighbours of the seed add their weight (the strongest 1),
        // so they lead the catalog's fill after them.
        let closeness: std::collections::HashMap<TrackIx, f32> = match req.selection {
            Selection::LikeTrack(id) => {
                let weight = self.settings.weights.closeness;
                let mut by_position: std::collections::HashMap<TrackIx, f32> = pool
                    .iter()
                    .enumerate()
                    .map(|(pos, &ix)| (ix, weight * (1.0 - pos as f32 / pool.len() as f32)))
                    .collect();
                if let (Some(m), Some(seed)) = (model, r.catalog.index_of(id)) {
                    let (to, w) = m.neighbours(seed);
                    let strongest = w.first().copied().unwrap_or(0.0);
                    if strongest > 0.0 {
                        for (&t, &w) in to.iter().zip(w) {
                            *by_position.entry(t).or_default() +=
                                weight / 2.0 * (w / strongest).max(0.0);
                        }
                    }
                }
                by_position
            }
            _ => Default::default(),
        };
        let terms = |ix: TrackIx| Terms {
            closeness: closeness.get(&ix).copied().unwrap_or(0.0),
            ..r.score(
                ix,
                req.profile,
                &outcomes,
                user.as_ref(),
                model,
                &precomputed,
            )
        };
        let mut scored: Vec<(f32, TrackIx)> = candidates
            .iter()
            .map(|&ix| (terms(ix).total(), ix))
            .collect();
        // Stable: among equal scores the candidate order (popularity) holds.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let recent: HashSet<&str> = req
            .profile
            .map(|p| p.recent.iter().map(|t| t.0.as_str()).collect())
            .unwrap_or_default();
        // Fresh tracks first; recently played ones only when nothing else is left.
        let (fresh, stale): (Vec<TrackIx>, Vec<TrackIx>) = scored
            .into_iter()
            .map(|(_, ix)| ix)
            .partition(|&ix| !recent.contains(r.catalog.at(ix).id()));
        let (ranked, explored) = r.explore(fresh, stale, &outcomes, req.limit);
        let spread = spread_by(
            ranked.into_iter(),
            |&ix| r.catalog.at(ix).artist_number(),
            req.limit,
            self.settings.max_artist_run,
        );
        // Only the tracks returned are made whole, with their terms again (rather than
        // kept for every candidate).
        let picks = spread.into_iter().map(|ix| {
            let why = match explored.contains(&ix) {
                true => Reason::Exploring,
                false => terms(ix).reason(),
            };
            (r.catalog.whole(ix), why)
        });
        let tracks = Ranked::with_reasons(picks)
            .ok_or_else(|| RecommendError::NoMatch(req.selection.clone()))?;
        Ok(Recommendation {
            id: recommendation_id(),
            model_version: model
                .map(|m| m.version().to_owned())
                .unwrap_or_else(|| catalog.manifest.version.clone()),
            experiment: self.models.experiment().name.clone(),
            variant: variant.to_owned(),
            tracks,
        })
    }

    fn search(&self, named: &Named, limit: usize) -> Vec<(Arc<Track>, f32)> {
        self.models.catalog().search(named, limit)
    }

    fn model_version(&self) -> String {
        self.models
            .current_version()
            .unwrap_or_else(|| self.models.catalog().manifest.version.clone())
    }
}

impl Ranking<'_> {
    /// The ranked list with the exploration share of its slots (never the first) given to the
    /// fresh candidate with the highest Thompson sample, and the tracks those slots took.
    fn explore(
        &self,
        fresh: Vec<TrackIx>,
        stale: Vec<TrackIx>,
        outcomes: &Outcomes<'_>,
        limit: usize,
    ) -> (Vec<TrackIx>, HashSet<TrackIx>) {
        // Room for the artist spread to reorder.
        let want = (limit * 2).min(fresh.len() + stale.len());
        let share = self.settings.exploration.clamp(0.0, 0.5);
        let explore_slots = (limit as f32 * share).round() as usize;
        let mut explored = HashSet::new();
        if explore_slots == 0 || fresh.len() <= 1 {
            return (
                fresh.into_iter().chain(stale).take(want).collect(),
                explored,
            );
        }
        let stride = (limit / explore_slots).max(2);
        let mut rng = rand::rng();
        let mut taken = vec![false; fresh.len()];
        let mut next_best = 0;
        let mut out = Vec::with_capacity(want);
        while out.len() < want {
            let slot = out.len();
            let exploring = slot % stride == stride - 1 && slot < limit;
            let pick = if exploring {
                // Thompson sampling over every fresh candidate not yet taken.
                (0..fresh.len())
                    .filter(|&i| !taken[i])
                    .map(|i| (thompson(outcomes, self.catalog.at(fresh[i]), &mut rng), i))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, i)| i)
            } else {
                while next_best < fresh.len() && taken[next_best] {
                    next_best += 1;
                }
                (next_best < fresh.len()).then_some(next_best)
            };
            match pick {
                Some(i) => {
                    // A Thompson pick that is also the best score left is no trial.
                    if exploring && (next_best..fresh.len()).find(|&j| !taken[j]) != Some(i) {
                        explored.insert(fresh[i]);
                    }
                    taken[i] = true;
                    out.push(fresh[i]);
                }
                None => break,
            }
        }
        out.extend(stale.into_iter().take(want.saturating_sub(out.len())));
        (out, explored)
    }
}

/// Takes up to `limit` tracks in order, never more than `max_run` by one artist in a row
/// while another artist is waiting.
pub fn spread_artists<'a>(
    tracks: impl Iterator<Item = &'a Arc<Track>>,
    limit: usize,
    max_run: usize,
) -> Vec<Arc<Track>> {
    spread_by(tracks.cloned(), |t| t.artist.clone(), limit, max_run)
}

/// `spread_artists` over any items, `artist_of` naming each one's artist.
fn spread_by<T, A: PartialEq>(
    items: impl Iterator<Item = T>,
    artist_of: impl Fn(&T) -> A,
    limit: usize,
    max_run: usize,
) -> Vec<T> {
    let max_run = max_run.max(1);
    let mut out: Vec<T> = Vec::with_capacity(limit);
    let mut waiting: Vec<T> = Vec::new();
    let mut source = items;
    let blocked = |t: &T, out: &[T]| {
        let artist = artist_of(t);
        out.iter()
            .rev()
            .take_while(|o| artist_of(o) == artist)
            .count()
            >= max_run
    };
    while out.len() < limit {
        if let Some(i) = waiting.iter().position(|t| !blocked(t, &out)) {
            out.push(waiting.remove(i));
            continue;
        }
        match source.next() {
            Some(t) if blocked(&t, &out) => waiting.push(t),
            Some(t) => out.push(t),
            None if !waiting.is_empty() => out.push(waiting.remove(0)),
            None => break,
        }
    }
    out
}

impl TrackLookup for CatalogRecommender {
    fn track(&self, id: &TrackId) -> Option<Arc<Track>> {
        self.models.catalog().track(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: &str, artist: &str) -> Arc<Track> {
        Arc::new(Track::sample(id, artist, "pop"))
    }

    fn artists(ts: &[Arc<Track>], max_run: usize) -> Vec<String> {
        spread_artists(ts.iter(), ts.len(), max_run)
            .iter()
            .map(|t| t.artist.clone())
            .collect()
    }

    #[test]
    fn the_sweep_changes_one_weight_at_a_time() {
        let base = RankWeights::default();
        let sweep = base.sweep();
        assert_eq!(sweep.len(), 30);
        let as_list = |w: &RankWeights| -> Vec<f32> {
            serde_json::to_value(w)
                .unwrap()
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        };
        for (name, w) in &sweep {
            let changed = as_list(&base)
                .iter()
                .zip(as_list(w))
                .filter(|(a, b)| **a != *b)
                .count();
            // Zeroing a weight of 0 changes nothing; every default weight is above 0.
            assert_eq!(changed, 1, "{name}: {w:?}");
        }
    }

    #[test]
    fn artist_spread_caps_runs_of_one_artist() {
        let ts = [
            track("1", "a"),
            track("2", "a"),
            track("3", "a"),
            track("4", "b"),
            track("5", "c"),
        ];
        let one = artists(&ts, 1);
        assert_eq!(one.len(), 5);
        for pair in one.windows(2).take(3) {
            assert_ne!(pair[0], pair[1], "{one:?}");
        }
        assert_eq!(artists(&ts, 2), ["a", "a", "b", "a", "c"]);
    }
}
