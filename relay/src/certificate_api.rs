//! JSON API of the HTTPS certificate for the admin console (administrators only): status and history,
//! import, restore, reset, and ACME jobs (terms, request, renew) that the console queues and polls.
//!
//! The same operations as `relay certificate …` ([`crate::certificates`], `acme_jobs`), so the console
//! and the CLI follow one set of rules. Requests go through the router's Origin check and the session's
//! CSRF check like every other POST.

use crate::acme::{self, Stage};
use crate::audit::{self, Action, Actor};
use crate::certificates::{self, CertificateError};
use crate::config::DataDir;
use crate::http::{parse_json, ApiError, ApiResult, AppState, ClientIp, CurrentSession};
use crate::store::{self, AcmeJobKind, CertificateSource, StoredCertificate};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;

/// How many of the latest requests and renewals the status lists.
const RECENT_ATTEMPTS: i64 = 10;

pub const ADMINS_ONLY: &str = "Only administrators can manage the portal's certificate.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/certificate", get(status))
        .route("/api/admin/certificate/import", post(import))
        .route("/api/admin/certificate/restore", post(restore))
        .route("/api/admin/certificate/reset", post(reset))
        .route("/api/admin/certificate/jobs", post(queue_job))
        .route("/api/admin/certificate/jobs/{id}", get(job))
}

fn require_admin(session: &CurrentSession) -> ApiResult<()> {
    if session.user.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, ADMINS_ONLY))
    }
}

impl From<CertificateError> for ApiError {
    fn from(error: CertificateError) -> Self {
        match error {
            CertificateError::Store(error) => error.into(),
            CertificateError::UnknownId(_) => {
                ApiError::new(StatusCode::NOT_FOUND, error.to_string())
            }
            other => ApiError::new(StatusCode::BAD_REQUEST, other.to_string()),
        }
    }
}

#[derive(Serialize)]
struct CertificateItem {
    id: i64,
    source: &'static str,
    domain: String,
    issuer: String,
    not_before: i64,
    not_after: i64,
    installed_at: i64,
    active: bool,
    replaced_at: Option<i64>,
}

impl From<StoredCertificate> for CertificateItem {
    fn from(c: StoredCertificate) -> Self {
        CertificateItem {
            id: c.id,
            source: c.source.as_str(),
            domain: c.domain,
            issuer: c.issuer,
            not_before: c.not_before,
            not_after: c.not_after,
            installed_at: c.created_at,
            active: c.active,
            replaced_at: c.replaced_at,
        }
    }
}

/// Records a console change of the certificate like the CLI's (`settings.change`, target `certificate`).
async fn audited(state: &AppState, session: &CurrentSession, ip: IpAddr, detail: String) {
    let event = audit::Event::new(
        Actor::User(session.user.username.clone()),
        Some(ip),
        Action::SettingsChanged,
        "certificate",
    );
    audit::record(&state.store, event.detail(detail)).await;
}

/// What the served certificate says about itself: the active kept one's leaf, else the self-signed
/// one's (read from the database and data directory, so a change shows at once, before the relays'
/// next poll), and whether HSTS goes with it ([`certificates::publicly_trusted`]). Details are `null`
/// when they cannot be read (logged); then the switch's current HSTS state is reported.
async fn served_details(state: &AppState) -> (serde_json::Value, bool) {
    let data_dir = DataDir::new(&state.config.data_dir);
    let (leaf, hsts) = match certificates::load_active(&state.store, &data_dir).await {
        Ok((_, certified, trusted)) => (certified.cert.first().cloned(), trusted),
        Err(error) => {
            tracing::warn!(%error, "cannot read the served certificate for the console");
            (None, state.certificate.publicly_trusted())
        }
    };
    let Some(leaf) = leaf else {
        return (serde_json::Value::Null, hsts);
    };
    (leaf_details(&leaf), hsts)
}

fn leaf_details(leaf: &rustls_pki_types::CertificateDer<'_>) -> serde_json::Value {
    match certificates::certificate_info(leaf) {
        Ok(info) => json!({
            "subject": info.subject,
            "names": info.names,
            "issuer": info.issuer,
            "not_before": info.not_before,
            "not_after": info.not_after,
            "sha256": crate::tls::fingerprint(leaf),
        }),
        Err(error) => {
            tracing::warn!(%error, "cannot parse the served certificate for the console");
            serde_json::Value::Null
        }
    }
}

