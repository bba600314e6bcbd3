//! Painting the decoded desktop onto the canvas: one function for the live session and for the
//! bench's replay page (`replay_main.rs`), so the bench times exactly what a session does.

use homedesk_client_core::{Framebuffer, Rect};
use wasm_bindgen::Clamped;
use web_sys::{CanvasRenderingContext2d, ImageData};

/// Copies `rect` of the framebuffer onto the canvas at the same place (clipped to the frame).
pub fn region(context: &CanvasRenderingContext2d, frame: Framebuffer<'_>, rect: Rect) {
    let Some((pixels, w, h)) = frame.region_rgba(rect) else { return };
    let image = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&pixels), u32::from(w), u32::from(h));
    if let Ok(image) = image {
        let _ = context.put_image_data(&image, f64::from(rect.x), f64::from(rect.y));
    }
}
