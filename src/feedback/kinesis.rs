//! Feedback on Kinesis Data Streams.
//!
//! Producing: `KinesisSink` writes each event to a durable local spool (a `LocalLog` under
//! `<data-dir>/feedback-spool/`) and acknowledges it once Kinesis has accepted it, or, while
//! the stream cannot be reached, once it is durable in the spool: so what was acknowledged
//! survives the task being replaced (its disk gone) whenever the stream was up, and only an
//! outage leaves acknowledged events on the task's disk until they ship. A shipper task sends
//! the spool to the stream in batches of at most 500 records and 5 MB after a short linger,
//! partition key = user id, retries only the records Kinesis refused (jittered backoff), and
//! records how far it has shipped only after Kinesis accepted everything before that point.
//! A stream outage, a throttle or a restart therefore loses nothing: the spool keeps what is
//! not shipped, on disk, and ships it when it can (at start-up, and before a graceful stop).
//!
//! Consuming: `KinesisConsumer` reads every shard, parents before children after a reshard,
//! from its checkpoint (or TRIM_HORIZON), and folds each event in exactly once.

use super::{
    Delivery, FeedbackError, FeedbackEvent, FeedbackSink, LocalLog, Progress, StreamFault,
};
use crate::domain::TrackLookup;
use crate::error::message;
use crate::store::{DeadLetter, ProfileStore};
use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, Shard, ShardIteratorType, StreamMode, StreamModeDetails,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Kinesis's limits for one PutRecords call.
pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;
/// How long the shipper waits for a batch to fill before sending what it has.
const LINGER: Duration = Duration::from_millis(20);
/// Backoff between retries of refused records: jittered, doubling from 50 ms to 5 s.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_CAP: Duration = Duration::from_secs(5);
/// The file in the spool directory where records Kinesis refuses as invalid are kept.
pub const SET_ASIDE_FILE: &str = "set-aside.jsonl";
/// The longest partition key Kinesis takes, in characters.
const MAX_PARTITION_KEY_CHARS: usize = 256;
/// How long a graceful stop waits for the spool to drain.
const DRAIN_WAIT: Duration = Duration::from_secs(10);
/// The checkpoint value of a shard read to its end (closed after a reshard).
const SHARD_END: &str = "SHARD_END";

/// One Kinesis stream and the client that reaches it, built once from the shared AWS
/// settings. Everything Encore does with the stream starts here: create it, produce to it
/// through a spool, consume it with checkpoints, scan it for read-outs. No SDK type leaves
/// this file.
#[derive(Clone)]
pub struct KinesisStream {
    client: Client,
    name: String,
}

