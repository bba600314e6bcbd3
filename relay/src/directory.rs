//! Sign-in against an LDAP directory (OpenLDAP, Active Directory) and the user's directory groups.
//!
//! Why a module of its own: the directory is a second source of accounts next to the local argon2 ones,
//! with its own failure modes (server down, wrong CA, misconfigured service account) that must never be
//! confused with a wrong password, and its own injection risks (filter and DN syntax).
//!
//! Two bind modes: **user pattern** binds as `pattern` with `{user}` replaced (a DN such as
//! `uid={user},ou=people,dc=example,dc=org` — the name is DN-escaped — or a UPN such as
//! `{user}@example.org`); **search then bind** binds with a service account, finds the one entry whose
//! user attribute equals the name (filter-escaped) and binds as that entry's DN. Groups come from the
//! user entry's `memberOf` (AD, OpenLDAP memberof overlay) or from a search of `groupOfNames` entries
//! whose member attribute is the user's DN; a group is known by its CN, compared in lowercase.
//!
//! Invariants: an empty password never reaches the server (an LDAP bind with a DN and no password is an
//! *unauthenticated* bind that many servers accept); names are always escaped; the service password is
//! never logged (it is skipped by `Debug`). The configuration rules, filter and DN building are pure
//! functions tested below; [`authenticate`] and [`check`] are the only I/O.

use ldap3::{
    dn_escape, ldap_escape, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Shown to a person whose sign-in could not be checked because the directory did not answer properly.
pub const DIRECTORY_UNAVAILABLE: &str =
    "The directory service is unavailable, so your sign-in cannot be checked right now. Try again later or \
     contact your administrator.";

/// The `{user}` placeholder of a bind pattern.
pub const USER_PLACEHOLDER: &str = "{user}";
/// Longest sign-in name sent to the directory.
pub const MAX_NAME_LEN: usize = 256;

/// How the relay reaches and reads the directory (stored as JSON in the settings table).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade `ldap://` with StartTLS before anything is sent.
    pub starttls: bool,
    /// PEM of the CA certificate(s) that sign the server's certificate; `None`: the system trust store.
    pub ca_pem: Option<String>,
    pub bind: BindMode,
    /// Where users and groups are searched (subtree).
    pub base_dn: String,
    /// The attribute holding the sign-in name: `uid` (OpenLDAP) or `sAMAccountName` (AD).
    pub user_attribute: String,
    pub groups: GroupMode,
    /// Windows domain of directory users: checked against the login form's domain, and given to the
    /// workstation logon when the workstation has no domain of its own.
    pub domain: Option<String>,
    /// Limit for connecting and for each operation.
    pub timeout_secs: u64,
}

impl std::fmt::Debug for DirectoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryConfig")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("ca", &self.ca_pem.as_ref().map(|_| "PEM"))
            .field("bind", &self.bind)
            .field("base_dn", &self.base_dn)
            .field("user_attribute", &self.user_attribute)
            .field("groups", &self.groups)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum BindMode {
    /// Bind directly as the user: `pattern` with `{user}` replaced.
    UserPattern { pattern: String },
    /// Bind as a service account, search the user, bind as the entry found.
    SearchBind {
        service_dn: String,
        service_password: String,
    },
}

