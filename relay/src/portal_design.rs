//! The portal designer's rules, pure (no I/O): what a published page's name may be, what a design
//! and the login preferences may hold, which uploaded images are accepted, and the WCAG contrast of a
//! theme.
//!
//! It exists apart from [`crate::portal`] (which stores pages) so that every rule is unit-tested
//! without a database and the console, the CLI and the serving code all apply the same ones.
//! Invariants: a valid page name is a safe file stem (`[a-z0-9-]`, so never a path, never `..`);
//! colours are `#rrggbb`; an accepted image is PNG, JPEG or WebP by its magic bytes (what the uploader
//! claims is ignored), never SVG (it can carry scripts and we have no sanitiser we trust).

use serde::{Deserialize, Serialize};

/// The browser drive's name rules, the crate the client applies too: the relay refuses an upload or
/// download folder the client would refuse.
use homedesk_drive_names as drive_names;

/// Longest page name.
pub const MAX_NAME_LEN: usize = 40;
/// Largest logo upload.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
/// Largest background upload.
pub const MAX_BACKGROUND_BYTES: usize = 1024 * 1024;
/// Number of stock backgrounds shipped in `portal-assets/backgrounds/` (`bg-01.jpg` …).
pub const STOCK_BACKGROUNDS: u8 = 20;
/// WCAG 2.x AA minimum contrast for normal text.
pub const MIN_CONTRAST: f64 = 4.5;
/// The page that replaces the default login page at `/`.
pub const INDEX_PAGE: &str = "index";

/// Names that would shadow the relay's own paths or shipped files.
const RESERVED_NAMES: &[&str] = &[
    "admin",
    "api",
    "download",
    "downloads",
    "assets",
    "backgrounds",
    "images",
    "static",
    "favicon",
    "robots",
    "well-known",
    "portal",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesignError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> DesignError {
    DesignError::Invalid(message.into())
}

pub type Result<T> = std::result::Result<T, DesignError>;

/// Checks a page name: 1–40 characters of `a-z`, `0-9` and `-` (not first or last), not reserved.
pub fn validate_page_name(name: &str) -> Result<()> {
    let rule = "Page names use 1 to 40 lowercase letters (a-z), digits and hyphens, not starting or ending \
                with a hyphen";
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(invalid(format!("{rule}.")));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(invalid(format!(
            "{rule}: \"{}\" is not one.",
            printable(name)
        )));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(invalid(format!(
            "\"{name}\" is reserved for the portal's own pages and files; choose another name."
        )));
    }
    Ok(())
}

/// A name as it may be shown in a message (control characters escaped, length capped).
fn printable(value: &str) -> String {
    value
        .chars()
        .take(60)
        .flat_map(char::escape_debug)
        .collect()
}

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rrggbb` or `#rgb` (any case) → colour.
    pub fn parse(value: &str) -> Result<Rgb> {
        let refuse = || {
            invalid(format!(
                "\"{}\" is not a colour: use a hex code like #1e4e8c.",
                printable(value)
            ))
        };
        let hex = value.trim().strip_prefix('#').ok_or_else(refuse)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refuse());
        }
        let digit = |i: usize, len: usize| {
            u8::from_str_radix(&hex[i * len..(i + 1) * len], 16).map_err(|_| refuse())
        };
        match hex.len() {
            6 => Ok(Rgb(digit(0, 2)?, digit(1, 2)?, digit(2, 2)?)),
            3 => Ok(Rgb(digit(0, 1)? * 17, digit(1, 1)? * 17, digit(2, 1)? * 17)),
            _ => Err(refuse()),
        }
    }

    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG 2.x relative luminance.
    pub fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(self.0) + 0.7152 * channel(self.1) + 0.0722 * channel(self.2)
    }
}

/// WCAG contrast ratio (1 to 21) of two colours.
pub fn contrast_ratio(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    let (light, dark) = if la >= lb { (la, lb) } else { (lb, la) };
    (light + 0.05) / (dark + 0.05)
}