impl KinesisStream {
    pub async fn connect(aws: &crate::aws::AwsSettings, name: &str) -> Self {
        KinesisStream {
            client: Client::new(&crate::aws::sdk_config(aws).await),
            name: name.to_owned(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the stream (on-demand capacity) if it is missing and waits until it is
    /// active. Returns whether it created it.
    pub async fn create(&self) -> Result<bool, FeedbackError> {
        create_stream(&self.client, &self.name).await
    }

    /// A sink that spools events under `spool_dir` and ships them to this stream (what an
    /// earlier run left in the spool included).
    pub fn sink(&self, spool_dir: &Path) -> Result<KinesisSink, FeedbackError> {
        KinesisSink::start(self.clone(), spool_dir)
    }

    /// A consumer of every shard into `store`, checkpointed per shard.
    pub fn consumer(
        &self,
        store: Arc<dyn ProfileStore>,
        catalog: Arc<dyn TrackLookup>,
    ) -> KinesisConsumer {
        KinesisConsumer {
            client: self.client.clone(),
            stream: self.name.clone(),
            store,
            catalog,
            archive: None,
        }
    }

    /// Reads every record the stream still holds, shard by shard from the oldest, to the
    /// current end, without checkpoints (for read-outs such as `encore report`). Returns how
    /// many records were not events.
    pub async fn scan(&self, each: impl FnMut(FeedbackEvent)) -> Result<u64, FeedbackError> {
        scan_stream(&self.client, &self.name, each).await
    }
}

async fn create_stream(client: &Client, stream: &str) -> Result<bool, FeedbackError> {
    let mode = StreamModeDetails::builder()
        .stream_mode(StreamMode::OnDemand)
        .build()
        .map_err(build_error)?;
    let created = match client
        .create_stream()
        .stream_name(stream)
        .stream_mode_details(mode)
        .send()
        .await
    {
        Ok(_) => true,
        Err(e) if e.code() == Some("ResourceInUseException") => false,
        Err(e) => return Err(stream_error(e)),
    };
    for _ in 0..100 {
        let summary = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(stream_error)?;
        let active = summary
            .stream_description_summary()
            .map(|d| d.stream_status().as_str() == "ACTIVE")
            .unwrap_or(false);
        if active {
            return Ok(created);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(FeedbackError::Stream {
        kind: StreamFault::Transient,
        source: message(format!("stream {stream} did not become active")),
    })
}

/// A request the SDK could not even build: retrying it changes nothing.
fn build_error(e: impl std::fmt::Display) -> FeedbackError {
    FeedbackError::Stream {
        kind: StreamFault::Permanent,
        source: message(format!("invalid request: {e}")),
    }
}

/// SDK errors -> `FeedbackError::Stream`, sorted by what a retry can do. The SDK's error stays
/// here: callers get its text, not its type.
fn stream_error<E, R>(e: SdkError<E, R>) -> FeedbackError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let kind = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StreamFault::Transient
        }
        SdkError::ServiceError(s) => fault_of(s.err().code()),
        _ => StreamFault::Permanent,
    };
    FeedbackError::Stream {
        kind,
        source: message(DisplayErrorContext(&e).to_string()),
    }
}

/// A Kinesis error code's fault: throttling, a request that can never succeed, or the rest
/// (the service's own trouble), which a retry may get past.
fn fault_of(code: Option<&str>) -> StreamFault {
    const THROTTLING: [&str; 3] = [
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
    ];
    const PERMANENT: [&str; 6] = [
        "ResourceNotFoundException",
        "InvalidArgumentException",
        "ValidationException",
        "AccessDeniedException",
        "ResourceInUseException",
        "ExpiredIteratorException",
    ];
    match code {
        Some(c) if THROTTLING.contains(&c) => StreamFault::Throttled,
        Some(c) if PERMANENT.contains(&c) => StreamFault::Permanent,
        _ => StreamFault::Transient,
    }
}

/// What the shipper tells waiting acknowledgements: how far the stream has accepted the
/// spool, and whether the stream is failing now (then the spool's durability is the
/// acknowledgement).
#[derive(Debug, Clone, Copy, Default)]
struct ShipState {
    shipped: u64,
    down: bool,
}

pub struct KinesisSink {
    spool: Arc<LocalLog>,
    state: tokio::sync::watch::Receiver<ShipState>,
    shipped: Arc<AtomicU64>,
    wake: Arc<Notify>,
    shipper: tokio::task::JoinHandle<()>,
}

impl KinesisSink {
    fn start(stream: KinesisStream, spool_dir: &Path) -> Result<Self, FeedbackError> {
        let spool = Arc::new(LocalLog::open(spool_dir)?);
        let mark = ShippedMark(spool_dir.join("SHIPPED"));
        let set_aside = spool_dir.join(SET_ASIDE_FILE);
        let shipped = Arc::new(AtomicU64::new(mark.read()));
        let (state_tx, state) = tokio::sync::watch::channel(ShipState {
            shipped: shipped.load(Ordering::Acquire),
            down: false,
        });
        let wake = Arc::new(Notify::new());
        let shipper = Shipper {
            client: stream.client,
            stream: stream.name,
            spool: spool.clone(),
            shipped: shipped.clone(),
            wake: wake.clone(),
            mark,
            set_aside,
            state: state_tx,
        };
        let shipper = tokio::spawn(shipper.run());
        Ok(KinesisSink {
            spool,
            state,
            shipped,
            wake,
            shipper,
        })
    }

    /// Events acknowledged but not yet accepted by Kinesis.
    pub fn unshipped(&self) -> u64 {
        self.spool
            .end()
            .saturating_sub(self.shipped.load(Ordering::Acquire))
    }
}

impl Drop for KinesisSink {
    fn drop(&mut self) {
        // Whatever is not shipped stays in the spool for the next start.
        self.shipper.abort();
    }
}

#[async_trait]
impl FeedbackSink for KinesisSink {
    /// The delivery resolves once Kinesis has the record, or, while the stream is failing,
    /// once the spool has it durably.
    fn send(&self, event: FeedbackEvent) -> Delivery {
        let numbered = self.spool.send_numbered(event);
        metrics::counter!("encore_feedback_spooled_total").increment(1);
        self.wake.notify_one();
        let mut state = self.state.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let outcome = match numbered.await {
                Err(_) => Err(FeedbackError::Closed),
                Ok(Err(e)) => Err(e),
                Ok(Ok(number)) => {
                    // A shipper that has stopped leaves the record durable in the spool.
                    let _ = state.wait_for(|s| s.shipped > number || s.down).await;
                    Ok(())
                }
            };
            let _ = tx.send(outcome);
        });
        Delivery::from(rx)
    }

