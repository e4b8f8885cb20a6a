//! The model artifacts, one directory per version under `models/versions/`, in one of two
//! open formats so models trained elsewhere can be served unchanged. Item embeddings
//! (implicit ALS, or factors imported from Spark or `implicit`):
//!
//! ```text
//! models/versions/<version>/
//!   model.json                 manifest: format "encore-item-factors", version, created_at,
//!                              kind, dim, items, data size, parameters, metrics
//!   item_factors.safetensors   one F32 tensor "item_factors", shape [items, dim]
//!   items.txt                  the item (track) id of each row, one per line
//! ```
//!
//! Item-item models (EASE, item-kNN), as a sparse items × items matrix in compressed rows:
//! row `j` holds the items item `j` recommends, strongest first, and how strongly.
//!
//! ```text
//! models/versions/<version>/
//!   model.json                     manifest: format "encore-item-neighbours", kind, dim 0,
//!                                  items, parameters (lambda or neighbours, keep), metrics
//!   item_neighbours.safetensors    "indptr" I64 [items + 1], "indices" I32 [nnz],
//!                                  "weights" F32 [nnz]
//!   items.txt                      as above
//! ```
//!
//! Python reads the first with `safetensors.numpy.load_file(...)["item_factors"]`, the
//! second with `t = safetensors.numpy.load_file(...)` and
//! `scipy.sparse.csr_matrix((t["weights"], t["indices"], t["indptr"]))`, and the ids with
//! `open("items.txt").read().split()`.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "encore-item-factors";
/// The format of item-item models.
pub const NEIGHBOURS_FORMAT: &str = "encore-item-neighbours";
pub const FORMAT_VERSION: u32 = 1;
/// A version's manifest, written last: a version exists once it does.
pub const MANIFEST_FILE: &str = "model.json";
/// The pointer at the models root naming the version unpinned variants serve
/// (`encore model promote`); without one, the newest version is served.
pub const POINTER_FILE: &str = "current.json";
pub(super) const FACTORS_FILE: &str = "item_factors.safetensors";

/// A factor version's ANN index, beside its artifact (`super::ann`).
pub use super::ann::ANN_FILE;
const NEIGHBOURS_FILE: &str = "item_neighbours.safetensors";
pub(super) const ITEMS_FILE: &str = "items.txt";
pub(super) const FACTORS_TENSOR: &str = "item_factors";
/// Where versions live under the models directory.
pub const VERSIONS_DIR: &str = "versions";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub format: String,
    pub format_version: u32,
    pub version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `als`, `imported` for factors trained elsewhere, `ease` or `item-knn`.
    pub kind: String,
    /// Embedding dimensions; 0 for item-item models.
    pub dim: usize,
    pub items: usize,
    /// What it was trained on (interactions, users, items, source).
    #[serde(default)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Training parameters; `regularization` is also used to fold listeners in at serving.
    #[serde(default)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Offline metrics (precision@k, recall@k, ndcg@k, coverage).
    #[serde(default)]
    pub metrics: serde_json::Map<String, serde_json::Value>,
}

/// The confidence scale a manifest does not give.
const DEFAULT_ALPHA: f64 = 20.0;

impl ModelManifest {
    /// The regularization listeners are folded in with (`parameters.regularization`).
    pub fn regularization(&self) -> f32 {
        self.parameters
            .get("regularization")
            .and_then(|v| v.as_f64())
            .unwrap_or(DEFAULT_REGULARIZATION) as f32
    }

    /// The confidence scale the model was trained with (`parameters.alpha`): an interaction
    /// of strength r counted 1 + alpha · ln(1 + r).
    pub fn alpha(&self) -> f32 {
        self.parameters
            .get("alpha")
            .and_then(|a| a.as_f64())
            .unwrap_or(DEFAULT_ALPHA) as f32
    }

    /// How an item-item model weighs a listener's items (`parameters.recency_half_life`,
    /// in items): all alike when absent.
    pub fn recency(&self) -> Recency {
        match self
            .parameters
            .get("recency_half_life")
            .and_then(|h| h.as_f64())
        {
            Some(h) if h > 0.0 => Recency::HalfLife(h as f32),
            _ => Recency::Flat,
        }
    }
}

