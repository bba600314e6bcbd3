//! All SQL of the relay: users, workstations, assignments, sessions, tickets, settings, the
//! brute-force defence's failures, blocks, whitelist and known account IPs, and the second factor's
//! members and per-user state.
//!
//! One module owns the database so that the rest of the code speaks in typed values and typed
//! errors. Two backends, one code path: every query runs through `sqlx::Any`, and the URL picks
//! the driver — SQLite (the embedded default: a file in the data directory, WAL mode) or PostgreSQL
//! (`postgres://…`, shared by several relays for scale-out). We chose `Any` over an enum of two
//! pools because an enum doubles every query or needs generic row decoding; `Any` costs nothing we
//! need (our values are text and 64-bit integers) and keeps "same code, chosen by config" literal.
//!
//! Rules that keep the SQL portable: numbered `$n` parameters, BIGINT for every integer (Unix
//! milliseconds, booleans as 0/1) so that both backends decode `i64`, `RETURNING` instead of
//! last-insert ids, `ON CONFLICT`, no backend-only functions. Each backend has its own migrations
//! (`migrations/` for SQLite, `migrations/postgres/` for PostgreSQL) with the same version numbers;
//! a unit test keeps the two lists equal. Multi-statement changes run in one transaction, so a
//! failing or vanished database never leaves half of an admin change behind.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::AnyPool;
use sqlx::{ConnectOptions, Connection, Executor, Row};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod audit;
mod certificates;
pub use audit::{AuditRow, NewAuditRow};
pub use certificates::{
    AcmeJob, AcmeJobKind, AcmeSettings, CertificatePem, CertificateSource, NewCertificate,
    StoredCertificate,
};
mod server;
pub use server::{ListenerRow, ServerChange, ServerJob};
mod transfer;
pub use transfer::{
    AssignmentRecord, ConfigRecords, GroupAssignmentRecord, PortalImageRecord, PortalPageRecord,
    TwoFactorMemberRecord, TwoFactorUserRecord, UserRecord, WorkstationRecord, LOCAL_SETTINGS,
};
mod portal;
mod tunnels;
pub use tunnels::LiveTunnelRow;
pub use portal::{NewPortalAsset, PortalAsset, PortalPageRow};

/// SQLite migrations embedded in the binary (`relay/migrations`).
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
/// PostgreSQL migrations embedded in the binary (`relay/migrations/postgres`), same versions.
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a free connection (or a PostgreSQL server) before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database server a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names (`sqlite:` or `postgres:`/`postgresql:`).
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }

    fn migrator(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        }
    }
}

/// A database URL without its password (for messages and logs).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(unparseable URL)".to_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unsupported database URL {0}: expected postgres://… or sqlite:…")]
    UnsupportedUrl(String),
    #[error("cannot reach the database at {target}: {error}")]
    Unreachable { target: String, error: sqlx::Error },
    #[error("cannot update the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the database was upgraded by a newer Homedesk (it has migration {0}, which this version does not know); \
         run that version or restore a backup"
    )]
    NewerSchema(i64),
    #[error("a user named \"{0}\" already exists")]
    UserExists(String),
    #[error("there is no user named \"{0}\"")]
    UnknownUser(String),
    #[error("a workstation named \"{0}\" already exists")]
    WorkstationExists(String),
    #[error("there is no workstation named \"{0}\"")]
    UnknownWorkstation(String),
    #[error("user \"{0}\" is already assigned to workstation \"{1}\"")]
    AlreadyAssigned(String, String),
    #[error("user \"{0}\" is not assigned to workstation \"{1}\"")]
    NotAssigned(String, String),
    #[error("\"{0}\" is a local account; a directory user of the same name cannot sign in")]
    LocalNameTaken(String),
    #[error("group \"{0}\" is already assigned to workstation \"{1}\"")]
    GroupAlreadyAssigned(String, String),
    #[error("group \"{0}\" is not assigned to workstation \"{1}\"")]
    GroupNotAssigned(String, String),
    #[error("the database holds an invalid value: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the database could not be used at all right now (locked, unreachable, connections
    /// exhausted or lost) rather than refusing this particular change: the caller may try again later,
    /// and nothing was written (every change is one statement or one transaction).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unreachable { .. } => true,
            StoreError::Database(error) => sqlx_unavailable(error),
            _ => false,
        }
    }
}

