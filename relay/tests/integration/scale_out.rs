//! Scale-out: two relays on one database (PostgreSQL in the PostgreSQL run, one SQLite file shared by
//! two processes' worth of pools in the SQLite run). Nothing lives only in a relay's memory: sessions,
//! tickets, assignments, failed sign-ins and spent two-factor codes are all seen by the other relay
//! at once; live tunnels (in a relay's memory by nature) are shared every sync interval, so either
//! console lists and disconnects them and a block decided on one relay closes the tunnels of that IP
//! on the other. The relays share the key file that seals two-factor secrets (`--twofa-key-file`),
//! as the README tells operators to.

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use homedesk_relay::clock::{Clock, ManualClock, SharedClock};
use homedesk_relay::store::Backend;
use homedesk_relay::totp::{self, Algorithm, Digits};
use homedesk_relay::twofa::{self, MemberKind};
use homedesk_relay::{broker, tunnel};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Relay A with its own fresh database, relay B (own data dir, own certificate) on the same database,
/// sealing two-factor secrets with A's key file.
async fn two_relays(options: impl Fn() -> Options) -> (TestRelay, TestRelay) {
    let a = TestRelay::start_with(options()).await;
    let b = TestRelay::start_with(Options {
        database_url: Some(shared_database_url(&a)),
        twofa_key_file: Some(a.data_dir.join(twofa::KEY_FILE)),
        ..options()
    })
    .await;
    assert_ne!(a.data_dir, b.data_dir);
    assert!(
        !b.data_dir.join(twofa::KEY_FILE).exists(),
        "with --twofa-key-file no key is created in the data directory"
    );
    let expected = if postgres_admin_url().is_some() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    assert_eq!(
        (a.server().store().backend(), b.server().store().backend()),
        (expected, expected)
    );
    assert!(
        b.admin_password.is_none(),
        "the first admin account is created once per database, not per relay"
    );
    (a, b)
}

