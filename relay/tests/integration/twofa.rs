//! Two-factor sign-in through the real HTTP API: pending sessions get nothing, enrolment, codes,
//! single use (also under a race), clock skew, malformed and wrong codes, the limiter, resets,
//! the validity windows, and the `relay 2fa` CLI. Time is a manual clock (codes are computed for it
//! with the project's TOTP module).

use crate::common::*;
use homedesk_relay::clock::{ManualClock, SharedClock};
use homedesk_relay::totp::{self, Algorithm, Digits};
use homedesk_relay::twofa::{self, MemberKind};
use std::sync::Arc;
use std::time::Duration;

/// 10 s into a 30 s step, so that "now" is unambiguous.
pub(crate) const START_MS: i64 = 56_666_667 * 30_000 + 10_000;
const ENTER_CODE: &str = "Enter your verification code first.";

struct TwoFactorRelay {
    relay: TestRelay,
    clock: ManualClock,
    workstation: i64,
}

/// A relay on a manual clock that believes X-Forwarded-For from 127.0.0.1, with 2FA enabled and
/// `alice` (one echo workstation) on the 2FA list.
async fn two_factor_relay() -> TwoFactorRelay {
    let clock = ManualClock::new(START_MS);
    let shared: SharedClock = Arc::new(clock.clone());
    let options = Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        clock: Some(shared),
        ..Options::default()
    };
    let relay = TestRelay::start_with(options).await;
    let (addr, _) = echo_peer().await;
    let workstation = relay.user_with_workstation("alice", "alice-pc", addr).await;
    let store = relay.server().store();
    let mut settings = twofa::settings_load(store).await.unwrap();
    settings.enabled = true;
    twofa::settings_store(store, &settings).await.unwrap();
    twofa::add_member(store, MemberKind::User, "alice")
        .await
        .unwrap();
    TwoFactorRelay {
        relay,
        clock,
        workstation,
    }
}

/// RFC 4648 base32 (no padding) → bytes.
pub(crate) fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in text.bytes() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c)
            .expect("base32 character") as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

impl TwoFactorRelay {
    fn step(&self) -> i64 {
        self.clock_ms() / 30_000
    }
    fn clock_ms(&self) -> i64 {
        use homedesk_relay::clock::Clock;
        self.clock.now_ms()
    }

    /// The code of `secret` at the current step + `offset`.
    fn code(&self, secret: &[u8], offset: i64) -> String {
        totp::generate(
            secret,
            (self.step() + offset) as u64,
            Algorithm::Sha1,
            Digits::default(),
        )
    }

    /// Password step from `ip`: the pending session (cookie + CSRF) and the login body.
    async fn password(&self, ip: &str) -> Session {
        let response = self.relay.login_from(ip, "alice", PASSWORD).await;
        assert_eq!(response.status, 200, "{}", response.text());
        Session::from_login(&response)
    }

    async fn verify(&self, session: &Session, ip: &str, code: &str) -> HttpResponse {
        let origin = self.relay.origin();
        let cookie = session.cookie_header();
        let headers = [
            ("Origin", origin.as_str()),
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", ip),
            ("Cookie", cookie.as_str()),
            ("X-CSRF-Token", session.csrf.as_str()),
        ];
        let body = serde_json::json!({ "code": code }).to_string();
        self.relay
            .request("POST", "/api/2fa/verify", &headers, Some(&body))
            .await
    }

    async fn ticket_from(&self, session: &Session, ip: &str) -> HttpResponse {
        let origin = self.relay.origin();
        let cookie = session.cookie_header();
        let headers = [
            ("Origin", origin.as_str()),
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", ip),
            ("Cookie", cookie.as_str()),
            ("X-CSRF-Token", session.csrf.as_str()),
        ];
        self.relay
            .request("POST", "/api/ticket", &headers, Some("{}"))
            .await
    }

