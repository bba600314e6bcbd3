//! `cargo xtask bench`: the relay's WebSocket↔TCP pipe against direct TCP (the limit), websockify and
//! socat on the same loopback workstations, printed as one markdown table (also written to
//! `~/.cache/homedesk/bench/latest.md`). A benchmark, not a test: nothing here asserts timings.
//!
//! Order: tools (socat via apt-get, websockify in a venv), the in-process workstations, the relay as a
//! child process (`relay serve` from the release build beside this binary, or `$HOMEDESK_RELAY_BIN`),
//! the peers, then concurrent sessions on the fresh relay, then throughput and round trips per system.
//! Every child process is killed when its guard drops, on success and on error.
//!
//! `HOMEDESK_BENCH_SESSIONS=250,500,…` overrides the concurrency levels (`0` skips that part).
//! Full sign-ins (password + TOTP code) at a steady 50 per second run on the same relay after the pipe
//! figures (`login.rs`); `HOMEDESK_BENCH_ONLY=login` runs only the relay and that part.
//! The brute-force limiter's flood (a million failed sign-ins from distinct addresses, `limiter.rs`) runs
//! last; `HOMEDESK_BENCH_FLOOD=N` changes its size, `HOMEDESK_BENCH_ONLY=limiter` runs only that part.
//! The decode and paint rows (`decode.rs`) need the recordings and the browser's figures `cargo xtask
//! bench` makes first; `HOMEDESK_BENCH_ONLY=decode` prints only them.

mod bundle;
mod concurrency;
mod decode;
mod first_frame;
mod limiter;
mod link;
mod login;
mod measure;
mod peers;
mod process;
mod record;
mod relay;
mod report;
mod systems;
mod workstation;

use anyhow::{bail, Context, Result};
use measure::percentile;
use report::Row;
use std::path::PathBuf;
use std::process::ExitCode;
use systems::System;

const DEFAULT_LEVELS: &[usize] = &[250, 500, 1_000, 2_000, 3_000, 4_000];

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Figures of one system.
struct Figures {
    name: String,
    one_way: f64,
    echo: f64,
    p50: f64,
    p99: f64,
}

