//! Brute-force defence of the portal login: per-IP blocking, a per-account slow-down, a whitelist.
//!
//! Why it exists: the relay faces the internet and every account is one password away from an
//! office desktop. It is active from the first start with the defaults below (TSplus "Advanced
//! Security" defaults), no setup needed; `relay security set` changes them.
//!
//! **Per IP.** After `max_failures` (10) failed sign-ins from one client IP within `window`
//! (10 min) the IP is refused for `block` (20 min): HTTP 429 without checking the password, new
//! tunnels refused and its live tunnels closed (4429). Failures are counted with a sliding window
//! (a failure at `t` counts while `now - t < window`); failures from before a block's end never
//! count again. A successful sign-in does not reset the count (else one valid account would let an
//! attacker interleave guesses for others). Whitelisted addresses/ranges are never blocked.
//!
//! **Per account (distributed guessing).** Per-IP limits do not stop a botnet guessing one
//! account from thousands of addresses. So when an account name has `account_threshold` (20) or
//! more failures within the window (from any IPs), sign-ins *to that account* from IPs that have
//! never signed in to it successfully are refused (429) until `delay` after its latest failure,
//! where `delay` doubles from 30 s with each failure beyond the threshold and is capped at
//! `account_max_delay` (5 min). Refused attempts do not count, so an attacker gets at most about one
//! guess per `account_max_delay` per account, while:
//! - the owner is never locked out from an IP where they signed in before (the usual office or
//!   home), and a whitelisted IP is never slowed down;
//! - from a new IP they wait at most `account_max_delay` for a free attempt. Trade-off: during a
//!   sustained distributed attack the attacker can race for that attempt, so a user on a brand-new
//!   network may need several tries (or an administrator whitelists the network); we prefer this to
//!   a hard account lockout, which would let anyone lock any user out indefinitely.
//!
//! The same counts and the same 429 apply to names that do not exist, so the limiter never reveals
//! whether a user exists.
//!
//! **State** lives in the database (tables `login_failures`, `blocked_ips`, `ip_whitelist`,
//! `account_known_ips`), so blocks survive restarts and several relays can later share them through
//! PostgreSQL. Memory use does not depend on the attack: nothing is cached per IP. Disk use is
//! bounded too: failure rows older than the window are purged by the periodic housekeeping, and
//! at most [`LimiterConfig::max_failure_rows`] failure rows are kept at any time (the oldest go
//! first) even under a flood from millions of distinct addresses.
//!
//! Known limits: concurrent attempts checked before the block is recorded may each get their guess
//! (bounded by the argon2 concurrency); IPv6 clients are keyed per address, not per /64.

use crate::clock::SharedClock;
use crate::netaddr::{canonical, Cidr};
use crate::store::{BlockedIp, Store, StoreError};
use std::net::IpAddr;
use std::time::Duration;

/// First delay of the per-account slow-down; it doubles with each further failure.
pub const ACCOUNT_BASE_DELAY: Duration = Duration::from_secs(30);
/// How long an IP stays "known" for an account after its last successful sign-in.
pub const KNOWN_IP_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// Default cap on stored failure rows.
pub const DEFAULT_MAX_FAILURE_ROWS: i64 = 100_000;
/// Longest account name stored (usernames have at most 64 characters).
const ACCOUNT_KEY_CHARS: usize = 64;
/// Prefix of this module's rows in the settings table.
const SETTING_PREFIX: &str = "security.";

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = SecurityError> = std::result::Result<T, E>;

/// The tunable limits (stored in the settings table; defaults when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_failures: u32,
    pub window: Duration,
    pub block: Duration,
    pub account_threshold: u32,
    pub account_max_delay: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_failures: 10,
            window: Duration::from_secs(10 * 60),
            block: Duration::from_secs(20 * 60),
            account_threshold: 20,
            account_max_delay: Duration::from_secs(5 * 60),
        }
    }
}

/// Setting names and their allowed ranges (seconds for durations).
const MAX_FAILURES: (&str, u64, u64) = ("max_failures", 1, 1_000);
const WINDOW_SECS: (&str, u64, u64) = ("window_secs", 60, 24 * 3600);
const BLOCK_SECS: (&str, u64, u64) = ("block_secs", 60, 30 * 24 * 3600);
const ACCOUNT_THRESHOLD: (&str, u64, u64) = ("account_threshold", 1, 100_000);
const ACCOUNT_MAX_DELAY_SECS: (&str, u64, u64) = ("account_max_delay_secs", 1, 3600);

fn check_range((name, min, max): (&str, u64, u64), value: u64) -> Result<u64> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(SecurityError::Invalid(format!(
            "{name} must be between {min} and {max}, not {value}"
        )))
    }
}

