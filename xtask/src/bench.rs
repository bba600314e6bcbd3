//! `cargo xtask bench`: builds the relay in release mode and runs `homedesk-bench` (bench/), which
//! measures the relay's pipe against direct TCP, websockify and socat and prints one markdown table
//! (also written to `~/.cache/homedesk/bench/latest.md`). Takes a few minutes; not part of `test`.

use crate::shell;
use anyhow::Result;

pub fn bench() -> Result<()> {
    shell::run(shell::host_cargo().args(["build", "--release", "--quiet", "-p", "homedesk-relay", "--bin", "relay"]))?;
    shell::run(shell::host_cargo().args(["run", "--release", "--quiet", "-p", "homedesk-bench"]))
}
