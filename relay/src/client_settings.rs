//! The HTML5 client's settings (what the browser client shows and how it connects), stored as
//! `client.*` rows of the `settings` table and validated in one place for the CLI
//! (`relay client-settings`), the admin console's JSON API and the portal that serves them.
//!
//! Why one module: an administrator may change them from either side and the client applies them
//! blindly, so every value is checked here (clear sentences, nothing written when one is wrong)
//! and unknown or missing rows fall back to the documented defaults.

use crate::store::{Store, StoreError};
use serde::Serialize;
use std::fmt::Write as _;

/// Prefix of the settings rows.
const PREFIX: &str = "client.";
/// Largest image kept inline (`data:` URL) for the logo and the logon GIF.
const MAX_IMAGE_CHARS: usize = 1_000_000;
const MAX_MESSAGE_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ClientSettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who sees the menu bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MenuBar {
    /// Every device.
    All,
    /// Only phones and tablets (touch devices); desktop browsers get the whole window.
    Mobile,
}

/// The settings, with their defaults in `Default`. Field names are the JSON and CLI names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientSettings {
    pub menu_bar: MenuBar,
    /// The menu bar is see-through over the desktop (else solid).
    pub menu_transparent: bool,
    /// File transfer is offered (used by the file-transfer feature).
    pub file_transfer: bool,
    /// The menu offers Ctrl+Alt+Del on desktop browsers.
    pub ctrl_alt_del_desktop: bool,
    /// The menu offers Ctrl+Alt+Del on phones and tablets.
    pub ctrl_alt_del_mobile: bool,
    /// Colour depth of the session: 15, 16, 24 or 32 bits per pixel.
    pub color_depth: u8,
    /// Seconds the workstation has to show the desktop before the client gives up.
    pub connection_timeout_secs: u32,
    /// Warning messages (e.g. reconnecting, clipboard notices) are shown.
    pub show_warnings: bool,
    /// Sounds are played (used by the audio feature).
    pub sounds: bool,
    /// Background colour of the page behind the desktop, `#rrggbb`.
    pub background_color: String,
    /// Logo over the background while connecting: empty, a path on the portal (`/images/x.png`) or
    /// a `data:image/...;base64,` URL.
    pub background_logo: String,
    /// Text shown while signing in to the workstation (empty: the default texts).
    pub logon_message: String,
    /// Animated GIF shown while signing in: empty, a portal path or a `data:image/gif;base64,` URL.
    pub logon_gif: String,
    /// How long the logon GIF stays at least, in milliseconds.
    pub logon_gif_ms: u32,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            menu_bar: MenuBar::All,
            menu_transparent: false,
            file_transfer: true,
            ctrl_alt_del_desktop: true,
            ctrl_alt_del_mobile: true,
            color_depth: 32,
            connection_timeout_secs: 45,
            show_warnings: true,
            sounds: true,
            background_color: "#000000".to_owned(),
            background_logo: String::new(),
            logon_message: String::new(),
            logon_gif: String::new(),
            logon_gif_ms: 2000,
        }
    }
}

/// Every setting's name, in display order.
pub const NAMES: [&str; 14] = [
    "menu_bar",
    "menu_transparent",
    "file_transfer",
    "ctrl_alt_del_desktop",
    "ctrl_alt_del_mobile",
    "color_depth",
    "connection_timeout_secs",
    "show_warnings",
    "sounds",
    "background_color",
    "background_logo",
    "logon_message",
    "logon_gif",
    "logon_gif_ms",
];

fn invalid(message: impl Into<String>) -> ClientSettingsError {
    ClientSettingsError::Invalid(message.into())
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ClientSettingsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(invalid(format!("{name} must be on or off, not \"{value}\"."))),
    }
}

fn parse_number(name: &str, value: &str, min: u32, max: u32) -> Result<u32, ClientSettingsError> {
    match value.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(format!("{name} must be a whole number from {min} to {max}, not \"{value}\"."))),
    }
}

fn parse_color(value: &str) -> Result<String, ClientSettingsError> {
    let value = value.trim();
    let hex = value.strip_prefix('#').unwrap_or("");
    if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(invalid(format!("background_color must be a colour like #1e4e8c, not \"{value}\".")))
    }
}

