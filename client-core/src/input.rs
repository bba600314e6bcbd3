//! Keyboard and mouse: page events → RDP input events.
//!
//! IronRDP's input `Database` remembers what is pressed, so releases are only sent for pressed
//! keys and "release everything" (focus lost) is exact. Mouse positions are clamped to the desktop.
//! Servers that did not negotiate fast-path input get the same events as slow-path Input PDUs.
//!
//! Text (soft keyboards, IME, characters the DOM gives without a usable `code`) is typed with the keys
//! of the session's layout (`layout.rs`): Shift, or AltGr as Ctrl+Right Alt (what Windows expects),
//! pressed around the key only when not already held. Characters the layout lacks go as Unicode
//! keyboard events (IronRDP's: a surrogate pair is two units pressed, then released).

use crate::keymap::{self, KeyMapping};
use crate::layout::{KeyboardLayout, Level};
use crate::{Input, MouseButton};
use ironrdp_input::{Database, MousePosition, Operation, Scancode, WheelRotations};
use ironrdp_pdu::input::fast_path::{FastPathInputEvent, KeyboardFlags as FpKeyboardFlags};
use ironrdp_pdu::input::scan_code::KeyboardFlags as SlowKeyboardFlags;
use ironrdp_pdu::input::sync::SyncToggleFlags;
use ironrdp_pdu::input::unicode::KeyboardFlags as UnicodeKeyboardFlags;
use ironrdp_pdu::input::{InputEvent, ScanCodePdu, SyncPdu, UnicodePdu};

const CONTROL: Scancode = Scancode::from_u8(false, 0x1D);
const ALT: Scancode = Scancode::from_u8(false, 0x38);
const DELETE: Scancode = Scancode::from_u8(true, 0x53);
const SHIFT_LEFT: Scancode = Scancode::from_u8(false, 0x2A);
const SHIFT_RIGHT: Scancode = Scancode::from_u8(false, 0x36);
const ALT_RIGHT: Scancode = Scancode::from_u8(true, 0x38);

/// Input state of one session.
pub(crate) struct InputState {
    database: Database,
    width: u16,
    height: u16,
    layout: KeyboardLayout,
}

impl InputState {
    pub(crate) fn new(width: u16, height: u16, layout: KeyboardLayout) -> Self {
        Self { database: Database::new(), width, height, layout }
    }

    /// The desktop size changed (reactivation): later positions are clamped to it.
    pub(crate) fn set_desktop_size(&mut self, width: u16, height: u16) {
        self.width = width;
        self.height = height;
    }

    /// The RDP events for one page input event (possibly none, e.g. for an unknown key).
    pub(crate) fn translate(&mut self, input: Input) -> Vec<FastPathInputEvent> {
        let operations = match input {
            Input::Key { code, pressed } => match keymap::lookup(&code) {
                None => return Vec::new(),
                Some(KeyMapping::Pause) => return pause(pressed),
                Some(KeyMapping::Scancode(scancode)) => {
                    if pressed && self.database.is_key_pressed(scancode) {
                        // Auto-repeat: repeat the make code, like a keyboard's typematic repeat.
                        return vec![key_event(scancode, false)];
                    }
                    vec![if pressed { Operation::KeyPressed(scancode) } else { Operation::KeyReleased(scancode) }]
                }
            },
            Input::MouseMove { x, y } => {
                let x = x.min(self.width.saturating_sub(1));
                let y = y.min(self.height.saturating_sub(1));
                vec![Operation::MouseMove(MousePosition { x, y })]
            }
            Input::MouseButton { button, pressed } => {
                let button = match button {
                    MouseButton::Left => ironrdp_input::MouseButton::Left,
                    MouseButton::Middle => ironrdp_input::MouseButton::Middle,
                    MouseButton::Right => ironrdp_input::MouseButton::Right,
                    MouseButton::X1 => ironrdp_input::MouseButton::X1,
                    MouseButton::X2 => ironrdp_input::MouseButton::X2,
                };
                vec![if pressed { Operation::MouseButtonPressed(button) } else { Operation::MouseButtonReleased(button) }]
            }
            Input::Wheel { vertical, amount } => {
                if amount == 0 {
                    return Vec::new();
                }
                vec![Operation::WheelRotations(WheelRotations { is_vertical: vertical, rotation_units: amount })]
            }
            Input::Text(text) => return self.type_text(&text),
            Input::CtrlAltDel => vec![
                Operation::KeyPressed(CONTROL),
                Operation::KeyPressed(ALT),
                Operation::KeyPressed(DELETE),
                Operation::KeyReleased(DELETE),
                Operation::KeyReleased(ALT),
                Operation::KeyReleased(CONTROL),
            ],
        };
        self.database.apply(operations).into_vec()
    }

