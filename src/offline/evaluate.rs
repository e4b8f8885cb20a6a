//! Offline evaluation's parts: each user's history split by time (their latest share held
//! out, or their last interaction), and ranked lists scored with precision@k, recall@k and
//! NDCG@k (binary relevance) and beyond accuracy: catalog coverage, novelty and intra-list
//! diversity. `select` fits the models and puts them side by side.

use super::train::{Csr, Interactions, progress_count};
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
    /// Mean self-information of the listed items, -log2(share of users who had the item):
    /// higher is less obvious.
    pub novelty: f64,
    /// Mean, over lists, of 1 - the cosine similarity of the items' training user vectors
    /// over the list's pairs: higher is more varied.
    pub diversity: f64,
    pub users: usize,
}

/// The serving path under one set of weights.
#[derive(Debug, Clone, Serialize)]
pub struct ServingScore {
    /// `default`, or the one weight changed (`model=2.000`).
    pub name: String,
    pub weights: crate::recommend::RankWeights,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// Which interactions are held out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Each user's latest share (rounded, at least one, never all), for users with two or
    /// more interactions.
    Latest(f64),
    /// Each user's last interaction (next-item), for users with two or more.
    Last,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Protocol::Latest(share) => {
                write!(f, "each user's latest {:.0}% held out", share * 100.0)
            }
            Protocol::Last => f.write_str("each user's last interaction held out"),
        }
    }
}

/// The held-out part: per user, the items to be found.
pub struct Split {
    pub train: Interactions,
    pub test: Vec<(u32, Vec<u32>)>,
}

/// Splits each user's history by time as `protocol` says. Ties keep file order; held-out
/// items the user had in training are dropped (they cannot be recommended).
pub fn split(data: &Interactions, protocol: Protocol) -> Split {
    split_some(data, protocol, |_| true)
}