/// An image reference the client may put in an `<img src>` under the portal's CSP.
fn parse_image(name: &str, value: &str, gif_only: bool) -> Result<String, ClientSettingsError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let kinds: &[&str] = if gif_only { &["gif"] } else { &["png", "gif", "jpeg", "svg+xml", "webp"] };
    if let Some(rest) = value.strip_prefix("data:image/") {
        let Some((kind, data)) = rest.split_once(";base64,") else {
            return Err(invalid(format!("{name}: a data URL must be base64 (data:image/TYPE;base64,...).")));
        };
        if !kinds.contains(&kind) {
            return Err(invalid(format!("{name}: images of type {kind} are not accepted (use {}).", kinds.join(", "))));
        }
        if value.len() > MAX_IMAGE_CHARS {
            return Err(invalid(format!("{name}: the image is too large (at most about 700 KB).")));
        }
        if data.is_empty() || !data.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) {
            return Err(invalid(format!("{name}: the data URL is not valid base64.")));
        }
        return Ok(value.to_owned());
    }
    let is_portal_path = value.starts_with('/')
        && !value.starts_with("//")
        && value.len() <= 512
        && !value.contains("..")
        && value.bytes().all(|b| b.is_ascii_graphic() && !b"\"'<>\\`".contains(&b));
    if is_portal_path {
        Ok(value.to_owned())
    } else {
        Err(invalid(format!(
            "{name} must be empty, a path on the portal such as /images/logo.png, or a data:image URL."
        )))
    }
}

fn parse_message(value: &str) -> Result<String, ClientSettingsError> {
    if value.chars().count() > MAX_MESSAGE_CHARS {
        return Err(invalid(format!("logon_message is too long (at most {MAX_MESSAGE_CHARS} characters).")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid("logon_message must not contain control characters."));
    }
    Ok(value.trim().to_owned())
}

impl ClientSettings {
    /// Sets one setting from its text form (as typed on the command line or stored).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ClientSettingsError> {
        let name = name.trim().replace('-', "_");
        match name.as_str() {
            "menu_bar" => {
                self.menu_bar = match value.trim().to_ascii_lowercase().as_str() {
                    "all" => MenuBar::All,
                    "mobile" => MenuBar::Mobile,
                    _ => return Err(invalid(format!("menu_bar must be all or mobile, not \"{value}\"."))),
                }
            }
            "menu_transparent" => self.menu_transparent = parse_bool(&name, value)?,
            "file_transfer" => self.file_transfer = parse_bool(&name, value)?,
            "ctrl_alt_del_desktop" => self.ctrl_alt_del_desktop = parse_bool(&name, value)?,
            "ctrl_alt_del_mobile" => self.ctrl_alt_del_mobile = parse_bool(&name, value)?,
            "color_depth" => {
                self.color_depth = match value.trim() {
                    "15" => 15,
                    "16" => 16,
                    "24" => 24,
                    "32" => 32,
                    _ => return Err(invalid(format!("color_depth must be 15, 16, 24 or 32, not \"{value}\"."))),
                }
            }
            "connection_timeout_secs" => self.connection_timeout_secs = parse_number(&name, value, 5, 600)?,
            "show_warnings" => self.show_warnings = parse_bool(&name, value)?,
            "sounds" => self.sounds = parse_bool(&name, value)?,
            "background_color" => self.background_color = parse_color(value)?,
            "background_logo" => self.background_logo = parse_image(&name, value, false)?,
            "logon_message" => self.logon_message = parse_message(value)?,
            "logon_gif" => self.logon_gif = parse_image(&name, value, true)?,
            "logon_gif_ms" => self.logon_gif_ms = parse_number(&name, value, 0, 60_000)?,
            _ => return Err(invalid(format!("Unknown client setting \"{name}\" (known: {}).", NAMES.join(", ")))),
        }
        Ok(())
    }

    /// The text form of one setting (what `set` accepts back).
    pub fn get(&self, name: &str) -> Option<String> {
        let on_off = |b: bool| if b { "on" } else { "off" }.to_owned();
        Some(match name {
            "menu_bar" => match self.menu_bar {
                MenuBar::All => "all".to_owned(),
                MenuBar::Mobile => "mobile".to_owned(),
            },
            "menu_transparent" => on_off(self.menu_transparent),
            "file_transfer" => on_off(self.file_transfer),
            "ctrl_alt_del_desktop" => on_off(self.ctrl_alt_del_desktop),
            "ctrl_alt_del_mobile" => on_off(self.ctrl_alt_del_mobile),
            "color_depth" => self.color_depth.to_string(),
            "connection_timeout_secs" => self.connection_timeout_secs.to_string(),
            "show_warnings" => on_off(self.show_warnings),
            "sounds" => on_off(self.sounds),
            "background_color" => self.background_color.clone(),
            "background_logo" => self.background_logo.clone(),
            "logon_message" => self.logon_message.clone(),
            "logon_gif" => self.logon_gif.clone(),
            "logon_gif_ms" => self.logon_gif_ms.to_string(),
            _ => return None,
        })
    }

    /// A table for the CLI (long images are abbreviated).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for name in NAMES {
            let mut value = self.get(name).unwrap_or_default();
            if value.len() > 60 {
                value = format!("{}… ({} characters)", &value[..40], value.len());
            }
            let _ = writeln!(out, "{name:<25} {value}");
        }
        out
    }
}

