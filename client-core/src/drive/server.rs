//! The workstation's file requests (MS-RDPEFS IRPs) answered from a [`DriveBackend`].
//!
//! The workstation opens files by path and then works on the file id we hand back; this module keeps
//! that table (path, backend handle, enumeration state, pending delete) and turns each request into
//! backend calls and one completion. Paths are checked before the backend sees them (an invalid
//! one is answered `STATUS_OBJECT_NAME_INVALID`), reads are capped, and a file written in the
//! download folder is reported when it is closed, so the page can offer it.

use super::{DriveBackend, DriveConfig, DriveError, DrivePath, Entry, FileHandle, Io, IoId, IoOutcome};
use ironrdp_rdpdr::pdu::efs::{
    Boolean, Characteristics, ClientDriveLockControlResponse, ClientDriveQueryDirectoryResponse,
    ClientDriveQueryInformationResponse, ClientDriveQueryVolumeInformationResponse, ClientDriveSetInformationResponse,
    CreateDisposition, CreateOptions, DeviceCloseResponse, DeviceControlResponse, DeviceCreateRequest,
    DeviceCreateResponse, DeviceFlushBuffersResponse, DeviceIoRequest, DeviceIoResponse, DeviceReadResponse,
    DeviceReadRequest, DeviceWriteRequest, DeviceWriteResponse, FileAttributeTagInformation, FileAttributes, FileBasicInformation,
    FileBothDirectoryInformation, FileDirectoryInformation, FileFsAttributeInformation, FileFsDeviceInformation,
    FileFsFullSizeInformation, FileFsSizeInformation, FileFsVolumeInformation, FileFullDirectoryInformation,
    FileInformationClass, FileInformationClassLevel, FileNamesInformation, FileStandardInformation,
    FileSystemAttributes, FileSystemInformationClass, FileSystemInformationClassLevel, Information, NtStatus,
    ServerDriveIoRequest, ServerDriveQueryDirectoryRequest, ServerDriveQueryInformationRequest,
    ServerDriveQueryVolumeInformationRequest, ServerDriveSetInformationRequest,
};
use ironrdp_rdpdr::pdu::RdpdrPdu;
use ironrdp_svc::SvcMessage;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest read answered at once: the workstation asks again for the rest (a bound on memory).
pub(crate) const MAX_READ: u32 = 1024 * 1024;
/// Open files per drive: a bound on what a workstation can make us keep.
const MAX_OPEN: usize = 1024;
/// Reads and writes waiting for the store at once: a bound on the data a workstation can make us hold
/// (at most this many writes, or reads of `MAX_READ`). Beyond it a request is refused as busy.
pub(crate) const MAX_PENDING: usize = 64;
/// FILETIME of the Unix epoch (100 ns units since 1601).
const UNIX_EPOCH_FILETIME: i64 = 116_444_736_000_000_000;
/// Reported capacity of the drive (browsers do not tell their quota synchronously).
const REPORTED_UNITS: i64 = 16 * 1024 * 1024;

/// What the page should learn about the drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DriveNotice {
    /// The workstation wrote this file in the download folder and closed it.
    Download { path: DrivePath, size: u64 },
}

struct OpenFile {
    path: DrivePath,
    /// `None` for folders.
    handle: Option<FileHandle>,
    written: bool,
    delete_on_close: bool,
    /// Directory enumeration: what is left to report.
    listing: Option<std::vec::IntoIter<Entry>>,
}

/// A read or write the store finishes later: what its answer needs.
struct PendingIo {
    request: DeviceIoRequest,
    kind: IoKind,
}

#[derive(Clone, Copy)]
enum IoKind {
    /// At most this many bytes may be answered.
    Read { max: u32 },
    Write { len: u32 },
}

/// The file table of one redirected drive.
pub(crate) struct FileServer {
    backend: Box<dyn DriveBackend>,
    config: DriveConfig,
    open: HashMap<u32, OpenFile>,
    next_file_id: u32,
    pending: HashMap<IoId, PendingIo>,
}

/// Ids are never reused in a program's life: a late answer from a store, for a connection that has since
/// been replaced, cannot be taken for a request of the new one.
fn next_io_id() -> IoId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    IoId(NEXT.fetch_add(1, Ordering::Relaxed))
}