/// How much each of a listener's items counts when an item-item model sums their
/// neighbours: all alike, or the latest most, the weight halving every `HalfLife` items
/// further back. Listening drifts, so what someone played last says most about what they
/// want next; validation chooses the half-life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Recency {
    Flat,
    HalfLife(f32),
}

impl Recency {
    /// The weight of an item `age` items back (0 = the latest).
    pub fn weight(self, age: f32) -> f32 {
        match self {
            Recency::Flat => 1.0,
            Recency::HalfLife(h) => 0.5f32.powf(age / h),
        }
    }

    /// As a manifest records it: the half-life, or null.
    pub fn half_life(self) -> Option<f32> {
        match self {
            Recency::Flat => None,
            Recency::HalfLife(h) => Some(h),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// The file is there but does not parse.
    #[error("{path} cannot be read as a model file")]
    Parse {
        path: PathBuf,
        #[source]
        source: crate::error::Cause,
    },
    /// The catalog the versions are matched to did not load.
    #[error("the catalog did not load")]
    Catalog(#[from] super::catalog::CatalogError),
}

pub(super) fn unparsable(
    path: &Path,
    e: impl std::error::Error + Send + Sync + 'static,
) -> ModelError {
    ModelError::Parse {
        path: path.to_owned(),
        source: crate::error::cause(e),
    }
}

pub(super) fn invalid(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Item embeddings: row `r` is the vector of item `ids[r]`.
#[derive(Debug, Clone)]
pub struct ItemFactors {
    pub manifest: ModelManifest,
    pub ids: Vec<String>,
    /// Row-major, `ids.len() * dim`.
    pub factors: Vec<f32>,
    row_of: HashMap<String, u32>,
    /// `YᵀY` (dim × dim), for folding a listener in.
    gram: Vec<f32>,
}

/// The regularization used to fold listeners in when a manifest does not say.
const DEFAULT_REGULARIZATION: f64 = 0.1;

impl ItemFactors {
    /// Factors for `ids`; `factors.len()` must be `ids.len() * manifest.dim`.
    pub fn new(manifest: ModelManifest, ids: Vec<String>, factors: Vec<f32>) -> Self {
        assert_eq!(factors.len(), ids.len() * manifest.dim, "factor shape");
        let row_of = ids
            .iter()
            .enumerate()
            .map(|(r, id)| (id.clone(), r as u32))
            .collect();
        let gram = gram(&factors, manifest.dim);
        ItemFactors {
            manifest,
            ids,
            factors,
            row_of,
            gram,
        }
    }

    pub fn dim(&self) -> usize {
        self.manifest.dim
    }

    pub fn row_of(&self, id: &str) -> Option<u32> {
        self.row_of.get(id).copied()
    }

    pub fn vector(&self, row: u32) -> &[f32] {
        let d = self.dim();
        &self.factors[row as usize * d..(row as usize + 1) * d]
    }

    pub fn regularization(&self) -> f32 {
        self.manifest.regularization()
    }

    /// A listener's vector from the rows they engaged with (`(row, confidence)`), by
    /// `fold_in`. `None` when none of the items is in the model.
    pub fn fold_in(&self, items: &[(u32, f32)]) -> Option<Vec<f32>> {
        fold_in(&self.gram, self.regularization(), items, |row, y| {
            y.copy_from_slice(self.vector(row))
        })
    }

    /// Writes the artifact into `dir` (created if missing), with its ANN index.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let mut manifest = self.manifest.clone();
        manifest.items = self.ids.len();
        write_factors(dir, &manifest, |r, y| {
            y.copy_from_slice(self.vector(r as u32));
            self.ids[r].clone()
        })
    }

    /// Reads the artifact in `dir`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let manifest = read_manifest(dir)?;
        expect_format(dir, &manifest, FORMAT)?;
        Self::load_with(dir, manifest)
    }

    fn load_with(dir: &Path, manifest: ModelManifest) -> Result<Self, ModelError> {
        let ids = read_ids(dir)?;
        let path = dir.join(FACTORS_FILE);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let tensors =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| unparsable(&path, e))?;
        let tensor = tensors
            .tensor(FACTORS_TENSOR)
            .map_err(|e| unparsable(&path, e))?;
        if tensor.dtype() != safetensors::Dtype::F32 || tensor.shape() != [ids.len(), manifest.dim]
        {
            return Err(invalid(
                &path,
                format!(
                    "{FACTORS_TENSOR} is {:?} {:?}, expected F32 [{}, {}] (items.txt has {} ids)",
                    tensor.dtype(),
                    tensor.shape(),
                    ids.len(),
                    manifest.dim,
                    ids.len()
                ),
            ));
        }
        let factors: Vec<f32> = tensor
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if factors.iter().any(|f| !f.is_finite()) {
            return Err(invalid(&path, "factors hold NaN or infinity"));
        }
        Ok(ItemFactors::new(manifest, ids, factors))
    }
}

/// Writes an item-factors version into `dir` (created if missing) one row at a time:
/// `row(r, y)` writes item `r`'s factors into `y` and returns its id, for `r` below
/// `manifest.items`. The artifact is never held whole (100M items of 32 dimensions are
/// 12.8 GB), and it is the one `safetensors` reads: an 8-byte header length, the JSON
/// header padded with spaces to 8 bytes, then the rows. The version's ANN index
/// (`super::ann`) is built from the written rows before the manifest is written, so a
/// server never sees a complete version without it.
pub fn write_factors(
    dir: &Path,
    manifest: &ModelManifest,
    mut row: impl FnMut(usize, &mut [f32]) -> String,
) -> Result<(), ModelError> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (n, d) = (manifest.items, manifest.dim);
    let path = dir.join(FACTORS_FILE);
    let mut header = serde_json::json!({
        "__metadata__": { "version": manifest.version },
        FACTORS_TENSOR: { "dtype": "F32", "shape": [n, d], "data_offsets": [0, 4 * n * d] },
    })
    .to_string();
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    // Through new files: a server may have the old ones mapped (`factors.rs`), and
    // rewriting a mapped file in place would change, or cut short, what it reads.
    let partial = path.with_extension("safetensors.partial");
    let ids_path = dir.join(ITEMS_FILE);
    let ids_partial = ids_path.with_extension("txt.partial");
    let file = std::fs::File::create(&partial).map_err(io(&partial))?;
    let mut data = std::io::BufWriter::with_capacity(1 << 20, file);
    let ids_file = std::fs::File::create(&ids_partial).map_err(io(&ids_partial))?;
    let mut ids = std::io::BufWriter::new(ids_file);
    data.write_all(&(header.len() as u64).to_le_bytes())
        .and_then(|()| data.write_all(header.as_bytes()))
        .map_err(io(&partial))?;
    let mut y = vec![0.0f32; d];
    for r in 0..n {
        let id = row(r, &mut y);
        for f in &y {
            data.write_all(&f.to_le_bytes()).map_err(io(&partial))?;
        }
        writeln!(ids, "{id}").map_err(io(&ids_partial))?;
    }
    data.flush().map_err(io(&partial))?;
    ids.flush().map_err(io(&ids_partial))?;
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    std::fs::rename(&ids_partial, &ids_path).map_err(io(&ids_path))?;
    index_artifact(dir, n, d, 8 + header.len())?;
    write_manifest(dir, manifest)
}

