//! Item factors as a server holds them: per catalog track, the row of the artifact that
//! holds its exact f32 factors, which are read in place from the mapped
//! `item_factors.safetensors` for the tracks a request scores; the most popular tracks'
//! exact rows also on the heap, side by side (`HOT_ROWS`); and the version's ANN index
//! (`ann`), mapped, for "more like this" over the whole catalog. A track costs 4 bytes of
//! heap instead of 128 bytes of f32 plus its id twice (the artifact's id list and an id ->
//! row map). The artifact stays the open format it is.

use super::ann::{self, ANN_FILE, Ivf, PROBES};
use super::catalog::{Catalog, TrackIx};
use super::mapped::{Mapped, as_u32s, write_u32s};
use super::model::{
    FACTORS_FILE, FACTORS_TENSOR, FORMAT, ITEMS_FILE, ItemFactors, MANIFEST_FILE, ModelError,
    ModelManifest, add_outer, decode_le, expect_format, fold_in, index_artifact, invalid, io,
    read_manifest, unparsable,
};
use crate::domain::TrackId;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

/// Marks a catalog track the model does not know, and an artifact row the catalog lacks.
const NO_ROW: u32 = u32::MAX;

/// How many tracks, per track wanted, "more like this" reranks by exact factors after the
/// ANN index scored them by int8 codes.
const RERANK_FACTOR: usize = 4;

/// How many of the most popular tracks keep their exact factors on the heap as well, in
/// catalog order: "more like this" scores the most popular of the seed's genre and of all,
/// and candidates are mostly popular, so their exact rows are read from here, side by side,
/// rather than from pages scattered over the artifact (its rows are in the trainer's
/// order). 25.6 MB at 32 dimensions, whatever the catalog's size.
const HOT_ROWS: usize = 200_000;

/// A factor model matched to the catalog.
pub struct ServedFactors {
    dim: usize,
    /// Track `ix`'s row in the artifact (`NO_ROW` when the model does not know it).
    rows: Vec<u32>,
    /// The version's ANN index, with the catalog track of each of its entries, in list
    /// order (`NO_ROW` for an item the catalog lacks), in a mapped temporary file: a query
    /// reads the tracks of the lists it reads, side by side. `None` for a version without
    /// an index (written before there were indexes, or in memory): "more like this" then
    /// searches the seed's neighbourhood only.
    ann: Option<(Ivf, Mapped)>,
    /// The artifact's rows, exact.
    exact: Exact,
    /// The exact rows of catalog tracks `0..hot_rows` (little-endian f32s, zeros for an
    /// unknown track).
    hot: Vec<u8>,
    hot_rows: usize,
    /// `YᵀY` over every row of the artifact, for folding a listener in.
    gram: Vec<f32>,
    regularization: f32,
    /// How many rows the artifact has.
    pub items: usize,
    /// How many catalog tracks the model knows.
    pub known: usize,
}

/// What `ServedFactors::like` found.
pub struct Like {
    /// Tracks the model knows, each with its exact cosine similarity to the seed.
    pub near: Vec<(f32, TrackIx)>,
    /// Tracks the model does not know: for the caller to score otherwise.
    pub unknown: Vec<TrackIx>,
}

/// The artifact's f32 rows, little-endian, `4 · dim` bytes each from `offset`.
enum Exact {
    /// Mapped from the file: only the pages of the rows read are in memory.
    Mapped { map: Mapped, offset: usize },
    /// A model made in memory (training, evaluation, tests).
    Owned(Vec<u8>),
}

impl Exact {
    fn row(&self, r: u32, dim: usize) -> &[u8] {
        match self {
            Exact::Mapped { map, offset } => &map.bytes()[span(*offset, r, dim)],
            Exact::Owned(bytes) => &bytes[span(0, r, dim)],
        }
    }
}

/// Where row `r` of `dim` factors is, in bytes, when the rows start at `offset`.
fn span(offset: usize, r: u32, dim: usize) -> Range<usize> {
    let start = offset + r as usize * 4 * dim;
    start..start + 4 * dim
}

