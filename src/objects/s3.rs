//! The S3 adapter: one client, one bucket, one prefix. The only file that names the S3 SDK;
//! its errors leave as `ObjectError` with the SDK's text as the cause. Path-style addressing
//! when an endpoint is given (a local S3-compatible server has no per-bucket host names).

use super::{Fetched, Object, ObjectError, ObjectStore, join_key};
use crate::aws::AwsSettings;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    requests: AtomicU64,
}

impl S3Store {
    pub async fn connect(aws: &AwsSettings, bucket: &str, prefix: &str) -> Self {
        let config = crate::aws::sdk_config(aws).await;
        let config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(aws.endpoint.is_some())
            .build();
        S3Store {
            client: Client::from_conf(config),
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            requests: AtomicU64::new(0),
        }
    }

    /// Creates the bucket if it is missing (local servers and tests; the stack makes the
    /// real one). Returns whether it created it.
    pub async fn ensure_bucket(&self) -> Result<bool, ObjectError> {
        self.count("head_bucket");
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(false);
        }
        self.count("create_bucket");
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(true)
    }

    fn key(&self, key: &str) -> String {
        join_key(&self.prefix, key)
    }

    /// What to list for keys starting with `prefix`: under the store's prefix as a folder,
    /// so `s3://b/models` never lists `s3://b/models-old/...`.
    fn list_prefix(&self, prefix: &str) -> String {
        match self.prefix.is_empty() {
            true => prefix.to_owned(),
            false => format!("{}/{prefix}", self.prefix),
        }
    }

    /// Writes `body` at `key`.
    async fn put_body(&self, key: &str, body: ByteStream) -> Result<(), ObjectError> {
        self.count("put");
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .body(body)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(())
    }

    /// `key` as the store's callers name it (without the prefix).
    fn relative<'a>(&self, key: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            return key;
        }
        key.strip_prefix(self.prefix.as_str())
            .and_then(|k| k.strip_prefix('/'))
            .unwrap_or(key)
    }

    fn count(&self, op: &'static str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("encore_object_requests_total", "op" => op).increment(1);
    }

    fn unavailable<E, R>(&self, e: SdkError<E, R>) -> ObjectError
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        ObjectError::Unavailable {
            at: self.describe(),
            source: crate::error::message(DisplayErrorContext(&e).to_string()),
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        match self.prefix.is_empty() {
            true => format!("s3://{}", self.bucket),
            false => format!("s3://{}/{}", self.bucket, self.prefix),
        }
    }

    async fn get(&self, key: &str, unless_tag: Option<&str>) -> Result<Fetched, ObjectError> {
        self.count("get");
        let sent = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .set_if_none_match(unless_tag.map(str::to_owned))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(304) => {
                return Ok(Fetched::Unchanged);
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(Fetched::Missing);
            }
            Err(e) => return Err(self.unavailable(e)),
        };
        let tag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| ObjectError::Unavailable {
                at: self.describe(),
                source: crate::error::cause(e),
            })?
            .into_bytes()
            .to_vec();
        Ok(Fetched::Found { bytes, tag })
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ObjectError> {
        self.put_body(key, ByteStream::from(bytes)).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<Object>, ObjectError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.count("list");
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(self.list_prefix(prefix))
                .set_start_after(start_after.map(|k| self.key(k)))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.unavailable(e))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                out.push(Object {
                    key: self.relative(key).to_owned(),
                    size: o.size().unwrap_or_default().max(0) as u64,
                    tag: o.e_tag().unwrap_or_default().to_owned(),
                    modified: o.last_modified().map(|t| t.secs()).unwrap_or_default(),
                });
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn download(&self, key: &str, to: &Path) -> Result<(), ObjectError> {
        self.count("get");
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(
                |e| match e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    true => ObjectError::NotFound {
                        key: key.to_owned(),
                    },
                    false => self.unavailable(e),
                },
            )?;
        let io = |source| ObjectError::Io {
            path: to.to_owned(),
            source,
        };
        if let Some(parent) = to.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let mut file = tokio::fs::File::create(to).await.map_err(io)?;
        let mut body = out.body.into_async_read();
        tokio::io::copy(&mut body, &mut file).await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        Ok(())
    }

    async fn upload(&self, from: &Path, key: &str) -> Result<(), ObjectError> {
        let body = ByteStream::from_path(from)
            .await
            .map_err(|e| ObjectError::Io {
                path: from.to_owned(),
                source: std::io::Error::other(e),
            })?;
        self.put_body(key, body).await
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}
