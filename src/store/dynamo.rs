//! The DynamoDB store: one table, items keyed by `pk`/`sk`.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | profile | `USER#<user>` | `PROFILE` | `version` (N, optimistic lock), `body` (S, JSON), `updated_at` (N) |
//! | queue | `USER#<user>` | `QUEUE#<device>` | `body` (S, JSON), `updated_at` (N), `expires_at` (N, TTL: 30 days) |
//! | playlist | `USER#<user>` | `PLAYLIST#<id>` | `body` (S, JSON), `created_at` (N) |
//! | checkpoint | `CHECKPOINT#<stream>` | `SHARD#<shard>` | `sequence` (S), `updated_at` (N) |
//! | applied event | `EVENT#<event id>` | `USER#<user>` | `expires_at` (N, TTL: 8 days, past the stream's 7-day retention) |
//! | erasure marker | `USER#<user>` | `ERASED` | `erased_at` (N, Unix ms), `expires_at` (N, TTL: 31 days, past the oldest event the app may send) |
//! | dead letter | `DEADLETTER` | `<stream>/<shard>/<position>` | `body` (S, JSON: the record, at most 256 KB, and why), `created_at` (N) |
//!
//! One listener's items share a partition, so a listener's playlists are one Query. Bodies
//! are bounded (a profile keeps at most 100 recent plays and 500 likes and dislikes, a queue at
//! most 1,000 tracks), so no item nears DynamoDB's 400 KB limit. SDK types and errors stay in
//! this module: callers see `StoreError` (throttling and timeouts included).

use super::{Applied, DeadLetter, ProfileChange, ProfileStore, StoreError};
use crate::aws::AwsSettings;
use crate::domain::{Playlist, Profile, Queue, QueueKey, unix_ms_now};
use crate::error::{cause, message};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::types::{
    ConditionCheck, DeleteRequest, Put, TransactWriteItem, WriteRequest,
};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long an untouched queue is kept before DynamoDB's TTL removes it.
pub const QUEUE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an applied event's marker is kept: longer than the stream keeps records, so no
/// redelivery can outlive it.
pub const APPLIED_EVENT_TTL: Duration = Duration::from_secs(8 * 24 * 3600);

/// How long an erasure marker is kept: past the stream's retention and the oldest
/// `occurred_at` the app may send (30 days), so no event from before an erasure outlives it.
pub const ERASURE_TTL: Duration = Duration::from_secs(31 * 24 * 3600);
/// The sort key of a listener's erasure marker.
const ERASED_SK: &str = "ERASED";

/// The partition of the dead letters (few: a record lands here only when it cannot be applied).
const DEAD_LETTER_PK: &str = "DEADLETTER";

/// The TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// How to reach the table, and how long to wait for it.
#[derive(Debug, Clone)]
pub struct DynamoSettings {
    pub aws: AwsSettings,
    pub table: String,
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

impl DynamoStore {
    /// A client built once (see `aws::sdk_config`).
    pub async fn connect(settings: &DynamoSettings) -> Self {
        let config = crate::aws::sdk_config(&settings.aws).await;
        DynamoStore {
            client: Client::new(&config),
            table: settings.table.clone(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table if it is missing, waits until it is active and turns on the TTL.
    /// Returns whether it created the table.
    pub async fn init(&self) -> Result<bool, StoreError> {
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let created = match self
            .client
            .create_table()
            .table_name(&self.table)
            .key_schema(key("pk", KeyType::Hash).map_err(invalid)?)
            .key_schema(key("sk", KeyType::Range).map_err(invalid)?)
            .attribute_definitions(attr("pk").map_err(invalid)?)
            .attribute_definitions(attr("sk").map_err(invalid)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                false
            }
            Err(e) => return Err(store_error(e)),
        };
        for _ in 0..100 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(store_error)?;
            if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(invalid)?;
        match self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
        {
            Ok(_) => {}
            // Already on: DynamoDB refuses to set it twice.
            Err(e) if e.code() == Some("ValidationException") => {}
            Err(e) => return Err(store_error(e)),
        }
        Ok(created)
    }

    async fn get(&self, pk: String, sk: String) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.item)
    }

