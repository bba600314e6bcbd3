//! The `relay` binary's administrative commands, run as a user would.

use crate::common::*;
use std::path::Path;
use std::process::Output;

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "expected success; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A failure is one clear line on stderr and a non-zero exit, never a panic.
fn fails(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    run_cli(dir, args, None)
}

#[test]
fn administration_round_trip() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");

    let out = ok(&cli(&dir, &["user", "add", "alice"]));
    let password = out.trim().rsplit(' ').next().unwrap();
    assert!(
        out.starts_with("User alice created. Password: ") && password.len() == 20,
        "{out}"
    );
    ok(&run_cli(
        &dir,
        &["user", "add", "bob", "--password-stdin"],
        Some("bob's password\n"),
    ));

    let out = ok(&cli(
        &dir,
        &[
            "workstation",
            "add",
            "Office PC",
            "--host",
            "10.1.2.3",
            "--domain",
            "CORP",
        ],
    ));
    assert!(out.contains("10.1.2.3:3389"), "{out}");
    ok(&cli(
        &dir,
        &[
            "workstation",
            "add",
            "lab",
            "--host",
            "lab-01.corp.example",
            "--port",
            "3390",
            "--notes",
            "2nd floor",
        ],
    ));
    let list = ok(&cli(&dir, &["workstation", "list"]));
    let office = list
        .lines()
        .find(|l| l.starts_with("Office PC"))
        .expect(&list);
    assert!(
        office.contains("10.1.2.3:3389")
            && office.contains("CORP")
            && office.contains("not pinned yet"),
        "{list}"
    );
    assert!(
        list.lines().any(|l| l.starts_with("lab")
            && l.contains("lab-01.corp.example:3390")
            && l.contains("2nd floor")),
        "{list}"
    );

    ok(&cli(&dir, &["assign", "alice", "Office PC"]));
    ok(&cli(&dir, &["assign", "alice", "lab"]));
    let users = ok(&cli(&dir, &["user", "list"]));
    let alice = users
        .lines()
        .find(|l| l.starts_with("alice"))
        .expect(&users);
    assert!(alice.contains("Office PC, lab"), "{users}");
    assert!(
        users
            .lines()
            .any(|l| l.starts_with("bob") && l.trim_end().ends_with('-')),
        "{users}"
    );

    ok(&cli(&dir, &["unassign", "alice", "lab"]));
    fails(&cli(&dir, &["unassign", "alice", "lab"]), "not assigned");
    ok(&cli(&dir, &["workstation", "remove", "lab"]));
    assert!(!ok(&cli(&dir, &["workstation", "list"])).contains("lab-01"));
    ok(&cli(&dir, &["user", "remove", "bob"]));
    assert!(!ok(&cli(&dir, &["user", "list"])).contains("bob"));
    fails(
        &cli(&dir, &["user", "remove", "bob"]),
        "there is no user named \"bob\"",
    );
    let fingerprint = ["0A"; 32].join(":");
    ok(&cli(
        &dir,
        &["workstation", "pin", "Office PC", &fingerprint],
    ));
    assert!(
        ok(&cli(&dir, &["workstation", "list"])).contains(&format!("sha256:{}", "0a".repeat(32)))
    );
    fails(
        &cli(&dir, &["workstation", "pin", "Office PC", "abcd"]),
        "invalid fingerprint",
    );
    ok(&cli(&dir, &["workstation", "repin", "Office PC"]));
    assert!(ok(&cli(&dir, &["workstation", "list"])).contains("not pinned yet"));
}

