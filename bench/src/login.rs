//! Full sign-ins at a steady rate: `POST /api/login` (argon2id) then `POST /api/2fa/verify` (a TOTP code),
//! each pair on fresh HTTPS connections, as a browser that opens the portal does. The target is
//! p99 ≤ 250 ms at 50 sign-ins per second.
//!
//! Open loop: a sign-in starts every 1/rate seconds whether or not the earlier ones finished, so a slow
//! relay shows as latency instead of silently lowering the rate (no coordinated omission). Every sign-in
//! is a different user: a TOTP code is single-use per user and time step, and at 50/s one user would
//! reuse a step. The users are created straight in the relay's database (one argon2 hash shared by all,
//! 2FA enrolled with a secret the bench keeps) because creating them through the API would cost an
//! argon2 run each. The reference figure is argon2id verification alone, in this process, measured in
//! the same run: the floor a sign-in cannot go below.

use crate::measure::percentile;
use crate::process::cpu_seconds;
use crate::relay::Relay;
use anyhow::{bail, Context, Result};
use homedesk_relay::auth::{hash_password, Passwords};
use homedesk_relay::store::Store;
use homedesk_relay::totp;
use homedesk_relay::twofa::{self, MemberKind, SecretBox};
use std::time::{Duration, Instant};

/// Sign-ins per second (the rate; `HOMEDESK_BENCH_LOGIN_RATE` overrides it to find the knee).
pub fn rate() -> u32 {
    std::env::var("HOMEDESK_BENCH_LOGIN_RATE").ok().and_then(|r| r.parse().ok()).filter(|&r| r > 0).unwrap_or(50)
}
/// Measured sign-ins (20 s at [`rate`]), after [`WARM_UP`] that are not counted.
const MEASURED: usize = 1_000;
const WARM_UP: usize = 50;
const PASSWORD: &str = "homedesk bench sign-in password";

/// Latencies in milliseconds.
pub struct Logins {
    pub full_p50: f64,
    pub full_p99: f64,
    pub argon2_p50: f64,
    pub argon2_p99: f64,
    /// The relay process's CPU time (user + system) per measured sign-in, whatever else ran on the machine.
    pub relay_cpu_ms: f64,
    pub failed: usize,
}

/// A user made for the bench: name, TOTP secret and the code's shape (the relay's 2FA settings).
struct BenchUser {
    name: String,
    secret: Vec<u8>,
    algorithm: totp::Algorithm,
    digits: totp::Digits,
}

pub async fn run(relay: &Relay) -> Result<Logins> {
    let users = create_users(relay, WARM_UP + MEASURED).await.context("creating the sign-in users")?;
    let argon2 = argon2_alone(200).await?;
    let (warm_up, measured) = users.split_at(WARM_UP);
    steady(relay, warm_up).await?;
    let cpu_before = cpu_seconds(relay.pid())?;
    let (mut latencies, failed) = steady(relay, measured).await?;
    let relay_cpu_ms = (cpu_seconds(relay.pid())? - cpu_before) * 1e3 / measured.len() as f64;
    latencies.sort_by(f64::total_cmp);
    Ok(Logins {
        full_p50: percentile(&latencies, 50.0),
        full_p99: percentile(&latencies, 99.0),
        argon2_p50: percentile(&argon2, 50.0),
        argon2_p99: percentile(&argon2, 99.0),
        relay_cpu_ms,
        failed,
    })
}

/// Local users with 2FA by authenticator app, already enrolled (their last accepted step is 0, so every
/// current code is fresh). The relay reads the 2FA settings and the key file at each sign-in.
async fn create_users(relay: &Relay, count: usize) -> Result<Vec<BenchUser>> {
    let store = Store::open(&relay.data_dir.join("homedesk.db")).await?;
    let secrets = SecretBox::load_or_create(&relay.data_dir.join("twofa.key"))?;
    let mut settings = twofa::settings_load(&store).await?;
    settings.enabled = true;
    twofa::settings_store(&store, &settings).await?;
    let hash = tokio::task::spawn_blocking(|| hash_password(PASSWORD)).await??;
    let now = unix_ms();
    let mut users = Vec::with_capacity(count);
    for n in 0..count {
        let name = format!("signin-{n}");
        let id = store.create_user(&name, &hash, false).await?;
        twofa::add_member(&store, MemberKind::User, &name).await?;
        let secret = totp::new_secret();
        let sealed = secrets.seal(id, &secret)?;
        store.twofa_set_secret(id, &sealed, settings.algorithm.uri_name(), now).await?;
        if !store.twofa_accept_step(id, &sealed, 0, now).await? {
            bail!("could not enrol {name}");
        }
        users.push(BenchUser { name, secret, algorithm: settings.algorithm, digits: settings.digits });
    }
    store.close().await;
    Ok(users)
}

/// argon2id verifications one after another through the relay's own `Passwords`, in ms.
async fn argon2_alone(rounds: usize) -> Result<Vec<f64>> {
    let passwords = tokio::task::spawn_blocking(Passwords::new).await??;
    let hash = tokio::task::spawn_blocking(|| hash_password(PASSWORD)).await??;
    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        if !passwords.verify(Some(hash.clone()), PASSWORD).await? {
            bail!("argon2 verification failed");
        }
        latencies.push(start.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// One sign-in per user at [`rate`] per second; returns the latencies of the successful ones (ms) and
/// the number that failed.
async fn steady(relay: &Relay, users: &[BenchUser]) -> Result<(Vec<f64>, usize)> {
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for user in users {
        ticks.tick().await;
        let relay = relay.signer();
        let (name, secret, algorithm, digits) = (user.name.clone(), user.secret.clone(), user.algorithm, user.digits);
        tasks.spawn(async move {
            let start = Instant::now();
            let result = relay.sign_in_with_code(&name, PASSWORD, || code_now(&secret, algorithm, digits)).await;
            result.map(|()| start.elapsed().as_secs_f64() * 1e3).with_context(|| format!("sign-in of {name}"))
        });
    }
    let (mut latencies, mut failed) = (Vec::with_capacity(users.len()), 0);
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok(ms) => latencies.push(ms),
            Err(error) => {
                if failed == 0 {
                    eprintln!("bench:   first failed sign-in: {error:#}");
                }
                failed += 1;
            }
        }
    }
    Ok((latencies, failed))
}

/// The code an authenticator app shows now.
fn code_now(secret: &[u8], algorithm: totp::Algorithm, digits: totp::Digits) -> String {
    let now = u64::try_from(unix_ms() / 1000).unwrap_or(0);
    totp::generate(secret, totp::time_step(now), algorithm, digits)
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