impl ServedFactors {
    /// The version in `dir` (its manifest already read), matched to `catalog`. The factors
    /// are read once, row by row, through a buffer (quantized, and summed into `YᵀY`), so
    /// the peak is what is kept plus a megabyte: the artifact is never held whole.
    pub fn load(
        dir: &Path,
        manifest: &ModelManifest,
        catalog: &Catalog,
    ) -> Result<Self, ModelError> {
        Self::load_keeping(dir, manifest, catalog, HOT_ROWS)
    }

    /// `load`, keeping the exact rows of the first `hot_rows` tracks on the heap.
    fn load_keeping(
        dir: &Path,
        manifest: &ModelManifest,
        catalog: &Catalog,
        hot_rows: usize,
    ) -> Result<Self, ModelError> {
        let (map, offset, items) = open_artifact(dir, manifest)?;
        let mut served = ServedFactors::empty(
            manifest.dim,
            catalog.len(),
            manifest,
            Exact::Mapped { map, offset },
            hot_rows,
        );
        served.items = items;
        let fingerprint = read_rows(dir, manifest.dim, offset, items, |r, id, y| {
            served.add_row(r, y, catalog.index_of(&TrackId(id)))
        })?;
        served.known = served.rows.iter().filter(|&&r| r != NO_ROW).count();
        served.ann = served.open_index(dir, manifest, fingerprint);
        if let Exact::Mapped { map, .. } = &served.exact {
            map.read_at_random();
        }
        Ok(served)
    }

    /// The version's ANN index, when it has one that indexes this artifact (whose rows
    /// hash to `fingerprint`), and the catalog track of each of its entries, in list
    /// order. Logs why a version is served without one.
    fn open_index(
        &self,
        dir: &Path,
        manifest: &ModelManifest,
        fingerprint: u64,
    ) -> Option<(Ivf, Mapped)> {
        let path = dir.join(ANN_FILE);
        let ivf = match Ivf::open(&path, self.dim, self.items, fingerprint) {
            Ok(Some(ivf)) => ivf,
            Ok(None) => {
                tracing::warn!(
                    model_version = manifest.version,
                    dir = %dir.display(),
                    "the model version has no ANN index: more like this searches the seed's \
                     neighbourhood only (`encore model index DIR` builds one)"
                );
                return None;
            }
            Err(reason) => {
                tracing::warn!(
                    model_version = manifest.version,
                    path = %path.display(),
                    reason,
                    "the model version's ANN index cannot serve: more like this searches the \
                     seed's neighbourhood only (`encore model index DIR` builds it again)"
                );
                return None;
            }
        };
        let mut track_of = vec![NO_ROW; self.items];
        for (ix, &r) in self.rows.iter().enumerate() {
            if r != NO_ROW {
                track_of[r as usize] = ix as u32;
            }
        }
        // Streamed into the file: a second vector of `items` beside `track_of` was 400 MB
        // more at the peak of a swap at 100M.
        let tracks = Mapped::write(|out| {
            ivf.rows()
                .iter()
                .try_for_each(|&r| write_u32s(out, &[track_of[r as usize]]))
        });
        drop(track_of);
        match tracks {
            Ok(mapped) => {
                mapped.read_at_random();
                tracing::info!(
                    model_version = manifest.version,
                    lists = ivf.lists(),
                    "the model version's ANN index is mapped"
                );
                Some((ivf, mapped))
            }
            Err(e) => {
                tracing::warn!(
                    model_version = manifest.version,
                    error = %e,
                    "no temporary file for the ANN index's track map (is TMPDIR writable?): \
                     more like this searches the seed's neighbourhood only"
                );
                None
            }
        }
    }

    /// `factors` (made in memory) matched to `catalog`.
    pub fn of(factors: &ItemFactors, catalog: &Catalog) -> Self {
        let dim = factors.dim();
        let bytes = factors
            .factors
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let mut served = ServedFactors::empty(
            dim,
            catalog.len(),
            &factors.manifest,
            Exact::Owned(bytes),
            HOT_ROWS,
        );
        served.items = factors.ids.len();
        for (r, id) in factors.ids.iter().enumerate() {
            let ix = catalog.index_of(&TrackId(id.clone()));
            served.add_row(r as u32, factors.vector(r as u32), ix);
        }
        served.known = served.rows.iter().filter(|&&r| r != NO_ROW).count();
        served
    }