    /// Waits until the spool is durable and, for up to 10 s, until it has drained to the
    /// stream; what is left then ships on the next start (and is reported).
    async fn flush(&self) -> Result<(), FeedbackError> {
        self.spool.flush().await?;
        let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
        while self.unshipped() > 0 && tokio::time::Instant::now() < deadline {
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match self.unshipped() {
            0 => Ok(()),
            left => {
                tracing::warn!(
                    left,
                    "feedback: the stream did not take everything; the rest ships on the next start"
                );
                Ok(())
            }
        }
    }
}

/// The number of the first spooled record not yet accepted by Kinesis, kept in a file.
#[derive(Clone)]
struct ShippedMark(PathBuf);

impl ShippedMark {
    fn read(&self) -> u64 {
        std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn write(&self, next: u64) -> std::io::Result<()> {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, next.to_string())?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &self.0)
    }
}

struct Shipper {
    client: Client,
    stream: String,
    spool: Arc<LocalLog>,
    shipped: Arc<AtomicU64>,
    wake: Arc<Notify>,
    mark: ShippedMark,
    /// Where records Kinesis refuses as invalid are set aside (JSON lines).
    set_aside: PathBuf,
    state: tokio::sync::watch::Sender<ShipState>,
}

impl Shipper {
    async fn run(self) {
        loop {
            let from = self.shipped.load(Ordering::Acquire);
            metrics::gauge!("encore_feedback_spool_depth")
                .set(self.spool.end().saturating_sub(from) as f64);
            if self.spool.end() <= from {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                continue;
            }
            if ((self.spool.end() - from) as usize) < MAX_BATCH_RECORDS {
                tokio::time::sleep(LINGER).await;
            }
            let next = match self.ship_batch(from).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %crate::error::Chain(&e), "feedback: cannot read the spool");
                    tokio::time::sleep(RETRY_CAP).await;
                    continue;
                }
            };
            // The mark's fsync and the segment removal are blocking file work: off the
            // async workers.
            let (mark, spool) = (self.mark.clone(), self.spool.clone());
            let done = tokio::task::spawn_blocking(move || {
                (mark.write(next), spool.trim(next, Duration::ZERO))
            });
            match done.await {
                Ok((written, discarded)) => {
                    if let Err(e) = written {
                        tracing::error!(error = %crate::error::Chain(&e), "feedback: cannot record the shipped position");
                    }
                    if let Err(e) = discarded {
                        tracing::warn!(error = %crate::error::Chain(&e), "feedback: cannot remove shipped spool segments");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %crate::error::Chain(&e), "feedback: the spool bookkeeping task failed")
                }
            }
            self.shipped.store(next, Ordering::Release);
            self.state.send_modify(|s| s.shipped = next);
        }
    }

    /// Sends one batch from `from` until Kinesis has accepted all of it; returns the next
    /// record to ship.
    async fn ship_batch(&self, from: u64) -> Result<u64, FeedbackError> {
        let spool = self.spool.clone();
        let records = tokio::task::spawn_blocking(move || spool.read(from, MAX_BATCH_RECORDS))
            .await
            .map_err(|e| FeedbackError::Io(crate::error::cause(e)))??;
        let batch = select_batch(from, records)?;
        let next = batch.next;
        let entries: Vec<PutRecordsRequestEntry> = batch
            .records
            .into_iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(data))
                    .partition_key(key)
                    .build()
                    .map_err(build_error)
            })
            .collect::<Result<_, _>>()?;
        // Kinesis refuses a whole call for one invalid record: such a call is split in
        // halves until the record is alone, and that one is set aside. Halves go in order,
        // so one listener's records keep theirs.
        let mut chunks = vec![entries];
        while let Some(chunk) = chunks.pop() {
            if let Err(chunk) = self.ship_chunk(chunk).await {
                match chunk.len() {
                    0 => {}
                    1 => self.put_aside(&chunk[0]).await,
                    n => {
                        let mut first = chunk;
                        let second = first.split_off(n / 2);
                        chunks.push(second);
                        chunks.push(first);
                    }
                }
            }
        }
        Ok(next)
    }

    /// Appends `entry` to the set-aside file (it is then as good as shipped), counting it.
    async fn put_aside(&self, entry: &PutRecordsRequestEntry) {
        let line = serde_json::json!({
            "partition_key": entry.partition_key(),
            "record": String::from_utf8_lossy(entry.data().as_ref()),
            "reason": "Kinesis refused it as invalid",
            "at": time::OffsetDateTime::now_utc().unix_timestamp(),
        });
        let path = self.set_aside.clone();
        let written = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(file, "{line}")?;
            file.sync_all()
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|written| written);
        match written {
            Ok(()) => {
                metrics::counter!("encore_feedback_set_aside_total").increment(1);
                tracing::error!(
                    file = %self.set_aside.display(),
                    "feedback: Kinesis refused a record as invalid; it is set aside and the rest ship"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "feedback: cannot set aside a record Kinesis refused; dropping it")
            }
        }
    }

    /// Sends `pending` until Kinesis has accepted all of it, retrying refused records and
    /// outages; gives the whole chunk back when Kinesis refuses the call as invalid.
    async fn ship_chunk(
        &self,
        mut pending: Vec<PutRecordsRequestEntry>,
    ) -> Result<(), Vec<PutRecordsRequestEntry>> {
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let sent = pending.len();
            match self
                .client
                .put_records()
                .stream_name(&self.stream)
                .set_records(Some(pending.clone()))
                .send()
                .await
            {
                Ok(out) => {
                    let outcomes = out.records().iter().map(|r| r.error_code().is_none());
                    let refused = refused_records(outcomes, std::mem::take(&mut pending));
                    metrics::counter!("encore_feedback_delivered_total")
                        .increment((sent - refused.len()) as u64);
                    if !refused.is_empty() {
                        metrics::counter!("encore_feedback_refused_total")
                            .increment(refused.len() as u64);
                        tracing::info!(
                            refused = refused.len(),
                            of = sent,
                            "feedback: Kinesis refused some records, retrying them"
                        );
                    }
                    pending = refused;
                }
                Err(e)
                    if e.as_service_error().is_some_and(|s| {
                        matches!(
                            s.code(),
                            Some("InvalidArgumentException" | "ValidationException")
                        )
                    }) =>
                {
                    tracing::warn!(error = %DisplayErrorContext(&e), records = sent, "feedback: Kinesis refused the call as invalid; splitting it");
                    return Err(pending);
                }
                Err(e) => {
                    tracing::warn!(error = %DisplayErrorContext(&e), records = sent, "feedback: stream unreachable, records stay in the spool");
                }
            }
            if !pending.is_empty() {
                // Acknowledgements stop waiting for the stream while it fails.
                self.state
                    .send_if_modified(|s| !std::mem::replace(&mut s.down, true));
                attempt += 1;
                let ceiling =
                    (RETRY_FIRST * 2u32.saturating_pow(attempt.min(10) - 1)).min(RETRY_CAP);
                tokio::time::sleep(ceiling.mul_f64(0.5 + rand::random::<f64>() / 2.0)).await;
            }
        }
        self.state
            .send_if_modified(|s| std::mem::replace(&mut s.down, false));
        Ok(())
    }
}

