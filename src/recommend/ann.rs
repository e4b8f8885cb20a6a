//! "More like this" over the whole catalog: an inverted-file index with product
//! quantization (IVF-PQ) over a factor version's items, built once by the job that writes
//! the version and mapped by servers. The items' unit vectors are split into lists by
//! spherical k-means; each item's residual from its list's centroid is stored as one byte
//! per sub-vector of `width` dimensions (a codebook of 256 per sub-vector, learned by
//! k-means), 8 bytes at 32 dimensions. A query scores the lists' centroids, reads the
//! `PROBES` nearest lists and scores their items by table lookups (its dot product with
//! every codeword, once), approximately; the caller reranks the shortlist by the exact
//! factors. What it misses against an exact search over every item is measured in
//! `benches/recommend.rs`.
//!
//! Written here rather than taken from a crate: the HNSW crates hold per-item state on the
//! heap while serving (usearch, viewing a mapped index, rebuilds a key -> slot hash table
//! and two pointers per item, about 40 bytes a track; hnsw_rs and instant-distance keep the
//! whole graph in memory), which alone is most of the 64 bytes a track the catalog may
//! cost, and faiss's IVF-PQ needs its C++ library, which no registry here carries. This
//! index is a file of centroids, codebooks, list offsets, artifact rows and codes that the
//! server maps: no heap per item, and nothing to build at start-up.
//!
//! The file, `item_factors.ivf` beside the artifact, little-endian: a 64-byte header
//! (`MAGIC`, dimensions u32, lists u32, items u64, the artifact rows' xxh3 u64, the
//! sub-vector width u32), the centroids (lists × dim f32), the codebooks (256 × dim f32:
//! sub-vector m's codeword j is the `width` floats at (m · 256 + j) · width), padding to 8
//! bytes, the list offsets ((lists + 1) u64), the artifact row of each entry in list order
//! (items u32), then each entry's codes (items × dim / width bytes).

use super::mapped::Mapped;
use rayon::prelude::*;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::Path;

/// The index's file name in a version directory.
pub const ANN_FILE: &str = "item_factors.ivf";

const MAGIC: &[u8; 8] = b"ENCIVFPQ";

/// Codewords per sub-vector: one byte.
const CODEWORDS: usize = 256;
const HEADER: usize = 64;

/// At most this many lists: about the square root of the items, up to 268M items.
const MAX_LISTS: usize = 16_384;

/// k-means learns the centroids from at most this many items per list, evenly spaced.
const SAMPLE_PER_LIST: usize = 48;

/// k-means rounds over the sample.
const ROUNDS: usize = 8;

/// How many lists a query reads by default (`benches/recommend.rs` prints recall by probes).
pub const PROBES: usize = 24;

/// A factor version's index, mapped.
pub struct Ivf {
    file: Mapped,
    dim: usize,
    lists: usize,
    width: usize,
    offsets_at: usize,
    rows_at: usize,
    codes_at: usize,
}

/// What `build` made.
#[derive(Debug, Clone, Copy)]
pub struct Built {
    pub items: usize,
    pub lists: usize,
    pub bytes: u64,
}

/// The fingerprint an index records of its artifact: xxh3 of the rows' bytes as stored
/// (little-endian f32), so that an index never serves with another version's factors.
/// Hashed as the rows pass (`update` with each row's bytes, in order).
pub type Fingerprint = xxhash_rust::xxh3::Xxh3;

/// The fingerprint of rows held whole.
#[cfg(test)]
fn fingerprint(rows: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(rows)
}

