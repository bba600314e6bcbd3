//! From the portal's login form to a live desktop, against real RDP servers, in headless Chromium.
//! Each test starts its own relay and browser; the RDP testbed is started by `cargo xtask test`.

use anyhow::{Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::{known_picture, required_env, Rgb};
use std::time::Duration;

const PASSWORD: &str = "Passw0rd!";
/// Lossy codecs shift colours a little (testbed README).
const TOLERANCE: u8 = 8;
const DESKTOP_TIMEOUT: Duration = Duration::from_secs(60);
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(45);
/// The xterm of the testbed picture (60x10 characters at +600+100).
const XTERM_REGION: (u32, u32, u32, u32) = (604, 104, 300, 120);

fn xrdp_addr() -> Result<String> {
    required_env("RDP_TESTBED_XRDP_ADDR")
}

fn shadow_addr() -> Result<String> {
    required_env("RDP_TESTBED_SHADOW_ADDR")
}

async fn relay_with(user: &str, password: &str, workstation: Option<(&str, &str)>) -> Result<Relay> {
    let mut relay = Relay::new()?;
    relay.add_user(user, password)?;
    if let Some((name, addr)) = workstation {
        relay.add_workstation(name, addr)?;
        relay.assign(user, name)?;
    }
    relay.serve().await?;
    Ok(relay)
}

/// Logs in, waits for the known picture, types into the xterm and sees the pixels change.
async fn desktop_round_trip(server: &str, addr: &str, user: &str, background: &str) -> Result<()> {
    let relay = relay_with(user, PASSWORD, Some(("Office PC", addr))).await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), user, PASSWORD).await?;
        browser.wait_testid("desktop-canvas", Duration::from_secs(20)).await?;
        browser
            .wait_for_picture(&known_picture(Rgb::from_hex(background)), TOLERANCE, DESKTOP_TIMEOUT)
            .await
            .context("the canvas never showed the workstation's known picture")?;
        let (width, height) = browser.canvas_size().await?;
        assert!(width >= 1024 && height >= 768, "desktop is {width}x{height}");
        browser.screenshot(&format!("{server}-desktop")).await?;

        let (x, y, w, h) = XTERM_REGION;
        let before = browser.canvas_region_digest(x, y, w, h).await?;
        browser.move_mouse_to_desktop(x + 150, y + 60).await?;
        browser.type_on_desktop("echo homedesk typed this\n").await?;
        homedesk_e2e::wait_for("typed text to appear in the xterm", Duration::from_secs(20), || async {
            Ok((browser.canvas_region_digest(x, y, w, h).await? != before).then_some(()))
        })
        .await?;
        // the rest of the picture is untouched by typing
        browser.wait_for_picture(&known_picture(Rgb::from_hex(background)), TOLERANCE, Duration::from_secs(5)).await?;
        browser.screenshot(&format!("{server}-typed")).await?;

        browser.click("logout").await?;
        let notice = browser.text_of("login-info", MESSAGE_TIMEOUT).await?;
        assert!(notice.contains("signed out"), "after sign-out the portal said: {notice}");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot(&format!("{server}-failure")).await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

#[tokio::test]
async fn xrdp_desktop_in_the_browser() -> Result<()> {
    desktop_round_trip("xrdp", &xrdp_addr()?, "rdpuser1", "#1e6fd9").await
}

#[tokio::test]
async fn nla_desktop_in_the_browser() -> Result<()> {
    desktop_round_trip("shadow", &shadow_addr()?, "rdpuser2", "#2e8b57").await
}

