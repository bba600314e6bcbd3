//! `relay sessions list|disconnect` and `relay audit`: the console's live sessions and audit log on the
//! command line, a separate process that reaches the serving relay's tunnels only through the database.

use crate::common::*;
use homedesk_relay::audit;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Waits until the relay's tunnel sync has written `count` rows to `live_tunnels`.
async fn wait_for_shared_tunnels(relay: &TestRelay, count: usize) -> Vec<homedesk_relay::store::LiveTunnelRow> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let rows = relay.server().store().live_tunnels(0).await.expect("live tunnels");
        if rows.len() == count {
            return rows;
        }
        assert!(std::time::Instant::now() < deadline, "{count} shared tunnels expected, got {rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lists_the_live_session_and_disconnects_it() {
    let relay = TestRelay::start().await;
    let listed = relay.cli(&["sessions", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(stdout(&listed).trim(), "Nobody is connected right now.");

    let (addr, _) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let alice = relay.login("alice").await;
    let mut ws = relay.tunnel(&relay.ticket(&alice, None).await).await;
    echo_roundtrip(&mut ws, &[7u8; 300]).await;
    let pipes = relay.server().pipes().clone();
    wait_until("counters", || pipes.snapshot().first().is_some_and(|p| p.bytes_down == 300)).await;
    let shared = wait_for_shared_tunnels(&relay, 1).await;
    let (id, relay_id) = (shared[0].id, shared[0].relay_id.clone());

    let listed = relay.cli(&["sessions", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    let row = text
        .lines()
        .find(|line| line.starts_with(&format!("{id} ")))
        .unwrap_or_else(|| panic!("no row of session {id}:\n{text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..4], &[id.to_string().as_str(), "alice", "pc-alice", "browser"], "{text}");
    assert_eq!(cells[4], "127.0.0.1", "{text}");
    assert!(text.contains(&relay_id), "the relay's id: {text}");

    let done = relay.cli(&["sessions", "disconnect", &id.to_string()]);
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(stdout(&done).trim(), format!("Session {id} (alice on pc-alice) disconnected."));
    let (_, close) = read_until_close(&mut ws).await;
    assert_eq!(close_code(&close), Some(4403));
    assert_eq!(
        close.map(|c| c.reason.to_string()).as_deref(),
        Some(homedesk_relay::admin_api::DISCONNECTED)
    );

    let again = relay.cli(&["sessions", "disconnect", &id.to_string()]);
    assert!(!again.status.success(), "a second disconnect must fail");
    let error = stderr(&again);
    assert_eq!(error.trim().lines().count(), 1, "{error}");
    assert!(error.contains(&format!("Session {id} does not exist or has already ended")), "{error}");
    let unknown = relay.cli(&["sessions", "disconnect", "987654321"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("does not exist"), "{}", stderr(&unknown));

    let entries = audit::page(relay.server().store(), "session.disconnect", None, 10).await.expect("audit");
    assert_eq!(entries.len(), 1, "one disconnect, one entry: {entries:?}");
    let entry = &entries[0];
    assert!(entry.actor.starts_with("cli:"), "{entry:?}");
    assert_eq!(entry.target, "pc-alice");
    assert_eq!(entry.detail, "websocket of alice from 127.0.0.1");
}

fn run_ok(relay: &TestRelay, args: &[&str]) -> String {
    let output = relay.cli(args);
    assert!(output.status.success(), "relay {args:?}: {}", stderr(&output));
    stdout(&output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_audit_lists_the_filtered_entries_newest_first() {
    let relay = TestRelay::start().await;
    let (addr, _) = echo_peer().await;
    let port = addr.port().to_string();
    run_ok(&relay, &["user", "add", "bob"]);
    run_ok(&relay, &["workstation", "add", "pc-one", "--host", "127.0.0.1", "--port", &port]);
    run_ok(&relay, &["workstation", "disable", "pc-one"]);
    run_ok(&relay, &["workstation", "enable", "pc-one"]);

    let text = run_ok(&relay, &["audit", "--filter", "WORKSTATION"]);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(header[..4], ["TIME", "ACTOR", "IP", "ACTION"], "{text}");
    let actions: Vec<&str> = lines
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            // time (date, clock, UTC), actor, then action and target (the CLI has no IP).
            assert_eq!(cells[2], "UTC", "{line}");
            assert!(cells[3].starts_with("cli:"), "{line}");
            assert_eq!(cells[5], "pc-one", "{line}");
            cells[4]
        })
        .collect();
    assert_eq!(actions, ["workstation.enable", "workstation.disable", "workstation.add"], "{text}");

    let newest = run_ok(&relay, &["audit", "--limit", "1"]);
    assert_eq!(newest.lines().count(), 2, "header and one entry: {newest}");
    assert!(newest.contains("workstation.enable"), "{newest}");
    let none = run_ok(&relay, &["audit", "--filter", "no such text"]);
    assert_eq!(none.trim(), "(none)");
}

/// A relay that keeps sharing its tunnel but never acts on the close request (overloaded): the
/// disconnect gives up after its wait with a clear error, records nothing, and exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_disconnect_fails_clearly_when_the_serving_relay_does_not_close_in_time() {
    let relay = TestRelay::start().await;
    let store = relay.server().store().clone();
    let row = homedesk_relay::store::LiveTunnelRow {
        id: 424_242,
        relay_id: "busy-relay".to_owned(),
        kind: "native".to_owned(),
        username: "carol".to_owned(),
        workstation: "pc-carol".to_owned(),
        client_ip: "192.0.2.7".to_owned(),
        started_at: homedesk_relay::store::unix_ms(),
        bytes_up: 1,
        bytes_down: 2,
        seen_at: 0,
    };
    let refresher = tokio::spawn(async move {
        loop {
            let now = homedesk_relay::store::unix_ms();
            store.sync_live_tunnels("busy-relay", std::slice::from_ref(&row), now).await.expect("sync");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
    wait_for_shared_tunnels(&relay, 1).await;
    let listed = run_ok(&relay, &["sessions", "list"]);
    assert!(listed.contains("RDP client") && listed.contains("busy-relay"), "{listed}");

    let output = relay.cli(&["sessions", "disconnect", "424242"]);
    refresher.abort();
    assert!(!output.status.success(), "{}", stdout(&output));
    let error = stderr(&output);
    assert_eq!(error.trim().lines().count(), 1, "{error}");
    assert!(error.contains("(busy-relay) did not close it within 15 seconds"), "{error}");
    let entries = audit::page(relay.server().store(), "session.disconnect", None, 10).await.expect("audit");
    assert!(entries.is_empty(), "nothing was disconnected: {entries:?}");
}
