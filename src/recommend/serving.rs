//! Serving models: the versions under `models/versions/`, the experiment that splits
//! listeners between them, and hot reloading. A listener's variant is a pure function of the
//! user id and the experiment's name, so every instance agrees without shared state.

use super::catalog::{Catalog, Stamp, TrackIx};
use super::factors::ServedFactors;
use super::model::{
    FORMAT, ItemNeighbours, Model, ModelError, ModelManifest, POINTER_FILE, Recency, expect_format,
    list_versions, read_manifest, read_pointer,
};
use super::published::ModelMirror;
use crate::domain::TrackId;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A model version matched to the catalog.
pub struct ServedModel {
    manifest: ModelManifest,
    matched: Matched,
    /// How many items the artifact has.
    pub items: usize,
    /// How many catalog tracks the model knows.
    pub known: usize,
}

enum Matched {
    /// Embeddings, held compactly and read exactly in place (`factors.rs`).
    Factors(Box<ServedFactors>),
    /// Each catalog track's strongest `SERVED_NEIGHBOURS` neighbours in the catalog, as
    /// catalog indexes: track `ix`'s are `tracks[indptr[ix]..indptr[ix + 1]]`.
    Neighbours {
        indptr: Vec<u32>,
        tracks: Vec<TrackIx>,
        weights: Vec<f32>,
    },
}

/// The most neighbours an item-item model serves per track: a listener's score sums the
/// rows of up to 200 of their tracks, so this bounds the work per request (20,000 sums).
pub const SERVED_NEIGHBOURS: usize = 100;

/// A listener in a model's terms, made once per request from their history.
pub enum Listener {
    /// Folded into the embedding space.
    Vector(Vec<f32>),
    /// An item-item model's summed weights from the listener's tracks, scaled so the
    /// strongest is 1.
    Scores(HashMap<TrackIx, f32>),
}

impl ServedModel {
    /// A model made in memory, matched to `catalog`.
    pub fn new(model: Model, catalog: &Catalog) -> Self {
        match model {
            Model::Factors(factors) => {
                let served = ServedFactors::of(&factors, catalog);
                Self::of_factors(factors.manifest, served)
            }
            Model::Neighbours(n) => Self::of_neighbours(n, catalog),
        }
    }

    /// The version in `dir`, matched to `catalog`. Embeddings are read without holding the
    /// artifact or a copy of it (`ServedFactors::load`).
    pub fn load(dir: &Path, catalog: &Catalog) -> Result<Self, ModelError> {
        let manifest = read_manifest(dir)?;
        if manifest.format == FORMAT {
            expect_format(dir, &manifest, FORMAT)?;
            let served = ServedFactors::load(dir, &manifest, catalog)?;
            return Ok(Self::of_factors(manifest, served));
        }
        Ok(Self::new(Model::load(dir)?, catalog))
    }

    fn of_factors(manifest: ModelManifest, served: ServedFactors) -> Self {
        ServedModel {
            manifest,
            items: served.items,
            known: served.known,
            matched: Matched::Factors(Box::new(served)),
        }
    }

    fn of_neighbours(n: ItemNeighbours, catalog: &Catalog) -> Self {
        let in_catalog: Vec<Option<TrackIx>> = n
            .ids
            .iter()
            .map(|id| catalog.index_of(&TrackId(id.clone())))
            .collect();
        let mut indptr = Vec::with_capacity(catalog.len() + 1);
        let mut tracks = Vec::new();
        let mut weights = Vec::new();
        let mut known = 0;
        indptr.push(0);
        for id in catalog.ids() {
            if let Some(r) = n.row_of(id) {
                known += 1;
                let (to, w) = n.row(r);
                let served = to
                    .iter()
                    .zip(w)
                    .filter_map(|(&j, &w)| Some((in_catalog[j as usize]?, w)))
                    .take(SERVED_NEIGHBOURS);
                for (ix, w) in served {
                    tracks.push(ix);
                    weights.push(w);
                }
            }
            indptr.push(tracks.len() as u32);
        }
        ServedModel {
            items: n.ids.len(),
            manifest: n.manifest,
            known,
            matched: Matched::Neighbours {
                indptr,
                tracks,
                weights,
            },
        }
    }

