//! The track catalog: `models/manifest.json` names a CSV of tracks with the columns of common
//! Spotify audio-features exports and the URL templates for streams and cover art. Loading
//! builds the indexes candidates come from: per mood, per genre, per artist, and a popular
//! hot set for "more like this".

use super::mood_target;
use super::search::SearchIndex;
use super::table::{TableBuilder, TrackRef, TrackTable};
use crate::domain::{AudioFeatures, Mood, Named, Selection, Track, TrackId, decade_of};
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
    /// Anything else the file holds (kind, notes, counts) is kept when it is rewritten.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// The file is there but does not parse.
    #[error("{path} cannot be read as a catalog file")]
    Parse {
        path: PathBuf,
        #[source]
        source: crate::error::Cause,
    },
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
    /// Genre -> tracks, most popular first.
    by_genre: HashMap<String, Vec<TrackIx>>,
    /// Normalized artist name -> tracks, most popular first.
    by_artist: HashMap<String, Vec<TrackIx>>,
    /// First year of a decade -> the tracks released in it, most popular first.
    by_decade: HashMap<u16, Vec<TrackIx>>,
    /// Mood -> candidates, most popular first (`Mood::ALL` order).
    by_mood: Vec<Vec<TrackIx>>,
    /// The most popular tracks overall, most popular first.
    popular: Vec<TrackIx>,
    /// Titles, albums and artists by their words, for songs and albums asked for by name.
    search: SearchIndex,
}

/// One row of a catalog CSV. Only the identity columns are required; the others default.
#[derive(Deserialize)]
struct Row {
    track_id: String,
    artists: String,
    #[serde(default)]
    album_name: Option<String>,
    track_name: String,
    #[serde(default)]
    popularity: Option<f32>,
    #[serde(default)]
    duration_ms: Option<f64>,
    #[serde(default, deserialize_with = "flexible_bool")]
    explicit: bool,
    #[serde(default)]
    danceability: Option<f32>,
    #[serde(default)]
    energy: Option<f32>,
    #[serde(default)]
    acousticness: Option<f32>,
    #[serde(default)]
    instrumentalness: Option<f32>,
    #[serde(default)]
    valence: Option<f32>,
    #[serde(default)]
    tempo: Option<f32>,
    #[serde(default)]
    track_genre: Option<String>,
    /// The release: a year, or a date that starts with one. Exports name it differently;
    /// the first of these present is used.
    #[serde(default)]
    year: Option<String>,
    #[serde(default)]
    release_date: Option<String>,
    #[serde(default)]
    album_release_date: Option<String>,
}

impl Row {
    /// The release year the row gives, if any: `year`, else `release_date`, else
    /// `album_release_date` ("1985", "1985-06-01", "1985.0"); empty or 0 is unknown.
    fn release_year(&self) -> Result<Option<u16>, String> {
        let given = [&self.year, &self.release_date, &self.album_release_date]
            .into_iter()
            .flatten()
            .map(|v| v.trim())
            .find(|v| !v.is_empty());
        let Some(given) = given else {
            return Ok(None);
        };
        let digits: String = given.chars().take_while(char::is_ascii_digit).collect();
        match digits.parse::<u16>() {
            Ok(0) => Ok(None),
            Ok(year) if digits.len() == 4 && YEARS.contains(&year) => Ok(Some(year)),
            _ => Err(format!(
                "release {given:?} is not a year from {} to {} or a date that starts with one",
                YEARS.start(),
                YEARS.end()
            )),
        }
    }
}

/// The release years a catalog may give.
const YEARS: std::ops::RangeInclusive<u16> = 1900..=2099;

/// Defaults for missing optional columns: the middle of each scale, no vocals unknown.
const DEFAULT_DURATION_MS: u64 = 200_000;
const DEFAULT_TEMPO: f32 = 120.0;
const DEFAULT_GENRE: &str = "unknown";