async fn run() -> Result<()> {
    let cache = cache_dir();
    if let Some(dir) = record_dir() {
        let wallpapers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../portal-assets/backgrounds");
        return record::record(&dir, &wallpapers);
    }
    let bench_dir = cache.join("bench");
    let run_dir = bench_dir.join("run");
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;

    if std::env::var("HOMEDESK_BENCH_ONLY").as_deref() == Ok("decode") {
        let recordings = std::env::var_os("HOMEDESK_BENCH_RECORDINGS").map(PathBuf::from);
        let (rows, notes) = decode::rows(recordings.as_deref())?;
        println!("{}", report::render(&rows, &notes));
        return Ok(());
    }
    if std::env::var("HOMEDESK_BENCH_ONLY").as_deref() == Ok("limiter") {
        let flood = limiter_flood(&run_dir).await?;
        let table = report::render(&limiter_rows(&flood), &limiter_notes(&flood));
        println!("{table}");
        return Ok(());
    }
    let relay_bin = relay_binary()?;
    if std::env::var("HOMEDESK_BENCH_ONLY").as_deref() == Ok("login") {
        let targets = workstation::start().await?;
        let relay = relay::Relay::start(&relay_bin, &run_dir.join("data"), &run_dir.join("relay.log"), targets)
            .await
            .context("relay")?;
        let logins = sign_ins(&relay).await?;
        println!("{}", report::render(&login_rows(&logins), &login_notes(&logins)));
        return Ok(());
    }
    peers::install_socat().context("socat")?;
    let websockify = peers::install_websockify(&cache.join("bench-venv")).context("websockify")?;

    let targets = workstation::start().await?;
    let mut relay = relay::Relay::start(&relay_bin, &run_dir.join("data"), &run_dir.join("relay.log"), targets)
        .await
        .context("relay")?;
    let tls = link::tls_config();
    let websockify = peers::start_websockify(
        &websockify,
        targets,
        &relay.certificate(),
        &relay.private_key(),
        &run_dir.join("websockify.log"),
    )
    .context("websockify")?;
    let socat = peers::start_socat(targets, &run_dir.join("socat.log")).context("socat")?;

    let systems = [
        System::Direct(targets),
        System::Homedesk(&relay),
        System::Websockify(&websockify, tls.clone()),
        System::Socat(&socat),
    ];
    // A first direct round-trip run gives the baseline of the concurrency part.
    let direct_rtt = measure::round_trips(&systems[0]).await.context("direct round trips")?;
    let levels = levels()?;
    let concurrency = if levels.is_empty() {
        Vec::new()
    } else {
        eprintln!("bench: concurrent sessions at 200 kbit/s each through the relay");
        concurrency::run(&relay, &levels, percentile(&direct_rtt, 99.0)).await.context("concurrent sessions")?
    };

    let mut figures = Vec::new();
    for system in &systems {
        eprintln!("bench: {}", system.name());
        let name = system.name();
        let one_way = measure::one_way(system).await.with_context(|| format!("one-way throughput of {name}"))?;
        let echo = measure::echo(system).await.with_context(|| format!("echo throughput of {name}"))?;
        let rtt = measure::round_trips(system).await.with_context(|| format!("round trips of {name}"))?;
        let (p50, p99) = (percentile(&rtt, 50.0), percentile(&rtt, 99.0));
        eprintln!("bench:   {one_way:.0} MB/s one way, {echo:.0} MB/s echo, RTT p50 {p50:.1} µs p99 {p99:.1} µs");
        figures.push(Figures { name, one_way, echo, p50, p99 });
    }
    relay.check_alive()?;
    let logins = sign_ins(&relay).await?;
    relay.check_alive()?;

    let bundle = bundle::measure(&bundle::dist_dir(&cache)).context("client bundle size")?;
    let console = bundle::measure(&bundle::dist_dir(&cache).join("admin-console")).context("console bundle size")?;
    let mut rows = rows(&figures, &concurrency, percentile(&direct_rtt, 99.0));
    let (frame_rows, frame_notes) = first_frame::rows().context("first-frame figures")?;
    rows.extend(frame_rows);
    let recordings = std::env::var_os("HOMEDESK_BENCH_RECORDINGS").map(PathBuf::from);
    let (decode_rows, decode_notes) = decode::rows(recordings.as_deref()).context("decode and paint figures")?;
    rows.extend(decode_rows);
    rows.extend(bundle_rows(bundle.as_ref()));
    rows.extend(console_rows(console.as_ref()));
    rows.extend(login_rows(&logins));
    let mut notes = notes(&figures);
    notes.extend(login_notes(&logins));
    notes.extend(frame_notes);
    notes.extend(decode_notes);
    match &bundle {
        Some(bundle) => notes.push(format!(
            "Client bundle: the .wasm and .js in {} (MB = 10^6 bytes; gzip -9, brotli -q 11), what a portal \
             user downloads; the admin console is a bundle of its own (admin-console/).",
            bundle.dir.display()
        )),
        None => notes.push(format!(
            "Client bundle not measured: no client built in {} (cargo xtask client).",
            bundle::dist_dir(&cache).display()
        )),
    }
    let flood = limiter_flood(&run_dir).await?;
    rows.extend(limiter_rows(&flood));
    notes.extend(limiter_notes(&flood));
    let table = report::render(&rows, &notes);
    println!("{table}");
    let latest = bench_dir.join("latest.md");
    report::write(&table, &latest)?;
    eprintln!("bench: written to {}", latest.display());
    Ok(())
}

