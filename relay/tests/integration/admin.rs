//! The admin console's JSON API (`/api/admin/...`): admission (administrators only, CSRF), the
//! changes it makes through the broker, the audit entry of each change, live sessions and disconnect.

use crate::common::*;
use serde_json::{json, Value};

async fn admin_session(relay: &TestRelay) -> Session {
    let password = relay.admin_password.clone().expect("first start made the admin");
    let response = relay.login_response("admin", &password).await;
    assert_eq!(response.status, 200, "{}", response.text());
    Session::from_login(&response)
}

async fn get(relay: &TestRelay, path: &str, session: &Session) -> HttpResponse {
    let cookie = session.cookie_header();
    relay.request("GET", path, &[("Cookie", cookie.as_str())], None).await
}

async fn post(relay: &TestRelay, path: &str, session: &Session, body: Value) -> HttpResponse {
    relay.post(path, Some(session), &body.to_string()).await
}

/// The newest audit entries (as the console's audit page asks for them).
async fn audit(relay: &TestRelay, admin: &Session, filter: &str) -> Vec<Value> {
    let response = get(relay, &format!("/api/admin/audit?q={filter}"), admin).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["entries"].as_array().cloned().unwrap_or_default()
}

fn has_entry(entries: &[Value], actor: &str, action: &str, target: &str) -> bool {
    entries
        .iter()
        .any(|e| e["actor"] == actor && e["action"] == action && e["target"] == target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_with_the_csrf_token_get_in() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    relay.add_user("bob").await;
    let bob = relay.login("bob").await;

    let me = get(&relay, "/api/admin/session", &admin).await;
    assert_eq!(
        (me.status, me.json()["username"].as_str()),
        (200, Some("admin")),
        "{}",
        me.text()
    );
    assert_eq!(me.json()["csrf_token"].as_str(), Some(admin.csrf.as_str()));
    for path in [
        "/api/admin/session",
        "/api/admin/workstations",
        "/api/admin/users",
        "/api/admin/sessions",
        "/api/admin/audit",
    ] {
        let refused = get(&relay, path, &bob).await;
        assert_eq!(
            (refused.status, refused.error()),
            (403, "This console is for administrators only.".to_owned()),
            "{path}"
        );
    }
    let add = json!({ "name": "pc1", "host": "127.0.0.1", "port": 3389 });
    assert_eq!(
        post(&relay, "/api/admin/workstations", &bob, add.clone()).await.status,
        403
    );

    // The admin's cookie without the CSRF header: refused, nothing added.
    let origin = relay.origin();
    let cookie = admin.cookie_header();
    let headers = [
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
        ("Cookie", cookie.as_str()),
    ];
    let no_csrf = relay
        .request("POST", "/api/admin/workstations", &headers, Some(&add.to_string()))
        .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text());
    let listed = get(&relay, "/api/admin/workstations", &admin).await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(0));

    // A foreign Origin is refused even with the token.
    let foreign = [
        ("Origin", "https://evil.example"),
        ("Content-Type", "application/json"),
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", admin.csrf.as_str()),
    ];
    let cross_site = relay
        .request("POST", "/api/admin/workstations", &foreign, Some(&add.to_string()))
        .await;
    assert_eq!(cross_site.status, 403);
    assert_eq!(
        get(&relay, "/api/admin/workstations", &admin)
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_changes_go_through_the_broker_and_are_audited() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;

    let added = post(
        &relay,
        "/api/admin/workstations",
        &admin,
        json!({ "name": "Office PC", "host": "10.0.0.5" }),
    )
    .await;
    assert_eq!(added.status, 201, "{}", added.text());
    let duplicate = post(
        &relay,
        "/api/admin/workstations",
        &admin,
        json!({ "name": "Office PC", "host": "10.0.0.6" }),
    )
    .await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text());
    assert!(duplicate.error().contains("already exists"), "{}", duplicate.error());
    let bad_host = post(
        &relay,
        "/api/admin/workstations",
        &admin,
        json!({ "name": "Lab", "host": "300.1.1.1" }),
    )
    .await;
    assert_eq!(bad_host.status, 400, "{}", bad_host.text());
    assert!(bad_host.error().starts_with("Invalid host"), "{}", bad_host.error());

    let user = post(
        &relay,
        "/api/admin/users",
        &admin,
        json!({ "username": "carol", "password": PASSWORD }),
    )
    .await;
    assert_eq!(user.status, 201, "{}", user.text());
    let again = post(
        &relay,
        "/api/admin/users",
        &admin,
        json!({ "username": "carol", "password": PASSWORD }),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.text());
    let assigned = post(
        &relay,
        "/api/admin/assignments",
        &admin,
        json!({ "user": "carol", "workstation": "Office PC" }),
    )
    .await;
    assert_eq!(assigned.status, 204, "{}", assigned.text());
    let twice = post(
        &relay,
        "/api/admin/assignments",
        &admin,
        json!({ "user": "carol", "workstation": "Office PC" }),
    )
    .await;
    assert_eq!(twice.status, 409, "{}", twice.text());
    let group = post(
        &relay,
        "/api/admin/assignments",
        &admin,
        json!({ "group": "Sales", "workstation": "Office PC" }),
    )
    .await;
    assert_eq!(group.status, 204, "{}", group.text());
    let neither = post(
        &relay,
        "/api/admin/assignments",
        &admin,
        json!({ "workstation": "Office PC" }),
    )
    .await;
    assert_eq!(neither.status, 400);

    let listed = get(&relay, "/api/admin/workstations", &admin).await.json();
    let office = &listed[0];
    assert_eq!(
        (office["name"].as_str(), office["port"].as_i64()),
        (Some("Office PC"), Some(3389))
    );
    assert_eq!(office["users"], json!(["carol"]));
    assert_eq!(office["groups"], json!(["sales"]));

    for action in ["disable", "enable", "repin"] {
        let changed = post(
            &relay,
            &format!("/api/admin/workstations/{action}"),
            &admin,
            json!({ "name": "Office PC" }),
        )
        .await;
        assert_eq!(changed.status, 204, "{action}: {}", changed.text());
    }
    // Pinning a known fingerprint: a malformed one is refused and changes nothing; a good one is stored
    // normalised (lowercase hex, no colons).
    let sha = "AB:".repeat(31) + "AB";
    let bad = post(
        &relay,
        "/api/admin/workstations/pin",
        &admin,
        json!({ "name": "Office PC", "fingerprint": "not-a-hash" }),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let listed = get(&relay, "/api/admin/workstations", &admin).await.json();
    assert_eq!(listed[0]["certificate_sha256"], serde_json::Value::Null, "the refused pin stored nothing");
    let pinned = post(
        &relay,
        "/api/admin/workstations/pin",
        &admin,
        json!({ "name": "Office PC", "fingerprint": sha }),
    )
    .await;
    assert_eq!(pinned.status, 204, "{}", pinned.text());
    let listed = get(&relay, "/api/admin/workstations", &admin).await.json();
    assert_eq!(listed[0]["certificate_sha256"], "ab".repeat(32));
    let edited = post(
        &relay,
        "/api/admin/workstations/edit",
        &admin,
        json!({ "name": "Office PC", "new_name": "Desk 12", "port": 3390 }),
    )
    .await;
    assert_eq!(edited.status, 204, "{}", edited.text());
    let password = post(
        &relay,
        "/api/admin/users/password",
        &admin,
        json!({ "username": "carol", "password": "N3w-passphrase!" }),
    )
    .await;
    assert_eq!(password.status, 204, "{}", password.text());
    let unknown = post(
        &relay,
        "/api/admin/workstations/remove",
        &admin,
        json!({ "name": "nope" }),
    )
    .await;
    assert_eq!(unknown.status, 404);

    // Each change is in the audit log, newest first, by the admin and from the client's IP.
    let entries = audit(&relay, &admin, "").await;
    for (action, target) in [
        ("workstation.add", "Office PC"),
        ("user.add", "carol"),
        ("assignment.add", "Office PC"),
        ("group_assignment.add", "Office PC"),
        ("workstation.disable", "Office PC"),
        ("workstation.enable", "Office PC"),
        ("workstation.repin", "Office PC"),
        ("workstation.pin", "Office PC"),
        ("workstation.edit", "Office PC"),
        ("user.password", "carol"),
    ] {
        assert!(
            has_entry(&entries, "admin", action, target),
            "no {action} of {target} in {entries:#?}"
        );
    }
    assert!(entries.iter().all(|e| e["ip"] == "127.0.0.1"));
    assert_eq!(entries[0]["action"], "user.password", "newest first");
    assert!(
        !entries.iter().any(|e| e.to_string().contains("N3w-passphrase!")),
        "a password reached the audit log"
    );
    // Refused changes are not recorded as changes.
    assert_eq!(entries.iter().filter(|e| e["action"] == "workstation.add").count(), 1);
    // The admin's own sign-in is there too.
    assert!(has_entry(&entries, "admin", "login", ""));

    // Filter and paging.
    let filtered = audit(&relay, &admin, "CAROL").await;
    assert!(!filtered.is_empty() && filtered.iter().all(|e| e.to_string().to_lowercase().contains("carol")));
    let first = get(&relay, "/api/admin/audit?limit=2", &admin).await.json();
    let before = first["next_before"].as_i64().expect("a next page");
    let second = get(&relay, &format!("/api/admin/audit?limit=2&before={before}"), &admin)
        .await
        .json();
    assert!(second["entries"][0]["id"].as_i64().expect("id") < before);

    let removed = post(
        &relay,
        "/api/admin/users/remove",
        &admin,
        json!({ "username": "carol" }),
    )
    .await;
    assert_eq!(removed.status, 204);
    let self_removal = post(
        &relay,
        "/api/admin/users/remove",
        &admin,
        json!({ "username": "admin" }),
    )
    .await;
    assert_eq!(self_removal.status, 400);
    assert!(has_entry(
        &audit(&relay, &admin, "user.remove").await,
        "admin",
        "user.remove",
        "carol"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_audited_without_the_typed_secret() {
    let relay = TestRelay::start().await;
    relay.add_user("dave").await;
    let admin = admin_session(&relay).await;
    assert_eq!(relay.login_response("dave", "wrong password").await.status, 401);
    // A password typed into the username field is not an account name: it is not recorded.
    assert_eq!(relay.login_response("Secret-Typed-Here", "x").await.status, 401);
    let entries = audit(&relay, &admin, "login.failed").await;
    assert!(has_entry(&entries, "dave", "login.failed", ""), "{entries:#?}");
    assert!(
        has_entry(&entries, "(unknown user)", "login.failed", ""),
        "{entries:#?}"
    );
    assert!(!audit(&relay, &admin, "")
        .await
        .iter()
        .any(|e| e.to_string().contains("Secret-Typed-Here")));
    assert!(entries.iter().all(|e| e["ip"] == "127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sees_the_live_tunnel_and_disconnects_it() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    let (addr, _) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let alice = relay.login("alice").await;
    let mut ws = relay.tunnel(&relay.ticket(&alice, None).await).await;
    echo_roundtrip(&mut ws, &[5u8; 700]).await;

    let pipes = relay.server().pipes().clone();
    wait_until("counters", || {
        pipes.snapshot().first().is_some_and(|p| p.bytes_down == 700)
    })
    .await;
    let listed = get(&relay, "/api/admin/sessions", &admin).await.json();
    let live = &listed[0];
    assert_eq!(
        (
            live["user"].as_str(),
            live["workstation"].as_str(),
            live["kind"].as_str(),
            live["client_ip"].as_str()
        ),
        (Some("alice"), Some("pc-alice"), Some("websocket"), Some("127.0.0.1"))
    );
    assert_eq!(
        (live["bytes_up"].as_u64(), live["bytes_down"].as_u64()),
        (Some(700), Some(700))
    );
    assert!(live["since"].as_i64().is_some_and(|t| t > 0));
    let id = live["id"].as_u64().expect("id");

    let refused = relay
        .post(&format!("/api/admin/sessions/{id}/disconnect"), Some(&alice), "")
        .await;
    assert_eq!(refused.status, 403, "a user cannot disconnect anyone");
    let done = relay
        .post(&format!("/api/admin/sessions/{id}/disconnect"), Some(&admin), "")
        .await;
    assert_eq!(done.status, 204, "{}", done.text());
    let (_, close) = read_until_close(&mut ws).await;
    assert_eq!(close_code(&close), Some(4403));
    assert_eq!(
        close.map(|c| c.reason.to_string()).as_deref(),
        Some("Your session was ended by an administrator.")
    );
    wait_until("pipe unregistered", || pipes.is_empty()).await;
    assert_eq!(get(&relay, "/api/admin/sessions", &admin).await.json(), json!([]));
    let gone = relay
        .post(&format!("/api/admin/sessions/{id}/disconnect"), Some(&admin), "")
        .await;
    assert_eq!(gone.status, 404);

    let entries = audit(&relay, &admin, "").await;
    assert!(
        has_entry(&entries, "admin", "session.disconnect", "pc-alice"),
        "{entries:#?}"
    );
    assert!(has_entry(&entries, "alice", "tunnel.open", "pc-alice"), "{entries:#?}");
    // The close is recorded when the pipe ends (after the relay unregistered it, the entry follows).
    let deadline = std::time::Instant::now() + TIMEOUT;
    let closed = loop {
        let closed = audit(&relay, &admin, "tunnel.close").await;
        if !closed.is_empty() {
            break closed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no tunnel.close entry within {TIMEOUT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        closed[0]["detail"].as_str().is_some_and(|d| d.contains("700 bytes up")),
        "{closed:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_changes_are_audited_with_the_cli_as_actor() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    let (addr, _) = echo_peer().await;
    let port = addr.port().to_string();
    let output = relay.cli(&["workstation", "add", "cli-pc", "--host", "127.0.0.1", "--port", &port]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed = relay.cli(&["workstation", "list"]);
    assert!(listed.status.success());
    let entries = audit(&relay, &admin, "").await;
    let added: Vec<_> = entries.iter().filter(|e| e["action"] == "workstation.add").collect();
    assert_eq!(
        added.len(),
        1,
        "one change, one entry (listing is not a change): {entries:#?}"
    );
    assert!(
        added[0]["actor"].as_str().is_some_and(|a| a.starts_with("cli:")),
        "{entries:#?}"
    );
    assert_eq!(added[0]["target"], "cli-pc");
    assert_eq!(added[0]["ip"], Value::Null);
}

/// The console's changes of two-factor, portal pages, HTML5 client settings and the configuration
/// import are audited like the CLI's (actor, IP, area, route and identifying fields, never secrets);
/// refused requests and previews are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_changes_of_every_area_are_audited_without_secrets() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    relay.add_user("alice").await;
    let changes = [
        ("/api/admin/twofa/members", json!({ "kind": "user", "name": "alice" })),
        ("/api/admin/twofa/settings", json!({ "sms_template": "Code %CODE% secret-template-text" })),
        ("/api/admin/portal/pages/sales", json!({ "preferences": { "password": "secret-default-pass" } })),
        ("/api/admin/portal/pages/sales/publish", json!({})),
        ("/api/admin/client-settings", json!({ "color_depth": 16 })),
    ];
    for (path, body) in &changes {
        let response = post(&relay, path, &admin, body.clone()).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
    }
    let refused = post(&relay, "/api/admin/portal/pages/..%2Fetc", &admin, json!({})).await;
    assert_eq!(refused.status, 400);
    let preview = post(&relay, "/api/admin/portal/preview", &admin, json!({})).await;
    assert_eq!(preview.status, 200);
    let export = get(&relay, "/api/admin/config/export", &admin).await;
    let imported = relay.post("/api/admin/config/import", Some(&admin), &export.text()).await;
    assert_eq!(imported.status, 200, "{}", imported.text());

    let admin = admin_session(&relay).await; // the import ended every session
    let entries = audit(&relay, &admin, "settings.change").await;
    let described: Vec<String> = entries
        .iter()
        .filter(|e| e["actor"] == "admin" && e["action"] == "settings.change")
        .map(|e| format!("{} | {}", e["target"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    for expected in [
        "2fa | twofa/members name=alice kind=user",
        "2fa | twofa/settings",
        "portal | portal/pages/sales",
        "portal | portal/pages/sales/publish",
        "html5 client | client-settings",
        "config import | config/import",
    ] {
        assert!(described.iter().any(|d| d == expected), "{expected} missing from {described:#?}");
    }
    assert_eq!(described.len(), 6, "refused requests and previews are not changes: {described:#?}");
    assert!(entries.iter().all(|e| e["ip"] == "127.0.0.1"), "{entries:?}");
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("secret-"), "a secret reached the audit log: {text}");
}
