//! SQL of the audit log (migration 0007): append one entry, read them newest first with a text filter.
//!
//! A child module of [`crate::store`] so that it shares the pool; the meaning of the rows is in
//! [`crate::audit`].

use super::{Result, Store};
use sqlx::Row;

/// One row of `audit_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub ip: Option<String>,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// A new row (its id and time are given by the store and the caller).
#[derive(Debug, Clone)]
pub struct NewAuditRow<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub ip: Option<String>,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
}

impl Store {
    pub async fn insert_audit(&self, row: &NewAuditRow<'_>) -> Result<()> {
        sqlx::query("INSERT INTO audit_log (at, actor, ip, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(row.at)
            .bind(row.actor)
            .bind(row.ip.clone())
            .bind(row.action)
            .bind(row.target)
            .bind(row.detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Up to `limit` entries older than id `before` (all when `None`), newest first; `needle` (already
    /// lowercase) must appear in the actor, IP, action, target or detail.
    pub async fn audit_page(&self, needle: &str, before: Option<i64>, limit: i64) -> Result<Vec<AuditRow>> {
        let pattern = format!("%{}%", escape_like(needle));
        let rows = sqlx::query(
            "SELECT id, at, actor, ip, action, target, detail FROM audit_log \
             WHERE id < $1 AND (LOWER(actor) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(ip, '')) LIKE $2 ESCAPE '\\' \
             OR LOWER(action) LIKE $2 ESCAPE '\\' OR LOWER(target) LIKE $2 ESCAPE '\\' \
             OR LOWER(detail) LIKE $2 ESCAPE '\\') \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRow {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    ip: row.try_get("ip")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }
}

/// `%`, `_` and `\` match themselves in a LIKE pattern with `ESCAPE '\'`.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(super::escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}
