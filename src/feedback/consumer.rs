//! The consumer: reads feedback events from the local log and folds each into its listener's
//! profile exactly once (the store applies an event and records its id in one transaction),
//! checkpointing its position in the store.
//!
//! No record stops the pipeline. One the store refuses (`StoreError::Refused`, `Corrupt`, a
//! conflict that does not clear) is tried `POISON_ATTEMPTS` times, then set aside as a dead
//! letter in the store, and the records after it go on; so is one that cannot be decoded.
//! A store that is down, slow or throttling is not the record's fault: the pass stops before
//! the record and the next pass tries it again, for as long as the outage lasts.

use super::{Archive, FeedbackError, LocalLog, fold};
use crate::domain::TrackLookup;
use crate::store::{Applied, DeadLetter, ProfileStore, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The checkpoint's stream and shard names for the local log (it has one shard).
pub const LOCAL_STREAM: &str = "local-log";
pub const LOCAL_SHARD: &str = "0";
/// Records read per batch.
const BATCH: usize = 500;
/// How often an idle consumer looks for new records (`Consumer::run`'s usual `idle`).
pub const POLL: Duration = Duration::from_millis(50);
/// How often progress is logged.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// How many times a record the store refuses is tried before it is set aside.
pub const POISON_ATTEMPTS: u32 = 3;
/// The pause between those tries.
const POISON_RETRY: Duration = Duration::from_millis(50);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub applied: u64,
    pub duplicates: u64,
    pub malformed: u64,
    /// Records set aside as dead letters (malformed ones included).
    pub set_aside: u64,
    /// Events of listeners erased after they happened, left out.
    pub erased: u64,
}

pub struct LocalConsumer {
    log: Arc<LocalLog>,
    store: Arc<dyn ProfileStore>,
    catalog: Arc<dyn TrackLookup>,
    batch: usize,
    /// The checkpoint's stream name: `LOCAL_STREAM`, or one of this log's own when several
    /// logs fold into one shared store (`of_shared_store`).
    stream: String,
    /// How long folded segments are kept (`LocalLog::trim`); none: for ever.
    retention: Option<Duration>,
    /// Where folded events are archived before the checkpoint passes them.
    archive: Option<Arc<Archive>>,
}

impl LocalConsumer {
    pub fn new(
        log: Arc<LocalLog>,
        store: Arc<dyn ProfileStore>,
        catalog: Arc<dyn TrackLookup>,
    ) -> Self {
        LocalConsumer {
            log,
            store,
            catalog,
            batch: BATCH,
            stream: LOCAL_STREAM.to_owned(),
            retention: None,
            archive: None,
        }
    }

    /// Archives every page of events it folds before checkpointing past it.
    pub fn with_archive(mut self, archive: Arc<Archive>) -> Self {
        self.archive = Some(archive);
        self
    }

    /// Deletes the log's segments once they are folded and older than `retention`.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// For a store that other instances' logs fold into too (DynamoDB with
    /// `--feedback local`): the checkpoint is this log's own (`local-log:<log id>`), so one
    /// instance's position never skips or repeats another's records. A log that has none
    /// yet starts from the shared `LOCAL_STREAM` checkpoint it used before.
    pub fn of_shared_store(mut self) -> Self {
        self.stream = format!("{LOCAL_STREAM}:{}", self.log.id());
        self
    }

    /// Reads at most `batch` records per pass (small batches exercise restarts in tests).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Trims the log up to `folded` (a record the checkpoint has passed); a failure is logged
    /// and tried again after the next pass.
    fn trim(&self, folded: u64) {
        let Some(retention) = self.retention else {
            return;
        };
        match self.log.trim(folded, retention) {
            Ok((0, _)) => {}
            Ok((segments, bytes)) => {
                metrics::counter!("encore_feedback_log_trimmed_segments_total")
                    .increment(segments as u64);
                tracing::info!(
                    segments,
                    bytes,
                    "feedback log: deleted segments folded in and past retention"
                );
            }
            Err(e) => {
                tracing::warn!(error = %crate::error::Chain(&e), "feedback log: trimming failed")
            }
        }
    }

    /// The next record to read, from the checkpoint.
    pub async fn position(&self) -> Result<u64, StoreError> {
        let mut checkpoint = self.store.checkpoint(&self.stream, LOCAL_SHARD).await?;
        if checkpoint.is_none() && self.stream != LOCAL_STREAM {
            checkpoint = self.store.checkpoint(LOCAL_STREAM, LOCAL_SHARD).await?;
        }
        Ok(checkpoint.and_then(|c| c.parse().ok()).unwrap_or(0))
    }

