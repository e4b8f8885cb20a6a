//! Feedback events: every play, skip, finish, stop, like, dislike and playback failure.
//! `FeedbackSink` is what the service hands events to; it never blocks or fails the
//! listener's request. `LocalLog` is the embedded default's sink.

mod consumer;
mod event;
mod fold;
mod kinesis;
mod log;
mod quality;

pub use consumer::{Consumer, LOCAL_SHARD, LOCAL_STREAM, LocalConsumer, Progress};
pub use event::{EventContext, EventKind, FeedbackEvent, SCHEMA_VERSION, SKIP_THRESHOLD_MS};
pub use fold::fold;
pub use kinesis::{
    KinesisConsumer, KinesisSink, KinesisStream, MAX_BATCH_BYTES, MAX_BATCH_RECORDS,
};
pub use log::{LocalLog, Record};
pub use quality::{KEPT_MINUTES, ObservedSink, Quality, QualitySettings, Tally, VariantQuality};

pub use crate::domain::Source;

use async_trait::async_trait;
use tokio::sync::oneshot;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedbackError {
    #[error("feedback sink is closed")]
    Closed,
    #[error("event could not be encoded: {0}")]
    Encode(String),
    #[error("feedback storage failed: {0}")]
    Io(String),
    #[error("feedback log is damaged: {0}")]
    Corrupt(String),
}

/// Resolves once the event is durable (the sink acknowledged it). The request paths wait on
/// it before they answer (the voice path within its store budget).
pub struct Delivery(oneshot::Receiver<Result<(), FeedbackError>>);

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
