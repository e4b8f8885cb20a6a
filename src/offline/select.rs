//! Which model, with which settings: each candidate is fitted on the training data minus
//! two validation parts (each user's last interaction; the latest 20% of every third
//! user's), scored there by NDCG@k as a lift over popularity, and the best is refitted on
//! all the training data. The test part is never seen. The candidates: implicit ALS
//! (interactions as given, each as one, or as given with skips and dislikes as evidence
//! against when the data has any; a few regularizations and confidence scales), EASE (a few L2 weights,
//! one on large catalogs) and a cosine item-kNN (a few neighbourhood sizes), each item-item
//! kind with the listener's items alike or weighted by recency; popularity is scored beside them.
//! `evaluate` fits each kind's best and the choice on a training part and scores them on
//! the held-out part, side by side.

use super::evaluate::{Judge, Metrics, Protocol, score, split_some, top_k};
use super::itemitem::{ItemItem, ItemItemKind};
use super::train::{
    AlsParams, Csr, Interactions, Strength, Trained, train_als, user_items, user_recency,
};
use crate::recommend::model::{Model, Recency, dot};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Up to how many items validation tries every EASE L2 weight (a 5,000-item inverse takes
/// seconds).
pub const EASE_FULL_GRID_ITEMS: usize = 5_000;

/// Every how many users one holds out the latest-20% validation part.
const VALIDATION_EVERY: u32 = 3;

/// A model kind with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Candidate {
    Popularity,
    Als {
        params: AlsParams,
        strength: Strength,
    },
    /// An item-item model, the listener's items weighted by `recency`.
    ItemItem {
        kind: ItemItemKind,
        recency: Recency,
    },
    /// A weighted sum of the parts' scores, each standardized per listener (mean 0 and
    /// standard deviation 1 over the items the listener has not had), so no part's scale
    /// dominates.
    Blend(Vec<(Candidate, f32)>),
}

impl Candidate {
    pub fn kind(&self) -> &'static str {
        match self {
            Candidate::Popularity => "popularity",
            Candidate::Als { .. } => "als",
            Candidate::ItemItem { kind, .. } => kind.name(),
            Candidate::Blend(_) => "blend",
        }
    }

    /// The settings, as a manifest or a table shows them.
    pub fn settings(&self) -> serde_json::Value {
        match self {
            Candidate::Popularity => serde_json::json!({}),
            Candidate::Als { params, strength } => serde_json::json!({
                "factors": params.factors,
                "iterations": params.iterations,
                "regularization": params.regularization,
                "alpha": params.alpha,
                "strength": strength,
            }),
            Candidate::ItemItem { kind, recency } => {
                let mut settings = match kind {
                    ItemItemKind::Ease { lambda } => serde_json::json!({ "lambda": lambda }),
                    ItemItemKind::Knn { neighbours } => {
                        serde_json::json!({ "neighbours": neighbours })
                    }
                };
                settings["recency_half_life"] = serde_json::json!(recency.half_life());
                settings
            }
            Candidate::Blend(parts) => serde_json::Value::Array(
                parts
                    .iter()
                    .map(|(c, w)| serde_json::json!({ "kind": c.kind(), "weight": w, "settings": c.settings() }))
                    .collect(),
            ),
        }
    }

    /// The candidates validation tries on data of `items` items: `als` is the ALS the
    /// caller asked for (its factors and iterations are kept; its regularization and
    /// confidence scale are varied). EASE's inverse grows with the cube of its hot set, so
    /// beyond `EASE_FULL_GRID_ITEMS` items one L2 weight is tried instead of four (each is
    /// fitted on each validation part: four at the 20,000-item hot set would take most of
    /// an hour on two cores).
    pub fn grid(als: AlsParams, items: usize) -> Vec<Candidate> {
        let mut grid = Vec::new();
        for strength in [Strength::Binary, Strength::Given, Strength::Signed] {
            for (regularization, alpha) in [(als.regularization, als.alpha), (10.0, 5.0)] {
                grid.push(Candidate::Als {
                    params: AlsParams {
                        regularization,
                        alpha,
                        ..als
                    },
                    strength,
                });
            }
        }
        let lambdas: &[f32] = if items <= EASE_FULL_GRID_ITEMS {
            &[50.0, 200.0, 500.0, 2000.0]
        } else {
            &[500.0]
        };
        let kinds = lambdas
            .iter()
            .map(|&lambda| ItemItemKind::Ease { lambda })
            .chain([20, 50, 200].map(|neighbours| ItemItemKind::Knn { neighbours }));
        // One kind's recencies side by side: validation fits it once for all of them.
        for kind in kinds {
            for recency in RECENCIES {
                grid.push(Candidate::ItemItem { kind, recency });
            }
        }
        grid
    }
}

