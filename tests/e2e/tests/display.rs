//! The desktop follows the browser window (Display Control, the reattach fallback, or scaling), shows
//! the workstation's pointer shapes, and applies the HTML5 client settings — in headless Chromium
//! against the RDP testbed. Screenshots land in the artifacts directory.

use anyhow::{Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::{known_picture, required_env, wait_for, Rgb};
use serde_json::Value;
use std::time::Duration;

const PASSWORD: &str = "Passw0rd!";
const TOLERANCE: u8 = 8;
const DESKTOP_TIMEOUT: Duration = Duration::from_secs(60);
const MENU_HEIGHT: u64 = 32;
/// A 1x1 GIF (the logon animation's stand-in).
const GIF: &str = "data:image/gif;base64,R0lGODlhAQABAIAAAP8AAP///ywAAAAAAQABAAACAkQBADs=";

async fn relay_with(user: &str, addr: &str) -> Result<Relay> {
    let mut relay = Relay::new()?;
    relay.add_user(user, PASSWORD)?;
    relay.add_workstation("Office PC", addr)?;
    relay.assign(user, "Office PC")?;
    relay.serve().await?;
    Ok(relay)
}

async fn js(browser: &Browser, script: &str) -> Result<Value> {
    Ok(browser.client.execute(script, vec![]).await?)
}

/// The window's inner size in CSS pixels.
async fn inner_size(browser: &Browser) -> Result<(u64, u64)> {
    let v = js(browser, "return [window.innerWidth, window.innerHeight];").await?;
    Ok((v[0].as_u64().context("width")?, v[1].as_u64().context("height")?))
}

/// The desktop size the page asks for in this window (display::desktop_size with a solid menu).
fn expected_desktop((width, height): (u64, u64)) -> (u32, u32) {
    ((width.clamp(640, 3840) & !1) as u32, (height - MENU_HEIGHT).clamp(480, 2160) as u32)
}

#[tokio::test]
async fn xrdp_desktop_follows_the_window_and_shows_the_pointer() -> Result<()> {
    let relay = relay_with("rdpuser1", &required_env("RDP_TESTBED_XRDP_ADDR")?).await?;
    let browser = Browser::start(1200, 820).await?;
    let background = Rgb::from_hex("#1e6fd9");
    let result = async {
        browser.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        browser.wait_testid("desktop-canvas", Duration::from_secs(20)).await?;
        browser.wait_for_picture(&known_picture(background), TOLERANCE, DESKTOP_TIMEOUT).await?;
        let window = inner_size(&browser).await?;
        assert_eq!(browser.canvas_size().await?, expected_desktop(window), "desktop sized to the window {window:?}");
        browser.screenshot("display-xrdp-at-connect").await?;

        // The workstation's pointer becomes the canvas's CSS cursor.
        browser.move_mouse_to_desktop(700, 150).await?;
        browser.move_mouse_to_desktop(60, 60).await?;
        let cursor = wait_for("a pointer shape from the workstation", Duration::from_secs(20), || async {
            let v = js(&browser, "return document.querySelector('[data-testid=\"desktop-canvas\"]').style.cursor;").await?;
            let cursor = v.as_str().unwrap_or_default().to_owned();
            Ok(cursor.starts_with("url(\"data:image/png").then_some(cursor))
        })
        .await?;
        assert!(cursor.ends_with("default"), "{}", &cursor[cursor.len().saturating_sub(40)..]);

        // A bigger window: the desktop follows (Display Control, or a reattach at the new size).
        browser.client.set_window_size(1400, 900).await?;
        let window = inner_size(&browser).await?;
        let wanted = expected_desktop(window);
        wait_for("the desktop to follow the window", Duration::from_secs(60), || async {
            Ok((browser.canvas_size().await? == wanted).then_some(()))
        })
        .await
        .with_context(|| format!("window {window:?}, wanted {wanted:?}"))?;
        browser.wait_for_picture(&known_picture(background), TOLERANCE, DESKTOP_TIMEOUT).await?;
        browser.screenshot("display-xrdp-resized").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("display-xrdp-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

#[tokio::test]
async fn client_settings_change_the_page_and_a_fixed_desktop_is_scaled() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.add_user("rdpuser2", PASSWORD)?;
    relay.add_workstation("Office PC", &required_env("RDP_TESTBED_SHADOW_ADDR")?)?;
    relay.assign("rdpuser2", "Office PC")?;
    relay.cli(
        &[
            "client-settings", "set", "background_color", "#aa2299", "menu_transparent", "on",
            "logon_message", "Welcome to the office", "logon_gif", GIF, "logon_gif_ms", "1500",
            "ctrl_alt_del_desktop", "off",
        ],
        None,
    )?;
    relay.serve().await?;
    let browser = Browser::start(1400, 700).await?;
    let background = Rgb::from_hex("#2e8b57");
    let result = async {
        browser.login(&relay.url(), "rdpuser2", PASSWORD).await?;
        let message = browser.text_of("logon-message", Duration::from_secs(20)).await?;
        assert_eq!(message, "Welcome to the office");
        browser.wait_testid("logon-gif", Duration::from_secs(5)).await?;
        browser.screenshot("display-settings-logon").await?;
        browser.wait_for_picture(&known_picture(background), TOLERANCE, DESKTOP_TIMEOUT).await?;

        let look = js(
            &browser,
            "const page = document.querySelector('[data-testid=\"desktop-page\"]');
             const menu = document.querySelector('[data-testid=\"session-menu\"]');
             const c = document.querySelector('[data-testid=\"desktop-canvas\"]');
             const r = c.getBoundingClientRect();
             return [getComputedStyle(page).backgroundColor, getComputedStyle(menu).position,
                     !!document.querySelector('[data-testid=\"menu-ctrl-alt-del\"]'), r.width, r.height,
                     window.innerWidth, window.innerHeight, c.width, c.height];",
        )
        .await?;
        assert_eq!(look[0], "rgb(170, 34, 153)", "background colour: {look}");
        assert_eq!(look[1], "absolute", "a transparent menu floats over the desktop: {look}");
        assert_eq!(look[2], false, "Ctrl+Alt+Del switched off for desktop browsers: {look}");
        // freerdp-shadow keeps its screen size: the canvas is scaled to the window, proportions kept.
        let f = |i: usize| look[i].as_f64().unwrap_or_default();
        let (shown_w, shown_h, win_w, win_h, desk_w, desk_h) = (f(3), f(4), f(5), f(6), f(7), f(8));
        assert!(shown_h <= win_h + 0.5 && shown_w <= win_w + 0.5, "fits the window: {look}");
        assert!(shown_h < desk_h, "scaled down to the {win_h} px high window: {look}");
        assert!((shown_w / shown_h - desk_w / desk_h).abs() < 0.01, "proportions kept: {look}");
        // Mouse positions map through the scaled canvas (the xterm still gets focus and typing).
        browser.screenshot("display-settings-desktop").await?;
        let pixel = browser.canvas_pixel(50, 50).await?;
        assert!(pixel.near(background, TOLERANCE), "desktop pixels intact: {pixel:?}");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("display-settings-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

#[tokio::test]
async fn admin_console_edits_the_html5_client_settings() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.serve().await?;
    let admin_password = relay.admin_password()?;
    let browser = Browser::start(1280, 900).await?;
    let timeout = Duration::from_secs(30);
    let result = async {
        browser.goto(&format!("{}admin/client-settings", relay.url())).await?;
        browser.type_into("admin-login-username", "admin").await?;
        browser.type_into("admin-login-password", &admin_password).await?;
        browser.click("admin-login-submit").await?;
        let colour = browser.wait_testid("client-setting-background_color", timeout).await?;
        assert_eq!(colour.prop("value").await?.unwrap_or_default(), "#000000");
        // A bad value: the relay's sentence, nothing saved.
        colour.clear().await?;
        colour.send_keys("purple").await?;
        browser.click("client-settings-save").await?;
        let refused = browser.text_of("client-settings-notice", timeout).await?;
        assert!(refused.contains("#1e4e8c"), "refusal: {refused}");
        let colour = browser.wait_testid("client-setting-background_color", timeout).await?;
        colour.clear().await?;
        colour.send_keys("#336699").await?;
        browser.click("client-settings-save").await?;
        wait_for("the save to be confirmed", timeout, || async {
            let text = browser.text_of("client-settings-notice", timeout).await?;
            Ok(text.starts_with("Saved").then_some(()))
        })
        .await?;
        browser.screenshot("admin-client-settings").await?;
        let shown = relay.cli(&["client-settings", "show"], None)?;
        assert!(shown.lines().any(|l| l.starts_with("background_color") && l.ends_with("#336699")), "{shown}");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("admin-client-settings-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}
