//! The HTML5 client's settings: admin JSON API (validation, administrators only, CSRF), the CLI on
//! the same rows, and the portal that serves them to the browser.

use crate::common::{HttpResponse, Session, TestRelay};

async fn admin_session(relay: &TestRelay) -> Session {
    let password = relay.admin_password.clone().expect("first start made the admin");
    let response = relay.login_response("admin", &password).await;
    assert_eq!(response.status, 200, "{}", response.text());
    Session::from_login(&response)
}

async fn get(relay: &TestRelay, path: &str, session: Option<&Session>) -> HttpResponse {
    let cookie = session.map(Session::cookie_header);
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
    relay.request("GET", path, &headers, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_api_and_cli_change_the_settings_the_portal_serves() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    relay.add_user("bob").await;
    let bob = relay.login("bob").await;

    // Defaults, served to anyone before sign-in.
    let portal = get(&relay, "/api/portal", None).await;
    assert_eq!(portal.status, 200, "{}", portal.text());
    let client = &portal.json()["client"];
    assert_eq!(client["menu_bar"], "all");
    assert_eq!(client["color_depth"], 32);
    assert_eq!(client["connection_timeout_secs"], 45);
    assert_eq!(client["background_color"], "#000000");
    assert_eq!(client["file_transfer"], true);

    // Administrators only.
    assert_eq!(get(&relay, "/api/admin/client-settings", Some(&bob)).await.status, 403);
    assert_eq!(relay.post("/api/admin/client-settings", Some(&bob), r#"{"sounds":false}"#).await.status, 403);
    assert_eq!(get(&relay, "/api/admin/client-settings", None).await.status, 401);

    // A change is all or nothing: one bad value refuses the whole request with a clear sentence.
    let refused = relay
        .post("/api/admin/client-settings", Some(&admin), r##"{"sounds":false,"color_depth":8}"##)
        .await;
    assert_eq!(refused.status, 400);
    assert!(refused.json()["error"].as_str().unwrap().contains("15, 16, 24 or 32"), "{}", refused.text());
    let unknown = relay.post("/api/admin/client-settings", Some(&admin), r#"{"colour":"red"}"#).await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.text().contains("Unknown client setting"));
    assert_eq!(get(&relay, "/api/admin/client-settings", Some(&admin)).await.json()["sounds"], true);

    let changed = relay
        .post(
            "/api/admin/client-settings",
            Some(&admin),
            r##"{"sounds":false,"background_color":"#1E4E8C","menu_transparent":true,"logon_gif_ms":1500,
                "logon_message":"Welcome to the office"}"##,
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json()["background_color"], "#1e4e8c");
    assert_eq!(changed.json()["logon_gif_ms"], 1500);

    // The CLI reads and writes the same rows.
    let shown = relay.cli(&["client-settings", "show"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    assert!(text.contains("background_color") && text.contains("#1e4e8c"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("sounds") && l.ends_with("off")), "{text}");
    let set = relay.cli(&["client-settings", "set", "menu-bar", "mobile", "color_depth", "16"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let bad = relay.cli(&["client-settings", "set", "connection_timeout_secs", "1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("from 5 to 600"));

    let client = get(&relay, "/api/portal", None).await.json()["client"].clone();
    assert_eq!(client["menu_bar"], "mobile");
    assert_eq!(client["color_depth"], 16);
    assert_eq!(client["menu_transparent"], true);
    assert_eq!(client["logon_message"], "Welcome to the office");
    assert_eq!(client["connection_timeout_secs"], 45, "the refused value was not stored");
}