fn sqlx_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(database) => {
            let code = database.code().unwrap_or_default();
            // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), extended codes keep the low byte.
            let sqlite_busy = code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
            // PostgreSQL: class 08 (connection exception), 57P01-57P03 (shut down, cannot connect now),
            // 53300 (too many connections).
            let postgres_down = code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300");
            sqlite_busy || postgres_down
        }
        _ => false,
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch (the unit of every timestamp column).
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `unix_ms() + duration`, saturating.
pub fn unix_ms_after(duration: Duration) -> i64 {
    unix_ms().saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
    /// Created by a directory sign-in (no local password; see [`crate::directory`]).
    pub directory: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub user: User,
    /// Names of the assigned workstations, sorted.
    pub workstations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workstation {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub domain: Option<String>,
    pub notes: Option<String>,
    /// Pinned certificate fingerprint (SHA-256, lowercase hex), `None` until the first connection.
    pub cert_sha256: Option<String>,
    /// `false`: disabled by an administrator (not offered, no ticket, no native routing).
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct NewWorkstation {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub domain: Option<String>,
    pub notes: Option<String>,
}

/// A live login session (looked up by the hash of its id).
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user: User,
    pub csrf_token: String,
    pub expires_at: i64,
    /// Password accepted, second factor not yet: no ticket, no tunnel.
    pub pending_factor: bool,
    /// When the second factor was completed (`None` when none was asked).
    pub factor_at: Option<i64>,
    /// When the session's first ticket was issued.
    pub first_ticket_at: Option<i64>,
}

/// Second-factor state of one user (`twofa_users`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TwoFactorRow {
    pub method: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub secret_enc: Option<String>,
    /// TOTP algorithm of the current secret (`SHA1`, `SHA256`, `SHA512`), fixed at enrolment.
    pub algorithm: String,
    pub enrolled: bool,
    pub last_step: Option<i64>,
    pub session_at: Option<i64>,
    pub session_ip: Option<String>,
}

/// What a trust-on-first-use report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinOutcome {
    /// No pin existed; this one is now recorded.
    Pinned,
    /// The same fingerprint was already pinned.
    Unchanged,
    /// A different fingerprint is pinned.
    Mismatch { pinned: String },
}

/// A blocked client IP (see [`crate::bruteforce`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedIp {
    pub ip: String,
    pub blocked_at: i64,
    pub blocked_until: i64,
    pub reason: String,
    pub failures: i64,
}

fn blocked_from_row(row: &AnyRow) -> Result<BlockedIp> {
    Ok(BlockedIp {
        ip: row.try_get("ip")?,
        blocked_at: row.try_get("blocked_at")?,
        blocked_until: row.try_get("blocked_until")?,
        reason: row.try_get("reason")?,
        failures: row.try_get("failures")?,
    })
}

/// Creates a missing database file owner-only (it holds password hashes), so that SQLite gives its
/// -wal and -shm files the same mode. An existing file keeps the mode its owner chose.
fn create_private_file(path: &Path) -> Result<()> {
    #[cfg(unix)]
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        if let Err(error) = created {
            if error.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(StoreError::Database(sqlx::Error::Io(error)));
            }
        }
    }
    Ok(())
}

/// The relay's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Starts a transaction that is going to write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`, waiting up to the busy timeout): a deferred transaction that reads first and
    /// writes later fails at once with "database is locked" when another process (a serving relay's
    /// status heartbeat, the CLI) committed in between, because its read snapshot is then stale and
    /// waiting cannot help. PostgreSQL needs nothing special (row locks, `lock_timeout`).
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        directory: row.try_get::<i64, _>("is_directory")? != 0,
    })
}

fn workstation_from_row(row: &AnyRow) -> Result<Workstation> {
    let port: i64 = row.try_get("port")?;
    Ok(Workstation {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        host: row.try_get("host")?,
        port: u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?,
        domain: row.try_get("domain")?,
        notes: row.try_get("notes")?,
        cert_sha256: row.try_get("cert_sha256")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
    })
}

/// The columns `workstation_from_row` reads (a macro so that queries stay `&'static str`).
macro_rules! workstation_columns {
    () => {
        "w.id, w.name, w.host, w.port, w.domain, w.notes, w.cert_sha256, w.enabled"
    };
}

/// Ids of the workstations user `$1` may reach: their own assignments and their directory groups'.
macro_rules! assigned_ids {
    () => {
        "SELECT a.workstation_id FROM assignments a WHERE a.user_id = $1 \
         UNION SELECT g.workstation_id FROM group_assignments g \
         JOIN user_groups ug ON ug.group_name = g.group_name WHERE ug.user_id = $1"
    };
}

