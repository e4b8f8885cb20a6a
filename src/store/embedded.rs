//! The embedded default: profiles and queues in one redb file.
//!
//! Reads run in the caller: a read transaction never waits for a writer (redb is MVCC) and is
//! served from redb's page cache. Writes go to one writer thread, which applies whatever has
//! queued up in a single transaction (group commit). Profile writes wait for that commit,
//! since they must learn whether their optimistic lock held. Queue writes do not: they are
//! visible to readers at once through an in-memory overlay of writes not yet committed, and
//! leave it when the writer has committed them, so the voice path never waits on the store's
//! writer. Commits skip fsync; the writer makes them durable at least every `DURABLE_EVERY`,
//! on `flush()` and when the store is dropped, so a crash loses at most the last interval of
//! queue positions and opinions. Feedback events, which must never be lost, do not live here.

use super::{Applied, DeadLetter, ProfileChange, ProfileStore, StoreError};
use crate::domain::{Playlist, Profile, Queue, QueueKey, unix_ms_now};
use crate::error::{cause, message};
use async_trait::async_trait;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("profiles");
const QUEUES: TableDefinition<&str, &[u8]> = TableDefinition::new("queues");
const PLAYLISTS: TableDefinition<&str, &[u8]> = TableDefinition::new("playlists");
const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");
/// Erased listeners: user id -> when, Unix milliseconds (see `ProfileStore::erase_user`).
const ERASURES: TableDefinition<&str, i64> = TableDefinition::new("erasures");
/// Feedback records the consumer set aside, by `DeadLetter::id` (JSON).
const DEAD_LETTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("dead_letters");
/// Feedback event ids already applied (value: when, seconds since the epoch).
const EVENTS: TableDefinition<&str, u64> = TableDefinition::new("applied_events");
/// The longest a committed write stays without fsync.
const DURABLE_EVERY: Duration = Duration::from_millis(200);
/// The most writes one transaction takes.
const MAX_BATCH: usize = 512;
/// How long a batch of queue writes waits for more before it is committed.
const LINGER: Duration = Duration::from_millis(5);
/// How long `open` waits for a previous owner still closing the file.
const LOCK_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writes: mpsc::Sender<Write>,
    unwritten: Arc<Overlay>,
}

enum Write {
    /// Boxed: a profile is far larger than the other writes.
    Profile(Box<Profile>, oneshot::Sender<Result<u64, StoreError>>),
    /// A queue key, its new value (`None` deletes) and its overlay sequence number.
    Queue(String, Option<Arc<[u8]>>, u64),
    /// A feedback event's effect on a profile, applied once per event id.
    /// Event id, user id, when the event happened (Unix ms), the change.
    Apply(
        String,
        String,
        i64,
        ProfileChange,
        oneshot::Sender<Result<Applied, StoreError>>,
    ),
    /// A plain insert whose caller waits for the commit (`None` deletes).
    Put(
        Other,
        String,
        Option<Vec<u8>>,
        oneshot::Sender<Result<(), StoreError>>,
    ),
    Durable(oneshot::Sender<Result<(), StoreError>>),
    /// Deletes a listener's profile, queues and playlists.
    Erase(String, oneshot::Sender<Result<(), StoreError>>),
}

/// The tables written with `Write::Put`.
#[derive(Debug, Clone, Copy)]
enum Other {
    Playlists,
    Checkpoints,
    DeadLetters,
}

/// Queue key -> (sequence number, new value or `None` for a delete).
type InFlight = HashMap<String, (u64, Option<Arc<[u8]>>)>;

/// Queue writes handed to the writer and not yet committed, newest per key.
#[derive(Default)]
struct Overlay {
    next: AtomicU64,
    entries: Mutex<InFlight>,
}