/// Logs in and returns the message the portal shows.
async fn login_message(relay: &Relay, user: &str, password: &str, shot: &str) -> Result<String> {
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), user, password).await?;
        let message = browser.text_of("login-error", MESSAGE_TIMEOUT).await?;
        browser.screenshot(shot).await?;
        Ok(message)
    }
    .await;
    browser.close().await?;
    result
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_message() -> Result<()> {
    let relay = relay_with("rdpuser1", PASSWORD, Some(("Office PC", &xrdp_addr()?))).await?;
    let wrong = login_message(&relay, "rdpuser1", "not-the-password", "wrong-password").await?;
    let unknown = login_message(&relay, "nobody-here", "whatever", "unknown-user").await?;
    assert_eq!(wrong, "Invalid username or password.");
    assert_eq!(unknown, wrong);
    Ok(())
}

#[tokio::test]
async fn user_without_workstation_is_told_so() -> Result<()> {
    let relay = relay_with("rdpuser1", PASSWORD, None).await?;
    let message = login_message(&relay, "rdpuser1", PASSWORD, "no-workstation").await?;
    assert!(message.contains("No workstation is assigned"), "{message}");
    Ok(())
}

#[tokio::test]
async fn unreachable_workstation_is_named() -> Result<()> {
    let closed = format!("127.0.0.1:{}", homedesk_e2e::free_port()?);
    let relay = relay_with("rdpuser1", PASSWORD, Some(("Night shift PC", &closed))).await?;
    let message = login_message(&relay, "rdpuser1", PASSWORD, "unreachable").await?;
    assert!(message.contains("Night shift PC") && message.contains("cannot be reached"), "{message}");
    Ok(())
}

#[tokio::test]
async fn changed_certificate_is_refused() -> Result<()> {
    let relay = relay_with("rdpuser1", PASSWORD, Some(("Office PC", &xrdp_addr()?))).await?;
    relay.cli(&["workstation", "pin", "Office PC", &"ab".repeat(32)], None)?;
    let message = login_message(&relay, "rdpuser1", PASSWORD, "changed-certificate").await?;
    assert!(message.contains("certificate") && message.contains("Office PC"), "{message}");
    Ok(())
}

#[tokio::test]
async fn workstation_refusing_the_credentials_is_reported() -> Result<()> {
    // The portal account's password differs from the workstation's: NLA refuses the logon.
    let relay = relay_with("rdpuser2", "portal-only-password", Some(("NLA PC", &shadow_addr()?))).await?;
    let message = login_message(&relay, "rdpuser2", "portal-only-password", "credentials-refused").await?;
    assert!(message.contains("NLA PC") && message.contains("rejected"), "{message}");
    Ok(())
}

#[tokio::test]
async fn first_connection_pins_the_certificate() -> Result<()> {
    let relay = relay_with("rdpuser1", PASSWORD, Some(("Office PC", &xrdp_addr()?))).await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        browser.wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), TOLERANCE, DESKTOP_TIMEOUT).await?;
        homedesk_e2e::wait_for("the certificate to be pinned", Duration::from_secs(10), || async {
            let listing = relay.cli(&["workstation", "list"], None)?;
            Ok((!listing.contains("not pinned")).then_some(listing))
        })
        .await
    }
    .await;
    browser.close().await?;
    let listing = result?;
    // xrdp's certificate (the testbed's is /etc/xrdp/cert.pem): the pin must be exactly its DER SHA-256.
    let expected = std::process::Command::new("sh")
        .args(["-c", "openssl x509 -in /etc/xrdp/cert.pem -outform der | sha256sum"])
        .output()?;
    let expected = String::from_utf8_lossy(&expected.stdout).split_whitespace().next().unwrap_or_default().to_owned();
    assert_eq!(expected.len(), 64, "cannot read xrdp's certificate");
    assert!(listing.contains(&format!("sha256:{expected}")), "pin is not xrdp's certificate {expected}: {listing}");
    Ok(())
}