/// Builds the index of `items` rows of `dim` factors (`row(r, y)` writes row `r` into `y`)
/// into `path`, through a new file renamed into place. Logs each phase.
pub fn build(
    items: usize,
    dim: usize,
    row: impl Fn(usize, &mut [f32]) + Sync,
    path: &Path,
) -> std::io::Result<Built> {
    let started = std::time::Instant::now();
    let unit = |r: usize, y: &mut [f32]| {
        row(r, y);
        normalize(y);
    };
    let lists = ((items as f64).sqrt().round() as usize).clamp(1, MAX_LISTS);
    let sample_size = items.min(lists * SAMPLE_PER_LIST);
    let mut sample = vec![0.0f32; sample_size * dim];
    let mut hasher = Fingerprint::new();
    let mut y = vec![0.0f32; dim];
    let mut bytes = vec![0u8; 4 * dim];
    let mut next_sampled = 0;
    for r in 0..items {
        row(r, &mut y);
        for (b, f) in bytes.chunks_exact_mut(4).zip(&y) {
            b.copy_from_slice(&f.to_le_bytes());
        }
        hasher.update(&bytes);
        // Evenly spaced: item r is the i-th sampled when r = ⌊i · items / sample_size⌋.
        if next_sampled < sample_size && r == next_sampled * items / sample_size {
            normalize(&mut y);
            sample[next_sampled * dim..(next_sampled + 1) * dim].copy_from_slice(&y);
            next_sampled += 1;
        }
    }
    let fingerprint = hasher.digest();
    let centroids = kmeans(&sample, dim, lists);
    tracing::info!(
        items,
        lists,
        took_ms = started.elapsed().as_millis() as u64,
        "ann index: centroids learned"
    );
    let width = width_for(dim);
    let codebooks = learn_codebooks(&sample, &centroids, dim, width);
    drop(sample);
    tracing::info!(
        items,
        took_ms = started.elapsed().as_millis() as u64,
        "ann index: codebooks learned"
    );
    let assigner = Assigner::new(&centroids, dim);
    let assigned: Vec<u32> = (0..items)
        .into_par_iter()
        .map_init(
            || vec![0.0f32; dim],
            |y, r| {
                unit(r, y);
                assigner.nearest(y) as u32
            },
        )
        .collect();
    tracing::info!(
        items,
        took_ms = started.elapsed().as_millis() as u64,
        "ann index: items assigned to lists"
    );
    let mut offsets = vec![0u64; lists + 1];
    for &l in &assigned {
        offsets[l as usize + 1] += 1;
    }
    for l in 0..lists {
        offsets[l + 1] += offsets[l];
    }
    let mut order = vec![0u32; items];
    let mut next: Vec<u64> = offsets[..lists].to_vec();
    for (r, &l) in assigned.iter().enumerate() {
        order[next[l as usize] as usize] = r as u32;
        next[l as usize] += 1;
    }
    let subs = dim / width;
    // Each entry's codes written in place (collecting them through a growing vector spent
    // 14% of a 100M build moving it).
    let mut codes = vec![0u8; items * subs];
    codes
        .par_chunks_mut(subs.max(1))
        .zip(order.par_iter())
        .for_each_init(
            || vec![0.0f32; dim],
            |y, (code, &r)| {
                unit(r as usize, y);
                let c = assigned[r as usize] as usize;
                for (v, m) in y.iter_mut().zip(&centroids[c * dim..(c + 1) * dim]) {
                    *v -= m;
                }
                encode(&codebooks, width, y, code);
            },
        );
    drop(assigned);
    tracing::info!(
        items,
        took_ms = started.elapsed().as_millis() as u64,
        "ann index: items encoded"
    );

    let partial = path.with_extension("ivf.partial");
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&partial)?);
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&(dim as u32).to_le_bytes());
    header[12..16].copy_from_slice(&(lists as u32).to_le_bytes());
    header[16..24].copy_from_slice(&(items as u64).to_le_bytes());
    header[24..32].copy_from_slice(&fingerprint.to_le_bytes());
    header[32..36].copy_from_slice(&(width as u32).to_le_bytes());
    out.write_all(&header)?;
    for f in centroids.iter().chain(&codebooks) {
        out.write_all(&f.to_le_bytes())?;
    }
    let written = HEADER + 4 * (centroids.len() + codebooks.len());
    out.write_all(&[0u8; 4][..offsets_at(dim, lists) - written])?;
    for o in &offsets {
        out.write_all(&o.to_le_bytes())?;
    }
    for r in &order {
        out.write_all(&r.to_le_bytes())?;
    }
    out.write_all(&codes)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let bytes = file.metadata()?.len();
    std::fs::rename(&partial, path)?;
    tracing::info!(
        items,
        lists,
        bytes,
        took_ms = started.elapsed().as_millis() as u64,
        "ann index written"
    );
    Ok(Built {
        items,
        lists,
        bytes,
    })
}

