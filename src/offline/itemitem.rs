//! Item-item models: EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data",
//! 2019) and an item-kNN by cosine similarity. Both score an item for a listener by summing
//! its weights from the items the listener has, and both keep, per item, its strongest
//! neighbours, so the artifact is a sparse item × item matrix whatever the kind.
//!
//! EASE solves for the whole item × item matrix in closed form: B = I − P / diag(P) with
//! P = (XᵀX + λI)⁻¹ and diag(B) = 0. That is an n × n inverse: memory n² and time n³, fine
//! for a hot set of a few tens of thousands of items (20,000 items: 3.2 GB per f64 matrix,
//! a 10 GB peak with the factor and the inverse, about 4 minutes on two cores), not for a
//! whole catalog. So EASE is fitted on the `EASE_MAX_ITEMS`
//! most played items; the rest get no EASE weight and are reached by the other models and
//! the serving path's candidates. The inverse is faer's (a maintained pure-Rust dense linear
//! algebra crate, much faster than a hand-written one at these sizes).

use super::train::{Csr, Interactions, Strength, user_items};
use crate::recommend::model::{ItemNeighbours, Recency, new_manifest};
use rayon::prelude::*;

/// The most items EASE is fitted on (the most played ones).
pub const EASE_MAX_ITEMS: usize = 20_000;

/// Which item-item model, with its one setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ItemItemKind {
    /// EASE with L2 weight `lambda`.
    Ease { lambda: f32 },
    /// Cosine item-kNN keeping `neighbours` per item.
    Knn { neighbours: usize },
}

impl ItemItemKind {
    pub fn name(&self) -> &'static str {
        match self {
            ItemItemKind::Ease { .. } => "ease",
            ItemItemKind::Knn { .. } => "item-knn",
        }
    }
}

/// A fitted item-item model: row `j` of `weights` holds, for the source item `j`, the items
/// it recommends and how strongly (strongest first).
pub struct ItemItem {
    pub items: usize,
    pub weights: Csr,
}

impl ItemItem {
    /// The scores of every item for a listener who has `history`, as `neighbour_scores`.
    pub fn scores(&self, history: (&[u32], &[f32]), recency: Recency) -> Vec<f32> {
        let rows = self.weights.rows();
        neighbour_scores(
            self.items,
            |j| ((j as usize) < rows).then(|| self.weights.row(j as usize)),
            history,
            recency,
        )
    }

    /// Fits `kind` on `user_items` (users × items; any stored value counts as one
    /// interaction), keeping at most `keep` neighbours per item.
    pub fn fit(user_items: &Csr, items: usize, kind: ItemItemKind, keep: usize) -> ItemItem {
        let weights = match kind {
            ItemItemKind::Ease { lambda } => ease(user_items, items, lambda, keep),
            ItemItemKind::Knn { neighbours } => knn(user_items, items, neighbours.min(keep)),
        };
        ItemItem { items, weights }
    }
}

/// An item-item model's score of each of `items` for a listener who has `history` (items,
/// each with its age: how many of the listener's items came after it): each item's summed
/// weight from the rows (`row(j)`: the items `j` recommends, with weights) of the items of
/// `history`, each row weighted by its source's age as `recency` says.
pub fn neighbour_scores<'a>(
    items: usize,
    row: impl Fn(u32) -> Option<(&'a [u32], &'a [f32])>,
    (history, ages): (&[u32], &[f32]),
    recency: Recency,
) -> Vec<f32> {
    let mut scores = vec![0.0; items];
    for (&j, &age) in history.iter().zip(ages) {
        if let Some((to, w)) = row(j) {
            let weight = recency.weight(age);
            for (&i, &w) in to.iter().zip(w) {
                scores[i as usize] += weight * w;
            }
        }
    }
    scores
}

/// Fits `kind` on every interaction of `data` (each counts one) and packs it as a model
/// version: each item's `keep` strongest neighbours.
pub fn train_item_item(
    data: &Interactions,
    kind: ItemItemKind,
    recency: Recency,
    keep: usize,
) -> ItemNeighbours {
    let fitted = ItemItem::fit(
        &user_items(data, Strength::Binary),
        data.items.len(),
        kind,
        keep,
    );
    let mut manifest = new_manifest(kind.name(), 0, data.items.len());
    manifest.data = data.summary();
    let mut parameters = match kind {
        ItemItemKind::Ease { lambda } => serde_json::json!({
            "algorithm": "ease",
            "lambda": lambda,
            "hot_items": EASE_MAX_ITEMS,
        }),
        ItemItemKind::Knn { neighbours } => serde_json::json!({
            "algorithm": "item-knn-cosine",
            "neighbours": neighbours,
        }),
    };
    parameters["keep"] = keep.into();
    parameters["recency_half_life"] = serde_json::json!(recency.half_life());
    manifest.parameters = parameters.as_object().cloned().unwrap_or_default();
    let Csr {
        indptr,
        indices,
        values,
    } = fitted.weights;
    ItemNeighbours::new(manifest, data.items.clone(), indptr, indices, values)
}

