//! Web server management: port changes, restart, stop and start on a serving relay through the CLI and
//! the admin API, without cutting open pipes (WebSocket tunnels and native RDP); a port in use is refused
//! with the old listener kept; stored settings versus `relay serve` flags.

use crate::common::*;
use crate::native::connection_request;
use homedesk_relay::config::ServeConfig;
use homedesk_relay::server_admin::PinnedByFlags;
use serde_json::json;
use std::net::SocketAddr;
use std::process::Output;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Runs the CLI on the relay's database without blocking the runtime the relay serves on.
async fn cli(relay: &TestRelay, args: &[&str]) -> Output {
    let dir = relay.data_dir.clone();
    let url = relay.database_url.clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_on_database(&dir, url.as_deref(), &args, None)
    })
    .await
    .unwrap()
}

fn out(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn admin_session(relay: &TestRelay) -> Session {
    let password = relay.admin_password.clone().expect("first start");
    let response = relay.login_response("admin", &password).await;
    assert_eq!(response.status, 200, "{}", response.text());
    Session::from_login(&response)
}

/// A port nothing listens on right now.
async fn free_port() -> u16 {
    closed_port().await.port()
}

async fn refuses(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_err()
}

async fn serves_portal(addr: SocketAddr, relay: &TestRelay) -> bool {
    https_request(addr, &relay.tls, "GET", "/api/portal", &[], None)
        .await
        .status
        == 200
}

/// An open native RDP pipe (through the relay's HTTPS port) to an echo workstation.
async fn native_pipe(addr: SocketAddr, user: &str) -> TcpStream {
    let request = connection_request(Some(user));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut echoed = vec![0u8; request.len()];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(echoed, request);
    stream
}

async fn native_roundtrip(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(payload).await.unwrap();
    let mut got = vec![0u8; payload.len()];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut got))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(got, payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_change_keeps_open_pipes_and_moves_the_listeners() {
    let relay = TestRelay::start().await;
    let (workstation, _) = echo_peer().await;
    relay
        .user_with_workstation("alice", "pc", workstation)
        .await;
    let session = relay.login("alice").await;
    let ticket = relay.ticket(&session, None).await;
    let mut tunnel = relay.tunnel(&ticket).await;
    echo_roundtrip(&mut tunnel, b"before the move").await;
    let mut native = native_pipe(relay.https_addr, "alice").await;

    let (https, http) = (free_port().await, free_port().await);
    let output = cli(
        &relay,
        &[
            "server",
            "set",
            "--https-port",
            &https.to_string(),
            "--http-port",
            &http.to_string(),
        ],
    )
    .await;
    assert!(output.status.success(), "{}", out(&output));
    assert!(
        out(&output).contains(&format!("HTTPS on 127.0.0.1:{https}")),
        "{}",
        out(&output)
    );

    // Open pipes pass bytes both ways after the move.
    echo_roundtrip(&mut tunnel, &vec![7u8; 200_000]).await;
    native_roundtrip(&mut native, b"native bytes after the move").await;

    // The new ports serve, the old ones refuse.
    let new_https = SocketAddr::from(([127, 0, 0, 1], https));
    let new_http = SocketAddr::from(([127, 0, 0, 1], http));
    assert!(serves_portal(new_https, &relay).await);
    let redirect = http_request(new_http, "/x", "localhost").await;
    assert_eq!(redirect.status, 308);
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://localhost:{https}/x").as_str())
    );
    assert!(
        refuses(relay.https_addr).await,
        "old HTTPS port still accepts"
    );
    assert!(
        refuses(relay.http_addr).await,
        "old HTTP port still accepts"
    );

    // Stored for the next start, and the status shows both listeners where they are now.
    let store = relay.server().store();
    assert_eq!(
        store.setting("server.https_port").await.unwrap(),
        Some(https.to_string())
    );
    let status = cli(&relay, &["server", "status"]).await;
    let text = out(&status);
    assert!(
        text.contains(&format!("127.0.0.1:{https}")) && text.contains(&format!("127.0.0.1:{http}")),
        "{text}"
    );
    assert!(text.contains("listening"), "{text}");

    // A new tunnel works on the new port.
    echo_roundtrip(&mut tunnel, b"still the first tunnel").await;
    drop(native);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_refused_clearly_and_the_old_listener_keeps_serving() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    let occupied = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = occupied.local_addr().unwrap().port();

    // Admin API: 409 with the reason.
    let response = relay
        .post(
            "/api/admin/server/settings",
            Some(&admin),
            &format!(r#"{{"https_port":{port}}}"#),
        )
        .await;
    assert_eq!(response.status, 409, "{}", response.text());
    let error = response.error();
    assert!(
        error.contains(&format!("127.0.0.1:{port}"))
            && error.contains("already in use")
            && error.contains("keeps serving"),
        "{error}"
    );
    // CLI: the same sentence, exit 1.
    let output = cli(
        &relay,
        &["server", "set", "--https-port", &port.to_string()],
    )
    .await;
    assert!(!output.status.success());
    assert!(out(&output).contains("already in use"), "{}", out(&output));

    // Nothing changed: the old listener serves, nothing was stored, the status names the error.
    assert!(serves_portal(relay.https_addr, &relay).await);
    assert_eq!(
        relay
            .server()
            .store()
            .setting("server.https_port")
            .await
            .unwrap(),
        None
    );
    let status = relay
        .request(
            "GET",
            "/api/admin/server",
            &[("Cookie", &admin.cookie_header())],
            None,
        )
        .await;
    assert_eq!(status.status, 200, "{}", status.text());
    let body = status.json();
    let https = body["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "https")
        .unwrap()
        .clone();
    assert_eq!(https["address"], relay.https_addr.to_string());
    assert_eq!(https["state"], "listening");
    assert!(
        https["error"]
            .as_str()
            .unwrap_or_default()
            .contains("already in use"),
        "{body}"
    );

    // Invalid input is refused before any relay is asked.
    let response = relay
        .post(
            "/api/admin/server/settings",
            Some(&admin),
            r#"{"bind":"not-an-ip"}"#,
        )
        .await;
    assert_eq!(response.status, 400, "{}", response.text());
    let response = relay
        .post(
            "/api/admin/server/settings",
            Some(&admin),
            r#"{"web_root":"/no/such/dir"}"#,
        )
        .await;
    assert_eq!(response.status, 409, "{}", response.text());
    assert!(
        response.error().contains("/no/such/dir"),
        "{}",
        response.error()
    );
    drop(occupied);

    // Non-admins get 403.
    relay.add_user("bob").await;
    let bob = relay.login("bob").await;
    let response = relay
        .post("/api/admin/server/restart", Some(&bob), "")
        .await;
    assert_eq!(response.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_stop_and_start_keep_open_pipes() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    let (workstation, _) = echo_peer().await;
    relay
        .user_with_workstation("alice", "pc", workstation)
        .await;
    let session = relay.login("alice").await;
    let ticket = relay.ticket(&session, None).await;
    let mut tunnel = relay.tunnel(&ticket).await;
    let mut native = native_pipe(relay.https_addr, "alice").await;

    let response = relay
        .post("/api/admin/server/restart", Some(&admin), "")
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Restarted"),
        "{}",
        response.text()
    );
    // Audited like `relay server restart` (`settings.change`, target `server`), with the outcome.
    let audit = relay
        .request(
            "GET",
            "/api/admin/audit?q=server",
            &[("Cookie", &admin.cookie_header())],
            None,
        )
        .await
        .json();
    let entry = &audit["entries"][0];
    assert_eq!(
        (&entry["action"], &entry["actor"], &entry["target"]),
        (&json!("settings.change"), &json!("admin"), &json!("server")),
        "{audit}"
    );
    assert!(
        entry["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Restarted"),
        "{audit}"
    );
    echo_roundtrip(&mut tunnel, b"after restart").await;
    native_roundtrip(&mut native, b"native after restart").await;
    assert!(
        serves_portal(relay.https_addr, &relay).await,
        "same port after restart"
    );

    let output = cli(&relay, &["server", "stop"]).await;
    assert!(output.status.success(), "{}", out(&output));
    assert!(refuses(relay.https_addr).await, "stopped listener accepts");
    echo_roundtrip(&mut tunnel, b"after stop").await;
    native_roundtrip(&mut native, b"native after stop").await;
    let status = out(&cli(&relay, &["server", "status"]).await);
    assert!(status.contains("stopped"), "{status}");

    let output = cli(&relay, &["server", "start"]).await;
    assert!(output.status.success(), "{}", out(&output));
    assert!(serves_portal(relay.https_addr, &relay).await);
    echo_roundtrip(&mut tunnel, b"after start").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_settings_apply_at_start_and_flags_win() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let url = database_url_for(&dir);
    let port = free_port().await;
    // No relay serving: validated and stored for the next start.
    let output = cli_on_database(
        &dir,
        url.as_deref(),
        &["server", "set", "--https-port", &port.to_string()],
        None,
    );
    assert!(output.status.success(), "{}", out(&output));
    assert!(
        out(&output).contains("apply at its next start"),
        "{}",
        out(&output)
    );
    let output = cli_on_database(&dir, url.as_deref(), &["server", "restart"], None);
    assert!(!output.status.success());
    assert!(
        out(&output).contains("no running relay"),
        "{}",
        out(&output)
    );
    let output = cli_on_database(
        &dir,
        url.as_deref(),
        &["server", "set", "--bind", "localhost"],
        None,
    );
    assert!(!output.status.success());
    assert!(
        out(&output).contains("invalid bind address"),
        "{}",
        out(&output)
    );

    let config = |pinned: bool| {
        let mut config = ServeConfig::new(&dir);
        config.database_url = url.clone();
        config.https_port = 0;
        config.http_port = 0;
        config.pinned_by_flags = PinnedByFlags {
            https_port: pinned,
            http_port: true,
            ..Default::default()
        };
        config
    };
    let server = homedesk_relay::start(config(false)).await.expect("start");
    assert_eq!(server.https_addr.port(), port, "the stored port is used");
    server.stop().await;
    let server = homedesk_relay::start(config(true)).await.expect("start");
    assert_ne!(
        server.https_addr.port(),
        port,
        "a flag wins over the stored port"
    );
    server.stop().await;
}

/// The real binary: every admin change the relay acknowledged (200) through its API is in the database
/// after `kill -9` right after the burst, and the restarted relay serves with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_admin_changes_survive_kill_9() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let url = database_url_for(&dir);
    let store = open_test_store(&dir).await;
    let hash = homedesk_relay::auth::hash_password(PASSWORD).unwrap();
    store.create_user("root", &hash, true).await.unwrap();
    let (child, port) = crate::storage::spawn_relay(&dir, url.as_deref());
    let mut child = child;
    let https = SocketAddr::from(([127, 0, 0, 1], port));
    let tls = relay_client_tls(&dir);
    let origin = format!("https://localhost:{port}");
    let body = serde_json::json!({ "username": "root", "password": PASSWORD }).to_string();
    let headers = [
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
    ];
    let login = https_request(https, &tls, "POST", "/api/login", &headers, Some(&body)).await;
    assert_eq!(login.status, 200, "{}", login.text());
    let root = Session::from_login(&login);
    let cookie = root.cookie_header();
    let post = |path: &'static str, body: String| {
        let (tls, origin, cookie, csrf) = (
            tls.clone(),
            origin.clone(),
            cookie.clone(),
            root.csrf.clone(),
        );
        async move {
            let headers = [
                ("Origin", origin.as_str()),
                ("Content-Type", "application/json"),
                ("Cookie", cookie.as_str()),
                ("X-CSRF-Token", csrf.as_str()),
            ];
            https_request(https, &tls, "POST", path, &headers, Some(&body)).await
        }
    };

    // A burst: web roots set one after another, then a whole configuration imported with 20 new users.
    let mut last_root = None;
    for i in 0..5 {
        let root_dir = temp.path().join(format!("web{i}"));
        std::fs::create_dir_all(&root_dir).unwrap();
        let root_dir = root_dir.display().to_string();
        let body = serde_json::json!({ "web_root": root_dir }).to_string();
        let response = post("/api/admin/server/settings", body).await;
        assert_eq!(response.status, 200, "{}", response.text());
        last_root = Some(root_dir);
    }
    let mut file: serde_json::Value = serde_json::from_str(
        &homedesk_relay::config_transfer::export(&store)
            .await
            .unwrap(),
    )
    .unwrap();
    let users = file["users"].as_array_mut().unwrap();
    for i in 0..20 {
        users.push(serde_json::json!({
            "id": 100 + i, "username": format!("user{i}"), "password_hash": hash,
            "is_admin": false, "is_directory": false, "created_at": 1
        }));
    }
    let response = post("/api/admin/config/import", file.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());

    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    assert_eq!(store.setting("server.web_root").await.unwrap(), last_root);
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.user.username)
        .collect();
    for i in 0..20 {
        assert!(
            names.contains(&format!("user{i}")),
            "user{i} lost: {names:?}"
        );
    }
    let (mut child, port) = crate::storage::spawn_relay(&dir, url.as_deref());
    let https = SocketAddr::from(([127, 0, 0, 1], port));
    let body = serde_json::json!({ "username": "user7", "password": PASSWORD }).to_string();
    let origin = format!("https://localhost:{port}");
    let headers = [
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
    ];
    let login = https_request(https, &tls, "POST", "/api/login", &headers, Some(&body)).await;
    assert_eq!(
        login.status,
        200,
        "an imported user signs in after the crash: {}",
        login.text()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    store.close().await;
}
