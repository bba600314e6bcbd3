//! The portal designer's pages: validated operations shared by the admin console
//! ([`crate::portal_api`]) and the CLI (`relay portal page …`), and what the login page receives.
//!
//! A page is a name, a [`Design`] and [`Preferences`] (stored as JSON, see [`crate::store`]) and a
//! published flag. Published pages are served at `/<name>.html`; a published `index` replaces the
//! default look at `/`. Every change goes through [`portal_design`]'s rules first, so nothing invalid
//! is ever stored, and an uploaded image is stored in the same transaction as the page that uses it.

use crate::portal_design::{
    self, Background, Design, DesignError, ImagePurpose, Preferences, Warning, INDEX_PAGE,
};
use crate::store::{NewPortalAsset, PortalPageRow, Store, StoreError};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Invalid(#[from] DesignError),
    #[error("there is no portal page named \"{0}\"")]
    UnknownPage(String),
}

pub type Result<T> = std::result::Result<T, PortalError>;

/// A page as the designer shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub name: String,
    pub design: Design,
    pub preferences: Preferences,
    pub published: bool,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    /// Where the page is served once published.
    pub url: String,
    /// Contrast and visible-password warnings of the current values.
    pub warnings: Vec<Warning>,
}

/// The URL a page is served at.
pub fn page_url(name: &str) -> String {
    if name == INDEX_PAGE {
        "/".to_owned()
    } else {
        format!("/{name}.html")
    }
}

fn from_row(row: PortalPageRow) -> Result<Page> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("{what} of portal page {}", row.name));
    let mut design: Design = serde_json::from_str(&row.design).map_err(|_| corrupt("design"))?;
    let preferences: Preferences =
        serde_json::from_str(&row.preferences).map_err(|_| corrupt("preferences"))?;
    let mut warnings = portal_design::validate_design(&mut design)?;
    warnings.extend(portal_design::validate_preferences(
        &row.name,
        &preferences,
    )?);
    Ok(Page {
        url: page_url(&row.name),
        name: row.name,
        design,
        preferences,
        published: row.published,
        updated_at: row.updated_at,
        published_at: row.published_at,
        warnings,
    })
}

