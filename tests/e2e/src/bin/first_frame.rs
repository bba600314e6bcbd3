//! `first-frame`: the client half of `cargo xtask bench`. Time from the portal's Sign in click to the
//! workstation's desktop on the canvas, in headless Chromium through the relay, against native xfreerdp
//! from its start to the same desktop in its window, both against the testbed's xrdp, in alternating
//! rounds of the same run. Not a test: it asserts nothing; it writes the figures as JSON for the bench's
//! table (`--out FILE`) and prints them.
//!
//! "The desktop is there" means the same thing for both: the testbed's background colour at desktop
//! pixel (50, 50). In the browser a `requestAnimationFrame` loop started right before the click reads
//! that canvas pixel (what a person could see at that frame); for xfreerdp `xwd` reads the pixel off
//! the client's X display in a loop. Both reattach the same xrdp session (a warm-up round made it) at
//! the same desktop size, so neither pays for starting a new X session.

use anyhow::{bail, Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::{required_env, Rgb};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "rdpuser2";
/// Lossy codecs shift colours a little (testbed README).
const TOLERANCE: u8 = 8;
const ROUNDS: usize = 5;
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("first-frame: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let out = out_path()?;
    let addr = required_env("RDP_TESTBED_XRDP_ADDR")?;
    let password = required_env("RDP_TEST_PASSWORD")?;
    let background = Rgb::from_hex(&required_env("RDP_TESTBED_XRDP_BG")?);
    let (_xvfb, display) = Xvfb::start()?;

    let mut relay = Relay::new()?;
    relay.add_user(USER, &password)?;
    relay.add_workstation("Office PC", &addr)?;
    relay.assign(USER, "Office PC")?;
    relay.serve().await?;

    eprintln!("first-frame: warm-up (the xrdp session of {USER} exists afterwards)");
    let (_, size) = browser_round(&relay, &password, background).await.context("browser warm-up")?;
    xfreerdp_round(&addr, &password, size, &display, background).context("xfreerdp warm-up")?;

    let (mut browser_ms, mut native_ms) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (ms, _) = browser_round(&relay, &password, background).await.with_context(|| format!("browser round {round}"))?;
        browser_ms.push(ms);
        let native = xfreerdp_round(&addr, &password, size, &display, background)
            .with_context(|| format!("xfreerdp round {round}"))?;
        native_ms.push(native);
        eprintln!("first-frame: round {round}: browser {ms:.0} ms, xfreerdp {native:.0} ms");
    }
    let figures = json!({
        "rounds": ROUNDS,
        "desktop": [size.0, size.1],
        "browser_ms": browser_ms,
        "xfreerdp_ms": native_ms,
        "xfreerdp_version": xfreerdp_version(&display),
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&figures)?).with_context(|| format!("cannot write {out}"))?;
    println!("{figures}");
    Ok(())
}

fn out_path() -> Result<String> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--out"), Some(path)) => Ok(path),
        _ => bail!("usage: first-frame --out FILE.json"),
    }
}

/// A fresh browser signs in (the form filled before the clock starts); returns the milliseconds from the
/// click to the desktop's background on the canvas, and the canvas size.
async fn browser_round(relay: &Relay, password: &str, background: Rgb) -> Result<(f64, (u32, u32))> {
    let browser = Browser::start(1024, 768).await?;
    let result = async {
        browser.goto(&relay.url()).await?;
        browser.type_into("login-username", USER).await?;
        browser.type_into("login-password", password).await?;
        let script = r#"
            const [bg, tolerance, limitMs] = arguments;
            const t0 = performance.now();
            document.querySelector('[data-testid="login-submit"]').click();
            return await new Promise((resolve, reject) => {
                const near = (a, b) => Math.abs(a - b) <= tolerance;
                const poll = () => {
                    const canvas = document.querySelector('[data-testid="desktop-canvas"]');
                    if (canvas && canvas.width > 50 && canvas.height > 50) {
                        const d = canvas.getContext('2d').getImageData(50, 50, 1, 1).data;
                        if (near(d[0], bg[0]) && near(d[1], bg[1]) && near(d[2], bg[2])) {
                            return resolve([performance.now() - t0, canvas.width, canvas.height]);
                        }
                    }
                    if (performance.now() - t0 > limitMs) return reject('no desktop within the limit');
                    requestAnimationFrame(poll);
                };
                requestAnimationFrame(poll);
            });"#;
        let args = vec![json!([background.0, background.1, background.2]), json!(TOLERANCE), json!(LIMIT.as_millis() as u64)];
        let value = browser.run_async(script, args).await?;
        let number = |i: usize| value.get(i).and_then(|v| v.as_f64()).context("malformed figures from the page");
        Ok((number(0)?, (number(1)? as u32, number(2)? as u32)))
    }
    .await;
    browser.close().await?;
    result
}