impl Candidate {
    /// This candidate fitted on all of `data` as a model version the serving path can load:
    /// ALS as item factors, EASE and item-kNN as item-item models; `None` for popularity
    /// (the catalog already ranks by it) and blends (a version is one model).
    pub fn served(&self, data: &Interactions) -> Option<Model> {
        match self {
            Candidate::Als { params, strength } => Some(Model::Factors(
                super::train::train_model_with(data, *params, *strength).0,
            )),
            Candidate::ItemItem { kind, recency } => Some(Model::Neighbours(
                super::itemitem::train_item_item(data, *kind, *recency, ITEM_ITEM_KEEP),
            )),
            Candidate::Popularity | Candidate::Blend(_) => None,
        }
    }
}

/// A fitted model, ready to rank.
pub enum Fitted {
    Popularity(Vec<f32>),
    Als(Trained),
    ItemItem(Arc<ItemItem>, Recency),
    Blend(Vec<(Fitted, f32)>),
}

/// The recencies validation tries for each item-item model: all items alike, or half-lives
/// of 3, 10 and 30 items (on MovieLens-100k the next item follows the last few, the next
/// weeks the last few dozen).
const RECENCIES: [Recency; 4] = [
    Recency::Flat,
    Recency::HalfLife(3.0),
    Recency::HalfLife(10.0),
    Recency::HalfLife(30.0),
];

/// The most neighbours an item-item model keeps per item, in validation, evaluation and a
/// trained version alike: at EASE's 20,000 items a version holds at most 10M weights (80
/// MB); a listener's score sums only their tracks' rows, so the tail past this adds little.
pub const ITEM_ITEM_KEEP: usize = 500;

impl Fitted {
    pub fn fit(candidate: &Candidate, data: &Interactions) -> Fitted {
        let items = data.items.len();
        match candidate {
            Candidate::Popularity => {
                let mut counts = vec![0f32; items];
                for &i in &user_items(data, Strength::Binary).indices {
                    counts[i as usize] += 1.0;
                }
                Fitted::Popularity(counts)
            }
            Candidate::Als { params, strength } => {
                Fitted::Als(train_als(&user_items(data, *strength), items, *params))
            }
            Candidate::ItemItem { kind, recency } => {
                Fitted::ItemItem(Arc::new(fit_item_item(*kind, data)), *recency)
            }
            Candidate::Blend(parts) => Fitted::Blend(
                parts
                    .iter()
                    .map(|(c, w)| (Fitted::fit(c, data), *w))
                    .collect(),
            ),
        }
    }

    /// Every item's score for `user`, whose `history` is their row of `user_recency`: the
    /// items they liked (sorted) and each one's age.
    pub fn scores(&self, user: u32, history: (&[u32], &[f32])) -> Vec<f32> {
        match self {
            Fitted::Popularity(counts) => counts.clone(),
            Fitted::Als(t) => {
                let d = t.dim;
                let x = &t.users[user as usize * d..(user as usize + 1) * d];
                t.items.chunks_exact(d).map(|y| dot(x, y)).collect()
            }
            Fitted::ItemItem(m, recency) => m.scores(history, *recency),
            Fitted::Blend(parts) => {
                let mut total: Vec<f32> = Vec::new();
                for (part, w) in parts {
                    let mut scores = part.scores(user, history);
                    standardize(&mut scores, history.0);
                    if total.is_empty() {
                        total = vec![0.0; scores.len()];
                    }
                    for (t, s) in total.iter_mut().zip(&scores) {
                        *t += w * s;
                    }
                }
                total
            }
        }
    }

