//! Native RDP tunnels in the audit log (open and close, as the WebSocket tunnels), and routing tokens
//! (`Cookie: msts=…`, which name a server address, as a load balancer's client sends them) refused
//! without dialing that address.

use crate::common::*;
use crate::native::{connection_request, expect_closed};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn admin_session(relay: &TestRelay) -> Session {
    let password = relay
        .admin_password
        .clone()
        .expect("first start made the admin");
    let response = relay.login_response("admin", &password).await;
    assert_eq!(response.status, 200, "{}", response.text());
    Session::from_login(&response)
}

/// The newest audit entries containing `filter`.
async fn audit(relay: &TestRelay, admin: &Session, filter: &str) -> Vec<Value> {
    let cookie = admin.cookie_header();
    let path = format!("/api/admin/audit?q={filter}");
    let response = relay
        .request("GET", &path, &[("Cookie", cookie.as_str())], None)
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_tunnels_are_audited_when_they_open_and_close() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    let mut peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", peer.addr)
        .await;

    let request = connection_request(Some("alice"));
    let mut client = TcpStream::connect(relay.https_addr).await.unwrap();
    client.write_all(&request).await.unwrap();
    client.write_all(&[7u8; 300]).await.unwrap();
    let mut workstation = peer.next().await;
    let mut got = vec![0u8; request.len() + 300];
    tokio::time::timeout(TIMEOUT, workstation.read_exact(&mut got))
        .await
        .expect("bytes in time")
        .unwrap();
    workstation.write_all(&[9u8; 500]).await.unwrap();
    let mut down = vec![0u8; 500];
    tokio::time::timeout(TIMEOUT, client.read_exact(&mut down))
        .await
        .expect("bytes in time")
        .unwrap();

    let opened = audit(&relay, &admin, "tunnel.open").await;
    let open: Vec<&Value> = opened
        .iter()
        .filter(|e| e["actor"] == "alice" && e["target"] == "pc-alice")
        .collect();
    assert_eq!(open.len(), 1, "{opened:#?}");
    assert_eq!(open[0]["detail"], "native", "{opened:#?}");
    assert_eq!(open[0]["ip"], "127.0.0.1", "{opened:#?}");

    // The client hangs up; the workstation's side sees EOF and closes too.
    drop(client);
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, workstation.read_to_end(&mut rest)).await;
    drop(workstation);
    let deadline = std::time::Instant::now() + TIMEOUT;
    let closed = loop {
        let closed = audit(&relay, &admin, "tunnel.close").await;
        if !closed.is_empty() {
            break closed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no tunnel.close entry"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(closed.len(), 1, "{closed:#?}");
    assert_eq!(
        (&closed[0]["actor"], &closed[0]["target"]),
        (&"alice".into(), &"pc-alice".into())
    );
    let detail = closed[0]["detail"].as_str().unwrap_or_default();
    let bytes = format!("{} bytes up, 500 bytes down", request.len() + 300);
    assert!(
        detail.starts_with("native; client closed;") && detail.ends_with(&bytes),
        "{detail}"
    );
}

/// A routing token as a load balancer's client sends it (MS-RDPBCGR 2.2.1.1, `Cookie: msts=`): the
/// IPv4 address as the decimal of its little-endian bytes, the port byte-swapped, then `.0000`.
fn routing_token_request(target: SocketAddr) -> Vec<u8> {
    let ip = match target.ip() {
        std::net::IpAddr::V4(ip) => ip,
        other => panic!("IPv4 expected, got {other}"),
    };
    let token = format!(
        "Cookie: msts={}.{}.0000\r\n",
        u32::from_le_bytes(ip.octets()),
        target.port().swap_bytes()
    );
    let mut variable = token.into_bytes();
    variable.extend_from_slice(&[0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00]);
    let length = 11 + variable.len();
    let mut packet = vec![0x03, 0x00];
    packet.extend_from_slice(&(length as u16).to_be_bytes());
    packet.extend_from_slice(&[(length - 5) as u8, 0xE0, 0, 0, 0, 0, 0]);
    packet.extend_from_slice(&variable);
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_token_naming_another_workstation_is_refused_without_dialing() {
    let relay = TestRelay::start().await;
    let mut alice_pc = Peer::start().await;
    let bob_pc = Peer::start().await;
    relay
        .user_with_workstation("alice", "pc-alice", alice_pc.addr)
        .await;
    relay
        .user_with_workstation("bob", "pc-bob", bob_pc.addr)
        .await;
    assert_eq!(bob_pc.addr.ip(), Ipv4Addr::LOCALHOST);
    let refused_before = logs()
        .matches("native RDP refused: no mstshash cookie")
        .count();

    let token = routing_token_request(bob_pc.addr);
    assert!(
        String::from_utf8_lossy(&token).contains("Cookie: msts=16777343."),
        "127.0.0.1 as a routing token"
    );
    for addr in [relay.https_addr, relay.http_addr] {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(&token).await.unwrap();
        assert!(
            expect_closed(&mut client).await.is_empty(),
            "nothing is answered"
        );
    }
    assert_eq!(
        bob_pc.accepted(),
        0,
        "the named workstation is never dialled"
    );
    assert_eq!(alice_pc.accepted(), 0, "nor any other");
    wait_until("both refusals logged", || {
        logs()
            .matches("native RDP refused: no mstshash cookie")
            .count()
            >= refused_before + 2
    })
    .await;

    // The relay keeps routing by user: alice's cookie reaches alice's workstation only.
    let request = connection_request(Some("alice"));
    let mut client = TcpStream::connect(relay.https_addr).await.unwrap();
    client.write_all(&request).await.unwrap();
    let mut workstation = alice_pc.next().await;
    let mut got = vec![0u8; request.len()];
    tokio::time::timeout(TIMEOUT, workstation.read_exact(&mut got))
        .await
        .expect("request in time")
        .unwrap();
    assert_eq!(got, request);
    assert_eq!(bob_pc.accepted(), 0);
}