impl Policy {
    /// Checks every limit against its allowed range.
    pub fn validate(&self) -> Result<()> {
        check_range(MAX_FAILURES, u64::from(self.max_failures))?;
        check_range(WINDOW_SECS, self.window.as_secs())?;
        check_range(BLOCK_SECS, self.block.as_secs())?;
        check_range(ACCOUNT_THRESHOLD, u64::from(self.account_threshold))?;
        check_range(ACCOUNT_MAX_DELAY_SECS, self.account_max_delay.as_secs())?;
        Ok(())
    }

    fn as_settings(&self) -> [(&'static str, u64); 5] {
        [
            (MAX_FAILURES.0, u64::from(self.max_failures)),
            (WINDOW_SECS.0, self.window.as_secs()),
            (BLOCK_SECS.0, self.block.as_secs()),
            (ACCOUNT_THRESHOLD.0, u64::from(self.account_threshold)),
            (ACCOUNT_MAX_DELAY_SECS.0, self.account_max_delay.as_secs()),
        ]
    }

    /// Reads the settings rows; a missing or invalid value keeps its default (and is logged).
    fn from_settings(rows: &[(String, String)]) -> Policy {
        let mut policy = Policy::default();
        for (name, value) in rows {
            let Some(key) = name.strip_prefix(SETTING_PREFIX) else {
                continue;
            };
            let limits = [
                MAX_FAILURES,
                WINDOW_SECS,
                BLOCK_SECS,
                ACCOUNT_THRESHOLD,
                ACCOUNT_MAX_DELAY_SECS,
            ];
            let Some(limit) = limits.into_iter().find(|l| l.0 == key) else {
                continue;
            };
            let Some(parsed) = value
                .parse::<u64>()
                .ok()
                .and_then(|v| check_range(limit, v).ok())
            else {
                tracing::warn!(setting = %name, %value, "invalid security setting ignored; using the default");
                continue;
            };
            let as_u32 = u32::try_from(parsed).unwrap_or(u32::MAX);
            match key {
                "max_failures" => policy.max_failures = as_u32,
                "window_secs" => policy.window = Duration::from_secs(parsed),
                "block_secs" => policy.block = Duration::from_secs(parsed),
                "account_threshold" => policy.account_threshold = as_u32,
                _ => policy.account_max_delay = Duration::from_secs(parsed),
            }
        }
        policy
    }

    /// Delay imposed on unknown IPs after the account's latest failure, given its failure count.
    pub fn account_delay(&self, failures: i64) -> Option<Duration> {
        let excess = failures
            .checked_sub(i64::from(self.account_threshold))
            .filter(|e| *e >= 0)?;
        let doublings = u32::try_from(excess.min(20)).unwrap_or(20);
        Some(
            ACCOUNT_BASE_DELAY
                .saturating_mul(1u32 << doublings)
                .min(self.account_max_delay),
        )
    }
}

/// Non-policy settings of the limiter (fixed at start).
#[derive(Debug, Clone)]
pub struct LimiterConfig {
    pub clock: SharedClock,
    /// At most this many failure rows are stored (the oldest are deleted first).
    pub max_failure_rows: i64,
}

/// Why a sign-in was refused before the password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client IP is blocked.
    IpBlocked { retry_after: Duration },
    /// The account is being slowed down and this IP never signed in to it.
    AccountThrottled { retry_after: Duration },
}

/// "N minutes" rounded up, at least one.
fn minutes(duration: Duration) -> String {
    let n = duration.as_secs().div_ceil(60).max(1);
    if n == 1 {
        "1 minute".to_owned()
    } else {
        format!("{n} minutes")
    }
}

/// The 429 message (and WebSocket 4429 reason) for a blocked IP.
pub fn ip_blocked_message(retry_after: Duration) -> String {
    format!(
        "Too many failed sign-in attempts from your network. Try again in {}.",
        minutes(retry_after)
    )
}

/// The 429 message of the per-account slow-down (the same whether or not the account exists).
pub fn account_throttled_message(retry_after: Duration) -> String {
    format!(
        "Too many failed sign-in attempts for this account. Try again in {}.",
        minutes(retry_after)
    )
}

impl Refusal {
    pub fn retry_after(&self) -> Duration {
        match self {
            Refusal::IpBlocked { retry_after } | Refusal::AccountThrottled { retry_after } => {
                *retry_after
            }
        }
    }
    pub fn message(&self) -> String {
        match self {
            Refusal::IpBlocked { retry_after } => ip_blocked_message(*retry_after),
            Refusal::AccountThrottled { retry_after } => account_throttled_message(*retry_after),
        }
    }
}