async fn tunnel_close(relay: &TestRelay, ticket: &str) -> (Option<u16>, String) {
    let origin = relay.origin();
    let mut ws = relay
        .ws_connect(&format!("ticket={ticket}"), Some(&origin))
        .await
        .expect("upgrade");
    let (_, close) = read_until_close(&mut ws).await;
    (
        close_code(&close),
        close.map(|c| c.reason.to_string()).unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_on_one_relay_and_tunnel_on_the_other() {
    let (a, b) = two_relays(Options::default).await;
    let (addr, accepted) = echo_peer().await;
    a.user_with_workstation("alice", "pc-alice", addr).await;

    // Login and ticket on A, WebSocket on B: B redeems A's ticket and dials the assigned workstation.
    let session = a.login("alice").await;
    let ticket = a.ticket(&session, None).await;
    let mut ws = b.tunnel(&ticket).await;
    echo_roundtrip(&mut ws, b"through relay B").await;
    assert_eq!(b.server().pipes().snapshot()[0].username, "alice");
    assert!(a.server().pipes().is_empty());

    // The ticket was consumed in the shared database: A refuses the replay and dials nothing.
    let (code, reason) = tunnel_close(&a, &ticket).await;
    assert_eq!(
        (code, reason.as_str()),
        (Some(4401), tunnel::TICKET_INVALID)
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    ws.close(None).await.unwrap();

    // A's session cookie is valid on B (sessions are rows, not memory), and B's ticket works on A.
    let ticket = b.ticket(&session, None).await;
    let mut ws = a.tunnel(&ticket).await;
    echo_roundtrip(&mut ws, b"and back through A").await;
    let (code, _) = tunnel_close(&b, &ticket).await;
    assert_eq!(code, Some(4401));

    // Logging out on B ends the session on A too.
    let logout = b.post("/api/logout", Some(&session), "{}").await;
    assert!(
        logout.status < 300,
        "logout: {} {}",
        logout.status,
        logout.text()
    );
    assert_eq!(a.ticket_response(&session, None).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_redeemed_concurrently_on_both_relays_connects_once() {
    let (a, b) = two_relays(Options::default).await;
    let (addr, accepted) = echo_peer().await;
    a.user_with_workstation("alice", "pc-alice", addr).await;
    let session = a.login("alice").await;
    for round in 0..5 {
        let ticket = a.ticket(&session, None).await;
        let (on_a, on_b) = tokio::join!(
            tunnel_close_or_echo(&a, &ticket),
            tunnel_close_or_echo(&b, &ticket)
        );
        let winners = [on_a, on_b].iter().filter(|won| **won).count();
        assert_eq!(
            winners, 1,
            "round {round}: exactly one relay redeems the ticket"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}

/// True if the tunnel carried data (the ticket was redeemed here), false if it was refused with 4401.
async fn tunnel_close_or_echo(relay: &TestRelay, ticket: &str) -> bool {
    let origin = relay.origin();
    let mut ws = relay
        .ws_connect(&format!("ticket={ticket}"), Some(&origin))
        .await
        .expect("upgrade");
    ws.send(Message::Binary(b"ping".to_vec().into()))
        .await
        .expect("send");
    match tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .expect("answer in time")
    {
        Some(Ok(Message::Binary(bytes))) => {
            assert_eq!(&bytes[..], b"ping");
            let _ = ws.close(None).await;
            true
        }
        Some(Ok(Message::Close(frame))) => {
            assert_eq!(close_code(&frame), Some(4401));
            false
        }
        other => panic!("unexpected: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_on_one_relay_are_seen_by_the_other() {
    let (a, b) = two_relays(Options::default).await;
    let (first, _) = echo_peer().await;
    let (second, second_accepted) = echo_peer().await;

    // A user and a workstation created through A (the broker, as the admin console does): B signs
    // the user in and lists the workstation.
    a.user_with_workstation("alice", "pc-one", first).await;
    let session = b.login("alice").await;
    let names = |body: &serde_json::Value| -> Vec<String> {
        body["workstations"]
            .as_array()
            .expect("workstations")
            .iter()
            .map(|w| w["name"].as_str().unwrap().into())
            .collect()
    };
    assert_eq!(names(&session.body), ["pc-one"]);

    // A second workstation assigned through A's CLI (its own process on the shared database).
    let out = a.cli(&[
        "workstation",
        "add",
        "pc-two",
        "--host",
        &second.ip().to_string(),
        "--port",
        &second.port().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = a.cli(&["assign", "alice", "pc-two"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let current = b
        .request(
            "GET",
            "/api/session",
            &[("Cookie", &session.cookie_header())],
            None,
        )
        .await;
    assert_eq!(current.status, 200, "{}", current.text());
    assert_eq!(names(&current.json()), ["pc-one", "pc-two"]);
    let two = b
        .server()
        .store()
        .workstation_by_name("pc-two")
        .await
        .unwrap();
    let mut ws = b.tunnel(&b.ticket(&session, Some(two.id)).await).await;
    echo_roundtrip(&mut ws, b"pc-two via B").await;
    assert_eq!(second_accepted.load(Ordering::SeqCst), 1);

    // Unassigned on A: B's already issued ticket is refused before dialing.
    let ticket = b.ticket(&session, Some(two.id)).await;
    broker::unassign(a.server().store(), "alice", "pc-two")
        .await
        .unwrap();
    let (code, reason) = tunnel_close(&b, &ticket).await;
    assert_eq!(
        (code, reason.as_str()),
        (Some(4401), tunnel::NO_LONGER_ASSIGNED)
    );
    assert_eq!(second_accepted.load(Ordering::SeqCst), 1);

    // A new password set on A ends the user's sessions on B.
    broker::set_password(a.server().store(), "alice", "another long password")
        .await
        .unwrap();
    assert_eq!(b.ticket_response(&session, None).await.status, 401);
    assert_eq!(b.login_response("alice", PASSWORD).await.status, 401);
    assert_eq!(
        b.login_response("alice", "another long password")
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_count_across_relays() {
    let proxied = || Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Options::default()
    };
    let (a, b) = two_relays(proxied).await;
    a.add_user("alice").await;
    let ip = "198.51.100.77";
    // Ten failures (the default limit) split over both relays block the address on both.
    for i in 0..10 {
        let relay = if i % 2 == 0 { &a } else { &b };
        let response = relay.login_from(ip, "alice", "wrong password").await;
        assert_eq!(
            response.status,
            401,
            "failure {}: {}",
            i + 1,
            response.text()
        );
    }
    for relay in [&a, &b] {
        let blocked = relay.login_from(ip, "alice", PASSWORD).await;
        assert_eq!(blocked.status, 429, "{}", blocked.text());
    }
    assert_eq!(
        a.login_from("198.51.100.78", "alice", PASSWORD)
            .await
            .status,
        200
    );
    // Unblocking through B's CLI lifts the block on A.
    let out = b.cli(&["security", "unblock", ip]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(a.login_from(ip, "alice", PASSWORD).await.status, 200);
}

/// The admin sessions list of `relay` once `done` holds for it (tunnels are shared every 200 ms here).
async fn sessions_when(relay: &TestRelay, admin: &Session, done: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
    let cookie = admin.cookie_header();
    for _ in 0..100 {
        let response = relay.request("GET", "/api/admin/sessions", &[("Cookie", &cookie)], None).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let items = response.json().as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the sessions list never reached the expected state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_console_lists_and_disconnects_the_tunnels_of_both_relays() {
    let (a, b) = two_relays(Options::default).await;
    let (addr, _) = echo_peer().await;
    a.user_with_workstation("alice", "pc-alice", addr).await;
    let session = a.login("alice").await;
    let mut on_a = a.tunnel(&a.ticket(&session, None).await).await;
    echo_roundtrip(&mut on_a, b"piped by relay A").await;
    let mut on_b = b.tunnel(&b.ticket(&session, None).await).await;
    echo_roundtrip(&mut on_b, b"piped by relay B").await;
    let a_id = a.server().pipes().snapshot()[0].id;
    let b_id = b.server().pipes().snapshot()[0].id;
    assert_ne!(a_id, b_id);

    // B's console lists both tunnels: its own from memory, A's as A shared it, with A's byte counts.
    let password = a.admin_password.clone().unwrap();
    let admin = Session::from_login(&b.login_response("admin", &password).await);
    let items = sessions_when(&b, &admin, |items| {
        items.len() == 2 && items.iter().any(|i| i["id"] == a_id && i["bytes_up"].as_u64() >= Some(16))
    })
    .await;
    let relays: std::collections::HashSet<_> = items.iter().map(|i| i["relay"].as_str().unwrap().to_owned()).collect();
    assert_eq!(relays.len(), 2, "each tunnel names its own relay: {items:?}");
    assert!(items.iter().all(|i| i["user"] == "alice" && i["workstation"] == "pc-alice"), "{items:?}");

    // Disconnect on B of the tunnel A pipes: A closes it with the administrator's reason, B's stays.
    let disconnected = b.post(&format!("/api/admin/sessions/{a_id}/disconnect"), Some(&admin), "").await;
    assert_eq!(disconnected.status, 204, "{}", disconnected.text());
    let (_, close) = read_until_close(&mut on_a).await;
    assert_eq!(close_code(&close), Some(tunnel::close_code::DISCONNECTED));
    assert_eq!(close.unwrap().reason.as_str(), homedesk_relay::admin_api::DISCONNECTED);
    echo_roundtrip(&mut on_b, b"still piped by B").await;
    let items = sessions_when(&a, &Session::from_login(&a.login_response("admin", &password).await), |items| {
        items.len() == 1
    })
    .await;
    assert_eq!(items[0]["id"], b_id, "A's console lists only B's remaining tunnel");
    let again = b.post(&format!("/api/admin/sessions/{a_id}/disconnect"), Some(&admin), "").await;
    assert_eq!(again.status, 404, "{}", again.text());
    // The disconnect is in the shared audit log.
    let cookie = admin.cookie_header();
    let audit = a.request("GET", "/api/admin/audit?q=disconnect", &[("Cookie", &cookie)], None).await;
    assert!(audit.text().contains("websocket of alice from"), "{}", audit.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_decided_on_one_relay_closes_that_ips_tunnels_on_the_other() {
    let proxied = || Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Options::default()
    };
    let (a, b) = two_relays(proxied).await;
    let (addr, _) = echo_peer().await;
    a.user_with_workstation("alice", "pc-alice", addr).await;
    let ip = "198.51.100.40";
    let session = Session::from_login(&a.login_from(ip, "alice", PASSWORD).await);
    let origin = a.origin();
    let open_from = |from: &'static str| {
        let (a, session, origin) = (&a, &session, &origin);
        async move {
            let ticket = a.ticket(session, None).await;
            let mut ws = a
                .ws_connect_with(&format!("ticket={ticket}"), Some(origin), &[("X-Forwarded-For", from)])
                .await
                .expect("tunnel upgrade");
            echo_roundtrip(&mut ws, b"hello").await;
            ws
        }
    };
    let mut blocked = open_from(ip).await;
    let mut other = open_from("198.51.100.41").await;

    // Ten failures from that IP on relay B: B blocks it, and A closes its tunnel from there.
    for _ in 0..10 {
        assert_eq!(b.login_from(ip, "alice", "wrong password").await.status, 401);
    }
    let (_, close) = read_until_close(&mut blocked).await;
    assert_eq!(close_code(&close), Some(tunnel::close_code::BLOCKED));
    assert!(close.unwrap().reason.contains("Too many failed sign-in attempts"), "the user is told why");
    echo_roundtrip(&mut other, b"another IP keeps its tunnel").await;
}

/// The second factor's code step of `relay` for a pending session, from `ip` (X-Forwarded-For).
async fn verify_code(relay: &TestRelay, session: &Session, ip: &str, code: &str) -> HttpResponse {
    let origin = relay.origin();
    let cookie = session.cookie_header();
    let headers = [
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
        ("X-Forwarded-For", ip),
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", session.csrf.as_str()),
    ];
    let body = serde_json::json!({ "code": code }).to_string();
    relay
        .request("POST", "/api/2fa/verify", &headers, Some(&body))
        .await
}

/// The password step of `alice` on `relay` from `ip`: a session pending its code.
async fn pending_sign_in(relay: &TestRelay, ip: &str, step: &str) -> Session {
    let response = relay.login_from(ip, "alice", PASSWORD).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let pending = Session::from_login(&response);
    assert_eq!(
        pending.body["second_factor"]["step"], step,
        "{}",
        pending.body
    );
    pending
}

/// Concurrent code requests per round, alternating between the two relays.
const RACERS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_code_is_accepted_once_across_relays() {
    let clock = ManualClock::new(crate::twofa::START_MS);
    let options = || Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        clock: Some(Arc::new(clock.clone()) as SharedClock),
        ..Options::default()
    };
    let (a, b) = two_relays(options).await;
    a.add_user("alice").await;
    let store = a.server().store();
    let mut settings = twofa::settings_load(store).await.unwrap();
    settings.enabled = true;
    twofa::settings_store(store, &settings).await.unwrap();
    twofa::add_member(store, MemberKind::User, "alice")
        .await
        .unwrap();
    let code_now = |secret: &[u8]| {
        let step = clock.now_ms() / 30_000;
        totp::generate(secret, step as u64, Algorithm::Sha1, Digits::default())
    };

    // Enrolled through A; B opens the secret A sealed (same key file).
    let enrolling = pending_sign_in(&a, "198.51.100.40", "enrol").await;
    let secret = crate::twofa::base32_decode(
        enrolling.body["second_factor"]["secret"]
            .as_str()
            .expect("secret"),
    );
    let enrolled = verify_code(&a, &enrolling, "198.51.100.40", &code_now(&secret)).await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.text());

    for round in 1..=2 {
        clock.advance(Duration::from_secs(30));
        // Pending sign-ins on both relays, the same valid code sent to all of them at once.
        let mut pending = Vec::new();
        for i in 0..RACERS {
            let (relay, name) = if i % 2 == 0 { (&a, "A") } else { (&b, "B") };
            let ip = format!("198.51.100.{}", 50 + i);
            pending.push((
                relay,
                name,
                ip.clone(),
                pending_sign_in(relay, &ip, "code").await,
            ));
        }
        let code = code_now(&secret);
        let answers = futures_util::future::join_all(
            pending
                .iter()
                .map(|(relay, _, ip, session)| verify_code(relay, session, ip, &code)),
        )
        .await;
        let outcome: Vec<String> = pending
            .iter()
            .zip(&answers)
            .map(|((_, name, _, _), answer)| format!("{name}: {} {}", answer.status, answer.text()))
            .collect();
        assert_eq!(
            answers.iter().filter(|answer| answer.status == 200).count(),
            1,
            "round {round}: exactly one request wins: {outcome:#?}"
        );
        for answer in answers.iter().filter(|answer| answer.status != 200) {
            assert_eq!(
                (answer.status, answer.error().as_str()),
                (
                    401,
                    "This code has already been used; wait for the next one."
                ),
                "round {round}: {outcome:#?}"
            );
        }

        // The spent code is refused afterwards on both relays, from fresh pending sign-ins.
        for (relay, ip) in [(&a, "198.51.100.43"), (&b, "198.51.100.44")] {
            let pending = pending_sign_in(relay, ip, "code").await;
            let replay = verify_code(relay, &pending, ip, &code).await;
            assert_eq!(
                (replay.status, replay.error().as_str()),
                (
                    401,
                    "This code has already been used; wait for the next one."
                ),
                "round {round}"
            );
        }
    }
}
