//! Web server management: the HTTPS and HTTP ports, bind address and web root as stored settings, the
//! operations the CLI (`relay server …`) and the admin console share, and the serving relay's worker
//! that carries them out.
//!
//! The database is the source of truth, as for certificates: settings rows `server.https_port`,
//! `server.http_port`, `server.bind`, `server.web_root`. Only the serving relay owns the sockets, so a
//! change is queued as a job (`server_jobs`, one relay claims it), the relay binds first
//! ([`crate::listeners`]), stores the settings only when that worked, and records the outcome, which the
//! caller waits for. When no relay is serving, a change is validated and stored for the next start.
//!
//! Precedence at start (and on restart): a `relay serve` flag given on the command line, then the stored
//! setting, then the built-in default. So a service unit that pins `--https-port` keeps it; a change made
//! later through the CLI or console applies at once and is stored, but the flag wins again at the next start.

use crate::config::ServeConfig;
use crate::listeners::{Addresses, ListenerError, Listeners, WebRoot};
use crate::store::{self, ListenerRow, ServerChange, ServerJob, Store, StoreError};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const HTTPS_PORT: &str = "server.https_port";
pub const HTTP_PORT: &str = "server.http_port";
pub const BIND: &str = "server.bind";
pub const WEB_ROOT: &str = "server.web_root";

/// How often a serving relay refreshes its listener rows; rows older than [`LIVE_WINDOW`] are not shown.
const HEARTBEAT: Duration = Duration::from_secs(5);
const LIVE_WINDOW: Duration = Duration::from_secs(15);
/// How long a job may wait for a relay to take it, and then to finish.
const PICKUP_TIMEOUT: Duration = Duration::from_secs(20);
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServerAdminError {
    #[error("invalid port {0}: use 1-65535")]
    Port(i64),
    #[error("invalid bind address {0:?}: use an IP address such as 0.0.0.0, :: or 127.0.0.1")]
    Bind(String),
    #[error("the web root must be an absolute path (got {0:?})")]
    RelativeWebRoot(String),
    #[error("the web root {0} is not a directory on the relay's machine")]
    NoWebRoot(String),
    #[error("the HTTPS and HTTP ports must differ (both are {0})")]
    SamePort(u16),
    #[error("the stored setting {name} is invalid ({value:?}); fix it with `relay server set`")]
    Stored { name: &'static str, value: String },
    #[error(transparent)]
    Listener(#[from] ListenerError),
    #[error(
        "no running relay took the request: start `relay serve` with this database (stop, start and \
         restart need a serving relay)"
    )]
    NoRelay,
    #[error("the relay did not finish in time; see its log and `relay server status`")]
    Timeout,
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a relay serves: ports, bind address and web root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub https_port: u16,
    pub http_port: u16,
    pub bind: IpAddr,
    pub web_root: Option<PathBuf>,
}

/// Which settings `relay serve` was given on its command line (they win over stored settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PinnedByFlags {
    pub https_port: bool,
    pub http_port: bool,
    pub bind: bool,
    pub web_root: bool,
}

impl ServerSettings {
    pub fn addresses(&self) -> Addresses {
        Addresses {
            https: SocketAddr::new(self.bind, self.https_port),
            http: SocketAddr::new(self.bind, self.http_port),
        }
    }

    /// The settings a start uses: flags, then stored rows, then the config's defaults.
    pub async fn effective(store: &Store, config: &ServeConfig) -> Result<Self, ServerAdminError> {
        let stored = stored(store).await?;
        let pinned = config.pinned_by_flags;
        fn pick<T>(pin: bool, stored: Option<T>, flag: T) -> T {
            if pin {
                flag
            } else {
                stored.unwrap_or(flag)
            }
        }
        Ok(ServerSettings {
            https_port: pick(pinned.https_port, stored.https_port, config.https_port),
            http_port: pick(pinned.http_port, stored.http_port, config.http_port),
            bind: pick(
                pinned.bind,
                stored.bind.map(parse_stored_bind).transpose()?,
                config.bind,
            ),
            web_root: if pinned.web_root {
                config.web_root.clone()
            } else {
                stored
                    .web_root
                    .map(|root| root.map(PathBuf::from))
                    .unwrap_or_else(|| config.web_root.clone())
            },
        })
    }

