//! Many concurrent tunnels through the relay, each carrying 200 kbit/s (1,250 bytes to the echo
//! workstation every 50 ms, echoed back): the load is raised step by step while the p99 round trip
//! stays within 5 ms of the direct one; the relay's RSS growth per session is read from /proc, and so is
//! the CPU time the relay and this benchmark (the clients, their TLS, the echo workstation) used while
//! measuring: both share the machine's cores, so the client side can be the limit, not the relay.

use crate::link::Link;
use crate::process::{cpu_seconds, rss_kib};
use crate::relay::Relay;
use crate::workstation::Kind;
use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

pub const MESSAGE: usize = 1_250;
pub const PERIOD: Duration = Duration::from_millis(50);
/// Largest added p99 round trip at which a level counts as sustained.
pub const ADDED_P99_LIMIT_US: f64 = 5_000.0;
const SETTLE: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(5);
/// Tunnels opened at the same time while ramping up.
const OPENING: usize = 16;

pub struct Level {
    pub sessions: usize,
    pub p99_us: f64,
    pub rss_delta_kib: i64,
    /// Round trips completed over the ones scheduled (1.0 = every session kept its 200 kbit/s).
    pub delivered: f64,
    pub failed: u64,
    /// Cores' worth of CPU the relay process used while measuring (CPU seconds / wall seconds).
    pub relay_cores: f64,
    /// The same for this benchmark process (bench clients with TLS, echo workstation).
    pub bench_cores: f64,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    recording: AtomicBool,
    samples: Mutex<Vec<f64>>,
    failed: AtomicU64,
}

/// Runs the levels in order; stops after the first one that misses the latency limit.
pub async fn run(relay: &Relay, levels: &[usize], direct_p99_us: f64) -> Result<Vec<Level>> {
    let shared = Arc::new(Shared::default());
    let mut sessions = JoinSet::new();
    let base_rss = rss_kib(relay.pid()).context("relay RSS")? as i64;
    let mut results = Vec::new();
    let mut open = 0usize;
    let outcome = async {
        for &level in levels {
            while open < level {
                let batch = OPENING.min(level - open);
                let mut opening = JoinSet::new();
                for _ in 0..batch {
                    let ticket = relay.ticket(Kind::Echo).await?;
                    let (addr, tls, origin) = relay.tunnel_parts();
                    opening.spawn(async move {
                        Link::wss(addr, &format!("/api/tunnel?ticket={ticket}"), Some(&origin), &tls).await
                    });
                }
                while let Some(link) = opening.join_next().await {
                    let link = link??;
                    let offset = PERIOD.mul_f64((open % 97) as f64 / 97.0);
                    sessions.spawn(session(link, shared.clone(), offset));
                    open += 1;
                }
            }
            tokio::time::sleep(SETTLE).await;
            shared.samples.lock().unwrap_or_else(|e| e.into_inner()).clear();
            shared.recording.store(true, Ordering::SeqCst);
            let (relay_cpu, bench_cpu, started) =
                (cpu_seconds(relay.pid())?, cpu_seconds(std::process::id())?, Instant::now());
            tokio::time::sleep(MEASURE).await;
            shared.recording.store(false, Ordering::SeqCst);
            let wall = started.elapsed().as_secs_f64();
            let relay_cores = (cpu_seconds(relay.pid())? - relay_cpu) / wall;
            let bench_cores = (cpu_seconds(std::process::id())? - bench_cpu) / wall;
            let mut samples = std::mem::take(&mut *shared.samples.lock().unwrap_or_else(|e| e.into_inner()));
            samples.sort_by(f64::total_cmp);
            let scheduled = level as f64 * MEASURE.as_secs_f64() / PERIOD.as_secs_f64();
            let result = Level {
                sessions: level,
                p99_us: crate::measure::percentile(&samples, 99.0),
                rss_delta_kib: rss_kib(relay.pid())? as i64 - base_rss,
                delivered: samples.len() as f64 / scheduled,
                failed: shared.failed.load(Ordering::SeqCst),
                relay_cores,
                bench_cores,
            };
            eprintln!(
                "bench:   {level} sessions: p99 {:.0} µs, {:.0}% of round trips delivered, relay RSS +{} KiB, {} failed, \
                 CPU: relay {:.2} cores, bench {:.2} cores",
                result.p99_us,
                result.delivered * 100.0,
                result.rss_delta_kib,
                result.failed,
                result.relay_cores,
                result.bench_cores
            );
            let sustained = sustained(&result, direct_p99_us);
            results.push(result);
            if !sustained {
                break;
            }
        }
        anyhow::Ok(())
    };
    let outcome = outcome.await;
    shared.stop.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sessions.is_empty() && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_secs(1), sessions.join_next()).await;
    }
    sessions.abort_all();
    outcome?;
    Ok(results)
}

/// A level holds when the added p99 is within the limit, every round trip happened and nothing failed.
pub fn sustained(level: &Level, direct_p99_us: f64) -> bool {
    level.p99_us - direct_p99_us < ADDED_P99_LIMIT_US && level.delivered >= 0.95 && level.failed == 0
}

async fn session(mut link: Link, shared: Arc<Shared>, offset: Duration) {
    let message = vec![0x33_u8; MESSAGE];
    tokio::time::sleep(offset).await;
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shared.stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let start = Instant::now();
        let exchange = async {
            link.send(&message).await?;
            link.recv_exact(MESSAGE as u64).await
        };
        match tokio::time::timeout(Duration::from_secs(10), exchange).await {
            Ok(Ok(())) => {
                if shared.recording.load(Ordering::Relaxed) {
                    let micros = start.elapsed().as_secs_f64() * 1e6;
                    shared.samples.lock().unwrap_or_else(|e| e.into_inner()).push(micros);
                }
            }
            _ => {
                shared.failed.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
    link.close().await;
}