fn rows(figures: &[Figures], levels: &[concurrency::Level], direct_p99: f64) -> Vec<Row> {
    let (direct, ours, peers) = (&figures[0], &figures[1], &figures[2..]);
    let mut rows = Vec::new();
    let throughput = |rows: &mut Vec<Row>, metric: &str, value: fn(&Figures) -> f64| {
        rows.push(Row {
            metric: metric.into(),
            homedesk: value(ours),
            peer: direct.name.clone(),
            peer_figure: value(direct),
            met: Some(value(ours) >= 0.7 * value(direct)),
            target: "≥ 0.7× direct".into(),
        });
        for peer in peers {
            rows.push(Row {
                metric: metric.into(),
                homedesk: value(ours),
                peer: peer.name.clone(),
                peer_figure: value(peer),
                met: Some(value(ours) > value(peer)),
                target: "ahead of peer".into(),
            });
        }
    };
    let one_way = format!("throughput MB/s, {} MiB workstation→browser", measure::ONE_WAY_BYTES >> 20);
    throughput(&mut rows, &one_way, |f| f.one_way);
    let echo = format!("throughput MB/s, {} MiB echoed (both ways)", measure::ECHO_BYTES >> 20);
    throughput(&mut rows, &echo, |f| f.echo);

    let latency = |rows: &mut Vec<Row>, label: &str, limit: f64, value: fn(&Figures) -> f64| {
        rows.push(Row {
            metric: format!("RTT {label} µs, {} B (lower is better)", measure::MESSAGE),
            homedesk: value(ours),
            peer: direct.name.clone(),
            peer_figure: value(direct),
            met: None,
            target: "–".into(),
        });
        for peer in peers {
            let added = value(ours) - value(direct);
            rows.push(Row {
                metric: format!("added RTT {label} µs (lower is better)"),
                homedesk: added,
                peer: peer.name.clone(),
                peer_figure: value(peer) - value(direct),
                met: Some(added <= limit),
                target: format!("≤ {limit:.0} µs"),
            });
        }
    };
    latency(&mut rows, "p50", 50.0, |f| f.p50);
    latency(&mut rows, "p99", 200.0, |f| f.p99);

    if !levels.is_empty() {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let best = levels.iter().rfind(|level| concurrency::sustained(level, direct_p99));
        let sessions = best.map_or(0, |level| level.sessions);
        let tried = levels.last().map_or(0, |level| level.sessions);
        rows.push(Row {
            metric: format!(
                "sessions per core at 200 kbit/s, p99 added < 5 ms ({sessions} sustained on {cores} cores, {tried} tried)"
            ),
            homedesk: sessions as f64 / cores as f64,
            peer: "target".into(),
            peer_figure: 2_000.0,
            met: Some(sessions / cores >= 2_000),
            target: "≥ 2,000".into(),
        });
        let measured = best.or(levels.last()).expect("levels is not empty");
        // The relay's own CPU cost of one 200 kbit/s session, from the round trips that actually happened:
        // on a shared machine the clients (and other processes) may not keep every session at full rate.
        let per_relay_core = measured.sessions as f64 * measured.delivered / measured.relay_cores.max(1e-3);
        rows.push(Row {
            metric: format!(
                "sessions per core of relay CPU only ({} sessions, {:.0}% of their round trips delivered, \
                 used {:.2} cores of relay CPU; bench clients and their TLS {:.2} cores)",
                measured.sessions,
                measured.delivered * 100.0,
                measured.relay_cores,
                measured.bench_cores
            ),
            homedesk: per_relay_core,
            peer: "target".into(),
            peer_figure: 2_000.0,
            met: Some(per_relay_core >= 2_000.0),
            target: "≥ 2,000 per relay core".into(),
        });
        let per_session = measured.rss_delta_kib as f64 / measured.sessions as f64;
        rows.push(Row {
            metric: format!("relay RSS KiB per session (at {} sessions, lower is better)", measured.sessions),
            homedesk: per_session,
            peer: "target".into(),
            peer_figure: 32.0,
            met: Some(per_session <= 32.0),
            target: "≤ 32 KiB".into(),
        });
    }
    rows
}

async fn sign_ins(relay: &relay::Relay) -> Result<login::Logins> {
    eprintln!("bench: full sign-ins (argon2id password + TOTP code) at {} per second", login::rate());
    let logins = login::run(relay).await.context("sign-ins")?;
    eprintln!(
        "bench:   p50 {:.1} ms, p99 {:.1} ms ({} failed); argon2id alone p50 {:.1} ms",
        logins.full_p50, logins.full_p99, logins.failed, logins.argon2_p50
    );
    Ok(logins)
}

