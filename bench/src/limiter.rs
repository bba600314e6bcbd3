//! The brute-force limiter under a flood: a million failed sign-ins, each from a different random
//! client address (IPv4 and IPv6 mixed), through the relay's own `LoginGuard` on a SQLite store, as
//! `POST /api/login` records them. In-process because the HTTP path would spend its time in argon2
//! (every address is new, so none is blocked before its password is checked), not in the limiter.
//!
//! What it shows: the limiter's state stays bounded. The relay keeps nothing per address in memory
//! (all state is in the database), and the database keeps at most `max_failure_rows` failure rows
//! (the oldest go first), so the stored rows, the database file and the process's memory stop
//! growing once the cap is reached. The clock stands still (all failures inside the window), so the
//! window purge does not help: the row cap alone bounds the state. As in a serving relay, the
//! relay's own housekeeping pass runs every [`HOUSEKEEPING_INTERVAL`] during the flood (it
//! checkpoints and truncates SQLite's write-ahead log); the WAL's size is sampled just before each
//! pass, so its high-water mark is reported next to its size at the end. Not a test: it asserts
//! nothing; the rows say whether the bounds held.

use anyhow::{Context, Result};
use homedesk_relay::bruteforce::{LimiterConfig, LoginGuard, DEFAULT_MAX_FAILURE_ROWS};
use homedesk_relay::clock::{ManualClock, SharedClock};
use homedesk_relay::server::{housekeeping_pass, HOUSEKEEPING_INTERVAL};
use homedesk_relay::store::Store;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

/// Failed sign-ins in the flood (`HOMEDESK_BENCH_FLOOD` overrides).
pub const DEFAULT_ATTEMPTS: u64 = 1_000_000;
/// Concurrent attackers (tasks) sharing the store's pool, as concurrent requests would.
const TASKS: u64 = 4;

/// Figures at the checkpoint (a quarter of the flood) and at its end.
pub struct Flood {
    pub attempts: u64,
    pub cap: i64,
    pub rows_at_quarter: i64,
    pub rows_at_end: i64,
    pub db_mb_at_quarter: f64,
    pub db_mb_at_end: f64,
    /// The WAL's largest size seen just before a housekeeping pass, in MB.
    pub wal_mb_peak: f64,
    /// The WAL's size at the end (the flood over, before any further pass), in MB.
    pub wal_mb_at_end: f64,
    /// The WAL's size after one more housekeeping pass once the flood is over, in MB.
    pub wal_mb_after_pass: f64,
    /// Housekeeping passes run during the flood.
    pub housekeeping_passes: u64,
    pub rss_mb_before: f64,
    pub rss_mb_at_quarter: f64,
    pub rss_mb_at_end: f64,
    pub seconds: f64,
}

pub fn attempts() -> Result<u64> {
    match std::env::var("HOMEDESK_BENCH_FLOOD") {
        Ok(text) if !text.is_empty() => text.trim().parse().context("HOMEDESK_BENCH_FLOOD"),
        _ => Ok(DEFAULT_ATTEMPTS),
    }
}

/// The `n`-th attacker's address: distinct for every `n` (an odd multiplier is a bijection of the
/// 32-bit and 64-bit integers), scattered over the whole address space.
fn address(n: u64) -> IpAddr {
    if n.is_multiple_of(2) {
        IpAddr::V4(Ipv4Addr::from(((n / 2) as u32).wrapping_mul(0x9E37_79B1)))
    } else {
        let mixed = (n / 2).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        IpAddr::V6(Ipv6Addr::from((0x2001_0db8_u128 << 96) | u128::from(mixed)))
    }
}

fn rss_mb() -> f64 {
    crate::process::rss_kib(std::process::id()).map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0, |m| m.len()) as f64 / 1e6
}

/// The database file and its WAL, in MB (10^6 bytes).
fn db_mb(dir: &Path) -> f64 {
    file_mb(&dir.join("homedesk.db")) + wal_mb(dir)
}

