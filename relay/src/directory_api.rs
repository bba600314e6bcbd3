//! JSON API of the directory (LDAP / Active Directory) settings for the admin console's Directory page
//! (administrators only): show, save, check the connection (and optionally one user's sign-in), clear.
//!
//! The same configuration, validation and check as `relay directory set|show|test|clear`
//! ([`crate::directory`]). The service account's password is write-only: answers only say whether one
//! is stored, and a save without one keeps the stored password. A user's password sent to the check is
//! used for that one bind and never stored, logged or audited. Saves and clears are audited as
//! `settings.change` of the area `directory`, like the CLI's.

use crate::admin_api::{require_admin, sentence};
use crate::audit::{self, Action, Actor};
use crate::directory::{self, BindMode, DirectoryConfig, DirectoryError, SaveError};
use crate::http::{parse_json, ApiError, ApiResult, AppState, ClientIp, CurrentSession};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::IpAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/directory", get(show).post(save))
        .route("/api/admin/directory/test", post(test))
        .route("/api/admin/directory/clear", post(clear))
}

/// The configuration as the console shows it: the service password replaced by whether one is set.
fn shown(config: Option<&DirectoryConfig>) -> ApiResult<Value> {
    let Some(config) = config else { return Ok(json!({ "configured": false })) };
    let mut value = serde_json::to_value(config).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Some(bind) = value.get_mut("bind").and_then(Value::as_object_mut) {
        let set = bind.remove("service_password").is_some_and(|p| p.as_str().is_some_and(|p| !p.is_empty()));
        if bind.get("mode").and_then(Value::as_str) == Some("search_bind") {
            bind.insert("service_password_set".into(), json!(set));
        }
    }
    value["configured"] = json!(true);
    Ok(value)
}

fn no_store(body: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `GET /api/admin/directory`: `{"configured": false}` or the configuration without the password.
async fn show(State(state): State<AppState>, session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    let config = directory::load(&state.store).await?;
    Ok(no_store(shown(config.as_ref())?))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// `POST /api/admin/directory` with the whole configuration (as `GET` shows it; in search-then-bind mode
/// `service_password` may be left out to keep the stored one): 200 and the saved configuration.
async fn save(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let mut value: Value = parse_json(&body)?;
    if let Some(object) = value.as_object_mut() {
        object.remove("configured");
    }
    let current = directory::load(&state.store).await?;
    if let Some(bind) = value.get_mut("bind").and_then(Value::as_object_mut) {
        bind.remove("service_password_set");
        let given = bind.get("service_password").and_then(Value::as_str).is_some_and(|p| !p.is_empty());
        if bind.get("mode").and_then(Value::as_str) == Some("search_bind") && !given {
            match current.as_ref().map(|c| &c.bind) {
                Some(BindMode::SearchBind { service_password, .. }) => {
                    bind.insert("service_password".into(), json!(service_password));
                }
                _ => return Err(invalid("The service account's password is required.")),
            }
        }
    }
    let config: DirectoryConfig = serde_json::from_value(value)
        .map_err(|e| invalid(format!("This is not a directory configuration: {e}.")))?;
    match directory::save(&state.store, &config).await {
        Ok(()) => {}
        Err(SaveError::Config(error)) => return Err(invalid(sentence(&error.to_string()))),
        Err(SaveError::Store(error)) => return Err(error.into()),
    }
    record(&state, &session, ip, format!("directory set: {}", config.url)).await;
    Ok(no_store(shown(Some(&config))?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `POST /api/admin/directory/test` `{"username"?, "password"?}`: connects with the stored configuration,
/// binds the service account, reads the base DN; with a user, signs that user in and lists their groups.
async fn test(State(state): State<AppState>, session: CurrentSession, body: Bytes) -> ApiResult<Response> {
    require_admin(&session)?;
    let request: TestRequest = if body.is_empty() { TestRequest { username: None, password: None } } else { parse_json(&body)? };
    let Some(config) = directory::load(&state.store).await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "No directory is configured."));
    };
    let report = directory::check(&config)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, sentence(&format!("the directory cannot be used: {e}"))))?;
    let mut answer = json!({
        "connected": true,
        "service_bind": report.service_bind,
        "base_readable": report.base_readable,
    });
    if let Some(username) = request.username.filter(|u| !u.trim().is_empty()) {
        let password = request.password.unwrap_or_default();
        answer["user"] = match directory::authenticate(&config, &username, &password).await {
            Ok(identity) => json!({ "signed_in": true, "username": identity.username, "dn": identity.dn, "groups": identity.groups }),
            Err(DirectoryError::InvalidCredentials) => {
                json!({ "signed_in": false, "message": "The directory refused this user name or password." })
            }
            Err(error) => json!({ "signed_in": false, "message": sentence(&error.to_string()) }),
        };
    }
    Ok(no_store(answer))
}

/// `POST /api/admin/directory/clear`: only local accounts sign in from now on (204; 404 when none was set).
async fn clear(State(state): State<AppState>, ClientIp(ip): ClientIp, session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    if !directory::clear(&state.store).await? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "No directory is configured."));
    }
    record(&state, &session, ip, "directory cleared".to_owned()).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn record(state: &AppState, session: &CurrentSession, ip: IpAddr, detail: String) {
    let actor = Actor::User(session.user.username.clone());
    let event = audit::Event::new(actor, Some(ip), Action::SettingsChanged, "directory");
    audit::record(&state.store, event.detail(detail)).await;
}