/// Starts xfreerdp at the browser's desktop size; returns the milliseconds from its start to the
/// desktop's background in its window (read off the X display).
fn xfreerdp_round(addr: &str, password: &str, (width, height): (u32, u32), display: &str, background: Rgb) -> Result<f64> {
    let blank = Command::new("xsetroot").args(["-display", display, "-solid", "black"]).status()?;
    if !blank.success() {
        bail!("xsetroot failed on {display}");
    }
    if pixel(display, 50, 50)?.near(background, TOLERANCE) {
        bail!("the display already shows the desktop colour");
    }
    let start = Instant::now();
    let mut client = Command::new("xfreerdp")
        .env("DISPLAY", display)
        .args([
            format!("/v:{addr}"),
            format!("/u:{USER}"),
            format!("/p:{password}"),
            "/cert:ignore".into(),
            format!("/size:{width}x{height}"),
            "/bpp:32".into(),
            "-grab-keyboard".into(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start xfreerdp")?;
    let outcome = loop {
        if pixel(display, 50, 50)?.near(background, TOLERANCE) {
            break Ok(start.elapsed().as_secs_f64() * 1e3);
        }
        if let Some(status) = client.try_wait()? {
            break Err(anyhow::anyhow!("xfreerdp exited ({status}) before the desktop showed"));
        }
        if start.elapsed() > LIMIT {
            break Err(anyhow::anyhow!("no desktop within {LIMIT:?}"));
        }
    };
    let _ = client.kill();
    let _ = client.wait();
    outcome
}

/// The colour at (x, y) of the X display's root window, from `xwd` (a ZPixmap dump, big-endian header).
fn pixel(display: &str, x: u32, y: u32) -> Result<Rgb> {
    let output = Command::new("xwd").args(["-root", "-silent", "-display", display]).output().context("cannot run xwd")?;
    if !output.status.success() {
        bail!("xwd failed on {display}");
    }
    xwd_pixel(&output.stdout, x, y)
}

fn xwd_pixel(dump: &[u8], x: u32, y: u32) -> Result<Rgb> {
    let field = |i: usize| -> Result<u32> {
        let bytes = dump.get(i * 4..i * 4 + 4).context("short xwd header")?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    let (header_size, byte_order, bits_per_pixel, bytes_per_line) = (field(0)?, field(7)?, field(11)?, field(12)?);
    let (red_mask, green_mask, blue_mask, colours) = (field(14)?, field(15)?, field(16)?, field(19)?);
    if bits_per_pixel != 32 {
        bail!("xwd: {bits_per_pixel} bits per pixel, expected 32");
    }
    let start = header_size as usize + colours as usize * 12 + y as usize * bytes_per_line as usize + x as usize * 4;
    let bytes: [u8; 4] = dump.get(start..start + 4).context("xwd: pixel outside the dump")?.try_into()?;
    let value = if byte_order == 0 { u32::from_le_bytes(bytes) } else { u32::from_be_bytes(bytes) };
    let channel = |mask: u32| ((value & mask) >> mask.trailing_zeros()) as u8;
    Ok(Rgb(channel(red_mask), channel(green_mask), channel(blue_mask)))
}

/// A private X display for xfreerdp (1024x768x24, killed on drop).
struct Xvfb(std::process::Child);

impl Xvfb {
    fn start() -> Result<(Xvfb, String)> {
        use std::io::BufRead;
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start Xvfb (apt-get install xvfb)")?;
        let stdout = child.stdout.take().context("Xvfb stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let number: u32 = line.trim().parse().with_context(|| format!("Xvfb printed no display number: {line:?}"))?;
        Ok((Xvfb(child), format!(":{number}")))
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn xfreerdp_version(display: &str) -> String {
    Command::new("xfreerdp")
        .env("DISPLAY", display)
        .arg("/version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_owned())
        .unwrap_or_default()
}
