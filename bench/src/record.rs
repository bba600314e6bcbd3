//! `homedesk-bench record DIR`: records what a real workstation sends at 1920×1080 in each graphics
//! encoding the client decodes, for the decode and paint rows (`decode.rs` natively, the browser's
//! replay page through `tests/e2e/src/bin/replay.rs`).
//!
//! The workstation is FreeRDP's shadow server on a private 1920×1080 Xvfb display over TLS; it checks
//! the sign-in with PAM, so the RDP testbed's user rdpuser1 signs in (`RDP_TEST_PASSWORD`). The client is Homedesk's own `RdpClient`, recording from its first
//! update on; only the offered encodings change between recordings: RemoteFX; planar (32 bpp, no
//! RemoteFX); interleaved bitmaps (16 bpp, no RemoteFX). The pipeline (EGFX) is never offered, since
//! the shadow server would prefer it. Each recording shows the same scenes, one after the other on
//! the root window: fractal plasma pictures (photo-like, the hardest case for every codec) and the
//! portal's wallpapers, each scene once the previous one has been sent completely.

use crate::process::{free_port, wait_listening, ChildGuard};
use anyhow::{bail, Context, Result};
use homedesk_client_core::replay::{colour_sha256, Recording, Replay};
use homedesk_client_core::{ConnectParams, Event, Graphics, RdpClient};
use ironrdp_core::{decode_cursor, ReadCursor};
use ironrdp_pdu::bitmap::BitmapUpdateData;
use ironrdp_pdu::fast_path::{FastPathHeader, FastPathUpdatePdu, Fragmentation, UpdateCode};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const WIDTH: u16 = 1920;
pub const HEIGHT: u16 = 1080;
/// A user of the RDP testbed, known to PAM.
const USER: &str = "rdpuser1";

fn password() -> Result<String> {
    std::env::var("RDP_TEST_PASSWORD").context("RDP_TEST_PASSWORD is not set (the RDP testbed's `env` gives it)")
}

/// Scenes per recording: half plasma, half wallpapers.
const SCENES: usize = 8;
/// A scene is complete when no update came for this long.
const QUIET: Duration = Duration::from_millis(1200);
const SCENE_LIMIT: Duration = Duration::from_secs(60);

/// One recording: its file name (without `.hdrec`), what the client offers, and at what depth.
pub struct Encoding {
    pub name: &'static str,
    pub label: &'static str,
    graphics: Graphics,
    color_depth: u8,
}

pub const ENCODINGS: &[Encoding] = &[
    Encoding { name: "remotefx", label: "RemoteFX", graphics: Graphics { remote_fx: true, pipeline: false }, color_depth: 32 },
    Encoding { name: "planar", label: "planar bitmaps (32 bpp)", graphics: Graphics { remote_fx: false, pipeline: false }, color_depth: 32 },
    Encoding { name: "bitmap", label: "interleaved bitmaps (16 bpp)", graphics: Graphics { remote_fx: false, pipeline: false }, color_depth: 16 },
];

pub fn record(dir: &Path, assets: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let scenes = make_scenes(dir, assets)?;
    let (_xvfb, display) = start_xvfb(dir)?;
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut shadow = ChildGuard::spawn(
        "freerdp-shadow-cli",
        Command::new("freerdp-shadow-cli")
            .env("DISPLAY", &display)
            .args(["/bind-address:127.0.0.1", &format!("/port:{port}"), "/sec:tls"]),
        &dir.join("shadow.log"),
    )?;
    wait_listening(&mut shadow, addr, Duration::from_secs(30))?;
    for encoding in ENCODINGS {
        show(&display, None)?;
        eprintln!("bench: recording {} at {WIDTH}x{HEIGHT} ({} scenes)", encoding.label, scenes.len());
        let recording = record_one(addr, encoding, &display, &scenes).with_context(|| format!("recording {}", encoding.name))?;
        eprintln!("bench:   {} frames, {} MB; {}", recording.frames.len(), mb(&recording), describe(&recording));
        write_atomically(&dir.join(format!("{}.hdrec", encoding.name)), &recording.to_bytes())?;
        shadow.check_alive()?;
    }
    Ok(())
}

