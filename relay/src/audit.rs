//! The audit log: who did what, from where, when — sign-ins and their failures, second-factor
//! failures, every admin change (console and CLI alike) and every tunnel opened and closed.
//!
//! One entry point, [`record`], so that every writer produces the same shape: time (Unix ms), actor
//! (a user name, `cli:<OS user>` for the command line), client IP, an [`Action`], a target (what was
//! acted on) and a detail. Passwords, codes, tickets and session ids are never passed here. Writing
//! an entry never fails the operation it describes: the operation already happened, so a database
//! error is logged instead. Entries are kept [`RETENTION_MS`] and read newest first by the console.

use crate::pipes::PipeStats;
use crate::store::{AuditRow, NewAuditRow, Store, StoreError};
use std::net::IpAddr;

/// How long entries are kept (the periodic cleanup deletes older ones): 365 days.
pub const RETENTION_MS: i64 = 365 * 24 * 3_600_000;

/// Longest target or detail stored (characters); longer text is cut.
const MAX_TEXT: usize = 500;

/// What happened. The stored text is [`Action::as_str`] (`noun.verb`), stable for filters and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    LoginFailed,
    LoginRefused,
    SecondFactorFailed,
    Logout,
    TunnelOpened,
    TunnelClosed,
    WorkstationAdded,
    WorkstationEdited,
    WorkstationRemoved,
    WorkstationEnabled,
    WorkstationDisabled,
    WorkstationRepinned,
    WorkstationPinned,
    UserAdded,
    UserRemoved,
    PasswordReset,
    Assigned,
    Unassigned,
    GroupAssigned,
    GroupUnassigned,
    SessionDisconnected,
    SecuritySettingsChanged,
    IpUnblocked,
    WhitelistAdded,
    WhitelistRemoved,
    /// Any other change by an administrator (the detail says which).
    SettingsChanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::LoginFailed => "login.failed",
            Action::LoginRefused => "login.refused",
            Action::SecondFactorFailed => "2fa.failed",
            Action::Logout => "logout",
            Action::TunnelOpened => "tunnel.open",
            Action::TunnelClosed => "tunnel.close",
            Action::WorkstationAdded => "workstation.add",
            Action::WorkstationEdited => "workstation.edit",
            Action::WorkstationRemoved => "workstation.remove",
            Action::WorkstationEnabled => "workstation.enable",
            Action::WorkstationDisabled => "workstation.disable",
            Action::WorkstationRepinned => "workstation.repin",
            Action::WorkstationPinned => "workstation.pin",
            Action::UserAdded => "user.add",
            Action::UserRemoved => "user.remove",
            Action::PasswordReset => "user.password",
            Action::Assigned => "assignment.add",
            Action::Unassigned => "assignment.remove",
            Action::GroupAssigned => "group_assignment.add",
            Action::GroupUnassigned => "group_assignment.remove",
            Action::SessionDisconnected => "session.disconnect",
            Action::SecuritySettingsChanged => "security.settings",
            Action::IpUnblocked => "security.unblock",
            Action::WhitelistAdded => "security.whitelist.add",
            Action::WhitelistRemoved => "security.whitelist.remove",
            Action::SettingsChanged => "settings.change",
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A portal or console user (or the name typed at a failed sign-in).
    User(String),
    /// The command line on the relay's machine, with the OS account that ran it.
    Cli,
}

impl Actor {
    fn text(&self) -> String {
        match self {
            Actor::User(name) => name.clone(),
            Actor::Cli => {
                let os_user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME"));
                format!("cli:{}", os_user.unwrap_or_else(|_| "unknown".to_owned()))
            }
        }
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor: Actor,
    pub ip: Option<IpAddr>,
    pub action: Action,
    pub target: String,
    pub detail: String,
}

impl Event {
    pub fn new(actor: Actor, ip: Option<IpAddr>, action: Action, target: impl Into<String>) -> Self {
        Event {
            actor,
            ip,
            action,
            target: target.into(),
            detail: String::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// Appends `event` to the audit log; a failure is logged, never returned (see the module doc).
pub async fn record(store: &Store, event: Event) {
    let (actor, target, detail) = (event.actor.text(), cut(&event.target), cut(&event.detail));
    let row = NewAuditRow {
        at: crate::store::unix_ms(),
        actor: &actor,
        ip: event.ip.map(|ip| ip.to_string()),
        action: event.action.as_str(),
        target: &target,
        detail: &detail,
    };
    if let Err(error) = store.insert_audit(&row).await {
        tracing::error!(action = row.action, %error, "cannot write the audit log");
    }
}

/// The actor of a failed or refused sign-in: the typed name only when it is an account's name (people
/// type passwords into the username field; those must not land in the log).
pub async fn typed_account(store: &Store, typed: &str) -> Actor {
    match store.user_by_name(typed).await {
        Ok(user) => Actor::User(user.username),
        Err(_) => Actor::User("(unknown user)".to_owned()),
    }
}

/// A tunnel (browser or native RDP client) to a workstation was opened.
pub async fn record_tunnel_opened(store: &Store, pipe: &PipeStats) {
    let event = Event::new(
        Actor::User(pipe.username.clone()),
        Some(pipe.ip),
        Action::TunnelOpened,
        &pipe.workstation,
    );
    record(store, event.detail(pipe.kind.to_string())).await;
}

/// A tunnel ended: how, how long, how many bytes each way.
pub async fn record_tunnel_closed(store: &Store, pipe: &PipeStats, end: &str) {
    let detail = format!(
        "{}; {end}; {} s; {} bytes up, {} bytes down",
        pipe.kind,
        pipe.duration().as_secs(),
        pipe.bytes_up(),
        pipe.bytes_down()
    );
    let event = Event::new(
        Actor::User(pipe.username.clone()),
        Some(pipe.ip),
        Action::TunnelClosed,
        &pipe.workstation,
    );
    record(store, event.detail(detail)).await;
}

/// Entries newest first: those older than id `before`, containing `filter` (any case) anywhere.
pub async fn page(store: &Store, filter: &str, before: Option<i64>, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
    store.audit_page(&filter.trim().to_lowercase(), before, limit).await
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT + 10);
        let stored = cut(&long);
        assert_eq!(stored.chars().count(), MAX_TEXT + 1);
        assert!(stored.ends_with('…'));
        assert_eq!(cut("short"), "short");
    }

    #[test]
    fn cli_actor_names_the_os_user() {
        assert!(Actor::Cli.text().starts_with("cli:"));
        assert_eq!(Actor::User("alice".into()).text(), "alice");
    }
}
