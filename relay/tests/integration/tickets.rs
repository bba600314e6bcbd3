//! Tickets: expiry, single use, garbage, binding to user and workstation.

use crate::common::*;
use futures_util::SinkExt;
use homedesk_relay::{http, tunnel};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

async fn expect_close(relay: &TestRelay, query: &str) -> (Option<u16>, String) {
    let origin = relay.origin();
    let mut ws = relay
        .ws_connect(query, Some(&origin))
        .await
        .expect("upgrade");
    let (_, close) = read_until_close(&mut ws).await;
    (
        close_code(&close),
        close.map(|c| c.reason.to_string()).unwrap_or_default(),
    )
}

#[tokio::test]
async fn ticket_response_has_the_contract_shape() {
    let relay = TestRelay::start().await;
    let (addr, _) = echo_peer().await;
    let id = relay.user_with_workstation("alice", "pc-alice", addr).await;
    let session = relay.login("alice").await;
    let response = relay.ticket_response(&session, None).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let body = response.json();
    assert_eq!(body["expires_in_secs"], 30);
    assert_eq!(
        body["ticket"].as_str().unwrap().len(),
        43,
        "32 bytes base64url"
    );
    assert_eq!(
        body["workstation"],
        serde_json::json!({
            "id": id, "name": "pc-alice", "host": addr.ip().to_string(), "domain": null, "certificate_sha256": null
        })
    );
}

#[tokio::test]
async fn expired_ticket_is_refused_with_4401() {
    let relay = TestRelay::start_with(Options {
        ticket_ttl: Duration::from_millis(1500),
        ..Options::default()
    })
    .await;
    let (addr, accepted) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let session = relay.login("alice").await;
    let ticket = relay.ticket(&session, None).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (code, reason) = expect_close(&relay, &format!("ticket={ticket}")).await;
    assert_eq!(code, Some(4401));
    assert_eq!(reason, tunnel::TICKET_INVALID);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    // A fresh ticket (same short TTL) used at once works.
    let mut ws = relay.tunnel(&relay.ticket(&session, None).await).await;
    echo_roundtrip(&mut ws, b"fresh").await;
}

