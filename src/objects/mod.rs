//! Object storage: where model versions and the feedback archive live, as a directory or an
//! S3 prefix. `Location` names one (`DIR` or `s3://BUCKET/PREFIX`); `ObjectStore` is the
//! narrow interface the rest of Encore uses (get, conditional get, put, list, and file
//! transfers), with a directory adapter (`dir.rs`) and the S3 adapter (`s3.rs`, the only
//! file here that names the SDK). Keys are relative to the location and use `/`.

mod dir;
mod s3;

pub use dir::DirStore;
pub use s3::S3Store;

use crate::aws::AwsSettings;
use crate::error::Cause;
use async_trait::async_trait;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// A directory, or a prefix in an S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl FromStr for Location {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(rest) = s.strip_prefix("s3://") else {
            if s.is_empty() {
                return Err("an empty path".into());
            }
            return Ok(Location::Dir(PathBuf::from(s)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid_bucket {
            return Err(format!(
                "{s:?}: {bucket:?} is not an S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens)"
            ));
        }
        Ok(Location::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Dir(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl Location {
    /// The directory, when this is one.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Location::Dir(path) => Some(path),
            Location::S3 { .. } => None,
        }
    }

    /// The same place, `sub` deeper.
    pub fn join(&self, sub: &str) -> Location {
        match self {
            Location::Dir(path) => Location::Dir(path.join(sub)),
            Location::S3 { bucket, prefix } => Location::S3 {
                bucket: bucket.clone(),
                prefix: join_key(prefix, sub),
            },
        }
    }

    /// A store over this location. S3 calls use `aws`'s endpoint with the longer timeouts
    /// of object transfers (`object_settings`).
    pub async fn open(&self, aws: &AwsSettings) -> Arc<dyn ObjectStore> {
        match self {
            Location::Dir(path) => Arc::new(DirStore::new(path)),
            Location::S3 { bucket, prefix } => {
                Arc::new(S3Store::connect(&object_settings(aws), bucket, prefix).await)
            }
        }
    }
}

/// `aws` with the timeouts of object transfers: a model or an archive object is megabytes,
/// not a DynamoDB item, so a call may take up to a minute (a body being read is not timed).
pub fn object_settings(aws: &AwsSettings) -> AwsSettings {
    AwsSettings::new(aws.endpoint.clone(), Duration::from_secs(60))
}

/// `a/b` from `a` and `b`, either of them possibly empty.
pub fn join_key(a: &str, b: &str) -> String {
    match (a.trim_matches('/'), b.trim_matches('/')) {
        ("", b) => b.to_owned(),
        (a, "") => a.to_owned(),
        (a, b) => format!("{a}/{b}"),
    }
}

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Relative to the store's location.
    pub key: String,
    pub size: u64,
    /// Changes whenever the object does (S3's ETag).
    pub tag: String,
    /// When it was last written, in Unix seconds.
    pub modified: i64,
}

/// What a conditional read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The object still has the tag the caller gave.
    Unchanged,
    Missing,
    Found {
        bytes: Vec<u8>,
        tag: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The service did not answer, or refused (credentials, throttling, a missing bucket).
    #[error("object storage at {at}: {source}")]
    Unavailable {
        at: String,
        #[source]
        source: Cause,
    },
    #[error("{key}: no such object")]
    NotFound { key: String },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The narrow interface over object storage. Implementations count their requests
/// (`requests`), so what a poll costs can be measured.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Where it is, for messages (`s3://bucket/prefix` or the directory).
    fn describe(&self) -> String;

    /// The object at `key`; with `unless_tag`, `Unchanged` when it still has that tag (one
    /// conditional request that carries no body when nothing changed).
    async fn get(&self, key: &str, unless_tag: Option<&str>) -> Result<Fetched, ObjectError>;

    /// Writes `bytes` at `key`, replacing what was there; readers see the old or the new
    /// object, never a part.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ObjectError>;

    /// Every object whose key starts with `prefix` (and sorts after `start_after`), in key
    /// order.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<Object>, ObjectError>;

    /// Copies the object at `key` into the file `to` (streamed, for large objects).
    async fn download(&self, key: &str, to: &Path) -> Result<(), ObjectError>;

    /// Writes the file `from` at `key` (streamed).
    async fn upload(&self, from: &Path, key: &str) -> Result<(), ObjectError>;

    /// Requests made so far.
    fn requests(&self) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_as_directories_or_s3_prefixes() {
        assert_eq!(
            "models".parse::<Location>(),
            Ok(Location::Dir("models".into()))
        );
        assert_eq!(
            "s3://encore-models/prod/models/".parse::<Location>(),
            Ok(Location::S3 {
                bucket: "encore-models".into(),
                prefix: "prod/models".into()
            })
        );
        let bare: Location = "s3://encore-models".parse().unwrap();
        assert_eq!(bare.to_string(), "s3://encore-models");
        assert_eq!(
            bare.join("versions").to_string(),
            "s3://encore-models/versions"
        );
        assert!("s3://Not_A_Bucket/x".parse::<Location>().is_err());
        assert!("s3://".parse::<Location>().is_err());
        assert!("".parse::<Location>().is_err());
    }

    #[test]
    fn keys_join_without_doubled_or_leading_slashes() {
        assert_eq!(join_key("", "a/b"), "a/b");
        assert_eq!(join_key("p/", "/a"), "p/a");
        assert_eq!(join_key("p", ""), "p");
    }
}