fn status_of(error: &DriveError) -> NtStatus {
    match error {
        DriveError::NotFound => NtStatus::NO_SUCH_FILE,
        DriveError::AlreadyExists => NtStatus::OBJECT_NAME_COLLISION,
        DriveError::WrongKind => NtStatus::NOT_A_DIRECTORY,
        DriveError::NotEmpty => NtStatus::DIRECTORY_NOT_EMPTY,
        DriveError::Full => NtStatus::DISK_FULL,
        DriveError::InvalidName(_) => NtStatus::OBJECT_NAME_INVALID,
        DriveError::Storage(_) => NtStatus::UNSUCCESSFUL,
    }
}

fn filetime(entry: &Entry) -> i64 {
    i64::try_from(entry.modified_ms).unwrap_or(0).saturating_mul(10_000).saturating_add(UNIX_EPOCH_FILETIME)
}

fn attributes(entry: &Entry) -> FileAttributes {
    if entry.is_dir {
        FileAttributes::FILE_ATTRIBUTE_DIRECTORY
    } else {
        FileAttributes::FILE_ATTRIBUTE_ARCHIVE
    }
}

fn size(entry: &Entry) -> i64 {
    i64::try_from(entry.size).unwrap_or(i64::MAX)
}

fn reply(request: &DeviceIoRequest, status: NtStatus) -> DeviceIoResponse {
    DeviceIoResponse::new(request.clone(), status)
}

fn message(pdu: impl Into<RdpdrPdu>) -> SvcMessage {
    SvcMessage::from(pdu.into())
}

impl FileServer {
    pub(crate) fn new(backend: Box<dyn DriveBackend>, config: DriveConfig) -> FileServer {
        FileServer { backend, config, open: HashMap::new(), next_file_id: 0, pending: HashMap::new() }
    }

    fn read(&mut self, req: DeviceReadRequest) -> Option<SvcMessage> {
        let io = req.device_io_request;
        let max = req.length.min(MAX_READ);
        let answer = |status, read_data| message(DeviceReadResponse { device_io_reply: reply(&io, status), read_data });
        if self.pending.len() >= MAX_PENDING {
            return Some(answer(NtStatus::INSUFFICIENT_RESOURCES, Vec::new()));
        }
        let id = next_io_id();
        match self.file_handle(&io).and_then(|h| self.backend.read(h, req.offset, max, id)) {
            Ok(Io::Done(mut data)) => {
                data.truncate(max as usize);
                Some(answer(NtStatus::SUCCESS, data))
            }
            Ok(Io::Deferred) => {
                self.pending.insert(id, PendingIo { request: io, kind: IoKind::Read { max } });
                None
            }
            Err(e) => Some(answer(status_of(&e), Vec::new())),
        }
    }

    fn write(&mut self, req: DeviceWriteRequest) -> Option<SvcMessage> {
        let io = req.device_io_request;
        let len = u32::try_from(req.write_data.len()).unwrap_or(u32::MAX);
        if self.pending.len() >= MAX_PENDING {
            return Some(message(DeviceWriteResponse {
                device_io_reply: reply(&io, NtStatus::INSUFFICIENT_RESOURCES),
                length: 0,
            }));
        }
        let id = next_io_id();
        let result = self.file_handle(&io).and_then(|h| self.backend.write(h, req.offset, req.write_data, id));
        if result.is_ok() {
            // Counted when the write is taken: a close (which may offer the file as a download) comes after it.
            if let Some(file) = self.open.get_mut(&io.file_id) {
                file.written = true;
            }
        }
        let (status, length) = match result {
            Ok(Io::Done(())) => (NtStatus::SUCCESS, len),
            Ok(Io::Deferred) => {
                self.pending.insert(id, PendingIo { request: io, kind: IoKind::Write { len } });
                return None;
            }
            Err(e) => (status_of(&e), 0),
        };
        Some(message(DeviceWriteResponse { device_io_reply: reply(&io, status), length }))
    }

    /// The answer to a deferred read or write; `None` for an id this drive is not waiting for (answered
    /// already, or from before the channel restarted).
    pub(crate) fn complete(&mut self, id: IoId, outcome: Result<IoOutcome, DriveError>) -> Option<SvcMessage> {
        let PendingIo { request, kind } = self.pending.remove(&id)?;
        Some(match (kind, outcome) {
            (IoKind::Read { max }, Ok(IoOutcome::Read(mut read_data))) => {
                read_data.truncate(max as usize);
                message(DeviceReadResponse { device_io_reply: reply(&request, NtStatus::SUCCESS), read_data })
            }
            (IoKind::Write { len }, Ok(IoOutcome::Written)) => {
                message(DeviceWriteResponse { device_io_reply: reply(&request, NtStatus::SUCCESS), length: len })
            }
            (kind, outcome) => {
                let status = match outcome {
                    Err(error) => status_of(&error),
                    // The store answered a read with "written" or the other way round.
                    Ok(_) => NtStatus::UNSUCCESSFUL,
                };
                match kind {
                    IoKind::Read { .. } => {
                        message(DeviceReadResponse { device_io_reply: reply(&request, status), read_data: Vec::new() })
                    }
                    IoKind::Write { .. } => {
                        message(DeviceWriteResponse { device_io_reply: reply(&request, status), length: 0 })
                    }
                }
            }
        })
    }


