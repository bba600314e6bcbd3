//! The byte pipe: exactness, half-close, protocol violations, isolation, destination control.

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use homedesk_relay::tunnel;
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// Splits `data` into chunks: a burst of 1-byte pieces, 512 KiB pieces, and random sizes.
fn chunks(data: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0usize;
    while at < data.len() {
        let size = if i < 500 {
            1
        } else {
            match i % 4 {
                0 => 512 * 1024,
                1 => 1,
                2 => rng.random_range(1..=4096),
                _ => rng.random_range(1..=300_000),
            }
        };
        let end = (at + size).min(data.len());
        out.push(&data[at..end]);
        at = end;
        i += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipe_is_exact_both_ways_8_mib_with_workstation_half_close() {
    const TOTAL: usize = 8 << 20;
    let relay = TestRelay::start().await;
    let mut peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", peer.addr)
        .await;
    let session = relay.login("alice").await;
    let ticket = relay.ticket(&session, None).await;
    let ws = relay.tunnel(&ticket).await;
    let tcp = peer.next().await;

    let up = random_bytes(TOTAL, 1);
    let down = random_bytes(TOTAL, 2);
    let (up_hash, down_hash) = (Sha256::digest(&up), Sha256::digest(&down));

    // The workstation: reads everything while writing its own 8 MiB, then half-closes its side and
    // waits for the relay to half-close (EOF) after the browser has gone.
    let workstation = tokio::spawn(async move {
        let (mut rd, mut wr) = tcp.into_split();
        let reader = tokio::spawn(async move {
            let mut hasher = Sha256::new();
            let mut total = 0;
            let mut buf = vec![0u8; 100_000];
            while total < TOTAL {
                let n = rd.read(&mut buf).await.expect("workstation read");
                assert!(n > 0, "EOF after {total} bytes");
                hasher.update(&buf[..n]);
                total += n;
            }
            (hasher.finalize(), total, rd)
        });
        for chunk in chunks(&down, 20) {
            wr.write_all(chunk).await.expect("workstation write");
        }
        let (hash, total, mut rd) = reader.await.unwrap();
        wr.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let eof = tokio::time::timeout(TIMEOUT, rd.read_to_end(&mut rest))
            .await
            .expect("EOF in time");
        (hash, total, eof.map(|_| rest.len()))
    });

    let (mut sink, mut stream) = ws.split();
    let sender = tokio::spawn(async move {
        for chunk in chunks(&up, 10) {
            sink.send(Message::Binary(chunk.to_vec().into()))
                .await
                .expect("browser send");
        }
        sink
    });
    let (received, close) = read_until_close(&mut stream).await;
    let mut sink = sender.await.unwrap();
    assert_eq!(received.len(), TOTAL);
    assert!(
        Sha256::digest(&received) == down_hash,
        "workstation → browser bytes differ"
    );
    assert_eq!(close_code(&close), Some(1000));
    assert_eq!(close.unwrap().reason.as_str(), tunnel::WORKSTATION_CLOSED);
    // Complete the close handshake; the relay then half-closes towards the workstation.
    let _ = sink.close().await;

    let (hash, total, rest) = workstation.await.unwrap();
    assert_eq!(total, TOTAL);
    assert!(hash == up_hash, "browser → workstation bytes differ");
    assert_eq!(
        rest.expect("clean EOF"),
        0,
        "nothing after the browser's data"
    );
    wait_until("pipe unregistered", || relay.server().pipes().is_empty()).await;
}

#[tokio::test]
async fn browser_close_half_closes_the_workstation_side() {
    let relay = TestRelay::start().await;
    let mut peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", peer.addr)
        .await;
    let session = relay.login("alice").await;
    let mut ws = relay.tunnel(&relay.ticket(&session, None).await).await;
    let mut tcp = peer.next().await;

    let payload = random_bytes(300_000, 3);
    for chunk in payload.chunks(70_000) {
        ws.send(Message::Binary(chunk.to_vec().into()))
            .await
            .unwrap();
    }
    ws.close(None).await.unwrap();

    // The workstation gets every byte, then EOF right away (a half-close, not the relay giving up
    // on the pipe later), while its own write side still works.
    let started = Instant::now();
    let mut got = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut got))
        .await
        .expect("EOF in time")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "EOF took {:?}",
        started.elapsed()
    );
    assert_eq!(got, payload);
    tcp.write_all(b"late bytes are discarded, not an error")
        .await
        .unwrap();
    drop(tcp);
    // The browser sees the close handshake complete.
    let (_, _) = read_until_close(&mut ws).await;
    wait_until("pipe unregistered", || relay.server().pipes().is_empty()).await;
}

