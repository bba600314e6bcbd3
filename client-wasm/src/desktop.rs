//! The desktop page: the canvas showing the workstation, a slim menu bar, and the browser's
//! keyboard and mouse events turned into `Input` for the session.

use crate::api;
use crate::app::SharedCredentials;
use crate::session::{Session, Status};
use homedesk_client_core::{Input, MouseButton};
use std::rc::Rc;
use web_sys::HtmlCanvasElement;
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

/// Height of the menu bar in CSS pixels; the desktop gets the rest of the window.
const MENU_HEIGHT: f64 = 32.0;

#[function_component]
pub fn Desktop(props: &DesktopProps) -> Html {
    let canvas = use_node_ref();
    let session = use_mut_ref(|| None::<Session>);
    let status = use_state(|| Status::Connecting("Connecting to your workstation…"));
    // Each reconnection is a new generation: a new ticket and a new session on the same canvas.
    let generation = use_state(|| 0u32);
    let countdown = use_state(|| None::<u32>);
    let ticker = use_mut_ref(|| None::<gloo::timers::callback::Interval>);

    {
        let (canvas, session, status, countdown, ticker) =
            (canvas.clone(), session.clone(), status.clone(), countdown.clone(), ticker.clone());
        let (portal, ticket, credentials, on_end) =
            (props.portal.clone(), props.ticket.clone(), props.credentials.clone(), props.on_end.clone());
        let next_generation = generation.clone();
        let stop_ticker = ticker.clone();
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
                    other => status.set(other),
                })
            };
            let ticket_portal = portal.clone();
            let start = {
                let (canvas, session, on_status) = (canvas.clone(), session.clone(), on_status.clone());
                move |ticket: api::Ticket| {
                    let Some(element) = canvas.cast::<HtmlCanvasElement>() else { return };
                    let started = Session::start(
                        portal.clone(),
                        ticket,
                        credentials.to_credentials(),
                        element,
                        desktop_size(),
                        on_status.clone(),
                    );
                    match started {
                        Ok(started) => *session.borrow_mut() = Some(started),
                        Err(message) => on_status.emit(Status::Ended { message, is_error: true }),
                    }
                }
            };
            if *generation == 0 {
                start(ticket);
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
        let send = send.clone();
        Callback::from(move |event: KeyboardEvent| {
            event.prevent_default();
            send(Input::Key { code: event.code(), pressed });
        })
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
        _ => None,
    };
    let state_text = match &*status {
        Status::Connecting(_) => "connecting",
        Status::Dropped => "reconnecting",
        _ => "connected",
    };
    html! {
        <div class="hd-desktop">
            <nav class="hd-menu" aria-label="Session">
                <span data-testid="session-workstation">{ &props.ticket.workstation.name }</span>
                <span data-testid="session-status">{ state_text }</span>
                <span class="hd-spacer"></span>
                <button type="button" onclick={on_logout} data-testid="logout">{ "Sign out" }</button>
            </nav>
            <div class="hd-screen">
                <canvas ref={canvas.clone()} tabindex="0" data-testid="desktop-canvas" width="1" height="1"
                        aria-label="Remote desktop"
                        onkeydown={key(true)} onkeyup={key(false)} onmousedown={button(true)} onmouseup={button(false)}
                        {onmousemove} {onwheel} {onblur} {oncontextmenu} />
                if let Some(text) = connecting {
                    <div class="hd-overlay" data-testid="session-connecting">
                        <div class="hd-card"><div class="hd-spinner"></div>{ text }</div>
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

/// The desktop size asked for at connect: the browser window below the menu bar.
fn desktop_size() -> (u16, u16) {
    let window = gloo::utils::window();
    let width = window.inner_width().ok().and_then(|v| v.as_f64()).unwrap_or(1024.0);
    let height = window.inner_height().ok().and_then(|v| v.as_f64()).unwrap_or(768.0) - MENU_HEIGHT;
    // Even widths avoid padding quirks in some servers' encoders.
    let width = (width.clamp(640.0, 3840.0) as u16) & !1;
    let height = height.clamp(480.0, 2160.0) as u16;
    (width, height)
}

