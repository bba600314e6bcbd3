//! The desktop page: the canvas showing the workstation, a slim menu bar, and the browser's
//! keyboard and mouse events turned into `Input` for the session.
//!
//! Clipboard: when the canvas gets focus the browser's clipboard text is read (async Clipboard API,
//! after the browser's permission prompt) and offered to the workstation; a paste gesture
//! (Ctrl/Cmd+V) is held back until the page's `paste` event has delivered the text, so the
//! workstation pastes what the user just copied. Text copied on the workstation is written to the
//! browser's clipboard. The clipboard panel (menu "Clipboard") is the fallback where the API is
//! missing or refused: it shows the workstation's text and sends pasted text.

use crate::api;
use crate::app::SharedCredentials;
use crate::client_settings::{self, ClientSettings};
use crate::clipboard;
use crate::display;
use crate::files::FilesPanel;
use crate::session::{ClipboardNotice, Session, Status};
use crate::softkeys::SoftKeys;
use crate::touch;
use homedesk_client_core::{key_input, ClipboardContent, Input, MouseButton};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{ClipboardEvent, HtmlCanvasElement, HtmlElement, HtmlTextAreaElement};
use yew::prelude::*;

/// Why the desktop page closed, shown on the login page.
pub struct Outcome {
    pub message: String,
    pub is_error: bool,
}

#[derive(Properties, PartialEq)]
pub struct DesktopProps {
    pub portal: api::PortalSession,
    pub ticket: api::Ticket,
    pub credentials: Rc<SharedCredentials>,
    pub on_end: Callback<Outcome>,
}

