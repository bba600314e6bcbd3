//! The file table against an in-memory drive: dispositions, hostile paths, chunked reads, listings,
//! download notices, and a 1 GiB file that streams through without being held.

use super::*;
use crate::drive::MemoryDrive;
use ironrdp_rdpdr::pdu::efs::{
    DesiredAccess, DeviceCloseRequest, DeviceReadRequest, DeviceWriteRequest, FileDispositionInformation,
    MajorFunction, MinorFunction, SharedAccess,
};

fn io(file_id: u32, major_function: MajorFunction) -> DeviceIoRequest {
    DeviceIoRequest { device_id: 1, file_id, completion_id: 3, major_function, minor_function: MinorFunction::from(0) }
}

/// The NTSTATUS of an encoded completion: header (4), device id (4), completion id (4), status (4).
fn status(answer: &SvcMessage) -> u32 {
    let bytes = answer.encode_unframed_pdu().unwrap();
    u32::from_le_bytes(bytes[12..16].try_into().unwrap())
}

struct Harness {
    server: FileServer,
    drive: MemoryDrive,
    notices: Vec<DriveNotice>,
}

impl Harness {
    fn new() -> Harness {
        let drive = MemoryDrive::new();
        let mut backend = drive.clone();
        backend.mkdir(&DrivePath::parse_slashed("Downloads").unwrap()).unwrap();
        backend.mkdir(&DrivePath::parse_slashed("Uploads").unwrap()).unwrap();
        Harness { server: FileServer::new(Box::new(drive.clone()), DriveConfig::default()), drive, notices: Vec::new() }
    }

    fn send(&mut self, request: ServerDriveIoRequest) -> SvcMessage {
        self.server.handle(request, &mut self.notices).expect("an answer")
    }

    /// Opens `path` with a disposition; returns (status, file id).
    fn create(&mut self, path: &str, disposition: CreateDisposition, options: CreateOptions) -> (u32, u32) {
        let answer = self.send(ServerDriveIoRequest::ServerCreateDriveRequest(DeviceCreateRequest {
            device_io_request: io(0, MajorFunction::Create),
            desired_access: DesiredAccess::empty(),
            allocation_size: 0,
            file_attributes: FileAttributes::empty(),
            shared_access: SharedAccess::empty(),
            create_disposition: disposition,
            create_options: options,
            path: path.to_owned(),
        }));
        let bytes = answer.encode_unframed_pdu().unwrap();
        (status(&answer), u32::from_le_bytes(bytes[16..20].try_into().unwrap()))
    }

    fn write(&mut self, file_id: u32, offset: u64, data: Vec<u8>) -> u32 {
        let request =
            DeviceWriteRequest { device_io_request: io(file_id, MajorFunction::Write), offset, write_data: data };
        status(&self.send(ServerDriveIoRequest::DeviceWriteRequest(request)))
    }

    /// (status, data) of one read.
    fn read(&mut self, file_id: u32, offset: u64, length: u32) -> (u32, Vec<u8>) {
        let request = DeviceReadRequest { device_io_request: io(file_id, MajorFunction::Read), length, offset };
        let answer = self.send(ServerDriveIoRequest::DeviceReadRequest(request));
        let bytes = answer.encode_unframed_pdu().unwrap();
        let len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
        (status(&answer), bytes[20..20 + len].to_vec())
    }

    fn close(&mut self, file_id: u32) -> u32 {
        let request = DeviceCloseRequest { device_io_request: io(file_id, MajorFunction::Close) };
        status(&self.send(ServerDriveIoRequest::DeviceCloseRequest(request)))
    }