#[tokio::test]
async fn ticket_is_single_use() {
    let relay = TestRelay::start().await;
    let (addr, accepted) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let session = relay.login("alice").await;
    let ticket = relay.ticket(&session, None).await;
    let mut ws = relay.tunnel(&ticket).await;
    echo_roundtrip(&mut ws, b"first").await;
    ws.close(None).await.unwrap();
    let (code, _) = expect_close(&relay, &format!("ticket={ticket}")).await;
    assert_eq!(code, Some(4401), "replay refused");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replays_succeed_exactly_once() {
    let relay = TestRelay::start().await;
    let (addr, accepted) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let session = relay.login("alice").await;
    let ticket = relay.ticket(&session, None).await;
    let query = format!("ticket={ticket}");
    let origin = relay.origin();
    let attempts = (0..4).map(|_| relay.ws_connect(&query, Some(&origin)));
    let sockets = futures_util::future::join_all(attempts).await;
    let mut refused = 0;
    let mut working = 0;
    for ws in sockets {
        let mut ws = ws.expect("upgrade");
        ws.send(Message::Binary(b"ping".to_vec().into())).await.ok();
        let mut got = Vec::new();
        let outcome = tokio::time::timeout(TIMEOUT, async {
            use futures_util::StreamExt;
            while let Some(Ok(message)) = ws.next().await {
                match message {
                    Message::Binary(bytes) => {
                        got.extend_from_slice(&bytes);
                        if got == b"ping" {
                            return None;
                        }
                    }
                    Message::Close(frame) => return frame.map(|f| u16::from(f.code)),
                    _ => {}
                }
            }
            Some(0)
        })
        .await
        .expect("outcome in time");
        match outcome {
            None => working += 1,
            Some(4401) => refused += 1,
            Some(other) => panic!("unexpected close {other}"),
        }
    }
    assert_eq!((working, refused), (1, 3));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn garbage_missing_and_unknown_tickets_are_refused() {
    let relay = TestRelay::start().await;
    let (addr, accepted) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let unknown = homedesk_relay::auth::random_token();
    for query in [
        "ticket=garbage".to_owned(),
        String::new(),
        "ticket=".to_owned(),
        format!("ticket={unknown}"),
        "ticket=%FF%FE".to_owned(),
    ] {
        let (code, reason) = expect_close(&relay, &query).await;
        assert_eq!(code, Some(4401), "query {query:?}");
        assert_eq!(reason, tunnel::TICKET_INVALID);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn tickets_are_bound_to_their_user_and_workstation() {
    let relay = TestRelay::start().await;
    let mut alice_peer = Peer::start().await;
    let bob_peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", alice_peer.addr)
        .await;
    let bob_ws = relay
        .user_with_workstation("bob", "pc-bob", bob_peer.addr)
        .await;
    let alice = relay.login("alice").await;

    // Alice cannot even ask for Bob's workstation (nor a nonexistent one: same answer).
    for id in [bob_ws, 9999] {
        let response = relay.ticket_response(&alice, Some(id)).await;
        assert_eq!(response.status, 403);
        assert_eq!(response.error(), http::NOT_ASSIGNED);
    }
    // Her ticket leads to her workstation only.
    let mut ws = relay.tunnel(&relay.ticket(&alice, None).await).await;
    ws.send(Message::Binary(b"x".to_vec().into()))
        .await
        .unwrap();
    let _tcp = alice_peer.next().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(bob_peer.accepted(), 0);
}

#[tokio::test]
async fn several_workstations_default_to_the_first_by_name() {
    let relay = TestRelay::start().await;
    let (first, first_count) = echo_peer().await;
    let (second, second_count) = echo_peer().await;
    relay.add_user("carol").await;
    let second_id = relay.add_workstation("b-second", second).await;
    let first_id = relay.add_workstation("a-first", first).await;
    relay.assign("carol", "b-second").await;
    relay.assign("carol", "a-first").await;
    let carol = relay.login("carol").await;
    let names: Vec<_> = carol.body["workstations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].clone())
        .collect();
    assert_eq!(names, ["a-first", "b-second"]);

    let response = relay.ticket_response(&carol, None).await;
    assert_eq!(response.json()["workstation"]["id"], first_id);
    let mut ws = relay
        .tunnel(response.json()["ticket"].as_str().unwrap())
        .await;
    echo_roundtrip(&mut ws, b"first").await;

    let mut ws = relay
        .tunnel(&relay.ticket(&carol, Some(second_id)).await)
        .await;
    echo_roundtrip(&mut ws, b"second").await;
    assert_eq!(first_count.load(Ordering::SeqCst), 1);
    assert_eq!(second_count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unassigning_invalidates_issued_tickets() {
    let relay = TestRelay::start().await;
    let (addr, accepted) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let session = relay.login("alice").await;
    let ticket = relay.ticket(&session, None).await;
    homedesk_relay::broker::unassign(relay.server().store(), "alice", "pc-alice")
        .await
        .unwrap();
    let (code, reason) = expect_close(&relay, &format!("ticket={ticket}")).await;
    assert_eq!(code, Some(4401));
    assert_eq!(reason, tunnel::NO_LONGER_ASSIGNED);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn disabling_refuses_issued_tickets() {
    let relay = TestRelay::start().await;
    let (addr, accepted) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let session = relay.login("alice").await;
    let ticket = relay.ticket(&session, None).await;
    homedesk_relay::broker::set_workstation_enabled(relay.server().store(), "pc-alice", false)
        .await
        .unwrap();
    let (code, reason) = expect_close(&relay, &format!("ticket={ticket}")).await;
    assert_eq!((code, reason.as_str()), (Some(4401), http::DISABLED));
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}
