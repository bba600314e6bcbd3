//! The brute-force defence's admin operations, shared by `relay security …` and the console's
//! `/api/admin/security/...` ([`crate::security_api`]): change the limits, add to and remove from the
//! whitelist, lift a block.
//!
//! Why it exists: both front ends must refuse the same values with the same sentences and write the
//! same audit entries, so each operation here validates, applies through [`LoginGuard`] and records
//! itself with [`audit::record`] for whoever asked ([`ChangedBy`]). Values are checked in the units
//! the administrator types (minutes for the window and the block), all-or-nothing: one bad value
//! stores nothing.

use crate::audit::{self, Action, Actor};
use crate::bruteforce::{LoginGuard, Policy, SecurityError};
use crate::netaddr::Cidr;
use serde_json::Value;
use std::net::IpAddr;
use std::time::Duration;

/// Who made a change (for the audit log): the console's administrator and their IP, or the CLI.
#[derive(Debug, Clone)]
pub struct ChangedBy {
    pub actor: Actor,
    pub ip: Option<IpAddr>,
}

impl ChangedBy {
    pub fn cli() -> Self {
        ChangedBy {
            actor: Actor::Cli,
            ip: None,
        }
    }

    async fn record(&self, guard: &LoginGuard, action: Action, target: &str, detail: String) {
        let event = audit::Event::new(self.actor.clone(), self.ip, action, target).detail(detail);
        audit::record(guard.store(), event).await;
    }
}

/// One tunable limit: its name (CLI flag with `-`, JSON field with `_`), what it means, its unit and range.
struct Limit {
    name: &'static str,
    label: &'static str,
    unit: &'static str,
    min: u64,
    max: u64,
}

const MAX_FAILURES: Limit = Limit {
    name: "max_failures",
    label: "Failed sign-ins that block an IP",
    unit: "",
    min: 1,
    max: 1_000,
};
const WINDOW_MINUTES: Limit = Limit {
    name: "window_minutes",
    label: "The counting window",
    unit: " minutes",
    min: 1,
    max: 24 * 60,
};
const BLOCK_MINUTES: Limit = Limit {
    name: "block_minutes",
    label: "The block",
    unit: " minutes",
    min: 1,
    max: 30 * 24 * 60,
};
const ACCOUNT_THRESHOLD: Limit = Limit {
    name: "account_threshold",
    label: "Failures of one account before new IPs are slowed down",
    unit: "",
    min: 1,
    max: 100_000,
};
const ACCOUNT_MAX_DELAY_SECS: Limit = Limit {
    name: "account_max_delay_secs",
    label: "The longest slow-down of an account",
    unit: " seconds",
    min: 1,
    max: 3_600,
};
const LIMITS: [Limit; 5] = [
    MAX_FAILURES,
    WINDOW_MINUTES,
    BLOCK_MINUTES,
    ACCOUNT_THRESHOLD,
    ACCOUNT_MAX_DELAY_SECS,
];

impl Limit {
    fn check(&self, value: u64) -> Result<u64, SecurityError> {
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(SecurityError::Invalid(format!(
                "{} ({}) must be between {} and {}{}, not {value}.",
                self.label, self.name, self.min, self.max, self.unit
            )))
        }
    }
}

/// Some of the limits, in the administrator's units; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitChanges {
    pub max_failures: Option<u64>,
    pub window_minutes: Option<u64>,
    pub block_minutes: Option<u64>,
    pub account_threshold: Option<u64>,
    pub account_max_delay_secs: Option<u64>,
}

