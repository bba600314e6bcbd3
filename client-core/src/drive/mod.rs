//! The browser's drive, as the workstation sees it through device redirection (MS-RDPEFS).
//!
//! Storage is behind [`DriveBackend`] so the protocol never touches it directly: native tests use
//! [`MemoryDrive`], the browser its own store. Every path reaching a backend is a [`DrivePath`],
//! checked by [`names`]: hostile names from the workstation or the page never get through. Files move in
//! the chunks the workstation asks for (one read or write request at a time); nothing here holds a
//! whole file.

mod memory;
pub mod names;
pub(crate) mod server;

pub use memory::MemoryDrive;
pub use names::{DrivePath, NameError};

use core::fmt;

/// Name of the drive in the session (xrdp mounts it as `~/thinclient_drives/<name>`; at most 7
/// characters survive the announcement).
pub const DRIVE_NAME: &str = "Browser";

/// What the drive is, folder-wise; paths come from the portal's preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveConfig {
    /// Where the page puts uploaded files.
    pub upload_folder: DrivePath,
    /// A file the workstation writes and closes in here is offered to the user as a download.
    pub download_folder: DrivePath,
}

impl Default for DriveConfig {
    fn default() -> Self {
        DriveConfig {
            upload_folder: DrivePath::root().join("Uploads").unwrap_or_default(),
            download_folder: DrivePath::root().join("Downloads").unwrap_or_default(),
        }
    }
}

/// A file or folder as listed or inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    /// Bytes; 0 for folders.
    pub size: u64,
    /// Last change, Unix milliseconds (0 when unknown).
    pub modified_ms: u64,
}

/// An open file of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileHandle(pub u64);

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveError {
    NotFound,
    AlreadyExists,
    /// A file where a folder is needed, or the other way round.
    WrongKind,
    /// A folder that still has entries cannot be removed.
    NotEmpty,
    /// The browser's storage quota is used up.
    Full,
    InvalidName(NameError),
    /// Anything else the store reported (a sentence).
    Storage(String),
}

impl fmt::Display for DriveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriveError::NotFound => write!(f, "no such file or folder"),
            DriveError::AlreadyExists => write!(f, "the file already exists"),
            DriveError::WrongKind => write!(f, "a file is where a folder is expected, or the other way round"),
            DriveError::NotEmpty => write!(f, "the folder is not empty"),
            DriveError::Full => write!(f, "the browser's storage is full"),
            DriveError::InvalidName(error) => write!(f, "invalid name: {error}"),
            DriveError::Storage(message) => write!(f, "storage error: {message}"),
        }
    }
}

impl std::error::Error for DriveError {}

impl From<NameError> for DriveError {
    fn from(error: NameError) -> Self {
        DriveError::InvalidName(error)
    }
}

/// The drive's storage. Paths are already checked; a parent folder must exist for a file or folder to
/// be created in it. Calls are synchronous: the core answers each request of the workstation in
/// order from what the backend returns.
pub trait DriveBackend {
    /// What is at `path` (the root is a folder).
    fn stat(&mut self, path: &DrivePath) -> Result<Entry, DriveError>;
    /// The entries of a folder, in a stable order.
    fn list(&mut self, folder: &DrivePath) -> Result<Vec<Entry>, DriveError>;
    fn mkdir(&mut self, path: &DrivePath) -> Result<(), DriveError>;
    /// Opens an existing file.
    fn open(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError>;
    /// Creates a file, or empties an existing one.
    fn create(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError>;
    /// Up to `len` bytes from `offset` (fewer at the end of the file).
    fn read(&mut self, file: FileHandle, offset: u64, len: u32) -> Result<Vec<u8>, DriveError>;
    /// Writes `data` at `offset`, extending the file (with zeros) as needed.
    fn write(&mut self, file: FileHandle, offset: u64, data: &[u8]) -> Result<(), DriveError>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&mut self, file: FileHandle, len: u64) -> Result<(), DriveError>;
    fn close(&mut self, file: FileHandle) -> Result<(), DriveError>;
    /// Removes a file or an empty folder.
    fn delete(&mut self, path: &DrivePath) -> Result<(), DriveError>;
    /// Moves a file or folder; an existing target is replaced only when `replace` (and is a file).
    fn rename(&mut self, from: &DrivePath, to: &DrivePath, replace: bool) -> Result<(), DriveError>;
}