fn remaining(until: i64, now: i64) -> Duration {
    Duration::from_millis(u64::try_from(until.saturating_sub(now)).unwrap_or(0))
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The key under which an account's failures are counted (the typed name, bounded).
fn account_key(account: &str) -> String {
    account.chars().take(ACCOUNT_KEY_CHARS).collect()
}

fn ip_key(ip: IpAddr) -> String {
    canonical(ip).to_string()
}

/// The limiter. Cheap to clone; all state is in the database.
#[derive(Debug, Clone)]
pub struct LoginGuard {
    store: Store,
    config: LimiterConfig,
}

impl LoginGuard {
    pub fn new(store: Store, config: LimiterConfig) -> Self {
        LoginGuard { store, config }
    }

    fn now(&self) -> i64 {
        self.config.clock.now_ms()
    }

    /// The database the limiter keeps its state in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn policy(&self) -> Result<Policy> {
        let rows = self.store.settings_with_prefix(SETTING_PREFIX).await?;
        Ok(Policy::from_settings(&rows))
    }

    /// Stores a validated policy (takes effect at the next sign-in, also on a running relay).
    pub async fn set_policy(&self, policy: &Policy) -> Result<()> {
        policy.validate()?;
        for (name, value) in policy.as_settings() {
            self.store
                .set_setting(&format!("{SETTING_PREFIX}{name}"), &value.to_string())
                .await?;
        }
        Ok(())
    }

    pub async fn whitelist(&self) -> Result<Vec<Cidr>> {
        let rows = self.store.whitelist().await?;
        Ok(rows
            .iter()
            .filter_map(|row| match row.parse::<Cidr>() {
                Ok(cidr) => Some(cidr),
                Err(error) => {
                    tracing::warn!(%error, "ignoring an invalid whitelist row");
                    None
                }
            })
            .collect())
    }

    pub async fn is_whitelisted(&self, ip: IpAddr) -> Result<bool> {
        Ok(self.whitelist().await?.iter().any(|cidr| cidr.contains(ip)))
    }

    /// Adds an address or range; false if it was already listed.
    pub async fn whitelist_add(&self, cidr: &Cidr) -> Result<bool> {
        let added = self
            .store
            .whitelist_add(&cidr.to_string(), self.now())
            .await?;
        if added {
            tracing::info!(%cidr, "whitelisted");
        }
        Ok(added)
    }

    /// Removes an address or range; false if it was not listed.
    pub async fn whitelist_remove(&self, cidr: &Cidr) -> Result<bool> {
        let removed = self.store.whitelist_remove(&cidr.to_string()).await?;
        if removed {
            tracing::info!(%cidr, "removed from the whitelist");
        }
        Ok(removed)
    }

    /// How long the IP stays blocked, if it is blocked now (whitelisted IPs never are).
    pub async fn ip_blocked_for(&self, ip: IpAddr) -> Result<Option<Duration>> {
        let now = self.now();
        match self.store.ip_block(&ip_key(ip)).await? {
            Some(block) if block.blocked_until > now && !self.is_whitelisted(ip).await? => {
                Ok(Some(remaining(block.blocked_until, now)))
            }
            _ => Ok(None),
        }
    }

    /// Decides, before any password is checked, whether this sign-in may proceed.
    pub async fn check_login(&self, ip: IpAddr, account: &str) -> Result<Option<Refusal>> {
        let now = self.now();
        if self.is_whitelisted(ip).await? {
            return Ok(None);
        }
        let ip = ip_key(ip);
        if let Some(block) = self.store.ip_block(&ip).await? {
            if block.blocked_until > now {
                return Ok(Some(Refusal::IpBlocked {
                    retry_after: remaining(block.blocked_until, now),
                }));
            }
        }
        let policy = self.policy().await?;
        let account = account_key(account);
        let since = now.saturating_sub(ms(policy.window));
        let (failures, latest) = self.store.account_failures_since(&account, since).await?;
        let (Some(delay), Some(latest)) = (policy.account_delay(failures), latest) else {
            return Ok(None);
        };
        let until = latest.saturating_add(ms(delay));
        if until <= now {
            return Ok(None);
        }
        let known_since = now.saturating_sub(ms(KNOWN_IP_LIFETIME));
        if self
            .store
            .account_ip_known(&account, &ip, known_since)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(Refusal::AccountThrottled {
            retry_after: remaining(until, now),
        }))
    }

    /// Counts one failed sign-in (a wrong password today; a wrong second factor later). Returns the
    /// new block if this failure blocked the IP; the caller closes that IP's live tunnels.
    pub async fn record_failure(
        &self,
        ip: IpAddr,
        account: Option<&str>,
    ) -> Result<Option<BlockedIp>> {
        let now = self.now();
        let key = ip_key(ip);
        let account = account.map(account_key);
        self.store
            .insert_login_failure(&key, account.as_deref(), now, self.config.max_failure_rows)
            .await?;
        if self.is_whitelisted(ip).await? {
            return Ok(None);
        }
        let policy = self.policy().await?;
        // Failures before the end of an earlier block do not count again.
        let mut since = now.saturating_sub(ms(policy.window));
        if let Some(previous) = self.store.ip_block(&key).await? {
            if previous.blocked_until > now {
                return Ok(None); // already blocked (a race with a concurrent attempt)
            }
            since = since.max(previous.blocked_until.saturating_sub(1));
        }
        let failures = self.store.ip_failures_since(&key, since).await?;
        if failures < i64::from(policy.max_failures) {
            return Ok(None);
        }
        let block = BlockedIp {
            ip: key,
            blocked_at: now,
            blocked_until: now.saturating_add(ms(policy.block)),
            reason: format!(
                "{failures} failed sign-ins within {}",
                minutes(policy.window)
            ),
            failures,
        };
        self.store.block_ip(&block).await?;
        tracing::warn!(ip = %block.ip, failures, block_minutes = policy.block.as_secs() / 60, "IP blocked after failed sign-ins");
        Ok(Some(block))
    }

    /// Remembers that `account` signed in from `ip` (exempts the IP from the account's slow-down).
    /// It does not reset the IP's failure count.
    pub async fn record_success(&self, ip: IpAddr, account: &str) -> Result<()> {
        self.store
            .remember_account_ip(&account_key(account), &ip_key(ip), self.now())
            .await?;
        Ok(())
    }

    /// Blocks in force now, newest first.
    pub async fn blocked(&self) -> Result<Vec<BlockedIp>> {
        Ok(self.store.active_blocks(self.now()).await?)
    }

    /// Lifts an IP's block and forgets its failures; false if it was not blocked.
    pub async fn unblock(&self, ip: IpAddr) -> Result<bool> {
        let now = self.now();
        let key = ip_key(ip);
        let was_active = self
            .store
            .ip_block(&key)
            .await?
            .is_some_and(|b| b.blocked_until > now);
        self.store.unblock_ip(&key).await?;
        if was_active {
            tracing::info!(ip = %key, "IP unblocked by an administrator");
        }
        Ok(was_active)
    }

    /// Deletes failures older than the window, blocks that ended more than a window ago and
    /// long-unused known IPs (called by the periodic housekeeping).
    pub async fn purge(&self) -> Result<()> {
        let now = self.now();
        let window = ms(self.policy().await?.window);
        let before = now.saturating_sub(window);
        self.store
            .purge_security(before, before, now.saturating_sub(ms(KNOWN_IP_LIFETIME)))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_delay_grows_and_is_capped() {
        let policy = Policy::default();
        assert_eq!(policy.account_delay(19), None);
        assert_eq!(policy.account_delay(20), Some(Duration::from_secs(30)));
        assert_eq!(policy.account_delay(21), Some(Duration::from_secs(60)));
        assert_eq!(policy.account_delay(23), Some(Duration::from_secs(240)));
        assert_eq!(policy.account_delay(24), Some(Duration::from_secs(300)));
        assert_eq!(
            policy.account_delay(i64::MAX),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn messages_round_minutes_up() {
        assert_eq!(
            ip_blocked_message(Duration::from_secs(20 * 60)),
            "Too many failed sign-in attempts from your network. Try again in 20 minutes."
        );
        assert_eq!(minutes(Duration::from_secs(61)), "2 minutes");
        assert_eq!(minutes(Duration::from_millis(1)), "1 minute");
        assert_eq!(minutes(Duration::ZERO), "1 minute");
    }

    #[test]
    fn settings_fall_back_to_defaults() {
        let rows = vec![
            ("security.max_failures".to_owned(), "5".to_owned()),
            ("security.window_secs".to_owned(), "nonsense".to_owned()),
            ("security.block_secs".to_owned(), "1".to_owned()),
            ("security.account_threshold".to_owned(), "7".to_owned()),
        ];
        let policy = Policy::from_settings(&rows);
        assert_eq!(policy.max_failures, 5);
        assert_eq!(policy.window, Policy::default().window);
        assert_eq!(policy.block, Policy::default().block);
        assert_eq!(policy.account_threshold, 7);
        let round_trip: Vec<(String, String)> = policy
            .as_settings()
            .iter()
            .map(|(n, v)| (format!("security.{n}"), v.to_string()))
            .collect();
        assert_eq!(Policy::from_settings(&round_trip), policy);
        assert!(Policy {
            max_failures: 0,
            ..Policy::default()
        }
        .validate()
        .is_err());
        assert!(Policy::default().validate().is_ok());
    }
}
