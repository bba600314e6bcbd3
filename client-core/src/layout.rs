//! Keyboard layouts: which key (and Shift/AltGr) types a character, so text from a soft keyboard or
//! an IME goes to the workstation as ordinary key presses in the layout the session uses.
//!
//! Scan codes are positions, not characters: the workstation turns them into characters with the layout
//! announced at connect (`ConnectParams::keyboard_layout`). Text therefore has to be typed with the keys
//! of *that* layout. Characters a layout has no key for (or only a dead key) go as Unicode keyboard events
//! instead (`input.rs`).

/// A layout the user can choose: the Windows keyboard layout id sent at connect and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyboardLayout {
    pub id: u32,
    pub name: &'static str,
    keys: &'static [KeyChars],
}

/// One key: DOM `code` and the characters it types plain, with Shift, and with AltGr (`'\0'` = none).
type KeyChars = (&'static str, char, char, char);

/// Modifiers a character needs on top of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Plain,
    Shift,
    AltGr,
}

/// Everything the layouts share: letters (QWERTY positions), digits, space.
const LETTERS: &str = "abcdefghijklmnopqrstuvwxyz";

const US: &[KeyChars] = &[
    ("Backquote", '`', '~', '\0'),
    ("Digit1", '1', '!', '\0'),
    ("Digit2", '2', '@', '\0'),
    ("Digit3", '3', '#', '\0'),
    ("Digit4", '4', '$', '\0'),
    ("Digit5", '5', '%', '\0'),
    ("Digit6", '6', '^', '\0'),
    ("Digit7", '7', '&', '\0'),
    ("Digit8", '8', '*', '\0'),
    ("Digit9", '9', '(', '\0'),
    ("Digit0", '0', ')', '\0'),
    ("Minus", '-', '_', '\0'),
    ("Equal", '=', '+', '\0'),
    ("BracketLeft", '[', '{', '\0'),
    ("BracketRight", ']', '}', '\0'),
    ("Backslash", '\\', '|', '\0'),
    ("Semicolon", ';', ':', '\0'),
    ("Quote", '\'', '"', '\0'),
    ("Comma", ',', '<', '\0'),
    ("Period", '.', '>', '\0'),
    ("Slash", '/', '?', '\0'),
];

const UK: &[KeyChars] = &[
    ("Backquote", '`', '¬', '¦'),
    ("Digit1", '1', '!', '\0'),
    ("Digit2", '2', '"', '\0'),
    ("Digit3", '3', '£', '\0'),
    ("Digit4", '4', '$', '€'),
    ("Digit5", '5', '%', '\0'),
    ("Digit6", '6', '^', '\0'),
    ("Digit7", '7', '&', '\0'),
    ("Digit8", '8', '*', '\0'),
    ("Digit9", '9', '(', '\0'),
    ("Digit0", '0', ')', '\0'),
    ("Minus", '-', '_', '\0'),
    ("Equal", '=', '+', '\0'),
    ("BracketLeft", '[', '{', '\0'),
    ("BracketRight", ']', '}', '\0'),
    ("Backslash", '#', '~', '\0'),
    ("IntlBackslash", '\\', '|', '\0'),
    ("Semicolon", ';', ':', '\0'),
    ("Quote", '\'', '@', '\0'),
    ("Comma", ',', '<', '\0'),
    ("Period", '.', '>', '\0'),
    ("Slash", '/', '?', '\0'),
];

/// German (QWERTZ). `^`, `´` and `` ` `` are dead keys there: left out, so they go as Unicode.
const DE: &[KeyChars] = &[
    ("Backquote", '\0', '°', '\0'),
    ("Digit1", '1', '!', '\0'),
    ("Digit2", '2', '"', '²'),
    ("Digit3", '3', '§', '³'),
    ("Digit4", '4', '$', '\0'),
    ("Digit5", '5', '%', '\0'),
    ("Digit6", '6', '&', '\0'),
    ("Digit7", '7', '/', '{'),
    ("Digit8", '8', '(', '['),
    ("Digit9", '9', ')', ']'),
    ("Digit0", '0', '=', '}'),
    ("Minus", 'ß', '?', '\\'),
    ("KeyQ", 'q', 'Q', '@'),
    ("KeyE", 'e', 'E', '€'),
    ("KeyY", 'z', 'Z', '\0'),
    ("KeyZ", 'y', 'Y', '\0'),
    ("KeyM", 'm', 'M', 'µ'),
    ("BracketLeft", 'ü', 'Ü', '\0'),
    ("BracketRight", '+', '*', '~'),
    ("Semicolon", 'ö', 'Ö', '\0'),
    ("Quote", 'ä', 'Ä', '\0'),
    ("Backslash", '#', '\'', '\0'),
    ("IntlBackslash", '<', '>', '|'),
    ("Comma", ',', ';', '\0'),
    ("Period", '.', ':', '\0'),
    ("Slash", '-', '_', '\0'),
];

/// The layouts offered, the first being the default.
pub const LAYOUTS: &[KeyboardLayout] = &[
    KeyboardLayout { id: 0x0409, name: "English (US)", keys: US },
    KeyboardLayout { id: 0x0809, name: "English (UK)", keys: UK },
    KeyboardLayout { id: 0x0407, name: "Deutsch", keys: DE },
];

impl KeyboardLayout {
    /// The layout with this Windows id, or US English for an unknown one.
    pub fn by_id(id: u32) -> KeyboardLayout {
        LAYOUTS.iter().copied().find(|layout| layout.id == id).unwrap_or(LAYOUTS[0])
    }

