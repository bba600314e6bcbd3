//! JSON API of the browser admin console (`/admin`), administrators only: workstations, users,
//! assignments (users and directory groups), live sessions with disconnect, and the audit log.
//!
//! The console signs in through the ordinary `/api/login` (same brute-force defence, 2FA and session
//! cookie), then asks `GET /api/admin/session` whether that session may use the console. Every route
//! here goes through the router's Origin check and, for POSTs, the session's CSRF check. Changes go
//! through [`crate::broker`] (the CLI's validated operations) and each is recorded with
//! [`crate::audit::record`], as the CLI does.

use crate::audit::{self, Action, Actor};
use crate::broker::{self, BrokerError, WorkstationEdit};
use crate::http::{parse_json, ApiError, ApiResult, AppState, ClientIp, CurrentSession};
use crate::store::{LiveTunnelRow, StoreError, Workstation};
use crate::tunnel::close_code;
use crate::tunnel_sync::{self, RemoteClose};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;

pub const ADMINS_ONLY: &str = "This console is for administrators only.";
/// The close reason a disconnected user sees.
pub const DISCONNECTED: &str = "Your session was ended by an administrator.";
/// Audit entries per page (at most).
const AUDIT_PAGE: i64 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/session", get(admin_session))
        .route("/api/admin/workstations", get(workstations).post(add_workstation))
        .route("/api/admin/workstations/{action}", post(change_workstation))
        .route("/api/admin/users", get(users).post(add_user))
        .route("/api/admin/users/{action}", post(change_user))
        .route("/api/admin/assignments", post(assign))
        .route("/api/admin/assignments/remove", post(unassign))
        .route("/api/admin/sessions", get(sessions))
        .route("/api/admin/sessions/{id}/disconnect", post(disconnect))
        .route("/api/admin/audit", get(audit_log))
}

/// The one admission rule of every `/api/admin/...` route.
pub fn require_admin(session: &CurrentSession) -> ApiResult<()> {
    if session.user.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, ADMINS_ONLY))
    }
}

impl From<BrokerError> for ApiError {
    fn from(error: BrokerError) -> Self {
        let status = match &error {
            BrokerError::Invalid(_) => StatusCode::BAD_REQUEST,
            BrokerError::Store(
                StoreError::UserExists(_)
                | StoreError::WorkstationExists(_)
                | StoreError::AlreadyAssigned(..)
                | StoreError::GroupAlreadyAssigned(..)
                | StoreError::LocalNameTaken(_),
            ) => StatusCode::CONFLICT,
            BrokerError::Store(
                StoreError::UnknownUser(_)
                | StoreError::UnknownWorkstation(_)
                | StoreError::NotAssigned(..)
                | StoreError::GroupNotAssigned(..),
            ) => StatusCode::NOT_FOUND,
            BrokerError::Store(store) if store.is_unavailable() => {
                tracing::error!(%error, "database unavailable");
                return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, crate::http::DATABASE_UNAVAILABLE);
            }
            BrokerError::Store(_) | BrokerError::Auth(_) => {
                tracing::error!(%error, "admin request failed");
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, crate::http::INTERNAL);
            }
        };
        ApiError::new(status, sentence(&error.to_string()))
    }
}

/// "a user named …" → "A user named ….": broker messages read as sentences in the console.
pub(crate) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Records an administrator's change made through the console.
async fn audited(state: &AppState, session: &CurrentSession, ip: IpAddr, action: Action, target: &str, detail: String) {
    let event = audit::Event::new(Actor::User(session.user.username.clone()), Some(ip), action, target);
    audit::record(&state.store, event.detail(detail)).await;
}

fn no_store<T: IntoResponse>(body: T) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// `GET /api/admin/session`: the signed-in administrator and the CSRF token (console start and reload).
async fn admin_session(session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    Ok(no_store(Json(
        json!({ "username": session.user.username, "csrf_token": session.csrf_token }),
    )))
}

// ------------------------------------------------------------------ workstations

