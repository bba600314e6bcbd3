//! `cargo xtask test` (≡ `ci`): every test, in the order that fails fastest.
//!
//! 1. toolchain and browser installed, client and relay built;
//! 2. host unit and integration tests (client core, relay) — no external services;
//! 3. the shared RDP testbed started (xrdp with TLS, freerdp-shadow with NLA);
//! 4. the client core against the real servers, natively;
//! 5. headless Chromium through WebDriver: portal login to desktop pixels, against both servers.

use crate::{paths, run, shell, toolchain};
use anyhow::{Context, Result};
use std::process::Command;

pub fn test() -> Result<()> {
    toolchain::install(true)?;
    let web_root = toolchain::build_client()?;
    let relay = run::build_relay()?;
    let artifacts = paths::artifacts();
    std::fs::create_dir_all(&artifacts)?;

    step("unit and relay integration tests");
    shell::run(shell::host_cargo().args(["test", "--workspace", "--exclude", "homedesk-e2e"]))?;

    step("RDP testbed");
    let testbed = paths::testbed_script();
    shell::run(Command::new("bash").arg(&testbed).arg("up"))
        .with_context(|| format!("the RDP testbed ({}) did not start", testbed.display()))?;
    let testbed_env = parse_exports(&shell::output(Command::new("bash").arg(&testbed).arg("env"))?);

    step("client core against real RDP servers");
    shell::run(
        shell::host_cargo()
            .args(["test", "-p", "homedesk-client-core", "--test", "real_servers", "--", "--ignored", "--test-threads=1"])
            .envs(testbed_env.iter().cloned())
            .env("HOMEDESK_ARTIFACTS", &artifacts),
    )?;

    step("browser end to end");
    shell::run(
        shell::host_cargo()
            .args(["test", "-p", "homedesk-e2e", "--", "--test-threads=1"])
            .envs(testbed_env.iter().cloned())
            .env("HOMEDESK_RELAY_BIN", &relay)
            .env("HOMEDESK_WEB_ROOT", &web_root)
            .env("HOMEDESK_ARTIFACTS", &artifacts),
    )?;
    println!("\nall tests passed; screenshots in {}", artifacts.display());
    Ok(())
}

fn step(name: &str) {
    println!("\n==== {name}");
}

/// `export NAME=value` lines (values optionally single- or double-quoted) as pairs.
fn parse_exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(name, value)| {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(value);
            (name.to_owned(), unquoted.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_exports;

    #[test]
    fn parses_testbed_exports() {
        let pairs = parse_exports("export A=1:2\nexport B='x y'\n# comment\nexport C=\"z\"\nnoise\n");
        assert_eq!(
            pairs,
            vec![("A".into(), "1:2".into()), ("B".into(), "x y".into()), ("C".into(), "z".into())]
        );
    }
}
