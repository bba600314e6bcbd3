//! Framebuffer regions as the canvas wants them: tightly packed RGBA rows, fully opaque.

use homedesk_client_core::{Framebuffer, Rect};

pub fn rect_xywh(rect: &Rect) -> (u32, u32, u32, u32) {
    (u32::from(rect.x), u32::from(rect.y), u32::from(rect.width), u32::from(rect.height))
}

pub fn frame_size(frame: &Framebuffer<'_>) -> (u32, u32) {
    (u32::from(frame.width), u32::from(frame.height))
}

/// Copies the region clipped to the frame, with its clipped size; `None` when nothing of it is inside.
pub fn copy_region(frame: &Framebuffer<'_>, x: u32, y: u32, w: u32, h: u32) -> Option<(Vec<u8>, u32, u32)> {
    let (frame_w, frame_h) = frame_size(frame);
    if x >= frame_w || y >= frame_h {
        return None;
    }
    let (w, h) = (w.min(frame_w - x), h.min(frame_h - y));
    if w == 0 || h == 0 {
        return None;
    }
    let stride = frame_w as usize * 4;
    let mut pixels = Vec::with_capacity(w as usize * h as usize * 4);
    for row in y..y + h {
        let start = row as usize * stride + x as usize * 4;
        pixels.extend_from_slice(frame.rgba.get(start..start + w as usize * 4)?);
    }
    // Some codecs leave alpha at 0; the canvas would show transparency instead of the desktop.
    for alpha in pixels.iter_mut().skip(3).step_by(4) {
        *alpha = 255;
    }
    Some((pixels, w, h))
}
