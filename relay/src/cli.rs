//! The command line: `serve` and the administrative commands (users, workstations, assignments of users
//! and directory groups, the directory under `directory`, brute-force defence under `security`, the HTTPS
//! certificate under `certificate`, two-factor sign-in under `2fa`, portal options).
//!
//! Administrative commands work directly on the database (`--database-url`, else the SQLite file of
//! `--data-dir`), safe while relays serve: SQLite runs in WAL mode, PostgreSQL is shared by design, and
//! every relay reads the database on each request, so a change here is seen at once everywhere.
//! They go through `homedesk_relay::broker` for validation, so the admin console enforces the same rules.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use homedesk_relay::audit::{self, Action, Actor};
use homedesk_relay::broker;
use homedesk_relay::bruteforce::{LimiterConfig, LoginGuard, Policy, DEFAULT_MAX_FAILURE_ROWS};
use homedesk_relay::config::{normalize_origin, DataDir, ServeConfig};
use homedesk_relay::delivery;
use homedesk_relay::directory::{self, BindMode, DirectoryConfig, GroupMode};
use homedesk_relay::netaddr::Cidr;
use homedesk_relay::security_admin::{self, ChangedBy, Outcome};
use homedesk_relay::server::open_store;
use homedesk_relay::server_admin::PinnedByFlags;
use homedesk_relay::store::Store;
use homedesk_relay::twofa::{self, MemberKind, Method};
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
    #[arg(
        long,
        global = true,
        env = "HOMEDESK_DATA_DIR",
        default_value = "./homedesk-data"
    )]
    data_dir: PathBuf,

    /// PostgreSQL database shared by several relays (postgres://user:password@host:port/db).
    /// Without it the relay uses the SQLite file homedesk.db in the data directory.
    #[arg(
        long,
        global = true,
        env = "HOMEDESK_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,

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
    /// Allow USER (or every member of directory group G: --group G WORKSTATION) to reach WORKSTATION.
    Assign(AssignArgs),
    /// Stop USER (or directory group G: --group G WORKSTATION) from reaching WORKSTATION.
    Unassign(AssignArgs),
    /// Sign-in through an LDAP directory or Active Directory.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Brute-force defence: limits, blocked IPs, whitelist.
    #[command(subcommand)]
    Security(SecurityCommand),
    /// Two-factor sign-in: on/off, who must use it, delivery methods, resets, settings.
    #[command(name = "2fa", subcommand)]
    TwoFa(TwoFaCommand),
    /// Options of the portal's login page.
    #[command(subcommand)]
    Portal(PortalCommand),
    /// The portal's HTTPS certificate: free certificate (ACME), import, history.
    #[command(subcommand)]
    Certificate(CertificateCommand),
    /// The web server: ports, bind address, web root, listener status, restart and stop.
    #[command(subcommand)]
    Server(crate::cli_server::ServerCommand),
    /// Export or import the whole configuration (JSON) for backups.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Settings of the HTML5 client: menu bar, colours, logo, logon message, timeout, ...
    #[command(subcommand)]
    ClientSettings(ClientSettingsCommand),
    /// Who is connected now (on every relay of this database), and disconnecting them.
    #[command(subcommand)]
    Sessions(crate::cli_sessions::SessionsCommand),
    /// The audit log, newest first.
    Audit {
        /// Only entries containing this text (any case) in actor, IP, action, target or detail.
        #[arg(long, default_value = "")]
        filter: String,
        /// At most this many entries.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Write users (with password hashes), workstations, assignments, settings, 2FA, directory and
    /// whitelist as JSON to standard output (or --output FILE, created 0600). Secrets stay sealed.
    Export {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Replace the whole configuration with a file's (`-` for standard input); all or nothing.
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum ClientSettingsCommand {
    /// Show every setting with its value.
    Show,
    /// Change settings: NAME VALUE pairs, e.g. `set background_color '#1e4e8c' menu_bar mobile`
    /// (on/off for switches; all changes or none are applied).
    Set {
        #[arg(num_args = 2.., value_names = ["NAME", "VALUE"], required = true)]
        pairs: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertificateCommand {
    /// Get a free certificate from the ACME CA (the running relay answers the CA's HTTP-01 challenge
    /// on its HTTP port, which must be reachable as port 80 of DOMAIN).
    Request {
        /// Contact address of the CA account (expiry notices).
        #[arg(long)]
        email: String,
        /// The public name users type to reach the portal, e.g. desk.example.com.
        #[arg(long)]
        domain: String,
        /// Accept the CA's terms of service (without it, their URL is shown and nothing is requested).
        #[arg(long)]
        accept_terms: bool,
    },
    /// Domain, issuer, expiry, last attempt and its result.
    Status,
    /// Renew the free certificate now (the relay also renews by itself).
    Renew,
    /// Reset Domain: serve the self-signed certificate again (kept certificates stay restorable).
    Reset,
    /// Every certificate served so far, with the date it was replaced.
    History,
    /// Serve a kept certificate again (ID from `history`).
    Restore { id: i64 },
    /// Serve your own certificate: a PEM chain (leaf first) and its PEM private key.
    Import {
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TwoFaCommand {
    /// Require a second factor from the listed users and groups.
    Enable,
    /// Stop asking anyone for a second factor (lists and secrets are kept).
    Disable,
    /// Whether 2FA is on, and who must use it.
    List,
    /// Require 2FA from a user (or, with --group, from every member of a directory group).
    Add {
        name: String,
        #[arg(long)]
        group: bool,
    },
    /// Stop requiring 2FA from a user (or group).
    Remove {
        name: String,
        #[arg(long)]
        group: bool,
    },
    /// Set how a user receives codes: app (authenticator), sms (--phone +E.164) or email (--email).
    Method {
        name: String,
        method: String,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// Revoke a user's secret and end their sessions; the next sign-in shows a new QR code.
    Reset { name: String },
    /// Codes and sessions: show or change the settings.
    #[command(subcommand)]
    Settings(TwoFaSettingsCommand),
    /// SMS through Twilio: account SID, sender number; the auth token is read from standard input.
    Sms {
        #[arg(long)]
        account_sid: String,
        /// Sender number in international form (+…).
        #[arg(long)]
        from: String,
        /// API base URL (for a proxy or a test server).
        #[arg(long, default_value = homedesk_relay::delivery::TWILIO_BASE_URL)]
        base_url: String,
    },
    /// Email through SMTP (STARTTLS or TLS); with --username the password is read from standard input.
    Smtp {
        #[arg(long)]
        host: String,
        /// Default: 587 with starttls, 465 with tls.
        #[arg(long)]
        port: Option<u16>,
        #[arg(long, default_value = "starttls", value_parser = ["starttls", "tls"])]
        security: String,
        #[arg(long)]
        username: Option<String>,
        /// The From address.
        #[arg(long)]
        from: String,
        /// An extra CA certificate (PEM) to trust, for a server with a private certificate.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TwoFaSettingsCommand {
    /// Show the settings in force.
    Show,
    /// Change settings.
    Set(TwoFaSettingsArgs),
}

#[derive(Debug, Args)]
struct TwoFaSettingsArgs {
    /// 30-second steps accepted before and after the current one (0-480; above 10 is discouraged).
    #[arg(long)]
    discrepancy: Option<u32>,
    /// Name shown in authenticator apps (empty: "<server name> Homedesk").
    #[arg(long)]
    issuer: Option<String>,
    /// Minutes after the first session in which further sessions need no new code.
    #[arg(long)]
    validity_after_minutes: Option<u64>,
    /// Seconds allowed between a validated code and the first session.
    #[arg(long)]
    validity_before_secs: Option<u64>,
    /// Digits of a code (4-12; fewer than 6 is discouraged).
    #[arg(long)]
    digits: Option<u32>,
    /// HMAC of new enrolments' app codes: SHA1 (every app), SHA256 or SHA512 (not all apps).
    /// Users enrolled already keep theirs until `relay 2fa reset`.
    #[arg(long)]
    algorithm: Option<String>,
    /// Text of SMS codes; must contain %CODE%, may contain %ISSUER%.
    #[arg(long)]
    sms_template: Option<String>,
    /// Seconds a code sent by SMS or email stays valid.
    #[arg(long)]
    code_lifetime_secs: Option<u64>,
    /// Codes sent to one user per hour (SMS and email).
    #[arg(long)]
    send_limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
enum PortalCommand {
    /// Show or hide the optional Domain field of the login form.
    ShowDomain {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Designed login pages: list, show, set, publish, unpublish, delete, logo, background.
    #[command(subcommand)]
    Page(crate::cli_portal::PortalPageCommand),
    /// The classic colour themes and stock backgrounds pages can use.
    Themes,
}

#[derive(Debug, Args)]
struct AssignArgs {
    /// A directory group (its CN, case-insensitive) instead of a user.
    #[arg(long)]
    group: Option<String>,
    /// USER WORKSTATION, or with --group just WORKSTATION.
    #[arg(required = true, num_args = 1..=2, value_names = ["USER", "WORKSTATION"])]
    names: Vec<String>,
}

/// Who an assignment is for.
enum Assignee {
    User(String),
    Group(String),
}

impl AssignArgs {
    fn split(self) -> Result<(Assignee, String)> {
        let mut names = self.names.into_iter();
        match (self.group, names.next(), names.next()) {
            (Some(group), Some(workstation), None) => Ok((Assignee::Group(group), workstation)),
            (None, Some(user), Some(workstation)) => Ok((Assignee::User(user), workstation)),
            (Some(_), _, _) => bail!("with --group, give only the workstation"),
            (None, _, _) => bail!("give a user and a workstation (or --group GROUP WORKSTATION)"),
        }
    }
}

#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Configure the directory (replaces the whole configuration; takes effect at the next sign-in).
    Set(DirectorySetArgs),
    /// Show the configuration (the service account's password is never shown).
    Show,
    /// Connect, bind the service account and read the base DN; with --user, sign in as that user.
    Test {
        /// Also check this user's sign-in and list their groups (password read from standard input).
        #[arg(long)]
        user: Option<String>,
    },
    /// Remove the configuration: only local accounts can sign in.
    Clear,
    /// List the workstations assigned to directory groups.
    Groups,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum GroupSource {
    /// The user entry's memberOf attribute lists the groups (Active Directory, OpenLDAP memberof overlay).
    Memberof,
    /// groupOfNames entries list their members' DNs.
    Groupofnames,
}

#[derive(Debug, Args)]
struct DirectorySetArgs {
    /// ldap://host[:port] or ldaps://host[:port].
    #[arg(long)]
    url: String,
    /// Upgrade ldap:// with StartTLS before sending anything.
    #[arg(long)]
    starttls: bool,
    /// PEM file of the CA that signed the directory's certificate (default: the system's trust store).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Bind as the user: a DN such as uid={user},ou=people,dc=example,dc=org or a UPN such as
    /// {user}@example.org.
    #[arg(
        long,
        conflicts_with = "service_dn",
        required_unless_present = "service_dn"
    )]
    user_pattern: Option<String>,
    /// Search then bind: the service account's DN (its password is read from standard input).
    #[arg(long)]
    service_dn: Option<String>,
    /// Where users and groups are searched.
    #[arg(long)]
    base_dn: String,
    /// The attribute holding the sign-in name (uid, or sAMAccountName on Active Directory).
    #[arg(long, default_value = "uid")]
    user_attribute: String,
    /// Where group membership is read.
    #[arg(long, value_enum, default_value_t = GroupSource::Memberof)]
    groups: GroupSource,
    /// The attribute: memberOf (for memberof) or member (for groupofnames) by default.
    #[arg(long)]
    group_attribute: Option<String>,
    /// Windows domain of directory users (checked against the login form, passed to the workstation logon).
    #[arg(long)]
    domain: Option<String>,
    /// Seconds allowed for connecting and for each directory operation.
    #[arg(long, default_value_t = 5)]
    timeout_secs: u64,
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
    max_failures: Option<u64>,
    /// Minutes within which those failures must happen.
    #[arg(long)]
    window_minutes: Option<u64>,
    /// Minutes an IP stays blocked.
    #[arg(long)]
    block_minutes: Option<u64>,
    /// Failures of one account (from any IPs) within the window after which new IPs are slowed down.
    #[arg(long)]
    account_threshold: Option<u64>,
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
    /// HTTPS port [default: the stored setting (`relay server set`), else 8443]. A flag wins over the
    /// stored setting.
    #[arg(long)]
    https_port: Option<u16>,
    /// Plain-HTTP port; every request there is redirected to HTTPS [default: stored setting, else 8080].
    #[arg(long)]
    http_port: Option<u16>,
    /// Address to listen on (0.0.0.0 or :: for every interface) [default: stored setting, else 127.0.0.1].
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Directory holding the built portal (index.html, wasm, js), e.g. from `cargo xtask client`
    /// [default: the stored setting].
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
    /// ACME directory URL of the CA that issues the free certificate.
    #[arg(long, env = "HOMEDESK_ACME_DIRECTORY", default_value = homedesk_relay::acme::LETS_ENCRYPT_PRODUCTION)]
    acme_directory: String,
    /// An extra root certificate (PEM) to trust when talking to the ACME server, e.g. a test CA.
    #[arg(long, env = "HOMEDESK_ACME_CA_ROOT")]
    acme_ca_root: Option<PathBuf>,
    /// The 32-byte key that encrypts two-factor secrets (created 0600 if missing). Default:
    /// twofa.key in the data directory.
    #[arg(long, env = "HOMEDESK_2FA_KEY_FILE")]
    twofa_key_file: Option<PathBuf>,
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
    /// Change a workstation's fields; a new host or port forgets the pinned certificate.
    Edit {
        name: String,
        /// New friendly name (must be unique).
        #[arg(long = "name", value_name = "NEW")]
        new_name: Option<String>,
        /// DNS name or IP address, as seen from the relay.
        #[arg(long)]
        host: Option<String>,
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        #[arg(long, conflicts_with = "no_domain")]
        domain: Option<String>,
        /// Remove the domain.
        #[arg(long)]
        no_domain: bool,
        #[arg(long, conflicts_with = "no_notes")]
        notes: Option<String>,
        /// Remove the notes.
        #[arg(long)]
        no_notes: bool,
    },
    /// Stop offering a workstation to its users (connections already open are not cut).
    Disable { name: String },
    /// Offer a disabled workstation again.
    Enable { name: String },
    /// List workstations with their state, pinned certificate fingerprints and notes.
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
        Command::Serve(args) => serve(cli.data_dir, cli.database_url, args).await,
        command => {
            let store = open_store(&data_dir, cli.database_url.as_deref()).await?;
            let event = audit_event(&command);
            let result = admin(&store, &data_dir, command).await;
            if let (Ok(()), Some(event)) = (&result, event) {
                audit::record(&store, event).await;
            }
            store.close().await;
            result
        }
    }
}

/// The audit log entry of a command that changes something (`None` for commands that only read);
/// recorded after the command succeeded, with the CLI as the actor. Never includes secrets.
fn audit_event(command: &Command) -> Option<audit::Event> {
    let event = |action, target: &str| Some(audit::Event::new(Actor::Cli, None, action, target));
    let settings = |what: &str| event(Action::SettingsChanged, what);
    match command {
        Command::Serve(_) => None,
        Command::User(UserCommand::Add { name, .. }) => event(Action::UserAdded, name),
        Command::User(UserCommand::Remove { name }) => event(Action::UserRemoved, name),
        Command::User(UserCommand::Passwd { name, .. }) => event(Action::PasswordReset, name),
        Command::User(UserCommand::List) => None,
        Command::Workstation(command) => match command {
            WorkstationCommand::Add { name, host, port, .. } => {
                event(Action::WorkstationAdded, name).map(|e| e.detail(format!("{host}:{port}")))
            }
            WorkstationCommand::Edit { name, .. } => event(Action::WorkstationEdited, name),
            WorkstationCommand::Disable { name } => event(Action::WorkstationDisabled, name),
            WorkstationCommand::Enable { name } => event(Action::WorkstationEnabled, name),
            WorkstationCommand::Remove { name } => event(Action::WorkstationRemoved, name),
            WorkstationCommand::Repin { name } => event(Action::WorkstationRepinned, name),
            WorkstationCommand::Pin { name, sha256 } => event(Action::WorkstationPinned, name).map(|e| e.detail(sha256)),
            WorkstationCommand::List => None,
        },
        Command::Assign(args) | Command::Unassign(args) => {
            let assign = matches!(command, Command::Assign(_));
            let (action, who) = match (&args.group, assign) {
                (Some(group), true) => (Action::GroupAssigned, group.clone()),
                (Some(group), false) => (Action::GroupUnassigned, group.clone()),
                (None, true) => (Action::Assigned, args.names.first().cloned().unwrap_or_default()),
                (None, false) => (Action::Unassigned, args.names.first().cloned().unwrap_or_default()),
            };
            let workstation = args.names.last().cloned().unwrap_or_default();
            event(action, &workstation).map(|e| e.detail(who))
        }
        // Audited by the shared operations of `security_admin` themselves (as for the console).
        Command::Security(_) => None,
        Command::Directory(DirectoryCommand::Set(_)) => settings("directory"),
        Command::Directory(DirectoryCommand::Clear) => settings("directory cleared"),
        Command::Directory(_) => None,
        Command::TwoFa(TwoFaCommand::List | TwoFaCommand::Settings(TwoFaSettingsCommand::Show)) => None,
        Command::TwoFa(_) => settings("2fa"),
        Command::Portal(
            PortalCommand::Themes
            | PortalCommand::Page(crate::cli_portal::PortalPageCommand::List | crate::cli_portal::PortalPageCommand::Show { .. }),
        ) => None,
        Command::Portal(_) => settings("portal"),
        Command::ClientSettings(ClientSettingsCommand::Show) => None,
        Command::ClientSettings(ClientSettingsCommand::Set { .. }) => settings("html5 client"),
        Command::Certificate(
            CertificateCommand::Status | CertificateCommand::History,
        ) => None,
        Command::Certificate(_) => settings("certificate"),
        Command::Server(crate::cli_server::ServerCommand::Status) => None,
        Command::Server(_) => settings("server"),
        Command::Config(ConfigCommand::Export { .. }) => None,
        Command::Config(ConfigCommand::Import { .. }) => settings("config import"),
        // A disconnect is audited once it happened, with the session's details.
        Command::Sessions(_) | Command::Audit { .. } => None,
    }
}

async fn admin(store: &Store, data_dir: &DataDir, command: Command) -> Result<()> {
    match command {
        Command::Serve(_) => return unreachable_serve(),
        Command::User(UserCommand::Add {
            name,
            password_stdin,
        }) => {
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
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
                    let role = match (u.user.is_admin, u.user.directory) {
                        (true, _) => "admin",
                        (false, true) => "directory user",
                        (false, false) => "user",
                    };
                    let workstations = if u.workstations.is_empty() {
                        "-".to_owned()
                    } else {
                        u.workstations.join(", ")
                    };
                    [u.user.username, role.to_owned(), workstations]
                })
                .collect();
            print_table(["USER", "ROLE", "WORKSTATIONS"], &rows);
        }
        Command::User(UserCommand::Remove { name }) => {
            broker::remove_user(store, &name).await?;
            println!("User {name} removed.");
        }
        Command::User(UserCommand::Passwd {
            name,
            password_stdin,
        }) => {
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
        Command::Workstation(WorkstationCommand::Add {
            name,
            host,
            port,
            domain,
            notes,
        }) => {
            let ws = broker::add_workstation(store, &name, &host, port, domain, notes).await?;
            println!(
                "Workstation {} added ({}).",
                ws.name,
                address(&ws.host, ws.port)
            );
        }
        Command::Workstation(WorkstationCommand::Edit {
            name,
            new_name,
            host,
            port,
            domain,
            no_domain,
            notes,
            no_notes,
        }) => {
            let edit = broker::WorkstationEdit {
                name: new_name,
                host,
                port,
                domain: if no_domain {
                    Some(None)
                } else {
                    domain.map(Some)
                },
                notes: if no_notes {
                    Some(None)
                } else {
                    notes.map(Some)
                },
            };
            let edited = broker::edit_workstation(store, &name, edit).await?;
            let ws = edited.workstation;
            println!(
                "Workstation {} updated ({}).",
                ws.name,
                address(&ws.host, ws.port)
            );
            if edited.pin_cleared {
                println!("Address changed: certificate pin cleared, the next connection records the certificate it sees.");
            }
        }
        Command::Workstation(WorkstationCommand::Disable { name }) => {
            broker::set_workstation_enabled(store, &name, false).await?;
            println!("Workstation {name} disabled: no new connections (open ones are not cut).");
        }
        Command::Workstation(WorkstationCommand::Enable { name }) => {
            broker::set_workstation_enabled(store, &name, true).await?;
            println!("Workstation {name} enabled.");
        }
        Command::Workstation(WorkstationCommand::List) => {
            let rows: Vec<[String; 6]> = broker::list_workstations(store)
                .await?
                .into_iter()
                .map(|w| {
                    [
                        w.name,
                        address(&w.host, w.port),
                        if w.enabled { "enabled" } else { "disabled" }.into(),
                        w.domain.unwrap_or_else(|| "-".into()),
                        w.cert_sha256
                            .map(|fp| format!("sha256:{fp}"))
                            .unwrap_or_else(|| "not pinned yet".into()),
                        w.notes.unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                ["NAME", "ADDRESS", "STATE", "DOMAIN", "CERTIFICATE", "NOTES"],
                &rows,
            );
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
        Command::Assign(args) => match args.split()? {
            (Assignee::User(user), workstation) => {
                broker::assign(store, &user, &workstation).await?;
                println!("{user} can now reach {workstation}.");
            }
            (Assignee::Group(group), workstation) => {
                let group = broker::assign_group(store, &group, &workstation).await?;
                println!("Members of directory group {group} can now reach {workstation}.");
            }
        },
        Command::Unassign(args) => match args.split()? {
            (Assignee::User(user), workstation) => {
                broker::unassign(store, &user, &workstation).await?;
                println!("{user} can no longer reach {workstation}.");
            }
            (Assignee::Group(group), workstation) => {
                let group = broker::unassign_group(store, &group, &workstation).await?;
                println!("Members of directory group {group} can no longer reach {workstation} (unless assigned otherwise).");
            }
        },
        Command::Directory(command) => directory(store, command).await?,
        Command::Security(command) => security(store, command).await?,
        Command::Certificate(command) => {
            crate::cli_certificate::run(store, data_dir, command).await?
        }
        Command::TwoFa(command) => two_factor(store, data_dir, command).await?,
        Command::Server(command) => crate::cli_server::run(store, data_dir, command).await?,
        Command::Sessions(command) => crate::cli_sessions::run(store, command).await?,
        Command::Audit { filter, limit } => crate::cli_sessions::audit_log(store, &filter, limit).await?,
        Command::Config(ConfigCommand::Export { output }) => {
            let json = homedesk_relay::config_transfer::export(store).await?;
            match output {
                Some(path) => write_private_file(&path, json.as_bytes())?,
                None => println!("{json}"),
            }
        }
        Command::Config(ConfigCommand::Import { file }) => {
            let bytes = read_limited(&file, homedesk_relay::config_transfer::MAX_BYTES)?;
            println!(
                "{}",
                homedesk_relay::config_transfer::import(store, &bytes, homedesk_relay::config_transfer::AdminRule::CreatedAtNextStart).await?
            );
        }
        Command::ClientSettings(command) => client_settings_command(store, command).await?,
        Command::Portal(PortalCommand::Page(command)) => {
            crate::cli_portal::run(store, command).await?
        }
        Command::Portal(PortalCommand::Themes) => crate::cli_portal::themes(),
        Command::Portal(PortalCommand::ShowDomain { state }) => {
            twofa::set_show_domain(store, state == "on").await?;
            println!(
                "The login form {} the Domain field.",
                if state == "on" { "shows" } else { "hides" }
            );
        }
    }
    Ok(())
}

/// A new file only the owner can read (the export holds password hashes and sealed secrets).
fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A file's bytes (`-`: standard input), refusing more than `limit`.
fn read_limited(path: &std::path::Path, limit: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let reader: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
        )
    };
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > limit {
        bail!(
            "{} is larger than 64 MiB: not a Homedesk configuration export",
            path.display()
        );
    }
    Ok(bytes)
}

async fn client_settings_command(store: &Store, command: ClientSettingsCommand) -> Result<()> {
    let settings = match command {
        ClientSettingsCommand::Show => homedesk_relay::client_settings::load(store).await?,
        ClientSettingsCommand::Set { pairs } => {
            if pairs.len() % 2 != 0 {
                anyhow::bail!("give NAME VALUE pairs: the last setting has no value");
            }
            let changes: Vec<(String, String)> =
                pairs.chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
            let settings = homedesk_relay::client_settings::update(store, &changes).await?;
            println!("Client settings saved; browsers use them from their next page load.");
            settings
        }
    };
    print!("{}", settings.describe());
    Ok(())
}

fn print_twofa_settings(settings: &twofa::Settings) {
    println!(
        "enabled                 {}",
        if settings.enabled { "yes" } else { "no" }
    );
    println!(
        "discrepancy             {} steps of 30 s",
        settings.discrepancy
    );
    println!("issuer                  {}", settings.issuer_or_default());
    println!(
        "validity-after          {} min",
        settings.validity_after.as_secs() / 60
    );
    println!(
        "validity-before         {} s",
        settings.validity_before.as_secs()
    );
    println!("digits                  {}", settings.digits.get());
    println!(
        "algorithm               {} (new enrolments)",
        settings.algorithm.uri_name()
    );
    println!("sms-template            {}", settings.sms_template);
    println!(
        "code-lifetime           {} s",
        settings.code_lifetime.as_secs()
    );
    println!(
        "send-limit              {} per hour",
        settings.send_limit_per_hour
    );
}

/// The key that seals 2FA and delivery secrets: `HOMEDESK_2FA_KEY_FILE` (as `serve` reads it) or
/// `twofa.key` in the data directory.
fn twofa_secrets(data_dir: &DataDir) -> Result<twofa::SecretBox> {
    let path = std::env::var_os("HOMEDESK_2FA_KEY_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.twofa_key());
    Ok(twofa::SecretBox::load_or_create(&path)?)
}

async fn two_factor(store: &Store, data_dir: &DataDir, command: TwoFaCommand) -> Result<()> {
    let kind = |group: bool| {
        if group {
            MemberKind::Group
        } else {
            MemberKind::User
        }
    };
    match command {
        TwoFaCommand::Enable | TwoFaCommand::Disable => {
            let mut settings = twofa::settings_load(store).await?;
            settings.enabled = matches!(command, TwoFaCommand::Enable);
            twofa::settings_store(store, &settings).await?;
            println!(
                "Two-factor sign-in {}.",
                if settings.enabled {
                    "enabled"
                } else {
                    "disabled"
                }
            );
        }
        TwoFaCommand::List => {
            let settings = twofa::settings_load(store).await?;
            println!(
                "Two-factor sign-in is {}.",
                if settings.enabled {
                    "enabled"
                } else {
                    "disabled"
                }
            );
            let rows: Vec<[String; 5]> = twofa::members(store)
                .await?
                .into_iter()
                .map(|m| {
                    let enrolled = match m.enrolled {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "-",
                    };
                    [
                        m.kind,
                        m.name,
                        m.method.unwrap_or_else(|| "-".into()),
                        enrolled.into(),
                        m.address.unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(["KIND", "NAME", "METHOD", "ENROLLED", "ADDRESS"], &rows);
        }
        TwoFaCommand::Add { name, group } => {
            if group {
                twofa::add_member(store, kind(group), &name).await?;
            } else {
                // A user must exist; directory groups are resolved at sign-in.
                store.user_by_name(&name).await?;
                twofa::add_member(store, kind(group), &name).await?;
            }
            println!(
                "{} {name} must use two-factor sign-in.",
                kind(group).as_str()
            );
        }
        TwoFaCommand::Remove { name, group } => {
            if !twofa::remove_member(store, kind(group), &name).await? {
                bail!(
                    "{} {name} is not on the two-factor list",
                    kind(group).as_str()
                );
            }
            println!(
                "{} {name} no longer needs two-factor sign-in.",
                kind(group).as_str()
            );
        }
        TwoFaCommand::Method {
            name,
            method,
            phone,
            email,
        } => {
            let method = Method::parse(&method)?;
            twofa::set_method(store, &name, method, phone.as_deref(), email.as_deref()).await?;
            println!("{name} receives codes by {}.", method.as_str());
        }
        TwoFaCommand::Reset { name } => {
            twofa::reset(store, &name).await?;
            println!("Second factor of {name} reset: the next sign-in shows a new QR code.");
        }
        TwoFaCommand::Sms {
            account_sid,
            from,
            base_url,
        } => {
            let auth_token =
                read_password().context("the Twilio auth token is read from standard input")?;
            let config = delivery::TwilioConfig {
                base_url,
                account_sid,
                auth_token,
                from,
            };
            delivery::set_twilio_config(store, &twofa_secrets(data_dir)?, &config).await?;
            println!(
                "SMS codes are sent through {} from {}.",
                config.base_url, config.from
            );
        }
        TwoFaCommand::Smtp {
            host,
            port,
            security,
            username,
            from,
            ca_file,
        } => {
            let security = delivery::SmtpSecurity::parse(&security)?;
            let password = match username {
                Some(_) => {
                    Some(read_password().context("the SMTP password is read from standard input")?)
                }
                None => None,
            };
            let port = port.unwrap_or(if security == delivery::SmtpSecurity::Tls {
                465
            } else {
                587
            });
            let config = delivery::SmtpConfig {
                host,
                port,
                security,
                username,
                password,
                from,
                ca_file,
            };
            delivery::set_smtp_config(store, &twofa_secrets(data_dir)?, &config).await?;
            println!(
                "Email codes are sent through {}:{} ({}) from {}.",
                config.host,
                config.port,
                security.as_str(),
                config.from
            );
        }
        TwoFaCommand::Settings(TwoFaSettingsCommand::Show) => {
            print_twofa_settings(&twofa::settings_load(store).await?)
        }
        TwoFaCommand::Settings(TwoFaSettingsCommand::Set(args)) => {
            let mut settings = twofa::settings_load(store).await?;
            if let Some(n) = args.discrepancy {
                settings.discrepancy = n;
            }
            if let Some(issuer) = args.issuer {
                settings.issuer = issuer;
            }
            if let Some(m) = args.validity_after_minutes {
                settings.validity_after = Duration::from_secs(m.saturating_mul(60));
            }
            if let Some(s) = args.validity_before_secs {
                settings.validity_before = Duration::from_secs(s);
            }
            if let Some(n) = args.digits {
                settings.digits = homedesk_relay::totp::Digits::new(n)?;
            }
            if let Some(algorithm) = args.algorithm {
                settings.algorithm = homedesk_relay::totp::Algorithm::parse(&algorithm)
                    .with_context(|| {
                        format!("unknown algorithm \"{algorithm}\": use SHA1, SHA256 or SHA512")
                    })?;
            }
            if let Some(template) = args.sms_template {
                settings.sms_template = template;
            }
            if let Some(secs) = args.code_lifetime_secs {
                settings.code_lifetime = Duration::from_secs(secs);
            }
            if let Some(n) = args.send_limit {
                settings.send_limit_per_hour = n;
            }
            for warning in twofa::settings_store(store, &settings).await? {
                eprintln!("warning: {warning}");
            }
            print_twofa_settings(&settings);
        }
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
    println!(
        "account-max-delay       {} s",
        policy.account_max_delay.as_secs()
    );
}

pub fn utc_time(unix_ms: i64) -> String {
    homedesk_relay::certificates::utc_time(unix_ms)
}

async fn security(store: &Store, command: SecurityCommand) -> Result<()> {
    let guard = LoginGuard::new(
        store.clone(),
        LimiterConfig {
            clock: homedesk_relay::clock::system(),
            max_failure_rows: DEFAULT_MAX_FAILURE_ROWS,
        },
    );
    let by = ChangedBy::cli();
    match command {
        SecurityCommand::Show => print_policy(&guard.policy().await?),
        SecurityCommand::Set(args) => {
            let changes = security_admin::LimitChanges {
                max_failures: args.max_failures,
                window_minutes: args.window_minutes,
                block_minutes: args.block_minutes,
                account_threshold: args.account_threshold,
                account_max_delay_secs: args.account_max_delay_secs,
            };
            print_policy(&security_admin::change_limits(&guard, &changes, &by).await?);
        }
        SecurityCommand::Blocked => {
            let rows: Vec<[String; 5]> = guard
                .blocked()
                .await?
                .into_iter()
                .map(|b| {
                    [
                        b.ip,
                        utc_time(b.blocked_at),
                        utc_time(b.blocked_until),
                        b.failures.to_string(),
                        b.reason,
                    ]
                })
                .collect();
            print_table(["IP", "BLOCKED AT", "UNTIL", "FAILURES", "REASON"], &rows);
        }
        SecurityCommand::Unblock { ip } => match security_admin::unblock(&guard, ip, &by).await? {
            Outcome::Done => println!("{ip} unblocked."),
            Outcome::Nothing => println!("{ip} was not blocked (its failed sign-ins were forgotten)."),
        },
        SecurityCommand::Whitelist(WhitelistCommand::Add { cidr }) => {
            match security_admin::whitelist_add(&guard, &cidr, &by).await? {
                Outcome::Done => println!("{cidr} added to the whitelist."),
                Outcome::Nothing => println!("{cidr} is already whitelisted."),
            }
        }
        SecurityCommand::Whitelist(WhitelistCommand::Remove { cidr }) => {
            if security_admin::whitelist_remove(&guard, &cidr, &by).await? == Outcome::Nothing {
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

async fn directory(store: &Store, command: DirectoryCommand) -> Result<()> {
    match command {
        DirectoryCommand::Set(args) => {
            let config = directory_config(args)?;
            directory::save(store, &config).await?;
            println!("Directory configured.");
            if config.url.starts_with("ldap://") && !config.starttls {
                eprintln!("warning: without --starttls, passwords cross the network to the directory unencrypted");
            }
            print_directory(&config);
        }
        DirectoryCommand::Show => match directory::load(store).await? {
            Some(config) => print_directory(&config),
            None => println!("No directory configured: only local accounts can sign in."),
        },
        DirectoryCommand::Test { user } => {
            let Some(config) = directory::load(store).await? else {
                bail!("no directory is configured")
            };
            let report = directory::check(&config)
                .await
                .map_err(|e| anyhow::anyhow!("the directory cannot be used: {e}"))?;
            if report.service_bind == Some(false) {
                bail!("the directory refused the service account's DN or password");
            }
            println!(
                "Connected to {}{}.",
                config.url,
                if config.starttls { " (StartTLS)" } else { "" }
            );
            if report.service_bind == Some(true) {
                println!("Service account bind: OK.");
            }
            if report.base_readable {
                println!("Base DN {}: readable.", config.base_dn);
            } else {
                println!(
                    "Base DN {}: not readable with this identity (check the DN and access rights).",
                    config.base_dn
                );
            }
            if let Some(user) = user {
                let password = read_password()?;
                match directory::authenticate(&config, &user, &password).await {
                    Ok(identity) => {
                        let groups = if identity.groups.is_empty() {
                            "-".to_owned()
                        } else {
                            identity.groups.join(", ")
                        };
                        println!(
                            "User {} signed in: {}; groups: {groups}.",
                            identity.username, identity.dn
                        );
                    }
                    Err(directory::DirectoryError::InvalidCredentials) => {
                        bail!("{user}: invalid username or password")
                    }
                    Err(error) => bail!("the directory cannot be used: {error}"),
                }
            }
        }
        DirectoryCommand::Clear => {
            if directory::clear(store).await? {
                println!("Directory configuration removed: only local accounts can sign in.");
            } else {
                println!("No directory was configured.");
            }
        }
        DirectoryCommand::Groups => {
            let rows: Vec<[String; 2]> = store
                .group_assignments()
                .await?
                .into_iter()
                .map(|(group, ws)| [group, ws])
                .collect();
            print_table(["GROUP", "WORKSTATION"], &rows);
        }
    }
    Ok(())
}

fn directory_config(args: DirectorySetArgs) -> Result<DirectoryConfig> {
    let ca_pem = match &args.ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?,
        ),
        None => None,
    };
    let bind = match (args.user_pattern, args.service_dn) {
        (Some(pattern), None) => BindMode::UserPattern { pattern },
        (None, Some(service_dn)) => BindMode::SearchBind {
            service_dn,
            service_password: read_password()?,
        },
        _ => bail!("give either --user-pattern or --service-dn"),
    };
    let groups = match args.groups {
        GroupSource::Memberof => GroupMode::MemberOf {
            attribute: args.group_attribute.unwrap_or_else(|| "memberOf".into()),
        },
        GroupSource::Groupofnames => GroupMode::GroupOfNames {
            member_attribute: args.group_attribute.unwrap_or_else(|| "member".into()),
        },
    };
    Ok(DirectoryConfig {
        url: args.url,
        starttls: args.starttls,
        ca_pem,
        bind,
        base_dn: args.base_dn,
        user_attribute: args.user_attribute,
        groups,
        domain: args.domain,
        timeout_secs: args.timeout_secs,
    })
}

fn print_directory(config: &DirectoryConfig) {
    println!("url              {}", config.url);
    println!(
        "starttls         {}",
        if config.starttls { "on" } else { "off" }
    );
    println!(
        "ca               {}",
        if config.ca_pem.is_some() {
            "from --ca-file (stored)"
        } else {
            "system trust store"
        }
    );
    match &config.bind {
        BindMode::UserPattern { pattern } => println!("bind             as the user: {pattern}"),
        BindMode::SearchBind { service_dn, .. } => {
            println!("bind             search then bind, service account {service_dn} (password stored, not shown)")
        }
    }
    println!("base-dn          {}", config.base_dn);
    println!("user-attribute   {}", config.user_attribute);
    match &config.groups {
        GroupMode::MemberOf { attribute } => {
            println!("groups           user attribute {attribute}")
        }
        GroupMode::GroupOfNames { member_attribute } => {
            println!("groups           group entries' {member_attribute} attribute")
        }
    }
    println!(
        "domain           {}",
        config.domain.as_deref().unwrap_or("-")
    );
    println!("timeout          {} s", config.timeout_secs);
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

pub fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
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

async fn serve(data_dir: PathBuf, database_url: Option<String>, args: ServeArgs) -> Result<()> {
    let mut config = ServeConfig::new(data_dir);
    config.database_url = database_url;
    config.pinned_by_flags = PinnedByFlags {
        https_port: args.https_port.is_some(),
        http_port: args.http_port.is_some(),
        bind: args.bind.is_some(),
        web_root: args.web_root.is_some(),
    };
    config.bind = args.bind.unwrap_or(config.bind);
    config.https_port = args.https_port.unwrap_or(config.https_port);
    config.http_port = args.http_port.unwrap_or(config.http_port);
    config.web_root = args.web_root;
    config.public_origins = args.public_origins;
    config.connect_timeout = Duration::from_secs(args.connect_timeout_secs);
    config.trusted_proxies = args.trusted_proxies;
    config.acme_directory = args.acme_directory;
    config.acme_ca_root = args.acme_ca_root;
    config.twofa_key_file = args.twofa_key_file;
    if let Some(root) = &config.web_root {
        if !root.join("index.html").is_file() {
            tracing::warn!(web_root = %root.display(), "the web root has no index.html: the portal shows a 'client not built' page");
        }
    }
    let portal_url = portal_url(&config);
    let server = homedesk_relay::start(config).await?;
    let portal_url = portal_url.unwrap_or_else(|| default_portal_url(server.https_addr));

    let mut out = std::io::stdout().lock();
    if let Some(password) = &server.admin_password {
        writeln!(out, "Admin login: admin / {password}")?;
        writeln!(out, "(This password is shown only once. Change it with: relay user passwd admin --password-stdin)")?;
    }
    writeln!(out, "Homedesk portal: {portal_url}")?;
    if args.print_ready {
        writeln!(
            out,
            "HOMEDESK_READY https_port={} http_port={}",
            server.https_addr.port(),
            server.http_addr.port()
        )?;
    }
    out.flush()?;
    drop(out);

    wait_for_signal().await;
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}

/// The URL to print: the first public origin if one was given.
fn portal_url(config: &ServeConfig) -> Option<String> {
    config
        .public_origins
        .iter()
        .find(|o| o.starts_with("https://"))
        .map(|o| format!("{o}/"))
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
