//! The Homedesk portal in the browser: the login form, then the user's office desktop on a canvas.
//!
//! UI only (yew); the RDP protocol lives in `homedesk-client-core`, the WebSocket and canvas glue in
//! `session`, the relay's API in `api`.

mod api;
mod app;
mod clipboard;
mod desktop;
mod session;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