/// A JSON value as the text `ClientSettings::set` takes.
fn json_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(if *b { "on" } else { "off" }.to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The stored settings; rows that no longer validate (edited by hand) keep their default.
pub async fn load(store: &Store) -> Result<ClientSettings, ClientSettingsError> {
    let mut settings = ClientSettings::default();
    for (name, value) in store.settings_with_prefix(PREFIX).await? {
        let name = &name[PREFIX.len()..];
        if let Err(error) = settings.set(name, &value) {
            tracing::warn!(setting = name, %error, "stored client setting ignored");
        }
    }
    Ok(settings)
}

/// Applies `changes` (name, text) all or nothing and stores them; returns the new settings.
pub async fn update(store: &Store, changes: &[(String, String)]) -> Result<ClientSettings, ClientSettingsError> {
    if changes.is_empty() {
        return Err(invalid("Nothing to change: give at least one setting."));
    }
    let mut settings = load(store).await?;
    for (name, value) in changes {
        settings.set(name, value)?;
    }
    for (name, _) in changes {
        let name = name.trim().replace('-', "_");
        let value = settings.get(&name).unwrap_or_default();
        store.set_setting(&format!("{PREFIX}{name}"), &value).await?;
    }
    Ok(settings)
}

/// The changes in a JSON object (the console's request body).
pub fn changes_from_json(body: &serde_json::Value) -> Result<Vec<(String, String)>, ClientSettingsError> {
    let Some(object) = body.as_object() else {
        return Err(invalid("The request body must be a JSON object of settings."));
    };
    object
        .iter()
        .map(|(name, value)| {
            json_text(value)
                .map(|text| (name.clone(), text))
                .ok_or_else(|| invalid(format!("{name} must be a string, a number or true/false.")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_round_trips_through_its_text() {
        let mut settings = ClientSettings::default();
        for name in NAMES {
            let text = settings.get(name).unwrap();
            settings.set(name, &text).unwrap();
        }
        assert_eq!(settings, ClientSettings::default());
    }

    #[test]
    fn values_are_validated_with_clear_messages() {
        let mut s = ClientSettings::default();
        let error = |s: &mut ClientSettings, n: &str, v: &str| s.set(n, v).unwrap_err().to_string();
        assert!(error(&mut s, "color_depth", "8").contains("15, 16, 24 or 32"));
        assert!(error(&mut s, "connection_timeout_secs", "2").contains("from 5 to 600"));
        assert!(error(&mut s, "background_color", "red").contains("#1e4e8c"));
        assert!(error(&mut s, "menu_bar", "never").contains("all or mobile"));
        assert!(error(&mut s, "sounds", "maybe").contains("on or off"));
        assert!(error(&mut s, "logon_gif", "data:image/png;base64,AAAA").contains("type png"));
        assert!(error(&mut s, "background_logo", "https://evil.example/x.png").contains("path on the portal"));
        assert!(error(&mut s, "background_logo", "//evil.example/x.png").contains("path on the portal"));
        assert!(error(&mut s, "background_logo", "/a\"onload=x").contains("path on the portal"));
        assert!(error(&mut s, "logon_message", &"x".repeat(501)).contains("too long"));
        assert!(error(&mut s, "colour", "1").contains("Unknown client setting"));
        assert_eq!(s, ClientSettings::default(), "nothing changed by refused values");
        s.set("background-color", "#1E4E8C").unwrap();
        s.set("menu_bar", "Mobile").unwrap();
        s.set("logon_gif", "data:image/gif;base64,R0lGODlhAQABAAAAACw=").unwrap();
        s.set("background_logo", "/images/logo.png").unwrap();
        assert_eq!((s.background_color.as_str(), s.menu_bar), ("#1e4e8c", MenuBar::Mobile));
    }

    #[test]
    fn json_changes() {
        let body = serde_json::json!({"sounds": false, "logon_gif_ms": 1500, "background_color": "#102030"});
        let mut changes = changes_from_json(&body).unwrap();
        changes.sort();
        assert_eq!(changes[2], ("sounds".to_owned(), "off".to_owned()));
        assert_eq!(changes[1], ("logon_gif_ms".to_owned(), "1500".to_owned()));
        assert!(changes_from_json(&serde_json::json!({"sounds": null})).is_err());
        assert!(changes_from_json(&serde_json::json!([1])).is_err());
    }
}