/// Where the offsets start: after the header, centroids and codebooks, aligned to 8 bytes.
fn offsets_at(dim: usize, lists: usize) -> usize {
    (HEADER + 4 * (lists + CODEWORDS) * dim).next_multiple_of(8)
}

/// The sub-vector width: 4 dimensions a byte where they divide evenly (8 bytes at 32
/// dimensions), else 2, else 1.
fn width_for(dim: usize) -> usize {
    [4, 2, 1]
        .into_iter()
        .find(|&w| dim.is_multiple_of(w))
        .unwrap_or(1)
}

/// The codebooks: for each sub-vector, `CODEWORDS` codewords learned by k-means (squared
/// distance) from the sample's residuals from their nearest centroid.
fn learn_codebooks(sample: &[f32], centroids: &[f32], dim: usize, width: usize) -> Vec<f32> {
    let residuals: Vec<f32> = sample
        .par_chunks_exact(dim)
        .flat_map_iter(|y| {
            let c = nearest(centroids, dim, y);
            let centroid = &centroids[c * dim..(c + 1) * dim];
            y.iter()
                .zip(centroid)
                .map(|(v, m)| v - m)
                .collect::<Vec<_>>()
        })
        .collect();
    let points = residuals.len() / dim;
    let books: Vec<Vec<f32>> = (0..dim / width)
        .into_par_iter()
        .map(|m| {
            let subs: Vec<f32> = residuals
                .chunks_exact(dim)
                .flat_map(|y| y[m * width..(m + 1) * width].iter().copied())
                .collect();
            let mut book: Vec<f32> = (0..CODEWORDS)
                .flat_map(|j| {
                    let p = if points == 0 {
                        0
                    } else {
                        j * points / CODEWORDS
                    };
                    subs.get(p * width..(p + 1) * width)
                        .map_or_else(|| vec![0.0; width], <[f32]>::to_vec)
                })
                .collect();
            for _ in 0..ROUNDS {
                let mut sums = vec![0.0f32; CODEWORDS * width];
                let mut counts = vec![0usize; CODEWORDS];
                for x in subs.chunks_exact(width) {
                    let j = closest(&book, width, x);
                    counts[j] += 1;
                    for (s, v) in sums[j * width..(j + 1) * width].iter_mut().zip(x) {
                        *s += v;
                    }
                }
                for j in 0..CODEWORDS {
                    if counts[j] > 0 {
                        for (b, s) in book[j * width..(j + 1) * width]
                            .iter_mut()
                            .zip(&sums[j * width..(j + 1) * width])
                        {
                            *b = s / counts[j] as f32;
                        }
                    }
                }
            }
            book
        })
        .collect();
    books.concat()
}

/// The codeword of `book` (`width` floats each) nearest `x` by squared distance.
fn closest(book: &[f32], width: usize, x: &[f32]) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (j, c) in book.chunks_exact(width).enumerate() {
        let d: f32 = c.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum();
        if d < best.0 {
            best = (d, j);
        }
    }
    best.1
}

/// `residual`'s codes: the nearest codeword of each sub-vector's codebook.
fn encode(codebooks: &[f32], width: usize, residual: &[f32], code: &mut [u8]) {
    for (m, (x, c)) in residual
        .chunks_exact(width)
        .zip(code.iter_mut())
        .enumerate()
    {
        let book = &codebooks[m * CODEWORDS * width..(m + 1) * CODEWORDS * width];
        *c = closest(book, width, x) as u8;
    }
}