    /// Password + enrolment with the code of the current step: the secret and the full session.
    async fn enrol(&self, ip: &str) -> (Vec<u8>, Session) {
        let pending = self.password(ip).await;
        let enrolment = &pending.body["second_factor"];
        assert_eq!(enrolment["step"], "enrol", "{}", pending.body);
        let secret = base32_decode(enrolment["secret"].as_str().unwrap());
        let response = self.verify(&pending, ip, &self.code(&secret, 0)).await;
        assert_eq!(response.status, 200, "{}", response.text());
        (secret, Session::from_login(&response))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_session_gets_no_ticket_and_no_tunnel() {
    let t = two_factor_relay().await;
    let pending = t.password("198.51.100.1").await;
    assert_eq!(pending.body["second_factor"]["step"], "enrol");
    assert!(
        pending.body.get("workstations").is_none(),
        "{}",
        pending.body
    );
    let ticket = t.relay.ticket_response(&pending, Some(t.workstation)).await;
    assert_eq!((ticket.status, ticket.error().as_str()), (401, ENTER_CODE));
    let ticket = t.relay.ticket_response(&pending, None).await;
    assert_eq!(ticket.status, 401);
    let session = t
        .relay
        .request(
            "GET",
            "/api/session",
            &[("Cookie", pending.cookie_header().as_str())],
            None,
        )
        .await;
    assert_eq!(session.status, 401);
    let pin = t
        .relay
        .post(
            &format!("/api/workstations/{}/certificate", t.workstation),
            Some(&pending),
            &format!("{{\"sha256\":\"{}\"}}", "ab".repeat(32)),
        )
        .await;
    assert_eq!(pin.status, 401);
    // The tunnel needs a ticket; the session cookie alone opens nothing.
    let origin = t.relay.origin();
    let cookie = pending.cookie_header();
    let mut ws = t
        .relay
        .ws_connect_with("ticket=", Some(&origin), &[("Cookie", cookie.as_str())])
        .await
        .expect("upgrade");
    let (_, frame) = read_until_close(&mut ws).await;
    assert_eq!(close_code(&frame), Some(4401));
    // The code step itself still needs the CSRF token.
    let no_csrf = Session {
        csrf: "wrong".into(),
        ..pending.clone()
    };
    assert_eq!(
        t.verify(&no_csrf, "198.51.100.1", "000000").await.status,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_then_sign_in_with_a_code_reaches_the_workstation() {
    let t = two_factor_relay().await;
    let ip = "198.51.100.2";
    let pending = t.password(ip).await;
    let enrolment = pending.body["second_factor"].clone();
    let secret_text = enrolment["secret"].as_str().unwrap();
    let secret = base32_decode(secret_text);
    assert!(secret.len() >= 20, "at least 160 bits");
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(
        uri.contains(&format!("secret={secret_text}"))
            && uri.contains("%20Homedesk")
            && uri.contains(":alice?")
    );
    assert!(enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    assert_eq!(enrolment["digits"], 6);
    // The secret is not stored in clear and never logged.
    let store = t.relay.server().store();
    let alice = store.user_by_name("alice").await.unwrap();
    let sealed = store
        .twofa_user(alice.id)
        .await
        .unwrap()
        .unwrap()
        .secret_enc
        .unwrap();
    assert!(
        !sealed.contains(secret_text)
            && !sealed.contains(&String::from_utf8_lossy(&secret).to_string())
    );
    assert!(!logs().contains(secret_text));

    // A wrong code leaves the enrolment open; the right one completes it under a new session id.
    let wrong = t.verify(&pending, ip, &t.code(&secret, 5)).await;
    assert_eq!(
        (wrong.status, wrong.error().as_str()),
        (401, "The code is wrong or has expired.")
    );
    let response = t.verify(&pending, ip, &t.code(&secret, 0)).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let full = Session::from_login(&response);
    assert_ne!(
        full.cookie, pending.cookie,
        "session id rotated at promotion"
    );
    assert_ne!(full.csrf, pending.csrf);
    assert_eq!(full.body["workstations"][0]["name"], "alice-pc");
    // The pending cookie is dead; the new one gets a ticket and the tunnel works.
    assert_eq!(t.relay.ticket_response(&pending, None).await.status, 401);
    let ticket = t.ticket_from(&full, ip).await;
    assert_eq!(ticket.status, 200, "{}", ticket.text());
    let mut ws = t
        .relay
        .tunnel(ticket.json()["ticket"].as_str().unwrap())
        .await;
    echo_roundtrip(&mut ws, b"second factor done").await;
    assert!(!logs().contains(secret_text));

    // The enrolment QR is never shown again: the next sign-in asks for a code.
    t.clock.advance(Duration::from_secs(30));
    let again = t.password("203.0.113.9").await;
    assert_eq!(
        again.body["second_factor"],
        serde_json::json!({ "step": "code", "method": "app", "digits": 6 })
    );
}

/// The ENROLLED column of `relay 2fa list` for alice ("yes", "no" or "-").
fn cli_enrolled(relay: &TestRelay) -> String {
    let out = relay.cli(&["2fa", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = list
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.len() >= 4 && cells[0] == "user" && cells[1] == "alice")
        .unwrap_or_else(|| panic!("alice is not listed: {list}"));
    row[3].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_counts_only_after_a_valid_code_of_the_current_secret() {
    let t = two_factor_relay().await;
    let ip = "198.51.100.50";
    let secret_of = |pending: &Session| {
        assert_eq!(
            pending.body["second_factor"]["step"], "enrol",
            "{}",
            pending.body
        );
        base32_decode(
            pending.body["second_factor"]["secret"]
                .as_str()
                .expect("secret"),
        )
    };
    // The QR code was shown, but without a code alice is not enrolled…
    let first = t.password(ip).await;
    let first_secret = secret_of(&first);
    assert_eq!(cli_enrolled(&t.relay), "no");
    // …so the next sign-in enrols again, with a new secret (the unconfirmed one is replaced).
    let second = t.password(ip).await;
    let second_secret = secret_of(&second);
    assert_ne!(first_secret, second_secret);
    // A code of the abandoned secret skips nothing, in the old pending session or the new one.
    for pending in [&first, &second] {
        let stale = t.verify(pending, ip, &t.code(&first_secret, 0)).await;
        assert_eq!(
            (stale.status, stale.error().as_str()),
            (401, "The code is wrong or has expired.")
        );
    }
    let wrong = t.verify(&second, ip, &t.code(&second_secret, 5)).await;
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert_eq!(cli_enrolled(&t.relay), "no");
    assert_eq!(
        t.ticket_from(&second, ip).await.status,
        401,
        "still pending"
    );

    // Signing in again after a wrong code: still the enrolment step.
    let third = t.password(ip).await;
    let third_secret = secret_of(&third);
    assert_ne!(third_secret, second_secret);
    let stale = t.verify(&third, ip, &t.code(&second_secret, 0)).await;
    assert_eq!(stale.status, 401, "{}", stale.text());
    assert_eq!(cli_enrolled(&t.relay), "no");

    // One valid code of the secret shown last completes the enrolment; from then on it asks for codes.
    let done = t.verify(&third, ip, &t.code(&third_secret, 0)).await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(cli_enrolled(&t.relay), "yes");
    t.clock.advance(Duration::from_secs(30));
    let next = t.password("203.0.113.50").await;
    assert_eq!(next.body["second_factor"]["step"], "code", "{}", next.body);
    let signed_in = t
        .verify(&next, "203.0.113.50", &t.code(&third_secret, 0))
        .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validity_after_first_session_skips_the_code_from_the_same_ip_only() {
    let t = two_factor_relay().await;
    let ip = "198.51.100.3";
    let (_, full) = t.enrol(ip).await;
    assert_eq!(t.ticket_from(&full, ip).await.status, 200);
    // Within 480 minutes of the first session, the same IP signs in with the password only…
    t.clock.advance(Duration::from_secs(479 * 60));
    let direct = t.relay.login_from(ip, "alice", PASSWORD).await;
    assert_eq!(direct.status, 200);
    assert!(
        direct.json().get("second_factor").is_none() && direct.json()["workstations"].is_array()
    );
    // …another IP needs a code…
    assert_eq!(
        t.password("198.51.100.4").await.body["second_factor"]["step"],
        "code"
    );
    // …and after the window the same IP does too.
    t.clock.advance(Duration::from_secs(61));
    assert_eq!(t.password(ip).await.body["second_factor"]["step"], "code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validity_before_first_session_expires() {
    let t = two_factor_relay().await;
    let ip = "198.51.100.5";
    let (_, full) = t.enrol(ip).await;
    t.clock.advance(Duration::from_secs(3601));
    let ticket = t.ticket_from(&full, ip).await;
    assert_eq!(
        (ticket.status, ticket.error().as_str()),
        (401, "Your verification has expired. Sign in again.")
    );
    assert_eq!(t.ticket_from(&full, ip).await.status, 401, "session ended");
}

/// "The time allowed" includes its end: the first ticket exactly `validity_before_secs` (3600 s)
/// after the code is in time; one millisecond later it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validity_before_first_session_ends_exactly_at_the_limit() {
    let t = two_factor_relay().await;
    let (secret, on_time) = t.enrol("198.51.100.60").await;
    // A second session verified at the same instant (the next step's code, within the discrepancy).
    let pending = t.password("198.51.100.61").await;
    let verified = t
        .verify(&pending, "198.51.100.61", &t.code(&secret, 1))
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text());
    let late = Session::from_login(&verified);

    t.clock.advance(Duration::from_secs(3600));
    let ticket = t.ticket_from(&on_time, "198.51.100.60").await;
    assert_eq!(ticket.status, 200, "at exactly 3600 s: {}", ticket.text());
    t.clock.advance(Duration::from_millis(1));
    let ticket = t.ticket_from(&late, "198.51.100.61").await;
    assert_eq!(
        (ticket.status, ticket.error().as_str()),
        (401, "Your verification has expired. Sign in again.")
    );
    // The session that opened in time goes on.
    assert_eq!(t.ticket_from(&on_time, "198.51.100.60").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_accepted_once() {
    let t = two_factor_relay().await;
    let (secret, _) = t.enrol("198.51.100.6").await;
    // Same step again, from a fresh password step: refused as reused.
    let pending = t.password("198.51.100.7").await;
    let replay = t
        .verify(&pending, "198.51.100.7", &t.code(&secret, 0))
        .await;
    assert_eq!(
        (replay.status, replay.error().as_str()),
        (
            401,
            "This code has already been used; wait for the next one."
        )
    );
    // The next step's code works.
    t.clock.advance(Duration::from_secs(30));
    assert_eq!(
        t.verify(&pending, "198.51.100.7", &t.code(&secret, 0))
            .await
            .status,
        200
    );
    // A promoted session cannot be promoted again.
    assert_eq!(
        t.verify(&pending, "198.51.100.7", &t.code(&secret, 0))
            .await
            .status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_requests_with_one_code_have_exactly_one_winner() {
    let t = two_factor_relay().await;
    let (secret, _) = t.enrol("198.51.100.8").await;
    t.clock.advance(Duration::from_secs(30));
    let mut sessions = Vec::new();
    for i in 0..6 {
        sessions.push(t.password(&format!("198.51.100.{}", 20 + i)).await);
    }
    let code = t.code(&secret, 0);
    let attempts = sessions.iter().enumerate().map(|(i, s)| {
        let ip = format!("198.51.100.{}", 20 + i);
        let code = code.clone();
        let t = &t;
        async move { t.verify(s, &ip, &code).await.status }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_within_the_discrepancy_is_accepted_and_one_beyond_refused() {
    let t = two_factor_relay().await;
    let ip = "198.51.100.9";
    let pending = t.password(ip).await;
    let secret = base32_decode(pending.body["second_factor"]["secret"].as_str().unwrap());
    // Default discrepancy 1: a code one step behind is accepted.
    assert_eq!(
        t.verify(&pending, ip, &t.code(&secret, -2)).await.status,
        401
    );
    assert_eq!(
        t.verify(&pending, ip, &t.code(&secret, -1)).await.status,
        200
    );
    let pending = t.password("198.51.100.10").await;
    assert_eq!(
        t.verify(&pending, ip, &t.code(&secret, 2)).await.status,
        401
    );
    assert_eq!(
        t.verify(&pending, ip, &t.code(&secret, 1)).await.status,
        200
    );
    // Discrepancy 3: three steps ahead pass, four do not.
    let store = t.relay.server().store();
    let mut settings = twofa::settings_load(store).await.unwrap();
    settings.discrepancy = 3;
    twofa::settings_store(store, &settings).await.unwrap();
    let pending = t.password("198.51.100.11").await;
    assert_eq!(
        t.verify(&pending, ip, &t.code(&secret, 4)).await.status,
        401
    );
    assert_eq!(
        t.verify(&pending, ip, &t.code(&secret, 3)).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_codes_are_refused_cleanly() {
    let t = two_factor_relay().await;
    let ip = "198.51.100.12";
    let pending = t.password(ip).await;
    let huge = "1".repeat(100_000);
    for code in [
        "",
        "12345",
        "1234567",
        "12 345",
        " 123456",
        "12345a",
        "１２３４５６",
        "-12345",
        huge.as_str(),
    ] {
        let response = t.verify(&pending, ip, code).await;
        assert_eq!(response.status, 400, "{code:?}: {}", response.text());
        assert_eq!(
            response.error(),
            "The code must be exactly 6 digits (0-9), without spaces or other characters."
        );
    }
    let origin = t.relay.origin();
    let cookie = pending.cookie_header();
    let headers = [
        ("Origin", origin.as_str()),
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", pending.csrf.as_str()),
    ];
    let not_json = t
        .relay
        .request(
            "POST",
            "/api/2fa/verify",
            &headers,
            Some("{\"code\": 123456}"),
        )
        .await;
    assert_eq!(
        (not_json.status, not_json.error().as_str()),
        (400, "The request body is not the expected JSON.")
    );
    // Still pending, nothing promoted.
    assert_eq!(t.relay.ticket_response(&pending, None).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_count_in_the_brute_force_limiter() {
    let t = two_factor_relay().await;
    let ip = "198.51.100.13";
    let pending = t.password(ip).await;
    let secret = base32_decode(pending.body["second_factor"]["secret"].as_str().unwrap());
    for i in 0..10 {
        let response = t.verify(&pending, ip, &t.code(&secret, 10 + i)).await;
        assert_eq!(response.status, 401, "attempt {i}: {}", response.text());
    }
    // Ten failures block the IP: even the right code is refused now, without being checked.
    let blocked = t.verify(&pending, ip, &t.code(&secret, 0)).await;
    assert_eq!(blocked.status, 429, "{}", blocked.text());
    assert_eq!(
        blocked.error(),
        "Too many failed sign-in attempts from your network. Try again in 20 minutes."
    );
    assert_eq!(t.relay.login_from(ip, "alice", PASSWORD).await.status, 429);
    assert!(logs().contains("verification code refused"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_revokes_the_secret_and_the_sessions() {
    let t = two_factor_relay().await;
    let ip = "198.51.100.14";
    let (old_secret, full) = t.enrol(ip).await;
    let out = t.relay.cli(&["2fa", "reset", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("new QR code"));
    assert_eq!(t.ticket_from(&full, ip).await.status, 401, "sessions ended");
    t.clock.advance(Duration::from_secs(30));
    let pending = t.password(ip).await;
    let enrolment = &pending.body["second_factor"];
    assert_eq!(
        enrolment["step"], "enrol",
        "a new QR code at the next sign-in"
    );
    let new_secret = base32_decode(enrolment["secret"].as_str().unwrap());
    assert_ne!(new_secret, old_secret);
    assert_eq!(
        t.verify(&pending, ip, &t.code(&old_secret, 0)).await.status,
        401,
        "old secret revoked"
    );
    assert_eq!(
        t.verify(&pending, ip, &t.code(&new_secret, 0)).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_off_the_list_or_with_2fa_disabled_sign_in_with_the_password() {
    let t = two_factor_relay().await;
    let (addr, _) = echo_peer().await;
    t.relay.user_with_workstation("bob", "bob-pc", addr).await;
    let bob = t.relay.login_response("bob", PASSWORD).await;
    assert!(bob.json().get("second_factor").is_none() && bob.json()["workstations"].is_array());
    let store = t.relay.server().store();
    let mut settings = twofa::settings_load(store).await.unwrap();
    settings.enabled = false;
    twofa::settings_store(store, &settings).await.unwrap();
    let alice = t.relay.login_response("alice", PASSWORD).await;
    assert!(
        alice.json().get("second_factor").is_none(),
        "{}",
        alice.text()
    );
    // Wrong password stays the same 401 for 2FA users (nothing about the second factor leaks).
    settings.enabled = true;
    twofa::settings_store(store, &settings).await.unwrap();
    let wrong = t.relay.login_response("alice", "not the password").await;
    assert_eq!(
        (wrong.status, wrong.error().as_str()),
        (401, "Invalid username or password.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_accepts_an_optional_domain_and_the_portal_says_whether_to_show_it() {
    let relay = TestRelay::start().await;
    relay.add_user("carol").await;
    let body = serde_json::json!({ "username": "carol", "password": PASSWORD, "domain": "CORP" })
        .to_string();
    assert_eq!(relay.post("/api/login", None, &body).await.status, 200);
    let portal = relay.request("GET", "/api/portal", &[], None).await;
    assert_eq!(portal.json()["show_domain"], serde_json::json!(false));
    let out = relay.cli(&["portal", "show-domain", "on"]);
    assert!(out.status.success());
    let portal = relay.request("GET", "/api/portal", &[], None).await;
    assert_eq!(portal.json()["show_domain"], serde_json::json!(true));
}

#[test]
fn cli_manages_members_methods_and_settings() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let run = |args: &[&str]| run_cli(&dir, args, None);
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fails = |args: &[&str], needle: &str| {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success() && stderr.contains(needle) && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    };
    ok(&["user", "add", "alice"]);
    ok(&["user", "add", "bob"]);
    assert!(ok(&["2fa", "list"]).starts_with("Two-factor sign-in is disabled."));
    ok(&["2fa", "enable"]);
    ok(&["2fa", "add", "alice"]);
    ok(&["2fa", "add", "bob"]);
    ok(&["2fa", "add", "Remote Staff", "--group"]);
    fails(&["2fa", "add", "nobody"], "no user named \"nobody\"");
    ok(&["2fa", "method", "bob", "sms", "--phone", "+41791234567"]);
    fails(
        &["2fa", "method", "bob", "sms", "--phone", "0791234567"],
        "international form",
    );
    fails(&["2fa", "method", "bob", "sms"], "--phone");
    fails(&["2fa", "method", "bob", "pigeon"], "unknown method");
    let list = ok(&["2fa", "list"]);
    assert!(list.starts_with("Two-factor sign-in is enabled."), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("user") && l.contains("alice") && l.contains("app")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.contains("bob") && l.contains("sms") && l.contains("+41791234567")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("group") && l.contains("remote staff")),
        "{list}"
    );
    ok(&["2fa", "remove", "bob"]);
    fails(&["2fa", "remove", "bob"], "not on the two-factor list");
    assert!(!ok(&["2fa", "list"]).contains("bob"));

    let show = ok(&["2fa", "settings", "show"]);
    for line in [
        "discrepancy             1 steps",
        "validity-after          480 min",
        "validity-before         3600 s",
        "digits                  6",
    ] {
        assert!(show.contains(line), "{show}");
    }
    assert!(
        show.contains("Your %ISSUER% verification code is: %CODE%") && show.contains(" Homedesk"),
        "{show}"
    );
    let out = run(&[
        "2fa",
        "settings",
        "set",
        "--discrepancy",
        "11",
        "--digits",
        "5",
        "--issuer",
        "ACME",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: a discrepancy of 11") && stderr.contains("RFC 4226"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("issuer                  ACME"));
    fails(
        &["2fa", "settings", "set", "--discrepancy", "481"],
        "between 0 and 480",
    );
    fails(
        &["2fa", "settings", "set", "--digits", "13"],
        "between 4 and 12",
    );
    fails(
        &["2fa", "settings", "set", "--sms-template", "Your code"],
        "must contain %CODE%",
    );
    ok(&[
        "2fa",
        "settings",
        "set",
        "--sms-template",
        "%ISSUER%: %CODE%",
    ]);
    assert!(ok(&["2fa", "settings", "show"]).contains("sms-template            %ISSUER%: %CODE%"));
    fails(
        &["2fa", "settings", "set", "--code-lifetime-secs", "10"],
        "between 30 and 3600",
    );
    fails(
        &["2fa", "settings", "set", "--send-limit", "0"],
        "between 1 and 100",
    );
    assert!(ok(&["2fa", "settings", "set", "--send-limit", "3"])
        .contains("send-limit              3 per hour"));

    let out = run_cli(
        &dir,
        &[
            "2fa",
            "sms",
            "--account-sid",
            "AC123",
            "--from",
            "+15005550006",
        ],
        Some("tok-en\n"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.contains("https://api.twilio.com")
            && !stdout.contains("tok-en"),
        "{stdout}"
    );
    let out = run_cli(
        &dir,
        &["2fa", "sms", "--account-sid", "AC123", "--from", "5550006"],
        Some("t\n"),
    );
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("international form")
    );
    let smtp = ok(&[
        "2fa",
        "smtp",
        "--host",
        "mail.example.com",
        "--from",
        "desk@example.com",
    ]);
    assert!(smtp.contains("mail.example.com:587 (starttls)"), "{smtp}");
    fails(
        &[
            "2fa",
            "smtp",
            "--host",
            "mail.example.com",
            "--from",
            "not-an-address",
        ],
        "not an email address",
    );

    ok(&["2fa", "disable"]);
    assert!(ok(&["2fa", "list"]).starts_with("Two-factor sign-in is disabled."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_rdp_is_refused_for_two_factor_users_unless_whitelisted() {
    use tokio::io::AsyncWriteExt;
    let relay = TestRelay::start().await;
    let mut peer = Peer::start().await;
    relay
        .user_with_workstation("alice", "alice-pc", peer.addr)
        .await;
    let store = relay.server().store();
    let mut settings = twofa::settings_load(store).await.unwrap();
    settings.enabled = true;
    twofa::settings_store(store, &settings).await.unwrap();
    twofa::add_member(store, MemberKind::User, "alice")
        .await
        .unwrap();
    // Native clients cannot show a code page: refused (closed) without dialling the workstation.
    let mut client = tokio::net::TcpStream::connect(relay.https_addr)
        .await
        .unwrap();
    client
        .write_all(&crate::native::connection_request(Some("alice")))
        .await
        .unwrap();
    assert!(crate::native::expect_closed(&mut client).await.is_empty());
    assert_eq!(peer.accepted(), 0);
    assert!(logs().contains("native RDP refused: two-factor user, IP not whitelisted"));
    // From a whitelisted network the cookie routes as usual.
    relay
        .server()
        .guard()
        .whitelist_add(&"127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let mut client = tokio::net::TcpStream::connect(relay.https_addr)
        .await
        .unwrap();
    client
        .write_all(&crate::native::connection_request(Some("alice")))
        .await
        .unwrap();
    let _workstation = peer.next().await;
    assert_eq!(peer.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_groups_on_the_list_require_the_second_factor() {
    let relay = TestRelay::start().await;
    let store = relay.server().store();
    let mut settings = twofa::settings_load(store).await.unwrap();
    settings.enabled = true;
    twofa::settings_store(store, &settings).await.unwrap();
    // Listed in any case; stored like the directory's group names (lowercase).
    twofa::add_member(store, MemberKind::Group, "Remote Staff")
        .await
        .unwrap();
    let dave = store
        .upsert_directory_user("dave", &["remote staff".to_owned()])
        .await
        .unwrap();
    let erin = store
        .upsert_directory_user("erin", &["office".to_owned()])
        .await
        .unwrap();
    let twofa = relay.server().twofa();
    assert!(twofa.required(&dave).await.unwrap());
    assert!(!twofa.required(&erin).await.unwrap());
    let step = twofa
        .second_step(&dave, "198.51.100.77".parse().unwrap())
        .await
        .unwrap();
    assert!(matches!(step, twofa::SecondStep::Enrol(_)), "{step:?}");
    assert!(
        twofa::remove_member(store, MemberKind::Group, "REMOTE STAFF")
            .await
            .unwrap()
    );
    assert!(!twofa.required(&dave).await.unwrap());
}

/// The code `oathtool --totp=MODE` computes for a base32 secret at the relay's (manual) clock.
fn oathtool_code(mode: &str, secret_base32: &str, unix_secs: i64) -> String {
    let out = std::process::Command::new("oathtool")
        .arg(format!("--totp={mode}"))
        .arg("--base32")
        .arg(format!("--now=@{unix_secs}"))
        .arg(secret_base32)
        .output()
        .expect("oathtool is installed (apt-get install -y oathtool)");
    assert!(
        out.status.success(),
        "oathtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_and_sha512_enrolments_match_oathtool_and_keep_their_algorithm() {
    for (name, mode, algorithm) in [
        ("SHA256", "sha256", Algorithm::Sha256),
        ("SHA512", "sha512", Algorithm::Sha512),
    ] {
        let t = two_factor_relay().await;
        let ip = "198.51.100.40";
        let set = t.relay.cli(&[
            "2fa",
            "settings",
            "set",
            "--algorithm",
            &name.to_lowercase(),
        ]);
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
        assert!(String::from_utf8_lossy(&set.stdout)
            .contains(&format!("algorithm               {name}")));
        assert!(
            String::from_utf8_lossy(&set.stderr)
                .contains("not supported by every authenticator app"),
            "a warning: {}",
            String::from_utf8_lossy(&set.stderr)
        );

        // Enrolment: the Key Uri names the algorithm; a code computed by oathtool is accepted, the
        // SHA-1 code of the same secret and time is not.
        let pending = t.password(ip).await;
        let enrolment = &pending.body["second_factor"];
        let uri = enrolment["otpauth_uri"].as_str().unwrap();
        assert!(uri.contains(&format!("&algorithm={name}&")), "{uri}");
        let secret_text = enrolment["secret"].as_str().unwrap().to_owned();
        let secret = base32_decode(&secret_text);
        let theirs = oathtool_code(mode, &secret_text, t.clock_ms() / 1000);
        assert_eq!(
            theirs,
            totp::generate(&secret, t.step() as u64, algorithm, Digits::default())
        );
        let sha1 = t.code(&secret, 0);
        if sha1 != theirs {
            assert_eq!(
                t.verify(&pending, ip, &sha1).await.status,
                401,
                "{name}: a SHA-1 code"
            );
        }
        let accepted = t.verify(&pending, ip, &theirs).await;
        assert_eq!(accepted.status, 200, "{name}: {}", accepted.text());
        let alice = t
            .relay
            .server()
            .store()
            .user_by_name("alice")
            .await
            .unwrap();
        let row = t
            .relay
            .server()
            .store()
            .twofa_user(alice.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.algorithm, name);

        // The setting goes back to SHA-1: alice keeps her enrolled algorithm at the next sign-in.
        let back = t
            .relay
            .cli(&["2fa", "settings", "set", "--algorithm", "SHA1"]);
        assert!(back.status.success());
        t.clock.advance(Duration::from_secs(60));
        let pending = t.password(ip).await;
        assert_eq!(
            pending.body["second_factor"]["step"], "code",
            "{}",
            pending.body
        );
        let code = oathtool_code(mode, &secret_text, t.clock_ms() / 1000);
        let signed_in = t.verify(&pending, ip, &code).await;
        assert_eq!(
            signed_in.status,
            200,
            "{name} after the setting changed: {}",
            signed_in.text()
        );

        // After a reset, the new enrolment uses the setting in force (SHA-1).
        assert!(t.relay.cli(&["2fa", "reset", "alice"]).status.success());
        t.clock.advance(Duration::from_secs(30));
        let pending = t.password(ip).await;
        let uri = pending.body["second_factor"]["otpauth_uri"]
            .as_str()
            .unwrap();
        assert!(uri.contains("&algorithm=SHA1&"), "{uri}");
        let secret_text = pending.body["second_factor"]["secret"].as_str().unwrap();
        let code = oathtool_code("sha1", secret_text, t.clock_ms() / 1000);
        assert_eq!(t.verify(&pending, ip, &code).await.status, 200);
    }
    // Unknown algorithms are refused by the CLI.
    let t = two_factor_relay().await;
    let bad = t
        .relay
        .cli(&["2fa", "settings", "set", "--algorithm", "MD5"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("use SHA1, SHA256 or SHA512"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_api_manages_two_factor_like_the_cli() {
    let relay = TestRelay::start().await;
    let password = relay
        .admin_password
        .clone()
        .expect("first start made the admin");
    let admin = Session::from_login(&relay.login_response("admin", &password).await);
    relay.add_user("bob").await;
    relay.add_user("carol").await;
    let bob = relay.login("bob").await;
    let get = |session: &Session| {
        let cookie = session.cookie_header();
        let relay = &relay;
        async move {
            relay
                .request(
                    "GET",
                    "/api/admin/twofa",
                    &[("Cookie", cookie.as_str())],
                    None,
                )
                .await
        }
    };

    let status = get(&admin).await;
    assert_eq!(status.status, 200, "{}", status.text());
    let body = status.json();
    assert_eq!(body["enabled"], false);
    assert_eq!(body["settings"]["algorithm"], "SHA1");
    assert_eq!(body["members"], serde_json::json!([]));
    assert_eq!(get(&bob).await.status, 403, "administrators only");
    assert_eq!(
        relay
            .post(
                "/api/admin/twofa/enabled",
                Some(&bob),
                r#"{"enabled":true}"#
            )
            .await
            .status,
        403
    );
    let no_csrf = Session {
        csrf: "wrong".into(),
        ..admin.clone()
    };
    assert_eq!(
        relay
            .post(
                "/api/admin/twofa/enabled",
                Some(&no_csrf),
                r#"{"enabled":true}"#
            )
            .await
            .status,
        403
    );

    let on = relay
        .post(
            "/api/admin/twofa/enabled",
            Some(&admin),
            r#"{"enabled":true}"#,
        )
        .await;
    assert_eq!(
        (on.status, on.json()["enabled"].clone()),
        (200, serde_json::json!(true))
    );
    let added = relay
        .post(
            "/api/admin/twofa/members",
            Some(&admin),
            r#"{"kind":"user","name":"carol"}"#,
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.text());
    let group = relay
        .post(
            "/api/admin/twofa/members",
            Some(&admin),
            r#"{"kind":"group","name":"Remote Staff"}"#,
        )
        .await;
    assert_eq!(group.status, 200);
    let again = relay
        .post(
            "/api/admin/twofa/members",
            Some(&admin),
            r#"{"kind":"user","name":"carol"}"#,
        )
        .await;
    assert_eq!(again.status, 409);
    let nobody = relay
        .post(
            "/api/admin/twofa/members",
            Some(&admin),
            r#"{"kind":"user","name":"nobody"}"#,
        )
        .await;
    assert_eq!(nobody.status, 404);
    let bad_kind = relay
        .post(
            "/api/admin/twofa/members",
            Some(&admin),
            r#"{"kind":"team","name":"x"}"#,
        )
        .await;
    assert_eq!(bad_kind.status, 400);

    let sms = r#"{"name":"carol","method":"sms","phone":"+41791234567"}"#;
    let method = relay
        .post("/api/admin/twofa/users/method", Some(&admin), sms)
        .await;
    assert_eq!(method.status, 200, "{}", method.text());
    let members = method.json()["members"].clone();
    assert_eq!(
        members,
        serde_json::json!([
            {"kind": "user", "name": "carol", "method": "sms", "enrolled": false, "address": "+41791234567"},
            {"kind": "group", "name": "remote staff", "method": null, "enrolled": null, "address": null},
        ])
    );
    let bad_phone = r#"{"name":"carol","method":"sms","phone":"0791234567"}"#;
    let refused = relay
        .post("/api/admin/twofa/users/method", Some(&admin), bad_phone)
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.error().contains("international form"),
        "{}",
        refused.error()
    );

    // The CLI sees what the console did, and the other way round.
    let list = relay.cli(&["2fa", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("enabled") && text.contains("carol") && text.contains("+41791234567"),
        "{text}"
    );
    assert!(relay
        .cli(&["2fa", "settings", "set", "--discrepancy", "12"])
        .status
        .success());
    let warned = get(&admin).await.json();
    assert_eq!(warned["settings"]["discrepancy"], 12);
    assert!(
        warned["warnings"][0]
            .as_str()
            .unwrap()
            .contains("10 or less"),
        "{warned}"
    );

    let settings = relay
        .post(
            "/api/admin/twofa/settings",
            Some(&admin),
            r#"{"discrepancy":1,"algorithm":"sha512","digits":8}"#,
        )
        .await;
    assert_eq!(settings.status, 200, "{}", settings.text());
    let body = settings.json();
    assert_eq!(
        (
            body["settings"]["algorithm"].as_str(),
            body["settings"]["digits"].as_u64()
        ),
        (Some("SHA512"), Some(8))
    );
    assert!(
        body["warnings"][0].as_str().unwrap().contains("SHA512"),
        "{body}"
    );
    for bad in [
        r#"{"digits":3}"#,
        r#"{"algorithm":"MD5"}"#,
        r#"{"sms_template":"no code"}"#,
        r#"{"colour":"red"}"#,
    ] {
        let refused = relay
            .post("/api/admin/twofa/settings", Some(&admin), bad)
            .await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.text());
    }
    assert_eq!(
        get(&admin).await.json()["settings"]["digits"],
        8,
        "a refused change stores nothing"
    );

    let reset = relay
        .post(
            "/api/admin/twofa/users/reset",
            Some(&admin),
            r#"{"name":"carol"}"#,
        )
        .await;
    assert_eq!(reset.status, 200);
    let removed = relay
        .post(
            "/api/admin/twofa/members/remove",
            Some(&admin),
            r#"{"kind":"user","name":"carol"}"#,
        )
        .await;
    assert_eq!(removed.status, 200);
    let gone = relay
        .post(
            "/api/admin/twofa/members/remove",
            Some(&admin),
            r#"{"kind":"user","name":"carol"}"#,
        )
        .await;
    assert_eq!(gone.status, 404);
}
