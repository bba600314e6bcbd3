//! The relay under test as a real child process (`relay serve` of the release build) with a fresh data
//! directory, set up through its CLI, used through its HTTPS API exactly as the browser client does:
//! login with Origin, a single-use ticket per connection (X-CSRF-Token), then the tunnel with Origin.

use crate::link::{self, Link};
use crate::process::ChildGuard;
use crate::workstation::{Kind, Workstations};
use anyhow::{bail, Context, Result};
use rustls::ClientConfig;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "bench";
const PASSWORD: &str = "homedesk bench password";
const SOURCE: &str = "bench-source";
const ECHO: &str = "bench-echo";
/// An HTTP response: status, lowercase headers, body.
type Response = (u16, Vec<(String, String)>, String);

const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Relay {
    process: ChildGuard,
    pub https: SocketAddr,
    pub data_dir: PathBuf,
    tls: Arc<ClientConfig>,
    cookie: String,
    csrf: String,
    source_id: i64,
    echo_id: i64,
}

impl Relay {
    /// Registers both workstations for the bench user, starts `relay serve` and signs in.
    pub async fn start(binary: &Path, data_dir: &Path, log: &Path, workstations: Workstations) -> Result<Relay> {
        let cli = |args: &[&str], stdin: Option<&str>| run_cli(binary, data_dir, args, stdin);
        cli(&["user", "add", USER, "--password-stdin"], Some(PASSWORD))?;
        for (name, addr) in [(SOURCE, workstations.source), (ECHO, workstations.echo)] {
            let port = addr.port().to_string();
            cli(&["workstation", "add", name, "--host", "127.0.0.1", "--port", &port], None)?;
            cli(&["assign", USER, name], None)?;
        }

        let stderr = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--https-port", "0", "--http-port", "0", "--print-ready"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut process = ChildGuard::spawn_raw("relay", &mut command)?;
        let stdout = process.child_mut().stdout.take().context("relay stdout")?;
        let https_port = ready_port(stdout).with_context(|| format!("relay did not start (see {})", log.display()))?;
        let https = SocketAddr::from(([127, 0, 0, 1], https_port));

        let mut relay = Relay {
            process,
            https,
            data_dir: data_dir.to_owned(),
            tls: link::tls_config(),
            cookie: String::new(),
            csrf: String::new(),
            source_id: 0,
            echo_id: 0,
        };
        relay.login().await.context("sign-in of the bench user")?;
        Ok(relay)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn check_alive(&mut self) -> Result<()> {
        self.process.check_alive()
    }

    pub fn certificate(&self) -> PathBuf {
        self.data_dir.join("tls").join("cert.pem")
    }

    pub fn private_key(&self) -> PathBuf {
        self.data_dir.join("tls").join("key.pem")
    }

    /// The origin a browser on `https://localhost:PORT` sends.
    fn origin(&self) -> String {
        format!("https://localhost:{}", self.https.port())
    }

    async fn login(&mut self) -> Result<()> {
        let body = serde_json::json!({ "username": USER, "password": PASSWORD }).to_string();
        let (status, headers, body) = self.post("/api/login", &body, false).await?;
        if status != 200 {
            bail!("login answered {status}: {body}");
        }
        self.cookie = session_cookie(&headers)?;
        let json: Value = serde_json::from_str(&body).context("login body")?;
        self.csrf = json["csrf_token"].as_str().context("no csrf_token")?.to_owned();
        let id_of = |name: &str| {
            json["workstations"]
                .as_array()
                .and_then(|list| list.iter().find(|w| w["name"] == name))
                .and_then(|w| w["id"].as_i64())
                .with_context(|| format!("workstation {name} not in the login answer"))
        };
        self.source_id = id_of(SOURCE)?;
        self.echo_id = id_of(ECHO)?;
        Ok(())
    }

    /// A fresh single-use ticket for the workstation of `kind`.
    pub async fn ticket(&self, kind: Kind) -> Result<String> {
        let id = if kind == Kind::Source { self.source_id } else { self.echo_id };
        let body = serde_json::json!({ "workstation_id": id }).to_string();
        let (status, _, body) = self.post("/api/ticket", &body, true).await?;
        if status != 200 {
            bail!("ticket answered {status}: {body}");
        }
        let json: Value = serde_json::from_str(&body).context("ticket body")?;
        Ok(json["ticket"].as_str().context("no ticket")?.to_owned())
    }

    /// Opens a tunnel to the workstation of `kind` as the browser does (ticket, then the upgrade).
    pub async fn tunnel(&self, kind: Kind) -> Result<Link> {
        let ticket = self.ticket(kind).await?;
        let origin = self.origin();
        Link::wss(self.https, &format!("/api/tunnel?ticket={ticket}"), Some(&origin), &self.tls).await
    }

    /// What a task needs to open a tunnel with a ticket: the address, TLS config and Origin.
    pub fn tunnel_parts(&self) -> (SocketAddr, Arc<ClientConfig>, String) {
        (self.https, self.tls.clone(), self.origin())
    }

    /// One POST on a fresh HTTPS connection with the bench user's session: (status, lowercase headers, body).
    async fn post(&self, path: &str, body: &str, session: bool) -> Result<Response> {
        let session = session.then_some((self.cookie.as_str(), self.csrf.as_str()));
        self.signer().post(path, body, session).await
    }

    /// What a task needs to sign in on its own.
    pub fn signer(&self) -> Signer {
        Signer { https: self.https, tls: self.tls.clone() }
    }
}

/// Signs in as any user on fresh HTTPS connections, as a browser opening the portal does.
pub struct Signer {
    https: SocketAddr,
    tls: Arc<ClientConfig>,
}

impl Signer {
    /// Password, then the code `code()` gives at that moment (it must be current when sent).
    pub async fn sign_in_with_code(&self, user: &str, password: &str, code: impl FnOnce() -> String) -> Result<()> {
        let body = serde_json::json!({ "username": user, "password": password }).to_string();
        let (status, headers, body) = self.post("/api/login", &body, None).await?;
        if status != 200 {
            bail!("login answered {status}: {body}");
        }
        let cookie = session_cookie(&headers)?;
        let json: Value = serde_json::from_str(&body).context("login body")?;
        let csrf = json["csrf_token"].as_str().context("no csrf_token")?;
        if json["second_factor"].is_null() {
            bail!("the login asked for no second factor: {body}");
        }
        let body = serde_json::json!({ "code": code() }).to_string();
        let (status, _, body) = self.post("/api/2fa/verify", &body, Some((&cookie, csrf))).await?;
        if status != 200 {
            bail!("2fa/verify answered {status}: {body}");
        }
        Ok(())
    }

