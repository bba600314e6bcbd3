//! SQL of the portal's HTTPS certificates (migration 0005): the kept certificates, the free
//! certificate's settings, the work queue of the serving relay and the pending HTTP-01 tokens.
//!
//! A child module of [`crate::store`] so that it shares the pool while keeping this feature's SQL
//! in one place. Installing, restoring and resetting are single transactions: exactly one
//! certificate (or none: the self-signed one) is active at any moment, never a half-written one.

use super::{Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Where a kept certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateSource {
    /// Obtained from the ACME CA.
    Acme,
    /// PEM files given by the administrator.
    Imported,
}

impl CertificateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateSource::Acme => "acme",
            CertificateSource::Imported => "imported",
        }
    }

    fn parse(value: &str) -> Result<Self> {
        match value {
            "acme" => Ok(CertificateSource::Acme),
            "imported" => Ok(CertificateSource::Imported),
            other => Err(StoreError::Corrupt(format!("certificate source {other:?}"))),
        }
    }
}

/// A kept certificate (without its PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    pub id: i64,
    pub source: CertificateSource,
    pub domain: String,
    pub issuer: String,
    pub not_before: i64,
    pub not_after: i64,
    pub created_at: i64,
    pub active: bool,
    pub replaced_at: Option<i64>,
}

/// A certificate to keep (and serve).
#[derive(Debug, Clone)]
pub struct NewCertificate {
    pub source: CertificateSource,
    pub domain: String,
    pub issuer: String,
    pub not_before: i64,
    pub not_after: i64,
    pub chain_pem: String,
    pub key_pem: String,
}

/// The PEM of a kept certificate.
#[derive(Debug, Clone)]
pub struct CertificatePem {
    pub id: i64,
    pub source: CertificateSource,
    pub chain_pem: String,
    pub key_pem: String,
}

/// The free certificate's settings and the outcome of the last attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcmeSettings {
    pub email: String,
    pub domain: Option<String>,
    pub terms_url: Option<String>,
    pub directory_url: String,
    pub account_credentials: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub last_result_code: Option<i64>,
    pub last_result_message: Option<String>,
    pub next_check_at: Option<i64>,
}

/// What a job asks the serving relay to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeJobKind {
    /// Look up the CA's terms of service (answered in `result_message`).
    Terms,
    /// Register, validate, issue and install a certificate for a domain.
    Request,
    /// Renew the current free certificate now.
    Renew,
}

