//! Registry of the live tunnels (who is connected to which workstation, since when, how many bytes,
//! through the browser's WebSocket or a native RDP client).
//!
//! The tunnel registers itself for its lifetime through a [`PipeGuard`]; the admin console (and the
//! tests) read a [`PipeRegistry::snapshot`]. Counters are atomics so that the pipe never takes a lock
//! on its hot path. Each pipe also records its client IP, so that blocking an IP (brute-force
//! defence) can close that IP's live pipes through [`PipeRegistry::close_ip`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// How the client reached the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeKind {
    /// The browser client through `/api/tunnel` ([`crate::tunnel`]).
    WebSocket,
    /// A native RDP client on the portal's port ([`crate::native`]).
    Native,
}

impl std::fmt::Display for PipeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PipeKind::WebSocket => "websocket",
            PipeKind::Native => "native",
        })
    }
}

/// One live pipe's identity and counters.
#[derive(Debug)]
pub struct PipeStats {
    pub id: u64,
    pub kind: PipeKind,
    pub username: String,
    pub workstation: String,
    /// The client IP (behind trusted proxies, the forwarded one).
    pub ip: IpAddr,
    pub started_at: SystemTime,
    started: Instant,
    /// Registration order (ids are random): snapshots list the oldest first.
    order: u64,
    /// Cancelled when the relay wants this pipe closed early; the close code and reason are set first.
    close: CancellationToken,
    close_request: OnceLock<(u16, String)>,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl PipeStats {
    /// Bytes from the browser to the workstation.
    pub fn bytes_up(&self) -> u64 {
        self.bytes_up.load(Ordering::Relaxed)
    }
    /// Bytes from the workstation to the browser.
    pub fn bytes_down(&self) -> u64 {
        self.bytes_down.load(Ordering::Relaxed)
    }
    pub fn add_up(&self, n: usize) {
        self.bytes_up.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn add_down(&self, n: usize) {
        self.bytes_down.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn duration(&self) -> Duration {
        self.started.elapsed()
    }
    /// Asks the pipe to close with this code and reason (the first request wins).
    pub fn request_close(&self, code: u16, reason: String) {
        let _ = self.close_request.set((code, reason));
        self.close.cancel();
    }
    fn info(&self) -> PipeInfo {
        PipeInfo {
            id: self.id,
            kind: self.kind,
            username: self.username.clone(),
            workstation: self.workstation.clone(),
            ip: self.ip,
            started_at: self.started_at,
            bytes_up: self.bytes_up(),
            bytes_down: self.bytes_down(),
        }
    }
    /// Resolves once [`PipeStats::request_close`] was called; returns its code and reason.
    pub async fn close_requested(&self) -> (u16, &str) {
        self.close.cancelled().await;
        match self.close_request.get() {
            Some((code, reason)) => (*code, reason.as_str()),
            None => (1011, "closed by the relay"),
        }
    }
}

/// A copy of one entry, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeInfo {
    pub id: u64,
    pub kind: PipeKind,
    pub username: String,
    pub workstation: String,
    pub ip: IpAddr,
    pub started_at: SystemTime,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

#[derive(Debug, Default)]
struct Inner {
    registered: AtomicU64,
    pipes: Mutex<BTreeMap<u64, Arc<PipeStats>>>,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PipeRegistry {
    inner: Arc<Inner>,
}

impl PipeRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pipe; it is removed when the returned guard is dropped.
    pub fn register(
        &self,
        kind: PipeKind,
        username: &str,
        workstation: &str,
        ip: IpAddr,
    ) -> PipeGuard {
        // A random id below 2^53 (exact as a JavaScript number), so that the tunnels of all relays on one
        // database have distinct ids ([`crate::tunnel_sync`]): the odds of two relays drawing the same
        // one while both tunnels live are negligible, and this relay never holds one twice.
        let mut pipes = self.lock();
        let id = loop {
            let id = rand::random::<u64>() >> 11;
            if id != 0 && !pipes.contains_key(&id) {
                break id;
            }
        };
        let stats = Arc::new(PipeStats {
            id,
            kind,
            username: username.to_owned(),
            workstation: workstation.to_owned(),
            ip,
            started_at: SystemTime::now(),
            started: Instant::now(),
            order: self.inner.registered.fetch_add(1, Ordering::Relaxed),
            close: CancellationToken::new(),
            close_request: OnceLock::new(),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        });
        pipes.insert(id, Arc::clone(&stats));
        drop(pipes);
        PipeGuard {
            registry: self.clone(),
            stats,
        }
    }

    /// Every live pipe, in the order they were registered.
    pub fn snapshot(&self) -> Vec<PipeInfo> {
        let mut pipes: Vec<Arc<PipeStats>> = self.lock().values().cloned().collect();
        pipes.sort_by_key(|s| s.order);
        pipes.iter().map(|s| s.info()).collect()
    }

    /// Asks every live pipe of `ip` to close with `code` and `reason`; returns how many.
    pub fn close_ip(&self, ip: IpAddr, code: u16, reason: &str) -> usize {
        let ip = ip.to_canonical();
        let matching: Vec<Arc<PipeStats>> = self
            .lock()
            .values()
            .filter(|s| s.ip.to_canonical() == ip)
            .cloned()
            .collect();
        for stats in &matching {
            stats.request_close(code, reason.to_owned());
        }
        matching.len()
    }

    /// Asks pipe `id` to close with `code` and `reason` (admin console); `None` when it is gone.
    pub fn close_id(&self, id: u64, code: u16, reason: &str) -> Option<PipeInfo> {
        let stats = self.lock().get(&id).cloned()?;
        stats.request_close(code, reason.to_owned());
        Some(stats.info())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<PipeStats>>> {
        // A panic elsewhere while holding the lock cannot leave the map inconsistent: keep going.
        self.inner
            .pipes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps a pipe listed while it lives.
#[derive(Debug)]
pub struct PipeGuard {
    registry: PipeRegistry,
    stats: Arc<PipeStats>,
}

impl PipeGuard {
    pub fn stats(&self) -> &PipeStats {
        &self.stats
    }
}

impl Drop for PipeGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.stats.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_lifetime() {
        let registry = PipeRegistry::new();
        let a = registry.register(
            PipeKind::WebSocket,
            "alice",
            "pc-a",
            IpAddr::from([192, 0, 2, 1]),
        );
        let b = registry.register(
            PipeKind::Native,
            "bob",
            "pc-b",
            IpAddr::from([192, 0, 2, 2]),
        );
        a.stats().add_up(5);
        a.stats().add_down(7);
        let snapshot = registry.snapshot();
        assert_eq!(snapshot.len(), 2);
        assert_eq!((snapshot[0].bytes_up, snapshot[0].bytes_down), (5, 7));
        drop(a);
        assert_eq!(registry.snapshot().len(), 1);
        assert_eq!(registry.snapshot()[0].username, "bob");
        assert_eq!(registry.snapshot()[0].kind.to_string(), "native");
        drop(b);
        assert!(registry.is_empty());
    }

    #[tokio::test]
    async fn close_ip_reaches_only_that_ips_pipes() {
        let registry = PipeRegistry::new();
        let a = registry.register(
            PipeKind::WebSocket,
            "alice",
            "pc-a",
            "::ffff:192.0.2.1".parse().unwrap(),
        );
        let b = registry.register(
            PipeKind::Native,
            "bob",
            "pc-b",
            IpAddr::from([192, 0, 2, 2]),
        );
        assert_eq!(
            registry.close_ip(IpAddr::from([192, 0, 2, 1]), 4429, "blocked"),
            1
        );
        assert_eq!(a.stats().close_requested().await, (4429, "blocked"));
        assert!(
            tokio::time::timeout(Duration::from_millis(20), b.stats().close_requested())
                .await
                .is_err()
        );
    }
}