/// Spherical k-means of the unit vectors in `sample`: `lists` unit centroids, started
/// from evenly spaced sample points. A list left empty takes a sample point again.
fn kmeans(sample: &[f32], dim: usize, lists: usize) -> Vec<f32> {
    let points = sample.len() / dim;
    if points == 0 {
        return vec![0.0; lists * dim];
    }
    let mut centroids: Vec<f32> = (0..lists)
        .flat_map(|c| {
            let p = c * points / lists;
            sample[p * dim..(p + 1) * dim].iter().copied()
        })
        .collect();
    for round in 0..ROUNDS {
        let assigned: Vec<usize> = sample
            .par_chunks_exact(dim)
            .map(|y| nearest(&centroids, dim, y))
            .collect();
        let mut sums = vec![0.0f32; lists * dim];
        let mut counts = vec![0usize; lists];
        for (y, &c) in sample.chunks_exact(dim).zip(&assigned) {
            counts[c] += 1;
            for (s, v) in sums[c * dim..(c + 1) * dim].iter_mut().zip(y) {
                *s += v;
            }
        }
        for c in 0..lists {
            let centroid = &mut centroids[c * dim..(c + 1) * dim];
            if counts[c] == 0 {
                let p = (c * 7919 + round * 104_729) % points;
                centroid.copy_from_slice(&sample[p * dim..(p + 1) * dim]);
            } else {
                centroid.copy_from_slice(&sums[c * dim..(c + 1) * dim]);
                normalize(centroid);
            }
        }
    }
    centroids
}

/// Finds an item's list among many without scoring every centroid: the centroids are
/// grouped by k-means around about √lists group centroids, and an item is compared with
/// the centroids of its `GROUPS_SEARCHED` nearest groups only: about 9·√lists dot products
/// instead of `lists` (at 10,000 lists, 11 times fewer), at the price of now and then
/// a list that is second best (recall@50 at 24 lists and 1M random items: 0.515 with every
/// centroid scored, 0.491 with 8 groups, 0.455 with 3).
struct Assigner<'a> {
    centroids: &'a [f32],
    dim: usize,
    groups: Vec<f32>,
    /// The centroids of each group.
    members: Vec<Vec<u32>>,
}

/// How many nearest groups an item's list is looked for in.
const GROUPS_SEARCHED: usize = 8;

impl<'a> Assigner<'a> {
    fn new(centroids: &'a [f32], dim: usize) -> Self {
        let lists = centroids.len() / dim;
        let count = (lists as f64).sqrt().round() as usize;
        let (groups, members) = if lists <= 256 {
            (Vec::new(), Vec::new())
        } else {
            let groups = kmeans(centroids, dim, count);
            let mut members = vec![Vec::new(); count];
            for (c, centroid) in centroids.chunks_exact(dim).enumerate() {
                members[nearest(&groups, dim, centroid)].push(c as u32);
            }
            (groups, members)
        };
        Assigner {
            centroids,
            dim,
            groups,
            members,
        }
    }

    /// The list of unit vector `y`.
    fn nearest(&self, y: &[f32]) -> usize {
        let dim = self.dim;
        if self.groups.is_empty() {
            return nearest(self.centroids, dim, y);
        }
        let mut best = (f32::NEG_INFINITY, 0);
        for (_, g) in nearest_k(&self.groups, dim, y, GROUPS_SEARCHED) {
            for &c in &self.members[g] {
                let c = c as usize;
                let s = dot(&self.centroids[c * dim..(c + 1) * dim], y);
                if s > best.0 {
                    best = (s, c);
                }
            }
        }
        match best.0 == f32::NEG_INFINITY {
            // The nearest groups hold no centroid: every centroid is looked at.
            true => nearest(self.centroids, dim, y),
            false => best.1,
        }
    }
}

/// The `k` centroids nearest `y` by dot product (all of them when there are fewer), each
/// with its dot product, in no order.
fn nearest_k(centroids: &[f32], dim: usize, y: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut scored: Vec<(f32, usize)> = centroids
        .chunks_exact(dim)
        .map(|c| dot(c, y))
        .enumerate()
        .map(|(c, s)| (s, c))
        .collect();
    if !scored.is_empty() {
        let k = k.clamp(1, scored.len());
        scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(k);
    }
    scored
}

/// The centroid nearest `y` by dot product.
fn nearest(centroids: &[f32], dim: usize, y: &[f32]) -> usize {
    let mut best = (f32::NEG_INFINITY, 0);
    for (c, centroid) in centroids.chunks_exact(dim).enumerate() {
        let s = dot(centroid, y);
        if s > best.0 {
            best = (s, c);
        }
    }
    best.1
}

