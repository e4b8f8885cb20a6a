//! Offline evaluation: each user's history split by time, a model trained on the earlier part,
//! the later part scored with precision@k, recall@k, NDCG@k and catalog coverage, next to a
//! popularity baseline on the same split.

use super::train::{AlsParams, Csr, Interactions, progress_count, train_model};
use crate::recommend::model::dot;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashSet;

/// Ranking metrics averaged over the evaluated users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    /// Share of the training items that appear in at least one top-k list.
    pub coverage: f64,
    pub users: usize,
}

/// The held-out part: per user, the items to be found.
pub struct Split {
    pub train: Interactions,
    pub test: Vec<(u32, Vec<u32>)>,
}

/// Splits each user's history by time: the last `test_fraction` of a user's interactions
/// (at least one) is held out, for users with at least two. Ties keep file order.
pub fn split_by_time(data: &Interactions, test_fraction: f64) -> Split {
    let mut per_user: Vec<Vec<usize>> = vec![Vec::new(); data.users.len()];
    for (i, r) in data.rows.iter().enumerate() {
        per_user[r.user as usize].push(i);
    }
    let mut train = data.same_ids();
    let mut test = Vec::new();
    for (u, mut rows) in per_user.into_iter().enumerate() {
        rows.sort_by_key(|&i| data.rows[i].ts);
        let held = if rows.len() >= 2 {
            ((rows.len() as f64 * test_fraction).round() as usize).clamp(1, rows.len() - 1)
        } else {
            0
        };
        let cut = rows.len() - held;
        train.rows.extend(rows[..cut].iter().map(|&i| data.rows[i]));
        if held > 0 {
            let train_items: HashSet<u32> =
                rows[..cut].iter().map(|&i| data.rows[i].item).collect();
            let mut items: Vec<u32> = rows[cut..]
                .iter()
                .map(|&i| data.rows[i].item)
                .filter(|i| !train_items.contains(i))
                .collect();
            items.sort_unstable();
            items.dedup();
            if !items.is_empty() {
                test.push((u as u32, items));
            }
        }
    }
    Split { train, test }
}

/// Held-out items from a separate file, in `train`'s id space. Users the training data does
/// not know cannot be scored and are left out; unknown items stay in as misses.
pub fn test_from(train: &mut Interactions, held: &Interactions) -> Vec<(u32, Vec<u32>)> {
    let mut per_user: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    for r in &held.rows {
        let Some(u) = train.user_of(&held.users[r.user as usize]) else {
            continue;
        };
        // An item only the test file has gets an id no model row has: a certain miss.
        let item = train.item(&held.items[r.item as usize]);
        per_user.entry(u).or_default().push(item);
    }
    per_user
        .into_iter()
        .map(|(u, mut items)| {
            items.sort_unstable();
            items.dedup();
            (u, items)
        })
        .collect()
}

/// Scores `test` users' top-k lists: `rank(user, k)` returns a user's list (without what
/// they already had).
pub fn score(
    test: &[(u32, Vec<u32>)],
    k: usize,
    items: usize,
    what: &str,
    rank: impl Fn(u32, usize) -> Vec<u32> + Sync,
) -> Metrics {
    let bar = progress_count(test.len() as u64, what);
    let per_user: Vec<(f64, f64, f64, Vec<u32>)> = test
        .par_iter()
        .map(|(u, wanted)| {
            let top = rank(*u, k);
            let hits: Vec<bool> = top
                .iter()
                .map(|i| wanted.binary_search(i).is_ok())
                .collect();
            let n_hits = hits.iter().filter(|h| **h).count() as f64;
            let dcg: f64 = hits
                .iter()
                .enumerate()
                .filter(|(_, h)| **h)
                .map(|(r, _)| 1.0 / (r as f64 + 2.0).log2())
                .sum();
            let idcg: f64 = (0..wanted.len().min(k))
                .map(|r| 1.0 / (r as f64 + 2.0).log2())
                .sum();
            bar.inc(1);
            (
                n_hits / k as f64,
                n_hits / wanted.len() as f64,
                dcg / idcg,
                top,
            )
        })
        .collect();
    bar.finish_and_clear();
    let n = per_user.len().max(1) as f64;
    let covered: HashSet<u32> = per_user.iter().flat_map(|p| p.3.iter().copied()).collect();
    Metrics {
        precision: per_user.iter().map(|p| p.0).sum::<f64>() / n,
        recall: per_user.iter().map(|p| p.1).sum::<f64>() / n,
        ndcg: per_user.iter().map(|p| p.2).sum::<f64>() / n,
        coverage: covered.len() as f64 / items.max(1) as f64,
        users: per_user.len(),
    }
}

