//! DOM `KeyboardEvent.code` → PS/2 scan code set 1, the key identity RDP transmits.
//!
//! `code` names the physical key regardless of the local layout, and so does a scan code, so the
//! workstation applies its own keyboard layout (as if the keyboard were plugged into it). Codes not
//! listed are ignored by the caller rather than treated as errors: browsers add new ones over time.

use ironrdp_input::Scancode;

/// What a physical key turns into on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMapping {
    /// An ordinary key: one scan code, `extended` for the E0-prefixed keys.
    Scancode(Scancode),
    /// Pause/Break has no break code of its own; RDP sends Ctrl with the E1 prefix, then NumLock.
    Pause,
}

/// `(DOM code, extended (E0 prefix), scan code)` for every mapped key.
const TABLE: &[(&str, bool, u8)] = &[
    // Main block, top row.
    ("Escape", false, 0x01),
    ("Digit1", false, 0x02),
    ("Digit2", false, 0x03),
    ("Digit3", false, 0x04),
    ("Digit4", false, 0x05),
    ("Digit5", false, 0x06),
    ("Digit6", false, 0x07),
    ("Digit7", false, 0x08),
    ("Digit8", false, 0x09),
    ("Digit9", false, 0x0A),
    ("Digit0", false, 0x0B),
    ("Minus", false, 0x0C),
    ("Equal", false, 0x0D),
    ("Backspace", false, 0x0E),
    ("Tab", false, 0x0F),
    ("KeyQ", false, 0x10),
    ("KeyW", false, 0x11),
    ("KeyE", false, 0x12),
    ("KeyR", false, 0x13),
    ("KeyT", false, 0x14),
    ("KeyY", false, 0x15),
    ("KeyU", false, 0x16),
    ("KeyI", false, 0x17),
    ("KeyO", false, 0x18),
    ("KeyP", false, 0x19),
    ("BracketLeft", false, 0x1A),
    ("BracketRight", false, 0x1B),
    ("Enter", false, 0x1C),
    ("ControlLeft", false, 0x1D),
    ("KeyA", false, 0x1E),
    ("KeyS", false, 0x1F),
    ("KeyD", false, 0x20),
    ("KeyF", false, 0x21),
    ("KeyG", false, 0x22),
    ("KeyH", false, 0x23),
    ("KeyJ", false, 0x24),
    ("KeyK", false, 0x25),
    ("KeyL", false, 0x26),
    ("Semicolon", false, 0x27),
    ("Quote", false, 0x28),
    ("Backquote", false, 0x29),
    ("ShiftLeft", false, 0x2A),
    ("Backslash", false, 0x2B),
    ("KeyZ", false, 0x2C),
    ("KeyX", false, 0x2D),
    ("KeyC", false, 0x2E),
    ("KeyV", false, 0x2F),
    ("KeyB", false, 0x30),
    ("KeyN", false, 0x31),
    ("KeyM", false, 0x32),
    ("Comma", false, 0x33),
    ("Period", false, 0x34),
    ("Slash", false, 0x35),
    ("ShiftRight", false, 0x36),
    ("NumpadMultiply", false, 0x37),
    ("AltLeft", false, 0x38),
    ("Space", false, 0x39),
    ("CapsLock", false, 0x3A),
    // Function keys.
    ("F1", false, 0x3B),
    ("F2", false, 0x3C),
    ("F3", false, 0x3D),
    ("F4", false, 0x3E),
    ("F5", false, 0x3F),
    ("F6", false, 0x40),
    ("F7", false, 0x41),
    ("F8", false, 0x42),
    ("F9", false, 0x43),
    ("F10", false, 0x44),
    ("F11", false, 0x57),
    ("F12", false, 0x58),
    ("F13", false, 0x64),
    ("F14", false, 0x65),
    ("F15", false, 0x66),
    ("F16", false, 0x67),
    ("F17", false, 0x68),
    ("F18", false, 0x69),
    ("F19", false, 0x6A),
    ("F20", false, 0x6B),
    ("F21", false, 0x6C),
    ("F22", false, 0x6D),
    ("F23", false, 0x6E),
    ("F24", false, 0x76),
    // Locks and numeric keypad.
    ("NumLock", false, 0x45),
    ("ScrollLock", false, 0x46),
    ("Numpad7", false, 0x47),
    ("Numpad8", false, 0x48),
    ("Numpad9", false, 0x49),
    ("NumpadSubtract", false, 0x4A),
    ("Numpad4", false, 0x4B),
    ("Numpad5", false, 0x4C),
    ("Numpad6", false, 0x4D),
    ("NumpadAdd", false, 0x4E),
    ("Numpad1", false, 0x4F),
    ("Numpad2", false, 0x50),
    ("Numpad3", false, 0x51),
    ("Numpad0", false, 0x52),
    ("NumpadDecimal", false, 0x53),
    ("NumpadEqual", false, 0x59),
    ("NumpadComma", false, 0x7E),
    ("NumpadEnter", true, 0x1C),
    ("NumpadDivide", true, 0x35),
    // International keys (ISO 105-key "<>" key, Japanese and Korean keyboards).
    ("IntlBackslash", false, 0x56),
    ("IntlRo", false, 0x73),
    ("IntlYen", false, 0x7D),
    ("KanaMode", false, 0x70),
    ("Convert", false, 0x79),
    ("NonConvert", false, 0x7B),
    ("Lang1", false, 0x72),
    ("Lang2", false, 0x71),
    // Right-hand modifiers, Windows keys and the menu key (E0 prefixed).
    ("ControlRight", true, 0x1D),
    ("AltRight", true, 0x38),
    ("MetaLeft", true, 0x5B),
    ("MetaRight", true, 0x5C),
    ("OSLeft", true, 0x5B), // Firefox < 118 name for MetaLeft
    ("OSRight", true, 0x5C),
    ("ContextMenu", true, 0x5D),
    // Navigation and editing block.
    ("PrintScreen", true, 0x37),
    ("Insert", true, 0x52),
    ("Delete", true, 0x53),
    ("Home", true, 0x47),
    ("End", true, 0x4F),
    ("PageUp", true, 0x49),
    ("PageDown", true, 0x51),
    ("ArrowUp", true, 0x48),
    ("ArrowLeft", true, 0x4B),
    ("ArrowRight", true, 0x4D),
    ("ArrowDown", true, 0x50),
    // Media and browser keys.
    ("AudioVolumeMute", true, 0x20),
    ("AudioVolumeDown", true, 0x2E),
    ("AudioVolumeUp", true, 0x30),
    ("VolumeMute", true, 0x20), // older Firefox names
    ("VolumeDown", true, 0x2E),
    ("VolumeUp", true, 0x30),
    ("MediaTrackPrevious", true, 0x10),
    ("MediaTrackNext", true, 0x19),
    ("MediaPlayPause", true, 0x22),
    ("MediaStop", true, 0x24),
    ("MediaSelect", true, 0x6D),
    ("LaunchMail", true, 0x6C),
    ("LaunchApp1", true, 0x6B),
    ("LaunchApp2", true, 0x21),
    ("BrowserSearch", true, 0x65),
    ("BrowserFavorites", true, 0x66),
    ("BrowserRefresh", true, 0x67),
    ("BrowserStop", true, 0x68),
    ("BrowserForward", true, 0x69),
    ("BrowserBack", true, 0x6A),
    ("BrowserHome", true, 0x32),
    ("Power", true, 0x5E),
    ("Sleep", true, 0x5F),
    ("WakeUp", true, 0x63),
];

