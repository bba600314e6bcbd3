//! Startup and shutdown of `relay serve`: prepares the data directory (database, certificate, first
//! admin account), binds both listeners and runs them until told to stop.
//!
//! Returned as a handle ([`RunningServer`]) so that the binary waits for a signal while tests bind
//! port 0, read the real addresses, and stop the relay in-process.

use crate::acme_client::{AcmeConfig, AcmeWorker};
use crate::auth::{self, AuthError, Passwords};
use crate::bruteforce::{LimiterConfig, LoginGuard};
use crate::certificates::{self, CertificateError};
use crate::config::{DataDir, ServeConfig};
use crate::http::{self, AppInner, AppState};
use crate::listener;
use crate::listeners::{ListenerError, Listeners, WebRoot};
use crate::pipes::PipeRegistry;
use crate::server_admin::{self, ServerAdminError, ServerSettings};
use crate::store::{self, Store, StoreError};
use crate::tls::{self, TlsError};
use crate::twofa::{SecretBox, TwoFactor, TwoFactorError};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU16;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Name of the account created on first start.
pub const ADMIN_USERNAME: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot load the HTTPS certificate: {0}")]
    Certificate(#[from] CertificateError),
    #[error("cannot prepare password hashing: {0}")]
    Auth(#[from] AuthError),
    #[error("cannot prepare two-factor sign-in: {0}")]
    TwoFactor(#[from] TwoFactorError),
    #[error(transparent)]
    Listen(#[from] ListenerError),
    #[error(transparent)]
    Settings(#[from] ServerAdminError),
}

/// Opens the database: the one `database_url` names, else (creating on first use) the SQLite file
/// of the data directory. Used by `serve` and the CLI.
pub async fn open_store(
    data_dir: &DataDir,
    database_url: Option<&str>,
) -> Result<Store, StartError> {
    data_dir.create().map_err(|source| StartError::DataDir {
        path: data_dir.root().display().to_string(),
        source,
    })?;
    Ok(match database_url {
        Some(url) => Store::open_url(url).await?,
        None => Store::open(&data_dir.database()).await?,
    })
}

/// A started relay.
pub struct RunningServer {
    /// Where HTTPS was first served (the real port when 0 was asked for; see [`RunningServer::listeners`]
    /// for the current one).
    pub https_addr: SocketAddr,
    /// Where the plain-HTTP redirector listens.
    pub http_addr: SocketAddr,
    /// The generated password of the `admin` account, only on the start that created it.
    pub admin_password: Option<String>,
    /// True if this start generated the self-signed certificate.
    pub created_certificate: bool,
    state: AppState,
    listeners: Arc<Listeners>,
}

impl RunningServer {
    /// Argon2 verifications run by this server (see `auth::Passwords::verifications`).
    pub fn password_verifications(&self) -> u64 {
        self.state.passwords.verifications()
    }

    pub fn pipes(&self) -> &PipeRegistry {
        &self.state.pipes
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The brute-force limiter (same state as the CLI's `relay security`).
    pub fn guard(&self) -> &LoginGuard {
        &self.state.guard
    }

    /// The second factor's service.
    pub fn twofa(&self) -> &TwoFactor {
        &self.state.twofa
    }

    /// The listeners (their addresses move when an administrator changes the ports).
    pub fn listeners(&self) -> &Arc<Listeners> {
        &self.listeners
    }

    /// Asks everything to stop: listeners stop accepting, open pipes close with 1001.
    pub fn trigger_shutdown(&self) {
        self.state.shutdown.cancel();
    }

    /// A token that is cancelled when the relay shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Stops the relay and waits (at most the configured grace period plus the HTTP drain time)
    /// for connections and pipes to finish.
    pub async fn stop(self) {
        self.trigger_shutdown();
        self.state.tasks.close();
        let grace = self.state.config.shutdown_grace + Duration::from_secs(6);
        if tokio::time::timeout(grace, self.state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish in time; closing them");
        }
        self.state.store.close().await;
    }
}

/// Prepares the data directory and starts both listeners.
pub async fn start(config: ServeConfig) -> Result<RunningServer, StartError> {
    let data_dir = DataDir::new(&config.data_dir);
    let store = open_store(&data_dir, config.database_url.as_deref()).await?;
    let created_certificate = tls::ensure_certificate(&data_dir)?;
    let (served_certificate, certificate, publicly_trusted) =
        certificates::load_active(&store, &data_dir).await?;
    let certificate_switch = Arc::new(tls::CertificateSwitch::new(certificate, publicly_trusted));
    let tls_config = tls::server_config(certificate_switch.clone())?;

    let admin_password = bootstrap_admin(&store).await?;
    let key_file = config
        .twofa_key_file
        .clone()
        .unwrap_or_else(|| data_dir.twofa_key());
    let twofa = TwoFactor::new(
        store.clone(),
        config.clock.clone(),
        SecretBox::load_or_create(&key_file)?,
    );
    crate::delivery::seal_plain_secrets(&store, twofa.secrets())
        .await
        .map_err(TwoFactorError::from)?;
    let passwords = tokio::task::spawn_blocking(Passwords::new)
        .await
        .map_err(|e| AuthError::Task(e.to_string()))??;

    let settings = ServerSettings::effective(&store, &config).await?;
    let web_root = WebRoot::new(settings.web_root.clone());

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let guard = LoginGuard::new(
        store.clone(),
        LimiterConfig {
            clock: config.clock.clone(),
            max_failure_rows: config.max_failure_rows,
        },
    );
    let acme_config = AcmeConfig {
        directory_url: config.acme_directory.clone(),
        extra_root: config.acme_ca_root.clone(),
    };
    let poll_interval = config.certificate_poll_interval;
    let state = AppState::new(AppInner {
        guard: guard.clone(),
        store: store.clone(),
        passwords,
        certificate: certificate_switch.clone(),
        twofa,
        config: config.clone(),
        web_root: web_root.clone(),
        pipes: PipeRegistry::new(),
        relay_id: server_admin::relay_id(),
        shutdown: shutdown.clone(),
        tasks: tasks.clone(),
    });
    let services = listener::Services {
        tls: tls_config,
        router: http::router(state.clone()),
        state: state.clone(),
        https_port: Arc::new(AtomicU16::new(settings.https_port)),
    };
    let listeners = match Listeners::start(services, settings.addresses()).await {
        Ok(listeners) => listeners,
        Err(error) => {
            shutdown.cancel();
            return Err(error.into());
        }
    };
    let bound = listeners.status().await;
    let (https_addr, http_addr) = (bound[0].address, bound[1].address);
    let worker = server_admin::Worker {
        store: store.clone(),
        listeners: listeners.clone(),
        web_root,
        config,
        current: ServerSettings {
            https_port: https_addr.port(),
            http_port: http_addr.port(),
            ..settings
        },
        relay_id: state.relay_id.clone(),
        published: None,
    };
    tasks.spawn(worker.run(shutdown.clone()));
    tasks.spawn(certificates::watch(
        store.clone(),
        data_dir,
        certificate_switch,
        served_certificate,
        poll_interval,
        shutdown.clone(),
    ));
    tasks.spawn(AcmeWorker::new(store.clone(), acme_config, poll_interval).run(shutdown.clone()));
    tasks.spawn(housekeeping(store, guard, shutdown));
    tasks.spawn(crate::tunnel_sync::run(state.clone()));
    tracing::info!(%https_addr, %http_addr, "relay listening");

    Ok(RunningServer {
        https_addr,
        http_addr,
        admin_password,
        created_certificate,
        state,
        listeners,
    })
}

/// Creates the `admin` account with a generated password on the first start of a database.
async fn bootstrap_admin(store: &Store) -> Result<Option<String>, StartError> {
    if store.admin_bootstrapped().await? {
        return Ok(None);
    }
    let password = auth::generate_password();
    let to_hash = password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&to_hash))
        .await
        .map_err(|e| AuthError::Task(e.to_string()))??;
    Ok(store
        .bootstrap_admin(ADMIN_USERNAME, &hash)
        .await?
        .then_some(password))
}

/// How often the serving relay runs [`housekeeping_pass`].
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

/// Runs [`housekeeping_pass`] every [`HOUSEKEEPING_INTERVAL`].
async fn housekeeping(store: Store, guard: LoginGuard, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(HOUSEKEEPING_INTERVAL) => {}
        }
        housekeeping_pass(&store, &guard).await;
    }
}

/// One round of the periodic housekeeping: deletes expired tickets and sessions, old login failures
/// and blocks, then (SQLite) checkpoints and truncates the write-ahead log, so a burst of writes (a
/// flood of failed sign-ins) does not leave the WAL at its high-water mark on disk. Failures are
/// logged; the next round tries again.
pub async fn housekeeping_pass(store: &Store, guard: &LoginGuard) {
    if let Err(error) = store.purge_expired(store::unix_ms()).await {
        tracing::warn!(%error, "housekeeping failed");
    }
    if let Err(error) = guard.purge().await {
        tracing::warn!(%error, "housekeeping of login failures failed");
    }
    match store.checkpoint_wal().await {
        Ok(true) => {}
        Ok(false) => tracing::debug!("WAL checkpoint left the log in place (readers busy); retried next round"),
        Err(error) => tracing::warn!(%error, "WAL checkpoint failed"),
    }
}
