//! Offline training: interaction logs in, item embeddings out. Implicit-feedback matrix
//! factorization by alternating least squares (Hu, Koren and Volinsky, 2008), written here:
//! no maintained Rust crate does implicit ALS, and the algorithm is a few dozen lines over
//! a Cholesky solve. Rows are solved in parallel with rayon.

use crate::feedback::{EventKind, FeedbackEvent};
use crate::recommend::BadRow;
use crate::recommend::model::{ItemFactors, add_outer, new_manifest, solve_spd};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// One interaction: a user engaged with an item at a time, with a strength.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    pub user: u32,
    pub item: u32,
    /// Seconds (or any monotonic unit) since the epoch.
    pub ts: i64,
    pub weight: f32,
}

/// Interactions with their user and item ids interned.
#[derive(Debug, Default, Clone)]
pub struct Interactions {
    pub users: Vec<String>,
    pub items: Vec<String>,
    user_ix: HashMap<String, u32>,
    item_ix: HashMap<String, u32>,
    pub rows: Vec<Interaction>,
    /// Rows that could not be read, with their line.
    pub bad: Vec<BadRow>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("cannot read {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: crate::error::Cause,
    },
    #[error("no usable interactions in {0}")]
    Empty(String),
}

fn read_error(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> TrainError {
    TrainError::Read {
        path: path.to_owned(),
        source: crate::error::cause(e),
    }
}

impl Interactions {
    /// How much there is, as a manifest's `data` records it.
    pub fn summary(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("interactions".into(), self.rows.len().into());
        m.insert("users".into(), self.users.len().into());
        m.insert("items".into(), self.items.len().into());
        m
    }

    /// The same user and item ids, without interactions.
    pub fn same_ids(&self) -> Interactions {
        Interactions {
            users: self.users.clone(),
            items: self.items.clone(),
            user_ix: self.user_ix.clone(),
            item_ix: self.item_ix.clone(),
            ..Interactions::default()
        }
    }

    pub fn user(&mut self, id: &str) -> u32 {
        intern(&mut self.users, &mut self.user_ix, id)
    }

    pub fn item(&mut self, id: &str) -> u32 {
        intern(&mut self.items, &mut self.item_ix, id)
    }

    pub fn item_of(&self, id: &str) -> Option<u32> {
        self.item_ix.get(id).copied()
    }

    pub fn user_of(&self, id: &str) -> Option<u32> {
        self.user_ix.get(id).copied()
    }

    pub fn push(&mut self, user: &str, item: &str, ts: i64, weight: f32) {
        let user = self.user(user);
        let item = self.item(item);
        self.rows.push(Interaction {
            user,
            item,
            ts,
            weight,
        });
    }

    /// Reads a feedback log directory or a CSV of `user_id,item_id,timestamp[,rating]`.
    pub fn read(path: &Path) -> Result<Self, TrainError> {
        let mut data = Interactions::default();
        if path.is_dir() {
            data.read_feedback_log(path)?;
        } else {
            data.read_csv(path)?;
        }
        if data.rows.is_empty() {
            return Err(TrainError::Empty(path.display().to_string()));
        }
        Ok(data)
    }

    /// Adds the rows of a CSV of `user_id,item_id,timestamp[,rating]` (a header line is
    /// recognised and may name the columns in any order). Timestamps are integers or
    /// RFC 3339; a missing rating counts 1, a negative one is evidence against the item (as
    /// a skip is) and 0 is dropped. Bad rows are kept in `bad` with their line.
    pub fn read_csv(&mut self, path: &Path) -> Result<(), TrainError> {
        let size = std::fs::metadata(path)
            .map_err(|e| read_error(path, e))?
            .len();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(path)
            .map_err(|e| read_error(path, e))?;
        let bar = progress_bytes(size, "reading interactions");
        let mut columns = [0usize, 1, 2, 3];
        let mut record = csv::StringRecord::new();
        let mut first = true;
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or_default();
                    self.bad.push(BadRow {
                        line,
                        reason: e.to_string(),
                    });
                    continue;
                }
            }
            let line = record.position().map(|p| p.line()).unwrap_or_default();
            if line.is_multiple_of(65_536) {
                bar.set_position(record.position().map(|p| p.byte()).unwrap_or_default());
            }
            if std::mem::take(&mut first) && record.get(2).and_then(parse_ts).is_none() {
                // A header: find the columns by name.
                for (slot, names) in columns.iter_mut().zip([
                    &["user_id", "user", "userId"][..],
                    &["item_id", "item", "track_id", "itemId", "movieId"][..],
                    &["timestamp", "ts", "time"][..],
                    &["rating", "weight", "count"][..],
                ]) {
                    if let Some(i) = record.iter().position(|h| names.contains(&h.trim())) {
                        *slot = i;
                    }
                }
                continue;
            }
            let field = |i: usize| record.get(columns[i]).map(str::trim).unwrap_or_default();
            let (user, item) = (field(0), field(1));
            let Some(ts) = parse_ts(field(2)) else {
                self.bad.push(BadRow {
                    line,
                    reason: format!("timestamp {:?} is not a number or RFC 3339", field(2)),
                });
                continue;
            };
            let weight = match record.get(columns[3]).map(str::trim) {
                None | Some("") => 1.0,
                Some(s) => match s.parse::<f32>() {
                    Ok(w) if w.is_finite() => w,
                    _ => {
                        self.bad.push(BadRow {
                            line,
                            reason: format!("rating {s:?} is not a number"),
                        });
                        continue;
                    }
                },
            };
            if user.is_empty() || item.is_empty() {
                self.bad.push(BadRow {
                    line,
                    reason: "empty user_id or item_id".into(),
                });
                continue;
            }
            // Zero says nothing; below zero is evidence against (a skip exported as -1).
            if weight != 0.0 {
                self.push(user, item, ts, weight);
            }
        }
        bar.finish_and_clear();
        for bad in self.bad.iter().take(10) {
            tracing::warn!(path = %path.display(), line = bad.line, reason = bad.reason, "interaction row skipped");
        }
        tracing::info!(path = %path.display(), rows = self.rows.len(), skipped = self.bad.len(), users = self.users.len(), items = self.items.len(), "interactions read");
        Ok(())
    }

    /// Adds the events of a feedback log, each as `event_value` says.
    pub fn read_feedback_log(&mut self, dir: &Path) -> Result<(), TrainError> {
        // Read without the log's lock: a server may keep writing it.
        super::events::read_log(dir, |event| self.push_event(&event))
            .map_err(|e| read_error(dir, e))?;
        Ok(())
    }

    /// Adds one feedback event as `event_value` says (nothing for a start or a failure).
    pub fn push_event(&mut self, event: &FeedbackEvent) {
        let Some(weight) = event_value(event.kind) else {
            return;
        };
        let ts = parse_ts(&event.occurred_at).unwrap_or_default();
        self.push(&event.user_id, &event.track_id.0, ts, weight);
    }
}

