//! Makes the live tunnels of every relay sharing a database visible to all of them.
//!
//! A tunnel lives in the memory of the relay that pipes it ([`crate::pipes`]). For the admin console of
//! any relay to list it, disconnect it, and for a block decided on another relay to close it, each
//! serving relay runs [`run`]: every [`ServeConfig::tunnel_sync_interval`] it writes its tunnels to the
//! `live_tunnels` table, closes those another relay asked to close, and closes those whose client IP
//! another relay has blocked since. Rows not refreshed for [`stale_after`] belong to a relay that died
//! and are ignored.
//!
//! Invariant: a relay only writes its own rows (others only set `close_requested_at`), and acts only on
//! its own pipes.

use crate::bruteforce::SecurityError;
use crate::http::{self, AppState};
use crate::pipes::PipeInfo;
use crate::store::{self, LiveTunnelRow, Store, StoreError};
use crate::tunnel::close_code;
use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

/// How long a disconnect (console or CLI) waits for the owning relay to close a tunnel.
pub const CLOSE_WAIT: Duration = Duration::from_secs(15);

/// What asking another relay to close one of its tunnels came to.
pub enum RemoteClose {
    /// The owner closed it (its row is gone).
    Closed(LiveTunnelRow),
    /// No live tunnel has that id (ended, a dead relay's, or `own_relay`'s, which closes its own directly).
    Gone,
    /// The owner did not close it within [`CLOSE_WAIT`]; it will when it can.
    TimedOut(LiveTunnelRow),
}

/// Asks the relay that pipes tunnel `id` to close it (`close_requested_at`), then waits until its row
/// is gone: the shared disconnect of the console (for another relay's tunnel) and of `relay sessions`.
pub async fn close_remote(
    store: &Store,
    id: i64,
    interval: Duration,
    own_relay: Option<&str>,
) -> Result<RemoteClose, StoreError> {
    let Some(row) = store.live_tunnel(id, fresh_since(interval)).await? else {
        return Ok(RemoteClose::Gone);
    };
    if own_relay == Some(row.relay_id.as_str()) || !store.request_tunnel_close(id, store::unix_ms()).await? {
        return Ok(RemoteClose::Gone);
    }
    let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100).min(interval)).await;
        if store.live_tunnel(id, fresh_since(interval)).await?.is_none() {
            return Ok(RemoteClose::Closed(row));
        }
    }
    Ok(RemoteClose::TimedOut(row))
}

/// A row older than this is a dead relay's: the owner refreshes it every interval.
pub fn stale_after(interval: Duration) -> Duration {
    (interval * 5).max(Duration::from_secs(10))
}

/// The oldest `seen_at` (Unix ms) that still counts as live for a relay syncing every `interval`.
pub fn fresh_since(interval: Duration) -> i64 {
    store::unix_ms().saturating_sub(stale_after(interval).as_millis() as i64)
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Security(#[from] SecurityError),
}

/// Syncs until shutdown, then removes this relay's rows (its tunnels close with it).
pub async fn run(state: AppState) {
    let interval = state.config.tunnel_sync_interval;
    let mut published_any = false;
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        match sync_once(&state, published_any).await {
            Ok(published) => published_any = published,
            Err(error) => tracing::warn!(%error, "cannot share the live tunnels with other relays"),
        }
    }
    if let Err(error) = state.store.sync_live_tunnels(&state.relay_id, &[], store::unix_ms()).await {
        tracing::debug!(%error, "cannot remove this relay's live tunnels");
    }
}

/// One round; returns whether this relay has rows in the table now. An idle relay that had none
/// writes nothing (no write transaction every interval on SQLite).
async fn sync_once(state: &AppState, published_any: bool) -> Result<bool, SyncError> {
    let pipes = state.pipes.snapshot();
    if pipes.is_empty() && !published_any {
        return Ok(false);
    }
    let rows: Vec<LiveTunnelRow> = pipes.iter().map(|p| row_of(&state.relay_id, p)).collect();
    let requested = state
        .store
        .sync_live_tunnels(&state.relay_id, &rows, store::unix_ms())
        .await?;
    for id in requested {
        if let Some(pipe) =
            state.pipes.close_id(id as u64, close_code::DISCONNECTED, crate::admin_api::DISCONNECTED)
        {
            tracing::info!(id, user = %pipe.username, "closed a tunnel another relay's console disconnected");
        }
    }
    close_tunnels_blocked_elsewhere(state, &pipes).await?;
    Ok(!rows.is_empty())
}

/// A block recorded by another relay closes this relay's tunnels of that IP too.
async fn close_tunnels_blocked_elsewhere(
    state: &AppState,
    pipes: &[PipeInfo],
) -> Result<(), SyncError> {
    let ips: BTreeSet<_> = pipes.iter().map(|p| p.ip.to_canonical()).collect();
    for ip in ips {
        if let Some(retry_after) = state.guard.ip_blocked_for(ip).await? {
            http::close_blocked_tunnels(state, ip, retry_after);
        }
    }
    Ok(())
}

/// The row of one of this relay's pipes.
pub fn row_of(relay_id: &str, pipe: &PipeInfo) -> LiveTunnelRow {
    LiveTunnelRow {
        id: pipe.id as i64,
        relay_id: relay_id.to_owned(),
        kind: pipe.kind.to_string(),
        username: pipe.username.clone(),
        workstation: pipe.workstation.clone(),
        client_ip: pipe.ip.to_string(),
        started_at: pipe
            .started_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
        bytes_up: pipe.bytes_up as i64,
        bytes_down: pipe.bytes_down as i64,
        seen_at: 0,
    }
}
