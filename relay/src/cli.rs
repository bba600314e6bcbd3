//! The command line: `serve` and the administrative commands (users, workstations, assignments).
//!
//! Administrative commands work directly on the SQLite database of `--data-dir` (safe while the
//! server runs: WAL mode). They go through `homedesk_relay::broker` for validation, so the future
//! admin console enforces the same rules.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use homedesk_relay::broker;
use homedesk_relay::config::{normalize_origin, DataDir, ServeConfig};
use homedesk_relay::server::open_store;
use homedesk_relay::store::Store;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "relay",
    version,
    about = "Homedesk relay: the portal, its accounts and the browser-to-workstation pipe."
)]
pub struct Cli {
    /// Where the database, TLS certificate and key live.
    #[arg(long, global = true, env = "HOMEDESK_DATA_DIR", default_value = "./homedesk-data")]
    data_dir: PathBuf,

    #[command(subcommand)]
    command: Command,
}

impl Cli {
    pub fn is_serve(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the portal over HTTPS (and redirect plain HTTP to it).
    Serve(ServeArgs),
    /// Manage portal accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the workstations users can reach.
    #[command(subcommand)]
    Workstation(WorkstationCommand),
    /// Allow USER to reach WORKSTATION.
    Assign { user: String, workstation: String },
    /// Stop USER from reaching WORKSTATION.
    Unassign { user: String, workstation: String },
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[arg(long, default_value_t = 8443)]
    https_port: u16,
    /// Plain-HTTP port; every request there is redirected to HTTPS.
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
    /// Address to listen on (0.0.0.0 or :: for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Directory holding the built portal (index.html, wasm, js), e.g. from `cargo xtask client`.
    #[arg(long)]
    web_root: Option<PathBuf>,
    /// An origin (https://name[:port]) under which users reach the portal, e.g. behind a reverse
    /// proxy. Repeatable. The origin built from the Host header is always accepted.
    #[arg(long = "public-origin", value_parser = parse_origin)]
    public_origins: Vec<String>,
    /// Seconds to wait for a workstation to accept the TCP connection.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    connect_timeout_secs: u64,
    /// Print `HOMEDESK_READY https_port=N http_port=M` once both listeners accept connections.
    #[arg(long)]
    print_ready: bool,
}

fn parse_origin(value: &str) -> Result<String, String> {
    normalize_origin(value).map_err(|error| error.to_string())
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account (prints a generated password unless --password-stdin is given).
    Add {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts and their workstations.
    List,
    /// Delete an account (its sessions and assignments go with it).
    Remove { name: String },
    /// Set a new password (ends the user's sessions).
    Passwd {
        name: String,
        /// Read the password from the first line of standard input (else one is generated and printed).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum WorkstationCommand {
    /// Register a workstation (an RDP host the relay can reach).
    Add {
        name: String,
        /// DNS name or IP address, as seen from the relay.
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 3389, value_parser = clap::value_parser!(u16).range(1..))]
        port: u16,
        /// Windows domain for the login (shown to the client).
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        notes: Option<String>,
    },
    /// List workstations with their pinned certificate fingerprints.
    List,
    /// Delete a workstation (its assignments go with it).
    Remove { name: String },
    /// Forget the pinned certificate; the next connection pins the one it sees.
    Repin { name: String },
    /// Pin a known certificate fingerprint (SHA-256, hex; colons allowed) instead of trusting the first connection.
    Pin { name: String, sha256: String },
}

pub async fn run(cli: Cli) -> Result<()> {
    let data_dir = DataDir::new(&cli.data_dir);
    match cli.command {
        Command::Serve(args) => serve(cli.data_dir, args).await,
        command => {
            let store = open_store(&data_dir).await?;
            let result = admin(&store, command).await;
            store.close().await;
            result
        }
    }
}

async fn admin(store: &Store, command: Command) -> Result<()> {
    match command {
        Command::Serve(_) => return unreachable_serve(),
        Command::User(UserCommand::Add { name, password_stdin }) => {
            let password = if password_stdin { Some(read_password()?) } else { None };
            match broker::add_user(store, &name, password).await? {
                Some(generated) => println!("User {name} created. Password: {generated}"),
                None => println!("User {name} created."),
            }
        }
        Command::User(UserCommand::List) => {
            let users = broker::list_users(store).await?;
            let rows: Vec<[String; 3]> = users
                .into_iter()
                .map(|u| {
                    let role = if u.user.is_admin { "admin" } else { "user" };
                    let workstations =
                        if u.workstations.is_empty() { "-".to_owned() } else { u.workstations.join(", ") };
                    [u.user.username, role.to_owned(), workstations]
                })
                .collect();
            print_table(["USER", "ROLE", "WORKSTATIONS"], &rows);
        }
        Command::User(UserCommand::Remove { name }) => {
            broker::remove_user(store, &name).await?;
            println!("User {name} removed.");
        }
        Command::User(UserCommand::Passwd { name, password_stdin }) => {
            let (password, generated) = if password_stdin {
                (read_password()?, false)
            } else {
                (homedesk_relay::auth::generate_password(), true)
            };
            broker::set_password(store, &name, &password).await?;
            if generated {
                println!("Password of {name} changed. New password: {password}");
            } else {
                println!("Password of {name} changed.");
            }
        }
        Command::Workstation(WorkstationCommand::Add { name, host, port, domain, notes }) => {
            let ws = broker::add_workstation(store, &name, &host, port, domain, notes).await?;
            println!("Workstation {} added ({}).", ws.name, address(&ws.host, ws.port));
        }
        Command::Workstation(WorkstationCommand::List) => {
            let rows: Vec<[String; 5]> = broker::list_workstations(store)
                .await?
                .into_iter()
                .map(|w| {
                    [
                        w.name,
                        address(&w.host, w.port),
                        w.domain.unwrap_or_else(|| "-".into()),
                        w.cert_sha256.map(|fp| format!("sha256:{fp}")).unwrap_or_else(|| "not pinned yet".into()),
                        w.notes.unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(["NAME", "ADDRESS", "DOMAIN", "CERTIFICATE", "NOTES"], &rows);
        }
        Command::Workstation(WorkstationCommand::Remove { name }) => {
            broker::remove_workstation(store, &name).await?;
            println!("Workstation {name} removed.");
        }
        Command::Workstation(WorkstationCommand::Repin { name }) => {
            broker::repin_workstation(store, &name).await?;
            println!("Certificate pin of {name} cleared: the next connection records the certificate it sees.");
        }
        Command::Workstation(WorkstationCommand::Pin { name, sha256 }) => {
            let pinned = broker::pin_workstation(store, &name, &sha256).await?;
            println!("Certificate of {name} pinned: sha256:{pinned}");
        }
        Command::Assign { user, workstation } => {
            broker::assign(store, &user, &workstation).await?;
            println!("{user} can now reach {workstation}.");
        }
        Command::Unassign { user, workstation } => {
            broker::unassign(store, &user, &workstation).await?;
            println!("{user} can no longer reach {workstation}.");
        }
    }
    Ok(())
}

fn unreachable_serve() -> Result<()> {
    bail!("internal error: serve is not an administrative command")
}

fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The first line of standard input, without its line ending.
fn read_password() -> Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let line = input.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        bail!("no password on standard input");
    }
    Ok(line)
}

fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

async fn serve(data_dir: PathBuf, args: ServeArgs) -> Result<()> {
    let mut config = ServeConfig::new(data_dir);
    config.bind = args.bind;
    config.https_port = args.https_port;
    config.http_port = args.http_port;
    config.web_root = args.web_root;
    config.public_origins = args.public_origins;
    config.connect_timeout = Duration::from_secs(args.connect_timeout_secs);
    if let Some(root) = &config.web_root {
        if !root.join("index.html").is_file() {
            tracing::warn!(web_root = %root.display(), "the web root has no index.html: the portal shows a 'client not built' page");
        }
    }
    let portal_url = portal_url(&config, args.https_port);
    let server = homedesk_relay::start(config).await?;
    let portal_url = portal_url.unwrap_or_else(|| default_portal_url(server.https_addr));

    let mut out = std::io::stdout().lock();
    if let Some(password) = &server.admin_password {
        writeln!(out, "Admin login: admin / {password}")?;
        writeln!(out, "(This password is shown only once. Change it with: relay user passwd admin --password-stdin)")?;
    }
    writeln!(out, "Homedesk portal: {portal_url}")?;
    if args.print_ready {
        writeln!(out, "HOMEDESK_READY https_port={} http_port={}", server.https_addr.port(), server.http_addr.port())?;
    }
    out.flush()?;
    drop(out);

    wait_for_signal().await;
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}

/// The URL to print: the first public origin if one was given.
fn portal_url(config: &ServeConfig, _port: u16) -> Option<String> {
    config.public_origins.iter().find(|o| o.starts_with("https://")).map(|o| format!("{o}/"))
}

fn default_portal_url(addr: std::net::SocketAddr) -> String {
    let ip = addr.ip();
    let host = if ip.is_loopback() {
        "localhost".to_owned()
    } else if ip.is_unspecified() {
        homedesk_relay::tls::machine_hostname().unwrap_or_else(|| "localhost".to_owned())
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    if addr.port() == 443 {
        format!("https://{host}/")
    } else {
        format!("https://{host}:{}/", addr.port())
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
