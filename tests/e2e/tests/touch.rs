//! A phone against xrdp: Chromium's mobile emulation (390x844 touch screen), touches sent as WebDriver
//! touch pointer actions (real `TouchEvent`s in the page), text typed into the touch keyboard's hidden
//! field (WebDriver keys, and the value rewrites autocorrect and IME composition make, as scripts
//! setting the value and firing the `input`/`composition*` events a phone fires). What arrives is
//! read from an `xev` window inside the workstation session (user rdpuser2).

use anyhow::{ensure, Context, Result};
use homedesk_e2e::browser::{Browser, PHONE};
use homedesk_e2e::relay::Relay;
use homedesk_e2e::session_x::{session_display, XEvent, Xev};
use homedesk_e2e::{known_picture, required_env, wait_for, Rgb};
use serde_json::json;
use std::time::Duration;

const USER: &str = "rdpuser2";
const PASSWORD: &str = "Passw0rd!";
/// The xev window inside the session: x, y, width, height in desktop pixels (inside 640x480).
const XEV: (u32, u32, u32, u32) = (20, 300, 360, 170);
const FIELD: &str = "document.querySelector('[data-testid=\"keyboard-input\"]')";

async fn wait_events(xev: &Xev, what: &str, check: impl Fn(&[XEvent]) -> bool) -> Result<()> {
    let result = wait_for(what, Duration::from_secs(15), || async { Ok(check(&xev.events()).then_some(())) }).await;
    result.with_context(|| format!("xev saw {:?}", xev.events().into_iter().filter(|e| *e != XEvent::Other).collect::<Vec<_>>()))
}

async fn wait_typed(xev: &Xev, expected: &str) -> Result<()> {
    let result = wait_for(&format!("{expected:?} typed in the session"), Duration::from_secs(15), || async {
        Ok((xev.typed_text() == expected).then_some(()))
    })
    .await;
    result.with_context(|| format!("the session received {:?}", xev.typed_text()))
}

fn pressed(events: &[XEvent], button: u32) -> bool {
    events.contains(&XEvent::ButtonPress(button)) && events.contains(&XEvent::ButtonRelease(button))
}

/// Sets the hidden field's value and fires what a phone keyboard fires for it.
async fn field_script(browser: &Browser, script: &str) -> Result<()> {
    browser.client.execute(&format!("const f = {FIELD}; {script}"), vec![]).await?;
    Ok(())
}

async fn attribute(browser: &Browser, testid: &str, name: &str) -> Result<Option<String>> {
    let element = browser.wait_testid(testid, Duration::from_secs(10)).await?;
    Ok(element.attr(name).await?)
}