/// Row `a` of XᵀX for binary X: how many users had both `a` and each other item, as
/// (item, count) for the items seen with it. `seen` is scratch of `items` zeros.
fn cooccurrence_row(
    a: usize,
    user_items: &Csr,
    item_users: &Csr,
    counts: &mut [f32],
    touched: &mut Vec<u32>,
) {
    touched.clear();
    for &u in item_users.row(a).0 {
        for &b in user_items.row(u as usize).0 {
            if counts[b as usize] == 0.0 {
                touched.push(b);
            }
            counts[b as usize] += 1.0;
        }
    }
}

/// The `keep` largest of `(item, weight)`, strongest first (ties: lower item first).
fn strongest(mut row: Vec<(u32, f32)>, keep: usize) -> Vec<(u32, f32)> {
    let by_weight = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if row.len() > keep && keep > 0 {
        row.select_nth_unstable_by(keep - 1, by_weight);
        row.truncate(keep);
    }
    row.sort_by(by_weight);
    row
}

fn csr_of_rows(rows: Vec<Vec<(u32, f32)>>) -> Csr {
    let mut m = Csr {
        indptr: Vec::with_capacity(rows.len() + 1),
        ..Csr::default()
    };
    m.indptr.push(0);
    for row in rows {
        for (i, w) in row {
            m.indices.push(i);
            m.values.push(w);
        }
        m.indptr.push(m.indices.len());
    }
    m
}

/// Cosine similarity of item columns, the `keep` nearest per item (an item is not its own
/// neighbour).
fn knn(user_items: &Csr, items: usize, keep: usize) -> Csr {
    let item_users = user_items.transpose(items);
    let norms: Vec<f32> = (0..items)
        .map(|i| (item_users.row(i).0.len() as f32).sqrt())
        .collect();
    let rows: Vec<Vec<(u32, f32)>> = (0..items)
        .into_par_iter()
        .map_init(
            || (vec![0.0f32; items], Vec::new()),
            |(counts, touched), a| {
                cooccurrence_row(a, user_items, &item_users, counts, touched);
                let row: Vec<(u32, f32)> = touched
                    .iter()
                    .filter(|&&b| b as usize != a)
                    .map(|&b| (b, counts[b as usize] / (norms[a] * norms[b as usize])))
                    .collect();
                for &b in touched.iter() {
                    counts[b as usize] = 0.0;
                }
                strongest(row, keep)
            },
        )
        .collect();
    csr_of_rows(rows)
}

/// EASE on the `EASE_MAX_ITEMS` most played items; rows of the others are empty.
fn ease(user_items: &Csr, items: usize, lambda: f32, keep: usize) -> Csr {
    let item_users = user_items.transpose(items);
    let mut hot: Vec<u32> = (0..items as u32).collect();
    hot.sort_by_key(|&i| std::cmp::Reverse(item_users.row(i as usize).0.len()));
    hot.truncate(EASE_MAX_ITEMS);
    hot.retain(|&i| !item_users.row(i as usize).0.is_empty());
    let n = hot.len();
    let mut position = vec![u32::MAX; items];
    for (p, &i) in hot.iter().enumerate() {
        position[i as usize] = p as u32;
    }
    // G = XᵀX + λI over the hot set, row by row.
    let rows: Vec<Vec<(u32, f32)>> = hot
        .par_iter()
        .map_init(
            || (vec![0.0f32; items], Vec::new()),
            |(counts, touched), &a| {
                cooccurrence_row(a as usize, user_items, &item_users, counts, touched);
                let row = touched
                    .iter()
                    .filter(|&&b| position[b as usize] != u32::MAX)
                    .map(|&b| (position[b as usize], counts[b as usize]))
                    .collect();
                for &b in touched.iter() {
                    counts[b as usize] = 0.0;
                }
                row
            },
        )
        .collect();
    let mut g = faer::Mat::<f64>::zeros(n, n);
    for (a, row) in rows.iter().enumerate() {
        for &(b, c) in row {
            g[(a, b as usize)] = c as f64;
        }
        g[(a, a)] += lambda as f64;
    }
    drop(rows);
    let p = invert_spd(g);
    let diag: Vec<f64> = (0..n).map(|j| p[(j, j)]).collect();
    // B[a][b] = -P[a][b] / P[b][b]: the weight from the source a to the target b.
    let hot_rows: Vec<Vec<(u32, f32)>> = (0..n)
        .into_par_iter()
        .map(|a| {
            let row: Vec<(u32, f32)> = (0..n)
                .filter(|&b| b != a)
                .map(|b| (hot[b], (-p[(a, b)] / diag[b]) as f32))
                .filter(|&(_, w)| w != 0.0)
                .collect();
            strongest(row, keep)
        })
        .collect();
    let mut out: Vec<Vec<(u32, f32)>> = vec![Vec::new(); items];
    for (a, row) in hot_rows.into_iter().enumerate() {
        out[hot[a] as usize] = row;
    }
    csr_of_rows(out)
}