impl AcmeJobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AcmeJobKind::Terms => "terms",
            AcmeJobKind::Request => "request",
            AcmeJobKind::Renew => "renew",
        }
    }

    fn parse(value: &str) -> Result<Self> {
        match value {
            "terms" => Ok(AcmeJobKind::Terms),
            "request" => Ok(AcmeJobKind::Request),
            "renew" => Ok(AcmeJobKind::Renew),
            other => Err(StoreError::Corrupt(format!("ACME job kind {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeJob {
    pub id: i64,
    pub kind: AcmeJobKind,
    pub email: Option<String>,
    pub domain: Option<String>,
    pub terms_url: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub result_code: Option<i64>,
    pub result_message: Option<String>,
}

const SETTINGS_ID: i64 = 1;

macro_rules! certificate_columns {
    () => {
        "id, source, domain, issuer, not_before, not_after, created_at, active, replaced_at"
    };
}

macro_rules! job_columns {
    () => {
        "id, kind, email, domain, terms_url, created_at, started_at, finished_at, result_code, result_message"
    };
}

fn certificate_from_row(row: &AnyRow) -> Result<StoredCertificate> {
    Ok(StoredCertificate {
        id: row.try_get("id")?,
        source: CertificateSource::parse(row.try_get("source")?)?,
        domain: row.try_get("domain")?,
        issuer: row.try_get("issuer")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        created_at: row.try_get("created_at")?,
        active: row.try_get::<i64, _>("active")? != 0,
        replaced_at: row.try_get("replaced_at")?,
    })
}

fn job_from_row(row: &AnyRow) -> Result<AcmeJob> {
    Ok(AcmeJob {
        id: row.try_get("id")?,
        kind: AcmeJobKind::parse(row.try_get("kind")?)?,
        email: row.try_get("email")?,
        domain: row.try_get("domain")?,
        terms_url: row.try_get("terms_url")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        result_code: row.try_get("result_code")?,
        result_message: row.try_get("result_message")?,
    })
}

impl Store {
    // ------------------------------------------------------- certificates

    /// Keeps `new` and makes it the served certificate; the previous one is marked replaced at `now`.
    pub async fn install_certificate(&self, new: &NewCertificate, now: i64) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE certificates SET active = 0, replaced_at = $1 WHERE active = 1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query(
            "INSERT INTO certificates (source, domain, issuer, not_before, not_after, chain_pem, key_pem, created_at, \
             active) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1) RETURNING id",
        )
        .bind(new.source.as_str())
        .bind(&new.domain)
        .bind(&new.issuer)
        .bind(new.not_before)
        .bind(new.not_after)
        .bind(&new.chain_pem)
        .bind(&new.key_pem)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        tx.commit().await?;
        Ok(id)
    }

    /// Serves kept certificate `id` again. False if there is no such certificate.
    pub async fn activate_certificate(&self, id: i64, now: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT id FROM certificates WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE certificates SET active = 0, replaced_at = $1 WHERE active = 1 AND id <> $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE certificates SET active = 1, replaced_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stops serving any kept certificate (the self-signed one takes over). True if one was active.
    pub async fn deactivate_certificates(&self, now: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE certificates SET active = 0, replaced_at = $1 WHERE active = 1")
                .bind(now)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The id of the served kept certificate: a cheap query that every relay polls.
    pub async fn active_certificate_id(&self) -> Result<Option<i64>> {
        let row =
            sqlx::query("SELECT id FROM certificates WHERE active = 1 ORDER BY id DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| row.try_get("id")).transpose()?)
    }

    pub async fn active_certificate(&self) -> Result<Option<StoredCertificate>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            certificate_columns!(),
            " FROM certificates WHERE active = 1 ORDER BY id DESC LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(certificate_from_row).transpose()
    }

    pub async fn certificate_pem(&self, id: i64) -> Result<Option<CertificatePem>> {
        let row =
            sqlx::query("SELECT id, source, chain_pem, key_pem FROM certificates WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(CertificatePem {
                id: row.try_get("id")?,
                source: CertificateSource::parse(row.try_get("source")?)?,
                chain_pem: row.try_get("chain_pem")?,
                key_pem: row.try_get("key_pem")?,
            })
        })
        .transpose()
    }

    pub async fn certificate(&self, id: i64) -> Result<Option<StoredCertificate>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            certificate_columns!(),
            " FROM certificates WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(certificate_from_row).transpose()
    }

    /// Every kept certificate, newest first.
    pub async fn list_certificates(&self) -> Result<Vec<StoredCertificate>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            certificate_columns!(),
            " FROM certificates ORDER BY id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(certificate_from_row).collect()
    }

    // ---------------------------------------------------- ACME settings

    pub async fn acme_settings(&self) -> Result<Option<AcmeSettings>> {
        let row = sqlx::query(
            "SELECT email, domain, terms_url, directory_url, account_credentials, last_attempt_at, last_result_code, \
             last_result_message, next_check_at FROM acme_settings WHERE id = $1",
        )
        .bind(SETTINGS_ID)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(AcmeSettings {
                email: row.try_get("email")?,
                domain: row.try_get("domain")?,
                terms_url: row.try_get("terms_url")?,
                directory_url: row.try_get("directory_url")?,
                account_credentials: row.try_get("account_credentials")?,
                last_attempt_at: row.try_get("last_attempt_at")?,
                last_result_code: row.try_get("last_result_code")?,
                last_result_message: row.try_get("last_result_message")?,
                next_check_at: row.try_get("next_check_at")?,
            })
        })
        .transpose()
    }

    /// Records what the administrator asked for. Keeps the account unless the email or the CA changed.
    pub async fn save_acme_request(
        &self,
        email: &str,
        domain: &str,
        terms_url: &str,
        directory_url: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO acme_settings (id, email, domain, terms_url, directory_url) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET account_credentials = CASE WHEN acme_settings.email = $2 AND \
             acme_settings.directory_url = $5 THEN acme_settings.account_credentials ELSE NULL END, \
             email = $2, domain = $3, terms_url = $4, directory_url = $5",
        )
        .bind(SETTINGS_ID)
        .bind(email)
        .bind(domain)
        .bind(terms_url)
        .bind(directory_url)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn save_acme_account(&self, credentials_json: &str) -> Result<()> {
        sqlx::query("UPDATE acme_settings SET account_credentials = $2 WHERE id = $1")
            .bind(SETTINGS_ID)
            .bind(credentials_json)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The outcome of an attempt (code 0 = success) and when to look again.
    pub async fn record_acme_attempt(
        &self,
        at: i64,
        code: i64,
        message: &str,
        next_check_at: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE acme_settings SET last_attempt_at = $2, last_result_code = $3, last_result_message = $4, \
             next_check_at = $5 WHERE id = $1",
        )
        .bind(SETTINGS_ID)
        .bind(at)
        .bind(code)
        .bind(message)
        .bind(next_check_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the due renewal check: moves `next_check_at` from `observed` (what this relay read) to
    /// `next`, only if nobody changed it meanwhile. Of relays racing for one check exactly one gets
    /// `true`.
    pub async fn claim_acme_check(&self, observed: Option<i64>, next: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE acme_settings SET next_check_at = $2 WHERE id = $1 \
             AND ((next_check_at IS NULL AND $4 = 1) OR next_check_at = $3)",
        )
        .bind(SETTINGS_ID)
        .bind(next)
        .bind(observed.unwrap_or(0))
        .bind(i64::from(observed.is_none()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_acme_next_check(&self, next_check_at: i64) -> Result<()> {
        sqlx::query("UPDATE acme_settings SET next_check_at = $2 WHERE id = $1")
            .bind(SETTINGS_ID)
            .bind(next_check_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Reset Domain: nothing to renew any more (the account and the history stay).
    pub async fn clear_acme_domain(&self) -> Result<()> {
        sqlx::query("UPDATE acme_settings SET domain = NULL, next_check_at = NULL WHERE id = $1")
            .bind(SETTINGS_ID)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The domain whose free certificate is renewed (after restoring one); no-op before any request.
    pub async fn set_acme_domain(&self, domain: &str) -> Result<()> {
        sqlx::query("UPDATE acme_settings SET domain = $2, next_check_at = NULL WHERE id = $1")
            .bind(SETTINGS_ID)
            .bind(domain)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // -------------------------------------------------------- ACME jobs

    pub async fn insert_acme_job(
        &self,
        kind: AcmeJobKind,
        email: Option<&str>,
        domain: Option<&str>,
        terms_url: Option<&str>,
        now: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO acme_jobs (kind, email, domain, terms_url, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(kind.as_str())
        .bind(email)
        .bind(domain)
        .bind(terms_url)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Takes the oldest pending job; with several relays exactly one gets each job.
    pub async fn claim_acme_job(&self, now: i64) -> Result<Option<AcmeJob>> {
        loop {
            let row = sqlx::query(concat!(
                "SELECT ",
                job_columns!(),
                " FROM acme_jobs WHERE started_at IS NULL ORDER BY id LIMIT 1"
            ))
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let mut job = job_from_row(&row)?;
            let claimed = sqlx::query(
                "UPDATE acme_jobs SET started_at = $1 WHERE id = $2 AND started_at IS NULL",
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

    pub async fn finish_acme_job(&self, id: i64, now: i64, code: i64, message: &str) -> Result<()> {
        sqlx::query("UPDATE acme_jobs SET finished_at = $2, result_code = $3, result_message = $4 WHERE id = $1")
            .bind(id)
            .bind(now)
            .bind(code)
            .bind(message)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Withdraws a job nobody started (the CLI gave up waiting). False if a relay already took it.
    pub async fn cancel_acme_job(&self, id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE acme_jobs SET started_at = $2, finished_at = $2, result_message = 'cancelled' \
             WHERE id = $1 AND started_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn acme_job(&self, id: i64) -> Result<Option<AcmeJob>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM acme_jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The newest `limit` request and renewal jobs (console and CLI), newest first, with their outcome.
    pub async fn recent_acme_attempts(&self, limit: i64) -> Result<Vec<AcmeJob>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM acme_jobs WHERE kind <> 'terms' ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    // -------------------------------------------------- HTTP-01 tokens

    pub async fn put_acme_challenge(
        &self,
        token: &str,
        key_authorization: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO acme_challenges (token, key_authorization, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (token) DO UPDATE SET key_authorization = $2, expires_at = $3",
        )
        .bind(token)
        .bind(key_authorization)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn remove_acme_challenge(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM acme_challenges WHERE token = $1")
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The key authorization of a pending token (expired ones are treated as absent).
    pub async fn acme_challenge(&self, token: &str, now: i64) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT key_authorization FROM acme_challenges WHERE token = $1 AND expires_at > $2",
        )
        .bind(token)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|row| row.try_get("key_authorization"))
            .transpose()?)
    }

    pub async fn purge_acme_challenges(&self, now: i64) -> Result<()> {
        sqlx::query("DELETE FROM acme_challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
