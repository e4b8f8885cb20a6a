//! The catalog as a Parquet file (arrow-rs), the columnar format the training and ETL side
//! reads and writes: `encore catalog import` and `synth` write it, `Catalog::load` streams
//! it into the track columns one record batch at a time. The columns are the CSV's
//! (`CSV_COLUMNS`), typed; a file written elsewhere (Spark, pandas) may use other integer
//! or float widths and large or view strings: each column is cast to the type read, and
//! a row is checked and defaulted exactly as a CSV row is.

use super::rows::{BadRow, CSV_COLUMNS, CatalogError, Row, check_row, track_from_row};
use crate::domain::Track;
use arrow_array::cast::AsArray;
use arrow_array::types::{ArrowPrimitiveType, Float32Type, Float64Type, UInt16Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float32Array, RecordBatch, StringArray, UInt8Array, UInt16Array,
    UInt32Array,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::borrow::Borrow;
use std::path::Path;
use std::sync::Arc;

/// Rows per record batch, read or written: a few MB of columns at a time.
const BATCH: usize = 64 * 1024;

/// Whether `name` is a Parquet catalog (by its extension); anything else is read as CSV.
pub fn is_parquet(name: &Path) -> bool {
    name.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// The schema Encore writes: the CSV's columns, typed.
fn schema() -> Schema {
    let types = [
        DataType::Utf8,    // track_id
        DataType::Utf8,    // artists
        DataType::Utf8,    // album_name
        DataType::Utf8,    // track_name
        DataType::UInt8,   // popularity
        DataType::UInt32,  // duration_ms
        DataType::Boolean, // explicit
        DataType::Float32, // danceability
        DataType::Float32, // energy
        DataType::Float32, // acousticness
        DataType::Float32, // instrumentalness
        DataType::Float32, // valence
        DataType::Float32, // tempo
        DataType::Utf8,    // track_genre
        DataType::UInt16,  // year
    ];
    Schema::new(
        CSV_COLUMNS
            .iter()
            .zip(types)
            .map(|(name, ty)| {
                let nullable = !matches!(*name, "track_id" | "artists" | "track_name");
                Field::new(*name, ty, nullable)
            })
            .collect::<Vec<_>>(),
    )
}

fn parquet_error(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> CatalogError {
    CatalogError::Parse {
        path: path.to_owned(),
        source: crate::error::cause(e),
    }
}

/// Writes `tracks` as a Parquet catalog at `path` (through a temporary file, so a reader
/// never sees half of one); returns how many were written.
pub fn write_tracks_parquet<T: Borrow<Track>>(
    path: &Path,
    tracks: impl IntoIterator<Item = T>,
) -> Result<usize, CatalogError> {
    let io = |source| CatalogError::Io {
        path: path.to_owned(),
        source,
    };
    let partial = path.with_extension("parquet.partial");
    let file = std::fs::File::create(&partial).map_err(io)?;
    let schema = Arc::new(schema());
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
        .map_err(|e| parquet_error(path, e))?;
    let mut written = 0;
    let mut chunk: Vec<T> = Vec::with_capacity(BATCH);
    let mut flush = |chunk: &mut Vec<T>, writer: &mut ArrowWriter<std::fs::File>| {
        if chunk.is_empty() {
            return Ok(());
        }
        let batch = batch_of(&schema, chunk).map_err(|e| parquet_error(path, e))?;
        writer.write(&batch).map_err(|e| parquet_error(path, e))?;
        written += chunk.len();
        chunk.clear();
        Ok::<(), CatalogError>(())
    };
    for t in tracks {
        chunk.push(t);
        if chunk.len() == BATCH {
            flush(&mut chunk, &mut writer)?;
        }
    }
    flush(&mut chunk, &mut writer)?;
    writer.close().map_err(|e| parquet_error(path, e))?;
    std::fs::rename(&partial, path).map_err(io)?;
    Ok(written)
}

fn batch_of<T: Borrow<Track>>(
    schema: &Arc<Schema>,
    tracks: &[T],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let tracks: Vec<&Track> = tracks.iter().map(Borrow::borrow).collect();
    let strings = |f: fn(&Track) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(tracks.iter().map(|t| f(t))))
    };
    let floats = |f: fn(&Track) -> f32| -> ArrayRef {
        Arc::new(Float32Array::from_iter_values(tracks.iter().map(|t| f(t))))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(|t| &t.id.0),
        strings(|t| &t.artist),
        strings(|t| &t.album),
        strings(|t| &t.title),
        Arc::new(UInt8Array::from_iter_values(
            tracks.iter().map(|t| t.popularity),
        )),
        Arc::new(UInt32Array::from_iter_values(
            tracks
                .iter()
                .map(|t| t.duration_ms.min(u64::from(u32::MAX)) as u32),
        )),
        Arc::new(BooleanArray::from_iter(
            tracks.iter().map(|t| Some(t.explicit)),
        )),
        floats(|t| t.features.danceability),
        floats(|t| t.features.energy),
        floats(|t| t.features.acousticness),
        floats(|t| t.features.instrumentalness),
        floats(|t| t.features.valence),
        floats(|t| t.features.tempo),
        strings(|t| &t.genre),
        Arc::new(UInt16Array::from_iter(tracks.iter().map(|t| t.year))),
    ];
    RecordBatch::try_new(schema.clone(), columns)
}

/// How many rows the Parquet file at `path` says it holds (its footer); none when it does not
/// read as Parquet (`each_parquet_track` then says why).
pub fn parquet_rows(path: &Path) -> Option<usize> {
    let file = std::fs::File::open(path).ok()?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
    usize::try_from(builder.metadata().file_metadata().num_rows()).ok()
}

/// Each usable row of a Parquet catalog as a track, in file order, one at a time (a
/// repeated id too: the caller decides); the bad rows, numbered from 1.
pub fn each_parquet_track(
    path: &Path,
    stream_url_template: &str,
    art_url_template: Option<&str>,
    mut each: impl FnMut(Track),
) -> Result<Vec<BadRow>, CatalogError> {
    let file = std::fs::File::open(path).map_err(|source| CatalogError::Io {
        path: path.to_owned(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| parquet_error(path, e))?
        .with_batch_size(BATCH)
        .build()
        .map_err(|e| parquet_error(path, e))?;
    let mut bad = Vec::new();
    let mut row_number = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| parquet_error(path, e))?;
        let columns = Columns::of(&batch).map_err(|message| CatalogError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        for i in 0..batch.num_rows() {
            row_number += 1;
            let row = columns.row(i);
            match check_row(&row) {
                Ok(()) => each(track_from_row(row, stream_url_template, art_url_template)),
                Err(reason) => bad.push(BadRow {
                    line: row_number,
                    reason,
                }),
            }
        }
    }
    Ok(bad)
}

/// One batch's columns, cast to the types read; an optional column may be absent.
struct Columns {
    track_id: StringArray,
    artists: StringArray,
    track_name: StringArray,
    album_name: Option<StringArray>,
    track_genre: Option<StringArray>,
    popularity: Option<ArrayRef>,
    duration_ms: Option<ArrayRef>,
    explicit: Option<BooleanArray>,
    /// danceability, energy, acousticness, instrumentalness, valence, tempo
    features: [Option<ArrayRef>; 6],
    year: Option<ArrayRef>,
}

impl Columns {
    fn of(batch: &RecordBatch) -> Result<Columns, String> {
        let column = |name: &str| batch.column_by_name(name).cloned();
        let cast = |name: &str, to: &DataType| -> Result<Option<ArrayRef>, String> {
            column(name)
                .map(|c| arrow_cast::cast(&c, to).map_err(|e| format!("column {name:?}: {e}")))
                .transpose()
        };
        let text = |name: &str| -> Result<Option<StringArray>, String> {
            Ok(cast(name, &DataType::Utf8)?.map(|c| c.as_string::<i32>().clone()))
        };
        let required = |name: &str| -> Result<StringArray, String> {
            text(name)?.ok_or_else(|| format!("no {name:?} column"))
        };
        // danceability, energy, acousticness, instrumentalness, valence, tempo
        let features = &CSV_COLUMNS[7..13];
        let mut read = [None, None, None, None, None, None];
        for (slot, name) in read.iter_mut().zip(features) {
            *slot = cast(name, &DataType::Float32)?;
        }
        Ok(Columns {
            track_id: required("track_id")?,
            artists: required("artists")?,
            track_name: required("track_name")?,
            album_name: text("album_name")?,
            track_genre: text("track_genre")?,
            popularity: cast("popularity", &DataType::Float32)?,
            duration_ms: cast("duration_ms", &DataType::Float64)?,
            explicit: cast("explicit", &DataType::Boolean)?.map(|c| c.as_boolean().clone()),
            features: read,
            year: cast("year", &DataType::UInt16)?,
        })
    }

    /// Row `i` as a CSV row would be read: nulls and absent columns are empty.
    fn row(&self, i: usize) -> Row {
        let text = |a: &StringArray| a.is_valid(i).then(|| a.value(i).to_owned());
        let float = |a: &Option<ArrayRef>| value::<Float32Type>(a, i);
        let [
            danceability,
            energy,
            acousticness,
            instrumentalness,
            valence,
            tempo,
        ] = self.features.each_ref().map(float);
        Row {
            track_id: text(&self.track_id).unwrap_or_default(),
            artists: text(&self.artists).unwrap_or_default(),
            track_name: text(&self.track_name).unwrap_or_default(),
            album_name: self.album_name.as_ref().and_then(text),
            track_genre: self.track_genre.as_ref().and_then(text),
            popularity: float(&self.popularity),
            duration_ms: value::<Float64Type>(&self.duration_ms, i),
            explicit: self
                .explicit
                .as_ref()
                .is_some_and(|a| a.is_valid(i) && a.value(i)),
            danceability,
            energy,
            acousticness,
            instrumentalness,
            valence,
            tempo,
            year: value::<UInt16Type>(&self.year, i).map(|y| y.to_string()),
            release_date: None,
            album_release_date: None,
        }
    }
}

/// Row `i` of an optional column already cast to `T`; none when absent or null.
fn value<T: ArrowPrimitiveType>(column: &Option<ArrayRef>, i: usize) -> Option<T::Native> {
    column
        .as_ref()
        .filter(|c| c.is_valid(i))
        .map(|c| c.as_primitive::<T>().value(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_written_as_parquet_reads_back_track_for_track() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.parquet");
        // More than one batch, every column varied, a year and an album missing.
        let n = BATCH + 10;
        let tracks: Vec<Track> = (0..n)
            .map(|i| {
                let mut t = Track::sample(&format!("t{i}"), &format!("Artist {}", i % 97), "jazz");
                t.title = format!("Song {i} — «{}»", i % 13);
                t.album = if i % 7 == 0 {
                    String::new()
                } else {
                    format!("Album {}", i % 31)
                };
                t.genre = ["jazz", "hip-hop", "r-n-b"][i % 3].to_owned();
                t.popularity = (i % 101) as u8;
                t.duration_ms = 60_000 + i as u64;
                t.explicit = i % 5 == 0;
                t.year = (i % 4 != 0).then_some(1950 + (i % 70) as u16);
                let x = (i % 1000) as f32 / 1000.0;
                t.features = crate::domain::AudioFeatures {
                    valence: x,
                    energy: 1.0 - x,
                    tempo: 60.0 + x * 100.0,
                    danceability: x / 2.0,
                    acousticness: x / 3.0,
                    instrumentalness: x / 4.0,
                };
                t.stream_url = format!("https://s/t{i}");
                t
            })
            .collect();
        assert_eq!(write_tracks_parquet(&path, &tracks).unwrap(), n);
        let mut read = Vec::new();
        let bad =
            each_parquet_track(&path, "https://s/{track_id}", None, |t| read.push(t)).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(read, tracks);
    }

    /// What Spark or pandas write: 64-bit numbers, large strings, a few columns only, a
    /// string "explicit"; a bad row is reported by its number and skipped.
    #[test]
    fn a_catalog_written_elsewhere_reads_with_its_own_types_and_bad_rows_reported() {
        use arrow_array::{Float64Array, Int64Array, LargeStringArray};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spark.parquet");
        let batch = RecordBatch::try_from_iter([
            (
                "track_id",
                Arc::new(LargeStringArray::from(vec!["a", "b", "c"])) as ArrayRef,
            ),
            (
                "artists",
                Arc::new(LargeStringArray::from(vec!["Ana;Guest", "Bo", "Cy"])) as ArrayRef,
            ),
            (
                "track_name",
                Arc::new(LargeStringArray::from(vec!["One", "Two", "Three"])) as ArrayRef,
            ),
            (
                "popularity",
                Arc::new(Int64Array::from(vec![Some(70), None, Some(10)])) as ArrayRef,
            ),
            (
                "energy",
                Arc::new(Float64Array::from(vec![0.25, 1.5, 0.5])) as ArrayRef,
            ),
            (
                "explicit",
                Arc::new(StringArray::from(vec!["True", "False", "false"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let file = std::fs::File::create(&path).unwrap();
        let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let mut read = Vec::new();
        let bad =
            each_parquet_track(&path, "https://s/{track_id}", None, |t| read.push(t)).unwrap();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 2);
        assert!(bad[0].reason.contains("energy 1.5"), "{:?}", bad[0]);
        assert_eq!(read.len(), 2);
        let a = &read[0];
        assert_eq!(
            (
                a.artist.as_str(),
                a.popularity,
                a.explicit,
                a.features.energy,
                a.genre.as_str()
            ),
            ("Ana", 70, true, 0.25, "unknown")
        );
        assert_eq!(a.duration_ms, 200_000, "a default");
        // Without an identity column, the file is refused whole.
        let no_id = RecordBatch::try_from_iter([(
            "artists",
            Arc::new(StringArray::from(vec!["x"])) as ArrayRef,
        )])
        .unwrap();
        let path = dir.path().join("no-id.parquet");
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), no_id.schema(), None)
                .unwrap();
        w.write(&no_id).unwrap();
        w.close().unwrap();
        let err = each_parquet_track(&path, "https://s/{track_id}", None, |_| {}).unwrap_err();
        assert!(err.to_string().contains("track_id"), "{err}");
    }
}