/// One PutRecords call's worth of spooled records: (partition key, data) in spool order, and
/// the spool position after the last record taken.
#[derive(Debug, PartialEq)]
struct Batch {
    records: Vec<(String, Vec<u8>)>,
    next: u64,
}

/// Takes records from the front of `records` (read from spool position `from`) while the
/// batch stays within Kinesis's limits: at most `MAX_BATCH_RECORDS`, and at most
/// `MAX_BATCH_BYTES` of data and partition keys (one oversized record still goes alone).
/// A record the spool cannot decode is skipped (and logged), never shipped.
fn select_batch(from: u64, records: Vec<super::Record>) -> Result<Batch, FeedbackError> {
    let mut next = from;
    let mut bytes = 0;
    let mut taken = Vec::with_capacity(records.len().min(MAX_BATCH_RECORDS));
    for record in records {
        if taken.len() == MAX_BATCH_RECORDS {
            break;
        }
        let Ok(event) = record.event else {
            tracing::warn!(
                offset = record.offset,
                "feedback: unreadable spool record skipped"
            );
            next = record.offset + 1;
            continue;
        };
        let data = serde_json::to_vec(&event)
            .map_err(|e| FeedbackError::Encode(crate::error::cause(e)))?;
        let size = data.len() + event.user_id.len();
        if !taken.is_empty() && bytes + size > MAX_BATCH_BYTES {
            break;
        }
        bytes += size;
        taken.push((partition_key(&event.user_id), data));
        next = record.offset + 1;
    }
    Ok(Batch {
        records: taken,
        next,
    })
}

