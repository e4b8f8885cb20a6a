//! The track catalog: `models/manifest.json` names a CSV of tracks with the columns of common
//! Spotify audio-features exports and the URL templates for streams and cover art. Loading
//! builds the indexes candidates come from: per mood, per genre, per artist, and a popular
//! hot set for "more like this".

use super::mapped::Mapped;
use super::mood_target;
use super::parquet_file::{each_parquet_track, is_parquet, parquet_rows};
use super::rows::each_csv_track;
pub use super::rows::{BadRow, CatalogError, CsvTracks, read_tracks_csv, write_tracks_csv};
use super::search::SearchIndex;
use super::table::{TableBuilder, TrackRef, TrackTable};
use crate::domain::{Mood, Named, Selection, Track, TrackId, decade_of};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use super::table::TrackIx;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub version: String,
    pub created_at: String,
    pub catalog: PathBuf,
    /// `{track_id}` is replaced by the track id. Must be HTTPS: devices play nothing else.
    pub stream_url_template: String,
    pub art_url_template: Option<String>,
    /// The song search index the catalog job saved beside the catalog (`encore catalog
    /// index`): serving maps it instead of building one, when it is this catalog's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_index: Option<PathBuf>,
    /// Anything else the file holds (kind, notes, counts) is kept when it is rewritten.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The fewest tracks a mood should offer before its ranges are relaxed to the nearest tracks.
pub const MIN_MOOD_MATCHES: usize = 40;
/// How many tracks each mood keeps as candidates (the most popular inside its ranges).
const MOOD_POOL: usize = 2_000;
/// How many of the most popular tracks "more like this" searches: of the seed's genre, and
/// of all others.
const HOT_SET: usize = 10_000;

pub struct Catalog {
    pub manifest: Manifest,
    /// The tracks, most popular first, in columns (`table.rs`).
    tracks: TrackTable,
    /// The tracks by genre, by artist and by decade, most popular first.
    lists: Postings,
    /// Mood -> candidates, most popular first (`Mood::ALL` order).
    by_mood: Vec<Vec<TrackIx>>,
    /// The most popular tracks overall, most popular first.
    popular: Vec<TrackIx>,
    /// Titles, albums and artists by their words, for songs and albums asked for by name.
    search: SearchIndex,
    /// Tracks made whole lately, shared: recommendations (and the cache that keeps them)
    /// of popular tracks point at one copy, as they did when the catalog held every track
    /// whole.
    made: moka::sync::Cache<TrackIx, Arc<Track>>,
    /// The manifest it was loaded from, when it was loaded from a directory.
    stamp: Option<Stamp>,
    /// Unique to this catalog in this process: what a cache of track indexes is keyed by,
    /// so a swapped-in catalog never reads another's indexes.
    generation: u64,
}

/// Which catalog a models directory holds: its manifest's text. The catalog job writes the
/// manifest last, so a new manifest is a new catalog; a server swaps it in when it sees one
/// (`ModelSet::reload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(u64);

impl Stamp {
    fn of(text: &str) -> Self {
        Stamp(xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
    }

    /// The stamp of the catalog in `dir` now.
    pub fn read(dir: &Path) -> Result<Self, CatalogError> {
        Ok(Stamp::of(&Manifest::text(dir)?))
    }
}

/// Numbers catalogs as they are made (`Catalog::generation`).
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The words' temporary file failed (`table.rs`).
fn scratch(source: std::io::Error) -> CatalogError {
    CatalogError::Scratch {
        dir: std::env::temp_dir(),
        source,
    }
}

/// How many whole tracks the catalog keeps shared (about 400 bytes each).
const MADE_TRACKS: u64 = 100_000;

#[cfg(test)]
impl Manifest {
    /// A manifest for tests: version "t", `catalog.parquet`, streams at `https://s/{id}`.
    pub(crate) fn for_tests() -> Manifest {
        Manifest {
            version: "t".into(),
            created_at: "2026-12-06T00:00:00Z".into(),
            catalog: "catalog.parquet".into(),
            stream_url_template: "https://s/{track_id}".into(),
            art_url_template: None,
            search_index: None,
            extra: Default::default(),
        }
    }
}

/// The saved search index's file name, beside the catalog.
pub const SEARCH_FILE: &str = "catalog.search";

/// The catalog manifest's file name in a models directory.
pub const MANIFEST: &str = "manifest.json";

impl Manifest {
    pub fn read(dir: &Path) -> Result<Self, CatalogError> {
        Manifest::parse(dir, &Manifest::text(dir)?)
    }

