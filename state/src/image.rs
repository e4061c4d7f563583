//! The `images` tree: image id (64 hex, without `sha256:`) -> [`ImageRecord`]. The record
//! carries the image's names (`repo:tag`); a name belongs to one image at a time, so an
//! import that takes a name from another image leaves that one untagged, as Docker does.
//! Every write runs in one sled transaction that also bumps the store's write counter (see
//! `store::counted`); its `_unflushed` form returns that counter for the daemon's flush
//! thread to make durable, the plain form flushes before it returns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sled::transaction::{
    abort, ConflictableTransactionResult, TransactionError, TransactionalTree,
};
use sled::Tree;
use thiserror::Error;

use crate::record::Timestamp;

/// Version of [`ImageRecord`]'s on-disk shape.
pub const IMAGE_RECORD_VERSION: u32 = 1;
/// Name of the tree of image records.
pub const IMAGES_TREE: &str = "images";

/// One imported image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Shape version ([`IMAGE_RECORD_VERSION`]).
    pub version: u32,
    /// sha256 of the imported tarball, 64 lowercase hex digits: the content address.
    pub id: String,
    /// Names pointing at it, `repo:tag`; empty for an untagged (dangling) image.
    pub repo_tags: Vec<String>,
    /// When it was first imported.
    pub created_at: Timestamp,
    /// Bytes of the unpacked root filesystem (Docker's Size).
    pub size: u64,
    /// Defaults for containers, from the import's `changes` (empty for a plain import and
    /// for records written before images had a config).
    #[serde(default)]
    pub config: ImageConfig,
    /// For an image pulled from a registry: its layers' diff ids (`sha256:<hex>` of each
    /// uncompressed tar), bottom first; each is unpacked once under `images/layers/` and
    /// shared. Empty for an imported tarball (one flattened rootfs) and for older records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
    /// `repo@sha256:<manifest digest>` of each registry manifest this image was pulled by
    /// (Docker's RepoDigests); empty for imports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
    /// For a pulled image: the media type of the manifest it was pulled by (Docker schema 2
    /// or OCI), so a push keeps its family. None for imports and older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_type: Option<String>,
}

/// An image's defaults for its containers (Docker's image `Config` subset an import's
/// `changes` can set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    /// `KEY=VALUE` environment, in the order set; a container's own value wins per key.
    pub env: Vec<String>,
    /// Default command; None when never set (a create must then give one).
    pub cmd: Option<Vec<String>>,
    /// Default entrypoint; None when never set.
    pub entrypoint: Option<Vec<String>>,
    /// Default working directory (absolute), empty for the container's default.
    pub working_dir: String,
    /// Default `USER[:GROUP]`, empty for root.
    pub user: String,
    /// Labels a container inherits under its own.
    pub labels: BTreeMap<String, String>,
    /// Default stop signal, empty for SIGTERM.
    pub stop_signal: String,
    /// `PORT/PROTO` the image declares (Docker's ExposedPorts); stored and shown, from a
    /// pulled image's config. Left out of the JSON when empty, so import ids stay as they were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    /// Paths the image declares as volumes (Docker's Volumes); stored and shown.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// The image's Healthcheck object as the registry's config blob has it; stored and shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
}

impl ImageConfig {
    /// Whether nothing is set (a plain import).
    pub fn is_empty(&self) -> bool {
        *self == ImageConfig::default()
    }
}