#[test]
fn errors_are_one_clear_line() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    ok(&cli(
        &dir,
        &["workstation", "add", "pc", "--host", "127.0.0.1"],
    ));
    ok(&cli(&dir, &["user", "add", "alice"]));

    let duplicate = cli(&dir, &["workstation", "add", "pc", "--host", "127.0.0.2"]);
    fails(&duplicate, "a workstation named \"pc\" already exists");
    assert_eq!(
        String::from_utf8_lossy(&duplicate.stderr)
            .trim()
            .lines()
            .count(),
        1
    );
    fails(&cli(&dir, &["user", "add", "alice"]), "already exists");
    fails(
        &cli(&dir, &["workstation", "add", "x", "--host", "not a host"]),
        "invalid host",
    );
    fails(
        &cli(
            &dir,
            &["workstation", "add", "x", "--host", "evil.example/path"],
        ),
        "invalid host",
    );
    fails(
        &cli(
            &dir,
            &["workstation", "add", "x", "--host", "h", "--port", "0"],
        ),
        "0 is not in 1..=65535",
    );
    fails(
        &cli(
            &dir,
            &["workstation", "add", "x", "--host", "h", "--port", "70000"],
        ),
        "70000",
    );
    fails(
        &cli(&dir, &["assign", "nobody", "pc"]),
        "there is no user named \"nobody\"",
    );
    fails(
        &cli(&dir, &["assign", "alice", "nothing"]),
        "there is no workstation named \"nothing\"",
    );
    ok(&cli(&dir, &["assign", "alice", "pc"]));
    fails(&cli(&dir, &["assign", "alice", "pc"]), "already assigned");
    fails(
        &run_cli(
            &dir,
            &["user", "add", "eve", "--password-stdin"],
            Some("short\n"),
        ),
        "too short",
    );
    fails(
        &run_cli(&dir, &["user", "add", "eve", "--password-stdin"], Some("")),
        "no password",
    );
    fails(&cli(&dir, &["user", "add", "bad name"]), "invalid username");
    fails(
        &cli(&dir, &["workstation", "repin", "nothing"]),
        "no workstation",
    );
    fails(
        &cli(&dir, &["workstation", "remove", "nothing"]),
        "no workstation",
    );
    let single = cli(&dir, &["assign", "nobody", "pc"]);
    let stderr = String::from_utf8_lossy(&single.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_accounts_work_in_the_portal() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    alice_on_an_echo_workstation(&dir, "pc-alice").await;

    let relay = TestRelay::start_with(Options {
        data_dir: Some(dir.clone()),
        ..Options::default()
    })
    .await;
    let session = relay.login("alice").await;
    let mut ws = relay.tunnel(&relay.ticket(&session, None).await).await;
    echo_roundtrip(&mut ws, b"hello from the CLI's user").await;

    // A new password (while the relay runs) ends existing sessions and replaces the old password.
    ok(&run_cli(
        &dir,
        &["user", "passwd", "alice", "--password-stdin"],
        Some("a brand new password\n"),
    ));
    let cookie = session.cookie_header();
    assert_eq!(
        relay
            .request("GET", "/api/session", &[("Cookie", &cookie)], None)
            .await
            .status,
        401
    );
    assert_eq!(relay.login_response("alice", PASSWORD).await.status, 401);
    assert_eq!(
        relay
            .login_response("alice", "a brand new password")
            .await
            .status,
        200
    );
    // Removing the workstation while the relay runs: the user no longer sees it.
    ok(&cli(&dir, &["workstation", "remove", "pc-alice"]));
    let session = relay
        .login_response("alice", "a brand new password")
        .await
        .json();
    assert_eq!(session["workstations"], serde_json::json!([]));
}

#[test]
fn workstation_edit_changes_each_field() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    ok(&cli(
        &dir,
        &[
            "workstation",
            "add",
            "pc",
            "--host",
            "10.1.2.3",
            "--domain",
            "CORP",
            "--notes",
            "old",
        ],
    ));
    let row = |name: &str| {
        let list = ok(&cli(&dir, &["workstation", "list"]));
        list.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {list}"))
            .to_owned()
    };

    let out = ok(&cli(
        &dir,
        &[
            "workstation",
            "edit",
            "pc",
            "--name",
            "Desk 7",
            "--notes",
            "3rd floor",
        ],
    ));
    assert!(
        out.contains("Workstation Desk 7 updated (10.1.2.3:3389)") && !out.contains("pin"),
        "{out}"
    );
    let desk = row("Desk 7");
    assert!(
        desk.contains("CORP") && desk.contains("3rd floor") && desk.contains("enabled"),
        "{desk}"
    );
    ok(&cli(
        &dir,
        &[
            "workstation",
            "edit",
            "Desk 7",
            "--domain",
            "LAB",
            "--no-notes",
        ],
    ));
    let desk = row("Desk 7");
    assert!(
        desk.contains("LAB") && !desk.contains("3rd floor"),
        "{desk}"
    );
    ok(&cli(
        &dir,
        &["workstation", "edit", "Desk 7", "--no-domain"],
    ));
    assert!(!row("Desk 7").contains("LAB"), "{}", row("Desk 7"));

    // A new address may reach another machine: the pin goes, and the output says so.
    ok(&cli(
        &dir,
        &["workstation", "pin", "Desk 7", &"0a".repeat(32)],
    ));
    let out = ok(&cli(
        &dir,
        &[
            "workstation",
            "edit",
            "Desk 7",
            "--host",
            "Desk-7.Corp.Example",
        ],
    ));
    assert!(out.contains("certificate pin cleared"), "{out}");
    let desk = row("Desk 7");
    assert!(
        desk.contains("desk-7.corp.example:3389") && desk.contains("not pinned yet"),
        "{desk}"
    );
    ok(&cli(
        &dir,
        &["workstation", "pin", "Desk 7", &"0a".repeat(32)],
    ));
    let out = ok(&cli(
        &dir,
        &["workstation", "edit", "Desk 7", "--port", "3390"],
    ));
    assert!(out.contains("certificate pin cleared"), "{out}");
    assert!(
        row("Desk 7").contains("desk-7.corp.example:3390 "),
        "{}",
        row("Desk 7")
    );
    // Notes alone keep the pin.
    ok(&cli(
        &dir,
        &["workstation", "pin", "Desk 7", &"0a".repeat(32)],
    ));
    let out = ok(&cli(
        &dir,
        &["workstation", "edit", "Desk 7", "--notes", "n"],
    ));
    assert!(!out.contains("pin"), "{out}");
    assert!(
        row("Desk 7").contains(&format!("sha256:{}", "0a".repeat(32))),
        "{}",
        row("Desk 7")
    );
}

