//! The browser's drive, as the workstation sees it through device redirection (MS-RDPEFS).
//!
//! Storage is behind [`DriveBackend`] so the protocol never touches it directly: native tests use
//! [`MemoryDrive`], the browser its own store. Every path reaching a backend is a [`DrivePath`],
//! checked by [`names`]: hostile names from the workstation or the page never get through. Files move in
//! the chunks the workstation asks for; nothing here holds a whole file. A store whose data can only be
//! reached asynchronously (the browser's) answers reads and writes later ([`Io::Deferred`]): the request
//! waits, answered by [`crate::RdpClient::complete_drive_io`], while the session goes on.

mod memory;
mod tree;
/// The name rules live in their own dependency-free crate so the relay applies the very same ones.
pub use homedesk_drive_names as names;
pub(crate) mod server;

pub use memory::MemoryDrive;
pub use names::{DrivePath, NameError};
pub use tree::{FileData, FileTree};

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

/// The upload folder when the portal sets none.
pub const DEFAULT_UPLOAD_FOLDER: &str = "Uploads";
/// The download folder when the portal sets none.
pub const DEFAULT_DOWNLOAD_FOLDER: &str = "Downloads";

impl Default for DriveConfig {
    fn default() -> Self {
        DriveConfig {
            upload_folder: DrivePath::root().join(DEFAULT_UPLOAD_FOLDER).unwrap_or_default(),
            download_folder: DrivePath::root().join(DEFAULT_DOWNLOAD_FOLDER).unwrap_or_default(),
        }
    }
}

impl DriveConfig {
    /// The folders from the portal page's preferences (`upload_path`, `download_path`: folders inside the
    /// drive, see [`DrivePath::folder_setting`]). An empty value means the default; a value that is not a
    /// folder of the drive (e.g. `C:\Uploads` from an older version) falls back to the default too, with a
    /// sentence for the page's console in the returned list.
    pub fn from_preferences(upload: &str, download: &str) -> (DriveConfig, Vec<String>) {
        let defaults = DriveConfig::default();
        let mut warnings = Vec::new();
        let mut folder = |what: &str, value: &str, default: DrivePath| match DrivePath::folder_setting(value) {
            Ok(Some(path)) => path,
            Ok(None) => default,
            Err(error) => {
                warnings.push(format!("The {what} folder {value:?} is not a folder in the Browser drive ({error}); using {default}."));
                default
            }
        };
        let config = DriveConfig {
            upload_folder: folder("upload", upload, defaults.upload_folder),
            download_folder: folder("download", download, defaults.download_folder),
        };
        (config, warnings)
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

/// One read or write of the drive that a backend finishes later; unique for the life of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IoId(pub u64);

/// A read or write: done now, or started and finished later with
/// [`crate::RdpClient::complete_drive_io`] and the operation's [`IoId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io<T> {
    Done(T),
    Deferred,
}

/// How a deferred read or write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoOutcome {
    /// The bytes read (fewer than asked at the end of the file).
    Read(Vec<u8>),
    Written,
}

/// The drive's storage. Paths are already checked; a parent folder must exist for a file or folder to
/// be created in it. Everything but reads and writes is answered at once; a backend that defers a read
/// or write must still apply later calls in order (a close after a write commits that write first).
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
    /// Up to `len` bytes from `offset` (fewer at the end of the file); `io` names it if deferred.
    fn read(&mut self, file: FileHandle, offset: u64, len: u32, io: IoId) -> Result<Io<Vec<u8>>, DriveError>;
    /// Writes `data` at `offset`, extending the file (with zeros) as needed; `io` names it if deferred.
    fn write(&mut self, file: FileHandle, offset: u64, data: Vec<u8>, io: IoId) -> Result<Io<()>, DriveError>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&mut self, file: FileHandle, len: u64) -> Result<(), DriveError>;
    fn close(&mut self, file: FileHandle) -> Result<(), DriveError>;
    /// Removes a file or an empty folder.
    fn delete(&mut self, path: &DrivePath) -> Result<(), DriveError>;
    /// Moves a file or folder; an existing target is replaced only when `replace` (and is a file).
    fn rename(&mut self, from: &DrivePath, to: &DrivePath, replace: bool) -> Result<(), DriveError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_come_from_the_preferences_with_defaults_for_empty_and_invalid_values() {
        let (config, warnings) = DriveConfig::from_preferences("Inbox", "Team/Out");
        assert_eq!((config.upload_folder.to_string(), config.download_folder.to_string()), ("Inbox".into(), "Team/Out".into()));
        assert!(warnings.is_empty());
        assert_eq!(DriveConfig::from_preferences("", ""), (DriveConfig::default(), Vec::new()));
        // An absolute Windows path (what older versions stored) is not a folder of the drive.
        let (config, warnings) = DriveConfig::from_preferences("C:\\Uploads", "../x");
        assert_eq!(config, DriveConfig::default());
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("\"C:\\\\Uploads\"") && warnings[0].contains("using Uploads"), "{}", warnings[0]);
        assert!(warnings[1].contains("download") && warnings[1].contains("using Downloads"), "{}", warnings[1]);
    }
}
