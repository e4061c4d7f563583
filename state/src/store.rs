//! The sled store: typed trees `containers` (id -> record), `names` (name -> id),
//! `meta` (schema version and write counter), and beside them `images`, `volumes` and
//! `networks`, whose writes bump the same counter (`counted`). A plain write is flushed before
//! it returns; an `_unflushed` one returns its counter, durable once a [`Flusher`] flush has
//! reached it (the daemon's flush thread): either way "every transition is flushed to disk
//! before the daemon acknowledges it".
//!
//! A store sled cannot read is moved aside, never deleted ([`Store::open_or_move_aside`]),
//! so the daemon can rebuild it from the per-container spec files.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use sled::transaction::{
    abort, ConflictableTransactionResult, TransactionError, Transactional, TransactionalTree,
};
use sled::Tree;
use thiserror::Error;

use crate::aside;
pub use crate::aside::OPENED_BY_SLED;
use crate::record::{ContainerRecord, RECORD_VERSION};
use crate::schema;

use crate::witness;

mod counted;
mod flush;
pub(crate) use self::counted::Counted;
pub use self::flush::{before_every_flush, Flusher};

/// Name of the tree of records, keyed by container id.
const CONTAINERS_TREE: &str = "containers";
/// Name of the tree of unique names, name -> container id.
const NAMES_TREE: &str = "names";
/// Key in the `meta` tree of the write counter (big-endian u64), bumped by every write.
const WRITE_SEQ_KEY: &[u8] = b"write_seq";

/// What can go wrong with the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled refused to open the store for a reason other than its contents (e.g. locked).
    #[error("cannot open the store at {path}")]
    Open {
        /// The store directory.
        path: PathBuf,
        /// What sled said.
        #[source]
        source: sled::Error,
    },
    /// The store's files are corrupt or unreadable.
    #[error("the store at {path} is corrupt or unreadable")]
    Corrupt {
        /// The store directory.
        path: PathBuf,
        /// What sled said.
        #[source]
        source: sled::Error,
    },
    /// A newer moor wrote this store; it is left untouched.
    #[error("the store has schema version {found}, this build supports up to {supported}")]
    SchemaTooNew {
        /// The version in the store.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// The schema version stamp is not a 4-byte integer.
    #[error("the store's schema version is unreadable ({len} bytes, expected 4)")]
    SchemaUnreadable {
        /// Its length in bytes.
        len: usize,
    },
    /// A migration step failed; the store keeps version `from`.
    #[error("migrating the store from schema version {from} to {to} failed")]
    Migration {
        /// The version it started from.
        from: u32,
        /// The version it was going to.
        to: u32,
        /// Why the step failed.
        #[source]
        source: Box<StoreError>,
    },
    /// Another container holds the name.
    #[error("the name {name} is already in use by container {id}")]
    NameInUse {
        /// The name asked for.
        name: String,
        /// The id of the container holding it.
        id: String,
    },
    /// A container with this id exists.
    #[error("a container with id {id} already exists")]
    IdInUse {
        /// The id.
        id: String,
    },
    /// No container has this id.
    #[error("no such container: {id}")]
    NoSuchContainer {
        /// The id asked for.
        id: String,
    },
    /// `put` was given a record whose name the store does not hold for it.
    #[error("record {id} carries name {name}, which the store does not hold for it: use rename")]
    NameMismatch {
        /// The record's id.
        id: String,
        /// The name the record carries.
        name: String,
    },
    /// A stored record is not valid JSON for [`ContainerRecord`].
    #[error("the record of container {id} cannot be decoded")]
    Decode {
        /// The record's key.
        id: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A stored record was written by a newer moor.
    #[error(
        "the record of container {id} has version {found}, this build reads up to {supported}"
    )]
    RecordTooNew {
        /// The record's key.
        id: String,
        /// Its version.
        found: u32,
        /// The newest record version this build reads.
        supported: u32,
    },
    /// A record could not be serialized.
    #[error("the record of container {id} cannot be encoded")]
    Encode {
        /// The record's id.
        id: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// The names index holds an id that is not UTF-8.
    #[error("the names index entry for {name} is not a valid id")]
    BadIndex {
        /// The name whose entry is bad.
        name: String,
        /// Why it is not a string.
        #[source]
        source: std::string::FromUtf8Error,
    },
    /// Reading from sled failed.
    #[error("reading the store failed")]
    Read {
        /// What sled said.
        #[source]
        source: sled::Error,
    },
    /// Writing or flushing to sled failed.
    #[error("writing the store failed")]
    Write {
        /// What sled said.
        #[source]
        source: sled::Error,
    },
    /// sled opened the store but lost writes: its log was cut short (see `witness`).
    #[error("the store at {path} lost writes: {found} of {expected} are left")]
    Truncated {
        /// The store directory.
        path: PathBuf,
        /// The write count recorded beside the store after the last flush.
        expected: u64,
        /// The write count sled recovered.
        found: u64,
    },
    /// The unreadable store could not be renamed out of the way.
    #[error("moving the unreadable store {from} aside to {to} failed")]
    MoveAside {
        /// The store directory.
        from: PathBuf,
        /// Where it was going.
        to: PathBuf,
        /// What rename said.
        #[source]
        source: io::Error,
    },
    /// The schema version file beside sled's files could not be written.
    #[error("writing the schema version file {path} failed")]
    VersionFile {
        /// The file.
        path: PathBuf,
        /// What the write or rename said.
        #[source]
        source: io::Error,
    },
    /// The unreadable store was moved aside, but a fresh one could not be opened.
    #[error("the unreadable store was moved to {moved_to}, but a fresh store at {path} failed")]
    Fresh {
        /// The store directory.
        path: PathBuf,
        /// Where the old store now is.
        moved_to: PathBuf,
        /// Why the fresh store failed.
        #[source]
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// Whether the store's contents are unreadable, so moving it aside and rebuilding helps.
    /// False for what a rebuild would not fix: a lock held by another daemon, a newer schema,
    /// a permission problem.
    pub fn is_corruption(&self) -> bool {
        match self {
            StoreError::Corrupt { .. }
            | StoreError::SchemaUnreadable { .. }
            | StoreError::Truncated { .. } => true,
            StoreError::Read { source } | StoreError::Write { source } => {
                matches!(source, sled::Error::Corruption { .. })
            }
            StoreError::Migration { source, .. } => source.is_corruption(),
            _ => false,
        }
    }
}

/// Classifies an error sled gave while opening `path`.
fn open_error(path: &Path, source: sled::Error) -> StoreError {
    let corrupt = match &source {
        sled::Error::Corruption { .. } => true,
        // Non-UTF-8 or mismatching settings in the `conf` file: garbled, not ours to fix.
        sled::Error::Unsupported(_) => true,
        sled::Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
        ),
        _ => false,
    };
    let path = path.to_path_buf();
    if corrupt {
        StoreError::Corrupt { path, source }
    } else {
        StoreError::Open { path, source }
    }
}