    /// Folds one batch of the records past the checkpoint, then moves the checkpoint. A store
    /// failure stops the pass before the failed record, so it is tried again.
    pub async fn pass(&self) -> Result<Progress, StoreError> {
        let from = self.position().await?;
        let records = self
            .log
            .read(from, self.batch)
            .map_err(|e| StoreError::Unavailable(crate::error::cause(e)))?;
        let mut progress = Progress::default();
        let mut next = from;
        let mut page = Page::new(self.archive.clone());
        for record in records {
            match record.event {
                Err(reason) => {
                    metrics::counter!("encore_consumer_events_total", "outcome" => "malformed")
                        .increment(1);
                    progress.malformed += 1;
                    let letter = DeadLetter::new(
                        self.letter_id(record.offset),
                        &[],
                        format!("malformed: {reason}"),
                    );
                    if let Err(e) = set_aside(&self.store, letter, &mut progress).await {
                        if next != from {
                            self.checkpoint(next, &mut page).await?;
                        }
                        return Err(e);
                    }
                }
                Ok(event) => {
                    let id = self.letter_id(record.offset);
                    let folded = page
                        .fold_in(&self.store, &self.catalog, event, id, &mut progress)
                        .await;
                    if let Err(e) = folded {
                        if next != from {
                            self.checkpoint(next, &mut page).await?;
                        }
                        return Err(e);
                    }
                }
            }
            next = record.offset + 1;
        }
        if next != from {
            self.checkpoint(next, &mut page).await?;
            self.trim(next);
        }
        metrics::gauge!("encore_consumer_lag_records")
            .set(self.log.end().saturating_sub(next) as f64);
        Ok(progress)
    }

    /// The dead-letter id of the record at `offset`.
    fn letter_id(&self, offset: u64) -> String {
        format!("{}/{LOCAL_SHARD}/{offset:020}", self.stream)
    }

    /// Archives `page`, then moves the checkpoint to `next`.
    async fn checkpoint(&self, next: u64, page: &mut Page) -> Result<(), StoreError> {
        page.archive()
            .await
            .map_err(|e| StoreError::Unavailable(crate::error::cause(e)))?;
        self.store
            .put_checkpoint(&self.stream, LOCAL_SHARD, &next.to_string())
            .await
    }
}

/// The events of one page folded since the last checkpoint, kept for the archive (when
/// there is one) until the checkpoint passes them.
pub(super) struct Page {
    archive: Option<Arc<Archive>>,
    events: Vec<super::FeedbackEvent>,
}

impl Page {
    pub(super) fn new(archive: Option<Arc<Archive>>) -> Self {
        Page {
            archive,
            events: Vec::new(),
        }
    }

    /// `fold_in`, keeping the event for the archive unless its listener was erased after
    /// it happened (erasure wins there too).
    pub(super) async fn fold_in(
        &mut self,
        store: &Arc<dyn ProfileStore>,
        catalog: &Arc<dyn TrackLookup>,
        event: super::FeedbackEvent,
        letter_id: String,
        progress: &mut Progress,
    ) -> Result<(), StoreError> {
        let kept = self.archive.is_some().then(|| event.clone());
        let erased = progress.erased;
        fold_in(store, catalog, event, letter_id, progress).await?;
        if let Some(event) = kept
            && progress.erased == erased
        {
            self.events.push(event);
        }
        Ok(())
    }

    /// Writes what the page holds to the archive, and empties it.
    pub(super) async fn archive(&mut self) -> Result<(), FeedbackError> {
        let Some(archive) = &self.archive else {
            return Ok(());
        };
        if let Err(e) = archive.write(&self.events).await {
            tracing::warn!(error = %crate::error::Chain(&e), to = archive.describe(), "feedback archive: writing a page failed; the checkpoint stays and the page is read again");
            return Err(e);
        }
        self.events.clear();
        Ok(())
    }
}

/// Folds `event` in, or sets it aside as dead letter `letter_id` once the store has refused
/// it `POISON_ATTEMPTS` times. Fails only when the store is unavailable (the caller stops
/// before the record and tries it again later).
pub(super) async fn fold_in(
    store: &Arc<dyn ProfileStore>,
    catalog: &Arc<dyn TrackLookup>,
    event: super::FeedbackEvent,
    letter_id: String,
    progress: &mut Progress,
) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match apply(store, catalog, event.clone(), progress).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => e,
        };
        if attempt < POISON_ATTEMPTS {
            tokio::time::sleep(POISON_RETRY * attempt).await;
            continue;
        }
        let record = serde_json::to_vec(&event).unwrap_or_default();
        let reason = format!(
            "the store refused it {attempt} times: {}",
            crate::error::Chain(&error)
        );
        return set_aside(store, DeadLetter::new(letter_id, &record, reason), progress).await;
    }
}

/// What replaying a dead letter did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Folded in now, or found applied before: the letter is removed.
    Applied,
    /// Still cannot be applied: the letter stays, with this reason.
    Kept(String),
}

