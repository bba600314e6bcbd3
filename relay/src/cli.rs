//! The command line: `serve` and the administrative commands (users, workstations, assignments,
//! brute-force defence under `security`).
//!
//! Administrative commands work directly on the SQLite database of `--data-dir` (safe while the
//! server runs: WAL mode). They go through `homedesk_relay::broker` for validation, so the future
//! admin console enforces the same rules.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use homedesk_relay::broker;
use homedesk_relay::bruteforce::{LimiterConfig, LoginGuard, Policy, DEFAULT_MAX_FAILURE_ROWS};
use homedesk_relay::config::{normalize_origin, DataDir, ServeConfig};
use homedesk_relay::netaddr::Cidr;
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
    /// Brute-force defence: limits, blocked IPs, whitelist.
    #[command(subcommand)]
    Security(SecurityCommand),
}

#[derive(Debug, Subcommand)]
enum SecurityCommand {
    /// Show the limits in force.
    Show,
    /// Change limits (takes effect at the next sign-in, also on a running relay).
    Set(SecuritySetArgs),
    /// List the client IPs that are blocked now.
    Blocked,
    /// Lift the block of an IP and forget its failed sign-ins.
    Unblock { ip: IpAddr },
    /// Addresses and ranges that are never blocked.
    #[command(subcommand)]
    Whitelist(WhitelistCommand),
}

#[derive(Debug, Args)]
struct SecuritySetArgs {
    /// Failed sign-ins from one IP that block it.
    #[arg(long)]
    max_failures: Option<u32>,
    /// Minutes within which those failures must happen.
    #[arg(long)]
    window_minutes: Option<u64>,
    /// Minutes an IP stays blocked.
    #[arg(long)]
    block_minutes: Option<u64>,
    /// Failures of one account (from any IPs) within the window after which new IPs are slowed down.
    #[arg(long)]
    account_threshold: Option<u32>,
    /// Longest wait the per-account slow-down imposes, in seconds.
    #[arg(long)]
    account_max_delay_secs: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum WhitelistCommand {
    /// Never block this address or CIDR range (IPv4 or IPv6).
    Add { cidr: Cidr },
    /// Remove an address or range from the whitelist.
    Remove { cidr: Cidr },
    /// List the whitelist.
    List,
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
    /// A reverse proxy (address or CIDR) whose X-Forwarded-For header names the client. Repeatable.
    /// Without it the TCP peer is the client and X-Forwarded-For is ignored.
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<Cidr>,
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
        Command::Security(command) => security(store, command).await?,
    }
    Ok(())
}

fn minutes(duration: Duration) -> String {
    format!("{} min", duration.as_secs() / 60)
}

fn print_policy(policy: &Policy) {
    println!("max-failures            {}", policy.max_failures);
    println!("window                  {}", minutes(policy.window));
    println!("block                   {}", minutes(policy.block));
    println!("account-threshold       {}", policy.account_threshold);
    println!("account-max-delay       {} s", policy.account_max_delay.as_secs());
}

fn utc_time(unix_ms: i64) -> String {
    // UTC, ISO 8601 without a date library: days since the epoch → civil date (H. Hinnant).
    let secs = unix_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

async fn security(store: &Store, command: SecurityCommand) -> Result<()> {
    let guard = LoginGuard::new(
        store.clone(),
        LimiterConfig { clock: homedesk_relay::clock::system(), max_failure_rows: DEFAULT_MAX_FAILURE_ROWS },
    );
    match command {
        SecurityCommand::Show => print_policy(&guard.policy().await?),
        SecurityCommand::Set(args) => {
            let mut policy = guard.policy().await?;
            let minutes = |m: u64| Duration::from_secs(m.saturating_mul(60));
            if let Some(n) = args.max_failures {
                policy.max_failures = n;
            }
            if let Some(m) = args.window_minutes {
                policy.window = minutes(m);
            }
            if let Some(m) = args.block_minutes {
                policy.block = minutes(m);
            }
            if let Some(n) = args.account_threshold {
                policy.account_threshold = n;
            }
            if let Some(s) = args.account_max_delay_secs {
                policy.account_max_delay = Duration::from_secs(s);
            }
            guard.set_policy(&policy).await?;
            print_policy(&policy);
        }
        SecurityCommand::Blocked => {
            let rows: Vec<[String; 5]> = guard
                .blocked()
                .await?
                .into_iter()
                .map(|b| [b.ip, utc_time(b.blocked_at), utc_time(b.blocked_until), b.failures.to_string(), b.reason])
                .collect();
            print_table(["IP", "BLOCKED AT", "UNTIL", "FAILURES", "REASON"], &rows);
        }
        SecurityCommand::Unblock { ip } => {
            if guard.unblock(ip).await? {
                println!("{ip} unblocked.");
            } else {
                println!("{ip} was not blocked (its failed sign-ins were forgotten).");
            }
        }
        SecurityCommand::Whitelist(WhitelistCommand::Add { cidr }) => {
            if guard.whitelist_add(&cidr).await? {
                println!("{cidr} added to the whitelist.");
            } else {
                println!("{cidr} is already whitelisted.");
            }
        }
        SecurityCommand::Whitelist(WhitelistCommand::Remove { cidr }) => {
            if !guard.whitelist_remove(&cidr).await? {
                bail!("{cidr} is not on the whitelist");
            }
            println!("{cidr} removed from the whitelist.");
        }
        SecurityCommand::Whitelist(WhitelistCommand::List) => {
            let list = guard.whitelist().await?;
            if list.is_empty() {
                println!("(none)");
            }
            for cidr in list {
                println!("{cidr}");
            }
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
    config.trusted_proxies = args.trusted_proxies;
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
