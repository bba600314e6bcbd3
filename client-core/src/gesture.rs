//! Touch as a mouse, as data: the fingers on the screen (positions and a timestamp after every touch
//! event) in, mouse and view actions out. Browsers cannot fully emulate phones, so the rules live here
//! and are unit-tested; the page only forwards `TouchEvent.touches` and applies the actions.
//!
//! - tap: the pointer moves there and clicks (left);
//! - long press (held still for `LONG_PRESS_MS`): right click, reported from `tick` at `deadline`;
//! - one-finger drag: left button down where the finger landed, moves, up when it lifts;
//! - two-finger drag: wheel notches (natural direction: fingers up scroll the content down);
//! - two-finger pinch: zoom around the fingers' midpoint, with the midpoint's movement panning;
//! - two-finger tap: right click.
//!
//! Scroll or pinch is decided only once both fingers moved (or one moved far while the other stayed),
//! whatever order the browser reports their moves in: one event per finger, or both at once.
//!
//! A gesture ends when every finger is lifted; extra fingers during a gesture end it without a click.
//! Positions are page (CSS) pixels; the page maps `MoveTo` to desktop pixels through the zoomed view.
//! `View` is the zoom/pan state those actions change, clamped so the desktop always fills its box.

use crate::MouseButton;

/// Finger travel (CSS px) below which a touch is still a tap or a long press.
pub const TAP_SLOP: f64 = 10.0;
/// Time held still before a touch is a long press (right click).
pub const LONG_PRESS_MS: f64 = 600.0;
/// Two fingers lifted within this time without moving are a two-finger tap.
pub const TWO_FINGER_TAP_MS: f64 = 300.0;
/// Midpoint travel (CSS px) per wheel notch when scrolling with two fingers.
pub const SCROLL_STEP: f64 = 30.0;
/// Change of the fingers' distance (CSS px) that makes a two-finger gesture a pinch, not a scroll.
pub const PINCH_SLOP: f64 = 24.0;
/// Travel (CSS px) after which a finger of a two-finger gesture counts as moved. Scroll or pinch is decided
/// only once both fingers moved: browsers may report each finger's move in its own event, so after the
/// first finger's event alone a scroll looks like a pinch.
pub const FINGER_MOVED: f64 = 4.0;
/// Travel (CSS px) of one finger while the other stays put that is a pinch anyway (thumb held still).
pub const ANCHORED_PINCH: f64 = 3.0 * PINCH_SLOP;
/// One wheel notch in RDP wheel units.
const NOTCH: i16 = 120;

/// One finger: the DOM `Touch.identifier` and its page position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touch {
    pub id: i32,
    pub x: f64,
    pub y: f64,
}

