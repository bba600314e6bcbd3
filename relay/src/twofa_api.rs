//! JSON API of two-factor sign-in for the admin console (administrators only): on/off, the list of
//! users and groups who must use it, each user's method (and reset), and the settings with their
//! warnings.
//!
//! The same validated operations as `relay 2fa …` ([`crate::twofa`]), so the console and the CLI follow
//! one set of rules. Requests go through the router's Origin check and the session's CSRF check like
//! every other POST. Secrets (TOTP keys, the gateway token, the SMTP password) are never returned.

use crate::admin_api::require_admin;
use crate::http::{parse_json, ApiError, ApiResult, AppState, CurrentSession};
use crate::store::StoreError;
use crate::totp::{Algorithm, Digits};
use crate::twofa::{self, MemberKind, Method, TwoFactorError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/twofa", get(status))
        .route("/api/admin/twofa/enabled", post(set_enabled))
        .route("/api/admin/twofa/members", post(add_member))
        .route("/api/admin/twofa/members/remove", post(remove_member))
        .route("/api/admin/twofa/users/method", post(set_method))
        .route("/api/admin/twofa/users/reset", post(reset))
        .route("/api/admin/twofa/settings", post(set_settings))
}

/// Refusals of admin input are 400 with the reason; an unknown user is 404.
fn admin_error(error: TwoFactorError) -> ApiError {
    match error {
        TwoFactorError::Invalid(message) => ApiError::new(StatusCode::BAD_REQUEST, message),
        TwoFactorError::Code(error) => ApiError::new(StatusCode::BAD_REQUEST, error.to_string()),
        TwoFactorError::Store(StoreError::UnknownUser(name)) => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("There is no user named {name}."),
        ),
        other => other.into(),
    }
}

/// Everything the console's page shows; `warnings` are those of the stored settings.
async fn status_body(state: &AppState) -> ApiResult<Value> {
    let store = &state.store;
    let settings = twofa::settings_load(store).await.map_err(admin_error)?;
    let warnings = settings.validate().map_err(admin_error)?;
    let members: Vec<Value> = twofa::members(store)
        .await
        .map_err(admin_error)?
        .into_iter()
        .map(|m| {
            json!({"kind": m.kind, "name": m.name, "method": m.method, "enrolled": m.enrolled, "address": m.address})
        })
        .collect();
    let sms = store
        .setting("delivery.twilio_sid")
        .await?
        .is_some_and(|v| !v.is_empty());
    let email = store
        .setting("delivery.smtp_host")
        .await?
        .is_some_and(|v| !v.is_empty());
    Ok(json!({
        "enabled": settings.enabled,
        "settings": {
            "discrepancy": settings.discrepancy,
            "issuer": settings.issuer,
            "issuer_shown": settings.issuer_or_default(),
            "validity_after_minutes": settings.validity_after.as_secs() / 60,
            "validity_before_secs": settings.validity_before.as_secs(),
            "digits": settings.digits.get(),
            "algorithm": settings.algorithm.uri_name(),
            "sms_template": settings.sms_template,
            "code_lifetime_secs": settings.code_lifetime.as_secs(),
            "send_limit_per_hour": settings.send_limit_per_hour,
        },
        "warnings": warnings,
        "members": members,
        "sms_configured": sms,
        "email_configured": email,
    }))
}

/// `GET /api/admin/twofa`.
async fn status(State(state): State<AppState>, session: CurrentSession) -> ApiResult<Json<Value>> {
    require_admin(&session)?;
    Ok(Json(status_body(&state).await?))
}

#[derive(Deserialize)]
struct EnabledBody {
    enabled: bool,
}

/// `POST /api/admin/twofa/enabled` `{"enabled": bool}`.
async fn set_enabled(
    State(state): State<AppState>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_admin(&session)?;
    let body: EnabledBody = parse_json(&body)?;
    let mut settings = twofa::settings_load(&state.store)
        .await
        .map_err(admin_error)?;
    settings.enabled = body.enabled;
    twofa::settings_store(&state.store, &settings)
        .await
        .map_err(admin_error)?;
    tracing::info!(admin = %session.user.username, enabled = body.enabled, "two-factor sign-in switched");
    Ok(Json(status_body(&state).await?))
}

#[derive(Deserialize)]
struct MemberBody {
    kind: String,
    name: String,
}

impl MemberBody {
    fn kind(&self) -> ApiResult<MemberKind> {
        match self.kind.as_str() {
            "user" => Ok(MemberKind::User),
            "group" => Ok(MemberKind::Group),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "kind must be \"user\" or \"group\".",
            )),
        }
    }
}