    /// Answers one request; `None` for a request that stays pending (change notifications).
    pub(crate) fn handle(
        &mut self,
        request: ServerDriveIoRequest,
        notices: &mut Vec<DriveNotice>,
    ) -> Option<SvcMessage> {
        Some(match request {
            ServerDriveIoRequest::ServerCreateDriveRequest(req) => self.create(req),
            ServerDriveIoRequest::DeviceCloseRequest(req) => self.close(req.device_io_request, notices),
            ServerDriveIoRequest::DeviceReadRequest(req) => return self.read(req),
            ServerDriveIoRequest::DeviceWriteRequest(req) => return self.write(req),
            ServerDriveIoRequest::ServerDriveQueryInformationRequest(req) => self.query_information(req),
            ServerDriveIoRequest::ServerDriveQueryDirectoryRequest(req) => self.query_directory(req),
            ServerDriveIoRequest::ServerDriveQueryVolumeInformationRequest(req) => self.query_volume(req),
            ServerDriveIoRequest::ServerDriveSetInformationRequest(req) => self.set_information(req),
            ServerDriveIoRequest::DeviceFlushBuffersRequest(req) => message(DeviceFlushBuffersResponse {
                device_io_response: reply(&req.device_io_request, NtStatus::SUCCESS),
            }),
            ServerDriveIoRequest::ServerDriveLockControlRequest(req) => {
                message(ClientDriveLockControlResponse::new(req.device_io_request, NtStatus::SUCCESS))
            }
            ServerDriveIoRequest::DeviceControlRequest(req) => {
                message(DeviceControlResponse::with_raw_output(req.header, NtStatus::NOT_SUPPORTED, Vec::new()))
            }
            // Changes come only from the workstation itself and from uploads, which are new files the
            // workstation finds when it looks: change notifications stay pending (as FreeRDP's do).
            ServerDriveIoRequest::ServerDriveNotifyChangeDirectoryRequest(_) => return None,
            ServerDriveIoRequest::ServerDriveQuerySecurityRequest(req) => {
                message(ironrdp_rdpdr::pdu::efs::DeviceCloseResponse {
                    device_io_response: reply(&req.device_io_request, NtStatus::NOT_SUPPORTED),
                })
            }
            ServerDriveIoRequest::ServerDriveSetSecurityRequest(req) => message(DeviceCloseResponse {
                device_io_response: reply(&req.device_io_request, NtStatus::NOT_SUPPORTED),
            }),
        })
    }

    fn file_handle(&self, io: &DeviceIoRequest) -> Result<FileHandle, DriveError> {
        let file = self.open.get(&io.file_id).ok_or(DriveError::NotFound)?;
        file.handle.ok_or(DriveError::WrongKind)
    }

    fn create(&mut self, req: DeviceCreateRequest) -> SvcMessage {
        let io = req.device_io_request.clone();
        let failed = |status| {
            message(DeviceCreateResponse {
                device_io_reply: reply(&io, status),
                file_id: 0,
                information: Information::empty(),
            })
        };
        if self.open.len() >= MAX_OPEN {
            return failed(NtStatus::INSUFFICIENT_RESOURCES);
        }
        let path = match DrivePath::from_wire(&req.path) {
            Ok(path) => path,
            Err(error) => {
                tracing::debug!(path = %req.path.escape_debug(), %error, "drive: refused a path");
                return failed(NtStatus::OBJECT_NAME_INVALID);
            }
        };
        match self.open_path(&path, &req) {
            Ok((handle, information)) => {
                self.next_file_id = self.next_file_id.wrapping_add(1).max(1);
                let file_id = self.next_file_id;
                let delete_on_close = req.create_options.contains(CreateOptions::FILE_DELETE_ON_CLOSE);
                let written = matches!(information, Information::FILE_CREATED | Information::FILE_OVERWRITTEN)
                    && handle.is_some();
                self.open.insert(file_id, OpenFile { path, handle, written, delete_on_close, listing: None });
                message(DeviceCreateResponse { device_io_reply: reply(&io, NtStatus::SUCCESS), file_id, information })
            }
            Err(error) => {
                tracing::debug!(%path, %error, "drive: open failed");
                let status = match error {
                    DriveError::NotFound if !self.parent_exists(&path) => NtStatus::OBJECT_PATH_NOT_FOUND,
                    other => status_of(&other),
                };
                failed(status)
            }
        }
    }

