//! The Homedesk relay as a library: everything the `relay` binary does, callable in-process.
//!
//! It exists as a library so that integration tests (and later an admin console) can start a real
//! relay on port 0 inside the test process. The binary (`main.rs`, `cli.rs`) is a thin clap layer.
//!
//! Map: [`config`] (settings and data-dir layout) → [`server`] (startup: data dir, database, certificate,
//! first admin) → [`listener`] (accept loops, first-byte sniffing, graceful shutdown) → [`http`]
//! (router, JSON API, static portal) → [`tunnel`] (WebSocket ⇄ TCP byte pipe) or [`native`] (native
//! RDP clients routed by their cookie) with [`pipes`] (registry of live pipes). Persistence is in
//! [`store`]; [`auth`] (passwords, sessions, CSRF; local accounts first, then [`directory`] for LDAP/AD
//! sign-in and groups) and [`tickets`] hold the security decisions, with
//! [`bruteforce`] (failed-login blocking, whitelist) on top of [`netaddr`] (CIDR, client IP behind
//! trusted proxies) and [`clock`] (injectable time); [`broker`] is the validated admin API used by
//! the CLI; [`tls`] makes the self-signed certificate and serves whichever certificate is current;
//! [`certificates`] (import, restore, reset, the watcher), [`acme`] (free-certificate policy, pure) and
//! [`acme_client`] (the ACME conversation and the worker) manage the HTTPS certificate; [`totp`] is the
//! sans-I/O one-time-code core under [`twofa`] (two-factor sign-in), which sends SMS and email codes
//! through [`delivery`]. [`admin_api`] is the browser admin console's JSON API.
//! [`listeners`] moves, restarts and stops the listening sockets without cutting
//! pipes, driven by [`server_admin`] (stored server settings, jobs for the serving relay) from the CLI or
//! [`server_api`]. [`config_transfer`] exports and imports the whole configuration (CLI and [`config_api`]).
//! [`portal`] keeps the designed login pages ([`portal_design`]: their rules, pure;
//! [`portal_api`]: the console's JSON API).

pub mod acme;
pub mod acme_client;
pub mod admin_api;
pub mod admin_audit;
pub mod audit;
pub mod auth;
pub mod broker;
pub mod bruteforce;
pub mod certificate_api;
pub mod certificates;
pub mod client_settings;
pub mod client_settings_api;
pub mod clock;
pub mod config;
pub mod config_api;
pub mod config_transfer;
pub mod delivery;
pub mod directory;
pub mod directory_api;
pub mod http;
pub mod listener;
pub mod listeners;
pub mod native;
pub mod native_route;
pub mod netaddr;
pub mod pipes;
pub mod portal;
pub mod portal_api;
pub mod portal_design;
pub mod security_admin;
pub mod security_api;
pub mod server;
pub mod server_admin;
pub mod server_api;
pub mod store;
pub mod tickets;
pub mod tls;
pub mod totp;
pub mod tunnel;
pub mod tunnel_sync;
pub mod twofa;
pub mod twofa_api;

pub use config::ServeConfig;
pub use server::{start, RunningServer, StartError};