/// The partition key of a listener's events: the user id, or, when it is not 1 to 256
/// characters (Kinesis's limits), `xxh3:` and its 128-bit hash, so one listener's events
/// still share a key and a shard.
pub fn partition_key(user_id: &str) -> String {
    let chars = user_id.chars().count();
    if (1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
        return user_id.to_owned();
    }
    format!(
        "xxh3:{:032x}",
        xxhash_rust::xxh3::xxh3_128(user_id.as_bytes())
    )
}

/// The entries Kinesis did not accept, in request order. `accepted` is the per-record
/// outcome of a PutRecords call (results come in request order); an entry with no outcome
/// counts as refused, so a short answer can never drop a record.
fn refused_records<T>(accepted: impl IntoIterator<Item = bool>, entries: Vec<T>) -> Vec<T> {
    let mut accepted = accepted.into_iter();
    entries
        .into_iter()
        .filter(|_| !accepted.next().unwrap_or(false))
        .collect()
}

/// Reads every shard of a stream and folds its events into profiles exactly once.
pub struct KinesisConsumer {
    client: Client,
    stream: String,
    store: Arc<dyn ProfileStore>,
    catalog: Arc<dyn TrackLookup>,
    /// Where folded events are archived before the checkpoint passes them.
    archive: Option<Arc<super::Archive>>,
}