    fn parent_exists(&mut self, path: &DrivePath) -> bool {
        path.parent().is_some_and(|parent| self.backend.stat(&parent).is_ok_and(|e| e.is_dir))
    }

    /// Applies the create disposition: opens, creates or empties; folders have no backend handle.
    fn open_path(
        &mut self,
        path: &DrivePath,
        req: &DeviceCreateRequest,
    ) -> Result<(Option<FileHandle>, Information), DriveError> {
        let existing = match self.backend.stat(path) {
            Ok(entry) => Some(entry),
            Err(DriveError::NotFound) => None,
            Err(other) => return Err(other),
        };
        let wants_dir = req.create_options.contains(CreateOptions::FILE_DIRECTORY_FILE);
        let wants_file = req.create_options.contains(CreateOptions::FILE_NON_DIRECTORY_FILE);
        let disposition = req.create_disposition;
        match existing {
            Some(entry) if entry.is_dir => {
                if wants_file {
                    return Err(DriveError::WrongKind);
                }
                if disposition == CreateDisposition::FILE_CREATE {
                    return Err(DriveError::AlreadyExists);
                }
                Ok((None, Information::FILE_OPENED))
            }
            Some(_) if wants_dir => Err(DriveError::WrongKind),
            Some(_) => match disposition {
                CreateDisposition::FILE_CREATE => Err(DriveError::AlreadyExists),
                CreateDisposition::FILE_SUPERSEDE => {
                    Ok((Some(self.backend.create(path)?), Information::FILE_SUPERSEDED))
                }
                CreateDisposition::FILE_OVERWRITE | CreateDisposition::FILE_OVERWRITE_IF => {
                    Ok((Some(self.backend.create(path)?), Information::FILE_OVERWRITTEN))
                }
                _ => Ok((Some(self.backend.open(path)?), Information::FILE_OPENED)),
            },
            None => match disposition {
                CreateDisposition::FILE_OPEN | CreateDisposition::FILE_OVERWRITE => Err(DriveError::NotFound),
                _ if wants_dir => {
                    self.backend.mkdir(path)?;
                    Ok((None, Information::FILE_CREATED))
                }
                _ => Ok((Some(self.backend.create(path)?), Information::FILE_CREATED)),
            },
        }
    }

    fn close(&mut self, io: DeviceIoRequest, notices: &mut Vec<DriveNotice>) -> SvcMessage {
        let Some(file) = self.open.remove(&io.file_id) else {
            return message(DeviceCloseResponse { device_io_response: reply(&io, NtStatus::INVALID_HANDLE) });
        };
        let mut status = NtStatus::SUCCESS;
        if let Some(handle) = file.handle {
            if let Err(error) = self.backend.close(handle) {
                tracing::warn!(path = %file.path, %error, "drive: close failed");
                status = status_of(&error);
            }
        }
        if file.delete_on_close {
            if let Err(error) = self.backend.delete(&file.path) {
                status = status_of(&error);
            }
        } else if file.written && file.handle.is_some() && file.path.is_within(&self.config.download_folder) {
            match self.backend.stat(&file.path) {
                Ok(entry) => notices.push(DriveNotice::Download { path: file.path, size: entry.size }),
                Err(error) => tracing::warn!(%error, "drive: a closed download vanished"),
            }
        }
        message(DeviceCloseResponse { device_io_response: reply(&io, status) })
    }