#[function_component]
pub fn Desktop(props: &DesktopProps) -> Html {
    let canvas = use_node_ref();
    let session = use_mut_ref(|| None::<Session>);
    let status = use_state(|| Status::Connecting("Connecting to your workstation…"));
    // Each reconnection is a new generation: a new ticket and a new session on the same canvas.
    let generation = use_state(|| 0u32);
    let countdown = use_state(|| None::<u32>);
    let ticker = use_mut_ref(|| None::<gloo::timers::callback::Interval>);
    let clip_open = use_state(|| false);
    let files_open = use_state(|| false);
    let clip_text = use_state(String::new);
    let clip_notice = use_state(|| None::<String>);
    // The workstation's copied image as a `data:` URL, shown in the clipboard panel.
    let clip_image = use_state(|| None::<String>);
    // The key-down of a paste gesture, waiting for the `paste` event's text.
    let held_paste_key = use_mut_ref(|| None::<String>);
    // The browser's clipboard when it was last read: only a change is offered again, so text sent
    // from the panel is not replaced by an older browser clipboard on the next focus.
    let last_browser_clipboard = use_mut_ref(|| None::<ClipboardContent>);
    // The HTML5 client settings (menu, colours, logon screen); see `display` for the desktop's size.
    let settings = use_state(client_settings::current);
    let mobile = client_settings::is_mobile();
    let menu_shown = settings.shows_menu(mobile);
    // A transparent menu floats over the desktop instead of taking space above it.
    let menu_takes_space = menu_shown && !settings.menu_transparent;
    let logon_gif_done = use_state(|| false);
    let page = use_node_ref();
    use_settings(&settings, &logon_gif_done, &page);
    {
        let session = session.clone();
        use_effect_with(menu_takes_space, move |&menu_takes_space| {
            let window_width = || gloo::utils::window().inner_width().ok().and_then(|w| w.as_f64()).unwrap_or(0.0);
            let last_width = std::cell::Cell::new(window_width());
            let watcher = display::ResizeWatcher::new(move || {
                // A window that only gets shorter for the soft keyboard (resizes-content browsers) keeps the
                // desktop's size; a rotation (new width) still resizes it.
                let width = window_width();
                if crate::softkeys::typing() && width == last_width.get() {
                    return;
                }
                last_width.set(width);
                if let Some(session) = session.borrow().as_ref() {
                    session.resize(display::desktop_size(menu_takes_space));
                }
            });
            move || drop(watcher)
        });
    }

    {
        let (canvas, session, status, countdown, ticker) =
            (canvas.clone(), session.clone(), status.clone(), countdown.clone(), ticker.clone());
        let (portal, ticket, credentials, on_end) =
            (props.portal.clone(), props.ticket.clone(), props.credentials.clone(), props.on_end.clone());
        let next_generation = generation.clone();
        let stop_ticker = ticker.clone();
        let on_clipboard = {
            let (clip_text, clip_notice, clip_image) = (clip_text.clone(), clip_notice.clone(), clip_image.clone());
            Callback::from(move |notice: ClipboardNotice| match notice {
                ClipboardNotice::Remote { content, on_clipboard } => {
                    let what = clipboard::describe(&content);
                    clip_notice.set(Some(if on_clipboard {
                        format!("Copied on the workstation: {what}, now on this computer's clipboard.")
                    } else {
                        format!("Copied on the workstation: {what}. Copy it from the clipboard panel.")
                    }));
                    clip_text.set(content.text.unwrap_or_default());
                    clip_image.set(content.png.as_deref().map(clipboard::data_url));
                }
                ClipboardNotice::Error(message) => clip_notice.set(Some(message)),
            })
        };
        use_effect_with(*generation, move |generation| {
            // a reconnection starts: the countdown that led here is over
            drop(stop_ticker.borrow_mut().take());
            let on_status = {
                let on_end = on_end.clone();
                Callback::from(move |next: Status| match next {
                    Status::Ended { message, is_error } => on_end.emit(Outcome { message, is_error }),
                    Status::Dropped => {
                        status.set(Status::Dropped);
                        *ticker.borrow_mut() = Some(start_countdown(countdown.clone(), next_generation.clone()));
                    }
                    Status::Reattach => {
                        status.set(Status::Connecting("Adjusting the desktop to your window…"));
                        next_generation.set(*next_generation + 1);
                    }
                    other => status.set(other),
                })
            };
            let ticket_portal = portal.clone();
            let start = {
                let (canvas, session, on_status) = (canvas.clone(), session.clone(), on_status.clone());
                let on_clipboard = on_clipboard.clone();
                move |ticket: api::Ticket| {
                    let Some(element) = canvas.cast::<HtmlCanvasElement>() else { return };
                    let started = Session::start(
                        portal.clone(),
                        ticket,
                        credentials.to_credentials(),
                        element,
                        &client_settings::current(),
                        on_status.clone(),
                        on_clipboard.clone(),
                    );
                    match started {
                        Ok(started) => *session.borrow_mut() = Some(started),
                        Err(message) => on_status.emit(Status::Ended { message, is_error: true }),
                    }
                }
            };
            if *generation == 0 {
                // The settings decide the colour depth and the timeout: ask the portal first if needed.
                wasm_bindgen_futures::spawn_local(async move {
                    client_settings::load().await;
                    start(ticket);
                });
            } else {
                let id = ticket.workstation.id;
                wasm_bindgen_futures::spawn_local(async move {
                    match api::ticket(&ticket_portal, Some(id)).await {
                        Ok(ticket) => start(ticket),
                        Err(message) => on_status.emit(Status::Ended { message, is_error: true }),
                    }
                });
            }
            let session = session.clone();
            move || drop(session.borrow_mut().take())
        });
    }

    let send = {
        let session = session.clone();
        move |input: Input| {
            if let Some(session) = session.borrow().as_ref() {
                session.input(input);
            }
        }
    };
    let key = |pressed: bool| {
        let (send, held_paste_key) = (send.clone(), held_paste_key.clone());
        Callback::from(move |event: KeyboardEvent| {
            let code = event.code();
            if pressed && code == "KeyV" && (event.ctrl_key() || event.meta_key()) && !event.repeat() {
                // Let the browser run its paste (the `paste` event below), then send the key.
                *held_paste_key.borrow_mut() = Some(code);
                return;
            }
            event.prevent_default();
            if !pressed {
                release_held_key(&held_paste_key, &send);
            }
            // A key without a usable code (unknown layout or device) sends its character.
            if let Some(input) = key_input(&code, &event.key(), pressed) {
                send(input);
            }
        })
    };
    // Touch keyboard and touch as a mouse (softkeys.rs, touch.rs).
    let send_input = Callback::from(send.clone());
    let touch_pointer = touch::use_touch(canvas.clone(), send_input.clone());
    let onpaste = {
        let (session, send, held_paste_key) = (session.clone(), send.clone(), held_paste_key.clone());
        Callback::from(move |event: Event| {
            event.prevent_default();
            let Some(data) = event.dyn_ref::<ClipboardEvent>().and_then(ClipboardEvent::clipboard_data) else {
                release_held_key(&held_paste_key, &send);
                return;
            };
            let (content, image) = clipboard::pasted(&data);
            let Some(image) = image else {
                offer_pasted(&session, content);
                release_held_key(&held_paste_key, &send);
                return;
            };
            // The image is read first: the workstation's paste key goes down once it is announced.
            let (session, send, held_paste_key) = (session.clone(), send.clone(), held_paste_key.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let png = clipboard::file_bytes(&image).await;
                offer_pasted(&session, ClipboardContent { png, ..content });
                release_held_key(&held_paste_key, &send);
            });
        })
    };
    let onfocus = {
        let (session, last) = (session.clone(), last_browser_clipboard.clone());
        Callback::from(move |_: FocusEvent| offer_browser_clipboard(session.clone(), last.clone()))
    };
    let button = |pressed: bool| {
        let (send, canvas) = (send.clone(), canvas.clone());
        Callback::from(move |event: MouseEvent| {
            event.prevent_default();
            if let Some(element) = canvas.cast::<HtmlCanvasElement>() {
                let _ = element.focus();
            }
            if let Some(button) = mouse_button(event.button()) {
                send(Input::MouseButton { button, pressed });
            }
        })
    };
    let onmousemove = {
        let (send, canvas) = (send.clone(), canvas.clone());
        Callback::from(move |event: MouseEvent| {
            if let Some((x, y)) = canvas_position(&canvas, f64::from(event.client_x()), f64::from(event.client_y())) {
                send(Input::MouseMove { x, y });
            }
        })
    };
    let onwheel = {
        let send = send.clone();
        Callback::from(move |event: WheelEvent| {
            event.prevent_default();
            // DOM: positive deltaY scrolls down; RDP: positive rotation scrolls up. One notch each event.
            let vertical = event.delta_y().abs() >= event.delta_x().abs();
            let delta = if vertical { event.delta_y() } else { event.delta_x() };
            if delta != 0.0 {
                let amount = if delta > 0.0 { -120 } else { 120 };
                send(Input::Wheel { vertical, amount: if vertical { amount } else { -amount } });
            }
        })
    };
    let onblur = {
        let session = session.clone();
        Callback::from(move |_: FocusEvent| {
            if let Some(session) = session.borrow().as_ref() {
                session.release_all();
            }
        })
    };
    let oncontextmenu = Callback::from(|event: MouseEvent| event.prevent_default());
    let on_logout = {
        let (session, portal, on_end) = (session.clone(), props.portal.clone(), props.on_end.clone());
        Callback::from(move |_: MouseEvent| {
            if let Some(session) = session.borrow_mut().take() {
                session.disconnect();
            }
            let (portal, on_end) = (portal.clone(), on_end.clone());
            wasm_bindgen_futures::spawn_local(async move {
                api::logout(&portal).await;
                on_end.emit(Outcome { message: "You have signed out.".to_owned(), is_error: false });
            });
        })
    };

    let on_disconnect = {
        let (session, on_end) = (session.clone(), props.on_end.clone());
        Callback::from(move |_: MouseEvent| {
            if let Some(session) = session.borrow_mut().take() {
                session.disconnect();
            }
            on_end.emit(Outcome {
                message: "You are disconnected. Your session stays open on the workstation: sign in to return to it."
                    .to_owned(),
                is_error: false,
            });
        })
    };
    let on_log_off = {
        let session = session.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(session) = session.borrow().as_ref() {
                session.log_off();
            }
        })
    };
    let on_clip_toggle = {
        let clip_open = clip_open.clone();
        Callback::from(move |_: MouseEvent| clip_open.set(!*clip_open))
    };
    let on_files_toggle = {
        let files_open = files_open.clone();
        Callback::from(move |_: MouseEvent| files_open.set(!*files_open))
    };
    let on_clip_input = {
        let clip_text = clip_text.clone();
        Callback::from(move |event: InputEvent| {
            if let Some(area) = event.target_dyn_into::<HtmlTextAreaElement>() {
                clip_text.set(area.value());
            }
        })
    };
    let on_clip_send = {
        let (session, clip_text, clip_notice, canvas) =
            (session.clone(), clip_text.clone(), clip_notice.clone(), canvas.clone());
        Callback::from(move |_: MouseEvent| {
            if let Some(session) = session.borrow().as_ref() {
                session.set_local_clipboard(ClipboardContent::text((*clip_text).clone()));
                let chars = clip_text.chars().count();
                clip_notice.set(Some(format!("Sent {chars} characters: paste them on the workstation.")));
            }
            if let Some(element) = canvas.cast::<HtmlCanvasElement>() {
                let _ = element.focus();
            }
        })
    };
    let on_cancel = {
        let (ticker, on_end) = (ticker.clone(), props.on_end.clone());
        Callback::from(move |_: MouseEvent| {
            drop(ticker.borrow_mut().take());
            on_end.emit(Outcome {
                message: "Reconnection cancelled. Your session is still open on the workstation: sign in to return to it."
                    .to_owned(),
                is_error: false,
            });
        })
    };
    let connecting = match &*status {
        Status::Connecting(text) => Some(*text),
        _ if !*logon_gif_done && !settings.logon_gif.is_empty() => Some("Signing in to your workstation…"),
        _ => None,
    };
    let state_text = match &*status {
        Status::Connecting(_) => "connecting",
        Status::Dropped => "reconnecting",
        _ => "connected",
    };
    html! {
        <div class={classes!("hd-desktop", menu_shown.then_some("hd-with-menu"))} ref={page} data-testid="desktop-page">
            <nav class={classes!("hd-menu", if settings.menu_transparent { "hd-menu-transparent" } else { "hd-menu-solid" })}
                 aria-label="Session" hidden={!menu_shown} data-testid="session-menu">
                <span data-testid="session-workstation">{ &props.ticket.workstation.name }</span>
                <span data-testid="session-status">{ state_text }</span>
                <span class="hd-spacer"></span>
                <SoftKeys send={send_input} ctrl_alt_del={settings.offers_ctrl_alt_del(mobile)} />
                <button type="button" onclick={on_clip_toggle} data-testid="clipboard-toggle"
                        aria-expanded={clip_open.to_string()}>{ "Clipboard" }</button>
                <button type="button" onclick={on_files_toggle} data-testid="files-toggle"
                        aria-expanded={files_open.to_string()}>
                    { if settings.file_transfer { "Files" } else { "Print jobs" } }
                </button>
                <button type="button" onclick={on_disconnect} data-testid="session-disconnect">{ "Disconnect" }</button>
                <button type="button" onclick={on_log_off} data-testid="session-logoff">{ "Log off" }</button>
                <button type="button" onclick={on_logout} data-testid="logout">{ "Sign out" }</button>
            </nav>
            if *files_open {
                <FilesPanel />
            }
            if *clip_open {
                <section class="hd-clip" data-testid="clipboard-panel" aria-label="Clipboard">
                    <p>{ if clipboard::available() {
                        "Copy and paste work directly with the desktop. You can also paste text here and send it."
                    } else {
                        "This browser does not share its clipboard with the page: paste text here and send it, \
                         or copy what the workstation copied from here."
                    } }</p>
                    <textarea data-testid="clipboard-text" rows="4" value={(*clip_text).clone()}
                              oninput={on_clip_input} aria-label="Clipboard text" />
                    if let Some(src) = &*clip_image {
                        <img class="hd-clip-image" src={src.clone()} data-testid="clipboard-image"
                             alt="The image copied on the workstation" />
                    }
                    <div class="hd-clip-actions">
                        <button type="button" onclick={on_clip_send} data-testid="clipboard-send">
                            { "Send to workstation" }
                        </button>
                        if let (Some(notice), true) = (&*clip_notice, settings.show_warnings) {
                            <span data-testid="clipboard-notice" role="status">{ notice }</span>
                        }
                    </div>
                </section>
            }
            <div class="hd-screen">
                if !settings.background_logo.is_empty() {
                    <img class="hd-logo" src={settings.background_logo.clone()} alt="" data-testid="background-logo" />
                }
                <canvas ref={canvas.clone()} tabindex="0" data-testid="desktop-canvas" width="1" height="1"
                        aria-label="Remote desktop"
                        onkeydown={key(true)} onkeyup={key(false)} onmousedown={button(true)} onmouseup={button(false)}
                        {onmousemove} {onwheel} {onblur} {onfocus} {onpaste} {oncontextmenu} />
                { touch_pointer }
                if let Some(text) = connecting {
                    <div class="hd-overlay" data-testid="session-connecting">
                        <div class="hd-card">
                            if settings.logon_gif.is_empty() {
                                <div class="hd-spinner"></div>
                            } else {
                                <img class="hd-logon-gif" src={settings.logon_gif.clone()} alt="" data-testid="logon-gif" />
                            }
                            if settings.logon_message.is_empty() {
                                { text }
                            } else {
                                <p class="hd-logon-message" data-testid="logon-message">{ &settings.logon_message }</p>
                            }
                        </div>
                    </div>
                }
                if *status == Status::Dropped {
                    <div class="hd-overlay" data-testid="session-reconnecting" role="status">
                        <div class="hd-card">
                            <div class="hd-spinner"></div>
                            <p>{ "The connection was lost." }</p>
                            <p data-testid="reconnect-countdown">{
                                match *countdown {
                                    Some(seconds) => format!("Reconnecting in {seconds} s…"),
                                    None => "Reconnecting…".to_owned(),
                                }
                            }</p>
                            <button class="hd-button" type="button" onclick={on_cancel} data-testid="reconnect-cancel">
                                { "Cancel" }
                            </button>
                        </div>
                    </div>
                }
            </div>
        </div>
    }
}

