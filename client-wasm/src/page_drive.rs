//! The store behind the browser's drive: names and sizes in memory, the files' bytes in the origin
//! private file system (OPFS), so a 1 GB file passes through without being held in memory.
//!
//! The main thread reaches OPFS only through promises, so every read of the workstation is deferred
//! (`Io::Deferred`): it joins one queue that a single task works through in order, and its answer goes
//! to the session through the sink the session registers (`set_sink`). Writes are cached up to
//! `WRITE_BEHIND` bytes (answered at once, written in order, contiguous ones joined into one call) and
//! deferred beyond; a failed cached write fails the file's later writes and its close, and the page is
//! told. One queue keeps the
//! drive's order: a close commits the writes before it, a download is taken after the close that made
//! it. Each file is an OPFS object named by a number, so renames touch no data. A file being written
//! keeps one writable stream open until it is closed (or read), which Chromium commits in one move.
//!
//! Uploads are copied into a new object straight from the `File` (Blob slices, never through wasm
//! memory) and appear in the drive only when complete. The objects live in one folder per tab, emptied
//! when the tab loads again; a closed tab's folder stays until the browser clears site data.

use homedesk_client_core::drive::{
    DriveBackend, DriveError, DrivePath, Entry, FileData, FileHandle, FileTree, Io, IoId, IoOutcome,
};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, File, FileSystemCreateWritableOptions, FileSystemDirectoryHandle, FileSystemFileHandle,
    FileSystemGetDirectoryOptions, FileSystemGetFileOptions, FileSystemRemoveOptions, FileSystemWritableFileStream,
    WriteCommandType, WriteParams,
};

/// Where a finished read or write goes: the live session.
pub type Sink = Rc<dyn Fn(IoId, Result<IoOutcome, DriveError>)>;

/// Upload copy slices: how much the browser moves per step (progress and cancel are per slice).
const UPLOAD_SLICE: f64 = 4.0 * 1024.0 * 1024.0;
/// Written data the drive may hold before storage has it (a write cache, as a network drive has): up to
/// this, a write is answered at once, so the workstation sends the next without waiting a round trip
/// per write (xrdp writes a file in small pieces, one at a time); beyond it, the answer waits for storage.
const WRITE_BEHIND: usize = 8 * 1024 * 1024;

/// A file of the drive: its OPFS object and its size (kept here, so listings need no storage call).
#[derive(Debug, Clone, Copy)]
struct Stored {
    key: u64,
    size: u64,
}

impl FileData for Stored {
    fn size(&self) -> u64 {
        self.size
    }
}

/// Storage work, done in order by one task.
enum Op {
    Read { io: IoId, key: u64, offset: u64, len: u32 },
    /// `io` is `None` for a write already answered (write-behind).
    Write { io: Option<IoId>, key: u64, offset: u64, data: Vec<u8> },
    Truncate { key: u64, len: u64 },
    /// A handle was closed: what was written becomes the file.
    Commit { key: u64 },
    Remove { key: u64 },
    /// Hands the committed file (a disk-backed `File`) to the page.
    Deliver { key: u64, then: Box<dyn FnOnce(Result<File, DriveError>)> },
}

#[derive(Default)]
struct Shared {
    tree: RefCell<FileTree<Stored>>,
    queue: RefCell<VecDeque<Op>>,
    running: Cell<bool>,
    next_key: Cell<u64>,
    /// This tab's OPFS folder, once asked for (see `folder`).
    folder: RefCell<Option<js_sys::Promise>>,
    /// Open writable streams, by object.
    writers: RefCell<HashMap<u64, FileSystemWritableFileStream>>,
    /// The last `getFile()` of an object not written since, for reads.
    snapshots: RefCell<HashMap<u64, File>>,
    sink: RefCell<Option<Sink>>,
    /// Bytes of queued writes (see `WRITE_BEHIND`).
    queued_bytes: Cell<usize>,
    /// Objects a write-behind failed for: later operations on them fail with this.
    failed: RefCell<HashMap<u64, DriveError>>,
    /// Tells the page about storage failures nobody waits for (a commit, a removal).
    on_error: RefCell<Option<Rc<dyn Fn(String)>>>,
}