    /// `user`'s top `k`, without what they had.
    pub fn top(&self, user: u32, history: (&[u32], &[f32]), k: usize) -> Vec<u32> {
        top_k(&self.scores(user, history), k, history.0)
    }
}

/// `kind` fitted on every positive interaction of `data`, each counting one.
fn fit_item_item(kind: ItemItemKind, data: &Interactions) -> ItemItem {
    ItemItem::fit(
        &user_items(data, Strength::Binary),
        data.items.len(),
        kind,
        ITEM_ITEM_KEEP,
    )
}

/// Scales `scores` to mean 0 and standard deviation 1 over the items not in `history`.
fn standardize(scores: &mut [f32], history: &[u32]) {
    let fresh = |i: usize| history.binary_search(&(i as u32)).is_err();
    let (mut n, mut sum, mut squares) = (0f64, 0f64, 0f64);
    for (i, &s) in scores.iter().enumerate() {
        if fresh(i) {
            n += 1.0;
            sum += s as f64;
            squares += (s as f64).powi(2);
        }
    }
    let mean = sum / n.max(1.0);
    let sd = (squares / n.max(1.0) - mean * mean)
        .max(0.0)
        .sqrt()
        .max(1e-9);
    for s in scores.iter_mut() {
        *s = ((*s as f64 - mean) / sd) as f32;
    }
}

/// One candidate's validation score.
#[derive(Debug, Clone, Serialize)]
pub struct Tried {
    pub kind: &'static str,
    pub settings: serde_json::Value,
    /// On each validation part: the last interactions, then the latest 20%.
    pub ndcg: Vec<f64>,
    /// The mean of those, each over popularity's.
    pub lift: f64,
    pub seconds: f64,
    #[serde(skip)]
    pub candidate: Candidate,
}

/// Whether validation also tries blends of the kinds' best. A served model version is one
/// model, so `encore train` chooses among single ones; batch lists can come from a blend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blends {
    Tried,
    NotTried,
}

/// What validation chooses among: the candidates, and whether blends of their best too.
#[derive(Debug, Clone)]
pub struct Grid {
    pub candidates: Vec<Candidate>,
    pub blends: Blends,
}

/// What validation chose, and what it saw.
#[derive(Debug, Clone)]
pub struct Choice {
    pub chosen: Candidate,
    pub tried: Vec<Tried>,
}

