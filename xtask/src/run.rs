//! `cargo xtask run [--demo]`: from a fresh machine to a running portal in one command.

use crate::{paths, shell, toolchain};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DEMO_USER: &str = "homedesk-demo";
const DEMO_WORKSTATION: &str = "Demo workstation";

pub fn run(args: &[String]) -> Result<()> {
    let (ours, relay_args) = match args.iter().position(|arg| arg == "--") {
        Some(split) => (&args[..split], &args[split + 1..]),
        None => (args, &[][..]),
    };
    let mut demo = false;
    for arg in ours {
        match arg.as_str() {
            "--demo" => demo = true,
            other => bail!("unknown option `{other}` (relay options go after `--`)"),
        }
    }

    toolchain::install(false)?;
    let web_root = toolchain::build_client()?;
    let relay = build_relay()?;
    let data_dir = data_dir();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;

    let demo_login = if demo { Some(start_demo(&relay, &data_dir)?) } else { None };

    let mut serve = relay_command(&relay, &data_dir);
    serve.arg("serve").arg("--web-root").arg(&web_root).args(relay_args);
    if let Some((user, password)) = &demo_login {
        println!("Demo login: {user} / {password}  (a desktop on the demo workstation)");
    }
    println!("Data directory: {}   (stop with Ctrl+C)", data_dir.display());
    shell::run(&mut serve)
}

/// Builds the relay (dev profile with optimised dependencies: the same build the tests use).
pub fn build_relay() -> Result<PathBuf> {
    shell::run(shell::host_cargo().args(["build", "--quiet", "-p", "homedesk-relay", "--bin", "relay"]))?;
    Ok(paths::host_target().join("debug").join("relay"))
}

pub fn relay_command(relay: &Path, data_dir: &Path) -> Command {
    let mut command = Command::new(relay);
    command.arg("--data-dir").arg(data_dir);
    command
}

fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HOMEDESK_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local").join("share").join("homedesk")
}

/// Starts the demo workstation and registers it for the demo user; returns the demo login.
fn start_demo(relay: &Path, data_dir: &Path) -> Result<(String, String)> {
    let password = demo_password(data_dir)?;
    let script = paths::root().join("scripts").join("demo-workstation.sh");
    let out = shell::output(
        Command::new("bash").arg(script).arg("up").env("DEMO_USER", DEMO_USER).env("DEMO_PASSWORD", &password),
    )?;
    let addr = out
        .lines()
        .find_map(|line| line.strip_prefix("DEMO_ADDR="))
        .context("demo workstation did not report its address")?;
    let (host, port) = addr.rsplit_once(':').context("malformed demo workstation address")?;

    let mut add_user = relay_command(relay, data_dir);
    add_user.args(["user", "add", DEMO_USER, "--password-stdin"]);
    run_idempotent_with_stdin(&mut add_user, &password)?;
    // The account may already exist from an earlier run: make its password the demo password again.
    let mut passwd = relay_command(relay, data_dir);
    passwd.args(["user", "passwd", DEMO_USER, "--password-stdin"]);
    run_idempotent_with_stdin(&mut passwd, &password)?;
    run_idempotent(relay_command(relay, data_dir).args(["workstation", "add", DEMO_WORKSTATION, "--host", host, "--port", port]))?;
    run_idempotent(relay_command(relay, data_dir).args(["assign", DEMO_USER, DEMO_WORKSTATION]))?;
    Ok((DEMO_USER.to_owned(), password))
}

/// The demo password is generated once and kept in the data directory, so every run prints the same.
fn demo_password(data_dir: &Path) -> Result<String> {
    let file = data_dir.join("demo-password");
    if let Ok(existing) = std::fs::read_to_string(&file) {
        if !existing.trim().is_empty() {
            return Ok(existing.trim().to_owned());
        }
    }
    let mut bytes = [0u8; 12];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let password: String = bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    std::fs::write(&file, &password).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(password)
}

/// Runs a relay CLI command whose "already exists" failure is fine on a second run.
fn run_idempotent(command: &mut Command) -> Result<()> {
    match shell::output(command) {
        Ok(_) => Ok(()),
        Err(error) if error.to_string().contains("already") => Ok(()),
        Err(error) => Err(error),
    }
}

fn run_idempotent_with_stdin(command: &mut Command, input: &str) -> Result<()> {
    use std::io::Write;
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() || stderr.contains("already") {
        Ok(())
    } else {
        bail!("relay {:?} failed: {}", command.get_args().collect::<Vec<_>>(), stderr.trim())
    }
}
