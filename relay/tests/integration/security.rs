//! Brute-force defence: per-IP blocks at the window's edges, expiry, whitelist, per-account
//! slow-down, client IP behind (un)trusted proxies, tunnels of blocked IPs, bounded state, CLI.
//! Time is a manual clock: no test sleeps to cross a window.

use crate::common::*;
use homedesk_relay::bruteforce::{self, LimiterConfig, LoginGuard, Policy};
use homedesk_relay::clock::{ManualClock, SharedClock};
use homedesk_relay::netaddr::Cidr;
use homedesk_relay::store::Store;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

const WRONG: &str = "wrong password";
const MINUTE: Duration = Duration::from_secs(60);
const BLOCKED_20: &str =
    "Too many failed sign-in attempts from your network. Try again in 20 minutes.";

/// A relay that believes X-Forwarded-For from 127.0.0.1 (so tests choose client IPs), on a manual clock.
async fn proxied_relay() -> (TestRelay, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000);
    let shared: SharedClock = Arc::new(clock.clone());
    let options = Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        clock: Some(shared),
        ..Options::default()
    };
    (TestRelay::start_with(options).await, clock)
}

async fn fail_times(relay: &TestRelay, ip: &str, user: &str, n: usize) {
    for i in 0..n {
        let response = relay.login_from(ip, user, WRONG).await;
        assert_eq!(
            response.status,
            401,
            "failure {} from {ip}: {}",
            i + 1,
            response.text()
        );
    }
}

fn assert_blocked(response: &HttpResponse, message: &str) {
    assert_eq!(response.status, 429, "{}", response.text());
    assert_eq!(response.error(), message);
    assert!(response.header("set-cookie").is_none());
}