fn record_one(addr: SocketAddr, encoding: &Encoding, display: &str, scenes: &[PathBuf]) -> Result<Recording> {
    let params = ConnectParams {
        username: String::new(),
        password: String::new(),
        domain: None,
        width: WIDTH,
        height: HEIGHT,
        server_name: "127.0.0.1".into(),
        pinned_sha256: None,
        client_name: "homedesk-bench".into(),
        keyboard_layout: 0x409,
        color_depth: encoding.color_depth,
        sounds: false,
        graphics: encoding.graphics,
    };
    let (mut client, first) = RdpClient::new(ConnectParams { username: USER.into(), password: password()?, ..params })?;
    client.record_updates();
    let mut link = Link::connect(addr, client, &first)?;
    link.pump_until_quiet().context("the first desktop")?;
    for (index, scene) in scenes.iter().enumerate() {
        show(display, Some(scene))?;
        link.pump_until_quiet().with_context(|| format!("scene {}", index + 1))?;
    }
    let size = link.size;
    let live = link.client.framebuffer().map(|frame| colour_sha256(frame.rgba));
    let recording = link.client.take_recording().context("nothing was recorded")?;
    if (recording.width, recording.height) != (WIDTH, HEIGHT) || size != Some((WIDTH, HEIGHT)) {
        bail!("the workstation chose {size:?}, not {WIDTH}x{HEIGHT}");
    }
    let (replayed, screens) = replay(&recording)?;
    if live.as_deref() != Some(replayed.as_str()) {
        bail!("replaying the recording does not give the live session's picture");
    }
    eprintln!("bench:   replayed to the live session's picture, {screens:.1} screens painted");
    Ok(recording)
}

/// The colours' SHA-256 after a native replay, and how many full screens it painted.
fn replay(recording: &Recording) -> Result<(String, f64)> {
    let mut replay = Replay::new(recording.width, recording.height)?;
    let mut pixels = 0u64;
    for frame in &recording.frames {
        for rect in replay.frame(frame)? {
            pixels += u64::from(rect.width) * u64::from(rect.height);
        }
    }
    let screens = pixels as f64 / (f64::from(recording.width) * f64::from(recording.height));
    Ok((colour_sha256(replay.framebuffer().rgba), screens))
}

/// A native session over TCP, pumped until the workstation has nothing more to send.
struct Link {
    stream: TcpStream,
    client: RdpClient,
    size: Option<(u16, u16)>,
    last_paint: Option<Instant>,
}