#[derive(Serialize)]
struct WorkstationItem {
    id: i64,
    name: String,
    host: String,
    port: u16,
    domain: Option<String>,
    notes: Option<String>,
    certificate_sha256: Option<String>,
    enabled: bool,
    /// Users assigned directly, sorted.
    users: Vec<String>,
    /// Directory groups assigned, sorted.
    groups: Vec<String>,
}

async fn workstations(State(state): State<AppState>, session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    let users = broker::list_users(&state.store).await?;
    let groups = state.store.group_assignments().await?;
    let items: Vec<WorkstationItem> = broker::list_workstations(&state.store)
        .await?
        .into_iter()
        .map(|w: Workstation| WorkstationItem {
            users: users
                .iter()
                .filter(|u| u.workstations.contains(&w.name))
                .map(|u| u.user.username.clone())
                .collect(),
            groups: groups
                .iter()
                .filter(|(_, ws)| *ws == w.name)
                .map(|(group, _)| group.clone())
                .collect(),
            id: w.id,
            name: w.name,
            host: w.host,
            port: w.port,
            domain: w.domain,
            notes: w.notes,
            certificate_sha256: w.cert_sha256,
            enabled: w.enabled,
        })
        .collect();
    Ok(no_store(Json(items)))
}

#[derive(Deserialize)]
struct NewWorkstationRequest {
    name: String,
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    notes: Option<String>,
}

fn default_port() -> u16 {
    3389
}

/// `POST /api/admin/workstations`: registers a workstation (201).
async fn add_workstation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let request: NewWorkstationRequest = parse_json(&body)?;
    let added = broker::add_workstation(
        &state.store,
        &request.name,
        &request.host,
        request.port,
        request.domain.filter(|d| !d.trim().is_empty()),
        request.notes.filter(|n| !n.trim().is_empty()),
    )
    .await?;
    let detail = format!("{}:{}", added.host, added.port);
    audited(&state, &session, ip, Action::WorkstationAdded, &added.name, detail).await;
    Ok((StatusCode::CREATED, Json(json!({ "id": added.id, "name": added.name }))).into_response())
}

#[derive(Deserialize)]
struct WorkstationChange {
    name: String,
    /// For `edit`: the fields to change (absent = keep; `domain`/`notes` null or "" = remove).
    #[serde(default)]
    new_name: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default, deserialize_with = "present")]
    domain: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    notes: Option<Option<String>>,
    /// For `pin`: the certificate's SHA-256 (hex; colons and spaces allowed).
    #[serde(default)]
    fingerprint: Option<String>,
}

/// A field that is present (even as null) becomes `Some`, so "remove" and "keep" differ.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    let value: Option<String> = Deserialize::deserialize(deserializer)?;
    Ok(Some(value.filter(|v| !v.trim().is_empty())))
}

/// `POST /api/admin/workstations/{edit|remove|enable|disable|repin|pin}` with `{"name", …}` (204); `pin` takes
/// `"fingerprint"`.
async fn change_workstation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(action): Path<String>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let request: WorkstationChange = parse_json(&body)?;
    let name = request.name.as_str();
    let (action, detail) = match action.as_str() {
        "edit" => {
            let edit = WorkstationEdit {
                name: request.new_name.clone(),
                host: request.host.clone(),
                port: request.port,
                domain: request.domain.clone(),
                notes: request.notes.clone(),
            };
            let edited = broker::edit_workstation(&state.store, name, edit).await?;
            let w = edited.workstation;
            let mut detail = format!("now {} at {}:{}", w.name, w.host, w.port);
            if edited.pin_cleared {
                detail.push_str("; pinned certificate forgotten");
            }
            (Action::WorkstationEdited, detail)
        }
        "remove" => {
            broker::remove_workstation(&state.store, name).await?;
            (Action::WorkstationRemoved, String::new())
        }
        "enable" | "disable" => {
            let enable = action == "enable";
            broker::set_workstation_enabled(&state.store, name, enable).await?;
            (
                if enable {
                    Action::WorkstationEnabled
                } else {
                    Action::WorkstationDisabled
                },
                String::new(),
            )
        }
        "repin" => {
            broker::repin_workstation(&state.store, name).await?;
            (Action::WorkstationRepinned, String::new())
        }
        "pin" => {
            let fingerprint = request.fingerprint.as_deref().unwrap_or_default();
            let pinned = broker::pin_workstation(&state.store, name, fingerprint).await?;
            (Action::WorkstationPinned, pinned)
        }
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "Unknown workstation action.")),
    };
    audited(&state, &session, ip, action, name, detail).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ------------------------------------------------------------------ users

