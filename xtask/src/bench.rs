//! `cargo xtask bench`: builds the relay in release mode and runs `homedesk-bench` (bench/), which
//! measures the relay's pipe against direct TCP, websockify and socat, then floods the brute-force
//! limiter with a million failed sign-ins from distinct addresses (`bench/src/limiter.rs`;
//! `HOMEDESK_BENCH_FLOOD=N` changes its size, `HOMEDESK_BENCH_ONLY=limiter` runs only that part), and
//! prints one markdown table (also written to `~/.cache/homedesk/bench/latest.md`). Takes a few
//! minutes; not part of `test`.

use crate::shell;
use anyhow::Result;

pub fn bench() -> Result<()> {
    shell::run(shell::host_cargo().args(["build", "--release", "--quiet", "-p", "homedesk-relay", "--bin", "relay"]))?;
    shell::run(shell::host_cargo().args(["run", "--release", "--quiet", "-p", "homedesk-bench"]))
}
