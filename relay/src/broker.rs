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
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let invalid = || {
        BrokerError::Invalid(format!(
            "invalid host \"{host}\": expected a DNS name or an IP address"
        ))
    };
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if name.is_empty() || name.len() > 253 {
        return Err(invalid());
    }
    for label in name.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(invalid());
        }
    }
    // An all-numeric dotted name that is not a valid IPv4 address (e.g. 300.1.1.1) is a typo.
    if name
        .split('.')
        .all(|label| label.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid());
    }
    Ok(name.to_ascii_lowercase())
}

/// Workstation names are shown to users: 1–100 characters, no control characters.
pub fn validate_workstation_name(name: &str) -> Result<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control)
    {
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
            Err(BrokerError::Invalid(format!(
                "invalid {what}: at most {max} printable characters"
            )))
        }
        Some(v) => Ok(Some(v)),
    }
}

/// Adds a user; with `password: None` one is generated and returned.
pub async fn add_user(
    store: &Store,
    username: &str,
    password: Option<String>,
) -> Result<Option<String>> {
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
        return Err(BrokerError::Invalid(
            "invalid port 0: expected 1 to 65535".into(),
        ));
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

/// Changes to a workstation; `None` keeps a field. `domain`/`notes`: `Some(None)` clears them.
#[derive(Debug, Default, Clone)]
pub struct WorkstationEdit {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub domain: Option<Option<String>>,
    pub notes: Option<Option<String>>,
}

/// The result of an edit: the workstation as stored now, and whether its pinned certificate was
/// forgotten (host or port changed while a certificate was pinned).
#[derive(Debug)]
pub struct Edited {
    pub workstation: Workstation,
    pub pin_cleared: bool,
}

/// Applies `edit` to `current` with the same validation as `add_workstation`. Pure, so that the
/// rules (what is refused, when the pin goes) are tested without a database.
pub fn apply_edit(current: &Workstation, edit: WorkstationEdit) -> Result<(NewWorkstation, bool)> {
    if edit.port == Some(0) {
        return Err(BrokerError::Invalid(
            "invalid port 0: expected 1 to 65535".into(),
        ));
    }
    let fields = NewWorkstation {
        name: edit
            .name
            .as_deref()
            .map(validate_workstation_name)
            .transpose()?
            .unwrap_or_else(|| current.name.clone()),
        host: edit
            .host
            .as_deref()
            .map(validate_host)
            .transpose()?
            .unwrap_or_else(|| current.host.clone()),
        port: edit.port.unwrap_or(current.port),
        domain: match edit.domain {
            Some(domain) => optional_text(domain, "domain", 255)?,
            None => current.domain.clone(),
        },
        notes: match edit.notes {
            Some(notes) => optional_text(notes, "notes", 1000)?,
            None => current.notes.clone(),
        },
    };
    let moved = fields.host != current.host || fields.port != current.port;
    Ok((fields, moved && current.cert_sha256.is_some()))
}

/// Edits workstation `name` in one UPDATE: on any error (bad value, name taken) nothing changes.
pub async fn edit_workstation(store: &Store, name: &str, edit: WorkstationEdit) -> Result<Edited> {
    let current = store.workstation_by_name(name).await?;
    let (fields, pin_cleared) = apply_edit(&current, edit)?;
    store
        .update_workstation(current.id, &fields, pin_cleared)
        .await?;
    Ok(Edited {
        workstation: store.workstation_by_name(&fields.name).await?,
        pin_cleared,
    })
}

/// Enables or disables a workstation; open pipes are not cut.
pub async fn set_workstation_enabled(store: &Store, name: &str, enabled: bool) -> Result<()> {
    Ok(store.set_workstation_enabled(name, enabled).await?)
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
    let hex: String = input
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
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
        return Err(BrokerError::Invalid(format!(
            "invalid group name \"{group}\""
        )));
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
        assert_eq!(
            validate_host("Desk-01.Corp.Example").unwrap(),
            "desk-01.corp.example"
        );
        assert_eq!(validate_host("10.0.0.5").unwrap(), "10.0.0.5");
        assert_eq!(validate_host("[::1]").unwrap(), "::1");
        assert_eq!(validate_host("fe80::1").unwrap(), "fe80::1");
        assert_eq!(validate_host("localhost").unwrap(), "localhost");
        for bad in [
            "",
            "bad host",
            "-lead.example",
            "trail-.example",
            "a..b",
            "300.1.1.1",
            "host:3389",
            "x/y",
            "ünï",
        ] {
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

    fn office_pc() -> Workstation {
        Workstation {
            id: 1,
            name: "Office PC".into(),
            host: "desk.example".into(),
            port: 3389,
            domain: Some("CORP".into()),
            notes: Some("2nd floor".into()),
            cert_sha256: Some("ab".repeat(32)),
            enabled: true,
        }
    }

    #[test]
    fn edit_keeps_unchanged_fields_and_the_pin() {
        let current = office_pc();
        let edit = WorkstationEdit {
            name: Some(" Desk 2 ".into()),
            notes: Some(None),
            ..Default::default()
        };
        let (fields, pin_cleared) = apply_edit(&current, edit).unwrap();
        assert_eq!(fields.name, "Desk 2");
        assert_eq!(
            (fields.host.as_str(), fields.port, fields.domain.as_deref()),
            ("desk.example", 3389, Some("CORP"))
        );
        assert_eq!(fields.notes, None);
        assert!(!pin_cleared);
    }

    #[test]
    fn edit_clears_the_pin_when_the_address_changes() {
        let current = office_pc();
        let same_host = WorkstationEdit {
            host: Some("DESK.example".into()),
            ..Default::default()
        };
        assert!(
            !apply_edit(&current, same_host).unwrap().1,
            "same host in another case is no move"
        );
        assert!(
            apply_edit(
                &current,
                WorkstationEdit {
                    port: Some(3390),
                    ..Default::default()
                }
            )
            .unwrap()
            .1
        );
        assert!(
            apply_edit(
                &current,
                WorkstationEdit {
                    host: Some("10.0.0.9".into()),
                    ..Default::default()
                }
            )
            .unwrap()
            .1
        );
        let unpinned = Workstation {
            cert_sha256: None,
            ..office_pc()
        };
        assert!(
            !apply_edit(
                &unpinned,
                WorkstationEdit {
                    port: Some(3390),
                    ..Default::default()
                }
            )
            .unwrap()
            .1
        );
    }

    #[test]
    fn edit_refuses_bad_values() {
        let current = office_pc();
        for edit in [
            WorkstationEdit {
                host: Some("bad host".into()),
                ..Default::default()
            },
            WorkstationEdit {
                port: Some(0),
                ..Default::default()
            },
            WorkstationEdit {
                name: Some("  ".into()),
                ..Default::default()
            },
            WorkstationEdit {
                domain: Some(Some("x".repeat(256))),
                ..Default::default()
            },
        ] {
            assert!(
                matches!(
                    apply_edit(&current, edit.clone()),
                    Err(BrokerError::Invalid(_))
                ),
                "{edit:?}"
            );
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            validate_workstation_name("  Office PC ").unwrap(),
            "Office PC"
        );
        assert!(validate_workstation_name("   ").is_err());
        assert!(validate_workstation_name("a\u{7}b").is_err());
    }
}
