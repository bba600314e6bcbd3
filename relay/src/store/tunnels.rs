//! SQL of the live tunnels every serving relay publishes (migration 0012), so that the admin console of
//! any relay sharing the database lists and disconnects all of them (see [`crate::tunnel_sync`]).
//!
//! A child module of [`crate::store`] like `server`: each relay only ever writes its own rows, except
//! `close_requested_at`, which any relay's console may set and only the owner acts on.

use super::{Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

/// One live tunnel of one relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTunnelRow {
    pub id: i64,
    pub relay_id: String,
    /// `websocket` or `native`.
    pub kind: String,
    pub username: String,
    pub workstation: String,
    pub client_ip: String,
    pub started_at: i64,
    pub bytes_up: i64,
    pub bytes_down: i64,
    pub seen_at: i64,
}

fn tunnel_from_row(row: &AnyRow) -> Result<LiveTunnelRow> {
    Ok(LiveTunnelRow {
        id: row.try_get("id")?,
        relay_id: row.try_get("relay_id")?,
        kind: row.try_get("kind")?,
        username: row.try_get("username")?,
        workstation: row.try_get("workstation")?,
        client_ip: row.try_get("client_ip")?,
        started_at: row.try_get("started_at")?,
        bytes_up: row.try_get("bytes_up")?,
        bytes_down: row.try_get("bytes_down")?,
        seen_at: row.try_get("seen_at")?,
    })
}

macro_rules! tunnel_columns {
    () => {
        "id, relay_id, kind, username, workstation, client_ip, started_at, bytes_up, bytes_down, seen_at"
    };
}

impl Store {
    /// Makes `relay_id`'s rows equal `tunnels` (refreshing counters and `seen_at`, deleting rows of
    /// ended tunnels) in one transaction, and returns the ids of its tunnels another relay asked to close.
    pub async fn sync_live_tunnels(
        &self,
        relay_id: &str,
        tunnels: &[LiveTunnelRow],
        now: i64,
    ) -> Result<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        let stored: Vec<i64> = sqlx::query_scalar("SELECT id FROM live_tunnels WHERE relay_id = $1")
            .bind(relay_id)
            .fetch_all(&mut *tx)
            .await?;
        for ended in stored.iter().filter(|id| !tunnels.iter().any(|t| t.id == **id)) {
            sqlx::query("DELETE FROM live_tunnels WHERE id = $1 AND relay_id = $2")
                .bind(ended)
                .bind(relay_id)
                .execute(&mut *tx)
                .await?;
        }
        for t in tunnels {
            sqlx::query(concat!(
                "INSERT INTO live_tunnels (",
                tunnel_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (id) DO UPDATE SET bytes_up = $8, bytes_down = $9, seen_at = $10"
            ))
            .bind(t.id)
            .bind(relay_id)
            .bind(t.kind.as_str())
            .bind(t.username.as_str())
            .bind(t.workstation.as_str())
            .bind(t.client_ip.as_str())
            .bind(t.started_at)
            .bind(t.bytes_up)
            .bind(t.bytes_down)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let requested = sqlx::query_scalar(
            "SELECT id FROM live_tunnels WHERE relay_id = $1 AND close_requested_at IS NOT NULL",
        )
        .bind(relay_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(requested)
    }

    /// Every relay's tunnels refreshed at or after `fresh_since`, oldest first.
    pub async fn live_tunnels(&self, fresh_since: i64) -> Result<Vec<LiveTunnelRow>> {
        sqlx::query(concat!(
            "SELECT ",
            tunnel_columns!(),
            " FROM live_tunnels WHERE seen_at >= $1 ORDER BY started_at, id"
        ))
        .bind(fresh_since)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(tunnel_from_row)
        .collect()
    }

    /// One tunnel, if its relay refreshed it at or after `fresh_since`.
    pub async fn live_tunnel(&self, id: i64, fresh_since: i64) -> Result<Option<LiveTunnelRow>> {
        sqlx::query(concat!(
            "SELECT ",
            tunnel_columns!(),
            " FROM live_tunnels WHERE id = $1 AND seen_at >= $2"
        ))
        .bind(id)
        .bind(fresh_since)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(tunnel_from_row)
        .transpose()
    }

    /// Asks the relay owning tunnel `id` to close it; false if there is no such row.
    pub async fn request_tunnel_close(&self, id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE live_tunnels SET close_requested_at = COALESCE(close_requested_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes rows not refreshed since `before` (their relay was killed).
    pub async fn purge_stale_tunnels(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM live_tunnels WHERE seen_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