    fn list(&mut self, folder: &str) -> Vec<String> {
        let (_, file_id) = self.create(folder, CreateDisposition::FILE_OPEN, CreateOptions::FILE_DIRECTORY_FILE);
        let mut names = Vec::new();
        let mut initial = 1;
        loop {
            let answer =
                self.send(ServerDriveIoRequest::ServerDriveQueryDirectoryRequest(ServerDriveQueryDirectoryRequest {
                    device_io_request: io(file_id, MajorFunction::DirectoryControl),
                    file_info_class_lvl: FileInformationClassLevel::FILE_NAMES_INFORMATION,
                    initial_query: initial,
                    path: format!("{folder}\\*"),
                }));
            initial = 0;
            if status(&answer) == u(NtStatus::NO_MORE_FILES) {
                break;
            }
            assert_eq!(status(&answer), 0);
            // Length (4), then FileNamesInformation: next offset (4), index (4), name length (4), name.
            let bytes = answer.encode_unframed_pdu().unwrap();
            let name_len = u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
            let units: Vec<u16> =
                bytes[32..32 + name_len].chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]])).collect();
            names.push(String::from_utf16_lossy(&units).trim_end_matches('\0').to_owned());
        }
        self.close(file_id);
        names
    }
}

const CREATE: CreateDisposition = CreateDisposition::FILE_CREATE;
const OPEN: CreateDisposition = CreateDisposition::FILE_OPEN;
const OVERWRITE_IF: CreateDisposition = CreateDisposition::FILE_OVERWRITE_IF;

fn u(status: NtStatus) -> u32 {
    status.into()
}

#[test]
fn hostile_paths_are_refused_and_nothing_is_created() {
    let mut h = Harness::new();
    for path in [
        "\\..\\outside.txt",
        "\\Downloads\\..\\..\\x",
        "C:\\Windows\\evil.dll",
        "\\\\server\\share\\x",
        "\\Downloads\\a\0b",
        "\\Downloads\\CON",
        "\\Downloads\\lpt1.txt",
        "\\Downloads\\name.",
        "\\Downloads\\file.txt:stream",
        &format!("\\Downloads\\{}", "x".repeat(300)),
    ] {
        let (status, _) = h.create(path, OVERWRITE_IF, CreateOptions::empty());
        assert_eq!(status, u(NtStatus::OBJECT_NAME_INVALID), "{path:?}");
    }
    assert!(h.list("\\Downloads").is_empty());
    assert_eq!(h.list(""), ["Downloads", "Uploads"]);
}

#[test]
fn dispositions_follow_windows_rules() {
    let mut h = Harness::new();
    assert_eq!(h.create("\\Uploads\\missing.txt", OPEN, CreateOptions::empty()).0, u(NtStatus::NO_SUCH_FILE));
    assert_eq!(h.create("\\Nowhere\\x.txt", OPEN, CreateOptions::empty()).0, u(NtStatus::OBJECT_PATH_NOT_FOUND));
    let (status, file) = h.create("\\Uploads\\a.txt", CREATE, CreateOptions::empty());
    assert_eq!(status, 0);
    assert_eq!(h.write(file, 0, b"hello".to_vec()), 0);
    assert_eq!(h.close(file), 0);
    assert_eq!(h.create("\\Uploads\\a.txt", CREATE, CreateOptions::empty()).0, u(NtStatus::OBJECT_NAME_COLLISION));
    let (status, file) = h.create("\\Uploads\\a.txt", OPEN, CreateOptions::empty());
    assert_eq!((status, h.read(file, 0, 100)), (0, (0, b"hello".to_vec())));
    h.close(file);
    let (_, file) = h.create("\\Uploads\\a.txt", OVERWRITE_IF, CreateOptions::empty());
    h.close(file);
    assert_eq!(h.drive.contents(&DrivePath::parse_slashed("Uploads/a.txt").unwrap()), Some(Vec::new()));
    let (status, _) = h.create("\\Uploads\\a.txt", OPEN, CreateOptions::FILE_DIRECTORY_FILE);
    assert_eq!(status, u(NtStatus::NOT_A_DIRECTORY));
    let (status, folder) = h.create("\\Uploads\\new", CREATE, CreateOptions::FILE_DIRECTORY_FILE);
    assert_eq!(status, 0);
    h.close(folder);
    assert_eq!(h.list("\\Uploads"), ["a.txt", "new"]);
    assert_eq!(h.drive.open_files(), 0);
}

