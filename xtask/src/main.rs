//! `cargo xtask`: the one entry point for setting up, building, running and testing Homedesk.
//!
//! It exists so that a fresh machine needs exactly one command for each job (README), and so that CI
//! runs the very same steps as a developer (`.ci/run` calls `cargo xtask test`).

mod bench;
mod paths;
mod run;
mod shell;
mod test;
mod toolchain;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

  run [--demo] [-- relay serve options]
                 install what is missing, build the client and the relay, start Homedesk on its
                 embedded defaults (SQLite, self-signed HTTPS); --demo also starts a demo
                 workstation (xrdp on loopback) assigned to a demo user and prints its login
  test           everything CI runs: unit, relay integration, real RDP servers, browser end to end
  ci             same as test
  setup          install the toolchain and test tools (Debian wasm toolchain, trunk, wasm-bindgen,
                 Chromium, chromedriver, oathtool)
  client         build the browser client into the cache's dist directory
  bench          benchmark the relay's pipe against direct TCP, websockify and socat (a few
                 minutes; prints a table, also written to ~/.cache/homedesk/bench/latest.md)
";

fn main() {
    if let Err(error) = dispatch() {
        eprintln!("xtask: error: {error:#}");
        std::process::exit(1);
    }
}

fn dispatch() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => {
            print!("{USAGE}");
            return Ok(());
        }
    };
    match command {
        "run" => run::run(rest),
        "test" | "ci" => test::test(),
        "setup" => toolchain::install(true),
        "bench" => bench::bench(),
        "client" => toolchain::build_client().map(|dist| println!("client built into {}", dist.display())),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}
