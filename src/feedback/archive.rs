//! The feedback archive: every event as training data in object storage, gzip JSON lines
//! under time-partitioned keys (`YYYY/MM/DD/HH/encore-archive-<time>-<uuid>.gz`, the hour
//! the object was written, UTC), the format a Kinesis Data Firehose delivery stream with
//! GZIP compression and a newline appended to each record writes. In the stack Firehose
//! writes it from the stream; locally `encore consume --archive` writes the same after
//! folding each page of events, before it checkpoints (so a crash writes a page twice,
//! never loses one: readers count each event id once).
//!
//! Reading tolerates both newline-separated records and records written back to back
//! (Firehose without the newline processor); a line that is not an event is counted and
//! skipped, and the rest of the object is still read.

use super::{FeedbackError, FeedbackEvent};
use crate::objects::{Fetched, ObjectStore};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::io::{Read, Write};
use std::sync::Arc;

/// The name part of the objects this archive writes.
const OBJECT_NAME: &str = "encore-archive";

/// Writes pages of events as archive objects.
pub struct Archive {
    store: Arc<dyn ObjectStore>,
}

fn io_error(e: impl std::error::Error + Send + Sync + 'static) -> FeedbackError {
    FeedbackError::Io(crate::error::cause(e))
}

impl Archive {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Archive { store }
    }

    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Writes `events` as one object; nothing when there are none. Returns its key.
    pub async fn write(&self, events: &[FeedbackEvent]) -> Result<Option<String>, FeedbackError> {
        if events.is_empty() {
            return Ok(None);
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        for event in events {
            serde_json::to_writer(&mut gz, event)
                .map_err(|e| FeedbackError::Encode(crate::error::cause(e)))?;
            gz.write_all(b"\n").map_err(io_error)?;
        }
        let body = gz.finish().map_err(io_error)?;
        let key = object_key(time::OffsetDateTime::now_utc());
        self.store.put(&key, body).await.map_err(io_error)?;
        metrics::counter!("encore_archive_events_total").increment(events.len() as u64);
        metrics::counter!("encore_archive_objects_total").increment(1);
        Ok(Some(key))
    }
}

/// The key of an object written at `at`.
fn object_key(at: time::OffsetDateTime) -> String {
    format!(
        "{:04}/{:02}/{:02}/{:02}/{OBJECT_NAME}-{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-{}.gz",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        uuid::Uuid::new_v4().simple()
    )
}

/// What reading an archive found besides events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveRead {
    pub objects: u64,
    pub events: u64,
    /// Records that were not events, and objects that were not gzip.
    pub malformed: u64,
}

/// Calls `each` with every event in the archive's objects whose time partition is at or
/// after `since` (`YYYY[/MM[/DD[/HH]]]`; none: all), object by object in key order (so
/// oldest first). Duplicates are passed on: callers count each event id once.
pub async fn read_archive(
    store: &dyn ObjectStore,
    since: Option<&str>,
    mut each: impl FnMut(FeedbackEvent),
) -> Result<ArchiveRead, FeedbackError> {
    // Keys sort by time: everything after `since` itself starts at or after its partition.
    let objects = store.list("", since).await.map_err(io_error)?;
    let mut read = ArchiveRead::default();
    for object in objects.iter().filter(|o| o.key.ends_with(".gz")) {
        let Fetched::Found { bytes, .. } = store.get(&object.key, None).await.map_err(io_error)?
        else {
            continue; // deleted since the listing (a lifecycle rule)
        };
        read.objects += 1;
        let mut text = String::new();
        if GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .is_err()
        {
            tracing::warn!(key = object.key, "archive object is not gzip text; skipped");
            read.malformed += 1;
            continue;
        }
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            for record in serde_json::Deserializer::from_str(line).into_iter::<FeedbackEvent>() {
                match record {
                    Ok(event) => {
                        read.events += 1;
                        each(event);
                    }
                    Err(_) => {
                        read.malformed += 1;
                        break;
                    }
                }
            }
        }
    }
    Ok(read)
}

/// Splits an archive location's trailing time partition off: `feedback/2026/12/01` is the
/// archive `feedback` since 2026-12-01. Returns (archive prefix, since).
pub fn split_since(path: &str) -> (String, Option<String>) {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    for start in 0..parts.len() {
        let tail = &parts[start..];
        let is_time = (1..=4).contains(&tail.len())
            && digits(tail[0], 4)
            && tail[1..].iter().all(|p| digits(p, 2));
        if is_time {
            return (parts[..start].join("/"), Some(tail.join("/")));
        }
    }
    (path.trim_end_matches('/').to_owned(), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::DirStore;

    fn event(id: &str) -> FeedbackEvent {
        FeedbackEvent::new(
            "u1",
            "d1",
            &crate::domain::TrackId(id.into()),
            super::super::EventKind::PlayFinished,
            1000,
            Default::default(),
            crate::domain::Source::Alexa,
        )
    }

    #[tokio::test]
    async fn what_is_written_reads_back_and_a_bad_record_loses_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DirStore::new(dir.path()));
        let archive = Archive::new(store.clone());
        let key = archive
            .write(&[event("t1"), event("t2")])
            .await
            .unwrap()
            .unwrap();
        assert!(
            key.ends_with(".gz") && key.matches('/').count() == 4,
            "{key}"
        );
        // Firehose without its newline processor: records back to back, one bad line.
        let a = serde_json::to_string(&event("t3")).unwrap();
        let b = serde_json::to_string(&event("t4")).unwrap();
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        write!(gz, "{a}{b}\nnot an event\n{a}\n").unwrap();
        store
            .put("2000/01/01/00/firehose.gz", gz.finish().unwrap())
            .await
            .unwrap();
        store
            .put("2000/01/01/00/junk.gz", b"plain".to_vec())
            .await
            .unwrap();
        let mut tracks = Vec::new();
        let read = read_archive(&*store, None, |e| tracks.push(e.track_id.0))
            .await
            .unwrap();
        assert_eq!(tracks, ["t3", "t4", "t3", "t1", "t2"]);
        assert_eq!((read.objects, read.events, read.malformed), (3, 5, 2));
        let mut recent = 0;
        read_archive(&*store, Some("2001"), |_| recent += 1)
            .await
            .unwrap();
        assert_eq!(recent, 2, "only what was written since 2001");
    }

    #[test]
    fn a_trailing_time_partition_is_where_reading_starts() {
        assert_eq!(
            split_since("feedback/2026/12/01"),
            ("feedback".into(), Some("2026/12/01".into()))
        );
        assert_eq!(split_since("feedback/"), ("feedback".into(), None));
        assert_eq!(split_since("2026"), ("".into(), Some("2026".into())));
        assert_eq!(split_since("a/1999x/12"), ("a/1999x/12".into(), None));
    }
}
