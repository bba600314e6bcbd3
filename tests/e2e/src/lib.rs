//! Harness for the end-to-end tests: a real relay process, real RDP servers (the testbed) and headless
//! Chromium driven through WebDriver, asserting on what a person sees (DOM text, canvas pixels,
//! screenshots kept as artefacts).

pub mod browser;
pub mod relay;
pub mod session_x;

use anyhow::{bail, Context, Result};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// An environment variable that `cargo xtask test` sets; missing means the test was run the wrong way.
pub fn required_env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set: run the end-to-end tests with `cargo xtask test`"))
}

pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("HOMEDESK_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| "/tmp/homedesk-artifacts".into());
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A free TCP port on loopback (bound, then released for the child process to take).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Polls `probe` until it returns `Some`, or fails with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() >= deadline {
            match last_error {
                Some(error) => bail!("timed out after {timeout:?} waiting for {what}: {error:#}"),
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An RGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub fn from_hex(hex: &str) -> Rgb {
        let hex = hex.trim_start_matches('#');
        let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
        Rgb(channel(0), channel(2), channel(4))
    }

    pub fn near(self, other: Rgb, tolerance: u8) -> bool {
        self.0.abs_diff(other.0) <= tolerance && self.1.abs_diff(other.1) <= tolerance && self.2.abs_diff(other.2) <= tolerance
    }
}

/// The testbed's known picture: sample points and the colours a person would see there.
pub fn known_picture(background: Rgb) -> Vec<((u32, u32), Rgb)> {
    vec![
        ((50, 50), background),
        ((180, 160), Rgb(255, 0, 0)),
        ((340, 160), Rgb(0, 255, 0)),
        ((180, 280), Rgb(0, 0, 255)),
        ((340, 280), Rgb(255, 255, 255)),
    ]
}
