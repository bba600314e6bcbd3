//! The soft keyboard's hidden text field, as data: what the user typed is derived by comparing the
//! field's value before and after every `input` event, so autocorrect, swipe typing, predictions and
//! IME composition (which rewrite text instead of sending keys) reach the workstation.
//!
//! Phones send no usable key events for text (Android: `key` "Unidentified", keyCode 229), so the page
//! keeps a hidden `<textarea>` focused and reads its value. The field starts with a sentinel of
//! filler characters, so a Backspace on an "empty" field still removes something and is seen. After an
//! edit the difference is: the characters after the common prefix of old and new value are erased
//! (Backspace each) and the new value's rest is typed. While an IME composes, nothing is sent; the
//! composed text goes when the composition ends. The field is reset to the sentinel when it lost the
//! sentinel, or after a word ended and it grew long (autocorrect needs the current word kept).

use crate::Input;

/// What the field starts with (and is reset to): filler a Backspace can eat, then a space, so the first
/// typed word is a word of its own for autocorrect and capitalisation.
pub const SENTINEL: &str = "________________ ";

/// Characters typed after the sentinel before a reset at the next word boundary.
const RESET_AFTER: usize = 64;

/// An edit of the field: erase `backspaces` characters, then type `text`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextEdit {
    pub backspaces: usize,
    pub text: String,
}

impl TextEdit {
    /// The edit between two values of the field (by characters, not bytes).
    pub fn between(old: &str, new: &str) -> TextEdit {
        let common = old.chars().zip(new.chars()).take_while(|(a, b)| a == b).count();
        TextEdit { backspaces: old.chars().count() - common, text: new.chars().skip(common).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.backspaces == 0 && self.text.is_empty()
    }

    /// The session input: Backspace presses and releases, then the text.
    pub fn inputs(&self) -> Vec<Input> {
        let mut inputs = Vec::with_capacity(self.backspaces * 2 + 1);
        for _ in 0..self.backspaces {
            inputs.push(Input::Key { code: "Backspace".to_owned(), pressed: true });
            inputs.push(Input::Key { code: "Backspace".to_owned(), pressed: false });
        }
        if !self.text.is_empty() {
            inputs.push(Input::Text(self.text.clone()));
        }
        inputs
    }
}

/// The hidden field's state: the value the workstation has been sent, and whether an IME composes.
#[derive(Debug, Clone)]
pub struct SoftInput {
    sent: String,
    composing: bool,
}

/// What to do after a field event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldUpdate {
    /// Send this edit to the workstation (empty: nothing to send).
    pub edit: TextEdit,
    /// Set the field to this value (and the caret to its end).
    pub reset_to: Option<String>,
}

impl Default for SoftInput {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftInput {
    pub fn new() -> Self {
        Self { sent: SENTINEL.to_owned(), composing: false }
    }

    /// The value the field should hold when the keyboard opens.
    pub fn initial_value(&self) -> &str {
        &self.sent
    }

    /// A composition (IME, or a phone keyboard's word in progress) started.
    pub fn composition_start(&mut self) {
        self.composing = true;
    }

    /// The composition ended with the field holding `value`: the composed text is sent.
    pub fn composition_end(&mut self, value: &str) -> FieldUpdate {
        self.composing = false;
        self.input(value, false)
    }

    /// An `input` event: the field now holds `value`; `is_composing` is the event's flag.
    pub fn input(&mut self, value: &str, is_composing: bool) -> FieldUpdate {
        if is_composing || self.composing {
            // Sent when the composition ends: intermediate IME text is not the user's text.
            return FieldUpdate::default();
        }
        let edit = TextEdit::between(&self.sent, value);
        self.sent = value.to_owned();
        let reset_to = self.needs_reset().then(|| {
            self.sent = SENTINEL.to_owned();
            SENTINEL.to_owned()
        });
        FieldUpdate { edit, reset_to }
    }

    /// The field was emptied or replaced by the page (e.g. the keyboard closed): start over.
    pub fn reset(&mut self) -> &str {
        self.sent = SENTINEL.to_owned();
        self.composing = false;
        &self.sent
    }

    fn needs_reset(&self) -> bool {
        let Some(typed) = self.sent.strip_prefix(SENTINEL) else {
            // Backspaced into the sentinel (or the page changed it): refill it.
            return true;
        };
        let ended_word = typed.ends_with(|c: char| c.is_whitespace());
        ended_word && typed.chars().count() >= RESET_AFTER
    }
}

/// The key bar's latching modifiers (Ctrl, Alt, Shift, Win): a tap presses one and keeps it down
/// (phones have no keys to hold), the next other key or text is typed with it, then every latched
/// modifier is released. Tapping a latched modifier again releases it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifierLatch {
    latched: Vec<&'static str>,
}