    /// Key presses (or Unicode events) typing `text`; `\n` is Enter and `\t` Tab, other controls are dropped.
    fn type_text(&mut self, text: &str) -> Vec<FastPathInputEvent> {
        let mut events = Vec::new();
        for ch in text.replace("\r\n", "\n").chars() {
            let typed = match ch {
                '\n' | '\r' => Some(("Enter", Level::Plain)),
                '\t' => Some(("Tab", Level::Plain)),
                c if c.is_control() => continue,
                c => self.layout.key_for(c),
            };
            match typed.and_then(|(code, level)| Some((keymap::scancode(code)?, level))) {
                Some((scancode, level)) => events.extend(self.tap(scancode, level)),
                None => events.extend(
                    self.database.apply([Operation::UnicodeKeyPressed(ch), Operation::UnicodeKeyReleased(ch)]),
                ),
            }
        }
        events
    }

    /// Presses and releases one key with the modifiers its level needs (those not already held).
    fn tap(&mut self, key: Scancode, level: Level) -> Vec<FastPathInputEvent> {
        let needed: &[Scancode] = match level {
            Level::Plain => &[],
            Level::Shift if self.database.is_key_pressed(SHIFT_LEFT) || self.database.is_key_pressed(SHIFT_RIGHT) => &[],
            Level::Shift => &[SHIFT_LEFT],
            Level::AltGr => &[CONTROL, ALT_RIGHT],
        };
        let added: Vec<Scancode> = needed.iter().copied().filter(|&m| !self.database.is_key_pressed(m)).collect();
        // A key held already (e.g. the same physical key) is released first, or the press would do nothing.
        let mut operations: Vec<Operation> = vec![Operation::KeyReleased(key)];
        operations.extend(added.iter().map(|&m| Operation::KeyPressed(m)));
        operations.push(Operation::KeyPressed(key));
        operations.push(Operation::KeyReleased(key));
        operations.extend(added.iter().rev().map(|&m| Operation::KeyReleased(m)));
        self.database.apply(operations).into_vec()
    }

    /// Releases every pressed key and mouse button.
    pub(crate) fn release_all(&mut self) -> Vec<FastPathInputEvent> {
        self.database.release_all().into_vec()
    }
}

fn key_event(scancode: Scancode, release: bool) -> FastPathInputEvent {
    let (extended, code) = scancode.as_u8();
    let mut flags = FpKeyboardFlags::empty();
    if extended {
        flags |= FpKeyboardFlags::EXTENDED;
    }
    if release {
        flags |= FpKeyboardFlags::RELEASE;
    }
    FastPathInputEvent::KeyboardEvent(flags, code)
}

/// Pause/Break: E1-prefixed Control followed by NumLock (what a PS/2 keyboard sends).
fn pause(pressed: bool) -> Vec<FastPathInputEvent> {
    let release = if pressed { FpKeyboardFlags::empty() } else { FpKeyboardFlags::RELEASE };
    vec![
        FastPathInputEvent::KeyboardEvent(FpKeyboardFlags::EXTENDED1 | release, 0x1D),
        FastPathInputEvent::KeyboardEvent(release, 0x45),
    ]
}

/// The same events as slow-path Input PDU events, for servers without fast-path input.
pub(crate) fn to_slow_path(events: &[FastPathInputEvent]) -> Vec<InputEvent> {
    events
        .iter()
        .filter_map(|event| match event {
            FastPathInputEvent::KeyboardEvent(flags, code) => Some(InputEvent::ScanCode(ScanCodePdu {
                flags: slow_keyboard_flags(*flags),
                key_code: u16::from(*code),
            })),
            FastPathInputEvent::UnicodeKeyboardEvent(flags, code) => {
                {
                let release = if flags.contains(FpKeyboardFlags::RELEASE) {
                    UnicodeKeyboardFlags::RELEASE
                } else {
                    UnicodeKeyboardFlags::empty()
                };
                Some(InputEvent::Unicode(UnicodePdu { flags: release, unicode_code: *code }))
            }
            }
            FastPathInputEvent::MouseEvent(pdu) => Some(InputEvent::Mouse(*pdu)),
            FastPathInputEvent::MouseEventEx(pdu) => Some(InputEvent::MouseX(*pdu)),
            FastPathInputEvent::MouseEventRel(pdu) => Some(InputEvent::MouseRel(*pdu)),
            FastPathInputEvent::SyncEvent(flags) => {
                Some(InputEvent::Sync(SyncPdu { flags: SyncToggleFlags::from_bits_truncate(u32::from(flags.bits())) }))
            }
            FastPathInputEvent::QoeEvent(_) => None,
        })
        .collect()
}