impl Link {
    fn connect(addr: SocketAddr, client: RdpClient, first: &[u8]) -> Result<Link> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(20)))?;
        stream.write_all(first)?;
        Ok(Link { stream, client, size: None, last_paint: None })
    }

    fn pump_until_quiet(&mut self) -> Result<()> {
        let start = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        self.last_paint = None;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => bail!("the workstation closed the connection"),
                Ok(n) => {
                    let events = self.client.receive(&buf[..n])?;
                    self.handle(events)?;
                }
                Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(error) => return Err(error.into()),
            }
            if self.last_paint.is_some_and(|at| at.elapsed() > QUIET) {
                return Ok(());
            }
            if start.elapsed() > SCENE_LIMIT {
                bail!("the workstation sent no complete picture within {SCENE_LIMIT:?}");
            }
        }
    }

    fn handle(&mut self, events: Vec<Event>) -> Result<()> {
        for event in events {
            match event {
                Event::Send(bytes) => self.stream.write_all(&bytes)?,
                Event::Connected { width, height } => self.size = Some((width, height)),
                Event::Paint(_) => self.last_paint = Some(Instant::now()),
                Event::Terminated(reason) => bail!("the session ended: {reason}"),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The scene pictures at 1920×1080 (ImageMagick): plasma with a fixed seed, and wallpapers.
fn make_scenes(dir: &Path, assets: &Path) -> Result<Vec<PathBuf>> {
    let mut scenes = Vec::new();
    for index in 0..SCENES {
        let path = dir.join(format!("scene-{index}.png"));
        let size = format!("{WIDTH}x{HEIGHT}");
        let mut convert = Command::new("convert");
        if index % 2 == 0 {
            // Blurred a little: plasma alone is per-pixel noise, a photo is not.
            convert.args(["-seed", &(index + 1).to_string(), "-size", &size, "plasma:", "-blur", "0x1.5"]);
        } else {
            let wallpaper = assets.join(format!("bg-{:02}.jpg", index + 1));
            convert.arg(&wallpaper).args(["-resize", &format!("{size}!")]);
        }
        run(convert.arg(&path), "convert (ImageMagick)")?;
        scenes.push(path);
    }
    Ok(scenes)
}

/// Shows a picture on the display's root window, or a plain grey one.
fn show(display: &str, picture: Option<&Path>) -> Result<()> {
    match picture {
        // ImageMagick 6's `display -window root` exits with 1 after setting the background; a scene
        // that did not show is noticed as a scene that never arrives.
        Some(picture) => {
            let mut command = Command::new("display");
            command.args(["-display", display, "-window", "root"]).arg(picture).stdin(Stdio::null());
            command.status().context("cannot run display (ImageMagick)").map(drop)
        }
        None => run(Command::new("xsetroot").args(["-display", display, "-solid", "#808080"]), "xsetroot"),
    }
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let status = command.stdin(Stdio::null()).status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn start_xvfb(dir: &Path) -> Result<(ChildGuard, String)> {
    use std::io::BufRead;
    let log = std::fs::File::create(dir.join("xvfb.log"))?;
    let mut xvfb = ChildGuard::spawn_raw(
        "Xvfb",
        Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", &format!("{WIDTH}x{HEIGHT}x24"), "-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log),
    )?;
    let stdout = xvfb.child_mut().stdout.take().context("Xvfb's stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let number: u32 = line.trim().parse().with_context(|| format!("Xvfb printed no display number: {line:?}"))?;
    Ok((xvfb, format!(":{number}")))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot rename to {}", path.display()))
}

fn mb(recording: &Recording) -> String {
    let bytes: usize = recording.frames.iter().map(Vec::len).sum();
    format!("{:.1}", bytes as f64 / 1e6)
}

/// What the recording holds, so a wrong encoding is noticed: update kinds, and bitmaps by depth
/// and compression.
pub fn describe(recording: &Recording) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut pending: Option<(UpdateCode, Vec<u8>)> = None;
    for frame in &recording.frames {
        let mut cursor = ReadCursor::new(frame);
        if decode_cursor::<FastPathHeader>(&mut cursor).is_err() {
            *kinds.entry("malformed".into()).or_default() += 1;
            continue;
        }
        while !cursor.is_empty() {
            let Ok(update) = decode_cursor::<FastPathUpdatePdu<'_>>(&mut cursor) else { break };
            let whole = match update.fragmentation {
                Fragmentation::Single => Some((update.update_code, update.data.to_vec())),
                Fragmentation::First => {
                    pending = Some((update.update_code, update.data.to_vec()));
                    None
                }
                Fragmentation::Next => {
                    if let Some((_, data)) = pending.as_mut() {
                        data.extend_from_slice(update.data);
                    }
                    None
                }
                Fragmentation::Last => pending.take().map(|(code, mut data)| {
                    data.extend_from_slice(update.data);
                    (code, data)
                }),
            };
            if let Some((code, data)) = whole {
                for kind in update_kinds(code, &data) {
                    *kinds.entry(kind).or_default() += 1;
                }
            }
        }
    }
    kinds.iter().map(|(kind, count)| format!("{count}× {kind}")).collect::<Vec<_>>().join(", ")
}

fn update_kinds(code: UpdateCode, data: &[u8]) -> Vec<String> {
    if code != UpdateCode::Bitmap {
        return vec![format!("{code:?}")];
    }
    match decode_cursor::<BitmapUpdateData<'_>>(&mut ReadCursor::new(data)) {
        Ok(update) => update
            .rectangles
            .iter()
            .map(|bitmap| {
                let compressed = bitmap.compression_flags.contains(ironrdp_pdu::bitmap::Compression::BITMAP_COMPRESSION);
                format!("{} bpp {} bitmap", bitmap.bits_per_pixel, if compressed { "compressed" } else { "raw" })
            })
            .collect(),
        Err(_) => vec!["malformed bitmap update".into()],
    }
}