/// What the console's certificate page shows (timestamps in Unix ms).
async fn status_body(state: &AppState) -> ApiResult<serde_json::Value> {
    let history: Vec<CertificateItem> = state
        .store
        .list_certificates()
        .await?
        .into_iter()
        .map(CertificateItem::from)
        .collect();
    let served = history.iter().find(|c| c.active);
    let acme = state.store.acme_settings().await?.map(|s| {
        json!({
            "email": s.email,
            "domain": s.domain,
            "terms_url": s.terms_url,
            "directory_url": s.directory_url,
            "last_attempt_at": s.last_attempt_at,
            "last_result_code": s.last_result_code,
            "last_result_message": s.last_result_message,
            "next_check_at": s.next_check_at,
        })
    });
    let attempts: Vec<_> = state
        .store
        .recent_acme_attempts(RECENT_ATTEMPTS)
        .await?
        .into_iter()
        .map(|job| {
            json!({
                "id": job.id,
                "kind": job.kind.as_str(),
                "domain": job.domain,
                "requested_at": job.created_at,
                "finished_at": job.finished_at,
                "code": job.result_code,
                "message": job.result_message,
            })
        })
        .collect();
    let mut served = served.map_or_else(|| json!({ "source": "self-signed" }), |c| json!(c));
    let (details, hsts) = served_details(state).await;
    served["details"] = details;
    Ok(json!({
        "served": served,
        "hsts": hsts,
        "acme": acme,
        "history": history,
        "attempts": attempts,
    }))
}

async fn status(State(state): State<AppState>, session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    Ok(Json(status_body(&state).await?).into_response())
}

#[derive(Deserialize)]
struct ImportRequest {
    certificate_pem: String,
    key_pem: String,
}

async fn import(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let request: ImportRequest = parse_json(&body)?;
    let imported = certificates::install(
        &state.store,
        CertificateSource::Imported,
        &request.certificate_pem,
        &request.key_pem,
        store::unix_ms(),
    )
    .await?;
    tracing::info!(certificate = imported.id, admin = %session.user.username, "certificate imported");
    let detail = format!("imported #{} for {}", imported.id, imported.domain);
    audited(&state, &session, ip, detail).await;
    Ok(Json(status_body(&state).await?).into_response())
}

#[derive(Deserialize)]
struct RestoreRequest {
    id: i64,
}

async fn restore(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let request: RestoreRequest = parse_json(&body)?;
    let restored = certificates::restore(&state.store, request.id).await?;
    audited(
        &state,
        &session,
        ip,
        format!("restored #{} for {}", restored.id, restored.domain),
    )
    .await;
    Ok(Json(status_body(&state).await?).into_response())
}

async fn reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
) -> ApiResult<Response> {
    require_admin(&session)?;
    certificates::reset(&state.store).await?;
    audited(
        &state,
        &session,
        ip,
        "reset to the self-signed certificate".to_owned(),
    )
    .await;
    Ok(Json(status_body(&state).await?).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum JobKind {
    Terms,
    Request,
    Renew,
}

#[derive(Deserialize)]
struct JobRequest {
    kind: JobKind,
    email: Option<String>,
    domain: Option<String>,
    /// The terms-of-service URL the administrator accepted (from a `terms` job).
    terms_url: Option<String>,
}

/// Queues work for the serving relay; answers 202 with the job id to poll. A request for an IP
/// address, an internal name or an invalid email is refused at once with its code.
async fn queue_job(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let request: JobRequest = parse_json(&body)?;
    let (kind, email, domain) = match request.kind {
        JobKind::Terms => (AcmeJobKind::Terms, None, None),
        JobKind::Renew => (AcmeJobKind::Renew, None, None),
        JobKind::Request => {
            let domain = acme::check_domain(request.domain.as_deref().unwrap_or_default())
                .map_err(|refusal| {
                    let failure =
                        acme::AcmeFailure::new(Stage::Validation { renewal: false }, refusal.0, "");
                    ApiError::new(StatusCode::BAD_REQUEST, failure.to_string())
                })?;
            let email = acme::check_email(request.email.as_deref().unwrap_or_default())
                .map_err(|failure| ApiError::new(StatusCode::BAD_REQUEST, failure.to_string()))?;
            (AcmeJobKind::Request, Some(email), Some(domain))
        }
    };
    let id = state
        .store
        .insert_acme_job(
            kind,
            email.as_deref(),
            domain.as_deref(),
            request.terms_url.as_deref(),
            store::unix_ms(),
        )
        .await?;
    match (kind, domain.as_deref()) {
        (AcmeJobKind::Request, Some(domain)) => {
            audited(
                &state,
                &session,
                ip,
                format!("free certificate requested for {domain} (job #{id})"),
            )
            .await;
        }
        (AcmeJobKind::Renew, _) => {
            audited(
                &state,
                &session,
                ip,
                format!("renewal requested (job #{id})"),
            )
            .await
        }
        _ => {}
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "job_id": id }))).into_response())
}

/// A job's progress: `done`, then `code` (0 = success, else 801–806) and `message` (for `terms`:
/// the terms-of-service URL).
async fn job(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let job = state.store.acme_job(id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("There is no certificate job #{id}."),
        )
    })?;
    Ok(Json(json!({
        "id": job.id,
        "kind": job.kind.as_str(),
        "started": job.started_at.is_some(),
        "done": job.finished_at.is_some(),
        "code": job.result_code,
        "message": job.result_message,
    }))
    .into_response())
}
