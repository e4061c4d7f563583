//! The images' owner: the Supervisor serialises every change of the images tree and its
//! records (import's and pull's commit, tag, untag, delete with its "in use" check) with
//! the image check of a container create, so a `rmi` racing a `create` cannot leave a
//! container whose image is gone. What is slow stays off its thread: an import is unpacked
//! (and a pull downloaded) on a blocking pool before [`CommitImage`], whose step is renames
//! and the record's write, committed on its thread and flushed by the store's flush thread
//! (`daemon::durable`), as a container create's: every answer waits for its write's flush
//! without holding the thread. A deleted image's tree is moved aside at once and removed on
//! a blocking pool once its record's removal is durable; each image's metadata file
//! (`image.json`) is rewritten there too.

use std::sync::Mutex;

use actix::prelude::*;
use moor_state::image::{normalize_name, ImageRecord, ImageStore, ImageStoreError};
use moor_state::store::StoreError;
use moor_state::ContainerSpec;
use thiserror::Error;
use tracing::warn;

use crate::daemon::messages::{
    AddRepoDigest, CommitImage, FindImage, ImageFiles, ListImages, PruneImages, RemoveImage,
    TagImage,
};
use crate::daemon::supervisor::Supervisor;
use crate::daemon::Shared;
use crate::image::{ImageDirs, ImageError};