    fn text(dir: &Path) -> Result<String, CatalogError> {
        let path = dir.join(MANIFEST);
        std::fs::read_to_string(&path).map_err(|source| CatalogError::Io { path, source })
    }

    fn parse(dir: &Path, text: &str) -> Result<Self, CatalogError> {
        let path = dir.join(MANIFEST);
        let manifest: Manifest = serde_json::from_str(text).map_err(|e| CatalogError::Parse {
            path: path.clone(),
            source: crate::error::cause(e),
        })?;
        manifest
            .check_templates()
            .map_err(|message| CatalogError::Invalid { path, message })?;
        Ok(manifest)
    }

    /// Stream and art URL templates must be HTTPS: devices play nothing else.
    pub fn check_templates(&self) -> Result<(), String> {
        for template in std::iter::once(&self.stream_url_template).chain(&self.art_url_template) {
            if !template.starts_with("https://") {
                return Err(format!("URL template {template:?} is not HTTPS"));
            }
        }
        Ok(())
    }

    /// Writes `dir/manifest.json` (`replace_manifest`).
    pub fn write(&self, dir: &Path) -> Result<(), CatalogError> {
        let text = serde_json::to_string_pretty(self).expect("a manifest serializes");
        replace_manifest(dir, (text + "\n").as_bytes()).map_err(|source| CatalogError::Io {
            path: dir.join(MANIFEST),
            source,
        })
    }
}

/// Puts `text` in `dir/manifest.json` whole or not at all (through a file renamed into
/// place): a server polling the directory never reads half of one.
pub(super) fn replace_manifest(dir: &Path, text: &[u8]) -> std::io::Result<()> {
    let partial = dir.join(".manifest.json.partial");
    std::fs::write(&partial, text).and_then(|()| std::fs::rename(&partial, dir.join(MANIFEST)))
}

impl Catalog {
    /// Loads `dir/manifest.json` and the catalog it names. Bad rows are reported by line
    /// number and skipped. Each row goes straight into the columns: no track is held whole
    /// on the way.
    pub fn load(dir: &Path) -> Result<Self, CatalogError> {
        let text = Manifest::text(dir)?;
        let mut catalog = Catalog::load_as(dir, Manifest::parse(dir, &text)?)?;
        catalog.stamp = Some(Stamp::of(&text));
        Ok(catalog)
    }

    /// Loads the catalog `manifest` names in `dir`, whatever `dir/manifest.json` says: for
    /// a catalog job that indexes a catalog before it writes the manifest naming it.
    pub fn load_as(dir: &Path, manifest: Manifest) -> Result<Self, CatalogError> {
        let file = dir.join(&manifest.catalog);
        let started = std::time::Instant::now();
        let mut builder = TableBuilder::new(
            &manifest.stream_url_template,
            manifest.art_url_template.as_deref(),
        )
        .map_err(scratch)?;
        // The table makes URLs from the templates when a track is made whole: the rows are
        // read without any, rather than each building two URLs the table drops.
        let bad = if is_parquet(&file) {
            if let Some(rows) = parquet_rows(&file) {
                builder.reserve(rows);
            }
            each_parquet_track(&file, "", None, |t| builder.push(&t))?
        } else {
            each_csv_track(&file, "", None, |t| builder.push(&t))?
        };
        for bad in bad.iter().take(20) {
            tracing::warn!(path = %file.display(), line = bad.line, reason = bad.reason, "bad catalog row skipped");
        }
        if builder.is_empty() {
            return Err(CatalogError::Invalid {
                path: file,
                message: "no usable tracks".into(),
            });
        }
        let read_ms = started.elapsed().as_millis() as u64;
        let (tracks, duplicates) = builder.finish().map_err(scratch)?;
        tracing::info!(
            tracks = tracks.len(),
            skipped = bad.len(),
            read_ms,
            ordered_ms = started.elapsed().as_millis() as u64 - read_ms,
            duplicates,
            version = manifest.version,
            "catalog loaded"
        );
        let saved = manifest.search_index.as_ref().map(|name| dir.join(name));
        Catalog::over(manifest, tracks, saved.as_deref()).map_err(scratch)
    }