/// Seconds shown before reconnecting after a drop.
const RECONNECT_DELAY_SECS: u32 = 5;

/// Counts down once a second, then starts the next generation (a reconnection).
fn start_countdown(countdown: UseStateHandle<Option<u32>>, generation: UseStateHandle<u32>) -> gloo::timers::callback::Interval {
    let left = std::rc::Rc::new(std::cell::Cell::new(RECONNECT_DELAY_SECS));
    countdown.set(Some(RECONNECT_DELAY_SECS));
    gloo::timers::callback::Interval::new(1_000, move || {
        let now = left.get().saturating_sub(1);
        left.set(now);
        if now == 0 {
            countdown.set(None);
            generation.set(*generation + 1);
        } else {
            countdown.set(Some(now));
        }
    })
}

/// Sends the held key-down of a paste gesture, if any.
fn release_held_key(held: &Rc<RefCell<Option<String>>>, send: &impl Fn(Input)) {
    if let Some(code) = held.borrow_mut().take() {
        send(Input::Key { code, pressed: true });
    }
}

/// Offers the browser's clipboard to the workstation if the browser lets the page read it and it
/// changed since the last read.
fn offer_browser_clipboard(session: Rc<RefCell<Option<Session>>>, last: Rc<RefCell<Option<ClipboardContent>>>) {
    wasm_bindgen_futures::spawn_local(async move {
        let Some(content) = clipboard::read().await else { return };
        if last.borrow().as_ref() == Some(&content) {
            return;
        }
        *last.borrow_mut() = Some(content.clone());
        if let Some(session) = session.borrow().as_ref() {
            session.set_local_clipboard(content);
        }
    });
}

