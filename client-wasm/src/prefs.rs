//! The user's display and keyboard preferences: keyboard layout, the touch pointer's size and
//! transparency, the key bar's transparency.
//!
//! Kept in the browser's local storage for now; `load`/`save` are the one place to switch to the
//! portal's per-user preferences once the relay stores them. Anything missing or unreadable is the default.

use homedesk_client_core::KeyboardLayout;

/// How big the pointer drawn where a finger last touched is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PointerSize {
    None,
    Small,
    Medium,
    Large,
}

impl PointerSize {
    pub const ALL: [PointerSize; 4] = [PointerSize::Small, PointerSize::Medium, PointerSize::Large, PointerSize::None];

    pub fn name(self) -> &'static str {
        match self {
            PointerSize::None => "none",
            PointerSize::Small => "small",
            PointerSize::Medium => "medium",
            PointerSize::Large => "large",
        }
    }

    fn from_name(name: &str) -> Option<PointerSize> {
        PointerSize::ALL.into_iter().find(|size| size.name() == name)
    }

    /// Edge of the pointer in CSS pixels (0 = not drawn).
    pub fn pixels(self) -> u32 {
        match self {
            PointerSize::None => 0,
            PointerSize::Small => 14,
            PointerSize::Medium => 22,
            PointerSize::Large => 34,
        }
    }
}

#[derive(Clone, PartialEq, Debug)]
pub struct Prefs {
    /// Windows keyboard layout id, sent at connect.
    pub keyboard_layout: u32,
    pub pointer_size: PointerSize,
    /// Opacity in percent (20..=100).
    pub pointer_opacity: u32,
    pub bar_opacity: u32,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs { keyboard_layout: 0x409, pointer_size: PointerSize::Medium, pointer_opacity: 80, bar_opacity: 90 }
    }
}

/// The opacity choices offered, in percent.
pub const OPACITIES: [u32; 4] = [100, 80, 60, 40];

const KEY_LAYOUT: &str = "homedesk.keyboard_layout";
const KEY_POINTER_SIZE: &str = "homedesk.pointer_size";
const KEY_POINTER_OPACITY: &str = "homedesk.pointer_opacity";
const KEY_BAR_OPACITY: &str = "homedesk.bar_opacity";

fn storage() -> Option<web_sys::Storage> {
    gloo::utils::window().local_storage().ok().flatten()
}

fn read(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

fn opacity(text: Option<String>, default: u32) -> u32 {
    text.and_then(|t| t.parse::<u32>().ok()).map(|v| v.clamp(20, 100)).unwrap_or(default)
}

pub fn load() -> Prefs {
    let defaults = Prefs::default();
    let page_layout = crate::branding::preferences().keyboard_layout;
    let browser_language = gloo::utils::window().navigator().language().unwrap_or_default();
    Prefs {
        keyboard_layout: layout_for(read(KEY_LAYOUT).as_deref(), &page_layout, &browser_language),
        pointer_size: read(KEY_POINTER_SIZE)
            .as_deref()
            .and_then(PointerSize::from_name)
            .unwrap_or(defaults.pointer_size),
        pointer_opacity: opacity(read(KEY_POINTER_OPACITY), defaults.pointer_opacity),
        bar_opacity: opacity(read(KEY_BAR_OPACITY), defaults.bar_opacity),
    }
}

/// Saves the preferences; a browser refusing storage (private mode) keeps them for this page only.
pub fn save(prefs: &Prefs) {
    let Some(storage) = storage() else { return };
    let _ = storage.set_item(KEY_LAYOUT, &prefs.keyboard_layout.to_string());
    let _ = storage.set_item(KEY_POINTER_SIZE, prefs.pointer_size.name());
    let _ = storage.set_item(KEY_POINTER_OPACITY, &prefs.pointer_opacity.to_string());
    let _ = storage.set_item(KEY_BAR_OPACITY, &prefs.bar_opacity.to_string());
}

/// The keyboard layout of a session: the user's own choice on this device, else the portal page's
/// preference, else the browser's language, else US English (each only when it names an offered layout).
pub fn layout_for(chosen: Option<&str>, page: &str, browser_language: &str) -> u32 {
    chosen
        .and_then(|id| id.parse::<u32>().ok())
        .map(|id| KeyboardLayout::by_id(id).id)
        .or_else(|| KeyboardLayout::by_tag(page).map(|l| l.id))
        .or_else(|| KeyboardLayout::by_tag(browser_language).map(|l| l.id))
        .unwrap_or(Prefs::default().keyboard_layout)
}

#[cfg(test)]
mod tests {
    use super::layout_for;

    #[test]
    fn the_users_choice_wins_then_the_page_then_the_browser() {
        assert_eq!(layout_for(Some("2057"), "de-DE", "de-DE"), 0x0809, "chosen on the key bar");
        assert_eq!(layout_for(None, "de-DE", "en-US"), 0x0407, "the page's preference");
        assert_eq!(layout_for(None, "", "en-GB"), 0x0809, "the browser's language");
        assert_eq!(layout_for(None, "fr-FR", "fr-FR"), 0x0409, "no French layout offered: US");
        assert_eq!(layout_for(Some("garbage"), "", "de"), 0x0407);
    }
}