    /// The offered layout a language tag names (a portal page's preference, the browser's language),
    /// case-insensitively; `None` for a tag of a layout not offered.
    pub fn by_tag(tag: &str) -> Option<KeyboardLayout> {
        let id = match tag.trim().to_ascii_lowercase().as_str() {
            "en" | "en-us" => 0x0409,
            "en-gb" => 0x0809,
            "de" | "de-de" | "de-at" => 0x0407,
            _ => return None,
        };
        Some(Self::by_id(id))
    }

    /// The key (DOM `code`) and level that type `ch`, or `None` when this layout has no live key for it.
    pub fn key_for(&self, ch: char) -> Option<(&'static str, Level)> {
        if ch == '\0' {
            return None;
        }
        // Layout-specific keys win (German Y/Z, AltGr letters).
        for &(code, plain, shifted, altgr) in self.keys {
            if ch == plain {
                return Some((code, Level::Plain));
            }
            if ch == shifted {
                return Some((code, Level::Shift));
            }
            if ch == altgr {
                return Some((code, Level::AltGr));
            }
        }
        if ch == ' ' {
            return Some(("Space", Level::Plain));
        }
        let lower = ch.to_ascii_lowercase();
        let index = LETTERS.find(lower)?;
        let code = LETTER_CODES[index];
        if self.keys.iter().any(|&(overridden, ..)| overridden == code) {
            // This position types something else here (e.g. German KeyZ is "y"), and `ch` was not found above.
            return None;
        }
        Some((code, if ch.is_ascii_uppercase() { Level::Shift } else { Level::Plain }))
    }
}

const LETTER_CODES: [&str; 26] = [
    "KeyA", "KeyB", "KeyC", "KeyD", "KeyE", "KeyF", "KeyG", "KeyH", "KeyI", "KeyJ", "KeyK", "KeyL", "KeyM",
    "KeyN", "KeyO", "KeyP", "KeyQ", "KeyR", "KeyS", "KeyT", "KeyU", "KeyV", "KeyW", "KeyX", "KeyY", "KeyZ",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keymap;

    #[test]
    fn language_tags_name_the_offered_layouts() {
        assert_eq!(KeyboardLayout::by_tag("de-DE").map(|l| l.id), Some(0x0407));
        assert_eq!(KeyboardLayout::by_tag("EN-gb").map(|l| l.id), Some(0x0809));
        assert_eq!(KeyboardLayout::by_tag("en").map(|l| l.id), Some(0x0409));
        for other in ["", "fr-FR", "de-CH", "en-US-x-evil", "english"] {
            assert_eq!(KeyboardLayout::by_tag(other).map(|l| l.id), None, "{other}");
        }
    }

    #[test]
    fn us_types_ascii_with_shift_where_needed() {
        let us = KeyboardLayout::by_id(0x409);
        assert_eq!(us.key_for('a'), Some(("KeyA", Level::Plain)));
        assert_eq!(us.key_for('Z'), Some(("KeyZ", Level::Shift)));
        assert_eq!(us.key_for('@'), Some(("Digit2", Level::Shift)));
        assert_eq!(us.key_for(' '), Some(("Space", Level::Plain)));
        assert_eq!(us.key_for('"'), Some(("Quote", Level::Shift)));
        assert_eq!(us.key_for('é'), None);
        assert_eq!(us.key_for('€'), None);
        // Every printable ASCII character has a key on US English.
        for ch in ' '..='~' {
            assert!(us.key_for(ch).is_some(), "{ch:?} has no key");
        }
    }

    #[test]
    fn german_swaps_y_and_z_and_uses_altgr() {
        let de = KeyboardLayout::by_id(0x407);
        assert_eq!(de.key_for('z'), Some(("KeyY", Level::Plain)));
        assert_eq!(de.key_for('Y'), Some(("KeyZ", Level::Shift)));
        assert_eq!(de.key_for('ä'), Some(("Quote", Level::Plain)));
        assert_eq!(de.key_for('@'), Some(("KeyQ", Level::AltGr)));
        assert_eq!(de.key_for('€'), Some(("KeyE", Level::AltGr)));
        assert_eq!(de.key_for('\\'), Some(("Minus", Level::AltGr)));
        assert_eq!(de.key_for('q'), Some(("KeyQ", Level::Plain)));
        // Dead keys are not typed as keys.
        assert_eq!(de.key_for('^'), None);
        assert_eq!(de.key_for('`'), None);
    }

    #[test]
    fn uk_differs_from_us_where_it_should() {
        let uk = KeyboardLayout::by_id(0x809);
        assert_eq!(uk.key_for('£'), Some(("Digit3", Level::Shift)));
        assert_eq!(uk.key_for('@'), Some(("Quote", Level::Shift)));
        assert_eq!(uk.key_for('#'), Some(("Backslash", Level::Plain)));
        assert_eq!(uk.key_for('\\'), Some(("IntlBackslash", Level::Plain)));
    }

    #[test]
    fn unknown_ids_fall_back_to_us() {
        assert_eq!(KeyboardLayout::by_id(0xDEAD).id, 0x409);
    }

    #[test]
    fn every_key_of_every_layout_has_a_scancode_and_no_character_is_listed_twice() {
        for layout in LAYOUTS {
            let mut seen = std::collections::HashSet::new();
            for &(code, plain, shifted, altgr) in layout.keys {
                assert!(keymap::lookup(code).is_some(), "{}: {code} has no scan code", layout.name);
                for ch in [plain, shifted, altgr].into_iter().filter(|&c| c != '\0') {
                    assert!(seen.insert(ch), "{}: {ch:?} listed twice", layout.name);
                }
            }
            for code in LETTER_CODES {
                assert!(keymap::lookup(code).is_some());
            }
        }
    }
}
