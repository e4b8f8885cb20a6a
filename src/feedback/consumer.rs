//! The consumer: reads feedback events from the local log and folds each into its listener's
//! profile exactly once (the store applies an event and records its id in one transaction),
//! checkpointing its position in the store.

use super::{FeedbackError, LocalLog, fold};
use crate::domain::TrackLookup;
use crate::store::{Applied, ProfileStore, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The checkpoint's stream and shard names for the local log (it has one shard).
pub const LOCAL_STREAM: &str = "local-log";
pub const LOCAL_SHARD: &str = "0";
/// Records read per batch.
const BATCH: usize = 500;
/// How often an idle consumer looks for new records.
const POLL: Duration = Duration::from_millis(50);
/// How often progress is logged.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub applied: u64,
    pub duplicates: u64,
    pub malformed: u64,
}

pub struct LocalConsumer {
    log: Arc<LocalLog>,
    store: Arc<dyn ProfileStore>,
    catalog: Arc<dyn TrackLookup>,
    batch: usize,
    /// The checkpoint's stream name: `LOCAL_STREAM`, or one of this log's own when several
    /// logs fold into one shared store (`of_shared_store`).
    stream: String,
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
        }
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
        for record in records {
            match record.event {
                Err(reason) => {
                    tracing::warn!(
                        offset = record.offset,
                        reason,
                        "feedback: malformed record skipped"
                    );
                    metrics::counter!("encore_consumer_events_total", "outcome" => "malformed")
                        .increment(1);
                    progress.malformed += 1;
                }
                Ok(event) => {
                    if let Err(e) = apply(&self.store, &self.catalog, event, &mut progress).await {
                        if next != from {
                            self.checkpoint(next).await?;
                        }
                        return Err(e);
                    }
                }
            }
            next = record.offset + 1;
        }
        if next != from {
            self.checkpoint(next).await?;
        }
        metrics::gauge!("encore_consumer_lag_records")
            .set(self.log.end().saturating_sub(next) as f64);
        Ok(progress)
    }

    async fn checkpoint(&self, next: u64) -> Result<(), StoreError> {
        self.store
            .put_checkpoint(&self.stream, LOCAL_SHARD, &next.to_string())
            .await
    }
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
    let change = Arc::new(move |p: &mut crate::domain::Profile| fold(p, &event, track.as_deref()));
    let outcome = match store.apply_event(&event_id, &user_id, change).await? {
        Applied::Now => {
            progress.applied += 1;
            "applied"
        }
        Applied::Already => {
            progress.duplicates += 1;
            "duplicate"
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
    /// Folds what is available now (one batch of the local log; every shard of the stream).
    pub async fn pass(&self) -> Result<Progress, FeedbackError> {
        match self {
            Consumer::Local(c) => c.pass().await.map_err(FeedbackError::Store),
            Consumer::Kinesis(c) => c.pass().await,
        }
    }

    /// Passes until `stop` resolves (then one last pass), logging progress every 10 s.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
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
                _ = tokio::time::sleep(POLL) => {}
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
