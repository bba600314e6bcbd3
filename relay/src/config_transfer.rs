//! Export and import of the whole configuration as one versioned JSON document, for backups and moves
//! (`relay config export|import`, `/api/admin/config/...`).
//!
//! Included: users (with their argon2 password hashes), workstations (with pinned fingerprints and the
//! enabled flag), user and group assignments, every settings row (brute-force limits, 2FA settings, SMS
//! and SMTP delivery, the directory configuration, portal options, web server settings), 2FA members and
//! per-user 2FA state, the IP whitelist, and the portal designer's pages with their uploaded images.
//! Secrets stay as stored: 2FA secrets sealed under `twofa.key`
//! (back that file up too; user ids are kept so they open again), the directory's service password and
//! delivery credentials as in their settings rows, so the file is as sensitive as the database.
//! Excluded (state, not configuration): sessions, tickets, sent codes, failed sign-ins, blocks, known
//! IPs, directory users' group memberships (refreshed at sign-in), certificates and ACME state (they
//! have their own history and import: `relay certificate`), server jobs and listener status.
//!
//! An import is validated completely before anything is written, then replaces the configuration in
//! one transaction: a malformed, partial or inconsistent file changes nothing.
//!
//! The console refuses a file without a local administrator (the admin importing it would lock
//! everyone out of the running relay). The CLI accepts one, as exported from a database only ever set
//! up by the CLI: the next `relay serve` then creates the first administrator as on a new database.

use crate::broker;
use crate::netaddr::Cidr;
use crate::portal_design::{self, Background, Design, ImagePurpose, Preferences};
use crate::store::{self, ConfigRecords, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// `format` of an export file.
pub const FORMAT: &str = "homedesk-config";
/// The version this relay writes and reads.
pub const VERSION: u32 = 1;
/// Larger files are refused before parsing.
pub const MAX_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("the file is not a Homedesk configuration export: {0}")]
    Malformed(String),
    #[error("the file is format version {0}; this relay reads version {VERSION}")]
    Version(u32),
    #[error("the file is larger than 64 MiB: not a Homedesk configuration export")]
    TooLarge,
    #[error("invalid configuration, nothing was changed: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The file: a header and every configuration table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub format: String,
    pub version: u32,
    /// Unix ms.
    pub exported_at: i64,
    #[serde(flatten)]
    pub records: ConfigRecords,
}

/// Whether an import may leave the relay without a local administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRule {
    /// The console: the file must have one, or nobody could sign in to the running relay.
    Required,
    /// The CLI: without one, the next `relay serve` creates the first administrator.
    CreatedAtNextStart,
}

/// What an import replaced, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub users: usize,
    pub workstations: usize,
    pub assignments: usize,
    pub settings: usize,
    pub portal_pages: usize,
    pub has_local_admin: bool,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Configuration imported: {} users, {} workstations, {} assignments, {} settings, {} portal pages. \
             Everyone signs in again; web server settings apply at the next restart.",
            self.users, self.workstations, self.assignments, self.settings, self.portal_pages
        )?;
        if !self.has_local_admin {
            write!(
                f,
                " The file has no local administrator: the next `relay serve` creates \"{}\" and prints its password.",
                crate::server::ADMIN_USERNAME
            )?;
        }
        Ok(())
    }
}

/// The whole configuration as pretty JSON.
pub async fn export(store: &Store) -> Result<String, TransferError> {
    let file = ConfigFile {
        format: FORMAT.to_owned(),
        version: VERSION,
        exported_at: store::unix_ms(),
        records: store.export_config().await?,
    };
    serde_json::to_string_pretty(&file).map_err(|e| TransferError::Malformed(e.to_string()))
}

/// Parses, validates and imports a file's bytes (all or nothing).
pub async fn import(
    store: &Store,
    bytes: &[u8],
    admin_rule: AdminRule,
) -> Result<ImportSummary, TransferError> {
    let file = parse(bytes)?;
    validate(&file.records)?;
    let records = &file.records;
    let has_local_admin = has_local_admin(records);
    if admin_rule == AdminRule::Required && !has_local_admin {
        return Err(invalid(
            "the file has no local administrator account (nobody could sign in to manage this relay); \
             import it with `relay config import` instead"
                .into(),
        ));
    }
    store.import_config(records, store::unix_ms()).await?;
    Ok(ImportSummary {
        users: records.users.len(),
        workstations: records.workstations.len(),
        assignments: records.assignments.len() + records.group_assignments.len(),
        settings: records.settings.len(),
        portal_pages: records.portal_pages.len(),
        has_local_admin,
    })
}

/// Whether someone can sign in to the console with a password the relay itself checks.
pub fn has_local_admin(records: &ConfigRecords) -> bool {
    records.users.iter().any(|u| u.is_admin && !u.is_directory)
}

