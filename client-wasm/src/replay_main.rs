//! The bench's replay page (`replay.html`, built only by `cargo xtask bench`): times how fast this
//! browser decodes and paints a workstation's recorded graphics updates with the session's own code.
//!
//! `replay.html?recordings=remotefx,planar,bitmap&passes=3` fetches each `NAME.hdrec` beside the
//! page, replays it `passes` times decoding only and `passes` times decoding and painting every
//! update onto a 2D canvas as a session does (`paint::region`), and then writes one JSON document into
//! `#result`: per recording the frames, the painted pixels, the milliseconds of each pass and the
//! SHA-256 of the canvas's colours at the end (the bench compares it with the native replay's).
//! Not part of the portal's bundle.

mod paint;

use homedesk_client_core::replay::{colour_sha256, RecordedFrames, Replay};
use serde_json::{json, Value};
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

fn main() {
    wasm_bindgen_futures::spawn_local(async {
        let result = run().await.unwrap_or_else(|error| json!({ "error": error }));
        if let Some(out) = gloo::utils::document().get_element_by_id("result") {
            out.set_text_content(Some(&result.to_string()));
        }
    });
}

async fn run() -> Result<Value, String> {
    let query = web_sys::UrlSearchParams::new_with_str(&gloo::utils::window().location().search().map_err(js)?)
        .map_err(js)?;
    let names = query.get("recordings").ok_or("no ?recordings= given")?;
    let passes: usize = query.get("passes").and_then(|p| p.parse().ok()).unwrap_or(3).clamp(1, 20);
    let mut results = Vec::new();
    for name in names.split(',').filter(|name| !name.is_empty()) {
        results.push(replay_recording(name, passes).await.map_err(|error| format!("{name}: {error}"))?);
    }
    Ok(json!({ "user_agent": gloo::utils::window().navigator().user_agent().unwrap_or_default(), "recordings": results }))
}

async fn replay_recording(name: &str, passes: usize) -> Result<Value, String> {
    let response = gloo::net::http::Request::get(&format!("{name}.hdrec")).send().await.map_err(|e| e.to_string())?;
    if !response.ok() {
        return Err(format!("HTTP {} for the recording", response.status()));
    }
    let bytes = response.binary().await.map_err(|e| e.to_string())?;
    let recording = RecordedFrames::parse(&bytes).map_err(|e| e.to_string())?;
    let context = canvas_context(recording.width, recording.height)?;
    let mut decode_ms = Vec::new();
    let mut paint_ms = Vec::new();
    let mut painted_pixels = 0u64;
    for _ in 0..passes {
        decode_ms.push(timed(|| play(&recording, None).map(|_| ()))?);
        // Let the page breathe between passes (and the WebDriver poll in).
        next_task().await;
        paint_ms.push(timed(|| {
            painted_pixels = play(&recording, Some(&context))?;
            // Reading one pixel waits for every paint before it to land in the canvas.
            context.get_image_data(0.0, 0.0, 1.0, 1.0).map(|_| ()).map_err(js)
        })?);
        next_task().await;
    }
    let (w, h) = (f64::from(recording.width), f64::from(recording.height));
    let canvas = context.get_image_data(0.0, 0.0, w, h).map_err(js)?.data();
    Ok(json!({
        "name": name,
        "width": recording.width,
        "height": recording.height,
        "frames": recording.frames.len(),
        "bytes": bytes.len(),
        "painted_pixels": painted_pixels,
        "decode_ms": decode_ms,
        "decode_and_paint_ms": paint_ms,
        "canvas_sha256": colour_sha256(&canvas),
    }))
}

/// Replays every frame into a fresh decoder, painting what a session would paint when given a
/// canvas; returns the painted pixels.
fn play(recording: &RecordedFrames<'_>, canvas: Option<&CanvasRenderingContext2d>) -> Result<u64, String> {
    let mut replay = Replay::new(recording.width, recording.height).map_err(|e| e.to_string())?;
    let mut pixels = 0u64;
    for frame in &recording.frames {
        for rect in replay.frame(frame).map_err(|e| e.to_string())? {
            pixels += u64::from(rect.width) * u64::from(rect.height);
            if let Some(context) = canvas {
                paint::region(context, replay.framebuffer(), rect);
            }
        }
    }
    Ok(pixels)
}

/// Resolves in a later task of the page's event loop.
async fn next_task() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = gloo::utils::window().set_timeout_with_callback(&resolve);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn timed(work: impl FnOnce() -> Result<(), String>) -> Result<f64, String> {
    let performance = gloo::utils::window().performance().ok_or("no performance clock")?;
    let start = performance.now();
    work()?;
    Ok(performance.now() - start)
}

fn canvas_context(width: u16, height: u16) -> Result<CanvasRenderingContext2d, String> {
    let canvas: HtmlCanvasElement =
        gloo::utils::document().get_element_by_id("replay").ok_or("no #replay canvas")?.dyn_into().map_err(js)?;
    canvas.set_width(u32::from(width));
    canvas.set_height(u32::from(height));
    paint::context(&canvas).ok_or_else(|| "no 2D context".to_owned())
}

fn js(value: impl core::fmt::Debug) -> String {
    format!("{value:?}")
}