/// Just the version of a stored record, read before the rest.
#[derive(Deserialize)]
struct VersionOnly {
    /// The record's shape version.
    version: u32,
}

/// Decodes the record stored under `id`; a newer version is an error, never a panic.
fn decode(id: &str, bytes: &[u8]) -> Result<ContainerRecord, StoreError> {
    let decode_err = |source| StoreError::Decode {
        id: id.to_string(),
        source,
    };
    let head: VersionOnly = serde_json::from_slice(bytes).map_err(decode_err)?;
    if head.version > RECORD_VERSION {
        return Err(StoreError::RecordTooNew {
            id: id.to_string(),
            found: head.version,
            supported: RECORD_VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(decode_err)
}

fn encode(rec: &ContainerRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(rec).map_err(|source| StoreError::Encode {
        id: rec.id.clone(),
        source,
    })
}

/// Turns a transaction's result into the store's error.
fn tx_result<T>(r: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(source) => StoreError::Write { source },
    })
}

/// Decodes a write counter; a missing one is 0.
fn decode_seq(raw: Option<&[u8]>) -> u64 {
    raw.and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// Bumps the write counter inside a transaction and returns the new value.
fn bump_seq<E>(meta: &TransactionalTree) -> ConflictableTransactionResult<u64, E> {
    let seq = decode_seq(meta.get(WRITE_SEQ_KEY)?.as_deref()) + 1;
    meta.insert(WRITE_SEQ_KEY, &seq.to_be_bytes())?;
    Ok(seq)
}

/// A record's bytes as a list read them, kept beside the record while it is exactly what
/// they hold: what [`Store::list_reusing`] compares the store with.
#[derive(Debug, Default, Clone)]
pub struct Stored(Option<sled::IVec>);

impl Stored {
    /// Nothing to compare: the record beside it was changed in memory (or never read).
    pub fn changed(&mut self) {
        self.0 = None;
    }
}

/// Records sorted by creation time then id, each with its [`Stored`] bytes.
pub type ListedStored = (Vec<ContainerRecord>, Vec<Stored>);

/// The container store. Cheap to share by reference; sled handles concurrency.
#[derive(Debug)]
pub struct Store {
    /// The sled database, for flushes.
    db: sled::Db,
    /// id -> serde_json of [`ContainerRecord`].
    containers: Tree,
    /// name -> id: the uniqueness index for names.
    names: Tree,
    /// Schema version and the write counter.
    meta: Tree,
    /// Where the store lives, for errors.
    path: PathBuf,
    /// Makes committed writes durable (also from other threads: see [`Store::flusher`]).
    flusher: Flusher,
    /// Bumped once a write has committed (see [`Store::generation`]).
    generation: AtomicU64,
    /// How many times every record was read (see [`Store::lists`]).
    lists: AtomicU64,
}

impl Store {
    /// Opens or creates the store at `path`, checks that sled lost no writes, and brings
    /// its schema up to date. A store of a newer schema is refused untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        // Before sled: it rewrites its snapshot file at every open.
        schema::refuse_newer_on_disk(path, schema::SCHEMA_VERSION)?;
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|e| open_error(path, e))?;
        let tree = |name| db.open_tree(name).map_err(|e| open_error(path, e));
        let (containers, names, meta) = (
            tree(CONTAINERS_TREE)?,
            tree(NAMES_TREE)?,
            tree(schema::META_TREE)?,
        );
        schema::refuse_newer(&db, schema::SCHEMA_VERSION)?;
        let found = decode_seq(
            meta.get(WRITE_SEQ_KEY)
                .map_err(|e| open_error(path, e))?
                .as_deref(),
        );
        if let Some(expected) = witness::read(path).filter(|&w| w > found) {
            return Err(StoreError::Truncated {
                path: path.to_path_buf(),
                expected,
                found,
            });
        }
        schema::write_version_file(path, schema::SCHEMA_VERSION)?;
        schema::migrate(&db)?;
        Ok(Store {
            db: db.clone(),
            containers,
            names,
            meta,
            path: path.to_path_buf(),
            flusher: Flusher::new(db.clone(), path.to_path_buf(), found),
            generation: AtomicU64::new(0),
            lists: AtomicU64::new(0),
        })
    }

    /// Opens the store; if its contents are unreadable, moves it to
    /// `<path>.corrupt-<UTC timestamp>` (never deletes it: the files as found, and the
    /// directory sled opened inside as `opened-by-sled`), opens a fresh one and returns
    /// where the old one went. Any other error (locked, schema too new) is returned.
    pub fn open_or_move_aside(path: &Path) -> Result<(Store, Option<PathBuf>), StoreError> {
        // sled rewrites a garbled log while opening it: keep the files as found.
        let found = aside::capture(path);
        match Store::open(path) {
            Ok(store) => Ok((store, None)),
            Err(e) if e.is_corruption() => {
                let to = aside::move_aside(path, found.as_ref())?;
                let store = Store::open(path).map_err(|source| StoreError::Fresh {
                    path: path.to_path_buf(),
                    moved_to: to.clone(),
                    source: Box::new(source),
                })?;
                Ok((store, Some(to)))
            }
            Err(e) => Err(e),
        }
    }

    /// A number that changes after every committed write of this handle (create, put,
    /// rename, remove). A list read after seeing generation G holds every write counted in
    /// G, so a copy of it can be reused while the generation is still G.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// How many times this handle read every record ([`Store::list`],
    /// [`Store::list_with_errors`]): what a step that must not read the whole store once
    /// per container (it grows as N² with N containers) is tested with.
    pub fn lists(&self) -> u64 {
        self.lists.load(Ordering::Relaxed)
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle that flushes this store from any thread (group commit: see [`flush`]).
    pub fn flusher(&self) -> Flusher {
        self.flusher.clone()
    }

    /// Runs a write transaction over the three trees (bumping the write counter) and
    /// returns the counter: committed and visible to readers, durable once a flush has
    /// reached it ([`Flusher::flush`]).
    fn commit<F>(&self, f: F) -> Result<u64, StoreError>
    where
        F: Fn(
            &TransactionalTree,
            &TransactionalTree,
        ) -> ConflictableTransactionResult<(), StoreError>,
    {
        let seq = tx_result((&self.containers, &self.names, &self.meta).transaction(
            |(c, n, m)| {
                f(c, n)?;
                bump_seq(m)
            },
        ))?;
        self.generation.fetch_add(1, Ordering::Release);
        self.flusher.committed_up_to(seq);
        Ok(seq)
    }

    /// Inserts a new record and its name atomically, then flushes.
    pub fn create(&self, rec: &ContainerRecord) -> Result<(), StoreError> {
        self.create_unflushed(rec)?;
        self.flusher.flush().map(drop)
    }

    /// [`Store::create`] without the flush: returns the write's counter (see
    /// [`Store::put_unflushed`]).
    pub fn create_unflushed(&self, rec: &ContainerRecord) -> Result<u64, StoreError> {
        let bytes = encode(rec)?;
        self.commit(|c, n| {
            if c.get(rec.id.as_bytes())?.is_some() {
                return abort(StoreError::IdInUse { id: rec.id.clone() });
            }
            if let Some(holder) = n.get(rec.name.as_bytes())? {
                return abort(StoreError::NameInUse {
                    name: rec.name.clone(),
                    id: String::from_utf8_lossy(&holder).into_owned(),
                });
            }
            c.insert(rec.id.as_bytes(), bytes.as_slice())?;
            n.insert(rec.name.as_bytes(), rec.id.as_bytes())?;
            Ok(())
        })
    }

    /// Overwrites an existing record (a state change), then flushes. The name must be the
    /// one the store holds for it: names change only through [`Store::rename`].
    pub fn put(&self, rec: &ContainerRecord) -> Result<(), StoreError> {
        self.put_unflushed(rec)?;
        self.flusher.flush().map(drop)
    }

    /// [`Store::put`] without the flush: returns the write's counter, durable once a
    /// [`Flusher::flush`] has returned at least that.
    pub fn put_unflushed(&self, rec: &ContainerRecord) -> Result<u64, StoreError> {
        let bytes = encode(rec)?;
        self.commit(|c, n| {
            if c.get(rec.id.as_bytes())?.is_none() {
                return abort(StoreError::NoSuchContainer { id: rec.id.clone() });
            }
            if n.get(rec.name.as_bytes())?.as_deref() != Some(rec.id.as_bytes()) {
                return abort(StoreError::NameMismatch {
                    id: rec.id.clone(),
                    name: rec.name.clone(),
                });
            }
            c.insert(rec.id.as_bytes(), bytes.as_slice())?;
            Ok(())
        })
    }

    /// The record of container `id`, if there is one.
    pub fn get(&self, id: &str) -> Result<Option<ContainerRecord>, StoreError> {
        let bytes = self
            .containers
            .get(id.as_bytes())
            .map_err(|source| StoreError::Read { source })?;
        bytes.map(|b| decode(id, &b)).transpose()
    }

    /// Every readable record, sorted by creation time then id; unreadable ones are skipped
    /// (see [`Store::list_with_errors`]).
    pub fn list(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        self.list_with_errors().map(|(records, _)| records)
    }

    /// Every readable record (sorted by creation time then id), and the id and error of
    /// each record that cannot be decoded. Fails only when sled cannot be read.
    #[allow(clippy::type_complexity)]
    pub fn list_with_errors(
        &self,
    ) -> Result<(Vec<ContainerRecord>, Vec<(String, StoreError)>), StoreError> {
        let ((records, _), errors) = self.scan(&[], &[])?;
        Ok((records, errors))
    }

    /// [`Store::list_with_errors`], each record with the bytes it was decoded from (for a
    /// later [`Store::list_reusing`]).
    #[allow(clippy::type_complexity)]
    pub fn list_stored(&self) -> Result<(ListedStored, Vec<(String, StoreError)>), StoreError> {
        self.scan(&[], &[])
    }

    /// Every readable record, as [`Store::list`], with its bytes; a record whose stored
    /// bytes are those `bytes` holds beside the record of the same id in `records` is that
    /// record, cloned, not decoded again. Decoding is most of a list's cost (10,000 records:
    /// ~100 ms, and a copy of every spec) and a write changes one record.
    pub fn list_reusing(
        &self,
        records: &[ContainerRecord],
        bytes: &[Stored],
    ) -> Result<ListedStored, StoreError> {
        self.scan(records, bytes).map(|(listed, _)| listed)
    }

    #[allow(clippy::type_complexity)]
    fn scan(
        &self,
        records: &[ContainerRecord],
        bytes: &[Stored],
    ) -> Result<(ListedStored, Vec<(String, StoreError)>), StoreError> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        let known: HashMap<&str, (&ContainerRecord, &sled::IVec)> = records
            .iter()
            .zip(bytes)
            .filter_map(|(rec, stored)| Some((rec.id.as_str(), (rec, stored.0.as_ref()?))))
            .collect();
        let mut read = Vec::new();
        let mut errors = Vec::new();
        for item in self.containers.iter() {
            let (key, value) = item.map_err(|source| StoreError::Read { source })?;
            let id = String::from_utf8_lossy(&key);
            let rec = match known.get(id.as_ref()) {
                Some((rec, was)) if **was == value => ContainerRecord::clone(rec),
                _ => match decode(&id, &value) {
                    Ok(rec) => rec,
                    Err(e) => {
                        errors.push((id.into_owned(), e));
                        continue;
                    }
                },
            };
            read.push((rec, Stored(Some(value))));
        }
        read.sort_by(|(a, _), (b, _)| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok((read.into_iter().unzip(), errors))
    }

    /// The schema version stamped in the store (for `moor admin check`).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::stored_version(&self.db)
    }

    /// Every (name, id) pair of the name index, as stored (for `moor admin check`).
    pub fn names(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.names
            .iter()
            .map(|item| {
                let (name, id) = item.map_err(|source| StoreError::Read { source })?;
                Ok((
                    String::from_utf8_lossy(&name).into_owned(),
                    String::from_utf8_lossy(&id).into_owned(),
                ))
            })
            .collect()
    }

    /// The id of the container named `name`.
    pub fn id_by_name(&self, name: &str) -> Result<Option<String>, StoreError> {
        let raw = self
            .names
            .get(name.as_bytes())
            .map_err(|source| StoreError::Read { source })?;
        raw.map(|b| {
            String::from_utf8(b.to_vec()).map_err(|source| StoreError::BadIndex {
                name: name.to_string(),
                source,
            })
        })
        .transpose()
    }

    /// Gives container `id` the name `new_name`, atomically (index and record), then flushes.
    pub fn rename(&self, id: &str, new_name: &str) -> Result<(), StoreError> {
        self.rename_unflushed(id, new_name)?;
        self.flusher.flush().map(drop)
    }

    /// [`Store::rename`] without the flush: returns the write's counter (see
    /// [`Store::put_unflushed`]).
    pub fn rename_unflushed(&self, id: &str, new_name: &str) -> Result<u64, StoreError> {
        self.commit(|c, n| {
            let Some(bytes) = c.get(id.as_bytes())? else {
                return abort(StoreError::NoSuchContainer { id: id.to_string() });
            };
            let mut rec = decode(id, &bytes).or_else(abort)?;
            if rec.name == new_name {
                return Ok(());
            }
            if let Some(holder) = n.get(new_name.as_bytes())? {
                return abort(StoreError::NameInUse {
                    name: new_name.to_string(),
                    id: String::from_utf8_lossy(&holder).into_owned(),
                });
            }
            let old_name = std::mem::replace(&mut rec.name, new_name.to_string());
            let bytes = encode(&rec).or_else(abort)?;
            n.remove(old_name.as_bytes())?;
            n.insert(new_name.as_bytes(), id.as_bytes())?;
            c.insert(id.as_bytes(), bytes)?;
            Ok(())
        })
    }

    /// Removes container `id`'s record and every name pointing at it, atomically, then
    /// flushes. Works on undecodable records too (their names are found by value).
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.remove_unflushed(id)?;
        self.flusher.flush().map(drop)
    }

    /// [`Store::remove`] without the flush: returns the write's counter (see
    /// [`Store::put_unflushed`]).
    pub fn remove_unflushed(&self, id: &str) -> Result<u64, StoreError> {
        let mut names = Vec::new();
        for item in self.names.iter() {
            let (name, value) = item.map_err(|source| StoreError::Read { source })?;
            if value.as_ref() == id.as_bytes() {
                names.push(name);
            }
        }
        self.commit(|c, n| {
            let Some(bytes) = c.remove(id.as_bytes())? else {
                return abort(StoreError::NoSuchContainer { id: id.to_string() });
            };
            let own = decode(id, &bytes).ok().map(|rec| rec.name.into_bytes());
            for name in names.iter().map(|n| n.as_ref()).chain(own.as_deref()) {
                // Checked inside the transaction: a concurrent rename may have moved it.
                if n.get(name)?.as_deref() == Some(id.as_bytes()) {
                    n.remove(name)?;
                }
            }
            Ok(())
        })
    }
}