/// The candidate of `grid` (or a blend of the best of its kinds) that finds most of what
/// listeners went on to have in `train`. Two validation parts are held out, so the choice
/// holds for what comes next as well as for a listener's next weeks: each user's last
/// interaction, and the latest 20% of every third user's (the others keep all theirs, so
/// the models are fitted on nearly as much as they will be). A candidate's score is the mean
/// of its NDCG@`k` on the two, each divided by popularity's there (a lift, so the two count
/// alike). With nothing to validate on, the first candidate.
pub fn choose(train: &Interactions, k: usize, grid: &Grid) -> Choice {
    let Grid { candidates, blends } = grid;
    struct Part {
        split: super::evaluate::Split,
        judge: Judge,
        history: Csr,
        reference: f64,
        /// The last item-item model fitted here: the next candidate of the same kind (with
        /// another recency) reuses it.
        last_fit: std::sync::Mutex<Option<(ItemItemKind, Arc<ItemItem>)>>,
    }
    let parts: Vec<Part> = [
        split_some(train, Protocol::Last, |_| true),
        split_some(train, Protocol::Latest(0.2), |u| u % VALIDATION_EVERY == 0),
    ]
    .into_iter()
    .filter(|split| !split.test.is_empty())
    .map(|split| {
        let seen = user_items(&split.train, Strength::Binary);
        let judge = Judge::new(&seen, split.train.items.len());
        Part {
            history: user_recency(&split.train),
            split,
            judge,
            reference: 0.0,
            last_fit: Default::default(),
        }
    })
    .collect();
    let ndcg_on = |part: &Part, candidate: &Candidate| -> f64 {
        let fitted = match candidate {
            Candidate::ItemItem { kind, recency } => {
                let mut last = part.last_fit.lock().unwrap_or_else(|e| e.into_inner());
                let model = match &*last {
                    Some((fitted_kind, model)) if fitted_kind == kind => model.clone(),
                    _ => {
                        let model = Arc::new(fit_item_item(*kind, &part.split.train));
                        *last = Some((*kind, model.clone()));
                        model
                    }
                };
                Fitted::ItemItem(model, *recency)
            }
            _ => Fitted::fit(candidate, &part.split.train),
        };
        let m: Metrics = score(&part.split.test, k, &part.judge, "validating", |u, k| {
            fitted.top(u, part.history.row(u as usize), k)
        });
        m.ndcg
    };
    let parts: Vec<Part> = parts
        .into_iter()
        .map(|mut p| {
            p.reference = ndcg_on(&p, &Candidate::Popularity).max(1e-9);
            p
        })
        .collect();
    let mut tried = Vec::new();
    let mut best: Option<(f64, Candidate)> = None;
    let mut family_best: Vec<(f64, Candidate)> = Vec::new();
    let try_one = |candidate: &Candidate, tried: &mut Vec<Tried>| -> f64 {
        let started = std::time::Instant::now();
        let scores: Vec<f64> = parts.iter().map(|p| ndcg_on(p, candidate)).collect();
        let lift = parts
            .iter()
            .zip(&scores)
            .map(|(p, s)| s / p.reference)
            .sum::<f64>()
            / parts.len().max(1) as f64;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "  validation: {} {} ndcg@{k} {:?}, lift over popularity {lift:.3} ({seconds:.1} s)",
            candidate.kind(),
            candidate.settings(),
            scores
                .iter()
                .map(|s| (s * 1e4).round() / 1e4)
                .collect::<Vec<_>>(),
        );
        tried.push(Tried {
            kind: candidate.kind(),
            settings: candidate.settings(),
            ndcg: scores,
            lift,
            seconds,
            candidate: candidate.clone(),
        });
        lift
    };
    // Without evidence against, keeping it is the same as leaving it out.
    let against = train.rows.iter().any(|r| r.weight < 0.0);
    for candidate in candidates {
        if let Candidate::Als {
            strength: Strength::Signed,
            ..
        } = candidate
            && !against
        {
            continue;
        }
        let ndcg = try_one(candidate, &mut tried);
        if best.as_ref().is_none_or(|(b, _)| ndcg > *b) {
            best = Some((ndcg, candidate.clone()));
        }
        match family_best
            .iter_mut()
            .find(|(_, c)| c.kind() == candidate.kind())
        {
            Some(f) if ndcg > f.0 => *f = (ndcg, candidate.clone()),
            Some(_) => {}
            None => family_best.push((ndcg, candidate.clone())),
        }
    }
    // Then blends of the families' best: each pair at three weights, and all of them.
    let bests: Vec<Candidate> = family_best
        .into_iter()
        .filter(|(_, c)| !matches!(c, Candidate::Popularity) && *blends == Blends::Tried)
        .map(|(_, c)| c)
        .collect();
    let mut blends = Vec::new();
    for (n, a) in bests.iter().enumerate() {
        for b in &bests[n + 1..] {
            for w in [0.25, 0.5, 0.75] {
                blends.push(Candidate::Blend(vec![(a.clone(), w), (b.clone(), 1.0 - w)]));
            }
        }
    }
    if bests.len() == 3 {
        for ws in [
            [1.0, 1.0, 1.0],
            [2.0, 1.0, 1.0],
            [1.0, 2.0, 1.0],
            [1.0, 1.0, 2.0],
        ] {
            let sum: f32 = ws.iter().sum();
            blends.push(Candidate::Blend(
                bests
                    .iter()
                    .zip(ws)
                    .map(|(c, w)| (c.clone(), w / sum))
                    .collect(),
            ));
        }
    }
    for candidate in blends {
        let ndcg = try_one(&candidate, &mut tried);
        if best.as_ref().is_none_or(|(b, _)| ndcg > *b) {
            best = Some((ndcg, candidate));
        }
    }
    Choice {
        chosen: best
            .map(|(_, c)| c)
            .unwrap_or_else(|| candidates[0].clone()),
        tried,
    }
}