    pub fn version(&self) -> &str {
        &self.manifest.version
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Whether `listener` weighs a listener's tracks by their age (an item-item version
    /// with a recency half-life).
    pub fn weighs_recency(&self) -> bool {
        matches!(self.matched, Matched::Neighbours { .. })
            && self.manifest.recency() != Recency::Flat
    }

    /// The embeddings (none from an item-item model).
    pub fn factors(&self) -> Option<&ServedFactors> {
        match &self.matched {
            Matched::Factors(factors) => Some(factors),
            Matched::Neighbours { .. } => None,
        }
    }

    /// What an item-item model recommends after catalog track `ix`, strongest first (none
    /// from embeddings).
    pub fn neighbours(&self, ix: TrackIx) -> (&[TrackIx], &[f32]) {
        match &self.matched {
            Matched::Neighbours {
                indptr,
                tracks,
                weights,
            } if (ix as usize) + 1 < indptr.len() => {
                let span = indptr[ix as usize] as usize..indptr[ix as usize + 1] as usize;
                (&tracks[span.clone()], &weights[span])
            }
            _ => (&[], &[]),
        }
    }

    /// The listener who had `history`, or `None` when the model knows none of it. Factors
    /// fold the tracks in by confidence; an item-item model sums their neighbours, each
    /// track weighted by its age as the version's `recency` says.
    pub fn listener(&self, history: &[Had]) -> Option<Listener> {
        match &self.matched {
            Matched::Factors(factors) => {
                let items: Vec<(TrackIx, f32)> = history
                    .iter()
                    .filter(|h| factors.knows(h.track))
                    .map(|h| (h.track, h.confidence))
                    .collect();
                factors.fold_in(&items).map(Listener::Vector)
            }
            Matched::Neighbours { .. } => {
                let recency = self.manifest.recency();
                let mut scores: HashMap<TrackIx, f32> = HashMap::new();
                for h in history {
                    let weight = recency.weight(h.age);
                    let (to, w) = self.neighbours(h.track);
                    for (&t, &w) in to.iter().zip(w) {
                        *scores.entry(t).or_default() += weight * w;
                    }
                }
                let top = scores.values().copied().fold(0.0f32, f32::max);
                if top <= 0.0 {
                    return None;
                }
                scores.values_mut().for_each(|s| *s /= top);
                Some(Listener::Scores(scores))
            }
        }
    }
}

/// A track a listener had, as the served model reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Had {
    pub track: TrackIx,
    /// How sure the listener liked it: 1 + alpha · ln(1 + strength).
    pub confidence: f32,
    /// How many of the listener's tracks came after it (0 = the latest).
    pub age: f32,
}

impl Listener {
    /// The model's score of catalog track `ix` for this listener.
    pub fn score(&self, model: &ServedModel, ix: TrackIx) -> f32 {
        match self {
            Listener::Vector(u) => model.factors().and_then(|f| f.score(u, ix)).unwrap_or(0.0),
            Listener::Scores(s) => s.get(&ix).copied().unwrap_or(0.0),
        }
    }
}

/// One arm of the experiment: `name=weight`, optionally pinned to a model version
/// (`name=weight@version`); unpinned arms serve the newest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec {
    pub name: String,
    pub weight: u32,
    pub version: Option<String>,
}

impl FromStr for VariantSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected NAME=WEIGHT[@VERSION]"))?;
        let (weight, version) = match rest.split_once('@') {
            Some((w, v)) => (w, Some(v.trim().to_owned()).filter(|v| !v.is_empty())),
            None => (rest, None),
        };
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: weight {weight:?} is not a whole number"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("{s:?}: the variant needs a name"));
        }
        Ok(VariantSpec {
            name: name.to_owned(),
            weight,
            version,
        })
    }
}

/// An A/B experiment: a name and weighted variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experiment {
    pub name: String,
    pub variants: Vec<VariantSpec>,
}

impl Default for Experiment {
    fn default() -> Self {
        Experiment {
            name: "default".into(),
            variants: vec![VariantSpec {
                name: "control".into(),
                weight: 100,
                version: None,
            }],
        }
    }
}

