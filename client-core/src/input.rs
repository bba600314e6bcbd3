//! Keyboard and mouse: page events → RDP input events.
//!
//! IronRDP's input `Database` remembers what is pressed, so releases are only sent for pressed
//! keys and "release everything" (focus lost) is exact. Mouse positions are clamped to the desktop.
//! Servers that did not negotiate fast-path input get the same events as slow-path Input PDUs.

use crate::keymap::{self, KeyMapping};
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

/// Input state of one session.
pub(crate) struct InputState {
    database: Database,
    width: u16,
    height: u16,
}

impl InputState {
    pub(crate) fn new(width: u16, height: u16) -> Self {
        Self { database: Database::new(), width, height }
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
        let mut state = InputState::new(1024, 768);
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
        let mut state = InputState::new(1024, 768);
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
        let mut state = InputState::new(800, 600);
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
        let mut state = InputState::new(800, 600);
        let events = state.translate(Input::CtrlAltDel);
        assert_eq!(events.len(), 6);
        assert_eq!(events[2], FastPathInputEvent::KeyboardEvent(FpKeyboardFlags::EXTENDED, 0x53));
        assert!(state.release_all().is_empty());
    }

    #[test]
    fn pause_and_slow_path_conversion() {
        let mut state = InputState::new(800, 600);
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
}
