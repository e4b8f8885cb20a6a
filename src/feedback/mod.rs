//! Feedback events: every play, skip, finish, stop, like, dislike and playback failure.
//! `FeedbackSink` is what the service hands events to; it never blocks or fails the
//! listener's request. `LocalLog` is the embedded default's sink.

mod archive;
mod consumer;
mod event;
mod fold;
mod kinesis;
mod log;
mod quality;

pub use archive::{Archive, ArchiveRead, read_archive, split_since};
pub use consumer::{
    Consumer, LOCAL_SHARD, LOCAL_STREAM, LocalConsumer, POISON_ATTEMPTS, POLL, Progress, Replayed,
    replay,
};
pub use event::{EventContext, EventKind, FeedbackEvent, SCHEMA_VERSION, SKIP_THRESHOLD_MS};
pub use fold::fold;
pub use kinesis::{
    KinesisConsumer, KinesisSink, KinesisStream, MAX_BATCH_BYTES, MAX_BATCH_RECORDS,
    SET_ASIDE_FILE, partition_key,
};
pub use log::{LocalLog, Record};
pub use quality::{
    KEPT_MINUTES, ObservedSink, Quality, QualitySettings, Tally, UNKNOWN as UNKNOWN_ARM,
    VariantQuality,
};

pub use crate::domain::Source;

use crate::error::Cause;
use async_trait::async_trait;
use tokio::sync::oneshot;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedbackError {
    #[error("feedback sink is closed")]
    Closed,
    #[error("an event could not be encoded")]
    Encode(#[source] Cause),
    #[error("feedback storage failed")]
    Io(#[source] Cause),
    /// What is damaged, and where.
    #[error("feedback log is damaged: {0}")]
    Corrupt(String),
    #[error("a Kinesis call failed ({kind})")]
    Stream {
        kind: StreamFault,
        #[source]
        source: Cause,
    },
    #[error("the profile store failed")]
    Store(#[source] crate::store::StoreError),
}

/// How a failed stream call failed, as the DynamoDB adapter sorts its errors: worth retrying
/// soon, throttled (retry after a backoff), or not going to work by retrying (a missing
/// stream, a refused request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFault {
    Transient,
    Throttled,
    Permanent,
}

impl std::fmt::Display for StreamFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StreamFault::Transient => "transient",
            StreamFault::Throttled => "throttled",
            StreamFault::Permanent => "permanent",
        })
    }
}

/// Resolves once the event is durable (the sink acknowledged it). The request paths wait on
/// it before they answer (the voice path within its store budget).
pub struct Delivery(oneshot::Receiver<Result<(), FeedbackError>>);

impl From<oneshot::Receiver<Result<(), FeedbackError>>> for Delivery {
    fn from(rx: oneshot::Receiver<Result<(), FeedbackError>>) -> Self {
        Delivery(rx)
    }
}

impl Delivery {
    pub async fn durable(self) -> Result<(), FeedbackError> {
        self.0.await.map_err(|_| FeedbackError::Closed)?
    }
}

#[async_trait]
pub trait FeedbackSink: Send + Sync {
    /// Hands the event over at once; never blocks and never fails the caller.
    fn send(&self, event: FeedbackEvent) -> Delivery;

    /// Waits until everything handed over so far is durable.
    async fn flush(&self) -> Result<(), FeedbackError>;
}