/// The variant (index into `variants`) of `user_id` in `experiment`: the user's bucket is a
/// stable 64-bit hash (xxh3) of the experiment name and the user id, modulo the total weight.
pub fn assign_variant(user_id: &str, experiment: &str, variants: &[VariantSpec]) -> usize {
    let total: u64 = variants.iter().map(|v| v.weight as u64).sum();
    if total == 0 {
        return 0;
    }
    let mut key = Vec::with_capacity(experiment.len() + 1 + user_id.len());
    key.extend_from_slice(experiment.as_bytes());
    key.push(0);
    key.extend_from_slice(user_id.as_bytes());
    let mut bucket = xxhash_rust::xxh3::xxh3_64(&key) % total;
    for (i, v) in variants.iter().enumerate() {
        if bucket < v.weight as u64 {
            return i;
        }
        bucket -= v.weight as u64;
    }
    variants.len() - 1
}

/// What is served now: the catalog, and what each variant serves matched to it.
struct Served {
    catalog: Arc<Catalog>,
    models: Vec<Option<Arc<ServedModel>>>,
}

/// The served catalog, the model versions and the experiment over them, swapped atomically
/// on reload: a request holds the catalog and the model it started with until it ends. A new
/// catalog comes with every served version matched to it again, so the two always agree.
pub struct ModelSet {
    dir: Option<PathBuf>,
    experiment: Experiment,
    served: ArcSwap<Served>,
    /// One reload at a time (a catalog's load is the largest allocation a server makes).
    reloads: Mutex<Reloads>,
}

/// What reloads remember between them.
#[derive(Default)]
struct Reloads {
    /// Versions already loaded against the served catalog, by version.
    loaded: HashMap<String, Arc<ServedModel>>,
    /// A catalog that did not load: not tried again until its manifest changes.
    refused: Option<Stamp>,
}

/// What one request is served: its variant, the catalog and the variant's model.
pub struct Assigned<'a> {
    pub variant: &'a str,
    pub catalog: Arc<Catalog>,
    pub model: Option<Arc<ServedModel>>,
}

impl ModelSet {
    /// No model: every variant ranks without embeddings.
    pub fn empty(catalog: Arc<Catalog>, experiment: Experiment) -> Self {
        let served = Served {
            catalog,
            models: vec![None; experiment.variants.len()],
        };
        ModelSet {
            dir: None,
            experiment,
            served: ArcSwap::from_pointee(served),
            reloads: Mutex::default(),
        }
    }

    /// One version held in memory and served to everyone, with no directory to watch: the
    /// serving path as offline evaluation scores it.
    pub fn with_model(catalog: Arc<Catalog>, model: Model) -> Self {
        let served = Arc::new(ServedModel::new(model, &catalog));
        let set = ModelSet::empty(catalog.clone(), Experiment::default());
        set.served.store(Arc::new(Served {
            catalog,
            models: vec![Some(served)],
        }));
        set
    }