    /// Every item of partition `pk` (whose sort key starts with `sk_prefix`, if given), all
    /// pages of it, with only the `projection` attributes if given.
    async fn query_partition(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
        projection: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let condition = match sk_prefix {
            Some(_) => "pk = :pk AND begins_with(sk, :prefix)",
            None => "pk = :pk",
        };
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .expression_attribute_values(":pk", s(pk.clone()))
                .set_projection_expression(projection.map(str::to_owned))
                .set_exclusive_start_key(start.take());
            if let Some(prefix) = sk_prefix {
                query = query.expression_attribute_values(":prefix", s(prefix));
            }
            let page = query.send().await.map_err(store_error)?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// The raw TTL attribute of a queue item (for tests and operators).
    pub async fn queue_expiry(&self, key: &QueueKey) -> Result<Option<i64>, StoreError> {
        let item = self
            .get(user_pk(&key.user_id), queue_sk(&key.device_id))
            .await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get(TTL_ATTRIBUTE))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()))
    }
}

/// The optimistic lock on a profile write after reading `version` (0: there was none): the
/// stored version must still be the one read, and a profile read as absent must still be
/// absent. So a write from a read before an erasure cannot put the old profile back.
fn version_condition(read: u64) -> String {
    match read {
        0 => "attribute_not_exists(pk)".to_owned(),
        _ => "#version = :read".to_owned(),
    }
}

fn version_names(read: u64) -> Option<HashMap<String, String>> {
    (read > 0).then(|| HashMap::from([("#version".to_owned(), "version".to_owned())]))
}

fn version_values(read: u64) -> Option<Item> {
    (read > 0).then(|| HashMap::from([(":read".to_owned(), n(read as i64))]))
}

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Refused(message(format!("invalid request: {e}")))
}

/// SDK errors -> `StoreError`: timeouts and throttling keep their kind.
fn store_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    const THROTTLING: [&str; 4] = [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    ];
    match &e {
        SdkError::TimeoutError(_) => StoreError::Timeout,
        SdkError::DispatchFailure(f) if f.is_timeout() => StoreError::Timeout,
        SdkError::ServiceError(s) if s.err().code().is_some_and(|c| THROTTLING.contains(&c)) => {
            StoreError::Throttled
        }
        // A key or item over DynamoDB's limits, say: the same request will never succeed.
        SdkError::ServiceError(s) if s.err().code() == Some("ValidationException") => {
            StoreError::Refused(message(DisplayErrorContext(&e).to_string()))
        }
        // The SDK's error stays here: callers get its text, not its type.
        _ => StoreError::Unavailable(message(DisplayErrorContext(&e).to_string())),
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

fn queue_sk(device_id: &str) -> String {
    format!("QUEUE#{device_id}")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn body<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let text = item
        .get("body")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt(message("item without a body")))?;
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(cause(e)))
}

fn json<T: serde::Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|e| StoreError::Corrupt(cause(e)))
}