/// Builds the ANN index of the `items` rows of `dim` factors at `offset` of the artifact in
/// `dir`, read in place, and writes it beside the artifact.
pub(super) fn index_artifact(
    dir: &Path,
    items: usize,
    dim: usize,
    offset: usize,
) -> Result<super::ann::Built, ModelError> {
    let path = dir.join(FACTORS_FILE);
    let artifact = super::mapped::Mapped::open(&path).map_err(io(&path))?;
    let rows = &artifact.bytes()[offset.min(artifact.bytes().len())..];
    if rows.len() < items * 4 * dim {
        return Err(invalid(
            &path,
            "the artifact is shorter than its header says",
        ));
    }
    let index = dir.join(super::ann::ANN_FILE);
    let row = |r: usize, y: &mut [f32]| decode_le(&rows[r * 4 * dim..(r + 1) * 4 * dim], y);
    super::ann::build(items, dim, row, &index).map_err(io(&index))
}

/// Little-endian f32s (an artifact's rows as stored) into `out`.
pub(super) fn decode_le(bytes: &[u8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

/// `dir`'s manifest, whatever its format.
pub(super) fn read_manifest(dir: &Path) -> Result<ModelManifest, ModelError> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    serde_json::from_str(&text).map_err(|e| unparsable(&path, e))
}

/// Refuses `manifest` (read from `dir`) unless it is of `format` and this format version.
pub(super) fn expect_format(
    dir: &Path,
    manifest: &ModelManifest,
    format: &str,
) -> Result<(), ModelError> {
    if manifest.format != format || manifest.format_version != FORMAT_VERSION {
        return Err(invalid(
            &dir.join(MANIFEST_FILE),
            format!(
                "format {} v{} is not {format} v{FORMAT_VERSION}",
                manifest.format, manifest.format_version
            ),
        ));
    }
    Ok(())
}

fn read_ids(dir: &Path) -> Result<Vec<String>, ModelError> {
    let path = dir.join(ITEMS_FILE);
    Ok(std::fs::read_to_string(&path)
        .map_err(io(&path))?
        .lines()
        .map(str::to_owned)
        .collect())
}

fn write_ids(dir: &Path, ids: &[String]) -> Result<(), ModelError> {
    let path = dir.join(ITEMS_FILE);
    let mut items = ids.join("\n");
    items.push('\n');
    std::fs::write(&path, items).map_err(io(&path))
}

/// The manifest last: a directory without one is not a version yet.
fn write_manifest(dir: &Path, manifest: &ModelManifest) -> Result<(), ModelError> {
    let path = dir.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(manifest).expect("a manifest serializes");
    std::fs::write(&path, text + "\n").map_err(io(&path))
}

/// An item-item model: row `r` lists the rows item `ids[r]` recommends, strongest first,
/// with their weights.
#[derive(Debug, Clone)]
pub struct ItemNeighbours {
    pub manifest: ModelManifest,
    pub ids: Vec<String>,
    /// Row `r` is `indices[indptr[r]..indptr[r + 1]]`.
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub weights: Vec<f32>,
    row_of: HashMap<String, u32>,
}

impl ItemNeighbours {
    /// Rows in compressed form; panics when the parts do not fit together (a caller's bug:
    /// files are checked by `load`). The manifest's format and `dim` become this format's.
    pub fn new(
        mut manifest: ModelManifest,
        ids: Vec<String>,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        weights: Vec<f32>,
    ) -> Self {
        assert_eq!(
            indptr.len(),
            ids.len() + 1,
            "one indptr entry per row, plus one"
        );
        assert_eq!(indices.len(), weights.len(), "one weight per index");
        assert_eq!(
            indptr.last().copied(),
            Some(indices.len()),
            "indptr ends at nnz"
        );
        manifest.format = NEIGHBOURS_FORMAT.into();
        manifest.dim = 0;
        let row_of = ids
            .iter()
            .enumerate()
            .map(|(r, id)| (id.clone(), r as u32))
            .collect();
        ItemNeighbours {
            manifest,
            ids,
            indptr,
            indices,
            weights,
            row_of,
        }
    }

    pub fn row_of(&self, id: &str) -> Option<u32> {
        self.row_of.get(id).copied()
    }

    /// What row `r` recommends, strongest first.
    pub fn row(&self, r: u32) -> (&[u32], &[f32]) {
        let span = self.indptr[r as usize]..self.indptr[r as usize + 1];
        (&self.indices[span.clone()], &self.weights[span])
    }

    /// Writes the artifact into `dir` (created if missing).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let indptr: Vec<u8> = self
            .indptr
            .iter()
            .flat_map(|&p| (p as i64).to_le_bytes())
            .collect();
        let indices: Vec<u8> = self
            .indices
            .iter()
            .flat_map(|&i| (i as i32).to_le_bytes())
            .collect();
        let weights: Vec<u8> = self.weights.iter().flat_map(|w| w.to_le_bytes()).collect();
        let path = dir.join(NEIGHBOURS_FILE);
        let view = |dtype, n: usize, bytes| {
            safetensors::tensor::TensorView::new(dtype, vec![n], bytes)
                .map_err(|e| unparsable(&path, e))
        };
        let tensors = [
            (
                "indptr",
                view(safetensors::Dtype::I64, self.indptr.len(), &indptr)?,
            ),
            (
                "indices",
                view(safetensors::Dtype::I32, self.indices.len(), &indices)?,
            ),
            (
                "weights",
                view(safetensors::Dtype::F32, self.weights.len(), &weights)?,
            ),
        ];
        let meta = HashMap::from([("version".to_owned(), self.manifest.version.clone())]);
        let data = safetensors::serialize(tensors, Some(meta)).map_err(|e| unparsable(&path, e))?;
        std::fs::write(&path, data).map_err(io(&path))?;
        write_ids(dir, &self.ids)?;
        write_manifest(dir, &self.manifest)
    }

    /// Reads the artifact in `dir`, checking that its rows fit together.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let manifest = read_manifest(dir)?;
        expect_format(dir, &manifest, NEIGHBOURS_FORMAT)?;
        Self::load_with(dir, manifest)
    }

    fn load_with(dir: &Path, manifest: ModelManifest) -> Result<Self, ModelError> {
        let ids = read_ids(dir)?;
        let path = dir.join(NEIGHBOURS_FILE);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let tensors =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| unparsable(&path, e))?;
        let tensor = |name: &str, dtype| {
            let t = tensors.tensor(name).map_err(|e| unparsable(&path, e))?;
            if t.dtype() != dtype || t.shape().len() != 1 {
                return Err(invalid(
                    &path,
                    format!(
                        "{name} is {:?} {:?}, expected {dtype:?} [n]",
                        t.dtype(),
                        t.shape()
                    ),
                ));
            }
            Ok(t.data().to_vec())
        };
        let indptr: Vec<usize> = tensor("indptr", safetensors::Dtype::I64)?
            .chunks_exact(8)
            // A negative offset becomes one no row can have.
            .map(|b| {
                usize::try_from(i64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .unwrap_or(usize::MAX)
            })
            .collect();
        let indices: Vec<i32> = tensor("indices", safetensors::Dtype::I32)?
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        let weights: Vec<f32> = tensor("weights", safetensors::Dtype::F32)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        let n = ids.len();
        let fits = indptr.len() == n + 1
            && indptr.first() == Some(&0)
            && indptr.last() == Some(&indices.len())
            && indptr.windows(2).all(|w| w[0] <= w[1])
            && indices.len() == weights.len();
        if !fits {
            return Err(invalid(
                &path,
                format!(
                    "indptr ({} entries) does not describe {n} rows over {} indices and {} weights",
                    indptr.len(),
                    indices.len(),
                    weights.len()
                ),
            ));
        }
        if indices.iter().any(|&i| i < 0 || i as usize >= n) {
            return Err(invalid(&path, format!("an index is outside the {n} items")));
        }
        if weights.iter().any(|w| !w.is_finite()) {
            return Err(invalid(&path, "weights hold NaN or infinity"));
        }
        let indices = indices.into_iter().map(|i| i as u32).collect();
        Ok(ItemNeighbours::new(manifest, ids, indptr, indices, weights))
    }
}

