//! The images' owner: the Supervisor serialises every change of the images tree and its
//! records (import's and pull's commit, tag, untag, delete with its "in use" check) with
//! the image check of a container create, so a `rmi` racing a `create` cannot leave a
//! container whose image is gone. What is slow stays off its thread: an import is unpacked
//! (and a pull downloaded) on a blocking pool before [`CommitImage`], whose step is renames
//! and the record's write (a sled write and flush, as a container create's); a deleted
//! image's tree is moved aside at once and removed on a blocking pool; each image's
//! metadata file (`image.json`) is rewritten there too.

use std::sync::Mutex;

use actix::prelude::*;
use moor_state::image::{normalize_name, ImageRecord, ImageStore, ImageStoreError};
use moor_state::store::StoreError;
use moor_state::ContainerSpec;
use thiserror::Error;
use tracing::warn;

use crate::daemon::messages::{
    CommitImage, FindImage, ImageFiles, ListImages, RemoveImage, TagImage,
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
    },
}

/// Serialises the rewrites of the images' metadata files: each rewrite reads the records
/// when it holds this, so the last one to run writes the latest names.
static METADATA: Mutex<()> = Mutex::new(());

fn records(shared: &Shared) -> Result<ImageStore, ImageOwnerError> {
    Ok(shared.store.images()?)
}

/// Rewrites each image's own copy of its record (for a store rebuild) on a blocking pool;
/// a failure is logged only (the store has the record).
fn save_metadata(shared: &Shared, images: ImageStore) {
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

impl Handler<CommitImage> for Supervisor {
    type Result = Result<Committed, ImageOwnerError>;

    fn handle(&mut self, msg: CommitImage, _: &mut Context<Self>) -> Self::Result {
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
                dirs.install_layered(&id, &msg.record.layers)?;
                None
            }
        };
        crate::daemon::fault::point("image-committed");
        let images = records(&self.shared)?;
        let record = images.add(&msg.record, msg.name.as_deref())?;
        crate::daemon::fault::point("image-recorded");
        save_metadata(&self.shared, images);
        Ok(Committed { record, leftover })
    }
}

impl Handler<TagImage> for Supervisor {
    type Result = Result<ImageRecord, ImageOwnerError>;

    fn handle(&mut self, msg: TagImage, _: &mut Context<Self>) -> Self::Result {
        let images = records(&self.shared)?;
        let img = images
            .resolve(&msg.image)?
            .ok_or(ImageOwnerError::NoSuchImage(msg.image))?;
        let rec = images.add(&img, Some(&msg.name))?;
        save_metadata(&self.shared, images);
        Ok(rec)
    }
}

impl Handler<RemoveImage> for Supervisor {
    type Result = Result<ImageRemoved, ImageOwnerError>;

    fn handle(&mut self, msg: RemoveImage, _: &mut Context<Self>) -> Self::Result {
        let images = records(&self.shared)?;
        let img = images
            .resolve(&msg.0)?
            .ok_or_else(|| ImageOwnerError::NoSuchImage(msg.0.clone()))?;
        let by_name = normalize_name(&msg.0);
        // A name of an image that has others: only the name goes, as in Docker.
        if img.repo_tags.contains(&by_name) && img.repo_tags.len() > 1 {
            images.untag(&img.id, &by_name)?;
            save_metadata(&self.shared, images);
            return Ok(ImageRemoved::Untagged {
                name: by_name,
                record: img,
            });
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
        let files = ImageDirs::new(&self.shared.layout.root).take_aside(&img.id)?;
        images.remove(&img.id)?;
        Ok(ImageRemoved::Deleted { record: img, files })
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