    /// These settings with a change applied (validated).
    pub fn with(&self, change: &ServerChange) -> Result<Self, ServerAdminError> {
        check_change(change)?;
        let next = ServerSettings {
            https_port: change.https_port.unwrap_or(self.https_port),
            http_port: change.http_port.unwrap_or(self.http_port),
            bind: match &change.bind {
                Some(bind) => parse_bind(bind)?,
                None => self.bind,
            },
            web_root: if change.clear_web_root {
                None
            } else {
                change
                    .web_root
                    .as_ref()
                    .map(PathBuf::from)
                    .or_else(|| self.web_root.clone())
            },
        };
        if next.https_port != 0 && next.https_port == next.http_port {
            return Err(ServerAdminError::SamePort(next.https_port));
        }
        Ok(next)
    }
}

/// The stored rows (`None`: not set). `web_root: Some(None)` is "set to none".
#[derive(Debug, Default)]
struct Stored {
    https_port: Option<u16>,
    http_port: Option<u16>,
    bind: Option<String>,
    web_root: Option<Option<String>>,
}

async fn stored(store: &Store) -> Result<Stored, ServerAdminError> {
    let mut stored = Stored::default();
    for (name, value) in store.settings_with_prefix("server.").await? {
        match name.as_str() {
            HTTPS_PORT => stored.https_port = Some(parse_stored_port(HTTPS_PORT, &value)?),
            HTTP_PORT => stored.http_port = Some(parse_stored_port(HTTP_PORT, &value)?),
            BIND => stored.bind = Some(value),
            WEB_ROOT => stored.web_root = Some((!value.is_empty()).then_some(value)),
            _ => {}
        }
    }
    Ok(stored)
}

fn parse_stored_port(name: &'static str, value: &str) -> Result<u16, ServerAdminError> {
    value
        .parse::<u16>()
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| ServerAdminError::Stored {
            name,
            value: value.to_owned(),
        })
}

fn parse_stored_bind(value: String) -> Result<IpAddr, ServerAdminError> {
    value
        .parse()
        .map_err(|_| ServerAdminError::Stored { name: BIND, value })
}

fn parse_bind(value: &str) -> Result<IpAddr, ServerAdminError> {
    value
        .trim()
        .parse()
        .map_err(|_| ServerAdminError::Bind(value.to_owned()))
}

/// Checks what can be checked anywhere (the web root's existence is checked by the serving relay).
pub fn check_change(change: &ServerChange) -> Result<(), ServerAdminError> {
    for port in [change.https_port, change.http_port].into_iter().flatten() {
        if port == 0 {
            return Err(ServerAdminError::Port(0));
        }
    }
    if let Some(bind) = &change.bind {
        parse_bind(bind)?;
    }
    if let Some(root) = &change.web_root {
        if !std::path::Path::new(root).is_absolute() {
            return Err(ServerAdminError::RelativeWebRoot(root.clone()));
        }
    }
    if let (Some(https), Some(http)) = (change.https_port, change.http_port) {
        if https == http {
            return Err(ServerAdminError::SamePort(https));
        }
    }
    Ok(())
}

/// The settings rows a change writes.
fn rows_of(change: &ServerChange) -> Vec<(&'static str, Option<String>)> {
    let mut rows = Vec::new();
    if let Some(port) = change.https_port {
        rows.push((HTTPS_PORT, Some(port.to_string())));
    }
    if let Some(port) = change.http_port {
        rows.push((HTTP_PORT, Some(port.to_string())));
    }
    if let Some(bind) = &change.bind {
        rows.push((BIND, Some(bind.trim().to_owned())));
    }
    if change.clear_web_root {
        rows.push((WEB_ROOT, Some(String::new())));
    } else if let Some(root) = &change.web_root {
        rows.push((WEB_ROOT, Some(root.clone())));
    }
    rows
}