impl KinesisConsumer {
    /// Reads every shard whose parents are done to its current end, folding each event in and
    /// checkpointing per batch. Returns what it did.
    pub async fn pass(&self) -> Result<Progress, FeedbackError> {
        let shards = list_shards(&self.client, &self.stream).await?;
        let known: HashMap<&str, &Shard> = shards.iter().map(|s| (s.shard_id(), s)).collect();
        let mut checkpoints: HashMap<String, Option<String>> = HashMap::new();
        for shard in &shards {
            let cp = self
                .store
                .checkpoint(&self.stream, shard.shard_id())
                .await
                .map_err(FeedbackError::Store)?;
            checkpoints.insert(shard.shard_id().to_owned(), cp);
        }
        let mut progress = Progress::default();
        // Parents first: a child shard is read once its parents are read to their end (or
        // have expired from the stream).
        let mut done: Vec<String> = Vec::new();
        let mut failed: Option<FeedbackError> = None;
        for _round in 0..=shards.len() {
            let mut advanced = false;
            for shard in &shards {
                let id = shard.shard_id().to_owned();
                if done.contains(&id) {
                    continue;
                }
                let parents_done = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .all(|p| {
                        !known.contains_key(p)
                            || checkpoints
                                .get(p)
                                .is_some_and(|c| c.as_deref() == Some(SHARD_END))
                    });
                if !parents_done {
                    continue;
                }
                let closed = shard
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .is_some();
                let checkpoint = checkpoints.get(&id).cloned().flatten();
                // A shard that cannot go on now (the store is down) does not hold up the
                // others: its error is reported once every shard has had its turn.
                match self
                    .read_shard(&id, closed, checkpoint, &mut progress)
                    .await
                {
                    Ok(true) => {
                        checkpoints.insert(id.clone(), Some(SHARD_END.to_owned()));
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(shard = id, error = %crate::error::Chain(&e), "feedback: shard stopped for this pass; the others go on");
                        failed.get_or_insert(e);
                    }
                }
                done.push(id);
                advanced = true;
            }
            if !advanced {
                break;
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(progress),
        }
    }

    /// Reads one shard from its checkpoint to its current end; returns whether the shard is
    /// closed (after a reshard) and read to its end: no next iterator, or no more records in
    /// a shard that has an ending sequence number.
    async fn read_shard(
        &self,
        shard: &str,
        closed: bool,
        checkpoint: Option<String>,
        progress: &mut Progress,
    ) -> Result<bool, FeedbackError> {
        if checkpoint.as_deref() == Some(SHARD_END) {
            return Ok(true);
        }
        let mut iterator =
            shard_iterator(&self.client, &self.stream, shard, checkpoint.as_deref()).await?;
        let mut page = super::consumer::Page::new(self.archive.clone());
        while let Some(it) = iterator {
            let out = self
                .client
                .get_records()
                .shard_iterator(&it)
                .limit(1000)
                .send()
                .await
                .map_err(stream_error)?;
            let records = out.records();
            let mut last: Option<String> = None;
            for record in records {
                match serde_json::from_slice::<FeedbackEvent>(record.data().as_ref()) {
                    Err(e) => {
                        metrics::counter!("encore_consumer_events_total", "outcome" => "malformed")
                            .increment(1);
                        progress.malformed += 1;
                        let letter = DeadLetter::new(
                            letter_id(&self.stream, shard, record.sequence_number()),
                            record.data().as_ref(),
                            format!("malformed: {}", crate::error::Chain(&e)),
                        );
                        let kept = super::consumer::set_aside(&self.store, letter, progress).await;
                        if let Err(e) = kept {
                            if let Some(seq) = &last {
                                let _ = self.mark(shard, seq, &mut page).await;
                            }
                            return Err(FeedbackError::Store(e));
                        }
                    }
                    Ok(event) => {
                        let id = letter_id(&self.stream, shard, record.sequence_number());
                        let applied = page
                            .fold_in(&self.store, &self.catalog, event, id, progress)
                            .await;
                        if let Err(e) = applied {
                            // Keep what this page did: without it, a store that fails now and
                            // then would have a large page read again from its start each
                            // time, and a backlog might never be worked off.
                            if let Some(seq) = &last {
                                let _ = self.mark(shard, seq, &mut page).await;
                            }
                            return Err(FeedbackError::Store(e));
                        }
                    }
                }
                last = Some(record.sequence_number().to_owned());
            }
            if let Some(seq) = &last {
                self.mark(shard, seq, &mut page).await?;
            }
            iterator = out.next_shard_iterator().map(str::to_owned);
            if iterator.is_none() || (closed && records.is_empty()) {
                self.store
                    .put_checkpoint(&self.stream, shard, SHARD_END)
                    .await
                    .map_err(FeedbackError::Store)?;
                return Ok(true);
            }
            metrics::gauge!("encore_consumer_millis_behind_latest", "shard" => shard.to_owned())
                .set(out.millis_behind_latest().unwrap_or(0) as f64);
            if records.is_empty() && out.millis_behind_latest().unwrap_or(0) == 0 {
                return Ok(false);
            }
        }
        Ok(false)
    }
}

impl KinesisConsumer {
    /// Archives what `page` holds, then checkpoints `shard` at `seq`.
    async fn mark(
        &self,
        shard: &str,
        seq: &str,
        page: &mut super::consumer::Page,
    ) -> Result<(), FeedbackError> {
        page.archive().await?;
        self.store
            .put_checkpoint(&self.stream, shard, seq)
            .await
            .map_err(FeedbackError::Store)
    }

    /// Archives every page of events it folds before checkpointing past it.
    pub fn with_archive(mut self, archive: Arc<super::Archive>) -> Self {
        self.archive = Some(archive);
        self
    }
}

/// The dead-letter id of record `sequence` of `shard`.
fn letter_id(stream: &str, shard: &str, sequence: &str) -> String {
    format!("{stream}/{shard}/{sequence}")
}

/// An iterator over `shard` after sequence number `after`, or from its oldest record.
async fn shard_iterator(
    client: &Client,
    stream: &str,
    shard: &str,
    after: Option<&str>,
) -> Result<Option<String>, FeedbackError> {
    let call = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard);
    let call = match after {
        Some(seq) => call
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(seq),
        None => call.shard_iterator_type(ShardIteratorType::TrimHorizon),
    };
    let out = call.send().await.map_err(stream_error)?;
    Ok(out.shard_iterator().map(str::to_owned))
}

