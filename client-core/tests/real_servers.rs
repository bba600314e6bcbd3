//! The client core against real RDP servers from the shared testbed (xrdp with TLS, freerdp-shadow
//! with NLA), driven by a small blocking TCP loop. Run through `cargo xtask test`, which starts the
//! testbed and passes its addresses (RDP_TESTBED_XRDP_ADDR, RDP_TESTBED_SHADOW_ADDR).

use homedesk_client_core::drive::{
    DriveBackend, DriveConfig, DriveError, DrivePath, Entry, FileHandle, Io, IoId, IoOutcome, MemoryDrive,
};
use homedesk_client_core::replay::{colour_sha256, RecordedFrames, Replay};
use homedesk_client_core::{
    ClipboardContent,
    ClientError, ConnectParams, Devices, Event, Graphics, Input, MouseButton, RdpClient, Resize,
};
use sha2::{Digest, Sha256};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const IGNORE_REASON: &str = "needs the RDP testbed: run via cargo xtask test";
const WIDTH: u16 = 1024;
const HEIGHT: u16 = 768;
const TOLERANCE: i32 = 8;
const XRDP_BACKGROUND: [u8; 3] = [0x1e, 0x6f, 0xd9];
const SHADOW_BACKGROUND: [u8; 3] = [0x2e, 0x8b, 0x57];
/// The xterm at +600+100 (60x10 characters, about 366x136 px): its whole inside, since typing
/// changes the line below the last one, or scrolls everything once the window is full.
const XTERM_REGION: (u16, u16, u16, u16) = (602, 102, 360, 130);

fn testbed_addr(var: &str) -> String {
    match std::env::var(var) {
        Ok(addr) if !addr.is_empty() => addr,
        _ => panic!("{var} is not set: {IGNORE_REASON} (it starts the testbed and sets the addresses)"),
    }
}

fn password() -> String {
    std::env::var("RDP_TEST_PASSWORD").unwrap_or_else(|_| "Passw0rd!".to_owned())
}

fn params(user: &str, password: &str, pin: Option<String>) -> ConnectParams {
    ConnectParams {
        username: user.to_owned(),
        password: password.to_owned(),
        domain: None,
        width: WIDTH,
        height: HEIGHT,
        server_name: "localhost".to_owned(),
        pinned_sha256: pin,
        client_name: "homedesk-test".to_owned(),
        keyboard_layout: 0x409,
        color_depth: 32,
        sounds: false,
        graphics: Default::default(),
    }
}

/// A blocking driver: what the browser glue does with WebSocket callbacks, over TCP.
struct Driver {
    stream: TcpStream,
    client: RdpClient,
    connected: Option<(u16, u16)>,
    terminated: Option<String>,
    paints: usize,
    /// Texts the workstation put on its clipboard, in order.
    remote_clipboard: Vec<String>,
    remote_images: Vec<Vec<u8>>,
    /// Pointer shapes received: (width, height, hotspot, RGBA length).
    pointer_shapes: Vec<(u16, u16, (u16, u16), usize)>,
    /// Pointer events of any kind (default, hidden, position, shape).
    pointer_events: usize,
    /// Files the workstation wrote into the drive's download folder (path, size), in order.
    downloads: Vec<(String, u64)>,
    /// Sound received: (sample rate, channels) of each wave and all samples in order.
    audio_formats: Vec<(u32, u16)>,
    audio: Vec<i16>,
    /// Drive reads and writes a [`LaterDrive`] finished, answered at the next pump.
    finished_io: FinishedIo,
}

type FinishedIo = std::rc::Rc<std::cell::RefCell<Vec<(IoId, Result<IoOutcome, DriveError>)>>>;

/// The memory drive answering every read and write later, as the browser's store does: the operation is
/// done at once but its answer waits for the driver's next pump (`RdpClient::complete_drive_io`).
struct LaterDrive {
    inner: MemoryDrive,
    finished: FinishedIo,
}

impl DriveBackend for LaterDrive {
    fn stat(&mut self, path: &DrivePath) -> Result<Entry, DriveError> {
        self.inner.stat(path)
    }
    fn list(&mut self, folder: &DrivePath) -> Result<Vec<Entry>, DriveError> {
        self.inner.list(folder)
    }
    fn mkdir(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        self.inner.mkdir(path)
    }
    fn open(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        self.inner.open(path)
    }
    fn create(&mut self, path: &DrivePath) -> Result<FileHandle, DriveError> {
        self.inner.create(path)
    }
    fn read(&mut self, file: FileHandle, offset: u64, len: u32, io: IoId) -> Result<Io<Vec<u8>>, DriveError> {
        let outcome = match self.inner.read(file, offset, len, io) {
            Ok(Io::Done(data)) => Ok(IoOutcome::Read(data)),
            Ok(Io::Deferred) => unreachable!("the memory drive answers at once"),
            Err(error) => Err(error),
        };
        self.finished.borrow_mut().push((io, outcome));
        Ok(Io::Deferred)
    }
    fn write(&mut self, file: FileHandle, offset: u64, data: Vec<u8>, io: IoId) -> Result<Io<()>, DriveError> {
        let outcome = self.inner.write(file, offset, data, io).map(|_| IoOutcome::Written);
        self.finished.borrow_mut().push((io, outcome));
        Ok(Io::Deferred)
    }
    fn set_len(&mut self, file: FileHandle, len: u64) -> Result<(), DriveError> {
        self.inner.set_len(file, len)
    }
    fn close(&mut self, file: FileHandle) -> Result<(), DriveError> {
        self.inner.close(file)
    }
    fn delete(&mut self, path: &DrivePath) -> Result<(), DriveError> {
        self.inner.delete(path)
    }
    fn rename(&mut self, from: &DrivePath, to: &DrivePath, replace: bool) -> Result<(), DriveError> {
        self.inner.rename(from, to, replace)
    }
}

impl Driver {
    fn connect(addr: &str, params: ConnectParams) -> Driver {
        Self::connect_with(addr, params, Devices::default())
    }

