//! The peers Homedesk is compared with, started as child processes in front of the same workstations:
//! websockify (PyPI, a venv under the cache, TLS with the relay's own certificate so both pay for TLS)
//! and socat (Debian; a plain TCP forwarder, the cheapest possible proxy, no WebSocket framing).

use crate::process::{free_port, wait_listening, ChildGuard};
use crate::workstation::{Kind, Workstations};
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A peer listening once per workstation (each forwards one fixed target).
pub struct Peer {
    pub source: SocketAddr,
    pub echo: SocketAddr,
    pub version: String,
    _processes: Vec<ChildGuard>,
}

impl Peer {
    pub fn addr(&self, kind: Kind) -> SocketAddr {
        if kind == Kind::Source { self.source } else { self.echo }
    }
}

/// `websockify` of the bench venv, installed (python3 -m venv + pip) when missing.
pub fn install_websockify(venv: &Path) -> Result<PathBuf> {
    let program = venv.join("bin").join("websockify");
    if program.is_file() {
        return Ok(program);
    }
    eprintln!("bench: installing websockify into {}", venv.display());
    quiet(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
    quiet(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", "--disable-pip-version-check", "websockify"]))?;
    if !program.is_file() {
        bail!("pip installed no {}", program.display());
    }
    Ok(program)
}

/// `socat`, installed with apt-get when missing.
pub fn install_socat() -> Result<()> {
    if Command::new("socat").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
        return Ok(());
    }
    eprintln!("bench: installing socat (apt-get)");
    let install = || quiet(Command::new("apt-get").args(["install", "-y", "-qq", "socat"]).env("DEBIAN_FRONTEND", "noninteractive"));
    if install().is_err() {
        quiet(Command::new("apt-get").args(["update", "-qq"]))?;
        install()?;
    }
    Ok(())
}

pub fn start_websockify(program: &Path, targets: Workstations, cert: &Path, key: &Path, log: &Path) -> Result<Peer> {
    let version = first_line(Command::new(program.with_file_name("pip")).args(["show", "websockify"]), "Version: ")
        .unwrap_or_default();
    start(targets, |listen, target| {
        let mut command = Command::new(program);
        command
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--ssl-only")
            .arg(format!("127.0.0.1:{}", listen))
            .arg(target.to_string());
        ChildGuard::spawn("websockify", &mut command, log)
    })
    .map(|peer| Peer { version, ..peer })
}

pub fn start_socat(targets: Workstations, log: &Path) -> Result<Peer> {
    let version = first_line(Command::new("socat").arg("-V"), "socat version ")
        .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    start(targets, |listen, target| {
        let mut command = Command::new("socat");
        command
            .arg(format!("TCP-LISTEN:{listen},bind=127.0.0.1,reuseaddr,fork,nodelay"))
            .arg(format!("TCP:{target},nodelay"));
        ChildGuard::spawn("socat", &mut command, log)
    })
    .map(|peer| Peer { version, ..peer })
}

fn start(targets: Workstations, spawn: impl Fn(u16, SocketAddr) -> Result<ChildGuard>) -> Result<Peer> {
    let mut processes = Vec::new();
    let mut addrs = Vec::new();
    for target in [targets.source, targets.echo] {
        let port = free_port()?;
        let mut child = spawn(port, target)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_listening(&mut child, addr, Duration::from_secs(30))?;
        processes.push(child);
        addrs.push(addr);
    }
    Ok(Peer { source: addrs[0], echo: addrs[1], version: String::new(), _processes: processes })
}

fn quiet(command: &mut Command) -> Result<()> {
    let output = command.output().with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!("{:?} failed: {}", command.get_program(), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

fn first_line(command: &mut Command, prefix: &str) -> Option<String> {
    let output = command.output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    text.lines().find_map(|line| line.split_once(prefix).map(|(_, rest)| rest.trim().to_owned()))
}
