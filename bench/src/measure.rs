//! The measurements, identical for every system: one-way throughput (workstation → browser, the
//! direction of desktop updates), echo throughput (both ways at once) and small-message round trips.

use crate::systems::System;
use crate::workstation::Kind;
use anyhow::{Context, Result};
use std::time::{Duration, Instant};

/// Bytes the source sends per one-way run.
pub const ONE_WAY_BYTES: u64 = 256 * 1024 * 1024;
/// Bytes sent (and echoed) per echo run.
pub const ECHO_BYTES: u64 = 64 * 1024 * 1024;
/// One-way and echo runs per system; the median counts.
pub const RUNS: usize = 3;
pub const MESSAGE: usize = 64;
pub const WARM_UP: usize = 1_000;
pub const ROUND_TRIPS: usize = 20_000;
/// Upper bound of any single run (a stuck peer fails the bench instead of hanging it).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Median MB/s (10^6 bytes) of the source's bytes arriving through `system`.
pub async fn one_way(system: &System<'_>) -> Result<f64> {
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let mut link = system.connect(Kind::Source).await?;
        let start = Instant::now();
        link.send(&ONE_WAY_BYTES.to_be_bytes()).await?;
        limit(link.recv_exact(ONE_WAY_BYTES)).await.context("one-way run")?;
        rates.push(ONE_WAY_BYTES as f64 / start.elapsed().as_secs_f64() / 1e6);
        link.close().await;
    }
    Ok(median(rates))
}

/// Median MB/s of bytes sent to the echo workstation and back, with at most `WINDOW` bytes in flight.
pub async fn echo(system: &System<'_>) -> Result<f64> {
    const CHUNK: usize = 16 * 1024;
    const WINDOW: u64 = 256 * 1024;
    let chunk = vec![0xa5_u8; CHUNK];
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let mut link = system.connect(Kind::Echo).await?;
        let start = Instant::now();
        let run = async {
            let (mut sent, mut received) = (0u64, 0u64);
            while received < ECHO_BYTES {
                while sent < ECHO_BYTES && sent - received < WINDOW {
                    link.send(&chunk).await?;
                    sent += CHUNK as u64;
                }
                let n = link.recv().await?;
                anyhow::ensure!(n > 0, "echo closed after {received} bytes");
                received += n as u64;
            }
            anyhow::Ok(())
        };
        limit(run).await.context("echo run")?;
        rates.push(ECHO_BYTES as f64 / start.elapsed().as_secs_f64() / 1e6);
        link.close().await;
    }
    Ok(median(rates))
}

/// Round-trip times of `MESSAGE`-byte messages to the echo workstation, in µs, sorted.
pub async fn round_trips(system: &System<'_>) -> Result<Vec<f64>> {
    let mut link = system.connect(Kind::Echo).await?;
    let message = [0x42_u8; MESSAGE];
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    let run = async {
        for i in 0..WARM_UP + ROUND_TRIPS {
            let start = Instant::now();
            link.send(&message).await?;
            link.recv_exact(MESSAGE as u64).await?;
            if i >= WARM_UP {
                times.push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
        anyhow::Ok(())
    };
    limit(run).await.context("round trips")?;
    link.close().await;
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// The value below which `p` percent of the sorted samples lie.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn limit<T>(run: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(RUN_LIMIT, run).await.context("run exceeded its time limit")?
}