/// `a · b` with eight running sums (what lets the compiler use vector instructions).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        for k in 0..8 {
            sums[k] += x[k] * y[k];
        }
    }
    let rest: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    sums.iter().sum::<f32>() + rest
}

fn normalize(y: &mut [f32]) {
    let norm = dot(y, y).sqrt();
    if norm > 0.0 {
        y.iter_mut().for_each(|v| *v /= norm);
    }
}

impl Ivf {
    /// The index at `path` for an artifact of `items` rows of `dim` factors whose rows hash
    /// to `fingerprint`. `Ok(None)` when there is no file; `Err` says why a file cannot
    /// serve (another version's, cut short, damaged), for the caller to log.
    pub fn open(
        path: &Path,
        dim: usize,
        items: usize,
        fingerprint: u64,
    ) -> Result<Option<Ivf>, String> {
        let file = match Mapped::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if cfg!(target_endian = "big") {
            return Err("the index is little-endian and this machine is not".into());
        }
        let bytes = file.bytes();
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err("not an index file".into());
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let (file_dim, lists) = (u32_at(8) as usize, u32_at(12) as usize);
        let (file_items, file_fingerprint) = (u64_at(16), u64_at(24));
        let width = u32_at(32) as usize;
        if (file_dim, file_items) != (dim, items as u64) || file_fingerprint != fingerprint {
            return Err(format!(
                "it indexes {file_items} items of {file_dim} dimensions (fingerprint \
                 {file_fingerprint:016x}), not this artifact's {items} of {dim} \
                 ({fingerprint:016x})"
            ));
        }
        if lists == 0 || width == 0 || !dim.is_multiple_of(width) {
            return Err(format!(
                "{lists} lists of sub-vectors {width} wide do not fit"
            ));
        }
        let subs = dim / width;
        let offsets_at = offsets_at(dim, lists);
        let rows_at = offsets_at + 8 * (lists + 1);
        let codes_at = rows_at + 4 * items;
        if bytes.len() as u64 != codes_at as u64 + (items * subs) as u64 {
            return Err(format!(
                "it is {} bytes, not the {} its header implies",
                bytes.len(),
                codes_at + items * subs
            ));
        }
        let ivf = Ivf {
            file,
            dim,
            lists,
            width,
            offsets_at,
            rows_at,
            codes_at,
        };
        let offsets = ivf.offsets();
        if offsets[0] != 0
            || offsets[lists] != items as u64
            || offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err("its list offsets do not cover the items in order".into());
        }
        if ivf.rows().iter().any(|&r| r as usize >= items) {
            return Err("it names rows the artifact does not have".into());
        }
        if ivf
            .centroids()
            .iter()
            .chain(ivf.codebooks())
            .any(|f| !f.is_finite())
        {
            return Err("its centroids or codebooks hold NaN or infinity".into());
        }
        ivf.file.read_at_random();
        Ok(Some(ivf))
    }

    pub fn lists(&self) -> usize {
        self.lists
    }

    fn centroids(&self) -> &[f32] {
        bytemuck::cast_slice(&self.file.bytes()[HEADER..HEADER + 4 * self.lists * self.dim])
    }

    fn codebooks(&self) -> &[f32] {
        let at = HEADER + 4 * self.lists * self.dim;
        bytemuck::cast_slice(&self.file.bytes()[at..at + 4 * CODEWORDS * self.dim])
    }

    fn offsets(&self) -> &[u64] {
        bytemuck::cast_slice(&self.file.bytes()[self.offsets_at..self.rows_at])
    }

    /// The artifact row of each entry, in list order.
    pub fn rows(&self) -> &[u32] {
        bytemuck::cast_slice(&self.file.bytes()[self.rows_at..self.codes_at])
    }

    fn codes(&self) -> &[u8] {
        &self.file.bytes()[self.codes_at..]
    }

    /// The lists a query for `query` reads: the `probes` whose centroids are nearest.
    pub fn probe(&self, query: &[f32], probes: usize) -> Probe {
        let mut unit = query.to_vec();
        normalize(&mut unit);
        let lists = nearest_k(self.centroids(), self.dim, &unit, probes);
        Probe { unit, lists }
    }

    /// The entries (positions in list order) of the lists `probe` reads: for a caller
    /// that keeps something per entry to have it read ahead.
    pub fn entries(&self, probe: &Probe) -> Vec<Range<usize>> {
        let offsets = self.offsets();
        probe
            .lists
            .iter()
            .map(|&(_, l)| offsets[l] as usize..offsets[l + 1] as usize)
            .collect()
    }

    /// The entries of up to `shortlist` items nearest the query by cosine, nearest first,
    /// as far as their codes tell, from the lists `probe` reads.
    pub fn scan(&self, probe: &Probe, shortlist: usize) -> Vec<u32> {
        let (dim, width) = (self.dim, self.width);
        let subs = dim / width;
        let unit = &probe.unit;
        let entries = self.entries(probe);
        let code_ranges: Vec<Range<usize>> = entries
            .iter()
            .map(|e| self.codes_at + e.start * subs..self.codes_at + e.end * subs)
            .collect();
        self.file.prefetch(&code_ranges);
        // The query's dot product with every codeword: an item's is the sum of its codes'.
        let books = self.codebooks();
        let table: Vec<f32> = (0..subs * CODEWORDS)
            .map(|mj| {
                let m = mj / CODEWORDS;
                dot(
                    &unit[m * width..(m + 1) * width],
                    &books[mj * width..(mj + 1) * width],
                )
            })
            .collect();
        let codes = self.codes();
        let mut scored: Vec<(f32, u32)> = Vec::with_capacity(entries.iter().map(Range::len).sum());
        for (&(base, _), e) in probe.lists.iter().zip(entries) {
            for (code, entry) in codes[e.start * subs..e.end * subs]
                .chunks_exact(subs)
                .zip(e)
            {
                let mut s = base;
                for (m, &j) in code.iter().enumerate() {
                    s += table[m * CODEWORDS + j as usize];
                }
                scored.push((s, entry as u32));
            }
        }
        if scored.len() > shortlist && shortlist > 0 {
            scored.select_nth_unstable_by(shortlist - 1, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(shortlist);
        }
        scored.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().map(|(_, e)| e).collect()
    }

    /// `scan` of the `probes` lists nearest `query`.
    #[cfg(test)]
    pub fn search(&self, query: &[f32], probes: usize, shortlist: usize) -> Vec<u32> {
        self.scan(&self.probe(query, probes), shortlist)
    }
}