    fn connect_with(addr: &str, params: ConnectParams, devices: Devices) -> Driver {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot reach {addr}: {e}"));
        stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        stream.set_nodelay(true).unwrap();
        let (client, first) = RdpClient::with_devices(params, devices).expect("valid parameters");
        let mut driver = Driver {
            stream,
            client,
            connected: None,
            terminated: None,
            paints: 0,
            remote_clipboard: Vec::new(),
            remote_images: Vec::new(),
            pointer_shapes: Vec::new(),
            pointer_events: 0,
            downloads: Vec::new(),
            audio_formats: Vec::new(),
            audio: Vec::new(),
            finished_io: FinishedIo::default(),
        };
        driver.stream.write_all(&first).unwrap();
        driver
    }

    fn handle(&mut self, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Send(bytes) => self.stream.write_all(&bytes).expect("write to the server"),
                Event::Connected { width, height } => self.connected = Some((width, height)),
                Event::Paint(_) => self.paints += 1,
                Event::Terminated(reason) => self.terminated = Some(reason),
                Event::RemoteClipboard(content) => {
                    self.remote_clipboard.extend(content.text);
                    self.remote_images.extend(content.png);
                }
                Event::ClipboardError(message) => panic!("clipboard error: {message}"),
                Event::PointerBitmap { width, height, hotspot_x, hotspot_y, rgba } => {
                    self.pointer_events += 1;
                    self.pointer_shapes.push((width, height, (hotspot_x, hotspot_y), rgba.len()));
                }
                Event::PointerDefault | Event::PointerHidden | Event::PointerPosition { .. } => {
                    self.pointer_events += 1
                }
                Event::DriveDownload { path, size } => self.downloads.push((path, size)),
                Event::Audio { sample_rate, channels, samples } => {
                    self.audio_formats.push((sample_rate, channels));
                    self.audio.extend(samples);
                }
                _ => {}
            }
        }
    }

    /// One read (up to 50 ms) and its processing.
    fn pump_once(&mut self) -> Result<(), ClientError> {
        let mut buf = vec![0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                let events = self.client.transport_closed()?;
                self.handle(events);
                self.terminated.get_or_insert_with(|| "connection closed".to_owned());
                Ok(())
            }
            Ok(n) => {
                let events = self.client.receive(&buf[..n])?;
                self.handle(events);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(()),
            Err(e) => panic!("read error: {e}"),
        }?;
        let finished = std::mem::take(&mut *self.finished_io.borrow_mut());
        for (id, outcome) in finished {
            let events = self.client.complete_drive_io(id, outcome)?;
            self.handle(events);
        }
        Ok(())
    }

    /// Pumps until `done` holds or the time is up; returns whether it held.
    fn run_until(&mut self, timeout: Duration, mut done: impl FnMut(&Driver) -> bool) -> Result<bool, ClientError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done(self) {
                return Ok(true);
            }
            if self.terminated.is_some() {
                panic!("session terminated: {:?}", self.terminated);
            }
            self.pump_once()?;
        }
        Ok(done(self))
    }

    fn input(&mut self, input: Input) {
        let events = self.client.input(input).expect("input");
        self.handle(events);
    }

    fn type_key(&mut self, code: &str) {
        self.input(Input::Key { code: code.to_owned(), pressed: true });
        self.input(Input::Key { code: code.to_owned(), pressed: false });
    }

    fn pixel(&self, x: u16, y: u16) -> [u8; 3] {
        let frame = self.client.framebuffer().expect("framebuffer");
        let i = (usize::from(y) * usize::from(frame.width) + usize::from(x)) * 4;
        [frame.rgba[i], frame.rgba[i + 1], frame.rgba[i + 2]]
    }

    fn region(&self, (x, y, w, h): (u16, u16, u16, u16)) -> Vec<u8> {
        let frame = self.client.framebuffer().expect("framebuffer");
        let mut out = Vec::new();
        for row in y..y + h {
            let start = (usize::from(row) * usize::from(frame.width) + usize::from(x)) * 4;
            out.extend_from_slice(&frame.rgba[start..start + usize::from(w) * 4]);
        }
        out
    }

    fn save_png(&self, name: &str) -> PathBuf {
        let frame = self.client.framebuffer().expect("framebuffer");
        let dir = PathBuf::from(std::env::var("HOMEDESK_ARTIFACTS").unwrap_or_else(|_| "/tmp/homedesk-artifacts".into()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), u32::from(frame.width), u32::from(frame.height));
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        // Opaque copy: the framebuffer's alpha is not meaningful for a screenshot.
        let opaque: Vec<u8> = frame.rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
        writer.write_image_data(&opaque).unwrap();
        path
    }

    fn shutdown(mut self) {
        if let Ok(events) = self.client.shutdown() {
            self.handle(events);
        }
    }
}

/// Pumps the connection until the known picture shows (at most 60 s), saves it as `name`.png, and on
/// failure says what was on screen, how far the connection got and what xrdp's logs said: a session
/// that never appears on a CI machine must leave enough behind to tell why.
fn wait_for_picture(driver: &mut Driver, background: [u8; 3], name: &str) -> PathBuf {
    let shown = driver.run_until(Duration::from_secs(60), |d| shows_picture(d, background)).expect("session runs");
    let path = match driver.client.framebuffer() {
        Some(_) => driver.save_png(&format!("client-core-{name}.png")),
        None => PathBuf::from("(no framebuffer)"),
    };
    if !shown {
        let seen: Vec<_> = match driver.client.framebuffer() {
            Some(_) => expected_points(background).iter().map(|&((x, y), _)| ((x, y), driver.pixel(x, y))).collect(),
            None => Vec::new(),
        };
        panic!(
            "{name}: known picture not shown within 60 s; connected {:?}, terminated {:?}, {} paints, saw {seen:?}; \
             framebuffer in {}\n{}",
            driver.connected,
            driver.terminated,
            driver.paints,
            path.display(),
            server_log_tails()
        );
    }
    path
}

