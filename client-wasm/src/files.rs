//! File transfer and printing in the page: the browser's drive the workstation sees ("Browser"), the
//! Files panel (upload by file picker or drag and drop, progress with speed and cancel, downloads),
//! and the universal printer's PDFs (preview tab and download link).
//!
//! The drive's store is one `PageDrive` per page (`page_drive.rs`: the bytes in the browser's private
//! file system, never whole in memory): an upload is copied there from the `File` and appears in the
//! drive only when complete (a cancelled or failed upload leaves nothing, so the workstation never sees
//! half a file); a file the workstation closes in the download folder is handed to the browser's
//! download as the disk-backed `File` the store gives. Names are checked by the core (`drive::names`)
//! before anything is stored.
//!
//! The HTML5 client setting "file transfer" decides whether the drive exists at all: when it is off,
//! no drive is announced to the workstation and the panel offers no upload (print jobs still arrive:
//! the universal printer is its own feature).

use crate::client_settings;
use crate::page_drive::{PageDrive, Sink};
use homedesk_client_core::drive::{names, DriveConfig, DrivePath};
use homedesk_client_core::{Devices, Event as SessionEvent};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, DragEvent, File, FileList, HtmlAnchorElement, HtmlInputElement, Url};
use yew::prelude::*;

#[derive(Clone, PartialEq)]
enum UploadState {
    Running,
    Done,
    Cancelled,
    Failed(String),
}

#[derive(Clone, PartialEq)]
struct Upload {
    id: u32,
    name: String,
    total: f64,
    sent: f64,
    /// Bytes per second so far.
    speed: f64,
    state: UploadState,
    cancel: Rc<Cell<bool>>,
}

#[derive(Clone, PartialEq)]
struct Offered {
    name: String,
    url: String,
    size: u64,
    /// A print job (also shown in a preview tab).
    pdf: bool,
}

#[derive(Default)]
struct State {
    drive: PageDrive,
    config: DriveConfig,
    uploads: Vec<Upload>,
    offered: Vec<Offered>,
    notice: Option<String>,
    next_id: u32,
    /// Re-renders the open panel.
    refresh: Option<Callback<()>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    STATE.with(|state| f(&mut state.borrow_mut()))
}

fn refresh() {
    if let Some(refresh) = with_state(|s| s.refresh.clone()) {
        refresh.emit(());
    }
}

fn notice(text: String) {
    with_state(|s| s.notice = Some(text));
    refresh();
}

/// The devices a session announces: the page's drive (only with file transfer on) and the universal printer.
pub fn devices(file_transfer: bool) -> Devices {
    if !file_transfer {
        return Devices { drive: None, printer: true };
    }
    let preferences = crate::branding::preferences();
    let (config, warnings) = DriveConfig::from_preferences(&preferences.upload_path, &preferences.download_path);
    for warning in warnings {
        gloo::console::warn!(warning);
    }
    let drive = with_state(|s| {
        s.config = config.clone();
        s.drive.clone()
    });
    drive.set_error_reporter(Rc::new(notice));
    for folder in [&config.upload_folder, &config.download_folder] {
        if let Err(error) = drive.mkdir_all(folder) {
            gloo::console::warn!(format!("The folder {folder} could not be made in the drive: {error}"));
        }
    }
    Devices { drive: Some((Box::new(drive), config)), printer: true }
}

/// The session that gets the drive's finished reads and writes (`None` when it ends).
pub fn set_drive_sink(sink: Option<Sink>) {
    with_state(|s| s.drive.set_sink(sink));
}

/// Drive and printer events of the session.
pub fn on_event(event: SessionEvent) {
    match event {
        SessionEvent::DriveDownload { path, size } => offer_download(&path, size),
        SessionEvent::PrintJob { name, pdf } => offer_print_job(name, &pdf),
        SessionEvent::PrintError(message) => notice(message),
        _ => {}
    }
}

fn blob_of(parts: &js_sys::Array, mime: &str) -> Option<Blob> {
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    Blob::new_with_u8_array_sequence_and_options(parts, &options).ok()
}

