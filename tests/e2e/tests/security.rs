//! The admin console's Security page in headless Chromium against a real relay process: the
//! administrator lowers the brute-force limit and whitelists a range, a user's browser gets its IP
//! blocked by wrong passwords, the administrator sees the block, lifts it, and the user reaches the
//! desktop again.

use anyhow::{Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::{known_picture, required_env, wait_for, Rgb};
use serde_json::json;
use std::time::Duration;

const PASSWORD: &str = "Passw0rd!";
const TIMEOUT: Duration = Duration::from_secs(30);
const DESKTOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Lossy codecs shift colours a little (testbed README).
const TOLERANCE: u8 = 8;

async fn admin_sign_in(browser: &Browser, relay: &Relay, password: &str) -> Result<()> {
    browser.goto(&format!("{}admin/security", relay.url())).await?;
    browser.type_into("admin-login-username", "admin").await?;
    browser.type_into("admin-login-password", password).await?;
    browser.click("admin-login-submit").await
}

/// Waits until the element's visible text contains every one of `needles`; returns that text.
async fn wait_text(browser: &Browser, id: &str, needles: &[&str]) -> Result<String> {
    wait_for(&format!("{id} to show {needles:?}"), TIMEOUT, || async {
        let text = browser.text_of(id, TIMEOUT).await?;
        Ok(needles.iter().all(|n| text.contains(n)).then_some(text))
    })
    .await
}

/// The current value of an input field (what the administrator sees in it).
async fn field_value(browser: &Browser, id: &str) -> Result<String> {
    let value = browser.wait_testid(id, TIMEOUT).await?.prop("value").await?;
    value.with_context(|| format!("{id} has no value"))
}

/// Waits until the input field holds `expected` (it follows an answer from the relay).
async fn wait_value(browser: &Browser, id: &str, expected: &str) -> Result<()> {
    wait_for(&format!("{id} to hold {expected:?}"), TIMEOUT, || async {
        Ok((field_value(browser, id).await? == expected).then_some(()))
    })
    .await
}

/// A wrong-password sign-in sent by the user's page itself (as its login form does); returns the status.
async fn wrong_sign_in(browser: &Browser) -> Result<u64> {
    let status = browser
        .run_async(
            "const r = await fetch('/api/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
                 body: JSON.stringify({username: arguments[0], password: 'not the password'})});
             return r.status;",
            vec![json!("rdpuser1")],
        )
        .await?;
    status.as_u64().context("fetch returned no status")
}

