//! Decode and paint rows: the recordings `record.rs` made, replayed natively here (release build,
//! the client's own `Replay`) and in headless Chromium by the replay page
//! (`tests/e2e/src/bin/replay.rs` writes its figures as JSON, handed over through
//! `HOMEDESK_BENCH_REPLAY`), on the same bytes in the same run.
//!
//! A frame per second here is a full-screen picture's worth of painted pixels per second (the area
//! of every painted rectangle over 1920×1080), so scenes of any shape compare. Both sides must end
//! with the same picture: the native framebuffer's colours and the canvas's have one SHA-256.

use crate::first_frame::{list, median};
use crate::record::{ENCODINGS, HEIGHT, WIDTH};
use crate::report::Row;
use anyhow::{bail, Context, Result};
use homedesk_client_core::replay::{colour_sha256, RecordedFrames, Replay};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// Passes per side; the median counts.
pub const PASSES: usize = 5;

struct Native {
    ms: Vec<f64>,
    painted_pixels: u64,
    sha256: String,
    frames: usize,
    bytes: usize,
}

fn replay_natively(path: &Path) -> Result<Native> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let recording = RecordedFrames::parse(&bytes)?;
    let mut ms = Vec::new();
    let mut last = None;
    for _ in 0..PASSES {
        let start = Instant::now();
        let mut replay = Replay::new(recording.width, recording.height)?;
        let mut pixels = 0u64;
        for frame in &recording.frames {
            for rect in replay.frame(frame)? {
                pixels += u64::from(rect.width) * u64::from(rect.height);
            }
        }
        ms.push(start.elapsed().as_secs_f64() * 1e3);
        last = Some((replay, pixels));
    }
    let (replay, painted_pixels) = last.context("no pass ran")?;
    Ok(Native {
        ms,
        painted_pixels,
        sha256: colour_sha256(replay.framebuffer().rgba),
        frames: recording.frames.len(),
        bytes: bytes.len(),
    })
}

/// Rows and notes, or a note saying why there are none.
pub fn rows(recordings: Option<&Path>) -> Result<(Vec<Row>, Vec<String>)> {
    let (Some(dir), Some(browser_json)) = (recordings, std::env::var_os("HOMEDESK_BENCH_REPLAY")) else {
        return Ok((Vec::new(), vec!["Decode and paint not measured: run the whole bench with `cargo xtask bench` \
                                    (it records the workstation and needs Chromium)."
            .into()]));
    };
    let text = std::fs::read_to_string(&browser_json).context("the replay page's figures")?;
    let browser: Value = serde_json::from_str(&text).context("the replay page's figures")?;
    if let Some(error) = browser["error"].as_str() {
        bail!("the replay page failed: {error}");
    }
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let screen = f64::from(WIDTH) * f64::from(HEIGHT);
    for encoding in ENCODINGS {
        let native = replay_natively(&dir.join(format!("{}.hdrec", encoding.name)))?;
        let page = browser["recordings"]
            .as_array()
            .and_then(|all| all.iter().find(|r| r["name"] == encoding.name))
            .with_context(|| format!("the replay page has no figures for {}", encoding.name))?;
        let series = |name: &str| -> Result<Vec<f64>> {
            page[name].as_array().with_context(|| format!("no {name}"))?.iter().map(|v| v.as_f64().context("not a number")).collect()
        };
        let (page_paint, page_decode) = (series("decode_and_paint_ms")?, series("decode_ms")?);
        let page_pixels = page["painted_pixels"].as_u64().context("no painted_pixels")?;
        if page_pixels != native.painted_pixels || page["canvas_sha256"].as_str() != Some(native.sha256.as_str()) {
            bail!(
                "{}: the browser's picture differs from the native replay's ({} vs {} pixels painted, canvas {} vs {})",
                encoding.name,
                page_pixels,
                native.painted_pixels,
                page["canvas_sha256"],
                native.sha256
            );
        }
        let fps = |ms: f64| native.painted_pixels as f64 / screen / (ms / 1e3);
        let (native_ms, paint_ms, decode_ms) = (median(native.ms.clone()), median(page_paint.clone()), median(page_decode.clone()));
        rows.push(Row {
            metric: format!("{} {WIDTH}×{HEIGHT}: full screens/s decoded and painted in Chromium", encoding.label),
            homedesk: fps(paint_ms),
            peer: "same decoder, native".into(),
            peer_figure: fps(native_ms),
            met: Some(paint_ms <= 2.0 * native_ms && fps(paint_ms) >= 60.0),
            target: "≥ 0.5× native (≤ 2× time), ≥ 60".into(),
        });
        rows.push(Row {
            metric: format!("{} {WIDTH}×{HEIGHT}: full screens/s decoded in Chromium (no painting)", encoding.label),
            homedesk: fps(decode_ms),
            peer: "same decoder, native".into(),
            peer_figure: fps(native_ms),
            met: None,
            target: "–".into(),
        });
        notes.push(format!(
            "{}: {} frames, {:.1} MB, {:.1} screens painted per pass; ms per pass native {}, Chromium decode {}, \
             decode + paint {}; same final picture (colour SHA-256 {}).",
            encoding.label,
            native.frames,
            native.bytes as f64 / 1e6,
            native.painted_pixels as f64 / screen,
            list(&native.ms),
            list(&page_decode),
            list(&page_paint),
            &native.sha256[..16],
        ));
    }
    notes.push(format!(
        "Decode and paint: FreeRDP's shadow server on a {WIDTH}×{HEIGHT} Xvfb recorded by Homedesk's client, one \
         recording per encoding, each showing the same 8 scenes (fractal plasma, the hardest case for every codec, \
         and the portal's wallpapers). Replayed {PASSES} times each: natively (release) and in headless Chromium \
         ({}) with the portal's wasm build, painting every rectangle onto a 2D canvas as a session does; medians. A \
         full screen/s = {WIDTH}×{HEIGHT} painted pixels per second.",
        browser["user_agent"].as_str().and_then(|ua| ua.split_whitespace().find(|p| p.starts_with("HeadlessChrome") || p.starts_with("Chrome"))).unwrap_or("Chromium"),
    ));
    Ok((rows, notes))
}