impl std::fmt::Debug for BindMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindMode::UserPattern { pattern } => f
                .debug_struct("UserPattern")
                .field("pattern", pattern)
                .finish(),
            BindMode::SearchBind { service_dn, .. } => f
                .debug_struct("SearchBind")
                .field("service_dn", service_dn)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum GroupMode {
    /// The user entry lists its groups' DNs in `attribute` (`memberOf`).
    MemberOf { attribute: String },
    /// Group entries list their members' DNs in `member_attribute` (`member` of `groupOfNames`).
    GroupOfNames { member_attribute: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the directory URL must start with ldap:// or ldaps:// and name a host: \"{0}\"")]
    Url(String),
    #[error("StartTLS is for ldap:// URLs; ldaps:// is already encrypted")]
    StartTlsOnLdaps,
    #[error("the bind pattern must contain {USER_PLACEHOLDER} exactly once")]
    Pattern,
    #[error("the {0} must not be empty")]
    Empty(&'static str),
    #[error("\"{0}\" is not a valid LDAP attribute name")]
    Attribute(String),
    #[error("\"{0}\" is not a distinguished name (expected e.g. dc=example,dc=org)")]
    Dn(String),
    #[error("the CA file holds no PEM certificate")]
    Ca,
    #[error("the timeout must be 1 to 120 seconds")]
    Timeout,
    #[error("invalid domain \"{0}\": use letters, digits and . - _ only")]
    Domain(String),
}

/// Why a directory sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Unknown user, wrong or empty password, ambiguous name: the same for all.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The directory could not give an answer (down, TLS failure, timeout, service account refused).
    /// The text is for the log and the administrator, never for the person signing in.
    #[error("{0}")]
    Unavailable(String),
}

/// Who signed in, as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The name as stored in the directory's user attribute (else as typed).
    pub username: String,
    pub dn: String,
    /// Group names (CN), lowercase, sorted, without duplicates.
    pub groups: Vec<String>,
}

fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
        && name.len() <= 64
}

fn looks_like_dn(dn: &str) -> bool {
    dn.contains('=') && !dn.trim().is_empty() && !dn.chars().any(char::is_control)
}

/// Checks a configuration before it is stored.
pub fn validate(config: &DirectoryConfig) -> Result<(), ConfigError> {
    let rest = config
        .url
        .strip_prefix("ldap://")
        .or_else(|| config.url.strip_prefix("ldaps://"))
        .ok_or_else(|| ConfigError::Url(config.url.clone()))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty()
        || host.starts_with(':')
        || rest.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ConfigError::Url(config.url.clone()));
    }
    if config.starttls && config.url.starts_with("ldaps://") {
        return Err(ConfigError::StartTlsOnLdaps);
    }
    match &config.bind {
        BindMode::UserPattern { pattern } => {
            if pattern.matches(USER_PLACEHOLDER).count() != 1
                || pattern.chars().any(char::is_control)
            {
                return Err(ConfigError::Pattern);
            }
        }
        BindMode::SearchBind {
            service_dn,
            service_password,
        } => {
            if !looks_like_dn(service_dn) {
                return Err(ConfigError::Dn(service_dn.clone()));
            }
            if service_password.is_empty() {
                return Err(ConfigError::Empty("service account password"));
            }
        }
    }
    if !looks_like_dn(&config.base_dn) {
        return Err(ConfigError::Dn(config.base_dn.clone()));
    }
    let group_attribute = match &config.groups {
        GroupMode::MemberOf { attribute } => attribute,
        GroupMode::GroupOfNames { member_attribute } => member_attribute,
    };
    for attribute in [&config.user_attribute, group_attribute] {
        if !is_attribute_name(attribute) {
            return Err(ConfigError::Attribute(attribute.clone()));
        }
    }
    if let Some(pem) = &config.ca_pem {
        parse_ca(pem)?;
    }
    if !(1..=120).contains(&config.timeout_secs) {
        return Err(ConfigError::Timeout);
    }
    if let Some(domain) = &config.domain {
        let valid = !domain.is_empty()
            && domain.len() <= 255
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            return Err(ConfigError::Domain(domain.clone()));
        }
    }
    Ok(())
}

fn parse_ca(pem: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| ConfigError::Ca)?;
    if certs.is_empty() {
        return Err(ConfigError::Ca);
    }
    Ok(certs)
}

/// A name that may be sent to the directory: 1–256 bytes, no control characters, not only spaces.
pub fn acceptable_name(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= MAX_NAME_LEN && !name.chars().any(char::is_control)
}

/// `(attribute=name)` with the name escaped (RFC 4515), so `*`, `(`, `)`, `\` and NUL match literally.
pub fn user_filter(attribute: &str, name: &str) -> String {
    format!("({attribute}={})", ldap_escape(name))
}

