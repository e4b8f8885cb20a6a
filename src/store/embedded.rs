//! The embedded default: profiles and queues in one redb file.
//!
//! Commits are made without fsync and a background task makes them durable every
//! `FLUSH_INTERVAL` (and at shutdown or drop), like a database's group commit: a request
//! never waits for the disk, and a crash loses at most the last interval of queue positions
//! and opinions. Feedback events, which must never be lost, do not live here.

use super::{ProfileStore, StoreError};
use crate::domain::{Profile, Queue, QueueKey};
use async_trait::async_trait;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

const PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("profiles");
const QUEUES: TableDefinition<&str, &[u8]> = TableDefinition::new("queues");
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
const LOCK_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    dirty: AtomicBool,
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/encore.redb`. Fails if another process holds it open.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        let path = dir.join("encore.redb");
        let db = create_waiting_for_lock(&path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(unavailable)?;
        txn.open_table(PROFILES).map_err(unavailable)?;
        txn.open_table(QUEUES).map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        let inner = Arc::new(Inner {
            db,
            dirty: AtomicBool::new(false),
        });
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(flush_periodically(Arc::downgrade(&inner)));
        }
        Ok(EmbeddedStore { inner })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || op(&inner))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

/// Opens the file, waiting up to `LOCK_WAIT` for a previous owner that is still closing it
/// (a restart in the same process, or a process that is flushing on its way out).
fn create_waiting_for_lock(path: &Path) -> Result<Database, redb::DatabaseError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match Database::create(path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

async fn flush_periodically(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.dirty.load(Ordering::Acquire) {
            let result = tokio::task::spawn_blocking(move || inner.make_durable()).await;
            if let Ok(Err(e)) = result {
                tracing::warn!(error = %e, "embedded store flush failed");
            }
        }
    }
}

impl Inner {
    fn read(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(table).map_err(unavailable)?;
        Ok(table
            .get(key)
            .map_err(unavailable)?
            .map(|v| v.value().to_vec()))
    }

    /// Runs `op` in a write transaction committed without fsync.
    fn write<T>(
        &self,
        op: impl FnOnce(&redb::WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut txn = self.db.begin_write().map_err(unavailable)?;
        txn.set_durability(Durability::None).map_err(unavailable)?;
        let out = op(&txn)?;
        txn.commit().map_err(unavailable)?;
        self.dirty.store(true, Ordering::Release);
        Ok(out)
    }

    fn make_durable(&self) -> Result<(), StoreError> {
        self.dirty.store(false, Ordering::Release);
        let txn = self.db.begin_write().map_err(unavailable)?;
        txn.commit().map_err(unavailable)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.dirty.load(Ordering::Acquire) {
            if let Err(e) = self.make_durable() {
                tracing::error!(error = %e, "embedded store: final flush failed");
            }
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn queue_key(key: &QueueKey) -> String {
    // The unit separator cannot appear in Alexa ids, so keys cannot collide.
    format!("{}\u{1f}{}", key.user_id, key.device_id)
}

#[async_trait]
impl ProfileStore for EmbeddedStore {
    async fn profile(&self, user_id: &str) -> Result<Option<Profile>, StoreError> {
        let user_id = user_id.to_owned();
        self.blocking(move |s| s.read(PROFILES, &user_id)?.map(|b| decode(&b)).transpose())
            .await
    }

    async fn put_profile(&self, profile: &Profile) -> Result<u64, StoreError> {
        let mut profile = profile.clone();
        self.blocking(move |s| {
            s.write(|txn| {
                let mut table = txn.open_table(PROFILES).map_err(unavailable)?;
                let stored_version =
                    match table.get(profile.user_id.as_str()).map_err(unavailable)? {
                        Some(bytes) => decode::<Profile>(bytes.value())?.version,
                        None => 0,
                    };
                if stored_version != profile.version {
                    return Err(StoreError::Conflict);
                }
                profile.version += 1;
                let bytes = encode(&profile)?;
                table
                    .insert(profile.user_id.as_str(), bytes.as_slice())
                    .map_err(unavailable)?;
                Ok(profile.version)
            })
        })
        .await
    }

    async fn queue(&self, key: &QueueKey) -> Result<Option<Queue>, StoreError> {
        let key = queue_key(key);
        self.blocking(move |s| s.read(QUEUES, &key)?.map(|b| decode(&b)).transpose())
            .await
    }

    async fn put_queue(&self, key: &QueueKey, queue: &Queue) -> Result<(), StoreError> {
        let key = queue_key(key);
        let bytes = encode(queue)?;
        self.blocking(move |s| {
            s.write(|txn| {
                let mut table = txn.open_table(QUEUES).map_err(unavailable)?;
                table
                    .insert(key.as_str(), bytes.as_slice())
                    .map_err(unavailable)?;
                Ok(())
            })
        })
        .await
    }

    async fn delete_queue(&self, key: &QueueKey) -> Result<(), StoreError> {
        let key = queue_key(key);
        self.blocking(move |s| {
            s.write(|txn| {
                let mut table = txn.open_table(QUEUES).map_err(unavailable)?;
                table.remove(key.as_str()).map_err(unavailable)?;
                Ok(())
            })
        })
        .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.blocking(|s| s.make_durable()).await
    }
}
