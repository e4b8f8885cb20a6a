//! The embedded default's feedback log: append-only segment files in `<data-dir>/feedback/`.
//!
//! A record is `[payload length: u32 LE][CRC-32 of the payload: u32 LE][payload]`, the
//! payload one event as JSON. Records are numbered from 0 across segments; a segment is named
//! by the number of its first record and a new one starts past `SEGMENT_BYTES`. One writer
//! thread appends what has queued up, fsyncs once per batch, and only then acknowledges the
//! batch and makes it visible to readers, so a reader never sees a record a crash could take
//! back. On open, a torn final record (a crash mid-append) is cut off. Damage anywhere else
//! (a flipped bit on disk) is stepped over, never silently: the damaged stretch, up to the
//! next record whose header and checksum agree, reads back as one record that cannot be
//! decoded (its number kept, so what comes after keeps its numbers when only a payload was
//! hit), the consumers set it aside like any malformed record, and opening the log logs it and
//! counts it in `encore_feedback_log_damaged_total`.

use super::{Delivery, FeedbackError, FeedbackEvent, FeedbackSink};
use async_trait::async_trait;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A segment is closed once it is this large.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const HEADER: usize = 8;
/// The largest record accepted (an event is a few hundred bytes).
const MAX_RECORD: u32 = 1024 * 1024;
/// How long a batch waits for more appends before its fsync.
const LINGER: Duration = Duration::from_millis(2);

pub struct LocalLog {
    dir: PathBuf,
    appends: mpsc::Sender<Append>,
    /// Records below this number are durable and readable.
    durable: Arc<AtomicU64>,
    id: String,
}

enum Append {
    Event(Vec<u8>, Ack),
    Flush(oneshot::Sender<Result<(), FeedbackError>>),
}

/// Who waits for an event's record: for it to be durable, or for its record number too.
enum Ack {
    Durable(oneshot::Sender<Result<(), FeedbackError>>),
    At(oneshot::Sender<Result<u64, FeedbackError>>),
}

impl Ack {
    fn fail(self, e: FeedbackError) {
        match self {
            Ack::Durable(tx) => drop(tx.send(Err(e))),
            Ack::At(tx) => drop(tx.send(Err(e))),
        }
    }
}

/// A record read back: its number and its event, or why it could not be decoded.
#[derive(Debug)]
pub struct Record {
    pub offset: u64,
    pub event: Result<FeedbackEvent, String>,
}

impl LocalLog {
    /// Opens the log in `dir` (creating it), recovering from a torn final record.
    pub fn open(dir: &Path) -> Result<Self, FeedbackError> {
        Self::open_with_segment_size(dir, SEGMENT_BYTES)
    }