/// The lists a query reads (`Ivf::probe`).
pub struct Probe {
    /// The query, of unit length.
    unit: Vec<f32>,
    /// Each list with the query's cosine to its centroid.
    lists: Vec<(f32, usize)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `items` pseudo-random rows of `dim` in clusters, as trained factors are.
    fn rows(items: usize, dim: usize) -> Vec<f32> {
        (0..items * dim)
            .map(|i| {
                let (r, k) = (i / dim, i % dim);
                let centre = ((r % 37) as f32 * 1.7 + k as f32 * 0.31).sin();
                centre + 0.3 * ((i as f32 * 0.7548).sin() * 43758.547).fract()
            })
            .collect()
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
    }

    fn built(items: usize, dim: usize) -> (tempfile::TempDir, Vec<f32>, u64) {
        let y = rows(items, dim);
        let dir = tempfile::tempdir().unwrap();
        let row = |r: usize, out: &mut [f32]| out.copy_from_slice(&y[r * dim..(r + 1) * dim]);
        let made = build(items, dim, row, &dir.path().join(ANN_FILE)).unwrap();
        assert_eq!((made.items, made.lists), (items, 45));
        let bytes: Vec<u8> = y.iter().flat_map(|f| f.to_le_bytes()).collect();
        (dir, y, fingerprint(&bytes))
    }

