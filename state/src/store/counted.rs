//! Writes of the trees beside the containers' (images, volumes, networks) counted like a
//! container write: each bumps the store's write counter in its own transaction and marks
//! itself committed, so the flush thread's group commit (and the API's barrier, which waits
//! for everything committed) covers them, and a truncation of their writes is noticed at
//! open as one of a container record would be (see `witness`).

use std::convert::Infallible;

use sled::transaction::{
    ConflictableTransactionResult, TransactionError, Transactional, TransactionalTree,
    UnabortableTransactionError,
};
use sled::Tree;

use super::{bump_seq, Flusher, Store, StoreError};

/// The store's write counter and flusher, as a tree beside the containers' uses them.
#[derive(Debug, Clone)]
pub(crate) struct Counted {
    /// The `meta` tree, which holds the write counter.
    pub(super) meta: Tree,
    /// Marks writes committed and flushes them.
    pub(super) flusher: Flusher,
}

impl Counted {
    /// Runs `f` on `tree` in one transaction with the counter's bump; returns its output and
    /// the write's counter (committed and visible, durable once a flush has reached it).
    pub(crate) fn write<T, E>(
        &self,
        tree: &Tree,
        f: impl Fn(&TransactionalTree) -> ConflictableTransactionResult<T, E>,
    ) -> Result<(T, u64), TransactionError<E>> {
        let (out, seq) = (tree, &self.meta).transaction(|(t, m)| {
            let out = f(t)?;
            Ok((out, bump_seq(m)?))
        })?;
        self.flusher.committed_up_to(seq);
        Ok((out, seq))
    }

    /// [`Counted::write`] of a step that never aborts (an insert, a removal): returns the
    /// write's counter.
    pub(crate) fn write_plain(
        &self,
        tree: &Tree,
        f: impl Fn(&TransactionalTree) -> Result<(), UnabortableTransactionError>,
    ) -> Result<u64, sled::Error> {
        let written = self.write::<(), Infallible>(tree, |t| Ok(f(t)?));
        match written {
            Ok(((), seq)) => Ok(seq),
            Err(TransactionError::Storage(e)) => Err(e),
            Err(TransactionError::Abort(never)) => match never {},
        }
    }

    /// Flushes every write committed so far (the flushing forms of the writes).
    pub(crate) fn flush(&self) -> Result<(), sled::Error> {
        self.flusher.flush_sled().map(drop)
    }
}

/// The trees beside the containers', sharing the store's database and write counter.
impl Store {
    /// The images tree (see [`crate::image`]), sharing this store's database.
    pub fn images(&self) -> Result<crate::image::ImageStore, StoreError> {
        let tree = self
            .db
            .open_tree(crate::image::IMAGES_TREE)
            .map_err(|source| StoreError::Read { source })?;
        Ok(crate::image::ImageStore {
            counted: self.counted(),
            tree,
        })
    }

    /// The networks tree (see [`crate::network`]), sharing this store's database.
    pub fn networks(&self) -> Result<crate::network::NetworkStore, StoreError> {
        let tree = self.db.open_tree(crate::network::NETWORKS_TREE);
        let tree = tree.map_err(|source| StoreError::Read { source })?;
        Ok(crate::network::NetworkStore {
            counted: self.counted(),
            tree,
        })
    }

    /// The volumes tree (see [`crate::volume`]), sharing this store's database.
    pub fn volumes(&self) -> Result<crate::volume::VolumeStore, StoreError> {
        let tree = self
            .db
            .open_tree(crate::volume::VOLUMES_TREE)
            .map_err(|source| StoreError::Read { source })?;
        Ok(crate::volume::VolumeStore {
            counted: self.counted(),
            tree,
        })
    }

    /// The write counter and flusher, for the trees beside the containers'.
    fn counted(&self) -> Counted {
        Counted {
            meta: self.meta.clone(),
            flusher: self.flusher.clone(),
        }
    }
}