#[test]
fn workstation_edit_refuses_bad_input_and_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    ok(&cli(
        &dir,
        &[
            "workstation",
            "add",
            "a",
            "--host",
            "10.0.0.1",
            "--notes",
            "first",
        ],
    ));
    ok(&cli(
        &dir,
        &["workstation", "add", "b", "--host", "10.0.0.2"],
    ));
    ok(&cli(&dir, &["workstation", "pin", "a", &"0a".repeat(32)]));
    let before = ok(&cli(&dir, &["workstation", "list"]));

    fails(
        &cli(
            &dir,
            &[
                "workstation",
                "edit",
                "a",
                "--name",
                "b",
                "--host",
                "10.9.9.9",
            ],
        ),
        "a workstation named \"b\" already exists",
    );
    fails(
        &cli(
            &dir,
            &[
                "workstation",
                "edit",
                "a",
                "--name",
                "c",
                "--host",
                "not a host",
            ],
        ),
        "invalid host",
    );
    fails(
        &cli(&dir, &["workstation", "edit", "a", "--port", "0"]),
        "0 is not in 1..=65535",
    );
    fails(
        &cli(&dir, &["workstation", "edit", "a", "--name", "  "]),
        "invalid workstation name",
    );
    fails(
        &cli(
            &dir,
            &["workstation", "edit", "a", "--notes", "x", "--no-notes"],
        ),
        "cannot be used with",
    );
    fails(
        &cli(&dir, &["workstation", "edit", "nothing", "--port", "3390"]),
        "there is no workstation named \"nothing\"",
    );
    fails(
        &cli(&dir, &["workstation", "disable", "nothing"]),
        "there is no workstation named \"nothing\"",
    );
    assert_eq!(
        ok(&cli(&dir, &["workstation", "list"])),
        before,
        "a refused edit changed something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_workstation_is_not_offered() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    alice_on_an_echo_workstation(&dir, "pc").await;
    let relay = TestRelay::start_with(Options {
        data_dir: Some(dir.clone()),
        ..Options::default()
    })
    .await;
    let session = relay.login("alice").await;
    let id = session.body["workstations"][0]["id"]
        .as_i64()
        .expect("pc listed");
    let mut open = relay.tunnel(&relay.ticket(&session, None).await).await;
    echo_roundtrip(&mut open, b"open before").await; // the ticket is redeemed, the pipe is up

    let out = ok(&cli(&dir, &["workstation", "disable", "pc"]));
    assert!(out.contains("open ones are not cut"), "{out}");
    assert!(ok(&cli(&dir, &["workstation", "list"]))
        .lines()
        .any(|l| l.starts_with("pc") && l.contains("disabled")));
    let listed = relay.login_response("alice", PASSWORD).await.json();
    assert_eq!(listed["workstations"], serde_json::json!([]));
    for choice in [None, Some(id)] {
        let refused = relay.ticket_response(&session, choice).await;
        assert_eq!(
            (refused.status, refused.error()),
            (403, homedesk_relay::http::DISABLED.to_owned())
        );
    }
    // The pipe opened before is not cut.
    echo_roundtrip(&mut open, b"still open").await;

    ok(&cli(&dir, &["workstation", "enable", "pc"]));
    let listed = relay.login_response("alice", PASSWORD).await.json();
    assert_eq!(listed["workstations"][0]["name"], "pc");
    let mut ws = relay.tunnel(&relay.ticket(&session, Some(id)).await).await;
    echo_roundtrip(&mut ws, b"enabled again").await;
}

/// Through the CLI only: user `alice` (password [`PASSWORD`]) assigned to workstation `name`, an echo peer.
async fn alice_on_an_echo_workstation(dir: &Path, name: &str) {
    let (addr, _) = echo_peer().await;
    ok(&run_cli(dir, &["user", "add", "alice", "--password-stdin"], Some(&format!("{PASSWORD}\n"))));
    let (host, port) = (addr.ip().to_string(), addr.port().to_string());
    ok(&cli(dir, &["workstation", "add", name, "--host", &host, "--port", &port]));
    ok(&cli(dir, &["assign", "alice", name]));
}
