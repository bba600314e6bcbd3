//! SQL of configuration export and import (see [`crate::config_transfer`]): reads every configuration
//! table in one transaction, and replaces them all in one transaction, so an import is all or nothing.
//!
//! Ids of users and workstations are kept: two-factor secrets are sealed with the user id as associated
//! data, so a secret only opens again under the same id. PostgreSQL's identity sequences are moved past
//! the imported ids afterwards (SQLite's AUTOINCREMENT follows explicit ids by itself).

use super::{Backend, Result, Store};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    /// argon2id PHC string; empty for directory users (they have none).
    pub password_hash: String,
    pub is_admin: bool,
    pub is_directory: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkstationRecord {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub domain: Option<String>,
    pub notes: Option<String>,
    pub cert_sha256: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentRecord {
    pub user: String,
    pub workstation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupAssignmentRecord {
    pub group: String,
    pub workstation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoFactorMemberRecord {
    /// `user` or `group`.
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoFactorUserRecord {
    pub user: String,
    pub method: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Sealed (AES-256-GCM under the data directory's `twofa.key`, user id as associated data).
    pub secret_sealed: Option<String>,
    pub enrolled: bool,
    pub last_step: Option<i64>,
    /// The TOTP algorithm the user enrolled with (`SHA1`, `SHA256`, `SHA512`); files written before it
    /// was exported mean SHA-1, the only one used then.
    #[serde(default = "sha1")]
    pub algorithm: String,
}

fn sha1() -> String {
    "SHA1".to_owned()
}

/// A portal designer page; its design and preferences are the JSON objects the designer stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalPageRecord {
    pub name: String,
    pub design: serde_json::Value,
    pub preferences: serde_json::Value,
    pub published: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
}

/// An image uploaded for portal pages (logo or background).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalImageRecord {
    /// SHA-256 of the bytes, lowercase hex.
    pub id: String,
    /// `logo` or `background`.
    pub purpose: String,
    pub content_type: String,
    /// The bytes in standard base64.
    pub data: String,
    pub created_at: i64,
}

/// Every configuration table's rows (the body of an export file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRecords {
    pub users: Vec<UserRecord>,
    pub workstations: Vec<WorkstationRecord>,
    pub assignments: Vec<AssignmentRecord>,
    pub group_assignments: Vec<GroupAssignmentRecord>,
    /// Settings rows by name (`security.*`, `twofa.*`, `delivery.*`, `directory`, `portal.*`, `server.*`).
    pub settings: std::collections::BTreeMap<String, String>,
    pub twofa_members: Vec<TwoFactorMemberRecord>,
    pub twofa_users: Vec<TwoFactorUserRecord>,
    pub whitelist: Vec<String>,
    /// Absent from files written before pages were exported: such a file leaves no pages.
    #[serde(default)]
    pub portal_pages: Vec<PortalPageRecord>,
    #[serde(default)]
    pub portal_images: Vec<PortalImageRecord>,
}

/// Settings rows that describe this database, not its configuration: never exported nor replaced.
pub const LOCAL_SETTINGS: &[&str] = &["admin_bootstrapped"];

impl Store {
    /// Reads the whole configuration in one transaction (a consistent snapshot).
    pub async fn export_config(&self) -> Result<ConfigRecords> {
        let mut tx = self.pool.begin().await?;
        let mut records = ConfigRecords::default();
        for row in sqlx::query(
            "SELECT id, username, password_hash, is_admin, is_directory, created_at FROM users ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            records.users.push(UserRecord {
                id: row.try_get("id")?,
                username: row.try_get("username")?,
                password_hash: row.try_get("password_hash")?,
                is_admin: row.try_get::<i64, _>("is_admin")? != 0,
                is_directory: row.try_get::<i64, _>("is_directory")? != 0,
                created_at: row.try_get("created_at")?,
            });
        }
        for row in sqlx::query(
            "SELECT id, name, host, port, domain, notes, cert_sha256, enabled, created_at FROM workstations ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            let port: i64 = row.try_get("port")?;
            records.workstations.push(WorkstationRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                host: row.try_get("host")?,
                port: u16::try_from(port).map_err(|_| super::StoreError::Corrupt(format!("port {port}")))?,
                domain: row.try_get("domain")?,
                notes: row.try_get("notes")?,
                cert_sha256: row.try_get("cert_sha256")?,
                enabled: row.try_get::<i64, _>("enabled")? != 0,
                created_at: row.try_get("created_at")?,
            });
        }
        for row in sqlx::query(
            "SELECT u.username, w.name FROM assignments a JOIN users u ON u.id = a.user_id \
             JOIN workstations w ON w.id = a.workstation_id ORDER BY u.username, w.name",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            records.assignments.push(AssignmentRecord {
                user: row.try_get("username")?,
                workstation: row.try_get("name")?,
            });
        }
        for row in sqlx::query(
            "SELECT g.group_name, w.name FROM group_assignments g JOIN workstations w ON w.id = g.workstation_id \
             ORDER BY g.group_name, w.name",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            records.group_assignments.push(GroupAssignmentRecord {
                group: row.try_get("group_name")?,
                workstation: row.try_get("name")?,
            });
        }
        for row in sqlx::query("SELECT name, value FROM settings ORDER BY name")
            .fetch_all(&mut *tx)
            .await?
        {
            let name: String = row.try_get("name")?;
            if !LOCAL_SETTINGS.contains(&name.as_str()) {
                records.settings.insert(name, row.try_get("value")?);
            }
        }
        for row in sqlx::query("SELECT kind, name FROM twofa_members ORDER BY kind, name")
            .fetch_all(&mut *tx)
            .await?
        {
            records.twofa_members.push(TwoFactorMemberRecord {
                kind: row.try_get("kind")?,
                name: row.try_get("name")?,
            });
        }
        for row in sqlx::query(
            "SELECT u.username, t.method, t.phone, t.email, t.secret_enc, t.enrolled, t.last_step, t.algorithm \
             FROM twofa_users t JOIN users u ON u.id = t.user_id ORDER BY u.username",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            records.twofa_users.push(TwoFactorUserRecord {
                user: row.try_get("username")?,
                method: row.try_get("method")?,
                phone: row.try_get("phone")?,
                email: row.try_get("email")?,
                secret_sealed: row.try_get("secret_enc")?,
                enrolled: row.try_get::<i64, _>("enrolled")? != 0,
                last_step: row.try_get("last_step")?,
                algorithm: row.try_get("algorithm")?,
            });
        }
        for row in sqlx::query("SELECT cidr FROM ip_whitelist ORDER BY cidr")
            .fetch_all(&mut *tx)
            .await?
        {
            records.whitelist.push(row.try_get("cidr")?);
        }
        for row in sqlx::query(
            "SELECT name, design, preferences, published, created_at, updated_at, published_at \
             FROM portal_pages ORDER BY name",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            let name: String = row.try_get("name")?;
            let json = |column: &str| -> Result<serde_json::Value> {
                let text: String = row.try_get(column)?;
                serde_json::from_str(&text)
                    .map_err(|_| super::StoreError::Corrupt(format!("{column} of portal page {name}")))
            };
            records.portal_pages.push(PortalPageRecord {
                design: json("design")?,
                preferences: json("preferences")?,
                published: row.try_get::<i64, _>("published")? != 0,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                published_at: row.try_get("published_at")?,
                name,
            });
        }
        for row in sqlx::query(
            "SELECT id, purpose, content_type, data, created_at FROM portal_assets ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            records.portal_images.push(PortalImageRecord {
                id: row.try_get("id")?,
                purpose: row.try_get("purpose")?,
                content_type: row.try_get("content_type")?,
                data: row.try_get("data")?,
                created_at: row.try_get("created_at")?,
            });
        }
        tx.commit().await?;
        Ok(records)
    }

    /// Replaces the whole configuration with `records` (already validated) in one transaction. Sessions,
    /// tickets and sent codes of the replaced users go with them (everyone signs in again).
    ///
    /// A file without a local administrator also clears the `admin_bootstrapped` mark, so that the next
    /// `relay serve` creates the first administrator as on a new database (the CLI allows such files:
    /// a database only ever set up by the CLI has no administrator yet).
    pub async fn import_config(&self, records: &ConfigRecords, now: i64) -> Result<()> {
        let has_local_admin = records.users.iter().any(|u| u.is_admin && !u.is_directory);
        let mut tx = self.begin_write().await?;
        for table in [
            "assignments",
            "group_assignments",
            "twofa_users",
            "twofa_members",
            "ip_whitelist",
            "user_groups",
            "twofa_codes",
            "tickets",
            "sessions",
            "users",
            "workstations",
            "portal_pages",
            "portal_assets",
        ] {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM settings WHERE name <> $1")
            .bind(LOCAL_SETTINGS[0])
            .execute(&mut *tx)
            .await?;
        for user in &records.users {
            sqlx::query(
                "INSERT INTO users (id, username, password_hash, is_admin, is_directory, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(user.id)
            .bind(user.username.as_str())
            .bind(user.password_hash.as_str())
            .bind(i64::from(user.is_admin))
            .bind(i64::from(user.is_directory))
            .bind(user.created_at)
            .execute(&mut *tx)
            .await?;
        }
        for w in &records.workstations {
            sqlx::query(
                "INSERT INTO workstations (id, name, host, port, domain, notes, cert_sha256, enabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(w.id)
            .bind(w.name.as_str())
            .bind(w.host.as_str())
            .bind(i64::from(w.port))
            .bind(w.domain.as_deref())
            .bind(w.notes.as_deref())
            .bind(w.cert_sha256.as_deref())
            .bind(i64::from(w.enabled))
            .bind(w.created_at)
            .execute(&mut *tx)
            .await?;
        }
        for a in &records.assignments {
            sqlx::query(
                "INSERT INTO assignments (user_id, workstation_id, created_at) \
                 SELECT u.id, w.id, $3 FROM users u, workstations w WHERE u.username = $1 AND w.name = $2",
            )
            .bind(a.user.as_str())
            .bind(a.workstation.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for g in &records.group_assignments {
            sqlx::query(
                "INSERT INTO group_assignments (group_name, workstation_id, created_at) \
                 SELECT $1, w.id, $3 FROM workstations w WHERE w.name = $2",
            )
            .bind(g.group.as_str())
            .bind(g.workstation.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for (name, value) in &records.settings {
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2)")
                .bind(name.as_str())
                .bind(value.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for m in &records.twofa_members {
            sqlx::query("INSERT INTO twofa_members (kind, name, created_at) VALUES ($1, $2, $3)")
                .bind(m.kind.as_str())
                .bind(m.name.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        for t in &records.twofa_users {
            sqlx::query(
                "INSERT INTO twofa_users (user_id, method, phone, email, secret_enc, enrolled, last_step, updated_at, \
                 algorithm) SELECT u.id, $2, $3, $4, $5, $6, $7, $8, $9 FROM users u WHERE u.username = $1",
            )
            .bind(t.user.as_str())
            .bind(t.method.as_str())
            .bind(t.phone.as_deref())
            .bind(t.email.as_deref())
            .bind(t.secret_sealed.as_deref())
            .bind(i64::from(t.enrolled))
            .bind(t.last_step)
            .bind(now)
            .bind(t.algorithm.as_str())
            .execute(&mut *tx)
            .await?;
        }
        for cidr in &records.whitelist {
            sqlx::query("INSERT INTO ip_whitelist (cidr, created_at) VALUES ($1, $2)")
                .bind(cidr.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        for page in &records.portal_pages {
            sqlx::query(
                "INSERT INTO portal_pages (name, design, preferences, published, created_at, updated_at, \
                 published_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(page.name.as_str())
            .bind(page.design.to_string())
            .bind(page.preferences.to_string())
            .bind(i64::from(page.published))
            .bind(page.created_at)
            .bind(page.updated_at)
            .bind(page.published_at)
            .execute(&mut *tx)
            .await?;
        }
        for image in &records.portal_images {
            use base64::Engine;
            let size = base64::engine::general_purpose::STANDARD
                .decode(&image.data)
                .map_err(|_| super::StoreError::Corrupt(format!("portal image {}", image.id)))?
                .len();
            sqlx::query(
                "INSERT INTO portal_assets (id, purpose, content_type, size, data, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(image.id.as_str())
            .bind(image.purpose.as_str())
            .bind(image.content_type.as_str())
            .bind(size as i64)
            .bind(image.data.as_str())
            .bind(image.created_at)
            .execute(&mut *tx)
            .await?;
        }
        if !has_local_admin {
            // The next `relay serve` creates the first administrator again, as on a new database.
            sqlx::query("DELETE FROM settings WHERE name = $1")
                .bind(LOCAL_SETTINGS[0])
                .execute(&mut *tx)
                .await?;
        }
        if self.backend == Backend::Postgres {
            // New rows must not collide with the imported ids (PostgreSQL-only function, so only here).
            for table in ["users", "workstations"] {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     GREATEST((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