    /// A catalog over `tracks` (ids must be unique), with its indexes built.
    /// Tracks are indexed in popularity order (index 0 the most popular), so the hot set and
    /// each popular-first index walk memory (and the model's rows) front to back.
    /// Panics when the words' temporary file cannot be written (`Catalog::load` returns
    /// that as an error): for tests and tools over tracks already in memory.
    pub fn from_tracks(manifest: Manifest, tracks: Vec<Track>) -> Self {
        let made = TableBuilder::new(
            &manifest.stream_url_template,
            manifest.art_url_template.as_deref(),
        )
        .and_then(|mut builder| {
            for t in tracks {
                builder.push(&t);
            }
            builder.finish()
        });
        match made.and_then(|(tracks, _)| Catalog::over(manifest, tracks, None)) {
            Ok(catalog) => catalog,
            Err(e) => panic!("{}", scratch(e)),
        }
    }

    /// A catalog over `tracks`, its indexes built, the search index mapped from `saved` when
    /// that is this catalog's. Fails when the search index's temporary file cannot be written.
    fn over(manifest: Manifest, tracks: TrackTable, saved: Option<&Path>) -> std::io::Result<Self> {
        let started = std::time::Instant::now();
        let mut by_popularity: Vec<TrackIx> = (0..tracks.len() as TrackIx).collect();
        let lists = Postings::build(&tracks)?;
        let by_mood = Mood::ALL
            .iter()
            .map(|&m| mood_pool(&tracks, &by_popularity, m))
            .collect();
        by_popularity.truncate(HOT_SET);
        by_popularity.shrink_to_fit();
        let indexed = started.elapsed();
        let fingerprint = tracks.fingerprint();
        let opened = saved.map(|path| {
            SearchIndex::open(path, fingerprint, tracks.len()).map_err(|why| (path, why))
        });
        let (search, how) = match opened {
            Some(Ok(search)) => (search, "mapped from the catalog job's file"),
            Some(Err((path, why))) => {
                tracing::warn!(path = %path.display(), why, "the saved search index is not this catalog's; building one (`encore catalog index` saves it)");
                (SearchIndex::build(&tracks, fingerprint)?, "built")
            }
            None => (SearchIndex::build(&tracks, fingerprint)?, "built"),
        };
        tracing::info!(
            indexes_ms = indexed.as_millis() as u64,
            search_ms = (started.elapsed() - indexed).as_millis() as u64,
            search = how,
            "catalog indexed"
        );
        Ok(Catalog {
            manifest,
            tracks,
            lists,
            by_mood,
            popular: by_popularity,
            search,
            made: moka::sync::Cache::new(MADE_TRACKS),
            stamp: None,
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The manifest this catalog was loaded from; none when it was not loaded from a
    /// directory.
    pub fn stamp(&self) -> Option<Stamp> {
        self.stamp
    }

    /// Unique to this catalog in this process (its track indexes are its own).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The tracks that best match a song title or an album name as a listener said it (and
    /// the artist, if they said one), best first, each with how well it matches (0 to 1).
    pub fn search(&self, named: &Named, limit: usize) -> Vec<(Arc<Track>, f32)> {
        self.search
            .search(
                &self.tracks,
                named.wanted,
                &named.name,
                named.artist.as_deref(),
                limit,
            )
            .into_iter()
            .map(|h| (self.whole(h.track), h.quality))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// The track with this id, made whole (its own strings and URLs).
    pub fn track(&self, id: &TrackId) -> Option<Arc<Track>> {
        self.index_of(id).map(|i| self.whole(i))
    }

    /// Track `i` made whole, shared with every other holder of it while it is in use.
    pub fn whole(&self, i: TrackIx) -> Arc<Track> {
        self.made
            .get_with(i, || Arc::new(self.tracks.at(i).to_track()))
    }

    /// From now on the tracks' words, the id index and the search index are read at
    /// random, a few bytes at a time (`Mapped::read_at_random`), as a server reads them:
    /// what a tool that scans the whole catalog (an export) must not be told.
    pub fn read_at_random(&self) {
        self.tracks.read_at_random();
        self.search.read_at_random();
    }

    /// Has the kernel read the ids of `tracks` ahead, for a caller about to read them all.
    pub fn prefetch_ids(&self, tracks: &[TrackIx]) {
        self.tracks.prefetch_ids(tracks);
    }

    pub fn index_of(&self, id: &TrackId) -> Option<TrackIx> {
        self.tracks.find(&id.0)
    }

    /// Track `i`, read in place (what ranking reads, without an allocation).
    pub fn at(&self, i: TrackIx) -> TrackRef<'_> {
        self.tracks.at(i)
    }

    /// The tracks' columns, for the search index and the benchmarks.
    pub fn table(&self) -> &TrackTable {
        &self.tracks
    }

    /// The track ids, in catalog order (most popular first).
    pub fn ids(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.tracks.len() as TrackIx).map(|i| self.tracks.at(i).id())
    }

    /// Every track made whole, most popular first: for tools and tests, never a request
    /// (each is a fresh allocation).
    pub fn tracks(&self) -> Vec<Arc<Track>> {
        (0..self.tracks.len() as TrackIx)
            .map(|i| Arc::new(self.tracks.at(i).to_track()))
            .collect()
    }

    /// Saves the song search index beside the catalog in `dir` and names it in the
    /// manifest there, so serving maps it instead of building it (at 10M tracks, half a
    /// minute of a two-core start).
    pub fn save_search_index(&self, dir: &Path) -> Result<(), CatalogError> {
        let name = PathBuf::from(SEARCH_FILE);
        let path = dir.join(&name);
        self.search
            .save(&path)
            .map_err(|source| CatalogError::Io { path, source })?;
        let mut manifest = self.manifest.clone();
        manifest.search_index = Some(name);
        manifest.write(dir)
    }

    /// Bytes the catalog's tracks and indexes hold on the heap, for the benchmarks.
    pub fn heap_bytes(&self) -> usize {
        self.tracks.heap_bytes()
            + self.lists.heap_bytes()
            + self.by_mood.iter().map(|v| 4 * v.capacity()).sum::<usize>()
            + 4 * self.popular.capacity()
    }

    /// Bytes of the catalog's mapped files (its tracks' words, the search index, the
    /// posting lists), for the benchmarks: resident only as far as they are read, and the
    /// kernel's to drop.
    pub fn mapped_bytes(&self) -> usize {
        self.tracks.mapped_bytes() + self.search.mapped_bytes() + self.lists.file.bytes().len()
    }

    /// Up to `limit` candidates for `selection`, best first (popular first, or nearest to the
    /// seed for "more like this" on audio features). Empty when nothing matches.
    pub fn candidates(&self, selection: &Selection, limit: usize) -> Vec<TrackIx> {
        match selection {
            Selection::Mood(mood) => {
                let pool = &self.by_mood[Mood::ALL.iter().position(|m| m == mood).unwrap_or(0)];
                pool.iter().take(limit).copied().collect()
            }
            Selection::Genre(genre) => self
                .lists
                .genre(&genre.to_ascii_lowercase())
                .iter()
                .take(limit)
                .copied()
                .collect(),
            Selection::Artist(name) => self
                .artist_tracks(name)
                .map(|ts| ts.iter().take(limit).copied().collect())
                .unwrap_or_default(),
            Selection::Decade { decade, genre } => {
                self.decade_tracks(*decade, genre.as_deref(), limit)
            }
            // Personal by nature: the ranker adds the listener's own candidates to these.
            Selection::Unheard => self.popular.iter().take(limit).copied().collect(),
            Selection::LikeTrack(id) => {
                let Some(seed) = self.index_of(id) else {
                    return Vec::new();
                };
                let s = self.tracks.at(seed);
                let scored: Vec<(f32, TrackIx)> = self
                    .neighbourhood(seed)
                    .map(|i| (-likeness(s, self.tracks.at(i)), i))
                    .collect();
                best_first(scored, limit)
            }
        }
    }

    /// Up to `limit` tracks of the decade starting at `decade` (of `genre`, if given), most
    /// popular first. Walks the shorter of the decade's and the genre's lists.
    fn decade_tracks(&self, decade: u16, genre: Option<&str>, limit: usize) -> Vec<TrackIx> {
        let in_decade = self.lists.decade(decade);
        let Some(genre) = genre else {
            return in_decade.iter().take(limit).copied().collect();
        };
        let genre = genre.to_ascii_lowercase();
        let of_genre = self.lists.genre(&genre);
        let fits = |&&i: &&TrackIx| {
            let t = self.tracks.at(i);
            t.genre() == genre && t.year().is_some_and(|y| decade_of(y) == decade)
        };
        let shorter = if in_decade.len() <= of_genre.len() {
            in_decade
        } else {
            of_genre
        };
        shorter.iter().filter(fits).take(limit).copied().collect()
    }

    /// Where "more like this" looks for neighbours of `seed` by audio features, and by
    /// factors for a model version without an ANN index: the most popular tracks of the
    /// seed's genre and of the other genres (at most `HOT_SET` each), without the seed.
    /// Bounded, whatever the catalog's size.
    pub fn neighbourhood(&self, seed: TrackIx) -> impl Iterator<Item = TrackIx> + '_ {
        let seed_track = self.tracks.at(seed);
        let genre = seed_track.genre_number();
        let same_genre = self.lists.genre(seed_track.genre());
        let others = self
            .popular
            .iter()
            .filter(move |&&i| self.tracks.at(i).genre_number() != genre);
        same_genre
            .iter()
            .take(HOT_SET)
            .chain(others)
            .copied()
            .filter(move |&i| i != seed)
    }

    /// The tracks of the artist named exactly `name` (after folding case and punctuation).
    pub fn artist_exact(&self, name: &str) -> Option<&[TrackIx]> {
        self.lists.artist(&normalize(name))
    }

    /// The tracks of the artist named `name`: an exact match after normalizing case and
    /// punctuation, else a name containing it, else the closest name by Jaro-Winkler
    /// similarity (for misheard or misspelled names).
    pub fn artist_tracks(&self, name: &str) -> Option<&[TrackIx]> {
        let wanted = normalize(name);
        if wanted.is_empty() {
            return None;
        }
        if let Some(ts) = self.lists.artist(&wanted) {
            return Some(ts);
        }
        let mut best: Option<(f64, &str)> = None;
        for candidate in self.lists.artists.keys() {
            let score = if wanted.len() >= 3 && candidate.contains(&wanted) {
                // A name that contains what was said ("beatles" in "the beatles").
                0.95 + 0.05 * wanted.len() as f64 / candidate.len() as f64
            } else {
                strsim::jaro_winkler(&wanted, candidate)
            };
            if best.is_none_or(|(s, n)| score > s || (score == s && &**candidate < n)) {
                best = Some((score, candidate));
            }
        }
        best.filter(|(score, _)| *score >= FUZZY_ARTIST_MIN)
            .and_then(|(_, n)| self.lists.artist(n))
    }

    /// Every artist name in the catalog, for the text parser's artist slot.
    pub fn artists(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .lists
            .artists
            .values()
            .map(|&span| self.tracks.at(self.lists.list(span)[0]).artist().to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The catalog's posting lists, most popular first, one after another in a mapped
/// temporary file (`mapped`), with the spans of each genre, artist and decade: about 12
/// bytes a track that the kernel may page out, and a few bytes a track of keys on the heap
/// (1M artists at 10M tracks).
struct Postings {
    file: Mapped,
    /// Genre (as tracks spell it) -> its tracks.
    genres: HashMap<String, Span>,
    /// Normalized artist name -> its tracks (of every spelling that normalizes alike).
    artists: HashMap<Box<str>, Span>,
    /// First year of a decade -> the tracks released in it.
    decades: HashMap<u16, Span>,
}

/// Where a list is in the file: `len` track indexes from the `start`-th.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

impl Postings {
    /// The lists of `tracks`: their keys and lengths in one pass, the file filled in place
    /// in a second, so building them holds no list on the heap.
    fn build(tracks: &TrackTable) -> std::io::Result<Postings> {
        const NONE: u32 = u32::MAX;
        // Every list is a group: its length, then where the next of it goes.
        let mut counts: Vec<u32> = Vec::new();
        let group = |counts: &mut Vec<u32>| {
            counts.push(0);
            counts.len() as u32 - 1
        };
        let mut genre_group: HashMap<u16, u32> = HashMap::new();
        let mut genres: HashMap<String, u32> = HashMap::new();
        let mut artist_group: Vec<u32> = vec![NONE; tracks.artist_count()];
        let mut artists: HashMap<Box<str>, u32> = HashMap::new();
        let mut decades: HashMap<u16, u32> = HashMap::new();
        let groups_of = |t: TrackRef<'_>,
                         genre_group: &HashMap<u16, u32>,
                         artist_group: &[u32],
                         decades: &HashMap<u16, u32>| {
            [
                genre_group[&t.genre_number()],
                artist_group[t.artist_number() as usize],
                t.year().map_or(NONE, |y| decades[&decade_of(y)]),
            ]
        };
        for i in 0..tracks.len() as TrackIx {
            let t = tracks.at(i);
            if let std::collections::hash_map::Entry::Vacant(slot) =
                genre_group.entry(t.genre_number())
            {
                slot.insert(
                    *genres
                        .entry(t.genre().to_owned())
                        .or_insert_with(|| group(&mut counts)),
                );
            }
            let a = t.artist_number() as usize;
            if artist_group[a] == NONE {
                artist_group[a] = *artists
                    .entry(normalize(t.artist()).into_boxed_str())
                    .or_insert_with(|| group(&mut counts));
            }
            if let Some(year) = t.year() {
                decades
                    .entry(decade_of(year))
                    .or_insert_with(|| group(&mut counts));
            }
            for g in groups_of(t, &genre_group, &artist_group, &decades) {
                if g != NONE {
                    counts[g as usize] += 1;
                }
            }
        }
        let mut next = Vec::with_capacity(counts.len());
        let mut total = 0u32;
        for &c in &counts {
            next.push(total);
            total += c;
        }
        let spans: Vec<Span> = next
            .iter()
            .zip(&counts)
            .map(|(&start, &len)| Span { start, len })
            .collect();
        drop(counts);
        let file = Mapped::fill(4 * total as usize, |bytes| {
            let out: &mut [u32] = bytemuck::cast_slice_mut(bytes);
            for i in 0..tracks.len() as TrackIx {
                let t = tracks.at(i);
                for g in groups_of(t, &genre_group, &artist_group, &decades) {
                    if g != NONE {
                        out[next[g as usize] as usize] = i;
                        next[g as usize] += 1;
                    }
                }
            }
        })?;
        let span = |g: u32| spans[g as usize];
        let mut artists: HashMap<Box<str>, Span> =
            artists.into_iter().map(|(k, g)| (k, span(g))).collect();
        artists.shrink_to_fit();
        Ok(Postings {
            file,
            genres: genres.into_iter().map(|(k, g)| (k, span(g))).collect(),
            artists,
            decades: decades.into_iter().map(|(k, g)| (k, span(g))).collect(),
        })
    }

    fn list(&self, span: Span) -> &[TrackIx] {
        let all = super::mapped::as_u32s(self.file.bytes());
        &all[span.start as usize..(span.start + span.len) as usize]
    }

    fn genre(&self, genre: &str) -> &[TrackIx] {
        self.genres.get(genre).map_or(&[], |&s| self.list(s))
    }

    fn artist(&self, normalized: &str) -> Option<&[TrackIx]> {
        self.artists.get(normalized).map(|&s| self.list(s))
    }

    fn decade(&self, decade: u16) -> &[TrackIx] {
        self.decades.get(&decade).map_or(&[], |&s| self.list(s))
    }

    /// The keys' bytes on the heap (the lists are in the file), for the benchmarks.
    fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(Box<str>, Span)>() + 1;
        self.artists.capacity() * entry
            + self.artists.keys().map(|k| k.len()).sum::<usize>()
            + self.genres.capacity() * (entry + 8)
            + self.genres.keys().map(|k| k.len()).sum::<usize>()
            + self.decades.capacity() * 9
    }
}

/// The `limit` highest-scoring entries, best first (ties: the earlier entry first).
pub fn best_first(mut scored: Vec<(f32, TrackIx)>, limit: usize) -> Vec<TrackIx> {
    if scored.len() > limit && limit > 0 {
        scored.select_nth_unstable_by(limit - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(limit);
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(limit).map(|(_, i)| i).collect()
}

/// The lowest Jaro-Winkler similarity at which a spoken artist name is taken to mean a
/// catalog artist.
const FUZZY_ARTIST_MIN: f64 = 0.88;

/// A mood's candidates: the most popular tracks inside its ranges or, when fewer than
/// `MIN_MOOD_MATCHES` fit, the nearest tracks.
fn mood_pool(tracks: &TrackTable, by_popularity: &[TrackIx], mood: Mood) -> Vec<TrackIx> {
    let target = mood_target(mood);
    let inside: Vec<TrackIx> = by_popularity
        .iter()
        .copied()
        .filter(|&i| target.distance(&tracks.at(i).features()) == 0.0)
        .take(MOOD_POOL)
        .collect();
    if inside.len() >= MIN_MOOD_MATCHES {
        return inside;
    }
    let mut scored: Vec<(f32, TrackIx)> = by_popularity
        .iter()
        .map(|&i| (target.distance(&tracks.at(i).features()), i))
        .collect();
    // Stable: popular first among equals.
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.into_iter().take(MOOD_POOL).map(|(_, i)| i).collect()
}

/// Smaller is more alike: distance in audio features, less for the same genre and artist.
pub fn likeness(seed: TrackRef<'_>, other: TrackRef<'_>) -> f32 {
    let a = seed.features();
    let b = other.features();
    let d = (a.valence - b.valence).powi(2)
        + (a.energy - b.energy).powi(2)
        + ((a.tempo - b.tempo) / 150.0).powi(2)
        + (a.danceability - b.danceability).powi(2)
        + (a.acousticness - b.acousticness).powi(2)
        + (a.instrumentalness - b.instrumentalness).powi(2);
    let genre = if seed.genre_number() == other.genre_number() {
        0.0
    } else {
        0.15
    };
    let artist = if seed.artist_number() == other.artist_number() {
        -0.02
    } else {
        0.0
    };
    d + genre + artist
}

/// Lower case, apostrophes dropped, other punctuation a space, single spaces: how artist
/// names are compared. "AC/DC" is "ac dc" and "Destiny's Child" "destinys child", as the
/// text parser's words for them are once joined and normalized again.
pub fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\'' | '\u{2019}' | '\u{2018}'))
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_track_made_whole_twice_is_one_copy_while_it_is_kept() {
        let manifest = Manifest::for_tests();
        let tracks = (0..3)
            .map(|i| Track::sample(&format!("t{i}"), "Ann", "jazz"))
            .collect();
        let catalog = Catalog::from_tracks(manifest, tracks);
        let id = TrackId("t1".into());
        let (a, b) = (catalog.track(&id).unwrap(), catalog.track(&id).unwrap());
        assert!(Arc::ptr_eq(&a, &b), "recommendations share one copy");
        assert_eq!(a.stream_url, "https://s/t1");
        assert_eq!(catalog.track(&TrackId("nope".into())), None);
    }

    #[test]
    fn a_saved_search_index_serves_its_catalog_and_only_its_catalog() {
        use crate::domain::{Named, Wanted};
        let dir = tempfile::tempdir().unwrap();
        let write = |titles: &[&str]| {
            let tracks: Vec<Track> = titles
                .iter()
                .enumerate()
                .map(|(i, title)| {
                    let mut t = Track::sample(&format!("t{i}"), "Ann", "jazz");
                    t.title = title.to_string();
                    t
                })
                .collect();
            super::super::write_tracks_parquet(&dir.path().join("catalog.parquet"), &tracks)
                .unwrap();
        };
        let manifest = Manifest::for_tests();
        manifest.write(dir.path()).unwrap();
        write(&["Blue Moon", "Autumn Leaves"]);
        let found = |catalog: &Catalog, title: &str| {
            let named = Named {
                wanted: Wanted::Song,
                name: title.into(),
                artist: None,
            };
            catalog
                .search(&named, 1)
                .first()
                .map(|(t, _)| t.title.clone())
        };
        Catalog::load(dir.path())
            .unwrap()
            .save_search_index(dir.path())
            .unwrap();
        let saved = Manifest::read(dir.path()).unwrap();
        assert_eq!(saved.search_index.as_deref(), Some(Path::new(SEARCH_FILE)));
        let path = dir.path().join(SEARCH_FILE);
        let catalog = Catalog::load(dir.path()).unwrap();
        let fingerprint = catalog.table().fingerprint();
        assert!(SearchIndex::open(&path, fingerprint, 2).is_ok());
        assert_eq!(
            found(&catalog, "autumn leaves").as_deref(),
            Some("Autumn Leaves")
        );
        // Another catalog's index, or a damaged one, is not used: one is built.
        assert!(SearchIndex::open(&path, fingerprint ^ 1, 2).is_err());
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.search");
        std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
        assert!(SearchIndex::open(&cut, fingerprint, 2).is_err());
        std::fs::write(&cut, b"not an index at all").unwrap();
        assert!(SearchIndex::open(&cut, fingerprint, 2).is_err());
        write(&["Blue Moon", "Summertime"]);
        let changed = Catalog::load(dir.path()).unwrap();
        assert_eq!(found(&changed, "summertime").as_deref(), Some("Summertime"));
        assert_eq!(found(&changed, "autumn leaves"), None);
    }
}