/// The colours of a page, each `#rrggbb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Colors {
    /// Heading, links, the sign-in button.
    pub accent: String,
    /// Text on the sign-in button.
    pub accent_text: String,
    /// The page behind the card (under the background picture, if any).
    pub page: String,
    /// The login card.
    pub card: String,
    /// Text on the card.
    pub text: String,
    /// Secondary text on the card.
    pub muted: String,
}

/// A classic palette offered by the designer.
pub struct Theme {
    pub name: &'static str,
    pub label: &'static str,
    colors: [&'static str; 6],
}

impl Theme {
    pub fn colors(&self) -> Colors {
        let [accent, accent_text, page, card, text, muted] = self.colors.map(str::to_owned);
        Colors {
            accent,
            accent_text,
            page,
            card,
            text,
            muted,
        }
    }
}

/// The classic palettes (accent, accent text, page, card, text, muted); every pair passes WCAG AA.
pub const THEMES: &[Theme] = &[
    Theme {
        name: "homedesk",
        label: "Homedesk blue",
        colors: [
            "#1e4e8c", "#ffffff", "#0f2d52", "#ffffff", "#1b1f24", "#5a6472",
        ],
    },
    Theme {
        name: "dark",
        label: "Dark",
        colors: [
            "#7ab8ff", "#0b1220", "#0b0f14", "#1c232c", "#e8edf3", "#a9b4c2",
        ],
    },
    Theme {
        name: "forest",
        label: "Forest green",
        colors: [
            "#1f6b3a", "#ffffff", "#123d22", "#ffffff", "#1b1f24", "#566157",
        ],
    },
    Theme {
        name: "burgundy",
        label: "Burgundy",
        colors: [
            "#8c1e3c", "#ffffff", "#4a0f20", "#fffaf7", "#221a1c", "#66585c",
        ],
    },
    Theme {
        name: "sunset",
        label: "Sunset orange",
        colors: [
            "#a84300", "#ffffff", "#5c2600", "#fffdf9", "#231c17", "#6a5a4e",
        ],
    },
    Theme {
        name: "graphite",
        label: "Graphite",
        colors: [
            "#37414d", "#ffffff", "#6b7684", "#f5f6f8", "#1b1f24", "#545d69",
        ],
    },
    Theme {
        name: "contrast",
        label: "High contrast",
        colors: [
            "#000000", "#ffff00", "#000000", "#ffffff", "#000000", "#2b2b2b",
        ],
    },
];

pub fn theme(name: &str) -> Option<&'static Theme> {
    THEMES.iter().find(|t| t.name == name)
}

/// Where the page's background picture comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Background {
    /// No picture: the theme's page colour.
    #[default]
    Theme,
    /// One of the shipped pictures, 1 to [`STOCK_BACKGROUNDS`].
    Stock { number: u8 },
    /// The administrator's own upload (an asset id).
    Upload { asset: String },
}

impl Background {
    /// The URL the browser loads, if any.
    pub fn url(&self) -> Option<String> {
        match self {
            Background::Theme => None,
            Background::Stock { number } => Some(stock_background_url(*number)),
            Background::Upload { asset } => Some(asset_url(asset)),
        }
    }
}

pub fn stock_background_url(number: u8) -> String {
    format!("/backgrounds/bg-{number:02}.jpg")
}

pub fn asset_url(id: &str) -> String {
    format!("/api/portal/assets/{id}")
}

/// The default logo (shipped in `portal-assets/images`).
pub const DEFAULT_LOGO_URL: &str = "/images/logo.svg";

/// How a page looks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Design {
    /// The heading on the login card.
    pub title: String,
    /// A preset of [`THEMES`], or `custom` once colours were changed by hand.
    pub theme: String,
    pub colors: Colors,
    /// An uploaded logo (asset id); `None`: the Homedesk logo.
    pub logo: Option<String>,
    pub background: Background,
}