/// One method's test metrics, with the settings it ran with.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub settings: serde_json::Value,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub fit_seconds: f64,
}

/// The report of one evaluation: each method's metrics.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub k: usize,
    pub protocol: Protocol,
    pub interactions: usize,
    pub train_interactions: usize,
    pub users: usize,
    pub items: usize,
    pub evaluated_users: usize,
    /// popularity, als, ease, item-knn: each family's candidate that validated best; and
    /// blend, when a blend of them validated best of all.
    pub methods: BTreeMap<String, Scored>,
    /// The kind the default (`encore batch-recommend` with no flags) chose by validation.
    pub default: String,
    /// Every candidate's validation NDCG@k.
    pub validation: Vec<Tried>,
    /// The held-out users scored (sorted), so other rankers can score the same ones.
    #[serde(skip)]
    pub scored_users: Vec<u32>,
    /// What the default chose.
    #[serde(skip)]
    pub chosen: Candidate,
    /// The serving path under other weights (`evaluate --sweep-serving`), beside
    /// `methods.serving` with the defaults.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<super::evaluate::ServingScore>,
}

impl Report {
    pub fn method(&self, name: &str) -> Option<&Metrics> {
        self.methods.get(name).map(|s| &s.metrics)
    }
}

/// Fits each family's best candidate (chosen on a validation part of `train` held out by
/// `protocol`) on `train`, and scores `test` (at most `max_users` of them, evenly spread).
pub fn evaluate(
    train: &Interactions,
    test: &[(u32, Vec<u32>)],
    total_rows: usize,
    k: usize,
    protocol: Protocol,
    grid: &Grid,
    max_users: usize,
) -> Report {
    let test: Vec<(u32, Vec<u32>)> = if test.len() > max_users {
        let step = test.len() as f64 / max_users as f64;
        (0..max_users)
            .map(|i| test[(i as f64 * step) as usize].clone())
            .collect()
    } else {
        test.to_vec()
    };
    let mut scored_users: Vec<u32> = test.iter().map(|(u, _)| *u).collect();
    scored_users.sort_unstable();
    let choice: Choice = choose(train, k, grid);
    // Items only a test file names have no interactions: no model scores them.
    let items = train.items.len();
    let seen = user_items(train, Strength::Binary);
    let judge = Judge::new(&seen, items);
    let history = user_recency(train);
    let mut families: Vec<Candidate> = vec![Candidate::Popularity];
    for kind in ["als", "ease", "item-knn"] {
        let best = choice
            .tried
            .iter()
            .filter(|t| t.kind == kind)
            .max_by(|a, b| a.lift.total_cmp(&b.lift))
            .map(|t| t.candidate.clone());
        families.extend(best);
    }
    if let Candidate::Blend(_) = choice.chosen {
        families.push(choice.chosen.clone());
    }
    let mut methods = BTreeMap::new();
    for candidate in &families {
        let started = std::time::Instant::now();
        let fitted = Fitted::fit(candidate, train);
        let fit_seconds = started.elapsed().as_secs_f64();
        let metrics = score(&test, k, &judge, candidate.kind(), |u, k| {
            let mut top = fitted.top(u, history.row(u as usize), k);
            top.retain(|&i| (i as usize) < items);
            top
        });
        methods.insert(
            candidate.kind().to_owned(),
            Scored {
                settings: candidate.settings(),
                metrics,
                fit_seconds,
            },
        );
    }
    let evaluated_users = methods.values().next().map_or(0, |s| s.metrics.users);
    Report {
        k,
        protocol,
        interactions: total_rows,
        train_interactions: seen.nnz(),
        users: train.users.len(),
        items,
        evaluated_users,
        methods,
        default: choice.chosen.kind().to_owned(),
        validation: choice.tried,
        chosen: choice.chosen,
        scored_users,
        sweep: Vec::new(),
    }
}
