//! Touch on the desktop canvas: the browser's touch events go through client-core's
//! `GestureRecognizer` (tap, long press, drag, two-finger scroll, pinch zoom with pan) and its actions
//! become mouse input, or change the zoomed view of the canvas. A pointer is drawn where the
//! workstation's mouse is (size and transparency from the preferences), since touch screens show none.
//!
//! When the soft keyboard covers the place last touched (the visual viewport shrank over it), the
//! desktop moves up so the user sees what they type; it moves back when the keyboard closes.
//! Listeners are not passive: default handling (page scroll, browser zoom, emulated mouse events) is
//! prevented on the canvas.

use crate::prefs::{self, PointerSize};
use crate::softkeys::PREFS_CHANGED;
use gloo::events::{EventListener, EventListenerOptions};
use gloo::timers::callback::Timeout;
use homedesk_client_core::gesture::{Action, GestureRecognizer, Touch, View};
use homedesk_client_core::lift::{KeyboardLift, Viewport};
use homedesk_client_core::Input;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::JsCast;
use web_sys::{HtmlCanvasElement, HtmlElement, TouchEvent};
use yew::prelude::*;

struct Touching {
    canvas: HtmlCanvasElement,
    send: Callback<Input>,
    recognizer: GestureRecognizer,
    view: View,
    /// How far the desktop is moved up for the soft keyboard (CSS px), and the rule deciding it.
    shift: f64,
    lift: KeyboardLift,
    /// Where the last touch landed: a fraction of the canvas's height (the page may lay the canvas out
    /// anew when the keyboard resizes the window).
    last_touch: Option<f64>,
    long_press: Option<Timeout>,
    /// Where the pointer is, as fractions of the canvas's on-screen width and height (so it follows zoom,
    /// pan, the lift and layout changes); `pointer` is the render state drawing it (page px).
    pointer_at: Option<(f64, f64)>,
    pointer: UseStateHandle<Option<(f64, f64)>>,
}

/// Attaches touch handling to the canvas; returns the pointer to draw over the desktop.
#[hook]
pub fn use_touch(canvas: NodeRef, send: Callback<Input>) -> Html {
    let pointer = use_state(|| None::<(f64, f64)>);
    let prefs = use_state(prefs::load);
    {
        let pointer = pointer.clone();
        let prefs = prefs.clone();
        use_effect_with((), move |_| {
            let on_prefs = EventListener::new(&gloo::utils::window(), PREFS_CHANGED, move |_| prefs.set(prefs::load()));
            let listeners = canvas.cast::<HtmlCanvasElement>().map(|element| attach(element, send, pointer));
            move || drop((on_prefs, listeners))
        });
    }
    // The page's CSP forbids style attributes: position, size and opacity are set through the CSSOM.
    let node = use_node_ref();
    let size = prefs.pointer_size;
    let shown = pointer.filter(|_| size != PointerSize::None);
    {
        let node = node.clone();
        let opacity = f64::from(prefs.pointer_opacity) / 100.0;
        use_effect(move || {
            if let (Some(element), Some((x, y))) = (node.cast::<HtmlElement>(), shown) {
                let style = element.style();
                let _ = style.set_property("left", &format!("{x:.0}px"));
                let _ = style.set_property("top", &format!("{y:.0}px"));
                let _ = style.set_property("width", &format!("{}px", size.pixels()));
                let _ = style.set_property("height", &format!("{}px", size.pixels() * 3 / 2));
                let _ = style.set_property("opacity", &format!("{opacity:.2}"));
            }
        });
    }
    if shown.is_none() {
        return html! {};
    }
    html! {
        <div ref={node} class="hd-touch-pointer" data-testid="touch-pointer" data-size={size.name()} aria-hidden="true">
            <svg viewBox="0 0 12 18"><path d="M1 1 L1 15 L4.5 11.5 L7 17 L9 16 L6.5 10.5 L11 10.5 Z" /></svg>
        </div>
    }
}

fn attach(
    canvas: HtmlCanvasElement,
    send: Callback<Input>,
    pointer: UseStateHandle<Option<(f64, f64)>>,
) -> Vec<EventListener> {
    let _ = canvas.style().set_property("transform-origin", "0 0");
    let _ = canvas.style().set_property("touch-action", "none");
    let state = Rc::new(RefCell::new(Touching {
        canvas: canvas.clone(),
        send,
        recognizer: GestureRecognizer::new(),
        view: View::default(),
        shift: 0.0,
        lift: KeyboardLift::new(),
        last_touch: None,
        long_press: None,
        pointer_at: None,
        pointer,
    }));
    let mut listeners: Vec<EventListener> = ["touchstart", "touchmove", "touchend", "touchcancel"]
        .into_iter()
        .map(|kind| {
            let state = state.clone();
            EventListener::new_with_options(&canvas, kind, EventListenerOptions::enable_prevent_default(), move |event| {
                if let Some(event) = event.dyn_ref::<TouchEvent>() {
                    event.prevent_default();
                    on_touch(&state, event);
                }
            })
        })
        .collect();
    if let Some(viewport) = gloo::utils::window().visual_viewport() {
        // The viewport's full height, before any keyboard.
        state.borrow_mut().lift.observe(viewport_of(&viewport));
        for kind in ["resize", "scroll"] {
            let state = state.clone();
            listeners.push(EventListener::new(&viewport, kind, move |_| on_viewport_change(&state)));
        }
    }
    listeners
}

fn touches_of(event: &TouchEvent) -> Vec<Touch> {
    let list = event.touches();
    (0..list.length())
        .filter_map(|i| list.get(i))
        .map(|t| Touch { id: t.identifier(), x: f64::from(t.client_x()), y: f64::from(t.client_y()) })
        .collect()
}