impl Default for Design {
    fn default() -> Self {
        Design {
            title: "Homedesk".to_owned(),
            theme: THEMES[0].name.to_owned(),
            colors: THEMES[0].colors(),
            logo: None,
            background: Background::Theme,
        }
    }
}

impl Default for Colors {
    fn default() -> Self {
        THEMES[0].colors()
    }
}

/// What the login form is filled with, and options other parts of the client read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Preferences {
    pub username: String,
    /// Shown in clear to anyone who opens the page (see [`Warning`]).
    pub password: String,
    pub domain: String,
    /// `None`: the portal-wide setting (`relay portal show-domain`).
    pub show_domain: Option<bool>,
    /// A keyboard layout tag such as `en-US` or `fr-FR`; empty: the browser's.
    pub keyboard_layout: String,
    /// Folder in the browser's drive ("Browser" in the session) where uploaded files land, e.g. `Inbox`
    /// or `Team/In`; empty: `Uploads`.
    pub upload_path: String,
    /// Folder in the browser's drive whose files the workstation saves are downloaded; empty: `Downloads`.
    pub download_path: String,
}

/// Accepted image formats (by magic bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Webp,
}

impl ImageKind {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Webp => "image/webp",
        }
    }

    pub fn from_content_type(value: &str) -> Option<ImageKind> {
        match value {
            "image/png" => Some(ImageKind::Png),
            "image/jpeg" => Some(ImageKind::Jpeg),
            "image/webp" => Some(ImageKind::Webp),
            _ => None,
        }
    }
}

/// What an uploaded image is for (decides its size limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePurpose {
    Logo,
    Background,
}

impl ImagePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePurpose::Logo => "logo",
            ImagePurpose::Background => "background",
        }
    }

    fn limit(self) -> usize {
        match self {
            ImagePurpose::Logo => MAX_LOGO_BYTES,
            ImagePurpose::Background => MAX_BACKGROUND_BYTES,
        }
    }
}

/// Accepts a PNG, JPEG or WebP image within the purpose's size limit; refuses SVG with the reason.
pub fn check_image(bytes: &[u8], purpose: ImagePurpose) -> Result<ImageKind> {
    let limit = purpose.limit();
    if bytes.is_empty() {
        return Err(invalid(format!("The {} file is empty.", purpose.as_str())));
    }
    if bytes.len() > limit {
        return Err(invalid(format!(
            "The {} is {} KB; at most {} KB is accepted.",
            purpose.as_str(),
            bytes.len().div_ceil(1024),
            limit / 1024
        )));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(ImageKind::Png);
    }
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return Ok(ImageKind::Jpeg);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(ImageKind::Webp);
    }
    if looks_like_svg(bytes) {
        return Err(invalid(format!(
            "SVG images are refused: an SVG can carry scripts. Upload the {} as PNG, JPEG or WebP.",
            purpose.as_str()
        )));
    }
    Err(invalid(format!(
        "The {} is not a PNG, JPEG or WebP image.",
        purpose.as_str()
    )))
}

fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<?xml")
        || head.starts_with("<svg")
        || head.starts_with("<!doctype svg")
        || head.contains("<svg")
}

/// An asset id: the SHA-256 of its bytes, lowercase hex.
pub fn is_asset_id(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Something the administrator should know but that does not stop saving or publishing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// `contrast` or `visible_password`.
    pub kind: &'static str,
    pub message: String,
}

fn text_field(label: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(invalid(format!(
            "The {label} is longer than {max} characters."
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!("The {label} contains control characters.")));
    }
    Ok(())
}

