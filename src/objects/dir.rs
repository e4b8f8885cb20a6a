//! Object storage in a local directory: a key is a file under it. Writes go to a temporary
//! file that is then renamed, so a reader sees a whole object or none. What a local run,
//! a test or a copy of a bucket (`aws s3 sync`) uses.

use super::{Fetched, Object, ObjectError, ObjectStore};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct DirStore {
    root: PathBuf,
    requests: AtomicU64,
}

impl DirStore {
    pub fn new(root: &Path) -> Self {
        DirStore {
            root: root.to_owned(),
            requests: AtomicU64::new(0),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        key.split('/')
            .filter(|part| !part.is_empty() && *part != "." && *part != "..")
            .fold(self.root.clone(), |path, part| path.join(part))
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ObjectError + '_ {
    move |source| ObjectError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A file's tag: its size and modification time, which change whenever it is rewritten.
fn tag_of(meta: &std::fs::Metadata) -> (String, i64) {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    (
        format!("{}-{}", meta.len(), modified.as_nanos()),
        modified.as_secs() as i64,
    )
}

/// Writes `bytes` to `path` through a temporary file beside it.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), ObjectError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<Object>) -> Result<(), ObjectError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(io(&path))?;
        if meta.is_dir() {
            walk(&path, root, out)?;
        } else if meta.is_file() {
            let key = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let (tag, modified) = tag_of(&meta);
            out.push(Object {
                key,
                size: meta.len(),
                tag,
                modified,
            });
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for DirStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn get(&self, key: &str, unless_tag: Option<&str>) -> Result<Fetched, ObjectError> {
        self.count();
        let path = self.path(key);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Ok(Fetched::Missing),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Fetched::Missing),
            Err(e) => return Err(io(&path)(e)),
        };
        let (tag, _) = tag_of(&meta);
        if unless_tag == Some(tag.as_str()) {
            return Ok(Fetched::Unchanged);
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        Ok(Fetched::Found { bytes, tag })
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ObjectError> {
        self.count();
        let path = self.path(key);
        tokio::task::spawn_blocking(move || write_whole(&path, &bytes))
            .await
            .map_err(|e| ObjectError::Unavailable {
                at: self.describe(),
                source: crate::error::cause(e),
            })?
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<Object>, ObjectError> {
        self.count();
        let mut all = Vec::new();
        walk(&self.root, &self.root, &mut all)?;
        all.retain(|o| {
            o.key.starts_with(prefix)
                && start_after.is_none_or(|after| o.key.as_str() > after)
                && !o.key.contains(".tmp-")
        });
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }

    async fn download(&self, key: &str, to: &Path) -> Result<(), ObjectError> {
        self.count();
        let from = self.path(key);
        if !from.is_file() {
            return Err(ObjectError::NotFound {
                key: key.to_owned(),
            });
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(&from, to).map_err(io(&from))?;
        Ok(())
    }

    async fn upload(&self, from: &Path, key: &str) -> Result<(), ObjectError> {
        let bytes = std::fs::read(from).map_err(io(from))?;
        self.put(key, bytes).await
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_answers_as_object_storage() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        assert_eq!(store.get("a/b.json", None).await.unwrap(), Fetched::Missing);
        store.put("a/b.json", b"one".to_vec()).await.unwrap();
        store.put("a/c/d.txt", b"two".to_vec()).await.unwrap();
        store.put("z.txt", b"three".to_vec()).await.unwrap();
        let Fetched::Found { bytes, tag } = store.get("a/b.json", None).await.unwrap() else {
            panic!("written, so found");
        };
        assert_eq!(bytes, b"one");
        assert_eq!(
            store.get("a/b.json", Some(&tag)).await.unwrap(),
            Fetched::Unchanged
        );
        let keys: Vec<String> = store
            .list("a/", None)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["a/b.json", "a/c/d.txt"]);
        let after: Vec<String> = store
            .list("", Some("a/b.json"))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(after, ["a/c/d.txt", "z.txt"]);
        // A key cannot climb out of the directory.
        store.put("../escape.txt", b"x".to_vec()).await.unwrap();
        assert!(dir.path().join("escape.txt").is_file());
        assert_eq!(store.requests(), 9, "each call counts once");
    }
}