/// `split` for the users `held` picks; the others keep their whole history for training.
pub fn split_some(data: &Interactions, protocol: Protocol, held: impl Fn(u32) -> bool) -> Split {
    let mut per_user: Vec<Vec<usize>> = vec![Vec::new(); data.users.len()];
    for (i, r) in data.rows.iter().enumerate() {
        per_user[r.user as usize].push(i);
    }
    let mut train = data.same_ids();
    let mut test = Vec::new();
    for (u, mut rows) in per_user.into_iter().enumerate() {
        rows.sort_by_key(|&i| data.rows[i].ts);
        let held = match (rows.len(), protocol) {
            _ if !held(u as u32) => 0,
            (0 | 1, _) => 0,
            (_, Protocol::Last) => 1,
            (n, Protocol::Latest(share)) => ((n as f64 * share).round() as usize).clamp(1, n - 1),
        };
        let cut = rows.len() - held;
        train.rows.extend(rows[..cut].iter().map(|&i| data.rows[i]));
        if held > 0 {
            let train_items: HashSet<u32> =
                rows[..cut].iter().map(|&i| data.rows[i].item).collect();
            // What a listener went on to like is relevant; a skip or dislike is not.
            let mut items: Vec<u32> = rows[cut..]
                .iter()
                .filter(|&&i| data.rows[i].weight > 0.0)
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

/// `split` with each user's latest `test_fraction` held out.
pub fn split_by_time(data: &Interactions, test_fraction: f64) -> Split {
    split(data, Protocol::Latest(test_fraction))
}

/// Held-out items from a separate file, in `train`'s id space. Users the training data does
/// not know cannot be scored and are left out; unknown items stay in as misses.
pub fn test_from(train: &mut Interactions, held: &Interactions) -> Vec<(u32, Vec<u32>)> {
    let mut per_user: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    for r in held.rows.iter().filter(|r| r.weight > 0.0) {
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

/// What the beyond-accuracy metrics need from the training data: how many users had each
/// item, and who.
pub struct Judge {
    items: usize,
    users: usize,
    item_users: Csr,
}

impl Judge {
    /// Over `user_items` (users × `items`; values are ignored).
    pub fn new(user_items: &Csr, items: usize) -> Self {
        Judge {
            items,
            users: user_items.rows(),
            item_users: user_items.transpose(items),
        }
    }

    fn had(&self, item: u32) -> &[u32] {
        if (item as usize) < self.item_users.rows() {
            self.item_users.row(item as usize).0
        } else {
            &[]
        }
    }

    fn novelty(&self, item: u32) -> f64 {
        let n = self.had(item).len().max(1) as f64;
        -(n / self.users.max(1) as f64).log2()
    }

    /// Cosine similarity of two items' (binary) user vectors.
    fn similarity(&self, a: u32, b: u32) -> f64 {
        let (x, y) = (self.had(a), self.had(b));
        if x.is_empty() || y.is_empty() {
            return 0.0;
        }
        let (mut i, mut j, mut both) = (0, 0, 0usize);
        while i < x.len() && j < y.len() {
            match x[i].cmp(&y[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    both += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        both as f64 / ((x.len() * y.len()) as f64).sqrt()
    }

    fn diversity(&self, list: &[u32]) -> f64 {
        let pairs = list.len() * list.len().saturating_sub(1) / 2;
        if pairs == 0 {
            return 0.0;
        }
        let mut similar = 0.0;
        for (n, &a) in list.iter().enumerate() {
            for &b in &list[n + 1..] {
                similar += self.similarity(a, b);
            }
        }
        1.0 - similar / pairs as f64
    }
}

/// Scores `test` users' top-k lists: `rank(user, k)` returns a user's list (without what
/// they already had).
pub fn score(
    test: &[(u32, Vec<u32>)],
    k: usize,
    judge: &Judge,
    what: &str,
    rank: impl Fn(u32, usize) -> Vec<u32> + Sync,
) -> Metrics {
    let bar = progress_count(test.len() as u64, what);
    let per_user: Vec<([f64; 5], Vec<u32>)> = test
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
            let novelty = top.iter().map(|&i| judge.novelty(i)).sum::<f64>();
            bar.inc(1);
            (
                [
                    n_hits / k as f64,
                    n_hits / wanted.len() as f64,
                    dcg / idcg,
                    novelty,
                    judge.diversity(&top),
                ],
                top,
            )
        })
        .collect();
    bar.finish_and_clear();
    let n = per_user.len().max(1) as f64;
    let listed = per_user.iter().map(|p| p.1.len()).sum::<usize>().max(1) as f64;
    let covered: HashSet<u32> = per_user.iter().flat_map(|p| p.1.iter().copied()).collect();
    let mean = |m: usize| per_user.iter().map(|p| p.0[m]).sum::<f64>() / n;
    Metrics {
        precision: mean(0),
        recall: mean(1),
        ndcg: mean(2),
        coverage: covered
            .iter()
            .filter(|&&i| (i as usize) < judge.items)
            .count() as f64
            / judge.items.max(1) as f64,
        novelty: per_user.iter().map(|p| p.0[3]).sum::<f64>() / listed,
        diversity: mean(4),
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
    // A fresh Vec of k: collecting from `into_iter` would reuse `ranked`'s allocation, and a
    // list kept per user would hold a whole catalog's worth of memory each.
    ranked.iter().map(|&(_, i)| i).collect()
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
        let judge = Judge::new(&Csr::from_triples(1, std::iter::empty()), 10);
        let perfect = score(&test, 2, &judge, "t", |_, _| vec![1, 2]);
        assert_eq!(
            (perfect.precision, perfect.recall, perfect.ndcg),
            (1.0, 1.0, 1.0)
        );
        assert!((perfect.coverage - 0.2).abs() < 1e-9);
        let miss = score(&test, 2, &judge, "t", |_, _| vec![3, 4]);
        assert_eq!((miss.precision, miss.recall, miss.ndcg), (0.0, 0.0, 0.0));
        let second = score(&test, 2, &judge, "t", |_, _| vec![3, 1]);
        assert!(second.ndcg > 0.0 && second.ndcg < 0.5, "{}", second.ndcg);
    }

    #[test]
    fn the_last_interaction_is_held_out_unless_it_was_had_before() {
        let mut data = Interactions::default();
        for (ts, item) in [(3, "c"), (1, "a"), (2, "b")] {
            data.push("u", item, ts, 1.0);
        }
        for (ts, item) in [(1, "a"), (2, "b"), (3, "a")] {
            data.push("again", item, ts, 1.0);
        }
        let split = split(&data, Protocol::Last);
        assert_eq!(split.train.rows.len(), 4, "two of each");
        assert_eq!(split.test.len(), 1, "a repeat is not a next item to find");
        let (u, held) = &split.test[0];
        assert_eq!(data.users[*u as usize], "u");
        assert_eq!(data.items[held[0] as usize], "c");
    }

    #[test]
    fn novelty_rewards_rare_items_and_diversity_unlike_ones() {
        // Items 0 and 1 are had by the same four users, item 2 by one other.
        let mut cells = Vec::new();
        for u in 0..4u32 {
            cells.extend([(u, 0u32, 1.0), (u, 1, 1.0)]);
        }
        cells.push((4, 2, 1.0));
        let judge = Judge::new(&Csr::from_triples(5, cells.into_iter()), 3);
        let test = vec![(0u32, vec![9u32])];
        let alike = score(&test, 2, &judge, "t", |_, _| vec![0, 1]);
        let unlike = score(&test, 2, &judge, "t", |_, _| vec![0, 2]);
        assert!(alike.diversity.abs() < 1e-9, "{}", alike.diversity);
        assert!(
            (unlike.diversity - 1.0).abs() < 1e-9,
            "{}",
            unlike.diversity
        );
        // -log2(4/5) for item 0 and 1; -log2(1/5) for item 2.
        assert!((alike.novelty - 0.3219).abs() < 1e-3, "{}", alike.novelty);
        assert!(unlike.novelty > alike.novelty);
    }

    #[test]
    fn top_k_skips_seen_items() {
        assert_eq!(top_k(&[0.9, 0.1, 0.8, 0.5], 2, &[0]), vec![2, 3]);
    }

    #[test]
    fn a_top_k_list_holds_k_items_of_memory_not_the_catalogs() {
        // Kept for every user while scoring: at 87,000 items and 20,000 users the lists
        // that kept the whole ranking's allocation took 14 GB.
        let scores: Vec<f32> = (0..100_000).map(|i| (i % 977) as f32).collect();
        let top = top_k(&scores, 10, &[]);
        assert_eq!(top.len(), 10);
        assert!(top.capacity() <= 16, "capacity {}", top.capacity());
    }
}