/// A model version of either format.
#[derive(Debug, Clone)]
pub enum Model {
    Factors(ItemFactors),
    Neighbours(ItemNeighbours),
}

impl Model {
    /// Reads the version in `dir`, whichever format its manifest names.
    pub fn load(dir: &Path) -> Result<Model, ModelError> {
        let manifest = read_manifest(dir)?;
        if manifest.format == NEIGHBOURS_FORMAT {
            expect_format(dir, &manifest, NEIGHBOURS_FORMAT)?;
            ItemNeighbours::load_with(dir, manifest).map(Model::Neighbours)
        } else {
            expect_format(dir, &manifest, FORMAT)?;
            ItemFactors::load_with(dir, manifest).map(Model::Factors)
        }
    }

    pub fn manifest(&self) -> &ModelManifest {
        match self {
            Model::Factors(f) => &f.manifest,
            Model::Neighbours(n) => &n.manifest,
        }
    }

    pub fn manifest_mut(&mut self) -> &mut ModelManifest {
        match self {
            Model::Factors(f) => &mut f.manifest,
            Model::Neighbours(n) => &mut n.manifest,
        }
    }

    /// The row of item `id`.
    pub fn row_of(&self, id: &str) -> Option<u32> {
        match self {
            Model::Factors(f) => f.row_of(id),
            Model::Neighbours(n) => n.row_of(id),
        }
    }