/// Checks a design (normalising colours to lowercase `#rrggbb`) and returns its contrast warnings.
pub fn validate_design(design: &mut Design) -> Result<Vec<Warning>> {
    text_field("title", &design.title, 60)?;
    if design.theme != "custom" && theme(&design.theme).is_none() {
        let names: Vec<&str> = THEMES.iter().map(|t| t.name).collect();
        return Err(invalid(format!(
            "There is no theme \"{}\"; choose one of {} or custom.",
            printable(&design.theme),
            names.join(", ")
        )));
    }
    let c = &mut design.colors;
    for (label, value) in [
        ("accent colour", &mut c.accent),
        ("button text colour", &mut c.accent_text),
        ("page colour", &mut c.page),
        ("card colour", &mut c.card),
        ("text colour", &mut c.text),
        ("secondary text colour", &mut c.muted),
    ] {
        *value = Rgb::parse(value)
            .map_err(|e| invalid(format!("The {label}: {e}")))?
            .hex();
    }
    if let Some(logo) = &design.logo {
        if !is_asset_id(logo) {
            return Err(invalid("The logo must be an uploaded image."));
        }
    }
    match &design.background {
        Background::Theme => {}
        Background::Stock { number } if (1..=STOCK_BACKGROUNDS).contains(number) => {}
        Background::Stock { .. } => {
            return Err(invalid(format!(
                "Stock backgrounds are numbered 1 to {STOCK_BACKGROUNDS}."
            )))
        }
        Background::Upload { asset } if is_asset_id(asset) => {}
        Background::Upload { .. } => {
            return Err(invalid("The background must be an uploaded image."))
        }
    }
    Ok(contrast_warnings(&design.colors))
}

/// The pairs of colours that carry text, with a warning for each below WCAG AA (4.5:1).
pub fn contrast_warnings(colors: &Colors) -> Vec<Warning> {
    let pairs = [
        ("the text", &colors.text, "the card", &colors.card),
        (
            "the secondary text",
            &colors.muted,
            "the card",
            &colors.card,
        ),
        (
            "the heading and links (accent)",
            &colors.accent,
            "the card",
            &colors.card,
        ),
        (
            "the button text",
            &colors.accent_text,
            "the button (accent)",
            &colors.accent,
        ),
    ];
    pairs
        .into_iter()
        .filter_map(|(what, fg, on, bg)| {
            let ratio = contrast_ratio(Rgb::parse(fg).ok()?, Rgb::parse(bg).ok()?);
            (ratio < MIN_CONTRAST).then(|| Warning {
                kind: "contrast",
                message: format!(
                    "Low contrast: {what} ({fg}) on {on} ({bg}) is {ratio:.1}:1; WCAG AA asks for at least \
                     4.5:1, so some people will not be able to read it."
                ),
            })
        })
        .collect()
}

/// The warning shown whenever a page carries a default password.
pub fn visible_password_warning(name: &str) -> Warning {
    Warning {
        kind: "visible_password",
        message: format!(
            "The default password is visible to anyone who opens {}: it is sent to every browser \
             in clear. Use it only for an account that may be public (a demo or kiosk account).",
            if name == INDEX_PAGE { "/".to_owned() } else { format!("/{name}.html") }
        ),
    }
}

/// An upload or download folder: empty (the default) or a folder inside the browser's drive.
fn drive_folder(what: &str, value: &str, default: &str) -> Result<()> {
    text_field(&format!("{what} folder"), value, 260)?;
    drive_names::DrivePath::folder_setting(value).map(|_| ()).map_err(|error| {
        invalid(format!(
            "The {what} folder \"{}\" is not a folder in the Browser drive ({error}). Give a folder inside the \
             drive, such as Inbox or Team/In, or leave it empty for {default}.",
            printable(value)
        ))
    })
}

