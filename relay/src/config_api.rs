//! JSON API of configuration export and import for the admin console (administrators only): the same
//! operations as `relay config export|import` ([`crate::config_transfer`]).

use crate::config_transfer::{self, TransferError};
use crate::http::{ApiError, ApiResult, AppState, CurrentSession};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub const ADMINS_ONLY: &str = "Only administrators can export or import the configuration.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/config/export", get(export))
        .route(
            "/api/admin/config/import",
            post(import).layer(DefaultBodyLimit::max(config_transfer::MAX_BYTES)),
        )
}

fn require_admin(session: &CurrentSession) -> ApiResult<()> {
    if session.user.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, ADMINS_ONLY))
    }
}

impl From<TransferError> for ApiError {
    fn from(error: TransferError) -> Self {
        match error {
            TransferError::Store(error) => error.into(),
            other => ApiError::new(StatusCode::BAD_REQUEST, other.to_string()),
        }
    }
}

/// The file as a download (`homedesk-config.json`), never cached.
async fn export(State(state): State<AppState>, session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    let body = config_transfer::export(&state.store).await?;
    tracing::info!(admin = %session.user.username, "configuration exported");
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"homedesk-config.json\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// Replaces the configuration with the body's (all or nothing); the caller's session ends with it.
async fn import(
    State(state): State<AppState>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let summary = config_transfer::import(&state.store, &body, config_transfer::AdminRule::Required).await?;
    tracing::info!(admin = %session.user.username, %summary, "configuration imported");
    Ok(Json(json!({ "message": summary.to_string() })).into_response())
}