async fn failure_rows(relay: &TestRelay) -> i64 {
    relay.server().store().login_failure_rows().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ninth_failure_allows_tenth_blocks_and_success_does_not_reset() {
    let (relay, _clock) = proxied_relay().await;
    relay.add_user("alice").await;
    let ip = "198.51.100.10";
    fail_times(&relay, ip, "alice", 9).await;
    // Nine failures: still allowed, and a success does not reset the count…
    assert_eq!(relay.login_from(ip, "alice", PASSWORD).await.status, 200);
    // …so the tenth failure blocks.
    assert_eq!(relay.login_from(ip, "alice", WRONG).await.status, 401);
    let rows = failure_rows(&relay).await;
    let blocked = relay.login_from(ip, "alice", PASSWORD).await;
    assert_blocked(&blocked, BLOCKED_20);
    assert_eq!(blocked.header("retry-after"), Some("1200"));
    // While blocked the password is not checked: a wrong one gets the same 429 and counts nothing.
    assert_blocked(&relay.login_from(ip, "nobody", WRONG).await, BLOCKED_20);
    assert_eq!(failure_rows(&relay).await, rows);
    // Other addresses are not affected.
    assert_eq!(
        relay
            .login_from("198.51.100.11", "alice", PASSWORD)
            .await
            .status,
        200
    );
    let blocks = relay.server().guard().blocked().await.unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!((blocks[0].ip.as_str(), blocks[0].failures), (ip, 10));
    assert!(logs().contains("IP blocked after failed sign-ins"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_just_outside_the_window_do_not_block() {
    let (relay, clock) = proxied_relay().await;
    relay.add_user("alice").await;
    let (inside, outside) = ("198.51.100.20", "198.51.100.21");
    fail_times(&relay, inside, "alice", 1).await;
    fail_times(&relay, outside, "alice", 1).await;
    // 1 ms before the first failure leaves the 10-minute window: ten in the window → blocked.
    clock.advance(10 * MINUTE - Duration::from_millis(1));
    fail_times(&relay, inside, "alice", 9).await;
    assert_eq!(
        relay.login_from(inside, "alice", PASSWORD).await.status,
        429
    );
    // Exactly at the window's end the first failure no longer counts: nine → allowed.
    clock.advance(Duration::from_millis(1));
    fail_times(&relay, outside, "alice", 9).await;
    assert_eq!(
        relay.login_from(outside, "alice", PASSWORD).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_expires_and_its_failures_do_not_count_again() {
    let (relay, clock) = proxied_relay().await;
    relay.add_user("alice").await;
    let guard = relay.server().guard();
    guard
        .set_policy(&Policy {
            block: 5 * MINUTE,
            ..Policy::default()
        })
        .await
        .unwrap();
    let ip = "2001:db8::42";
    fail_times(&relay, ip, "alice", 10).await;
    let message = "Too many failed sign-in attempts from your network. Try again in 5 minutes.";
    assert_blocked(&relay.login_from(ip, "alice", PASSWORD).await, message);
    clock.advance(5 * MINUTE - Duration::from_millis(1));
    assert_blocked(
        &relay.login_from(ip, "alice", PASSWORD).await,
        bruteforce::ip_blocked_message(Duration::from_millis(1)).as_str(),
    );
    clock.advance(Duration::from_millis(1));
    // The block is over; the ten failures are still inside the window but do not count again.
    fail_times(&relay, ip, "alice", 1).await;
    assert_eq!(relay.login_from(ip, "alice", PASSWORD).await.status, 200);
    assert!(guard.blocked().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitelisted_addresses_and_ranges_are_never_blocked() {
    let (relay, _clock) = proxied_relay().await;
    relay.add_user("alice").await;
    let guard = relay.server().guard();
    assert!(guard
        .whitelist_add(&"203.0.113.0/24".parse().unwrap())
        .await
        .unwrap());
    assert!(guard
        .whitelist_add(&"2001:db8:1::/48".parse().unwrap())
        .await
        .unwrap());
    for ip in ["203.0.113.9", "2001:db8:1::5"] {
        fail_times(&relay, ip, "alice", 25).await;
        assert_eq!(
            relay.login_from(ip, "alice", PASSWORD).await.status,
            200,
            "{ip}"
        );
    }
    // Just outside the ranges the usual rule applies.
    fail_times(&relay, "203.0.114.1", "bob", 10).await;
    assert_eq!(
        relay
            .login_from("203.0.114.1", "alice", PASSWORD)
            .await
            .status,
        429
    );
    // An existing block is not enforced once its address is whitelisted.
    assert!(guard
        .whitelist_add(&"203.0.114.1".parse().unwrap())
        .await
        .unwrap());
    assert_eq!(
        relay
            .login_from("203.0.114.1", "alice", PASSWORD)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_slowdown_spares_known_ips_and_is_bounded() {
    let (relay, clock) = proxied_relay().await;
    relay.add_user("alice").await;
    relay.add_user("bob").await;
    let home = "192.0.2.1";
    assert_eq!(relay.login_from(home, "alice", PASSWORD).await.status, 200);
    // A distributed attack: 20 failures for alice (and for a name that does not exist) from 20 IPs.
    for i in 0..20 {
        fail_times(&relay, &format!("198.51.100.{}", 100 + i), "alice", 1).await;
        fail_times(&relay, &format!("198.51.101.{}", 100 + i), "ghost", 1).await;
    }
    let new_ip = "203.0.113.50";
    let slowed = "Too many failed sign-in attempts for this account. Try again in 1 minute.";
    let refused = relay.login_from(new_ip, "alice", PASSWORD).await;
    assert_blocked(&refused, slowed);
    assert_eq!(refused.header("retry-after"), Some("30"));
    // The same answer for a name that does not exist: nothing reveals which users exist.
    assert_blocked(&relay.login_from(new_ip, "ghost", PASSWORD).await, slowed);
    // Alice's usual IP and other accounts are not affected.
    assert_eq!(relay.login_from(home, "alice", PASSWORD).await.status, 200);
    assert_eq!(relay.login_from(new_ip, "bob", PASSWORD).await.status, 200);
    // Each further failure doubles the wait (30 s, 60 s, …)
    clock.advance(Duration::from_secs(30));
    fail_times(&relay, "198.51.100.200", "alice", 1).await;
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        relay.login_from(new_ip, "alice", PASSWORD).await.status,
        429
    );
    clock.advance(Duration::from_secs(1));
    // …and after the bounded wait the owner gets in from a new IP too.
    assert_eq!(
        relay.login_from(new_ip, "alice", PASSWORD).await.status,
        200
    );
    // The cap: however many failures, the wait never exceeds account_max_delay (5 minutes).
    // (Failures from alice's known IP still count for the account.)
    fail_times(&relay, home, "alice", 6).await;
    let refused = relay.login_from("203.0.113.51", "alice", PASSWORD).await;
    assert_blocked(
        &refused,
        "Too many failed sign-in attempts for this account. Try again in 5 minutes.",
    );
    assert_eq!(refused.header("retry-after"), Some("300"));
    clock.advance(5 * MINUTE);
    assert_eq!(
        relay
            .login_from("203.0.113.51", "alice", PASSWORD)
            .await
            .status,
        200
    );
    // No IP was blocked by any of this.
    assert!(relay.server().guard().blocked().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let relay = TestRelay::start().await; // no trusted proxy
    relay.add_user("alice").await;
    for i in 0..10 {
        let response = relay
            .login_from(&format!("198.51.100.{i}"), "alice", WRONG)
            .await;
        assert_eq!(response.status, 401);
    }
    // Every attempt came from 127.0.0.1 whatever the header said: that peer is blocked.
    assert_blocked(
        &relay.login_from("203.0.113.77", "alice", PASSWORD).await,
        BLOCKED_20,
    );
    let blocks = relay.server().guard().blocked().await.unwrap();
    assert_eq!(
        blocks.iter().map(|b| b.ip.as_str()).collect::<Vec<_>>(),
        ["127.0.0.1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxys_forwarded_for_names_the_client() {
    let (relay, _clock) = proxied_relay().await;
    relay.add_user("alice").await;
    fail_times(&relay, "198.51.100.1", "alice", 10).await;
    // The right-most untrusted entry is the client; what the client prepended does not help it.
    assert_eq!(
        relay
            .login_from("6.6.6.6, 198.51.100.1", "alice", PASSWORD)
            .await
            .status,
        429
    );
    assert_eq!(
        relay
            .login_from("198.51.100.1, 198.51.100.2", "alice", PASSWORD)
            .await
            .status,
        200
    );
    assert_eq!(
        relay
            .login_from("198.51.100.2", "alice", PASSWORD)
            .await
            .status,
        200
    );
    let blocks = relay.server().guard().blocked().await.unwrap();
    assert_eq!(
        blocks.iter().map(|b| b.ip.as_str()).collect::<Vec<_>>(),
        ["198.51.100.1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_ips_live_tunnel_is_closed_with_4429_and_new_ones_refused() {
    let (relay, _clock) = proxied_relay().await;
    let (addr, _) = echo_peer().await;
    relay.user_with_workstation("alice", "pc-alice", addr).await;
    let ip = "198.51.100.30";
    let session = Session::from_login(&relay.login_from(ip, "alice", PASSWORD).await);
    let origin = relay.origin();
    let ticket = relay.ticket(&session, None).await;
    let mut ws = relay
        .ws_connect_with(
            &format!("ticket={ticket}"),
            Some(&origin),
            &[("X-Forwarded-For", ip)],
        )
        .await
        .expect("tunnel upgrade");
    echo_roundtrip(&mut ws, b"hello").await;
    // Another IP's tunnel of the same user stays open.
    let other_ticket = relay.ticket(&session, None).await;
    let mut other = relay
        .ws_connect_with(
            &format!("ticket={other_ticket}"),
            Some(&origin),
            &[("X-Forwarded-For", "198.51.100.31")],
        )
        .await
        .expect("tunnel upgrade");
    echo_roundtrip(&mut other, b"hi").await;

    fail_times(&relay, ip, "alice", 10).await;
    let (_, close) = read_until_close(&mut ws).await;
    assert_eq!(close_code(&close), Some(4429));
    assert_eq!(close.unwrap().reason.as_str(), BLOCKED_20);
    echo_roundtrip(&mut other, b"still here").await;

    // A new tunnel from the blocked IP is refused, even with a valid ticket.
    let ticket = relay.ticket(&session, None).await;
    let mut ws = relay
        .ws_connect_with(
            &format!("ticket={ticket}"),
            Some(&origin),
            &[("X-Forwarded-For", ip)],
        )
        .await
        .expect("tunnel upgrade");
    let (_, close) = read_until_close(&mut ws).await;
    assert_eq!(close_code(&close), Some(4429));
    assert_eq!(close.unwrap().reason.as_str(), BLOCKED_20);
}

async fn temp_guard(max_failure_rows: i64) -> (tempfile::TempDir, Store, LoginGuard, ManualClock) {
    let temp = tempfile::tempdir().unwrap();
    let store = Store::open(&temp.path().join("db.sqlite")).await.unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let guard = LoginGuard::new(
        store.clone(),
        LimiterConfig {
            clock: Arc::new(clock.clone()),
            max_failure_rows,
        },
    );
    (temp, store, guard, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_stays_bounded_under_a_flood_from_distinct_ips() {
    const CAP: i64 = 2_000;
    let (_temp, store, guard, clock) = temp_guard(CAP).await;
    // 20 000 attempts, each from a different address (the real cap is 100 000 rows).
    for i in 0..20_000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        assert!(guard
            .record_failure(ip, Some(&format!("user{}", i % 50)))
            .await
            .unwrap()
            .is_none());
        if i % 1_000 == 999 {
            assert!(store.login_failure_rows().await.unwrap() <= CAP);
        }
    }
    assert_eq!(store.login_failure_rows().await.unwrap(), CAP);
    assert!(guard.blocked().await.unwrap().is_empty());
    // The periodic housekeeping removes everything older than the window.
    clock.advance(10 * MINUTE);
    guard.purge().await.unwrap();
    assert_eq!(store.login_failure_rows().await.unwrap(), 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_forgets_expired_blocks() {
    let (_temp, store, guard, clock) = temp_guard(1_000).await;
    let ip: IpAddr = "198.51.100.5".parse().unwrap();
    let mut block = None;
    for _ in 0..10 {
        block = guard.record_failure(ip, None).await.unwrap().or(block);
    }
    let block = block.expect("tenth failure blocks");
    assert_eq!(block.failures, 10);
    assert_eq!(guard.ip_blocked_for(ip).await.unwrap(), Some(20 * MINUTE));
    clock.advance(20 * MINUTE);
    assert_eq!(guard.ip_blocked_for(ip).await.unwrap(), None);
    assert!(
        store.ip_block("198.51.100.5").await.unwrap().is_some(),
        "kept for a window after the end"
    );
    clock.advance(10 * MINUTE);
    guard.purge().await.unwrap();
    assert!(store.ip_block("198.51.100.5").await.unwrap().is_none());
    store.close().await;
}

#[test]
fn security_cli_round_trip() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let ok = |args: &[&str]| {
        let output = run_cli(&dir, args, None);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let show = ok(&["security", "show"]);
    for expected in [
        "max-failures            10",
        "window                  10 min",
        "block                   20 min",
    ] {
        assert!(show.contains(expected), "{show}");
    }
    let set = ok(&[
        "security",
        "set",
        "--max-failures",
        "5",
        "--block-minutes",
        "60",
    ]);
    assert!(
        set.contains("max-failures            5") && set.contains("block                   60 min"),
        "{set}"
    );
    assert!(ok(&["security", "show"]).contains("max-failures            5"));
    let bad = run_cli(&dir, &["security", "set", "--max-failures", "0"], None);
    assert!(
        !bad.status.success()
            && String::from_utf8_lossy(&bad.stderr).contains("(max_failures) must be between 1 and 1000, not 0.")
    );

    assert!(ok(&["security", "whitelist", "add", "10.1.2.3/8"]).contains("10.0.0.0/8 added"));
    assert!(ok(&["security", "whitelist", "add", "2001:db8::1"]).contains("2001:db8::1 added"));
    assert!(ok(&["security", "whitelist", "add", "10.0.0.0/8"]).contains("already"));
    assert_eq!(
        ok(&["security", "whitelist", "list"]),
        "10.0.0.0/8\n2001:db8::1\n"
    );
    assert!(ok(&["security", "whitelist", "remove", "10.0.0.0/8"]).contains("removed"));
    let missing = run_cli(
        &dir,
        &["security", "whitelist", "remove", "10.0.0.0/8"],
        None,
    );
    assert!(
        !missing.status.success()
            && String::from_utf8_lossy(&missing.stderr).contains("not on the whitelist")
    );
    let invalid = run_cli(&dir, &["security", "whitelist", "add", "10.0.0.0/33"], None);
    assert!(
        !invalid.status.success()
            && String::from_utf8_lossy(&invalid.stderr).contains("invalid address or range")
    );

    assert_eq!(ok(&["security", "blocked"]), "(none)\n");
    // Block an address through the library (real clock), as the relay would.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = open_test_store(&dir).await;
        let guard = LoginGuard::new(
            store.clone(),
            LimiterConfig {
                clock: homedesk_relay::clock::system(),
                max_failure_rows: 1_000,
            },
        );
        for _ in 0..5 {
            guard
                .record_failure("198.51.100.9".parse().unwrap(), Some("alice"))
                .await
                .unwrap();
        }
        store.close().await;
    });
    let blocked = ok(&["security", "blocked"]);
    let line = blocked
        .lines()
        .find(|l| l.starts_with("198.51.100.9"))
        .expect(&blocked);
    assert!(
        blocked.starts_with("IP")
            && line.contains(" UTC")
            && line.contains("5 failed sign-ins within 10 minutes"),
        "{blocked}"
    );
    assert!(ok(&["security", "unblock", "198.51.100.9"]).contains("198.51.100.9 unblocked"));
    assert_eq!(ok(&["security", "blocked"]), "(none)\n");
    assert!(ok(&["security", "unblock", "198.51.100.9"]).contains("was not blocked"));
    let _ = Cidr::host("::1".parse().unwrap());
}
