//! The serving relay when its database is unusable: SQLite locked by another writer (the relay's 10 s busy
//! timeout runs out first), or the PostgreSQL server gone (`postgres.sh pause`). An admin change and a
//! sign-in get a clear 503 ("nothing was changed"), nothing of them is written, and once the database is
//! back the same requests succeed on the same relay, without a restart.

use crate::common::*;
use homedesk_relay::config::DataDir;
use homedesk_relay::http::DATABASE_UNAVAILABLE;
use homedesk_relay::store::{Store, StoreError};

/// A `relay serve` child on the test's database with `alice` (user) and `boss` (administrator), and the
/// administrator's console session.
struct Served {
    child: std::process::Child,
    client: ChildClient,
    admin: Session,
}

async fn serve(dir: &std::path::Path, url: Option<&str>) -> Served {
    let store = homedesk_relay::server::open_store(&DataDir::new(dir), url).await.unwrap();
    homedesk_relay::broker::add_user(&store, "alice", Some(PASSWORD.into())).await.unwrap();
    let hash = homedesk_relay::auth::hash_password(PASSWORD).unwrap();
    store.create_user("boss", &hash, true).await.unwrap();
    store.close().await;
    let (child, port) = crate::storage::spawn_relay(dir, url);
    let client = ChildClient::new(dir, port);
    let response = client.sign_in("boss").await;
    assert_eq!(response.status, 200, "{}", response.text());
    Served { child, client, admin: Session::from_login(&response) }
}

impl Served {
    async fn add_workstation(&self) -> HttpResponse {
        let body = serde_json::json!({ "name": "pc", "host": "10.0.0.7" }).to_string();
        self.client.post("/api/admin/workstations", Some(&self.admin), &body).await
    }

    /// While the database is unusable: the same clear 503 for an admin change and a sign-in.
    async fn assert_unavailable(&self) {
        for refused in [self.add_workstation().await, self.client.sign_in("alice").await] {
            assert_eq!(refused.status, 503, "{}", refused.text());
            assert_eq!(refused.error(), DATABASE_UNAVAILABLE);
        }
    }

    /// Once the database is back: nothing of the refused change was written, and both requests work.
    async fn assert_recovered(mut self, store: &Store) {
        assert!(
            matches!(store.workstation_by_name("pc").await, Err(StoreError::UnknownWorkstation(_))),
            "the refused change left nothing behind"
        );
        let added = self.add_workstation().await;
        assert_eq!(added.status, 201, "the same relay works again: {}", added.text());
        let signed_in = self.client.sign_in("alice").await;
        assert_eq!(signed_in.status, 200, "{}", signed_in.text());
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_gives_503_writes_nothing_and_the_relay_recovers() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let served = serve(&dir, None).await;

    // Another process takes the write lock and keeps it.
    let locker = {
        use sqlx::{Connection, Executor};
        let url = format!("sqlite://{}", DataDir::new(&dir).database().display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        connection.execute("BEGIN IMMEDIATE").await.unwrap();
        connection.execute("INSERT INTO settings (name, value) VALUES ('lock-holder', 'x')").await.unwrap();
        connection
    };
    served.assert_unavailable().await;
    {
        use sqlx::Connection;
        locker.close().await.unwrap(); // rolls the lock holder's transaction back
    }

    let store = homedesk_relay::server::open_store(&DataDir::new(&dir), None).await.unwrap();
    served.assert_recovered(&store).await;
    store.close().await;
}

/// A throwaway PostgreSQL cluster of this test's own (scripts/postgres.sh), deleted on drop.
struct OwnCluster(tempfile::TempDir);

impl OwnCluster {
    fn command(&self, action: &str) -> std::process::Command {
        let mut command = std::process::Command::new("bash");
        command
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres.sh"))
            .arg(action)
            .env("HOMEDESK_PG_DIR", self.0.path().join("pg"));
        command
    }

    fn run(&self, action: &str) -> String {
        let out = self.command(action).output().expect("run scripts/postgres.sh");
        assert!(out.status.success(), "postgres.sh {action}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.command("stop").output();
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
    let served = serve(&dir, Some(&url)).await;

    cluster.run("pause");
    served.assert_unavailable().await;
    cluster.run("resume");

    let store = homedesk_relay::server::open_store(&DataDir::new(&dir), Some(&url)).await.unwrap();
    served.assert_recovered(&store).await;
    store.close().await;
}
