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