    fn empty(
        dim: usize,
        tracks: usize,
        manifest: &ModelManifest,
        exact: Exact,
        hot_rows: usize,
    ) -> Self {
        let hot_rows = tracks.min(hot_rows);
        ServedFactors {
            dim,
            rows: vec![NO_ROW; tracks],
            ann: None,
            exact,
            hot: vec![0; 4 * dim * hot_rows],
            hot_rows,
            gram: vec![0.0; dim * dim],
            regularization: manifest.regularization(),
            items: 0,
            known: 0,
        }
    }

    /// Row `r` of the artifact, `y`, for catalog track `ix` (of a repeated id, the last
    /// row counts, as the id -> row map of `ItemFactors` has it).
    fn add_row(&mut self, r: u32, y: &[f32], ix: Option<TrackIx>) {
        add_outer(&mut self.gram, y, 1.0);
        if let Some(ix) = ix {
            let i = ix as usize;
            self.rows[i] = r;
            if i < self.hot_rows {
                let row = &mut self.hot[4 * i * self.dim..4 * (i + 1) * self.dim];
                for (out, f) in row.chunks_exact_mut(4).zip(y) {
                    out.copy_from_slice(&f.to_le_bytes());
                }
            }
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the model knows catalog track `ix`.
    pub fn knows(&self, ix: TrackIx) -> bool {
        self.rows.get(ix as usize).is_some_and(|&r| r != NO_ROW)
    }

    fn exact_row(&self, ix: TrackIx) -> Option<&[u8]> {
        let i = ix as usize;
        let r = *self.rows.get(i)?;
        if r == NO_ROW {
            return None;
        }
        Some(match i < self.hot_rows {
            true => &self.hot[4 * i * self.dim..4 * (i + 1) * self.dim],
            false => self.exact.row(r, self.dim),
        })
    }

    /// Catalog track `ix`'s exact factors.
    pub fn vector(&self, ix: TrackIx) -> Option<Vec<f32>> {
        let mut y = vec![0.0; self.dim];
        decode_le(self.exact_row(ix)?, &mut y);
        Some(y)
    }

    /// `u · y` with catalog track `ix`'s exact factors `y`.
    pub fn score(&self, u: &[f32], ix: TrackIx) -> Option<f32> {
        self.exact_row(ix).map(|row| dot_le(u, row))
    }

    /// A listener's vector from the catalog tracks they engaged with (`(track,
    /// confidence)`, tracks the model knows), by `model::fold_in` with the exact factors.
    pub fn fold_in(&self, items: &[(TrackIx, f32)]) -> Option<Vec<f32>> {
        self.prefetch(items.iter().map(|&(ix, _)| ix));
        fold_in(&self.gram, self.regularization, items, |ix, y| {
            if let Some(row) = self.exact_row(ix) {
                decode_le(row, y);
            }
        })
    }

    /// Tracks near `seed` by the cosine similarity of their exact factors: with the
    /// version's ANN index, the best `RERANK_FACTOR · limit` of the whole catalog by their
    /// codes, reranked (what the index misses is measured in `benches/recommend.rs`);
    /// without one, the tracks of `among` (the seed's neighbourhood) the model knows. At
    /// most `limit` are returned, with the tracks of `among` the model does not know (for
    /// the caller to score otherwise). `None` when the model does not know the seed.
    pub fn like(
        &self,
        seed: TrackIx,
        among: impl Iterator<Item = TrackIx>,
        limit: usize,
    ) -> Option<Like> {
        self.like_probing(seed, among, limit, PROBES)
    }

    /// `like`, reading `probes` of the index's lists (none: the neighbourhood, as without
    /// an index), for the benchmark that weighs recall against latency.
    pub fn like_probing(
        &self,
        seed: TrackIx,
        among: impl Iterator<Item = TrackIx>,
        limit: usize,
        probes: usize,
    ) -> Option<Like> {
        let seed_exact = self.vector(seed)?;
        let seed_norm = super::model::dot(&seed_exact, &seed_exact).sqrt().max(1e-6);
        let seed_unit: Vec<f32> = seed_exact.iter().map(|v| v / seed_norm).collect();
        let cosine = |row: &[u8]| cosine_le(&seed_unit, row);
        let mut unknown = Vec::new();
        let mut near: Vec<(f32, TrackIx)> = Vec::new();
        match self.ann.as_ref().filter(|_| probes > 0) {
            Some((ivf, tracks)) => {
                unknown.extend(among.filter(|&ix| !self.knows(ix)));
                let probe = ivf.probe(&seed_exact, probes);
                let entries: Vec<Range<usize>> = ivf
                    .entries(&probe)
                    .into_iter()
                    .map(|e| 4 * e.start..4 * e.end)
                    .collect();
                tracks.prefetch(&entries);
                let track_of = as_u32s(tracks.bytes());
                let shortlist: Vec<TrackIx> = ivf
                    .scan(&probe, RERANK_FACTOR * limit)
                    .into_iter()
                    .map(|e| track_of[e as usize])
                    .filter(|&ix| ix != NO_ROW && ix != seed)
                    .collect();
                self.prefetch(shortlist.iter().copied());
                for ix in shortlist {
                    near.push((cosine(self.exact_row(ix).expect("known")), ix));
                }
            }
            None => {
                for ix in among {
                    match self.exact_row(ix) {
                        Some(row) => near.push((cosine(row), ix)),
                        None => unknown.push(ix),
                    }
                }
            }
        }
        if near.len() > limit && limit > 0 {
            near.select_nth_unstable_by(limit - 1, |a, b| b.0.total_cmp(&a.0));
            near.truncate(limit);
        }
        Some(Like { near, unknown })
    }

    /// Has the kernel read the exact rows of `tracks` from the artifact ahead, all at once
    /// (`Mapped::prefetch`), for a caller about to score them: at 100M tracks the rows of
    /// tracks out of the popular few are mostly on disk.
    pub fn prefetch(&self, tracks: impl IntoIterator<Item = TrackIx>) {
        let Exact::Mapped { map, offset } = &self.exact else {
            return;
        };
        let ranges: Vec<Range<usize>> = tracks
            .into_iter()
            .filter(|&ix| ix as usize >= self.hot_rows)
            .filter_map(|ix| self.rows.get(ix as usize))
            .filter(|&&r| r != NO_ROW)
            .map(|&r| span(*offset, r, self.dim))
            .collect();
        map.prefetch(&ranges);
    }

    /// Whether "more like this" searches the whole catalog through an ANN index.
    pub fn has_index(&self) -> bool {
        self.ann.is_some()
    }

    /// Bytes held (the mapped artifact not counted: its pages are the kernel's to keep or
    /// drop), for the benchmarks.
    pub fn heap_bytes(&self) -> usize {
        self.hot.capacity()
            + 4 * self.rows.capacity()
            + 4 * self.gram.capacity()
            + match &self.exact {
                Exact::Mapped { .. } => 0,
                Exact::Owned(bytes) => bytes.capacity(),
            }
    }
}

/// Whether the factor version in `dir` (its manifest already read) reads whole: its header,
/// shape, every row finite, and one id per row. It reads row by row, holding nothing, so
/// the S3 mirror checks a download of any size without a second model in memory.
pub fn check(dir: &Path, manifest: &ModelManifest) -> Result<(), ModelError> {
    let (_map, offset, items) = open_artifact(dir, manifest)?;
    read_rows(dir, manifest.dim, offset, items, |_, _, _| {}).map(drop)
}

/// Builds the ANN index of the factor version in `dir` (`ann::build`) and writes it beside
/// the artifact, replacing any there. The job that writes a version does this
/// (`model::write_factors`); `encore model index` does it for a version written without
/// one. A version being written, whose `model.json` is not there yet (the Spark job writes
/// it last), is indexed by the artifact's own shape.
pub fn index_version(dir: &Path) -> Result<ann::Built, ModelError> {
    let (_map, offset, items, dim) = match dir.join(MANIFEST_FILE).exists() {
        true => {
            let manifest = read_manifest(dir)?;
            expect_format(dir, &manifest, FORMAT)?;
            let (map, offset, items) = open_artifact(dir, &manifest)?;
            (map, offset, items, manifest.dim)
        }
        false => open_tensor(dir)?,
    };
    index_artifact(dir, items, dim, offset)
}

/// The factors file in `dir` mapped, with where its rows start and how many there are,
/// once its header is checked against `manifest`. A version's files are written once, each
/// through a new file renamed into place (`write_factors`, the mirror's staging directory),
/// and never rewritten: a new model is a new version directory, and removing one leaves a
/// mapping intact (what `Mapped::open` asks of a file).
fn open_artifact(
    dir: &Path,
    manifest: &ModelManifest,
) -> Result<(Mapped, usize, usize), ModelError> {
    let (map, offset, items, dim) = open_tensor(dir)?;
    if dim != manifest.dim {
        let path = dir.join(FACTORS_FILE);
        return Err(invalid(
            &path,
            format!(
                "{FACTORS_TENSOR} is F32 [{items}, {dim}], expected F32 [items, {}]",
                manifest.dim
            ),
        ));
    }
    Ok((map, offset, items))
}

/// The factors file in `dir` mapped, with where its rows start, how many there are and
/// their dimensions, once its header says it holds one F32 matrix of them.
fn open_tensor(dir: &Path) -> Result<(Mapped, usize, usize, usize), ModelError> {
    let path = dir.join(FACTORS_FILE);
    let map = Mapped::open(&path).map_err(io(&path))?;
    let tensors =
        safetensors::SafeTensors::deserialize(map.bytes()).map_err(|e| unparsable(&path, e))?;
    let tensor = tensors
        .tensor(FACTORS_TENSOR)
        .map_err(|e| unparsable(&path, e))?;
    if tensor.dtype() != safetensors::Dtype::F32
        || tensor.shape().len() != 2
        || tensor.shape()[1] == 0
    {
        return Err(invalid(
            &path,
            format!(
                "{FACTORS_TENSOR} is {:?} {:?}, expected F32 [items, dim]",
                tensor.dtype(),
                tensor.shape(),
            ),
        ));
    }
    let offset = tensor.data().as_ptr() as usize - map.bytes().as_ptr() as usize;
    let (items, dim) = (tensor.shape()[0], tensor.shape()[1]);
    drop(tensors);
    Ok((map, offset, items, dim))
}

/// Reads the `items` rows of `dim` factors from `offset` of `dir`'s factors file, in order,
/// through a buffer (the page cache, not this process's memory), with the id of each from
/// the id list: `each(row, id, factors)`. Refuses a row that is not finite, and an id list
/// that is not one id per row. Returns the rows' `ann::Fingerprint`, hashed as they pass,
/// so that checking the ANN index reads the artifact no second time.
fn read_rows(
    dir: &Path,
    dim: usize,
    offset: usize,
    items: usize,
    mut each: impl FnMut(u32, String, &[f32]),
) -> Result<u64, ModelError> {
    let path = dir.join(FACTORS_FILE);
    let file = std::fs::File::open(&path).map_err(io(&path))?;
    let mut data = BufReader::with_capacity(1 << 20, file);
    data.seek(SeekFrom::Start(offset as u64))
        .map_err(io(&path))?;
    let ids_path = dir.join(ITEMS_FILE);
    let ids = BufReader::new(std::fs::File::open(&ids_path).map_err(io(&ids_path))?);
    let mut bytes = vec![0u8; 4 * dim];
    let mut y = vec![0.0f32; dim];
    let mut fingerprint = ann::Fingerprint::new();
    let mut read = 0;
    for line in ids.lines() {
        let id = line.map_err(io(&ids_path))?;
        if read == items {
            read += 1;
            break;
        }
        data.read_exact(&mut bytes).map_err(io(&path))?;
        fingerprint.update(&bytes);
        decode_le(&bytes, &mut y);
        if y.iter().any(|f| !f.is_finite()) {
            return Err(invalid(&path, "factors hold NaN or infinity"));
        }
        each(read as u32, id, &y);
        read += 1;
    }
    if read != items {
        return Err(invalid(
            &path,
            format!(
                "{FACTORS_TENSOR} has {items} rows but {} has {} ids",
                ids_path.display(),
                if read > items {
                    "more".to_owned()
                } else {
                    read.to_string()
                }
            ),
        ));
    }
    Ok(fingerprint.digest())
}

/// `u · y` for `y` as little-endian f32s, summed in the order `model::dot` sums.
fn dot_le(u: &[f32], y: &[u8]) -> f32 {
    u.iter()
        .zip(y.chunks_exact(4))
        .map(|(a, b)| a * f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .sum()
}

/// The cosine similarity of the unit vector `unit` and `y`, little-endian f32s, in one
/// pass with eight running sums of each (what lets the compiler use vector instructions:
/// "more like this" scores some 20,000 tracks a request).
fn cosine_le(unit: &[f32], y: &[u8]) -> f32 {
    let (mut dots, mut squares) = ([0.0f32; 8], [0.0f32; 8]);
    let (u8s, u_rest) = unit.as_chunks::<8>();
    let (y32s, y_rest) = y.as_chunks::<32>();
    for (u, y) in u8s.iter().zip(y32s) {
        for k in 0..8 {
            let v = f32::from_le_bytes([y[4 * k], y[4 * k + 1], y[4 * k + 2], y[4 * k + 3]]);
            dots[k] += u[k] * v;
            squares[k] += v * v;
        }
    }
    let (mut dot, mut square) = (dots.iter().sum::<f32>(), squares.iter().sum::<f32>());
    for (u, b) in u_rest.iter().zip(y_rest.chunks_exact(4)) {
        let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        dot += u * v;
        square += v * v;
    }
    dot / square.sqrt().max(1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::catalog::Manifest;
    use crate::recommend::model::{dot, new_manifest};

    fn catalog(ids: &[&str]) -> Catalog {
        let manifest = Manifest::for_tests();
        let tracks = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut t = crate::domain::Track::sample(id, "a", "pop");
                t.popularity = 100 - (i % 100) as u8;
                t
            })
            .collect();
        Catalog::from_tracks(manifest, tracks)
    }

    /// Factors for `ids`: row `r` is a fixed pseudo-random vector.
    fn factors(ids: &[&str], dim: usize) -> ItemFactors {
        let values = (0..ids.len() * dim)
            .map(|i| ((i as f32 * 0.7548).sin() * 1.3) + 0.01 * (i % 7) as f32)
            .collect();
        ItemFactors::new(
            new_manifest("als", dim, ids.len()),
            ids.iter().map(|s| s.to_string()).collect(),
            values,
        )
    }

    #[test]
    fn a_mapped_artifact_serves_what_the_model_in_memory_does() {
        let ids: Vec<String> = (0..300).map(|i| format!("t{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        // The catalog lacks the model's last 20 items and has 10 the model lacks.
        let mut in_catalog: Vec<&str> = ids[..280].to_vec();
        in_catalog.extend(["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9"]);
        let catalog = catalog(&in_catalog);
        let model = factors(&ids, 8);
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        assert!(check(dir.path(), &model.manifest).is_ok());
        let mapped = ServedFactors::load(dir.path(), &model.manifest, &catalog).unwrap();
        let owned = ServedFactors::of(&model, &catalog);
        // Exact rows read from the mapped artifact alone, and partly from the heap.
        let cold = ServedFactors::load_keeping(dir.path(), &model.manifest, &catalog, 0).unwrap();
        let part = ServedFactors::load_keeping(dir.path(), &model.manifest, &catalog, 100).unwrap();
        assert_eq!((cold.hot.len(), part.hot_rows), (0, 100));
        for served in [&mapped, &owned, &cold, &part] {
            assert_eq!((served.items, served.known), (300, 280));
            let ix = catalog.index_of(&TrackId("t17".into())).unwrap();
            assert_eq!(served.vector(ix).unwrap(), model.vector(17));
            let u = model.vector(3).to_vec();
            assert_eq!(served.score(&u, ix), Some(dot(&u, model.vector(17))));
            let x0 = catalog.index_of(&TrackId("x0".into())).unwrap();
            assert!(!served.knows(x0) && served.score(&u, x0).is_none());
            let items: Vec<(TrackIx, f32)> = ["t1", "t5", "t9"]
                .iter()
                .map(|id| (catalog.index_of(&TrackId(id.to_string())).unwrap(), 3.0))
                .collect();
            let rows: Vec<(u32, f32)> = [(1, 3.0), (5, 3.0), (9, 3.0)].to_vec();
            assert_eq!(served.fold_in(&items), model.fold_in(&rows));
        }
    }

    /// Whether every mapping of `path` in this process is marked read at random (the `rr`
    /// of its flags in /proc/self/smaps), and there is one.
    #[cfg(target_os = "linux")]
    fn mapped_for_random_reads(path: &Path) -> bool {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let name = path.to_str().unwrap();
        let mut flags = Vec::new();
        let mut of_path = false;
        for line in smaps.lines() {
            if let Some(rest) = line.strip_prefix("VmFlags:") {
                if of_path {
                    flags.push(rest.split_whitespace().any(|f| f == "rr"));
                }
            } else if line
                .split_whitespace()
                .next()
                .is_some_and(|f| f.contains('-'))
            {
                of_path = line.ends_with(name);
            }
        }
        !flags.is_empty() && flags.iter().all(|&rr| rr)
    }

    /// A request reads a few rows of the artifact and a few lists of the index: the
    /// kernel is told so, or each page fault reads some 128 KB around its page (at 100M
    /// tracks, 1,200 rows took 4 s cold instead of 87 ms).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_served_versions_artifact_and_index_are_mapped_for_random_reads() {
        let ids: Vec<String> = (0..500).map(|i| format!("t{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let catalog = catalog(&ids);
        let model = factors(&ids, 8);
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let served = ServedFactors::load(dir.path(), &model.manifest, &catalog).unwrap();
        assert!(served.has_index());
        assert!(mapped_for_random_reads(&dir.path().join(FACTORS_FILE)));
        assert!(mapped_for_random_reads(&dir.path().join(ANN_FILE)));
        // Read ahead or not, a short list scores as it did.
        let seed = catalog.index_of(&TrackId("t7".into())).unwrap();
        let near = served.like(seed, std::iter::empty(), 20).unwrap().near;
        let mut tracks: Vec<TrackIx> = near.iter().map(|&(_, ix)| ix).collect();
        tracks.push(TrackIx::MAX);
        served.prefetch(tracks.iter().copied());
        let again = served.like(seed, std::iter::empty(), 20).unwrap().near;
        assert_eq!(near, again);
    }

    /// The exact `n` nearest of `model`'s row `seed` by cosine among the catalog tracks
    /// `served` knows, but the seed.
    fn exact_nearest(
        served: &ServedFactors,
        catalog: &Catalog,
        model: &ItemFactors,
        seed: u32,
        n: usize,
    ) -> Vec<TrackIx> {
        let s = model.vector(seed);
        let cos = |y: &[f32]| dot(s, y) / (dot(s, s).sqrt() * dot(y, y).sqrt());
        let seed_ix = catalog.index_of(&TrackId(model.ids[seed as usize].clone()));
        let mut exact: Vec<(f32, TrackIx)> = (0..catalog.len() as TrackIx)
            .filter(|&i| served.knows(i) && Some(i) != seed_ix)
            .map(|i| (cos(&served.vector(i).unwrap()), i))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        exact.iter().take(n).map(|&(_, i)| i).collect()
    }

    fn best(near: &[(f32, TrackIx)], n: usize) -> Vec<TrackIx> {
        let mut got = near.to_vec();
        got.sort_by(|a, b| b.0.total_cmp(&a.0));
        got.iter().take(n).map(|&(_, i)| i).collect()
    }

    #[test]
    fn more_like_this_scores_the_neighbourhood_by_the_exact_factors() {
        let ids: Vec<String> = (0..2000).map(|i| format!("t{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut in_catalog = ids.clone();
        in_catalog.push("new");
        let catalog = catalog(&in_catalog);
        let model = factors(&ids, 16);
        let served = ServedFactors::of(&model, &catalog);
        assert!(!served.has_index(), "a model in memory has no index");
        let seed = catalog.index_of(&TrackId("t42".into())).unwrap();
        let among = || (0..catalog.len() as TrackIx).filter(|&i| i != seed);
        let Like { near, unknown } = served.like(seed, among(), 50).unwrap();
        assert_eq!(unknown, [catalog.index_of(&TrackId("new".into())).unwrap()]);
        assert_eq!(near.len(), 50);
        assert_eq!(
            best(&near, 50),
            exact_nearest(&served, &catalog, &model, 42, 50)
        );
        let unknown_seed = catalog.index_of(&TrackId("new".into())).unwrap();
        assert!(served.like(unknown_seed, among(), 50).is_none());
        // Without an index, nothing outside the neighbourhood is found.
        let Like { near, .. } = served.like(seed, std::iter::empty(), 50).unwrap();
        assert!(near.is_empty());
    }

    #[test]
    fn more_like_this_finds_the_nearest_of_the_whole_catalog_through_the_versions_index() {
        let ids: Vec<String> = (0..3000).map(|i| format!("t{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        // The catalog lacks the model's last 100 items: the index finds them, serving skips.
        let catalog = catalog(&ids[..2900]);
        let model = factors(&ids, 16);
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        assert!(
            dir.path().join(ANN_FILE).is_file(),
            "saving writes the index"
        );
        let served = ServedFactors::load(dir.path(), &model.manifest, &catalog).unwrap();
        assert!(served.has_index());
        let seed = catalog.index_of(&TrackId("t42".into())).unwrap();
        // An empty neighbourhood: all of it comes from the index.
        let Like { near, .. } = served.like(seed, std::iter::empty(), 50).unwrap();
        assert_eq!(near.len(), 50);
        assert!(
            near.iter()
                .all(|&(_, ix)| ix != seed && (ix as usize) < 2900)
        );
        let want = exact_nearest(&served, &catalog, &model, 42, 50);
        let found = best(&near, 50).iter().filter(|i| want.contains(i)).count();
        assert!(found >= 45, "found {found} of the exact 50");
        // Their similarities are the exact ones.
        let s = model.vector(42);
        let (sim, ix) = near[0];
        let y = served.vector(ix).unwrap();
        assert!((sim - dot(s, &y) / (dot(s, s).sqrt() * dot(&y, &y).sqrt())).abs() < 1e-5);

        // An index of other factors is not served: the neighbourhood is searched alone.
        std::fs::copy(dir.path().join(ANN_FILE), dir.path().join("kept")).unwrap();
        let other = factors(&ids[1..], 16);
        let other_dir = tempfile::tempdir().unwrap();
        other.save(other_dir.path()).unwrap();
        std::fs::copy(other_dir.path().join(ANN_FILE), dir.path().join(ANN_FILE)).unwrap();
        let stale = ServedFactors::load(dir.path(), &model.manifest, &catalog).unwrap();
        assert!(!stale.has_index());
        assert!(
            stale
                .like(seed, std::iter::empty(), 50)
                .unwrap()
                .near
                .is_empty()
        );
        // `encore model index` builds it again.
        let built = index_version(dir.path()).unwrap();
        assert_eq!(built.items, 3000);
        let again = ServedFactors::load(dir.path(), &model.manifest, &catalog).unwrap();
        assert!(again.has_index());
        assert_eq!(
            std::fs::read(dir.path().join(ANN_FILE)).unwrap(),
            std::fs::read(dir.path().join("kept")).unwrap(),
            "the index is the same whoever builds it"
        );

        // A version still being written (no model.json yet, as the Spark job has it when it
        // runs `encore model index`) is indexed by its artifact's shape: the same index.
        let manifest = std::fs::read(dir.path().join(MANIFEST_FILE)).unwrap();
        std::fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
        std::fs::remove_file(dir.path().join(ANN_FILE)).unwrap();
        assert_eq!(index_version(dir.path()).unwrap().items, 3000);
        std::fs::write(dir.path().join(MANIFEST_FILE), manifest).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(ANN_FILE)).unwrap(),
            std::fs::read(dir.path().join("kept")).unwrap(),
        );
    }

    #[test]
    fn an_artifact_whose_ids_and_rows_disagree_is_refused() {
        let model = factors(&["a", "b", "c"], 4);
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        std::fs::write(dir.path().join(ITEMS_FILE), "a\nb\n").unwrap();
        let catalog = catalog(&["a"]);
        // Loading refuses it, and so does the check the S3 mirror makes of a download.
        let refusal = |manifest: &ModelManifest| {
            let checked = check(dir.path(), manifest).map_err(|e| e.to_string());
            match ServedFactors::load(dir.path(), manifest, &catalog) {
                Ok(_) => panic!("served"),
                Err(e) => {
                    assert_eq!(checked, Err(e.to_string()));
                    e.to_string()
                }
            }
        };
        let err = refusal(&model.manifest);
        assert!(err.contains("has 3 rows but"), "{err}");
        std::fs::write(dir.path().join(ITEMS_FILE), "a\nb\nc\nd\n").unwrap();
        let err = refusal(&model.manifest);
        assert!(err.contains("more ids"), "{err}");
        let mut wider = model.manifest.clone();
        wider.dim = 5;
        let err = refusal(&wider);
        assert!(err.contains("expected F32 [items, 5]"), "{err}");
    }
}