/// A job the CLI or the console can ask of the serving relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Apply,
    Restart,
    Stop,
    Start,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Apply => "apply",
            JobKind::Restart => "restart",
            JobKind::Stop => "stop",
            JobKind::Start => "start",
        }
    }
}

/// The listeners of every serving relay (rows refreshed within the last [`LIVE_WINDOW`]).
pub async fn live_listeners(store: &Store) -> Result<Vec<ListenerRow>, StoreError> {
    let since = store::unix_ms() - LIVE_WINDOW.as_millis() as i64;
    store.listeners_seen_since(since).await
}

/// The operation behind `relay server set|restart|stop|start` and the console: queue a job for the
/// serving relay and wait for its outcome (a sentence). With no relay serving, `apply` stores the
/// validated settings for the next start and the other kinds fail with [`ServerAdminError::NoRelay`].
pub async fn run(
    store: &Store,
    kind: JobKind,
    change: &ServerChange,
) -> Result<String, ServerAdminError> {
    check_change(change)?;
    if live_listeners(store).await?.is_empty() {
        if kind != JobKind::Apply {
            return Err(ServerAdminError::NoRelay);
        }
        store.write_settings(&rows_of(change)).await?;
        return Ok(
            "No relay is serving right now: the settings are stored and apply at its next start."
                .into(),
        );
    }
    let id = store
        .insert_server_job(kind.as_str(), change, store::unix_ms())
        .await?;
    let queued = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let job = store
            .server_job(id)
            .await?
            .ok_or(ServerAdminError::Timeout)?;
        if job.finished_at.is_some() {
            let message = job.result_message.unwrap_or_default();
            return match job.result_code {
                Some(0) => Ok(message),
                _ => Err(ServerAdminError::Refused(message)),
            };
        }
        if job.started_at.is_none()
            && queued.elapsed() > PICKUP_TIMEOUT
            && store.cancel_server_job(id, store::unix_ms()).await?
        {
            return Err(ServerAdminError::NoRelay);
        }
        if queued.elapsed() > PICKUP_TIMEOUT + RUN_TIMEOUT {
            return Err(ServerAdminError::Timeout);
        }
    }
}

/// The serving relay's side: applies jobs to its listeners and web root, publishes their status.
pub struct Worker {
    pub store: Store,
    pub listeners: Arc<Listeners>,
    pub web_root: WebRoot,
    pub config: ServeConfig,
    /// What this relay serves now.
    pub current: ServerSettings,
    /// Names this relay in `relay_listeners`.
    pub relay_id: String,
    /// The rows last written, and when.
    pub published: Option<(Vec<ListenerRow>, Instant)>,
}

impl Worker {
    pub async fn run(mut self, shutdown: CancellationToken) {
        let interval = self.config.certificate_poll_interval;
        loop {
            self.publish().await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.store.claim_server_job(store::unix_ms()).await {
                Ok(Some(job)) => self.carry_out(job).await,
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot read server jobs"),
            }
        }
        if let Err(error) = self.store.publish_listeners(&self.relay_id, &[]).await {
            tracing::debug!(%error, "cannot remove the listeners' status");
        }
    }

    /// Writes the status rows when they changed, and every [`HEARTBEAT`] so that others see we serve.
    async fn publish(&mut self) {
        if let Err(error) = self.try_publish().await {
            tracing::warn!(%error, "cannot publish the listeners' status");
        }
    }

    async fn try_publish(&mut self) -> Result<(), StoreError> {
        let now = store::unix_ms();
        let rows: Vec<ListenerRow> = self
            .listeners
            .status()
            .await
            .into_iter()
            .map(|status| ListenerRow {
                relay_id: self.relay_id.clone(),
                name: status.name.as_str().to_owned(),
                address: status.address.to_string(),
                state: if status.listening {
                    "listening"
                } else {
                    "stopped"
                }
                .to_owned(),
                error: status.error,
                seen_at: now,
            })
            .collect();
        let unchanged = self.published.as_ref().is_some_and(|(last, at)| {
            at.elapsed() < HEARTBEAT
                && last.len() == rows.len()
                && last.iter().zip(&rows).all(|(a, b)| {
                    ListenerRow {
                        seen_at: 0,
                        ..a.clone()
                    } == ListenerRow {
                        seen_at: 0,
                        ..b.clone()
                    }
                })
        });
        if unchanged {
            return Ok(());
        }
        self.store.publish_listeners(&self.relay_id, &rows).await?;
        self.published = Some((rows, Instant::now()));
        Ok(())
    }