/// The top `k` of `scores` (indexed by item), skipping `seen` items.
pub fn top_k(scores: &[f32], k: usize, seen: &[u32]) -> Vec<u32> {
    let mut ranked: Vec<(f32, u32)> = scores
        .iter()
        .enumerate()
        .filter(|(i, _)| seen.binary_search(&(*i as u32)).is_err())
        .map(|(i, &s)| (s, i as u32))
        .collect();
    let k = k.min(ranked.len());
    if k == 0 {
        return Vec::new();
    }
    ranked.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
    ranked.truncate(k);
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, i)| i).collect()
}

/// The report of one evaluation: each method's metrics.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub k: usize,
    pub interactions: usize,
    pub train_interactions: usize,
    pub users: usize,
    pub items: usize,
    pub evaluated_users: usize,
    pub als: Metrics,
    pub popularity: Metrics,
}

/// Trains on `train` and scores `test` (at most `max_users` of them, evenly spread) for
/// ALS and for popularity.
pub fn evaluate(
    train: Interactions,
    mut test: Vec<(u32, Vec<u32>)>,
    total_rows: usize,
    k: usize,
    params: AlsParams,
    max_users: usize,
) -> Report {
    if test.len() > max_users {
        let step = test.len() as f64 / max_users as f64;
        test = (0..max_users)
            .map(|i| test[(i as f64 * step) as usize].clone())
            .collect();
    }
    // Items only a test file names have no interactions: their factors stay zero.
    let items = train.items.len();
    let (model, trained, user_items): (_, _, Csr) = train_model(&train, params);
    let d = trained.dim;
    let seen = |u: u32| user_items.row(u as usize).0;
    let als = score(&test, k, items, "scoring ALS", |u, k| {
        let x = &trained.users[u as usize * d..(u as usize + 1) * d];
        let scores: Vec<f32> = model.factors.chunks_exact(d).map(|y| dot(x, y)).collect();
        top_k(&scores[..items], k, seen(u))
    });
    let mut counts = vec![0f32; items];
    for &i in &user_items.indices {
        if (i as usize) < items {
            counts[i as usize] += 1.0;
        }
    }
    let popularity = score(&test, k, items, "scoring popularity", |u, k| {
        top_k(&counts, k, seen(u))
    });
    Report {
        k,
        interactions: total_rows,
        train_interactions: user_items.nnz(),
        users: train.users.len(),
        items,
        evaluated_users: als.users,
        als,
        popularity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_interactions_are_held_out() {
        let mut data = Interactions::default();
        for (ts, item) in [(3, "c"), (1, "a"), (2, "b"), (4, "d"), (5, "e")] {
            data.push("u", item, ts, 1.0);
        }
        data.push("lonely", "a", 1, 1.0);
        let split = split_by_time(&data, 0.4);
        assert_eq!(split.train.rows.len(), 4, "3 of u's plus lonely's only one");
        let (u, held) = &split.test[0];
        assert_eq!(data.users[*u as usize], "u");
        let names: Vec<&str> = held
            .iter()
            .map(|&i| data.items[i as usize].as_str())
            .collect();
        assert_eq!(names, ["d", "e"]);
    }

    #[test]
    fn metrics_of_a_perfect_and_an_empty_ranking() {
        let test = vec![(0u32, vec![1u32, 2])];
        let perfect = score(&test, 2, 10, "t", |_, _| vec![1, 2]);
        assert_eq!(
            (perfect.precision, perfect.recall, perfect.ndcg),
            (1.0, 1.0, 1.0)
        );
        assert!((perfect.coverage - 0.2).abs() < 1e-9);
        let miss = score(&test, 2, 10, "t", |_, _| vec![3, 4]);
        assert_eq!((miss.precision, miss.recall, miss.ndcg), (0.0, 0.0, 0.0));
        let second = score(&test, 2, 10, "t", |_, _| vec![3, 1]);
        assert!(second.ndcg > 0.0 && second.ndcg < 0.5, "{}", second.ndcg);
    }

    #[test]
    fn top_k_skips_seen_items() {
        assert_eq!(top_k(&[0.9, 0.1, 0.8, 0.5], 2, &[0]), vec![2, 3]);
    }
}
