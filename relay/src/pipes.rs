//! Registry of the live tunnels (who is connected to which workstation, since when, how many bytes).
//!
//! The tunnel registers itself for its lifetime through a [`PipeGuard`]; the admin console (and the
//! tests) read a [`PipeRegistry::snapshot`]. Counters are atomics so that the pipe never takes a lock
//! on its hot path.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// One live pipe's identity and counters.
#[derive(Debug)]
pub struct PipeStats {
    pub id: u64,
    pub username: String,
    pub workstation: String,
    pub started_at: SystemTime,
    started: Instant,
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
}

/// A copy of one entry, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeInfo {
    pub id: u64,
    pub username: String,
    pub workstation: String,
    pub started_at: SystemTime,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: AtomicU64,
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
    pub fn register(&self, username: &str, workstation: &str) -> PipeGuard {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let stats = Arc::new(PipeStats {
            id,
            username: username.to_owned(),
            workstation: workstation.to_owned(),
            started_at: SystemTime::now(),
            started: Instant::now(),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        });
        self.lock().insert(id, Arc::clone(&stats));
        PipeGuard { registry: self.clone(), stats }
    }

    pub fn snapshot(&self) -> Vec<PipeInfo> {
        self.lock()
            .values()
            .map(|s| PipeInfo {
                id: s.id,
                username: s.username.clone(),
                workstation: s.workstation.clone(),
                started_at: s.started_at,
                bytes_up: s.bytes_up(),
                bytes_down: s.bytes_down(),
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<PipeStats>>> {
        // A panic elsewhere while holding the lock cannot leave the map inconsistent: keep going.
        self.inner.pipes.lock().unwrap_or_else(PoisonError::into_inner)
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
        let a = registry.register("alice", "pc-a");
        let b = registry.register("bob", "pc-b");
        a.stats().add_up(5);
        a.stats().add_down(7);
        let snapshot = registry.snapshot();
        assert_eq!(snapshot.len(), 2);
        assert_eq!((snapshot[0].bytes_up, snapshot[0].bytes_down), (5, 7));
        drop(a);
        assert_eq!(registry.snapshot().len(), 1);
        assert_eq!(registry.snapshot()[0].username, "bob");
        drop(b);
        assert!(registry.is_empty());
    }
}
