//! Painting the decoded desktop onto the canvas: one place for the live session and for the bench's
//! replay page (`replay_main.rs`), so the bench times exactly what a session does.
//!
//! The canvas is opaque and painted straight from the framebuffer in wasm memory: an `ImageData` is a
//! view of the whole frame (no copy) and `putImageData` copies only the changed rectangle into the
//! canvas. Copying each rectangle out first cost about a third of the time per full screen.

use homedesk_client_core::{Framebuffer, Rect};
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, ContextAttributes2d, HtmlCanvasElement, ImageData};

/// The canvas's 2D context, opaque: the framebuffer's pixels are opaque once drawn (IronRDP writes
/// alpha 255), and before the first update its transparent black shows as black.
pub fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    let attributes = ContextAttributes2d::new();
    attributes.set_alpha(false);
    canvas.get_context_with_context_options("2d", &attributes).ok()??.dyn_into().ok()
}

/// Copies `rect` of the framebuffer onto the canvas at the same place (clipped to the frame).
pub fn region(context: &CanvasRenderingContext2d, frame: Framebuffer<'_>, rect: Rect) {
    let (width, height) = (u32::from(frame.width), u32::from(frame.height));
    if frame.rgba.len() != width as usize * height as usize * 4 {
        return;
    }
    // A view, not a copy. Nothing allocates in wasm before `putImageData` has read it, so the
    // memory cannot grow (which would detach the view) in between.
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    let view = js_sys::Uint8ClampedArray::new_with_byte_offset_and_length(
        &memory.buffer(),
        frame.rgba.as_ptr() as u32,
        frame.rgba.len() as u32,
    );
    let Ok(image) = ImageData::new_with_js_u8_clamped_array_and_sh(&view, width, height) else { return };
    let _ = context.put_image_data_with_dirty_x_and_dirty_y_and_dirty_width_and_dirty_height(
        &image,
        0.0,
        0.0,
        f64::from(rect.x),
        f64::from(rect.y),
        f64::from(rect.width),
        f64::from(rect.height),
    );
}