/// The scan code for a DOM `code`, or `None` for keys this table does not know (ignore those).
pub fn lookup(code: &str) -> Option<KeyMapping> {
    if code == "Pause" {
        return Some(KeyMapping::Pause);
    }
    TABLE
        .iter()
        .find(|(name, _, _)| *name == code)
        .map(|&(_, extended, scancode)| KeyMapping::Scancode(Scancode::from_u8(extended, scancode)))
}

/// The input for a DOM key event: the key by its `code` when it has a scan code; else, for a key-down
/// whose `key` is one character (a layout or device the table does not know, `code` empty or
/// "Unidentified"), that character as text; else nothing.
pub fn key_input(code: &str, key: &str, pressed: bool) -> Option<crate::Input> {
    if lookup(code).is_some() {
        return Some(crate::Input::Key { code: code.to_owned(), pressed });
    }
    let mut chars = key.chars();
    match (chars.next(), chars.next()) {
        (Some(ch), None) if pressed && !ch.is_control() => Some(crate::Input::Text(ch.to_string())),
        _ => None,
    }
}

/// The scan code of a key that has one (every key but Pause).
pub(crate) fn scancode(code: &str) -> Option<Scancode> {
    match lookup(code)? {
        KeyMapping::Scancode(scancode) => Some(scancode),
        KeyMapping::Pause => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn scancode(code: &str) -> (bool, u8) {
        match lookup(code) {
            Some(KeyMapping::Scancode(sc)) => sc.as_u8(),
            other => panic!("{code} mapped to {other:?}"),
        }
    }

    #[test]
    fn well_known_keys() {
        assert_eq!(scancode("KeyA"), (false, 0x1E));
        assert_eq!(scancode("KeyZ"), (false, 0x2C));
        assert_eq!(scancode("Digit0"), (false, 0x0B));
        assert_eq!(scancode("Enter"), (false, 0x1C));
        assert_eq!(scancode("NumpadEnter"), (true, 0x1C));
        assert_eq!(scancode("ShiftLeft"), (false, 0x2A));
        assert_eq!(scancode("ShiftRight"), (false, 0x36));
        assert_eq!(scancode("ControlRight"), (true, 0x1D));
        assert_eq!(scancode("AltRight"), (true, 0x38));
        assert_eq!(scancode("MetaLeft"), (true, 0x5B));
        assert_eq!(scancode("MetaRight"), (true, 0x5C));
        assert_eq!(scancode("ContextMenu"), (true, 0x5D));
        assert_eq!(scancode("ArrowUp"), (true, 0x48));
        assert_eq!(scancode("Delete"), (true, 0x53));
        assert_eq!(scancode("NumpadDecimal"), (false, 0x53));
        assert_eq!(scancode("Numpad1"), (false, 0x4F));
        assert_eq!(scancode("NumpadDivide"), (true, 0x35));
        assert_eq!(scancode("IntlBackslash"), (false, 0x56));
        assert_eq!(scancode("F5"), (false, 0x3F));
        assert_eq!(scancode("F12"), (false, 0x58));
        assert_eq!(scancode("F24"), (false, 0x76));
        assert_eq!(scancode("AudioVolumeUp"), (true, 0x30));
        assert_eq!(lookup("Pause"), Some(KeyMapping::Pause));
    }

    #[test]
    fn whole_standard_layout_is_covered() {
        let mut codes: Vec<String> = Vec::new();
        codes.extend((b'A'..=b'Z').map(|c| format!("Key{}", c as char)));
        codes.extend((0..=9).map(|d| format!("Digit{d}")));
        codes.extend((0..=9).map(|d| format!("Numpad{d}")));
        codes.extend((1..=24).map(|n| format!("F{n}")));
        for name in [
            "Escape", "Minus", "Equal", "Backspace", "Tab", "BracketLeft", "BracketRight", "Enter", "Semicolon",
            "Quote", "Backquote", "Backslash", "Comma", "Period", "Slash", "Space", "CapsLock", "ShiftLeft",
            "ShiftRight", "ControlLeft", "ControlRight", "AltLeft", "AltRight", "MetaLeft", "MetaRight",
            "ContextMenu", "NumLock", "ScrollLock", "PrintScreen", "Pause", "Insert", "Delete", "Home", "End",
            "PageUp", "PageDown", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "NumpadAdd", "NumpadSubtract",
            "NumpadMultiply", "NumpadDivide", "NumpadDecimal", "NumpadEnter", "IntlBackslash", "AudioVolumeMute",
            "AudioVolumeUp", "AudioVolumeDown", "MediaPlayPause", "MediaTrackNext", "MediaTrackPrevious",
            "MediaStop",
        ] {
            codes.push(name.to_owned());
        }
        for code in &codes {
            assert!(lookup(code).is_some(), "{code} is not mapped");
        }
    }

    #[test]
    fn no_two_codes_share_a_scancode_except_known_aliases() {
        let aliases = ["OSLeft", "OSRight", "VolumeMute", "VolumeDown", "VolumeUp"];
        let mut seen = HashSet::new();
        for (name, extended, code) in TABLE {
            if aliases.contains(name) {
                continue;
            }
            assert!(seen.insert((*extended, *code)), "{name} duplicates scan code {extended}/{code:#04x}");
        }
        let mut names = HashSet::new();
        for (name, _, _) in TABLE {
            assert!(names.insert(*name), "{name} listed twice");
        }
    }

    #[test]
    fn unknown_codes_are_ignored() {
        assert_eq!(lookup(""), None);
        assert_eq!(lookup("Unidentified"), None);
        assert_eq!(lookup("Fn"), None);
        assert_eq!(lookup("keya"), None);
    }

    #[test]
    fn keys_without_a_usable_code_send_their_character() {
        use crate::Input;
        assert_eq!(key_input("KeyA", "q", true), Some(Input::Key { code: "KeyA".to_owned(), pressed: true }));
        assert_eq!(key_input("", "é", true), Some(Input::Text("é".to_owned())));
        assert_eq!(key_input("Unidentified", "ß", true), Some(Input::Text("ß".to_owned())));
        assert_eq!(key_input("", "é", false), None, "the release of a character sends nothing");
        assert_eq!(key_input("", "Unidentified", true), None);
        assert_eq!(key_input("", "Process", true), None);
        assert_eq!(key_input("", "\u{8}", true), None);
    }
}