/// DOM codes the key bar latches.
pub const LATCHING: [&str; 4] = ["ControlLeft", "AltLeft", "ShiftLeft", "MetaLeft"];

impl ModifierLatch {
    pub fn is_latched(&self, code: &str) -> bool {
        self.latched.contains(&code)
    }

    /// A modifier button was tapped: its press, or its release if it was latched.
    pub fn toggle(&mut self, code: &str) -> Vec<Input> {
        let Some(&code) = LATCHING.iter().find(|&&c| c == code) else { return Vec::new() };
        if let Some(index) = self.latched.iter().position(|&c| c == code) {
            self.latched.remove(index);
            vec![Input::Key { code: code.to_owned(), pressed: false }]
        } else {
            self.latched.push(code);
            vec![Input::Key { code: code.to_owned(), pressed: true }]
        }
    }

    /// A non-modifier key (press and release) with the latched modifiers, which are then released.
    pub fn key(&mut self, code: &str) -> Vec<Input> {
        let mut inputs = vec![
            Input::Key { code: code.to_owned(), pressed: true },
            Input::Key { code: code.to_owned(), pressed: false },
        ];
        inputs.extend(self.release());
        inputs
    }

    /// After text or an edit was sent: releases the latched modifiers (in reverse order).
    pub fn release(&mut self) -> Vec<Input> {
        self.latched.drain(..).rev().map(|code| Input::Key { code: code.to_owned(), pressed: false }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(backspaces: usize, text: &str) -> TextEdit {
        TextEdit { backspaces, text: text.to_owned() }
    }

    fn typed(rest: &str) -> String {
        format!("{SENTINEL}{rest}")
    }

    #[test]
    fn diff_of_plain_typing_and_erasing() {
        assert_eq!(TextEdit::between("ab", "abc"), edit(0, "c"));
        assert_eq!(TextEdit::between("abc", "ab"), edit(1, ""));
        assert_eq!(TextEdit::between("abc", "abc"), edit(0, ""));
        assert!(TextEdit::between("abc", "abc").is_empty());
        assert_eq!(TextEdit::between("", "hello"), edit(0, "hello"));
        assert_eq!(TextEdit::between("hello", ""), edit(5, ""));
    }

    #[test]
    fn diff_counts_characters_not_bytes() {
        assert_eq!(TextEdit::between("caf", "café"), edit(0, "é"));
        assert_eq!(TextEdit::between("café", "caf"), edit(1, ""));
        assert_eq!(TextEdit::between("日本", "日本語"), edit(0, "語"));
        assert_eq!(TextEdit::between("a😀", "a"), edit(1, ""));
        // Same first byte, different characters.
        assert_eq!(TextEdit::between("é", "è"), edit(1, "è"));
    }

    #[test]
    fn autocorrect_replacing_a_word_erases_back_to_the_change() {
        // "teh " becomes "the ": erase "eh " (3), type "he ".
        assert_eq!(TextEdit::between("I saw teh ", "I saw the "), edit(3, "he "));
        // Capitalisation of the first letter rewrites the whole word.
        assert_eq!(TextEdit::between("hello", "Hello"), edit(5, "Hello"));
        // A suggestion that appends punctuation and a space.
        assert_eq!(TextEdit::between("dont", "don't "), edit(1, "'t "));
    }

    #[test]
    fn swipe_typing_inserts_whole_words() {
        assert_eq!(TextEdit::between("hi ", "hi there"), edit(0, "there"));
        // Swipe keyboards add the space before the next word.
        assert_eq!(TextEdit::between("hi there", "hi there friend"), edit(0, " friend"));
    }

    #[test]
    fn inputs_are_backspaces_then_text() {
        let inputs = edit(2, "ok").inputs();
        assert_eq!(inputs.len(), 5);
        assert_eq!(inputs[0], Input::Key { code: "Backspace".to_owned(), pressed: true });
        assert_eq!(inputs[1], Input::Key { code: "Backspace".to_owned(), pressed: false });
        assert_eq!(inputs[4], Input::Text("ok".to_owned()));
        assert!(edit(0, "").inputs().is_empty());
    }

    #[test]
    fn field_typing_sends_each_change() {
        let mut field = SoftInput::new();
        assert_eq!(field.initial_value(), SENTINEL);
        assert_eq!(field.input(&typed("h"), false), FieldUpdate { edit: edit(0, "h"), reset_to: None });
        assert_eq!(field.input(&typed("hi"), false).edit, edit(0, "i"));
        assert_eq!(field.input(&typed("h"), false).edit, edit(1, ""));
    }

    #[test]
    fn backspace_on_an_empty_field_is_seen_and_the_sentinel_refilled() {
        let mut field = SoftInput::new();
        let shorter: String = SENTINEL.chars().take(SENTINEL.chars().count() - 1).collect();
        let update = field.input(&shorter, false);
        assert_eq!(update.edit, edit(1, ""));
        assert_eq!(update.reset_to.as_deref(), Some(SENTINEL));
        // Next Backspace is seen again.
        assert_eq!(field.input(&shorter, false).edit, edit(1, ""));
        // Select-all + delete (field emptied) erases what the field held.
        let mut field = SoftInput::new();
        field.input(&typed("ab"), false);
        let update = field.input("", false);
        assert_eq!(update.edit.backspaces, SENTINEL.chars().count() + 2);
        assert_eq!(update.reset_to.as_deref(), Some(SENTINEL));
    }

    #[test]
    fn composition_is_sent_when_it_ends() {
        let mut field = SoftInput::new();
        field.composition_start();
        // Japanese IME: romaji, then kana, then the chosen kanji; nothing goes while composing.
        assert!(field.input(&typed("n"), true).edit.is_empty());
        assert!(field.input(&typed("に"), true).edit.is_empty());
        assert!(field.input(&typed("日本"), false).edit.is_empty(), "still composing until compositionend");
        assert_eq!(field.composition_end(&typed("日本")).edit, edit(0, "日本"));
        // An input event after the end (Chrome fires one) sends nothing new.
        assert!(field.input(&typed("日本"), false).edit.is_empty());
    }

    #[test]
    fn android_word_composition_with_correction() {
        let mut field = SoftInput::new();
        field.input(&typed("I "), false);
        field.composition_start();
        field.input(&typed("I tge"), true);
        // The keyboard commits its correction.
        assert_eq!(field.composition_end(&typed("I the")).edit, edit(0, "the"));
        // Then autocorrect of an already sent word.
        assert_eq!(field.input(&typed("I thee "), false).edit, edit(0, "e "));
        assert_eq!(field.input(&typed("I the "), false).edit, edit(2, " "));
    }

    #[test]
    fn long_text_is_reset_at_a_word_boundary_only() {
        let mut field = SoftInput::new();
        let word = "a".repeat(RESET_AFTER);
        let update = field.input(&typed(&word), false);
        assert_eq!(update.reset_to, None, "not in the middle of a word");
        let update = field.input(&typed(&format!("{word} ")), false);
        assert_eq!(update.edit, edit(0, " "));
        assert_eq!(update.reset_to.as_deref(), Some(SENTINEL));
        // After the reset the next character is diffed against the sentinel.
        assert_eq!(field.input(&typed("b"), false).edit, edit(0, "b"));
        // The page resets the field.
        field.composition_start();
        assert_eq!(field.reset(), SENTINEL);
        assert_eq!(field.input(&typed("c"), false).edit, edit(0, "c"), "composition state cleared");
    }

    fn key(code: &str, pressed: bool) -> Input {
        Input::Key { code: code.to_owned(), pressed }
    }

    #[test]
    fn latched_modifiers_apply_to_the_next_key_only() {
        let mut latch = ModifierLatch::default();
        assert_eq!(latch.toggle("ControlLeft"), vec![key("ControlLeft", true)]);
        assert_eq!(latch.toggle("AltLeft"), vec![key("AltLeft", true)]);
        assert!(latch.is_latched("ControlLeft"));
        assert_eq!(
            latch.key("ArrowLeft"),
            vec![key("ArrowLeft", true), key("ArrowLeft", false), key("AltLeft", false), key("ControlLeft", false)]
        );
        assert!(!latch.is_latched("ControlLeft"));
        // Nothing latched: just the key.
        assert_eq!(latch.key("Tab"), vec![key("Tab", true), key("Tab", false)]);
        assert!(latch.release().is_empty());
    }

    #[test]
    fn tapping_a_latched_modifier_again_releases_it() {
        let mut latch = ModifierLatch::default();
        latch.toggle("MetaLeft");
        assert_eq!(latch.toggle("MetaLeft"), vec![key("MetaLeft", false)]);
        assert!(latch.release().is_empty());
        // Only modifiers latch.
        assert!(latch.toggle("KeyA").is_empty());
        assert!(!latch.is_latched("KeyA"));
    }
}
