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

fn xclip(user: &str, display: &str, direction: &str) -> Command {
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
    command.arg(direction).kill_on_drop(true);
    command
}

/// Puts `text` on the session's clipboard (xclip stays in the background as the selection's owner).
pub async fn set_clipboard(user: &str, display: &str, text: &str) -> Result<()> {
    let mut child = xclip(user, display, "-i")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(false)
        .spawn()
        .context("run xclip (installed with the testbed)")?;
    let mut stdin = child.stdin.take().context("xclip stdin")?;
    stdin.write_all(text.as_bytes()).await?;
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
    let mut child = xclip(user, display, "-o")
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
        bail!("xclip -o failed: {status}");
    }
    let text = String::from_utf8(out).context("the session's clipboard is not UTF-8")?;
    Ok(text.strip_suffix('\0').unwrap_or(&text).replace("\r\n", "\n"))
}
