//! The serving path's own ranking, scored on an evaluation's split like the models are: the
//! training part becomes a catalog and every listener's profile (each interaction folded in
//! as the consumer folds the feedback event it stands for), the best single model of
//! validation the served version, and the default's batch lists each listener's
//! precomputed list. Each held-out listener then asks for "something new" and what they
//! would hear (candidates, filters, the blend of `RankWeights`, the artist spread) is
//! scored. No exploration: its slots are random by design.

use super::evaluate::{Judge, ServingScore, score, top_k};
use super::select::{Candidate, Fitted, Report, Tried};
use super::train::{Interactions, event_value, user_had, user_recency};
use crate::domain::{
    AudioFeatures, PRECOMPUTED_LIMIT, Precomputed, Profile, Selection, Source, Track, TrackId,
};
use crate::feedback::{EventContext, EventKind, FeedbackEvent, fold};
use crate::recommend::{
    Catalog, CatalogRecommender, Manifest, ModelSet, RankSettings, RankWeights, RecommendRequest,
    Recommender,
};
use std::sync::Arc;

/// What the serving path is scored with, built once for every set of weights.
pub struct ServingPath {
    models: Arc<ModelSet>,
    profiles: Vec<Profile>,
    /// The version served: what validation thought best of the single models.
    pub served: Candidate,
}

impl ServingPath {
    /// The serving path over `train`, with the best single model `report`'s validation
    /// found and the lists of its default as precomputed lists, for the users `report`
    /// scored (the others' profiles stay empty: nobody asks for them).
    pub fn build(train: &Interactions, report: &Report) -> ServingPath {
        let catalog = Arc::new(catalog_of(train));
        let mut wanted = vec![false; train.users.len()];
        for &u in &report.scored_users {
            wanted[u as usize] = true;
        }
        let mut profiles = profiles_of(train, &catalog, &wanted);
        let served = best_single(&report.validation).unwrap_or(Candidate::Popularity);
        eprintln!(
            "  serving path: {} {} served, the {} default's lists precomputed",
            served.kind(),
            served.settings(),
            report.chosen.kind()
        );
        let models = match served.served(train) {
            Some(model) => ModelSet::with_model(catalog, model),
            None => ModelSet::empty(catalog, Default::default()),
        };
        let default = Fitted::fit(&report.chosen, train);
        let history = user_recency(train);
        let had = user_had(train);
        let created_at = time::OffsetDateTime::now_utc().unix_timestamp();
        for (u, profile) in profiles.iter_mut().enumerate().filter(|(u, _)| wanted[*u]) {
            let scores = default.scores(u as u32, history.row(u));
            let tracks = top_k(&scores, PRECOMPUTED_LIMIT, had.row(u).0)
                .into_iter()
                .map(|i| TrackId(train.items[i as usize].clone()))
                .collect();
            profile.precomputed = Some(Precomputed {
                model_version: report.chosen.kind().into(),
                created_at,
                tracks,
            });
        }
        ServingPath {
            models: Arc::new(models),
            profiles,
            served,
        }
    }

    /// Scores what each of `test`'s listeners hears under `weights`.
    pub async fn score(
        &self,
        train: &Interactions,
        test: &[(u32, Vec<u32>)],
        k: usize,
        judge: &Judge,
        name: &str,
        weights: RankWeights,
    ) -> ServingScore {
        let settings = RankSettings {
            exploration: 0.0,
            weights,
            ..RankSettings::default()
        };
        let r = CatalogRecommender::with_models(self.models.clone(), settings);
        let mut lists = std::collections::HashMap::with_capacity(test.len());
        for (u, _) in test {
            let profile = &self.profiles[*u as usize];
            let request = RecommendRequest {
                user_id: &profile.user_id,
                selection: &Selection::Unheard,
                profile: Some(profile),
                exclude: &[],
                limit: k,
            };
            let list: Vec<u32> = match r.recommend(request).await {
                Ok(rec) => rec
                    .tracks
                    .iter()
                    .filter_map(|t| train.item_of(&t.id.0))
                    .collect(),
                Err(_) => Vec::new(),
            };
            lists.insert(*u, list);
        }
        let metrics = score(test, k, judge, &format!("serving {name}"), |u, _| {
            lists.get(&u).cloned().unwrap_or_default()
        });
        ServingScore {
            name: name.into(),
            weights,
            metrics,
        }
    }
}