/// What a feedback event says of the listener and the track, as an interaction's value: a
/// finished play 1, a play stopped after 30 s but before the end 0.5, a like 3; a skip
/// (before 30 s) −1 and a dislike −3, evidence against. A start or a failed stream says
/// nothing. How much each counts then depends on the strength validation chooses
/// (`Strength`): as one each, as given, or as given with the evidence against.
pub fn event_value(kind: EventKind) -> Option<f32> {
    match kind {
        EventKind::PlayFinished => Some(1.0),
        EventKind::Stopped => Some(0.5),
        EventKind::Liked => Some(3.0),
        EventKind::Skipped => Some(-1.0),
        EventKind::Disliked => Some(-3.0),
        EventKind::PlayStarted | EventKind::Failed => None,
    }
}

fn intern(names: &mut Vec<String>, index: &mut HashMap<String, u32>, id: &str) -> u32 {
    if let Some(&i) = index.get(id) {
        return i;
    }
    let i = names.len() as u32;
    names.push(id.to_owned());
    index.insert(id.to_owned(), i);
    i
}

/// Seconds (or milliseconds: kept as given, only the order matters) or RFC 3339.
pub fn parse_ts(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Some(f as i64);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// A sparse matrix in compressed rows: row `r` holds `indices[indptr[r]..indptr[r+1]]`.
#[derive(Debug, Clone, Default)]
pub struct Csr {
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// Rows from `(row, column, value)` triples; repeated cells add up. One sort, no map
    /// per row, so millions of interactions stay cheap.
    pub fn from_triples(rows: usize, triples: impl Iterator<Item = (u32, u32, f32)>) -> Self {
        let mut cells: Vec<(u32, u32, f32)> = triples.collect();
        cells.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut m = Csr {
            indptr: vec![0; rows + 1],
            ..Csr::default()
        };
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in cells {
            if last == Some((r, c)) {
                *m.values.last_mut().expect("a cell was pushed") += v;
                continue;
            }
            last = Some((r, c));
            m.indices.push(c);
            m.values.push(v);
            m.indptr[r as usize + 1] += 1;
        }
        for r in 0..rows {
            m.indptr[r + 1] += m.indptr[r];
        }
        m
    }

    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let span = self.indptr[r]..self.indptr[r + 1];
        (&self.indices[span.clone()], &self.values[span])
    }

    pub fn transpose(&self, columns: usize) -> Csr {
        Csr::from_triples(
            columns,
            (0..self.rows()).flat_map(|r| {
                let (cs, vs) = self.row(r);
                cs.iter().zip(vs).map(move |(&c, &v)| (c, r as u32, v))
            }),
        )
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
}

/// How an interaction's value becomes the strength a model sees. Values below zero (a
/// skip, a dislike) are evidence against the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// Every positive interaction counts one, whatever its rating or count (repeats add
    /// up); the evidence against is left out.
    Binary,
    /// The value as given (a rating, a play count, a like's 3); the evidence against is
    /// left out.
    Given,
    /// The value as given, the evidence against kept: a user-item cell whose values sum
    /// below zero is, for ALS, a preference of 0 held with confidence 1 + alpha·ln(1 + |v|)
    /// (more than an unseen item's 1). Item-item models and popularity count positives only.
    Signed,
}