fn wal_mb(dir: &Path) -> f64 {
    file_mb(&dir.join("homedesk.db-wal"))
}

/// The serving relay's periodic housekeeping, alongside the flood until `stop`; returns the WAL's
/// largest size seen just before a pass and the number of passes.
async fn housekeeping(
    store: Store,
    guard: LoginGuard,
    dir: std::path::PathBuf,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> (f64, u64) {
    let (mut peak, mut passes) = (0.0f64, 0);
    loop {
        tokio::select! {
            _ = &mut stop => return (peak, passes),
            _ = tokio::time::sleep(HOUSEKEEPING_INTERVAL) => {}
        }
        let before = wal_mb(&dir);
        peak = peak.max(before);
        housekeeping_pass(&store, &guard).await;
        passes += 1;
        eprintln!("bench:   limiter: housekeeping pass {passes}: WAL {before:.1} MB → {:.1} MB", wal_mb(&dir));
    }
}

async fn flood(guard: &LoginGuard, from: u64, to: u64) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let guard = guard.clone();
        tasks.spawn(async move {
            let mut n = from + task;
            while n < to {
                guard.record_failure(address(n), Some("administrator")).await?;
                n += TASKS;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("flood task")??;
    }
    Ok(())
}

pub async fn run(dir: &Path, attempts: u64) -> Result<Flood> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let store = Store::open(&dir.join("homedesk.db")).await.context("limiter store")?;
    let clock: SharedClock = Arc::new(ManualClock::new(1_800_000_000_000));
    let guard = LoginGuard::new(store.clone(), LimiterConfig { clock, max_failure_rows: DEFAULT_MAX_FAILURE_ROWS });
    let rss_mb_before = rss_mb();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let keeper = tokio::spawn(housekeeping(store.clone(), guard.clone(), dir.to_owned(), stopped));
    let started = std::time::Instant::now();
    let quarter = attempts / 4;
    flood(&guard, 0, quarter).await?;
    let (rows_at_quarter, db_mb_at_quarter, rss_mb_at_quarter) =
        (store.login_failure_rows().await?, db_mb(dir), rss_mb());
    eprintln!(
        "bench:   limiter: {quarter} failures, {rows_at_quarter} rows, {db_mb_at_quarter:.1} MB on disk (WAL {:.1} MB)",
        wal_mb(dir)
    );
    flood(&guard, quarter, attempts).await?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    let (wal_peak, housekeeping_passes) = keeper.await.context("housekeeping task")?;
    let (rows_at_end, db_mb_at_end, rss_mb_at_end) = (store.login_failure_rows().await?, db_mb(dir), rss_mb());
    let wal_mb_at_end = wal_mb(dir);
    // The serving relay's next pass after the flood: nothing writes any more, so the checkpoint can
    // truncate the log.
    housekeeping_pass(&store, &guard).await;
    let wal_mb_after_pass = wal_mb(dir);
    eprintln!(
        "bench:   limiter: {attempts} failures in {seconds:.0} s, {rows_at_end} rows, {db_mb_at_end:.1} MB on disk \
         (WAL {wal_mb_at_end:.1} MB at the end, {wal_peak:.1} MB at most before a pass, {housekeeping_passes} passes; \
         {wal_mb_after_pass:.1} MB after the next pass)"
    );
    Ok(Flood {
        attempts,
        cap: DEFAULT_MAX_FAILURE_ROWS,
        rows_at_quarter,
        rows_at_end,
        db_mb_at_quarter,
        db_mb_at_end,
        wal_mb_peak: wal_peak.max(wal_mb_at_end),
        wal_mb_at_end,
        wal_mb_after_pass,
        housekeeping_passes,
        rss_mb_before,
        rss_mb_at_quarter,
        rss_mb_at_end,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..200_000 {
            assert!(seen.insert(address(n)), "{n}");
        }
    }
}