/// What a paste event carried, for the workstation.
fn offer_pasted(session: &Rc<RefCell<Option<Session>>>, content: ClipboardContent) {
    if let (false, Some(session)) = (content.is_empty(), session.borrow().as_ref()) {
        session.set_local_clipboard(content);
    }
}

fn mouse_button(button: i16) -> Option<MouseButton> {
    match button {
        0 => Some(MouseButton::Left),
        1 => Some(MouseButton::Middle),
        2 => Some(MouseButton::Right),
        3 => Some(MouseButton::X1),
        4 => Some(MouseButton::X2),
        _ => None,
    }
}

/// Browser window coordinates → desktop pixels (the canvas may be scaled down to fit).
fn canvas_position(canvas: &NodeRef, client_x: f64, client_y: f64) -> Option<(u16, u16)> {
    let element = canvas.cast::<HtmlCanvasElement>()?;
    let rect = element.get_bounding_client_rect();
    if rect.width() <= 0.0 || rect.height() <= 0.0 {
        return None;
    }
    let x = (client_x - rect.left()) * f64::from(element.width()) / rect.width();
    let y = (client_y - rect.top()) * f64::from(element.height()) / rect.height();
    let clamp = |v: f64, max: u32| v.max(0.0).min(f64::from(max.saturating_sub(1))) as u16;
    Some((clamp(x, element.width()), clamp(y, element.height())))
}

/// Applies the client settings: fetched once (the login page usually did already), the background
/// colour set on the page, and the logon GIF's minimum display time counted from the page's start.
#[hook]
fn use_settings(settings: &UseStateHandle<ClientSettings>, gif_done: &UseStateHandle<bool>, page: &NodeRef) {
    {
        let settings = settings.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move { settings.set(client_settings::load().await) });
        });
    }
    {
        let page = page.clone();
        use_effect_with(settings.background_color.clone(), move |color| {
            if let Some(element) = page.cast::<HtmlElement>() {
                display::set_background(&element, color);
            }
        });
    }
    let gif_done = gif_done.clone();
    use_effect_with(settings.logon_gif_ms, move |&ms| {
        let timer = gloo::timers::callback::Timeout::new(ms, move || gif_done.set(true));
        move || drop(timer)
    });
}
