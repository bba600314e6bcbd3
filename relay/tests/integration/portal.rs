//! Portal designer: pages designed through the console API and the CLI, served at `/<name>.html` with
//! their own design and pre-filled fields; hostile names and files refused, nothing half-saved.

use crate::common::*;
use base64::Engine;
use serde_json::{json, Value};

const PNG_LOGO: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0first logo";
const JPEG_BACKGROUND: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIFbackground";
const SVG_LOGO: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A web root as trunk builds it, plus one file a page name must never shadow.
pub(crate) fn web_root() -> tempfile::TempDir {
    let web = tempfile::tempdir().unwrap();
    let html = "<!doctype html><html><head><title>Homedesk</title>\
                <script type=\"module\">import init from '/client.js';init();</script></head><body></body></html>";
    std::fs::write(web.path().join("index.html"), html).unwrap();
    std::fs::write(web.path().join("client.js"), "export {}").unwrap();
    std::fs::write(web.path().join("terms.html"), "<p>our terms</p>").unwrap();
    web
}

pub(crate) async fn designer_relay(web: &tempfile::TempDir) -> (TestRelay, Session) {
    let relay = TestRelay::start_with(Options {
        web_root: Some(web.path().to_owned()),
        ..Options::default()
    })
    .await;
    let password = relay.admin_password.clone().expect("first start");
    let admin = relay.login_response("admin", &password).await;
    assert_eq!(admin.status, 200, "{}", admin.text());
    let session = Session::from_login(&admin);
    (relay, session)
}

pub(crate) async fn get(relay: &TestRelay, path: &str, session: Option<&Session>) -> HttpResponse {
    let cookie = session.map(Session::cookie_header);
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
    relay.request("GET", path, &headers, None).await
}

