//! `encore init`: creates what the configured store and feedback backend need, idempotently.

use crate::app::{aws_settings, dynamo_settings};
use crate::feedback::KinesisStream;
use crate::settings::{FeedbackKind, StorageArgs, StoreKind};
use crate::store::{DynamoStore, EmbeddedStore, ProfileStore};
use anyhow::Context;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `encore init`: creates what the configured store needs, idempotently.
pub async fn run(storage: &StorageArgs) -> anyhow::Result<String> {
    let mut done = match storage.store {
        StoreKind::Embedded => {
            EmbeddedStore::open(&storage.data_dir)?.flush().await?;
            format!("embedded store ready in {}", storage.data_dir.display())
        }
        StoreKind::Dynamodb => {
            let store = DynamoStore::connect(&dynamo_settings(storage)).await;
            let created = store
                .init()
                .await
                .with_context(|| format!("creating table {}", store.table()))?;
            let verb = if created { "created" } else { "already there:" };
            format!(
                "{verb} table {} (TTL on {})",
                store.table(),
                crate::store::TTL_ATTRIBUTE
            )
        }
    };
    if storage.feedback == FeedbackKind::Kinesis {
        let stream = KinesisStream::connect(&aws_settings(storage), &storage.stream).await;
        let created = stream
            .create()
            .await
            .with_context(|| format!("creating stream {}", storage.stream))?;
        let verb = if created { "created" } else { "already there:" };
        done += &format!("\n{verb} stream {}", storage.stream);
    }
    Ok(done)
}