/// The bind DN (or UPN) for `name`: a pattern that is a DN (an `=` before the placeholder) gets the name
/// DN-escaped (RFC 4514), so `,` `+` `=` and friends cannot add RDNs; a UPN or `DOMAIN\{user}` pattern
/// takes the name as typed (the server parses it as one string).
pub fn bind_name(pattern: &str, name: &str) -> String {
    let placeholder_at = pattern.find(USER_PLACEHOLDER).unwrap_or(0);
    if pattern[..placeholder_at].contains('=') {
        pattern.replacen(USER_PLACEHOLDER, &dn_escape(name), 1)
    } else {
        pattern.replacen(USER_PLACEHOLDER, name, 1)
    }
}

/// Whether the pattern binds with a DN (then the user entry is that DN).
fn pattern_is_dn(pattern: &str) -> bool {
    pattern
        .find(USER_PLACEHOLDER)
        .is_some_and(|at| pattern[..at].contains('='))
}

/// The value of a DN's first RDN (`cn=Staff\, Paris,ou=groups,…` → `Staff, Paris`), unescaping
/// `\c` and `\hh`. `None` for a DN without `=`.
pub fn first_rdn_value(dn: &str) -> Option<String> {
    let (_, rest) = dn.split_once('=')?;
    let mut bytes = Vec::new();
    let mut iter = rest.bytes().peekable();
    while let Some(b) = iter.next() {
        match b {
            b'\\' => {
                let Some(first) = iter.next() else { break };
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(first), iter.peek().copied().and_then(hex)) {
                    (Some(high), Some(low)) => {
                        iter.next();
                        bytes.push((high * 16 + low) as u8);
                    }
                    _ => bytes.push(first),
                }
            }
            b',' | b'+' => break,
            other => bytes.push(other),
        }
    }
    let value = String::from_utf8(bytes).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Group names as stored and compared: trimmed, lowercase.
pub fn normalize_group(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Whether the domain typed on the login form (if any) is the directory's.
pub fn domain_matches(config: &DirectoryConfig, typed: Option<&str>) -> bool {
    match typed.map(str::trim).filter(|d| !d.is_empty()) {
        None => true,
        Some(typed) => config
            .domain
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(typed)),
    }
}

/// The name without a `DOMAIN\` prefix when DOMAIN is the directory's (people type `CORP\alice`).
/// Any other backslash stays: it may be part of the name.
pub fn strip_domain<'a>(config: &DirectoryConfig, typed: &'a str) -> &'a str {
    match (config.domain.as_deref(), typed.split_once('\\')) {
        (Some(domain), Some((prefix, name)))
            if prefix.eq_ignore_ascii_case(domain) && !name.is_empty() =>
        {
            name
        }
        _ => typed,
    }
}

/// The name a directory user gets in Homedesk: the value of the user attribute that matched (the
/// directory's spelling, so `ALICE` and `alice ` are one account), else its only value, else as typed.
pub fn canonical_name(values: &[String], typed: &str) -> String {
    let typed_trimmed = typed.trim();
    values
        .iter()
        .find(|v| v.trim().eq_ignore_ascii_case(typed_trimmed))
        .or(if values.len() == 1 {
            values.first()
        } else {
            None
        })
        .cloned()
        .unwrap_or_else(|| typed.to_owned())
}

fn sorted_groups(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut groups: Vec<String> = names
        .into_iter()
        .map(|n| normalize_group(&n))
        .filter(|n| !n.is_empty())
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

// ------------------------------------------------------------------------------------------ storage

/// Name of the settings row that holds the configuration (JSON).
const SETTING: &str = "directory";

/// The stored configuration; `None` when no directory is configured.
pub async fn load(
    store: &crate::store::Store,
) -> Result<Option<DirectoryConfig>, crate::store::StoreError> {
    match store.setting(SETTING).await? {
        None => Ok(None),
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| crate::store::StoreError::Corrupt(format!("directory settings: {e}"))),
    }
}

/// Validates and stores the configuration (a running relay uses it from the next sign-in on).
pub async fn save(store: &crate::store::Store, config: &DirectoryConfig) -> Result<(), SaveError> {
    validate(config)?;
    let json = serde_json::to_string(config)
        .map_err(|e| SaveError::Store(crate::store::StoreError::Corrupt(e.to_string())))?;
    Ok(store.set_setting(SETTING, &json).await?)
}

