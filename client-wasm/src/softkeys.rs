//! The touch keyboard: a menu button that opens the device's soft keyboard through a hidden text
//! field, and a key bar with the keys phones lack (Esc, Tab, latching Ctrl/Alt/Win, arrows, Home/End,
//! PgUp/PgDn, F1–F12, Ctrl+Alt+Del where allowed), plus the keyboard and pointer preferences.
//!
//! Text reaches the session through `SoftInput` (client-core): the field's value is compared on every
//! `input` event, so autocorrect, swipe typing and IME composition arrive as Backspaces plus text.
//! The bar sits at the bottom of the visual viewport, i.e. just above the soft keyboard.
//! Buttons keep the field focused (mouse-down default prevented) so the soft keyboard stays open.

use crate::prefs::{self, PointerSize, Prefs, OPACITIES};
use gloo::events::EventListener;
use homedesk_client_core::softinput::{FieldUpdate, ModifierLatch, SoftInput};
use homedesk_client_core::{key_input, Input, LAYOUTS};
use web_sys::{HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct SoftKeysProps {
    /// Input for the session.
    pub send: Callback<Input>,
    /// Whether Ctrl+Alt+Del is offered (the HTML5 client setting for this device type).
    pub ctrl_alt_del: bool,
}

/// Keys of the bar: label and DOM code. Modifiers latch; the others are pressed and released.
const MODIFIERS: [(&str, &str); 3] = [("Ctrl", "ControlLeft"), ("Alt", "AltLeft"), ("Win", "MetaLeft")];
const NAVIGATION: [(&str, &str); 8] = [
    ("←", "ArrowLeft"),
    ("↑", "ArrowUp"),
    ("↓", "ArrowDown"),
    ("→", "ArrowRight"),
    ("Home", "Home"),
    ("End", "End"),
    ("PgUp", "PageUp"),
    ("PgDn", "PageDown"),
];

/// Keys typed in the hidden field that produce no text: sent as keys, not left to the field.
fn is_text_key(event: &KeyboardEvent) -> bool {
    if event.ctrl_key() || event.meta_key() || (event.alt_key() && !event.get_modifier_state("AltGraph")) {
        return false;
    }
    let key = event.key();
    // Characters, Backspace/Enter (edits of the field) and IME keys go through the field's value.
    key.chars().count() == 1 || matches!(key.as_str(), "Backspace" | "Enter" | "Unidentified" | "Process" | "Dead")
}

/// Whether the touch keyboard's hidden field has the focus, i.e. the soft keyboard is open: a window
/// resize then is the keyboard, not a new screen.
pub fn typing() -> bool {
    gloo::utils::document()
        .active_element()
        .is_some_and(|element| element.class_name().split_whitespace().any(|class| class == "hd-softfield"))
}

#[function_component]
pub fn SoftKeys(props: &SoftKeysProps) -> Html {
    let open = use_state(|| false);
    let show_fn = use_state(|| false);
    let show_settings = use_state(|| false);
    let prefs = use_state(prefs::load);
    let field = use_node_ref();
    let soft = use_mut_ref(SoftInput::new);
    let latch = use_mut_ref(ModifierLatch::default);
    let redraw = use_force_update();
    // Distance of the visual viewport's bottom from the layout viewport's (the soft keyboard).
    let keyboard_inset = use_state(|| 0.0f64);

    {
        let keyboard_inset = keyboard_inset.clone();
        use_effect_with((), move |_| {
            let listeners = gloo::utils::window().visual_viewport().map(|viewport| {
                let update = {
                    let viewport = viewport.clone();
                    move || {
                        let window = gloo::utils::window();
                        let inner = window.inner_height().ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
                        let inset = (inner - viewport.offset_top() - viewport.height()).max(0.0);
                        keyboard_inset.set(inset);
                    }
                };
                let on_resize = update.clone();
                [
                    EventListener::new(&viewport, "resize", move |_| on_resize()),
                    EventListener::new(&viewport, "scroll", move |_| update()),
                ]
            });
            move || drop(listeners)
        });
    }

    let send_all = {
        let send = props.send.clone();
        move |inputs: Vec<Input>| inputs.into_iter().for_each(|input| send.emit(input))
    };
    let apply = {
        let (send_all, latch, field, redraw) = (send_all.clone(), latch.clone(), field.clone(), redraw.clone());
        move |update: FieldUpdate| {
            if !update.edit.is_empty() {
                send_all(update.edit.inputs());
                let released = latch.borrow_mut().release();
                if !released.is_empty() {
                    send_all(released);
                    redraw.force_update();
                }
            }
            if let (Some(value), Some(area)) = (update.reset_to, field.cast::<HtmlTextAreaElement>()) {
                set_field(&area, &value);
            }
        }
    };

    let on_toggle = {
        let (open, field, soft) = (open.clone(), field.clone(), soft.clone());
        Callback::from(move |_: MouseEvent| {
            let Some(area) = field.cast::<HtmlTextAreaElement>() else { return };
            if *open {
                let _ = area.blur();
                open.set(false);
            } else {
                // Focus inside the tap itself: iOS opens the keyboard only for a user gesture.
                let value = soft.borrow_mut().reset().to_owned();
                set_field(&area, &value);
                let _ = area.focus();
                open.set(true);
            }
        })
    };
    let on_input = {
        let (soft, apply) = (soft.clone(), apply.clone());
        Callback::from(move |event: InputEvent| {
            let Some(area) = event.target_dyn_into::<HtmlTextAreaElement>() else { return };
            let update = soft.borrow_mut().input(&area.value(), event.is_composing());
            apply(update);
        })
    };
    {
        // yew has no composition listeners: attached here, once.
        let (soft, apply, field) = (soft.clone(), apply.clone(), field.clone());
        use_effect_with((), move |_| {
            let listeners = field.cast::<HtmlTextAreaElement>().map(|area| {
                let start = {
                    let soft = soft.clone();
                    EventListener::new(&area, "compositionstart", move |_| soft.borrow_mut().composition_start())
                };
                let target = area.clone();
                let end = EventListener::new(&area, "compositionend", move |_| {
                    let update = soft.borrow_mut().composition_end(&target.value());
                    apply(update);
                });
                [start, end]
            });
            move || drop(listeners)
        });
    }
    let on_field_key = |pressed: bool| {
        let send = props.send.clone();
        Callback::from(move |event: KeyboardEvent| {
            if event.is_composing() || is_text_key(&event) {
                return;
            }
            // Navigation, function keys and shortcuts of a hardware keyboard: keys, not text.
            event.prevent_default();
            if let Some(input @ Input::Key { .. }) = key_input(&event.code(), &event.key(), pressed) {
                send.emit(input);
            }
        })
    };

    // Buttons must not take the focus from the field, or the soft keyboard closes.
    let keep_focus = Callback::from(|event: MouseEvent| event.prevent_default());
    let key_button = |label: &'static str, code: &'static str| {
        let (send_all, latch, redraw) = (send_all.clone(), latch.clone(), redraw.clone());
        let onclick = Callback::from(move |_: MouseEvent| {
            send_all(latch.borrow_mut().key(code));
            redraw.force_update();
        });
        html! {
            <button type="button" onmousedown={keep_focus.clone()} {onclick} data-testid={format!("key-{code}")}>
                { label }
            </button>
        }
    };
    let modifier_button = |label: &'static str, code: &'static str| {
        let (send_all, latch, redraw) = (send_all.clone(), latch.clone(), redraw.clone());
        let latched = latch.borrow().is_latched(code);
        let onclick = Callback::from(move |_: MouseEvent| {
            send_all(latch.borrow_mut().toggle(code));
            redraw.force_update();
        });
        html! {
            <button type="button" class={classes!(latched.then_some("hd-latched"))} aria-pressed={latched.to_string()}
                    onmousedown={keep_focus.clone()} {onclick} data-testid={format!("key-{code}")}>
                { label }
            </button>
        }
    };
    let on_ctrl_alt_del = {
        let (send_all, latch, redraw) = (send_all.clone(), latch.clone(), redraw.clone());
        Callback::from(move |_: MouseEvent| {
            send_all(latch.borrow_mut().release());
            send_all(vec![Input::CtrlAltDel]);
            redraw.force_update();
        })
    };
    let on_fn = {
        let show_fn = show_fn.clone();
        Callback::from(move |_: MouseEvent| show_fn.set(!*show_fn))
    };
    let on_settings = {
        let show_settings = show_settings.clone();
        Callback::from(move |_: MouseEvent| show_settings.set(!*show_settings))
    };
    let change = |edit: fn(&mut Prefs, &str)| {
        let prefs = prefs.clone();
        Callback::from(move |event: Event| {
            let Some(select) = event.target_dyn_into::<HtmlSelectElement>() else { return };
            let mut next = (*prefs).clone();
            edit(&mut next, &select.value());
            prefs::save(&next);
            prefs.set(next);
            // The touch pointer reads the preferences when it is drawn next.
            if let Ok(event) = web_sys::Event::new(PREFS_CHANGED) {
                let _ = gloo::utils::window().dispatch_event(&event);
            }
        })
    };

    // The page's CSP forbids style attributes: the bar's place and opacity are set through the CSSOM.
    let bar = use_node_ref();
    {
        let (bar, bottom, opacity) = (bar.clone(), *keyboard_inset, f64::from(prefs.bar_opacity) / 100.0);
        use_effect(move || {
            if let Some(element) = bar.cast::<web_sys::HtmlElement>() {
                let _ = element.style().set_property("bottom", &format!("{bottom:.0}px"));
                let _ = element.style().set_property("opacity", &format!("{opacity:.2}"));
            }
        });
    }
    html! {
        <>
            <button type="button" onclick={on_toggle} onmousedown={keep_focus.clone()} data-testid="keyboard-toggle"
                    aria-expanded={open.to_string()} aria-label="Keyboard" title="Keyboard">{ "⌨" }</button>
            if props.ctrl_alt_del {
                <button type="button" onclick={on_ctrl_alt_del.clone()} data-testid="menu-ctrl-alt-del"
                        title="Send Ctrl+Alt+Del">{ "Ctrl+Alt+Del" }</button>
            }
            <textarea ref={field} class="hd-softfield" data-testid="keyboard-input" aria-label="Type on the workstation"
                      autocapitalize="sentences" autocomplete="off" spellcheck="false" rows="1"
                      oninput={on_input}
                      onkeydown={on_field_key(true)} onkeyup={on_field_key(false)} />
            if *open {
                <div ref={bar} class="hd-keybar" data-testid="key-bar" role="toolbar" aria-label="Special keys">
                    if *show_settings {
                        { settings(&prefs, &change) }
                    }
                    if *show_fn {
                        <div class="hd-keyrow">
                            { for (1..=12).map(|n| key_button(FUNCTION_LABELS[n - 1], FUNCTION_CODES[n - 1])) }
                        </div>
                    }
                    <div class="hd-keyrow">
                        { key_button("Esc", "Escape") }
                        { key_button("Tab", "Tab") }
                        { for MODIFIERS.iter().map(|&(label, code)| modifier_button(label, code)) }
                        { for NAVIGATION.iter().map(|&(label, code)| key_button(label, code)) }
                        <button type="button" onmousedown={keep_focus.clone()} onclick={on_fn} data-testid="key-fn"
                                aria-pressed={show_fn.to_string()}>{ "F1–F12" }</button>
                        if props.ctrl_alt_del {
                            <button type="button" onmousedown={keep_focus.clone()} onclick={on_ctrl_alt_del}
                                    data-testid="key-ctrl-alt-del">{ "Ctrl+Alt+Del" }</button>
                        }
                        <button type="button" onmousedown={keep_focus} onclick={on_settings}
                                data-testid="keyboard-settings" aria-pressed={show_settings.to_string()}
                                title="Keyboard and pointer settings">{ "⚙" }</button>
                    </div>
                </div>
            }
        </>
    }
}

/// Name of the window event sent when the preferences changed.
pub const PREFS_CHANGED: &str = "homedesk-prefs";

const FUNCTION_LABELS: [&str; 12] = ["F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12"];
const FUNCTION_CODES: [&str; 12] = FUNCTION_LABELS;

fn settings(prefs: &Prefs, change: &impl Fn(fn(&mut Prefs, &str)) -> Callback<Event>) -> Html {
    let opacity_options = |current: u32| {
        OPACITIES
            .iter()
            .map(|&value| html! {
                <option value={value.to_string()} selected={value == current}>{ format!("{value} %") }</option>
            })
            .collect::<Html>()
    };
    html! {
        <div class="hd-keyrow hd-keysettings" data-testid="keyboard-settings-panel">
            <label>{ "Keyboard layout " }
                <select data-testid="setting-layout" onchange={change(|p, v| {
                    p.keyboard_layout = v.parse().unwrap_or(p.keyboard_layout)
                })}>
                    { for LAYOUTS.iter().map(|layout| html! {
                        <option value={layout.id.to_string()} selected={layout.id == prefs.keyboard_layout}>
                            { layout.name }
                        </option>
                    }) }
                </select>
            </label>
            <small>{ "(applies from the next connection)" }</small>
            <label>{ "Pointer " }
                <select data-testid="setting-pointer-size" onchange={change(|p, v| {
                    p.pointer_size = PointerSize::ALL.into_iter().find(|s| s.name() == v).unwrap_or(p.pointer_size)
                })}>
                    { for PointerSize::ALL.iter().map(|size| html! {
                        <option value={size.name()} selected={*size == prefs.pointer_size}>{ size.name() }</option>
                    }) }
                </select>
            </label>
            <label>{ "Pointer opacity " }
                <select data-testid="setting-pointer-opacity"
                        onchange={change(|p, v| p.pointer_opacity = v.parse().unwrap_or(p.pointer_opacity))}>
                    { opacity_options(prefs.pointer_opacity) }
                </select>
            </label>
            <label>{ "Bar opacity " }
                <select data-testid="setting-bar-opacity"
                        onchange={change(|p, v| p.bar_opacity = v.parse().unwrap_or(p.bar_opacity))}>
                    { opacity_options(prefs.bar_opacity) }
                </select>
            </label>
        </div>
    }
}

/// Puts `value` in the field with the caret at its end (where typing continues).
fn set_field(area: &HtmlTextAreaElement, value: &str) {
    area.set_value(value);
    let end = value.encode_utf16().count() as u32;
    let _ = area.set_selection_range(end, end);
}