/// Users × items with each interaction's strength as `strength` says.
pub fn user_items(data: &Interactions, strength: Strength) -> Csr {
    Csr::from_triples(
        data.users.len(),
        data.rows.iter().filter_map(|r| {
            let v = match strength {
                Strength::Binary if r.weight > 0.0 => 1.0,
                Strength::Given if r.weight > 0.0 => r.weight,
                Strength::Signed => r.weight,
                Strength::Binary | Strength::Given => return None,
            };
            Some((r.user, r.item, v))
        }),
    )
}

/// Users × items over the items each user liked (the columns of `user_items` with
/// `Strength::Binary`): how many other such items they went on to have after it, 0 for
/// the latest. Order is by timestamp, file order among equals; a repeated item counts
/// from its latest play.
pub fn user_recency(data: &Interactions) -> Csr {
    let mut rows: Vec<&Interaction> = data.rows.iter().filter(|r| r.weight > 0.0).collect();
    rows.sort_by_key(|r| (r.user, r.ts));
    let mut triples = Vec::with_capacity(rows.len());
    let mut seen = std::collections::HashSet::new();
    for user in rows.chunk_by(|a, b| a.user == b.user) {
        seen.clear();
        for r in user.iter().rev() {
            if seen.insert(r.item) {
                triples.push((r.user, r.item, (seen.len() - 1) as f32));
            }
        }
    }
    Csr::from_triples(data.users.len(), triples.into_iter())
}

/// Users × items, 1 for every item a user had, whether they liked it or not: what a list
/// for them leaves out.
pub fn user_had(data: &Interactions) -> Csr {
    Csr::from_triples(
        data.users.len(),
        data.rows.iter().map(|r| (r.user, r.item, 1.0)),
    )
}

/// Parameters of implicit ALS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlsParams {
    pub factors: usize,
    pub iterations: usize,
    pub regularization: f32,
    /// Confidence of an observed cell: 1 + alpha * log(1 + strength).
    pub alpha: f32,
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 32,
            iterations: 15,
            regularization: 0.05,
            alpha: 20.0,
            seed: 42,
        }
    }
}

/// A trained model: user and item factors, row-major.
pub struct Trained {
    pub dim: usize,
    pub users: Vec<f32>,
    pub items: Vec<f32>,
}

