//! A [`DriveBackend`] in memory: what native tests put behind the drive.
//!
//! Clones share one store, so a test keeps a handle to put files in and read them back while the
//! client owns another. Every read and write is done at once ([`Io::Done`]).

use super::tree::FileTree;
use super::{DriveBackend, DriveError, DrivePath, Entry, FileHandle, Io, IoId};
use std::cell::RefCell;
use std::rc::Rc;

/// An in-memory drive; cheap to clone, clones share the files.
#[derive(Debug, Clone, Default)]
pub struct MemoryDrive {
    tree: Rc<RefCell<FileTree<Vec<u8>>>>,
}

impl MemoryDrive {
    pub fn new() -> MemoryDrive {
        MemoryDrive::default()
    }

    /// The whole content of a file (tests).
    pub fn contents(&self, path: &DrivePath) -> Option<Vec<u8>> {
        self.tree.borrow().get(path).cloned()
    }

    /// Puts a file (and its missing parent folders) in place.
    pub fn put(&self, path: &DrivePath, data: &[u8]) {
        let mut tree = self.tree.borrow_mut();
        if let Some(parent) = path.parent() {
            let _ = tree.mkdir_all(&parent);
        }
        let _ = tree.put(path, data.to_vec());
    }

    /// Number of files currently open (tests check that everything was closed).
    pub fn open_files(&self) -> usize {
        self.tree.borrow().open_files()
    }
}

fn offset(value: u64) -> Result<usize, DriveError> {
    usize::try_from(value).map_err(|_| DriveError::Full)
}

impl DriveBackend for MemoryDrive {
    fn stat(&mut self, path: &DrivePath) -> Result<Entry, DriveError> {
        self.tree.borrow().stat(path)
    }

    fn list(&mut self, folder: &DrivePath) -> Result<Vec<Entry>, DriveError> {
        self.tree.borrow().list(folder)
    }

    fn mkdir(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        self.tree.borrow_mut().mkdir(path)
    }

    fn open(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        self.tree.borrow_mut().open(path)
    }

    fn create(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        self.tree.borrow_mut().create(path, Vec::new()).map(|(handle, _)| handle)
    }

    fn read(&mut self, file: FileHandle, from: u64, len: u32, _: IoId) -> Result<Io<Vec<u8>>, DriveError> {
        let mut tree = self.tree.borrow_mut();
        let data = tree.data_mut(file)?;
        let start = offset(from)?.min(data.len());
        let end = start.saturating_add(len as usize).min(data.len());
        Ok(Io::Done(data[start..end].to_vec()))
    }

    fn write(&mut self, file: FileHandle, at: u64, bytes: Vec<u8>, _: IoId) -> Result<Io<()>, DriveError> {
        let mut tree = self.tree.borrow_mut();
        tree.touch();
        let data = tree.data_mut(file)?;
        let start = offset(at)?;
        let end = start.checked_add(bytes.len()).ok_or(DriveError::Full)?;
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(&bytes);
        Ok(Io::Done(()))
    }

    fn set_len(&mut self, file: FileHandle, len: u64) -> Result<(), DriveError> {
        let mut tree = self.tree.borrow_mut();
        tree.touch();
        let len = offset(len)?;
        tree.data_mut(file)?.resize(len, 0);
        Ok(())
    }

    fn close(&mut self, file: FileHandle) -> Result<(), DriveError> {
        self.tree.borrow_mut().close(file)
    }

    fn delete(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        self.tree.borrow_mut().delete(path).map(drop)
    }

    fn rename(&mut self, from: &DrivePath, to: &DrivePath, replace: bool) -> Result<(), DriveError> {
        self.tree.borrow_mut().rename(from, to, replace).map(drop)
    }
}