/// Every shard of `stream`, open or closed.
async fn list_shards(client: &Client, stream: &str) -> Result<Vec<Shard>, FeedbackError> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut call = client.list_shards();
        call = match &token {
            Some(t) => call.next_token(t),
            None => call.stream_name(stream),
        };
        let out = call.send().await.map_err(stream_error)?;
        shards.extend(out.shards().iter().cloned());
        match out.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return Ok(shards),
        }
    }
}

async fn scan_stream(
    client: &Client,
    stream: &str,
    mut each: impl FnMut(FeedbackEvent),
) -> Result<u64, FeedbackError> {
    let mut malformed = 0;
    for shard in list_shards(client, stream).await? {
        let mut iterator = shard_iterator(client, stream, shard.shard_id(), None).await?;
        while let Some(it) = iterator {
            let out = client
                .get_records()
                .shard_iterator(&it)
                .limit(10_000)
                .send()
                .await
                .map_err(stream_error)?;
            for record in out.records() {
                match serde_json::from_slice::<FeedbackEvent>(record.data().as_ref()) {
                    Ok(event) => each(event),
                    Err(_) => malformed += 1,
                }
            }
            let caught_up = out.millis_behind_latest().unwrap_or(0) == 0;
            iterator = match out.records().is_empty() && caught_up {
                true => None,
                false => out.next_shard_iterator().map(str::to_owned),
            };
        }
    }
    Ok(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TrackId;
    use crate::feedback::{EventContext, EventKind, Record, Source};

    fn event(user: &str, genre_bytes: usize) -> FeedbackEvent {
        let mut e = FeedbackEvent::new(
            user,
            "d",
            &TrackId("t".into()),
            EventKind::PlayFinished,
            1,
            EventContext::default(),
            Source::Alexa,
        );
        e.context.genre = Some("g".repeat(genre_bytes));
        e
    }

    fn records(events: Vec<FeedbackEvent>) -> Vec<Record> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, e)| Record {
                offset: 10 + i as u64,
                event: Ok(e),
            })
            .collect()
    }

    #[test]
    fn a_batch_stops_at_the_record_limit() {
        let all = records((0..MAX_BATCH_RECORDS + 7).map(|_| event("u", 0)).collect());
        let batch = select_batch(10, all).unwrap();
        assert_eq!(batch.records.len(), MAX_BATCH_RECORDS);
        assert_eq!(batch.next, 10 + MAX_BATCH_RECORDS as u64);
    }

    #[test]
    fn a_batch_stops_before_the_byte_limit_but_an_oversized_record_goes_alone() {
        let big = MAX_BATCH_BYTES / 2;
        let batch = select_batch(
            10,
            records(vec![event("u", big), event("u", big), event("u", 1)]),
        )
        .unwrap();
        assert_eq!(
            batch.records.len(),
            1,
            "two halves and a key exceed the limit"
        );
        assert_eq!(batch.next, 11);
        let alone = select_batch(10, records(vec![event("u", MAX_BATCH_BYTES)])).unwrap();
        assert_eq!((alone.records.len(), alone.next), (1, 11));
    }

    #[test]
    fn an_unreadable_record_is_skipped_and_the_position_moves_past_it() {
        let mut rs = records(vec![event("a", 0), event("b", 0)]);
        rs.insert(
            1,
            Record {
                offset: 99,
                event: Err("torn".into()),
            },
        );
        rs[2].offset = 100;
        let batch = select_batch(10, rs).unwrap();
        let keys: Vec<&str> = batch.records.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(batch.next, 101);
    }

    #[test]
    fn an_empty_spool_read_keeps_the_position() {
        assert_eq!(
            select_batch(42, Vec::new()).unwrap(),
            Batch {
                records: Vec::new(),
                next: 42
            }
        );
    }

    #[test]
    fn only_refused_records_are_kept_for_the_retry() {
        let left = refused_records([true, false, true, false], vec!["a", "b", "c", "d"]);
        assert_eq!(left, ["b", "d"]);
        assert!(refused_records([true, true], vec!["a", "b"]).is_empty());
    }

    #[test]
    fn records_missing_from_a_short_answer_count_as_refused() {
        assert_eq!(refused_records([true], vec!["a", "b", "c"]), ["b", "c"]);
    }
}
