//! The file table against an in-memory drive: dispositions, hostile paths, chunked reads, listings,
//! download notices, a 1 GiB file that streams through without being held, and reads and writes a store
//! answers later.

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
    fn read(&mut self, _: FileHandle, _: u64, _: u32, _: IoId) -> Result<Io<Vec<u8>>, DriveError> {
        Ok(Io::Done(Vec::new()))
    }
    fn write(&mut self, _: FileHandle, offset: u64, data: Vec<u8>, _: IoId) -> Result<Io<()>, DriveError> {
        let (size, chunks) = self.length.get();
        assert_eq!(offset, size, "writes arrive in order");
        assert_eq!(data[..8], offset.to_le_bytes(), "the chunk written at {offset} is another one");
        assert!(data[8..] == self.base[8..], "the chunk at {offset} changed");
        self.length.set((size + data.len() as u64, chunks + 1));
        Ok(Io::Done(()))
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

/// A store that answers every read and write later (as the browser's does): the memory drive behind it,
/// and the operations it was asked for, in order, for the test to finish.
struct LaterDrive {
    inner: MemoryDrive,
    asked: std::rc::Rc<std::cell::RefCell<Vec<(IoId, &'static str)>>>,
}

impl DriveBackend for LaterDrive {
    fn stat(&mut self, path: &DrivePath) -> Result<Entry, DriveError> {
        self.inner.stat(path)
    }
    fn list(&mut self, folder: &DrivePath) -> Result<Vec<Entry>, DriveError> {
        self.inner.list(folder)
    }
    fn mkdir(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        self.inner.mkdir(path)
    }
    fn open(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        self.inner.open(path)
    }
    fn create(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        self.inner.create(path)
    }
    fn read(&mut self, _: FileHandle, _: u64, _: u32, io: IoId) -> Result<Io<Vec<u8>>, DriveError> {
        self.asked.borrow_mut().push((io, "read"));
        Ok(Io::Deferred)
    }
    fn write(&mut self, _: FileHandle, _: u64, _: Vec<u8>, io: IoId) -> Result<Io<()>, DriveError> {
        self.asked.borrow_mut().push((io, "write"));
        Ok(Io::Deferred)
    }
    fn set_len(&mut self, file: FileHandle, len: u64) -> Result<(), DriveError> {
        self.inner.set_len(file, len)
    }
    fn close(&mut self, file: FileHandle) -> Result<(), DriveError> {
        self.inner.close(file)
    }
    fn delete(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        self.inner.delete(path)
    }
    fn rename(&mut self, from: &DrivePath, to: &DrivePath, replace: bool) -> Result<(), DriveError> {
        self.inner.rename(from, to, replace)
    }
}

type Asked = std::rc::Rc<std::cell::RefCell<Vec<(IoId, &'static str)>>>;

/// A harness whose store answers later, with `Downloads/later.bin` open for writing.
fn later_harness() -> (Harness, Asked, u32) {
    let mut h = Harness::new();
    let asked = Asked::default();
    h.server = FileServer::new(Box::new(LaterDrive { inner: h.drive.clone(), asked: asked.clone() }), DriveConfig::default());
    let (status, file) = h.create("\\Downloads\\later.bin", OVERWRITE_IF, CreateOptions::empty());
    assert_eq!(status, 0);
    (h, asked, file)
}

fn read_request(file_id: u32, length: u32) -> ServerDriveIoRequest {
    ServerDriveIoRequest::DeviceReadRequest(DeviceReadRequest {
        device_io_request: io(file_id, MajorFunction::Read),
        length,
        offset: 0,
    })
}

fn write_request(file_id: u32, data: Vec<u8>) -> ServerDriveIoRequest {
    ServerDriveIoRequest::DeviceWriteRequest(DeviceWriteRequest {
        device_io_request: io(file_id, MajorFunction::Write),
        offset: 0,
        write_data: data,
    })
}

/// (status, read data) of an encoded read completion.
fn read_answer(answer: &SvcMessage) -> (u32, Vec<u8>) {
    let bytes = answer.encode_unframed_pdu().unwrap();
    let len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    (status(answer), bytes[20..20 + len].to_vec())
}

/// (status, length written) of an encoded write completion.
fn write_answer(answer: &SvcMessage) -> (u32, u32) {
    let bytes = answer.encode_unframed_pdu().unwrap();
    (status(answer), u32::from_le_bytes(bytes[16..20].try_into().unwrap()))
}

#[test]
fn a_deferred_read_is_answered_once_when_the_store_finishes_and_never_with_more_than_asked() {
    let (mut h, asked, file) = later_harness();
    assert!(h.server.handle(read_request(file, 4), &mut h.notices).is_none(), "no answer before the store's");
    let (id, kind) = asked.borrow()[0];
    assert_eq!(kind, "read");
    // A store that gives more than asked is cut to the request's length.
    let answer = h.server.complete(id, Ok(IoOutcome::Read(b"abcdefgh".to_vec()))).expect("an answer");
    assert_eq!(read_answer(&answer), (0, b"abcd".to_vec()));
    assert!(h.server.complete(id, Ok(IoOutcome::Read(Vec::new()))).is_none(), "answered twice");
    assert!(h.server.complete(IoId(u64::MAX), Ok(IoOutcome::Written)).is_none(), "an id nobody asked for");
}

#[test]
fn a_deferred_write_answers_its_length_or_the_stores_error() {
    let (mut h, asked, file) = later_harness();
    assert!(h.server.handle(write_request(file, vec![7; 300]), &mut h.notices).is_none());
    assert!(h.server.handle(write_request(file, vec![8; 20]), &mut h.notices).is_none());
    let ids: Vec<IoId> = asked.borrow().iter().map(|(id, _)| *id).collect();
    assert_ne!(ids[0], ids[1]);
    let full = h.server.complete(ids[1], Err(DriveError::Full)).expect("an answer");
    assert_eq!(write_answer(&full), (u(NtStatus::DISK_FULL), 0));
    let done = h.server.complete(ids[0], Ok(IoOutcome::Written)).expect("an answer");
    assert_eq!(write_answer(&done), (0, 300));
    // A store that answers a write with data has failed.
    assert!(h.server.handle(write_request(file, vec![9; 5]), &mut h.notices).is_none());
    let third = asked.borrow()[2].0;
    let confused = h.server.complete(third, Ok(IoOutcome::Read(vec![1]))).expect("an answer");
    assert_eq!(write_answer(&confused), (u(NtStatus::UNSUCCESSFUL), 0));
}

#[test]
fn a_file_closed_while_its_write_is_pending_is_still_offered_as_a_download() {
    let (mut h, _, file) = later_harness();
    assert!(h.server.handle(write_request(file, vec![1; 10]), &mut h.notices).is_none());
    assert_eq!(h.close(file), 0);
    let path = DrivePath::parse_slashed("Downloads/later.bin").unwrap();
    assert!(matches!(h.notices.as_slice(), [DriveNotice::Download { path: p, .. }] if *p == path), "{:?}", h.notices);
}

#[test]
fn waiting_requests_are_bounded_and_forgotten_when_the_channel_restarts() {
    let (mut h, asked, file) = later_harness();
    for _ in 0..MAX_PENDING {
        assert!(h.server.handle(read_request(file, 1), &mut h.notices).is_none());
    }
    let busy = h.server.handle(read_request(file, 1), &mut h.notices).expect("refused at once");
    assert_eq!(read_answer(&busy).0, u(NtStatus::INSUFFICIENT_RESOURCES));
    let busy = h.server.handle(write_request(file, vec![1]), &mut h.notices).expect("refused at once");
    assert_eq!(write_answer(&busy).0, u(NtStatus::INSUFFICIENT_RESOURCES));
    assert_eq!(asked.borrow().len(), MAX_PENDING, "the store is not asked beyond the bound");
    // One answered frees one place.
    let first = asked.borrow()[0].0;
    assert!(h.server.complete(first, Ok(IoOutcome::Read(vec![0]))).is_some());
    assert!(h.server.handle(read_request(file, 1), &mut h.notices).is_none());
    // The channel restarted: late answers are for nobody.
    h.server.close_all();
    let last = asked.borrow()[MAX_PENDING].0;
    assert!(h.server.complete(last, Ok(IoOutcome::Read(vec![0]))).is_none());
}
