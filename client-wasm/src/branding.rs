//! The designed look of the login page (portal designer, docs/contracts.md): which page this is, its
//! colours as the CSS custom properties `portal.css` is written with, its background picture, logo,
//! title, and the preferences other parts of the client read (keyboard layout, upload/download paths).
//!
//! It exists so that app.rs only asks for [`LoginLook`] and renders it. Colours go through the CSSOM
//! (`style.setProperty` on `<html>`), which the relay's CSP allows; no inline style is ever written.
//! Every value comes from the relay, which validated it (`#rrggbb` colours, same-origin image paths).

use serde::Deserialize;
use std::cell::RefCell;
use wasm_bindgen::JsCast;

/// What `GET /api/portal` answers.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
pub struct LoginLook {
    /// `None`: the default page (no design applied).
    #[serde(default)]
    pub page: Option<String>,
    #[serde(default)]
    pub show_domain: bool,
    #[serde(default)]
    pub design: Option<Design>,
    #[serde(default)]
    pub preferences: Preferences,
    /// The HTML5 client settings (defaults when the relay sends none).
    #[serde(default)]
    pub client: crate::client_settings::ClientSettings,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Design {
    pub title: String,
    pub colors: Colors,
    pub logo_url: String,
    pub background_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Colors {
    pub accent: String,
    pub accent_text: String,
    pub page: String,
    pub card: String,
    pub text: String,
    pub muted: String,
}

/// Pre-filled fields and options of the page.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Preferences {
    pub username: String,
    pub password: String,
    pub domain: String,
    /// A language tag such as `fr-FR`; empty: the browser's layout.
    pub keyboard_layout: String,
    /// Folder in the browser's drive for uploaded files (`Inbox`, `Team/In`); empty: `Uploads`.
    pub upload_path: String,
    /// Folder in the browser's drive whose files are offered for download; empty: `Downloads`.
    pub download_path: String,
}

impl LoginLook {
    pub fn title(&self) -> &str {
        self.design.as_ref().map_or("Homedesk", |d| d.title.as_str())
    }

    pub fn logo_url(&self) -> &str {
        self.design.as_ref().map_or("/images/logo.svg", |d| d.logo_url.as_str())
    }
}

thread_local! {
    static CURRENT: RefCell<LoginLook> = RefCell::new(LoginLook::default());
}

/// The look loaded last (for pages after the login form, e.g. the second factor).
pub fn current() -> LoginLook {
    CURRENT.with(|current| current.borrow().clone())
}

/// The preferences of the page the user signed in on (keyboard layout, upload and download paths),
/// for the desktop's features.
pub fn preferences() -> Preferences {
    CURRENT.with(|current| current.borrow().preferences.clone())
}

/// The designed page this document is (`<meta name="homedesk-page">`, set by the relay), if any.
fn page_name() -> Option<String> {
    gloo::utils::document()
        .query_selector("meta[name=\"homedesk-page\"]")
        .ok()
        .flatten()
        .and_then(|meta| meta.get_attribute("content"))
        .filter(|name| !name.is_empty())
}

/// Fetches this page's look, applies its colours and background, and remembers its preferences.
/// The defaults when the relay cannot be asked (the stylesheet's own look stays).
pub async fn load() -> LoginLook {
    let url = match page_name() {
        Some(name) => format!("/api/portal?page={name}"),
        None => "/api/portal".to_owned(),
    };
    let look: LoginLook = match gloo::net::http::Request::get(&url).send().await {
        Ok(response) if response.ok() => response.json().await.unwrap_or_default(),
        _ => LoginLook::default(),
    };
    if look.page.is_some() {
        if let Some(design) = &look.design {
            apply(design);
        }
    }
    CURRENT.with(|current| *current.borrow_mut() = look.clone());
    crate::client_settings::remember(look.client.clone());
    look
}

/// Sets the stylesheet's custom properties on `<html>`.
fn apply(design: &Design) {
    if let Some(root) = gloo::utils::document()
        .document_element()
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        apply_to(&root, design);
    }
}

/// Sets the custom properties on `element`, for what is inside it (the whole page, or the console's
/// preview of a page being designed).
pub fn apply_to(element: &web_sys::HtmlElement, design: &Design) {
    let c = &design.colors;
    let page = match &design.background_url {
        // The picture covers the page; its colour shows while it loads.
        Some(url) => format!("url(\"{}\") center / cover no-repeat fixed, {}", css_url(url), c.page),
        None => c.page.clone(),
    };
    let style = element.style();
    for (name, value) in [
        ("--hd-accent", c.accent.as_str()),
        ("--hd-accent-text", c.accent_text.as_str()),
        ("--hd-card", c.card.as_str()),
        ("--hd-text", c.text.as_str()),
        ("--hd-muted", c.muted.as_str()),
        ("--hd-page", page.as_str()),
    ] {
        let _ = style.set_property(name, value);
    }
}

/// A same-origin path as it may stand inside `url("…")` (anything else is dropped).
fn css_url(url: &str) -> String {
    if url.starts_with('/') && url.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b)) {
        url.to_owned()
    } else {
        String::new()
    }
}