    pub fn ids(&self) -> &[String] {
        match self {
            Model::Factors(f) => &f.ids,
            Model::Neighbours(n) => &n.ids,
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        match self {
            Model::Factors(f) => f.save(dir),
            Model::Neighbours(n) => n.save(dir),
        }
    }
}

/// The versions in `models_dir/versions`, oldest first (by `created_at`, then name).
pub fn list_versions(models_dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(models_dir.join(VERSIONS_DIR)) else {
        return Vec::new();
    };
    let mut found: Vec<(String, String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            let text = std::fs::read_to_string(path.join(MANIFEST_FILE)).ok()?;
            let m: ModelManifest = serde_json::from_str(&text).ok()?;
            Some((m.created_at, m.version, path))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, v, p)| (v, p)).collect()
}

/// Which version unpinned variants serve: `encore model promote` moves it, `encore model
/// rollback` moves it back to the version before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    pub version: String,
    /// The versions promoted before this one, the latest last (at most `POINTER_HISTORY`).
    #[serde(default)]
    pub history: Vec<String>,
    /// RFC 3339, UTC.
    #[serde(default)]
    pub updated_at: String,
}

/// How many earlier promotions a pointer remembers for rollback.
pub const POINTER_HISTORY: usize = 20;

impl Pointer {
    /// The pointer after promoting `version` over `before`.
    pub fn promote(before: Option<Pointer>, version: &str) -> Pointer {
        let mut history = Vec::new();
        if let Some(b) = before {
            history = b.history;
            if b.version != version {
                history.push(b.version);
            }
        }
        let excess = history.len().saturating_sub(POINTER_HISTORY);
        history.drain(..excess);
        Pointer {
            version: version.to_owned(),
            history,
            updated_at: now_rfc3339(),
        }
    }

