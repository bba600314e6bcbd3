//! A phone against xrdp, the desktop's view: pinch zoom with pan, a tap on the zoomed desktop, pinching
//! back; two-finger scrolling (also with the fingers reported one at a time); and the soft keyboard
//! moving the desktop up. Chromium's mobile emulation (390x844 touch screen);
//! fingers are sent as CDP `Input.dispatchTouchEvent`s, all fingers of a frame in one event as a phone
//! reports them; where clicks land is read from an `xev` window inside the workstation session.
//!
//! The soft keyboard: headless Chromium has none, and nothing emulates the visual viewport alone
//! getting shorter (`Emulation.setVisibleSize` is accepted and does nothing; the VirtualKeyboard API
//! reports geometry only for a real keyboard). `Emulation.setDeviceMetricsOverride` with a smaller height
//! shrinks the whole window and its visual viewport, as a keyboard does in `resizes-content` browsers;
//! the geometry for browsers that shrink only the visual viewport is unit-tested in client-core `lift.rs`.

use anyhow::{ensure, Context, Result};
use homedesk_e2e::browser::{Browser, PHONE};
use homedesk_e2e::relay::Relay;
use homedesk_e2e::session_x::{session_display, Xev};
use homedesk_e2e::{known_picture, required_env, wait_for, Rgb};
use serde_json::{json, Value};
use std::time::Duration;

const USER: &str = "rdpuser2";
const PASSWORD: &str = "Passw0rd!";
/// The xev window inside the session: x, y, width, height in desktop pixels.
const XEV: (u32, u32, u32, u32) = (20, 300, 360, 170);

/// An xev window in the session of USER, once the phone's canvas shows it.
async fn xev_on_screen(browser: &Browser) -> Result<Xev> {
    let display = session_display(USER)?;
    let xev = Xev::start(USER, &display, XEV).await?;
    let (x, y, _, h) = XEV;
    browser.wait_for_picture(&[((x + 10, y + h - 10), Rgb(255, 255, 255))], 16, Duration::from_secs(20)).await?;
    Ok(xev)
}

/// The canvas on the page: its on-screen rectangle (left, top, width, height, transforms included) and
/// its CSS transform.
async fn canvas_box(browser: &Browser) -> Result<(f64, f64, f64, f64, String)> {
    let value = browser
        .client
        .execute(
            "const c = document.querySelector('[data-testid=\"desktop-canvas\"]');
             const r = c.getBoundingClientRect();
             return [r.left, r.top, r.width, r.height, c.style.transform || ''];",
            vec![],
        )
        .await?;
    let number = |i: usize| value.get(i).and_then(Value::as_f64).context("not a number");
    let transform = value.get(4).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok((number(0)?, number(1)?, number(2)?, number(3)?, transform))
}

fn near(a: (f64, f64), b: (f64, f64), tolerance: f64) -> bool {
    (a.0 - b.0).abs() <= tolerance && (a.1 - b.1).abs() <= tolerance
}

/// Two fingers on a horizontal line through `centre`, `from` then `to` px apart, in `steps` frames.
fn spread_frames(centre: (f64, f64), from: f64, to: f64, steps: u32) -> Vec<Vec<(f64, f64)>> {
    (0..=steps)
        .map(|i| {
            let half = (from + (to - from) * f64::from(i) / f64::from(steps)) / 2.0;
            vec![(centre.0 - half, centre.1), (centre.0 + half, centre.1)]
        })
        .collect()
}

async fn phone_session(relay: &mut Relay) -> Result<Browser> {
    let addr = required_env("RDP_TESTBED_XRDP_ADDR")?;
    relay.add_user(USER, PASSWORD)?;
    relay.add_workstation("Office PC", &addr)?;
    relay.assign(USER, "Office PC")?;
    relay.serve().await?;
    let browser = Browser::start_phone().await?;
    browser.login(&relay.url(), USER, PASSWORD).await?;
    browser.wait_testid("desktop-canvas", Duration::from_secs(20)).await?;
    let background = Rgb::from_hex(&required_env("RDP_TESTBED_XRDP_BG").unwrap_or_else(|_| "#1e6fd9".into()));
    browser.wait_for_picture(&known_picture(background), 8, Duration::from_secs(60)).await?;
    Ok(browser)
}

