//! A profile cache in front of any store: a hot listener costs one read per TTL, not one per
//! track. The instance's own writes update the cache; a write that finds the profile changed
//! elsewhere (a conflict) drops the entry, so the retry reads the store.

use super::{Applied, DeadLetter, ProfileChange, ProfileStore, StoreError};
use crate::domain::{Playlist, Profile, Queue, QueueKey};
use async_trait::async_trait;
use moka::future::Cache;
use std::sync::Arc;
use std::time::Duration;

pub struct CachedStore {
    inner: Arc<dyn ProfileStore>,
    /// `None` caches "this listener has no profile yet".
    profiles: Cache<String, Option<Profile>>,
}

impl CachedStore {
    pub fn new(inner: Arc<dyn ProfileStore>, ttl: Duration, capacity: u64) -> Self {
        CachedStore {
            inner,
            profiles: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }
}

#[async_trait]
impl ProfileStore for CachedStore {
    async fn profile(&self, user_id: &str) -> Result<Option<Profile>, StoreError> {
        if let Some(hit) = self.profiles.get(user_id).await {
            return Ok(hit);
        }
        let found = self.inner.profile(user_id).await?;
        self.profiles
            .insert(user_id.to_owned(), found.clone())
            .await;
        Ok(found)
    }

    async fn put_profile(&self, profile: &Profile) -> Result<u64, StoreError> {
        match self.inner.put_profile(profile).await {
            Ok(version) => {
                let stored = Profile {
                    version,
                    ..profile.clone()
                };
                self.profiles
                    .insert(profile.user_id.clone(), Some(stored))
                    .await;
                Ok(version)
            }
            Err(e) => {
                self.profiles.invalidate(&profile.user_id).await;
                Err(e)
            }
        }
    }

    async fn queue(&self, key: &QueueKey) -> Result<Option<Queue>, StoreError> {
        self.inner.queue(key).await
    }

    async fn put_queue(&self, key: &QueueKey, queue: &Queue) -> Result<(), StoreError> {
        self.inner.put_queue(key, queue).await
    }

    async fn delete_queue(&self, key: &QueueKey) -> Result<(), StoreError> {
        self.inner.delete_queue(key).await
    }

    async fn playlist(
        &self,
        user_id: &str,
        playlist_id: &str,
    ) -> Result<Option<Playlist>, StoreError> {
        self.inner.playlist(user_id, playlist_id).await
    }

    async fn playlists(&self, user_id: &str) -> Result<Vec<Playlist>, StoreError> {
        self.inner.playlists(user_id).await
    }

    async fn put_playlist(&self, playlist: &Playlist) -> Result<(), StoreError> {
        self.inner.put_playlist(playlist).await
    }

    async fn erase_user(&self, user_id: &str) -> Result<(), StoreError> {
        let erased = self.inner.erase_user(user_id).await;
        self.profiles.invalidate(user_id).await;
        erased
    }

    async fn put_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.inner.put_dead_letter(letter).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters(limit).await
    }

    async fn delete_dead_letter(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_dead_letter(id).await
    }

    async fn checkpoint(&self, stream: &str, shard: &str) -> Result<Option<String>, StoreError> {
        self.inner.checkpoint(stream, shard).await
    }

    async fn put_checkpoint(
        &self,
        stream: &str,
        shard: &str,
        sequence: &str,
    ) -> Result<(), StoreError> {
        self.inner.put_checkpoint(stream, shard, sequence).await
    }

    async fn apply_event(
        &self,
        event_id: &str,
        user_id: &str,
        occurred_at_ms: i64,
        change: ProfileChange,
    ) -> Result<Applied, StoreError> {
        let applied = self
            .inner
            .apply_event(event_id, user_id, occurred_at_ms, change)
            .await;
        self.profiles.invalidate(user_id).await;
        applied
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}
