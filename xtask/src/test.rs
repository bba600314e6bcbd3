//! `cargo xtask test` (≡ `ci`): every test, in the order that fails fastest.
//!
//! 1. toolchain and browser installed, client and relay built;
//! 2. host unit and integration tests (client core, relay on SQLite) — the relay's directory tests start
//!    their own throwaway slapd (scripts/slapd.sh); then the relay's integration tests again on a
//!    throwaway PostgreSQL cluster (scripts/postgres.sh);
//! 3. the shared RDP testbed started (xrdp with TLS, freerdp-shadow with NLA);
//! 4. the client core against the real servers, natively, and xfreerdp through the relay's port;
//! 5. headless Chromium through WebDriver: portal login to desktop pixels, against both servers.

use crate::{paths, run, shell, toolchain};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

pub fn test() -> Result<()> {
    toolchain::install(true)?;
    let web_root = toolchain::build_client()?;
    let relay = run::build_relay()?;
    let artifacts = paths::artifacts();
    std::fs::create_dir_all(&artifacts)?;

    let mut tally = Tally::default();
    step("unit and relay integration tests");
    tally.run(shell::host_cargo().args(["test", "--workspace", "--exclude", "homedesk-e2e"]))?;

    step("relay integration tests on PostgreSQL");
    // A cluster of this run's own (not the default one developers' test runs share), so that
    // stopping it at the end disturbs nobody.
    let postgres_dir = std::env::temp_dir().join(format!("homedesk-postgres-xtask-{}", std::process::id()));
    let postgres = |action: &str| {
        let mut command = Command::new("bash");
        command.arg(paths::postgres_script()).arg(action).env("HOMEDESK_PG_DIR", &postgres_dir);
        command
    };
    if let Err(error) = shell::run(&mut postgres("start")) {
        let _ = shell::run(&mut postgres("stop")); // leaves no half-made cluster behind
        return Err(error.context("the throwaway PostgreSQL cluster (scripts/postgres.sh) did not start"));
    }
    let postgres_url = shell::output(&mut postgres("url"))?;
    let postgres_ca = shell::output(&mut postgres("ca"))?;
    let postgres_run = tally.run(
        shell::host_cargo()
            // PostgreSQL-only tests are ignored in the SQLite pass above and run here.
            .args(["test", "-p", "homedesk-relay", "--test", "integration", "--", "--include-ignored"])
            .env("HOMEDESK_TEST_POSTGRES_URL", postgres_url.trim())
            .env("HOMEDESK_TEST_POSTGRES_CA", postgres_ca.trim()),
    );
    // The cluster is throwaway (one schema per test): drop it whatever the result.
    let _ = shell::run(&mut postgres("stop"));
    postgres_run?;

    step("RDP testbed");
    let testbed = paths::testbed_script();
    shell::run(Command::new("bash").arg(&testbed).arg("up"))
        .with_context(|| format!("the RDP testbed ({}) did not start", testbed.display()))?;
    let testbed_env = parse_exports(&shell::output(Command::new("bash").arg(&testbed).arg("env"))?);

    step("client core against real RDP servers");
    tally.run(
        shell::host_cargo()
            .args(["test", "-p", "homedesk-client-core", "--test", "real_servers", "--", "--ignored", "--test-threads=1"])
            .envs(testbed_env.iter().cloned())
            .env("HOMEDESK_ARTIFACTS", &artifacts),
    )?;

    step("native RDP clients (xfreerdp) through the relay's port");
    tally.run(
        shell::host_cargo()
            .args(["test", "-p", "homedesk-relay", "--test", "native_testbed", "--", "--ignored", "--test-threads=1"])
            .envs(testbed_env.iter().cloned()),
    )?;

    step("browser end to end");
    tally.run(
        shell::host_cargo()
            .args(["test", "-p", "homedesk-e2e", "--", "--test-threads=1"])
            .envs(testbed_env.iter().cloned())
            .env("HOMEDESK_RELAY_BIN", &relay)
            .env("HOMEDESK_WEB_ROOT", &web_root)
            .env("HOMEDESK_ARTIFACTS", &artifacts),
    )?;
    println!("\nscreenshots in {}", artifacts.display());
    // The tests ignored in the first step are the real-server ones, run in the third.
    println!("xtask: {} passed, {} failed", tally.passed, tally.failed);
    Ok(())
}

/// Sums cargo's `test result:` lines over every step, so the run ends with one honest total.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    /// Runs a `cargo test`, echoing its output, and adds up its results; fails if it fails.
    fn run(&mut self, command: &mut Command) -> Result<()> {
        let mut child = command.stdout(Stdio::piped()).spawn().context("cannot start cargo test")?;
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines() {
                let line = line?;
                println!("{line}");
                if let Some((passed, failed)) = parse_result(&line) {
                    self.passed += passed;
                    self.failed += failed;
                }
            }
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("cargo test failed ({status})");
        }
        Ok(())
    }
}

/// `test result: ok. 36 passed; 0 failed; 5 ignored; ...` → (36, 0).
fn parse_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let count = |label: &str| {
        rest.split(';').find_map(|part| part.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. ").strip_suffix(label)?.trim().parse().ok())
    };
    Some((count(" passed")?, count(" failed")?))
}

fn step(name: &str) {
    println!("\n==== {name}");
}

/// `export NAME=value` lines (values optionally single- or double-quoted) as pairs.
pub fn parse_exports(text: &str) -> Vec<(String, String)> {
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
    use super::{parse_exports, parse_result};

    #[test]
    fn parses_cargo_test_results() {
        assert_eq!(parse_result("test result: ok. 36 passed; 0 failed; 5 ignored; 0 measured; 0 filtered out"), Some((36, 0)));
        assert_eq!(parse_result("test result: FAILED. 7 passed; 1 failed; 0 ignored"), Some((7, 1)));
        assert_eq!(parse_result("running 3 tests"), None);
    }

    #[test]
    fn parses_testbed_exports() {
        let pairs = parse_exports("export A=1:2\nexport B='x y'\n# comment\nexport C=\"z\"\nnoise\n");
        assert_eq!(
            pairs,
            vec![("A".into(), "1:2".into()), ("B".into(), "x y".into()), ("C".into(), "z".into())]
        );
    }
}