async fn users(State(state): State<AppState>, session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    let groups = state.store.group_assignments().await?;
    let users: Vec<_> = broker::list_users(&state.store)
        .await?
        .into_iter()
        .map(|u| {
            json!({
                "username": u.user.username,
                "admin": u.user.is_admin,
                "directory": u.user.directory,
                "workstations": u.workstations,
            })
        })
        .collect();
    let groups: Vec<_> = groups
        .iter()
        .map(|(group, workstation)| json!({ "group": group, "workstation": workstation }))
        .collect();
    Ok(no_store(Json(json!({ "users": users, "group_assignments": groups }))))
}

#[derive(Deserialize)]
struct UserRequest {
    username: String,
    #[serde(default)]
    password: Option<String>,
}

/// `POST /api/admin/users` `{"username","password"}`: a local account (201).
async fn add_user(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let request: UserRequest = parse_json(&body)?;
    let Some(password) = request.password.filter(|p| !p.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Enter a password for the new account.",
        ));
    };
    broker::add_user(&state.store, &request.username, Some(password)).await?;
    audited(
        &state,
        &session,
        ip,
        Action::UserAdded,
        &request.username,
        String::new(),
    )
    .await;
    Ok(StatusCode::CREATED.into_response())
}

/// `POST /api/admin/users/{remove|password}` `{"username","password"?}` (204).
async fn change_user(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(action): Path<String>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let request: UserRequest = parse_json(&body)?;
    let name = request.username.as_str();
    let action = match action.as_str() {
        "remove" => {
            if name == session.user.username {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "You cannot remove your own account.",
                ));
            }
            broker::remove_user(&state.store, name).await?;
            Action::UserRemoved
        }
        "password" => {
            broker::set_password(&state.store, name, request.password.as_deref().unwrap_or("")).await?;
            Action::PasswordReset
        }
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "Unknown user action.")),
    };
    audited(&state, &session, ip, action, name, String::new()).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ------------------------------------------------------------------ assignments

#[derive(Deserialize)]
struct AssignmentRequest {
    /// Exactly one of `user` and `group`.
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    group: Option<String>,
    workstation: String,
}

enum Assignee {
    User(String),
    Group(String),
}

impl AssignmentRequest {
    fn assignee(&self) -> ApiResult<Assignee> {
        let pick = |value: &Option<String>| value.as_ref().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        match (pick(&self.user), pick(&self.group)) {
            (Some(user), None) => Ok(Assignee::User(user)),
            (None, Some(group)) => Ok(Assignee::Group(group)),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "Give either a user or a directory group.",
            )),
        }
    }
}

/// `POST /api/admin/assignments` `{"user" or "group", "workstation"}` (204).
async fn assign(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    change_assignment(state, ip, session, body, true).await
}

/// `POST /api/admin/assignments/remove` (same body, 204).
async fn unassign(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    change_assignment(state, ip, session, body, false).await
}

