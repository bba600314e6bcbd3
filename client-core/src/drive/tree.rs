//! The drive's folders and files by path, with the rules every store must keep: a parent folder must
//! exist, a folder must be empty to go, a rename never puts a folder inside itself, an existing target
//! is replaced only when asked (and only if it is a file).
//!
//! What a file holds is the store's business ([`FileData`]): bytes in memory for [`super::MemoryDrive`],
//! a reference to browser storage in the page. Whatever a change throws away (an emptied, deleted or
//! replaced file) is handed back, so a store can free what it held.

use super::{DriveError, DrivePath, Entry, FileHandle};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a store keeps for each file.
pub trait FileData {
    /// Bytes in the file.
    fn size(&self) -> u64;
}

impl FileData for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

/// Folders, files and open handles of one drive.
#[derive(Debug)]
pub struct FileTree<F> {
    files: BTreeMap<DrivePath, F>,
    folders: BTreeSet<DrivePath>,
    open: HashMap<u64, DrivePath>,
    next_handle: u64,
    /// Changes counted for `modified_ms`: a stand-in clock (this crate reads no clock).
    generation: u64,
}

impl<F> Default for FileTree<F> {
    fn default() -> Self {
        FileTree { files: BTreeMap::new(), folders: BTreeSet::new(), open: HashMap::new(), next_handle: 0, generation: 0 }
    }
}

impl<F: FileData> FileTree<F> {
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

    fn handle_for(&mut self, path: &DrivePath) -> FileHandle {
        self.next_handle += 1;
        self.open.insert(self.next_handle, path.clone());
        FileHandle(self.next_handle)
    }

    /// Counts a change (the stand-in clock of `modified_ms`).
    pub fn touch(&mut self) {
        self.generation += 1;
    }

    pub fn stat(&self, path: &DrivePath) -> Result<Entry, DriveError> {
        let name = path.file_name().unwrap_or_default().to_owned();
        if self.is_folder(path) {
            return Ok(Entry { name, is_dir: true, size: 0, modified_ms: self.generation });
        }
        let data = self.files.get(path).ok_or(DriveError::NotFound)?;
        Ok(Entry { name, is_dir: false, size: data.size(), modified_ms: self.generation })
    }

    pub fn list(&self, folder: &DrivePath) -> Result<Vec<Entry>, DriveError> {
        if !self.is_folder(folder) {
            return Err(if self.files.contains_key(folder) { DriveError::WrongKind } else { DriveError::NotFound });
        }
        let children = self.folders.iter().chain(self.files.keys()).filter(|p| p.parent().as_ref() == Some(folder));
        let mut entries = children.map(|p| self.stat(p)).collect::<Result<Vec<_>, _>>()?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    pub fn mkdir(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        if self.is_folder(path) || self.files.contains_key(path) {
            return Err(DriveError::AlreadyExists);
        }
        self.require_parent(path)?;
        self.folders.insert(path.clone());
        self.touch();
        Ok(())
    }

    /// Makes `path` and its missing parent folders.
    pub fn mkdir_all(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        let mut missing: Vec<DrivePath> =
            std::iter::successors(Some(path.clone()), DrivePath::parent).take_while(|p| !self.is_folder(p)).collect();
        while let Some(folder) = missing.pop() {
            self.mkdir(&folder)?;
        }
        Ok(())
    }

    pub fn open(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        if self.is_folder(path) {
            return Err(DriveError::WrongKind);
        }
        if !self.files.contains_key(path) {
            return Err(DriveError::NotFound);
        }
        Ok(self.handle_for(path))
    }

    /// Puts `data` at `path` (a new file, or in place of the old one, which is returned) and opens it.
    pub fn create(&mut self, path: &DrivePath, data: F) -> Result<(FileHandle, Option<F>), DriveError> {
        let replaced = self.put(path, data)?;
        Ok((self.handle_for(path), replaced))
    }

    /// Puts `data` at `path` without opening it; the old file there is returned.
    pub fn put(&mut self, path: &DrivePath, data: F) -> Result<Option<F>, DriveError> {
        if self.is_folder(path) {
            return Err(DriveError::WrongKind);
        }
        self.require_parent(path)?;
        self.touch();
        Ok(self.files.insert(path.clone(), data))
    }

    /// The file at `path`.
    pub fn get(&self, path: &DrivePath) -> Option<&F> {
        self.files.get(path)
    }

    /// The data of an open file.
    pub fn data_mut(&mut self, file: FileHandle) -> Result<&mut F, DriveError> {
        let path = self.open.get(&file.0).ok_or(DriveError::NotFound)?;
        self.files.get_mut(path).ok_or(DriveError::NotFound)
    }

    pub fn close(&mut self, file: FileHandle) -> Result<(), DriveError> {
        self.open.remove(&file.0).map(|_| ()).ok_or(DriveError::NotFound)
    }

    /// Number of open files.
    pub fn open_files(&self) -> usize {
        self.open.len()
    }

    /// Removes a file (returned) or an empty folder (`None`).
    pub fn delete(&mut self, path: &DrivePath) -> Result<Option<F>, DriveError> {
        self.touch();
        if let Some(data) = self.files.remove(path) {
            return Ok(Some(data));
        }
        if path.is_root() || !self.folders.contains(path) {
            return Err(DriveError::NotFound);
        }
        let has_children = self.folders.iter().chain(self.files.keys()).any(|p| p.parent().as_ref() == Some(path));
        if has_children {
            return Err(DriveError::NotEmpty);
        }
        self.folders.remove(path);
        Ok(None)
    }

    /// Moves a file or folder; returns the file it replaced.
    pub fn rename(&mut self, from: &DrivePath, to: &DrivePath, replace: bool) -> Result<Option<F>, DriveError> {
        self.require_parent(to)?;
        if self.is_folder(to) {
            return Err(DriveError::AlreadyExists);
        }
        if self.files.contains_key(to) && !replace {
            return Err(DriveError::AlreadyExists);
        }
        self.touch();
        if let Some(data) = self.files.remove(from) {
            let replaced = self.files.insert(to.clone(), data);
            for open in self.open.values_mut().filter(|p| *p == from) {
                *open = to.clone();
            }
            return Ok(replaced);
        }
        if from.is_root() || !self.folders.contains(from) {
            return Err(DriveError::NotFound);
        }
        if to.is_within(from) {
            return Err(DriveError::WrongKind);
        }
        let moved = |p: &DrivePath| -> DrivePath {
            let rest = &p.components()[from.components().len()..];
            rest.iter().fold(to.clone(), |acc, c| acc.join(c).unwrap_or_else(|_| acc.clone()))
        };
        let folders: Vec<_> = self.folders.iter().filter(|p| p.is_within(from)).cloned().collect();
        for folder in folders {
            self.folders.remove(&folder);
            self.folders.insert(moved(&folder));
        }
        let files: Vec<_> = self.files.keys().filter(|p| p.is_within(from)).cloned().collect();
        for file in files {
            if let Some(data) = self.files.remove(&file) {
                self.files.insert(moved(&file), data);
            }
        }
        for open in self.open.values_mut().filter(|p| p.is_within(from)) {
            *open = moved(open);
        }
        Ok(None)
    }
}