    /// `open`, with segments closed past `segment_bytes` (small ones exercise rolling).
    pub fn open_with_segment_size(dir: &Path, segment_bytes: u64) -> Result<Self, FeedbackError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let lock = lock(dir)?;
        let id = log_id(dir)?;
        let segments = segments(dir)?;
        let (base, path) = match segments.last() {
            Some(&base) => (base, segment_path(dir, base)),
            None => (0, segment_path(dir, 0)),
        };
        let (records, end) = recover(&path)?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        file.seek(SeekFrom::Start(end)).map_err(|e| io(&path, e))?;
        let durable = Arc::new(AtomicU64::new(base + records));
        let (appends, queue) = mpsc::channel();
        let writer = Writer {
            dir: dir.to_owned(),
            file,
            size: end,
            next: base + records,
            durable: durable.clone(),
            segment_bytes,
            _lock: lock,
        };
        std::thread::Builder::new()
            .name("encore-feedback-log".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| io(dir, e))?;
        Ok(LocalLog {
            dir: dir.to_owned(),
            appends,
            durable,
            id,
        })
    }

    /// This log's identity: made at random when the log is created and kept beside it, so
    /// two logs (two instances' data directories) never pass for one.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many records are durable (the next record's number).
    pub fn end(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Deletes the segments whose records all come before `folded` (folded into profiles, or
    /// shipped elsewhere) and whose newest record was written longer than `retention` ago
    /// (by the segment's modification time; `Duration::ZERO` deletes them all); the segment
    /// being written is never deleted. Returns (segments, bytes) deleted.
    pub fn trim(&self, folded: u64, retention: Duration) -> Result<(usize, u64), FeedbackError> {
        let bases = segments(&self.dir)?;
        let now = std::time::SystemTime::now();
        let (mut count, mut bytes) = (0, 0);
        for pair in bases.windows(2) {
            if pair[1] > folded {
                break;
            }
            let path = segment_path(&self.dir, pair[0]);
            let meta = std::fs::metadata(&path).map_err(|e| io(&path, e))?;
            let age = meta
                .modified()
                .ok()
                .and_then(|at| now.duration_since(at).ok())
                .unwrap_or_default();
            if age < retention {
                break;
            }
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            count += 1;
            bytes += meta.len();
        }
        Ok((count, bytes))
    }

    /// Appends `event`; the answer is its record number, once the record is durable.
    pub fn send_numbered(
        &self,
        event: FeedbackEvent,
    ) -> oneshot::Receiver<Result<u64, FeedbackError>> {
        let (tx, rx) = oneshot::channel();
        self.append(event, Ack::At(tx));
        rx
    }

    fn append(&self, event: FeedbackEvent, ack: Ack) {
        match serde_json::to_vec(&event) {
            Ok(bytes) => match self.appends.send(Append::Event(bytes, ack)) {
                Ok(()) => metrics::counter!("encore_feedback_produced_total").increment(1),
                Err(mpsc::SendError(Append::Event(_, ack))) => {
                    metrics::counter!("encore_feedback_failed_total", "reason" => "closed")
                        .increment(1);
                    ack.fail(FeedbackError::Closed);
                }
                Err(_) => {}
            },
            Err(e) => {
                metrics::counter!("encore_feedback_failed_total", "reason" => "encode")
                    .increment(1);
                ack.fail(FeedbackError::Encode(crate::error::cause(e)));
            }
        }
    }

    /// Up to `max` durable records from record `from` on.
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<Record>, FeedbackError> {
        read_records(&self.dir, from, self.end(), max)
    }

    /// Up to `max` records from record `from` on, read from `dir` without opening the log
    /// (a server may be writing it): a damaged record in the newest segment is taken for one
    /// being written, and reading stops before it.
    pub fn read_unlocked(dir: &Path, from: u64, max: usize) -> Result<Vec<Record>, FeedbackError> {
        read_records(dir, from, u64::MAX, max)
    }
}

#[async_trait]
impl FeedbackSink for LocalLog {
    fn send(&self, event: FeedbackEvent) -> Delivery {
        let (tx, rx) = oneshot::channel();
        self.append(event, Ack::Durable(tx));
        Delivery(rx)
    }

    async fn flush(&self) -> Result<(), FeedbackError> {
        let (tx, rx) = oneshot::channel();
        self.appends
            .send(Append::Flush(tx))
            .map_err(|_| FeedbackError::Closed)?;
        rx.await.map_err(|_| FeedbackError::Closed)?
    }
}

struct Writer {
    dir: PathBuf,
    file: File,
    size: u64,
    next: u64,
    durable: Arc<AtomicU64>,
    segment_bytes: u64,
    /// Held while the writer runs: one writer per log, across processes too.
    _lock: File,
}

/// How long `open` waits for a previous writer still closing the log.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Takes the log's lock file, waiting up to `LOCK_WAIT` for a writer that is closing.
fn lock(dir: &Path) -> Result<File, FeedbackError> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(FeedbackError::Io(crate::error::message(format!(
                    "{}: the log is in use by another writer",
                    path.display()
                ))));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path, e)),
        }
    }
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Append>) {
        while let Ok(first) = queue.recv() {
            let deadline = Instant::now() + LINGER;
            let mut batch = vec![first];
            loop {
                batch.extend(queue.try_iter());
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || batch.iter().any(|a| matches!(a, Append::Flush(_))) {
                    break;
                }
                match queue.recv_timeout(left) {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let mut number = self.next;
            let outcome = self.append(&batch);
            if let Err(e) = &outcome {
                tracing::error!(error = %crate::error::Chain(e), "feedback log: a batch could not be written");
            }
            for append in batch {
                match append {
                    Append::Flush(ack) => {
                        let _ = ack.send(outcome.clone());
                    }
                    Append::Event(_, Ack::Durable(ack)) => {
                        let _ = ack.send(outcome.clone());
                        number += 1;
                    }
                    Append::Event(_, Ack::At(ack)) => {
                        let _ = ack.send(outcome.clone().map(|()| number));
                        number += 1;
                    }
                }
            }
        }
    }

    /// Writes the batch's records and fsyncs; only then are they counted durable.
    fn append(&mut self, batch: &[Append]) -> Result<(), FeedbackError> {
        let path = segment_path(&self.dir, self.next);
        let mut written = 0;
        let mut buf = Vec::new();
        for append in batch {
            if let Append::Event(payload, _) = append {
                buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
                buf.extend_from_slice(payload);
                written += 1;
            }
        }
        if written == 0 {
            return Ok(());
        }
        if self.size > 0 && self.size + buf.len() as u64 > self.segment_bytes {
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            self.size = 0;
            // The new segment's name must survive a crash too.
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(&self.dir, e))?;
        }
        self.file.write_all(&buf).map_err(|e| io(&path, e))?;
        self.file.sync_data().map_err(|e| io(&path, e))?;
        self.size += buf.len() as u64;
        self.next += written;
        self.durable.store(self.next, Ordering::Release);
        Ok(())
    }
}