    fn query_information(&mut self, req: ServerDriveQueryInformationRequest) -> SvcMessage {
        let io = req.device_io_request;
        let answer = |status, buffer| {
            message(ClientDriveQueryInformationResponse { device_io_response: reply(&io, status), buffer })
        };
        let Some(path) = self.open.get(&io.file_id).map(|f| f.path.clone()) else {
            return answer(NtStatus::INVALID_HANDLE, None);
        };
        let entry = match self.backend.stat(&path) {
            Ok(entry) => entry,
            Err(error) => return answer(status_of(&error), None),
        };
        let delete_pending = self.open.get(&io.file_id).is_some_and(|f| f.delete_on_close);
        let time = filetime(&entry);
        let buffer = match req.file_info_class_lvl {
            FileInformationClassLevel::FILE_BASIC_INFORMATION => FileInformationClass::Basic(FileBasicInformation {
                creation_time: time,
                last_access_time: time,
                last_write_time: time,
                change_time: time,
                file_attributes: attributes(&entry),
            }),
            FileInformationClassLevel::FILE_STANDARD_INFORMATION => {
                FileInformationClass::Standard(FileStandardInformation {
                    allocation_size: size(&entry),
                    end_of_file: size(&entry),
                    number_of_links: 1,
                    delete_pending: if delete_pending { Boolean::True } else { Boolean::False },
                    directory: if entry.is_dir { Boolean::True } else { Boolean::False },
                })
            }
            FileInformationClassLevel::FILE_ATTRIBUTE_TAG_INFORMATION => {
                FileInformationClass::AttributeTag(FileAttributeTagInformation {
                    file_attributes: attributes(&entry),
                    reparse_tag: 0,
                })
            }
            _ => return answer(NtStatus::NOT_SUPPORTED, None),
        };
        answer(NtStatus::SUCCESS, Some(buffer))
    }

    fn query_directory(&mut self, req: ServerDriveQueryDirectoryRequest) -> SvcMessage {
        let io = req.device_io_request;
        let answer =
            |status, buffer| message(ClientDriveQueryDirectoryResponse { device_io_reply: reply(&io, status), buffer });
        let Some(folder) = self.open.get(&io.file_id).map(|f| f.path.clone()) else {
            return answer(NtStatus::INVALID_HANDLE, None);
        };
        if req.initial_query != 0 {
            // The path is the folder plus a pattern: `\folder\*`, or a single name.
            let pattern = req.path.rsplit('\\').next().unwrap_or("*").to_owned();
            let entries = match self.backend.list(&folder) {
                Ok(entries) => entries,
                Err(error) => return answer(status_of(&error), None),
            };
            let matching: Vec<Entry> = entries.into_iter().filter(|e| matches_pattern(&pattern, &e.name)).collect();
            if let Some(file) = self.open.get_mut(&io.file_id) {
                file.listing = Some(matching.into_iter());
            }
        }
        let next = self.open.get_mut(&io.file_id).and_then(|f| f.listing.as_mut()).and_then(Iterator::next);
        let Some(entry) = next else {
            return answer(NtStatus::NO_MORE_FILES, None);
        };
        let time = filetime(&entry);
        let (length, attrs, name) = (size(&entry), attributes(&entry), entry.name.clone());
        let buffer = match req.file_info_class_lvl {
            FileInformationClassLevel::FILE_BOTH_DIRECTORY_INFORMATION => FileInformationClass::BothDirectory(
                FileBothDirectoryInformation::new(time, time, time, time, length, attrs, name),
            ),
            FileInformationClassLevel::FILE_FULL_DIRECTORY_INFORMATION => FileInformationClass::FullDirectory(
                FileFullDirectoryInformation::new(time, time, time, time, length, attrs, name),
            ),
            FileInformationClassLevel::FILE_DIRECTORY_INFORMATION => FileInformationClass::Directory(
                FileDirectoryInformation::new(time, time, time, time, length, attrs, name),
            ),
            FileInformationClassLevel::FILE_NAMES_INFORMATION => {
                FileInformationClass::Names(FileNamesInformation::new(name))
            }
            _ => return answer(NtStatus::NOT_SUPPORTED, None),
        };
        answer(NtStatus::SUCCESS, Some(buffer))
    }