/// Track ids go into AudioPlayer tokens (at most 1,024 characters, `:`-separated).
fn usable_track_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_TRACK_ID && !id.contains(':')
}

/// Longest track id accepted: leaves room in a token for the queue id, counters and index.
const MAX_TRACK_ID: usize = 256;

fn flexible_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "not a boolean: {other:?}"
        ))),
    }
}

/// A row that could not be used, with its line in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

/// What reading a catalog CSV found.
pub struct CsvTracks {
    pub tracks: Vec<Track>,
    pub bad: Vec<BadRow>,
    /// Rows whose track id had been seen before (the first one is kept).
    pub duplicates: usize,
}

/// Reads a catalog CSV (Spotify audio-features columns; extra columns ignored). Bad rows are
/// reported with their line number and skipped; only an unreadable file is an error.
pub fn read_tracks_csv(
    path: &Path,
    stream_url_template: &str,
    art_url_template: Option<&str>,
) -> Result<CsvTracks, CatalogError> {
    let mut seen = std::collections::HashSet::new();
    let mut tracks = Vec::new();
    let mut duplicates = 0;
    let bad = each_csv_track(path, stream_url_template, art_url_template, |t| {
        if seen.insert(t.id.0.clone()) {
            tracks.push(t);
        } else {
            duplicates += 1;
        }
    })?;
    Ok(CsvTracks {
        tracks,
        bad,
        duplicates,
    })
}

