//! The desktop's size and looks in the page: the size asked for at connect, following the browser
//! window (a Display Control resize, or scaling the canvas when the workstation cannot resize), the
//! workstation's pointer shapes as the canvas's CSS cursor, and the client settings' colours.
//!
//! Kept apart from `desktop.rs` (input, menu) and `session.rs` (the connection) so that each stays
//! small; everything here is browser glue, the protocol side is `RdpClient::resize` and its tests.

use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlElement, ImageData};

/// Height of the menu bar in CSS pixels when it takes space above the desktop.
pub const MENU_HEIGHT: f64 = 32.0;
/// Quiet time after the last window `resize` event before the desktop follows.
const RESIZE_DEBOUNCE_MS: u32 = 400;
/// How long a requested resize may take before the page reattaches at the new size instead.
pub const RESIZE_ANSWER_MS: u32 = 4_000;

/// The desktop size for the browser window: its inner size minus the menu bar when that takes space.
pub fn desktop_size(menu_takes_space: bool) -> (u16, u16) {
    let window = gloo::utils::window();
    let width = window.inner_width().ok().and_then(|v| v.as_f64()).unwrap_or(1024.0);
    let menu = if menu_takes_space { MENU_HEIGHT } else { 0.0 };
    let height = window.inner_height().ok().and_then(|v| v.as_f64()).unwrap_or(768.0) - menu;
    // Even widths: MS-RDPEDISP requires them, and some encoders pad odd ones.
    let width = (width.clamp(640.0, 3840.0) as u16) & !1;
    let height = height.clamp(480.0, 2160.0) as u16;
    (width, height)
}

/// Calls `on_resize` once the browser window stopped changing size; stops when dropped.
pub struct ResizeWatcher {
    listener: Closure<dyn FnMut()>,
}

impl ResizeWatcher {
    pub fn new(on_resize: impl Fn() + 'static) -> ResizeWatcher {
        let pending = Rc::new(RefCell::new(None::<gloo::timers::callback::Timeout>));
        let on_resize = Rc::new(on_resize);
        let listener = Closure::<dyn FnMut()>::new(move || {
            let on_resize = on_resize.clone();
            // Replacing the timeout cancels the previous one: only the last event counts.
            *pending.borrow_mut() = Some(gloo::timers::callback::Timeout::new(RESIZE_DEBOUNCE_MS, move || on_resize()));
        });
        let _ = gloo::utils::window().add_event_listener_with_callback("resize", listener.as_ref().unchecked_ref());
        ResizeWatcher { listener }
    }
}

impl Drop for ResizeWatcher {
    fn drop(&mut self) {
        let _ = gloo::utils::window().remove_event_listener_with_callback("resize", self.listener.as_ref().unchecked_ref());
    }
}

/// Shows the desktop at its own size when it fits the space around the canvas, else scaled down or
/// up (keeping its proportions) to fill it. Mouse positions follow, since they are mapped through
/// the canvas's on-screen rectangle.
pub fn fit_canvas(canvas: &HtmlCanvasElement) {
    let Some(area) = canvas.parent_element() else { return };
    let (space_w, space_h) = (f64::from(area.client_width()), f64::from(area.client_height()));
    let (w, h) = (f64::from(canvas.width()), f64::from(canvas.height()));
    if space_w <= 0.0 || space_h <= 0.0 || w <= 1.0 || h <= 1.0 {
        return;
    }
    let style = canvas.style();
    if (w - space_w).abs() < 1.0 && (h - space_h).abs() < 1.0 {
        let _ = style.remove_property("width");
        let _ = style.remove_property("height");
        return;
    }
    let scale = (space_w / w).min(space_h / h);
    let _ = style.set_property("width", &format!("{}px", (w * scale).floor()));
    let _ = style.set_property("height", &format!("{}px", (h * scale).floor()));
}

/// The CSS `cursor` value for a workstation pointer shape (straight-alpha RGBA with its hot spot).
pub fn cursor_css(width: u16, height: u16, hotspot_x: u16, hotspot_y: u16, rgba: &[u8]) -> Option<String> {
    let document = gloo::utils::document();
    let canvas: HtmlCanvasElement = document.create_element("canvas").ok()?.dyn_into().ok()?;
    canvas.set_width(u32::from(width));
    canvas.set_height(u32::from(height));
    let context: CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    let image = ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), u32::from(width), u32::from(height)).ok()?;
    context.put_image_data(&image, 0.0, 0.0).ok()?;
    let url = canvas.to_data_url().ok()?;
    Some(format!("url({url}) {hotspot_x} {hotspot_y}, default"))
}

/// Sets the canvas's cursor (`default`, `none`, or a shape from [`cursor_css`]).
pub fn set_cursor(canvas: &HtmlCanvasElement, css: &str) {
    let _ = canvas.style().set_property("cursor", css);
}

/// The client settings' background colour behind the desktop (CSSOM: inline styles are refused by
/// the portal's CSP).
pub fn set_background(element: &HtmlElement, color: &str) {
    let _ = element.style().set_property("background-color", color);
}