async fn post_ok(relay: &TestRelay, session: &Session, path: &str, body: Value) -> Value {
    let response = relay.post(path, Some(session), &body.to_string()).await;
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    response.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_are_served_each_with_its_own_design_and_fields() {
    let web = web_root();
    let (relay, admin) = designer_relay(&web).await;

    // "sales": forest theme, uploaded logo, stock background, pre-filled username and password.
    let saved = post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/sales",
        json!({
            "design": { "title": "Sales desk", "theme": "forest", "colors": {
                "accent": "#1F6B3A", "accent_text": "#ffffff", "page": "#123d22", "card": "#ffffff",
                "text": "#1b1f24", "muted": "#566157" } },
            "preferences": { "username": "demo", "password": "demo-pass", "keyboard_layout": "fr-FR", "show_domain": false,
                             "upload_path": "Team/In", "download_path": "Team/Out" }
        }),
    )
    .await;
    assert_eq!(saved["published"], false);
    assert_eq!(saved["design"]["colors"]["accent"], "#1f6b3a", "normalised");
    let warnings = saved["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["kind"], "visible_password");
    assert!(warnings[0]["message"]
        .as_str()
        .unwrap()
        .contains("visible to anyone who opens /sales.html"));
    let with_logo = post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/sales/logo",
        json!({ "data_base64": b64(PNG_LOGO) }),
    )
    .await;
    let logo_id = with_logo["design"]["logo"].as_str().unwrap().to_owned();
    post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/sales/background",
        json!({ "stock": 7 }),
    )
    .await;

    // Not published yet: not served.
    assert_eq!(get(&relay, "/sales.html", None).await.status, 404);
    assert_eq!(
        get(&relay, "/api/portal?page=sales", None).await.status,
        404
    );
    post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/sales/publish",
        json!({}),
    )
    .await;

    // "support": dark theme with a custom accent, uploaded background, domain field forced on.
    post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/support",
        json!({
            "design": { "title": "Support", "theme": "custom", "colors": {
                "accent": "#ffb000", "accent_text": "#000000", "page": "#0b0f14", "card": "#1c232c",
                "text": "#e8edf3", "muted": "#a9b4c2" } },
            "preferences": { "username": "helpdesk", "domain": "CORP", "show_domain": true }
        }),
    )
    .await;
    let with_background = post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/support/background",
        json!({ "data_base64": b64(JPEG_BACKGROUND) }),
    )
    .await;
    let background_id = with_background["design"]["background"]["asset"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(with_background["warnings"], json!([]));
    post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/support/publish",
        json!({}),
    )
    .await;

    // Each page: index.html with its name, under the same CSP with the inline script's hash.
    for name in ["sales", "support"] {
        let page = get(&relay, &format!("/{name}.html"), None).await;
        assert_eq!(page.status, 200);
        let html = page.text();
        assert!(
            html.contains(&format!(
                "<head><meta name=\"homedesk-page\" content=\"{name}\" />"
            )),
            "{html}"
        );
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe-inline"));
    }
    let sales = get(&relay, "/api/portal?page=sales", None).await.json();
    assert_eq!(sales["page"], "sales");
    assert_eq!(sales["show_domain"], false);
    assert_eq!(sales["design"]["title"], "Sales desk");
    assert_eq!(sales["design"]["colors"]["accent"], "#1f6b3a");
    assert_eq!(
        sales["design"]["logo_url"],
        format!("/api/portal/assets/{logo_id}")
    );
    assert_eq!(sales["design"]["background_url"], "/backgrounds/bg-07.jpg");
    assert_eq!(
        sales["preferences"],
        json!({ "username": "demo", "password": "demo-pass", "domain": "", "keyboard_layout": "fr-FR",
                "upload_path": "Team/In", "download_path": "Team/Out" })
    );
    let support = get(&relay, "/api/portal?page=support", None).await.json();
    assert_eq!(support["show_domain"], true);
    assert_eq!(support["design"]["colors"]["accent"], "#ffb000");
    assert_eq!(support["design"]["logo_url"], "/images/logo.svg");
    assert_eq!(
        support["design"]["background_url"],
        format!("/api/portal/assets/{background_id}")
    );
    assert_eq!(support["preferences"]["username"], "helpdesk");
    assert_eq!(support["preferences"]["domain"], "CORP");

    // The images are served from the database with the type found by their magic bytes.
    let logo = get(&relay, &format!("/api/portal/assets/{logo_id}"), None).await;
    assert_eq!(logo.status, 200);
    assert_eq!(logo.header("content-type"), Some("image/png"));
    assert_eq!(logo.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(logo.body, PNG_LOGO);
    let background = get(&relay, &format!("/api/portal/assets/{background_id}"), None).await;
    assert_eq!(background.header("content-type"), Some("image/jpeg"));
    assert_eq!(background.body, JPEG_BACKGROUND);
    assert_eq!(
        get(
            &relay,
            &format!("/api/portal/assets/{}", "0".repeat(64)),
            None
        )
        .await
        .status,
        404
    );

    // The default page keeps the defaults and the portal-wide Domain setting until "index" is published.
    let default = get(&relay, "/api/portal", None).await.json();
    assert_eq!(default["page"], Value::Null);
    assert_eq!(default["show_domain"], false);
    assert_eq!(default["design"]["colors"]["accent"], "#1e4e8c");
    assert!(relay.cli(&["portal", "show-domain", "on"]).status.success());
    assert_eq!(
        get(&relay, "/api/portal", None).await.json()["show_domain"],
        true
    );
    assert_eq!(
        get(&relay, "/api/portal?page=sales", None).await.json()["show_domain"],
        false,
        "page decides"
    );
    post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/index",
        json!({ "design": { "title": "Welcome", "theme": "burgundy", "colors": {
            "accent": "#8c1e3c", "accent_text": "#ffffff", "page": "#4a0f20", "card": "#fffaf7",
            "text": "#221a1c", "muted": "#66585c" } } }),
    )
    .await;
    let index = post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/index/publish",
        json!({}),
    )
    .await;
    assert_eq!(index["url"], "/");
    let default = get(&relay, "/api/portal", None).await.json();
    assert_eq!(default["page"], "index");
    assert_eq!(default["design"]["title"], "Welcome");
    assert_eq!(
        default["show_domain"], true,
        "the page leaves it to the portal-wide setting"
    );
    assert!(!get(&relay, "/", None)
        .await
        .text()
        .contains("homedesk-page"));

    // List, unpublish (no longer served, kept as a draft), reset.
    let list = get(&relay, "/api/admin/portal/pages", Some(&admin))
        .await
        .json();
    let names: Vec<(&str, bool)> = list["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["published"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("index", true), ("sales", true), ("support", true)]);
    post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/sales/unpublish",
        json!({}),
    )
    .await;
    assert_eq!(get(&relay, "/sales.html", None).await.status, 404);
    assert_eq!(
        get(&relay, "/api/portal?page=sales", None).await.status,
        404
    );
    let reset = post_ok(
        &relay,
        &admin,
        "/api/admin/portal/pages/support/reset",
        json!({}),
    )
    .await;
    assert_eq!(reset["design"]["theme"], "homedesk");
    assert_eq!(reset["preferences"]["username"], "");
    assert_eq!(reset["published"], true);
    assert_eq!(
        get(&relay, "/api/portal?page=support", None).await.json()["design"]["background_url"],
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_files_and_callers_are_refused_and_nothing_is_saved() {
    let web = web_root();
    let (relay, admin) = designer_relay(&web).await;
    let design = json!({ "design": {}, "preferences": {} });

    for (path, needle) in [
        ("/api/admin/portal/pages/admin", "reserved"),
        ("/api/admin/portal/pages/api", "reserved"),
        ("/api/admin/portal/pages/download", "reserved"),
        ("/api/admin/portal/pages/Sales", "lowercase"),
        ("/api/admin/portal/pages/..%2f..%2fetc", "lowercase"),
        ("/api/admin/portal/pages/sales.html", "lowercase"),
        ("/api/admin/portal/pages/terms", "one of the portal's files"),
    ] {
        let response = relay.post(path, Some(&admin), &design.to_string()).await;
        assert_eq!(response.status, 400, "{path}: {}", response.text());
        assert!(
            response.error().contains(needle),
            "{path}: {}",
            response.error()
        );
    }
    // A file of the web root is never shadowed by a page of that name.
    assert_eq!(
        get(&relay, "/terms.html", None).await.text(),
        "<p>our terms</p>"
    );

    let bad_colour = json!({ "design": { "theme": "custom", "colors": {
        "accent": "red;}body{x", "accent_text": "#fff", "page": "#000", "card": "#fff", "text": "#000",
        "muted": "#333" } } });
    let response = relay
        .post(
            "/api/admin/portal/pages/sales",
            Some(&admin),
            &bad_colour.to_string(),
        )
        .await;
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("not a colour"),
        "{}",
        response.error()
    );
    let unknown_logo = json!({ "design": { "logo": "a".repeat(64) } });
    let response = relay
        .post(
            "/api/admin/portal/pages/sales",
            Some(&admin),
            &unknown_logo.to_string(),
        )
        .await;
    assert_eq!(response.status, 400, "{}", response.text());

    let svg = json!({ "data_base64": b64(SVG_LOGO.as_bytes()) });
    let response = relay
        .post(
            "/api/admin/portal/pages/sales/logo",
            Some(&admin),
            &svg.to_string(),
        )
        .await;
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("SVG images are refused"),
        "{}",
        response.error()
    );
    let mut huge = PNG_LOGO.to_vec();
    huge.resize(300 * 1024, 0);
    let response = relay
        .post(
            "/api/admin/portal/pages/sales/logo",
            Some(&admin),
            &json!({ "data_base64": b64(&huge) }).to_string(),
        )
        .await;
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("at most 256 KB"),
        "{}",
        response.error()
    );
    let response = relay
        .post(
            "/api/admin/portal/pages/sales/background",
            Some(&admin),
            &json!({ "stock": 21 }).to_string(),
        )
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(
        get(&relay, "/api/admin/portal/pages", Some(&admin))
            .await
            .json(),
        json!({ "pages": [] })
    );

    // Low contrast is saved but named.
    let low = json!({ "design": { "theme": "custom", "colors": {
        "accent": "#1e4e8c", "accent_text": "#3a6aa8", "page": "#000000", "card": "#ffffff",
        "text": "#1b1f24", "muted": "#5a6472" } } });
    let saved = post_ok(&relay, &admin, "/api/admin/portal/pages/sales", low).await;
    assert_eq!(saved["warnings"][0]["kind"], "contrast");
    assert!(saved["warnings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("the button text (#3a6aa8)"));

    // Only administrators, only with the CSRF token, only from our origin.
    relay.add_user("bob").await;
    let bob = relay.login("bob").await;
    let response = relay
        .post("/api/admin/portal/pages/sales/publish", Some(&bob), "{}")
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(
        get(&relay, "/api/admin/portal/pages", Some(&bob))
            .await
            .status,
        403
    );
    assert_eq!(
        get(&relay, "/api/admin/portal/pages", None).await.status,
        401
    );
    let no_csrf = Session {
        csrf: "wrong".into(),
        ..admin.clone()
    };
    let response = relay
        .post(
            "/api/admin/portal/pages/sales/publish",
            Some(&no_csrf),
            "{}",
        )
        .await;
    assert_eq!(response.status, 403);
    let cookie = admin.cookie_header();
    let foreign = relay
        .request(
            "POST",
            "/api/admin/portal/pages/sales/publish",
            &[
                ("Origin", "https://evil.example"),
                ("Cookie", &cookie),
                ("X-CSRF-Token", &admin.csrf),
            ],
            Some("{}"),
        )
        .await;
    assert_eq!(foreign.status, 403);
    assert_eq!(
        get(&relay, "/sales.html", None).await.status,
        404,
        "still unpublished"
    );
    let response = relay
        .post("/api/admin/portal/pages/ghost/publish", Some(&admin), "{}")
        .await;
    assert_eq!(response.status, 404);
    assert_eq!(response.error(), "There is no portal page named \"ghost\".");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_designs_and_publishes_pages() {
    let web = web_root();
    let (relay, _admin) = designer_relay(&web).await;
    let files = tempfile::tempdir().unwrap();
    let logo = files.path().join("logo.png");
    std::fs::write(&logo, PNG_LOGO).unwrap();
    let svg = files.path().join("logo.svg");
    std::fs::write(&svg, SVG_LOGO).unwrap();
    let logo = logo.to_str().unwrap();

    let ok = |args: &[&str]| {
        let out = relay.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = ok(&[
        "portal",
        "page",
        "set",
        "kiosk",
        "--theme",
        "dark",
        "--username",
        "kiosk",
        "--password",
        "k1",
        "--show-domain",
        "off",
        "--keyboard",
        "de-CH",
    ]);
    assert!(stdout.contains("Page kiosk saved (draft)"), "{stdout}");
    assert!(
        stderr.contains("warning: The default password is visible"),
        "{stderr}"
    );
    ok(&["portal", "page", "logo", "kiosk", logo]);
    ok(&["portal", "page", "background", "kiosk", "--stock", "3"]);
    let (_, stderr) = ok(&["portal", "page", "set", "kiosk", "--accent", "#222222"]);
    assert!(stderr.contains("warning: Low contrast"), "{stderr}");
    let (stdout, _) = ok(&["portal", "page", "publish", "kiosk"]);
    assert!(stdout.contains("served at /kiosk.html"), "{stdout}");
    let (stdout, _) = ok(&["portal", "page", "list"]);
    assert!(
        stdout.contains("kiosk") && stdout.contains("published"),
        "{stdout}"
    );
    let (stdout, _) = ok(&["portal", "themes"]);
    assert!(
        stdout.contains("contrast") && stdout.contains("forest"),
        "{stdout}"
    );

    let view = get(&relay, "/api/portal?page=kiosk", None).await.json();
    assert_eq!(view["design"]["theme"], "custom");
    assert_eq!(view["design"]["colors"]["accent"], "#222222");
    assert_eq!(
        view["design"]["colors"]["card"], "#1c232c",
        "the dark theme's card"
    );
    assert_eq!(view["design"]["background_url"], "/backgrounds/bg-03.jpg");
    assert_eq!(view["preferences"]["keyboard_layout"], "de-CH");
    assert_eq!(view["show_domain"], false);
    assert!(view["design"]["logo_url"]
        .as_str()
        .unwrap()
        .starts_with("/api/portal/assets/"));

    for (args, needle) in [
        (
            vec!["portal", "page", "logo", "kiosk", svg.to_str().unwrap()],
            "SVG images are refused",
        ),
        (
            vec!["portal", "page", "set", "../kiosk"],
            "lowercase letters",
        ),
        (
            vec!["portal", "page", "set", "kiosk", "--text", "#12"],
            "not a colour",
        ),
        (
            vec!["portal", "page", "publish", "nothing"],
            "no portal page named",
        ),
    ] {
        let out = relay.cli(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
    }
    ok(&["portal", "page", "unpublish", "kiosk"]);
    assert_eq!(get(&relay, "/kiosk.html", None).await.status, 404);
    ok(&["portal", "page", "delete", "kiosk"]);
    let (stdout, _) = ok(&["portal", "page", "list"]);
    assert!(!stdout.contains("kiosk"), "{stdout}");
}