/// Why an image operation failed.
#[derive(Debug, Error)]
pub enum ImageOwnerError {
    /// No image has this name or id (a create's image removed before its record was made
    /// included).
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// Removal of an image a container uses (Docker's text).
    #[error("conflict: unable to remove image {name} (must force) - image is being used by container {container}")]
    InUse {
        /// The image as named in the request.
        name: String,
        /// The first container using it (short id).
        container: String,
    },
    /// The store could not be read (its images tree, or the containers for the in-use check).
    #[error("store")]
    Store(#[from] StoreError),
    /// The containers could not be listed (the in-use check).
    #[error("list the containers")]
    Containers(#[source] Box<crate::daemon::error::ContainerError>),
    /// An image record could not be read or written.
    #[error("image store")]
    Records(#[from] ImageStoreError),
    /// The image's files could not be put in place or moved aside.
    #[error(transparent)]
    Files(#[from] ImageError),
    /// The record's write was committed but its flush failed.
    #[error(transparent)]
    Flush(#[from] crate::daemon::durable::FlushError),
    /// A pulled layer was removed (no image listed it yet) before the pull's commit: the
    /// pull fetches it again.
    #[error("layer {0} was removed while the pull ran")]
    LayerGone(String),
}

impl ImageOwnerError {
    /// Whether the client is at fault (an archive moor refuses).
    pub fn is_bad_archive(&self) -> bool {
        matches!(self, ImageOwnerError::Files(e) if e.is_bad_archive())
    }
}

/// A committed import or pull.
#[derive(Debug)]
pub struct Committed {
    /// The stored record (with every name it has now).
    pub record: ImageRecord,
    /// What is left of an import's work directory (all of it when the image was there
    /// already): the caller drops it on a blocking pool before it answers.
    pub leftover: Option<crate::image::Unpacked>,
}

/// What a removal did.
#[derive(Debug)]
pub enum ImageRemoved {
    /// Only the name asked for went: the image has others.
    Untagged {
        /// The name removed.
        name: String,
        /// The image as it was.
        record: ImageRecord,
    },
    /// The image and all its names went.
    Deleted {
        /// The image as it was.
        record: ImageRecord,
        /// Its files, moved aside: the caller drops them (removes the tree) on a blocking
        /// pool before it answers.
        files: Option<crate::image::TmpDir>,
        /// Its layers no other image lists, moved aside likewise.
        layers: Vec<GoneLayer>,
    },
}

/// A layer no image lists any more, moved aside.
#[derive(Debug)]
pub struct GoneLayer {
    /// Its diff id.
    pub diff_id: String,
    /// Its unpacked size.
    pub size: u64,
    /// Its tree under `tmp/`: removed when dropped, on a blocking pool.
    pub files: Option<crate::image::TmpDir>,
}

/// What an image prune did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// The images removed, as they were.
    pub images: Vec<ImageRecord>,
    /// Their directories under `tmp/`: removed when dropped, on a blocking pool.
    pub files: Vec<crate::image::TmpDir>,
    /// The layers no image lists any more.
    pub layers: Vec<GoneLayer>,
}

/// Moves aside every layer in `candidates` that no image in `images` lists (the images'
/// owner runs it after a removal; a pull not yet committed finds its layer gone at its
/// commit and fetches it again).
fn collect_layers(
    dirs: &ImageDirs,
    images: &ImageStore,
    candidates: impl IntoIterator<Item = String>,
) -> Result<Vec<GoneLayer>, ImageOwnerError> {
    let kept: std::collections::BTreeSet<String> =
        images.list()?.into_iter().flat_map(|r| r.layers).collect();
    let mut gone = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for diff_id in candidates {
        if kept.contains(&diff_id) || !seen.insert(diff_id.clone()) {
            continue;
        }
        let size = dirs.layer_size(&diff_id);
        if let Some(files) = dirs.take_layer_aside(&diff_id)? {
            gone.push(GoneLayer {
                diff_id,
                size,
                files: Some(files),
            });
        }
    }
    Ok(gone)
}

/// Serialises the rewrites of the images' metadata files: each rewrite reads the records
/// when it holds this, so the last one to run writes the latest names.
static METADATA: Mutex<()> = Mutex::new(());

fn records(shared: &Shared) -> Result<ImageStore, ImageOwnerError> {
    Ok(shared.store.images()?)
}

/// Rewrites each image's own copy of its record (for a store rebuild) on a blocking pool;
/// a failure is logged only (the store has the record).
fn save_metadata(shared: &Shared) {
    let images = match records(shared) {
        Ok(images) => images,
        Err(e) => return warn!(error = %e, "cannot open the images to write their metadata"),
    };
    let dirs = ImageDirs::new(&shared.layout.root);
    tokio::task::spawn_blocking(move || {
        let _order = METADATA.lock().unwrap_or_else(|p| p.into_inner());
        match images.list().map(|list| dirs.save_records(&list)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "cannot write image metadata"),
            Err(e) => warn!(error = %e, "cannot list images"),
        }
    });
}

/// The create's image check, run in the Supervisor's create step: the image a spec was
/// built from must still be recorded when the container's record is made.
pub fn check_create(shared: &Shared, spec: &ContainerSpec) -> Result<(), ImageOwnerError> {
    if spec.image_id.is_empty() {
        return Ok(());
    }
    match records(shared)?.get(&spec.image_id)? {
        Some(_) => Ok(()),
        None => Err(ImageOwnerError::NoSuchImage(spec.image.clone())),
    }
}

/// The answer to an image write: `out` once the write of counter `seq` is durable.
fn once_durable<T: Send + 'static>(
    shared: &Shared,
    written: Result<(T, u64), ImageOwnerError>,
) -> ResponseFuture<Result<T, ImageOwnerError>> {
    let flushed = written
        .as_ref()
        .ok()
        .map(|(_, seq)| shared.durable.flushed(*seq));
    Box::pin(async move {
        let (out, _) = written?;
        if let Some(flushed) = flushed {
            if let Err(e) = flushed.await {
                // What `out` holds on disk (a work directory, files moved aside) is
                // removed off the actors' thread.
                tokio::task::spawn_blocking(move || drop(out));
                return Err(e.into());
            }
        }
        Ok(out)
    })
}

impl Handler<CommitImage> for Supervisor {
    type Result = ResponseFuture<Result<Committed, ImageOwnerError>>;

    /// Committed here (a create or removal after it sees it), answered once durable.
    fn handle(&mut self, msg: CommitImage, _: &mut Context<Self>) -> Self::Result {
        let shared = self.shared.clone();
        let answer = once_durable(&self.shared, self.commit_image(msg));
        Box::pin(async move {
            let committed = answer.await?;
            crate::daemon::fault::point("image-recorded");
            save_metadata(&shared);
            Ok(committed)
        })
    }
}

impl Supervisor {
    /// An import's or pull's commit up to its record's committed write.
    fn commit_image(&self, msg: CommitImage) -> Result<(Committed, u64), ImageOwnerError> {
        let dirs = ImageDirs::new(&self.shared.layout.root);
        let id = msg.record.id.clone();
        crate::daemon::fault::point("image-unpacked");
        let leftover = match msg.files {
            ImageFiles::Unpacked(unpacked) => match dirs.commit(&id, &unpacked) {
                Ok(()) => Some(unpacked),
                Err(e) => {
                    // Removed off this thread; the import fails.
                    tokio::task::spawn_blocking(move || drop(unpacked));
                    return Err(e.into());
                }
            },
            ImageFiles::Layers => {
                // A removal may have collected a layer this pull found or unpacked.
                if let Some(gone) = msg.record.layers.iter().find(|l| !dirs.has_layer(l)) {
                    return Err(ImageOwnerError::LayerGone(gone.clone()));
                }
                dirs.install_layered(&id, &msg.record.layers, None)?;
                None
            }
        };
        crate::daemon::fault::point("image-committed");
        let added = records(&self.shared)?.add_unflushed(&msg.record, msg.name.as_deref());
        let (record, seq) = match added {
            Ok(added) => added,
            Err(e) => {
                tokio::task::spawn_blocking(move || drop(leftover));
                return Err(e.into());
            }
        };
        Ok((Committed { record, leftover }, seq))
    }
}

/// The answer to a change of names: the record once durable, then the metadata files.
fn names_changed(
    shared: &std::sync::Arc<Shared>,
    written: Result<(ImageRecord, u64), ImageOwnerError>,
) -> ResponseFuture<Result<ImageRecord, ImageOwnerError>> {
    let (shared, answer) = (shared.clone(), once_durable(shared, written));
    Box::pin(async move {
        let rec = answer.await?;
        save_metadata(&shared);
        Ok(rec)
    })
}

impl Handler<TagImage> for Supervisor {
    type Result = ResponseFuture<Result<ImageRecord, ImageOwnerError>>;

    fn handle(&mut self, msg: TagImage, _: &mut Context<Self>) -> Self::Result {
        let tagged = records(&self.shared).and_then(|images| {
            let img = images
                .resolve(&msg.image)?
                .ok_or(ImageOwnerError::NoSuchImage(msg.image))?;
            Ok(images.add_unflushed(&img, Some(&msg.name))?)
        });
        names_changed(&self.shared, tagged)
    }
}

impl Handler<AddRepoDigest> for Supervisor {
    type Result = ResponseFuture<Result<ImageRecord, ImageOwnerError>>;

    fn handle(&mut self, msg: AddRepoDigest, _: &mut Context<Self>) -> Self::Result {
        let added = records(&self.shared).and_then(|images| {
            let mut img = images
                .get(&msg.id)?
                .ok_or(ImageOwnerError::NoSuchImage(msg.id))?;
            img.repo_digests = vec![msg.digest];
            Ok(images.add_unflushed(&img, None)?)
        });
        names_changed(&self.shared, added)
    }
}

impl Handler<RemoveImage> for Supervisor {
    type Result = ResponseFuture<Result<ImageRemoved, ImageOwnerError>>;

    /// Committed here; answered (and so the files removed by the caller) once durable.
    fn handle(&mut self, msg: RemoveImage, _: &mut Context<Self>) -> Self::Result {
        let removed = self.remove_image(msg);
        let untagged = matches!(removed, Ok((ImageRemoved::Untagged { .. }, _)));
        let (shared, answer) = (self.shared.clone(), once_durable(&self.shared, removed));
        Box::pin(async move {
            let removed = answer.await?;
            if untagged {
                save_metadata(&shared);
            }
            Ok(removed)
        })
    }
}

impl Supervisor {
    /// A removal up to its committed write.
    fn remove_image(&mut self, msg: RemoveImage) -> Result<(ImageRemoved, u64), ImageOwnerError> {
        let images = records(&self.shared)?;
        let img = images
            .resolve(&msg.0)?
            .ok_or_else(|| ImageOwnerError::NoSuchImage(msg.0.clone()))?;
        let by_name = normalize_name(&msg.0);
        // A name of an image that has others: only the name goes, as in Docker.
        if img.repo_tags.contains(&by_name) && img.repo_tags.len() > 1 {
            let (_, seq) = images.untag_unflushed(&img.id, &by_name)?;
            let untagged = ImageRemoved::Untagged {
                name: by_name,
                record: img,
            };
            return Ok((untagged, seq));
        }
        // Every container record made so far: a create checks the image in its own step
        // of this actor, so none can be on its way.
        let containers = self
            .list()
            .map_err(|e| ImageOwnerError::Containers(Box::new(e)))?;
        if let Some(user) = containers.iter().find(|r| r.spec.image_id == img.id) {
            return Err(ImageOwnerError::InUse {
                name: msg.0,
                container: user.id[..12].to_string(),
            });
        }
        let dirs = ImageDirs::new(&self.shared.layout.root);
        let files = dirs.take_aside(&img.id)?;
        let seq = images.remove_unflushed(&img.id)?;
        let layers = collect_layers(&dirs, &images, img.layers.clone())?;
        let deleted = ImageRemoved::Deleted {
            record: img,
            files,
            layers,
        };
        Ok((deleted, seq))
    }
}

impl Handler<PruneImages> for Supervisor {
    type Result = ResponseFuture<Result<Pruned, ImageOwnerError>>;

    fn handle(&mut self, msg: PruneImages, _: &mut Context<Self>) -> Self::Result {
        let pruned = self.prune_images(msg);
        let (shared, answer) = (self.shared.clone(), once_durable(&self.shared, pruned));
        Box::pin(async move {
            let pruned = answer.await?;
            if !pruned.images.is_empty() {
                save_metadata(&shared);
            }
            Ok(pruned)
        })
    }
}

impl Supervisor {
    /// A prune up to its last committed write (the counter of the last write before it when
    /// it removed nothing).
    fn prune_images(&mut self, msg: PruneImages) -> Result<(Pruned, u64), ImageOwnerError> {
        let mut seq = self.shared.store.flusher().committed();
        let images = records(&self.shared)?;
        let containers = self
            .list()
            .map_err(|e| ImageOwnerError::Containers(Box::new(e)))?;
        let used: std::collections::BTreeSet<&str> = containers
            .iter()
            .map(|r| r.spec.image_id.as_str())
            .collect();
        let dirs = ImageDirs::new(&self.shared.layout.root);
        let mut pruned = Pruned::default();
        for img in images.list()? {
            let candidate = msg.all || img.repo_tags.is_empty();
            if !candidate || used.contains(img.id.as_str()) {
                continue;
            }
            if let Some(files) = dirs.take_aside(&img.id)? {
                pruned.files.push(files);
            }
            seq = images.remove_unflushed(&img.id)?;
            pruned.images.push(img);
        }
        // Every layer no image lists: the pruned images' and any a crash left unlisted.
        pruned.layers = collect_layers(&dirs, &images, dirs.layers_on_disk())?;
        Ok((pruned, seq))
    }
}

impl Handler<FindImage> for Supervisor {
    type Result = Result<Option<ImageRecord>, ImageOwnerError>;

    fn handle(&mut self, msg: FindImage, _: &mut Context<Self>) -> Self::Result {
        Ok(records(&self.shared)?.resolve(&msg.0)?)
    }
}

impl Handler<ListImages> for Supervisor {
    type Result = Result<Vec<ImageRecord>, ImageOwnerError>;

    fn handle(&mut self, _: ListImages, _: &mut Context<Self>) -> Self::Result {
        Ok(records(&self.shared)?.list()?)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use moor_state::image::IMAGE_RECORD_VERSION;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::runtime::fake::FakeRuntime;

    /// Installs a one-file layer; returns its diff id.
    fn layer(dirs: &ImageDirs, dir: &Path) -> String {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_mtime(1);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, "f", &b"hi"[..]).expect("tar");
        let tar = b.into_inner().expect("tar");
        let hex: String = Sha256::digest(&tar)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let diff_id = format!("sha256:{hex}");
        let blob = dir.join("blob");
        std::fs::write(&blob, tar).expect("blob");
        dirs.install_layer(&diff_id, &blob, 1 << 20)
            .expect("install");
        diff_id
    }

    fn commit(id: char, layers: &[String]) -> CommitImage {
        CommitImage {
            record: ImageRecord {
                version: IMAGE_RECORD_VERSION,
                id: id.to_string().repeat(64),
                repo_tags: Vec::new(),
                created_at: chrono::Utc::now(),
                size: 2,
                config: Default::default(),
                layers: layers.to_vec(),
                repo_digests: Vec::new(),
                manifest_type: None,
            },
            name: Some(format!("{id}:1")),
            files: ImageFiles::Layers,
        }
    }

    #[test]
    fn a_layer_collected_before_a_pull_commits_fails_that_commit() {
        System::new().block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let fake = Arc::new(FakeRuntime::default());
            let shared = Arc::new(Shared::for_tests(dir.path(), fake));
            let owner = Supervisor::new(shared.clone(), Default::default()).start();
            let dirs = ImageDirs::new(&shared.layout.root);
            let base = layer(&dirs, dir.path());
            let a = commit('a', std::slice::from_ref(&base));
            owner.send(a).await.expect("mailbox").expect("commit a");
            // A pull of b found `base` on disk; before it commits, a is removed.
            let removed = owner
                .send(RemoveImage("a:1".into()))
                .await
                .expect("mailbox")
                .expect("remove a");
            let ImageRemoved::Deleted { layers, .. } = removed else {
                panic!("a was deleted, not untagged");
            };
            assert_eq!(layers.len(), 1, "its only layer was collected");
            drop(layers);
            assert!(!dirs.has_layer(&base));
            let b = commit('b', std::slice::from_ref(&base));
            let err = owner.send(b).await.expect("mailbox").expect_err("no layer");
            assert!(
                matches!(&err, ImageOwnerError::LayerGone(l) if *l == base),
                "{err:?}"
            );
            let found = owner.send(FindImage("b:1".into())).await.expect("mailbox");
            assert!(
                found.expect("find").is_none(),
                "no record of a broken image"
            );
        });
    }
}
