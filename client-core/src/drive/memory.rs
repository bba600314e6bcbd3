//! A [`DriveBackend`] in memory: what native tests put behind the drive.
//!
//! Clones share one store, so a test keeps a handle to put files in and read them back while the
//! client owns another. Folders are implicit in the keys' prefixes plus an explicit set, which keeps
//! the rules (parents must exist, folders must be empty to go) easy to check.

use super::{DriveBackend, DriveError, DrivePath, Entry, FileHandle};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

#[derive(Debug, Default)]
struct Store {
    files: BTreeMap<DrivePath, Vec<u8>>,
    folders: BTreeSet<DrivePath>,
    open: HashMap<u64, DrivePath>,
    next_handle: u64,
    /// Changes counted for `modified_ms`: a stand-in clock (this crate reads no clock).
    generation: u64,
}

/// An in-memory drive; cheap to clone, clones share the files.
#[derive(Debug, Clone, Default)]
pub struct MemoryDrive {
    store: Rc<RefCell<Store>>,
}

impl MemoryDrive {
    pub fn new() -> MemoryDrive {
        MemoryDrive::default()
    }

    /// The whole content of a file (tests).
    pub fn contents(&self, path: &DrivePath) -> Option<Vec<u8>> {
        self.store.borrow().files.get(path).cloned()
    }

    /// Puts a file (and its missing parent folders) in place.
    pub fn put(&self, path: &DrivePath, data: &[u8]) {
        let mut store = self.store.borrow_mut();
        let mut parent = path.parent();
        while let Some(folder) = parent {
            if !folder.is_root() {
                store.folders.insert(folder.clone());
            }
            parent = folder.parent();
        }
        store.files.insert(path.clone(), data.to_vec());
        store.generation += 1;
    }

    /// Number of files currently open (tests check that everything was closed).
    pub fn open_files(&self) -> usize {
        self.store.borrow().open.len()
    }
}

impl Store {
    fn is_folder(&self, path: &DrivePath) -> bool {
        path.is_root() || self.folders.contains(path)
    }

    fn require_parent(&self, path: &DrivePath) -> Result<(), DriveError> {
        match path.parent() {
            Some(parent) if self.is_folder(&parent) => Ok(()),
            Some(parent) if self.files.contains_key(&parent) => Err(DriveError::WrongKind),
            _ => Err(DriveError::NotFound),
        }
    }

    fn entry(&self, path: &DrivePath) -> Result<Entry, DriveError> {
        let name = path.file_name().unwrap_or_default().to_owned();
        if self.is_folder(path) {
            return Ok(Entry { name, is_dir: true, size: 0, modified_ms: self.generation });
        }
        let data = self.files.get(path).ok_or(DriveError::NotFound)?;
        Ok(Entry { name, is_dir: false, size: data.len() as u64, modified_ms: self.generation })
    }

    fn file(&mut self, handle: FileHandle) -> Result<&mut Vec<u8>, DriveError> {
        let path = self.open.get(&handle.0).ok_or(DriveError::NotFound)?;
        self.files.get_mut(path).ok_or(DriveError::NotFound)
    }

    fn handle_for(&mut self, path: &DrivePath) -> FileHandle {
        self.next_handle += 1;
        self.open.insert(self.next_handle, path.clone());
        FileHandle(self.next_handle)
    }
}

fn offset(value: u64) -> Result<usize, DriveError> {
    usize::try_from(value).map_err(|_| DriveError::Full)
}

impl DriveBackend for MemoryDrive {
    fn stat(&mut self, path: &DrivePath) -> Result<Entry, DriveError> {
        self.store.borrow().entry(path)
    }