impl DynamoStore {
    /// One try at applying an event: the profile write (conditioned on the version read) and
    /// the event marker (conditioned on not existing) in one TransactWriteItems.
    async fn try_apply(
        &self,
        event_id: &str,
        user_id: &str,
        occurred_at_ms: i64,
        change: &ProfileChange,
    ) -> Result<Applied, StoreError> {
        let mut profile = self
            .profile(user_id)
            .await?
            .unwrap_or_else(|| Profile::new(user_id));
        let read = profile.version;
        change(&mut profile);
        profile.version = read + 1;
        let now = now_secs();
        let profile_put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(user_id)))
            .item("sk", s("PROFILE"))
            .item("version", n(profile.version as i64))
            .item("body", json(&profile)?)
            .item("updated_at", n(now))
            .set_condition_expression(Some(version_condition(read)))
            .set_expression_attribute_names(version_names(read))
            .set_expression_attribute_values(version_values(read))
            .build()
            .map_err(invalid)?;
        let marker = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("EVENT#{event_id}")))
            // Per listener: an event id is its sender's to make, and two may collide.
            .item("sk", s(user_pk(user_id)))
            .item(TTL_ATTRIBUTE, n(now + APPLIED_EVENT_TTL.as_secs() as i64))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(invalid)?;
        // Folded only if the listener was not erased after the event happened.
        let not_erased = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(user_pk(user_id)))
            .key("sk", s(ERASED_SK))
            .condition_expression("attribute_not_exists(pk) OR erased_at < :at")
            .expression_attribute_values(":at", n(occurred_at_ms))
            .build()
            .map_err(invalid)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(profile_put).build())
            .transact_items(TransactWriteItem::builder().put(marker).build())
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(not_erased)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Applied::Now),
            Err(e) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                    e.as_service_error()
                {
                    let failed = |i: usize| {
                        cancelled
                            .cancellation_reasons()
                            .get(i)
                            .and_then(|r| r.code())
                            == Some("ConditionalCheckFailed")
                    };
                    if failed(2) {
                        return Ok(Applied::Erased);
                    }
                    if failed(1) {
                        return Ok(Applied::Already);
                    }
                    if failed(0) {
                        return Err(StoreError::Conflict);
                    }
                    let invalid = cancelled
                        .cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ValidationError"));
                    if invalid {
                        return Err(StoreError::Refused(message(
                            DisplayErrorContext(&e).to_string(),
                        )));
                    }
                }
                Err(store_error(e))
            }
        }
    }
}

