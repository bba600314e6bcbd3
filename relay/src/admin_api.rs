//! JSON API of the browser admin console (`/admin`), administrators only.
//!
//! The console signs in through the ordinary `/api/login` (same brute-force defence, 2FA and session
//! cookie), then asks `GET /api/admin/session` whether that session may use the console. Every route
//! here goes through the router's Origin check and, for POSTs, the session's CSRF check.

use crate::http::{ApiError, ApiResult, AppState, CurrentSession};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub const ADMINS_ONLY: &str = "This console is for administrators only.";

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/admin/session", get(admin_session))
}

/// The one admission rule of every `/api/admin/...` route.
pub fn require_admin(session: &CurrentSession) -> ApiResult<()> {
    if session.user.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, ADMINS_ONLY))
    }
}

/// `GET /api/admin/session`: the signed-in administrator and the CSRF token (console start and reload).
async fn admin_session(session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    let body = json!({ "username": session.user.username, "csrf_token": session.csrf_token });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