impl Store {
    /// Opens (creating if needed) the SQLite database file in WAL mode and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        create_private_file(path)?;
        // sqlx's own encoder turns the path (spaces, `?`, `#`, …) into a URL the Any driver accepts.
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        Self::connect(url.as_str(), Backend::Sqlite).await
    }

    /// Opens the database a URL names (`postgres://user:password@host/db`, `sqlite:/path/file.db`)
    /// and applies pending migrations. Several relays may open the same PostgreSQL database at once:
    /// migrations take an advisory lock and every statement is safe to run concurrently.
    pub async fn open_url(url: &str) -> Result<Store> {
        let backend =
            Backend::of_url(url).ok_or_else(|| StoreError::UnsupportedUrl(redact_url(url)))?;
        if backend == Backend::Sqlite {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(redact_url(url)))?;
            let path = options.get_filename();
            if !path.as_os_str().is_empty()
                && !path.as_os_str().as_encoded_bytes().starts_with(b"file:")
            {
                create_private_file(path)?;
            }
        }
        Self::connect(url, backend).await
    }

    async fn connect(url: &str, backend: Backend) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(url)
            .map_err(|_| StoreError::UnsupportedUrl(redact_url(url)))?;
        // One direct connection first: the pool would retry until its timeout and then report only
        // "timed out", while this reports why (refused, unknown host, authentication failed, …).
        let probe = options
            .connect()
            .await
            .map_err(|error| StoreError::Unreachable {
                target: redact_url(url),
                error,
            })?;
        let _ = probe.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets the CLI write while a relay serves; NORMAL is durable against a
                        // crashed (even kill -9'd) process, only an OS crash may lose the last commits.
                        // Foreign keys are sqlx's default. A writer waits up to 10 s for another
                        // process's write (the CLI next to a serving relay), PostgreSQL's lock_timeout too.
                        // journal_size_limit: a WAL that a burst of writes grew (a sign-in flood) is cut
                        // back to this size whenever a checkpoint restarts it, instead of keeping its
                        // high-water mark on disk; the housekeeping's checkpoint truncates it.
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
                                 PRAGMA journal_size_limit = 67108864",
                            )
                            .await?;
                    } else {
                        // PostgreSQL's counterpart of the busy timeout: a statement stuck behind another
                        // session's lock, or a server that stopped answering, fails with a clear error
                        // (and the transaction rolls back) instead of hanging a command or request.
                        connection
                            .execute("SET lock_timeout = '10s'; SET statement_timeout = '60s'")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|error| StoreError::Unreachable {
                target: redact_url(url),
                error,
            })?;
        backend.migrator().run(&pool).await.map_err(|error| match error {
            // An applied migration this binary does not have: a newer Homedesk upgraded the schema.
            sqlx::migrate::MigrateError::VersionMissing(version) => StoreError::NewerSchema(version),
            other => StoreError::Migrate(other),
        })?;
        Ok(Store { pool, backend })
    }

    /// The database server behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// SQLite: copies the write-ahead log into the database and truncates the WAL file to zero bytes
    /// (`wal_checkpoint(TRUNCATE)`), so its size on disk returns to nothing after a burst of writes.
    /// Waits (busy timeout) for writers of other connections; if readers still use the log it is left
    /// as it is and `Ok(false)` says so (the next call retries). PostgreSQL: nothing to do, `Ok(true)`.
    pub async fn checkpoint_wal(&self) -> Result<bool> {
        if self.backend != Backend::Sqlite {
            return Ok(true);
        }
        let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.pool)
            .await?;
        let busy: i64 = row.try_get(0)?;
        Ok(busy == 0)
    }

    /// Closes the pool, waiting for connections to finish (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---------------------------------------------------------------- users

    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<i64> {
        let result = sqlx::query_scalar(
            "INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(i64::from(is_admin))
        .bind(unix_ms())
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(id) => Ok(id),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::UserExists(username.to_owned()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The user and their password hash, for a login attempt.
    pub async fn user_credentials(&self, username: &str) -> Result<Option<(User, String)>> {
        let row =
            sqlx::query("SELECT id, username, is_admin, is_directory, password_hash FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(row) => Ok(Some((user_from_row(&row)?, row.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    pub async fn user_by_name(&self, username: &str) -> Result<User> {
        let row = sqlx::query(
            "SELECT id, username, is_admin, is_directory FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => user_from_row(&row),
            None => Err(StoreError::UnknownUser(username.to_owned())),
        }
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let row =
            sqlx::query("SELECT id, username, is_admin, is_directory FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Every user name (for matching a possibly truncated native RDP cookie).
    pub async fn usernames(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT username FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn list_users(&self) -> Result<Vec<UserSummary>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.is_admin, u.is_directory, w.name AS workstation FROM users u \
             LEFT JOIN assignments a ON a.user_id = u.id \
             LEFT JOIN workstations w ON w.id = a.workstation_id \
             ORDER BY u.username, w.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut users: Vec<UserSummary> = Vec::new();
        for row in &rows {
            let user = user_from_row(row)?;
            let workstation: Option<String> = row.try_get("workstation")?;
            match users.last_mut() {
                Some(last) if last.user.id == user.id => last.workstations.extend(workstation),
                _ => users.push(UserSummary {
                    user,
                    workstations: workstation.into_iter().collect(),
                }),
            }
        }
        Ok(users)
    }

    pub async fn delete_user(&self, username: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownUser(username.to_owned()));
        }
        Ok(())
    }

    /// Replaces the password hash and ends the user's sessions.
    pub async fn set_password(&self, username: &str, password_hash: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
            .bind(password_hash)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownUser(username.to_owned()));
        }
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)",
        )
        .bind(username)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // --------------------------------------------------------- workstations

    pub async fn create_workstation(&self, new: &NewWorkstation) -> Result<i64> {
        let result = sqlx::query_scalar(
            "INSERT INTO workstations (name, host, port, domain, notes, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.host)
        .bind(i64::from(new.port))
        .bind(&new.domain)
        .bind(&new.notes)
        .bind(unix_ms())
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(id) => Ok(id),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::WorkstationExists(new.name.clone()))
            }
            Err(error) => Err(error.into()),
        }
    }

    pub async fn list_workstations(&self) -> Result<Vec<Workstation>> {
        let sql = concat!(
            "SELECT ",
            workstation_columns!(),
            " FROM workstations w ORDER BY w.name"
        );
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(workstation_from_row).collect()
    }

    pub async fn workstation_by_name(&self, name: &str) -> Result<Workstation> {
        let sql = concat!(
            "SELECT ",
            workstation_columns!(),
            " FROM workstations w WHERE w.name = $1"
        );
        let row = sqlx::query(sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => workstation_from_row(&row),
            None => Err(StoreError::UnknownWorkstation(name.to_owned())),
        }
    }

    pub async fn delete_workstation(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM workstations WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownWorkstation(name.to_owned()));
        }
        Ok(())
    }

    /// Replaces every editable field of workstation `id` in one UPDATE (nothing changes on error); with
    /// `clear_pin` the pinned certificate is forgotten too (a different machine may answer).
    pub async fn update_workstation(
        &self,
        id: i64,
        fields: &NewWorkstation,
        clear_pin: bool,
    ) -> Result<()> {
        let result = sqlx::query(
            "UPDATE workstations SET name = $1, host = $2, port = $3, domain = $4, notes = $5, \
             cert_sha256 = CASE WHEN $6 = 1 THEN NULL ELSE cert_sha256 END WHERE id = $7",
        )
        .bind(&fields.name)
        .bind(&fields.host)
        .bind(i64::from(fields.port))
        .bind(&fields.domain)
        .bind(&fields.notes)
        .bind(i64::from(clear_pin))
        .bind(id)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => {
                Err(StoreError::UnknownWorkstation(fields.name.clone()))
            }
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::WorkstationExists(fields.name.clone()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Enables or disables a workstation (pipes already open are not cut).
    pub async fn set_workstation_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        let done = sqlx::query("UPDATE workstations SET enabled = $1 WHERE name = $2")
            .bind(i64::from(enabled))
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownWorkstation(name.to_owned()));
        }
        Ok(())
    }

    /// Forgets the pinned certificate so that the next successful connection records it again.
    pub async fn clear_pin(&self, name: &str) -> Result<()> {
        let done = sqlx::query("UPDATE workstations SET cert_sha256 = NULL WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownWorkstation(name.to_owned()));
        }
        Ok(())
    }

    /// Pins a known fingerprint (replacing any previous pin).
    pub async fn set_pin(&self, name: &str, sha256: &str) -> Result<()> {
        let done = sqlx::query("UPDATE workstations SET cert_sha256 = $1 WHERE name = $2")
            .bind(sha256)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownWorkstation(name.to_owned()));
        }
        Ok(())
    }

    /// Workstations assigned to a user, sorted by name.
    pub async fn assigned_workstations(&self, user_id: i64) -> Result<Vec<Workstation>> {
        let sql = concat!(
            "SELECT ",
            workstation_columns!(),
            " FROM workstations w WHERE w.id IN (",
            assigned_ids!(),
            ") ORDER BY w.name, w.id"
        );
        let rows = sqlx::query(sql).bind(user_id).fetch_all(&self.pool).await?;
        rows.iter().map(workstation_from_row).collect()
    }

    /// The workstation `workstation_id` if (and only if) it is assigned to `user_id`.
    pub async fn assigned_workstation(
        &self,
        user_id: i64,
        workstation_id: i64,
    ) -> Result<Option<Workstation>> {
        let sql = concat!(
            "SELECT ",
            workstation_columns!(),
            " FROM workstations w WHERE w.id = $2 AND w.id IN (",
            assigned_ids!(),
            ")"
        );
        let row = sqlx::query(sql)
            .bind(user_id)
            .bind(workstation_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(workstation_from_row).transpose()
    }

    /// Trust on first use: records `sha256` if nothing is pinned, else compares.
    pub async fn pin_certificate(&self, workstation_id: i64, sha256: &str) -> Result<PinOutcome> {
        let done = sqlx::query(
            "UPDATE workstations SET cert_sha256 = $1 WHERE id = $2 AND cert_sha256 IS NULL",
        )
        .bind(sha256)
        .bind(workstation_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(PinOutcome::Pinned);
        }
        let pinned: Option<Option<String>> =
            sqlx::query_scalar("SELECT cert_sha256 FROM workstations WHERE id = $1")
                .bind(workstation_id)
                .fetch_optional(&self.pool)
                .await?;
        match pinned {
            Some(Some(pinned)) if pinned == sha256 => Ok(PinOutcome::Unchanged),
            Some(Some(pinned)) => Ok(PinOutcome::Mismatch { pinned }),
            // Repinned (cleared) between the two statements: try once more.
            Some(None) => Box::pin(self.pin_certificate(workstation_id, sha256)).await,
            None => Err(StoreError::UnknownWorkstation(format!("#{workstation_id}"))),
        }
    }

    // ---------------------------------------------------------- assignments

    pub async fn assign(&self, username: &str, workstation: &str) -> Result<()> {
        let user = self.user_by_name(username).await?;
        let ws = self.workstation_by_name(workstation).await?;
        let result = sqlx::query(
            "INSERT INTO assignments (user_id, workstation_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(user.id)
        .bind(ws.id)
        .bind(unix_ms())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::AlreadyAssigned(
                username.to_owned(),
                workstation.to_owned(),
            )),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn unassign(&self, username: &str, workstation: &str) -> Result<()> {
        let user = self.user_by_name(username).await?;
        let ws = self.workstation_by_name(workstation).await?;
        let done =
            sqlx::query("DELETE FROM assignments WHERE user_id = $1 AND workstation_id = $2")
                .bind(user.id)
                .bind(ws.id)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotAssigned(
                username.to_owned(),
                workstation.to_owned(),
            ));
        }
        Ok(())
    }

    /// Lets every member of directory group `group` (normalised by the caller) reach `workstation`.
    pub async fn assign_group(&self, group: &str, workstation: &str) -> Result<()> {
        let ws = self.workstation_by_name(workstation).await?;
        let result =
            sqlx::query("INSERT INTO group_assignments (group_name, workstation_id, created_at) VALUES ($1, $2, $3)")
                .bind(group)
                .bind(ws.id)
                .bind(unix_ms())
                .execute(&self.pool)
                .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::GroupAlreadyAssigned(
                group.to_owned(),
                workstation.to_owned(),
            )),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn unassign_group(&self, group: &str, workstation: &str) -> Result<()> {
        let ws = self.workstation_by_name(workstation).await?;
        let done = sqlx::query(
            "DELETE FROM group_assignments WHERE group_name = $1 AND workstation_id = $2",
        )
        .bind(group)
        .bind(ws.id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::GroupNotAssigned(
                group.to_owned(),
                workstation.to_owned(),
            ));
        }
        Ok(())
    }

    /// (group, workstation name) pairs, sorted.
    pub async fn group_assignments(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT g.group_name, w.name FROM group_assignments g JOIN workstations w ON w.id = g.workstation_id \
             ORDER BY g.group_name, w.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("group_name")?, row.try_get("name")?)))
            .collect()
    }

    // ------------------------------------------------------------ directory

    /// Creates or refreshes the local row of a user who just signed in through the directory, with
    /// their groups as of now. Refuses (`LocalNameTaken`) a name that belongs to a local account.
    pub async fn upsert_directory_user(&self, username: &str, groups: &[String]) -> Result<User> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (username, password_hash, is_admin, is_directory, created_at) \
             VALUES ($1, '', 0, 1, $2) ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(unix_ms())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT id, username, is_admin, is_directory FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_one(&mut *tx)
        .await?;
        let user = user_from_row(&row)?;
        if !user.directory {
            return Err(StoreError::LocalNameTaken(username.to_owned()));
        }
        sqlx::query("DELETE FROM user_groups WHERE user_id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        for group in groups {
            sqlx::query("INSERT INTO user_groups (user_id, group_name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(user.id)
                .bind(group)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    /// The directory groups recorded at the user's latest sign-in.
    pub async fn user_groups(&self, user_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT group_name FROM user_groups WHERE user_id = $1 ORDER BY group_name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One row of the settings table.
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Deletes one row of the settings table; true if it existed.
    pub async fn delete_setting(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM settings WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ------------------------------------------------------------- sessions

    /// A new session; `pending_factor` sessions wait for the second factor.
    pub async fn create_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: i64,
        pending_factor: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at, pending_factor) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(csrf_token)
        .bind(unix_ms())
        .bind(expires_at)
        .bind(i64::from(pending_factor))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired session with this id hash.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.is_admin, u.is_directory, s.id_hash, s.csrf_token, s.expires_at, \
             s.pending_factor, s.factor_at, s.first_ticket_at FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(SessionRecord {
                id_hash: row.try_get("id_hash")?,
                user: user_from_row(&row)?,
                csrf_token: row.try_get("csrf_token")?,
                expires_at: row.try_get("expires_at")?,
                pending_factor: row.try_get::<i64, _>("pending_factor")? != 0,
                factor_at: row.try_get("factor_at")?,
                first_ticket_at: row.try_get("first_ticket_at")?,
            })),
            None => Ok(None),
        }
    }

    /// Turns a pending session into a full one under a new id and CSRF token, atomically: only one
    /// caller can promote a given pending session. Returns whether this call did.
    pub async fn promote_session(
        &self,
        old_hash: &str,
        new_hash: &str,
        csrf_token: &str,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET id_hash = $1, csrf_token = $2, pending_factor = 0, factor_at = $3 \
             WHERE id_hash = $4 AND pending_factor = 1",
        )
        .bind(new_hash)
        .bind(csrf_token)
        .bind(now)
        .bind(old_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the first ticket of a session; true only for the call that set it.
    pub async fn mark_first_ticket(&self, id_hash: &str, now: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE sessions SET first_ticket_at = $1 WHERE id_hash = $2 AND first_ticket_at IS NULL")
                .bind(now)
                .bind(id_hash)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends every session of a user (password change, second-factor reset).
    pub async fn delete_user_sessions(&self, user_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn extend_session(&self, id_hash: &str, expires_at: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET expires_at = $1 WHERE id_hash = $2")
            .bind(expires_at)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // -------------------------------------------------------------- tickets

    pub async fn insert_ticket(
        &self,
        hash: &str,
        user_id: i64,
        workstation_id: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO tickets (hash, user_id, workstation_id, expires_at, used) VALUES ($1, $2, $3, $4, 0)")
            .bind(hash)
            .bind(user_id)
            .bind(workstation_id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks the ticket used, atomically and at most once; returns (user id, workstation id) only
    /// to the one caller whose update changed the row.
    pub async fn consume_ticket(&self, hash: &str, now: i64) -> Result<Option<(i64, i64)>> {
        // One statement: concurrent redemptions (on any relay sharing the database) serialise on the
        // row, and only the update that flipped `used` returns it.
        let row = sqlx::query(
            "UPDATE tickets SET used = 1 WHERE hash = $1 AND used = 0 AND expires_at > $2 \
             RETURNING user_id, workstation_id",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((
                row.try_get("user_id")?,
                row.try_get("workstation_id")?,
            ))),
            None => Ok(None),
        }
    }

    /// Deletes expired tickets and sessions (housekeeping; correctness never depends on it).
    pub async fn purge_expired(&self, now: i64) -> Result<()> {
        sqlx::query("DELETE FROM tickets WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        // Sent codes are kept an hour for the per-hour send limit.
        sqlx::query("DELETE FROM twofa_codes WHERE expires_at <= $1 AND sent_at <= $2")
            .bind(now)
            .bind(now.saturating_sub(3_600_000))
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM audit_log WHERE at <= $1")
            .bind(now.saturating_sub(crate::audit::RETENTION_MS))
            .execute(&self.pool)
            .await?;
        // Rows of a killed relay: long ignored as stale (see `tunnel_sync`), deleted after 10 minutes.
        self.purge_stale_tunnels(now.saturating_sub(600_000)).await?;
        Ok(())
    }

    // -------------------------------------------------------- second factor

    /// Adds a member (`kind` 'user' or 'group'); false if it was already listed.
    pub async fn twofa_member_add(&self, kind: &str, name: &str, at: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO twofa_members (kind, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (kind, name) DO NOTHING",
        )
        .bind(kind)
        .bind(name)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a member; false if it was not listed.
    pub async fn twofa_member_remove(&self, kind: &str, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM twofa_members WHERE kind = $1 AND name = $2")
            .bind(kind)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every member as (kind, name), sorted.
    pub async fn twofa_members(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT kind, name FROM twofa_members ORDER BY kind DESC, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("kind")?, row.try_get("name")?)))
            .collect()
    }

    /// True if the user, or one of `groups`, is a member.
    pub async fn twofa_is_member(&self, username: &str, groups: &[String]) -> Result<bool> {
        let user: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM twofa_members WHERE kind = 'user' AND name = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        if user.is_some() {
            return Ok(true);
        }
        for group in groups {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM twofa_members WHERE kind = 'group' AND name = $1",
            )
            .bind(group)
            .fetch_optional(&self.pool)
            .await?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The user's second-factor row, if any.
    pub async fn twofa_user(&self, user_id: i64) -> Result<Option<TwoFactorRow>> {
        let row = sqlx::query(
            "SELECT method, phone, email, secret_enc, algorithm, enrolled, last_step, session_at, session_ip \
             FROM twofa_users WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TwoFactorRow {
            method: row.try_get("method")?,
            phone: row.try_get("phone")?,
            email: row.try_get("email")?,
            secret_enc: row.try_get("secret_enc")?,
            algorithm: row.try_get("algorithm")?,
            enrolled: row.try_get::<i64, _>("enrolled")? != 0,
            last_step: row.try_get("last_step")?,
            session_at: row.try_get("session_at")?,
            session_ip: row.try_get("session_ip")?,
        }))
    }

    /// Stores a new (not yet confirmed) secret and its TOTP algorithm: enrolment starts over, no step
    /// is spent.
    pub async fn twofa_set_secret(
        &self,
        user_id: i64,
        secret_enc: &str,
        algorithm: &str,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO twofa_users (user_id, secret_enc, algorithm, enrolled, last_step, updated_at) \
             VALUES ($1, $2, $4, 0, NULL, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret_enc = $2, algorithm = $4, enrolled = 0, last_step = NULL, \
             session_at = NULL, session_ip = NULL, updated_at = $3",
        )
        .bind(user_id)
        .bind(secret_enc)
        .bind(at)
        .bind(algorithm)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Spends TOTP time step `step` of the secret `secret_enc` (and marks the user enrolled) in one
    /// conditional UPDATE: it changes the row only if that secret is still current and no step at or
    /// after `step` was accepted, so of two requests racing with one code exactly one gets `true` —
    /// also across relays sharing the database.
    pub async fn twofa_accept_step(
        &self,
        user_id: i64,
        secret_enc: &str,
        step: i64,
        at: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE twofa_users SET last_step = $1, enrolled = 1, updated_at = $2 \
             WHERE user_id = $3 AND secret_enc = $4 AND (last_step IS NULL OR last_step < $1)",
        )
        .bind(step)
        .bind(at)
        .bind(user_id)
        .bind(secret_enc)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the delivery method and its address (the secret and enrolment are kept).
    pub async fn twofa_set_method(
        &self,
        user_id: i64,
        method: &str,
        phone: Option<&str>,
        email: Option<&str>,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO twofa_users (user_id, method, phone, email, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET method = $2, phone = $3, email = $4, updated_at = $5",
        )
        .bind(user_id)
        .bind(method)
        .bind(phone)
        .bind(email)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes the secret, forgets enrolment and the validity window, and ends the user's sessions.
    pub async fn twofa_reset(&self, user_id: i64, at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE twofa_users SET secret_enc = NULL, enrolled = 0, last_step = NULL, session_at = NULL, \
             session_ip = NULL, updated_at = $1 WHERE user_id = $2",
        )
        .bind(at)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts the "validity after first session" window of a user.
    pub async fn twofa_record_session(&self, user_id: i64, at: i64, ip: &str) -> Result<()> {
        sqlx::query("UPDATE twofa_users SET session_at = $1, session_ip = $2 WHERE user_id = $3")
            .bind(at)
            .bind(ip)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a sent code's MAC; returns its row id.
    pub async fn twofa_code_insert(
        &self,
        user_id: i64,
        code_mac: &str,
        sent_at: i64,
        expires_at: i64,
    ) -> Result<i64> {
        let id = sqlx::query_scalar(
            "INSERT INTO twofa_codes (user_id, code_mac, sent_at, expires_at, used) VALUES ($1, $2, $3, $4, 0) \
             RETURNING id",
        )
        .bind(user_id)
        .bind(code_mac)
        .bind(sent_at)
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Forgets a code that could not be delivered (it does not count against the send limit).
    pub async fn twofa_code_delete(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM twofa_codes WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Codes sent to a user after `since`.
    pub async fn twofa_codes_sent_since(&self, user_id: i64, since: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM twofa_codes WHERE user_id = $1 AND sent_at > $2",
        )
        .bind(user_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Spends a sent code: one conditional UPDATE, so of racing requests exactly one succeeds. A
    /// success also voids the user's other outstanding codes.
    pub async fn twofa_code_consume(&self, user_id: i64, code_mac: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE twofa_codes SET used = 1 WHERE user_id = $1 AND code_mac = $2 AND used = 0 AND expires_at > $3",
        )
        .bind(user_id)
        .bind(code_mac)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE twofa_codes SET used = 1 WHERE user_id = $1 AND used = 0")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    // ------------------------------------------------------------- settings

    /// Whether the first admin account was already created (see [`Store::bootstrap_admin`]).
    pub async fn admin_bootstrapped(&self) -> Result<bool> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = 'admin_bootstrapped'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(value.is_some())
    }

    /// Creates the first admin account exactly once per database: `create` runs (inside the same
    /// transaction) only if the `admin_bootstrapped` mark was not set yet. Returns whether it ran.
    pub async fn bootstrap_admin(&self, username: &str, password_hash: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('admin_bootstrapped', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(unix_ms().to_string())
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(false);
        }
        let created = sqlx::query(
            "INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(password_hash)
        .bind(unix_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(created.rows_affected() == 1)
    }

    /// Sets (inserting or replacing) one row of the settings table.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every setting whose name starts with `prefix`.
    pub async fn settings_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        // `length` and `substr` count characters on both backends (LIKE would need escaping and is
        // case-insensitive on SQLite).
        let rows = sqlx::query(
            "SELECT name, value FROM settings WHERE substr(name, 1, length($1)) = $1 ORDER BY name",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("name")?, row.try_get("value")?)))
            .collect()
    }

    // ------------------------------------------------- brute-force defence

    /// Records one failed sign-in, then deletes the oldest rows so that at most `keep_rows` remain
    /// (ids only grow, so this is one indexed range delete).
    pub async fn insert_login_failure(
        &self,
        ip: &str,
        account: Option<&str>,
        at: i64,
        keep_rows: i64,
    ) -> Result<()> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO login_failures (ip, account, at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(ip)
        .bind(account)
        .bind(at)
        .fetch_one(&self.pool)
        .await?;
        let oldest_kept = id.saturating_sub(keep_rows.max(1));
        if oldest_kept > 0 {
            sqlx::query("DELETE FROM login_failures WHERE id <= $1")
                .bind(oldest_kept)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Failures from `ip` after `since` (exclusive).
    pub async fn ip_failures_since(&self, ip: &str, since: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM login_failures WHERE ip = $1 AND at > $2")
                .bind(ip)
                .bind(since)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Failures for `account` after `since` (exclusive), from any IP, and the time of the latest.
    pub async fn account_failures_since(
        &self,
        account: &str,
        since: i64,
    ) -> Result<(i64, Option<i64>)> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n, MAX(at) AS latest FROM login_failures WHERE account = $1 AND at > $2")
                .bind(account)
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
        Ok((row.try_get("n")?, row.try_get("latest")?))
    }

    /// Number of stored failure rows (for the memory bound's tests and diagnostics).
    pub async fn login_failure_rows(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM login_failures")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Blocks (or re-blocks) an IP.
    pub async fn block_ip(&self, block: &BlockedIp) -> Result<()> {
        sqlx::query(
            "INSERT INTO blocked_ips (ip, blocked_at, blocked_until, reason, failures) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (ip) DO UPDATE SET blocked_at = $2, blocked_until = $3, reason = $4, failures = $5",
        )
        .bind(&block.ip)
        .bind(block.blocked_at)
        .bind(block.blocked_until)
        .bind(&block.reason)
        .bind(block.failures)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The block row of an IP, expired or not.
    pub async fn ip_block(&self, ip: &str) -> Result<Option<BlockedIp>> {
        let row = sqlx::query(
            "SELECT ip, blocked_at, blocked_until, reason, failures FROM blocked_ips WHERE ip = $1",
        )
        .bind(ip)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(blocked_from_row).transpose()
    }

    /// Blocks still in force at `now`, newest first.
    pub async fn active_blocks(&self, now: i64) -> Result<Vec<BlockedIp>> {
        let rows = sqlx::query(
            "SELECT ip, blocked_at, blocked_until, reason, failures FROM blocked_ips WHERE blocked_until > $1 \
             ORDER BY blocked_at DESC, ip",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(blocked_from_row).collect()
    }

    /// Lifts the block of an IP and forgets its failures. Returns whether a block row existed.
    pub async fn unblock_ip(&self, ip: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM blocked_ips WHERE ip = $1")
            .bind(ip)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM login_failures WHERE ip = $1")
            .bind(ip)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn whitelist(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT cidr FROM ip_whitelist ORDER BY cidr")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Adds a range; false if it was already listed.
    pub async fn whitelist_add(&self, cidr: &str, at: i64) -> Result<bool> {
        let done =
            sqlx::query("INSERT INTO ip_whitelist (cidr, created_at) VALUES ($1, $2) ON CONFLICT (cidr) DO NOTHING")
                .bind(cidr)
                .bind(at)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a range; false if it was not listed.
    pub async fn whitelist_remove(&self, cidr: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM ip_whitelist WHERE cidr = $1")
            .bind(cidr)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// True if `account` has signed in successfully from `ip` after `since`.
    pub async fn account_ip_known(&self, account: &str, ip: &str, since: i64) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT last_success FROM account_known_ips WHERE account = $1 AND ip = $2 AND last_success > $3",
        )
        .bind(account)
        .bind(ip)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    pub async fn remember_account_ip(&self, account: &str, ip: &str, at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO account_known_ips (account, ip, last_success) VALUES ($1, $2, $3) \
             ON CONFLICT (account, ip) DO UPDATE SET last_success = $3",
        )
        .bind(account)
        .bind(ip)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Housekeeping of the brute-force tables: failures at or before `failures_before`, blocks that
    /// ended at or before `blocks_before`, known IPs last used at or before `known_before`.
    pub async fn purge_security(
        &self,
        failures_before: i64,
        blocks_before: i64,
        known_before: i64,
    ) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE at <= $1")
            .bind(failures_before)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM blocked_ips WHERE blocked_until <= $1")
            .bind(blocks_before)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM account_known_ips WHERE last_success <= $1")
            .bind(known_before)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema change exists for both backends, with the same version and description: a
    /// migration added for one backend only fails here instead of in production.
    #[test]
    fn both_backends_have_the_same_migrations() {
        let versions = |migrator: &sqlx::migrate::Migrator| {
            migrator
                .iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect::<Vec<_>>()
        };
        let sqlite = versions(&SQLITE_MIGRATOR);
        assert!(sqlite.len() >= 2, "{sqlite:?}");
        assert_eq!(sqlite, versions(&POSTGRES_MIGRATOR));
    }

    #[test]
    fn urls_name_their_backend_and_lose_their_password() {
        assert_eq!(
            Backend::of_url("postgres://u:p@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("PostgreSQL://h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("sqlite:/tmp/x.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("mysql://h/db"), None);
        assert_eq!(Backend::of_url("/tmp/x.db"), None);
        let redacted = redact_url("postgres://homedesk:s3cret@db.example:5432/homedesk");
        assert!(
            !redacted.contains("s3cret") && redacted.contains("db.example:5432/homedesk"),
            "{redacted}"
        );
    }

    #[tokio::test]
    async fn sqlite_paths_with_url_characters_open() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("odd name?#%.db");
        let store = Store::open(&path).await.unwrap();
        store.create_user("alice", "hash", false).await.unwrap();
        store.close().await;
        assert!(path.is_file());
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.user_by_name("alice").await.unwrap().username, "alice");
        store.close().await;
    }
}