impl Overlay {
    fn entries(&self) -> std::sync::MutexGuard<'_, InFlight> {
        // A panic while holding this lock cannot leave the map half-updated.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn put(&self, key: &str, value: Option<Arc<[u8]>>) -> u64 {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.entries().insert(key.to_owned(), (seq, value));
        seq
    }

    /// `Some(value)` when the key has a write in flight (`Some(None)`: a delete).
    fn get(&self, key: &str) -> Option<Option<Arc<[u8]>>> {
        self.entries().get(key).map(|(_, v)| v.clone())
    }

    /// Forgets the write `seq` of `key` unless a newer one replaced it.
    fn committed(&self, key: &str, seq: u64) {
        let mut entries = self.entries();
        if entries.get(key).is_some_and(|(s, _)| *s == seq) {
            entries.remove(key);
        }
    }
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/encore.redb` and starts its writer thread.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(message(format!("{}: {e}", dir.display()))))?;
        let path = dir.join("encore.redb");
        let db = create_waiting_for_lock(&path)
            .map_err(|e| StoreError::Unavailable(message(format!("{}: {e}", path.display()))))?;
        let txn = db.begin_write().map_err(unavailable)?;
        for table in [PROFILES, QUEUES, PLAYLISTS, CHECKPOINTS, DEAD_LETTERS] {
            txn.open_table(table).map_err(unavailable)?;
        }
        txn.open_table(EVENTS).map_err(unavailable)?;
        txn.open_table(ERASURES).map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        let db = Arc::new(db);
        let unwritten = Arc::new(Overlay::default());
        let (writes, queue) = mpsc::channel();
        let writer = Writer {
            db: db.clone(),
            unwritten: unwritten.clone(),
            dirty_since: None,
        };
        std::thread::Builder::new()
            .name("encore-store-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| {
                StoreError::Unavailable(message(format!("cannot start the writer thread: {e}")))
            })?;
        Ok(EmbeddedStore {
            db,
            writes,
            unwritten,
        })
    }

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

    /// Makes a queue write visible to readers and hands it to the writer.
    fn write_queue(&self, key: String, value: Option<Arc<[u8]>>) -> Result<(), StoreError> {
        let seq = self.unwritten.put(&key, value.clone());
        self.writes
            .send(Write::Queue(key, value, seq))
            .map_err(|_| StoreError::Unavailable(message("the store's writer has stopped")))
    }

    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Write,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(make(tx))
            .map_err(|_| StoreError::Unavailable(message("the store's writer has stopped")))?;
        rx.await
            .map_err(|_| StoreError::Unavailable(message("the store's writer has stopped")))?
    }
}

/// Opens the file, waiting up to `LOCK_WAIT` for a previous owner that is still closing it
/// (a restart in the same process, or a process that is flushing on its way out).
fn create_waiting_for_lock(path: &Path) -> Result<Database, redb::DatabaseError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match Database::create(path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Collects a batch after `first`: whatever is queued, and, while nobody in the batch waits
/// for its commit (queue writes do not), what arrives within `LINGER`, so that under load
/// one commit serves many writes.
fn gather(first: Write, queue: &mpsc::Receiver<Write>) -> Vec<Write> {
    let deadline = Instant::now() + LINGER;
    let mut batch = vec![first];
    batch.extend(queue.try_iter().take(MAX_BATCH - 1));
    while batch.len() < MAX_BATCH && batch.iter().all(|w| matches!(w, Write::Queue(..))) {
        let left = deadline.saturating_duration_since(Instant::now());
        match queue.recv_timeout(left) {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    batch
}

struct Writer {
    db: Arc<Database>,
    unwritten: Arc<Overlay>,
    /// When the oldest commit not yet made durable was made.
    dirty_since: Option<Instant>,
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Write>) {
        loop {
            let wait = match self.dirty_since {
                Some(since) => DURABLE_EVERY.saturating_sub(since.elapsed()),
                None => Duration::from_secs(3600),
            };
            match queue.recv_timeout(wait) {
                Ok(first) => {
                    let batch = gather(first, &queue);
                    self.apply(batch);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if self
                .dirty_since
                .is_some_and(|since| since.elapsed() >= DURABLE_EVERY)
                && let Err(e) = self.make_durable()
            {
                tracing::warn!(error = %crate::error::Chain(&e), "embedded store: making commits durable failed");
            }
        }
        if let Err(e) = self.make_durable() {
            tracing::error!(error = %crate::error::Chain(&e), "embedded store: final flush failed");
        }
    }

    fn make_durable(&mut self) -> Result<(), StoreError> {
        if self.dirty_since.is_none() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        self.dirty_since = None;
        Ok(())
    }

    /// Applies a batch in one transaction; each caller hears its own outcome once it is
    /// committed (or the transaction's error).
    fn apply(&mut self, batch: Vec<Write>) {
        let mut pending = Vec::with_capacity(batch.len());
        let mut durable_waiters = Vec::new();
        let committed = self.commit_batch(batch, &mut pending, &mut durable_waiters);
        if let Err(e) = &committed {
            tracing::error!(error = %crate::error::Chain(e), writes = pending.len(), "embedded store: a write batch failed and is lost");
        }
        for p in pending {
            p.answer(committed.as_ref().err(), &self.unwritten);
        }
        if !durable_waiters.is_empty() {
            let outcome = committed.and_then(|()| self.make_durable());
            for ack in durable_waiters {
                let _ = ack.send(outcome.clone());
            }
        }
    }

    fn commit_batch(
        &mut self,
        batch: Vec<Write>,
        pending: &mut Vec<Pending>,
        durable_waiters: &mut Vec<oneshot::Sender<Result<(), StoreError>>>,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(unavailable)?;
        txn.set_durability(Durability::None).map_err(unavailable)?;
        {
            let mut profiles = txn.open_table(PROFILES).map_err(unavailable)?;
            let mut queues = txn.open_table(QUEUES).map_err(unavailable)?;
            let mut playlists = txn.open_table(PLAYLISTS).map_err(unavailable)?;
            let mut checkpoints = txn.open_table(CHECKPOINTS).map_err(unavailable)?;
            let mut dead_letters = txn.open_table(DEAD_LETTERS).map_err(unavailable)?;
            let mut events = txn.open_table(EVENTS).map_err(unavailable)?;
            let mut erasures = txn.open_table(ERASURES).map_err(unavailable)?;
            for write in batch {
                match write {
                    Write::Profile(profile, ack) => {
                        pending.push(Pending::Profile(put_profile(&mut profiles, *profile), ack))
                    }
                    Write::Queue(key, value, seq) => {
                        let outcome = match &value {
                            Some(bytes) => queues.insert(key.as_str(), &bytes[..]).map(drop),
                            None => queues.remove(key.as_str()).map(drop),
                        };
                        if let Err(e) = outcome {
                            tracing::error!(error = %crate::error::Chain(&e), "embedded store: a queue write failed and is lost");
                        }
                        pending.push(Pending::Queue(key, seq));
                    }
                    Write::Apply(event_id, user_id, at, change, ack) => {
                        let erased = erasures
                            .get(user_id.as_str())
                            .map_err(unavailable)
                            .map(|e| e.map(|e| e.value()));
                        let outcome = match erased {
                            Err(e) => Err(e),
                            Ok(Some(erased_at)) if at <= erased_at => Ok(Applied::Erased),
                            Ok(_) => apply_event(
                                &mut profiles,
                                &mut events,
                                &event_id,
                                &user_id,
                                change.as_ref(),
                            ),
                        };
                        pending.push(Pending::Apply(outcome, ack));
                    }
                    Write::Put(table, key, value, ack) => {
                        let table = match table {
                            Other::Playlists => &mut playlists,
                            Other::Checkpoints => &mut checkpoints,
                            Other::DeadLetters => &mut dead_letters,
                        };
                        let outcome = match &value {
                            Some(bytes) => table.insert(key.as_str(), bytes.as_slice()).map(drop),
                            None => table.remove(key.as_str()).map(drop),
                        };
                        pending.push(Pending::Put(outcome.map_err(unavailable), ack));
                    }
                    Write::Durable(ack) => durable_waiters.push(ack),
                    Write::Erase(user_id, ack) => {
                        let outcome = erasures
                            .insert(user_id.as_str(), unix_ms_now())
                            .map(drop)
                            .map_err(unavailable)
                            .and_then(|()| {
                                erase(&mut profiles, &mut queues, &mut playlists, &user_id)
                            });
                        pending.push(Pending::Put(outcome, ack));
                    }
                }
            }
        }
        txn.commit().map_err(unavailable)?;
        self.dirty_since.get_or_insert_with(Instant::now);
        Ok(())
    }
}

/// A write applied in the current batch, waiting for the batch's commit.
enum Pending {
    Profile(
        Result<u64, StoreError>,
        oneshot::Sender<Result<u64, StoreError>>,
    ),
    Queue(String, u64),
    Put(
        Result<(), StoreError>,
        oneshot::Sender<Result<(), StoreError>>,
    ),
    Apply(
        Result<Applied, StoreError>,
        oneshot::Sender<Result<Applied, StoreError>>,
    ),
}

impl Pending {
    /// Tells a waiting caller its outcome (or the batch's failure); takes a queue write out
    /// of the overlay, whose readers now find it in the file (or, if the batch failed, the
    /// value before it: the failure was logged).
    fn answer(self, batch_failure: Option<&StoreError>, unwritten: &Overlay) {
        match self {
            Pending::Profile(outcome, ack) => {
                let _ = ack.send(batch_failure.map_or(outcome, |e| Err(e.clone())));
            }
            Pending::Queue(key, seq) => unwritten.committed(&key, seq),
            Pending::Put(outcome, ack) => {
                let _ = ack.send(batch_failure.map_or(outcome, |e| Err(e.clone())));
            }
            Pending::Apply(outcome, ack) => {
                let _ = ack.send(batch_failure.map_or(outcome, |e| Err(e.clone())));
            }
        }
    }
}

/// Applies an event's change unless its id is already recorded, and records it (the caller's
/// transaction makes the two one).
fn apply_event(
    profiles: &mut redb::Table<&str, &[u8]>,
    events: &mut redb::Table<&str, u64>,
    event_id: &str,
    user_id: &str,
    change: &(dyn Fn(&mut Profile) + Send + Sync),
) -> Result<Applied, StoreError> {
    // Per listener: an event id is its sender's to make, and two may collide.
    let applied_key = compound_key(user_id, event_id);
    if events
        .get(applied_key.as_str())
        .map_err(unavailable)?
        .is_some()
    {
        return Ok(Applied::Already);
    }
    let mut profile = match profiles.get(user_id).map_err(unavailable)? {
        Some(bytes) => decode::<Profile>(bytes.value())?,
        None => Profile::new(user_id),
    };
    change(&mut profile);
    profile.version += 1;
    let bytes = encode(&profile)?;
    profiles
        .insert(user_id, bytes.as_slice())
        .map_err(unavailable)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    events
        .insert(applied_key.as_str(), now)
        .map_err(unavailable)?;
    Ok(Applied::Now)
}

/// Optimistic locking: the write goes through only if the stored version is the one read.
fn put_profile(
    table: &mut redb::Table<&str, &[u8]>,
    mut profile: Profile,
) -> Result<u64, StoreError> {
    let stored_version = match table.get(profile.user_id.as_str()).map_err(unavailable)? {
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
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(cause(e))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(cause(e)))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(cause(e)))
}

/// Joins key parts with the unit separator (U+001F), so one listener's items share a prefix.
/// Ids are opaque and may hold any character, so each part is escaped first (U+001E becomes
/// U+001E U+001E, U+001F becomes U+001E U+001D): a part never contains the separator, the
/// first separator in a key ends its first part, and an id that looks like another id plus a
/// separator cannot reach that id's items. Ids without either character, every id Alexa or
/// an identity provider issues, keep the keys they always had.
fn compound_key(first: &str, second: &str) -> String {
    let mut key = String::with_capacity(first.len() + second.len() + 1);
    escape_into(&mut key, first);
    key.push('\u{1f}');
    escape_into(&mut key, second);
    key
}

fn escape_into(key: &mut String, part: &str) {
    for c in part.chars() {
        match c {
            '\u{1e}' => key.push_str("\u{1e}\u{1e}"),
            '\u{1f}' => key.push_str("\u{1e}\u{1d}"),
            c => key.push(c),
        }
    }
}

fn queue_key(key: &QueueKey) -> String {
    compound_key(&key.user_id, &key.device_id)
}

/// Removes `user_id`'s profile and every queue and playlist under their key prefix.
fn erase<'t>(
    profiles: &mut redb::Table<'t, &str, &[u8]>,
    queues: &mut redb::Table<'t, &str, &[u8]>,
    playlists: &mut redb::Table<'t, &str, &[u8]>,
    user_id: &str,
) -> Result<(), StoreError> {
    profiles.remove(user_id).map_err(unavailable)?;
    let prefix = compound_key(user_id, "");
    for table in [queues, playlists] {
        let keys: Vec<String> = table
            .range(prefix.as_str()..)
            .map_err(unavailable)?
            .map_while(|entry| {
                let key = entry.ok()?.0.value().to_owned();
                key.starts_with(&prefix).then_some(key)
            })
            .collect();
        for key in keys {
            table.remove(key.as_str()).map_err(unavailable)?;
        }
    }
    Ok(())
}

#[async_trait]
impl ProfileStore for EmbeddedStore {
    async fn profile(&self, user_id: &str) -> Result<Option<Profile>, StoreError> {
        self.read(PROFILES, user_id)?
            .map(|b| decode(&b))
            .transpose()
    }

    async fn put_profile(&self, profile: &Profile) -> Result<u64, StoreError> {
        let profile = profile.clone();
        self.submit(|ack| Write::Profile(Box::new(profile), ack))
            .await
    }

    async fn queue(&self, key: &QueueKey) -> Result<Option<Queue>, StoreError> {
        let key = queue_key(key);
        match self.unwritten.get(&key) {
            Some(in_flight) => in_flight.map(|b| decode(&b)).transpose(),
            None => self.read(QUEUES, &key)?.map(|b| decode(&b)).transpose(),
        }
    }

    async fn put_queue(&self, key: &QueueKey, queue: &Queue) -> Result<(), StoreError> {
        self.write_queue(queue_key(key), Some(encode(queue)?.into()))
    }

    async fn delete_queue(&self, key: &QueueKey) -> Result<(), StoreError> {
        self.write_queue(queue_key(key), None)
    }

    async fn erase_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.submit(|ack| Write::Erase(user_id.to_owned(), ack))
            .await
    }

    async fn playlist(
        &self,
        user_id: &str,
        playlist_id: &str,
    ) -> Result<Option<Playlist>, StoreError> {
        self.read(PLAYLISTS, &compound_key(user_id, playlist_id))?
            .map(|b| decode(&b))
            .transpose()
    }

    async fn playlists(&self, user_id: &str) -> Result<Vec<Playlist>, StoreError> {
        let prefix = compound_key(user_id, "");
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(PLAYLISTS).map_err(unavailable)?;
        let mut found = Vec::new();
        for entry in table.range(prefix.as_str()..).map_err(unavailable)? {
            let (key, value) = entry.map_err(unavailable)?;
            if !key.value().starts_with(&prefix) {
                break;
            }
            found.push(decode::<Playlist>(value.value())?);
        }
        found.sort_by_key(|p| p.created_at);
        Ok(found)
    }

    async fn put_playlist(&self, playlist: &Playlist) -> Result<(), StoreError> {
        let key = compound_key(&playlist.user_id, &playlist.id);
        let value = encode(playlist)?;
        self.submit(|ack| Write::Put(Other::Playlists, key, Some(value), ack))
            .await
    }

    async fn checkpoint(&self, stream: &str, shard: &str) -> Result<Option<String>, StoreError> {
        self.read(CHECKPOINTS, &compound_key(stream, shard))?
            .map(|b| String::from_utf8(b).map_err(|e| StoreError::Corrupt(cause(e))))
            .transpose()
    }

    async fn put_checkpoint(
        &self,
        stream: &str,
        shard: &str,
        sequence: &str,
    ) -> Result<(), StoreError> {
        let key = compound_key(stream, shard);
        let value = sequence.as_bytes().to_vec();
        self.submit(|ack| Write::Put(Other::Checkpoints, key, Some(value), ack))
            .await
    }

    async fn put_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let (key, value) = (letter.id.clone(), encode(letter)?);
        self.submit(|ack| Write::Put(Other::DeadLetters, key, Some(value), ack))
            .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(DEAD_LETTERS).map_err(unavailable)?;
        let mut letters = Vec::new();
        for entry in table.iter().map_err(unavailable)?.take(limit) {
            let (_, value) = entry.map_err(unavailable)?;
            letters.push(decode(value.value())?);
        }
        Ok(letters)
    }

    async fn delete_dead_letter(&self, id: &str) -> Result<(), StoreError> {
        let key = id.to_owned();
        self.submit(|ack| Write::Put(Other::DeadLetters, key, None, ack))
            .await
    }

    async fn apply_event(
        &self,
        event_id: &str,
        user_id: &str,
        occurred_at_ms: i64,
        change: ProfileChange,
    ) -> Result<Applied, StoreError> {
        let (event_id, user_id) = (event_id.to_owned(), user_id.to_owned());
        self.submit(|ack| Write::Apply(event_id, user_id, occurred_at_ms, change, ack))
            .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.submit(Write::Durable).await
    }
}

#[cfg(test)]
mod tests {
    use super::compound_key;

    #[test]
    fn ids_without_separators_keep_the_keys_they_always_had() {
        assert_eq!(
            compound_key("amzn1.ask.account.X", "device"),
            "amzn1.ask.account.X\u{1f}device"
        );
    }

    #[test]
    fn a_part_never_holds_the_separator() {
        let key = compound_key("a\u{1f}b\u{1e}", "c");
        assert_eq!(key.matches('\u{1f}').count(), 1, "{key:?}");
        assert!(!key.starts_with(&compound_key("a", "")));
        assert_ne!(compound_key("a\u{1f}b", ""), compound_key("a", "b"));
    }
}
