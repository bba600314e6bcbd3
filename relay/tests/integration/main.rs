//! Integration tests of the relay: one test binary (one link step), one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod acme;
mod acme_gaps;
mod admin;
mod api;
mod cli;
mod cli_sessions;
mod client_settings;
#[allow(dead_code)]
mod common;
mod config_transfer;
mod db_unavailable;
mod postgres_tls;
mod directory;
mod kill_during_change;
mod native;
mod native_audit;
mod portal;
mod portal_folders;
mod scale_out;
mod schema_upgrade;
mod security;
mod security_api;
mod server_mgmt;
mod shared_workstation;
mod storage;
mod tickets;
mod tunnel;
mod twofa;
mod twofa_delivery;
mod twofa_key_file;