/// What can go wrong with the images tree.
#[derive(Debug, Error)]
pub enum ImageStoreError {
    /// sled failed to read.
    #[error("reading the image store failed")]
    Read(#[source] sled::Error),
    /// sled failed to write or flush.
    #[error("writing the image store failed")]
    Write(#[source] sled::Error),
    /// A stored record is not valid JSON for [`ImageRecord`].
    #[error("the record of image {id} cannot be decoded")]
    Decode {
        /// The key.
        id: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// No image has this id.
    #[error("no such image: {id}")]
    NoSuchImage {
        /// The id.
        id: String,
    },
}

/// The images tree of the store.
#[derive(Debug, Clone)]
pub struct ImageStore {
    /// The store's write counter and flusher.
    pub(crate) counted: crate::store::Counted,
    /// id -> serde_json of [`ImageRecord`].
    pub(crate) tree: Tree,
}

fn decode(id: &[u8], bytes: &[u8]) -> Result<ImageRecord, ImageStoreError> {
    serde_json::from_slice(bytes).map_err(|source| ImageStoreError::Decode {
        id: String::from_utf8_lossy(id).into_owned(),
        source,
    })
}

fn encode(rec: &ImageRecord) -> Vec<u8> {
    // A struct of strings, numbers and a timestamp always serializes.
    serde_json::to_vec(rec).unwrap_or_default()
}

/// Why an image name is refused: the texts of Docker's reference parser.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// Not `[DOMAIN/]PATH[:TAG]` as Docker spells them.
    #[error("invalid reference format")]
    Format,
    /// Upper case in the repository path.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// Longer than Docker allows.
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    TooLong,
}

/// Checks an image name as Docker's `ParseNormalizedNamed` does (without digests, which
/// moor does not have) and returns it normalized (`:latest` added when there is no tag).
/// `[DOMAIN/]COMPONENT[/COMPONENT...][:TAG]`: a component is lowercase letters and digits
/// joined by `.`, `_`, `__` or dashes; a tag is up to 128 of `[A-Za-z0-9_.-]`, not starting
/// with `.` or `-`; the first part is a domain when it has a `.` or `:`, or is `localhost`.
pub fn parse_reference(name: &str) -> Result<String, ReferenceError> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repo, tag) = match last.rsplit_once(':') {
        Some((_, tag)) => (&name[..name.len() - tag.len() - 1], Some(tag)),
        None => (name, None),
    };
    if let Some(tag) = tag {
        let first_ok = tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        let rest_ok = tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || tag.len() > 128 {
            return Err(ReferenceError::Format);
        }
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    // Docker's rule: a first part with `.` or `:`, `localhost`, or upper case is a domain.
    let domain = parts.len() > 1
        && (parts[0].contains(['.', ':'])
            || parts[0] == "localhost"
            || parts[0].bytes().any(|b| b.is_ascii_uppercase()));
    if domain {
        let host = parts.remove(0);
        let (host, port) = match host.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        };
        let host_ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        let port_ok = match port {
            None => true,
            Some(p) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
        };
        if !host_ok || !port_ok {
            return Err(ReferenceError::Format);
        }
    }
    if repo.len() > 255 {
        return Err(ReferenceError::TooLong);
    }
    let mut upper = false;
    for part in &parts {
        match component(part) {
            Component::Valid => {}
            Component::Upper => upper = true,
            Component::Invalid => return Err(ReferenceError::Format),
        }
    }
    if upper {
        let familiar = if domain || repo.contains('/') {
            repo.to_string()
        } else {
            format!("library/{repo}")
        };
        return Err(ReferenceError::Uppercase(familiar));
    }
    let familiar = familiar(repo);
    Ok(format!("{familiar}:{}", tag.unwrap_or("latest")))
}

/// A repository as Docker shows it: without `docker.io/` and, for a one-part path, without
/// `library/` (the docker CLI sends `docker.io/library/bb` for `bb`).
fn familiar(repo: &str) -> &str {
    let rest = ["docker.io/", "index.docker.io/"]
        .iter()
        .find_map(|d| repo.strip_prefix(d))
        .unwrap_or(repo);
    if rest.len() == repo.len() {
        return repo;
    }
    match rest.strip_prefix("library/") {
        Some(short) if !short.contains('/') => short,
        _ => rest,
    }
}

/// What [`component`] found.
enum Component {
    Valid,
    /// Valid once lowercased.
    Upper,
    Invalid,
}

/// A path component: alphanumerics joined by one separator (`.`, `_`, `__`, dashes).
fn component(part: &str) -> Component {
    let lower = part.to_ascii_lowercase();
    let b = lower.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Component::Invalid;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &lower[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return Component::Invalid;
        }
    }
    match part.bytes().any(|c| c.is_ascii_uppercase()) {
        true => Component::Upper,
        false => Component::Valid,
    }
}

/// Adds `:latest` to a name without a tag (a `:` after the last `/` is a tag).
pub fn normalize_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

impl ImageStore {
    fn flush(&self) -> Result<(), ImageStoreError> {
        self.counted.flush().map_err(ImageStoreError::Write)
    }