/// Checks the login preferences and returns their warnings.
pub fn validate_preferences(name: &str, preferences: &Preferences) -> Result<Vec<Warning>> {
    text_field("default username", &preferences.username, 256)?;
    text_field("default password", &preferences.password, 256)?;
    text_field("default domain", &preferences.domain, 255)?;
    drive_folder("upload", &preferences.upload_path, "Uploads")?;
    drive_folder("download", &preferences.download_path, "Downloads")?;
    let layout = &preferences.keyboard_layout;
    let tag_ok = layout.is_empty()
        || (layout.len() <= 35
            && layout.split('-').enumerate().all(|(i, part)| {
                let len_ok = if i == 0 {
                    (2..=3).contains(&part.len())
                } else {
                    (1..=8).contains(&part.len())
                };
                len_ok && part.bytes().all(|b| b.is_ascii_alphanumeric())
            }));
    if !tag_ok {
        return Err(invalid(format!(
            "\"{}\" is not a keyboard layout: use a language tag such as en-US, fr-FR or de-CH.",
            printable(layout)
        )));
    }
    Ok(if preferences.password.is_empty() {
        Vec::new()
    } else {
        vec![visible_password_warning(name)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_names() {
        for good in ["index", "sales", "site-2", "a", &"x".repeat(40)] {
            assert_eq!(validate_page_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "../etc",
            "..",
            "a/b",
            "a\\b",
            "Sales",
            "sales.html",
            "-a",
            "a-",
            "a b",
            "%2e%2e",
            "a\0",
            &"x".repeat(41),
            "sales%2f",
            "é",
        ] {
            assert!(validate_page_name(bad).is_err(), "{bad:?} accepted");
        }
        for reserved in [
            "admin",
            "api",
            "download",
            "assets",
            "backgrounds",
            "images",
        ] {
            let error = validate_page_name(reserved).unwrap_err().to_string();
            assert!(error.contains("reserved"), "{error}");
        }
    }

    #[test]
    fn colours() {
        assert_eq!(Rgb::parse("#1E4E8C"), Ok(Rgb(0x1e, 0x4e, 0x8c)));
        assert_eq!(Rgb::parse("#fff").map(Rgb::hex), Ok("#ffffff".to_owned()));
        for bad in [
            "1e4e8c",
            "#1e4e8",
            "#gggggg",
            "red",
            "#1e4e8c;x",
            "#+1+2+3",
            "",
        ] {
            assert!(Rgb::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contrast_follows_wcag() {
        let black = Rgb(0, 0, 0);
        let white = Rgb(255, 255, 255);
        assert!((contrast_ratio(black, white) - 21.0).abs() < 1e-9);
        assert!((contrast_ratio(white, white) - 1.0).abs() < 1e-9);
        // WebAIM's checker: #767676 on white is 4.54:1, #777777 is 4.48:1.
        assert!((contrast_ratio(Rgb(0x76, 0x76, 0x76), white) - 4.54).abs() < 0.01);
        assert!(contrast_ratio(Rgb(0x77, 0x77, 0x77), white) < MIN_CONTRAST);
    }

    #[test]
    fn every_theme_passes_aa() {
        for theme in THEMES {
            assert_eq!(contrast_warnings(&theme.colors()), vec![], "{}", theme.name);
        }
    }

    #[test]
    fn low_contrast_is_named() {
        let mut design = Design {
            theme: "custom".into(),
            ..Design::default()
        };
        design.colors.accent_text = "#3A6AA8".into();
        let warnings = validate_design(&mut design).unwrap();
        assert_eq!(design.colors.accent_text, "#3a6aa8");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].message.contains("the button text (#3a6aa8)"),
            "{}",
            warnings[0].message
        );
        assert!(warnings[0].message.contains("4.5:1"));
    }

    #[test]
    fn design_rules() {
        let mut design = Design {
            theme: "neon".into(),
            ..Design::default()
        };
        assert!(validate_design(&mut design).is_err());
        let mut design = Design {
            background: Background::Stock { number: 21 },
            ..Design::default()
        };
        assert!(validate_design(&mut design).is_err());
        let mut design = Design {
            logo: Some("../../etc/passwd".into()),
            ..Design::default()
        };
        assert!(validate_design(&mut design).is_err());
        let mut design = Design {
            title: "a\u{7}".into(),
            ..Design::default()
        };
        assert!(validate_design(&mut design).is_err());
        let mut design = Design {
            background: Background::Stock { number: 20 },
            ..Design::default()
        };
        assert_eq!(validate_design(&mut design), Ok(vec![]));
        assert_eq!(
            design.background.url().as_deref(),
            Some("/backgrounds/bg-20.jpg")
        );
    }

    #[test]
    fn images_by_magic_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        assert_eq!(check_image(&png, ImagePurpose::Logo), Ok(ImageKind::Png));
        assert_eq!(
            check_image(&[0xff, 0xd8, 0xff, 0xe0, 0, 0x10], ImagePurpose::Logo),
            Ok(ImageKind::Jpeg)
        );
        assert_eq!(
            check_image(b"RIFF\x24\0\0\0WEBPVP8 ", ImagePurpose::Background),
            Ok(ImageKind::Webp)
        );
        for svg in [
            &b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"[..],
            b"\xef\xbb\xbf  <?xml version='1.0'?><svg/>",
            b"<!-- hi --><SVG onload=x>",
        ] {
            let error = check_image(svg, ImagePurpose::Logo)
                .unwrap_err()
                .to_string();
            assert!(error.contains("SVG images are refused"), "{error}");
        }
        let error = check_image(b"GIF89a....", ImagePurpose::Logo)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a PNG, JPEG or WebP"), "{error}");
        assert!(check_image(b"", ImagePurpose::Logo).is_err());
        let mut big = png.clone();
        big.resize(MAX_LOGO_BYTES + 1, 0);
        let error = check_image(&big, ImagePurpose::Logo)
            .unwrap_err()
            .to_string();
        assert!(error.contains("at most 256 KB"), "{error}");
        assert_eq!(
            check_image(&big, ImagePurpose::Background),
            Ok(ImageKind::Png)
        );
    }

    #[test]
    fn preferences_rules() {
        let mut preferences = Preferences {
            keyboard_layout: "fr-FR".into(),
            ..Preferences::default()
        };
        assert_eq!(validate_preferences("sales", &preferences), Ok(vec![]));
        preferences.password = "demo".into();
        let warnings = validate_preferences("sales", &preferences).unwrap();
        assert_eq!(warnings[0].kind, "visible_password");
        assert!(warnings[0].message.contains("/sales.html"));
        for layout in ["fr_FR", "f", "<script>", "en-US-toolongvalue"] {
            let preferences = Preferences {
                keyboard_layout: layout.into(),
                ..Preferences::default()
            };
            assert!(validate_preferences("x", &preferences).is_err(), "{layout}");
        }
        let preferences = Preferences {
            upload_path: "C:\\a\nb".into(),
            ..Preferences::default()
        };
        assert!(validate_preferences("x", &preferences).is_err());
    }

    #[test]
    fn folders_are_folders_in_the_browser_drive() {
        let with = |upload: &str, download: &str| Preferences {
            upload_path: upload.into(),
            download_path: download.into(),
            ..Preferences::default()
        };
        for (upload, download) in [("", ""), ("Inbox", "Outbox"), ("Team/In", "Team\\Out"), ("Uploads ü", "a.b")] {
            assert_eq!(validate_preferences("x", &with(upload, download)), Ok(vec![]), "{upload} {download}");
        }
        for bad in ["C:\\Uploads", "/home/me", "\\\\server\\share", "../x", "Team/../../x", "CON", "a//b", "In?", "x."] {
            let Err(DesignError::Invalid(message)) = validate_preferences("x", &with(bad, "")) else {
                panic!("{bad:?} accepted as upload folder");
            };
            assert!(message.starts_with("The upload folder") && message.contains("Browser drive"), "{message}");
            assert!(validate_preferences("x", &with("", bad)).is_err(), "{bad:?} accepted as download folder");
        }
    }
}