/// The header first (so a newer version gets that message, not a field error), then the body.
pub fn parse(bytes: &[u8]) -> Result<ConfigFile, TransferError> {
    if bytes.len() > MAX_BYTES {
        return Err(TransferError::TooLarge);
    }
    #[derive(Deserialize)]
    struct Header {
        format: Option<String>,
        version: Option<u32>,
    }
    let header: Header =
        serde_json::from_slice(bytes).map_err(|e| TransferError::Malformed(e.to_string()))?;
    if header.format.as_deref() != Some(FORMAT) {
        return Err(TransferError::Malformed(format!(
            "\"format\" must be \"{FORMAT}\""
        )));
    }
    match header.version {
        Some(VERSION) => {}
        Some(other) => return Err(TransferError::Version(other)),
        None => return Err(TransferError::Malformed("\"version\" is missing".into())),
    }
    serde_json::from_slice(bytes).map_err(|e| TransferError::Malformed(e.to_string()))
}

fn invalid(message: String) -> TransferError {
    TransferError::Invalid(message)
}

/// Every rule the database and the relay rely on, checked before the transaction starts.
pub fn validate(records: &ConfigRecords) -> Result<(), TransferError> {
    let mut user_ids = HashSet::new();
    let mut usernames = HashSet::new();
    for (i, user) in records.users.iter().enumerate() {
        let at = format!("users[{i}] ({:?})", user.username);
        if user.username.trim().is_empty() || user.username.chars().any(char::is_control) {
            return Err(invalid(format!(
                "{at}: the user name is empty or has control characters"
            )));
        }
        if user.id <= 0 || !user_ids.insert(user.id) {
            return Err(invalid(format!(
                "{at}: id {} is not positive or used twice",
                user.id
            )));
        }
        if !usernames.insert(user.username.as_str()) {
            return Err(invalid(format!("{at}: the user name is used twice")));
        }
        if user.is_directory != user.password_hash.is_empty() {
            return Err(invalid(format!(
                "{at}: local accounts need a password hash, directory users have none"
            )));
        }
        if !user.is_directory && !user.password_hash.starts_with("$argon2") {
            return Err(invalid(format!(
                "{at}: the password hash is not an argon2 hash"
            )));
        }
    }
    let mut workstation_ids = HashSet::new();
    let mut workstation_names = HashSet::new();
    for (i, w) in records.workstations.iter().enumerate() {
        let at = format!("workstations[{i}] ({:?})", w.name);
        let name = broker::validate_workstation_name(&w.name)
            .map_err(|e| invalid(format!("{at}: {e}")))?;
        if name != w.name {
            return Err(invalid(format!("{at}: the name has surrounding spaces")));
        }
        broker::validate_host(&w.host).map_err(|e| invalid(format!("{at}: {e}")))?;
        if w.port == 0 {
            return Err(invalid(format!("{at}: port 0 is not a workstation port")));
        }
        if let Some(pin) = &w.cert_sha256 {
            if pin.len() != 64 || !pin.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(invalid(format!(
                    "{at}: the pinned fingerprint is not 64 lowercase hex digits"
                )));
            }
        }
        if w.id <= 0 || !workstation_ids.insert(w.id) {
            return Err(invalid(format!(
                "{at}: id {} is not positive or used twice",
                w.id
            )));
        }
        if !workstation_names.insert(w.name.as_str()) {
            return Err(invalid(format!("{at}: the name is used twice")));
        }
    }
    let mut pairs = HashSet::new();
    for (i, a) in records.assignments.iter().enumerate() {
        if !usernames.contains(a.user.as_str())
            || !workstation_names.contains(a.workstation.as_str())
        {
            return Err(invalid(format!(
                "assignments[{i}]: {:?} → {:?} names a user or workstation the file does not have",
                a.user, a.workstation
            )));
        }
        if !pairs.insert((a.user.as_str(), a.workstation.as_str())) {
            return Err(invalid(format!("assignments[{i}]: listed twice")));
        }
    }
    let mut group_pairs = HashSet::new();
    for (i, g) in records.group_assignments.iter().enumerate() {
        if g.group.trim().is_empty() || !workstation_names.contains(g.workstation.as_str()) {
            return Err(invalid(format!(
                "group_assignments[{i}]: empty group or unknown workstation {:?}",
                g.workstation
            )));
        }
        if !group_pairs.insert((g.group.as_str(), g.workstation.as_str())) {
            return Err(invalid(format!("group_assignments[{i}]: listed twice")));
        }
    }
    let mut members = HashSet::new();
    for (i, m) in records.twofa_members.iter().enumerate() {
        if !matches!(m.kind.as_str(), "user" | "group") || m.name.trim().is_empty() {
            return Err(invalid(format!(
                "twofa_members[{i}]: kind must be user or group, with a name"
            )));
        }
        if !members.insert((m.kind.as_str(), m.name.as_str())) {
            return Err(invalid(format!("twofa_members[{i}]: listed twice")));
        }
    }
    let mut twofa_users = HashSet::new();
    for (i, t) in records.twofa_users.iter().enumerate() {
        if !usernames.contains(t.user.as_str()) || !twofa_users.insert(t.user.as_str()) {
            return Err(invalid(format!(
                "twofa_users[{i}]: unknown user {:?} or listed twice",
                t.user
            )));
        }
        if !matches!(t.method.as_str(), "totp" | "app" | "sms" | "email") {
            return Err(invalid(format!(
                "twofa_users[{i}]: unknown method {:?}",
                t.method
            )));
        }
        if crate::totp::Algorithm::parse(&t.algorithm).is_none() {
            return Err(invalid(format!(
                "twofa_users[{i}]: unknown TOTP algorithm {:?} (SHA1, SHA256 or SHA512)",
                t.algorithm
            )));
        }
    }
    let mut cidrs = HashSet::new();
    for (i, cidr) in records.whitelist.iter().enumerate() {
        cidr.parse::<Cidr>().map_err(|_| {
            invalid(format!(
                "whitelist[{i}]: {cidr:?} is not an address or CIDR range"
            ))
        })?;
        if !cidrs.insert(cidr.as_str()) {
            return Err(invalid(format!("whitelist[{i}]: listed twice")));
        }
    }
    validate_portal(records)?;
    for (name, value) in &records.settings {
        if name.is_empty() || store::LOCAL_SETTINGS.contains(&name.as_str()) {
            return Err(invalid(format!("settings: {name:?} cannot be imported")));
        }
        let port_ok = |v: &str| v.parse::<u16>().is_ok_and(|p| p != 0);
        let ok = match name.as_str() {
            crate::server_admin::HTTPS_PORT | crate::server_admin::HTTP_PORT => port_ok(value),
            crate::server_admin::BIND => value.parse::<std::net::IpAddr>().is_ok(),
            _ => true,
        };
        if !ok {
            return Err(invalid(format!(
                "settings: {name} = {value:?} is not valid"
            )));
        }
    }
    Ok(())
}