    async fn carry_out(&mut self, job: ServerJob) {
        let outcome = match job.kind.as_str() {
            "apply" => self.apply(&job.change).await,
            "restart" | "start" => self.restart().await,
            "stop" => {
                self.listeners.stop().await;
                Ok(STOPPED.to_owned())
            }
            other => Err(ServerAdminError::Refused(format!(
                "unknown job kind {other:?}"
            ))),
        };
        let (code, message) = match outcome {
            Ok(message) => (0, message),
            Err(error) => (1, error.to_string()),
        };
        tracing::info!(job = job.id, kind = %job.kind, code, %message, "server job done");
        self.publish().await;
        if let Err(error) = self
            .store
            .finish_server_job(job.id, store::unix_ms(), code, &message)
            .await
        {
            tracing::error!(%error, job = job.id, "cannot record the outcome of a server job");
        }
    }

    /// Bind first, then store: a refused bind changes nothing; a failed write moves the listeners back.
    async fn apply(&mut self, change: &ServerChange) -> Result<String, ServerAdminError> {
        let next = self.current.with(change)?;
        check_web_root(&next)?;
        let bound = self.listeners.apply(next.addresses()).await?;
        if let Err(error) = self.store.write_settings(&rows_of(change)).await {
            if let Err(back) = self.listeners.apply(self.current.addresses()).await {
                tracing::error!(error = %back, "cannot move the listeners back after a failed write");
            }
            return Err(error.into());
        }
        self.web_root.set(next.web_root.clone());
        self.current = next;
        Ok(self.done_message("Applied", bound, change))
    }

    /// Reloads the settings (with the start's precedence) and hands every listener to a fresh loop.
    async fn restart(&mut self) -> Result<String, ServerAdminError> {
        let mut next = ServerSettings::effective(&self.store, &self.config).await?;
        // Port 0 ("any free port", tests) means: stay on the port picked at start.
        if next.https_port == 0 {
            next.https_port = self.current.https_port;
        }
        if next.http_port == 0 {
            next.http_port = self.current.http_port;
        }
        check_web_root(&next)?;
        let bound = self.listeners.restart(next.addresses()).await?;
        self.web_root.set(next.web_root.clone());
        self.current = next;
        Ok(self.done_message("Restarted", bound, &ServerChange::default()))
    }

    fn done_message(&self, what: &str, bound: Addresses, change: &ServerChange) -> String {
        let root = match &self.current.web_root {
            Some(root) => root.display().to_string(),
            None => "none".to_owned(),
        };
        let mut message = format!(
            "{what}: HTTPS on {}, HTTP on {}, web root {root}; open sessions were kept.",
            bound.https, bound.http
        );
        let pinned = self.config.pinned_by_flags;
        if (pinned.https_port && change.https_port.is_some())
            || (pinned.http_port && change.http_port.is_some())
            || (pinned.bind && change.bind.is_some())
            || (pinned.web_root && (change.web_root.is_some() || change.clear_web_root))
        {
            message.push_str(" Note: this relay was started with a command-line flag for that setting, which wins again at its next start.");
        }
        message
    }
}

pub const STOPPED: &str =
    "Stopped: the relay accepts no new connections; open sessions keep running. \
`relay server start` listens again.";

fn check_web_root(settings: &ServerSettings) -> Result<(), ServerAdminError> {
    match &settings.web_root {
        Some(root) if !root.is_dir() => {
            Err(ServerAdminError::NoWebRoot(root.display().to_string()))
        }
        _ => Ok(()),
    }
}

/// A name for this relay in `relay_listeners`: host, process and a random part (tests run several
/// relays in one process).
pub fn relay_id() -> String {
    let host = crate::tls::machine_hostname().unwrap_or_else(|| "relay".to_owned());
    format!(
        "{host}/{}/{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}