    /// One counted write of the tree (see `store::counted`).
    fn write<T>(
        &self,
        f: impl Fn(&TransactionalTree) -> ConflictableTransactionResult<T, ImageStoreError>,
    ) -> Result<(T, u64), ImageStoreError> {
        self.counted.write(&self.tree, f).map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => ImageStoreError::Write(e),
        })
    }

    /// Every readable image, newest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageStoreError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item.map_err(ImageStoreError::Read)?;
            out.push(decode(&k, &v)?);
        }
        out.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(out)
    }

    /// The image with this exact id.
    pub fn get(&self, id: &str) -> Result<Option<ImageRecord>, ImageStoreError> {
        let raw = self.tree.get(id).map_err(ImageStoreError::Read)?;
        raw.map(|v| decode(id.as_bytes(), &v)).transpose()
    }

    /// Finds an image by name (`repo[:tag]`), `sha256:<hex>`, full id or unique id prefix.
    pub fn resolve(&self, key: &str) -> Result<Option<ImageRecord>, ImageStoreError> {
        let images = self.list()?;
        // `docker.io/library/bb` finds `bb:latest` (a name Docker refuses finds nothing).
        let name = parse_reference(key).unwrap_or_else(|_| normalize_name(key));
        if let Some(img) = images.iter().find(|i| i.repo_tags.contains(&name)) {
            return Ok(Some(img.clone()));
        }
        // `repo@sha256:...`: the image pulled by that manifest digest.
        if let Some((repo, digest)) = key.split_once('@') {
            let repo = parse_reference(repo)
                .ok()
                .and_then(|n| n.rsplit_once(':').map(|(r, _)| r.to_string()))
                .unwrap_or_else(|| repo.to_string());
            let want = format!("{repo}@{digest}");
            let found = images.iter().find(|i| i.repo_digests.contains(&want));
            return Ok(found.cloned());
        }
        let hex = key.strip_prefix("sha256:").unwrap_or(key);
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut found = images.into_iter().filter(|i| i.id.starts_with(hex));
        match (found.next(), found.next()) {
            (Some(one), None) => Ok(Some(one)),
            _ => Ok(None),
        }
    }

    /// Records an import: creates the image or keeps the existing one (same id), adds `name`
    /// to it and takes the name from any other image. Returns the stored record.
    pub fn add(
        &self,
        fresh: &ImageRecord,
        name: Option<&str>,
    ) -> Result<ImageRecord, ImageStoreError> {
        let (rec, _) = self.add_unflushed(fresh, name)?;
        self.flush()?;
        Ok(rec)
    }

    /// [`ImageStore::add`] without the flush: also returns the write's counter.
    pub fn add_unflushed(
        &self,
        fresh: &ImageRecord,
        name: Option<&str>,
    ) -> Result<(ImageRecord, u64), ImageStoreError> {
        let name = name.map(normalize_name);
        let others = self.list()?;
        self.write(|t| {
            for other in others.iter().filter(|o| o.id != fresh.id) {
                if let Some(n) = &name {
                    if other.repo_tags.contains(n) {
                        let mut o = other.clone();
                        o.repo_tags.retain(|t| t != n);
                        t.insert(o.id.as_bytes(), encode(&o))?;
                    }
                }
            }
            let mut rec = match t.get(fresh.id.as_bytes())? {
                Some(v) => decode(fresh.id.as_bytes(), &v).or_else(abort)?,
                None => fresh.clone(),
            };
            if let Some(n) = &name {
                if !rec.repo_tags.contains(n) {
                    rec.repo_tags.push(n.clone());
                }
            }
            if rec.manifest_type.is_none() {
                rec.manifest_type.clone_from(&fresh.manifest_type);
            }
            for d in &fresh.repo_digests {
                if !rec.repo_digests.contains(d) {
                    rec.repo_digests.push(d.clone());
                }
            }
            t.insert(rec.id.as_bytes(), encode(&rec))?;
            Ok(rec)
        })
    }

    /// Removes one name from an image; returns the record left (possibly untagged).
    pub fn untag(&self, id: &str, name: &str) -> Result<ImageRecord, ImageStoreError> {
        let (rec, _) = self.untag_unflushed(id, name)?;
        self.flush()?;
        Ok(rec)
    }

    /// [`ImageStore::untag`] without the flush: also returns the write's counter.
    pub fn untag_unflushed(
        &self,
        id: &str,
        name: &str,
    ) -> Result<(ImageRecord, u64), ImageStoreError> {
        let name = normalize_name(name);
        self.write(|t| {
            let Some(raw) = t.get(id.as_bytes())? else {
                return abort(ImageStoreError::NoSuchImage { id: id.to_string() });
            };
            let mut rec = decode(id.as_bytes(), &raw).or_else(abort)?;
            rec.repo_tags.retain(|t| *t != name);
            t.insert(id.as_bytes(), encode(&rec))?;
            Ok(rec)
        })
    }

    /// Removes an image's record.
    pub fn remove(&self, id: &str) -> Result<(), ImageStoreError> {
        self.remove_unflushed(id)?;
        self.flush()
    }

    /// [`ImageStore::remove`] without the flush: returns the write's counter.
    pub fn remove_unflushed(&self, id: &str) -> Result<u64, ImageStoreError> {
        let ((), seq) = self.write(|t| {
            t.remove(id.as_bytes())?;
            Ok(())
        })?;
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_checked_like_docker() {
        for (name, want) in [
            ("bb", "bb:latest"),
            ("bb:1.0", "bb:1.0"),
            ("team/app_x:v-2", "team/app_x:v-2"),
            ("a__b/c.d/e---f", "a__b/c.d/e---f:latest"),
            (
                "registry.example.com:5000/team/app:1",
                "registry.example.com:5000/team/app:1",
            ),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000", "localhost:5000"),
            ("docker.io/library/two:1", "two:1"),
            ("docker.io/team/app", "team/app:latest"),
            ("index.docker.io/library/a/b:2", "library/a/b:2"),
            (
                "Registry.Example.com/app",
                "Registry.Example.com/app:latest",
            ),
        ] {
            assert_eq!(parse_reference(name).as_deref(), Ok(want), "{name}");
        }
        for bad in [
            "",
            ":1",
            "bb:",
            "bb:-x",
            "bb:.x",
            "a b",
            "bb/",
            "/bb",
            "a//b",
            "-bb",
            "bb-",
            "a...b",
            "a___b",
            "bb@sha256:00",
            "host:x/app",
        ] {
            assert_eq!(parse_reference(bad), Err(ReferenceError::Format), "{bad:?}");
        }
        assert_eq!(
            parse_reference("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            parse_reference("team/App:1"),
            Err(ReferenceError::Uppercase("team/App".into()))
        );
        assert_eq!(
            parse_reference(&"a".repeat(256)),
            Err(ReferenceError::TooLong)
        );
        assert_eq!(
            parse_reference(&format!("bb:{}", "t".repeat(129))),
            Err(ReferenceError::Format)
        );
    }

    fn store() -> (tempfile::TempDir, ImageStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::Store::open(&dir.path().join("db")).expect("open");
        (dir, store.images().expect("images"))
    }

    fn image(id: &str) -> ImageRecord {
        ImageRecord {
            version: IMAGE_RECORD_VERSION,
            id: id.repeat(64 / id.len()),
            repo_tags: Vec::new(),
            created_at: chrono::Utc::now(),
            size: 1,
            config: ImageConfig::default(),
            layers: Vec::new(),
            repo_digests: Vec::new(),
            manifest_type: None,
        }
    }

    #[test]
    fn a_name_moves_to_the_newest_import() {
        let (_dir, s) = store();
        let a = s.add(&image("a"), Some("bb")).expect("add a");
        assert_eq!(a.repo_tags, vec!["bb:latest".to_string()]);
        let again = s.add(&image("a"), Some("bb:1")).expect("re-add a");
        assert_eq!(again.repo_tags.len(), 2, "same id: names accumulate");
        s.add(&image("b"), Some("bb")).expect("add b");
        let a = s.get(&a.id).expect("get").expect("a");
        assert_eq!(a.repo_tags, vec!["bb:1".to_string()]);
        assert_eq!(
            s.resolve("bb").expect("resolve").expect("b").id,
            image("b").id
        );
        assert_eq!(
            s.resolve("sha256:aaaa").expect("resolve").expect("a").id,
            a.id
        );
        assert!(s.resolve("nothing").expect("resolve").is_none());
        s.untag(&a.id, "bb:1").expect("untag");
        s.remove(&a.id).expect("remove");
        assert_eq!(s.list().expect("list").len(), 1);
    }

    #[test]
    fn records_without_a_config_still_decode() {
        let old = r#"{"version":1,"id":"ab","repo_tags":["bb:latest"],
            "created_at":"2024-01-01T00:00:00Z","size":7}"#;
        let rec: ImageRecord = serde_json::from_str(old).expect("old record");
        assert!(rec.config.is_empty());
        let mut with = rec.clone();
        with.config.cmd = Some(vec!["sh".into()]);
        with.config.env = vec!["A=1".into()];
        let back: ImageRecord = serde_json::from_slice(&encode(&with)).expect("decode");
        assert_eq!(back, with);
        assert!(!back.config.is_empty());
    }

    #[test]
    fn names_get_latest() {
        assert_eq!(normalize_name("bb"), "bb:latest");
        assert_eq!(normalize_name("reg:5000/bb"), "reg:5000/bb:latest");
        assert_eq!(normalize_name("bb:1.0"), "bb:1.0");
    }
}
