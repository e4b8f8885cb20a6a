//! The one way offline work reads feedback events: the local log, read without taking its
//! lock (a running server may keep appending), or a scan of the whole Kinesis stream.
//! `encore report` and `encore train` both read through it, so neither needs the server
//! stopped.

use crate::feedback::{FeedbackError, FeedbackEvent, KinesisStream, LocalLog};
use std::path::{Path, PathBuf};

/// Where events are read from.
pub enum EventSource {
    /// A feedback log directory (`<data-dir>/feedback`, or a copy of one).
    Log(PathBuf),
    /// Every record the stream still holds.
    Stream(KinesisStream),
}

impl EventSource {
    /// Calls `each` with every event, oldest first (per shard on a stream); returns how many
    /// records were not events.
    pub async fn read(&self, each: impl FnMut(FeedbackEvent)) -> Result<u64, FeedbackError> {
        match self {
            EventSource::Log(dir) => read_log(dir, each),
            EventSource::Stream(stream) => stream.scan(each).await,
        }
    }
}

/// Reads a feedback log directory to its current end without its lock. Returns how many
/// records were not events.
pub fn read_log(dir: &Path, mut each: impl FnMut(FeedbackEvent)) -> Result<u64, FeedbackError> {
    if !dir.is_dir() {
        return Err(FeedbackError::Io(crate::error::message(format!(
            "no feedback log in {}",
            dir.display()
        ))));
    }
    let mut malformed = 0;
    let mut next = 0;
    loop {
        let records = LocalLog::read_unlocked(dir, next, 10_000)?;
        let Some(last) = records.last() else {
            return Ok(malformed);
        };
        next = last.offset + 1;
        for record in records {
            match record.event {
                Ok(event) => each(event),
                Err(_) => malformed += 1,
            }
        }
    }
}