/// The browser's drive store; clones share it.
#[derive(Clone, Default)]
pub struct PageDrive {
    shared: Rc<Shared>,
}

impl PageDrive {
    /// The session that gets the answers of deferred reads and writes (`None`: nobody; they are dropped).
    pub fn set_sink(&self, sink: Option<Sink>) {
        *self.shared.sink.borrow_mut() = sink;
    }

    /// Where storage failures that no request waits for are reported (a sentence).
    pub fn set_error_reporter(&self, report: Rc<dyn Fn(String)>) {
        *self.shared.on_error.borrow_mut() = Some(report);
    }

    /// Makes `path` and its missing parents.
    pub fn mkdir_all(&self, path: &DrivePath) -> Result<(), DriveError> {
        self.shared.tree.borrow_mut().mkdir_all(path)
    }

    fn new_key(&self) -> u64 {
        let key = self.shared.next_key.get() + 1;
        self.shared.next_key.set(key);
        key
    }

    fn enqueue(&self, op: Op) {
        self.shared.queue.borrow_mut().push_back(op);
        if !self.shared.running.replace(true) {
            let shared = self.shared.clone();
            wasm_bindgen_futures::spawn_local(async move {
                loop {
                    let next = shared.queue.borrow_mut().pop_front();
                    let Some(op) = next else { break };
                    run(&shared, op).await;
                }
                shared.running.set(false);
            });
        }
    }

    /// Copies `file` into the drive at `path` (replacing what is there) slice by slice, reporting the
    /// bytes copied after each; stops early when `cancelled` says so. The drive shows the file only
    /// once it is complete; a failed or cancelled copy leaves nothing.
    pub async fn upload(
        &self,
        file: &File,
        path: &DrivePath,
        progress: impl Fn(f64),
        cancelled: impl Fn() -> bool,
    ) -> Result<bool, DriveError> {
        let key = self.new_key();
        let copied = copy_file(&self.shared, key, file, progress, cancelled).await;
        let complete = match copied {
            Ok(complete) => complete,
            Err(error) => {
                self.enqueue(Op::Remove { key });
                return Err(error);
            }
        };
        if !complete {
            self.enqueue(Op::Remove { key });
            return Ok(false);
        }
        let size = file.size() as u64;
        match self.shared.tree.borrow_mut().put(path, Stored { key, size }) {
            Ok(replaced) => {
                if let Some(old) = replaced {
                    self.enqueue(Op::Remove { key: old.key });
                }
                Ok(true)
            }
            Err(error) => {
                self.enqueue(Op::Remove { key });
                Err(error)
            }
        }
    }

    /// Hands the file at `path`, once everything before is written, to `then` (a `File` the browser reads
    /// from disk).
    pub fn deliver(&self, path: &DrivePath, then: impl FnOnce(Result<File, DriveError>) + 'static) {
        let stored = self.shared.tree.borrow().get(path).copied();
        match stored {
            Some(stored) => self.enqueue(Op::Deliver { key: stored.key, then: Box::new(then) }),
            None => then(Err(DriveError::NotFound)),
        }
    }

    fn stored(&self, file: FileHandle) -> Result<Stored, DriveError> {
        self.shared.tree.borrow_mut().data_mut(file).map(|stored| *stored)
    }

    fn forget(&self, removed: Option<Stored>) {
        if let Some(stored) = removed {
            self.enqueue(Op::Remove { key: stored.key });
        }
    }
}

impl DriveBackend for PageDrive {
    fn stat(&mut self, path: &DrivePath) -> Result<Entry, DriveError> {
        self.shared.tree.borrow().stat(path)
    }

    fn list(&mut self, folder: &DrivePath) -> Result<Vec<Entry>, DriveError> {
        self.shared.tree.borrow().list(folder)
    }

    fn mkdir(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        self.shared.tree.borrow_mut().mkdir(path)
    }

    fn open(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        self.shared.tree.borrow_mut().open(path)
    }

    fn create(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        let key = self.new_key();
        let (handle, replaced) = self.shared.tree.borrow_mut().create(path, Stored { key, size: 0 })?;
        self.forget(replaced);
        Ok(handle)
    }