/// What the page does for a gesture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Move the workstation's pointer to this page position.
    MoveTo { x: f64, y: f64 },
    Button { button: MouseButton, pressed: bool },
    /// Wheel units as `Input::Wheel` takes them (positive = up / right).
    Wheel { vertical: bool, amount: i16 },
    /// Multiply the view's scale by `factor` around the page point (`x`, `y`).
    Zoom { factor: f64, x: f64, y: f64 },
    /// Move the view by page pixels.
    Pan { dx: f64, dy: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TwoMode {
    Undecided,
    Scroll { pending_x: f64, pending_y: f64 },
    Pinch,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Idle,
    /// One finger down, still within the slop, before the long-press time.
    Pending { id: i32, x0: f64, y0: f64, since: f64 },
    /// One finger dragging with the left button held.
    Dragging { id: i32 },
    /// The long press was reported; waiting for the finger to lift.
    LongPressed,
    /// Two fingers: where each landed (`fingers`), their midpoint and distance at the start and the last
    /// event; `moved` once either went beyond the tap slop (no two-finger tap then).
    Two { fingers: [Touch; 2], since: f64, start: (f64, f64, f64), last: (f64, f64, f64), mode: TwoMode, moved: bool },
    /// The gesture is over (or was abandoned); waiting until no finger is left.
    Finished,
}

/// The recogniser. Feed it the fingers still on the screen after every touch event.
#[derive(Debug, Clone)]
pub struct GestureRecognizer {
    state: State,
}

impl Default for GestureRecognizer {
    fn default() -> Self {
        Self::new()
    }
}

fn midpoint_and_distance(a: &Touch, b: &Touch) -> (f64, f64, f64) {
    ((a.x + b.x) / 2.0, (a.y + b.y) / 2.0, (a.x - b.x).hypot(a.y - b.y))
}

fn click(button: MouseButton) -> [Action; 2] {
    [Action::Button { button, pressed: true }, Action::Button { button, pressed: false }]
}

impl GestureRecognizer {
    pub fn new() -> Self {
        Self { state: State::Idle }
    }

    /// `touches`: every finger on the screen now (DOM `TouchEvent.touches`), `now`: milliseconds.
    pub fn update(&mut self, touches: &[Touch], now: f64) -> Vec<Action> {
        let mut actions = Vec::new();
        self.state = match (self.state, touches) {
            (State::Idle, []) => State::Idle,
            (State::Idle, [one]) => {
                actions.push(Action::MoveTo { x: one.x, y: one.y });
                State::Pending { id: one.id, x0: one.x, y0: one.y, since: now }
            }
            (State::Idle, [a, b]) => two_fingers(a, b, now),
            (State::Idle, _) => State::Finished,

            (State::Pending { id, x0, y0, since }, [one]) if one.id == id => {
                if (one.x - x0).hypot(one.y - y0) > TAP_SLOP {
                    actions.push(Action::Button { button: MouseButton::Left, pressed: true });
                    actions.push(Action::MoveTo { x: one.x, y: one.y });
                    State::Dragging { id }
                } else if now - since >= LONG_PRESS_MS {
                    actions.extend(click(MouseButton::Right));
                    State::LongPressed
                } else {
                    self.state
                }
            }
            (State::Pending { since, .. }, []) => {
                actions.extend(click(if now - since >= LONG_PRESS_MS { MouseButton::Right } else { MouseButton::Left }));
                State::Idle
            }
            (State::Pending { .. }, [a, b]) => two_fingers(a, b, now),
            (State::Pending { .. }, _) => State::Finished,

            (State::Dragging { id }, [one]) if one.id == id => {
                actions.push(Action::MoveTo { x: one.x, y: one.y });
                self.state
            }
            (State::Dragging { .. }, rest) => {
                actions.push(Action::Button { button: MouseButton::Left, pressed: false });
                if rest.is_empty() { State::Idle } else { State::Finished }
            }

            (State::Two { fingers, since, start, last, mode, moved }, [a, b])
                if (a.id, b.id) == (fingers[0].id, fingers[1].id) || (b.id, a.id) == (fingers[0].id, fingers[1].id) =>
            {
                let (a, b) = if a.id == fingers[0].id { (a, b) } else { (b, a) };
                let travel = [travel(&fingers[0], a), travel(&fingers[1], b)];
                let now_point = midpoint_and_distance(a, b);
                let (mode, last) = match mode {
                    // The move that decides acts on the whole travel since the start, not only its last step.
                    TwoMode::Undecided => (decide(travel, start, now_point), start),
                    decided => (decided, last),
                };
                let mode = two_finger_move(mode, last, now_point, &mut actions);
                let moved = moved || travel.iter().any(|t| *t > TAP_SLOP);
                State::Two { fingers, since, start, last: now_point, mode, moved }
            }
            (State::Two { since, mode: TwoMode::Undecided, moved, .. }, rest) if rest.len() < 2 => {
                if !moved && now - since < TWO_FINGER_TAP_MS {
                    actions.extend(click(MouseButton::Right));
                }
                if rest.is_empty() { State::Idle } else { State::Finished }
            }

            (_, []) => State::Idle,
            (State::LongPressed | State::Finished | State::Two { .. }, _) => State::Finished,
        };
        actions
    }

    /// The browser cancelled the touches (e.g. a system gesture): a held button is released, no click.
    pub fn cancel(&mut self) -> Vec<Action> {
        let held = matches!(self.state, State::Dragging { .. });
        self.state = State::Idle;
        if held {
            vec![Action::Button { button: MouseButton::Left, pressed: false }]
        } else {
            Vec::new()
        }
    }

    /// When `tick` must be called (milliseconds, the clock of `update`), if a long press may be pending.
    pub fn deadline(&self) -> Option<f64> {
        match self.state {
            State::Pending { since, .. } => Some(since + LONG_PRESS_MS),
            _ => None,
        }
    }

    /// Time passed with no touch event: a finger held still long enough is a long press.
    pub fn tick(&mut self, now: f64) -> Vec<Action> {
        match self.state {
            State::Pending { since, .. } if now - since >= LONG_PRESS_MS => {
                self.state = State::LongPressed;
                click(MouseButton::Right).to_vec()
            }
            _ => Vec::new(),
        }
    }
}

fn two_fingers(a: &Touch, b: &Touch, now: f64) -> State {
    let start = midpoint_and_distance(a, b);
    State::Two { fingers: [*a, *b], since: now, start, last: start, mode: TwoMode::Undecided, moved: false }
}

fn travel(from: &Touch, to: &Touch) -> f64 {
    (to.x - from.x).hypot(to.y - from.y)
}

/// Scroll or pinch, from each finger's travel and the midpoint and distance since the start.
///
/// Only once both fingers moved (whatever order their events came in): then a clear change of their
/// distance is a pinch, else a clear movement of the midpoint a scroll. One finger moving far while the
/// other stays is a pinch around the still one. The travel since the start counts, not since the last
/// event: a slow drag comes as many small moves, each one below the slop.
fn decide(travel: [f64; 2], start: (f64, f64, f64), now: (f64, f64, f64)) -> TwoMode {
    let spread = (now.2 - start.2).abs();
    let both_moved = travel.iter().all(|t| *t > FINGER_MOVED);
    let anchored = travel.iter().any(|t| *t > ANCHORED_PINCH) && travel.iter().any(|t| *t <= FINGER_MOVED);
    if (both_moved || anchored) && spread > PINCH_SLOP {
        TwoMode::Pinch
    } else if both_moved && (now.0 - start.0).abs().max((now.1 - start.1).abs()) > TAP_SLOP {
        TwoMode::Scroll { pending_x: 0.0, pending_y: 0.0 }
    } else {
        TwoMode::Undecided
    }
}

/// One move of a decided two-finger gesture (from `last` to `now`: midpoint and distance).
fn two_finger_move(mode: TwoMode, last: (f64, f64, f64), now: (f64, f64, f64), actions: &mut Vec<Action>) -> TwoMode {
    let (dx, dy) = (now.0 - last.0, now.1 - last.1);
    match mode {
        TwoMode::Undecided => TwoMode::Undecided,
        TwoMode::Scroll { pending_x, pending_y } => {
            scroll(TwoMode::Scroll { pending_x: pending_x + dx, pending_y: pending_y + dy }, actions)
        }
        TwoMode::Pinch => {
            if last.2 > 0.0 && now.2 > 0.0 {
                actions.push(Action::Zoom { factor: now.2 / last.2, x: now.0, y: now.1 });
            }
            if dx != 0.0 || dy != 0.0 {
                actions.push(Action::Pan { dx, dy });
            }
            TwoMode::Pinch
        }
    }
}

/// Whole notches out of the travel so far; the remainder is kept for the next move.
fn scroll(mode: TwoMode, actions: &mut Vec<Action>) -> TwoMode {
    let TwoMode::Scroll { mut pending_x, mut pending_y } = mode else { return mode };
    while pending_y.abs() >= SCROLL_STEP {
        // Fingers moving up (negative y) pull the content up: scroll down (negative rotation).
        let up = pending_y > 0.0;
        actions.push(Action::Wheel { vertical: true, amount: if up { NOTCH } else { -NOTCH } });
        pending_y -= SCROLL_STEP.copysign(pending_y);
    }
    while pending_x.abs() >= SCROLL_STEP {
        // Fingers moving left show what is to the right: positive (right).
        let right = pending_x < 0.0;
        actions.push(Action::Wheel { vertical: false, amount: if right { NOTCH } else { -NOTCH } });
        pending_x -= SCROLL_STEP.copysign(pending_x);
    }
    TwoMode::Scroll { pending_x, pending_y }
}

/// Largest zoom factor of the view.
pub const MAX_ZOOM: f64 = 5.0;

/// The zoomed view of the desktop in its box: `translate(x, y) scale(scale)` with origin top left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub scale: f64,
    pub x: f64,
    pub y: f64,
}