pub async fn list(store: &Store) -> Result<Vec<Page>> {
    store
        .portal_pages()
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// A page by name (also unpublished ones).
pub async fn get(store: &Store, name: &str) -> Result<Page> {
    portal_design::validate_page_name(name)?;
    match store.portal_page(name).await? {
        Some(row) => from_row(row),
        None => Err(PortalError::UnknownPage(name.to_owned())),
    }
}

/// A page, or a new one with the defaults when there is none yet.
pub async fn get_or_default(store: &Store, name: &str) -> Result<Page> {
    match get(store, name).await {
        Err(PortalError::UnknownPage(_)) => Ok(Page {
            name: name.to_owned(),
            design: Design::default(),
            preferences: Preferences::default(),
            published: false,
            updated_at: 0,
            published_at: None,
            url: page_url(name),
            warnings: Vec::new(),
        }),
        other => other,
    }
}

/// Validates and stores a page's design and preferences (created unpublished if new; a published page
/// shows the change at once). With `upload`, the image is stored in the same transaction.
pub async fn save(
    store: &Store,
    name: &str,
    mut design: Design,
    preferences: Preferences,
    upload: Option<NewPortalAsset>,
) -> Result<Page> {
    portal_design::validate_page_name(name)?;
    portal_design::validate_design(&mut design)?;
    portal_design::validate_preferences(name, &preferences)?;
    for asset in referenced_assets(&design) {
        let uploaded_now = upload.as_ref().is_some_and(|u| u.id == asset);
        if !uploaded_now && store.portal_asset(&asset).await?.is_none() {
            return Err(
                DesignError::Invalid(format!("There is no uploaded image {asset}.")).into(),
            );
        }
    }
    let design_json =
        serde_json::to_string(&design).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let preferences_json =
        serde_json::to_string(&preferences).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store
        .save_portal_page(
            name,
            &design_json,
            &preferences_json,
            upload.as_ref(),
            crate::store::unix_ms(),
        )
        .await?;
    get(store, name).await
}

fn referenced_assets(design: &Design) -> Vec<String> {
    let mut ids: Vec<String> = design.logo.iter().cloned().collect();
    if let Background::Upload { asset } = &design.background {
        ids.push(asset.clone());
    }
    ids
}

/// Checks an uploaded image and prepares it for storing (its id is the SHA-256 of its bytes).
pub fn prepare_upload(bytes: Vec<u8>, purpose: ImagePurpose) -> Result<NewPortalAsset> {
    let kind = portal_design::check_image(&bytes, purpose)?;
    Ok(NewPortalAsset {
        id: hex::encode(Sha256::digest(&bytes)),
        purpose: purpose.as_str().to_owned(),
        content_type: kind.content_type().to_owned(),
        bytes,
    })
}

/// Sets (or with `None` clears) a page's logo from an uploaded file.
pub async fn set_logo(store: &Store, name: &str, bytes: Option<Vec<u8>>) -> Result<Page> {
    let page = get_or_default(store, name).await?;
    let upload = bytes
        .map(|bytes| prepare_upload(bytes, ImagePurpose::Logo))
        .transpose()?;
    let mut design = page.design;
    design.logo = upload.as_ref().map(|u| u.id.clone());
    save(store, name, design, page.preferences, upload).await
}

/// What a page's background becomes.
pub enum BackgroundChoice {
    Theme,
    Stock(u8),
    Upload(Vec<u8>),
}

pub async fn set_background(store: &Store, name: &str, choice: BackgroundChoice) -> Result<Page> {
    let page = get_or_default(store, name).await?;
    let mut design = page.design;
    let mut upload = None;
    design.background = match choice {
        BackgroundChoice::Theme => Background::Theme,
        BackgroundChoice::Stock(number) => Background::Stock { number },
        BackgroundChoice::Upload(bytes) => {
            let asset = prepare_upload(bytes, ImagePurpose::Background)?;
            let id = asset.id.clone();
            upload = Some(asset);
            Background::Upload { asset: id }
        }
    };
    save(store, name, design, page.preferences, upload).await
}

/// Back to the default design and empty preferences (the published state is kept).
pub async fn reset(store: &Store, name: &str) -> Result<Page> {
    get(store, name).await?;
    save(store, name, Design::default(), Preferences::default(), None).await
}

/// Publishes a page (it must exist: save it first).
pub async fn publish(store: &Store, name: &str) -> Result<Page> {
    portal_design::validate_page_name(name)?;
    if !store
        .set_portal_published(name, true, crate::store::unix_ms())
        .await?
    {
        return Err(PortalError::UnknownPage(name.to_owned()));
    }
    get(store, name).await
}

pub async fn unpublish(store: &Store, name: &str) -> Result<Page> {
    portal_design::validate_page_name(name)?;
    if !store
        .set_portal_published(name, false, crate::store::unix_ms())
        .await?
    {
        return Err(PortalError::UnknownPage(name.to_owned()));
    }
    get(store, name).await
}

/// Deletes a page and images no page uses any more (older than an hour, see the store).
pub async fn delete(store: &Store, name: &str) -> Result<()> {
    portal_design::validate_page_name(name)?;
    if !store.delete_portal_page(name).await? {
        return Err(PortalError::UnknownPage(name.to_owned()));
    }
    let used: Vec<String> = list(store)
        .await?
        .iter()
        .flat_map(|page| referenced_assets(&page.design))
        .collect();
    let hour_ago = crate::store::unix_ms().saturating_sub(3_600_000);
    store.delete_unused_portal_assets(&used, hour_ago).await?;
    Ok(())
}

/// Whether `/<name>.html` is a published page.
pub async fn is_published(store: &Store, name: &str) -> Result<bool> {
    if portal_design::validate_page_name(name).is_err() {
        return Ok(false);
    }
    Ok(store
        .portal_page(name)
        .await?
        .is_some_and(|row| row.published))
}

/// `/<name>.html` → `name` when it is a valid page name (anything else is not a page).
pub fn page_name_of_path(path: &str) -> Option<&str> {
    let name = path.strip_prefix('/')?.strip_suffix(".html")?;
    portal_design::validate_page_name(name).ok()?;
    (name != INDEX_PAGE).then_some(name)
}

/// The portal's index.html with `<meta name="homedesk-page" content="NAME">` at the start of its head,
/// which tells the client which page's design to ask for. `name` must be a valid page name (so it
/// needs no escaping).
pub fn with_page_meta(html: &str, name: &str) -> String {
    let meta = format!("<meta name=\"homedesk-page\" content=\"{name}\" />");
    match html.to_ascii_lowercase().find("<head>") {
        Some(at) => format!(
            "{}{meta}{}",
            &html[..at + "<head>".len()],
            &html[at + "<head>".len()..]
        ),
        None => format!("{meta}{html}"),
    }
}

/// What the login page receives from `GET /api/portal[?page=NAME]`: `None` when the named page is
/// not published. Without a name: the published `index` page, else the defaults. The portal-wide
/// `portal.show_domain` setting applies unless the page decides.
pub async fn login_page_view(store: &Store, name: Option<&str>) -> Result<Option<Value>> {
    let show_domain_default = show_domain_setting(store).await?;
    let requested = name.unwrap_or(INDEX_PAGE);
    let page = if is_published(store, requested).await? {
        Some(get(store, requested).await?)
    } else if name.is_some_and(|n| n != INDEX_PAGE) {
        return Ok(None);
    } else {
        None
    };
    let (page_name, design, preferences) = match page {
        Some(page) => (Some(page.name), page.design, page.preferences),
        None => (None, Design::default(), Preferences::default()),
    };
    Ok(Some(view(
        page_name,
        &design,
        &preferences,
        show_domain_default,
    )))
}

/// The portal-wide `portal.show_domain` setting (`relay portal show-domain on|off`).
pub async fn show_domain_setting(store: &Store) -> Result<bool> {
    Ok(store
        .setting(crate::twofa::SHOW_DOMAIN_SETTING)
        .await?
        .is_some_and(|v| v == "1"))
}

/// The JSON the login page applies (also used by the designer's preview of unsaved values).
pub fn view(
    page: Option<String>,
    design: &Design,
    preferences: &Preferences,
    show_domain_default: bool,
) -> Value {
    json!({
        "page": page,
        "show_domain": preferences.show_domain.unwrap_or(show_domain_default),
        "design": {
            "title": design.title,
            "theme": design.theme,
            "colors": design.colors,
            "logo_url": design.logo.as_deref().map_or_else(
                || portal_design::DEFAULT_LOGO_URL.to_owned(),
                portal_design::asset_url,
            ),
            "background_url": design.background.url(),
        },
        "preferences": {
            "username": preferences.username,
            "password": preferences.password,
            "domain": preferences.domain,
            "keyboard_layout": preferences.keyboard_layout,
            "upload_path": preferences.upload_path,
            "download_path": preferences.download_path,
        },
    })
}

/// The presets and stock backgrounds the designer offers.
pub fn catalogue() -> Value {
    let themes: Vec<Value> = portal_design::THEMES
        .iter()
        .map(|t| json!({ "name": t.name, "label": t.label, "colors": t.colors() }))
        .collect();
    let backgrounds: Vec<Value> = (1..=portal_design::STOCK_BACKGROUNDS)
        .map(|n| json!({ "number": n, "url": portal_design::stock_background_url(n) }))
        .collect();
    json!({
        "themes": themes,
        "backgrounds": backgrounds,
        "defaults": { "design": Design::default(), "preferences": Preferences::default() },
        "limits": {
            "logo_bytes": portal_design::MAX_LOGO_BYTES,
            "background_bytes": portal_design::MAX_BACKGROUND_BYTES,
            "formats": ["image/png", "image/jpeg", "image/webp"],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_paths() {
        assert_eq!(page_name_of_path("/sales.html"), Some("sales"));
        assert_eq!(page_name_of_path("/index.html"), None);
        assert_eq!(page_name_of_path("/api.html"), None);
        assert_eq!(page_name_of_path("/a/b.html"), None);
        assert_eq!(page_name_of_path("/../x.html"), None);
        assert_eq!(page_name_of_path("/Sales.html"), None);
        assert_eq!(page_name_of_path("/sales"), None);
    }

    #[test]
    fn meta_goes_into_the_head() {
        let html = "<!DOCTYPE html><html><HEAD><title>x</title></HEAD></html>";
        assert_eq!(
            with_page_meta(html, "sales"),
            "<!DOCTYPE html><html><HEAD><meta name=\"homedesk-page\" content=\"sales\" /><title>x</title></HEAD></html>"
        );
    }
}
