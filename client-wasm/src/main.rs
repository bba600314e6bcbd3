//! The Homedesk portal in the browser: the login form, then the user's office desktop on a canvas.
//!
//! UI only (yew); the RDP protocol lives in `homedesk-client-core`, the WebSocket and canvas glue in
//! `session`, the relay's API in `api`. The admin console is a bundle of its own (`admin_main.rs`).

mod api;
mod app;
mod audio;
mod branding;
mod client_settings;
mod clipboard;
mod desktop;
mod display;
mod prefs;
mod files;
mod page_drive;
mod paint;
mod session;
mod softkeys;
mod touch;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
