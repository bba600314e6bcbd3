//! JSON API of web server management for the admin console (administrators only): the settings and
//! every serving relay's listeners, a change of ports / bind address / web root, restart, stop, start.
//!
//! The same operation as `relay server …` ([`crate::server_admin::run`]): a job for the serving relay,
//! whose outcome the request waits for. The answer of a port change arrives on the connection that asked
//! for it, which the change does not cut.

use crate::audit::{self, Action, Actor};
use crate::http::{parse_json, ApiError, ApiResult, AppState, ClientIp, CurrentSession};
use crate::server_admin::{self, JobKind, ServerAdminError, ServerSettings};
use crate::store::ServerChange;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;

pub const ADMINS_ONLY: &str = "Only administrators can manage the web server.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/server", get(status))
        .route("/api/admin/server/settings", post(change))
        .route("/api/admin/server/restart", post(restart))
        .route("/api/admin/server/stop", post(stop))
        .route("/api/admin/server/start", post(start))
}

fn require_admin(session: &CurrentSession) -> ApiResult<()> {
    if session.user.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, ADMINS_ONLY))
    }
}

impl From<ServerAdminError> for ApiError {
    fn from(error: ServerAdminError) -> Self {
        let status = match &error {
            ServerAdminError::Store(_) => return ApiError::from_store(error),
            ServerAdminError::Listener(_)
            | ServerAdminError::Refused(_)
            | ServerAdminError::Stored { .. } => StatusCode::CONFLICT,
            ServerAdminError::NoRelay | ServerAdminError::Timeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, error.to_string())
    }
}

impl ApiError {
    fn from_store(error: ServerAdminError) -> Self {
        match error {
            ServerAdminError::Store(error) => error.into(),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

/// `{"settings": {...}, "listeners": [...]}`: what a start would use, and what every serving relay does.
async fn status_body(state: &AppState) -> ApiResult<serde_json::Value> {
    let settings = ServerSettings::effective(&state.store, &state.config).await?;
    let listeners: Vec<_> = server_admin::live_listeners(&state.store)
        .await?
        .into_iter()
        .map(|row| {
            json!({
                "relay": row.relay_id,
                "name": row.name,
                "address": row.address,
                "state": row.state,
                "error": row.error,
                "seen_at": row.seen_at,
            })
        })
        .collect();
    Ok(json!({
        "settings": {
            "https_port": settings.https_port,
            "http_port": settings.http_port,
            "bind": settings.bind.to_string(),
            "web_root": settings.web_root.map(|root| root.display().to_string()),
        },
        "listeners": listeners,
    }))
}

async fn status(State(state): State<AppState>, session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    Ok(Json(status_body(&state).await?).into_response())
}

/// Absent fields keep their value; `"web_root": ""` serves no web root.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeRequest {
    https_port: Option<u16>,
    http_port: Option<u16>,
    bind: Option<String>,
    web_root: Option<String>,
}

async fn change(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let request: ChangeRequest = parse_json(&body)?;
    let clear_web_root = request.web_root.as_deref() == Some("");
    let change = ServerChange {
        https_port: request.https_port,
        http_port: request.http_port,
        bind: request.bind,
        web_root: request.web_root.filter(|root| !root.is_empty()),
        clear_web_root,
    };
    run(&state, &session, ip, JobKind::Apply, &change).await
}

async fn restart(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
) -> ApiResult<Response> {
    run(
        &state,
        &session,
        ip,
        JobKind::Restart,
        &ServerChange::default(),
    )
    .await
}

async fn stop(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
) -> ApiResult<Response> {
    run(
        &state,
        &session,
        ip,
        JobKind::Stop,
        &ServerChange::default(),
    )
    .await
}

async fn start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
) -> ApiResult<Response> {
    run(
        &state,
        &session,
        ip,
        JobKind::Start,
        &ServerChange::default(),
    )
    .await
}

async fn run(
    state: &AppState,
    session: &CurrentSession,
    ip: IpAddr,
    kind: JobKind,
    change: &ServerChange,
) -> ApiResult<Response> {
    require_admin(session)?;
    let message = server_admin::run(&state.store, kind, change).await?;
    tracing::info!(admin = %session.user.username, kind = kind.as_str(), %message, "web server changed");
    // The same entry as `relay server …` writes (`settings.change`, target `server`).
    let event = audit::Event::new(
        Actor::User(session.user.username.clone()),
        Some(ip),
        Action::SettingsChanged,
        "server",
    );
    audit::record(&state.store, event.detail(message.clone())).await;
    let mut body = status_body(state).await?;
    body["message"] = json!(message);
    Ok(Json(body).into_response())
}