#[tokio::test]
async fn pinch_zooms_and_pans_and_a_tap_on_the_zoomed_desktop_clicks_there() -> Result<()> {
    let mut relay = Relay::new()?;
    let browser = phone_session(&mut relay).await?;
    let result = async {
        let xev = xev_on_screen(&browser).await?;
        let (x, y, w, h) = XEV;
        let home = canvas_box(&browser).await?;
        let target = (x + w / 2, y + h / 2);
        let centre = browser.desktop_to_page(target.0, target.1).await?;

        // Pinch out around the xev window's centre: the fingers go from 60 to 180 px apart (3x), and the
        // desktop point under them stays under them.
        browser.touch_frames(&spread_frames(centre, 60.0, 180.0, 10)).await?;
        let zoomed = canvas_box(&browser).await?;
        let scale = zoomed.2 / home.2;
        ensure!((scale - 3.0).abs() < 0.1, "zoomed {scale:.2}x, not 3x: {zoomed:?} (home {home:?})");
        ensure!((zoomed.3 / home.3 - scale).abs() < 0.05, "zoomed unevenly: {zoomed:?}");
        let under = browser.desktop_to_page(target.0, target.1).await?;
        ensure!(near(under, centre, 4.0), "the pinched point moved from {centre:?} to {under:?}");
        ensure!(xev.presses_at().is_empty(), "pinching clicked: {:?}", xev.presses_at());
        browser.screenshot("phone-zoomed").await?;

        // Pinch and pan in one gesture: spread a little more, then both fingers move together 60 px left
        // and 40 px up; the desktop follows the fingers' midpoint.
        let mut frames = spread_frames(centre, 100.0, 140.0, 4);
        let (l, r) = (centre.0 - 70.0, centre.0 + 70.0);
        frames.extend((1..=6).map(|i| {
            let (dx, dy) = (-10.0 * f64::from(i), -40.0 / 6.0 * f64::from(i));
            vec![(l + dx, centre.1 + dy), (r + dx, centre.1 + dy)]
        }));
        browser.touch_frames(&frames).await?;
        let panned = canvas_box(&browser).await?;
        let scale = panned.2 / home.2;
        ensure!((scale - 3.0 * 1.4).abs() < 0.15, "zoomed {scale:.2}x, not 4.2x: {panned:?}");
        let under = browser.desktop_to_page(target.0, target.1).await?;
        let expected = (centre.0 - 60.0, centre.1 - 40.0);
        ensure!(near(under, expected, 4.0), "after the pan the point is at {under:?}, not {expected:?}");
        browser.screenshot("phone-zoomed-panned").await?;

        // A tap on the zoomed desktop clicks the desktop pixel under the finger.
        let spot = (x + w / 2 - 20, y + h / 2 - 15);
        let page = browser.desktop_to_page(spot.0, spot.1).await?;
        ensure!(page.0 > 0.0 && page.0 < f64::from(PHONE.0) && page.1 > 0.0, "the spot is off screen: {page:?}");
        xev.clear();
        browser.touch_frames(&[vec![page]]).await?;
        let presses = wait_for("a click inside xev", Duration::from_secs(15), || async {
            let presses = xev.presses_at();
            Ok((!presses.is_empty()).then_some(presses))
        })
        .await?;
        let (button, px, py) = presses[0];
        ensure!(button == 1, "a tap clicked button {button}");
        let (sx, sy) = (spot.0 as i32, spot.1 as i32);
        ensure!((px - sx).abs() <= 1 && (py - sy).abs() <= 1, "the tap clicked ({px}, {py}), not ({sx}, {sy})");

        // Pinching in returns to the whole desktop (1x, home position).
        let middle = (f64::from(PHONE.0) / 2.0, home.1 + home.3 / 2.0);
        browser.touch_frames(&spread_frames(middle, 300.0, 40.0, 12)).await?;
        let back = canvas_box(&browser).await?;
        ensure!(
            near((back.0, back.1), (home.0, home.1), 1.0) && (back.2 - home.2).abs() < 1.0,
            "not back home: {back:?} vs {home:?}"
        );
        ensure!(xev.presses_at().len() == 1, "pinching clicked: {:?}", xev.presses_at());
        browser.screenshot("phone-zoomed-back").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("phone-zoom-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

#[tokio::test]
async fn two_finger_drags_scroll_the_session_also_when_fingers_report_one_at_a_time() -> Result<()> {
    let mut relay = Relay::new()?;
    let browser = phone_session(&mut relay).await?;
    let result = async {
        let xev = xev_on_screen(&browser).await?;
        let (x, y, w, h) = XEV;
        let home = canvas_box(&browser).await?;
        let (cx, cy) = browser.desktop_to_page(x + w / 2, y + h / 2).await?;
        let scrolled = |button: u32| xev.presses_at().iter().filter(|(b, _, _)| *b == button).count();
        // The wheel turns where the pointer is: a tap puts it over xev.
        browser.touch_frames(&[vec![(cx, cy)]]).await?;
        wait_for("the tap in xev", Duration::from_secs(15), || async { Ok((scrolled(1) == 1).then_some(())) }).await?;

        // Both fingers in every event, 96 px up in 8 frames: wheel down (X button 5), about 3 notches.
        let frames: Vec<Vec<(f64, f64)>> = (0..=8)
            .map(|i| {
                let dy = -12.0 * f64::from(i);
                vec![(cx - 50.0, cy + 40.0 + dy), (cx + 50.0, cy + 40.0 + dy)]
            })
            .collect();
        xev.clear();
        browser.touch_frames(&frames).await?;
        wait_for("wheel-down clicks in xev", Duration::from_secs(15), || async { Ok((scrolled(5) >= 2).then_some(())) })
            .await?;
        ensure!(scrolled(4) == 0 && scrolled(1) == 0 && scrolled(3) == 0, "other buttons: {:?}", xev.presses_at());

        // The same sideways with each finger's move in its own event (the leading finger alone widens the
        // fingers' distance like a pinch): still a scroll (fingers left: X button 7), never a zoom.
        let mut frames = vec![vec![(cx - 50.0, cy), (cx + 50.0, cy)]];
        for i in 1..=4 {
            let dx = -30.0 * f64::from(i);
            frames.push(vec![(cx - 50.0 + dx, cy), (cx + 50.0 + dx + 30.0, cy)]);
            frames.push(vec![(cx - 50.0 + dx, cy), (cx + 50.0 + dx, cy)]);
        }
        xev.clear();
        browser.touch_frames(&frames).await?;
        wait_for("wheel-right clicks in xev", Duration::from_secs(15), || async { Ok((scrolled(7) >= 2).then_some(())) })
            .await?;
        let after = canvas_box(&browser).await?;
        ensure!(after == home, "a scroll zoomed or moved the desktop: {after:?} vs {home:?}");
        ensure!(scrolled(6) == 0 && scrolled(1) == 0, "other buttons: {:?}", xev.presses_at());
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("phone-scroll-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

/// The phone's screen height set through CDP (the soft keyboard takes the rest).
async fn set_screen_height(browser: &Browser, height: u32) -> Result<()> {
    let metrics = json!({ "width": PHONE.0, "height": height, "deviceScaleFactor": 2, "mobile": true });
    browser.cdp("Emulation.setDeviceMetricsOverride", metrics).await?;
    Ok(())
}

/// Where the pointer drawn over the desktop points (its top left corner), page px.
async fn pointer_tip(browser: &Browser) -> Result<(f64, f64)> {
    let value = browser
        .client
        .execute(
            "const p = document.querySelector('[data-testid=\"touch-pointer\"]');
             if (!p) return null;
             const r = p.getBoundingClientRect();
             return [r.left, r.top];",
            vec![],
        )
        .await?;
    let number = |i: usize| value.get(i).and_then(Value::as_f64).context("no drawn pointer");
    Ok((number(0)?, number(1)?))
}

async fn visible_height(browser: &Browser) -> Result<f64> {
    let value = browser.client.execute("return visualViewport.offsetTop + visualViewport.height;", vec![]).await?;
    value.as_f64().context("visualViewport")
}

#[tokio::test]
async fn the_soft_keyboard_moves_the_touched_spot_above_it_and_back() -> Result<()> {
    let mut relay = Relay::new()?;
    let browser = phone_session(&mut relay).await?;
    let result = async {
        let home = canvas_box(&browser).await?;
        // Touch a spot low on the desktop (where a text field would be), then open the touch keyboard.
        let (_, height) = browser.canvas_size().await?;
        let spot_px = (100, height * 9 / 10);
        let spot = browser.desktop_to_page(spot_px.0, spot_px.1).await?;
        browser.touch_frames(&[vec![spot]]).await?;
        browser.click("keyboard-toggle").await?;
        browser.wait_testid("key-bar", Duration::from_secs(5)).await?;

        // The keyboard takes the lower 400 px: the spot would be under it.
        let keyboard_top = PHONE.1 - 400;
        ensure!(spot.1 > f64::from(keyboard_top), "the spot {spot:?} is not under the keyboard");
        set_screen_height(&browser, keyboard_top).await?;
        let lifted = wait_for("the spot above the keyboard", Duration::from_secs(10), || async {
            let visible = visible_height(&browser).await?;
            let now = browser.desktop_to_page(spot_px.0, spot_px.1).await?;
            Ok((visible < f64::from(PHONE.1) - 300.0 && now.1 + 100.0 <= visible).then_some(now))
        })
        .await
        .with_context(|| "the desktop did not move up")?;
        let moved = canvas_box(&browser).await?;
        ensure!(moved.1 < home.1, "the desktop did not move up: {moved:?} vs {home:?}");
        ensure!(
            (moved.2 - home.2).abs() < 1.0 && (moved.3 - home.3).abs() < 1.0,
            "the desktop changed size (squeezed into the shorter window?): {moved:?} vs {home:?}"
        );
        eprintln!("spot {spot:?} → {lifted:?}; canvas {home:?} → {moved:?}");
        let pointer = pointer_tip(&browser).await?;
        ensure!(near(pointer, lifted, 2.0), "the drawn pointer is at {pointer:?}, the spot at {lifted:?}");
        browser.screenshot("phone-keyboard-lift").await?;

        // The keyboard closes: the desktop goes back.
        set_screen_height(&browser, PHONE.1).await?;
        wait_for("the desktop back in place", Duration::from_secs(10), || async {
            let now = canvas_box(&browser).await?;
            Ok(near((now.0, now.1), (home.0, home.1), 1.0).then_some(()))
        })
        .await?;
        let back = browser.desktop_to_page(spot_px.0, spot_px.1).await?;
        ensure!(near(back, spot, 1.0), "the spot is at {back:?}, was {spot:?}");
        browser.screenshot("phone-keyboard-closed").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("phone-keyboard-lift-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}
