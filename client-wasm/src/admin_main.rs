//! The admin console in the browser (`/admin`), a bundle of its own: the portal's users never
//! download the console's pages, and the console never downloads the RDP client (the relay serves
//! `admin-console/index.html`, built by trunk from `admin.html`, for every path under `/admin`).

mod admin;
// Shared with the portal's bundle, which uses more of them (the console signs in through the
// portal's API and previews designed login pages, whose look carries the client settings).
#[allow(dead_code)]
mod api;
#[allow(dead_code)]
mod branding;
#[allow(dead_code)]
mod client_settings;

fn main() {
    yew::Renderer::<admin::AdminApp>::new().render();
}
