//! SQL of web server management (migration 0008): the serving relay's work queue (`server_jobs`) and the
//! listener status each serving relay publishes (`relay_listeners`).
//!
//! A child module of [`crate::store`] like `certificates`: the queue follows the same claim pattern as
//! `acme_jobs` (one relay takes each job through a conditional UPDATE).

use super::{Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A queued, running or finished server job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerJob {
    pub id: i64,
    pub kind: String,
    pub change: ServerChange,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// 0 = done, 1 = refused.
    pub result_code: Option<i64>,
    pub result_message: Option<String>,
}

/// New values of an `apply` job; `None` keeps the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerChange {
    pub https_port: Option<u16>,
    pub http_port: Option<u16>,
    pub bind: Option<String>,
    pub web_root: Option<String>,
    /// Serve no web root (the "client not built" page).
    pub clear_web_root: bool,
}

/// One listener of one serving relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRow {
    pub relay_id: String,
    /// `https` or `http`.
    pub name: String,
    pub address: String,
    /// `listening` or `stopped`.
    pub state: String,
    pub error: Option<String>,
    pub seen_at: i64,
}

macro_rules! server_job_columns {
    () => {
        "id, kind, https_port, http_port, bind, web_root, clear_web_root, created_at, started_at, finished_at, \
         result_code, result_message"
    };
}

fn port_column(row: &AnyRow, name: &str) -> Result<Option<u16>> {
    let value: Option<i64> = row.try_get(name)?;
    value
        .map(|port| {
            u16::try_from(port).map_err(|_| super::StoreError::Corrupt(format!("{name} {port}")))
        })
        .transpose()
}

fn server_job_from_row(row: &AnyRow) -> Result<ServerJob> {
    Ok(ServerJob {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        change: ServerChange {
            https_port: port_column(row, "https_port")?,
            http_port: port_column(row, "http_port")?,
            bind: row.try_get("bind")?,
            web_root: row.try_get("web_root")?,
            clear_web_root: row.try_get::<i64, _>("clear_web_root")? != 0,
        },
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        result_code: row.try_get("result_code")?,
        result_message: row.try_get("result_message")?,
    })
}

impl Store {
    pub async fn insert_server_job(
        &self,
        kind: &str,
        change: &ServerChange,
        now: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO server_jobs (kind, https_port, http_port, bind, web_root, clear_web_root, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(kind)
        .bind(change.https_port.map(i64::from))
        .bind(change.http_port.map(i64::from))
        .bind(change.bind.as_deref())
        .bind(change.web_root.as_deref())
        .bind(i64::from(change.clear_web_root))
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Takes the oldest pending job; with several relays exactly one gets each job.
    pub async fn claim_server_job(&self, now: i64) -> Result<Option<ServerJob>> {
        loop {
            let row = sqlx::query(concat!(
                "SELECT ",
                server_job_columns!(),
                " FROM server_jobs WHERE started_at IS NULL ORDER BY id LIMIT 1"
            ))
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let mut job = server_job_from_row(&row)?;
            let claimed = sqlx::query(
                "UPDATE server_jobs SET started_at = $1 WHERE id = $2 AND started_at IS NULL",
            )
            .bind(now)
            .bind(job.id)
            .execute(&self.pool)
            .await?;
            if claimed.rows_affected() == 1 {
                job.started_at = Some(now);
                return Ok(Some(job));
            }
        }
    }

    pub async fn finish_server_job(
        &self,
        id: i64,
        now: i64,
        code: i64,
        message: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE server_jobs SET finished_at = $2, result_code = $3, result_message = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(code)
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Withdraws a job nobody started (the caller gave up waiting). False if a relay already took it.
    pub async fn cancel_server_job(&self, id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE server_jobs SET started_at = $2, finished_at = $2, result_message = 'cancelled' \
             WHERE id = $1 AND started_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn server_job(&self, id: i64) -> Result<Option<ServerJob>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            server_job_columns!(),
            " FROM server_jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(server_job_from_row).transpose()
    }

    /// Sets and deletes several settings rows in one transaction (`None` deletes the row).
    pub async fn write_settings(&self, changes: &[(&str, Option<String>)]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for (name, value) in changes {
            match value {
                Some(value) => {
                    sqlx::query(
                        "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
                    )
                    .bind(*name)
                    .bind(value.as_str())
                    .execute(&mut *tx)
                    .await?
                }
                None => {
                    sqlx::query("DELETE FROM settings WHERE name = $1")
                        .bind(*name)
                        .execute(&mut *tx)
                        .await?
                }
            };
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the listener rows of one relay (one transaction).
    pub async fn publish_listeners(&self, relay_id: &str, rows: &[ListenerRow]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM relay_listeners WHERE relay_id = $1")
            .bind(relay_id)
            .execute(&mut *tx)
            .await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO relay_listeners (relay_id, name, address, state, error, seen_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(relay_id)
            .bind(row.name.as_str())
            .bind(row.address.as_str())
            .bind(row.state.as_str())
            .bind(row.error.as_deref())
            .bind(row.seen_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Listener rows refreshed at or after `since` (relays that are serving), oldest relay first.
    pub async fn listeners_seen_since(&self, since: i64) -> Result<Vec<ListenerRow>> {
        let rows = sqlx::query(
            "SELECT relay_id, name, address, state, error, seen_at FROM relay_listeners WHERE seen_at >= $1 \
             ORDER BY relay_id, name DESC",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ListenerRow {
                    relay_id: row.try_get("relay_id")?,
                    name: row.try_get("name")?,
                    address: row.try_get("address")?,
                    state: row.try_get("state")?,
                    error: row.try_get("error")?,
                    seen_at: row.try_get("seen_at")?,
                })
            })
            .collect()
    }
}