    /// The pointer back at the version promoted before this one, if any.
    pub fn rolled_back(mut self) -> Option<Pointer> {
        let version = self.history.pop()?;
        Some(Pointer {
            version,
            history: self.history,
            updated_at: now_rfc3339(),
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut text = serde_json::to_vec_pretty(self).expect("a pointer serializes");
        text.push(b'\n');
        text
    }
}

/// The pointer in `models_dir`, if there is one.
pub fn read_pointer(models_dir: &Path) -> Result<Option<Pointer>, ModelError> {
    let path = models_dir.join(POINTER_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| unparsable(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Writes `pointer` into `models_dir` (through a temporary file, so a reader sees the old
/// pointer or the new one).
pub fn write_pointer(models_dir: &Path, pointer: &Pointer) -> Result<(), ModelError> {
    let path = models_dir.join(POINTER_FILE);
    let tmp = models_dir.join(format!(".{POINTER_FILE}.tmp"));
    std::fs::write(&tmp, pointer.to_json()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

/// Now, RFC 3339 in UTC to the second: how manifests and pointers record a time.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A fresh manifest for a model made now.
pub fn new_manifest(kind: &str, dim: usize, items: usize) -> ModelManifest {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let created_at = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    ModelManifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        version: format!("{kind}-{stamp}-{:04x}", rand::random::<u16>()),
        created_at,
        kind: kind.into(),
        dim,
        items,
        data: Default::default(),
        parameters: Default::default(),
        metrics: Default::default(),
    }
}

/// Reads item factors trained elsewhere: an item-id column plus a vector, as
/// - JSON lines, one object per item with the id under `id` or `item_id` and the vector under
///   `features` (Spark MLlib's `ALSModel.itemFactors.write.json`), `factors` or `vector`;
/// - CSV with a header: the id in the first column, then either one column holding the vector
///   as a JSON-style list (`"[0.1, 0.2]"`) or one numeric column per dimension (an
///   `implicit` model's `item_factors` next to its item ids).
///
/// Returns the ids and row-major factors; every vector must have the same length.
pub fn read_external_factors(path: &Path) -> Result<(Vec<String>, Vec<f32>, usize), ModelError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let first = text.trim_start().chars().next();
    let rows: Vec<(String, Vec<f32>)> = if first == Some('{') {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| {
                json_factor_row(l).map_err(|m| invalid(path, format!("line {}: {m}", n + 1)))
            })
            .collect::<Result<_, _>>()?
    } else {
        csv_factor_rows(&text).map_err(|m| invalid(path, m))?
    };
    let Some(dim) = rows.first().map(|r| r.1.len()) else {
        return Err(invalid(path, "no item vectors"));
    };
    if dim == 0 {
        return Err(invalid(path, "vectors are empty"));
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut factors = Vec::with_capacity(rows.len() * dim);
    let mut seen = std::collections::HashSet::new();
    for (n, (id, v)) in rows.into_iter().enumerate() {
        if v.len() != dim {
            return Err(invalid(
                path,
                format!(
                    "item {n} ({id}) has {} values, the first had {dim}",
                    v.len()
                ),
            ));
        }
        if v.iter().any(|f| !f.is_finite()) {
            return Err(invalid(
                path,
                format!("item {id} has a NaN or infinite value"),
            ));
        }
        if id.is_empty() || id.contains('\n') || !seen.insert(id.clone()) {
            return Err(invalid(
                path,
                format!("item id {id:?} is empty, multi-line or repeated"),
            ));
        }
        ids.push(id);
        factors.extend(v);
    }
    Ok((ids, factors, dim))
}

fn json_factor_row(line: &str) -> Result<(String, Vec<f32>), String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let id = ["id", "item_id", "itemId"]
        .iter()
        .find_map(|k| v.get(k))
        .ok_or("no id, item_id or itemId field")?;
    let id = match id {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let vector = ["features", "factors", "vector"]
        .iter()
        .find_map(|k| v.get(k))
        .and_then(|f| f.as_array())
        .ok_or("no features, factors or vector array")?;
    let vector = vector
        .iter()
        .map(|x| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or("a vector value is not a number")
        })
        .collect::<Result<_, _>>()?;
    Ok((id, vector))
}

fn csv_factor_rows(text: &str) -> Result<Vec<(String, Vec<f32>)>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let record = record.map_err(|e| format!("line {line}: {e}"))?;
        let id = record.get(0).unwrap_or_default().trim().to_owned();
        let rest: Vec<&str> = record.iter().skip(1).collect();
        let vector: Vec<f32> = match rest.as_slice() {
            [one] if one.trim_start().starts_with('[') => {
                serde_json::from_str::<Vec<f32>>(one.trim())
                    .map_err(|e| format!("line {line}: {e}"))?
            }
            many => many
                .iter()
                .map(|s| s.trim().parse::<f32>())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("line {line}: {e}"))?,
        };
        rows.push((id, vector));
    }
    Ok(rows)
}

/// A listener's vector from the items they engaged with (`(item, confidence)`), as one
/// implicit-ALS user step against fixed item factors: (YᵀY + Σ(c-1)yyᵀ + λI) x = Σ c y.
/// `vector` writes item `i`'s factors into its second argument. `None` when `items` is
/// empty or the system is singular.
pub(crate) fn fold_in(
    gram: &[f32],
    lambda: f32,
    items: &[(u32, f32)],
    mut vector: impl FnMut(u32, &mut [f32]),
) -> Option<Vec<f32>> {
    if items.is_empty() {
        return None;
    }
    let d = (gram.len() as f64).sqrt() as usize;
    let mut a = gram.to_vec();
    let mut b = vec![0.0f32; d];
    let mut y = vec![0.0f32; d];
    for &(item, c) in items {
        vector(item, &mut y);
        add_outer(&mut a, &y, c - 1.0);
        for (bj, yj) in b.iter_mut().zip(&y) {
            *bj += c * yj;
        }
    }
    for j in 0..d {
        a[j * d + j] += lambda;
    }
    solve_spd(&mut a, &mut b, d).then_some(b)
}

/// `YᵀY` of row-major `factors` with `dim` columns.
fn gram(factors: &[f32], dim: usize) -> Vec<f32> {
    let mut g = vec![0.0f32; dim * dim];
    for y in factors.chunks_exact(dim) {
        add_outer(&mut g, y, 1.0);
    }
    g
}

/// `a += w · y yᵀ` for a square `a` of side `y.len()`.
pub(crate) fn add_outer(a: &mut [f32], y: &[f32], w: f32) {
    let d = y.len();
    for (i, &yi) in y.iter().enumerate() {
        let wyi = w * yi;
        for (aij, &yj) in a[i * d..(i + 1) * d].iter_mut().zip(y) {
            *aij += wyi * yj;
        }
    }
}

/// Solves `a x = b` for a symmetric positive-definite `a` (side `d`) by Cholesky, in place:
/// `b` becomes `x`. False when `a` is not positive definite.
pub(crate) fn solve_spd(a: &mut [f32], b: &mut [f32], d: usize) -> bool {
    // a = L Lᵀ, L stored in the lower triangle.
    for j in 0..d {
        let mut diag = a[j * d + j] as f64;
        for k in 0..j {
            diag -= (a[j * d + k] as f64).powi(2);
        }
        if diag <= 0.0 || !diag.is_finite() {
            return false;
        }
        let l_jj = diag.sqrt();
        a[j * d + j] = l_jj as f32;
        for i in j + 1..d {
            let mut s = a[i * d + j] as f64;
            for k in 0..j {
                s -= a[i * d + k] as f64 * a[j * d + k] as f64;
            }
            a[i * d + j] = (s / l_jj) as f32;
        }
    }
    // L z = b, then Lᵀ x = z.
    for i in 0..d {
        let mut s = b[i] as f64;
        for k in 0..i {
            s -= a[i * d + k] as f64 * b[k] as f64;
        }
        b[i] = (s / a[i * d + i] as f64) as f32;
    }
    for i in (0..d).rev() {
        let mut s = b[i] as f64;
        for k in i + 1..d {
            s -= a[k * d + i] as f64 * b[k] as f64;
        }
        b[i] = (s / a[i * d + i] as f64) as f32;
    }
    true
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // [[4, 2], [2, 3]] x = [2, 1] -> x = [0.5, 0]
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        assert!(solve_spd(&mut a, &mut b, 2));
        assert!((b[0] - 0.5).abs() < 1e-6 && b[1].abs() < 1e-6, "{b:?}");
        let mut not_pd = vec![0.0, 1.0, 1.0, 0.0];
        assert!(!solve_spd(&mut not_pd, &mut [1.0, 1.0], 2));
    }

    #[test]
    fn an_artifact_round_trips_and_a_truncated_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let m = new_manifest("als", 2, 3);
        let f = ItemFactors::new(
            m,
            vec!["a".into(), "b".into(), "c".into()],
            vec![1.0, 0.0, 0.0, 1.0, 0.5, 0.5],
        );
        f.save(dir.path()).unwrap();
        let back = ItemFactors::load(dir.path()).unwrap();
        assert_eq!(back.ids, f.ids);
        assert_eq!(back.factors, f.factors);
        assert_eq!(back.manifest, f.manifest);
        std::fs::write(dir.path().join(ITEMS_FILE), "a\nb\n").unwrap();
        let err = ItemFactors::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("items.txt has 2 ids"), "{err}");
    }

    #[test]
    fn an_item_item_artifact_round_trips_and_a_row_past_the_items_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let n = ItemNeighbours::new(
            new_manifest("ease", 0, 3),
            vec!["a".into(), "b".into(), "c".into()],
            vec![0, 2, 2, 3],
            vec![2, 1, 0],
            vec![0.5, 0.25, 1.0],
        );
        n.save(dir.path()).unwrap();
        let Model::Neighbours(back) = Model::load(dir.path()).unwrap() else {
            panic!("an item-item model reads back as one");
        };
        assert_eq!(back.manifest.format, NEIGHBOURS_FORMAT);
        assert_eq!(back.row(0), (&[2u32, 1][..], &[0.5f32, 0.25][..]));
        assert_eq!(back.row(1).0, &[] as &[u32]);
        assert_eq!(back.row_of("c"), Some(2));
        // The same rows over two items: index 2 is nobody.
        std::fs::write(dir.path().join(ITEMS_FILE), "a\nb\n").unwrap();
        let err = Model::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("does not describe 2 rows"), "{err}");
        // A factors reader refuses it by its format.
        let err = ItemFactors::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not encore-item-factors"), "{err}");
    }

    #[test]
    fn folding_in_points_a_listener_towards_their_items() {
        let f = ItemFactors::new(
            new_manifest("als", 2, 2),
            vec!["x".into(), "y".into()],
            vec![1.0, 0.0, 0.0, 1.0],
        );
        let u = f.fold_in(&[(0, 10.0)]).unwrap();
        assert!(dot(&u, f.vector(0)) > dot(&u, f.vector(1)) + 0.5, "{u:?}");
        assert!(f.fold_in(&[]).is_none());
    }
}