    fn read(&mut self, file: FileHandle, offset: u64, len: u32, io: IoId) -> Result<Io<Vec<u8>>, DriveError> {
        let stored = self.stored(file)?;
        if offset >= stored.size || len == 0 {
            return Ok(Io::Done(Vec::new()));
        }
        let len = (stored.size - offset).min(u64::from(len)) as u32;
        self.enqueue(Op::Read { io, key: stored.key, offset, len });
        Ok(Io::Deferred)
    }

    fn write(&mut self, file: FileHandle, offset: u64, data: Vec<u8>, io: IoId) -> Result<Io<()>, DriveError> {
        let end = offset.checked_add(data.len() as u64).ok_or(DriveError::Full)?;
        let key = {
            let mut tree = self.shared.tree.borrow_mut();
            tree.touch();
            let stored = tree.data_mut(file)?;
            stored.size = stored.size.max(end);
            stored.key
        };
        if let Some(error) = self.shared.failed.borrow().get(&key) {
            return Err(error.clone());
        }
        let queued = self.shared.queued_bytes.get() + data.len();
        self.shared.queued_bytes.set(queued);
        if queued <= WRITE_BEHIND {
            self.enqueue(Op::Write { io: None, key, offset, data });
            return Ok(Io::Done(()));
        }
        self.enqueue(Op::Write { io: Some(io), key, offset, data });
        Ok(Io::Deferred)
    }

    fn set_len(&mut self, file: FileHandle, len: u64) -> Result<(), DriveError> {
        let key = {
            let mut tree = self.shared.tree.borrow_mut();
            tree.touch();
            let stored = tree.data_mut(file)?;
            stored.size = len;
            stored.key
        };
        self.enqueue(Op::Truncate { key, len });
        Ok(())
    }

    fn close(&mut self, file: FileHandle) -> Result<(), DriveError> {
        let key = self.stored(file)?.key;
        self.shared.tree.borrow_mut().close(file)?;
        self.enqueue(Op::Commit { key });
        Ok(())
    }

    fn delete(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        let removed = self.shared.tree.borrow_mut().delete(path)?;
        self.forget(removed);
        Ok(())
    }

    fn rename(&mut self, from: &DrivePath, to: &DrivePath, replace: bool) -> Result<(), DriveError> {
        let replaced = self.shared.tree.borrow_mut().rename(from, to, replace)?;
        self.forget(replaced);
        Ok(())
    }
}

/// Does one queued operation; answers a read or write through the sink, reports other failures.
async fn run(shared: &Rc<Shared>, op: Op) {
    match op {
        Op::Read { io, key, offset, len } => {
            let outcome = read(shared, key, offset, len).await.map(IoOutcome::Read);
            answer(shared, io, outcome);
        }
        Op::Write { io, key, offset, data } => {
            let (ios, data) = gather_writes(shared, io, key, offset, data);
            let length = data.len();
            let outcome = match shared.failed.borrow().get(&key).cloned() {
                Some(error) => Err(error),
                None => write(shared, key, offset, data).await,
            };
            shared.queued_bytes.set(shared.queued_bytes.get().saturating_sub(length));
            if let Err(error) = &outcome {
                // Writes answered already may be among these: the file is broken from here on.
                shared.failed.borrow_mut().insert(key, error.clone());
            }
            for io in ios {
                answer(shared, io, outcome.clone().map(|()| IoOutcome::Written));
            }
        }
        Op::Truncate { key, len } => {
            let result = async {
                let writer = writer(shared, key).await?;
                settle(writer.truncate_with_f64(len as f64).map_err(storage_error)?).await
            }
            .await;
            report(shared, "A file could not be resized", result);
        }
        Op::Commit { key } => {
            let result = commit(shared, key).await;
            report(shared, "A file the workstation saved could not be stored", result);
        }
        Op::Remove { key } => {
            shared.snapshots.borrow_mut().remove(&key);
            shared.failed.borrow_mut().remove(&key);
            let writer = shared.writers.borrow_mut().remove(&key);
            if let Some(writer) = writer {
                let _ = JsFuture::from(writer.abort()).await;
            }
            if let Ok(folder) = folder(shared).await {
                // An object never written was never made: nothing to remove.
                let _ = JsFuture::from(folder.remove_entry(&object_name(key))).await;
            }
        }
        Op::Deliver { key, then } => {
            let file = async {
                commit(shared, key).await?;
                snapshot(shared, key).await
            }
            .await;
            then(file);
        }
    }
}

