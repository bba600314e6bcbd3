//! Storage faults: an unreachable or locked database gives one clear error and changes nothing;
//! acknowledged changes survive a relay killed with SIGKILL (both backends).

use crate::common::*;
use homedesk_relay::config::ServeConfig;
use std::net::SocketAddr;
use std::process::Output;

const SECRET: &str = "pg-secret-4711";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A database URL with a password, pointing at a port where nothing listens.
fn unreachable_url(port: u16) -> String {
    format!("postgres://homedesk:{SECRET}@127.0.0.1:{port}/homedesk")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_is_one_clear_error_without_the_password() {
    let closed: SocketAddr = closed_port().await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");

    // The CLI: one line naming the server (password masked), exit 1, no panic.
    let out = cli_on_database(
        &dir,
        Some(&unreachable_url(closed.port())),
        &["user", "list"],
        None,
    );
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    assert!(
        text.starts_with("error: cannot open the database: cannot reach the database at"),
        "{text}"
    );
    assert!(
        text.contains("127.0.0.1:") && text.contains("homedesk:***@") && text.contains("refused"),
        "{text}"
    );
    assert!(
        !text.contains(SECRET) && !text.contains("panicked"),
        "{text}"
    );

    // The server: start fails with a typed error, and nothing was written to the data directory's
    // SQLite file as a fallback.
    let mut config = ServeConfig::new(&dir);
    config.https_port = 0;
    config.http_port = 0;
    config.database_url = Some(unreachable_url(closed.port()));
    let error = homedesk_relay::start(config)
        .await
        .err()
        .expect("start must fail");
    let message = error.to_string();
    assert!(
        message.contains("cannot reach the database") && !message.contains(SECRET),
        "{message}"
    );
    assert!(!dir.join("homedesk.db").exists());

    // Not a database URL at all.
    let out = cli_on_database(
        &dir,
        Some("mysql://root@127.0.0.1/x"),
        &["user", "list"],
        None,
    );
    assert!(
        stderr(&out).contains("unsupported database URL"),
        "{}",
        stderr(&out)
    );
}

/// SQLite: a writer that holds the database's write lock makes an admin change wait (busy timeout),
/// then fail clearly; afterwards nothing of it is in the database and the next change works.
#[test]
fn locked_sqlite_database_fails_clearly_and_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let sqlite = |args: &[&str]| cli_on_database(&dir, None, args, None);
    assert!(sqlite(&["user", "add", "alice"]).status.success());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let locker = runtime.block_on(async {
        use sqlx::{Connection, Executor};
        let path = dir.join("homedesk.db");
        let mut connection =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
        connection.execute("BEGIN IMMEDIATE").await.unwrap();
        connection
            .execute("INSERT INTO settings (name, value) VALUES ('lock-holder', 'x')")
            .await
            .unwrap();
        connection
    });
    let out = sqlite(&["workstation", "add", "pc", "--host", "10.0.0.1"]);
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.starts_with("error: ") && text.contains("database is locked"),
        "{text}"
    );
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    runtime.block_on(async {
        use sqlx::Connection;
        locker.close().await.unwrap(); // rolls the lock holder's transaction back
    });

    let list = String::from_utf8_lossy(&sqlite(&["workstation", "list"]).stdout).into_owned();
    assert!(
        !list.contains("10.0.0.1"),
        "the refused change left nothing: {list}"
    );
    assert!(sqlite(&["workstation", "add", "pc", "--host", "10.0.0.1"])
        .status
        .success());
    assert!(sqlite(&["assign", "alice", "pc"]).status.success());
}

