//! Portal designer in headless Chromium: two pages published with different logos, colours,
//! backgrounds and pre-filled fields each render their own (DOM, computed styles, screenshots), with
//! labelled fields, readable contrast and keyboard navigation; once made with the CLI, once in the
//! admin console's designer (live preview, hex colours, uploads, unsaved edits kept).

use anyhow::{ensure, Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::wait_for;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Our own stock pictures, also used here as uploaded logos and an uploaded background.
fn stock(number: u8) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../portal-assets/backgrounds/bg-{number:02}.jpg"))
}

/// What the login page shows, read from the DOM and computed styles once the page's look is applied
/// (the logo points at the expected kind of URL and has loaded).
async fn rendered(browser: &Browser, logo_prefix: &str) -> Result<Value> {
    browser.wait_testid("login-form", TIMEOUT).await?;
    let script = r#"
        const [prefix, done] = arguments;
        const q = id => document.querySelector(`[data-testid="${id}"]`);
        const wait = async () => {
            for (let i = 0; i < 300; i++) {
                const logo = q('login-logo');
                if (logo && logo.getAttribute('src').startsWith(prefix) && logo.complete && logo.naturalWidth > 0) return;
                await new Promise(r => setTimeout(r, 100));
            }
            throw new Error('logo not loaded: ' + (q('login-logo') || {}).src);
        };
        wait().then(() => {
            const style = e => getComputedStyle(e);
            const domain = q('login-domain');
            const labels = [...document.querySelectorAll('input')].map(i =>
                [i.id, !!document.querySelector(`label[for="${i.id}"]`)]);
            done({
                title: q('login-title').textContent,
                logo: q('login-logo').getAttribute('src'),
                logo_width: q('login-logo').naturalWidth,
                username: q('login-username').value,
                password: q('login-password').value,
                domain: domain ? domain.value : null,
                button_bg: style(q('login-submit')).backgroundColor,
                button_fg: style(q('login-submit')).color,
                title_fg: style(q('login-title')).color,
                card_bg: style(q('login-form')).backgroundColor,
                text_fg: style(q('login-form')).color,
                body_bg_image: style(document.body).backgroundImage,
                body_bg_color: style(document.body).backgroundColor,
                labels,
            });
        }, e => done({ error: String(e) }));
    "#;
    let value = browser.client.execute_async(script, vec![json!(logo_prefix)]).await?;
    ensure!(value.get("error").is_none(), "{value}");
    Ok(value)
}