#[async_trait]
impl ProfileStore for DynamoStore {
    async fn apply_event(
        &self,
        event_id: &str,
        user_id: &str,
        occurred_at_ms: i64,
        change: ProfileChange,
    ) -> Result<Applied, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .try_apply(event_id, user_id, occurred_at_ms, &change)
                .await
            {
                Err(StoreError::Conflict) if attempt < super::PROFILE_UPDATE_ATTEMPTS => {
                    super::conflict_backoff(attempt).await;
                }
                other => return other,
            }
        }
    }

    async fn profile(&self, user_id: &str) -> Result<Option<Profile>, StoreError> {
        let item = self.get(user_pk(user_id), "PROFILE".into()).await?;
        item.map(|i| {
            let mut profile: Profile = body(&i)?;
            // The version attribute is the truth the condition checks.
            if let Some(v) = i
                .get("version")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
            {
                profile.version = v;
            }
            Ok(profile)
        })
        .transpose()
    }

    async fn put_profile(&self, profile: &Profile) -> Result<u64, StoreError> {
        let next = profile.version + 1;
        let stored = Profile {
            version: next,
            ..profile.clone()
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(user_pk(&profile.user_id)))
            .item("sk", s("PROFILE"))
            .item("version", n(next as i64))
            .item("body", json(&stored)?)
            .item("updated_at", n(now_secs()))
            .set_condition_expression(Some(version_condition(profile.version)))
            .set_expression_attribute_names(version_names(profile.version))
            .set_expression_attribute_values(version_values(profile.version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(next),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn queue(&self, key: &QueueKey) -> Result<Option<Queue>, StoreError> {
        let item = self
            .get(user_pk(&key.user_id), queue_sk(&key.device_id))
            .await?;
        item.map(|i| body(&i)).transpose()
    }

    async fn put_queue(&self, key: &QueueKey, queue: &Queue) -> Result<(), StoreError> {
        let now = now_secs();
        self.put(HashMap::from([
            ("pk".to_owned(), s(user_pk(&key.user_id))),
            ("sk".to_owned(), s(queue_sk(&key.device_id))),
            ("body".to_owned(), json(queue)?),
            ("updated_at".to_owned(), n(now)),
            (
                TTL_ATTRIBUTE.to_owned(),
                n(now + QUEUE_TTL.as_secs() as i64),
            ),
        ]))
        .await
    }

    async fn delete_queue(&self, key: &QueueKey) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(&key.user_id)))
            .key("sk", s(queue_sk(&key.device_id)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn playlist(
        &self,
        user_id: &str,
        playlist_id: &str,
    ) -> Result<Option<Playlist>, StoreError> {
        let item = self
            .get(user_pk(user_id), format!("PLAYLIST#{playlist_id}"))
            .await?;
        item.map(|i| body(&i)).transpose()
    }

    async fn playlists(&self, user_id: &str) -> Result<Vec<Playlist>, StoreError> {
        let mut found: Vec<Playlist> = self
            .query_partition(user_pk(user_id), Some("PLAYLIST#"), None)
            .await?
            .iter()
            .map(body)
            .collect::<Result<_, _>>()?;
        found.sort_by_key(|p| p.created_at);
        Ok(found)
    }

    async fn put_playlist(&self, playlist: &Playlist) -> Result<(), StoreError> {
        self.put(HashMap::from([
            ("pk".to_owned(), s(user_pk(&playlist.user_id))),
            ("sk".to_owned(), s(format!("PLAYLIST#{}", playlist.id))),
            ("body".to_owned(), json(playlist)?),
            ("created_at".to_owned(), n(playlist.created_at)),
        ]))
        .await
    }

    async fn erase_user(&self, user_id: &str) -> Result<(), StoreError> {
        // The marker first: from now on no event from before this moment is folded in, and
        // no profile write from a read before it goes through (its version is gone).
        self.put(HashMap::from([
            ("pk".to_owned(), s(user_pk(user_id))),
            ("sk".to_owned(), s(ERASED_SK)),
            ("erased_at".to_owned(), n(unix_ms_now())),
            (
                TTL_ATTRIBUTE.to_owned(),
                n(now_secs() + ERASURE_TTL.as_secs() as i64),
            ),
        ]))
        .await?;
        // Every item of the listener shares the partition: list the keys, delete in batches
        // of 25 (BatchWriteItem's limit), resending what comes back unprocessed.
        let keys: Vec<Item> = self
            .query_partition(user_pk(user_id), None, Some("pk, sk"))
            .await?
            .into_iter()
            .filter(|key| {
                key.get("sk")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    != Some(ERASED_SK)
            })
            .collect();
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(|e| StoreError::Unavailable(message(e.to_string())))
                })
                .collect::<Result<_, _>>()?;
            for attempt in 0..8u32 {
                if requests.is_empty() {
                    break;
                }
                if attempt > 0 {
                    super::conflict_backoff(attempt).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(store_error)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
            if !requests.is_empty() {
                tracing::warn!(
                    user_id,
                    left = requests.len(),
                    "erasure throttled; items left"
                );
                return Err(StoreError::Throttled);
            }
        }
        Ok(())
    }

    async fn put_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.put(HashMap::from([
            ("pk".to_owned(), s(DEAD_LETTER_PK)),
            ("sk".to_owned(), s(&letter.id)),
            ("body".to_owned(), json(letter)?),
            ("created_at".to_owned(), n(letter.at)),
        ]))
        .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let items = self
            .query_partition(DEAD_LETTER_PK.to_owned(), None, Some("body"))
            .await?;
        items.iter().take(limit).map(body).collect()
    }

    async fn delete_dead_letter(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(DEAD_LETTER_PK))
            .key("sk", s(id))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn checkpoint(&self, stream: &str, shard: &str) -> Result<Option<String>, StoreError> {
        let item = self
            .get(format!("CHECKPOINT#{stream}"), format!("SHARD#{shard}"))
            .await?;
        Ok(item.and_then(|i| i.get("sequence").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn put_checkpoint(
        &self,
        stream: &str,
        shard: &str,
        sequence: &str,
    ) -> Result<(), StoreError> {
        self.put(HashMap::from([
            ("pk".to_owned(), s(format!("CHECKPOINT#{stream}"))),
            ("sk".to_owned(), s(format!("SHARD#{shard}"))),
            ("sequence".to_owned(), s(sequence)),
            ("updated_at".to_owned(), n(now_secs())),
        ]))
        .await
    }
}
