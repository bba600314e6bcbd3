//! The browser admin console at `/admin`, in headless Chromium against a real relay process.

use anyhow::Result;
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use std::time::Duration;

const PASSWORD: &str = "Passw0rd!";
const TIMEOUT: Duration = Duration::from_secs(30);

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
