//! The shared clipboard in the browser against xrdp: what is copied in the workstation session (xclip
//! on its X display) reaches the browser's clipboard and the clipboard panel; what the browser's
//! clipboard holds when the desktop gets focus, or what is sent from the panel, is what applications
//! in the session paste. Images too: an X program's `image/bmp` reaches the browser's clipboard as
//! `image/png` with the same pixels, and a PNG on the browser's clipboard reaches X programs as
//! `image/bmp`. Chromium gets the clipboard permissions a user grants at its prompt.

use anyhow::{ensure, Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::session_x::{read_clipboard, read_clipboard_as, session_display, set_clipboard, set_clipboard_as};
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


/// A signed-in desktop of [`USER`] on the testbed's xrdp with the clipboard permissions granted.
struct Desktop {
    relay: Relay,
    browser: Browser,
}

impl Desktop {
    async fn start() -> Result<Desktop> {
        let addr = required_env("RDP_TESTBED_XRDP_ADDR")?;
        let mut relay = Relay::new()?;
        relay.add_user(USER, PASSWORD)?;
        relay.add_workstation("Office PC", &addr)?;
        relay.assign(USER, "Office PC")?;
        relay.serve().await?;
        let browser = Browser::start(1280, 1000).await?;
        Ok(Desktop { relay, browser })
    }

    /// Signs in and waits for the desktop; the session's X display.
    async fn open(&self) -> Result<String> {
        self.browser.login(&self.relay.url(), USER, PASSWORD).await?;
        self.browser.grant_clipboard().await?;
        self.browser
            .wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), 8, Duration::from_secs(60))
            .await
            .context("the desktop did not appear")?;
        let display = session_display(USER)?;
        // chansrv opens the clipboard channel just after the desktop appears.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(display)
    }

    /// Closes the browser; on failure first a screenshot named `failure` and the relay's log.
    async fn finish(self, result: Result<()>, failure: &str) -> Result<()> {
        if result.is_err() {
            let _ = self.browser.screenshot(failure).await;
            eprintln!("relay log:\n{}", self.relay.log());
        }
        self.browser.close().await?;
        result
    }
}

#[tokio::test]
async fn clipboard_text_both_ways_with_xrdp() -> Result<()> {
    let desktop = Desktop::start().await?;
    let browser = &desktop.browser;
    let result = async {
        let display = desktop.open().await?;

        // Copied in the session → the browser's clipboard, and the panel shows it.
        set_clipboard(USER, &display, FROM_SESSION).await?;
        wait_for(
            "the session's text on the browser's clipboard",
            Duration::from_secs(30),
            || async { Ok((browser_clipboard(browser).await? == FROM_SESSION).then_some(())) },
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
        refocus_desktop(browser).await?;
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
        refocus_desktop(browser).await?;
        session_clipboard_becomes(&display, &big, "1 MB from the page in the session").await?;
        let big_unicode = megabyte(true);
        set_clipboard(USER, &display, &big_unicode).await?;
        wait_for(
            "1 MB from the session on the browser's clipboard",
            Duration::from_secs(60),
            || async { Ok((browser_clipboard(browser).await? == big_unicode).then_some(())) },
        )
        .await?;
        browser.screenshot("clipboard-megabyte").await?;
        Ok(())
    }
    .await;
    desktop.finish(result, "clipboard-failure").await
}

/// The test image's pixel at (x, y), RGBA: a gradient, so a swapped channel, a flipped row or a
/// shifted column shows.
fn gradient(x: u32, y: u32) -> [u8; 4] {
    [(x * 4) as u8, (y * 5) as u8, (255 - x * 3) as u8, 255]
}

fn gradient_rgba(width: u32, height: u32) -> Vec<u8> {
    (0..height).flat_map(|y| (0..width).flat_map(move |x| gradient(x, y))).collect()
}

/// A 24-bit BMP file of the gradient (what X programs put on the clipboard as `image/bmp`).
fn gradient_bmp(width: u32, height: u32) -> Vec<u8> {
    let stride = (width * 3).div_ceil(4) * 4;
    let mut bmp = b"BM".to_vec();
    for value in [54 + stride * height, 0, 54, 40, width, height] {
        bmp.extend(value.to_le_bytes());
    }
    bmp.extend(1u16.to_le_bytes());
    bmp.extend(24u16.to_le_bytes());
    bmp.extend(0u32.to_le_bytes());
    bmp.extend((stride * height).to_le_bytes());
    bmp.extend([0u8; 16]);
    for y in (0..height).rev() {
        let mut row: Vec<u8> = (0..width).flat_map(|x| gradient(x, y)[..3].iter().rev().copied().collect::<Vec<_>>()).collect();
        row.resize(stride as usize, 0);
        bmp.extend(row);
    }
    bmp
}

fn le32(data: &[u8], at: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(data.get(at..at + 4).context("BMP too short")?.try_into()?))
}

