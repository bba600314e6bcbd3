//! The Homedesk portal in the browser: the login form, then the user's office desktop on a canvas.
//!
//! UI only (yew); the RDP protocol lives in `homedesk-client-core`, the WebSocket and canvas glue in
//! `session`, the relay's API in `api`. Under `/admin` the same bundle is the admin console (`admin`).

mod admin;
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
mod session;
mod softkeys;
mod touch;

fn main() {
    let path = gloo::utils::window().location().pathname().unwrap_or_default();
    if admin::is_admin_path(&path) {
        yew::Renderer::<admin::AdminApp>::new().render();
    } else {
        yew::Renderer::<app::App>::new().render();
    }
}