/// Tries dead letter `letter` once more: folded in (exactly once, as ever), it is removed;
/// still refused or unreadable, it stays with the new reason. Fails only when the store is
/// unavailable.
pub async fn replay(
    store: &Arc<dyn ProfileStore>,
    catalog: &Arc<dyn TrackLookup>,
    letter: &DeadLetter,
) -> Result<Replayed, StoreError> {
    let event = match letter.record.as_deref().map(serde_json::from_str) {
        Some(Ok(event)) => event,
        Some(Err(e)) => return Ok(Replayed::Kept(format!("not an event: {e}"))),
        None => return Ok(Replayed::Kept(letter.reason.clone())),
    };
    match apply(store, catalog, event, &mut Progress::default()).await {
        Ok(()) => {
            store.delete_dead_letter(&letter.id).await?;
            Ok(Replayed::Applied)
        }
        Err(e) if e.is_transient() => Err(e),
        Err(e) => {
            let reason = format!("replay refused: {}", crate::error::Chain(&e));
            let kept = DeadLetter {
                reason: reason.clone(),
                ..letter.clone()
            };
            store.put_dead_letter(&kept).await?;
            Ok(Replayed::Kept(reason))
        }
    }
}

/// Stores `letter`, counting and logging it.
pub(super) async fn set_aside(
    store: &Arc<dyn ProfileStore>,
    letter: DeadLetter,
    progress: &mut Progress,
) -> Result<(), StoreError> {
    store.put_dead_letter(&letter).await?;
    tracing::warn!(
        id = letter.id,
        reason = letter.reason,
        "feedback: record set aside as a dead letter (encore dead-letters list)"
    );
    metrics::counter!("encore_consumer_dead_letters_total").increment(1);
    progress.set_aside += 1;
    Ok(())
}

/// Folds one event into its listener's profile exactly once, counting the outcome.
pub(super) async fn apply(
    store: &Arc<dyn ProfileStore>,
    catalog: &Arc<dyn TrackLookup>,
    event: super::FeedbackEvent,
    progress: &mut Progress,
) -> Result<(), StoreError> {
    let track = catalog.track(&event.track_id);
    let (event_id, user_id) = (event.event_id.clone(), event.user_id.clone());
    let at = event.occurred_at_ms();
    let change = Arc::new(move |p: &mut crate::domain::Profile| fold(p, &event, track.as_deref()));
    let outcome = match store.apply_event(&event_id, &user_id, at, change).await? {
        Applied::Now => {
            progress.applied += 1;
            "applied"
        }
        Applied::Already => {
            progress.duplicates += 1;
            "duplicate"
        }
        Applied::Erased => {
            progress.erased += 1;
            "erased"
        }
    };
    metrics::counter!("encore_consumer_events_total", "outcome" => outcome).increment(1);
    Ok(())
}

/// The consumer of the configured feedback backend.
pub enum Consumer {
    Local(LocalConsumer),
    Kinesis(super::KinesisConsumer),
}

impl Consumer {
    /// Archives every page of events it folds before checkpointing past it.
    pub fn with_archive(self, archive: Arc<Archive>) -> Self {
        match self {
            Consumer::Local(c) => Consumer::Local(c.with_archive(archive)),
            Consumer::Kinesis(c) => Consumer::Kinesis(c.with_archive(archive)),
        }
    }

    /// Folds what is available now (one batch of the local log; every shard of the stream).
    pub async fn pass(&self) -> Result<Progress, FeedbackError> {
        match self {
            Consumer::Local(c) => c.pass().await.map_err(FeedbackError::Store),
            Consumer::Kinesis(c) => c.pass().await,
        }
    }

    /// Passes until `stop` resolves (then one last pass), logging progress every 10 s; a
    /// pass that did not fill a page waits `idle` before the next (`POLL`, or longer so an
    /// archive gets fewer, larger objects from a quiet stream).
    pub async fn run(self, stop: impl std::future::Future<Output = ()>, idle: Duration) {
        tokio::pin!(stop);
        let mut total = Progress::default();
        let mut since_report = Progress::default();
        let mut last_report = Instant::now();
        loop {
            match self.pass().await {
                Ok(p) => {
                    for t in [&mut total, &mut since_report] {
                        t.applied += p.applied;
                        t.duplicates += p.duplicates;
                        t.malformed += p.malformed;
                    }
                    if let Consumer::Local(c) = &self
                        && p.applied + p.duplicates + p.malformed >= c.batch as u64
                    {
                        continue; // more is waiting
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %crate::error::Chain(&e), "feedback consumer: retrying after a failure")
                }
            }
            if last_report.elapsed() >= REPORT_EVERY {
                let secs = last_report.elapsed().as_secs_f64();
                let lag = self.lag().await;
                tracing::info!(
                    events_per_sec = format!("{:.1}", since_report.applied as f64 / secs),
                    applied = total.applied,
                    duplicates = total.duplicates,
                    malformed = total.malformed,
                    lag,
                    "feedback consumer progress"
                );
                since_report = Progress::default();
                last_report = Instant::now();
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(idle) => {}
            }
        }
        if let Err(e) = self.pass().await {
            tracing::warn!(error = %crate::error::Chain(&e), "feedback consumer: last pass failed; the checkpoint keeps its place");
        }
    }

    /// Records not yet folded in (the local log only; the stream's lag is in its metrics).
    async fn lag(&self) -> u64 {
        match self {
            Consumer::Local(c) => match c.position().await {
                Ok(at) => c.log.end().saturating_sub(at),
                Err(_) => 0,
            },
            Consumer::Kinesis(_) => 0,
        }
    }
}