impl LimitChanges {
    /// Reads a JSON object of limits (numbers, or strings of digits as typed in a form). Unknown
    /// fields and values that are not whole numbers are refused with a sentence naming them.
    pub fn from_json(body: &Value) -> Result<LimitChanges, SecurityError> {
        let Some(fields) = body.as_object() else {
            return Err(SecurityError::Invalid("Send the limits as a JSON object.".to_owned()));
        };
        let mut changes = LimitChanges::default();
        for (name, value) in fields {
            let limit = LIMITS.iter().find(|l| l.name == name).ok_or_else(|| {
                let known: Vec<&str> = LIMITS.iter().map(|l| l.name).collect();
                SecurityError::Invalid(format!("Unknown limit \"{name}\" (known: {}).", known.join(", ")))
            })?;
            let number = match value {
                Value::Number(n) => n.as_u64(),
                Value::String(text) => text.trim().parse::<u64>().ok(),
                _ => None,
            }
            .ok_or_else(|| {
                let shown = value.as_str().map_or_else(|| value.to_string(), |s| format!("\"{s}\""));
                SecurityError::Invalid(format!(
                    "{} ({}) must be a whole number, not {shown}.",
                    limit.label, limit.name
                ))
            })?;
            *changes.slot(limit.name) = Some(number);
        }
        Ok(changes)
    }

    fn slot(&mut self, name: &str) -> &mut Option<u64> {
        match name {
            "max_failures" => &mut self.max_failures,
            "window_minutes" => &mut self.window_minutes,
            "block_minutes" => &mut self.block_minutes,
            "account_threshold" => &mut self.account_threshold,
            _ => &mut self.account_max_delay_secs,
        }
    }

    /// The policy with these changes applied, every given value checked against its range.
    fn apply_to(&self, mut policy: Policy) -> Result<Policy, SecurityError> {
        let count = |limit: &Limit, value: u64| limit.check(value).map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        if let Some(n) = self.max_failures {
            policy.max_failures = count(&MAX_FAILURES, n)?;
        }
        if let Some(m) = self.window_minutes {
            policy.window = Duration::from_secs(WINDOW_MINUTES.check(m)? * 60);
        }
        if let Some(m) = self.block_minutes {
            policy.block = Duration::from_secs(BLOCK_MINUTES.check(m)? * 60);
        }
        if let Some(n) = self.account_threshold {
            policy.account_threshold = count(&ACCOUNT_THRESHOLD, n)?;
        }
        if let Some(s) = self.account_max_delay_secs {
            policy.account_max_delay = Duration::from_secs(ACCOUNT_MAX_DELAY_SECS.check(s)?);
        }
        policy.validate()?;
        Ok(policy)
    }
}

/// The limits as the administrator sees them (minutes for the window and the block).
pub fn limits_of(policy: &Policy) -> [(&'static str, u64); 5] {
    [
        (MAX_FAILURES.name, u64::from(policy.max_failures)),
        (WINDOW_MINUTES.name, policy.window.as_secs() / 60),
        (BLOCK_MINUTES.name, policy.block.as_secs() / 60),
        (ACCOUNT_THRESHOLD.name, u64::from(policy.account_threshold)),
        (ACCOUNT_MAX_DELAY_SECS.name, policy.account_max_delay.as_secs()),
    ]
}

/// Applies `changes` (all or nothing) and returns the limits now in force; takes effect at the next
/// sign-in on every relay of the database. Audited as `security.settings` with what changed.
pub async fn change_limits(
    guard: &LoginGuard,
    changes: &LimitChanges,
    by: &ChangedBy,
) -> Result<Policy, SecurityError> {
    let before = guard.policy().await?;
    let after = changes.apply_to(before)?;
    guard.set_policy(&after).await?;
    let changed: Vec<String> = limits_of(&before)
        .iter()
        .zip(limits_of(&after))
        .filter(|(old, new)| old.1 != new.1)
        .map(|(old, new)| format!("{} {} → {}", new.0, old.1, new.1))
        .collect();
    let detail = if changed.is_empty() {
        "unchanged".to_owned()
    } else {
        changed.join(", ")
    };
    by.record(guard, Action::SecuritySettingsChanged, "brute-force limits", detail)
        .await;
    Ok(after)
}

/// A whitelist entry as typed (an address or a CIDR range), or a sentence saying what is expected.
pub fn parse_cidr(text: &str) -> Result<Cidr, SecurityError> {
    text.parse::<Cidr>().map_err(|error| {
        let message = error.to_string();
        let mut chars = message.chars();
        let first: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
        SecurityError::Invalid(format!("{first}{}.", chars.as_str()))
    })
}

/// An address as typed, or a sentence saying it is not one.
pub fn parse_ip(text: &str) -> Result<IpAddr, SecurityError> {
    text.trim().parse::<IpAddr>().map_err(|_| {
        SecurityError::Invalid(format!(
            "\"{text}\" is not an IP address (such as 203.0.113.7 or 2001:db8::7)."
        ))
    })
}

/// Whether a change found something to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Already so (whitelist add), or nothing to undo (remove, unblock).
    Nothing,
}