async fn change_assignment(
    state: AppState,
    ip: IpAddr,
    session: CurrentSession,
    body: Bytes,
    add: bool,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let request: AssignmentRequest = parse_json(&body)?;
    let workstation = request.workstation.trim();
    let (action, who) = match (request.assignee()?, add) {
        (Assignee::User(user), true) => {
            broker::assign(&state.store, &user, workstation).await?;
            (Action::Assigned, user)
        }
        (Assignee::User(user), false) => {
            broker::unassign(&state.store, &user, workstation).await?;
            (Action::Unassigned, user)
        }
        (Assignee::Group(group), true) => (
            Action::GroupAssigned,
            broker::assign_group(&state.store, &group, workstation).await?,
        ),
        (Assignee::Group(group), false) => (
            Action::GroupUnassigned,
            broker::unassign_group(&state.store, &group, workstation).await?,
        ),
    };
    audited(&state, &session, ip, action, workstation, who).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ------------------------------------------------------------------ live sessions

/// `GET /api/admin/sessions`: the live tunnels of every relay on this database, oldest first (this
/// relay's from memory, the others' as they last shared them: [`crate::tunnel_sync`]).
async fn sessions(State(state): State<AppState>, session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    let mut rows: Vec<LiveTunnelRow> = state
        .pipes
        .snapshot()
        .iter()
        .map(|p| tunnel_sync::row_of(&state.relay_id, p))
        .collect();
    let fresh_since = tunnel_sync::fresh_since(state.config.tunnel_sync_interval);
    rows.extend(
        state
            .store
            .live_tunnels(fresh_since)
            .await?
            .into_iter()
            .filter(|row| row.relay_id != state.relay_id),
    );
    rows.sort_by_key(|row| (row.started_at, row.id));
    let items: Vec<_> = rows
        .into_iter()
        .map(|row| {
            json!({
                "id": row.id,
                "user": row.username,
                "workstation": row.workstation,
                "kind": row.kind,
                "client_ip": row.client_ip,
                "since": row.started_at,
                "bytes_up": row.bytes_up,
                "bytes_down": row.bytes_down,
                "relay": row.relay_id,
            })
        })
        .collect();
    Ok(no_store(Json(items)))
}

/// `POST /api/admin/sessions/{id}/disconnect`: closes that tunnel, on whichever relay pipes it (204 once
/// it is closed; 404 when it is gone; 504 when its relay did not close it in time).
async fn disconnect(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<u64>,
    session: CurrentSession,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let closed = match state.pipes.close_id(id, close_code::DISCONNECTED, DISCONNECTED) {
        Some(pipe) => tunnel_sync::row_of(&state.relay_id, &pipe),
        None => close_on_another_relay(&state, id).await?,
    };
    let detail = format!("{} of {} from {}", closed.kind, closed.username, closed.client_ip);
    audited(
        &state,
        &session,
        ip,
        Action::SessionDisconnected,
        &closed.workstation,
        detail,
    )
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Asks the relay that pipes tunnel `id` to close it and waits until it did.
async fn close_on_another_relay(state: &AppState, id: u64) -> ApiResult<LiveTunnelRow> {
    let gone = || ApiError::new(StatusCode::NOT_FOUND, "This session has already ended.");
    let id = i64::try_from(id).map_err(|_| gone())?;
    match tunnel_sync::close_remote(&state.store, id, state.config.tunnel_sync_interval, Some(&state.relay_id)).await? {
        RemoteClose::Closed(row) => Ok(row),
        RemoteClose::Gone => Err(gone()),
        RemoteClose::TimedOut(row) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "The relay serving this session ({}) did not close it within {} seconds; it may be overloaded. \
                 It will close the session as soon as it can.",
                row.relay_id,
                tunnel_sync::CLOSE_WAIT.as_secs()
            ),
        )),
    }
}

// ------------------------------------------------------------------ audit log

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /api/admin/audit?q=TEXT&before=ID&limit=N`: entries newest first, a page at a time.
async fn audit_log(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
    session: CurrentSession,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let limit = query.limit.unwrap_or(AUDIT_PAGE).clamp(1, AUDIT_PAGE);
    let rows = audit::page(&state.store, &query.q, query.before, limit).await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let entries: Vec<_> = rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "at": r.at, "actor": r.actor, "ip": r.ip,
                "action": r.action, "target": r.target, "detail": r.detail,
            })
        })
        .collect();
    Ok(no_store(Json(
        json!({ "entries": entries, "next_before": next_before }),
    )))
}
