//! `relay server …`: the web server's ports, bind address and web root, listener status, restart, stop.
//!
//! Changes go through [`homedesk_relay::server_admin::run`], the same operation as the admin console: a
//! job for the serving relay, which binds the new socket first and keeps the old one when that fails;
//! the command waits for the outcome and prints it (or fails with the relay's reason).

use crate::cli::{print_table, utc_time};
use anyhow::Result;
use clap::{Args, Subcommand};
use homedesk_relay::config::{DataDir, ServeConfig};
use homedesk_relay::server_admin::{self, JobKind, ServerSettings};
use homedesk_relay::store::{ServerChange, Store};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// The settings and each serving relay's listeners (address, state, last error).
    Status,
    /// Change ports, bind address or web root; a running relay applies them at once (open sessions
    /// stay), else they apply at its next start.
    Set(SetArgs),
    /// Rebind the listeners and reload the settings without cutting open sessions.
    Restart,
    /// Stop accepting connections (open sessions keep running; `start` listens again).
    Stop,
    /// Listen again after `stop`.
    Start,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    https_port: Option<u16>,
    /// Plain-HTTP port (redirects to HTTPS, answers ACME HTTP-01 challenges).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    http_port: Option<u16>,
    /// IP address to listen on (0.0.0.0 or :: for every interface).
    #[arg(long)]
    bind: Option<String>,
    /// Absolute path of the built portal on the relay's machine.
    #[arg(long, conflicts_with = "no_web_root")]
    web_root: Option<PathBuf>,
    /// Serve no portal files (the "client not built" page).
    #[arg(long)]
    no_web_root: bool,
}

pub async fn run(store: &Store, data_dir: &DataDir, command: ServerCommand) -> Result<()> {
    let (kind, change) = match command {
        ServerCommand::Status => return status(store, data_dir).await,
        ServerCommand::Set(args) => {
            if args.https_port.is_none()
                && args.http_port.is_none()
                && args.bind.is_none()
                && args.web_root.is_none()
                && !args.no_web_root
            {
                anyhow::bail!("nothing to change: give --https-port, --http-port, --bind, --web-root or --no-web-root");
            }
            let change = ServerChange {
                https_port: args.https_port,
                http_port: args.http_port,
                bind: args.bind,
                web_root: args.web_root.map(|root| root.display().to_string()),
                clear_web_root: args.no_web_root,
            };
            (JobKind::Apply, change)
        }
        ServerCommand::Restart => (JobKind::Restart, ServerChange::default()),
        ServerCommand::Stop => (JobKind::Stop, ServerChange::default()),
        ServerCommand::Start => (JobKind::Start, ServerChange::default()),
    };
    println!("{}", server_admin::run(store, kind, &change).await?);
    Ok(())
}

async fn status(store: &Store, data_dir: &DataDir) -> Result<()> {
    let settings = ServerSettings::effective(store, &ServeConfig::new(data_dir.root())).await?;
    let row = |name: &str, value: &str| println!("{name:<12}{value}");
    row("HTTPS port", &settings.https_port.to_string());
    row("HTTP port", &settings.http_port.to_string());
    row("Bind", &settings.bind.to_string());
    let root = settings.web_root.map(|root| root.display().to_string());
    row("Web root", root.as_deref().unwrap_or("(none)"));
    println!();
    let rows: Vec<[String; 6]> = server_admin::live_listeners(store)
        .await?
        .into_iter()
        .map(|l| {
            [
                l.relay_id,
                l.name,
                l.address,
                l.state,
                l.error.unwrap_or_else(|| "-".into()),
                utc_time(l.seen_at),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("No relay is serving with this database.");
    } else {
        print_table(
            [
                "RELAY",
                "LISTENER",
                "ADDRESS",
                "STATE",
                "LAST ERROR",
                "SEEN",
            ],
            &rows,
        );
    }
    Ok(())
}
