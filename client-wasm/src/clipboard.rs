//! The browser's clipboard: the async Clipboard API where the page may use it, nothing else.
//!
//! Reading needs the user's permission (Chromium asks once per site; Firefox and Safari only allow
//! it inside a paste gesture), writing needs the page to have focus. Every call may therefore fail,
//! which is not an error to show: the desktop page falls back to the paste event and its clipboard
//! panel. Text, HTML and PNG images travel as one [`ClipboardContent`] (`text/plain`, `text/html`,
//! `image/png`, the types every browser's async clipboard supports); where a browser has only
//! `readText`/`writeText`, text still works. The protocol side lives in `homedesk_client_core`
//! (`set_local_clipboard`, `Event::RemoteClipboard`).

use homedesk_client_core::ClipboardContent;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, ClipboardItem, DataTransfer, File};

const TEXT: &str = "text/plain";
const HTML: &str = "text/html";
const PNG: &str = "image/png";

/// `navigator.clipboard`, when this page has it (secure contexts in current browsers).
fn api() -> Option<web_sys::Clipboard> {
    let navigator = gloo::utils::window().navigator();
    let clipboard = Reflect::get(&navigator, &JsValue::from_str("clipboard")).ok()?;
    if clipboard.is_undefined() || clipboard.is_null() {
        return None;
    }
    Some(navigator.clipboard())
}

/// Whether the object has a callable property `name` (older browsers lack `read`/`write`).
fn has_method(object: &JsValue, name: &str) -> bool {
    Reflect::get(object, &JsValue::from_str(name)).is_ok_and(|value| value.is_function())
}

/// Whether the async Clipboard API exists here (if not, only the paste event and the panel work).
pub fn available() -> bool {
    api().is_some()
}

/// The clipboard's content, if the browser lets this page read it now (permission granted or
/// granted at the prompt, page focused). `None` also when it holds nothing we share.
pub async fn read() -> Option<ClipboardContent> {
    let api = api()?;
    let content = if has_method(&api, "read") {
        match JsFuture::from(api.read()).await {
            Ok(items) => read_items(&Array::from(&items)).await,
            // Permission refused or not granted yet: no fallback would do better.
            Err(_) => return None,
        }
    } else {
        let text = JsFuture::from(api.read_text()).await.ok()?.as_string();
        ClipboardContent { text, ..ClipboardContent::default() }
    };
    let content = ClipboardContent { text: content.text.filter(|text| !text.is_empty()), ..content };
    (!content.is_empty()).then_some(content)
}

/// The first text, HTML and PNG found in the clipboard's items.
async fn read_items(items: &Array) -> ClipboardContent {
    let mut content = ClipboardContent::default();
    for item in items.iter().filter_map(|item| item.dyn_into::<ClipboardItem>().ok()) {
        let types: Vec<String> = item.types().iter().filter_map(|t| t.as_string()).collect();
        for kind in [TEXT, HTML, PNG] {
            if !types.iter().any(|t| t == kind) {
                continue;
            }
            let Ok(blob) = JsFuture::from(item.get_type(kind)).await.and_then(|b| b.dyn_into::<Blob>()) else {
                continue;
            };
            match kind {
                TEXT if content.text.is_none() => content.text = blob_text(&blob).await,
                HTML if content.html.is_none() => content.html = blob_text(&blob).await,
                PNG if content.png.is_none() => content.png = blob_bytes(&blob).await,
                _ => {}
            }
        }
    }
    content
}

async fn blob_text(blob: &Blob) -> Option<String> {
    JsFuture::from(blob.text()).await.ok()?.as_string()
}

async fn blob_bytes(blob: &Blob) -> Option<Vec<u8>> {
    let buffer = JsFuture::from(blob.array_buffer()).await.ok()?;
    Some(Uint8Array::new(&buffer).to_vec())
}

fn blob(bytes: &[u8], mime: &str) -> Option<Blob> {
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    let parts = Array::of1(&Uint8Array::from(bytes));
    Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()
}

/// Puts `content` on the clipboard; `false` when the browser refused (no focus, no permission).
/// A browser that cannot take the whole content (e.g. no images) still gets its text.
pub async fn write(content: &ClipboardContent) -> bool {
    let Some(api) = api() else { return false };
    if has_method(&api, "write") {
        if let Some(item) = clipboard_item(content) {
            if JsFuture::from(api.write(&Array::of1(&item))).await.is_ok() {
                return true;
            }
        }
    }
    match &content.text {
        Some(text) => JsFuture::from(api.write_text(text)).await.is_ok(),
        None => false,
    }
}

fn clipboard_item(content: &ClipboardContent) -> Option<ClipboardItem> {
    let record = Object::new();
    let parts = [
        (TEXT, content.text.as_deref().map(str::as_bytes)),
        (HTML, content.html.as_deref().map(str::as_bytes)),
        (PNG, content.png.as_deref()),
    ];
    for (kind, bytes) in parts {
        if let Some(bytes) = bytes {
            Reflect::set(&record, &JsValue::from_str(kind), &blob(bytes, kind)?.into()).ok()?;
        }
    }
    ClipboardItem::new_with_record_from_str_to_blob_promise(&record).ok()
}

/// What a paste event carries: its text and HTML at once, and the image file to read, if any
/// (a screenshot pasted from the system clipboard arrives as a `File`).
pub fn pasted(data: &DataTransfer) -> (ClipboardContent, Option<File>) {
    let get = |kind: &str| data.get_data(kind).ok().filter(|value| !value.is_empty());
    let content = ClipboardContent { text: get(TEXT), html: get(HTML), png: None };
    let image = data.files().and_then(|files| (0..files.length()).filter_map(|i| files.get(i)).find(|f| f.type_() == PNG));
    (content, image)
}

/// The bytes of a pasted image file.
pub async fn file_bytes(file: &File) -> Option<Vec<u8>> {
    blob_bytes(file).await
}

/// The content in words for the clipboard panel: "12 characters", "an image of 640 × 480 pixels", …
pub fn describe(content: &ClipboardContent) -> String {
    let mut parts = Vec::new();
    if let Some(text) = &content.text {
        parts.push(format!("{} characters", text.chars().count()));
    }
    if content.html.is_some() {
        parts.push("formatted text".to_owned());
    }
    match content.png.as_deref().and_then(png_size) {
        Some((width, height)) => parts.push(format!("an image of {width} × {height} pixels")),
        None if content.png.is_some() => parts.push("an image".to_owned()),
        None => {}
    }
    parts.join(" and ")
}

/// Width and height from a PNG's header (IHDR, right after the signature).
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    let number = |at: usize| Some(u32::from_be_bytes(png.get(at..at + 4)?.try_into().ok()?));
    (png.get(12..16) == Some(b"IHDR".as_slice())).then_some(())?;
    Some((number(16)?, number(20)?))
}

/// A `data:` URL of a PNG, for an `<img>` (the page's CSP allows `data:` images).
pub fn data_url(png: &[u8]) -> String {
    use base64::Engine;
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
}
