//! Running child processes with clear errors: every failure names the command that failed.

use anyhow::{bail, Context, Result};
use std::process::{Command, Output};

/// Runs the command, inheriting stdio, and fails if it exits non-zero.
pub fn run(command: &mut Command) -> Result<()> {
    let status = command.status().with_context(|| format!("cannot start {}", describe(command)))?;
    if !status.success() {
        bail!("{} failed ({status})", describe(command));
    }
    Ok(())
}

/// Runs the command and returns its stdout; fails with its stderr if it exits non-zero.
pub fn output(command: &mut Command) -> Result<String> {
    let Output { status, stdout, stderr } =
        command.output().with_context(|| format!("cannot start {}", describe(command)))?;
    if !status.success() {
        bail!("{} failed ({status}): {}", describe(command), String::from_utf8_lossy(&stderr).trim());
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    format!("`{text}`")
}

/// A `cargo` of rustup's toolchain for the host crates, with the shared target dir outside the clone.
pub fn host_cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(crate::paths::root()).env("CARGO_TARGET_DIR", crate::paths::host_target());
    command
}
