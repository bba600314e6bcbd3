//! The administrator's operations on the broker (users, workstations, assignments), with input
//! validation.
//!
//! The CLI calls these today and an admin console will tomorrow; validation lives here once so
//! that both refuse the same bad input with the same clear message.

use crate::auth::{self, AuthError};
use crate::store::{NewWorkstation, Store, StoreError, UserSummary, Workstation};
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

pub type Result<T> = std::result::Result<T, BrokerError>;

/// A host the relay may dial: an IP address or a DNS name (RFC 1123 labels). Brackets around an
/// IPv6 address are removed. Returns the canonical form to store.
pub fn validate_host(host: &str) -> Result<String> {
    let trimmed = host.trim();
    let unbracketed = trimmed.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(trimmed);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let invalid = || BrokerError::Invalid(format!("invalid host \"{host}\": expected a DNS name or an IP address"));
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if name.is_empty() || name.len() > 253 {
        return Err(invalid());
    }
    for label in name.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(invalid());
        }
    }
    // An all-numeric dotted name that is not a valid IPv4 address (e.g. 300.1.1.1) is a typo.
    if name.split('.').all(|label| label.bytes().all(|b| b.is_ascii_digit())) {
        return Err(invalid());
    }
    Ok(name.to_ascii_lowercase())
}

/// Workstation names are shown to users: 1–100 characters, no control characters.
pub fn validate_workstation_name(name: &str) -> Result<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control) {
        return Err(BrokerError::Invalid(format!(
            "invalid workstation name \"{name}\": use 1 to 100 printable characters"
        )));
    }
    Ok(trimmed.to_owned())
}

fn optional_text(value: Option<String>, what: &str, max: usize) -> Result<Option<String>> {
    match value.map(|v| v.trim().to_owned()) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.chars().count() > max || v.chars().any(|c| c.is_control() && c != '\n') => {
            Err(BrokerError::Invalid(format!("invalid {what}: at most {max} printable characters")))
        }
        Some(v) => Ok(Some(v)),
    }
}

/// Adds a user; with `password: None` one is generated and returned.
pub async fn add_user(store: &Store, username: &str, password: Option<String>) -> Result<Option<String>> {
    auth::validate_username(username).map_err(BrokerError::Invalid)?;
    let (password, generated) = match password {
        Some(password) => (password, false),
        None => (auth::generate_password(), true),
    };
    auth::validate_new_password(&password).map_err(BrokerError::Invalid)?;
    let hash = auth::hash_password(&password)?;
    store.create_user(username, &hash, false).await?;
    Ok(generated.then_some(password))
}

pub async fn set_password(store: &Store, username: &str, password: &str) -> Result<()> {
    if store.user_by_name(username).await?.directory {
        return Err(BrokerError::Invalid(format!(
            "{username} signs in through the directory: change the password there"
        )));
    }
    auth::validate_new_password(password).map_err(BrokerError::Invalid)?;
    let hash = auth::hash_password(password)?;
    store.set_password(username, &hash).await?;
    Ok(())
}

pub async fn list_users(store: &Store) -> Result<Vec<UserSummary>> {
    Ok(store.list_users().await?)
}

pub async fn remove_user(store: &Store, username: &str) -> Result<()> {
    Ok(store.delete_user(username).await?)
}

/// Adds a workstation after validating every field.
pub async fn add_workstation(
    store: &Store,
    name: &str,
    host: &str,
    port: u16,
    domain: Option<String>,
    notes: Option<String>,
) -> Result<Workstation> {
    if port == 0 {
        return Err(BrokerError::Invalid("invalid port 0: expected 1 to 65535".into()));
    }
    let new = NewWorkstation {
        name: validate_workstation_name(name)?,
        host: validate_host(host)?,
        port,
        domain: optional_text(domain, "domain", 255)?,
        notes: optional_text(notes, "notes", 1000)?,
    };
    store.create_workstation(&new).await?;
    Ok(store.workstation_by_name(&new.name).await?)
}

pub async fn list_workstations(store: &Store) -> Result<Vec<Workstation>> {
    Ok(store.list_workstations().await?)
}

pub async fn remove_workstation(store: &Store, name: &str) -> Result<()> {
    Ok(store.delete_workstation(name).await?)
}

pub async fn repin_workstation(store: &Store, name: &str) -> Result<()> {
    Ok(store.clear_pin(name).await?)
}

/// Normalises a SHA-256 fingerprint typed by an administrator (any case, optional `:` or spaces)
/// to the contract's form: 64 lowercase hex characters.
pub fn normalize_fingerprint(input: &str) -> Result<String> {
    let hex: String =
        input.chars().filter(|c| *c != ':' && !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BrokerError::Invalid(format!(
            "invalid fingerprint \"{input}\": expected the certificate's SHA-256 as 64 hexadecimal characters"
        )));
    }
    Ok(hex)
}

/// Pins a known certificate fingerprint (e.g. read from the workstation) instead of trusting the
/// first connection.
pub async fn pin_workstation(store: &Store, name: &str, fingerprint: &str) -> Result<String> {
    let fingerprint = normalize_fingerprint(fingerprint)?;
    store.set_pin(name, &fingerprint).await?;
    Ok(fingerprint)
}

pub async fn assign(store: &Store, username: &str, workstation: &str) -> Result<()> {
    Ok(store.assign(username, workstation).await?)
}

pub async fn unassign(store: &Store, username: &str, workstation: &str) -> Result<()> {
    Ok(store.unassign(username, workstation).await?)
}

/// A directory group name as stored: trimmed, lowercase, 1–256 characters without control characters.
fn validate_group(group: &str) -> Result<String> {
    let group = crate::directory::normalize_group(group);
    if group.is_empty() || group.chars().count() > 256 || group.chars().any(char::is_control) {
        return Err(BrokerError::Invalid(format!("invalid group name \"{group}\"")));
    }
    Ok(group)
}

/// Lets every member of directory group `group` reach `workstation` (besides their own assignments).
pub async fn assign_group(store: &Store, group: &str, workstation: &str) -> Result<String> {
    let group = validate_group(group)?;
    store.assign_group(&group, workstation).await?;
    Ok(group)
}

pub async fn unassign_group(store: &Store, group: &str, workstation: &str) -> Result<String> {
    let group = validate_group(group)?;
    store.unassign_group(&group, workstation).await?;
    Ok(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(validate_host("Desk-01.Corp.Example").unwrap(), "desk-01.corp.example");
        assert_eq!(validate_host("10.0.0.5").unwrap(), "10.0.0.5");
        assert_eq!(validate_host("[::1]").unwrap(), "::1");
        assert_eq!(validate_host("fe80::1").unwrap(), "fe80::1");
        assert_eq!(validate_host("localhost").unwrap(), "localhost");
        for bad in ["", "bad host", "-lead.example", "trail-.example", "a..b", "300.1.1.1", "host:3389", "x/y", "ünï"]
        {
            assert!(validate_host(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(validate_host(&format!("{}.example", "a".repeat(64))).is_err());
    }

    #[test]
    fn fingerprints() {
        let colons = ["AB"; 32].join(":");
        assert_eq!(normalize_fingerprint(&colons).unwrap(), "ab".repeat(32));
        assert!(normalize_fingerprint("abcd").is_err());
        assert!(normalize_fingerprint(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(validate_workstation_name("  Office PC ").unwrap(), "Office PC");
        assert!(validate_workstation_name("   ").is_err());
        assert!(validate_workstation_name("a\u{7}b").is_err());
    }
}