#[tokio::test]
async fn workstation_close_forwards_everything_then_1000() {
    let relay = TestRelay::start().await;
    let mut peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", peer.addr)
        .await;
    let session = relay.login("alice").await;
    let mut ws = relay.tunnel(&relay.ticket(&session, None).await).await;
    let mut tcp = peer.next().await;
    let payload = random_bytes(3 << 20, 4);
    tcp.write_all(&payload).await.unwrap();
    drop(tcp); // full close right after the last write
    let (received, close) = read_until_close(&mut ws).await;
    assert_eq!(received.len(), payload.len());
    assert!(received == payload);
    assert_eq!(close_code(&close), Some(1000));
}

#[tokio::test]
async fn live_pipes_are_listed_with_counters() {
    let relay = TestRelay::start().await;
    let (addr, _) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let session = relay.login("alice").await;
    let mut ws = relay.tunnel(&relay.ticket(&session, None).await).await;
    echo_roundtrip(&mut ws, &[7u8; 1000]).await;
    let pipes = relay.server().pipes().clone();
    wait_until("counters", || {
        let snapshot = pipes.snapshot();
        snapshot.len() == 1 && snapshot[0].bytes_up == 1000 && snapshot[0].bytes_down == 1000
    })
    .await;
    let entry = &pipes.snapshot()[0];
    assert_eq!(
        (entry.username.as_str(), entry.workstation.as_str()),
        ("alice", "pc-alice")
    );
    ws.close(None).await.unwrap();
    let _ = read_until_close(&mut ws).await;
    wait_until("pipe unregistered", || pipes.is_empty()).await;
}