/// The write at the queue's front joined by the queued writes that continue it (same object, next
/// offset): one storage call instead of many small ones. Returns the ids waiting for an answer and the data.
fn gather_writes(shared: &Shared, io: Option<IoId>, key: u64, offset: u64, mut data: Vec<u8>) -> (Vec<IoId>, Vec<u8>) {
    let mut ios: Vec<IoId> = io.into_iter().collect();
    let mut queue = shared.queue.borrow_mut();
    while data.len() < WRITE_BEHIND {
        match queue.front() {
            Some(Op::Write { key: next_key, offset: next_offset, .. })
                if *next_key == key && *next_offset == offset + data.len() as u64 => {}
            _ => break,
        }
        if let Some(Op::Write { io, data: more, .. }) = queue.pop_front() {
            ios.extend(io);
            data.extend_from_slice(&more);
        }
    }
    (ios, data)
}

fn answer(shared: &Shared, io: IoId, outcome: Result<IoOutcome, DriveError>) {
    let sink = shared.sink.borrow().clone();
    if let Some(sink) = sink {
        sink(io, outcome);
    }
}

fn report(shared: &Shared, what: &str, result: Result<(), DriveError>) {
    if let Err(error) = result {
        let reporter = shared.on_error.borrow().clone();
        match reporter {
            Some(report) => report(format!("{what}: {error}.")),
            None => gloo::console::error!(format!("{what}: {error}")),
        }
    }
}

fn object_name(key: u64) -> String {
    format!("{key}")
}

/// This tab's folder in OPFS, made (and emptied of an earlier load's objects) by the first caller; later
/// and concurrent callers await the same promise, so the emptying happens once, before any object is made.
async fn folder(shared: &Shared) -> Result<FileSystemDirectoryHandle, DriveError> {
    let promise = shared
        .folder
        .borrow_mut()
        .get_or_insert_with(|| wasm_bindgen_futures::future_to_promise(make_folder()))
        .clone();
    Ok(settle_value(promise).await?.unchecked_into())
}

async fn make_folder() -> Result<JsValue, JsValue> {
    let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window"))?;
    let root: FileSystemDirectoryHandle = JsFuture::from(window.navigator().storage().get_directory()).await?.unchecked_into();
    // The tab keeps its folder name across reloads, so a reload empties the last one instead of adding more.
    let session_storage = window.session_storage().ok().flatten();
    let name = session_storage
        .as_ref()
        .and_then(|s| s.get_item("homedesk-drive").ok().flatten())
        .unwrap_or_else(|| format!("drive-{:x}", (js_sys::Math::random() * 1e15) as u64));
    if let Some(storage) = &session_storage {
        let _ = storage.set_item("homedesk-drive", &name);
    }
    let recursive = FileSystemRemoveOptions::new();
    recursive.set_recursive(true);
    let _ = JsFuture::from(root.remove_entry_with_options(&name, &recursive)).await;
    let create = FileSystemGetDirectoryOptions::new();
    create.set_create(true);
    JsFuture::from(root.get_directory_handle_with_options(&name, &create)).await
}

async fn file_handle(shared: &Shared, key: u64, create: bool) -> Result<FileSystemFileHandle, DriveError> {
    let folder = folder(shared).await?;
    let options = FileSystemGetFileOptions::new();
    options.set_create(create);
    Ok(settle_value(folder.get_file_handle_with_options(&object_name(key), &options)).await?.unchecked_into())
}