/// A full sign-in against argon2id alone (the floor) and against the p99 target.
fn login_rows(logins: &login::Logins) -> Vec<Row> {
    let rate = login::rate();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let need = f64::from(rate) / cores as f64;
    vec![
        Row {
            metric: format!("sign-in p50 ms, password + TOTP at {rate}/s (lower is better)"),
            homedesk: logins.full_p50,
            peer: "argon2id verify alone".into(),
            peer_figure: logins.argon2_p50,
            met: None,
            target: "–".into(),
        },
        Row {
            metric: format!("sign-in p99 ms, password + TOTP at {rate}/s (lower is better)"),
            homedesk: logins.full_p99,
            peer: "target".into(),
            peer_figure: 250.0,
            met: Some(logins.full_p99 <= 250.0 && logins.failed == 0),
            target: format!("≤ 250 ms at {rate}/s"),
        },
        Row {
            metric: "relay CPU ms per sign-in (lower is better)".into(),
            homedesk: logins.relay_cpu_ms,
            peer: "argon2id verify alone".into(),
            peer_figure: logins.argon2_p50,
            met: None,
            target: "–".into(),
        },
        Row {
            metric: format!("sign-ins per second one relay core can serve (1000 / CPU ms; {rate}/s on {cores} cores needs {need:.0})"),
            homedesk: 1000.0 / logins.relay_cpu_ms.max(1e-3),
            peer: "target".into(),
            peer_figure: need,
            met: Some(1000.0 / logins.relay_cpu_ms.max(1e-3) >= need),
            target: format!("≥ {need:.0} per core"),
        },
    ]
}

fn login_notes(logins: &login::Logins) -> Vec<String> {
    vec![format!(
        "Sign-ins: open loop (a new one every {} ms whatever the earlier ones do), each a different local user \
         with an enrolled authenticator app; login and code on fresh HTTPS connections (TLS handshakes \
         included); {} of them failed. argon2id alone (m=19 MiB, t=2, p=1, in the bench process, one at a \
         time): p50 {:.1} ms, p99 {:.1} ms.",
        1000 / login::rate(),
        logins.failed,
        logins.argon2_p50,
        logins.argon2_p99
    )]
}

/// Raw, gzip and brotli sizes of the client against the 1.5 MB target.
fn bundle_rows(bundle: Option<&bundle::Bundle>) -> Vec<Row> {
    const TARGET_MB: f64 = 1.5;
    let Some(bundle) = bundle else { return Vec::new() };
    [("raw", bundle.raw), ("gzip", bundle.gzip), ("brotli", bundle.brotli)]
        .into_iter()
        .map(|(label, bytes)| Row {
            metric: format!("client bundle MB, .wasm + .js, {label} (lower is better)"),
            homedesk: bytes as f64 / 1e6,
            peer: "target".into(),
            peer_figure: TARGET_MB,
            met: Some(bytes as f64 / 1e6 <= TARGET_MB),
            target: "≤ 1.5 MB".into(),
        })
        .collect()
}

/// The admin console's own bundle: only administrators download it (no target; for the record).
fn console_rows(console: Option<&bundle::Bundle>) -> Vec<Row> {
    let Some(console) = console else { return Vec::new() };
    vec![Row {
        metric: "admin console bundle MB, .wasm + .js, brotli (administrators only)".into(),
        homedesk: console.brotli as f64 / 1e6,
        peer: "raw".into(),
        peer_figure: console.raw as f64 / 1e6,
        met: None,
        target: "–".into(),
    }]
}

fn notes(figures: &[Figures]) -> Vec<String> {
    let mut notes = vec![
        "Everything on 127.0.0.1 of one machine: the bench client, the workstations (in-process TCP servers), \
         the relay (release build, child process) and the peers share the cores."
            .to_owned(),
        "homedesk and websockify: WebSocket over TLS (websockify with the relay's certificate, --ssl-only); \
         socat and direct: plain TCP. Throughput is the median of 3 runs; RTT over 20,000 round trips after \
         1,000 warm-up; added = system − direct."
            .to_owned(),
    ];
    if let Some(direct) = figures.first() {
        notes.push(format!("Direct RTT: p50 {:.1} µs, p99 {:.1} µs.", direct.p50, direct.p99));
    }
    notes
}