fn slow_keyboard_flags(flags: FpKeyboardFlags) -> SlowKeyboardFlags {
    let mut slow = SlowKeyboardFlags::empty();
    if flags.contains(FpKeyboardFlags::RELEASE) {
        slow |= SlowKeyboardFlags::RELEASE;
    }
    if flags.contains(FpKeyboardFlags::EXTENDED) {
        slow |= SlowKeyboardFlags::EXTENDED;
    }
    if flags.contains(FpKeyboardFlags::EXTENDED1) {
        slow |= SlowKeyboardFlags::EXTENDED_1;
    }
    slow
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_pdu::input::mouse::PointerFlags;

    fn key(code: &str, pressed: bool) -> Input {
        Input::Key { code: code.to_owned(), pressed }
    }

    #[test]
    fn keys_press_repeat_and_release() {
        let mut state = InputState::new(1024, 768, KeyboardLayout::by_id(0x409));
        let down = state.translate(key("KeyA", true));
        assert_eq!(down, vec![FastPathInputEvent::KeyboardEvent(FpKeyboardFlags::empty(), 0x1E)]);
        // Auto-repeat sends the make code again, with no release in between.
        assert_eq!(state.translate(key("KeyA", true)), down);
        let up = state.translate(key("KeyA", false));
        assert_eq!(up, vec![FastPathInputEvent::KeyboardEvent(FpKeyboardFlags::RELEASE, 0x1E)]);
        // A release of a key that is not pressed sends nothing.
        assert!(state.translate(key("KeyA", false)).is_empty());
        // Extended keys carry the flag.
        assert_eq!(
            state.translate(key("AltRight", true)),
            vec![FastPathInputEvent::KeyboardEvent(FpKeyboardFlags::EXTENDED, 0x38)]
        );
        assert!(state.translate(key("NoSuchKey", true)).is_empty());
    }

    #[test]
    fn release_all_releases_keys_and_buttons() {
        let mut state = InputState::new(1024, 768, KeyboardLayout::by_id(0x409));
        state.translate(key("ShiftLeft", true));
        state.translate(key("MetaLeft", true));
        state.translate(Input::MouseButton { button: MouseButton::Left, pressed: true });
        let released = state.release_all();
        assert_eq!(released.len(), 3);
        assert!(released.contains(&FastPathInputEvent::KeyboardEvent(FpKeyboardFlags::RELEASE, 0x2A)));
        assert!(released
            .contains(&FastPathInputEvent::KeyboardEvent(FpKeyboardFlags::RELEASE | FpKeyboardFlags::EXTENDED, 0x5B)));
        assert!(state.release_all().is_empty());
    }

    #[test]
    fn mouse_is_clamped_to_the_desktop() {
        let mut state = InputState::new(800, 600, KeyboardLayout::by_id(0x409));
        let events = state.translate(Input::MouseMove { x: 5000, y: 599 });
        match events.as_slice() {
            [FastPathInputEvent::MouseEvent(pdu)] => {
                assert_eq!((pdu.x_position, pdu.y_position), (799, 599));
                assert!(pdu.flags.contains(PointerFlags::MOVE));
            }
            other => panic!("{other:?}"),
        }
        let events = state.translate(Input::Wheel { vertical: true, amount: -120 });
        match events.as_slice() {
            [FastPathInputEvent::MouseEvent(pdu)] => {
                assert_eq!(pdu.number_of_wheel_rotation_units, -120);
                assert!(pdu.flags.contains(PointerFlags::VERTICAL_WHEEL));
            }
            other => panic!("{other:?}"),
        }
        assert!(state.translate(Input::Wheel { vertical: false, amount: 0 }).is_empty());
    }

    #[test]
    fn ctrl_alt_del_presses_and_releases() {
        let mut state = InputState::new(800, 600, KeyboardLayout::by_id(0x409));
        let events = state.translate(Input::CtrlAltDel);
        assert_eq!(events.len(), 6);
        assert_eq!(events[2], FastPathInputEvent::KeyboardEvent(FpKeyboardFlags::EXTENDED, 0x53));
        assert!(state.release_all().is_empty());
    }

    #[test]
    fn pause_and_slow_path_conversion() {
        let mut state = InputState::new(800, 600, KeyboardLayout::by_id(0x409));
        let events = state.translate(key("Pause", true));
        let slow = to_slow_path(&events);
        assert_eq!(
            slow,
            vec![
                InputEvent::ScanCode(ScanCodePdu { flags: SlowKeyboardFlags::EXTENDED_1, key_code: 0x1D }),
                InputEvent::ScanCode(ScanCodePdu { flags: SlowKeyboardFlags::empty(), key_code: 0x45 }),
            ]
        );
    }

    fn text(state: &mut InputState, text: &str) -> Vec<FastPathInputEvent> {
        state.translate(Input::Text(text.to_owned()))
    }

    fn press(code: u8) -> FastPathInputEvent {
        FastPathInputEvent::KeyboardEvent(FpKeyboardFlags::empty(), code)
    }

    fn release(code: u8) -> FastPathInputEvent {
        FastPathInputEvent::KeyboardEvent(FpKeyboardFlags::RELEASE, code)
    }

    fn ext(flags: FpKeyboardFlags, code: u8) -> FastPathInputEvent {
        FastPathInputEvent::KeyboardEvent(flags | FpKeyboardFlags::EXTENDED, code)
    }

    #[test]
    fn text_is_typed_with_the_layouts_keys_and_shift() {
        let mut state = InputState::new(800, 600, KeyboardLayout::by_id(0x409));
        assert_eq!(text(&mut state, "aB"), vec![press(0x1E), release(0x1E), press(0x2A), press(0x30), release(0x30), release(0x2A)]);
        assert_eq!(text(&mut state, "\n\t"), vec![press(0x1C), release(0x1C), press(0x0F), release(0x0F)]);
        // CRLF is one Enter; other control characters are dropped.
        assert_eq!(text(&mut state, "\r\n\u{7}"), vec![press(0x1C), release(0x1C)]);
        assert!(state.release_all().is_empty(), "text leaves nothing pressed");
    }

    #[test]
    fn held_modifiers_stay_held_and_are_not_pressed_twice() {
        let mut state = InputState::new(800, 600, KeyboardLayout::by_id(0x409));
        // A latched Ctrl (key bar) plus "c" from the soft keyboard is Ctrl+C.
        state.translate(key("ControlLeft", true));
        assert_eq!(text(&mut state, "c"), vec![press(0x2E), release(0x2E)]);
        // A held Shift is used as is for an upper-case letter.
        state.translate(key("ShiftRight", true));
        assert_eq!(text(&mut state, "C"), vec![press(0x2E), release(0x2E)]);
        let released = state.release_all();
        assert!(released.contains(&release(0x1D)) && released.contains(&release(0x36)));
    }

    #[test]
    fn altgr_is_ctrl_and_right_alt() {
        let mut state = InputState::new(800, 600, KeyboardLayout::by_id(0x407));
        assert_eq!(
            text(&mut state, "@"),
            vec![
                press(0x1D),
                ext(FpKeyboardFlags::empty(), 0x38),
                press(0x10),
                release(0x10),
                ext(FpKeyboardFlags::RELEASE, 0x38),
                release(0x1D),
            ]
        );
        // German "z" is the key US calls Y.
        assert_eq!(text(&mut state, "z"), vec![press(0x15), release(0x15)]);
        // With Ctrl already latched only Right Alt is added, and Ctrl stays down afterwards.
        state.translate(key("ControlLeft", true));
        let events = text(&mut state, "€");
        assert_eq!(events.first(), Some(&ext(FpKeyboardFlags::empty(), 0x38)));
        assert!(!events.contains(&release(0x1D)));
    }

    #[test]
    fn characters_without_a_key_go_as_unicode() {
        let mut state = InputState::new(800, 600, KeyboardLayout::by_id(0x409));
        let unicode = |flags, unit| FastPathInputEvent::UnicodeKeyboardEvent(flags, unit);
        let empty = FpKeyboardFlags::empty();
        let up = FpKeyboardFlags::RELEASE;
        assert_eq!(text(&mut state, "é"), vec![unicode(empty, 0xE9), unicode(up, 0xE9)]);
        // Outside the BMP: the surrogate pair.
        assert_eq!(
            text(&mut state, "😀"),
            vec![unicode(empty, 0xD83D), unicode(empty, 0xDE00), unicode(up, 0xD83D), unicode(up, 0xDE00)]
        );
        // The German dead key "^" is not typed as a key; "ä" is a key there.
        let mut german = InputState::new(800, 600, KeyboardLayout::by_id(0x407));
        assert_eq!(text(&mut german, "^"), vec![unicode(empty, u16::from(b'^')), unicode(up, u16::from(b'^'))]);
        assert_eq!(text(&mut german, "ä"), vec![press(0x28), release(0x28)]);
        // Slow path carries them as Unicode PDUs.
        let slow = to_slow_path(&text(&mut state, "é"));
        assert_eq!(slow[0], InputEvent::Unicode(UnicodePdu { flags: UnicodeKeyboardFlags::empty(), unicode_code: 0xE9 }));
    }

    #[test]
    fn a_held_key_is_released_before_it_types() {
        let mut state = InputState::new(800, 600, KeyboardLayout::by_id(0x409));
        state.translate(key("KeyA", true));
        assert_eq!(text(&mut state, "a"), vec![release(0x1E), press(0x1E), release(0x1E)]);
    }
}
