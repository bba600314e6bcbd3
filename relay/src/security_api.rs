//! JSON API of the brute-force defence for the admin console's Security page (administrators only):
//! the limits, the whitelist and the IPs blocked now, with unblock.
//!
//! The same validated, audited operations as `relay security …` ([`crate::security_admin`]), so the
//! console and the CLI refuse the same values with the same sentences and write the same audit
//! entries. POSTs go through the router's Origin check and the session's CSRF check like every other.
//! Every success answers the whole page's state, so the console shows what is now in force.

use crate::admin_api::require_admin;
use crate::audit::Actor;
use crate::bruteforce::SecurityError;
use crate::http::{parse_json, ApiError, ApiResult, AppState, ClientIp, CurrentSession};
use crate::security_admin::{self, ChangedBy, LimitChanges, Outcome};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::net::IpAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/security", get(status))
        .route("/api/admin/security/limits", post(change_limits))
        .route("/api/admin/security/whitelist", post(whitelist_add))
        .route("/api/admin/security/whitelist/remove", post(whitelist_remove))
        .route("/api/admin/security/unblock", post(unblock))
}

/// A refused value is 400 with its sentence; anything else is the usual internal error.
fn refused(error: SecurityError) -> ApiError {
    match error {
        SecurityError::Invalid(message) => ApiError::new(StatusCode::BAD_REQUEST, message),
        other => other.into(),
    }
}

fn changed_by(session: &CurrentSession, ip: IpAddr) -> ChangedBy {
    ChangedBy {
        actor: Actor::User(session.user.username.clone()),
        ip: Some(ip),
    }
}

/// The page's state: limits, whitelist, blocks in force (newest first) and the caller's own IP (so
/// an administrator can whitelist the network they work from).
async fn status_body(state: &AppState, ip: IpAddr) -> ApiResult<Value> {
    let guard = &state.guard;
    let policy = guard.policy().await?;
    let limits: Map<String, Value> = security_admin::limits_of(&policy)
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    let whitelist = guard.whitelist().await?;
    let blocked: Vec<Value> = guard
        .blocked()
        .await?
        .into_iter()
        .map(|block| {
            let whitelisted = block
                .ip
                .parse::<IpAddr>()
                .is_ok_and(|address| whitelist.iter().any(|cidr| cidr.contains(address)));
            json!({
                "ip": block.ip,
                "blocked_at": block.blocked_at,
                "blocked_until": block.blocked_until,
                "failures": block.failures,
                "reason": block.reason,
                "whitelisted": whitelisted,
            })
        })
        .collect();
    let whitelist: Vec<String> = whitelist.iter().map(ToString::to_string).collect();
    Ok(json!({
        "limits": limits,
        "whitelist": whitelist,
        "blocked": blocked,
        "your_ip": crate::netaddr::canonical(ip).to_string(),
    }))
}

/// `GET /api/admin/security`.
async fn status(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
) -> ApiResult<Json<Value>> {
    require_admin(&session)?;
    Ok(Json(status_body(&state, ip).await?))
}

/// `POST /api/admin/security/limits` with some of the limits; all or nothing.
async fn change_limits(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_admin(&session)?;
    let body: Value = parse_json(&body)?;
    let changes = LimitChanges::from_json(&body).map_err(refused)?;
    security_admin::change_limits(&state.guard, &changes, &changed_by(&session, ip))
        .await
        .map_err(refused)?;
    tracing::info!(admin = %session.user.username, ?changes, "brute-force limits changed");
    Ok(Json(status_body(&state, ip).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CidrBody {
    cidr: String,
}

/// `POST /api/admin/security/whitelist` `{"cidr"}`: 409 when already listed.
async fn whitelist_add(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    change_whitelist(&state, ip, &session, &body, WhitelistChange::Add).await
}

/// `POST /api/admin/security/whitelist/remove` `{"cidr"}`: 404 when not listed.
async fn whitelist_remove(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    change_whitelist(&state, ip, &session, &body, WhitelistChange::Remove).await
}

#[derive(Clone, Copy)]
enum WhitelistChange {
    Add,
    Remove,
}

/// Adds or removes a range through the CLI's shared operation; the page's new state, or the reason
/// nothing changed.
async fn change_whitelist(
    state: &AppState,
    ip: IpAddr,
    session: &CurrentSession,
    body: &Bytes,
    change: WhitelistChange,
) -> ApiResult<Json<Value>> {
    require_admin(session)?;
    let body: CidrBody = parse_json(body)?;
    let cidr = security_admin::parse_cidr(&body.cidr).map_err(refused)?;
    let by = changed_by(session, ip);
    let outcome = match change {
        WhitelistChange::Add => security_admin::whitelist_add(&state.guard, &cidr, &by).await,
        WhitelistChange::Remove => security_admin::whitelist_remove(&state.guard, &cidr, &by).await,
    }
    .map_err(refused)?;
    match (outcome, change) {
        (Outcome::Done, _) => Ok(Json(status_body(state, ip).await?)),
        (Outcome::Nothing, WhitelistChange::Add) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{cidr} is already on the whitelist."),
        )),
        (Outcome::Nothing, WhitelistChange::Remove) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{cidr} is not on the whitelist."),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IpBody {
    ip: String,
}

/// `POST /api/admin/security/unblock` `{"ip"}`: lifts the block and forgets the IP's failures; 404
/// when it is not blocked (its failures are forgotten all the same).
async fn unblock(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_admin(&session)?;
    let body: IpBody = parse_json(&body)?;
    let target = security_admin::parse_ip(&body.ip).map_err(refused)?;
    match security_admin::unblock(&state.guard, target, &changed_by(&session, ip))
        .await
        .map_err(refused)?
    {
        Outcome::Done => Ok(Json(status_body(&state, ip).await?)),
        Outcome::Nothing => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{target} is not blocked."),
        )),
    }
}
