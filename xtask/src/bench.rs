//! `cargo xtask bench`: one table of speed figures, each beside a peer measured in the same run.
//!
//! 1. The client half (`tests/e2e/src/bin/first_frame.rs`): the client is built, the RDP testbed
//!    started, and headless Chromium's Sign in click → desktop on the canvas is timed against native
//!    xfreerdp's start → desktop, both against the testbed's xrdp. Skipped with a note (not an error)
//!    when Chromium or the testbed cannot run, so the relay half still runs on a bare machine.
//! 2. `homedesk-bench` (bench/): the relay's pipe against direct TCP, websockify and socat, concurrent
//!    sessions, full sign-ins at 50/s, the client bundle's size, then the brute-force limiter's flood
//!    (`HOMEDESK_BENCH_FLOOD=N` changes its size); it adds the client half's rows from step 1 and prints
//!    the table (also written to `~/.cache/homedesk/bench/latest.md`). Not part of `test`.
//!    Before it, the decode and paint part: `homedesk-bench record` records FreeRDP's shadow server at
//!    1920×1080 in RemoteFX, planar and interleaved bitmaps, and `replay` (tests/e2e) replays the
//!    recordings in headless Chromium with the replay page (`replay.html`); the bench replays them
//!    natively and puts both side by side. Skipped with a note when that cannot run.

use crate::{paths, shell, toolchain};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn bench() -> Result<()> {
    shell::run(shell::host_cargo().args(["build", "--release", "--quiet", "-p", "homedesk-relay", "--bin", "relay"]))?;
    let relay = paths::host_target().join("release").join("relay");
    let figures = paths::cache().join("bench").join("first-frame.json");
    let _ = std::fs::remove_file(&figures); // never report an earlier run's figures
    let mut bench = shell::host_cargo();
    bench.args(["run", "--release", "--quiet", "-p", "homedesk-bench"]);
    match first_frame(&relay, &figures) {
        Ok(dist) => {
            bench.env("HOMEDESK_BENCH_FIRST_FRAME", &figures).env("HOMEDESK_DIST", dist);
        }
        Err(error) => eprintln!("xtask: the client half of the bench did not run: {error:#}"),
    }
    let bench_dir = paths::cache().join("bench");
    let (recordings, replay) = (bench_dir.join("recordings"), bench_dir.join("replay.json"));
    let _ = std::fs::remove_file(&replay);
    match decode_and_paint(&recordings, &replay) {
        Ok(()) => {
            bench.env("HOMEDESK_BENCH_RECORDINGS", &recordings).env("HOMEDESK_BENCH_REPLAY", &replay);
        }
        Err(error) => eprintln!("xtask: the decode and paint part of the bench did not run: {error:#}"),
    }
    shell::run(&mut bench)
}

/// Records the workstation in each encoding (`homedesk-bench record`, release) and replays the
/// recordings in headless Chromium (`replay`, with the replay page's own wasm build); the bench then
/// replays them natively and compares.
fn decode_and_paint(recordings: &Path, figures: &Path) -> Result<()> {
    let exports = shell::output(Command::new("bash").arg(paths::testbed_script()).arg("env"))?;
    shell::run(
        shell::host_cargo()
            .args(["run", "--release", "--quiet", "-p", "homedesk-bench", "--", "record"])
            .arg(recordings)
            .envs(crate::test::parse_exports(&exports)),
    )?;
    let page = paths::cache().join("bench").join("replay-page");
    toolchain::build_replay_page(&page)?;
    shell::run(
        shell::host_cargo()
            .args(["run", "--quiet", "-p", "homedesk-e2e", "--bin", "replay", "--", "--page"])
            .arg(&page)
            .arg("--recordings")
            .arg(recordings)
            .arg("--out")
            .arg(figures)
            .env("HOMEDESK_ARTIFACTS", paths::artifacts()),
    )
}

/// Builds the client, starts the testbed and runs `first-frame`; returns the client's directory.
fn first_frame(relay: &Path, figures: &Path) -> Result<PathBuf> {
    toolchain::install(true)?;
    let dist = toolchain::build_client()?;
    let testbed = paths::testbed_script();
    shell::run(Command::new("bash").arg(&testbed).arg("up"))?;
    let exports = shell::output(Command::new("bash").arg(&testbed).arg("env"))?;
    std::fs::create_dir_all(figures.parent().unwrap_or(Path::new(".")))?;
    shell::run(
        shell::host_cargo()
            .args(["run", "--quiet", "-p", "homedesk-e2e", "--bin", "first_frame", "--", "--out"])
            .arg(figures)
            .envs(crate::test::parse_exports(&exports))
            .env("HOMEDESK_RELAY_BIN", relay)
            .env("HOMEDESK_WEB_ROOT", &dist)
            .env("HOMEDESK_ARTIFACTS", paths::artifacts()),
    )?;
    Ok(dist)
}
