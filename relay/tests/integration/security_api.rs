//! The console's Security API (`/api/admin/security/...`): administrators only, Origin + CSRF, bad
//! values refused with their sentence and nothing stored, and changes that take effect at once (a
//! lowered limit blocks sooner, an unblocked IP signs in again, a whitelisted IP is never blocked),
//! each audited like the same change through `relay security …`.

use crate::common::*;
use homedesk_relay::clock::{ManualClock, SharedClock};
use serde_json::{json, Value};
use std::sync::Arc;

const WRONG: &str = "wrong password";
const START_MS: i64 = 1_700_000_000_000;

/// A relay that believes X-Forwarded-For from 127.0.0.1 (so tests choose client IPs), on a manual clock.
async fn proxied_relay() -> (TestRelay, ManualClock) {
    let clock = ManualClock::new(START_MS);
    let shared: SharedClock = Arc::new(clock.clone());
    let options = Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        clock: Some(shared),
        ..Options::default()
    };
    (TestRelay::start_with(options).await, clock)
}

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

async fn status(relay: &TestRelay, admin: &Session) -> Value {
    let response = get(relay, "/api/admin/security", admin).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

async fn post(relay: &TestRelay, path: &str, session: &Session, body: Value) -> HttpResponse {
    relay.post(path, Some(session), &body.to_string()).await
}

/// A POST that must succeed; returns the page's new state.
async fn change(relay: &TestRelay, admin: &Session, path: &str, body: Value) -> Value {
    let response = post(relay, path, admin, body.clone()).await;
    assert_eq!(response.status, 200, "{path} {body}: {}", response.text());
    response.json()
}

async fn audit(relay: &TestRelay, admin: &Session, filter: &str) -> Vec<Value> {
    let response = get(relay, &format!("/api/admin/audit?q={filter}"), admin).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["entries"].as_array().cloned().unwrap_or_default()
}

async fn fail_times(relay: &TestRelay, ip: &str, n: usize) {
    for i in 0..n {
        let response = relay.login_from(ip, "alice", WRONG).await;
        assert_eq!(response.status, 401, "failure {} from {ip}: {}", i + 1, response.text());
    }
}

fn blocked_ips(state: &Value) -> Vec<String> {
    state["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["ip"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_with_csrf_and_valid_values_change_anything() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    relay.add_user("bob").await;
    let bob = relay.login("bob").await;
    let defaults = status(&relay, &admin).await;
    assert_eq!(
        defaults["limits"],
        json!({"max_failures": 10, "window_minutes": 10, "block_minutes": 20, "account_threshold": 20,
               "account_max_delay_secs": 300})
    );
    assert_eq!(
        (defaults["whitelist"].clone(), defaults["blocked"].clone()),
        (json!([]), json!([]))
    );
    assert_eq!(defaults["your_ip"], "127.0.0.1");

    // Non-administrators: 403 for reading and for every change; not signed in: 401.
    assert_eq!(get(&relay, "/api/admin/security", &bob).await.status, 403);
    let no_cookie = relay.request("GET", "/api/admin/security", &[], None).await;
    assert_eq!(no_cookie.status, 401);
    let changes = [
        ("/api/admin/security/limits", json!({"max_failures": 3})),
        ("/api/admin/security/whitelist", json!({"cidr": "10.0.0.0/8"})),
        ("/api/admin/security/whitelist/remove", json!({"cidr": "10.0.0.0/8"})),
        ("/api/admin/security/unblock", json!({"ip": "198.51.100.1"})),
    ];
    for (path, body) in &changes {
        let refused = post(&relay, path, &bob, body.clone()).await;
        assert_eq!(
            (refused.status, refused.error()),
            (403, "This console is for administrators only.".to_owned()),
            "{path}"
        );
    }

    // The administrator's cookie without the CSRF token, or from a foreign origin: 403.
    let origin = relay.origin();
    let cookie = admin.cookie_header();
    for (path, body) in &changes {
        let no_csrf = [
            ("Origin", origin.as_str()),
            ("Content-Type", "application/json"),
            ("Cookie", cookie.as_str()),
        ];
        let refused = relay.request("POST", path, &no_csrf, Some(&body.to_string())).await;
        assert_eq!(refused.status, 403, "{path} without CSRF: {}", refused.text());
        let foreign = [
            ("Origin", "https://evil.example"),
            ("Content-Type", "application/json"),
            ("Cookie", cookie.as_str()),
            ("X-CSRF-Token", admin.csrf.as_str()),
        ];
        let refused = relay.request("POST", path, &foreign, Some(&body.to_string())).await;
        assert_eq!(refused.status, 403, "{path} from a foreign origin: {}", refused.text());
    }

    // Bad values: 400 with a sentence naming the value; all or nothing.
    let bad = [
        (
            "/api/admin/security/limits",
            json!({"max_failures": 3, "window_minutes": 0}),
            "The counting window (window_minutes) must be between 1 and 1440 minutes, not 0.",
        ),
        (
            "/api/admin/security/limits",
            json!({"max_failures": "three"}),
            "Failed sign-ins that block an IP (max_failures) must be a whole number, not \"three\".",
        ),
        (
            "/api/admin/security/limits",
            json!({"block_minutes": 50000}),
            "The block (block_minutes) must be between 1 and 43200 minutes, not 50000.",
        ),
        (
            "/api/admin/security/limits",
            json!({"lockout_minutes": 5}),
            "Unknown limit \"lockout_minutes\" (known: max_failures, window_minutes, block_minutes, \
             account_threshold, account_max_delay_secs).",
        ),
        (
            "/api/admin/security/whitelist",
            json!({"cidr": "10.0.0.0/33"}),
            "Invalid address or range \"10.0.0.0/33\": expected an IP address or CIDR such as 10.0.0.0/8 or \
             2001:db8::/32.",
        ),
        (
            "/api/admin/security/whitelist",
            json!({"cidr": "office"}),
            "Invalid address or range \"office\": expected an IP address or CIDR such as 10.0.0.0/8 or \
             2001:db8::/32.",
        ),
        (
            "/api/admin/security/unblock",
            json!({"ip": "198.51.100.0/24"}),
            "\"198.51.100.0/24\" is not an IP address (such as 203.0.113.7 or 2001:db8::7).",
        ),
        (
            "/api/admin/security/whitelist",
            json!({"range": "10.0.0.0/8"}),
            "The request body is not the expected JSON.",
        ),
    ];
    for (path, body, message) in bad {
        let refused = post(&relay, path, &admin, body.clone()).await;
        assert_eq!(
            (refused.status, refused.error()),
            (400, message.to_owned()),
            "{path} {body}"
        );
    }
    let after = status(&relay, &admin).await;
    assert_eq!(after["limits"], defaults["limits"], "a refused change stored nothing");
    assert_eq!(after["whitelist"], json!([]));
    assert!(
        audit(&relay, &admin, "security.").await.is_empty(),
        "refusals are not changes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_take_effect_at_once_and_are_audited() {
    let (relay, clock) = proxied_relay().await;
    relay.add_user("alice").await;
    let admin = admin_session(&relay).await;

    // A lowered limit blocks sooner: 3 failures instead of 10, for 30 minutes instead of 20.
    let state = change(
        &relay,
        &admin,
        "/api/admin/security/limits",
        json!({"max_failures": "3", "window_minutes": 10, "block_minutes": 30}),
    )
    .await;
    assert_eq!(state["limits"]["max_failures"], 3);
    assert_eq!(state["limits"]["block_minutes"], 30);
    let attacker = "198.51.100.30";
    fail_times(&relay, attacker, 3).await;
    let refused = relay.login_from(attacker, "alice", PASSWORD).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(
        refused.error(),
        "Too many failed sign-in attempts from your network. Try again in 30 minutes."
    );

    // The console lists the block: address, failures, until when.
    let state = status(&relay, &admin).await;
    let blocked = state["blocked"].as_array().unwrap();
    assert_eq!(blocked.len(), 1, "{state}");
    assert_eq!(blocked[0]["ip"], attacker);
    assert_eq!(blocked[0]["failures"], 3);
    assert_eq!(blocked[0]["blocked_until"], json!(START_MS + 30 * 60_000));
    assert_eq!(blocked[0]["whitelisted"], false);

    // Unblocked: the user signs in again from there, and its old failures do not count again.
    clock.advance(std::time::Duration::from_secs(60));
    let state = change(&relay, &admin, "/api/admin/security/unblock", json!({"ip": attacker})).await;
    assert!(blocked_ips(&state).is_empty(), "{state}");
    assert_eq!(relay.login_from(attacker, "alice", PASSWORD).await.status, 200);
    fail_times(&relay, attacker, 2).await;
    assert_eq!(relay.login_from(attacker, "alice", PASSWORD).await.status, 200);
    let again = post(&relay, "/api/admin/security/unblock", &admin, json!({"ip": attacker})).await;
    assert_eq!(
        (again.status, again.error()),
        (404, format!("{attacker} is not blocked."))
    );

    // A whitelisted range is never blocked, however many failures.
    let state = change(
        &relay,
        &admin,
        "/api/admin/security/whitelist",
        json!({"cidr": "203.0.113.77/24"}),
    )
    .await;
    assert_eq!(state["whitelist"], json!(["203.0.113.0/24"]));
    fail_times(&relay, "203.0.113.9", 8).await;
    assert_eq!(relay.login_from("203.0.113.9", "alice", PASSWORD).await.status, 200);
    assert!(blocked_ips(&status(&relay, &admin).await).is_empty());
    let twice = post(
        &relay,
        "/api/admin/security/whitelist",
        &admin,
        json!({"cidr": "203.0.113.0/24"}),
    )
    .await;
    assert_eq!(
        (twice.status, twice.error()),
        (409, "203.0.113.0/24 is already on the whitelist.".to_owned())
    );

    // Removed from the whitelist: counted again (three new failures block).
    let state = change(
        &relay,
        &admin,
        "/api/admin/security/whitelist/remove",
        json!({"cidr": "203.0.113.0/24"}),
    )
    .await;
    assert_eq!(state["whitelist"], json!([]));
    let gone = post(
        &relay,
        "/api/admin/security/whitelist/remove",
        &admin,
        json!({"cidr": "203.0.113.0/24"}),
    )
    .await;
    assert_eq!(
        (gone.status, gone.error()),
        (404, "203.0.113.0/24 is not on the whitelist.".to_owned())
    );
    clock.advance(std::time::Duration::from_secs(11 * 60)); // the whitelisted failures leave the window
    fail_times(&relay, "203.0.113.9", 3).await;
    assert_eq!(relay.login_from("203.0.113.9", "alice", PASSWORD).await.status, 429);
    assert_eq!(
        blocked_ips(&status(&relay, &admin).await),
        vec!["203.0.113.9".to_owned()]
    );

    // The CLI sees the console's limits (same rows).
    let shown = relay.cli(&["security", "show"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("max-failures            3"));

    // Every change is audited once, by the administrator from their IP; reads and refusals are not.
    let entries = audit(&relay, &admin, "security.").await;
    let summary: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("security.whitelist.remove", "203.0.113.0/24"),
        ("security.whitelist.add", "203.0.113.0/24"),
        ("security.unblock", attacker),
        ("security.settings", "brute-force limits"),
    ]
    .iter()
    .map(|(a, t)| ((*a).to_owned(), (*t).to_owned()))
    .collect();
    assert_eq!(summary, expected, "{entries:#?}");
    for entry in &entries {
        assert_eq!(
            (entry["actor"].as_str(), entry["ip"].as_str()),
            (Some("admin"), Some("127.0.0.1")),
            "{entry}"
        );
    }
    assert_eq!(entries[3]["detail"], "max_failures 10 → 3, block_minutes 20 → 30");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_goes_through_the_same_audited_operations() {
    let relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    let ok = |args: &[&str]| {
        let output = relay.cli(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    ok(&["security", "set", "--max-failures", "4", "--window-minutes", "15"]);
    ok(&["security", "whitelist", "add", "192.0.2.0/24"]);
    ok(&["security", "whitelist", "add", "192.0.2.0/24"]); // already listed: no change, no entry
    ok(&["security", "show"]);
    let bad = relay.cli(&["security", "set", "--window-minutes", "0"]);
    assert!(!bad.status.success());
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim(),
        "error: The counting window (window_minutes) must be between 1 and 1440 minutes, not 0."
    );

    let state = status(&relay, &admin).await;
    assert_eq!(
        (
            state["limits"]["max_failures"].clone(),
            state["limits"]["window_minutes"].clone()
        ),
        (json!(4), json!(15))
    );
    assert_eq!(state["whitelist"], json!(["192.0.2.0/24"]));
    let entries = audit(&relay, &admin, "security.").await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(
        (entries[0]["action"].as_str(), entries[0]["target"].as_str()),
        (Some("security.whitelist.add"), Some("192.0.2.0/24"))
    );
    assert_eq!(entries[1]["detail"], "max_failures 10 → 4, window_minutes 10 → 15");
    for entry in &entries {
        assert!(
            entry["actor"].as_str().is_some_and(|a| a.starts_with("cli:")),
            "{entry}"
        );
        assert_eq!(entry["ip"], Value::Null);
    }
}
