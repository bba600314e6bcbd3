//! JSON API, sessions, CSRF/Origin, certificate pinning, static files, redirect, first start.

use crate::common::*;
use homedesk_relay::http;
use std::time::Duration;

const FP_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const FP_B: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_are_indistinguishable() {
    let relay = TestRelay::start().await;
    relay.add_user("alice").await;
    let wrong_password = relay.login_response("alice", "not the password").await;
    let unknown_user = relay.login_response("mallory", PASSWORD).await;
    for response in [&wrong_password, &unknown_user] {
        assert_eq!(response.status, 401);
        assert_eq!(response.error(), "Invalid username or password.");
        assert!(response.header("set-cookie").is_none());
    }
    assert_eq!(wrong_password.body, unknown_user.body);

    // An unknown user still pays for exactly one argon2 verification, like a wrong password
    // (counted, not timed: these machines are shared and noisy).
    let server = relay.server.as_ref().unwrap();
    for (user, password) in [("alice", "still not it"), ("ghost", "whatever")] {
        let before = server.password_verifications();
        assert_eq!(relay.login_response(user, password).await.status, 401);
        assert_eq!(
            server.password_verifications(),
            before + 1,
            "login as {user}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_strict_session_cookie_and_session_restores() {
    let relay = TestRelay::start().await;
    let (addr, _) = echo_peer().await;
    let id = relay.user_with_workstation("alice", "pc-alice", addr).await;
    let response = relay.login_response("alice", PASSWORD).await;
    assert_eq!(response.status, 200);
    let cookie = response.header("set-cookie").unwrap();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(
        attributes[0].starts_with("hd_session=") && attributes[0].len() == "hd_session=".len() + 43
    );
    for expected in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            attributes.contains(&expected),
            "{expected} missing in {cookie}"
        );
    }
    let session = Session::from_login(&response);
    assert_eq!(session.body["username"], "alice");
    assert_eq!(
        session.body["workstations"],
        serde_json::json!([{"id": id, "name": "pc-alice"}])
    );

    // GET /api/session returns the same body for the same cookie.
    let cookie_header = session.cookie_header();
    let restored = relay
        .request("GET", "/api/session", &[("Cookie", &cookie_header)], None)
        .await;
    assert_eq!(restored.status, 200);
    assert_eq!(restored.json(), session.body);
    let anonymous = relay.request("GET", "/api/session", &[], None).await;
    assert_eq!(anonymous.status, 401);
    let forged = relay
        .request(
            "GET",
            "/api/session",
            &[("Cookie", "hd_session=forged")],
            None,
        )
        .await;
    assert_eq!(forged.status, 401);

    // Each login gets a fresh id and token, and replaces the session it was sent with.
    let origin = relay.origin();
    let body = serde_json::json!({"username": "alice", "password": PASSWORD}).to_string();
    let again = relay
        .request(
            "POST",
            "/api/login",
            &[("Origin", &origin), ("Cookie", &cookie_header)],
            Some(&body),
        )
        .await;
    let second = Session::from_login(&again);
    assert_ne!(second.cookie, session.cookie);
    assert_ne!(second.csrf, session.csrf);
    let old = relay
        .request("GET", "/api/session", &[("Cookie", &cookie_header)], None)
        .await;
    assert_eq!(old.status, 401, "the previous session ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_require_our_origin() {
    let relay = TestRelay::start_with(Options {
        public_origins: vec!["https://desk.example.com".into()],
        ..Options::default()
    })
    .await;
    relay.add_user("alice").await;
    let body = serde_json::json!({"username": "alice", "password": PASSWORD}).to_string();
    let wrong_port = format!("https://localhost:{}", relay.https_addr.port() + 1);
    for origin in [
        Some("https://evil.example"),
        None,
        Some("null"),
        Some(wrong_port.as_str()),
    ] {
        let headers: Vec<(&str, &str)> = origin.map(|o| vec![("Origin", o)]).unwrap_or_default();
        let response = relay
            .request("POST", "/api/login", &headers, Some(&body))
            .await;
        assert_eq!(response.status, 403, "origin {origin:?}");
        assert_eq!(response.error(), http::FOREIGN_ORIGIN);
    }
    // A configured public origin (e.g. behind a reverse proxy) is accepted.
    let proxied = relay
        .request(
            "POST",
            "/api/login",
            &[("Origin", "https://desk.example.com")],
            Some(&body),
        )
        .await;
    assert_eq!(proxied.status, 200);
    // A logged-in user's POST from a foreign origin is refused too, even with the right token.
    let session = Session::from_login(&proxied);
    let cookie = session.cookie_header();
    let response = relay
        .request(
            "POST",
            "/api/ticket",
            &[
                ("Origin", "https://evil.example"),
                ("Cookie", &cookie),
                ("X-CSRF-Token", &session.csrf),
            ],
            Some("{}"),
        )
        .await;
    assert_eq!(response.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_after_login_require_the_csrf_token() {
    let relay = TestRelay::start().await;
    let (addr, _) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let session = relay.login("alice").await;
    let origin = relay.origin();
    let cookie = session.cookie_header();
    let wrong = format!("{}x", session.csrf);
    for token in [None, Some("wrong"), Some(wrong.as_str()), Some("")] {
        let mut headers = vec![("Origin", origin.as_str()), ("Cookie", cookie.as_str())];
        if let Some(token) = token {
            headers.push(("X-CSRF-Token", token));
        }
        let response = relay
            .request("POST", "/api/ticket", &headers, Some("{}"))
            .await;
        assert_eq!(response.status, 403, "token {token:?}");
        assert_eq!(response.error(), http::BAD_CSRF);
    }
    assert_eq!(relay.ticket_response(&session, None).await.status, 200);
    // Not logged in at all: 401.
    let response = relay
        .request("POST", "/api/ticket", &[("Origin", &origin)], Some("{}"))
        .await;
    assert_eq!(response.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_without_workstation_gets_403_with_the_message() {
    let relay = TestRelay::start().await;
    relay.add_user("dave").await;
    let session = relay.login("dave").await;
    assert_eq!(session.body["workstations"], serde_json::json!([]));
    let response = relay.ticket_response(&session, None).await;
    assert_eq!(response.status, 403);
    assert_eq!(
        response.error(),
        "No workstation is assigned to your account. Contact your administrator."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session() {
    let relay = TestRelay::start().await;
    relay.add_user("alice").await;
    let session = relay.login("alice").await;
    let origin = relay.origin();
    let cookie = session.cookie_header();
    let refused = relay
        .request(
            "POST",
            "/api/logout",
            &[("Origin", &origin), ("Cookie", &cookie)],
            None,
        )
        .await;
    assert_eq!(refused.status, 403, "logout needs the CSRF token too");
    let response = relay.post("/api/logout", Some(&session), "").await;
    assert_eq!(response.status, 204);
    let cleared = response.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with("hd_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let after = relay
        .request("GET", "/api/session", &[("Cookie", &cookie)], None)
        .await;
    assert_eq!(after.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_is_pinned_on_first_use() {
    let relay = TestRelay::start().await;
    let (addr, _) = echo_peer().await;
    let id = relay.user_with_workstation("alice", "pc-alice", addr).await;
    let other = relay.user_with_workstation("bob", "pc-bob", addr).await;
    let session = relay.login("alice").await;
    let path = format!("/api/workstations/{id}/certificate");
    let report = |fp: &str| serde_json::json!({ "sha256": fp }).to_string();

    assert_eq!(
        relay
            .post(&path, Some(&session), &report(FP_A))
            .await
            .status,
        204,
        "first use pins"
    );
    let ticket = relay.ticket_response(&session, None).await.json();
    assert_eq!(ticket["workstation"]["certificate_sha256"], FP_A);
    assert_eq!(
        relay
            .post(&path, Some(&session), &report(FP_A))
            .await
            .status,
        204,
        "same again"
    );
    let changed = relay.post(&path, Some(&session), &report(FP_B)).await;
    assert_eq!(changed.status, 409);
    assert!(
        changed
            .error()
            .starts_with("The certificate of workstation pc-alice has changed"),
        "{}",
        changed.error()
    );

    // Malformed fingerprints and other people's workstations.
    for bad in ["", "ABCD", &FP_A.to_uppercase(), &format!("{FP_A}00")] {
        assert_eq!(
            relay.post(&path, Some(&session), &report(bad)).await.status,
            400,
            "{bad:?}"
        );
    }
    let foreign = format!("/api/workstations/{other}/certificate");
    assert_eq!(
        relay
            .post(&foreign, Some(&session), &report(FP_A))
            .await
            .status,
        403
    );
    assert_eq!(
        relay
            .post(
                "/api/workstations/abc/certificate",
                Some(&session),
                &report(FP_A)
            )
            .await
            .status,
        404
    );

    // The administrator clears the pin (the real CLI, while the relay runs); the next report pins again.
    let output = relay.cli(&["workstation", "repin", "pc-alice"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ticket = relay.ticket_response(&session, None).await.json();
    assert_eq!(
        ticket["workstation"]["certificate_sha256"],
        serde_json::Value::Null
    );
    assert_eq!(
        relay
            .post(&path, Some(&session), &report(FP_B))
            .await
            .status,
        204
    );
    let listed = relay.cli(&["workstation", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(FP_B));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_redirects_to_https() {
    let relay = TestRelay::start().await;
    let response = http_request(
        relay.http_addr,
        "/some/page?x=1",
        &format!("localhost:{}", relay.http_addr.port()),
    )
    .await;
    assert_eq!(response.status, 308);
    assert_eq!(
        response.header("location").unwrap(),
        format!(
            "https://localhost:{}/some/page?x=1",
            relay.https_addr.port()
        )
    );
    let response = http_request(relay.http_addr, "/api/login", "127.0.0.1").await;
    assert_eq!(response.status, 308);
    assert_eq!(
        response.header("location").unwrap(),
        format!("https://127.0.0.1:{}/api/login", relay.https_addr.port())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_files_are_served_with_security_headers() {
    let web = tempfile::tempdir().unwrap();
    // As trunk builds it: an inline module script starts the wasm client.
    let boot = "import init from '/client.js';await init({ module_or_path: '/client_bg.wasm' });";
    let html =
        format!("<!doctype html><title>Homedesk</title><script type=\"module\">{boot}</script>");
    std::fs::write(web.path().join("index.html"), html).unwrap();
    std::fs::write(web.path().join("client_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(web.path().join("client.js"), "export {}").unwrap();
    let relay = TestRelay::start_with(Options {
        web_root: Some(web.path().to_owned()),
        ..Options::default()
    })
    .await;

    let index = relay.request("GET", "/", &[], None).await;
    assert_eq!(index.status, 200);
    assert!(index.text().contains("<title>Homedesk</title>"));
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(index.header("x-content-type-options"), Some("nosniff"));
    let csp = index.header("content-security-policy").unwrap();
    for directive in [
        "default-src 'self'",
        "'wasm-unsafe-eval'",
        "connect-src 'self' wss:",
    ] {
        assert!(csp.contains(directive), "{directive} missing in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    // Exactly the page's own inline script is admitted, by hash.
    use base64::Engine;
    use sha2::Digest;
    let hash =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(boot.as_bytes()));
    assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
    assert_eq!(
        relay.request("GET", "/index.html", &[], None).await.text(),
        index.text()
    );
    // The admin console is a bundle of its own: its page for every path under /admin, with the CSP
    // admitting its own boot script (not the portal's).
    let console_boot = "import init from '/admin-console/console.js';await init();";
    std::fs::create_dir(web.path().join("admin-console")).unwrap();
    std::fs::write(
        web.path().join("admin-console/index.html"),
        format!("<!doctype html><title>Console</title><script type=\"module\">{console_boot}</script>"),
    )
    .unwrap();
    let console_hash = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(console_boot.as_bytes()));
    for path in ["/admin", "/admin/users", "/admin/portal-pages/x"] {
        let page = relay.request("GET", path, &[], None).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.text().contains("<title>Console</title>"), "{path}");
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains(&format!("'sha256-{console_hash}'")), "{path}: {csp}");
        assert!(!csp.contains(&format!("'sha256-{hash}'")), "{path}: {csp}");
    }
    assert!(relay.request("GET", "/", &[], None).await.text().contains("<title>Homedesk</title>"));
    let wasm = relay.request("GET", "/client_bg.wasm", &[], None).await;
    assert_eq!(wasm.status, 200);
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(wasm.body, b"\0asm\x01\0\0\0");
    assert!(relay
        .request("GET", "/client.js", &[], None)
        .await
        .header("content-type")
        .unwrap()
        .contains("javascript"));
    assert_eq!(
        relay.request("GET", "/missing.js", &[], None).await.status,
        404
    );

    // Precompressed files (written by `cargo xtask client`) go to browsers that accept them.
    std::fs::write(web.path().join("client_bg.wasm.br"), b"brotli bytes").unwrap();
    std::fs::write(web.path().join("client_bg.wasm.gz"), b"gzip bytes").unwrap();
    let br = relay
        .request(
            "GET",
            "/client_bg.wasm",
            &[("accept-encoding", "gzip, deflate, br")],
            None,
        )
        .await;
    assert_eq!(
        (br.status, br.header("content-encoding")),
        (200, Some("br"))
    );
    assert_eq!(br.header("content-type"), Some("application/wasm"));
    assert_eq!(br.body, b"brotli bytes");
    let gz = relay
        .request(
            "GET",
            "/client_bg.wasm",
            &[("accept-encoding", "gzip")],
            None,
        )
        .await;
    assert_eq!(
        (gz.header("content-encoding"), gz.body.as_slice()),
        (Some("gzip"), b"gzip bytes".as_slice())
    );
    let plain = relay.request("GET", "/client_bg.wasm", &[], None).await;
    assert_eq!(
        (plain.header("content-encoding"), plain.body.as_slice()),
        (None, b"\0asm\x01\0\0\0".as_slice())
    );
    assert_eq!(
        relay
            .request("GET", "/../../etc/passwd", &[], None)
            .await
            .status
            / 100,
        4
    );
    let api = relay.request("GET", "/api/nothing-here", &[], None).await;
    assert_eq!(api.status, 404);
    assert!(!api.error().is_empty());
    assert_eq!(api.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_client_build_gives_a_clear_503() {
    let relay = TestRelay::start_with(Options {
        web_root: Some("/nonexistent/homedesk-dist".into()),
        ..Options::default()
    })
    .await;
    let response = relay.request("GET", "/", &[], None).await;
    assert_eq!(response.status, 503);
    assert!(
        response.text().contains("cargo xtask client"),
        "{}",
        response.text()
    );
    assert!(response.header("content-security-policy").is_some());
    let relay = TestRelay::start().await; // no --web-root at all
    assert_eq!(relay.request("GET", "/", &[], None).await.status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_creates_admin_once_and_keeps_the_certificate() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let mut first = TestRelay::start_with(Options {
        data_dir: Some(data_dir.clone()),
        ..Options::default()
    })
    .await;
    let password = first
        .admin_password
        .clone()
        .expect("admin password on first start");
    assert_eq!(password.len(), 20);
    let admin = first.login_response("admin", &password).await;
    assert_eq!(admin.status, 200);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data_dir.join("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "private key is owner-only");
        if first.database_url.is_none() {
            let mode = std::fs::metadata(data_dir.join("homedesk.db"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "the database (password hashes) is owner-only"
            );
        }
    }
    let cert = std::fs::read(data_dir.join("tls/cert.pem")).unwrap();
    first.stop().await;

    let second = TestRelay::start_with(Options {
        data_dir: Some(data_dir.clone()),
        ..Options::default()
    })
    .await;
    assert!(
        second.admin_password.is_none(),
        "the admin password is printed once"
    );
    assert_eq!(std::fs::read(data_dir.join("tls/cert.pem")).unwrap(), cert);
    assert_eq!(second.login_response("admin", &password).await.status, 200);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