    fn origin(&self) -> String {
        format!("https://localhost:{}", self.https.port())
    }

    /// One POST on a fresh HTTPS connection, with a session's cookie and CSRF token if given.
    async fn post(&self, path: &str, body: &str, session: Option<(&str, &str)>) -> Result<Response> {
        let exchange = async {
            let mut stream = link::tls_stream(self.https, &self.tls).await?;
            let mut request = format!(
                "POST {path} HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: {origin}\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {len}\r\n",
                port = self.https.port(),
                origin = self.origin(),
                len = body.len()
            );
            if let Some((cookie, csrf)) = session {
                request.push_str(&format!("Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n"));
            }
            request.push_str("\r\n");
            request.push_str(body);
            stream.write_all(request.as_bytes()).await?;
            let mut raw = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break, // closed (maybe without close_notify)
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                }
                if let Some(response) = parse_response(&raw) {
                    return Ok(response);
                }
            }
            parse_response(&raw).with_context(|| format!("incomplete HTTP response to POST {path}"))
        };
        tokio::time::timeout(IO_TIMEOUT, exchange).await.with_context(|| format!("POST {path} timed out"))?
    }
}

/// The `name=value` of the session cookie a login set.
fn session_cookie(headers: &[(String, String)]) -> Result<String> {
    let cookie = headers
        .iter()
        .find(|(name, _)| name == "set-cookie")
        .and_then(|(_, value)| value.split(';').next())
        .context("login set no cookie")?;
    Ok(cookie.trim().to_owned())
}

/// (status, lowercase headers, body) once a Content-Length response is complete.
fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers.iter().find(|(name, _)| name == "content-length")?.1.parse().ok()?;
    let body = raw.get(end + 4..end + 4 + length)?;
    Some((status, headers, String::from_utf8_lossy(body).into_owned()))
}

/// Reads the relay's stdout until `HOMEDESK_READY https_port=N` (30 s at most), then keeps draining it.
fn ready_port(stdout: std::process::ChildStdout) -> Result<u16> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("HOMEDESK_READY https_port=") {
                let port = rest.split_whitespace().next().and_then(|p| p.parse::<u16>().ok());
                let _ = tx.send(port);
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(port)) => Ok(port),
        Ok(None) => bail!("malformed HOMEDESK_READY line"),
        Err(_) => bail!("no HOMEDESK_READY line within 30 s"),
    }
}

fn run_cli(binary: &Path, data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<()> {
    let mut child = Command::new(binary)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("HOMEDESK_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.unwrap_or("").as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("relay {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}
