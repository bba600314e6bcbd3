//! The X side of an xrdp session: its display and its CLIPBOARD selection through `xclip`, run as the
//! session's user, so tests check what an application inside the workstation session sees.

use anyhow::{bail, Context, Result};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// The X display (":10") of `user`'s xrdp session: the Xorg (xorgxrdp) or Xvnc server sesman started
/// for them, found through /proc.
pub fn session_display(user: &str) -> Result<String> {
    let uid = std::process::Command::new("id").args(["-u", user]).output()?;
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let owner = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next());
        if owner != Some(uid.as_str()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let program = args
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .unwrap_or_default();
        if program == "Xorg" || program == "Xvnc" {
            if let Some(display) = args
                .iter()
                .skip(1)
                .find(|a| a.starts_with(':') && a[1..].parse::<u32>().is_ok())
            {
                return Ok(display.clone());
            }
        }
    }
    bail!("no X server of an xrdp session of {user} found")
}

fn xclip(user: &str, display: &str, args: &[&str]) -> Command {
    let mut command = Command::new("runuser");
    command.args([
        "-u",
        user,
        "--",
        "env",
        &format!("DISPLAY={display}"),
        "xclip",
        "-selection",
        "clipboard",
    ]);
    command.args(args).kill_on_drop(true);
    command
}

/// Puts `text` on the session's clipboard (xclip stays in the background as the selection's owner).
pub async fn set_clipboard(user: &str, display: &str, text: &str) -> Result<()> {
    set_clipboard_as(user, display, "UTF8_STRING", text.as_bytes()).await
}

/// Puts `data` of an X target type (e.g. `image/bmp`) on the session's clipboard.
pub async fn set_clipboard_as(user: &str, display: &str, target: &str, data: &[u8]) -> Result<()> {
    let mut child = xclip(user, display, &["-t", target, "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(false)
        .spawn()
        .context("run xclip (installed with the testbed)")?;
    let mut stdin = child.stdin.take().context("xclip stdin")?;
    stdin.write_all(data).await?;
    drop(stdin);
    let status = child.wait().await?;
    if !status.success() {
        bail!("xclip -i failed: {status}");
    }
    Ok(())
}

/// The session's clipboard text (CRLF line ends, as CF_UNICODETEXT carries them, turned into LF; the
/// terminating NUL that xrdp 0.9 passes on for large texts removed).
pub async fn read_clipboard(user: &str, display: &str, timeout: Duration) -> Result<String> {
    let out = read_clipboard_as(user, display, "UTF8_STRING", timeout).await?;
    let text = String::from_utf8(out).context("the session's clipboard is not UTF-8")?;
    Ok(text.strip_suffix('\0').unwrap_or(&text).replace("\r\n", "\n"))
}

/// The session's clipboard as an X target type (e.g. `image/bmp`).
pub async fn read_clipboard_as(user: &str, display: &str, target: &str, timeout: Duration) -> Result<Vec<u8>> {
    let mut child = xclip(user, display, &["-t", target, "-o"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().context("xclip stdout")?;
    let mut out = Vec::new();
    tokio::time::timeout(timeout, stdout.read_to_end(&mut out))
        .await
        .context("xclip -o took too long")??;
    let status = tokio::time::timeout(timeout, child.wait())
        .await
        .context("xclip -o did not exit")??;
    if !status.success() {
        bail!("xclip -o -t {target} failed: {status}");
    }
    Ok(out)
}

/// An `xev` window inside the session: the X events an application there receives (keys with their
/// text, buttons 1–5), so tests check input where the user's applications see it.
pub struct Xev {
    _child: tokio::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

/// One X event xev reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XEvent {
    ButtonPress(u32),
    ButtonRelease(u32),
    /// Key press: keysym name (e.g. "a", "Tab", "Control_L"), modifier state bits, text it types.
    KeyPress { keysym: String, state: u32, text: String },
    Other,
}

impl Xev {
    /// Opens an xev window at (x, y) of size w x h on `display`, as `user`.
    pub async fn start(user: &str, display: &str, (x, y, w, h): (u32, u32, u32, u32)) -> Result<Xev> {
        let mut child = Command::new("runuser")
            .args(["-u", user, "--", "env", &format!("DISPLAY={display}"), "stdbuf", "-oL", "xev"])
            .args(["-geometry", &format!("{w}x{h}+{x}+{y}"), "-event", "keyboard", "-event", "button"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("run xev (x11-utils, installed with the testbed)")?;
        let stdout = child.stdout.take().context("xev stdout")?;
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = output.clone();
        tokio::spawn(async move {
            let mut stdout = stdout;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Ok(Xev { _child: child, output })
    }

    /// Everything xev printed so far, as events.
    pub fn events(&self) -> Vec<XEvent> {
        let text = self.output.lock().map(|t| t.clone()).unwrap_or_default();
        text.split("\n\n").map(parse_event).collect()
    }

    /// The button presses so far with where they happened on the session's screen (xev's `root:(x,y)`):
    /// (button, x, y) in desktop pixels.
    pub fn presses_at(&self) -> Vec<(u32, i32, i32)> {
        let text = self.output.lock().map(|t| t.clone()).unwrap_or_default();
        text.split("\n\n")
            .filter_map(|block| {
                let block = block.trim_start();
                let XEvent::ButtonPress(button) = parse_event(block) else { return None };
                let root = &block[block.find("root:(")? + "root:(".len()..];
                let (x, rest) = root.split_once(',')?;
                let y = rest.split(')').next()?;
                Some((button, x.trim().parse().ok()?, y.trim().parse().ok()?))
            })
            .collect()
    }

    /// Forgets the events so far (the next `events` starts after them).
    pub fn clear(&self) {
        if let Ok(mut text) = self.output.lock() {
            text.clear();
        }
    }

    /// The text the key presses so far typed (BackSpace erases, Return is `\n`, Tab is `\t`).
    pub fn typed_text(&self) -> String {
        let mut typed = String::new();
        for event in self.events() {
            if let XEvent::KeyPress { keysym, text, .. } = event {
                match keysym.as_str() {
                    "BackSpace" => {
                        typed.pop();
                    }
                    "Return" => typed.push('\n'),
                    "Tab" => typed.push('\t'),
                    _ => typed.extend(text.chars().filter(|c| !c.is_control())),
                }
            }
        }
        typed
    }
}

fn parse_event(block: &str) -> XEvent {
    let block = block.trim_start();
    let number_after = |label: &str| -> Option<&str> {
        let start = block.find(label)? + label.len();
        block[start..].split(|c: char| c == ',' || c.is_whitespace()).next()
    };
    if block.starts_with("ButtonPress") || block.starts_with("ButtonRelease") {
        let button = number_after("button ").and_then(|b| b.parse().ok()).unwrap_or(0);
        return if block.starts_with("ButtonPress") { XEvent::ButtonPress(button) } else { XEvent::ButtonRelease(button) };
    }
    if block.starts_with("KeyPress") {
        let state = number_after("state 0x").and_then(|s| u32::from_str_radix(s, 16).ok()).unwrap_or(0);
        let keysym = block
            .find("(keysym 0x")
            .and_then(|i| block[i..].split_once(", "))
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(name, _)| name.to_owned())
            .unwrap_or_default();
        let text = block
            .lines()
            .find(|l| l.trim_start().starts_with("XLookupString gives"))
            .and_then(|l| l.get(l.find('"')? + 1..l.rfind('"')?))
            .unwrap_or_default()
            .to_owned();
        return XEvent::KeyPress { keysym, state, text };
    }
    XEvent::Other
}
