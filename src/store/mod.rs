//! Where profiles, playback queues, playlists and stream checkpoints live. `ProfileStore` is
//! the narrow interface the service uses; `embedded` keeps them in a transactional file on
//! this machine, `dynamo` in DynamoDB; `cached` puts a profile cache in front of either.

mod cached;
mod dynamo;
mod embedded;

pub use cached::CachedStore;
pub use dynamo::{DynamoSettings, DynamoStore, QUEUE_TTL, TTL_ATTRIBUTE};
pub use embedded::EmbeddedStore;

use crate::domain::{Playlist, Profile, Queue, QueueKey};
use crate::error::Cause;
use async_trait::async_trait;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Someone else wrote the profile since it was read (optimistic locking).
    #[error("the profile changed since it was read")]
    Conflict,
    #[error("the store did not answer in time")]
    Timeout,
    #[error("the store is throttling requests")]
    Throttled,
    #[error("the store is unavailable")]
    Unavailable(#[source] Cause),
    #[error("a stored item could not be read or written")]
    Corrupt(#[source] Cause),
    /// The store refused this request as invalid (a key or item over its limits): trying it
    /// again cannot help.
    #[error("the store refused the request as invalid")]
    Refused(#[source] Cause),
}

#[async_trait]
pub trait ProfileStore: Send + Sync {
    async fn profile(&self, user_id: &str) -> Result<Option<Profile>, StoreError>;

    /// Stores `profile` if the stored version still equals `profile.version` (0 when there is
    /// none) and returns the new version; otherwise `StoreError::Conflict`.
    async fn put_profile(&self, profile: &Profile) -> Result<u64, StoreError>;

    async fn queue(&self, key: &QueueKey) -> Result<Option<Queue>, StoreError>;

    async fn put_queue(&self, key: &QueueKey, queue: &Queue) -> Result<(), StoreError>;

    async fn delete_queue(&self, key: &QueueKey) -> Result<(), StoreError>;

    async fn playlist(
        &self,
        user_id: &str,
        playlist_id: &str,
    ) -> Result<Option<Playlist>, StoreError>;

    /// The listener's playlists, oldest first.
    async fn playlists(&self, user_id: &str) -> Result<Vec<Playlist>, StoreError>;

    async fn put_playlist(&self, playlist: &Playlist) -> Result<(), StoreError>;
    /// Deletes everything kept for `user_id`: profile, queues, playlists; and keeps an
    /// erasure marker (the user id and the time), first, so that no event that happened
    /// before the erasure is folded back in (`apply_event`) and no write from a read before
    /// it puts the old profile back (`put_profile`).
    async fn erase_user(&self, user_id: &str) -> Result<(), StoreError>;

    /// The last sequence number a consumer finished on `shard` of `stream`.
    async fn checkpoint(&self, stream: &str, shard: &str) -> Result<Option<String>, StoreError>;

    async fn put_checkpoint(
        &self,
        stream: &str,
        shard: &str,
        sequence: &str,
    ) -> Result<(), StoreError>;

    /// Applies `change` to the listener's profile and marks `event_id` applied, in one
    /// transaction; if the event was applied before, changes nothing. This is what makes a
    /// redelivered or duplicated feedback event count once. An event that happened
    /// (`occurred_at_ms`, Unix milliseconds) no later than the listener's erasure changes
    /// nothing either (`Applied::Erased`).
    async fn apply_event(
        &self,
        event_id: &str,
        user_id: &str,
        occurred_at_ms: i64,
        change: ProfileChange,
    ) -> Result<Applied, StoreError>;

    /// Sets a record aside (replacing a letter with the same id).
    async fn put_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError>;

    /// The letters set aside, oldest id first, at most `limit`.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;

    async fn delete_dead_letter(&self, id: &str) -> Result<(), StoreError>;

    /// Makes every acknowledged write durable (called at shutdown).
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl StoreError {
    /// A short, stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Conflict => "conflict",
            StoreError::Timeout => "timeout",
            StoreError::Throttled => "throttled",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Refused(_) => "refused",
        }
    }

    /// Whether the store, not the request, is at fault (an outage, a timeout, throttling):
    /// the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Timeout | StoreError::Throttled | StoreError::Unavailable(_)
        )
    }
}

/// The most of a dead letter's record that is kept (DynamoDB items stop at 400 KB).
pub const DEAD_LETTER_MAX_BYTES: usize = 256 * 1024;

/// A feedback record the consumer could not apply, set aside so that the records after it
/// go on (`encore dead-letters` lists and replays them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// Where it was read, `<stream>/<shard>/<position>`: unique, so setting the same record
    /// aside twice keeps one letter.
    pub id: String,
    /// The record as read (JSON text), when it was readable as text and at most
    /// `DEAD_LETTER_MAX_BYTES`; otherwise only its size and the reason are kept.
    pub record: Option<String>,
    pub bytes: usize,
    pub reason: String,
    /// When it was set aside, Unix seconds.
    pub at: i64,
}

impl DeadLetter {
    pub fn new(id: String, record: &[u8], reason: String) -> Self {
        let text = (record.len() <= DEAD_LETTER_MAX_BYTES)
            .then(|| std::str::from_utf8(record).ok().map(str::to_owned))
            .flatten();
        DeadLetter {
            id,
            record: text,
            bytes: record.len(),
            reason,
            at: time::OffsetDateTime::now_utc().unix_timestamp(),
        }
    }
}

/// A change to a profile; it may run more than once (after a conflict), on a fresh read.
pub type ProfileChange = std::sync::Arc<dyn Fn(&mut Profile) + Send + Sync>;

/// What `apply_event` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event's effect was applied now.
    Now,
    /// The event had been applied before: nothing changed.
    Already,
    /// The listener was erased after the event happened: nothing changed.
    Erased,
}

/// How many times an optimistic profile update is tried before a conflict is given up on.
pub const PROFILE_UPDATE_ATTEMPTS: u32 = 8;
/// The first backoff ceiling after a conflict; it doubles with each attempt, up to
/// `CONFLICT_BACKOFF_CAP`.
const CONFLICT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(4);
const CONFLICT_BACKOFF_CAP: std::time::Duration = std::time::Duration::from_millis(250);

/// Waits before attempt `attempt + 1` after a conflict: exponential backoff with full jitter,
/// so that writers that collided spread apart instead of colliding again in step.
pub(crate) async fn conflict_backoff(attempt: u32) {
    let ceiling = (CONFLICT_BACKOFF * 2u32.pow(attempt - 1)).min(CONFLICT_BACKOFF_CAP);
    tokio::time::sleep(ceiling.mul_f64(rand::random::<f64>())).await;
}

/// Reads the profile (or starts a new one), applies `change` and writes it back, re-reading
/// and re-applying on a conflict a bounded number of times.
pub async fn update_profile(
    store: &dyn ProfileStore,
    user_id: &str,
    mut change: impl FnMut(&mut Profile) + Send,
) -> Result<Profile, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut profile = store
            .profile(user_id)
            .await?
            .unwrap_or_else(|| Profile::new(user_id));
        change(&mut profile);
        match store.put_profile(&profile).await {
            Ok(version) => {
                profile.version = version;
                return Ok(profile);
            }
            Err(StoreError::Conflict) if attempt < PROFILE_UPDATE_ATTEMPTS => {
                tracing::debug!(user_id, attempt, "profile update conflict, retrying");
                conflict_backoff(attempt).await;
            }
            Err(e) => return Err(e),
        }
    }
}
