//! The browser's clipboard: the async Clipboard API where the page may use it, nothing else.
//!
//! Reading needs the user's permission (Chromium asks once per site; Firefox and Safari only allow
//! it inside a paste gesture), writing needs the page to have focus. Every call may therefore fail,
//! which is not an error to show: the desktop page falls back to the paste event and its clipboard
//! panel. The protocol side lives in `homedesk_client_core` (`set_local_clipboard_text`,
//! `Event::RemoteClipboardText`).

use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

/// `navigator.clipboard`, when this page has it (secure contexts in current browsers).
fn api() -> Option<web_sys::Clipboard> {
    let navigator = gloo::utils::window().navigator();
    let clipboard = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard")).ok()?;
    if clipboard.is_undefined() || clipboard.is_null() {
        return None;
    }
    Some(navigator.clipboard())
}

/// Whether the async Clipboard API exists here (if not, only the paste event and the panel work).
pub fn available() -> bool {
    api().is_some()
}

/// The clipboard's text, if the browser lets this page read it now (permission granted or granted
/// at the prompt, page focused).
pub async fn read_text() -> Option<String> {
    let promise = api()?.read_text();
    JsFuture::from(promise).await.ok()?.as_string()
}

/// Puts `text` on the clipboard; `false` when the browser refused (no focus, no permission).
pub async fn write_text(text: &str) -> bool {
    let Some(clipboard) = api() else { return false };
    JsFuture::from(clipboard.write_text(text)).await.is_ok()
}