#[test]
fn a_file_closed_in_the_download_folder_is_announced_once_written() {
    let mut h = Harness::new();
    let (_, file) = h.create("\\Downloads\\report.pdf", OVERWRITE_IF, CreateOptions::empty());
    h.write(file, 0, b"%PDF-1.7".to_vec());
    h.close(file);
    let (_, file) = h.create("\\Uploads\\elsewhere.txt", OVERWRITE_IF, CreateOptions::empty());
    h.write(file, 0, b"x".to_vec());
    h.close(file);
    // Reading a download again is no new download.
    let (_, file) = h.create("\\Downloads\\report.pdf", OPEN, CreateOptions::empty());
    h.read(file, 0, 10);
    h.close(file);
    let path = DrivePath::parse_slashed("Downloads/report.pdf").unwrap();
    assert_eq!(h.notices, [DriveNotice::Download { path, size: 8 }]);
}

#[test]
fn delete_on_close_and_disposition_remove_the_file_without_a_notice() {
    let mut h = Harness::new();
    let (_, file) = h.create("\\Downloads\\tmp.part", OVERWRITE_IF, CreateOptions::empty());
    h.write(file, 0, b"partial".to_vec());
    let request = ServerDriveSetInformationRequest {
        device_io_request: io(file, MajorFunction::SetInformation),
        set_buffer: FileInformationClass::Disposition(FileDispositionInformation { delete_pending: 1 }),
    };
    assert_eq!(status(&h.send(ServerDriveIoRequest::ServerDriveSetInformationRequest(request))), 0);
    h.close(file);
    assert!(h.list("\\Downloads").is_empty());
    assert!(h.notices.is_empty());
}

#[test]
fn reads_are_capped_and_chunks_give_the_whole_file() {
    let mut h = Harness::new();
    let data: Vec<u8> = (0..3 * MAX_READ + 5).map(|i| (i % 251) as u8).collect();
    h.drive.put(&DrivePath::parse_slashed("Uploads/big.bin").unwrap(), &data);
    let (_, file) = h.create("\\Uploads\\big.bin", OPEN, CreateOptions::empty());
    let mut received = Vec::new();
    loop {
        let (status, chunk) = h.read(file, received.len() as u64, u32::MAX);
        assert_eq!(status, 0);
        assert!(chunk.len() <= MAX_READ as usize);
        if chunk.is_empty() {
            break;
        }
        received.extend_from_slice(&chunk);
    }
    assert!(received == data, "the file read back differs");
    h.close(file);
}

/// A backend that keeps only the length of what is written and checks each chunk's stamp (its
/// offset in the first 8 bytes, then a fixed pattern): a 1 GiB file passes through the file table
/// one request at a time, and nothing along the way can hold it whole.
struct ChecksumSink {
    length: std::rc::Rc<std::cell::Cell<(u64, u64)>>,
    base: Vec<u8>,
}

fn stamped_chunk(base: &[u8], offset: u64) -> Vec<u8> {
    let mut chunk = base.to_vec();
    chunk[..8].copy_from_slice(&offset.to_le_bytes());
    chunk
}