/// Pages pass the designer's own rules and use only images the file carries; each image is what its
/// id (SHA-256), purpose and content type say.
fn validate_portal(records: &ConfigRecords) -> Result<(), TransferError> {
    use base64::Engine;
    let mut image_ids = HashSet::new();
    for (i, image) in records.portal_images.iter().enumerate() {
        let at = format!("portal_images[{i}] ({:?})", image.id);
        let purpose = match image.purpose.as_str() {
            "logo" => ImagePurpose::Logo,
            "background" => ImagePurpose::Background,
            other => return Err(invalid(format!("{at}: unknown purpose {other:?}"))),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&image.data)
            .map_err(|_| invalid(format!("{at}: the data is not base64")))?;
        if hex::encode(Sha256::digest(&bytes)) != image.id {
            return Err(invalid(format!("{at}: the id is not the SHA-256 of the data")));
        }
        let kind = portal_design::check_image(&bytes, purpose)
            .map_err(|e| invalid(format!("{at}: {e}")))?;
        if kind.content_type() != image.content_type {
            return Err(invalid(format!(
                "{at}: the data is {}, not {}",
                kind.content_type(),
                image.content_type
            )));
        }
        if !image_ids.insert(image.id.as_str()) {
            return Err(invalid(format!("{at}: listed twice")));
        }
    }
    let mut names = HashSet::new();
    for (i, page) in records.portal_pages.iter().enumerate() {
        let at = format!("portal_pages[{i}] ({:?})", page.name);
        portal_design::validate_page_name(&page.name).map_err(|e| invalid(format!("{at}: {e}")))?;
        if !names.insert(page.name.as_str()) {
            return Err(invalid(format!("{at}: the name is used twice")));
        }
        let mut design: Design = serde_json::from_value(page.design.clone())
            .map_err(|e| invalid(format!("{at}: design: {e}")))?;
        let preferences: Preferences = serde_json::from_value(page.preferences.clone())
            .map_err(|e| invalid(format!("{at}: preferences: {e}")))?;
        portal_design::validate_design(&mut design).map_err(|e| invalid(format!("{at}: {e}")))?;
        portal_design::validate_preferences(&page.name, &preferences)
            .map_err(|e| invalid(format!("{at}: {e}")))?;
        let background = match &design.background {
            Background::Upload { asset } => Some(asset),
            _ => None,
        };
        for asset in design.logo.iter().chain(background) {
            if !image_ids.contains(asset.as_str()) {
                return Err(invalid(format!("{at}: uses image {asset}, which the file does not have")));
            }
        }
    }
    Ok(())
}