/// The file beside the segments that holds the log's id.
const ID_FILE: &str = "LOG_ID";

/// The id in `dir`'s `LOG_ID`, made (and made durable) if the log has none yet.
fn log_id(dir: &Path) -> Result<String, FeedbackError> {
    let path = dir.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&path, e)),
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let tmp = dir.join(format!("{ID_FILE}.tmp"));
    std::fs::write(&tmp, &id).map_err(|e| io(&tmp, e))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    Ok(id)
}

fn io(path: &Path, e: std::io::Error) -> FeedbackError {
    FeedbackError::Io(crate::error::message(format!("{}: {e}", path.display())))
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// The segments' first record numbers, ascending.
fn segments(dir: &Path) -> Result<Vec<u64>, FeedbackError> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Reads one record at the reader's position: `Ok(None)` at a clean end, `Err(pos)` at a
/// torn or damaged record starting at `pos`.
fn next_record(reader: &mut impl Read, pos: u64) -> Result<Option<Vec<u8>>, u64> {
    let mut header = [0u8; HEADER];
    match reader.read(&mut header[..1]) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(_) => return Err(pos),
    }
    reader.read_exact(&mut header[1..]).map_err(|_| pos)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    // No record is empty (an event is a JSON object): a zero length is zeros a crash left
    // (an empty payload's checksum is zero too), never a record.
    if len == 0 || len > MAX_RECORD {
        return Err(pos);
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload).map_err(|_| pos)?;
    if crc32fast::hash(&payload) != crc {
        return Err(pos);
    }
    Ok(Some(payload))
}

/// Counts the records of the last segment and returns (records, end of the last good one),
/// cutting off a torn final record and stepping over damage before it.
fn recover(path: &Path) -> Result<(u64, u64), FeedbackError> {
    let Ok(mut file) = File::open(path) else {
        return Ok((0, 0));
    };
    let len = file.metadata().map_err(|e| io(path, e))?.len();
    let mut reader = reader_at(&mut file, path, 0)?;
    let (mut records, mut pos) = (0u64, 0u64);
    loop {
        match next_record(&mut reader, pos) {
            Ok(Some(payload)) => {
                records += 1;
                pos += (HEADER + payload.len()) as u64;
            }
            Ok(None) => return Ok((records, pos)),
            Err(bad) => {
                let after = resync(&mut file, path, bad, len)?;
                if after == len && torn_tail(path, bad, len)? {
                    tracing::warn!(path = %path.display(), at = bad, dropped_bytes = len - bad, "feedback log: cut off a torn final record");
                    let file = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| io(path, e))?;
                    file.set_len(bad).map_err(|e| io(path, e))?;
                    file.sync_all().map_err(|e| io(path, e))?;
                    return Ok((records, bad));
                }
                tracing::error!(path = %path.display(), at = bad, skipped_bytes = after - bad, record = records, "feedback log: stepped over a damaged record; it reads back as one that cannot be decoded");
                metrics::counter!("encore_feedback_log_damaged_total").increment(1);
                records += 1;
                if after == len {
                    return Ok((records, len));
                }
                pos = after;
                reader = reader_at(&mut file, path, pos)?;
            }
        }
    }
}

