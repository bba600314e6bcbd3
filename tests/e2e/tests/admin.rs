//! The browser admin console at `/admin`, in headless Chromium against a real relay process.

use anyhow::{Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::{known_picture, required_env, wait_for, Rgb};
use std::time::Duration;

const PASSWORD: &str = "Passw0rd!";
const TIMEOUT: Duration = Duration::from_secs(30);
const DESKTOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Lossy codecs shift colours a little (testbed README).
const TOLERANCE: u8 = 8;

/// Fills the console's sign-in form at `/admin`.
async fn admin_sign_in(browser: &Browser, relay: &Relay, username: &str, password: &str) -> Result<()> {
    browser.goto(&format!("{}admin", relay.url())).await?;
    browser.type_into("admin-login-username", username).await?;
    browser.type_into("admin-login-password", password).await?;
    browser.click("admin-login-submit").await
}

#[tokio::test]
async fn admin_shell_admits_administrators_only() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.add_user("alice", PASSWORD)?;
    relay.serve().await?;
    let admin_password = relay.admin_password()?;
    let browser = Browser::start(1280, 900).await?;
    let result = async {
        admin_sign_in(&browser, &relay, "alice", PASSWORD).await?;
        let refusal = browser.text_of("admin-login-error", TIMEOUT).await?;
        assert!(
            refusal.contains("administrators only"),
            "a user who is no admin saw: {refusal}"
        );
        browser.screenshot("admin-refused").await?;

        admin_sign_in(&browser, &relay, "admin", &admin_password).await?;
        browser.wait_testid("admin-nav", TIMEOUT).await?;
        assert_eq!(browser.text_of("admin-user", TIMEOUT).await?, "admin");
        browser.wait_testid("admin-page-home", TIMEOUT).await?;
        browser.screenshot("admin-console").await?;

        // A reload (or a bookmark) keeps the console: the cookie's session is asked for again.
        browser.goto(&format!("{}admin/", relay.url())).await?;
        browser.wait_testid("admin-nav", TIMEOUT).await?;

        browser.click("admin-logout").await?;
        let notice = browser.text_of("admin-login-info", TIMEOUT).await?;
        assert!(
            notice.contains("signed out"),
            "after sign-out the console said: {notice}"
        );
        // The session is really gone: a reload asks for the password again.
        browser.goto(&format!("{}admin", relay.url())).await?;
        browser.wait_testid("admin-login-form", TIMEOUT).await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("admin-shell-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

/// Waits until the element's visible text contains every one of `needles`; returns that text.
async fn wait_text(browser: &Browser, id: &str, needles: &[&str]) -> Result<String> {
    wait_for(&format!("{id} to show {needles:?}"), TIMEOUT, || async {
        let text = browser.text_of(id, TIMEOUT).await?;
        Ok(needles.iter().all(|n| text.contains(n)).then_some(text))
    })
    .await
}

/// The whole story of the console: register the testbed's xrdp, assign a user, watch the user's live
/// session, disconnect it, and find it all in the audit log.
#[tokio::test]
async fn admin_registers_assigns_watches_and_disconnects() -> Result<()> {
    let xrdp = required_env("RDP_TESTBED_XRDP_ADDR")?;
    let (host, port) = xrdp.rsplit_once(':').context("RDP_TESTBED_XRDP_ADDR is host:port")?;
    let mut relay = Relay::new()?;
    relay.add_user("rdpuser1", PASSWORD)?;
    relay.serve().await?;
    let admin_password = relay.admin_password()?;
    let admin = Browser::start(1400, 900).await?;
    let user = Browser::start(1280, 1000).await?;
    let result = async {
        admin_sign_in(&admin, &relay, "admin", &admin_password).await?;
        admin.click("admin-nav-workstations").await?;
        admin.type_into("admin-workstations-name", "Office PC").await?;
        admin.type_into("admin-workstations-host", host).await?;
        admin.type_into("admin-workstations-port", port).await?;
        admin.click("admin-workstations-add").await?;
        wait_text(&admin, "admin-workstations-table", &["Office PC", &xrdp, "enabled"]).await?;
        admin.screenshot("admin-workstations").await?;

        admin.click("admin-nav-assignments").await?;
        admin.type_into("admin-assignments-who", "rdpuser1").await?;
        admin.click("admin-assignments-add").await?;
        wait_text(&admin, "admin-assignments-table", &["rdpuser1", "Office PC"]).await?;

        // The user, in a browser of their own, reaches the desktop the admin just assigned.
        user.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        user.wait_testid("desktop-canvas", TIMEOUT).await?;
        user.wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), TOLERANCE, DESKTOP_TIMEOUT)
            .await
            .context("the user's canvas never showed the workstation's picture")?;

        admin.click("admin-nav-sessions").await?;
        wait_text(
            &admin,
            "admin-sessions-table",
            &["rdpuser1", "Office PC", "browser", "127.0.0.1"],
        )
        .await?;
        admin.screenshot("admin-sessions").await?;
        admin.click("admin-sessions-disconnect").await?;
        admin.wait_testid("admin-sessions-none", TIMEOUT).await?;

        let reason = user.text_of("login-error", TIMEOUT).await?;
        assert!(reason.contains("ended by an administrator"), "the user saw: {reason}");
        user.screenshot("admin-disconnected-user").await?;

        admin.click("admin-nav-audit").await?;
        let log = wait_text(
            &admin,
            "admin-audit-table",
            &[
                "workstation.add",
                "assignment.add",
                "tunnel.open",
                "session.disconnect",
                "tunnel.close",
                "login",
            ],
        )
        .await?;
        assert!(
            !log.contains(PASSWORD) && !log.contains(&admin_password),
            "a password is in the audit log"
        );
        admin.screenshot("admin-audit").await?;
        admin.type_into("admin-audit-filter", "session.disconnect").await?;
        admin.click("admin-audit-search").await?;
        wait_for("the filtered audit log", TIMEOUT, || async {
            let text = admin.text_of("admin-audit-table", TIMEOUT).await?;
            Ok((text.contains("session.disconnect") && !text.contains("workstation.add")).then_some(()))
        })
        .await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = admin.screenshot("admin-story-failure").await;
        let _ = user.screenshot("admin-story-user-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    admin.close().await?;
    user.close().await?;
    result
}

#[tokio::test]
async fn two_factor_page_manages_the_list_methods_and_settings() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.add_user("carol", PASSWORD)?;
    relay.cli(
        &["2fa", "sms", "--account-sid", "AC0123456789abcdef", "--from", "+15005550006", "--base-url", "http://127.0.0.1:9"],
        Some("token\n"),
    )?;
    relay.serve().await?;
    let admin_password = relay.admin_password()?;
    let browser = Browser::start(1280, 1100).await?;
    let result = async {
        admin_sign_in(&browser, &relay, "admin", &admin_password).await?;
        browser.click("admin-nav-two-factor").await?;
        browser.wait_testid("admin-page-two-factor", TIMEOUT).await?;
        let state = browser.text_of("admin-two-factor-state", TIMEOUT).await?;
        assert!(state.contains("is off"), "{state}");

        browser.click("admin-two-factor-toggle").await?;
        homedesk_e2e::wait_for("2FA switched on", TIMEOUT, || async {
            Ok(browser.text_of("admin-two-factor-state", TIMEOUT).await?.contains("is on").then_some(()))
        })
        .await?;
        browser.type_into("admin-two-factor-add-name", "carol").await?;
        browser.click("admin-two-factor-add-submit").await?;
        browser.wait_testid("admin-two-factor-member-carol", TIMEOUT).await?;

        // A wrong phone number: the relay's reason is shown; then a right one is stored.
        browser
            .client
            .execute(
                "const s = document.querySelector('[data-testid=\"admin-two-factor-method-carol\"]'); s.value = 'sms';",
                vec![],
            )
            .await?;
        browser.type_into("admin-two-factor-address-carol", "0791234567").await?;
        browser.click("admin-two-factor-save-carol").await?;
        let error = browser.text_of("admin-two-factor-error", TIMEOUT).await?;
        assert!(error.contains("international form"), "{error}");
        browser.type_into("admin-two-factor-address-carol", "+41791234567").await?;
        browser.click("admin-two-factor-save-carol").await?;
        homedesk_e2e::wait_for("carol's method saved", TIMEOUT, || async {
            let row = browser.text_of("admin-two-factor-member-carol", TIMEOUT).await?;
            Ok((row.contains("sms") && row.contains("+41791234567")).then_some(()))
        })
        .await?;

        // A discouraged setting is stored with the relay's warning.
        browser.type_into("admin-two-factor-setting-discrepancy", "12").await?;
        browser.click("admin-two-factor-settings-save").await?;
        let warnings = browser.text_of("admin-two-factor-warnings", TIMEOUT).await?;
        assert!(warnings.contains("10 or less"), "{warnings}");
        browser.screenshot("admin-two-factor").await?;

        // The CLI sees what the console did.
        let list = relay.cli(&["2fa", "list"], None)?;
        assert!(list.contains("enabled") && list.contains("+41791234567"), "{list}");
        let settings = relay.cli(&["2fa", "settings", "show"], None)?;
        assert!(settings.contains("discrepancy             12"), "{settings}");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("admin-two-factor-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

/// The status of a sign-in attempt made from the page without touching its cookies (the console's
/// own session stays).
async fn sign_in_status(browser: &Browser, user: &str, password: &str) -> Result<u64> {
    let status = browser
        .run_async(
            "const [username, password] = arguments;
             const r = await fetch('/api/login', { method: 'POST', credentials: 'omit',
                 headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username, password }) });
             return r.status;",
            vec![user.into(), password.into()],
        )
        .await?;
    status.as_u64().context("status")
}

async fn click_labelled(browser: &Browser, label: &str) -> Result<()> {
    let found = browser
        .client
        .execute(
            "const b = document.querySelector(`button[aria-label=\"${arguments[0]}\"]`); if (b) b.click(); return !!b;",
            vec![label.into()],
        )
        .await?;
    anyhow::ensure!(found == true, "no button labelled {label:?}");
    Ok(())
}

#[tokio::test]
async fn users_page_adds_a_user_changes_the_password_and_removes_the_user() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.serve().await?;
    let admin_password = relay.admin_password()?;
    let browser = Browser::start(1280, 900).await?;
    let (first, second) = ("Carol-First-Pass1", "Carol-Second-Pass2");
    let result = async {
        admin_sign_in(&browser, &relay, "admin", &admin_password).await?;
        browser.click("admin-nav-users").await?;
        browser.wait_testid("admin-users-table", TIMEOUT).await?;
        browser.type_into("admin-users-name", "carol").await?;
        browser.type_into("admin-users-password", first).await?;
        browser.click("admin-users-add").await?;
        wait_text(&browser, "admin-users-table", &["carol"]).await?;
        assert_eq!(sign_in_status(&browser, "carol", first).await?, 200);

        browser.type_into("admin-users-password", second).await?;
        click_labelled(&browser, "set the typed password for carol").await?;
        wait_for("the new password to work", TIMEOUT, || async {
            Ok((sign_in_status(&browser, "carol", second).await? == 200).then_some(()))
        })
        .await?;
        assert_eq!(sign_in_status(&browser, "carol", first).await?, 401, "the old password no longer works");
        browser.screenshot("admin-users").await?;

        click_labelled(&browser, "remove carol").await?;
        wait_for("carol to leave the table", TIMEOUT, || async {
            let table = browser.text_of("admin-users-table", TIMEOUT).await?;
            Ok((!table.contains("carol")).then_some(()))
        })
        .await?;
        assert_eq!(sign_in_status(&browser, "carol", second).await?, 401, "a removed user cannot sign in");
        // The console's own session was never touched.
        assert_eq!(browser.text_of("admin-user", TIMEOUT).await?, "admin");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("admin-users-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}