/// The last lines of xrdp's and sesman's logs (empty when they cannot be read).
fn server_log_tails() -> String {
    ["/var/log/xrdp.log", "/var/log/xrdp-sesman.log"]
        .iter()
        .map(|log| {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            format!("--- {log} (last 15 lines)\n{}", lines[lines.len().saturating_sub(15)..].join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= TOLERANCE)
}

/// Sample points of the testbed picture.
fn expected_points(background: [u8; 3]) -> [((u16, u16), [u8; 3]); 5] {
    [
        ((50, 50), background),
        ((180, 160), [255, 0, 0]),
        ((340, 160), [0, 255, 0]),
        ((180, 280), [0, 0, 255]),
        ((340, 280), [255, 255, 255]),
    ]
}

fn shows_picture(driver: &Driver, background: [u8; 3]) -> bool {
    driver.client.framebuffer().is_some()
        && expected_points(background).iter().all(|&((x, y), colour)| close(driver.pixel(x, y), colour))
}

/// Connects, waits for the known picture, saves it, types into the xterm and checks it changed.
fn picture_and_typing(addr: &str, user: &str, background: [u8; 3], name: &str) {
    let mut driver = Driver::connect(addr, params(user, &password(), None));
    let started = Instant::now();
    let connected = driver.run_until(Duration::from_secs(60), |d| d.connected.is_some()).expect("connects");
    assert!(connected, "{name}: no Connected event within 60 s");
    assert_eq!(driver.connected, Some((WIDTH, HEIGHT)));
    assert!(driver.client.is_active());
    let fingerprint = driver.client.server_certificate_sha256().expect("fingerprint after connect");
    assert_eq!(fingerprint.len(), 64);

    let path = wait_for_picture(&mut driver, background, name);
    eprintln!("{name}: picture after {:?}, {} paints, saved {}", started.elapsed(), driver.paints, path.display());
    // The canvas draws the framebuffer as is: decoded pixels must be opaque.
    let frame = driver.client.framebuffer().unwrap();
    let transparent = frame.rgba.chunks(4).filter(|p| p[3] != 255).count();
    // How far the lossy path strays from the exact picture (diagnostic).
    let white = driver.region((270, 230, 140, 100));
    let worst = white.chunks(4).map(|p| 255 - p[0].min(p[1]).min(p[2])).max().unwrap_or(0);
    eprintln!("{name}: {transparent} non-opaque pixels; white quadrant deviates by at most {worst}");
    assert_eq!(transparent, 0, "{name}: framebuffer has non-opaque pixels");

    // Focus the xterm (no window manager: focus follows the pointer; a click does no harm).
    driver.input(Input::MouseMove { x: 700, y: 150 });
    driver.input(Input::MouseButton { button: MouseButton::Left, pressed: true });
    driver.input(Input::MouseButton { button: MouseButton::Left, pressed: false });
    driver.run_until(Duration::from_millis(500), |_| false).unwrap();
    let before = driver.region(XTERM_REGION);
    for code in ["KeyE", "KeyC", "KeyH", "KeyO", "Space", "KeyH", "KeyI", "Enter"] {
        driver.type_key(code);
    }
    let changed = driver
        .run_until(Duration::from_secs(15), |d| d.region(XTERM_REGION) != before)
        .expect("session runs");
    // Let the echo finish drawing before the screenshot.
    driver.run_until(Duration::from_millis(700), |_| false).unwrap();
    let typed = driver.save_png(&format!("client-core-{name}-typed.png"));
    assert!(changed, "{name}: typing did not change the xterm; see {}", typed.display());
    // Release everything and leave politely.
    let events = driver.client.release_all().expect("release_all");
    driver.handle(events);
    driver.shutdown();
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_tls_shows_the_desktop_and_takes_typing() {
    picture_and_typing(&testbed_addr("RDP_TESTBED_XRDP_ADDR"), "rdpuser1", XRDP_BACKGROUND, "xrdp");
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn shadow_nla_shows_the_desktop_and_takes_typing() {
    picture_and_typing(&testbed_addr("RDP_TESTBED_SHADOW_ADDR"), "rdpuser2", SHADOW_BACKGROUND, "shadow");
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn shadow_nla_rejects_a_wrong_password_quickly() {
    let addr = testbed_addr("RDP_TESTBED_SHADOW_ADDR");
    let started = Instant::now();
    let mut driver = Driver::connect(&addr, params("rdpuser2", "definitely-wrong", None));
    let result = driver.run_until(Duration::from_secs(20), |d| d.connected.is_some());
    assert!(
        matches!(result, Err(ClientError::CredentialsRejected)),
        "expected CredentialsRejected, got {result:?} (connected: {:?})",
        driver.connected
    );
    assert!(started.elapsed() < Duration::from_secs(10), "rejection took {:?}", started.elapsed());
    eprintln!("wrong password: {} after {:?}", ClientError::CredentialsRejected, started.elapsed());
}

/// The fingerprint a server presents (TLS only; the connection is dropped afterwards).
fn fingerprint_of(addr: &str) -> String {
    let mut driver = Driver::connect(addr, params("rdpuser2", &password(), None));
    driver
        .run_until(Duration::from_secs(20), |d| d.client.server_certificate_sha256().is_some())
        .expect("TLS handshake");
    driver.client.server_certificate_sha256().expect("fingerprint")
}

fn pins(addr: &str, user: &str) {
    let fingerprint = fingerprint_of(addr);

    let wrong = "0".repeat(64);
    let mut driver = Driver::connect(addr, params(user, &password(), Some(wrong.clone())));
    let result = driver.run_until(Duration::from_secs(20), |d| d.connected.is_some());
    match result {
        Err(ClientError::CertificateChanged { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, fingerprint);
        }
        other => panic!("{addr}: expected CertificateChanged, got {other:?}"),
    }

    let mut driver = Driver::connect(addr, params(user, &password(), Some(fingerprint.clone())));
    let connected = driver.run_until(Duration::from_secs(60), |d| d.connected.is_some()).expect("pinned connect");
    assert!(connected, "{addr}: the correct pin did not connect");
    assert_eq!(driver.client.server_certificate_sha256(), Some(fingerprint));
    driver.shutdown();
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_pins_refuse_a_wrong_certificate_and_accept_the_right_one() {
    pins(&testbed_addr("RDP_TESTBED_XRDP_ADDR"), "rdpuser1");
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn shadow_pins_refuse_a_wrong_certificate_and_accept_the_right_one() {
    pins(&testbed_addr("RDP_TESTBED_SHADOW_ADDR"), "rdpuser2");
}

// ---- Clipboard against xrdp's chansrv, checked with xclip on the session's own X display ------------

/// The X display (":10") of `user`'s xrdp session: the Xorg (xorgxrdp) or Xvnc server sesman started
/// for them, found through /proc.
fn session_display(user: &str) -> Option<String> {
    let uid = std::process::Command::new("id").args(["-u", user]).output().ok()?;
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else { continue };
        let owner = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next());
        if owner != Some(uid.as_str()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let program = args.first().map(|a| a.rsplit('/').next().unwrap_or(a)).unwrap_or_default();
        if program == "Xorg" || program == "Xvnc" {
            if let Some(display) = args.iter().skip(1).find(|a| a.starts_with(':') && a[1..].parse::<u32>().is_ok()) {
                return Some(display.clone());
            }
        }
    }
    None
}

/// `xclip` as the session's user on its display, on the CLIPBOARD selection.
fn xclip(user: &str, display: &str, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new("runuser");
    command.args(["-u", user, "--", "env", &format!("DISPLAY={display}"), "xclip", "-selection", "clipboard"]);
    command.args(args);
    command
}

/// Puts `text` on the session's clipboard; xclip forks and owns the selection until someone else does.
fn set_session_clipboard(user: &str, display: &str, text: &str) {
    set_session_clipboard_as(user, display, &[], text.as_bytes());
}

/// Puts `data` on the session's clipboard with xclip's extra arguments (e.g. a target type).
fn set_session_clipboard_as(user: &str, display: &str, args: &[&str], data: &[u8]) {
    // xclip stays in the background as the selection's owner: it must not hold the test's output open.
    let mut child = xclip(user, display, &[args, &["-i"]].concat())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run xclip (installed with the testbed)");
    child.stdin.take().unwrap().write_all(data).unwrap();
    assert!(child.wait().unwrap().success(), "xclip -i failed");
}

/// Reads the session's clipboard while pumping the connection (chansrv asks us for the data).
fn read_session_clipboard(driver: &mut Driver, user: &str, display: &str) -> String {
    String::from_utf8(read_session_clipboard_as(driver, user, display, &[])).expect("xclip output is UTF-8")
}

/// The session's clipboard as xclip -o with extra arguments (e.g. a target type) gives it.
fn read_session_clipboard_as(driver: &mut Driver, user: &str, display: &str, args: &[&str]) -> Vec<u8> {
    let mut child = xclip(user, display, &[args, &["-o"]].concat())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run xclip");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("xclip -o did not finish within 60 s");
        }
        driver.pump_once().expect("session runs while the workstation pastes");
    }
    let status = child.wait().unwrap();
    let out = reader.join().unwrap().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "xclip -o failed: {err}");
    out
}

/// BMP emoji and symbols, CJK, Arabic and Hebrew (right to left), a combining accent, tabs and several
/// lines. xrdp 0.9's chansrv converts text one UTF-16 unit at a time, so characters outside the BMP
/// (most emoji: surrogate pairs) are mangled or stall its answer; the core's own handling of them is
/// covered by the unit tests (clipboard_tests.rs).
const UNICODE_SAMPLE: &str = "Grüße ✋☺ — 日本語のテキスト 中文 한국어\nمرحبا بالعالم\nשלום עולם\te\u{301}\nlast line €";

/// 1 MB (10^6 bytes) of text, one numbered line after the other; `unicode` puts non-ASCII on every line.
fn megabyte_sample(unicode: bool) -> String {
    let mut text = String::new();
    for line in 0.. {
        let next = if unicode {
            format!("{line:06} Zeile ligne línea 行 ★ שורה\n")
        } else {
            format!("{line:06} line of the clipboard test\n")
        };
        if text.len() + next.len() > 1_000_000 {
            break;
        }
        text.push_str(&next);
    }
    text
}

/// Connects `user` to xrdp and waits until the session's X display and the clipboard channel are up.
fn clipboard_session(user: &str) -> (Driver, String) {
    let mut driver = Driver::connect(&testbed_addr("RDP_TESTBED_XRDP_ADDR"), params(user, &password(), None));
    wait_for_picture(&mut driver, XRDP_BACKGROUND, &format!("xrdp-clipboard-{user}"));
    let display = session_display(user).expect("the xrdp session's X server (Xorg/Xvnc) of the test user");
    // chansrv opens the clipboard channel a moment after the desktop shows: let the handshake run.
    driver.run_until(Duration::from_secs(2), |_| false).unwrap();
    (driver, display)
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_clipboard_text_from_the_session_arrives_as_unicode() {
    let user = "rdpuser3";
    let (mut driver, display) = clipboard_session(user);
    for (name, text) in [("unicode", UNICODE_SAMPLE.to_owned()), ("1 MB", megabyte_sample(true))] {
        driver.remote_clipboard.clear();
        set_session_clipboard(user, &display, &text);
        let arrived = driver
            .run_until(Duration::from_secs(60), |d| d.remote_clipboard.last() == Some(&text))
            .expect("session runs");
        let seen: Vec<String> = driver.remote_clipboard.iter().map(|t| t.chars().take(200).collect()).collect();
        assert!(arrived, "{name}: the session's clipboard text did not arrive; received {seen:?}");
        eprintln!("{name}: {} bytes arrived from the session's clipboard", text.len());
    }
    driver.shutdown();
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_clipboard_text_from_the_page_reaches_the_session() {
    let user = "rdpuser3";
    let (mut driver, display) = clipboard_session(user);
    // xrdp 0.9 passes large texts to X through another path that keeps only the low byte of each
    // UTF-16 unit (and adds the NUL): the megabyte going this way is ASCII.
    for (name, text) in [("unicode", UNICODE_SAMPLE.to_owned()), ("1 MB", megabyte_sample(false))] {
        let events = driver.client.set_local_clipboard_text(text.clone()).expect("announce");
        assert!(!events.is_empty(), "{name}: nothing was announced");
        driver.handle(events);
        // Let chansrv take the X selection before reading it.
        driver.run_until(Duration::from_millis(500), |_| false).unwrap();
        let pasted = read_session_clipboard(&mut driver, user, &display);
        // CF_UNICODETEXT has CRLF line ends (what Windows applications and mstsc use); xrdp 0.9 hands
        // them to X unchanged.
        // Above its incremental-transfer size xrdp 0.9 also hands over the terminating NUL.
        let pasted = pasted.strip_suffix('\0').unwrap_or(&pasted).replace("\r\n", "\n");
        let start: String = pasted.chars().take(200).collect();
        let end: String = pasted.chars().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
        assert_eq!(pasted.len(), text.len(), "{name}: length differs; the session has {start:?}…{end:?}");
        assert!(pasted == text, "{name}: the session's clipboard holds different text");
        eprintln!("{name}: {} bytes read with xclip -o in the session", pasted.len());
    }
    driver.shutdown();
}

/// A 24-bit BMP file (what X programs put on the clipboard as `image/bmp`): a gradient, bottom-up rows
/// padded to 4 bytes.
fn bmp_file(width: u32, height: u32) -> Vec<u8> {
    let stride = (width * 3).div_ceil(4) * 4;
    let pixels = stride * height;
    let mut bmp = b"BM".to_vec();
    for value in [54 + pixels, 0, 54] {
        bmp.extend(value.to_le_bytes());
    }
    for value in [40, width, height] {
        bmp.extend(value.to_le_bytes());
    }
    bmp.extend(1u16.to_le_bytes());
    bmp.extend(24u16.to_le_bytes());
    bmp.extend(0u32.to_le_bytes());
    bmp.extend(pixels.to_le_bytes());
    bmp.extend([0u8; 16]);
    for y in (0..height).rev() {
        let mut row: Vec<u8> = (0..width).flat_map(|x| gradient(x, y)).collect::<Vec<_>>()
            .chunks(4).flat_map(|rgba| [rgba[2], rgba[1], rgba[0]]).collect();
        row.resize(stride as usize, 0);
        bmp.extend(row);
    }
    bmp
}

/// The test image's pixel at (x, y), RGBA.
fn gradient(x: u32, y: u32) -> [u8; 4] {
    [(x * 4) as u8, (y * 5) as u8, (255 - x * 3) as u8, 255]
}

/// RGBA pixels of a PNG.
fn png_rgba(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::ALPHA | png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buffer).expect("PNG pixels");
    buffer.truncate(info.buffer_size());
    (info.width, info.height, buffer)
}

fn gradient_rgba(width: u32, height: u32) -> Vec<u8> {
    (0..height).flat_map(|y| (0..width).flat_map(move |x| gradient(x, y))).collect()
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_clipboard_image_from_the_session_arrives_as_png() {
    let user = "rdpuser3";
    let (mut driver, display) = clipboard_session(user);
    set_session_clipboard_as(user, &display, &["-t", "image/bmp"], &bmp_file(61, 40));
    let arrived = driver.run_until(Duration::from_secs(60), |d| !d.remote_images.is_empty()).expect("session runs");
    assert!(arrived, "no image arrived from the session's clipboard");
    let (width, height, rgba) = png_rgba(&driver.remote_images[0]);
    assert_eq!((width, height), (61, 40));
    assert!(rgba == gradient_rgba(61, 40), "the image's pixels differ from the BMP's");
    eprintln!("a 61x40 BMP arrived as a {}-byte PNG", driver.remote_images[0].len());
    driver.shutdown();
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_clipboard_image_from_the_page_reaches_the_session() {
    let user = "rdpuser3";
    let (mut driver, display) = clipboard_session(user);
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, 45, 30);
    encoder.set_color(png::ColorType::Rgba);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&gradient_rgba(45, 30)).unwrap();
    writer.finish().unwrap();
    let content = ClipboardContent { text: Some("ein Bild".into()), png: Some(png), ..ClipboardContent::default() };
    let events = driver.client.set_local_clipboard(content).expect("announce");
    driver.handle(events);
    driver.run_until(Duration::from_millis(500), |_| false).unwrap();
    let bmp = read_session_clipboard_as(&mut driver, user, &display, &["-t", "image/bmp"]);
    assert!(bmp.starts_with(b"BM") && bmp.len() > 14, "xclip gave no BMP: {} bytes", bmp.len());
    // A BMP file is a 14-byte file header and a DIB. xrdp 0.9.21 writes the header and then only as
    // many bytes of the DIB as the DIB's own length minus 14: the last 14 bytes (the end of the top
    // row, rows being bottom-up) are lost in the session. Everything else must be the page's image.
    let dib_length = 40 + 45 * 30 * 4;
    assert_eq!(bmp.len(), dib_length, "xrdp's BMP is no longer cut by 14 bytes: update this test");
    let mut dib = bmp[14..].to_vec();
    dib.resize(dib_length, 0);
    let from_session = ironrdp_cliprdr_format::bitmap::dib_to_png(&dib).expect("the session's DIB");
    let (width, height, rgba) = png_rgba(&from_session);
    assert_eq!((width, height), (45, 30));
    let expected = gradient_rgba(45, 30);
    let lost = 4 * 4; // 14 bytes: 3.5 pixels of the top row's end, in whole pixels
    let top_row_end = 45 * 4;
    let differs: Vec<usize> = (0..expected.len())
        .filter(|&i| rgba[i] != expected[i] && !(top_row_end - lost..top_row_end).contains(&i))
        .collect();
    assert!(differs.is_empty(), "the session's image differs from the page's at bytes {differs:?}");
    eprintln!("a 45x30 PNG reached the session as a {}-byte BMP", bmp.len());
    driver.shutdown();
}

// ---- Display: resize through Display Control, server pointer shapes --------------------------------

/// Connects and waits for the known picture.
/// A session recorded from its first update (`RdpClient::record_updates`) and replayed through
/// `Replay`, the bench's decode path, ends with exactly the live session's picture.
fn recording_replays_to_the_live_picture(addr: &str, user: &str, background: [u8; 3], name: &str, graphics: Graphics) {
    let mut driver = Driver::connect(addr, ConnectParams { graphics, ..params(user, &password(), None) });
    driver.client.record_updates();
    wait_for_picture(&mut driver, background, name);
    driver.run_until(Duration::from_secs(2), |_| false).expect("session runs"); // the rest of the first desktop
    let live = colour_sha256(driver.client.framebuffer().expect("the session is active").rgba);
    let recording = driver.client.take_recording().expect("updates were recorded");
    assert!(driver.client.take_recording().is_none(), "taking the recording ends it");
    let bytes = recording.to_bytes();
    let read = RecordedFrames::parse(&bytes).expect("the recording reads back");
    assert_eq!((read.width, read.height), (WIDTH, HEIGHT));
    let mut replay = Replay::new(read.width, read.height).expect("a replay at the session's size");
    let mut painted = 0;
    for frame in &read.frames {
        painted += replay.frame(frame).expect("every recorded frame decodes").len();
    }
    assert!(painted > 0, "{name}: the replay painted nothing from {} frames", read.frames.len());
    assert_eq!(colour_sha256(replay.framebuffer().rgba), live, "{name}: the replay's picture differs from the live one");
    driver.shutdown();
}

/// (xrdp 0.9 sends its bitmaps as slow-path updates, which recordings do not hold: the bench and these
/// tests record FreeRDP's shadow server.)
#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn shadow_bitmaps_recorded_replay_to_the_live_picture() {
    let bitmaps_only = Graphics { remote_fx: false, pipeline: false };
    recording_replays_to_the_live_picture(&testbed_addr("RDP_TESTBED_SHADOW_ADDR"), "rdpuser2", SHADOW_BACKGROUND, "shadow-bitmaps-replay", bitmaps_only);
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn shadow_remotefx_recorded_replays_to_the_live_picture() {
    let remote_fx = Graphics { remote_fx: true, pipeline: false };
    recording_replays_to_the_live_picture(&testbed_addr("RDP_TESTBED_SHADOW_ADDR"), "rdpuser2", SHADOW_BACKGROUND, "shadow-replay", remote_fx);
}

fn connected_session(addr: &str, user: &str, background: [u8; 3], name: &str) -> Driver {
    let mut driver = Driver::connect(addr, params(user, &password(), None));
    wait_for_picture(&mut driver, background, name);
    driver
}

/// Asks for `width` x `height` until the Display Control channel is open (it opens after the
/// logon), for at most `wait`; returns the last answer.
fn request_resize(driver: &mut Driver, width: u16, height: u16, wait: Duration) -> Resize {
    let deadline = Instant::now() + wait;
    loop {
        let answer = driver.client.resize(width, height).expect("resize");
        match answer {
            Resize::Requested { ref events, .. } => {
                driver.handle(events.clone());
                return answer;
            }
            Resize::ScaleToFit if Instant::now() >= deadline => return answer,
            Resize::ScaleToFit => driver.run_until(Duration::from_millis(500), |_| false).expect("session runs"),
        };
    }
}

/// xrdp opens Display Control and takes the layout. The testbed's xrdp 0.9.21 then resizes its X
/// screen but never runs the deactivation-reactivation that tells the client (seen in its
/// xorgxrdp log and on the wire), so when no new size arrives the page reconnects at the window's
/// size: the session is reattached at that size. Both paths end with the picture at 1280x720.
#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_resizes_the_desktop_through_display_control_or_reattach() {
    let addr = testbed_addr("RDP_TESTBED_XRDP_ADDR");
    let mut driver = connected_session(&addr, "rdpuser1", XRDP_BACKGROUND, "xrdp-resize");
    assert_eq!(driver.connected, Some((WIDTH, HEIGHT)));
    // An odd width is made even, as MS-RDPEDISP requires.
    let answer = request_resize(&mut driver, 1281, 720, Duration::from_secs(20));
    let Resize::Requested { width, height, .. } = answer else {
        panic!("xrdp never opened the Display Control channel: {answer:?}");
    };
    assert_eq!((width, height), (1280, 720));
    let resized = driver.run_until(Duration::from_secs(10), |d| d.connected == Some((1280, 720))).expect("runs");
    if !resized {
        eprintln!("xrdp did not announce the new size: reconnecting at 1280x720 (the page's fallback)");
        driver.shutdown();
        let mut resized_params = params("rdpuser1", &password(), None);
        (resized_params.width, resized_params.height) = (1280, 720);
        driver = Driver::connect(&addr, resized_params);
    }
    wait_for_picture(&mut driver, XRDP_BACKGROUND, "xrdp-resized");
    assert_eq!(driver.connected, Some((1280, 720)));
    let frame = driver.client.framebuffer().expect("framebuffer");
    assert_eq!((frame.width, frame.height), (1280, 720));
    driver.shutdown();
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn shadow_cannot_resize_so_the_page_scales() {
    let addr = testbed_addr("RDP_TESTBED_SHADOW_ADDR");
    let mut driver = connected_session(&addr, "rdpuser2", SHADOW_BACKGROUND, "shadow-resize");
    // freerdp-shadow mirrors a fixed X display: it offers no Display Control channel.
    let answer = request_resize(&mut driver, 1280, 720, Duration::from_secs(5));
    assert_eq!(answer, Resize::ScaleToFit);
    let frame = driver.client.framebuffer().expect("framebuffer");
    assert_eq!((frame.width, frame.height), (WIDTH, HEIGHT));
    driver.shutdown();
}

/// The pointer over the xterm: the workstation sends its shapes as the pointer moves.
///
/// The pointer crosses between the desktop and the xterm until a shape arrives. Several crossings
/// are needed with freerdp-shadow: its X11 capture thread handles an X event only when the X
/// socket wakes it, so a cursor change that Xlib read ahead during a frame capture waits for the
/// next one (a loaded CI machine once saw no shape after four moves).
fn pointer_shapes_arrive(addr: &str, user: &str, background: [u8; 3], name: &str) {
    let mut driver = connected_session(addr, user, background, name);
    let crossings = [(50, 50), (700, 150), (60, 60), (720, 160)].into_iter().cycle().take(80);
    for (x, y) in crossings {
        driver.input(Input::MouseMove { x, y });
        if driver.run_until(Duration::from_millis(250), |d| !d.pointer_shapes.is_empty()).expect("runs") {
            break;
        }
    }
    let shaped = driver.run_until(Duration::from_secs(5), |d| !d.pointer_shapes.is_empty()).expect("runs");
    assert!(shaped, "{name}: no pointer shape; {} other pointer events", driver.pointer_events);
    for &(width, height, (hx, hy), len) in &driver.pointer_shapes {
        assert!(width > 0 && height > 0 && width <= 384 && height <= 384, "{name}: shape {width}x{height}");
        assert_eq!(len, usize::from(width) * usize::from(height) * 4, "{name}: RGBA size");
        assert!(hx < width && hy < height, "{name}: hot spot ({hx}, {hy}) outside {width}x{height}");
    }
    eprintln!("{name}: pointer shapes {:?}", driver.pointer_shapes);
    driver.shutdown();
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_sends_pointer_shapes() {
    pointer_shapes_arrive(&testbed_addr("RDP_TESTBED_XRDP_ADDR"), "rdpuser1", XRDP_BACKGROUND, "xrdp-pointer");
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn shadow_sends_pointer_shapes() {
    pointer_shapes_arrive(&testbed_addr("RDP_TESTBED_SHADOW_ADDR"), "rdpuser2", SHADOW_BACKGROUND, "shadow-pointer");
}

/// Log off asks for the MS-RDPBCGR Shutdown Request; what a workstation does with it is its choice
/// (Windows and xrdp refuse while a user is signed in: "denied", then the client disconnects and the
/// session stays). Either way the client ends with a `Terminated` and the connection closes.
#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_log_off_request_ends_the_connection() {
    let addr = testbed_addr("RDP_TESTBED_XRDP_ADDR");
    let mut driver = connected_session(&addr, "rdpuser1", XRDP_BACKGROUND, "xrdp-logoff");
    let events = driver.client.log_off().expect("log off");
    assert!(events.iter().any(|e| matches!(e, Event::Send(_))), "a Shutdown Request is sent");
    driver.handle(events);
    let deadline = Instant::now() + Duration::from_secs(15);
    while driver.terminated.is_none() && Instant::now() < deadline {
        driver.pump_once().expect("session runs");
    }
    let reason = driver.terminated.clone().expect("the workstation answered the log off request");
    eprintln!("xrdp answered log off with: {reason}; session display now {:?}", session_display("rdpuser1"));
    assert!(!driver.client.is_active());
    // xrdp refuses while the user is signed in: the session stays for a later reattach.
    assert!(reason.contains("does not allow logging off"), "{reason}");
    assert!(session_display("rdpuser1").is_some(), "the xrdp session is still there");
}
// ---- The browser's drive through xrdp's chansrv (FUSE under ~/thinclient_drives), user rdpuser2 ------

/// Runs `script` with `sh -c` as `user` (the FUSE mount is only readable by its owner) while pumping
/// the connection: chansrv turns every file operation into requests to us. Returns (success, stdout).
fn run_in_session(driver: &mut Driver, user: &str, script: &str) -> (bool, String) {
    let mut child = std::process::Command::new("runuser")
        .args(["-u", user, "--", "sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runuser");
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        (out, err)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{script:?} did not finish within 120 s");
        }
        driver.pump_once().expect("session runs while the workstation uses the drive");
    }
    let status = child.wait().unwrap();
    let (out, err) = reader.join().unwrap();
    if !status.success() {
        eprintln!("{script:?} failed: {err}");
    }
    (status.success(), out)
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic bytes that are not all alike (a checksum of zeros proves little).
fn sample_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_drive_carries_files_both_ways_with_the_same_checksum() {
    let user = "rdpuser2";
    let drive = MemoryDrive::new();
    let config = DriveConfig::default();
    let upload = config.upload_folder.join("upload ü.bin").unwrap();
    let uploaded = sample_bytes(3 * 1024 * 1024 + 17, 7);
    drive.put(&upload, &uploaded);
    let mut backend = drive.clone();
    backend.mkdir(&config.download_folder).unwrap();
    // Reads and writes are answered later, as in the browser.
    let finished = FinishedIo::default();
    let later = LaterDrive { inner: drive.clone(), finished: finished.clone() };
    let devices = Devices { drive: Some((Box::new(later), config)), printer: false };
    let mut driver = Driver::connect_with(&testbed_addr("RDP_TESTBED_XRDP_ADDR"), params(user, &password(), None), devices);
    driver.finished_io = finished;
    wait_for_picture(&mut driver, XRDP_BACKGROUND, "xrdp-drive");

    // chansrv mounts the drive a moment after the session starts.
    let mount = format!("/home/{user}/thinclient_drives/Browser");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut listing = (false, String::new());
    while Instant::now() < deadline {
        listing = run_in_session(&mut driver, user, &format!("ls -la '{mount}' '{mount}/Uploads'"));
        if listing.0 {
            break;
        }
        driver.run_until(Duration::from_millis(500), |_| false).unwrap();
    }
    assert!(listing.0, "the drive did not appear under {mount}");
    eprintln!("the session sees the drive:\n{}", listing.1);
    assert!(listing.1.contains("upload ü.bin"), "the uploaded file is not listed: {}", listing.1);

    // Page → session: the session reads the uploaded file.
    let (ok, out) = run_in_session(&mut driver, user, &format!("sha256sum '{mount}/Uploads/upload ü.bin'"));
    assert!(ok, "the session cannot read the uploaded file");
    assert_eq!(out.split_whitespace().next(), Some(sha256(&uploaded).as_str()), "checksum in the session differs");

    // Session → page: a file written into the download folder is announced and arrives whole.
    let script = format!(
        "head -c 2500001 /dev/urandom > /tmp/homedesk-drive-test && cp /tmp/homedesk-drive-test '{mount}/Downloads/report.bin' \
         && sha256sum /tmp/homedesk-drive-test && rm /tmp/homedesk-drive-test"
    );
    let (ok, out) = run_in_session(&mut driver, user, &script);
    assert!(ok, "the session cannot write into the drive");
    let written_sum = out.split_whitespace().next().unwrap_or_default().to_owned();
    let announced = driver
        .run_until(Duration::from_secs(30), |d| d.downloads.iter().any(|(p, _)| p == "Downloads/report.bin"))
        .expect("session runs");
    assert!(announced, "no download announced; got {:?}", driver.downloads);
    let path = DrivePath::parse_slashed("Downloads/report.bin").unwrap();
    let received = drive.contents(&path).expect("the file is in the drive");
    assert_eq!(received.len(), 2_500_001);
    assert_eq!(sha256(&received), written_sum, "checksum of the downloaded file differs");
    let size = driver.downloads.iter().rev().find(|(p, _)| p == "Downloads/report.bin").map(|(_, s)| *s);
    assert_eq!(size, Some(2_500_001));

    // Hostile names from the session side are refused and leave nothing behind.
    for name in ["CON", "bad:name", "trailing."] {
        let (ok, _) = run_in_session(&mut driver, user, &format!("echo x > '{mount}/Downloads/{name}'"));
        assert!(!ok, "{name:?} was accepted");
    }
    let mut backend = drive.clone();
    let names: Vec<String> = backend
        .list(&DrivePath::parse_slashed("Downloads").unwrap())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["report.bin"]);
    eprintln!("drive: 3 MiB up and 2.5 MB down with equal SHA-256; hostile names refused");
    driver.shutdown();
}

/// 0.5 s of a 440 Hz sine at 44.1 kHz, stereo (right at half amplitude), interleaved.
fn tone() -> Vec<i16> {
    (0..22_050)
        .flat_map(|n| {
            let value = (2.0 * std::f64::consts::PI * 440.0 * f64::from(n) / 44_100.0).sin();
            [(value * 20_000.0) as i16, (value * 10_000.0) as i16]
        })
        .collect()
}

/// Plays `pcm` (44.1 kHz stereo) in the xrdp session on `display` the way pulseaudio-module-xrdp
/// does: into chansrv's audio socket, messages of {code 0, length} + PCM, then {code 1} (close).
/// Debian 12 ships no such module, so the test is the sound source.
fn play_in_session(display: &str, pcm: &[i16]) -> std::io::Result<()> {
    use std::os::unix::net::UnixStream;
    let number = display.trim_start_matches(':');
    let path = format!("/run/xrdp/sockdir/xrdp_chansrv_audio_out_socket_{number}");
    // chansrv listens once the channel is negotiated; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut socket = loop {
        match UnixStream::connect(&path) {
            Ok(socket) => break socket,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(error) => return Err(error),
        }
    };
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    for chunk in bytes.chunks(4096) {
        let mut message = Vec::with_capacity(chunk.len() + 8);
        message.extend_from_slice(&0u32.to_le_bytes());
        message.extend_from_slice(&(chunk.len() as u32 + 8).to_le_bytes());
        message.extend_from_slice(chunk);
        socket.write_all(&message)?;
        // About real time, as a sound server would send.
        std::thread::sleep(Duration::from_millis(20));
    }
    socket.write_all(&1u32.to_le_bytes())?;
    socket.write_all(&8u32.to_le_bytes())?;
    Ok(())
}

/// With sounds on, xrdp opens `rdpsnd` and takes one of our formats; a tone played in the session
/// (through chansrv's audio socket, see `play_in_session`) reaches the page as the same samples,
/// and the session works as before.
#[test]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
fn xrdp_plays_a_tone_that_arrives_as_the_same_samples() {
    let addr = testbed_addr("RDP_TESTBED_XRDP_ADDR");
    let mut driver = Driver::connect(&addr, ConnectParams { sounds: true, ..params("rdpuser1", &password(), None) });
    wait_for_picture(&mut driver, XRDP_BACKGROUND, "xrdp-sound");
    let agreed = driver.run_until(Duration::from_secs(20), |d| d.client.sound_format_agreed()).expect("session runs");
    assert!(agreed, "xrdp did not negotiate a sound format within 20 s of the desktop");

    // A known tone played in the session arrives as the very samples. chansrv sends only whole
    // 8 KiB blocks (the rest waits for more sound), so silence follows the tone to push it out.
    let display = session_display("rdpuser1").expect("the xrdp session's display");
    let tone = tone();
    let source = {
        let mut played = tone.clone();
        played.extend(std::iter::repeat_n(0i16, 44_100));
        std::thread::spawn(move || play_in_session(&display, &played))
    };
    let arrived = driver.run_until(Duration::from_secs(20), |d| d.audio.len() >= tone.len()).expect("session runs");
    source.join().expect("sound source").expect("chansrv's audio socket takes the tone");
    let (waves, received) = (driver.audio_formats.len(), driver.audio.len());
    let format = driver.audio_formats.first();
    eprintln!("sound: {waves} waves, {received} samples for a tone of {}, {format:?}", tone.len());
    assert!(arrived, "only {} of {} samples arrived", driver.audio.len(), tone.len());
    assert!(driver.audio_formats.iter().all(|&f| f == (44_100, 2)), "{:?}", driver.audio_formats);
    assert!(driver.audio[..tone.len()] == tone[..], "the samples differ from the tone played");
    assert!(driver.audio[tone.len()..].iter().all(|&s| s == 0), "the silence after the tone is not silent");

    // Typing still reaches the xterm with the sound channel open.
    driver.input(Input::MouseMove { x: 700, y: 150 });
    driver.input(Input::MouseButton { button: MouseButton::Left, pressed: true });
    driver.input(Input::MouseButton { button: MouseButton::Left, pressed: false });
    driver.run_until(Duration::from_millis(500), |_| false).unwrap();
    let before = driver.region(XTERM_REGION);
    for code in ["KeyE", "KeyC", "KeyH", "KeyO", "Enter"] {
        driver.type_key(code);
    }
    let changed =
        driver.run_until(Duration::from_secs(15), |d| d.region(XTERM_REGION) != before).expect("session runs");
    assert!(changed, "typing did not change the xterm");
    let events = driver.client.release_all().expect("release_all");
    driver.handle(events);
    driver.shutdown();
}
