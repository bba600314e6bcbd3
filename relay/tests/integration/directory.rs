//! Directory sign-in against a real OpenLDAP `slapd` (scripts/slapd.sh, one throwaway server per test):
//! bind modes, StartTLS and LDAPS with the test CA, injection, empty passwords, groups → workstations,
//! a directory that is down. slapd missing is a failure (run scripts/install-toolchain.sh --for-tests).

use crate::common::*;
use homedesk_relay::directory::{
    self, BindMode, DirectoryConfig, GroupMode, DIRECTORY_UNAVAILABLE,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

const WEIRD_UID: &str = r#"evil*)(uid=*)(|(cn=x\,y"+<z>;#"#;
const LOGIN_FAILED: &str = "Invalid username or password.";

/// One slapd from scripts/slapd.sh, stopped (and its directory removed) on drop.
struct Slapd {
    dir: PathBuf,
    env: HashMap<String, String>,
    _temp: tempfile::TempDir,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/slapd.sh")
}

impl Slapd {
    fn start() -> Slapd {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("slapd");
        let output = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run scripts/slapd.sh");
        assert!(
            output.status.success(),
            "scripts/slapd.sh start failed (is slapd installed? scripts/install-toolchain.sh --for-tests): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let env = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Slapd {
            dir,
            env,
            _temp: temp,
        }
    }

    fn get(&self, key: &str) -> String {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from slapd.sh output"))
            .clone()
    }

    fn ca(&self, key: &str) -> Option<String> {
        Some(std::fs::read_to_string(self.get(key)).expect("CA file"))
    }

    fn people(&self) -> String {
        format!("ou=people,{}", self.get("HOMEDESK_LDAP_BASE"))
    }

    /// StartTLS on ldap://, binding as `uid={user},ou=people,…`, groups from memberOf.
    fn dn_pattern_config(&self) -> DirectoryConfig {
        DirectoryConfig {
            url: self.get("HOMEDESK_LDAP_URL"),
            starttls: true,
            ca_pem: self.ca("HOMEDESK_LDAP_CA"),
            bind: BindMode::UserPattern {
                pattern: format!("uid={{user}},{}", self.people()),
            },
            base_dn: self.get("HOMEDESK_LDAP_BASE"),
            user_attribute: "uid".into(),
            groups: GroupMode::MemberOf {
                attribute: "memberOf".into(),
            },
            domain: Some("HOMEDESK".into()),
            timeout_secs: 5,
        }
    }

    /// LDAPS, search with the service account then bind, groups from groupOfNames entries.
    fn search_bind_config(&self) -> DirectoryConfig {
        DirectoryConfig {
            url: self.get("HOMEDESK_LDAPS_URL"),
            starttls: false,
            bind: BindMode::SearchBind {
                service_dn: self.get("HOMEDESK_LDAP_SERVICE_DN"),
                service_password: self.get("HOMEDESK_LDAP_SERVICE_PASSWORD"),
            },
            groups: GroupMode::GroupOfNames {
                member_attribute: "member".into(),
            },
            ..self.dn_pattern_config()
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

async fn relay_with(config: &DirectoryConfig) -> TestRelay {
    let relay = TestRelay::start().await;
    directory::save(relay.server().store(), config)
        .await
        .expect("directory configured");
    relay
}

async fn login_with_domain(
    relay: &TestRelay,
    user: &str,
    password: &str,
    domain: &str,
) -> HttpResponse {
    let body =
        serde_json::json!({ "username": user, "password": password, "domain": domain }).to_string();
    relay.post("/api/login", None, &body).await
}

fn workstation_names(body: &serde_json::Value) -> Vec<String> {
    body["workstations"]
        .as_array()
        .expect("workstations")
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dn_pattern_over_starttls_gives_group_and_own_workstations_and_a_working_tunnel() {
    let slapd = Slapd::start();
    let relay = relay_with(&slapd.dn_pattern_config()).await;
    let (addr, accepted) = echo_peer().await;
    relay.add_workstation("pc-staff", addr).await;
    relay.add_workstation("pc-alice", addr).await;
    relay.add_workstation("pc-ops", addr).await;
    let store = relay.server().store();
    homedesk_relay::broker::assign_group(store, "Staff", "pc-staff")
        .await
        .unwrap();
    homedesk_relay::broker::assign_group(store, "ops", "pc-ops")
        .await
        .unwrap();

    // Not pre-created: the first sign-in creates a directory-sourced row without a password.
    assert!(store.user_credentials("alice").await.unwrap().is_none());
    let response = relay.login_response("alice", "alice-pass-1").await;
    assert_eq!(response.status, 200, "{}", response.text());
    let session = Session::from_login(&response);
    assert_eq!(session.body["username"], "alice");
    assert_eq!(workstation_names(&session.body), ["pc-staff"]);
    let (user, hash) = store
        .user_credentials("alice")
        .await
        .unwrap()
        .expect("row created");
    assert!(user.directory && !user.is_admin);
    assert_eq!(hash, "", "the directory password is never stored");
    assert_eq!(store.user_groups(user.id).await.unwrap(), ["staff"]);

    // A ticket for the group's workstation carries the directory domain, and the tunnel works.
    let ticket = relay.ticket_response(&session, None).await;
    assert_eq!(ticket.status, 200, "{}", ticket.text());
    assert_eq!(ticket.json()["workstation"]["domain"], "HOMEDESK");
    let mut ws = relay
        .tunnel(ticket.json()["ticket"].as_str().unwrap())
        .await;
    echo_roundtrip(&mut ws, b"directory user through the group's workstation").await;
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The directory's spelling names the account: other case, same row.
    let upper = relay.login_response("ALICE", "alice-pass-1").await;
    assert_eq!(upper.status, 200, "{}", upper.text());
    assert_eq!(upper.json()["username"], "alice");
    // Own assignments add to the group's; the next sign-in refreshes the same row.
    relay.assign("alice", "pc-alice").await;
    let again = relay.login_response("alice", "alice-pass-1").await;
    assert_eq!(workstation_names(&again.json()), ["pc-alice", "pc-staff"]);
    assert_eq!(
        store.user_credentials("alice").await.unwrap().unwrap().0.id,
        user.id
    );

    // Not a member of staff or ops: nothing, and no ticket.
    let bob = relay.login_response("bob", "bob-pass-1").await;
    assert_eq!(bob.status, 200, "{}", bob.text());
    assert!(workstation_names(&bob.json()).is_empty());
    let refused = relay
        .ticket_response(&Session::from_login(&bob), None)
        .await;
    assert_eq!(refused.status, 403);
    // pc-ops is not alice's: asking for it by id is refused.
    let ops_id = store.workstation_by_name("pc-ops").await.unwrap().id;
    assert_eq!(
        relay.ticket_response(&session, Some(ops_id)).await.status,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_then_bind_over_ldaps_reads_groupofnames_and_escapes_names() {
    let slapd = Slapd::start();
    let relay = relay_with(&slapd.search_bind_config()).await;
    // Many failures below on purpose: keep the IP block out of the way.
    let guard = relay.server().guard();
    let policy = homedesk_relay::bruteforce::Policy {
        max_failures: 100,
        ..guard.policy().await.unwrap()
    };
    guard.set_policy(&policy).await.unwrap();
    let (addr, _) = echo_peer().await;
    relay.add_workstation("pc-ops", addr).await;
    homedesk_relay::broker::assign_group(relay.server().store(), "OPS", "pc-ops")
        .await
        .unwrap();

    let carol = relay.login_response("carol", "carol-pass-1").await;
    assert_eq!(carol.status, 200, "{}", carol.text());
    assert_eq!(workstation_names(&carol.json()), ["pc-ops"]);
    let store = relay.server().store();
    let carol_id = store.user_by_name("carol").await.unwrap().id;
    assert_eq!(store.user_groups(carol_id).await.unwrap(), ["ops", "staff"]);

    // A name full of filter and DN metacharacters is just a name: it signs in as itself.
    let weird = relay.login_response(WEIRD_UID, "weird-pass-1").await;
    assert_eq!(weird.status, 200, "{}", weird.text());
    assert_eq!(weird.json()["username"], WEIRD_UID);
    assert_eq!(workstation_names(&weird.json()), ["pc-ops"]);

    // Injection attempts with alice's password match nobody else and fail like any wrong login.
    for attempt in [
        "*)(uid=*",
        "*",
        "a*",
        "alice*",
        "*)(|(uid=alice",
        "alice)(uid=*",
        "evil*",
    ] {
        let response = relay.login_response(attempt, "alice-pass-1").await;
        assert_eq!(response.status, 401, "{attempt}: {}", response.text());
        assert_eq!(response.error(), LOGIN_FAILED);
    }
    // The same through the DN pattern (DN-escaped, cannot add RDNs or wildcards).
    directory::save(store, &slapd.dn_pattern_config())
        .await
        .unwrap();
    for attempt in ["*", "alice,ou=people", "alice+cn=x", "*)(uid=*"] {
        assert_eq!(
            relay.login_response(attempt, "alice-pass-1").await.status,
            401,
            "{attempt}"
        );
    }
    let weird = relay.login_response(WEIRD_UID, "weird-pass-1").await;
    assert_eq!(
        weird.status,
        200,
        "DN pattern with the escaped name: {}",
        weird.text()
    );
    assert!(
        store.user_by_name("*").await.is_err(),
        "no row for a failed name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_unknown_users_look_the_same_and_count_as_failures() {
    let slapd = Slapd::start();
    let relay = relay_with(&slapd.search_bind_config()).await;
    let store = relay.server().store();
    let wrong = relay.login_response("alice", "not-alices-password").await;
    let unknown = relay.login_response("nobody", "alice-pass-1").await;
    for response in [&wrong, &unknown] {
        assert_eq!(response.status, 401);
        assert_eq!(response.error(), LOGIN_FAILED);
        assert!(response.header("set-cookie").is_none());
    }
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        store.ip_failures_since("127.0.0.1", 0).await.unwrap(),
        2,
        "the limiter counts both"
    );

    // A wrong domain fails the same way; the directory's (any case) works.
    let other = login_with_domain(&relay, "alice", "alice-pass-1", "OTHER").await;
    assert_eq!(
        (other.status, other.error()),
        (401, LOGIN_FAILED.to_owned())
    );
    assert_eq!(
        login_with_domain(&relay, "alice", "alice-pass-1", "homedesk")
            .await
            .status,
        200
    );
    // DOMAIN\name in the name field is the same user (the stored name has no prefix).
    let prefixed = relay
        .login_response(r"HOMEDESK\alice", "alice-pass-1")
        .await;
    assert_eq!(prefixed.status, 200, "{}", prefixed.text());
    assert_eq!(prefixed.json()["username"], "alice");
    assert_eq!(store.ip_failures_since("127.0.0.1", 0).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_password_is_refused_although_the_server_allows_unauthenticated_binds() {
    let slapd = Slapd::start();
    // The server itself says yes to a DN with an empty password (RFC 4513 unauthenticated bind).
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&slapd.get("HOMEDESK_LDAP_URL"))
        .await
        .unwrap();
    tokio::spawn(conn.drive());
    let alice_dn = format!("uid=alice,{}", slapd.people());
    assert_eq!(
        ldap.simple_bind(&alice_dn, "").await.unwrap().rc,
        0,
        "slapd allows unauthenticated binds"
    );
    let _ = ldap.unbind().await;

    for config in [slapd.dn_pattern_config(), slapd.search_bind_config()] {
        let relay = relay_with(&config).await;
        let response = relay.login_response("alice", "").await;
        assert_eq!(response.status, 401, "{config:?}: {}", response.text());
        assert_eq!(response.error(), LOGIN_FAILED);
        assert!(relay
            .server()
            .store()
            .user_credentials("alice")
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_refused_for_ldaps_and_starttls_and_the_local_admin_still_signs_in() {
    let slapd = Slapd::start();
    let wrong_ca = slapd.ca("HOMEDESK_LDAP_OTHER_CA");
    for config in [
        DirectoryConfig {
            ca_pem: wrong_ca.clone(),
            ..slapd.search_bind_config()
        },
        DirectoryConfig {
            ca_pem: wrong_ca.clone(),
            ..slapd.dn_pattern_config()
        },
    ] {
        let relay = relay_with(&config).await;
        let response = relay.login_response("alice", "alice-pass-1").await;
        assert_eq!(response.status, 503, "{}", response.text());
        assert_eq!(response.error(), DIRECTORY_UNAVAILABLE);
        let admin = relay
            .login_response("admin", relay.admin_password.as_deref().unwrap())
            .await;
        assert_eq!(admin.status, 200, "local admin: {}", admin.text());
    }
    let logged = logs();
    for url in [
        slapd.get("HOMEDESK_LDAPS_URL"),
        slapd.get("HOMEDESK_LDAP_URL"),
    ] {
        let line = format!("directory unavailable url={url} detail=cannot connect to {url}");
        let found = logged
            .lines()
            .find(|l| l.contains(&line))
            .unwrap_or_else(|| panic!("no log line {line}"));
        assert!(
            found.contains("UnknownIssuer"),
            "the TLS refusal is in the log: {found}"
        );
    }
    // The right CA over LDAPS works (the same server, so only the CA differed).
    let relay = relay_with(&slapd.search_bind_config()).await;
    assert_eq!(
        relay.login_response("alice", "alice-pass-1").await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_is_down_gives_a_clear_error_and_local_accounts_still_sign_in() {
    let slapd = Slapd::start();
    let dead = closed_port().await;
    let mut config = slapd.dn_pattern_config();
    config.url = format!("ldap://{dead}");
    let relay = relay_with(&config).await;
    relay.add_user("localbob").await;
    let before = relay
        .server()
        .store()
        .ip_failures_since("127.0.0.1", 0)
        .await
        .unwrap();

    let response = relay.login_response("alice", "alice-pass-1").await;
    assert_eq!(response.status, 503);
    assert_eq!(response.error(), DIRECTORY_UNAVAILABLE);
    assert!(response.header("set-cookie").is_none());
    let logged = logs();
    assert!(
        logged.contains("directory unavailable") && logged.contains(&dead.to_string()),
        "detail in the log"
    );
    assert!(
        !logged.contains("alice-pass-1"),
        "the password is never logged"
    );
    // Not the user's fault: the limiter does not count it.
    assert_eq!(
        relay
            .server()
            .store()
            .ip_failures_since("127.0.0.1", 0)
            .await
            .unwrap(),
        before
    );

    assert_eq!(
        relay
            .login_response("admin", relay.admin_password.as_deref().unwrap())
            .await
            .status,
        200
    );
    relay.login("localbob").await;
    // A wrong service password is a configuration fault too, not the user's.
    let mut misconfigured = slapd.search_bind_config();
    misconfigured.bind = BindMode::SearchBind {
        service_dn: slapd.get("HOMEDESK_LDAP_SERVICE_DN"),
        service_password: "wrong".into(),
    };
    directory::save(relay.server().store(), &misconfigured)
        .await
        .unwrap();
    assert_eq!(
        relay.login_response("alice", "alice-pass-1").await.status,
        503
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_accounts_win_over_directory_users_of_the_same_name() {
    let slapd = Slapd::start();
    let relay = relay_with(&slapd.search_bind_config()).await;
    relay.add_user("bob").await; // local bob, password PASSWORD; the directory has another bob
    let with_directory_password = relay.login_response("bob", "bob-pass-1").await;
    assert_eq!(with_directory_password.status, 401);
    relay.login("bob").await;
    let bob = relay.server().store().user_by_name("bob").await.unwrap();
    assert!(!bob.directory);
    // A directory name that differs only in case cannot take over the local row either.
    assert_eq!(relay.login_response("BOB", "bob-pass-1").await.status, 401);
    // And a directory account's password cannot be set locally.
    relay.login_response("alice", "alice-pass-1").await;
    let refused =
        homedesk_relay::broker::set_password(relay.server().store(), "alice", "a-local-password")
            .await;
    assert!(refused.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_configures_tests_and_assigns_groups_without_printing_the_service_password() {
    let slapd = Slapd::start();
    let relay = TestRelay::start().await;
    let (addr, _) = echo_peer().await;
    relay.add_workstation("pc-staff", addr).await;
    let data_dir = relay.data_dir.clone();
    let service_password = slapd.get("HOMEDESK_LDAP_SERVICE_PASSWORD");
    let ca = slapd.get("HOMEDESK_LDAP_CA");
    let (url, base, service_dn) = (
        slapd.get("HOMEDESK_LDAP_URL"),
        slapd.get("HOMEDESK_LDAP_BASE"),
        slapd.get("HOMEDESK_LDAP_SERVICE_DN"),
    );
    let set = run_cli(
        &data_dir,
        &[
            "directory",
            "set",
            "--url",
            &url,
            "--starttls",
            "--ca-file",
            &ca,
            "--service-dn",
            &service_dn,
            "--base-dn",
            &base,
            "--user-attribute",
            "uid",
            "--groups",
            "memberof",
            "--domain",
            "HOMEDESK",
        ],
        Some(&format!("{service_password}\n")),
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let show = run_cli(&data_dir, &["directory", "show"], None);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains(&url)
            && shown.contains("starttls         on")
            && shown.contains(&service_dn),
        "{shown}"
    );
    assert!(
        !shown.contains(&service_password),
        "the service password is never printed"
    );
    assert!(!String::from_utf8_lossy(&set.stdout).contains(&service_password));

    let test = run_cli(
        &data_dir,
        &["directory", "test", "--user", "alice"],
        Some("alice-pass-1\n"),
    );
    let tested = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success(),
        "{tested} {}",
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(
        tested.contains("Service account bind: OK") && tested.contains("groups: staff"),
        "{tested}"
    );
    let bad = run_cli(
        &data_dir,
        &["directory", "test", "--user", "alice"],
        Some("wrong\n"),
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid username or password"));

    let assign = relay.cli(&["assign", "--group", "Staff", "pc-staff"]);
    assert!(
        assign.status.success(),
        "{}",
        String::from_utf8_lossy(&assign.stderr)
    );
    let again = relay.cli(&["assign", "--group", "staff", "pc-staff"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already assigned"));
    let listed = relay.cli(&["directory", "groups"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("staff  pc-staff"));
    // The running relay uses what the CLI stored.
    let alice = relay.login_response("alice", "alice-pass-1").await;
    assert_eq!(workstation_names(&alice.json()), ["pc-staff"]);
    let users = relay.cli(&["user", "list"]);
    let listed = String::from_utf8_lossy(&users.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("alice") && l.contains("directory user")),
        "{listed}"
    );
    let unassign = relay.cli(&["unassign", "--group", "staff", "pc-staff"]);
    assert!(unassign.status.success());
    let alice = relay.login_response("alice", "alice-pass-1").await;
    assert!(workstation_names(&alice.json()).is_empty());

    let invalid = relay.cli(&[
        "directory",
        "set",
        "--url",
        "http://x",
        "--user-pattern",
        "{user}@x",
        "--base-dn",
        "dc=x",
    ]);
    assert!(!invalid.status.success());
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("ldap://"));
    assert!(relay.cli(&["directory", "clear"]).status.success());
    assert_eq!(
        relay.login_response("alice", "alice-pass-1").await.status,
        401,
        "directory gone"
    );
}

/// The domain the client logs on with: the workstation's own wins over the directory's; without one a
/// directory user gets the directory's, a local account none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workstations_own_domain_wins_over_the_directorys() {
    let slapd = Slapd::start();
    let relay = relay_with(&slapd.dn_pattern_config()).await;
    let (addr, _) = echo_peer().await;
    let own = relay.add_workstation("pc-own-domain", addr).await;
    let plain = relay.add_workstation("pc-plain", addr).await;
    let store = relay.server().store();
    let edit = homedesk_relay::broker::WorkstationEdit {
        name: None,
        host: None,
        port: None,
        domain: Some(Some("OFFICE".into())),
        notes: None,
    };
    homedesk_relay::broker::edit_workstation(store, "pc-own-domain", edit).await.unwrap();
    homedesk_relay::broker::assign_group(store, "Staff", "pc-own-domain").await.unwrap();
    homedesk_relay::broker::assign_group(store, "Staff", "pc-plain").await.unwrap();
    homedesk_relay::broker::add_user(store, "carol", Some(PASSWORD.into())).await.unwrap();
    relay.assign("carol", "pc-plain").await;

    let alice = Session::from_login(&relay.login_response("alice", "alice-pass-1").await);
    let domain_for = |session: Session, id: i64| {
        let relay = &relay;
        async move {
            let ticket = relay.ticket_response(&session, Some(id)).await;
            assert_eq!(ticket.status, 200, "{}", ticket.text());
            ticket.json()["workstation"]["domain"].clone()
        }
    };
    assert_eq!(domain_for(alice.clone(), own).await, "OFFICE", "the workstation's own domain wins");
    assert_eq!(domain_for(alice, plain).await, "HOMEDESK", "else the directory's, for a directory user");
    let carol = Session::from_login(&relay.login_response("carol", PASSWORD).await);
    assert_eq!(domain_for(carol, plain).await, serde_json::Value::Null, "a local account gets none");
}

/// The console's directory API: saved as the CLI would (a directory user then signs in), the service
/// password never shown nor audited and kept when a save leaves it out, bad values refused with nothing
/// stored, the check with a user's groups, and clear (directory users out, the local admin still in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_api_configures_checks_and_clears_the_directory() {
    let slapd = Slapd::start();
    let relay = TestRelay::start().await;
    let password = relay.admin_password.clone().expect("first start made the admin");
    let admin = Session::from_login(&relay.login_response("admin", &password).await);
    let get = |path: &'static str| {
        let (relay, cookie) = (&relay, admin.cookie_header());
        async move { relay.request("GET", path, &[("Cookie", cookie.as_str())], None).await }
    };
    let post = |path: &'static str, body: serde_json::Value| {
        let (relay, admin) = (&relay, admin.clone());
        async move { relay.post(path, Some(&admin), &body.to_string()).await }
    };
    let service_password = slapd.get("HOMEDESK_LDAP_SERVICE_PASSWORD");
    let mut config = serde_json::to_value(slapd.search_bind_config()).unwrap();
    assert_eq!(get("/api/admin/directory").await.json()["configured"], false);

    // Refused: nothing stored.
    let mut bad = config.clone();
    bad["url"] = "http://dc.example.org".into();
    let refused = post("/api/admin/directory", bad).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.error().contains("http://dc.example.org"), "{}", refused.error());
    assert_eq!(get("/api/admin/directory").await.json()["configured"], false);

    let saved = post("/api/admin/directory", config.clone()).await;
    assert_eq!(saved.status, 200, "{}", saved.text());
    let shown = get("/api/admin/directory").await;
    assert!(!shown.text().contains(&service_password), "the service password is shown: {}", shown.text());
    assert_eq!(shown.json()["bind"]["service_password_set"], true);
    assert_eq!(shown.json()["base_dn"], config["base_dn"]);

    // A save of what the page shows (no password) keeps the stored one: the check still binds.
    config["bind"].as_object_mut().unwrap().remove("service_password");
    config["domain"] = "HOMEDESK2".into();
    assert_eq!(post("/api/admin/directory", config.clone()).await.status, 200);
    let check = post("/api/admin/directory/test", serde_json::json!({ "username": "alice", "password": "alice-pass-1" })).await;
    assert_eq!(check.status, 200, "{}", check.text());
    let check = check.json();
    assert_eq!((check["service_bind"].clone(), check["base_readable"].clone()), (true.into(), true.into()));
    assert_eq!(check["user"]["signed_in"], true, "{check}");
    assert_eq!(check["user"]["groups"], serde_json::json!(["staff"]));
    let wrong = post("/api/admin/directory/test", serde_json::json!({ "username": "alice", "password": "nope" })).await;
    assert_eq!(wrong.json()["user"]["signed_in"], false);

    // A directory user signs in with the saved configuration.
    let alice = relay.login_response("alice", "alice-pass-1").await;
    assert_eq!(alice.status, 200, "{}", alice.text());

    // Audited as settings changes, without the passwords.
    let audit = get("/api/admin/audit?q=directory").await;
    let text = audit.text();
    assert!(text.contains("directory set"), "{text}");
    assert!(!text.contains(&service_password) && !text.contains("alice-pass-1"), "a password reached the audit: {text}");

    assert_eq!(post("/api/admin/directory/clear", serde_json::json!({})).await.status, 204);
    assert_eq!(relay.login_response("alice", "alice-pass-1").await.status, 401);
    assert_eq!(relay.login_response("admin", &password).await.status, 200);
    assert_eq!(post("/api/admin/directory/clear", serde_json::json!({})).await.status, 404);
}