/// Removes the configuration: only local accounts can sign in afterwards.
pub async fn clear(store: &crate::store::Store) -> Result<bool, crate::store::StoreError> {
    store.delete_setting(SETTING).await
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

// ------------------------------------------------------------------------------------------------ I/O

fn unavailable(what: &str, error: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Unavailable(format!("{what}: {error}"))
}

fn tls_config(config: &DirectoryConfig) -> Result<Arc<rustls::ClientConfig>, DirectoryError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_pem {
        Some(pem) => {
            for cert in parse_ca(pem).map_err(|e| unavailable("CA certificate", e))? {
                roots
                    .add(cert)
                    .map_err(|e| unavailable("CA certificate", e))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unavailable("TLS setup", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

/// One authenticated-or-not connection; dropped connections end their driver task.
struct Connection {
    ldap: ldap3::Ldap,
    timeout: Duration,
}

impl Connection {
    async fn open(config: &DirectoryConfig) -> Result<Connection, DirectoryError> {
        let timeout = Duration::from_secs(config.timeout_secs.clamp(1, 120));
        let settings = LdapConnSettings::new()
            .set_conn_timeout(timeout)
            .set_starttls(config.starttls)
            .set_config(tls_config(config)?);
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &config.url)
            .await
            .map_err(|e| unavailable(&format!("cannot connect to {}", config.url), e))?;
        tokio::spawn(async move {
            if let Err(error) = conn.drive().await {
                tracing::debug!(%error, "directory connection ended");
            }
        });
        Ok(Connection { ldap, timeout })
    }

    /// Binds; `Ok(false)` when the server refuses the credentials (result code ≠ 0).
    async fn bind(&mut self, dn: &str, password: &str) -> Result<bool, DirectoryError> {
        if password.is_empty() {
            // Never an unauthenticated bind: the server might call it a success.
            return Ok(false);
        }
        match self
            .ldap
            .with_timeout(self.timeout)
            .simple_bind(dn, password)
            .await
        {
            Ok(result) if result.rc == 0 => Ok(true),
            Ok(result) => {
                tracing::debug!(rc = result.rc, text = %result.text, "directory bind refused");
                Ok(false)
            }
            Err(error) => Err(unavailable("bind", error)),
        }
    }

    /// Entries of a search, at most `limit` (more → `Ok(None)`: ambiguous).
    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        limit: usize,
    ) -> Result<Option<Vec<SearchEntry>>, DirectoryError> {
        let options =
            ldap3::SearchOptions::new().sizelimit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        let result = self
            .ldap
            .with_timeout(self.timeout)
            .with_search_options(options)
            .search(base, scope, filter, attributes.to_vec())
            .await;
        let ldap3::SearchResult(raw, outcome) = result.map_err(|e| unavailable("search", e))?;
        match outcome.rc {
            0 => {}
            // sizeLimitExceeded: more entries than allowed.
            4 => return Ok(None),
            // noSuchObject: the base (or the bound DN) does not exist.
            32 => return Ok(Some(Vec::new())),
            rc => {
                return Err(unavailable(
                    "search",
                    format!("result code {rc}: {}", outcome.text),
                ))
            }
        }
        if raw.len() > limit {
            return Ok(None);
        }
        let mut entries = Vec::with_capacity(raw.len());
        for entry in raw {
            // ldap3 panics on malformed BER from the server: keep that a typed error.
            let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                SearchEntry::construct(entry)
            }));
            entries.push(
                parsed.map_err(|_| unavailable("search", "malformed entry from the server"))?,
            );
        }
        Ok(Some(entries))
    }

    async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

impl From<LdapError> for DirectoryError {
    fn from(error: LdapError) -> Self {
        unavailable("LDAP", error)
    }
}

/// The user entry's attributes the relay reads.
fn entry_attributes(config: &DirectoryConfig) -> Vec<&str> {
    let mut attributes = vec![config.user_attribute.as_str()];
    if let GroupMode::MemberOf { attribute } = &config.groups {
        attributes.push(attribute.as_str());
    }
    attributes
}

fn attribute_values(entry: &SearchEntry, name: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Checks `name`/`password` against the directory and reads the user's groups.
pub async fn authenticate(
    config: &DirectoryConfig,
    name: &str,
    password: &str,
) -> Result<Identity, DirectoryError> {
    if password.is_empty()
        || password.len() > crate::auth::MAX_PASSWORD_LEN
        || !acceptable_name(name)
    {
        return Err(DirectoryError::InvalidCredentials);
    }
    let mut connection = Connection::open(config).await?;
    let result = authenticate_on(&mut connection, config, name, password).await;
    connection.close().await;
    result
}

async fn authenticate_on(
    connection: &mut Connection,
    config: &DirectoryConfig,
    name: &str,
    password: &str,
) -> Result<Identity, DirectoryError> {
    let filter = user_filter(&config.user_attribute, name);
    let attributes = entry_attributes(config);
    let entry = match &config.bind {
        BindMode::SearchBind {
            service_dn,
            service_password,
        } => {
            if !connection.bind(service_dn, service_password).await? {
                return Err(DirectoryError::Unavailable(format!(
                    "the service account {service_dn} was refused"
                )));
            }
            let entry = match connection
                .search(&config.base_dn, Scope::Subtree, &filter, &attributes, 1)
                .await?
            {
                Some(mut entries) if entries.len() == 1 => entries.remove(0),
                Some(_) => return Err(DirectoryError::InvalidCredentials),
                None => {
                    tracing::warn!("directory sign-in refused: the name matches several entries");
                    return Err(DirectoryError::InvalidCredentials);
                }
            };
            if !connection.bind(&entry.dn, password).await? {
                return Err(DirectoryError::InvalidCredentials);
            }
            Some(entry)
        }
        BindMode::UserPattern { pattern } => {
            let bind_as = bind_name(pattern, name);
            if !connection.bind(&bind_as, password).await? {
                return Err(DirectoryError::InvalidCredentials);
            }
            let found = if pattern_is_dn(pattern) {
                connection
                    .search(&bind_as, Scope::Base, "(objectClass=*)", &attributes, 1)
                    .await?
            } else {
                connection
                    .search(&config.base_dn, Scope::Subtree, &filter, &attributes, 1)
                    .await?
            };
            found.and_then(|mut entries| (entries.len() == 1).then(|| entries.remove(0)))
        }
    };
    let (dn, username) = match &entry {
        Some(entry) => (
            entry.dn.clone(),
            canonical_name(&attribute_values(entry, &config.user_attribute), name),
        ),
        // Bound, but the entry cannot be read: signed in without groups.
        None => {
            tracing::warn!("directory sign-in: the user's entry could not be read; no groups");
            (String::new(), name.to_owned())
        }
    };
    let groups = match (&config.groups, &entry) {
        (_, None) => Vec::new(),
        (GroupMode::MemberOf { attribute }, Some(entry)) => sorted_groups(
            attribute_values(entry, attribute)
                .iter()
                .filter_map(|dn| first_rdn_value(dn)),
        ),
        (GroupMode::GroupOfNames { member_attribute }, Some(entry)) => {
            let filter = format!("(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))({member_attribute}={}))", ldap_escape(&entry.dn));
            let groups = connection
                .search(&config.base_dn, Scope::Subtree, &filter, &["cn"], 1000)
                .await?
                .unwrap_or_default();
            sorted_groups(groups.iter().filter_map(|g| {
                attribute_values(g, "cn")
                    .into_iter()
                    .next()
                    .or_else(|| first_rdn_value(&g.dn))
            }))
        }
    };
    Ok(Identity {
        username,
        dn,
        groups,
    })
}

/// What `relay directory test` found.
#[derive(Debug)]
pub struct CheckReport {
    /// The service account could bind (search+bind mode only).
    pub service_bind: Option<bool>,
    /// Entries under the base DN matching the user filter's attribute (readable by the bound identity).
    pub base_readable: bool,
}

/// Connects (with TLS as configured), binds the service account if any, and reads the base DN.
pub async fn check(config: &DirectoryConfig) -> Result<CheckReport, DirectoryError> {
    let mut connection = Connection::open(config).await?;
    let mut report = CheckReport {
        service_bind: None,
        base_readable: false,
    };
    if let BindMode::SearchBind {
        service_dn,
        service_password,
    } = &config.bind
    {
        let bound = connection.bind(service_dn, service_password).await?;
        report.service_bind = Some(bound);
        if !bound {
            connection.close().await;
            return Ok(report);
        }
    }
    report.base_readable = connection
        .search(&config.base_dn, Scope::Base, "(objectClass=*)", &["1.1"], 1)
        .await?
        .is_some_and(|entries| entries.len() == 1);
    connection.close().await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DirectoryConfig {
        DirectoryConfig {
            url: "ldap://dc.example.org".into(),
            starttls: true,
            ca_pem: None,
            bind: BindMode::UserPattern {
                pattern: "uid={user},ou=people,dc=example,dc=org".into(),
            },
            base_dn: "dc=example,dc=org".into(),
            user_attribute: "uid".into(),
            groups: GroupMode::MemberOf {
                attribute: "memberOf".into(),
            },
            domain: Some("EXAMPLE".into()),
            timeout_secs: 5,
        }
    }

    #[test]
    fn filter_values_are_escaped() {
        assert_eq!(user_filter("uid", "alice"), "(uid=alice)");
        assert_eq!(user_filter("uid", "*)(uid=*"), r"(uid=\2a\29\28uid=\2a)");
        assert_eq!(
            user_filter("sAMAccountName", "admin*"),
            r"(sAMAccountName=admin\2a)"
        );
        assert_eq!(user_filter("uid", "a\\b\0"), r"(uid=a\5cb\00)");
    }

    #[test]
    fn dn_patterns_escape_and_upn_patterns_do_not() {
        let dn = "uid={user},ou=people,dc=example,dc=org";
        assert_eq!(
            bind_name(dn, "alice"),
            "uid=alice,ou=people,dc=example,dc=org"
        );
        assert_eq!(
            bind_name(dn, "x,ou=admins"),
            r"uid=x\2cou\3dadmins,ou=people,dc=example,dc=org"
        );
        assert_eq!(
            bind_name(dn, " lead "),
            r"uid=\20lead\20,ou=people,dc=example,dc=org"
        );
        assert_eq!(
            bind_name(dn, "#lead"),
            r"uid=\23lead,ou=people,dc=example,dc=org"
        );
        assert_eq!(
            bind_name("{user}@example.org", "alice"),
            "alice@example.org"
        );
        assert_eq!(bind_name(r"EXAMPLE\{user}", "alice"), r"EXAMPLE\alice");
        assert!(pattern_is_dn(dn));
        assert!(!pattern_is_dn("{user}@example.org"));
    }

    #[test]
    fn group_names_come_from_the_first_rdn() {
        assert_eq!(
            first_rdn_value("cn=Staff,ou=groups,dc=x").as_deref(),
            Some("Staff")
        );
        assert_eq!(
            first_rdn_value(r"CN=Sales\, Paris,OU=Groups,DC=corp").as_deref(),
            Some("Sales, Paris")
        );
        assert_eq!(
            first_rdn_value(r"cn=a\2cb+ou=x,dc=y").as_deref(),
            Some("a,b")
        );
        assert_eq!(first_rdn_value("no rdn"), None);
        assert_eq!(first_rdn_value("cn=,dc=x"), None);
        assert_eq!(
            sorted_groups(["Staff".to_owned(), " staff ".into(), "Ops".into()]),
            ["ops", "staff"]
        );
    }

    #[test]
    fn names_sent_to_the_directory() {
        assert!(acceptable_name("alice"));
        assert!(acceptable_name("evil*)(uid=*"));
        assert!(!acceptable_name(""));
        assert!(!acceptable_name("   "));
        assert!(!acceptable_name("a\0b"));
        assert!(!acceptable_name("a\nb"));
        assert!(!acceptable_name(&"x".repeat(257)));
    }

    #[test]
    fn canonical_names() {
        let one = ["alice".to_owned()];
        assert_eq!(canonical_name(&one, "ALICE"), "alice");
        assert_eq!(canonical_name(&one, "alice "), "alice");
        assert_eq!(
            canonical_name(&one, "Älice"),
            "alice",
            "only value: the server matched it"
        );
        let two = ["a.smith".to_owned(), "alice".to_owned()];
        assert_eq!(canonical_name(&two, "Alice"), "alice");
        assert_eq!(canonical_name(&two, "asmith"), "asmith");
        assert_eq!(canonical_name(&[], "bob"), "bob");
    }

    #[test]
    fn domains() {
        let config = config();
        assert!(domain_matches(&config, None));
        assert!(domain_matches(&config, Some("")));
        assert!(domain_matches(&config, Some("example")));
        assert!(!domain_matches(&config, Some("OTHER")));
        assert_eq!(strip_domain(&config, r"EXAMPLE\alice"), "alice");
        assert_eq!(strip_domain(&config, r"example\alice"), "alice");
        assert_eq!(strip_domain(&config, r"OTHER\alice"), r"OTHER\alice");
        assert_eq!(strip_domain(&config, r"EXAMPLE\"), r"EXAMPLE\");
        assert_eq!(strip_domain(&config, "alice"), "alice");
        let without = DirectoryConfig {
            domain: None,
            ..config
        };
        assert_eq!(strip_domain(&without, r"EXAMPLE\alice"), r"EXAMPLE\alice");
        assert!(!domain_matches(&without, Some("EXAMPLE")));
    }

    #[test]
    fn configuration_rules() {
        assert_eq!(validate(&config()), Ok(()));
        let bad = |change: fn(&mut DirectoryConfig)| {
            let mut c = config();
            change(&mut c);
            validate(&c).unwrap_err()
        };
        assert!(matches!(
            bad(|c| c.url = "http://x".into()),
            ConfigError::Url(_)
        ));
        assert!(matches!(
            bad(|c| c.url = "ldap://".into()),
            ConfigError::Url(_)
        ));
        assert_eq!(
            bad(|c| c.url = "ldaps://x:636".into()),
            ConfigError::StartTlsOnLdaps
        );
        assert_eq!(
            bad(|c| c.bind = BindMode::UserPattern {
                pattern: "uid=x".into()
            }),
            ConfigError::Pattern
        );
        assert_eq!(
            bad(|c| c.bind = BindMode::UserPattern {
                pattern: "{user}{user}".into()
            }),
            ConfigError::Pattern
        );
        assert_eq!(
            bad(|c| c.bind = BindMode::SearchBind {
                service_dn: "cn=s,dc=x".into(),
                service_password: String::new()
            }),
            ConfigError::Empty("service account password")
        );
        assert!(matches!(
            bad(|c| c.base_dn = "example.org".into()),
            ConfigError::Dn(_)
        ));
        assert!(matches!(
            bad(|c| c.user_attribute = "uid)(x".into()),
            ConfigError::Attribute(_)
        ));
        assert!(matches!(
            bad(|c| c.groups = GroupMode::MemberOf {
                attribute: "1x".into()
            }),
            ConfigError::Attribute(_)
        ));
        assert_eq!(bad(|c| c.ca_pem = Some("not pem".into())), ConfigError::Ca);
        assert_eq!(bad(|c| c.timeout_secs = 0), ConfigError::Timeout);
        assert!(matches!(
            bad(|c| c.domain = Some("EX AMPLE".into())),
            ConfigError::Domain(_)
        ));
    }

    #[test]
    fn the_service_password_is_not_in_debug_output() {
        let c = DirectoryConfig {
            bind: BindMode::SearchBind {
                service_dn: "cn=svc,dc=x".into(),
                service_password: "s3cret-pw".into(),
            },
            ..config()
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("cn=svc,dc=x"));
        assert!(!shown.contains("s3cret-pw"));
    }

    #[tokio::test]
    async fn an_empty_password_never_reaches_the_server() {
        // Nothing listens on this address: reaching the network would be `Unavailable`.
        let c = DirectoryConfig {
            url: "ldap://127.0.0.1:1".into(),
            starttls: false,
            ..config()
        };
        assert!(matches!(
            authenticate(&c, "alice", "").await,
            Err(DirectoryError::InvalidCredentials)
        ));
        assert!(matches!(
            authenticate(&c, "", "pw").await,
            Err(DirectoryError::InvalidCredentials)
        ));
        assert!(matches!(
            authenticate(&c, "alice", "pw").await,
            Err(DirectoryError::Unavailable(_))
        ));
    }
}