fn levels() -> Result<Vec<usize>> {
    match std::env::var("HOMEDESK_BENCH_SESSIONS") {
        Ok(text) => {
            let levels: Vec<usize> = text
                .split(',')
                .map(|part| part.trim().parse().with_context(|| format!("bad HOMEDESK_BENCH_SESSIONS `{text}`")))
                .collect::<Result<_>>()?;
            Ok(levels.into_iter().filter(|&n| n > 0).collect())
        }
        Err(_) => Ok(DEFAULT_LEVELS.to_vec()),
    }
}

/// `$HOMEDESK_RELAY_BIN`, else `relay` beside this binary (both in `target/release`).
fn relay_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("HOMEDESK_RELAY_BIN") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()?.with_file_name("relay"),
    };
    if !path.is_file() {
        bail!("no relay binary at {} (cargo build --release -p homedesk-relay)", path.display());
    }
    Ok(path)
}

/// `$HOMEDESK_CACHE`, default `~/.cache/homedesk` (as in xtask).
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HOMEDESK_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("homedesk")
}

async fn limiter_flood(run_dir: &std::path::Path) -> Result<limiter::Flood> {
    let attempts = limiter::attempts()?;
    eprintln!("bench: brute-force limiter, {attempts} failed sign-ins from distinct addresses");
    limiter::run(&run_dir.join("limiter"), attempts).await.context("limiter flood")
}

/// What the WAL may reach during the flood: the relay's `journal_size_limit` (64 MiB = 67.1 MB) plus
/// the writes of one minute in which no checkpoint could restart the log.
const WAL_BOUND_MB: f64 = 128.0;

fn limiter_rows(flood: &limiter::Flood) -> Vec<Row> {
    let n = flood.attempts;
    vec![
        Row {
            metric: format!("limiter: failure rows stored after {n} failed sign-ins from distinct random IPs"),
            homedesk: flood.rows_at_end as f64,
            peer: "row cap".into(),
            peer_figure: flood.cap as f64,
            met: Some(flood.rows_at_end <= flood.cap),
            target: format!("≤ {} (cap)", flood.cap),
        },
        Row {
            metric: format!("limiter: database MB (file + WAL) after {n} vs after {} failures", n / 4),
            homedesk: flood.db_mb_at_end,
            peer: "at a quarter".into(),
            peer_figure: flood.db_mb_at_quarter,
            met: Some(flood.db_mb_at_end <= flood.db_mb_at_quarter * 1.25 + 1.0),
            target: "flat (≤ 1.25× + 1 MB)".into(),
        },
        Row {
            metric: format!(
                "limiter: WAL MB at the end vs its peak before a housekeeping pass ({} passes, every {} s; {:.1} MB after \
                 the next pass)",
                flood.housekeeping_passes,
                homedesk_relay::server::HOUSEKEEPING_INTERVAL.as_secs(),
                flood.wal_mb_after_pass
            ),
            homedesk: flood.wal_mb_at_end,
            peer: "peak".into(),
            peer_figure: flood.wal_mb_peak,
            met: Some(flood.wal_mb_peak <= WAL_BOUND_MB),
            target: format!("peak ≤ {WAL_BOUND_MB} MB"),
        },
        Row {
            metric: format!("limiter: process RSS MB after {n} vs after {} failures", n / 4),
            homedesk: flood.rss_mb_at_end,
            peer: "at a quarter".into(),
            peer_figure: flood.rss_mb_at_quarter,
            met: Some(flood.rss_mb_at_end <= flood.rss_mb_at_quarter + 16.0),
            target: "flat (≤ +16 MB)".into(),
        },
    ]
}

fn limiter_notes(flood: &limiter::Flood) -> Vec<String> {
    vec![format!(
        "Limiter flood: {} failures in {:.0} s ({:.0}/s, 4 concurrent tasks, clock standing still so only the row cap \
         bounds the state); {} rows after a quarter; process RSS {:.1} MB before the flood. In-process LoginGuard on \
         SQLite: the HTTP path would measure argon2, not the limiter.",
        flood.attempts,
        flood.seconds,
        flood.attempts as f64 / flood.seconds.max(1e-9),
        flood.rows_at_quarter,
        flood.rss_mb_before,
    )]
}

/// `homedesk-bench record DIR`: only record the workstation's updates for the decode rows (`record.rs`).
fn record_dir() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next()) {
        (Some(command), Some(dir)) if command == "record" => Some(PathBuf::from(dir)),
        _ => None,
    }
}