/// Trains implicit ALS on `user_items` (users × items strengths).
pub fn train_als(user_items: &Csr, items: usize, params: AlsParams) -> Trained {
    let d = params.factors;
    let item_users = user_items.transpose(items);
    let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed);
    let mut init = |n: usize| -> Vec<f32> {
        (0..n * d)
            .map(|_| (rng.random::<f32>() - 0.5) * 0.1 / (d as f32).sqrt())
            .collect()
    };
    let mut users = init(user_items.rows());
    let mut item_factors = init(items);
    let bar = progress_count(params.iterations as u64, "ALS iterations");
    for it in 0..params.iterations {
        let started = std::time::Instant::now();
        als_step(&mut users, &item_factors, user_items, d, params);
        als_step(&mut item_factors, &users, &item_users, d, params);
        bar.inc(1);
        tracing::debug!(
            iteration = it + 1,
            took_ms = started.elapsed().as_millis() as u64,
            "ALS iteration"
        );
    }
    bar.finish_and_clear();
    Trained {
        dim: d,
        users,
        items: item_factors,
    }
}

/// Solves every row of `out` against the fixed `other` factors.
fn als_step(out: &mut [f32], other: &[f32], m: &Csr, d: usize, p: AlsParams) {
    let mut g = vec![0.0f32; d * d];
    for y in other.chunks_exact(d) {
        add_outer(&mut g, y, 1.0);
    }
    out.par_chunks_mut(d).enumerate().for_each_init(
        || (vec![0.0f32; d * d], vec![0.0f32; d]),
        |(a, b), (r, x)| {
            let (cols, vals) = m.row(r);
            if cols.is_empty() {
                x.fill(0.0);
                return;
            }
            a.copy_from_slice(&g);
            b.fill(0.0);
            for (&c, &v) in cols.iter().zip(vals) {
                // Evidence against (v < 0): preference 0, so it adds confidence only.
                let conf = 1.0 + p.alpha * (1.0 + v.abs()).ln();
                let y = &other[c as usize * d..(c as usize + 1) * d];
                add_outer(a, y, conf - 1.0);
                if v > 0.0 {
                    for (bj, yj) in b.iter_mut().zip(y) {
                        *bj += conf * yj;
                    }
                }
            }
            for j in 0..d {
                a[j * d + j] += p.regularization;
            }
            if solve_spd(a, b, d) {
                x.copy_from_slice(b);
            }
        },
    );
}

/// Trains on everything in `data` (strengths as given) and packs the item factors as a
/// model artifact.
pub fn train_model(data: &Interactions, params: AlsParams) -> (ItemFactors, Trained, Csr) {
    train_model_with(data, params, Strength::Given)
}

