//! The shared clipboard in the browser against xrdp: what is copied in the workstation session (xclip
//! on its X display) reaches the browser's clipboard and the clipboard panel; what the browser's
//! clipboard holds when the desktop gets focus, or what is sent from the panel, is what applications
//! in the session paste. Chromium gets the clipboard permissions a user grants at its prompt.

use anyhow::{ensure, Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::session_x::{read_clipboard, session_display, set_clipboard};
use homedesk_e2e::{known_picture, required_env, wait_for, Rgb};
use serde_json::json;
use std::time::Duration;

const USER: &str = "rdpuser4";
const PASSWORD: &str = "Passw0rd!";
/// xrdp 0.9 converts clipboard text one UTF-16 unit at a time: the samples stay in the BMP (the
/// client core's unit tests cover emoji and other surrogate pairs).
const FROM_SESSION: &str = "Aus der Sitzung: 日本語 ✓ مرحبا بالعالم שלום e\u{301}\nzweite Zeile\tmit Tab";
const FROM_PAGE: &str = "Von der Seite: 中文 한국어 ☺ עברית\nline two";
const FROM_PASTE_BOX: &str = "Paste box: ελληνικά русский ✓ العربية";
const CANVAS: &str = "document.querySelector('[data-testid=\"desktop-canvas\"]')";

/// 1 MB of numbered lines. xrdp 0.9 keeps only the low byte of each character of large texts it hands
/// to X, so the megabyte going to the session is ASCII; the one coming from it is not.
fn megabyte(unicode: bool) -> String {
    let mut text = String::new();
    for line in 0.. {
        let next = if unicode {
            format!("{line:06} ein Megabyte durch 日本 ★ שלום\n")
        } else {
            format!("{line:06} a megabyte through the browser's clipboard\n")
        };
        if text.len() + next.len() > 1_000_000 {
            break;
        }
        text.push_str(&next);
    }
    text
}

async fn session_clipboard_becomes(display: &str, expected: &str, what: &str) -> Result<()> {
    let last = std::cell::RefCell::new(String::new());
    let result = wait_for(what, Duration::from_secs(30), || async {
        let text = read_clipboard(USER, display, Duration::from_secs(15)).await?;
        let done = text == expected;
        *last.borrow_mut() = text;
        Ok(done.then_some(()))
    })
    .await;
    result.with_context(|| {
        format!(
            "the session's clipboard holds {:?}",
            last.borrow().chars().take(120).collect::<String>()
        )
    })
}

/// The browser's clipboard text, read the way a page does (permission granted).
async fn browser_clipboard(browser: &Browser) -> Result<String> {
    let value = browser
        .run_async("return await navigator.clipboard.readText();", vec![])
        .await?;
    value.as_str().map(str::to_owned).context("readText returned no text")
}

/// Focus moves away from the desktop and back, as when the user returns from another application.
async fn refocus_desktop(browser: &Browser) -> Result<()> {
    browser
        .client
        .execute(&format!("{CANVAS}.blur(); {CANVAS}.focus();"), vec![])
        .await?;
    Ok(())
}

#[tokio::test]
async fn clipboard_text_both_ways_with_xrdp() -> Result<()> {
    let addr = required_env("RDP_TESTBED_XRDP_ADDR")?;
    let mut relay = Relay::new()?;
    relay.add_user(USER, PASSWORD)?;
    relay.add_workstation("Office PC", &addr)?;
    relay.assign(USER, "Office PC")?;
    relay.serve().await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), USER, PASSWORD).await?;
        browser.grant_clipboard().await?;
        browser
            .wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), 8, Duration::from_secs(60))
            .await
            .context("the desktop did not appear")?;
        let display = session_display(USER)?;
        // chansrv opens the clipboard channel just after the desktop appears.
        tokio::time::sleep(Duration::from_secs(2)).await;

        // Copied in the session → the browser's clipboard, and the panel shows it.
        set_clipboard(USER, &display, FROM_SESSION).await?;
        wait_for(
            "the session's text on the browser's clipboard",
            Duration::from_secs(30),
            || async { Ok((browser_clipboard(&browser).await? == FROM_SESSION).then_some(())) },
        )
        .await?;
        browser.click("clipboard-toggle").await?;
        let shown = browser
            .client
            .execute(
                "return document.querySelector('[data-testid=\"clipboard-text\"]').value;",
                vec![],
            )
            .await?;
        ensure!(
            shown.as_str() == Some(FROM_SESSION),
            "the clipboard panel shows {shown}"
        );
        let notice = browser.text_of("clipboard-notice", Duration::from_secs(5)).await?;
        ensure!(notice.contains("now on this computer's clipboard"), "notice: {notice}");
        browser.screenshot("clipboard-from-session").await?;

        // The browser's clipboard → the session when the desktop gets focus.
        browser
            .run_async(
                "await navigator.clipboard.writeText(arguments[0]);",
                vec![json!(FROM_PAGE)],
            )
            .await?;
        refocus_desktop(&browser).await?;
        session_clipboard_becomes(&display, FROM_PAGE, "the page's text in the session").await?;

        // The paste box: text pasted into the panel and sent.
        browser
            .client
            .execute(
                "const area = document.querySelector('[data-testid=\"clipboard-text\"]');
                 area.value = arguments[0];
                 area.dispatchEvent(new InputEvent('input', { bubbles: true }));",
                vec![json!(FROM_PASTE_BOX)],
            )
            .await?;
        browser.click("clipboard-send").await?;
        session_clipboard_becomes(&display, FROM_PASTE_BOX, "the paste box's text in the session").await?;
        let notice = browser.text_of("clipboard-notice", Duration::from_secs(5)).await?;
        ensure!(notice.starts_with("Sent "), "notice after sending: {notice}");
        browser.screenshot("clipboard-paste-box").await?;

        // A megabyte each way (more than one WebSocket message to the relay).
        let big = megabyte(false);
        browser
            .run_async("await navigator.clipboard.writeText(arguments[0]);", vec![json!(big)])
            .await?;
        refocus_desktop(&browser).await?;
        session_clipboard_becomes(&display, &big, "1 MB from the page in the session").await?;
        let big_unicode = megabyte(true);
        set_clipboard(USER, &display, &big_unicode).await?;
        wait_for(
            "1 MB from the session on the browser's clipboard",
            Duration::from_secs(60),
            || async { Ok((browser_clipboard(&browser).await? == big_unicode).then_some(())) },
        )
        .await?;
        browser.screenshot("clipboard-megabyte").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("clipboard-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}
