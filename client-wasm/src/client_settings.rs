//! The HTML5 client settings the relay serves in `/api/portal` (`client`, docs/contracts.md): what
//! the desktop page shows and how it connects. Fetched once per page load and kept, so every page
//! (and other features: file transfer, sounds) reads the same values through [`current`].

use serde::Deserialize;
use std::cell::RefCell;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClientSettings {
    /// "all" or "mobile" (only phones and tablets show the menu bar).
    pub menu_bar: String,
    pub menu_transparent: bool,
    /// Whether file transfer is offered (read by the file-transfer feature).
    pub file_transfer: bool,
    pub ctrl_alt_del_desktop: bool,
    pub ctrl_alt_del_mobile: bool,
    pub color_depth: u8,
    pub connection_timeout_secs: u32,
    pub show_warnings: bool,
    /// Whether sounds are played (read by the audio feature).
    pub sounds: bool,
    pub background_color: String,
    pub background_logo: String,
    pub logon_message: String,
    pub logon_gif: String,
    pub logon_gif_ms: u32,
}

impl Default for ClientSettings {
    /// The relay's defaults (relay/src/client_settings.rs), used when the portal cannot be asked.
    fn default() -> Self {
        ClientSettings {
            menu_bar: "all".to_owned(),
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

impl ClientSettings {
    /// Whether this device shows the menu bar.
    pub fn shows_menu(&self, mobile: bool) -> bool {
        self.menu_bar != "mobile" || mobile
    }

    /// Whether the menu offers Ctrl+Alt+Del on this device.
    pub fn offers_ctrl_alt_del(&self, mobile: bool) -> bool {
        if mobile {
            self.ctrl_alt_del_mobile
        } else {
            self.ctrl_alt_del_desktop
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<ClientSettings>> = const { RefCell::new(None) };
}

/// Remembers the settings the portal sent.
pub fn remember(settings: ClientSettings) {
    CURRENT.with(|current| *current.borrow_mut() = Some(settings));
}

/// The settings of this page load (the defaults until the portal answered).
pub fn current() -> ClientSettings {
    CURRENT.with(|current| current.borrow().clone()).unwrap_or_default()
}

/// The settings, asking the portal when this page load has not yet.
pub async fn load() -> ClientSettings {
    if let Some(settings) = CURRENT.with(|current| current.borrow().clone()) {
        return settings;
    }
    crate::branding::load().await.client
}

/// A phone or tablet: a touch screen is the main pointer.
pub fn is_mobile() -> bool {
    gloo::utils::window()
        .match_media("(pointer: coarse)")
        .ok()
        .flatten()
        .is_some_and(|query| query.matches())
}