/// The inverse of a symmetric positive definite matrix (G + λI with λ > 0 always is).
/// `g` is dropped once factored: at the 20,000-item hot set each of `g`, its factor and the
/// inverse is 3.2 GB, and only two need to be alive at once.
fn invert_spd(g: faer::Mat<f64>) -> faer::Mat<f64> {
    use faer::linalg::solvers::DenseSolveCore;
    match g.llt(faer::Side::Lower) {
        Ok(llt) => {
            drop(g);
            llt.inverse()
        }
        // Not positive definite in floating point (λ = 0 on a degenerate matrix): the
        // partial-pivoting LU still inverts what can be inverted.
        Err(_) => g.partial_piv_lu().inverse(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users 0..6 have items 0..3, users 6..12 items 3..6, each missing one.
    fn two_groups() -> Csr {
        let mut cells = Vec::new();
        for u in 0..12u32 {
            let items = if u < 6 { 0..3u32 } else { 3..6 };
            for i in items {
                if (u + i) % 3 != 0 {
                    cells.push((u, i, 1.0));
                }
            }
        }
        Csr::from_triples(12, cells.into_iter())
    }

    #[test]
    fn both_kinds_recommend_from_the_listeners_own_group() {
        let m = two_groups();
        for kind in [
            ItemItemKind::Ease { lambda: 1.0 },
            ItemItemKind::Knn { neighbours: 10 },
        ] {
            let model = ItemItem::fit(&m, 6, kind, 100);
            let scores = model.scores((&[0, 1], &[1.0, 0.0]), Recency::Flat);
            assert!(
                scores[2] > scores[3] && scores[2] > scores[5],
                "{kind:?}: {scores:?}"
            );
        }
    }

    #[test]
    fn recency_lets_the_latest_listening_lead() {
        // Two items of the first group long ago, one of the second just now.
        let model = ItemItem::fit(&two_groups(), 6, ItemItemKind::Knn { neighbours: 10 }, 100);
        let history: (&[u32], &[f32]) = (&[0, 1, 3], &[5.0, 4.0, 0.0]);
        let flat = model.scores(history, Recency::Flat);
        assert!(
            flat[2] > flat[4],
            "all alike, the larger group leads: {flat:?}"
        );
        let recent = model.scores(history, Recency::HalfLife(1.0));
        assert!(
            recent[4] > recent[2] && recent[5] > recent[2],
            "the latest leads: {recent:?}"
        );
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // matrix indices read best as indices
    fn ease_is_the_closed_form_solution() {
        // With diag(B) = 0, B = I - P / diag(P) satisfies (XᵀX + λI) B = XᵀX - diag(μ) for
        // some μ: off the diagonal, G·B equals XᵀX.
        let m = two_groups();
        let lambda = 2.0;
        let model = ItemItem::fit(&m, 6, ItemItemKind::Ease { lambda }, 100);
        let mut b = [[0.0f64; 6]; 6];
        for (a, row) in b.iter_mut().enumerate() {
            let (to, w) = model.weights.row(a);
            for (&i, &w) in to.iter().zip(w) {
                row[i as usize] = w as f64;
            }
        }
        let mut xtx = [[0.0f64; 6]; 6];
        for u in 0..m.rows() {
            let its = m.row(u).0;
            for &a in its {
                for &c in its {
                    xtx[a as usize][c as usize] += 1.0;
                }
            }
        }
        for a in 0..6 {
            for c in 0..6 {
                if a == c {
                    continue;
                }
                let gb: f64 = (0..6)
                    .map(|j| (xtx[a][j] + if a == j { lambda as f64 } else { 0.0 }) * b[j][c])
                    .sum();
                assert!(
                    (gb - xtx[a][c]).abs() < 1e-4,
                    "({a},{c}): {gb} vs {}",
                    xtx[a][c]
                );
            }
        }
    }

    #[test]
    fn knn_keeps_the_nearest_and_never_the_item_itself() {
        let model = ItemItem::fit(&two_groups(), 6, ItemItemKind::Knn { neighbours: 1 }, 1);
        for a in 0..6 {
            let (to, _) = model.weights.row(a);
            assert_eq!(to.len(), 1);
            assert_ne!(to[0] as usize, a);
            assert_eq!(to[0] < 3, a < 3, "item {a}'s neighbour is in its group");
        }
    }
}