    /// Loads the versions the experiment needs from `models_dir/versions`, matched to
    /// `catalog` (loaded from `models_dir`). A pinned version that is missing or unreadable
    /// is an error; no versions at all is not (the catalog alone still recommends). From
    /// here on the catalog is read a few tracks a request (`Catalog::read_at_random`).
    pub fn load(
        models_dir: &Path,
        catalog: Arc<Catalog>,
        experiment: Experiment,
    ) -> Result<Self, ModelError> {
        let mut set = ModelSet::empty(catalog.clone(), experiment);
        set.dir = Some(models_dir.to_owned());
        set.reload()?;
        catalog.read_at_random();
        Ok(set)
    }

    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    /// The catalog served now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.served.load().catalog.clone()
    }

    /// Rescans the directory: swaps in a new catalog when its manifest changed (loading
    /// every served version again against it), and serves the promoted version
    /// (`POINTER_FILE`), or the newest when none is promoted, and any pinned ones. Returns
    /// whether anything changed. On error what is served so far stays; a catalog that did
    /// not load, or that a served version did not load against, is not tried again until
    /// its manifest changes (a load is the catalog's whole size in work).
    pub fn reload(&self) -> Result<bool, ModelError> {
        let Some(dir) = &self.dir else {
            return Ok(false);
        };
        let mut reloads = self.reloads.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.served.load_full();
        // Only a catalog loaded from the directory is swapped for the directory's. A
        // manifest that cannot be read now leaves the served catalog, not the versions.
        let new_catalog = match current
            .catalog
            .stamp()
            .map(|served| (served, Stamp::read(dir)))
        {
            Some((served, Ok(now))) => {
                Some(now).filter(|&now| now != served && Some(now) != reloads.refused)
            }
            Some((_, Err(e))) => {
                tracing::warn!(error = %crate::error::Chain(&e), "the catalog manifest does not read; the served catalog stays");
                None
            }
            None => None,
        };
        let Some(stamp) = new_catalog else {
            let models = self.wanted(dir, &current.catalog, &mut reloads.loaded)?;
            return Ok(self.serve(&current, current.catalog.clone(), models, &mut reloads));
        };
        // A new catalog, and every served version matched to it, beside what is served.
        let started = std::time::Instant::now();
        let swapped = Catalog::load(dir)
            .map_err(ModelError::from)
            .and_then(|catalog| {
                let mut loaded = HashMap::new();
                let models = self.wanted(dir, &catalog, &mut loaded)?;
                Ok((Arc::new(catalog), models, loaded))
            });
        let (catalog, models, loaded) = match swapped {
            Ok(swapped) => swapped,
            Err(e) => {
                reloads.refused = Some(stamp);
                return Err(e);
            }
        };
        catalog.read_at_random();
        tracing::info!(
            version = catalog.manifest.version,
            tracks = catalog.len(),
            was = current.catalog.manifest.version,
            took_ms = started.elapsed().as_millis() as u64,
            "serving a new catalog"
        );
        reloads.loaded = loaded;
        self.serve(&current, catalog, models, &mut reloads);
        Ok(true)
    }

    /// The versions each variant should serve now, matched to `catalog`: those in `loaded`
    /// as they are, the others loaded into it.
    fn wanted(
        &self,
        dir: &Path,
        catalog: &Catalog,
        loaded: &mut HashMap<String, Arc<ServedModel>>,
    ) -> Result<Vec<Option<Arc<ServedModel>>>, ModelError> {
        let versions = list_versions(dir);
        // Unpinned variants serve the promoted version, or the newest when none is.
        let current = match read_pointer(dir)? {
            Some(pointer) => Some(
                versions
                    .iter()
                    .find(|(name, _)| *name == pointer.version)
                    .ok_or_else(|| ModelError::Invalid {
                        path: dir.join(POINTER_FILE),
                        message: format!(
                            "the promoted model version {} is not there",
                            pointer.version
                        ),
                    })?,
            ),
            None => versions.last(),
        };
        let mut models = Vec::with_capacity(self.experiment.variants.len());
        for v in &self.experiment.variants {
            let found = match &v.version {
                Some(pinned) => Some(
                    versions
                        .iter()
                        .find(|(name, _)| name == pinned)
                        .ok_or_else(|| ModelError::Invalid {
                            path: dir.join(super::model::VERSIONS_DIR),
                            message: format!(
                                "variant {} is pinned to model version {pinned}, which is not there",
                                v.name
                            ),
                        })?,
                ),
                None => current,
            };
            models.push(match found {
                Some((version, path)) => Some(get_or_load(version, path, catalog, loaded)?),
                None => None,
            });
        }
        Ok(models)
    }

    /// Serves `catalog` and `models` when they differ from `current`; returns whether they
    /// did. Only what is served stays loaded.
    fn serve(
        &self,
        current: &Served,
        catalog: Arc<Catalog>,
        models: Vec<Option<Arc<ServedModel>>>,
        reloads: &mut Reloads,
    ) -> bool {
        let changed = !Arc::ptr_eq(&catalog, &current.catalog)
            || models.len() != current.models.len()
            || models
                .iter()
                .zip(&current.models)
                .any(|(a, b)| a.as_ref().map(|m| m.version()) != b.as_ref().map(|m| m.version()));
        if !changed {
            return false;
        }
        for (v, m) in self.experiment.variants.iter().zip(&current.models) {
            if let Some(m) = m {
                metrics::gauge!("encore_model_info", "variant" => v.name.clone(), "version" => m.version().to_owned()).set(0.0);
            }
        }
        for (v, m) in self.experiment.variants.iter().zip(&models) {
            if let Some(m) = m {
                metrics::gauge!("encore_model_info", "variant" => v.name.clone(), "version" => m.version().to_owned()).set(1.0);
            }
            tracing::info!(
                experiment = self.experiment.name,
                variant = v.name,
                model_version = m.as_ref().map(|m| m.version()).unwrap_or("none"),
                "serving model"
            );
        }
        reloads
            .loaded
            .retain(|version, _| models.iter().flatten().any(|m| m.version() == version));
        self.served.store(Arc::new(Served { catalog, models }));
        true
    }

    /// The variant `user_id` is in, and the catalog and the model it is served.
    pub fn assign(&self, user_id: &str) -> Assigned<'_> {
        let i = assign_variant(user_id, &self.experiment.name, &self.experiment.variants);
        let served = self.served.load();
        Assigned {
            variant: &self.experiment.variants[i].name,
            catalog: served.catalog.clone(),
            model: served.models.get(i).cloned().flatten(),
        }
    }

    /// The version the first variant serves (what a new listener most likely gets).
    pub fn current_version(&self) -> Option<String> {
        let served = self.served.load();
        served
            .models
            .iter()
            .flatten()
            .next()
            .map(|m| m.version().to_owned())
    }

    /// Rescans every `every` until the returned task is aborted (loading off the async
    /// threads), first bringing the local copy up to date when the models live in object
    /// storage (`mirror`). A failed refresh or reload is logged and the served models stay.
    pub fn watch(
        self: Arc<Self>,
        every: Duration,
        mirror: Option<Arc<ModelMirror>>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Some(mirror) = &mirror
                    && let Err(e) = mirror.refresh().await
                {
                    tracing::error!(error = %crate::error::Chain(&e), from = mirror.describe(), "model poll failed; the served models stay");
                }
                let set = self.clone();
                match tokio::task::spawn_blocking(move || set.reload()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %crate::error::Chain(&e), "model reload failed; the served models stay")
                    }
                    Err(e) => {
                        tracing::error!(error = %crate::error::Chain(&e), "model reload panicked; the served models stay")
                    }
                }
            }
        })
    }
}