#[tokio::test]
async fn admin_tunes_limits_whitelists_and_unblocks_a_blocked_user() -> Result<()> {
    let xrdp = required_env("RDP_TESTBED_XRDP_ADDR")?;
    let mut relay = Relay::new()?;
    relay.add_user("rdpuser1", PASSWORD)?;
    relay.add_workstation("Office PC", &xrdp)?;
    relay.assign("rdpuser1", "Office PC")?;
    relay.serve().await?;
    let admin_password = relay.admin_password()?;
    let admin = Browser::start(1400, 1100).await?;
    let user = Browser::start(1280, 1000).await?;
    let result = async {
        admin_sign_in(&admin, &relay, &admin_password).await?;
        admin.wait_testid("admin-page-security", TIMEOUT).await?;
        admin.wait_testid("admin-security", TIMEOUT).await?;
        assert_eq!(admin.text_of("admin-security-your-ip", TIMEOUT).await?, "127.0.0.1");

        // A bad value is refused with its sentence; nothing is saved, and the field still shows what
        // the administrator typed (not the stored value) so it can be corrected.
        admin.type_into("admin-security-max-failures", "0").await?;
        admin.click("admin-security-save").await?;
        let refusal = admin.text_of("admin-security-limits-error", TIMEOUT).await?;
        assert!(
            refusal.contains("must be between 1 and 1000, not 0"),
            "the console said: {refusal}"
        );
        assert_eq!(field_value(&admin, "admin-security-max-failures").await?, "0");
        admin.screenshot("security-bad-limit").await?;

        // Three failures within 10 minutes block for 15 minutes; after the save the fields show the
        // stored values (leading zero normalised away).
        admin.type_into("admin-security-max-failures", "3").await?;
        admin.type_into("admin-security-block", "015").await?;
        admin.click("admin-security-save").await?;
        wait_text(&admin, "admin-security-limits-notice", &["Saved"]).await?;
        assert_eq!(field_value(&admin, "admin-security-max-failures").await?, "3");
        wait_value(&admin, "admin-security-block", "15").await?;

        // A bad range is refused; a good one is listed (normalised to its network).
        admin.type_into("admin-security-whitelist-input", "10.0.0.0/33").await?;
        admin.click("admin-security-whitelist-add").await?;
        let refusal = admin.text_of("admin-security-whitelist-error", TIMEOUT).await?;
        assert!(
            refusal.contains("Invalid address or range \"10.0.0.0/33\""),
            "the console said: {refusal}"
        );
        assert_eq!(
            field_value(&admin, "admin-security-whitelist-input").await?,
            "10.0.0.0/33",
            "a refused range stays in the field to be corrected"
        );
        admin
            .type_into("admin-security-whitelist-input", "192.0.2.99/24")
            .await?;
        admin.click("admin-security-whitelist-add").await?;
        wait_text(&admin, "admin-security-whitelist-table", &["192.0.2.0/24"]).await?;
        wait_value(&admin, "admin-security-whitelist-input", "").await?;
        let notice = admin.text_of("admin-security-whitelist-notice", TIMEOUT).await?;
        assert_eq!(notice, "192.0.2.0/24 is never blocked from now on.", "the notice names the range as listed");
        admin.screenshot("security-limits-and-whitelist").await?;

        // The page shows what the relay stored (a reload reads it again).
        admin.goto(&format!("{}admin/security", relay.url())).await?;
        wait_text(&admin, "admin-security-whitelist-table", &["192.0.2.0/24"]).await?;
        let saved = admin
            .wait_testid("admin-security-max-failures", TIMEOUT)
            .await?
            .prop("value")
            .await?;
        assert_eq!(saved.as_deref(), Some("3"));
        let saved = admin
            .wait_testid("admin-security-block", TIMEOUT)
            .await?
            .prop("value")
            .await?;
        assert_eq!(saved.as_deref(), Some("15"));

        // The user's browser: three wrong passwords, then even the right one is refused.
        user.goto(&relay.url()).await?;
        user.wait_testid("login-form", TIMEOUT).await?;
        for attempt in 1..=3 {
            assert_eq!(wrong_sign_in(&user).await?, 401, "wrong password {attempt}");
        }
        user.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        let blocked = user.text_of("login-error", TIMEOUT).await?;
        assert_eq!(
            blocked,
            "Too many failed sign-in attempts from your network. Try again in 15 minutes."
        );
        user.screenshot("security-user-blocked").await?;

        // The administrator sees the block and lifts it.
        admin.click("admin-security-refresh").await?;
        let row = wait_text(
            &admin,
            "admin-security-blocked-table",
            &["127.0.0.1", "3 failed sign-ins"],
        )
        .await?;
        assert!(row.contains("Unblock"), "{row}");
        admin.screenshot("security-blocked").await?;
        admin.click("admin-security-unblock").await?;
        admin.wait_testid("admin-security-blocked-none", TIMEOUT).await?;
        wait_text(&admin, "admin-security-blocked-notice", &["127.0.0.1 was unblocked"]).await?;
        admin.screenshot("security-unblocked").await?;

        // The user signs in again and reaches the desktop.
        user.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        user.wait_testid("desktop-canvas", TIMEOUT).await?;
        user.wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), TOLERANCE, DESKTOP_TIMEOUT)
            .await
            .context("after the unblock the user's canvas never showed the workstation's picture")?;
        user.screenshot("security-user-desktop").await?;

        // All of it is in the audit log.
        admin.click("admin-nav-audit").await?;
        wait_text(
            &admin,
            "admin-audit-table",
            &[
                "security.settings",
                "security.whitelist.add",
                "192.0.2.0/24",
                "security.unblock",
                "login.refused",
            ],
        )
        .await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = admin.screenshot("security-failure-admin").await;
        let _ = user.screenshot("security-failure-user").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    admin.close().await?;
    user.close().await?;
    result
}