#[tokio::test]
async fn text_message_closes_with_1003() {
    let relay = TestRelay::start().await;
    let (addr, _) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let session = relay.login("alice").await;
    let mut ws = relay.tunnel(&relay.ticket(&session, None).await).await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    let (_, close) = read_until_close(&mut ws).await;
    assert_eq!(close_code(&close), Some(1003));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_closes_with_1009_and_others_continue() {
    let relay = TestRelay::start().await;
    let (addr_a, _) = echo_peer().await;
    let (addr_b, _) = echo_peer().await;
    relay
        .user_with_workstation("alice", "pc-alice", addr_a)
        .await;
    relay.user_with_workstation("bob", "pc-bob", addr_b).await;
    let alice = relay.login("alice").await;
    let bob = relay.login("bob").await;
    let mut bob_ws = relay.tunnel(&relay.ticket(&bob, None).await).await;
    echo_roundtrip(&mut bob_ws, b"before").await;

    let ws = relay.tunnel(&relay.ticket(&alice, None).await).await;
    let (mut sink, mut stream) = ws.split();
    let sender = tokio::spawn(async move {
        let _ = sink.send(Message::Binary(vec![1u8; 2 << 20].into())).await;
        sink
    });
    let (_, close) = read_until_close(&mut stream).await;
    assert_eq!(close_code(&close), Some(1009));
    let _ = tokio::time::timeout(TIMEOUT, sender).await;

    // Bob's pipe is untouched, and Alice can connect again.
    echo_roundtrip(&mut bob_ws, &random_bytes(200_000, 5)).await;
    let mut again = relay.tunnel(&relay.ticket(&alice, None).await).await;
    echo_roundtrip(&mut again, b"after").await;
    // A message of exactly 1 MiB is still fine.
    echo_roundtrip(&mut again, &random_bytes(1 << 20, 6)).await;
}

#[tokio::test]
async fn host_and_port_parameters_are_ignored() {
    let relay = TestRelay::start().await;
    let (assigned, assigned_count) = echo_peer().await;
    let other = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", assigned)
        .await;
    let session = relay.login("alice").await;
    let ticket = relay.ticket(&session, None).await;
    let query = format!(
        "ticket={ticket}&host=127.0.0.1&port={port}&workstation_id=999&address=127.0.0.1:{port}",
        port = other.addr.port()
    );
    let origin = relay.origin();
    let mut ws = relay
        .ws_connect(&query, Some(&origin))
        .await
        .expect("upgrade");
    echo_roundtrip(&mut ws, b"where am I?").await;
    assert_eq!(assigned_count.load(std::sync::atomic::Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        other.accepted(),
        0,
        "the relay must never dial an address from the client"
    );
}

#[tokio::test]
async fn foreign_or_missing_origin_is_refused_before_upgrade() {
    let relay = TestRelay::start().await;
    let peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", peer.addr)
        .await;
    let session = relay.login("alice").await;
    let ticket = relay.ticket(&session, None).await;
    let query = format!("ticket={ticket}");
    let wrong_scheme = format!("http://localhost:{}", relay.https_addr.port());
    for origin in [
        Some("https://evil.example"),
        None,
        Some("null"),
        Some(wrong_scheme.as_str()),
    ] {
        match relay.ws_connect(&query, origin).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 403, "origin {origin:?}"),
            Err(other) => panic!("origin {origin:?}: expected HTTP 403, got {other}"),
            Ok(_) => panic!("origin {origin:?}: the upgrade must be refused"),
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(peer.accepted(), 0, "no connection to the workstation");
    // The refused attempts did not burn the ticket: the real browser can still use it.
    let mut ws = relay.tunnel(&ticket).await;
    ws.send(Message::Binary(vec![1].into())).await.unwrap();
    let mut peer = peer;
    let mut tcp = peer.next().await;
    let mut one = [0u8; 1];
    tcp.read_exact(&mut one).await.unwrap();
    assert_eq!(one, [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_workstation_closes_with_4502_and_others_continue() {
    let relay = TestRelay::start().await; // connect timeout 3 s
    let down = closed_port().await;
    let (up, _) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", down).await;
    relay.user_with_workstation("bob", "pc-bob", up).await;
    let alice = relay.login("alice").await;
    let started = Instant::now();
    let mut ws = relay.tunnel(&relay.ticket(&alice, None).await).await;
    let (_, close) = read_until_close(&mut ws).await;
    assert!(
        started.elapsed() < Duration::from_secs(3) + Duration::from_secs(2),
        "within the connect timeout"
    );
    assert_eq!(close_code(&close), Some(4502));
    assert_eq!(
        close.unwrap().reason.as_str(),
        "The workstation pc-alice cannot be reached."
    );

    let bob = relay.login("bob").await;
    let mut ws = relay.tunnel(&relay.ticket(&bob, None).await).await;
    echo_roundtrip(&mut ws, b"still serving").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_open_pipes_with_1001() {
    let mut relay = TestRelay::start().await;
    let mut peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", peer.addr)
        .await;
    let session = relay.login("alice").await;
    let mut ws = relay.tunnel(&relay.ticket(&session, None).await).await;
    let mut tcp = peer.next().await;
    relay.server().trigger_shutdown();
    let (_, close) = read_until_close(&mut ws).await;
    assert_eq!(close_code(&close), Some(1001));
    drop(ws);
    let mut rest = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut rest))
        .await
        .expect("workstation sees EOF")
        .unwrap();
    let started = Instant::now();
    relay.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stop finishes promptly"
    );
    assert!(
        tokio::net::TcpStream::connect(relay.https_addr)
            .await
            .is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn pipes_are_logged_without_secrets() {
    let relay = TestRelay::start().await;
    let (addr, _) = echo_peer().await;
    relay.user_with_workstation("logan", "pc-logan", addr).await;
    // A password typed into the username field must not end up in the logs either.
    let typo = "Hunter2-typed-into-the-wrong-field";
    assert_eq!(relay.login_response(typo, typo).await.status, 401);
    let session = relay.login("logan").await;
    let ticket = relay.ticket(&session, None).await;
    let mut ws = relay.tunnel(&ticket).await;
    echo_roundtrip(&mut ws, &[9u8; 1234]).await;
    ws.close(None).await.unwrap();
    let _ = read_until_close(&mut ws).await;
    wait_until("pipe unregistered", || relay.server().pipes().is_empty()).await;

    let logs = logs();
    let opened = logs
        .lines()
        .find(|l| l.contains("tunnel opened") && l.contains("user=logan"));
    assert!(
        opened.is_some_and(|l| l.contains("workstation=pc-logan")),
        "{logs}"
    );
    let closed = logs
        .lines()
        .find(|l| l.contains("tunnel closed") && l.contains("user=logan"))
        .expect(&logs);
    for field in [
        "workstation=pc-logan",
        "duration_ms=",
        "bytes_up=1234",
        "bytes_down=1234",
    ] {
        assert!(closed.contains(field), "{field} missing in {closed}");
    }
    for secret in [PASSWORD, typo, &ticket, &session.cookie, &session.csrf] {
        assert!(!logs.contains(secret), "a secret was logged: {secret}");
    }
}
