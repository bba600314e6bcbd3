//! A real relay process for one test: its own data directory, ports and users, stopped on drop.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Relay {
    pub https_port: u16,
    /// The plain-HTTP port: [`Relay::serve`] picks a free one unless it was set before (a test ACME
    /// server has to know it to validate HTTP-01).
    pub http_port: u16,
    /// Extra `relay serve` arguments (e.g. `--acme-directory`), set before [`Relay::serve`].
    pub serve_args: Vec<String>,
    data_dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Relay {
    /// Creates the data directory (the relay's first start initialises it).
    pub fn new() -> Result<Relay> {
        let data_dir = tempfile::Builder::new().prefix("homedesk-e2e-").tempdir()?;
        Ok(Relay { https_port: 0, http_port: 0, serve_args: Vec::new(), data_dir, child: None })
    }

    fn bin() -> Result<PathBuf> {
        Ok(PathBuf::from(crate::required_env("HOMEDESK_RELAY_BIN")?))
    }

    /// Runs a relay CLI command (`user add`, `workstation add`, ...) on this relay's data directory.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut child = Command::new(Self::bin()?)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the relay CLI")?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())?;
        }
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!("relay {args:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub fn add_user(&self, name: &str, password: &str) -> Result<()> {
        self.cli(&["user", "add", name, "--password-stdin"], Some(password)).map(drop)
    }

    pub fn add_workstation(&self, name: &str, addr: &str) -> Result<()> {
        let (host, port) = addr.rsplit_once(':').context("workstation address must be host:port")?;
        self.cli(&["workstation", "add", name, "--host", host, "--port", port], None).map(drop)
    }

    pub fn assign(&self, user: &str, workstation: &str) -> Result<()> {
        self.cli(&["assign", user, workstation], None).map(drop)
    }

    /// Starts `relay serve` with the built client and waits until HTTPS answers.
    pub async fn serve(&mut self) -> Result<()> {
        self.https_port = crate::free_port()?;
        if self.http_port == 0 {
            self.http_port = crate::free_port()?;
        }
        self.spawn().await
    }

    /// Kills the relay (every open pipe breaks, as in a network drop) and starts it again on the same
    /// ports and data directory.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill()?;
        self.spawn().await
    }

    /// Kills the relay and leaves it down (`restart` brings it back on the same ports).
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    async fn spawn(&mut self) -> Result<()> {
        let web_root = crate::required_env("HOMEDESK_WEB_ROOT")?;
        let http_port = self.http_port;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.data_dir.path().join("relay.log"))?;
        let child = Command::new(Self::bin()?)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(["serve", "--bind", "127.0.0.1", "--web-root", &web_root])
            .args(["--https-port", &self.https_port.to_string(), "--http-port", &http_port.to_string()])
            .args(&self.serve_args)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start relay serve")?;
        self.child = Some(child);
        let port = self.https_port;
        crate::wait_for("the relay to listen", Duration::from_secs(30), || async move {
            Ok(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(drop))
        })
        .await
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}/", self.https_port)
    }

    /// The first `admin` account's password, as the relay's first start printed it.
    pub fn admin_password(&self) -> Result<String> {
        let log = self.log();
        let line = log.lines().find_map(|line| line.strip_prefix("Admin login: admin / "));
        line.map(|password| password.trim().to_owned()).context("the relay did not print the admin password")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("relay.log")).unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