/// The single model (not popularity, not a blend) with the best validation lift.
fn best_single(tried: &[Tried]) -> Option<Candidate> {
    tried
        .iter()
        .filter(|t| {
            matches!(
                t.candidate,
                Candidate::Als { .. } | Candidate::ItemItem { .. }
            )
        })
        .max_by(|a, b| a.lift.total_cmp(&b.lift))
        .map(|t| t.candidate.clone())
}

/// A catalog of the training items: each a track of its own artist, one genre for all, the
/// same audio features, popularity by how many users had it (the most had 100).
fn catalog_of(train: &Interactions) -> Catalog {
    let mut users = vec![0u32; train.items.len()];
    for &i in &user_had(train).indices {
        users[i as usize] += 1;
    }
    let most = users.iter().copied().max().unwrap_or(1).max(1) as f32;
    let tracks = train
        .items
        .iter()
        .zip(&users)
        .map(|(id, &n)| Track {
            id: TrackId(id.clone()),
            title: id.clone(),
            artist: id.clone(),
            album: String::new(),
            genre: "all".into(),
            duration_ms: 200_000,
            popularity: (100.0 * n as f32 / most).round() as u8,
            explicit: false,
            features: AudioFeatures::default(),
            stream_url: format!("https://audio.encore.example/tracks/{id}.mp3"),
            art_url: None,
            year: None,
        })
        .collect();
    let manifest = Manifest {
        version: "evaluation".into(),
        created_at: String::new(),
        catalog: super::CATALOG_FILE.into(),
        stream_url_template: super::PLACEHOLDER_STREAM.into(),
        art_url_template: None,
        search_index: None,
        extra: Default::default(),
    };
    Catalog::from_tracks(manifest, tracks)
}

/// Each `wanted` user's profile: their training interactions in time order, each folded in
/// as the events it stands for (see `event_value`): a positive value a play started and
/// finished, and a like too when it is at least a like's value; a skip's value a skip; a
/// dislike's a dislike. The others' profiles are empty.
fn profiles_of(train: &Interactions, catalog: &Catalog, wanted: &[bool]) -> Vec<Profile> {
    let like = event_value(EventKind::Liked).unwrap_or(3.0);
    let dislike = event_value(EventKind::Disliked).unwrap_or(-3.0);
    let mut rows: Vec<usize> = (0..train.rows.len())
        .filter(|&i| wanted[train.rows[i].user as usize])
        .collect();
    rows.sort_by_key(|&i| (train.rows[i].user, train.rows[i].ts));
    let mut profiles: Vec<Profile> = train.users.iter().map(Profile::new).collect();
    for i in rows {
        let r = train.rows[i];
        let track = TrackId(train.items[r.item as usize].clone());
        let known = catalog.track(&track);
        let profile = &mut profiles[r.user as usize];
        let kinds: &[EventKind] = if r.weight >= like {
            &[
                EventKind::PlayStarted,
                EventKind::PlayFinished,
                EventKind::Liked,
            ]
        } else if r.weight > 0.0 {
            &[EventKind::PlayStarted, EventKind::PlayFinished]
        } else if r.weight <= dislike {
            &[EventKind::Disliked]
        } else {
            &[EventKind::PlayStarted, EventKind::Skipped]
        };
        for &kind in kinds {
            let event = FeedbackEvent::new(
                &profile.user_id,
                "evaluation",
                &track,
                kind,
                0,
                EventContext::default(),
                Source::Mobile,
            );
            fold(profile, &event, known.as_deref());
        }
    }
    profiles
}
