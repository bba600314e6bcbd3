//! SQL of the portal designer (migration 0010): the pages (design and preferences as JSON text) and the
//! uploaded images they use.
//!
//! A child module of [`crate::store`] so that it shares the pool while keeping this feature's SQL in one
//! place. An image and the page change that uses it are written in one transaction, so a page never
//! points at an image that is not stored.

use super::{Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

/// One stored page, its design and preferences still as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalPageRow {
    pub name: String,
    pub design: String,
    pub preferences: String,
    pub published: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
}

/// An uploaded image to store (id = SHA-256 of the bytes).
#[derive(Debug, Clone)]
pub struct NewPortalAsset {
    pub id: String,
    pub purpose: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A stored image as served.
#[derive(Debug, Clone)]
pub struct PortalAsset {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

macro_rules! page_columns {
    () => {
        "name, design, preferences, published, created_at, updated_at, published_at"
    };
}

fn page_from_row(row: &AnyRow) -> Result<PortalPageRow> {
    Ok(PortalPageRow {
        name: row.try_get("name")?,
        design: row.try_get("design")?,
        preferences: row.try_get("preferences")?,
        published: row.try_get::<i64, _>("published")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        published_at: row.try_get("published_at")?,
    })
}

impl Store {
    pub async fn portal_page(&self, name: &str) -> Result<Option<PortalPageRow>> {
        sqlx::query(concat!(
            "SELECT ",
            page_columns!(),
            " FROM portal_pages WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(page_from_row)
        .transpose()
    }

    pub async fn portal_pages(&self) -> Result<Vec<PortalPageRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            page_columns!(),
            " FROM portal_pages ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(page_from_row).collect()
    }

    /// Creates or replaces a page's design and preferences (its published state is kept); with an
    /// image, stores it in the same transaction.
    pub async fn save_portal_page(
        &self,
        name: &str,
        design: &str,
        preferences: &str,
        asset: Option<&NewPortalAsset>,
        now: i64,
    ) -> Result<()> {
        use base64::Engine;
        let mut tx = self.begin_write().await?;
        if let Some(asset) = asset {
            let data = base64::engine::general_purpose::STANDARD.encode(&asset.bytes);
            sqlx::query(
                "INSERT INTO portal_assets (id, purpose, content_type, size, data, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&asset.id)
            .bind(&asset.purpose)
            .bind(&asset.content_type)
            .bind(i64::try_from(asset.bytes.len()).unwrap_or(i64::MAX))
            .bind(data)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO portal_pages (name, design, preferences, published, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4) \
             ON CONFLICT (name) DO UPDATE SET design = $2, preferences = $3, updated_at = $4",
        )
        .bind(name)
        .bind(design)
        .bind(preferences)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Publishes or unpublishes a page; `false` when there is no such page.
    pub async fn set_portal_published(
        &self,
        name: &str,
        published: bool,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE portal_pages SET published = $2, updated_at = $3, \
             published_at = CASE WHEN $2 = 1 THEN $3 ELSE published_at END WHERE name = $1",
        )
        .bind(name)
        .bind(i64::from(published))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a page; `false` when there is no such page.
    pub async fn delete_portal_page(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM portal_pages WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes stored images stored before `before` that none of `used` names (ids referenced by any
    /// page). The age limit keeps an image that a concurrent save is just about to reference.
    pub async fn delete_unused_portal_assets(&self, used: &[String], before: i64) -> Result<u64> {
        let ids: Vec<String> = sqlx::query("SELECT id FROM portal_assets WHERE created_at < $1")
            .bind(before)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<std::result::Result<_, _>>()?;
        let mut deleted = 0;
        for id in ids.iter().filter(|id| !used.contains(id)) {
            deleted += sqlx::query("DELETE FROM portal_assets WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(deleted)
    }

    pub async fn portal_asset(&self, id: &str) -> Result<Option<PortalAsset>> {
        use base64::Engine;
        let Some(row) = sqlx::query("SELECT content_type, data FROM portal_assets WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let data: String = row.try_get("data")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| super::StoreError::Corrupt(format!("portal asset {id}")))?;
        Ok(Some(PortalAsset {
            content_type: row.try_get("content_type")?,
            bytes,
        }))
    }
}