impl Default for View {
    fn default() -> Self {
        View { scale: 1.0, x: 0.0, y: 0.0 }
    }
}

impl View {
    /// Applies a `Zoom` or `Pan` action to a box `width` x `height` (page px); other actions change nothing.
    /// The zoom point is taken relative to the box's top left corner as laid out (the page subtracts
    /// where the box sits).
    pub fn apply(&mut self, action: &Action, width: f64, height: f64) {
        match *action {
            Action::Zoom { factor, x, y } if factor.is_finite() && factor > 0.0 => {
                let scale = (self.scale * factor).clamp(1.0, MAX_ZOOM);
                let ratio = scale / self.scale;
                // The point under the fingers stays under them.
                self.x = x - (x - self.x) * ratio;
                self.y = y - (y - self.y) * ratio;
                self.scale = scale;
            }
            Action::Pan { dx, dy } => {
                self.x += dx;
                self.y += dy;
            }
            _ => return,
        }
        self.clamp(width, height);
    }

    /// Keeps the desktop covering its box (no empty margin shows when zoomed in).
    fn clamp(&mut self, width: f64, height: f64) {
        self.x = self.x.clamp((width * (1.0 - self.scale)).min(0.0), 0.0);
        self.y = self.y.clamp((height * (1.0 - self.scale)).min(0.0), 0.0);
    }

