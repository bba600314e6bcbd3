//! `relay portal page …` and `relay portal themes`: the portal designer from the command line.
//!
//! Same operations as the console ([`homedesk_relay::portal`]); works on the database, so a serving
//! relay shows a change at its next request. Warnings (low contrast, a visible default password) are
//! printed on stderr as `warning: …` and do not fail the command.

use crate::cli::print_table;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use homedesk_relay::portal::{self, BackgroundChoice, Page};
use homedesk_relay::portal_design::{self, Design, Preferences};
use homedesk_relay::store::Store;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum PortalPageCommand {
    /// Every page: name, published or not, URL.
    List,
    /// A page's design, preferences and warnings.
    Show { name: String },
    /// Create or change a page (unpublished when new). Only the given options change.
    Set(Box<SetArgs>),
    /// Serve the page at /NAME.html ("index": at /, replacing the default look).
    Publish { name: String },
    /// Stop serving the page (it is kept and can be published again).
    Unpublish { name: String },
    /// Delete the page.
    Delete { name: String },
    /// Set the page's logo from a PNG, JPEG or WebP file (SVG is refused), or --clear it.
    Logo {
        name: String,
        #[arg(required_unless_present = "clear")]
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        clear: bool,
    },
    /// Set the page's background: --stock N (1-20), --file FILE (PNG/JPEG/WebP) or --none (theme colour).
    Background {
        name: String,
        #[arg(long, conflicts_with_all = ["file", "none"])]
        stock: Option<u8>,
        #[arg(long, conflicts_with = "none")]
        file: Option<PathBuf>,
        #[arg(long)]
        none: bool,
    },
}

#[derive(Debug, Args)]
pub struct SetArgs {
    name: String,
    /// Back to the default design and empty preferences first.
    #[arg(long)]
    reset: bool,
    /// Heading of the login card.
    #[arg(long)]
    title: Option<String>,
    /// A classic palette (see `relay portal themes`).
    #[arg(long)]
    theme: Option<String>,
    /// Accent colour (heading, links, button), e.g. #1e4e8c. Any colour option makes the theme "custom".
    #[arg(long)]
    accent: Option<String>,
    #[arg(long)]
    accent_text: Option<String>,
    #[arg(long)]
    page_color: Option<String>,
    #[arg(long)]
    card: Option<String>,
    #[arg(long)]
    text: Option<String>,
    #[arg(long)]
    muted: Option<String>,
    /// Pre-filled username.
    #[arg(long)]
    username: Option<String>,
    /// Pre-filled password: visible to anyone who opens the page.
    #[arg(long)]
    password: Option<String>,
    /// Pre-filled domain.
    #[arg(long)]
    domain: Option<String>,
    /// Show the Domain field: on, off, or default (the portal-wide `relay portal show-domain`).
    #[arg(long, value_parser = ["on", "off", "default"])]
    show_domain: Option<String>,
    /// Keyboard layout tag, e.g. fr-FR (empty: the browser's).
    #[arg(long)]
    keyboard: Option<String>,
    /// Upload folder in the browser's drive "Browser", e.g. Inbox or Team/In (empty: Uploads).
    #[arg(long)]
    upload_path: Option<String>,
    /// Download folder in the browser's drive "Browser", e.g. Outbox (empty: Downloads).
    #[arg(long)]
    download_path: Option<String>,
}

