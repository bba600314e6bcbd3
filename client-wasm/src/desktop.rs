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

    {
        let (canvas, session, status) = (canvas.clone(), session.clone(), status.clone());
        let (portal, ticket, credentials, on_end) =
            (props.portal.clone(), props.ticket.clone(), props.credentials.clone(), props.on_end.clone());
        use_effect_with((), move |_| {
            let on_status = Callback::from(move |next: Status| match next {
                Status::Ended { message, is_error } => on_end.emit(Outcome { message, is_error }),
                other => status.set(other),
            });
            if let Some(element) = canvas.cast::<HtmlCanvasElement>() {
                match Session::start(portal, ticket, credentials.to_credentials(), element, desktop_size(), on_status.clone()) {
                    Ok(started) => *session.borrow_mut() = Some(started),
                    Err(message) => on_status.emit(Status::Ended { message, is_error: true }),
                }
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

    let connecting = match &*status {
        Status::Connecting(text) => Some(*text),
        _ => None,
    };
    html! {
        <div class="hd-desktop">
            <nav class="hd-menu" aria-label="Session">
                <span data-testid="session-workstation">{ &props.ticket.workstation.name }</span>
                <span data-testid="session-status">{ if connecting.is_some() { "connecting" } else { "connected" } }</span>
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
            </div>
        </div>
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

