//! TEMP placeholder (replaced by the state branch).
use crate::record::ContainerRecord;
use std::path::{Path, PathBuf};
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("name {name} in use by {id}")]
    NameInUse { name: String, id: String },
    #[error("x")]
    X,
}
pub struct Store;
impl Store {
    pub fn open_or_move_aside(_p: &Path) -> Result<(Store, Option<PathBuf>), StoreError> {
        Err(StoreError::X)
    }
    pub fn create(&self, _r: &ContainerRecord) -> Result<(), StoreError> {
        Err(StoreError::X)
    }
    pub fn put(&self, _r: &ContainerRecord) -> Result<(), StoreError> {
        Err(StoreError::X)
    }
    pub fn get(&self, _id: &str) -> Result<Option<ContainerRecord>, StoreError> {
        Err(StoreError::X)
    }
    pub fn list(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        Err(StoreError::X)
    }
    pub fn list_with_errors(
        &self,
    ) -> Result<(Vec<ContainerRecord>, Vec<(String, StoreError)>), StoreError> {
        Err(StoreError::X)
    }
    pub fn id_by_name(&self, _n: &str) -> Result<Option<String>, StoreError> {
        Err(StoreError::X)
    }
    pub fn rename(&self, _id: &str, _n: &str) -> Result<(), StoreError> {
        Err(StoreError::X)
    }
    pub fn remove(&self, _id: &str) -> Result<(), StoreError> {
        Err(StoreError::X)
    }
}