/// `train_model` with each interaction's strength as `strength` says.
pub fn train_model_with(
    data: &Interactions,
    params: AlsParams,
    strength: Strength,
) -> (ItemFactors, Trained, Csr) {
    let user_items = user_items(data, strength);
    let trained = train_als(&user_items, data.items.len(), params);
    let mut manifest = new_manifest("als", params.factors, data.items.len());
    manifest.data = data.summary();
    manifest.parameters = serde_json::json!({
        "algorithm": "implicit-als",
        "factors": params.factors,
        "iterations": params.iterations,
        "regularization": params.regularization,
        "alpha": params.alpha,
        "confidence": "1 + alpha * ln(1 + strength)",
        "strength": strength,
        "seed": params.seed,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    let model = ItemFactors::new(manifest, data.items.clone(), trained.items.clone());
    (model, trained, user_items)
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A progress bar on stderr over `total` bytes (drawn only on a terminal).
pub fn progress_bytes(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(style("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})"));
    bar.set_message(what.to_owned());
    bar
}

/// A progress bar on stderr over `total` steps (drawn only on a terminal).
pub fn progress_count(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(style("{msg} [{bar:30}] {pos}/{len} ({eta})"));
    bar.set_message(what.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::model::dot;

    #[test]
    fn recency_counts_back_from_the_latest_liked_item() {
        let mut data = Interactions::default();
        data.push("u", "old", 1, 1.0);
        data.push("u", "again", 2, 1.0);
        data.push("u", "skipped", 3, -1.0);
        data.push("u", "tie-first", 4, 1.0);
        data.push("u", "tie-second", 4, 1.0);
        data.push("u", "again", 5, 1.0);
        data.push("v", "old", 9, 1.0);
        let recency = user_recency(&data);
        let ages: HashMap<&str, f32> = {
            let (items, ages) = recency.row(0);
            items
                .iter()
                .zip(ages)
                .map(|(&i, &a)| (data.items[i as usize].as_str(), a))
                .collect()
        };
        // A repeat counts from its latest play, equal times keep file order, and a skip is
        // not something the listener liked.
        assert_eq!(ages["again"], 0.0);
        assert_eq!(ages["tie-second"], 1.0);
        assert_eq!(ages["tie-first"], 2.0);
        assert_eq!(ages["old"], 3.0);
        assert!(!ages.contains_key("skipped"));
        assert_eq!(recency.row(1).1, &[0.0]);
        // The same items as the binary matrix, in the same order.
        assert_eq!(
            recency.row(0).0,
            user_items(&data, Strength::Binary).row(0).0
        );
    }

    #[test]
    fn skips_kept_as_evidence_against_push_the_skipped_item_down() {
        // Twenty listeners play items 0 to 3; the first ten also play 4, the other ten skip
        // it. Alike in everything else, the skippers would be offered 4 unless skips count.
        let mut data = Interactions::default();
        for u in 0..20 {
            let user = format!("a{u}");
            for i in 0..4 {
                data.push(&user, &format!("i{i}"), 0, 1.0);
            }
            let value = if u < 10 {
                1.0
            } else {
                event_value(EventKind::Skipped).unwrap()
            };
            data.push(&user, "i4", 1, value);
        }
        // Regularized enough that the model generalizes rather than memorizes.
        let params = AlsParams {
            factors: 2,
            iterations: 10,
            regularization: 10.0,
            ..AlsParams::default()
        };
        let four = data.item_of("i4").unwrap();
        // The skippers' mean predicted preference for item 4.
        let predicted = |strength: Strength| -> f32 {
            let t = train_als(&user_items(&data, strength), data.items.len(), params);
            let y = &t.items[four as usize * 2..(four as usize + 1) * 2];
            (10..20)
                .map(|n| data.user_of(&format!("a{n}")).unwrap() as usize)
                .map(|u| dot(&t.users[u * 2..(u + 1) * 2], y))
                .sum::<f32>()
                / 10.0
        };
        let (given, signed) = (predicted(Strength::Given), predicted(Strength::Signed));
        assert!(
            signed < given - 0.2,
            "the skips bring 4 down for those who skipped it: {signed} vs {given} without them"
        );
        // Positives only, for the kinds that cannot use evidence against.
        assert!(
            user_items(&data, Strength::Binary)
                .values
                .iter()
                .all(|&v| v > 0.0)
        );
        assert_eq!(
            user_had(&data).nnz(),
            user_items(&data, Strength::Signed).nnz()
        );
    }

    #[test]
    fn als_separates_two_groups_of_listeners() {
        // Users 0..10 play items 0..5, users 10..20 play items 5..10.
        let mut data = Interactions::default();
        for u in 0..20 {
            let items = if u < 10 { 0..5 } else { 5..10 };
            for i in items {
                if (u + i) % 4 != 0 {
                    data.push(&format!("u{u}"), &format!("i{i}"), 0, 1.0);
                }
            }
        }
        let params = AlsParams {
            factors: 4,
            iterations: 10,
            ..AlsParams::default()
        };
        let (model, trained, _) = train_model(&data, params);
        let u0 = &trained.users[0..4];
        let first = data.item_of("i0").unwrap();
        let other = data.item_of("i7").unwrap();
        assert!(
            dot(u0, model.vector(first)) > dot(u0, model.vector(other)) + 0.3,
            "user 0 prefers its own group"
        );
    }

    #[test]
    fn timestamps_are_numbers_or_rfc3339() {
        assert_eq!(parse_ts("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_ts("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_ts("yesterday"), None);
    }
}
