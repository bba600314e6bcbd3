//! The serving relay when its database is unusable: SQLite locked by another writer (the relay's 10 s busy
//! timeout runs out first), or the PostgreSQL server gone (`postgres.sh pause`). An admin change and a
//! sign-in get a clear 503 ("nothing was changed"), nothing of them is written, and once the database is
//! back the same requests succeed on the same relay, without a restart.

use crate::common::*;
use homedesk_relay::config::DataDir;
use homedesk_relay::http::DATABASE_UNAVAILABLE;
use std::net::SocketAddr;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_gives_503_writes_nothing_and_the_relay_recovers() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let store = homedesk_relay::server::open_store(&DataDir::new(&dir), None).await.unwrap();
    homedesk_relay::broker::add_user(&store, "alice", Some(PASSWORD.into())).await.unwrap();
    let hash = homedesk_relay::auth::hash_password(PASSWORD).unwrap();
    store.create_user("boss", &hash, true).await.unwrap();

    let (mut child, port) = crate::storage::spawn_relay(&dir, None);
    let https: SocketAddr = ([127, 0, 0, 1], port).into();
    let tls = relay_client_tls(&dir);
    let origin = format!("https://localhost:{port}");
    let request = |path: &'static str, session: Option<Session>, body: String| {
        let (tls, origin) = (tls.clone(), origin.clone());
        async move {
            let mut headers = vec![("Origin", origin), ("Content-Type", "application/json".to_owned())];
            if let Some(session) = session {
                headers.push(("Cookie", session.cookie_header()));
                headers.push(("X-CSRF-Token", session.csrf.clone()));
            }
            let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            https_request(https, &tls, "POST", path, &refs, Some(&body)).await
        }
    };
    let login = |user: &str| serde_json::json!({ "username": user, "password": PASSWORD }).to_string();
    let add_pc = || serde_json::json!({ "name": "pc", "host": "10.0.0.7" }).to_string();
    let response = request("/api/login", None, login("boss")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let admin = Session::from_login(&response);

    // Another process takes the write lock and keeps it.
    let locker = {
        use sqlx::{Connection, Executor};
        let url = format!("sqlite://{}", DataDir::new(&dir).database().display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        connection.execute("BEGIN IMMEDIATE").await.unwrap();
        connection.execute("INSERT INTO settings (name, value) VALUES ('lock-holder', 'x')").await.unwrap();
        connection
    };
    let refused = request("/api/admin/workstations", Some(admin.clone()), add_pc()).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error(), DATABASE_UNAVAILABLE);
    let refused = request("/api/login", None, login("alice")).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error(), DATABASE_UNAVAILABLE);
    {
        use sqlx::Connection;
        locker.close().await.unwrap(); // rolls the lock holder's transaction back
    }

    assert!(
        matches!(
            store.workstation_by_name("pc").await,
            Err(homedesk_relay::store::StoreError::UnknownWorkstation(_))
        ),
        "the refused change left nothing behind"
    );
    let added = request("/api/admin/workstations", Some(admin), add_pc()).await;
    assert_eq!(added.status, 201, "the same relay works again: {}", added.text());
    let signed_in = request("/api/login", None, login("alice")).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
    child.kill().unwrap();
    child.wait().unwrap();
    store.close().await;
}

/// A throwaway PostgreSQL cluster of this test's own (scripts/postgres.sh), deleted on drop.
struct OwnCluster(tempfile::TempDir);

impl OwnCluster {
    fn run(&self, action: &str) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg(action)
            .env("HOMEDESK_PG_DIR", self.0.path().join("pg"))
            .output()
            .expect("run scripts/postgres.sh");
        assert!(out.status.success(), "postgres.sh {action}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres.sh");
        let _ = std::process::Command::new("bash")
            .arg(script)
            .arg("stop")
            .env("HOMEDESK_PG_DIR", self.0.path().join("pg"))
            .output();
    }
}

/// PostgreSQL goes away under a serving relay: a sign-in and an admin change get the same 503 and write
/// nothing; once the server is back, the same relay (its pool reconnecting) serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "PostgreSQL only: run by the PostgreSQL pass of cargo xtask test"]
async fn postgres_going_away_gives_503_and_the_relay_recovers_when_it_is_back() {
    // Under /var/tmp like the script's default: the `postgres` OS user must reach it.
    let cluster = OwnCluster(tempfile::Builder::new().prefix("homedesk-pg-down-").tempdir_in("/var/tmp").unwrap());
    cluster.run("start");
    let url = cluster.run("url");
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let store = homedesk_relay::server::open_store(&DataDir::new(&dir), Some(&url)).await.unwrap();
    homedesk_relay::broker::add_user(&store, "alice", Some(PASSWORD.into())).await.unwrap();
    let hash = homedesk_relay::auth::hash_password(PASSWORD).unwrap();
    store.create_user("boss", &hash, true).await.unwrap();
    store.close().await;

    let (mut child, port) = crate::storage::spawn_relay(&dir, Some(&url));
    let https: SocketAddr = ([127, 0, 0, 1], port).into();
    let tls = relay_client_tls(&dir);
    let origin = format!("https://localhost:{port}");
    let request = |path: &'static str, session: Option<Session>, body: String| {
        let (tls, origin) = (tls.clone(), origin.clone());
        async move {
            let mut headers = vec![("Origin", origin), ("Content-Type", "application/json".to_owned())];
            if let Some(session) = session {
                headers.push(("Cookie", session.cookie_header()));
                headers.push(("X-CSRF-Token", session.csrf.clone()));
            }
            let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            https_request(https, &tls, "POST", path, &refs, Some(&body)).await
        }
    };
    let login = |user: &str| serde_json::json!({ "username": user, "password": PASSWORD }).to_string();
    let add_pc = || serde_json::json!({ "name": "pc", "host": "10.0.0.7" }).to_string();
    let response = request("/api/login", None, login("boss")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let admin = Session::from_login(&response);

    cluster.run("pause");
    let refused = request("/api/admin/workstations", Some(admin.clone()), add_pc()).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error(), DATABASE_UNAVAILABLE);
    let refused = request("/api/login", None, login("alice")).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error(), DATABASE_UNAVAILABLE);

    cluster.run("resume");
    let store = homedesk_relay::server::open_store(&DataDir::new(&dir), Some(&url)).await.unwrap();
    assert!(
        matches!(
            store.workstation_by_name("pc").await,
            Err(homedesk_relay::store::StoreError::UnknownWorkstation(_))
        ),
        "the refused change left nothing behind"
    );
    let added = request("/api/admin/workstations", Some(admin), add_pc()).await;
    assert_eq!(added.status, 201, "the same relay works again: {}", added.text());
    let signed_in = request("/api/login", None, login("alice")).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
    child.kill().unwrap();
    child.wait().unwrap();
    store.close().await;
}
