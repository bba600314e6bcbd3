//! A database made by an older Homedesk (only the first migrations applied, rows of that time) is
//! upgraded by the current relay with everything kept and usable; a database upgraded by a newer
//! Homedesk (a migration this binary does not know) stops the start with one clear sentence and is left
//! as it was. SQLite, the embedded default, whose file is what users carry from one version to the next.

use crate::common::*;
use homedesk_relay::config::DataDir;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::path::Path;

/// The migrations of the first releases: users, workstations, assignments, sessions, tickets,
/// settings, brute-force defence and two-factor tables.
const OLD_MIGRATIONS: &[&str] = &["0001_initial.sql", "0002_brute_force.sql", "0003_two_factor.sql"];

async fn old_database(file: &Path) -> sqlx::SqlitePool {
    let options = SqliteConnectOptions::new().filename(file).create_if_missing(true);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    let old = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for name in OLD_MIGRATIONS {
        std::fs::copy(source.join(name), old.path().join(name)).unwrap();
    }
    sqlx::migrate::Migrator::new(old.path()).await.unwrap().run(&pool).await.unwrap();
    pool
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_database_is_upgraded_with_its_rows_intact_and_usable() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let (addr, _) = echo_peer().await;
    let pool = old_database(&DataDir::new(&dir).database()).await;
    let hash = homedesk_relay::auth::hash_password(PASSWORD).unwrap();
    sqlx::query("INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ('alice', $1, 0, 1)")
        .bind(&hash)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO workstations (name, host, port, domain, notes, cert_sha256, created_at) \
         VALUES ('Office PC', $1, $2, 'CORP', 'second floor', NULL, 1)",
    )
    .bind(addr.ip().to_string())
    .bind(i64::from(addr.port()))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO assignments (user_id, workstation_id, created_at) VALUES (1, 1, 1)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // The current code opens it: every later migration applied, the rows as they were.
    let store = homedesk_relay::server::open_store(&DataDir::new(&dir), None).await.unwrap();
    let workstation = store.workstation_by_name("Office PC").await.unwrap();
    assert_eq!(workstation.domain.as_deref(), Some("CORP"));
    assert_eq!(workstation.notes.as_deref(), Some("second floor"));
    assert!(workstation.enabled, "a workstation from before the enabled flag is enabled");
    store.close().await;
    let applied: i64 = {
        let options = SqliteConnectOptions::new().filename(DataDir::new(&dir).database());
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        let count = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        count
    };
    let shipped = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().extension().is_some_and(|e| e == "sql"))
        .count();
    assert_eq!(applied, shipped as i64, "every migration is applied");

    // The old account signs in on the upgraded database and gets a ticket to its old workstation.
    let (mut child, port) = crate::storage::spawn_relay(&dir, None);
    let client = ChildClient::new(&dir, port);
    let response = client.sign_in("alice").await;
    assert_eq!(response.status, 200, "{}", response.text());
    let session = Session::from_login(&response);
    assert_eq!(session.body["workstations"][0]["name"], "Office PC");
    let ticket = client.post("/api/ticket", Some(&session), "{}").await;
    assert_eq!(ticket.status, 200, "{}", ticket.text());
    assert_eq!(ticket.json()["workstation"]["domain"], "CORP");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_homedesk_stops_the_start_and_is_left_alone() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let store = homedesk_relay::server::open_store(&DataDir::new(&dir), None).await.unwrap();
    homedesk_relay::broker::add_user(&store, "alice", Some(PASSWORD.into())).await.unwrap();
    store.close().await;
    let file = DataDir::new(&dir).database();
    let options = SqliteConnectOptions::new().filename(&file);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let before = std::fs::read(&file).unwrap();

    let error = homedesk_relay::server::open_store(&DataDir::new(&dir), None).await.unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("upgraded by a newer Homedesk") && message.contains("9999"),
        "{message}"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["user", "list"])
        .env_remove("HOMEDESK_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("upgraded by a newer Homedesk"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), before, "the database is left as it was");
}