/// RGB pixels, top row first; `None` where the file ended before the pixel.
type MaybePixels = Vec<Option<[u8; 3]>>;

/// The pixels of an uncompressed 32-bit BMP file as xrdp writes it.
fn bmp_pixels(bmp: &[u8]) -> Result<(u32, u32, MaybePixels)> {
    ensure!(bmp.starts_with(b"BM"), "not a BMP file: {} bytes", bmp.len());
    let (offset, width, height) = (le32(bmp, 10)? as usize, le32(bmp, 18)?, le32(bmp, 22)? as i32);
    let bits = u16::from_le_bytes([bmp[28], bmp[29]]);
    ensure!(bits == 32 && height > 0, "expected a 32-bit bottom-up BMP, got {bits} bits, height {height}");
    let height = height as u32;
    let mut pixels = Vec::new();
    for y in 0..height {
        let row = offset + ((height - 1 - y) * width * 4) as usize;
        for x in 0..width as usize {
            let at = row + x * 4;
            pixels.push(bmp.get(at..at + 3).map(|bgr| [bgr[2], bgr[1], bgr[0]]));
        }
    }
    Ok((width, height, pixels))
}

/// The browser's clipboard image as (width, height, RGBA) — read as a page does, decoded by the browser.
async fn browser_clipboard_image(browser: &Browser) -> Result<Option<(u32, u32, Vec<u8>)>> {
    let value = browser
        .run_async(
            "for (const item of await navigator.clipboard.read()) {
                 if (!item.types.includes('image/png')) continue;
                 const bitmap = await createImageBitmap(await item.getType('image/png'));
                 const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
                 const context = canvas.getContext('2d');
                 context.drawImage(bitmap, 0, 0);
                 const data = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
                 return [bitmap.width, bitmap.height, Array.from(data)];
             }
             return null;",
            vec![],
        )
        .await?;
    if value.is_null() {
        return Ok(None);
    }
    let width = value[0].as_u64().context("width")? as u32;
    let height = value[1].as_u64().context("height")? as u32;
    let rgba = value[2].as_array().context("pixels")?.iter().map(|v| v.as_u64().unwrap_or(999) as u8).collect();
    Ok(Some((width, height, rgba)))
}

