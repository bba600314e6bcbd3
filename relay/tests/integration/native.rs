//! Native RDP on the portal's ports: routing by the mstshash cookie to the database's workstation,
//! exact bytes both ways, refusals without dialing, blocked IPs, and HTTPS/HTTP unchanged beside it.

use crate::common::*;
use homedesk_relay::pipes::PipeKind;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An X.224 Connection Request as xfreerdp sends it: optional cookie, then RDP_NEG_REQ (TLS | CredSSP).
pub fn connection_request(cookie_user: Option<&str>) -> Vec<u8> {
    let mut variable = Vec::new();
    if let Some(user) = cookie_user {
        variable.extend_from_slice(format!("Cookie: mstshash={user}\r\n").as_bytes());
    }
    variable.extend_from_slice(&[0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00]);
    let length = 11 + variable.len();
    let mut packet = vec![0x03, 0x00];
    packet.extend_from_slice(&(length as u16).to_be_bytes());
    packet.extend_from_slice(&[(length - 5) as u8, 0xE0, 0, 0, 0, 0, 0]);
    packet.extend_from_slice(&variable);
    packet
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// Reads until EOF (or an error such as a reset); panics if the relay keeps the connection open.
pub async fn expect_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(TIMEOUT, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the relay closes the connection");
    got
}

/// Sends `up` from the client and `down` from the workstation at the same time; checks both by hash.
async fn exchange(client: TcpStream, workstation: TcpStream, up: Vec<u8>, down: Vec<u8>) {
    async fn send_and_hash(stream: TcpStream, send: Vec<u8>, expect: usize) -> [u8; 32] {
        let (mut rd, mut wr) = stream.into_split();
        let writer = tokio::spawn(async move {
            wr.write_all(&send).await.expect("write");
            wr
        });
        let mut hasher = Sha256::new();
        let mut total = 0;
        let mut buf = vec![0u8; 65536];
        while total < expect {
            let n = rd.read(&mut buf).await.expect("read");
            assert!(n > 0, "EOF after {total} of {expect} bytes");
            hasher.update(&buf[..n]);
            total += n;
        }
        let _ = writer.await.expect("writer");
        hasher.finalize().into()
    }
    let (up_hash, down_hash): ([u8; 32], [u8; 32]) =
        (Sha256::digest(&up).into(), Sha256::digest(&down).into());
    let (up_len, down_len) = (up.len(), down.len());
    let at_client = tokio::spawn(send_and_hash(client, up, down_len));
    let at_workstation = tokio::spawn(send_and_hash(workstation, down, up_len));
    let (got_down, got_up) = tokio::time::timeout(TIMEOUT, async {
        (
            at_client.await.expect("client task"),
            at_workstation.await.expect("workstation task"),
        )
    })
    .await
    .expect("exchange in time");
    assert_eq!(got_up, up_hash, "client → workstation bytes differ");
    assert_eq!(got_down, down_hash, "workstation → client bytes differ");
}

/// Connects to `addr`, sends the request for `user` and returns the workstation's side (already
/// checked to have received exactly the request first).
async fn native_tunnel(addr: SocketAddr, user: &str, peer: &mut Peer) -> (TcpStream, TcpStream) {
    let request = connection_request(Some(user));
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&request).await.unwrap();
    let mut workstation = peer.next().await;
    let mut got = vec![0u8; request.len()];
    tokio::time::timeout(TIMEOUT, workstation.read_exact(&mut got))
        .await
        .expect("request in time")
        .unwrap();
    assert_eq!(
        got, request,
        "the workstation receives exactly the connection request"
    );
    (client, workstation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_routes_to_the_assigned_workstation_exactly_and_web_still_works() {
    let relay = TestRelay::start().await;
    let mut peer = Peer::start().await;
    let other = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", peer.addr)
        .await;
    relay
        .user_with_workstation("bob", "pc-bob", other.addr)
        .await;

    // The request is forwarded first, then 2 MiB each way (the client's first bytes in the same
    // segment as the request), checksummed.
    let (client, workstation) = native_tunnel(relay.https_addr, "alice", &mut peer).await;
    let pipes = relay.server().pipes().snapshot();
    assert_eq!(pipes.len(), 1);
    assert_eq!(
        (
            pipes[0].kind,
            pipes[0].username.as_str(),
            pipes[0].workstation.as_str()
        ),
        (PipeKind::Native, "alice", "pc-alice")
    );
    exchange(
        client,
        workstation,
        random_bytes(2 << 20, 1),
        random_bytes(2 << 20, 2),
    )
    .await;
    wait_until("native pipe closed", || relay.server().pipes().is_empty()).await;
    // Other tests also log closes of alice's pc-alice tunnels (the log is shared): find this one's, the
    // only one that carried 2 MiB down.
    let ours = |l: &&str| {
        l.contains("native tunnel closed")
            && l.contains("pc-alice")
            && l.contains(&format!("bytes_down={}", 2 << 20))
    };
    wait_until("close logged", || logs().lines().any(|l| ours(&l))).await;
    let log = logs();
    let line = log.lines().find(ours).expect("log line");
    assert!(
        line.contains("user=alice")
            && line.contains("ip=127.0.0.1")
            && line.contains("duration_ms="),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "bytes_up={}",
            (2 << 20) + connection_request(Some("alice")).len()
        )),
        "{line}"
    );
    assert!(line.contains(&format!("bytes_down={}", 2 << 20)), "{line}");

    // The request and the client's next bytes in one write: nothing is lost or reordered.
    let mut request = connection_request(Some("alice"));
    let tail = random_bytes(5000, 3);
    request.extend_from_slice(&tail);
    let mut client = TcpStream::connect(relay.https_addr).await.unwrap();
    client.write_all(&request).await.unwrap();
    let mut workstation = peer.next().await;
    let mut got = vec![0u8; request.len()];
    tokio::time::timeout(TIMEOUT, workstation.read_exact(&mut got))
        .await
        .expect("in time")
        .unwrap();
    assert_eq!(got, request);
    drop(client);
    assert!(expect_closed(&mut workstation).await.is_empty());

    // The plain-HTTP port routes native RDP the same way.
    let (client, workstation) = native_tunnel(relay.http_addr, "alice", &mut peer).await;
    exchange(
        client,
        workstation,
        random_bytes(1000, 4),
        random_bytes(3000, 5),
    )
    .await;

    // Alice never reaches anything but her workstation: bob's got nothing.
    assert_eq!(other.accepted(), 0);

    // HTTPS and HTTP still work on the same ports.
    let session = relay.login("alice").await;
    assert_eq!(session.body["workstations"][0]["name"], "pc-alice");
    let redirect = http_request(relay.http_addr, "/x?y=1", "desk.example").await;
    assert_eq!(redirect.status, 308);
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://desk.example:{}/x?y=1", relay.https_addr.port()).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_close_without_dialing() {
    let relay = TestRelay::start().await;
    let peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", peer.addr)
        .await;
    relay.add_user("carol").await; // no workstation
    let (dave_addr, _) = echo_peer().await;
    relay
        .user_with_workstation("dave", "pc-dave", dave_addr)
        .await;
    homedesk_relay::broker::set_workstation_enabled(relay.server().store(), "pc-dave", false)
        .await
        .unwrap();

    let mut oversized = vec![0x03, 0x00, 0x04, 0x01]; // 1025 bytes announced
    oversized.resize(1025, b'a');
    let mut confirm = connection_request(Some("alice"));
    confirm[5] = 0xD0; // a Connection Confirm, not a Request
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "user without a workstation",
            connection_request(Some("carol")),
        ),
        ("disabled workstation", connection_request(Some("dave"))),
        ("unknown user", connection_request(Some("mallory"))),
        ("no cookie", connection_request(None)),
        (
            "cookie with a control character",
            connection_request(Some("ali\u{1b}ce")),
        ),
        ("case differs", connection_request(Some("ALICE"))),
        ("oversized", oversized),
        ("not a connection request", confirm),
        (
            "truncated then EOF",
            connection_request(Some("alice"))[..15].to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        for addr in [relay.https_addr, relay.http_addr] {
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(&bytes).await.unwrap();
            if what == "truncated then EOF" {
                client.shutdown().await.unwrap();
            }
            assert!(
                expect_closed(&mut client).await.is_empty(),
                "{what}: nothing is answered"
            );
        }
    }
    assert_eq!(
        peer.accepted(),
        0,
        "no refused request dials the workstation"
    );
    let log = logs();
    assert!(log.contains("native RDP refused: no workstation assigned"));
    assert!(log.contains("native RDP refused: workstation disabled by the administrator"));
    assert!(log.contains("native RDP refused: unknown user"));
    assert!(log.contains("native RDP refused: no mstshash cookie"));
    assert!(log.contains("native RDP refused: bad connection request"));

    // The relay keeps serving: a valid request still goes through.
    let mut peer = peer;
    let (client, workstation) = native_tunnel(relay.https_addr, "alice", &mut peer).await;
    exchange(client, workstation, b"ping".to_vec(), b"pong".to_vec()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_first_bytes_are_http_and_the_relay_keeps_serving() {
    let relay = TestRelay::start().await;
    // Plain HTTP on the HTTPS port: redirected to the same port over HTTPS.
    let response = http_request(relay.https_addr, "/api/session", "localhost").await;
    assert_eq!(response.status, 308);
    let location = format!("https://localhost:{}/api/session", relay.https_addr.port());
    assert_eq!(response.header("location"), Some(location.as_str()));
    // Garbage: an HTTP error response or a clean close, never a hang.
    for garbage in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"HELLO\r\n\r\n",
        b"\xff\xfe\xfd",
        b"\x04\x00\x00\x0b",
    ] {
        let mut client = TcpStream::connect(relay.https_addr).await.unwrap();
        client.write_all(garbage).await.unwrap();
        let answer = expect_closed(&mut client).await;
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    // A connection that sends nothing does not block others.
    let _silent = TcpStream::connect(relay.https_addr).await.unwrap();
    let response = relay.request("GET", "/api/session", &[], None).await;
    assert_eq!(response.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_ip_loses_its_native_tunnel_and_cannot_open_another() {
    let relay = TestRelay::start().await;
    let mut peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", peer.addr)
        .await;
    let (mut client, mut workstation) = native_tunnel(relay.https_addr, "alice", &mut peer).await;

    // Ten failed sign-ins from this IP (127.0.0.1) block it: its live native tunnel closes.
    for _ in 0..10 {
        assert_eq!(relay.login_response("alice", "wrong").await.status, 401);
    }
    assert_eq!(relay.login_response("alice", PASSWORD).await.status, 429);
    expect_closed(&mut client).await;
    expect_closed(&mut workstation).await;
    wait_until("pipe removed", || relay.server().pipes().is_empty()).await;

    // A new native connection is refused before any dialing.
    let mut client = TcpStream::connect(relay.https_addr).await.unwrap();
    client
        .write_all(&connection_request(Some("alice")))
        .await
        .unwrap();
    assert!(expect_closed(&mut client).await.is_empty());
    assert_eq!(peer.accepted(), 1);
    assert!(logs().contains("native RDP refused: blocked IP"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_live_native_tunnels() {
    let mut relay = TestRelay::start().await;
    let mut peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", peer.addr)
        .await;
    let (mut client, mut workstation) = native_tunnel(relay.https_addr, "alice", &mut peer).await;
    let started = Instant::now();
    relay.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop does not wait for the grace period"
    );
    expect_closed(&mut client).await;
    expect_closed(&mut workstation).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mstsc_cookie_variants_route_to_one_user_or_are_refused() {
    let relay = TestRelay::start().await;
    let mut alexander = Peer::start().await;
    let smith = Peer::start().await;
    let mut margaretha = Peer::start().await;
    relay
        .user_with_workstation("alexander", "pc-alexander", alexander.addr)
        .await;
    relay
        .user_with_workstation("alexandersmith", "pc-smith", smith.addr)
        .await;
    relay
        .user_with_workstation("margaretha", "pc-margaretha", margaretha.addr)
        .await;

    // DOMAIN\user, user@domain and a 9-character truncation that only one user fits.
    for cookie in [
        "CORP\\margaretha",
        "margaretha@corp.example",
        "margareth",
        "CORP\\marg",
    ] {
        let (client, _workstation) = native_tunnel(relay.https_addr, cookie, &mut margaretha).await;
        drop(client);
    }
    // Not truncated (10 characters): exact after the domain.
    let (client, _workstation) =
        native_tunnel(relay.https_addr, "CORP\\alexander", &mut alexander).await;
    drop(client);

    // "alexander" may be alexandersmith's truncated cookie: refused, neither workstation dialled.
    for cookie in ["alexander", "CORP\\alex"] {
        let mut client = TcpStream::connect(relay.https_addr).await.unwrap();
        client
            .write_all(&connection_request(Some(cookie)))
            .await
            .unwrap();
        assert!(expect_closed(&mut client).await.is_empty(), "{cookie}");
    }
    assert_eq!(alexander.accepted(), 1, "only the exact CORP\\alexander");
    assert_eq!(smith.accepted(), 0);
    assert!(
        logs().contains("native RDP refused: the cookie may be a truncated name of several users")
    );
}