    #[test]
    fn the_index_finds_the_exact_nearest_items_when_it_reads_every_list() {
        let (items, dim) = (2000, 16);
        let (dir, y, fingerprint) = built(items, dim);
        let ivf = Ivf::open(&dir.path().join(ANN_FILE), dim, items, fingerprint)
            .unwrap()
            .unwrap();
        let seed = &y[42 * dim..43 * dim];
        let mut exact: Vec<(f32, u32)> = (0..items)
            .map(|r| (cosine(seed, &y[r * dim..(r + 1) * dim]), r as u32))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let want: Vec<u32> = exact.iter().take(50).map(|&(_, r)| r).collect();
        // Every list and a shortlist of 4 per track wanted, reranked exactly: the exact 50.
        let row_of = |entries: Vec<u32>| -> Vec<u32> {
            entries.iter().map(|&e| ivf.rows()[e as usize]).collect()
        };
        let shortlist = row_of(ivf.search(seed, ivf.lists(), 200));
        assert_eq!(shortlist.len(), 200);
        let mut reranked: Vec<(f32, u32)> = shortlist
            .iter()
            .map(|&r| {
                (
                    cosine(seed, &y[r as usize * dim..(r as usize + 1) * dim]),
                    r,
                )
            })
            .collect();
        reranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let got: Vec<u32> = reranked.iter().take(50).map(|&(_, r)| r).collect();
        assert_eq!(got, want);
        // A few lists find most of them.
        let few = row_of(ivf.search(seed, 8, 200));
        let found = want.iter().filter(|r| few.contains(r)).count();
        assert!(found >= 45, "found {found} of 50 in 8 of 45 lists");
        assert_eq!(ivf.width, 4, "16 dimensions as 4 bytes an item");
    }

    #[test]
    fn a_model_without_items_has_an_index_that_finds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ANN_FILE);
        build(0, 8, |_, _| unreachable!("no rows"), &path).unwrap();
        let ivf = Ivf::open(&path, 8, 0, fingerprint(&[])).unwrap().unwrap();
        assert!(ivf.search(&[1.0; 8], PROBES, 10).is_empty());
    }

    #[test]
    fn grouped_centroids_give_almost_every_item_its_nearest_list() {
        let dim = 16;
        let unit_rows = |n: usize, salt: f32| -> Vec<f32> {
            let mut y: Vec<f32> = (0..n * dim)
                .map(|i| ((i as f32 * 0.7548 + salt).sin() * 43758.547).fract() - 0.5)
                .collect();
            y.chunks_exact_mut(dim).for_each(normalize);
            y
        };
        let centroids = unit_rows(1024, 0.0);
        let assigner = Assigner::new(&centroids, dim);
        assert_eq!(assigner.groups.len(), 32 * dim, "about √1024 groups");
        let items = unit_rows(2000, 1.0);
        let agree = items
            .chunks_exact(dim)
            .filter(|y| assigner.nearest(y) == nearest(&centroids, dim, y))
            .count();
        assert!(agree >= 1800, "{agree} of 2000 got their nearest list");
    }

    #[test]
    fn an_index_of_other_factors_or_a_damaged_one_is_refused_and_a_missing_one_is_none() {
        let (items, dim) = (2000, 16);
        let (dir, _, fingerprint) = built(items, dim);
        let path = dir.path().join(ANN_FILE);
        let open = |items, dim, fingerprint| Ivf::open(&path, dim, items, fingerprint).map(|_| ());
        assert_eq!(open(items, dim, fingerprint), Ok(()));
        let err = open(items, dim, fingerprint ^ 1).unwrap_err();
        assert!(err.contains("not this artifact's"), "{err}");
        assert!(open(items + 1, dim, fingerprint).is_err());
        assert!(open(items, dim + 1, fingerprint).is_err());
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 1]).unwrap();
        let err = open(items, dim, fingerprint).unwrap_err();
        assert!(err.contains("bytes, not the"), "{err}");
        let mut bent = whole.clone();
        let rows_at = offsets_at(dim, 45) + 8 * 46;
        bent[rows_at..rows_at + 4].copy_from_slice(&(items as u32).to_le_bytes());
        std::fs::write(&path, &bent).unwrap();
        let err = open(items, dim, fingerprint).unwrap_err();
        assert!(err.contains("rows the artifact does not have"), "{err}");
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(
            open(items, dim, fingerprint).unwrap_err(),
            "not an index file"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(Ivf::open(&path, dim, items, fingerprint).unwrap().is_none());
    }
}