    /// The CSS `transform` for the view.
    pub fn css_transform(&self) -> String {
        format!("translate({:.1}px, {:.1}px) scale({:.4})", self.x, self.y, self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: i32, x: f64, y: f64) -> Touch {
        Touch { id, x, y }
    }

    const LEFT_CLICK: [Action; 2] = [
        Action::Button { button: MouseButton::Left, pressed: true },
        Action::Button { button: MouseButton::Left, pressed: false },
    ];
    const RIGHT_CLICK: [Action; 2] = [
        Action::Button { button: MouseButton::Right, pressed: true },
        Action::Button { button: MouseButton::Right, pressed: false },
    ];

    #[test]
    fn tap_moves_and_clicks() {
        let mut g = GestureRecognizer::new();
        assert_eq!(g.update(&[t(1, 100.0, 200.0)], 0.0), vec![Action::MoveTo { x: 100.0, y: 200.0 }]);
        // A little jitter is still a tap.
        assert!(g.update(&[t(1, 104.0, 203.0)], 50.0).is_empty());
        assert_eq!(g.update(&[], 120.0), LEFT_CLICK.to_vec());
        assert_eq!(g.deadline(), None);
        // A second tap is another click (double click is the workstation's business).
        g.update(&[t(2, 101.0, 200.0)], 300.0);
        assert_eq!(g.update(&[], 350.0), LEFT_CLICK.to_vec());
    }

    #[test]
    fn long_press_right_clicks_once_at_the_deadline() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 50.0, 50.0)], 1000.0);
        assert_eq!(g.deadline(), Some(1000.0 + LONG_PRESS_MS));
        assert!(g.tick(1000.0 + LONG_PRESS_MS - 1.0).is_empty(), "too early");
        assert_eq!(g.tick(1000.0 + LONG_PRESS_MS), RIGHT_CLICK.to_vec());
        assert_eq!(g.deadline(), None);
        assert!(g.tick(5000.0).is_empty(), "only once");
        // Moving or lifting afterwards does nothing more.
        assert!(g.update(&[t(1, 90.0, 90.0)], 1700.0).is_empty());
        assert!(g.update(&[], 1800.0).is_empty());
    }

    #[test]
    fn long_press_without_a_tick_is_still_a_right_click() {
        // The page's timer was late: the lift decides.
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 50.0, 50.0)], 0.0);
        assert_eq!(g.update(&[], LONG_PRESS_MS + 10.0), RIGHT_CLICK.to_vec());
        // Or a move event after the time, within the slop.
        g.update(&[t(1, 50.0, 50.0)], 10_000.0);
        assert_eq!(g.update(&[t(1, 52.0, 50.0)], 10_000.0 + LONG_PRESS_MS), RIGHT_CLICK.to_vec());
        assert!(g.update(&[], 11_000.0).is_empty());
    }

    #[test]
    fn drag_holds_the_left_button() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 10.0, 10.0)], 0.0);
        assert_eq!(
            g.update(&[t(1, 30.0, 10.0)], 100.0),
            vec![
                Action::Button { button: MouseButton::Left, pressed: true },
                Action::MoveTo { x: 30.0, y: 10.0 }
            ]
        );
        assert_eq!(g.update(&[t(1, 60.0, 40.0)], 200.0), vec![Action::MoveTo { x: 60.0, y: 40.0 }]);
        // Held still for long while dragging: no right click.
        assert!(g.tick(5000.0).is_empty());
        assert_eq!(g.update(&[], 6000.0), vec![Action::Button { button: MouseButton::Left, pressed: false }]);
    }

    #[test]
    fn cancel_releases_a_drag_without_clicking() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 10.0, 10.0)], 0.0);
        g.update(&[t(1, 50.0, 10.0)], 10.0);
        assert_eq!(g.cancel(), vec![Action::Button { button: MouseButton::Left, pressed: false }]);
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 10.0, 10.0)], 0.0);
        assert!(g.cancel().is_empty(), "a pending tap is dropped");
        assert!(g.update(&[], 20.0).is_empty());
    }

    #[test]
    fn two_finger_drag_scrolls_in_notches() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 100.0, 300.0)], 0.0);
        assert!(g.update(&[t(1, 100.0, 300.0), t(2, 200.0, 300.0)], 10.0).is_empty());
        // Fingers move up by 2.5 steps: two notches down, the half step kept.
        let up = 2.5 * SCROLL_STEP;
        let actions = g.update(&[t(1, 100.0, 300.0 - up), t(2, 200.0, 300.0 - up)], 100.0);
        assert_eq!(actions, vec![Action::Wheel { vertical: true, amount: -120 }; 2]);
        let actions = g.update(&[t(1, 100.0, 300.0 - up - SCROLL_STEP / 2.0), t(2, 200.0, 300.0 - up - SCROLL_STEP / 2.0)], 150.0);
        assert_eq!(actions, vec![Action::Wheel { vertical: true, amount: -120 }]);
        // Back down: scroll up.
        let actions = g.update(&[t(1, 100.0, 300.0), t(2, 200.0, 300.0)], 200.0);
        assert_eq!(actions, vec![Action::Wheel { vertical: true, amount: 120 }; 3]);
        // Lifting ends it without a click; so does the last finger.
        assert!(g.update(&[t(2, 200.0, 300.0)], 300.0).is_empty());
        assert!(g.update(&[], 310.0).is_empty());
        // A new gesture starts fresh.
        assert_eq!(g.update(&[t(3, 1.0, 1.0)], 400.0), vec![Action::MoveTo { x: 1.0, y: 1.0 }]);
    }

    #[test]
    fn a_slow_two_finger_drag_in_small_moves_scrolls() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 100.0, 300.0), t(2, 200.0, 300.0)], 0.0);
        // 30 moves of 3 px each (below the slop one by one): 90 px up, three notches down.
        let wheel: Vec<Action> = (1..=30)
            .flat_map(|i| {
                let y = 300.0 - 3.0 * f64::from(i);
                g.update(&[t(1, 100.0, y), t(2, 200.0, y)], f64::from(i) * 13.0)
            })
            .collect();
        assert_eq!(wheel, vec![Action::Wheel { vertical: true, amount: -120 }; 3]);
    }

    #[test]
    fn two_finger_horizontal_drag_scrolls_sideways() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 300.0, 100.0), t(2, 300.0, 200.0)], 0.0);
        let left = SCROLL_STEP + 1.0;
        let actions = g.update(&[t(1, 300.0 - left, 100.0), t(2, 300.0 - left, 200.0)], 50.0);
        assert_eq!(actions, vec![Action::Wheel { vertical: false, amount: 120 }]);
    }

    #[test]
    fn small_two_finger_jitter_does_not_scroll() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 0.0, 0.0), t(2, 100.0, 0.0)], 0.0);
        assert!(g.update(&[t(1, 0.0, 5.0), t(2, 100.0, 5.0)], 20.0).is_empty());
        assert!(g.update(&[t(1, 0.0, 0.0), t(2, 100.0, 0.0)], 40.0).is_empty());
    }

    #[test]
    fn two_finger_tap_right_clicks() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 0.0, 0.0), t(2, 50.0, 0.0)], 0.0);
        assert_eq!(g.update(&[t(2, 50.0, 0.0)], TWO_FINGER_TAP_MS - 50.0), RIGHT_CLICK.to_vec());
        assert!(g.update(&[], TWO_FINGER_TAP_MS).is_empty());
        // Held too long: nothing.
        g.update(&[t(1, 0.0, 0.0), t(2, 50.0, 0.0)], 1000.0);
        assert!(g.update(&[], 1000.0 + TWO_FINGER_TAP_MS + 1.0).is_empty());
    }

    #[test]
    fn pinch_zooms_around_the_midpoint_and_pans() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 100.0, 100.0), t(2, 200.0, 100.0)], 0.0);
        let actions = g.update(&[t(1, 50.0, 110.0), t(2, 250.0, 110.0)], 50.0);
        assert_eq!(actions, vec![Action::Zoom { factor: 2.0, x: 150.0, y: 110.0 }, Action::Pan { dx: 0.0, dy: 10.0 }]);
        // Once a pinch, parallel movement pans instead of scrolling.
        let actions = g.update(&[t(1, 10.0, 110.0), t(2, 210.0, 110.0)], 100.0);
        assert_eq!(actions, vec![Action::Zoom { factor: 1.0, x: 110.0, y: 110.0 }, Action::Pan { dx: -40.0, dy: 0.0 }]);
    }

    fn wheel_only(actions: &[Action]) -> bool {
        actions.iter().all(|a| matches!(a, Action::Wheel { .. }))
    }

    #[test]
    fn interleaved_finger_events_of_a_scroll_do_not_look_like_a_pinch() {
        // Each finger's move comes in its own event (WebDriver, some browsers): after the first finger's
        // event alone the distance changed by a whole step.
        // Sideways, the leading finger alone even widens the distance beyond the pinch slop.
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 100.0, 400.0)], 0.0);
        g.update(&[t(1, 100.0, 400.0), t(2, 200.0, 400.0)], 5.0);
        let mut actions = Vec::new();
        for step in 1..=4 {
            let x = 100.0 - 30.0 * f64::from(step);
            actions.extend(g.update(&[t(1, x, 400.0), t(2, x + 130.0, 400.0)], f64::from(step) * 20.0));
            actions.extend(g.update(&[t(1, x, 400.0), t(2, x + 100.0, 400.0)], f64::from(step) * 20.0 + 10.0));
        }
        assert!(wheel_only(&actions), "{actions:?}");
        assert_eq!(actions, vec![Action::Wheel { vertical: false, amount: 120 }; 4]);
    }

    #[test]
    fn one_finger_moving_first_then_the_other_is_still_a_scroll() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 100.0, 400.0), t(2, 200.0, 400.0)], 0.0);
        // Finger 1 goes 60 px up in three events before finger 2 reports anything.
        for (i, y) in [380.0, 360.0, 340.0].into_iter().enumerate() {
            assert!(g.update(&[t(1, 100.0, y), t(2, 200.0, 400.0)], i as f64 * 10.0).is_empty());
        }
        // Then finger 2 catches up (listed first this time: the order of the list does not matter).
        let mut actions = Vec::new();
        for (i, y) in [380.0, 360.0, 340.0].into_iter().enumerate() {
            actions.extend(g.update(&[t(2, 200.0, y), t(1, 100.0, 340.0)], 40.0 + i as f64 * 10.0));
        }
        assert_eq!(actions, vec![Action::Wheel { vertical: true, amount: -120 }; 2]);
    }

    #[test]
    fn interleaved_finger_events_of_a_pinch_zoom_from_the_start() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 100.0, 300.0), t(2, 200.0, 300.0)], 0.0);
        // Finger 1 moves out alone: not decided yet (the other finger has not moved, and not far).
        assert!(g.update(&[t(1, 80.0, 300.0), t(2, 200.0, 300.0)], 10.0).is_empty());
        // Finger 2 moves out: a pinch, zooming by the whole change since the start (100 → 140 px).
        let actions = g.update(&[t(1, 80.0, 300.0), t(2, 220.0, 300.0)], 20.0);
        assert_eq!(actions, vec![Action::Zoom { factor: 1.4, x: 150.0, y: 300.0 }]);
        // Then each finger's step zooms on: never a wheel.
        let actions = g.update(&[t(1, 60.0, 300.0), t(2, 220.0, 300.0)], 30.0);
        assert!(matches!(actions[..], [Action::Zoom { .. }, Action::Pan { .. }]), "{actions:?}");
    }

    #[test]
    fn one_finger_moving_far_while_the_other_stays_is_a_pinch() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 100.0, 300.0), t(2, 200.0, 300.0)], 0.0);
        // The thumb stays; the index finger moves out, below the anchored-pinch travel: still undecided.
        assert!(g.update(&[t(1, 100.0, 300.0), t(2, 260.0, 300.0)], 10.0).is_empty());
        let actions = g.update(&[t(1, 100.0, 300.0), t(2, 200.0 + ANCHORED_PINCH + 1.0, 300.0)], 20.0);
        assert!(matches!(actions.first(), Some(Action::Zoom { factor, .. }) if *factor > 1.5), "{actions:?}");
        assert!(!actions.iter().any(|a| matches!(a, Action::Wheel { .. })));
    }

    #[test]
    fn a_finger_lifting_before_the_decision_ends_without_a_click() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 100.0, 300.0), t(2, 200.0, 300.0)], 0.0);
        // Finger 1 moves beyond the tap slop, finger 2 never moves and lifts early.
        assert!(g.update(&[t(1, 100.0, 280.0), t(2, 200.0, 300.0)], 20.0).is_empty());
        assert!(g.update(&[t(1, 100.0, 280.0)], 40.0).is_empty(), "moved: not a two-finger tap");
        assert!(g.update(&[t(1, 100.0, 200.0)], 60.0).is_empty(), "the finger left behind does nothing");
        assert!(g.update(&[], 80.0).is_empty());
        // Both fingers in one touchstart, one lifting at once: a two-finger tap.
        g.update(&[t(3, 100.0, 300.0), t(4, 200.0, 300.0)], 100.0);
        assert_eq!(g.update(&[t(4, 200.0, 300.0)], 150.0), RIGHT_CLICK.to_vec());
        assert!(g.update(&[], 160.0).is_empty());
    }

    #[test]
    fn third_finger_abandons_the_gesture() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 0.0, 0.0)], 0.0);
        assert!(g.update(&[t(1, 0.0, 0.0), t(2, 1.0, 1.0), t(3, 2.0, 2.0)], 10.0).is_empty());
        assert!(g.update(&[t(1, 0.0, 0.0)], 20.0).is_empty());
        assert!(g.update(&[], 30.0).is_empty(), "no click after an abandoned gesture");
        // A drag interrupted by a second finger releases its button.
        g.update(&[t(1, 0.0, 0.0)], 100.0);
        g.update(&[t(1, 40.0, 0.0)], 110.0);
        assert_eq!(
            g.update(&[t(1, 40.0, 0.0), t(2, 80.0, 0.0)], 120.0),
            vec![Action::Button { button: MouseButton::Left, pressed: false }]
        );
        assert!(g.update(&[], 130.0).is_empty());
    }

    #[test]
    fn a_different_finger_after_lift_is_not_the_same_tap() {
        let mut g = GestureRecognizer::new();
        g.update(&[t(1, 0.0, 0.0)], 0.0);
        // Touch list changed identity without an empty update (lost events): abandoned, no click.
        assert!(g.update(&[t(7, 300.0, 300.0)], 10.0).is_empty());
        assert!(g.update(&[], 20.0).is_empty());
    }

    #[test]
    fn view_zooms_around_a_point_and_stays_inside() {
        let mut view = View::default();
        view.apply(&Action::Zoom { factor: 2.0, x: 100.0, y: 50.0 }, 400.0, 300.0);
        assert_eq!(view, View { scale: 2.0, x: -100.0, y: -50.0 });
        // Panning beyond the left/top edge is stopped at it.
        view.apply(&Action::Pan { dx: 500.0, dy: 10.0 }, 400.0, 300.0);
        assert_eq!(view, View { scale: 2.0, x: 0.0, y: -40.0 });
        // And beyond the right/bottom edge.
        view.apply(&Action::Pan { dx: -5000.0, dy: -5000.0 }, 400.0, 300.0);
        assert_eq!(view, View { scale: 2.0, x: -400.0, y: -300.0 });
        // Zoom is limited both ways; at 1 the view is home.
        view.apply(&Action::Zoom { factor: 100.0, x: 0.0, y: 0.0 }, 400.0, 300.0);
        assert_eq!(view.scale, MAX_ZOOM);
        view.apply(&Action::Zoom { factor: 0.001, x: 0.0, y: 0.0 }, 400.0, 300.0);
        assert_eq!(view, View::default());
        // Nonsense factors and other actions change nothing.
        view.apply(&Action::Zoom { factor: f64::NAN, x: 0.0, y: 0.0 }, 400.0, 300.0);
        view.apply(&Action::MoveTo { x: 5.0, y: 5.0 }, 400.0, 300.0);
        assert_eq!(view, View::default());
        assert_eq!(view.css_transform(), "translate(0.0px, 0.0px) scale(1.0000)");
    }
}