/// The object's open writable stream, opened (keeping its data) if needed.
async fn writer(shared: &Shared, key: u64) -> Result<FileSystemWritableFileStream, DriveError> {
    shared.snapshots.borrow_mut().remove(&key);
    if let Some(writer) = shared.writers.borrow().get(&key).cloned() {
        return Ok(writer);
    }
    let handle = file_handle(shared, key, true).await?;
    let options = FileSystemCreateWritableOptions::new();
    options.set_keep_existing_data(true);
    let writer: FileSystemWritableFileStream =
        settle_value(handle.create_writable_with_options(&options)).await?.unchecked_into();
    shared.writers.borrow_mut().insert(key, writer.clone());
    Ok(writer)
}

/// Closes the object's writable stream, which makes its writes the file's content; fails for an object
/// a write-behind failed for.
async fn commit(shared: &Shared, key: u64) -> Result<(), DriveError> {
    if let Some(error) = shared.failed.borrow().get(&key).cloned() {
        return Err(error);
    }
    let writer = shared.writers.borrow_mut().remove(&key);
    match writer {
        Some(writer) => settle(writer.close()).await,
        None => Ok(()),
    }
}

/// The object as a `File` (committed first); an object never written is an empty file.
async fn snapshot(shared: &Shared, key: u64) -> Result<File, DriveError> {
    if let Some(file) = shared.snapshots.borrow().get(&key).cloned() {
        return Ok(file);
    }
    commit(shared, key).await?;
    let handle = file_handle(shared, key, true).await?;
    let file: File = settle_value(handle.get_file()).await?.unchecked_into();
    shared.snapshots.borrow_mut().insert(key, file.clone());
    Ok(file)
}

async fn read(shared: &Shared, key: u64, offset: u64, len: u32) -> Result<Vec<u8>, DriveError> {
    let file = snapshot(shared, key).await?;
    let end = (offset + u64::from(len)) as f64;
    let slice = file.slice_with_f64_and_f64(offset as f64, end).map_err(storage_error)?;
    let buffer = settle_value(slice.array_buffer()).await?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

async fn write(shared: &Shared, key: u64, offset: u64, data: Vec<u8>) -> Result<(), DriveError> {
    let writer = writer(shared, key).await?;
    let params = WriteParams::new(WriteCommandType::Write);
    params.set_position(Some(offset as f64));
    params.set_data_opt_u8_array(Some(&js_sys::Uint8Array::from(data.as_slice())));
    drop(data);
    settle(writer.write_with_write_params(&params).map_err(storage_error)?).await
}

/// Copies `file` into a new object `key`; `Ok(false)` when cancelled.
async fn copy_file(
    shared: &Shared,
    key: u64,
    file: &File,
    progress: impl Fn(f64),
    cancelled: impl Fn() -> bool,
) -> Result<bool, DriveError> {
    let handle = file_handle(shared, key, true).await?;
    let writer: FileSystemWritableFileStream = settle_value(handle.create_writable()).await?.unchecked_into();
    let total = file.size();
    let mut offset = 0.0;
    while offset < total {
        if cancelled() {
            let _ = JsFuture::from(writer.abort()).await;
            return Ok(false);
        }
        let end = (offset + UPLOAD_SLICE).min(total);
        let slice: Blob = file.slice_with_f64_and_f64(offset, end).map_err(storage_error)?;
        if let Err(error) = settle(writer.write_with_blob(&slice).map_err(storage_error)?).await {
            let _ = JsFuture::from(writer.abort()).await;
            return Err(error);
        }
        offset = end;
        progress(offset);
    }
    settle(writer.close()).await?;
    Ok(true)
}

async fn settle(promise: js_sys::Promise) -> Result<(), DriveError> {
    settle_value(promise).await.map(drop)
}

async fn settle_value(promise: js_sys::Promise) -> Result<JsValue, DriveError> {
    JsFuture::from(promise).await.map_err(storage_error)
}

/// A DOMException as the drive's error: a full quota is "disk full" to the workstation.
fn storage_error(error: JsValue) -> DriveError {
    let name = js_sys::Reflect::get(&error, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
    match name.as_str() {
        "QuotaExceededError" => DriveError::Full,
        "NotFoundError" => DriveError::NotFound,
        _ => {
            let message = js_sys::Reflect::get(&error, &"message".into()).ok().and_then(|m| m.as_string());
            DriveError::Storage(message.unwrap_or(name))
        }
    }
}