/// `POST /api/admin/twofa/members` `{"kind":"user"|"group","name"}`: users must exist (groups are
/// directory groups, resolved at sign-in); 409 if already listed.
async fn add_member(
    State(state): State<AppState>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_admin(&session)?;
    let body: MemberBody = parse_json(&body)?;
    let kind = body.kind()?;
    if kind == MemberKind::User {
        state
            .store
            .user_by_name(&body.name)
            .await
            .map_err(|e| admin_error(e.into()))?;
    }
    if !twofa::add_member(&state.store, kind, &body.name)
        .await
        .map_err(admin_error)?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} {} is already on the two-factor list.",
                kind.as_str(),
                body.name
            ),
        ));
    }
    Ok(Json(status_body(&state).await?))
}

/// `POST /api/admin/twofa/members/remove` `{"kind","name"}`; 404 if not listed.
async fn remove_member(
    State(state): State<AppState>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_admin(&session)?;
    let body: MemberBody = parse_json(&body)?;
    let kind = body.kind()?;
    if !twofa::remove_member(&state.store, kind, &body.name)
        .await
        .map_err(admin_error)?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "{} {} is not on the two-factor list.",
                kind.as_str(),
                body.name
            ),
        ));
    }
    Ok(Json(status_body(&state).await?))
}

#[derive(Deserialize)]
struct MethodBody {
    name: String,
    method: String,
    phone: Option<String>,
    email: Option<String>,
}

/// `POST /api/admin/twofa/users/method` `{"name","method":"app"|"sms"|"email","phone"?,"email"?}`.
async fn set_method(
    State(state): State<AppState>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_admin(&session)?;
    let body: MethodBody = parse_json(&body)?;
    let method = Method::parse(&body.method).map_err(admin_error)?;
    twofa::set_method(
        &state.store,
        &body.name,
        method,
        body.phone.as_deref(),
        body.email.as_deref(),
    )
    .await
    .map_err(admin_error)?;
    Ok(Json(status_body(&state).await?))
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

/// `POST /api/admin/twofa/users/reset` `{"name"}`: revokes the secret and ends the user's sessions.
async fn reset(
    State(state): State<AppState>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_admin(&session)?;
    let body: NameBody = parse_json(&body)?;
    twofa::reset(&state.store, &body.name)
        .await
        .map_err(admin_error)?;
    tracing::info!(admin = %session.user.username, user = %body.name, "second factor reset");
    Ok(Json(status_body(&state).await?))
}

/// Settings to change (absent fields keep their value).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    discrepancy: Option<u32>,
    issuer: Option<String>,
    validity_after_minutes: Option<u64>,
    validity_before_secs: Option<u64>,
    digits: Option<u32>,
    algorithm: Option<String>,
    sms_template: Option<String>,
    code_lifetime_secs: Option<u64>,
    send_limit_per_hour: Option<u32>,
}

/// `POST /api/admin/twofa/settings`: validated like `relay 2fa settings set`; 400 with the reason, or
/// 200 with the status, whose `warnings` name allowed but discouraged values.
async fn set_settings(
    State(state): State<AppState>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_admin(&session)?;
    let body: SettingsBody = parse_json(&body)?;
    let mut settings = twofa::settings_load(&state.store)
        .await
        .map_err(admin_error)?;
    if let Some(n) = body.discrepancy {
        settings.discrepancy = n;
    }
    if let Some(issuer) = body.issuer {
        settings.issuer = issuer;
    }
    if let Some(minutes) = body.validity_after_minutes {
        settings.validity_after = Duration::from_secs(minutes.saturating_mul(60));
    }
    if let Some(secs) = body.validity_before_secs {
        settings.validity_before = Duration::from_secs(secs);
    }
    if let Some(n) = body.digits {
        settings.digits = Digits::new(n).map_err(|e| admin_error(e.into()))?;
    }
    if let Some(name) = body.algorithm {
        settings.algorithm = Algorithm::parse(&name).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Unknown algorithm \"{name}\": use SHA1, SHA256 or SHA512."),
            )
        })?;
    }
    if let Some(template) = body.sms_template {
        settings.sms_template = template;
    }
    if let Some(secs) = body.code_lifetime_secs {
        settings.code_lifetime = Duration::from_secs(secs);
    }
    if let Some(n) = body.send_limit_per_hour {
        settings.send_limit_per_hour = n;
    }
    twofa::settings_store(&state.store, &settings)
        .await
        .map_err(admin_error)?;
    tracing::info!(admin = %session.user.username, "two-factor settings changed");
    Ok(Json(status_body(&state).await?))
}