/// Starts the browser's download of a blob URL (as a click on a download link would).
fn start_download(url: &str, name: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Some(link) = document.create_element("a").ok().and_then(|e| e.dyn_into::<HtmlAnchorElement>().ok()) else {
        return;
    };
    link.set_href(url);
    link.set_download(name);
    link.click();
}

fn offer_download(path: &str, size: u64) {
    let Ok(path) = DrivePath::parse_slashed(path) else { return };
    let name = path.file_name().unwrap_or("download").to_owned();
    let drive = with_state(|s| s.drive.clone());
    drive.deliver(&path, move |file| {
        let file = match file {
            Ok(file) => file,
            Err(error) => return notice(format!("{name} could not be read from the drive: {error}")),
        };
        let Ok(url) = Url::create_object_url_with_blob(&file) else { return };
        start_download(&url, &name);
        with_state(|s| s.offered.push(Offered { name: name.clone(), url, size, pdf: false }));
        notice(format!("{name} was saved by the workstation and downloaded."));
    });
}

fn offer_print_job(name: String, pdf: &[u8]) {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(pdf));
    let Some(blob) = blob_of(&parts, "application/pdf") else { return };
    let Ok(url) = Url::create_object_url_with_blob(&blob) else { return };
    // The preview tab; a browser that blocks it still has the panel's links.
    if let Some(window) = web_sys::window() {
        let _ = window.open_with_url_and_target(&url, "_blank");
    }
    with_state(|s| s.offered.push(Offered { name: name.clone(), url, size: pdf.len() as u64, pdf: true }));
    notice(format!("Printed {name}: open it to view, print or save it."));
}

/// Uploads the files into the drive's upload folder, one after the other.
fn upload_all(files: FileList) {
    let files: Vec<File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
    wasm_bindgen_futures::spawn_local(async move {
        for file in files {
            upload(file).await;
        }
    });
}

async fn upload(file: File) {
    let name = file.name();
    if !client_settings::current().file_transfer {
        notice(format!("{name:?} was not uploaded: file transfer is turned off by your administrator."));
        return;
    }
    if let Err(error) = names::check_name(&name) {
        notice(format!("{name:?} was not uploaded: {error}."));
        return;
    }
    let (drive, folder, id) = with_state(|s| {
        s.next_id += 1;
        (s.drive.clone(), s.config.upload_folder.clone(), s.next_id)
    });
    let Ok(path) = folder.join(&name) else {
        notice(format!("{name:?} was not uploaded: the path in the drive is too long."));
        return;
    };
    let cancel = Rc::new(Cell::new(false));
    with_state(|s| {
        let upload = Upload {
            id,
            name: name.clone(),
            total: file.size(),
            sent: 0.0,
            speed: 0.0,
            state: UploadState::Running,
            cancel: cancel.clone(),
        };
        s.uploads.push(upload);
    });
    refresh();
    let started = js_sys::Date::now();
    let progress = |sent: f64| {
        let elapsed = ((js_sys::Date::now() - started) / 1000.0).max(0.001);
        with_state(|s| {
            if let Some(upload) = s.uploads.iter_mut().find(|u| u.id == id) {
                upload.sent = sent;
                upload.speed = sent / elapsed;
            }
        });
        refresh();
    };
    let state = match drive.upload(&file, &path, progress, || cancel.get()).await {
        Ok(true) => UploadState::Done,
        Ok(false) => UploadState::Cancelled,
        Err(error) => UploadState::Failed(error.to_string()),
    };
    with_state(|s| {
        if let Some(upload) = s.uploads.iter_mut().find(|u| u.id == id) {
            upload.state = state;
        }
    });
    refresh();
}

fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn upload_row(upload: &Upload) -> Html {
    let status = match &upload.state {
        UploadState::Running => {
            format!("{} of {} · {}/s", human_bytes(upload.sent), human_bytes(upload.total), human_bytes(upload.speed))
        }
        UploadState::Done => format!("Uploaded ({})", human_bytes(upload.total)),
        UploadState::Cancelled => "Cancelled".to_owned(),
        UploadState::Failed(error) => format!("Failed: {error}"),
    };
    let cancel = upload.cancel.clone();
    let on_cancel = Callback::from(move |_: MouseEvent| cancel.set(true));
    html! {
        <li data-testid="files-upload" data-name={upload.name.clone()}>
            <span class="hd-files-name">{ &upload.name }</span>
            <progress max={upload.total.max(1.0).to_string()} value={upload.sent.to_string()} />
            <span data-testid="files-upload-status">{ status }</span>
            if upload.state == UploadState::Running {
                <button type="button" onclick={on_cancel} data-testid="files-cancel">{ "Cancel" }</button>
            }
        </li>
    }
}

fn offered_row(offered: &Offered) -> Html {
    html! {
        <li>
            if offered.pdf {
                <a href={offered.url.clone()} target="_blank" rel="noopener" data-testid="files-print-preview">
                    { format!("View {}", offered.name) }
                </a>
            }
            <a href={offered.url.clone()} download={offered.name.clone()} data-testid="files-download">
                { format!("{} ({})", offered.name, human_bytes(offered.size as f64)) }
            </a>
        </li>
    }
}

/// The Files panel under the menu bar.
#[function_component]
pub fn FilesPanel() -> Html {
    let update = use_force_update();
    {
        let update = update.clone();
        use_effect_with((), move |_| {
            with_state(|s| s.refresh = Some(Callback::from(move |_| update.force_update())));
            || with_state(|s| s.refresh = None)
        });
    }
    let dragging = use_state(|| false);
    let on_pick = Callback::from(|event: Event| {
        let Some(input) = event.target_dyn_into::<HtmlInputElement>() else { return };
        if let Some(files) = input.files() {
            upload_all(files);
        }
        input.set_value("");
    });
    let on_drag_over = {
        let dragging = dragging.clone();
        Callback::from(move |event: DragEvent| {
            event.prevent_default();
            dragging.set(true);
        })
    };
    let on_drag_leave = {
        let dragging = dragging.clone();
        Callback::from(move |_: DragEvent| dragging.set(false))
    };
    let on_drop = {
        let dragging = dragging.clone();
        Callback::from(move |event: DragEvent| {
            event.prevent_default();
            dragging.set(false);
            if let Some(files) = event.data_transfer().and_then(|d| d.files()) {
                upload_all(files);
            }
        })
    };
    let file_transfer = client_settings::current().file_transfer;
    let (uploads, offered, notice, folders) = with_state(|s| {
        (
            s.uploads.clone(),
            s.offered.clone(),
            s.notice.clone(),
            (s.config.upload_folder.to_string(), s.config.download_folder.to_string()),
        )
    });
    let zone = if *dragging { "hd-files-drop hd-files-drop-active" } else { "hd-files-drop" };
    html! {
        <section class="hd-files" data-testid="files-panel" aria-label="Files">
            if !file_transfer {
                <p data-testid="files-disabled">
                    { "File transfer is turned off by your administrator. Documents you print on the workstation \
                       with the universal printer appear here." }
                </p>
            } else {
            <div class={zone} data-testid="files-drop" ondragover={on_drag_over} ondragleave={on_drag_leave}
                 ondrop={on_drop}>
                <label>
                    { "Upload files: " }
                    <input type="file" multiple=true onchange={on_pick} data-testid="files-input" />
                </label>
                <span>{ format!(" or drop them here. They appear in the drive \"Browser\", folder {}; \
                                 files the workstation saves in folder {} are downloaded.", folders.0, folders.1) }</span>
            </div>
            <ul class="hd-files-list">{ for uploads.iter().map(upload_row) }</ul>
            }
            <ul class="hd-files-list">{ for offered.iter().rev().map(offered_row) }</ul>
            if let Some(notice) = notice {
                <p data-testid="files-notice" role="status">{ notice }</p>
            }
        </section>
    }
}