#[tokio::test]
async fn phone_touch_gestures_and_soft_keyboard_reach_the_session() -> Result<()> {
    let addr = required_env("RDP_TESTBED_XRDP_ADDR")?;
    let mut relay = Relay::new()?;
    relay.add_user(USER, PASSWORD)?;
    relay.add_workstation("Office PC", &addr)?;
    relay.assign(USER, "Office PC")?;
    relay.serve().await?;
    let browser = Browser::start_phone().await?;
    let result = async {
        browser.login(&relay.url(), USER, PASSWORD).await?;
        browser.wait_testid("desktop-canvas", Duration::from_secs(20)).await?;
        let background = Rgb::from_hex(&required_env("RDP_TESTBED_XRDP_BG").unwrap_or_else(|_| "#1e6fd9".into()));
        browser.wait_for_picture(&known_picture(background), 8, Duration::from_secs(60)).await?;

        let display = session_display(USER)?;
        let xev = Xev::start(USER, &display, XEV).await?;
        let (x, y, w, h) = XEV;
        // xev's window (white) shows on the phone.
        browser.wait_for_picture(&[((x + 10, y + h - 10), Rgb(255, 255, 255))], 16, Duration::from_secs(20)).await?;
        let centre = browser.desktop_to_page(x + w / 2, y + h / 2).await?;

        // Tap: the pointer moves there and clicks.
        browser.tap(centre.0, centre.1).await?;
        wait_events(&xev, "a left click from a tap", |e| pressed(e, 1)).await?;
        ensure!(!xev.events().contains(&XEvent::ButtonPress(3)), "a tap must not right-click");
        let pointer = attribute(&browser, "touch-pointer", "data-size").await?;
        ensure!(pointer.as_deref() == Some("medium"), "the visible pointer is drawn (medium by default): {pointer:?}");
        let rect = browser
            .client
            .execute(
                "const r = document.querySelector('[data-testid=\"touch-pointer\"]').getBoundingClientRect();
                 return [r.left, r.top, r.width];",
                vec![],
            )
            .await?;
        let near = |i: usize, want: f64| rect.get(i).and_then(|v| v.as_f64()).is_some_and(|v| (v - want).abs() < 2.0);
        ensure!(near(0, centre.0) && near(1, centre.1) && near(2, 22.0), "the pointer's tip is at the tap, 22 px wide: {rect}");
        browser.screenshot("phone-tap").await?;
        // Every menu button is on the phone's screen (the bar wraps instead of running off its right edge).
        for id in ["session-disconnect", "session-logoff", "logout"] {
            let right = browser
                .client
                .execute(
                    "const r = document.querySelector(`[data-testid=\"${arguments[0]}\"]`).getBoundingClientRect();
                     return r.right;",
                    vec![json!(id)],
                )
                .await?;
            let right = right.as_f64().unwrap_or(f64::MAX);
            ensure!(right <= f64::from(PHONE.0), "the {id} button ends at {right} px, off the {} px screen", PHONE.0);
        }

        // Long press: right click.
        xev.clear();
        browser.touch_hold(centre.0, centre.1, Duration::from_millis(1200)).await?;
        wait_events(&xev, "a right click from a long press", |e| pressed(e, 3)).await?;
        ensure!(!xev.events().contains(&XEvent::ButtonPress(1)), "a long press must not left-click");

        // Two-finger scroll and pinch are driven in touch_zoom.rs with CDP touch events, which put every
        // finger of a frame in one event (and, on purpose, one finger at a time) as phones do.

        // The touch keyboard: the button focuses the hidden field and shows the key bar.
        xev.clear();
        browser.click("keyboard-toggle").await?;
        browser.wait_testid("key-bar", Duration::from_secs(5)).await?;
        let focused = browser.client.execute("return document.activeElement.dataset.testid || null;", vec![]).await?;
        ensure!(focused == json!("keyboard-input"), "the hidden field has the focus (soft keyboard open): {focused}");
        let bar = browser
            .client
            .execute(
                "const r = document.querySelector('[data-testid=\"key-bar\"]').getBoundingClientRect();
                 return Math.abs(r.bottom - window.innerHeight) < 2 && r.top > window.innerHeight / 2;",
                vec![],
            )
            .await?;
        ensure!(bar == json!(true), "the key bar sits at the bottom of the screen");
        browser.screenshot("phone-keyboard-bar").await?;

        // Typing into the field (WebDriver keys: keydown + input events) reaches the session as text.
        browser.wait_testid("keyboard-input", Duration::from_secs(5)).await?.send_keys("Hi there").await?;
        wait_typed(&xev, "Hi there").await?;

        // Autocorrect: the phone types " teh", then replaces the word with "the ".
        field_script(
            &browser,
            "f.value += ' teh'; f.dispatchEvent(new InputEvent('input', {inputType: 'insertText', data: ' teh'}));
             f.value = f.value.replace(/teh$/, 'the ');
             f.dispatchEvent(new InputEvent('input', {inputType: 'insertReplacementText', data: 'the '}));",
        )
        .await?;
        wait_typed(&xev, "Hi there the ").await?;

        // IME / word composition: nothing goes while composing; the committed word goes at the end.
        field_script(
            &browser,
            "f.dispatchEvent(new CompositionEvent('compositionstart', {data: ''}));
             f.value += 'dn'; f.dispatchEvent(new InputEvent('input', {inputType: 'insertCompositionText', data: 'dn', isComposing: true}));",
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        ensure!(xev.typed_text() == "Hi there the ", "composing text was sent early: {:?}", xev.typed_text());
        field_script(
            &browser,
            "f.value = f.value.replace(/dn$/, 'done');
             f.dispatchEvent(new InputEvent('input', {inputType: 'insertCompositionText', data: 'done', isComposing: true}));
             f.dispatchEvent(new CompositionEvent('compositionend', {data: 'done'}));",
        )
        .await?;
        wait_typed(&xev, "Hi there the done").await?;

        // Backspace on the phone keyboard erases in the session; Enter is Return.
        browser.wait_testid("keyboard-input", Duration::from_secs(5)).await?.send_keys("\u{E003}\u{E003}!\u{E007}").await?;
        wait_typed(&xev, "Hi there the do!\n").await?;

        // Key bar: Tab.
        browser.click("key-Tab").await?;
        wait_typed(&xev, "Hi there the do!\n\t").await?;

        // Latching Ctrl: tap Ctrl, then "c" on the soft keyboard is Ctrl+C, and Ctrl is released after it.
        xev.clear();
        browser.click("key-ControlLeft").await?;
        ensure!(attribute(&browser, "key-ControlLeft", "aria-pressed").await?.as_deref() == Some("true"), "Ctrl latched");
        browser.screenshot("phone-ctrl-latched").await?;
        browser.wait_testid("keyboard-input", Duration::from_secs(5)).await?.send_keys("c").await?;
        wait_events(&xev, "Ctrl+C", |events| {
            events.iter().any(|e| matches!(e, XEvent::KeyPress { keysym, state, .. } if keysym == "c" && state & 4 != 0))
        })
        .await?;
        ensure!(attribute(&browser, "key-ControlLeft", "aria-pressed").await?.as_deref() == Some("false"), "Ctrl released");
        xev.clear();
        browser.wait_testid("keyboard-input", Duration::from_secs(5)).await?.send_keys("x").await?;
        wait_events(&xev, "a plain x after the latch", |events| {
            events.iter().any(|e| matches!(e, XEvent::KeyPress { keysym, state: 0, .. } if keysym == "x"))
        })
        .await?;

        // Function keys row.
        browser.click("key-fn").await?;
        browser.wait_testid("key-F5", Duration::from_secs(5)).await?;
        xev.clear();
        browser.click("key-F5").await?;
        wait_events(&xev, "F5", |events| events.iter().any(|e| matches!(e, XEvent::KeyPress { keysym, .. } if keysym == "F5")))
            .await?;
        browser.screenshot("phone-function-keys").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("phone-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}