#[tokio::test]
async fn demo_workstation_shows_its_desktop() -> Result<()> {
    // What `cargo xtask run --demo` does: the project's own demo workstation script, then a login.
    let (user, password) = ("homedesk-demo-e2e", "Demo-e2e-Passw0rd");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/demo-workstation.sh");
    let output = std::process::Command::new("bash")
        .args([script, "up"])
        .env("DEMO_USER", user)
        .env("DEMO_PASSWORD", password)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo workstation failed: {}", String::from_utf8_lossy(&output.stderr));
    let addr = stdout.lines().find_map(|l| l.strip_prefix("DEMO_ADDR=")).context("no DEMO_ADDR")?.to_owned();

    let relay = relay_with(user, password, Some(("Demo workstation", &addr))).await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), user, password).await?;
        // the demo session's background colour (scripts/demo-workstation.sh)
        browser.wait_for_picture(&[((20, 20), Rgb::from_hex("#2b5797"))], TOLERANCE, DESKTOP_TIMEOUT).await?;
        browser.screenshot("demo-desktop").await?;
        Ok(())
    }
    .await;
    browser.close().await?;
    result
}

#[tokio::test]
async fn user_with_two_workstations_chooses_one() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.add_user("rdpuser1", PASSWORD)?;
    relay.add_workstation("Office PC", &xrdp_addr()?)?;
    relay.add_workstation("Lab PC", &shadow_addr()?)?;
    relay.assign("rdpuser1", "Office PC")?;
    relay.assign("rdpuser1", "Lab PC")?;
    relay.serve().await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        browser.wait_testid("workstation-chooser", MESSAGE_TIMEOUT).await?;
        let buttons = browser.client.find_all(fantoccini::Locator::Css("[data-testid=\"workstation-choice\"]")).await?;
        let mut names = Vec::new();
        for button in &buttons {
            names.push(button.text().await?);
        }
        assert_eq!(names, ["Lab PC", "Office PC"], "choices are listed by name");
        browser.screenshot("chooser").await?;
        buttons[0].click().await?;
        // Lab PC is the NLA server, whose background is green
        browser.wait_for_picture(&known_picture(Rgb::from_hex("#2e8b57")), TOLERANCE, DESKTOP_TIMEOUT).await?;
        assert_eq!(browser.text_of("session-workstation", MESSAGE_TIMEOUT).await?, "Lab PC");
        Ok(())
    }
    .await;
    browser.close().await?;
    result
}

#[tokio::test]
async fn dropped_connection_reconnects_to_the_same_session() -> Result<()> {
    let mut relay = relay_with("rdpuser1", PASSWORD, Some(("Office PC", &xrdp_addr()?))).await?;
    let browser = Browser::start(1280, 1000).await?;
    let (x, y, w, h) = XTERM_REGION;
    let result = async {
        browser.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        let picture = known_picture(Rgb::from_hex("#1e6fd9"));
        browser.wait_for_picture(&picture, TOLERANCE, DESKTOP_TIMEOUT).await?;
        let marker = format!("echo reattach-{}\n", std::process::id());
        let before_typing = browser.canvas_region_digest(x, y, w, h).await?;
        browser.move_mouse_to_desktop(x + 150, y + 60).await?;
        browser.type_on_desktop(&marker).await?;
        homedesk_e2e::wait_for("the marker in the xterm", Duration::from_secs(20), || async {
            Ok((browser.canvas_region_digest(x, y, w, h).await? != before_typing).then_some(()))
        })
        .await?;
        // let the xterm settle (the prompt after the command's output)
        tokio::time::sleep(Duration::from_secs(1)).await;
        let typed = browser.canvas_text_digest(x, y, w, h).await?;

        relay.restart().await?;
        let countdown = browser.text_of("reconnect-countdown", MESSAGE_TIMEOUT).await?;
        assert!(countdown.starts_with("Reconnecting"), "countdown shows: {countdown}");
        browser.screenshot("reconnecting").await?;
        browser.wait_testid("session-connecting", Duration::from_secs(20)).await.ok();
        homedesk_e2e::wait_for("the reconnected session", DESKTOP_TIMEOUT, || async {
            Ok((browser.text_of("session-status", Duration::from_secs(1)).await? == "connected").then_some(()))
        })
        .await?;
        browser.wait_for_picture(&picture, TOLERANCE, DESKTOP_TIMEOUT).await?;
        let same = homedesk_e2e::wait_for("the same xterm content after reconnecting", Duration::from_secs(20), || async {
            Ok((browser.canvas_text_digest(x, y, w, h).await? == typed).then_some(()))
        })
        .await;
        if same.is_err() {
            browser.screenshot("reconnected-failure").await?;
        }
        same?;
        browser.screenshot("reconnected").await?;
        Ok::<u64, anyhow::Error>(typed)
    }
    .await;
    browser.close().await?;
    let typed = result?;

    // A new browser, a new login: the session (and the typed text) is still there.
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        browser.wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), TOLERANCE, DESKTOP_TIMEOUT).await?;
        homedesk_e2e::wait_for("the typed text in a new browser", Duration::from_secs(20), || async {
            Ok((browser.canvas_text_digest(x, y, w, h).await? == typed).then_some(()))
        })
        .await?;
        browser.screenshot("reattached-new-browser").await?;
        Ok(())
    }
    .await;
    browser.close().await?;
    result
}