/// Version `version` (in `path`) matched to `catalog`: from `loaded`, or loaded into it.
fn get_or_load(
    version: &str,
    path: &Path,
    catalog: &Catalog,
    loaded: &mut HashMap<String, Arc<ServedModel>>,
) -> Result<Arc<ServedModel>, ModelError> {
    if let Some(m) = loaded.get(version) {
        return Ok(m.clone());
    }
    let started = std::time::Instant::now();
    let model = Arc::new(ServedModel::load(path, catalog)?);
    tracing::info!(
        model_version = version,
        kind = model.manifest().kind,
        items = model.items,
        in_catalog = model.known,
        took_ms = started.elapsed().as_millis() as u64,
        "model loaded"
    );
    loaded.insert(version.to_owned(), model.clone());
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_with_and_without_a_pinned_version() {
        let v: VariantSpec = "b=10@als-1".parse().unwrap();
        assert_eq!(
            (v.name.as_str(), v.weight, v.version.as_deref()),
            ("b", 10, Some("als-1"))
        );
        let v: VariantSpec = "a=90".parse().unwrap();
        assert_eq!(v.version, None);
        assert!("a".parse::<VariantSpec>().is_err());
        assert!("a=x".parse::<VariantSpec>().is_err());
    }

    #[test]
    fn assignment_is_stable_and_follows_the_weights() {
        let variants: Vec<VariantSpec> = ["a=80", "b=20"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let first = assign_variant("user-1", "exp", &variants);
        assert!((0..10).all(|_| assign_variant("user-1", "exp", &variants) == first));
        let in_b = (0..10_000)
            .filter(|i| assign_variant(&format!("user-{i}"), "exp", &variants) == 1)
            .count();
        assert!(
            (1_700..2_300).contains(&in_b),
            "{in_b} of 10,000 in the 20% arm"
        );
        let moved = (0..1_000)
            .filter(|i| {
                let u = format!("user-{i}");
                assign_variant(&u, "exp", &variants) != assign_variant(&u, "other-exp", &variants)
            })
            .count();
        assert!(
            moved > 100,
            "another experiment reshuffles listeners ({moved} moved)"
        );
    }
}