/// Runs `relay serve` as a child process on a test database; returns it with its HTTPS port.
pub fn spawn_relay(
    dir: &std::path::Path,
    database_url: Option<&str>,
) -> (std::process::Child, u16) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_relay"));
    command
        .arg("--data-dir")
        .arg(dir)
        .args([
            "serve",
            "--https-port",
            "0",
            "--http-port",
            "0",
            "--print-ready",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match database_url {
        Some(url) => command.env("HOMEDESK_DATABASE_URL", url),
        None => command.env_remove("HOMEDESK_DATABASE_URL"),
    };
    let mut child = command.spawn().expect("start relay serve");
    let stdout = child.stdout.take().unwrap();
    let mut port = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("relay output");
        if let Some(rest) = line.strip_prefix("HOMEDESK_READY https_port=") {
            port = rest.split(' ').next().and_then(|p| p.parse().ok());
            break;
        }
    }
    (child, port.expect("relay printed its ready line"))
}

/// Every change the relay acknowledged (a session from a 200 login, a failed sign-in counted, a
/// pinned certificate) is still there after `kill -9` and a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_kill_9() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let database_url = database_url_for(&dir);
    let store = open_test_store(&dir).await;
    homedesk_relay::broker::add_user(&store, "alice", Some(PASSWORD.into()))
        .await
        .unwrap();
    let (addr, _) = echo_peer().await;
    homedesk_relay::broker::add_workstation(
        &store,
        "pc",
        &addr.ip().to_string(),
        addr.port(),
        None,
        None,
    )
    .await
    .unwrap();
    homedesk_relay::broker::assign(&store, "alice", "pc")
        .await
        .unwrap();

    let (mut child, port) = spawn_relay(&dir, database_url.as_deref());
    let wrong = serde_json::json!({ "username": "alice", "password": "wrong password" }).to_string();
    let client = ChildClient::new(&dir, port);
    assert_eq!(client.post("/api/login", None, &wrong).await.status, 401);
    let response = client.sign_in("alice").await;
    assert_eq!(response.status, 200, "{}", response.text());
    let session = Session::from_login(&response);

    child.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix: no shutdown code runs
    child.wait().unwrap();

    // Straight from the database: the session and the failed sign-in are there.
    assert_eq!(store.login_failure_rows().await.unwrap(), 1);
    let (mut child, port) = spawn_relay(&dir, database_url.as_deref());
    let ticket = ChildClient::new(&dir, port).post("/api/ticket", Some(&session), "{}").await;
    assert_eq!(
        ticket.status,
        200,
        "the session acknowledged before kill -9 still works: {}",
        ticket.text()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    store.close().await;
}

/// SQLite's write-ahead log keeps its high-water mark on disk after a burst of writes unless it is
/// truncated: the relay's housekeeping pass (run once a minute by the serving relay) checkpoints it
/// with `wal_checkpoint(TRUNCATE)`. Always SQLite (the WAL is SQLite's), whatever the test database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_truncates_the_sqlite_wal() {
    use homedesk_relay::bruteforce::{LimiterConfig, LoginGuard, DEFAULT_MAX_FAILURE_ROWS};
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("homedesk.db");
    let wal = temp.path().join("homedesk.db-wal");
    let store = homedesk_relay::store::Store::open(&path).await.unwrap();
    let guard = LoginGuard::new(
        store.clone(),
        LimiterConfig { clock: homedesk_relay::clock::system(), max_failure_rows: DEFAULT_MAX_FAILURE_ROWS },
    );
    // One 16 MB transaction: the WAL must hold all of it until a checkpoint.
    let big = "x".repeat(16 * 1024 * 1024);
    store.set_setting("test.bulk", &big).await.unwrap();
    let before = std::fs::metadata(&wal).unwrap().len();
    assert!(before >= 16 * 1024 * 1024, "WAL after a 16 MB write: {before} bytes");

    homedesk_relay::server::housekeeping_pass(&store, &guard).await;
    let after = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(after, 0, "WAL after the housekeeping pass ({before} bytes before)");
    // Nothing was lost: the data is in the database file, also for a fresh connection.
    store.close().await;
    let reopened = homedesk_relay::store::Store::open(&path).await.unwrap();
    assert_eq!(reopened.setting("test.bulk").await.unwrap().map(|v| v.len()), Some(big.len()));
    reopened.close().await;
}