/// The seconds in "Reconnecting in N s…", if the countdown shows a number.
async fn countdown_seconds(browser: &Browser) -> Result<Option<u32>> {
    let text = browser.text_of("reconnect-countdown", MESSAGE_TIMEOUT).await?;
    Ok(text.strip_prefix("Reconnecting in ").and_then(|rest| rest.split(' ').next()).and_then(|n| n.parse().ok()))
}

#[tokio::test]
async fn reconnecting_counts_down_and_cancel_stops_it() -> Result<()> {
    let mut relay = relay_with("rdpuser1", PASSWORD, Some(("Office PC", &xrdp_addr()?))).await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        browser.wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), TOLERANCE, DESKTOP_TIMEOUT).await?;
        relay.kill()?;
        // A visible countdown that goes down a second at a time.
        let first = homedesk_e2e::wait_for("a countdown with seconds", MESSAGE_TIMEOUT, || async {
            countdown_seconds(&browser).await
        })
        .await?;
        assert!((1..=5).contains(&first), "Reconnecting in {first} s");
        let later = homedesk_e2e::wait_for("the countdown to go down", Duration::from_secs(5), || async {
            Ok(countdown_seconds(&browser).await?.filter(|&n| n < first))
        })
        .await?;
        browser.screenshot("reconnect-countdown").await?;
        assert!(later < first);
        browser.click("reconnect-cancel").await?;
        let notice = browser.text_of("login-info", MESSAGE_TIMEOUT).await?;
        assert!(notice.starts_with("Reconnection cancelled."), "{notice}");
        // With the relay back, nothing reconnects by itself: the user chose to stop.
        relay.restart().await?;
        tokio::time::sleep(Duration::from_secs(7)).await;
        let still = browser
            .client
            .execute("return [!!document.querySelector('[data-testid=\"login-form\"]'), !!document.querySelector('[data-testid=\"session-status\"]')];", vec![])
            .await?;
        assert_eq!(still, serde_json::json!([true, false]), "the page stays on the sign-in form");
        browser.screenshot("reconnect-cancelled").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("reconnect-cancel-failure").await;
    }
    browser.close().await?;
    result
}