pub async fn run(store: &Store, command: PortalPageCommand) -> Result<()> {
    match command {
        PortalPageCommand::List => {
            let rows: Vec<[String; 3]> = portal::list(store)
                .await?
                .into_iter()
                .map(|p| [p.name.clone(), state(&p).to_owned(), p.url])
                .collect();
            print_table(["NAME", "STATE", "URL"], &rows);
        }
        PortalPageCommand::Show { name } => show(&portal::get(store, &name).await?)?,
        PortalPageCommand::Set(args) => {
            let page = set(store, *args).await?;
            report(&page, "saved");
        }
        PortalPageCommand::Publish { name } => {
            let page = portal::publish(store, &name).await?;
            report(&page, "published");
        }
        PortalPageCommand::Unpublish { name } => {
            portal::unpublish(store, &name).await?;
            println!("Page {name} unpublished.");
        }
        PortalPageCommand::Delete { name } => {
            portal::delete(store, &name).await?;
            println!("Page {name} deleted.");
        }
        PortalPageCommand::Logo { name, file, clear } => {
            let bytes = match (file, clear) {
                (Some(file), false) => Some(read(&file)?),
                _ => None,
            };
            let page = portal::set_logo(store, &name, bytes).await?;
            report(&page, "saved");
        }
        PortalPageCommand::Background {
            name,
            stock,
            file,
            none,
        } => {
            let choice = match (stock, file, none) {
                (Some(number), None, false) => BackgroundChoice::Stock(number),
                (None, Some(file), false) => BackgroundChoice::Upload(read(&file)?),
                (None, None, true) => BackgroundChoice::Theme,
                _ => bail!("give one of --stock N, --file FILE or --none"),
            };
            let page = portal::set_background(store, &name, choice).await?;
            report(&page, "saved");
        }
    }
    Ok(())
}

pub fn themes() {
    let rows: Vec<[String; 3]> = portal_design::THEMES
        .iter()
        .map(|t| {
            let c = t.colors();
            [
                t.name.to_owned(),
                t.label.to_owned(),
                format!("accent {} on card {}, text {}", c.accent, c.card, c.text),
            ]
        })
        .collect();
    print_table(["NAME", "LABEL", "COLOURS"], &rows);
    println!(
        "Stock backgrounds: 1 to {} (portal-assets/backgrounds).",
        portal_design::STOCK_BACKGROUNDS
    );
}

fn read(file: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

fn state(page: &Page) -> &'static str {
    if page.published {
        "published"
    } else {
        "draft"
    }
}

fn report(page: &Page, what: &str) {
    for warning in &page.warnings {
        eprintln!("warning: {}", warning.message);
    }
    let served = if page.published {
        format!(", served at {}", page.url)
    } else {
        String::new()
    };
    println!("Page {} {what} ({}{served}).", page.name, state(page));
}

fn show(page: &Page) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(page)?);
    for warning in &page.warnings {
        eprintln!("warning: {}", warning.message);
    }
    Ok(())
}

async fn set(store: &Store, args: SetArgs) -> Result<Page> {
    let page = portal::get_or_default(store, &args.name).await?;
    let (mut design, mut preferences) = if args.reset {
        (Design::default(), Preferences::default())
    } else {
        (page.design, page.preferences)
    };
    if let Some(theme) = &args.theme {
        let Some(preset) = portal_design::theme(theme) else {
            bail!("there is no theme \"{theme}\" (see relay portal themes)");
        };
        design.theme = preset.name.to_owned();
        design.colors = preset.colors();
    }
    let colors = &mut design.colors;
    let mut custom = false;
    for (option, field) in [
        (&args.accent, &mut colors.accent),
        (&args.accent_text, &mut colors.accent_text),
        (&args.page_color, &mut colors.page),
        (&args.card, &mut colors.card),
        (&args.text, &mut colors.text),
        (&args.muted, &mut colors.muted),
    ] {
        if let Some(value) = option {
            *field = value.clone();
            custom = true;
        }
    }
    if custom {
        design.theme = "custom".to_owned();
    }
    if let Some(title) = args.title {
        design.title = title;
    }
    let text_options = [
        (args.username, &mut preferences.username),
        (args.password, &mut preferences.password),
        (args.domain, &mut preferences.domain),
        (args.keyboard, &mut preferences.keyboard_layout),
        (args.upload_path, &mut preferences.upload_path),
        (args.download_path, &mut preferences.download_path),
    ];
    for (option, field) in text_options {
        if let Some(value) = option {
            *field = value;
        }
    }
    if let Some(show) = args.show_domain {
        preferences.show_domain = match show.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        };
    }
    Ok(portal::save(store, &args.name, design, preferences, None).await?)
}