/// Never blocks `cidr` from now on (also lifts the effect of its current blocks). Audited when added.
pub async fn whitelist_add(guard: &LoginGuard, cidr: &Cidr, by: &ChangedBy) -> Result<Outcome, SecurityError> {
    if !guard.whitelist_add(cidr).await? {
        return Ok(Outcome::Nothing);
    }
    by.record(guard, Action::WhitelistAdded, &cidr.to_string(), String::new())
        .await;
    Ok(Outcome::Done)
}

/// Removes `cidr` from the whitelist. Audited when it was listed.
pub async fn whitelist_remove(guard: &LoginGuard, cidr: &Cidr, by: &ChangedBy) -> Result<Outcome, SecurityError> {
    if !guard.whitelist_remove(cidr).await? {
        return Ok(Outcome::Nothing);
    }
    by.record(guard, Action::WhitelistRemoved, &cidr.to_string(), String::new())
        .await;
    Ok(Outcome::Done)
}

/// Lifts the block of `ip` and forgets its failures (so it starts counting afresh). Audited when it
/// was blocked.
pub async fn unblock(guard: &LoginGuard, ip: IpAddr, by: &ChangedBy) -> Result<Outcome, SecurityError> {
    if !guard.unblock(ip).await? {
        return Ok(Outcome::Nothing);
    }
    by.record(
        guard,
        Action::IpUnblocked,
        &crate::netaddr::canonical(ip).to_string(),
        String::new(),
    )
    .await;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(body: Value) -> String {
        match LimitChanges::from_json(&body).and_then(|c| c.apply_to(Policy::default())) {
            Err(SecurityError::Invalid(message)) => message,
            other => panic!("{body} was not refused: {other:?}"),
        }
    }

    #[test]
    fn limits_are_read_in_the_administrators_units() {
        let changes =
            LimitChanges::from_json(&json!({"max_failures": 3, "window_minutes": "15", "block_minutes": 60})).unwrap();
        let policy = changes.apply_to(Policy::default()).unwrap();
        assert_eq!(policy.max_failures, 3);
        assert_eq!(policy.window, Duration::from_secs(15 * 60));
        assert_eq!(policy.block, Duration::from_secs(3600));
        assert_eq!(policy.account_threshold, Policy::default().account_threshold);
        assert_eq!(limits_of(&policy)[1], ("window_minutes", 15));
    }

    #[test]
    fn bad_values_are_refused_with_a_sentence() {
        assert_eq!(
            refused(json!({"max_failures": 0})),
            "Failed sign-ins that block an IP (max_failures) must be between 1 and 1000, not 0."
        );
        assert_eq!(
            refused(json!({"window_minutes": 5000})),
            "The counting window (window_minutes) must be between 1 and 1440 minutes, not 5000."
        );
        assert_eq!(
            refused(json!({"block_minutes": "ten"})),
            "The block (block_minutes) must be a whole number, not \"ten\"."
        );
        assert_eq!(
            refused(json!({"max_failures": -1})),
            "Failed sign-ins that block an IP (max_failures) must be a whole number, not -1."
        );
        assert!(refused(json!({"lockout": 1})).starts_with("Unknown limit \"lockout\""));
        assert_eq!(refused(json!([1])), "Send the limits as a JSON object.");
    }

    #[test]
    fn addresses_are_refused_with_a_sentence() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        let message = match parse_cidr("10.0.0.0/33") {
            Err(SecurityError::Invalid(message)) => message,
            other => panic!("{other:?}"),
        };
        assert!(
            message.starts_with("Invalid address or range \"10.0.0.0/33\""),
            "{message}"
        );
        assert!(message.ends_with("2001:db8::/32."), "{message}");
        assert!(parse_ip("203.0.113.7").is_ok());
        assert!(parse_ip("203.0.113.0/24").is_err());
    }
}
