//! Runtime settings of `relay serve` and the layout of the data directory.
//!
//! Kept apart from the CLI so that tests build a [`ServeConfig`] directly (port 0, short ticket TTL)
//! and from the server so that every path inside the data directory is named in one place.

use crate::clock::{self, SharedClock};
use crate::netaddr::Cidr;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest WebSocket message (and frame) the tunnel accepts; larger ones close the socket with 1009.
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;

/// Everything `relay serve` needs to know.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// `postgres://…` to share one PostgreSQL database between relays; `None` → the SQLite file in
    /// the data directory.
    pub database_url: Option<String>,
    pub bind: IpAddr,
    /// 0 picks a free port (tests); the bound port is reported by [`crate::RunningServer`].
    pub https_port: u16,
    /// Plain-HTTP port that only redirects to HTTPS. 0 picks a free port.
    pub http_port: u16,
    /// Directory with the built portal (index.html, wasm, js). `None` or missing → a 503 page at `/`.
    pub web_root: Option<PathBuf>,
    /// Extra origins accepted for POST and WebSocket requests (normalised with [`normalize_origin`]).
    pub public_origins: Vec<String>,
    pub connect_timeout: Duration,
    pub ticket_ttl: Duration,
    pub session_idle_timeout: Duration,
    pub max_message_size: usize,
    /// How long open pipes get to close cleanly after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see [`crate::netaddr::client_ip`]).
    pub trusted_proxies: Vec<Cidr>,
    /// Time of the brute-force limiter (a manual clock in tests).
    pub clock: SharedClock,
    /// Cap on stored login-failure rows (see [`crate::bruteforce`]).
    pub max_failure_rows: i64,
    /// ACME directory of the free certificate's CA (default: Let's Encrypt production).
    pub acme_directory: String,
    /// An extra root certificate (PEM file) trusted when talking to the ACME server (a test CA).
    pub acme_ca_root: Option<PathBuf>,
    /// How often the relay looks for certificate changes and ACME jobs in the database.
    pub certificate_poll_interval: Duration,
    /// Key file that seals two-factor secrets; `None` → `twofa.key` in the data directory.
    pub twofa_key_file: Option<PathBuf>,
    /// How often the relay shares its live tunnels with relays on the same database
    /// ([`crate::tunnel_sync`]): a disconnect asked elsewhere takes up to this long.
    pub tunnel_sync_interval: Duration,
    /// Which of `https_port`, `http_port`, `bind`, `web_root` were given as flags: those win over the
    /// stored `server.*` settings (see [`crate::server_admin`]); the others are defaults.
    pub pinned_by_flags: crate::server_admin::PinnedByFlags,
}

impl ServeConfig {
    /// Defaults of `relay serve` for the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServeConfig {
            data_dir: data_dir.into(),
            database_url: None,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            https_port: 8443,
            http_port: 8080,
            web_root: None,
            public_origins: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            ticket_ttl: Duration::from_secs(30),
            session_idle_timeout: Duration::from_secs(12 * 3600),
            max_message_size: MAX_MESSAGE_SIZE,
            shutdown_grace: Duration::from_secs(5),
            trusted_proxies: Vec::new(),
            clock: clock::system(),
            max_failure_rows: crate::bruteforce::DEFAULT_MAX_FAILURE_ROWS,
            acme_directory: crate::acme::LETS_ENCRYPT_PRODUCTION.to_owned(),
            acme_ca_root: None,
            certificate_poll_interval: Duration::from_secs(1),
            twofa_key_file: None,
            tunnel_sync_interval: Duration::from_secs(2),
            pinned_by_flags: Default::default(),
        }
    }
}

/// Files inside the data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("homedesk.db")
    }
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }
    pub fn certificate(&self) -> PathBuf {
        self.tls_dir().join("cert.pem")
    }
    pub fn private_key(&self) -> PathBuf {
        self.tls_dir().join("key.pem")
    }
    /// The key that seals two-factor secrets (created on first start, 0600).
    pub fn twofa_key(&self) -> PathBuf {
        self.root.join(crate::twofa::KEY_FILE)
    }

    /// Creates the directory (owner-only on Unix) if it does not exist yet.
    pub fn create(&self) -> std::io::Result<()> {
        create_private_dir(&self.root)
    }
}

/// `mkdir -p` with mode 0700 for the directories we create (the data dir holds the database and key).
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid origin {origin:?}: expected scheme://host[:port] such as https://desk.example.com"
)]
pub struct InvalidOrigin {
    pub origin: String,
}

/// Normalises an origin as browsers send it: lowercase, no trailing slash, default port removed.
pub fn normalize_origin(origin: &str) -> Result<String, InvalidOrigin> {
    let invalid = || InvalidOrigin {
        origin: origin.to_owned(),
    };
    let lower = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://").ok_or_else(invalid)?;
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return Err(invalid()),
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid());
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            normalize_origin("HTTPS://Desk.Example.com/").unwrap(),
            "https://desk.example.com"
        );
        assert_eq!(
            normalize_origin("https://desk:443").unwrap(),
            "https://desk"
        );
        assert_eq!(
            normalize_origin("https://desk:8443").unwrap(),
            "https://desk:8443"
        );
        assert_eq!(normalize_origin("http://desk:80").unwrap(), "http://desk");
        assert!(normalize_origin("desk.example.com").is_err());
        assert!(normalize_origin("ftp://desk").is_err());
        assert!(normalize_origin("https://desk/path").is_err());
        assert!(normalize_origin("https://").is_err());
    }
}