fn on_touch(state: &Rc<RefCell<Touching>>, event: &TouchEvent) {
    let now = js_sys::Date::now();
    let actions = {
        let mut touching = state.borrow_mut();
        if event.type_() == "touchcancel" {
            touching.recognizer.cancel()
        } else {
            let touches = touches_of(event);
            if let [first] = touches.as_slice() {
                let rect = touching.canvas.get_bounding_client_rect();
                if rect.height() > 0.0 {
                    touching.last_touch = Some((first.y - rect.top()) / rect.height());
                }
            }
            touching.recognizer.update(&touches, now)
        }
    };
    apply(state, &actions);
    schedule_long_press(state, now);
}

/// Arms a timer for the recogniser's long-press deadline (or drops the old one).
fn schedule_long_press(state: &Rc<RefCell<Touching>>, now: f64) {
    let deadline = state.borrow().recognizer.deadline();
    let timer = deadline.map(|deadline| {
        let weak: Weak<RefCell<Touching>> = Rc::downgrade(state);
        Timeout::new((deadline - now).max(0.0) as u32, move || {
            let Some(state) = weak.upgrade() else { return };
            let actions = state.borrow_mut().recognizer.tick(js_sys::Date::now());
            apply(&state, &actions);
        })
    });
    state.borrow_mut().long_press = timer;
}

fn apply(state: &Rc<RefCell<Touching>>, actions: &[Action]) {
    for action in actions {
        let touching = &mut *state.borrow_mut();
        match *action {
            Action::MoveTo { x, y } => {
                if let Some((dx, dy)) = desktop_position(&touching.canvas, x, y) {
                    touching.send.emit(Input::MouseMove { x: dx, y: dy });
                }
                let rect = touching.canvas.get_bounding_client_rect();
                if rect.width() > 0.0 && rect.height() > 0.0 {
                    touching.pointer_at = Some(((x - rect.left()) / rect.width(), (y - rect.top()) / rect.height()));
                }
                touching.pointer.set(Some((x, y)));
            }
            Action::Button { button, pressed } => touching.send.emit(Input::MouseButton { button, pressed }),
            Action::Wheel { vertical, amount } => touching.send.emit(Input::Wheel { vertical, amount }),
            Action::Zoom { factor, x, y } => {
                // The view's zoom point is relative to the canvas's own box, not the page: the canvas sits
                // where the layout put it (centred), moved by the view and the keyboard lift.
                let rect = touching.canvas.get_bounding_client_rect();
                let (left, top) = (rect.left() - touching.view.x, rect.top() + touching.shift - touching.view.y);
                let zoom = Action::Zoom { factor, x: x - left, y: y - top };
                let (width, height) = box_size(&touching.canvas);
                touching.view.apply(&zoom, width, height);
                set_transform(touching);
            }
            Action::Pan { .. } => {
                let (width, height) = box_size(&touching.canvas);
                touching.view.apply(action, width, height);
                set_transform(touching);
            }
        }
    }
}

/// The canvas's laid-out size (page px), without the view's transform.
fn box_size(canvas: &HtmlCanvasElement) -> (f64, f64) {
    (f64::from(canvas.offset_width()), f64::from(canvas.offset_height()))
}

fn viewport_of(viewport: &web_sys::VisualViewport) -> Viewport {
    Viewport { width: viewport.width(), height: viewport.height(), offset_top: viewport.offset_top() }
}

/// The soft keyboard opened or closed: move the desktop so the last touched point stays visible.
fn on_viewport_change(state: &Rc<RefCell<Touching>>) {
    let Some(viewport) = gloo::utils::window().visual_viewport() else { return };
    let touching = &mut *state.borrow_mut();
    // Browsers that shrink the whole window for the keyboard would squeeze the desktop into what is left
    // (the canvas's max-height): it keeps its size while the keyboard is open, and the lift shows the spot.
    let style = touching.canvas.style();
    let _ = if touching.lift.observe(viewport_of(&viewport)) > 0.0 {
        style.set_property("max-height", "none")
    } else {
        style.remove_property("max-height").map(drop)
    };
    // Where the touched point is now, without the current lift.
    let rect = touching.canvas.get_bounding_client_rect();
    let spot_y = touching.last_touch.map(|fraction| rect.top() + touching.shift + fraction * rect.height());
    let shift = touching.lift.shift(viewport_of(&viewport), spot_y);
    touching.shift = shift;
    // Also when the lift stays: the window's new size may have moved the canvas.
    set_transform(touching);
}

/// Applies the zoom, pan and lift to the canvas, and moves the drawn pointer with the desktop.
fn set_transform(touching: &Touching) {
    let transform = format!("translate(0px, {:.0}px) {}", -touching.shift, touching.view.css_transform());
    let _ = touching.canvas.style().set_property("transform", &transform);
    if let Some((fx, fy)) = touching.pointer_at {
        let rect = touching.canvas.get_bounding_client_rect();
        touching.pointer.set(Some((rect.left() + fx * rect.width(), rect.top() + fy * rect.height())));
    }
}

/// Page coordinates → desktop pixels, through the canvas's scaling, zoom and shift.
fn desktop_position(canvas: &HtmlCanvasElement, x: f64, y: f64) -> Option<(u16, u16)> {
    let rect = canvas.get_bounding_client_rect();
    if rect.width() <= 0.0 || rect.height() <= 0.0 {
        return None;
    }
    let px = (x - rect.left()) * f64::from(canvas.width()) / rect.width();
    let py = (y - rect.top()) * f64::from(canvas.height()) / rect.height();
    let clamp = |v: f64, max: u32| v.max(0.0).min(f64::from(max.saturating_sub(1))) as u16;
    Some((clamp(px, canvas.width()), clamp(py, canvas.height())))
}