#[tokio::test]
async fn onboarding_page_offers_the_remote_desktop_script() -> Result<()> {
    let relay = relay_with("rdpuser1", PASSWORD, None).await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.goto(&format!("{}download", relay.url())).await?;
        let page = browser.text_of("onboarding", MESSAGE_TIMEOUT).await?;
        assert!(page.contains("Prepare an office PC") && page.contains("relay workstation pin"), "{page}");
        browser.screenshot("onboarding").await?;
        // the script the page links to is served, and it enables RDP with NLA and prints the SHA-256 pin
        let script = browser
            .client
            .execute(
                "const a = document.querySelector('[data-testid=\"onboarding-script\"]');
                 return fetch(a.href).then(r => r.ok ? r.text() : 'HTTP ' + r.status);",
                vec![],
            )
            .await?;
        let script = script.as_str().unwrap_or_default();
        for needle in ["fDenyTSConnections", "UserAuthentication -Value 1", "SHA256", "relay workstation pin"] {
            assert!(script.contains(needle), "script lacks {needle}: {script}");
        }
        Ok(())
    }
    .await;
    browser.close().await?;
    result
}

/// The current TOTP code of a base32 secret, from `oathtool` (installed by the toolchain script).
fn oathtool_code(secret: &str) -> Result<String> {
    let output = std::process::Command::new("oathtool")
        .args(["--totp", "--base32", secret])
        .output()
        .context("cannot run oathtool (cargo xtask setup installs it)")?;
    anyhow::ensure!(output.status.success(), "oathtool failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// A code that is surely not the current one: the right code with its first digit changed.
fn wrong_code(right: &str) -> String {
    let mut digits: Vec<u8> = right.bytes().collect();
    digits[0] = b'0' + (digits[0] - b'0' + 5) % 10;
    String::from_utf8(digits).unwrap_or_default()
}

#[tokio::test]
async fn two_factor_user_enrols_with_the_qr_code_and_reaches_the_desktop() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.add_user("rdpuser1", PASSWORD)?;
    relay.add_workstation("Office PC", &xrdp_addr()?)?;
    relay.assign("rdpuser1", "Office PC")?;
    relay.cli(&["2fa", "enable"], None)?;
    relay.cli(&["2fa", "add", "rdpuser1"], None)?;
    relay.serve().await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        // The enrolment page: the QR code (decoded by the browser under the portal's CSP) and the key.
        browser.wait_testid("twofa-qr", MESSAGE_TIMEOUT).await?;
        let qr_width = homedesk_e2e::wait_for("the QR code image to load", Duration::from_secs(10), || async {
            let width = browser
                .client
                .execute("return document.querySelector('[data-testid=\"twofa-qr\"]').naturalWidth;", vec![])
                .await?;
            Ok(width.as_u64().filter(|w| *w > 0))
        })
        .await?;
        assert!(qr_width >= 200, "QR code is {qr_width} px wide");
        let secret: String =
            browser.text_of("twofa-secret", MESSAGE_TIMEOUT).await?.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(secret.len() >= 32, "a 160-bit key is 32 base32 characters, got {secret:?}");
        let code_field = browser.wait_testid("twofa-code", MESSAGE_TIMEOUT).await?;
        assert_eq!(code_field.attr("autocomplete").await?.as_deref(), Some("one-time-code"));
        assert_eq!(code_field.attr("inputmode").await?.as_deref(), Some("numeric"));
        browser.screenshot("twofa-enrol").await?;

        // A wrong code: a clear message, still on the code page.
        browser.type_into("twofa-code", &wrong_code(&oathtool_code(&secret)?)).await?;
        browser.click("twofa-submit").await?;
        let error = browser.text_of("twofa-error", MESSAGE_TIMEOUT).await?;
        assert_eq!(error, "The code is wrong or has expired.");
        browser.screenshot("twofa-wrong-code").await?;

        // The right code (typed with a space, as people do) leads to the desktop.
        let code = oathtool_code(&secret)?;
        browser.type_into("twofa-code", &format!("{} {}", &code[..3], &code[3..])).await?;
        browser.click("twofa-submit").await?;
        browser.wait_testid("desktop-canvas", Duration::from_secs(20)).await?;
        browser
            .wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), TOLERANCE, DESKTOP_TIMEOUT)
            .await
            .context("the canvas never showed the workstation's known picture")?;
        browser.screenshot("twofa-desktop").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("twofa-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}