/// A buffered reader of `file` from byte `pos`. It shares the file's position, so `resync`
/// can read ahead on `file` and reading goes on from a new reader.
fn reader_at(file: &mut File, path: &Path, pos: u64) -> Result<BufReader<File>, FeedbackError> {
    file.seek(SeekFrom::Start(pos)).map_err(|e| io(path, e))?;
    Ok(BufReader::new(file.try_clone().map_err(|e| io(path, e))?))
}

/// Where reading goes on after a damaged record at `at` in `file` (`len` bytes long): past
/// the record itself when its declared length leads to a good record or to the end (only its
/// payload was hit), else at the first later offset where a header and its checksum agree,
/// else at the end.
fn resync(file: &mut File, path: &Path, at: u64, len: u64) -> Result<u64, FeedbackError> {
    file.seek(SeekFrom::Start(at)).map_err(|e| io(path, e))?;
    let mut rest = Vec::new();
    file.read_to_end(&mut rest).map_err(|e| io(path, e))?;
    let good_at = |i: usize| -> bool {
        let mut slice = &rest[i.min(rest.len())..];
        i == rest.len() || matches!(next_record(&mut slice, 0), Ok(Some(_)))
    };
    if rest.len() >= HEADER {
        let declared = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let past = HEADER + declared;
        if declared > 0 && declared <= MAX_RECORD as usize && past <= rest.len() && good_at(past) {
            return Ok(at + past as u64);
        }
    }
    let found = (1..rest.len().saturating_sub(HEADER)).find(|&i| {
        let declared = u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
        declared > 0
            && declared <= MAX_RECORD
            && i + HEADER + declared as usize <= rest.len()
            && good_at(i)
    });
    Ok(found.map_or(len, |i| at + i as u64))
}

/// Whether the bad record at `at` is the file's last: its declared length reaches the end of
/// the file or beyond (or its header is cut short).
fn torn_tail(path: &Path, at: u64, len: u64) -> Result<bool, FeedbackError> {
    if len - at < HEADER as u64 {
        return Ok(true);
    }
    let mut file = File::open(path).map_err(|e| io(path, e))?;
    file.seek(SeekFrom::Start(at)).map_err(|e| io(path, e))?;
    let mut header = [0u8; 4];
    file.read_exact(&mut header).map_err(|e| io(path, e))?;
    let declared = u32::from_le_bytes(header) as u64;
    if declared == 0 {
        // Zeros to the end: the file was extended but the data never written.
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).map_err(|e| io(path, e))?;
        return Ok(rest.iter().all(|&b| b == 0));
    }
    Ok(at + HEADER as u64 + declared >= len)
}

fn read_records(dir: &Path, from: u64, end: u64, max: usize) -> Result<Vec<Record>, FeedbackError> {
    let mut out = Vec::new();
    let bases = segments(dir)?;
    let start = bases.iter().rposition(|&b| b <= from).unwrap_or(0);
    let mut offset = bases.get(start).copied().unwrap_or(0);
    let last = bases.last().copied();
    for &base in &bases[start.min(bases.len())..] {
        offset = offset.max(base);
        let path = segment_path(dir, base);
        let mut file = File::open(&path).map_err(|e| io(&path, e))?;
        let len = file.metadata().map_err(|e| io(&path, e))?.len();
        let mut reader = reader_at(&mut file, &path, 0)?;
        let mut pos = 0u64;
        while offset < end && out.len() < max {
            match next_record(&mut reader, pos) {
                Ok(Some(payload)) => {
                    pos += (HEADER + payload.len()) as u64;
                    if offset >= from {
                        let event = serde_json::from_slice(&payload).map_err(|e| e.to_string());
                        out.push(Record { offset, event });
                    }
                    offset += 1;
                }
                Ok(None) => break,
                Err(at) => {
                    let after = resync(&mut file, &path, at, len)?;
                    // Without the writer's end, a torn final record is one still being written.
                    if after == len && end == u64::MAX && Some(base) == last {
                        return Ok(out);
                    }
                    if offset >= from {
                        let event = Err(format!(
                            "damaged record: {} bytes at byte {at} of {} stepped over",
                            after - at,
                            path.display()
                        ));
                        out.push(Record { offset, event });
                    }
                    offset += 1;
                    if after == len {
                        break;
                    }
                    pos = after;
                    reader = reader_at(&mut file, &path, pos)?;
                }
            }
        }
        if offset >= end || out.len() >= max {
            break;
        }
    }
    Ok(out)
}
