//! Model versions in object storage (`--models s3://BUCKET/PREFIX`, or a directory through
//! the same interface): the layout is the one on disk (`manifest.json`, the catalog,
//! `versions/<v>/...` with `model.json` last, and the `current.json` pointer). Publishing a
//! version, promoting and rolling back the pointer, and `ModelMirror`: the local copy a
//! server keeps of what it serves.
//!
//! A mirror's poll is one conditional read of the pointer (a `304` when nothing moved), or,
//! with no pointer, that read plus a listing of `versions/`. A version it needs is
//! downloaded into a staging directory off the request path, read through as a model (a
//! factor model row by row, holding none of it), and only then moved into place; one that does not read is refused (logged, counted in
//! `encore_model_refused_total`, not downloaded again) and the version served so far stays.

use super::catalog::Manifest;
use super::model::{
    FORMAT, MANIFEST_FILE, Model, ModelError, ModelManifest, POINTER_FILE, Pointer, VERSIONS_DIR,
    expect_format, read_manifest, write_pointer,
};
use crate::objects::{Fetched, ObjectError, ObjectStore, join_key};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn invalid(store: &dyn ObjectStore, key: &str, message: impl Into<String>) -> PublishError {
    PublishError::Invalid {
        at: format!("{}/{key}", store.describe()),
        message: message.into(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The key of a version's file.
fn version_key(version: &str, file: &str) -> String {
    join_key(&join_key(VERSIONS_DIR, version), file)
}

/// Uploads the version in `dir` as `versions/<version>/`, `model.json` last, so no reader
/// sees a version before all of it is there. Refuses a version that exists (versions are
/// immutable).
pub async fn publish(
    store: &dyn ObjectStore,
    dir: &Path,
    version: &str,
) -> Result<(), PublishError> {
    let manifest_key = version_key(version, MANIFEST_FILE);
    if store.get(&manifest_key, None).await? != Fetched::Missing {
        return Err(invalid(
            store,
            &manifest_key,
            "this model version exists already",
        ));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    // The manifest sorts last.
    files.sort_by_key(|p| (p.file_name() == Some(MANIFEST_FILE.as_ref()), p.clone()));
    if files.last().and_then(|p| p.file_name()) != Some(MANIFEST_FILE.as_ref()) {
        return Err(PublishError::Invalid {
            at: dir.display().to_string(),
            message: format!("no {MANIFEST_FILE}: not a model version"),
        });
    }
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        store.upload(path, &version_key(version, &name)).await?;
    }
    Ok(())
}

/// Downloads the version at `store`'s location (the files directly under it, `model.json`
/// last) into the directory `to`, and reads it.
pub async fn fetch_version(store: &dyn ObjectStore, to: &Path) -> Result<Model, PublishError> {
    let files = store.list("", None).await?;
    if !files.iter().any(|o| o.key == MANIFEST_FILE) {
        return Err(invalid(store, MANIFEST_FILE, "no model version here"));
    }
    let mut ordered: Vec<&crate::objects::Object> =
        files.iter().filter(|o| !o.key.contains('/')).collect();
    ordered.sort_by_key(|o| o.key == MANIFEST_FILE);
    for o in ordered {
        store.download(&o.key, &to.join(&o.key)).await?;
    }
    let dir = to.to_owned();
    tokio::task::spawn_blocking(move || Model::load(&dir))
        .await
        .map_err(|e| invalid(store, "", format!("reading the version panicked: {e}")))?
        .map_err(|e| invalid(store, "", crate::error::Chain(&e).to_string()))
}

/// The version in `dir` read as a model, and its name: factors row by row without holding
/// them (`factors::check`: a download is checked with no second model in memory), an
/// item-item model whole.
fn verify(dir: &Path) -> Result<String, ModelError> {
    let manifest = read_manifest(dir)?;
    if manifest.format == FORMAT {
        expect_format(dir, &manifest, FORMAT)?;
        super::factors::check(dir, &manifest)?;
        return Ok(manifest.version);
    }
    Ok(Model::load(dir)?.manifest().version.clone())
}

/// A complete version (its `model.json` is there) as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub version: String,
    /// When its `model.json` was written, Unix seconds.
    pub modified: i64,
    /// The tag of its `model.json`.
    pub tag: String,
}

/// The complete versions, oldest upload first.
pub async fn published(store: &dyn ObjectStore) -> Result<Vec<Published>, PublishError> {
    let prefix = format!("{VERSIONS_DIR}/");
    let mut found: Vec<Published> = store
        .list(&prefix, None)
        .await?
        .into_iter()
        .filter_map(|o| {
            let rest = o.key.strip_prefix(&prefix)?;
            let (version, file) = rest.split_once('/')?;
            (file == MANIFEST_FILE).then(|| Published {
                version: version.to_owned(),
                modified: o.modified,
                tag: o.tag,
            })
        })
        .collect();
    found.sort_by(|a, b| (a.modified, &a.version).cmp(&(b.modified, &b.version)));
    Ok(found)
}

/// The pointer and its tag, if there is one.
pub async fn read_pointer(
    store: &dyn ObjectStore,
) -> Result<Option<(Pointer, String)>, PublishError> {
    match store.get(POINTER_FILE, None).await? {
        Fetched::Found { bytes, tag } => Ok(Some((parse_pointer(store, &bytes)?, tag))),
        _ => Ok(None),
    }
}

fn parse_pointer(store: &dyn ObjectStore, bytes: &[u8]) -> Result<Pointer, PublishError> {
    serde_json::from_slice(bytes)
        .map_err(|e| invalid(store, POINTER_FILE, format!("not a model pointer: {e}")))
}

/// Points the servers at `version`, which must be a complete version whose manifest names
/// it. Returns the new pointer.
pub async fn promote(store: &dyn ObjectStore, version: &str) -> Result<Pointer, PublishError> {
    let key = version_key(version, MANIFEST_FILE);
    let Fetched::Found { bytes, .. } = store.get(&key, None).await? else {
        return Err(invalid(store, &key, "no such model version"));
    };
    let manifest: ModelManifest = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(store, &key, format!("not a model manifest: {e}")))?;
    if manifest.version != version {
        return Err(invalid(
            store,
            &key,
            format!("the manifest names version {}", manifest.version),
        ));
    }
    let before = read_pointer(store).await?.map(|(p, _)| p);
    let pointer = Pointer::promote(before, version);
    store.put(POINTER_FILE, pointer.to_json()).await?;
    Ok(pointer)
}

/// Points the servers back at the version promoted before the current one.
pub async fn rollback(store: &dyn ObjectStore) -> Result<Pointer, PublishError> {
    let Some((pointer, _)) = read_pointer(store).await? else {
        return Err(invalid(
            store,
            POINTER_FILE,
            "nothing has been promoted, so there is nothing to roll back",
        ));
    };
    let current = pointer.version.clone();
    let Some(back) = pointer.rolled_back() else {
        return Err(invalid(
            store,
            POINTER_FILE,
            format!("{current} is the first version promoted: there is none before it"),
        ));
    };
    store.put(POINTER_FILE, back.to_json()).await?;
    Ok(back)
}

/// What the mirror has seen of the remote side.
#[derive(Default)]
struct Seen {
    /// The remote pointer's tag, for the conditional read.
    pointer_tag: Option<String>,
    /// The remote catalog manifest's tag, for the conditional read: set once its catalog is
    /// copied, or found not to be whole (then not tried again until it changes).
    manifest_tag: Option<String>,
    /// The version unpinned variants should serve, by the last poll.
    current: Option<String>,
    /// Whether every wanted version is in place (a poll that finds the pointer unchanged
    /// then has nothing to do).
    settled: bool,
    /// Versions refused, as `version@tag of its model.json`: not downloaded again.
    refused: HashSet<String>,
}

/// A local copy of a models location, kept by a server: the catalog, the versions it
/// serves, and a local `current.json` naming the one unpinned variants serve. `ModelSet`
/// reads the copy as it reads any models directory.
pub struct ModelMirror {
    store: Arc<dyn ObjectStore>,
    local: PathBuf,
    pinned: Vec<String>,
    seen: tokio::sync::Mutex<Seen>,
}

impl ModelMirror {
    /// Copies the catalog and the versions the servers need from `store` into `local`.
    /// `pinned`: the versions the experiment pins, which must be there.
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        local: &Path,
        pinned: Vec<String>,
    ) -> Result<Self, PublishError> {
        std::fs::create_dir_all(local.join(VERSIONS_DIR)).map_err(io(local))?;
        let mirror = ModelMirror {
            store,
            local: local.to_owned(),
            pinned,
            seen: Default::default(),
        };
        mirror.copy_catalog(&mut *mirror.seen.lock().await).await?;
        mirror.refresh().await?;
        Ok(mirror)
    }

    /// The local copy, a models directory.
    pub fn local(&self) -> &Path {
        &self.local
    }

    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Requests made to the store so far.
    pub fn requests(&self) -> u64 {
        self.store.requests()
    }

    /// The file `name` (beside the manifest) into the local copy, downloaded again only when
    /// its tag (kept in `tag_file`) changed.
    async fn copy_beside(
        &self,
        name: &str,
        tag_file: &str,
        what: &str,
    ) -> Result<(), PublishError> {
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
            return Err(invalid(
                &*self.store,
                super::catalog::MANIFEST,
                format!("the {what} {name:?} is not a file name beside the manifest"),
            ));
        }
        let listed = self.store.list(name, None).await?;
        let Some(object) = listed.iter().find(|o| o.key == name) else {
            return Err(invalid(
                &*self.store,
                name,
                format!("the {what} named by manifest.json is not there"),
            ));
        };
        let tag_file = self.local.join(tag_file);
        let local = self.local.join(name);
        let have = std::fs::read_to_string(&tag_file).unwrap_or_default();
        if have != object.tag || !local.is_file() {
            let started = Instant::now();
            let partial = self.local.join(format!(".{name}.partial"));
            self.store.download(name, &partial).await?;
            std::fs::rename(&partial, &local).map_err(io(&local))?;
            std::fs::write(&tag_file, &object.tag).map_err(io(&tag_file))?;
            tracing::info!(
                from = self.store.describe(),
                bytes = object.size,
                took_ms = started.elapsed().as_millis() as u64,
                "{what} downloaded"
            );
        }
        Ok(())
    }

    /// A new catalog into the local copy when the remote `manifest.json` changed: the
    /// catalog it names, the catalog's saved search index (each downloaded again only when
    /// its tag changed), and the manifest last, so the server's next reload
    /// (`ModelSet::reload`) swaps in the whole of it. Returns whether there was a new one.
    async fn copy_catalog(&self, seen: &mut Seen) -> Result<bool, PublishError> {
        let (bytes, tag) = match self
            .store
            .get(super::catalog::MANIFEST, seen.manifest_tag.as_deref())
            .await?
        {
            Fetched::Unchanged => return Ok(false),
            Fetched::Found { bytes, tag } => (bytes, tag),
            Fetched::Missing => {
                return Err(invalid(
                    &*self.store,
                    super::catalog::MANIFEST,
                    "no catalog manifest: upload the models directory first",
                ));
            }
        };
        let copied = self.copy_catalog_of(&bytes).await;
        // One that is not whole is not downloaded again until it changes; a store that
        // did not answer is asked again at the next poll.
        if !matches!(copied, Err(PublishError::Objects(_))) {
            seen.manifest_tag = Some(tag);
        }
        copied.map(|()| true)
    }

    async fn copy_catalog_of(&self, bytes: &[u8]) -> Result<(), PublishError> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            invalid(
                &*self.store,
                super::catalog::MANIFEST,
                format!("not a catalog manifest: {e}"),
            )
        })?;
        let catalog = manifest.catalog.to_string_lossy().into_owned();
        self.copy_beside(&catalog, ".catalog.tag", "catalog")
            .await?;
        // The saved search index, when the catalog job wrote one: without it, serving
        // builds the index at start (half a minute at 10M tracks), so a missing one is
        // not an error.
        if let Some(index) = &manifest.search_index {
            let index = index.to_string_lossy().into_owned();
            if let Err(e) = self
                .copy_beside(&index, ".search.tag", "search index")
                .await
            {
                tracing::warn!(error = %crate::error::Chain(&e), from = self.store.describe(), "the saved search index was not copied; serving builds one");
            }
        }
        super::catalog::replace_manifest(&self.local, bytes)
            .map_err(io(&self.local.join(super::catalog::MANIFEST)))
    }

    /// Brings a new catalog into the local copy, looks for a new pointer (or, with none, a
    /// new upload), brings the versions now wanted into the local copy, and moves the local
    /// pointer. Returns whether the local copy changed. A version that does not read is
    /// refused and the local pointer stays.
    pub async fn refresh(&self) -> Result<bool, PublishError> {
        let mut seen = self.seen.lock().await;
        let new_catalog = self.copy_catalog(&mut seen).await?;
        match self
            .store
            .get(POINTER_FILE, seen.pointer_tag.as_deref())
            .await?
        {
            Fetched::Unchanged if seen.settled => return Ok(new_catalog),
            Fetched::Unchanged => {}
            Fetched::Found { bytes, tag } => {
                let pointer = parse_pointer(&*self.store, &bytes)?;
                seen.pointer_tag = Some(tag);
                seen.current = Some(pointer.version);
            }
            Fetched::Missing => {
                seen.pointer_tag = None;
                seen.current = published(&*self.store).await?.pop().map(|p| p.version);
            }
        }
        let mut settled = true;
        for version in &self.pinned {
            if !self.bring(version, &mut seen.refused).await? {
                settled = false;
            }
        }
        let mut changed = new_catalog;
        if let Some(current) = seen.current.clone() {
            if self.bring(&current, &mut seen.refused).await? {
                changed |= self.point_at(&current)?;
            } else {
                settled = false;
            }
        }
        seen.settled = settled;
        Ok(changed)
    }

    /// Makes `version` present in the local copy; false when it is not complete remotely
    /// or was refused.
    async fn bring(
        &self,
        version: &str,
        refused: &mut HashSet<String>,
    ) -> Result<bool, PublishError> {
        let target = self.local.join(VERSIONS_DIR).join(version);
        if target.join(MANIFEST_FILE).is_file() {
            return Ok(true);
        }
        let prefix = format!("{}/", join_key(VERSIONS_DIR, version));
        let files = self.store.list(&prefix, None).await?;
        let Some(manifest) = files
            .iter()
            .find(|o| o.key == format!("{prefix}{MANIFEST_FILE}"))
        else {
            tracing::warn!(
                model_version = version,
                from = self.store.describe(),
                "model version is not complete (no model.json yet); the served models stay"
            );
            return Ok(false);
        };
        let refusal = format!("{version}@{}", manifest.tag);
        if refused.contains(&refusal) {
            return Ok(false);
        }
        let started = Instant::now();
        let staging = self.local.join(".incoming").join(version);
        let _ = std::fs::remove_dir_all(&staging);
        let mut bytes = 0;
        for o in files.iter().filter(|o| o.key != manifest.key) {
            let name = &o.key[prefix.len()..];
            if name.is_empty() || name.contains('/') {
                continue;
            }
            self.store.download(&o.key, &staging.join(name)).await?;
            bytes += o.size;
        }
        self.store
            .download(&manifest.key, &staging.join(MANIFEST_FILE))
            .await?;
        let check = staging.clone();
        let expected = version.to_owned();
        let verified = tokio::task::spawn_blocking(move || match verify(&check) {
            Ok(version) if version == expected => Ok(()),
            Ok(version) => Err(format!("its manifest names version {version}")),
            Err(e) => Err(crate::error::Chain(&e).to_string()),
        })
        .await
        .unwrap_or_else(|e| Err(format!("the check panicked: {e}")));
        if let Err(reason) = verified {
            let _ = std::fs::remove_dir_all(&staging);
            refused.insert(refusal);
            metrics::counter!("encore_model_refused_total").increment(1);
            tracing::error!(
                model_version = version,
                from = self.store.describe(),
                reason,
                "model version refused: it does not read as a model; the served models stay"
            );
            return Ok(false);
        }
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&staging, &target).map_err(io(&target))?;
        tracing::info!(
            model_version = version,
            from = self.store.describe(),
            bytes,
            took_ms = started.elapsed().as_millis() as u64,
            "model version downloaded and verified"
        );
        Ok(true)
    }

    /// Moves the local pointer to `version` and removes local versions nothing serves any
    /// more (the pinned ones, this one and the one before it stay). Returns whether it
    /// moved.
    fn point_at(&self, version: &str) -> Result<bool, PublishError> {
        let before = super::model::read_pointer(&self.local).ok().flatten();
        if before.as_ref().is_some_and(|p| p.version == version) {
            return Ok(false);
        }
        let previous = before.as_ref().map(|p| p.version.clone());
        write_pointer(&self.local, &Pointer::promote(before, version)).map_err(|e| {
            PublishError::Invalid {
                at: self.local.display().to_string(),
                message: crate::error::Chain(&e).to_string(),
            }
        })?;
        let keep: HashSet<&str> = self
            .pinned
            .iter()
            .map(String::as_str)
            .chain([version])
            .chain(previous.as_deref())
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.local.join(VERSIONS_DIR)) {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !keep.contains(name.as_str()) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::DirStore;
    use crate::recommend::SearchIndex;
    use crate::recommend::model::{ItemFactors, new_manifest, read_pointer as local_pointer};

    /// A models location in a directory: the demo catalog, and versions written into it.
    fn location() -> (tempfile::TempDir, Arc<DirStore>) {
        let dir = tempfile::tempdir().unwrap();
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        for f in ["manifest.json", "catalog.csv"] {
            std::fs::copy(demo.join(f), dir.path().join(f)).unwrap();
        }
        let store = Arc::new(DirStore::new(dir.path()));
        (dir, store)
    }

    /// Writes version `v` (two items) into the location; without its `model.json` when
    /// `complete` is false, with its factors cut short when `broken`.
    fn write(root: &Path, v: &str, complete: bool, broken: bool) {
        let manifest = ModelManifest {
            version: v.into(),
            ..new_manifest("als", 2, 2)
        };
        let at = root.join(VERSIONS_DIR).join(v);
        ItemFactors::new(
            manifest,
            vec!["a".into(), "b".into()],
            vec![0.1, 0.2, 0.3, 0.4],
        )
        .save(&at)
        .unwrap();
        if broken {
            std::fs::write(at.join("item_factors.safetensors"), b"cut short").unwrap();
        }
        if !complete {
            std::fs::remove_file(at.join(MANIFEST_FILE)).unwrap();
        }
    }

    fn served(local: &Path) -> Option<String> {
        local_pointer(local).unwrap().map(|p| p.version)
    }

    #[tokio::test]
    async fn a_mirror_waits_for_a_whole_upload_and_refuses_a_broken_one_once() {
        let (root, store) = location();
        write(root.path(), "v1", true, false);
        let cache = tempfile::tempdir().unwrap();
        let mirror = ModelMirror::open(store.clone(), cache.path(), vec![])
            .await
            .unwrap();
        assert_eq!(
            served(cache.path()).as_deref(),
            Some("v1"),
            "the newest upload"
        );
        assert!(
            cache
                .path()
                .join(VERSIONS_DIR)
                .join("v1")
                .join(crate::recommend::model::ANN_FILE)
                .is_file(),
            "the version's ANN index comes with it"
        );

        // Promoted while its upload is still under way: nothing moves until it is whole.
        write(root.path(), "v2", false, false);
        promote(&*store, "v1").await.unwrap();
        assert!(promote(&*store, "v2").await.is_err(), "not whole yet");
        // Another tool's pointer, written anyway.
        let (before, _) = read_pointer(&*store).await.unwrap().unwrap();
        store
            .put(POINTER_FILE, Pointer::promote(Some(before), "v2").to_json())
            .await
            .unwrap();
        assert!(!mirror.refresh().await.unwrap());
        assert_eq!(served(cache.path()).as_deref(), Some("v1"));
        write(root.path(), "v2", true, false);
        assert!(
            mirror.refresh().await.unwrap(),
            "the same pointer, now whole"
        );
        assert_eq!(served(cache.path()).as_deref(), Some("v2"));

        // A broken one is refused, the served one stays, and it is not fetched again.
        write(root.path(), "v3", true, true);
        promote(&*store, "v3").await.unwrap();
        assert!(!mirror.refresh().await.unwrap());
        assert_eq!(served(cache.path()).as_deref(), Some("v2"));
        assert!(!cache.path().join("versions/v3").exists());
        let before = mirror.requests();
        assert!(!mirror.refresh().await.unwrap());
        assert_eq!(
            mirror.requests() - before,
            3,
            "the catalog manifest, the pointer and one listing, no download"
        );

        // Rolled back past it: v2 again, and what nothing serves leaves the cache.
        assert_eq!(rollback(&*store).await.unwrap().version, "v2");
        mirror.refresh().await.unwrap();
        assert_eq!(served(cache.path()).as_deref(), Some("v2"));
        assert!(rollback(&*store).await.is_ok(), "v1 was promoted before v2");
        assert!(mirror.refresh().await.unwrap());
        assert_eq!(served(cache.path()).as_deref(), Some("v1"));
        assert!(rollback(&*store).await.is_err(), "nothing before v1");
    }

    #[tokio::test]
    async fn a_mirror_copies_the_saved_search_index_with_the_catalog() {
        let (root, store) = location();
        write(root.path(), "v1", true, false);
        let catalog = super::super::Catalog::load(root.path()).unwrap();
        catalog.save_search_index(root.path()).unwrap();
        let cache = tempfile::tempdir().unwrap();
        ModelMirror::open(store.clone(), cache.path(), vec![])
            .await
            .unwrap();
        let index = super::super::SEARCH_FILE;
        assert_eq!(
            std::fs::read(cache.path().join(index)).unwrap(),
            std::fs::read(root.path().join(index)).unwrap()
        );
        // The local copy serves it: the catalog there maps the index, not a new one.
        let local = super::super::Catalog::load(cache.path()).unwrap();
        let fingerprint = local.table().fingerprint();
        assert!(SearchIndex::open(&cache.path().join(index), fingerprint, local.len()).is_ok());

        // A manifest naming an index the store lacks still copies the catalog.
        std::fs::remove_file(root.path().join(index)).unwrap();
        let cache = tempfile::tempdir().unwrap();
        ModelMirror::open(store, cache.path(), vec![])
            .await
            .unwrap();
        assert!(super::super::Catalog::load(cache.path()).is_ok());
        assert!(!cache.path().join(index).exists());
    }

    #[test]
    fn a_pointer_remembers_the_last_promotions_for_rollback() {
        let mut pointer: Option<Pointer> = None;
        for i in 0..25 {
            pointer = Some(Pointer::promote(pointer, &format!("v{i}")));
        }
        let pointer = pointer.unwrap();
        assert_eq!(
            pointer.history.len(),
            crate::recommend::model::POINTER_HISTORY
        );
        assert_eq!(pointer.history.last().map(String::as_str), Some("v23"));
        let back = pointer.rolled_back().unwrap();
        assert_eq!((back.version.as_str(), back.history.len()), ("v23", 19));
        let again = Pointer::promote(Some(back.clone()), "v23");
        assert_eq!(
            again.history, back.history,
            "promoting what is served adds nothing"
        );
    }

    #[tokio::test]
    async fn publishing_refuses_an_existing_version_and_a_directory_without_a_manifest() {
        let (root, store) = location();
        write(root.path(), "v1", true, false);
        let err = publish(&*store, &root.path().join("versions/v1"), "v1").await;
        assert!(matches!(err, Err(PublishError::Invalid { .. })), "{err:?}");
        let partial = tempfile::tempdir().unwrap();
        std::fs::write(partial.path().join("items.txt"), "a\n").unwrap();
        let err = publish(&*store, partial.path(), "v9").await;
        assert!(matches!(err, Err(PublishError::Invalid { .. })), "{err:?}");
        assert!(
            !root.path().join("versions/v9").exists(),
            "nothing uploaded"
        );
    }
}