    fn query_volume(&mut self, req: ServerDriveQueryVolumeInformationRequest) -> SvcMessage {
        let io = req.device_io_request;
        let buffer = match req.fs_info_class_lvl {
            FileSystemInformationClassLevel::FILE_FS_VOLUME_INFORMATION => {
                Some(FileSystemInformationClass::FileFsVolumeInformation(FileFsVolumeInformation {
                    volume_creation_time: UNIX_EPOCH_FILETIME,
                    volume_serial_number: 0x484f_4d45,
                    supports_objects: Boolean::False,
                    volume_label: super::DRIVE_NAME.to_owned(),
                }))
            }
            FileSystemInformationClassLevel::FILE_FS_SIZE_INFORMATION => {
                Some(FileSystemInformationClass::FileFsSizeInformation(FileFsSizeInformation {
                    total_alloc_units: REPORTED_UNITS,
                    available_alloc_units: REPORTED_UNITS,
                    sectors_per_alloc_unit: 8,
                    bytes_per_sector: 512,
                }))
            }
            FileSystemInformationClassLevel::FILE_FS_FULL_SIZE_INFORMATION => {
                Some(FileSystemInformationClass::FileFsFullSizeInformation(FileFsFullSizeInformation {
                    total_alloc_units: REPORTED_UNITS,
                    caller_available_alloc_units: REPORTED_UNITS,
                    actual_available_alloc_units: REPORTED_UNITS,
                    sectors_per_alloc_unit: 8,
                    bytes_per_sector: 512,
                }))
            }
            FileSystemInformationClassLevel::FILE_FS_ATTRIBUTE_INFORMATION => {
                Some(FileSystemInformationClass::FileFsAttributeInformation(FileFsAttributeInformation {
                    file_system_attributes: FileSystemAttributes::FILE_CASE_PRESERVED_NAMES
                        | FileSystemAttributes::FILE_UNICODE_ON_DISK,
                    max_component_name_len: super::names::MAX_NAME_UNITS as u32,
                    file_system_name: "FAT32".to_owned(),
                }))
            }
            FileSystemInformationClassLevel::FILE_FS_DEVICE_INFORMATION => {
                Some(FileSystemInformationClass::FileFsDeviceInformation(FileFsDeviceInformation {
                    device_type: 0x0000_0007, // FILE_DEVICE_DISK
                    characteristics: Characteristics::FILE_REMOTE_DEVICE,
                }))
            }
            _ => None,
        };
        let status = if buffer.is_some() { NtStatus::SUCCESS } else { NtStatus::NOT_SUPPORTED };
        message(ClientDriveQueryVolumeInformationResponse { device_io_reply: reply(&io, status), buffer })
    }

    fn set_information(&mut self, req: ServerDriveSetInformationRequest) -> SvcMessage {
        let status = match self.apply_information(&req) {
            Ok(()) => NtStatus::SUCCESS,
            Err(error) => {
                tracing::debug!(%error, "drive: set information failed");
                status_of(&error)
            }
        };
        match ClientDriveSetInformationResponse::new(&req, status) {
            Ok(response) => message(response),
            Err(_) => message(DeviceCloseResponse {
                device_io_response: reply(&req.device_io_request, NtStatus::INVALID_PARAMETER),
            }),
        }
    }

    fn apply_information(&mut self, req: &ServerDriveSetInformationRequest) -> Result<(), DriveError> {
        let file_id = req.device_io_request.file_id;
        let file = self.open.get_mut(&file_id).ok_or(DriveError::NotFound)?;
        match &req.set_buffer {
            FileInformationClass::EndOfFile(info) => {
                let handle = file.handle.ok_or(DriveError::WrongKind)?;
                file.written = true;
                let len = u64::try_from(info.end_of_file).map_err(|_| DriveError::Storage("negative size".into()))?;
                self.backend.set_len(handle, len)
            }
            FileInformationClass::Disposition(info) => {
                file.delete_on_close = info.delete_pending != 0;
                Ok(())
            }
            FileInformationClass::Rename(info) => {
                let target = DrivePath::from_wire(&info.file_name)?;
                let replace = matches!(info.replace_if_exists, Boolean::True);
                let from = file.path.clone();
                self.backend.rename(&from, &target, replace)?;
                if let Some(file) = self.open.get_mut(&file_id) {
                    file.path = target;
                }
                Ok(())
            }
            // Times, attributes and preallocation have no meaning for browser storage.
            FileInformationClass::Basic(_) | FileInformationClass::Allocation(_) => Ok(()),
            _ => Err(DriveError::Storage("unsupported information class".into())),
        }
    }

    /// Closes whatever the workstation left open and forgets waiting reads and writes (the channel ended:
    /// nobody waits for their answers).
    pub(crate) fn close_all(&mut self) {
        self.pending.clear();
        for (_, file) in self.open.drain() {
            if let Some(handle) = file.handle {
                let _ = self.backend.close(handle);
            }
        }
    }
}

/// Windows wildcard match with `*` and `?` (what enumeration patterns use), case-insensitive.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    if pattern == "*" || pattern == "*.*" || pattern.is_empty() {
        return true;
    }
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let name: Vec<char> = name.to_lowercase().chars().collect();
    let (mut p, mut n, mut star, mut mark) = (0, 0, None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
