//! One catalog row, whatever file it comes from: its columns (those of common Spotify
//! audio-features exports, and the release year), the checks a row must pass, the defaults
//! of the columns it lacks, and the CSV format (read, and written back unchanged).

use crate::domain::{AudioFeatures, Track, TrackId};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// The temporary file the catalog's words are kept in (in `TMPDIR`) cannot be made or
    /// written.
    #[error("cannot keep the catalog's words in a temporary file (TMPDIR {dir}): {source}")]
    Scratch {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// The file is there but does not parse.
    #[error("{path} cannot be read as a catalog file")]
    Parse {
        path: PathBuf,
        #[source]
        source: crate::error::Cause,
    },
}

/// One row of a catalog CSV. Only the identity columns are required; the others default.
#[derive(Deserialize)]
pub(super) struct Row {
    pub(super) track_id: String,
    pub(super) artists: String,
    #[serde(default)]
    pub(super) album_name: Option<String>,
    pub(super) track_name: String,
    #[serde(default)]
    pub(super) popularity: Option<f32>,
    #[serde(default)]
    pub(super) duration_ms: Option<f64>,
    #[serde(default, deserialize_with = "flexible_bool")]
    pub(super) explicit: bool,
    #[serde(default)]
    pub(super) danceability: Option<f32>,
    #[serde(default)]
    pub(super) energy: Option<f32>,
    #[serde(default)]
    pub(super) acousticness: Option<f32>,
    #[serde(default)]
    pub(super) instrumentalness: Option<f32>,
    #[serde(default)]
    pub(super) valence: Option<f32>,
    #[serde(default)]
    pub(super) tempo: Option<f32>,
    #[serde(default)]
    pub(super) track_genre: Option<String>,
    /// The release: a year, or a date that starts with one. Exports name it differently;
    /// the first of these present is used.
    #[serde(default)]
    pub(super) year: Option<String>,
    #[serde(default)]
    pub(super) release_date: Option<String>,
    #[serde(default)]
    pub(super) album_release_date: Option<String>,
}

impl Row {
    /// The release year the row gives, if any: `year`, else `release_date`, else
    /// `album_release_date` ("1985", "1985-06-01", "1985.0"); empty or 0 is unknown.
    pub(super) fn release_year(&self) -> Result<Option<u16>, String> {
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
pub(super) fn each_csv_track(
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

pub(super) fn check_row(row: &Row) -> Result<(), String> {
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

pub(super) fn track_from_row(
    row: Row,
    stream_url_template: &str,
    art_url_template: Option<&str>,
) -> Track {
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