    fn list(&mut self, folder: &DrivePath) -> Result<Vec<Entry>, DriveError> {
        let store = self.store.borrow();
        if !store.is_folder(folder) {
            return Err(if store.files.contains_key(folder) { DriveError::WrongKind } else { DriveError::NotFound });
        }
        let children = store.folders.iter().chain(store.files.keys()).filter(|p| p.parent().as_ref() == Some(folder));
        let mut entries = children.map(|p| store.entry(p)).collect::<Result<Vec<_>, _>>()?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn mkdir(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        let mut store = self.store.borrow_mut();
        if store.is_folder(path) || store.files.contains_key(path) {
            return Err(DriveError::AlreadyExists);
        }
        store.require_parent(path)?;
        store.folders.insert(path.clone());
        store.generation += 1;
        Ok(())
    }

    fn open(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        let mut store = self.store.borrow_mut();
        if store.is_folder(path) {
            return Err(DriveError::WrongKind);
        }
        if !store.files.contains_key(path) {
            return Err(DriveError::NotFound);
        }
        Ok(store.handle_for(path))
    }

    fn create(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        let mut store = self.store.borrow_mut();
        if store.is_folder(path) {
            return Err(DriveError::WrongKind);
        }
        store.require_parent(path)?;
        store.files.insert(path.clone(), Vec::new());
        store.generation += 1;
        Ok(store.handle_for(path))
    }

    fn read(&mut self, file: FileHandle, from: u64, len: u32) -> Result<Vec<u8>, DriveError> {
        let mut store = self.store.borrow_mut();
        let data = store.file(file)?;
        let start = offset(from)?.min(data.len());
        let end = start.saturating_add(len as usize).min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn write(&mut self, file: FileHandle, at: u64, bytes: &[u8]) -> Result<(), DriveError> {
        let mut store = self.store.borrow_mut();
        store.generation += 1;
        let data = store.file(file)?;
        let start = offset(at)?;
        let end = start.checked_add(bytes.len()).ok_or(DriveError::Full)?;
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&mut self, file: FileHandle, len: u64) -> Result<(), DriveError> {
        let mut store = self.store.borrow_mut();
        store.generation += 1;
        let len = offset(len)?;
        store.file(file)?.resize(len, 0);
        Ok(())
    }

    fn close(&mut self, file: FileHandle) -> Result<(), DriveError> {
        self.store.borrow_mut().open.remove(&file.0).map(|_| ()).ok_or(DriveError::NotFound)
    }

    fn delete(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        let mut store = self.store.borrow_mut();
        store.generation += 1;
        if store.files.remove(path).is_some() {
            return Ok(());
        }
        if path.is_root() || !store.folders.contains(path) {
            return Err(DriveError::NotFound);
        }
        let has_children = store.folders.iter().chain(store.files.keys()).any(|p| p.parent().as_ref() == Some(path));
        if has_children {
            return Err(DriveError::NotEmpty);
        }
        store.folders.remove(path);
        Ok(())
    }

    fn rename(&mut self, from: &DrivePath, to: &DrivePath, replace: bool) -> Result<(), DriveError> {
        let mut store = self.store.borrow_mut();
        store.require_parent(to)?;
        if store.is_folder(to) {
            return Err(DriveError::AlreadyExists);
        }
        if store.files.contains_key(to) && !replace {
            return Err(DriveError::AlreadyExists);
        }
        store.generation += 1;
        if let Some(data) = store.files.remove(from) {
            store.files.insert(to.clone(), data);
            for open in store.open.values_mut().filter(|p| *p == from) {
                *open = to.clone();
            }
            return Ok(());
        }
        if from.is_root() || !store.folders.contains(from) {
            return Err(DriveError::NotFound);
        }
        if to.is_within(from) {
            return Err(DriveError::WrongKind);
        }
        let moved = |p: &DrivePath| -> DrivePath {
            let rest = &p.components()[from.components().len()..];
            rest.iter().fold(to.clone(), |acc, c| acc.join(c).unwrap_or_else(|_| acc.clone()))
        };
        let folders: Vec<_> = store.folders.iter().filter(|p| p.is_within(from)).cloned().collect();
        for folder in folders {
            store.folders.remove(&folder);
            store.folders.insert(moved(&folder));
        }
        let files: Vec<_> = store.files.keys().filter(|p| p.is_within(from)).cloned().collect();
        for file in files {
            if let Some(data) = store.files.remove(&file) {
                store.files.insert(moved(&file), data);
            }
        }
        Ok(())
    }
}