#[tokio::test]
async fn clipboard_images_both_ways_with_xrdp() -> Result<()> {
    let desktop = Desktop::start().await?;
    let browser = &desktop.browser;
    let result = async {
        let display = desktop.open().await?;

        // An image copied in the session (image/bmp) → the browser's clipboard as a PNG, same pixels.
        set_clipboard_as(USER, &display, "image/bmp", &gradient_bmp(61, 40)).await?;
        let image = wait_for("the session's image on the browser's clipboard", Duration::from_secs(30), || async {
            browser_clipboard_image(browser).await
        })
        .await?;
        ensure!((image.0, image.1) == (61, 40), "the browser's image is {}x{}", image.0, image.1);
        ensure!(image.2 == gradient_rgba(61, 40), "the browser's image has other pixels than the session's");
        browser.click("clipboard-toggle").await?;
        let notice = browser.text_of("clipboard-notice", Duration::from_secs(5)).await?;
        ensure!(
            notice.contains("an image of 61 × 40 pixels, now on this computer's clipboard"),
            "notice: {notice}"
        );
        let shown = browser
            .client
            .execute("const img = document.querySelector('[data-testid=\"clipboard-image\"]'); return img && img.complete ? [img.naturalWidth, img.naturalHeight] : null;", vec![])
            .await?;
        ensure!(shown == json!([61, 40]), "the clipboard panel shows the image as {shown}");
        browser.screenshot("clipboard-image-from-session").await?;

        // A PNG (with text and HTML beside it) on the browser's clipboard → X programs get the image as
        // image/bmp and the text as text once the desktop gets focus.
        browser
            .run_async(
                "const [width, height, pixels] = arguments;
                 const canvas = new OffscreenCanvas(width, height);
                 canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(pixels), width, height), 0, 0);
                 const png = await canvas.convertToBlob({ type: 'image/png' });
                 await navigator.clipboard.write([new ClipboardItem({
                     'image/png': png,
                     'text/plain': new Blob(['Ein Bild ✓'], { type: 'text/plain' }),
                     'text/html': new Blob(['<b>Ein Bild</b> ✓'], { type: 'text/html' }),
                 })]);",
                vec![json!(45), json!(30), json!(gradient_rgba(45, 30))],
            )
            .await?;
        refocus_desktop(browser).await?;
        session_clipboard_becomes(&display, "Ein Bild ✓", "the page's text beside its image in the session").await?;
        let bmp = read_clipboard_as(USER, &display, "image/bmp", Duration::from_secs(15)).await?;
        let (width, height, pixels) = bmp_pixels(&bmp)?;
        ensure!((width, height) == (45, 30), "the session's image is {width}x{height}");
        // xrdp 0.9.21 writes the BMP's 14-byte file header and then the DIB's length minus 14 bytes:
        // the end of the top row (the last 3.5 pixels stored) is lost in the session (its fault, not
        // the page's: the client-core test against xrdp shows the same).
        let expected = gradient_rgba(45, 30);
        let lost = pixels.iter().filter(|p| p.is_none()).count();
        ensure!(lost <= 4, "{lost} pixels missing in the session's BMP");
        for (i, pixel) in pixels.iter().enumerate() {
            let (x, y) = (i % 45, i / 45);
            let want = &expected[i * 4..i * 4 + 3];
            let partial_top_row_end = y == 0 && x >= 41;
            if let Some(pixel) = pixel {
                ensure!(pixel == want || partial_top_row_end, "pixel ({x}, {y}) is {pixel:?}, not {want:?}");
            }
        }
        browser.screenshot("clipboard-image-to-session").await?;

        // A screenshot pasted with Ctrl+V arrives in the paste event as an image file (no clipboard
        // permission involved): it reaches the session too.
        browser
            .run_async(
                &format!(
                    "const [width, height, pixels] = arguments;
                     const canvas = new OffscreenCanvas(width, height);
                     canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(pixels), width, height), 0, 0);
                     const data = new DataTransfer();
                     data.items.add(new File([await canvas.convertToBlob({{ type: 'image/png' }})], 'shot.png', {{ type: 'image/png' }}));
                     {CANVAS}.dispatchEvent(new ClipboardEvent('paste', {{ clipboardData: data, bubbles: true, cancelable: true }}));"
                ),
                vec![json!(24), json!(12), json!(gradient_rgba(24, 12))],
            )
            .await?;
        let size = wait_for("the pasted image in the session", Duration::from_secs(30), || async {
            let bmp = read_clipboard_as(USER, &display, "image/bmp", Duration::from_secs(15)).await?;
            let (width, height, _) = bmp_pixels(&bmp)?;
            Ok(((width, height) == (24, 12)).then_some((width, height)))
        })
        .await?;
        ensure!(size == (24, 12));
        Ok(())
    }
    .await;
    desktop.finish(result, "clipboard-image-failure").await
}