impl DriveBackend for ChecksumSink {
    fn stat(&mut self, path: &DrivePath) -> Result<Entry, DriveError> {
        let name = path.file_name().unwrap_or_default().to_owned();
        let is_dir = path.components().len() < 2;
        let (size, _) = self.length.get();
        Ok(Entry { name, is_dir, size: if is_dir { 0 } else { size }, modified_ms: 0 })
    }
    fn list(&mut self, _: &DrivePath) -> Result<Vec<Entry>, DriveError> {
        Ok(Vec::new())
    }
    fn mkdir(&mut self, _: &DrivePath) -> Result<(), DriveError> {
        Ok(())
    }
    fn open(&mut self, _: &DrivePath) -> Result<FileHandle, DriveError> {
        Ok(FileHandle(1))
    }
    fn create(&mut self, _: &DrivePath) -> Result<FileHandle, DriveError> {
        self.length.set((0, 0));
        Ok(FileHandle(1))
    }
    fn read(&mut self, _: FileHandle, _: u64, _: u32) -> Result<Vec<u8>, DriveError> {
        Ok(Vec::new())
    }
    fn write(&mut self, _: FileHandle, offset: u64, data: &[u8]) -> Result<(), DriveError> {
        let (size, chunks) = self.length.get();
        assert_eq!(offset, size, "writes arrive in order");
        assert_eq!(data[..8], offset.to_le_bytes(), "the chunk written at {offset} is another one");
        assert!(data[8..] == self.base[8..], "the chunk at {offset} changed");
        self.length.set((size + data.len() as u64, chunks + 1));
        Ok(())
    }
    fn set_len(&mut self, _: FileHandle, _: u64) -> Result<(), DriveError> {
        Ok(())
    }
    fn close(&mut self, _: FileHandle) -> Result<(), DriveError> {
        Ok(())
    }
    fn delete(&mut self, _: &DrivePath) -> Result<(), DriveError> {
        Ok(())
    }
    fn rename(&mut self, _: &DrivePath, _: &DrivePath, _: bool) -> Result<(), DriveError> {
        Ok(())
    }
}

#[test]
fn a_gigabyte_streams_through_in_chunks() {
    const CHUNK: usize = 64 * 1024;
    const TOTAL: u64 = 1 << 30;
    let state = std::rc::Rc::new(std::cell::Cell::new((0, 0)));
    let base: Vec<u8> = (0..CHUNK).map(|i| (i % 253) as u8).collect();
    let sink = ChecksumSink { length: state.clone(), base: base.clone() };
    let mut server = FileServer::new(Box::new(sink), DriveConfig::default());
    let mut notices = Vec::new();
    let create = DeviceCreateRequest {
        device_io_request: io(0, MajorFunction::Create),
        desired_access: DesiredAccess::empty(),
        allocation_size: 0,
        file_attributes: FileAttributes::empty(),
        shared_access: SharedAccess::empty(),
        create_disposition: CreateDisposition::FILE_OVERWRITE_IF,
        create_options: CreateOptions::empty(),
        path: "\\Downloads\\huge.bin".to_owned(),
    };
    server.handle(ServerDriveIoRequest::ServerCreateDriveRequest(create), &mut notices);
    let file_id = server.next_file_id;
    let mut offset = 0u64;
    while offset < TOTAL {
        let chunk = stamped_chunk(&base, offset);
        let write =
            DeviceWriteRequest { device_io_request: io(file_id, MajorFunction::Write), offset, write_data: chunk };
        let answer = server.handle(ServerDriveIoRequest::DeviceWriteRequest(write), &mut notices).unwrap();
        assert_eq!(status(&answer), 0);
        offset += CHUNK as u64;
    }
    let close = DeviceCloseRequest { device_io_request: io(file_id, MajorFunction::Close) };
    server.handle(ServerDriveIoRequest::DeviceCloseRequest(close), &mut notices);
    assert_eq!(state.get(), (TOTAL, TOTAL / CHUNK as u64));
    let path = DrivePath::parse_slashed("Downloads/huge.bin").unwrap();
    assert_eq!(notices, [DriveNotice::Download { path, size: TOTAL }]);
}

#[test]
fn wildcards_match_like_windows() {
    assert!(matches_pattern("*", "anything"));
    assert!(matches_pattern("*.pdf", "Report.PDF"));
    assert!(!matches_pattern("*.pdf", "report.pdf.txt"));
    assert!(matches_pattern("a?c", "abc"));
    assert!(matches_pattern("exact.txt", "EXACT.txt"));
    assert!(!matches_pattern("exact.txt", "exact.txt2"));
}