/// Each usable row of a catalog CSV as a track, in file order, one at a time (a repeated
/// id too: the caller decides); the bad rows with their lines.
fn each_csv_track(
    path: &Path,
    stream_url_template: &str,
    art_url_template: Option<&str>,
    mut each: impl FnMut(Track),
) -> Result<Vec<BadRow>, CatalogError> {
    let invalid = |message: String| CatalogError::Invalid {
        path: path.to_owned(),
        message,
    };
    let unparsable = |e: csv::Error| CatalogError::Parse {
        path: path.to_owned(),
        source: crate::error::cause(e),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(unparsable)?;
    let headers = reader.headers().map_err(unparsable)?.clone();
    for required in ["track_id", "artists", "track_name"] {
        if !headers.iter().any(|h| h == required) {
            return Err(invalid(format!("no {required:?} column")));
        }
    }
    let mut bad = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                bad.push(BadRow {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(line);
        let row: Row = match record.deserialize(Some(&headers)) {
            Ok(row) => row,
            Err(e) => {
                bad.push(BadRow {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        if let Err(reason) = check_row(&row) {
            bad.push(BadRow { line, reason });
            continue;
        }
        each(track_from_row(row, stream_url_template, art_url_template));
    }
    Ok(bad)
}

fn check_row(row: &Row) -> Result<(), String> {
    if !usable_track_id(&row.track_id) {
        return Err(format!(
            "track_id {:?} is empty, longer than {MAX_TRACK_ID} or contains ':'",
            row.track_id
        ));
    }
    if row.track_name.trim().is_empty() || row.artists.trim().is_empty() {
        return Err("track_name and artists must not be empty".into());
    }
    let unit = [
        ("danceability", row.danceability),
        ("energy", row.energy),
        ("acousticness", row.acousticness),
        ("instrumentalness", row.instrumentalness),
        ("valence", row.valence),
    ];
    for (name, value) in unit {
        if let Some(v) = value
            && !(0.0..=1.0).contains(&v)
        {
            return Err(format!("{name} {v} is outside 0..1"));
        }
    }
    if let Some(d) = row.duration_ms
        && !(d.is_finite() && d >= 0.0)
    {
        return Err(format!("duration_ms {d} is not a duration"));
    }
    if let Some(t) = row.tempo
        && !(t.is_finite() && t >= 0.0)
    {
        return Err(format!("tempo {t} is not a tempo"));
    }
    row.release_year().map(drop)
}

/// The catalog columns Encore writes, in order (those of the Spotify export it reads, and
/// the release year, empty when unknown).
pub const CSV_COLUMNS: [&str; 15] = [
    "track_id",
    "artists",
    "album_name",
    "track_name",
    "popularity",
    "duration_ms",
    "explicit",
    "danceability",
    "energy",
    "acousticness",
    "instrumentalness",
    "valence",
    "tempo",
    "track_genre",
    "year",
];

/// Writes `tracks` as a catalog CSV that `read_tracks_csv` reads back unchanged.
pub fn write_tracks_csv<'a>(
    path: &Path,
    tracks: impl IntoIterator<Item = &'a Track>,
) -> Result<usize, CatalogError> {
    let io = |e: std::io::Error| CatalogError::Io {
        path: path.to_owned(),
        source: e,
    };
    let mut writer = csv::Writer::from_path(path).map_err(|e| io(e.into()))?;
    writer.write_record(CSV_COLUMNS).map_err(|e| io(e.into()))?;
    let mut n = 0;
    for t in tracks {
        let f = &t.features;
        writer
            .write_record([
                t.id.0.as_str(),
                &t.artist,
                &t.album,
                &t.title,
                &t.popularity.to_string(),
                &t.duration_ms.to_string(),
                if t.explicit { "True" } else { "False" },
                &f.danceability.to_string(),
                &f.energy.to_string(),
                &f.acousticness.to_string(),
                &f.instrumentalness.to_string(),
                &f.valence.to_string(),
                &f.tempo.to_string(),
                &t.genre,
                &t.year.map(|y| y.to_string()).unwrap_or_default(),
            ])
            .map_err(|e| io(e.into()))?;
        n += 1;
    }
    writer.flush().map_err(io)?;
    Ok(n)
}

/// The catalog manifest's file name in a models directory.
pub const MANIFEST: &str = "manifest.json";

impl Manifest {
    pub fn read(dir: &Path) -> Result<Self, CatalogError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| CatalogError::Parse {
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

    pub fn write(&self, dir: &Path) -> Result<(), CatalogError> {
        let path = dir.join("manifest.json");
        let text = serde_json::to_string_pretty(self).expect("a manifest serializes");
        std::fs::write(&path, text + "\n").map_err(|source| CatalogError::Io { path, source })
    }
}

impl Catalog {
    /// Loads `dir/manifest.json` and the catalog it names. Bad rows are reported by line
    /// number and skipped.
    /// Each row goes straight into the columns: no track is held whole on the way.
    pub fn load(dir: &Path) -> Result<Self, CatalogError> {
        let manifest = Manifest::read(dir)?;
        let csv_path = dir.join(&manifest.catalog);
        let mut builder = TableBuilder::new(
            &manifest.stream_url_template,
            manifest.art_url_template.as_deref(),
        );
        let bad = each_csv_track(
            &csv_path,
            &manifest.stream_url_template,
            manifest.art_url_template.as_deref(),
            |t| builder.push(&t),
        )?;
        for bad in bad.iter().take(20) {
            tracing::warn!(path = %csv_path.display(), line = bad.line, reason = bad.reason, "bad catalog row skipped");
        }
        if builder.is_empty() {
            return Err(CatalogError::Invalid {
                path: csv_path,
                message: "no usable tracks".into(),
            });
        }
        let (tracks, duplicates) = builder.finish();
        tracing::info!(
            tracks = tracks.len(),
            skipped = bad.len(),
            duplicates,
            version = manifest.version,
            "catalog loaded"
        );
        Ok(Catalog::over(manifest, tracks))
    }

    /// A catalog over `tracks` (ids must be unique), with its indexes built.
    /// Tracks are indexed in popularity order (index 0 the most popular), so the hot set and
    /// each popular-first index walk memory (and the model's rows) front to back.
    pub fn from_tracks(manifest: Manifest, tracks: Vec<Track>) -> Self {
        let mut builder = TableBuilder::new(
            &manifest.stream_url_template,
            manifest.art_url_template.as_deref(),
        );
        for t in tracks {
            builder.push(&t);
        }
        let (tracks, _) = builder.finish();
        Catalog::over(manifest, tracks)
    }

    /// A catalog over `tracks`, its indexes built.
    fn over(manifest: Manifest, tracks: TrackTable) -> Self {
        let mut by_popularity: Vec<TrackIx> = (0..tracks.len() as TrackIx).collect();
        let mut by_genre: HashMap<String, Vec<TrackIx>> = HashMap::new();
        let mut by_artist: HashMap<String, Vec<TrackIx>> = HashMap::new();
        let mut by_decade: HashMap<u16, Vec<TrackIx>> = HashMap::new();
        // The normalized name of each artist number, made once per artist.
        let mut artist_keys: Vec<Option<String>> = vec![None; tracks.artist_count()];
        for &i in &by_popularity {
            let t = tracks.at(i);
            match by_genre.get_mut(t.genre()) {
                Some(list) => list.push(i),
                None => drop(by_genre.insert(t.genre().to_owned(), vec![i])),
            }
            let key = artist_keys[t.artist_number() as usize]
                .get_or_insert_with(|| normalize(t.artist()));
            match by_artist.get_mut(key.as_str()) {
                Some(list) => list.push(i),
                None => drop(by_artist.insert(key.clone(), vec![i])),
            }
            if let Some(year) = t.year() {
                by_decade.entry(decade_of(year)).or_default().push(i);
            }
        }
        drop(artist_keys);
        for lists in [&mut by_genre, &mut by_artist] {
            lists.values_mut().for_each(|l| l.shrink_to_fit());
        }
        by_decade.values_mut().for_each(|l| l.shrink_to_fit());
        let by_mood = Mood::ALL
            .iter()
            .map(|&m| mood_pool(&tracks, &by_popularity, m))
            .collect();
        by_popularity.truncate(HOT_SET);
        by_popularity.shrink_to_fit();
        let search = SearchIndex::build(&tracks);
        Catalog {
            manifest,
            tracks,
            by_genre,
            by_artist,
            by_decade,
            by_mood,
            popular: by_popularity,
            search,
        }
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
            .map(|h| (Arc::new(self.tracks.at(h.track).to_track()), h.quality))
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
        self.index_of(id)
            .map(|i| Arc::new(self.tracks.at(i).to_track()))
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

    /// Bytes the catalog's tracks, indexes and search index hold, for the benchmarks.
    pub fn heap_bytes(&self) -> usize {
        let lists = |m: &HashMap<String, Vec<TrackIx>>| {
            m.iter()
                .map(|(k, v)| k.capacity() + 4 * v.capacity() + 48)
                .sum::<usize>()
        };
        self.tracks.heap_bytes()
            + lists(&self.by_genre)
            + lists(&self.by_artist)
            + self
                .by_decade
                .values()
                .map(|v| 4 * v.capacity() + 32)
                .sum::<usize>()
            + self.by_mood.iter().map(|v| 4 * v.capacity()).sum::<usize>()
            + 4 * self.popular.capacity()
            + self.search.heap_bytes()
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
                .by_genre
                .get(&genre.to_ascii_lowercase())
                .map(|ts| ts.iter().take(limit).copied().collect())
                .unwrap_or_default(),
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
        let in_decade = self
            .by_decade
            .get(&decade)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let Some(genre) = genre else {
            return in_decade.iter().take(limit).copied().collect();
        };
        let genre = genre.to_ascii_lowercase();
        let of_genre = self.by_genre.get(&genre).map(Vec::as_slice).unwrap_or(&[]);
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

    /// Where "more like this" looks for neighbours of `seed`: the most popular tracks of the
    /// seed's genre and of the other genres (at most `HOT_SET` each), without the seed.
    /// Bounded, so a million-track catalog answers in well under a millisecond
    /// (ARCHITECTURE.md has the arithmetic and the path to an ANN index).
    pub fn neighbourhood(&self, seed: TrackIx) -> impl Iterator<Item = TrackIx> + '_ {
        let seed_track = self.tracks.at(seed);
        let genre = seed_track.genre_number();
        let same_genre = self
            .by_genre
            .get(seed_track.genre())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
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
        self.by_artist.get(&normalize(name)).map(Vec::as_slice)
    }

    /// The tracks of the artist named `name`: an exact match after normalizing case and
    /// punctuation, else a name containing it, else the closest name by Jaro-Winkler
    /// similarity (for misheard or misspelled names).
    pub fn artist_tracks(&self, name: &str) -> Option<&[TrackIx]> {
        let wanted = normalize(name);
        if wanted.is_empty() {
            return None;
        }
        if let Some(ts) = self.by_artist.get(&wanted) {
            return Some(ts);
        }
        let mut best: Option<(f64, &String)> = None;
        for candidate in self.by_artist.keys() {
            let score = if wanted.len() >= 3 && candidate.contains(&wanted) {
                // A name that contains what was said ("beatles" in "the beatles").
                0.95 + 0.05 * wanted.len() as f64 / candidate.len() as f64
            } else {
                strsim::jaro_winkler(&wanted, candidate)
            };
            if best.is_none_or(|(s, n)| score > s || (score == s && candidate < n)) {
                best = Some((score, candidate));
            }
        }
        best.filter(|(score, _)| *score >= FUZZY_ARTIST_MIN)
            .map(|(_, n)| self.by_artist[n].as_slice())
    }

    /// Every artist name in the catalog, for the text parser's artist slot.
    pub fn artists(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .by_artist
            .values()
            .map(|ts| self.tracks.at(ts[0]).artist().to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
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
        .filter(|&i| target.distance(tracks.at(i).features()) == 0.0)
        .take(MOOD_POOL)
        .collect();
    if inside.len() >= MIN_MOOD_MATCHES {
        return inside;
    }
    let mut scored: Vec<(f32, TrackIx)> = by_popularity
        .iter()
        .map(|&i| (target.distance(tracks.at(i).features()), i))
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

/// Lower case, punctuation dropped, single spaces: how artist names are compared.
pub fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn track_from_row(row: Row, stream_url_template: &str, art_url_template: Option<&str>) -> Track {
    let url = |template: &str| template.replace("{track_id}", &row.track_id);
    // `check_row` has read it already: a row that reaches here has a readable year or none.
    let year = row.release_year().ok().flatten();
    Track {
        year,
        stream_url: url(stream_url_template),
        art_url: art_url_template.map(url),
        id: TrackId(row.track_id.clone()),
        title: row.track_name,
        // Spotify exports join several artists with ';': the first one leads.
        artist: row
            .artists
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        album: row.album_name.unwrap_or_default(),
        genre: row
            .track_genre
            .filter(|g| !g.trim().is_empty())
            .map(|g| g.trim().to_ascii_lowercase())
            .unwrap_or_else(|| DEFAULT_GENRE.to_owned()),
        duration_ms: row.duration_ms.map_or(DEFAULT_DURATION_MS, |d| d as u64),
        popularity: row.popularity.unwrap_or(0.0).clamp(0.0, 100.0) as u8,
        explicit: row.explicit,
        features: AudioFeatures {
            valence: row.valence.unwrap_or(0.5),
            energy: row.energy.unwrap_or(0.5),
            tempo: row.tempo.unwrap_or(DEFAULT_TEMPO),
            danceability: row.danceability.unwrap_or(0.5),
            acousticness: row.acousticness.unwrap_or(0.5),
            instrumentalness: row.instrumentalness.unwrap_or(0.0),
        },
    }
}
