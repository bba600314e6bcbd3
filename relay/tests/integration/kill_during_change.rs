//! `kill -9` of a serving relay in the middle of a stream of admin changes: after a restart every change
//! the relay acknowledged is there, the one in flight is either wholly there or not at all, and SQLite's
//! own integrity check passes. Three kill points, after 1, 30 and 120 acknowledged changes.

use crate::common::*;
use homedesk_relay::config::DataDir;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_a_kill_in_the_middle_of_a_stream_of_changes() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let store = homedesk_relay::server::open_store(&DataDir::new(&dir), None).await.unwrap();
    let hash = homedesk_relay::auth::hash_password(PASSWORD).unwrap();
    store.create_user("boss", &hash, true).await.unwrap();
    store.close().await;

    let mut next = 0usize;
    // Kill points: once this many changes of the round were acknowledged (the stream keeps going).
    for (round, kill_after) in [1usize, 30, 120].into_iter().enumerate() {
        let (mut child, port) = crate::storage::spawn_relay(&dir, None);
        let client = ChildClient::new(&dir, port);
        let login = client.sign_in("boss").await;
        assert_eq!(login.status, 200, "{}", login.text());
        let admin = Session::from_login(&login);

        // Workstations added one after another; each name is recorded once its 201 has arrived.
        let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
        let first = next;
        let stream = {
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for n in first.. {
                    let name = format!("pc-{n}");
                    let body = serde_json::json!({ "name": name, "host": "10.0.0.1", "port": 3389 }).to_string();
                    // In its own task: the helper panics when the connection breaks, which here is expected.
                    let (client, admin) = (client.clone(), admin.clone());
                    let request = tokio::spawn(async move {
                        client.post("/api/admin/workstations", Some(&admin), &body).await
                    });
                    match tokio::time::timeout(Duration::from_secs(5), request).await {
                        Ok(Ok(response)) if response.status == 201 => acknowledged.lock().unwrap().push(name),
                        _ => return n, // the relay is gone: this change was in flight
                    }
                }
                unreachable!()
            })
        };
        wait_until("enough acknowledged changes", || acknowledged.lock().unwrap().len() >= kill_after).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let in_flight = format!("pc-{}", stream.await.unwrap());
        let acknowledged = acknowledged.lock().unwrap().clone();
        eprintln!("round {round}: {} acknowledged before kill -9, {in_flight} in flight", acknowledged.len());
        assert!(!acknowledged.is_empty(), "round {round}: some changes were acknowledged before the kill");

        let store = homedesk_relay::server::open_store(&DataDir::new(&dir), None).await.unwrap();
        for name in &acknowledged {
            let stored = store.workstation_by_name(name).await;
            assert!(stored.is_ok(), "round {round}: acknowledged {name} is gone after kill -9");
        }
        // The one in flight: wholly there (with its fields) or not at all.
        if let Ok(workstation) = store.workstation_by_name(&in_flight).await {
            assert_eq!((workstation.host.as_str(), workstation.port), ("10.0.0.1", 3389));
        }
        let total = store.list_workstations().await.unwrap().len();
        assert!(
            total == first + acknowledged.len() || total == first + acknowledged.len() + 1,
            "round {round}: {total} workstations for {} acknowledged before",
            first + acknowledged.len()
        );
        next = total;
        store.close().await;

        let url = format!("sqlite://{}", DataDir::new(&dir).database().display());
        let mut connection = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
        let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut connection).await.unwrap();
        assert_eq!(check, "ok", "round {round}");
        sqlx::Connection::close(connection).await.unwrap();
    }
}
