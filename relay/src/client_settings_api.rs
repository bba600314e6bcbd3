//! JSON API of the HTML5 client's settings for the admin console (administrators only): read them,
//! change some. The same validated operation as `relay client-settings set` ([`crate::client_settings`]);
//! POSTs go through the router's Origin check and the session's CSRF check like every other.

use crate::client_settings::{self, ClientSettingsError};
use crate::http::{parse_json, ApiError, ApiResult, AppState, CurrentSession};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

pub const ADMINS_ONLY: &str = "Only administrators can change the HTML5 client's settings.";

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/admin/client-settings", get(show).post(change))
}

fn require_admin(session: &CurrentSession) -> ApiResult<()> {
    if session.user.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, ADMINS_ONLY))
    }
}

impl From<ClientSettingsError> for ApiError {
    fn from(error: ClientSettingsError) -> Self {
        match error {
            ClientSettingsError::Store(error) => error.into(),
            ClientSettingsError::Invalid(message) => ApiError::new(StatusCode::BAD_REQUEST, message),
        }
    }
}

async fn show(
    State(state): State<AppState>,
    session: CurrentSession,
) -> ApiResult<Json<client_settings::ClientSettings>> {
    require_admin(&session)?;
    Ok(Json(client_settings::load(&state.store).await?))
}

async fn change(
    State(state): State<AppState>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Json<client_settings::ClientSettings>> {
    require_admin(&session)?;
    let body: serde_json::Value = parse_json(&body)?;
    let changes = client_settings::changes_from_json(&body)?;
    let settings = client_settings::update(&state.store, &changes).await?;
    tracing::info!(admin = %session.user.username, settings = ?changes.iter().map(|c| &c.0).collect::<Vec<_>>(),
        "client settings changed");
    Ok(Json(settings))
}