/// WCAG contrast of two computed `rgb(r, g, b)` colours.
fn contrast(a: &Value, b: &Value) -> Result<f64> {
    fn luminance(css: &str) -> Result<f64> {
        let inner = css.trim_start_matches("rgba(").trim_start_matches("rgb(").trim_end_matches(')');
        let parts: Vec<f64> = inner.split(',').take(3).map(|p| p.trim().parse()).collect::<Result<_, _>>()?;
        ensure!(parts.len() == 3, "not a colour: {css}");
        let channel = |c: f64| {
            let c = c / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        Ok(0.2126 * channel(parts[0]) + 0.7152 * channel(parts[1]) + 0.0722 * channel(parts[2]))
    }
    let (la, lb) = (luminance(a.as_str().context("colour")?)?, luminance(b.as_str().context("colour")?)?);
    Ok((la.max(lb) + 0.05) / (la.min(lb) + 0.05))
}

/// Tab moves through the form in reading order: from the username field, the focused element's
/// `data-testid` after each Tab.
async fn tab_order(browser: &Browser, steps: usize) -> Result<Vec<String>> {
    browser.client.execute("document.querySelector('[data-testid=\"login-username\"]').focus();", vec![]).await?;
    let mut order = vec!["login-username".to_owned()];
    for _ in 0..steps {
        browser.client.active_element().await?.send_keys("\u{e004}").await?;
        let id = browser
            .client
            .execute("return document.activeElement.getAttribute('data-testid');", vec![])
            .await?;
        order.push(id.as_str().unwrap_or("").to_owned());
    }
    Ok(order)
}

/// "sales": forest theme, stock background 7, demo / demo-pass pre-filled, no Domain field.
/// "support": dark theme with an amber accent, an uploaded background, helpdesk and domain CORP.
fn check_sales_and_support(sales: &Value, support: &Value) {
    assert_eq!(sales["title"], "Sales desk");
    assert_eq!(sales["username"], "demo");
    assert_eq!(sales["password"], "demo-pass");
    assert_eq!(sales["domain"], Value::Null, "the Domain field is hidden: {sales}");
    assert_eq!(sales["button_bg"], "rgb(31, 107, 58)", "forest accent #1f6b3a: {sales}");
    assert_eq!(sales["button_fg"], "rgb(255, 255, 255)");
    assert_eq!(sales["title_fg"], "rgb(31, 107, 58)");
    assert_eq!(sales["body_bg_color"], "rgb(18, 61, 34)", "forest page colour #123d22");
    assert!(sales["body_bg_image"].as_str().unwrap_or("").contains("/backgrounds/bg-07.jpg"), "{sales}");

    assert_eq!(support["title"], "Support");
    assert_eq!(support["username"], "helpdesk");
    assert_eq!(support["password"], "");
    assert_eq!(support["domain"], "CORP");
    assert_eq!(support["button_bg"], "rgb(255, 176, 0)", "custom accent #ffb000: {support}");
    assert_eq!(support["card_bg"], "rgb(28, 35, 44)", "dark card #1c232c");
    assert_eq!(support["text_fg"], "rgb(232, 237, 243)");
    let support_bg = support["body_bg_image"].as_str().unwrap_or("");
    assert!(support_bg.contains("/api/portal/assets/"), "uploaded background: {support}");
    assert_ne!(sales["logo"], support["logo"], "each page its own logo");
    assert!(!support_bg.contains(sales["logo"].as_str().unwrap_or("-")));
}

#[tokio::test]
async fn two_published_pages_render_their_own_design() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.serve().await?;
    let cli = |args: &[&str]| relay.cli(args, None);
    // "sales": forest theme, a JPEG logo, stock background 7, username and password pre-filled.
    cli(&["portal", "page", "set", "sales", "--theme", "forest", "--title", "Sales desk", "--username", "demo"])?;
    cli(&["portal", "page", "set", "sales", "--password", "demo-pass", "--show-domain", "off"])?;
    cli(&["portal", "page", "logo", "sales", stock(2).to_str().context("path")?])?;
    cli(&["portal", "page", "background", "sales", "--stock", "7"])?;
    cli(&["portal", "page", "publish", "sales"])?;
    // "support": dark theme with an amber accent, another logo, an uploaded background, domain shown.
    cli(&["portal", "page", "set", "support", "--theme", "dark", "--title", "Support", "--accent", "#ffb000"])?;
    cli(&["portal", "page", "set", "support", "--username", "helpdesk", "--domain", "CORP", "--show-domain", "on"])?;
    cli(&["portal", "page", "logo", "support", stock(12).to_str().context("path")?])?;
    cli(&["portal", "page", "background", "support", "--file", stock(15).to_str().context("path")?])?;
    cli(&["portal", "page", "publish", "support"])?;

    let browser = Browser::start(1280, 860).await?;
    let result = async {
        browser.goto(&format!("{}sales.html", relay.url())).await?;
        let sales = rendered(&browser, "/api/portal/assets/").await?;
        browser.screenshot("designer-sales").await?;
        browser.goto(&format!("{}support.html", relay.url())).await?;
        let support = rendered(&browser, "/api/portal/assets/").await?;
        browser.screenshot("designer-support").await?;
        check_sales_and_support(&sales, &support);

        // Accessibility basics on both pages: every field labelled, readable text, Tab order.
        for look in [&sales, &support] {
            for label in look["labels"].as_array().context("labels")? {
                assert_eq!(label[1], true, "input without a label: {label}");
            }
            let text = contrast(&look["text_fg"], &look["card_bg"])?;
            let button = contrast(&look["button_fg"], &look["button_bg"])?;
            assert!(text >= 4.5 && button >= 4.5, "contrast text {text:.1}, button {button:.1}: {look}");
        }
        assert_eq!(
            tab_order(&browser, 3).await?,
            ["login-username", "login-password", "login-domain", "login-submit"]
        );

        // The default page keeps the default look; an unpublished page is gone.
        browser.goto(&relay.url()).await?;
        let default = rendered(&browser, "/images/logo.svg").await?;
        assert_eq!(default["title"], "Homedesk");
        assert_eq!(default["username"], "");
        assert_eq!(default["button_bg"], "rgb(30, 78, 140)");
        browser.screenshot("designer-default").await?;
        cli(&["portal", "page", "unpublish", "sales"])?;
        let status = browser.run_async("return (await fetch('/sales.html')).status;", vec![]).await?;
        assert_eq!(status, 404, "an unpublished page is not served");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("designer-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

async fn admin_sign_in(browser: &Browser, relay: &Relay) -> Result<()> {
    browser.goto(&format!("{}admin/portal-pages", relay.url())).await?;
    browser.type_into("admin-login-username", "admin").await?;
    browser.type_into("admin-login-password", &relay.admin_password()?).await?;
    browser.click("admin-login-submit").await?;
    browser.wait_testid("admin-page-portal-pages", TIMEOUT).await.map(drop)
}

/// Picks an option of a `<select>` as a person would (the value, then a change event).
async fn choose(browser: &Browser, id: &str, value: &str) -> Result<()> {
    browser.wait_testid(id, TIMEOUT).await?;
    let script = "const [id, value] = arguments; const s = document.querySelector(`[data-testid=\"${id}\"]`);
                  s.value = value; s.dispatchEvent(new Event('change', { bubbles: true })); return s.value;";
    let chosen = browser.client.execute(script, vec![json!(id), json!(value)]).await?;
    ensure!(chosen == value, "{id} has no option {value}");
    Ok(())
}

/// Waits until a JavaScript expression (over `q(testid)`) equals `expected`.
async fn wait_js(browser: &Browser, what: &str, expression: &str, expected: Value) -> Result<()> {
    let script = format!(
        "const q = id => document.querySelector(`[data-testid=\"${{id}}\"]`); try {{ return {expression}; }} catch (e) {{ return null; }}"
    );
    wait_for(what, TIMEOUT, || async {
        let value = browser.client.execute(&script, vec![]).await?;
        Ok((value == expected).then_some(()))
    })
    .await
}

async fn upload(browser: &Browser, id: &str, file: &Path) -> Result<()> {
    let file = file.canonicalize().with_context(|| format!("{}", file.display()))?;
    browser.wait_testid(id, TIMEOUT).await?.send_keys(&file.display().to_string()).await?;
    Ok(())
}

/// Opens the designer on a new page.
async fn new_page(browser: &Browser, name: &str) -> Result<()> {
    browser.type_into("admin-designer-new-name", name).await?;
    browser.click("admin-designer-new").await?;
    wait_js(
        browser,
        "the editor of the new page",
        "q('admin-designer-editor').querySelector('h2').textContent",
        json!(format!("Page \"{name}\" (new)")),
    )
    .await?;
    browser.wait_testid("admin-designer-preview-card", TIMEOUT).await.map(drop)
}

async fn notice(browser: &Browser, expected: &str) -> Result<()> {
    wait_js(browser, &format!("the notice {expected:?}"), "q('admin-designer-notice').textContent", json!(expected)).await
}

#[tokio::test]
async fn the_console_designer_publishes_pages_that_render_their_own_design() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.serve().await?;
    let browser = Browser::start(1400, 1000).await?;
    let result = async {
        admin_sign_in(&browser, &relay).await?;
        browser.wait_testid("admin-designer-none", TIMEOUT).await?;

        // "sales": the forest theme, a logo, stock picture 7, demo / demo-pass, no Domain field.
        new_page(&browser, "sales").await?;
        browser.type_into("admin-designer-title", "Sales desk").await?;
        choose(&browser, "admin-designer-theme", "forest").await?;
        wait_js(&browser, "the preview's title", "q('admin-designer-preview-title').textContent", json!("Sales desk")).await?;
        wait_js(
            &browser,
            "the preview in the forest accent",
            "getComputedStyle(q('admin-designer-preview-button')).backgroundColor",
            json!("rgb(31, 107, 58)"),
        )
        .await?;
        upload(&browser, "admin-designer-logo", &stock(2)).await?;
        notice(&browser, "Image uploaded.").await?;
        wait_js(
            &browser,
            "the uploaded logo in the preview",
            "q('admin-designer-preview-logo').getAttribute('src').startsWith('/api/portal/assets/')",
            json!(true),
        )
        .await?;
        browser.click("admin-designer-bg-7").await?;
        browser.type_into("admin-designer-username", "demo").await?;
        browser.type_into("admin-designer-password", "demo-pass").await?;
        wait_js(
            &browser,
            "the visible-password warning",
            "q('admin-designer-warnings').textContent.includes('opens /sales.html')",
            json!(true),
        )
        .await?;
        choose(&browser, "admin-designer-show-domain", "hide").await?;
        choose(&browser, "admin-designer-layout", "de-DE").await?;
        // A colour typed wrong is refused by the preview with the reason, then corrected.
        browser.type_into("admin-designer-color-muted", "#12").await?;
        wait_js(&browser, "the refused colour", "!!q('admin-designer-preview-error')", json!(true)).await?;
        browser.type_into("admin-designer-color-muted", "#4a5a4f").await?;
        wait_js(&browser, "the preview again", "!!q('admin-designer-preview-error')", json!(false)).await?;
        choose(&browser, "admin-designer-theme", "forest").await?;
        browser.screenshot("designer-console-sales").await?;
        browser.click("admin-designer-save").await?;
        notice(&browser, "Saved.").await?;
        browser.click("admin-designer-publish").await?;
        notice(&browser, "Published.").await?;

        // "support": the dark theme with an amber accent typed as hex, an uploaded background, CORP.
        new_page(&browser, "support").await?;
        browser.type_into("admin-designer-title", "Support").await?;
        choose(&browser, "admin-designer-theme", "dark").await?;
        browser.type_into("admin-designer-color-accent", "#ffb000").await?;
        wait_js(&browser, "a typed colour makes the theme custom", "q('admin-designer-theme').value", json!("custom")).await?;
        wait_js(
            &browser,
            "the typed accent in the preview",
            "getComputedStyle(q('admin-designer-preview-button')).backgroundColor",
            json!("rgb(255, 176, 0)"),
        )
        .await?;
        browser.type_into("admin-designer-username", "helpdesk").await?;
        browser.type_into("admin-designer-domain", "CORP").await?;
        choose(&browser, "admin-designer-show-domain", "show").await?;
        upload(&browser, "admin-designer-logo", &stock(12)).await?;
        notice(&browser, "Image uploaded.").await?;
        upload(&browser, "admin-designer-background", &stock(15)).await?;
        notice(&browser, "Image uploaded.").await?;
        wait_js(&browser, "the uploaded background chosen", "q('admin-designer-bg-upload').getAttribute('aria-pressed')", json!("true")).await?;
        browser.click("admin-designer-save").await?;
        notice(&browser, "Saved.").await?;
        browser.click("admin-designer-publish").await?;
        notice(&browser, "Published.").await?;
        browser.screenshot("designer-console-support").await?;

        // An unsaved edit survives closing the designer, and is not served.
        browser.type_into("admin-designer-title", "Support draft").await?;
        browser.goto(&format!("{}admin/portal-pages", relay.url())).await?;
        browser.click("admin-designer-edit-support").await?;
        notice(&browser, "Your unsaved changes from last time are back: Save or Reset.").await?;
        wait_js(&browser, "the kept draft", "q('admin-designer-title').value", json!("Support draft")).await?;
        for name in ["sales", "support"] {
            let row = browser.text_of(&format!("admin-designer-row-{name}"), TIMEOUT).await?;
            ensure!(row.contains(&format!("/{name}.html")), "{name} is listed as published: {row}");
        }

        browser.goto(&format!("{}sales.html", relay.url())).await?;
        let sales = rendered(&browser, "/api/portal/assets/").await?;
        browser.screenshot("designer-console-sales-page").await?;
        let layout = browser
            .run_async("return (await (await fetch('/api/portal?page=sales')).json()).preferences.keyboard_layout;", vec![])
            .await?;
        assert_eq!(layout, "de-DE");
        browser.goto(&format!("{}support.html", relay.url())).await?;
        let support = rendered(&browser, "/api/portal/assets/").await?;
        browser.screenshot("designer-console-support-page").await?;
        check_sales_and_support(&sales, &support);
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("designer-console-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}
