//! The admin console's calls to the relay (`/api/admin/...`, docs/contracts.md): a signed-in
//! administrator, and small GET/POST helpers that every console page uses.
//!
//! POSTs carry the session's CSRF token. Errors are the relay's human message, ready to show; a 401
//! (session ended or expired) is told apart so the console can return to its sign-in form.

use crate::api::{error_message, UNREACHABLE};
use gloo::net::http::{Request, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The signed-in administrator, as `GET /api/admin/session` answers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct AdminSession {
    pub username: String,
    pub csrf_token: String,
}

/// Why a console request failed.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminError {
    /// Not signed in (any more): the console shows its sign-in form.
    SignedOut(String),
    /// Anything else, as a sentence for the administrator.
    Failed(String),
}

impl AdminError {
    pub fn message(&self) -> &str {
        match self {
            AdminError::SignedOut(message) | AdminError::Failed(message) => message,
        }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// The session behind the browser's cookie, if it belongs to an administrator.
pub async fn session() -> Result<AdminSession, AdminError> {
    get("/api/admin/session").await
}

/// `GET path` → JSON.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, AdminError> {
    let response = Request::get(path).send().await;
    json(response).await
}

/// `POST path` with a JSON body → JSON.
#[allow(
    dead_code,
    reason = "for the console's pages (a shell without pages does not call it)"
)]
pub async fn post<B: Serialize, T: DeserializeOwned>(
    session: &AdminSession,
    path: &str,
    body: &B,
) -> Result<T, AdminError> {
    let request = Request::post(path)
        .header("X-CSRF-Token", &session.csrf_token)
        .json(body)
        .map_err(|e| AdminError::Failed(e.to_string()))?;
    json(request.send().await).await
}

/// `POST path` with a JSON body, for answers without a body (204).
pub async fn post_no_content<B: Serialize>(session: &AdminSession, path: &str, body: &B) -> Result<(), AdminError> {
    let request = Request::post(path)
        .header("X-CSRF-Token", &session.csrf_token)
        .json(body)
        .map_err(|e| AdminError::Failed(e.to_string()))?;
    checked(request.send().await).await.map(drop)
}

async fn json<T: DeserializeOwned>(response: Result<Response, gloo::net::Error>) -> Result<T, AdminError> {
    let response = checked(response).await?;
    response
        .json()
        .await
        .map_err(|_| AdminError::Failed("The relay sent an answer this console does not understand.".to_owned()))
}

async fn checked(response: Result<Response, gloo::net::Error>) -> Result<Response, AdminError> {
    let response = response.map_err(|_| AdminError::Failed(UNREACHABLE.to_owned()))?;
    match response.status() {
        200..=299 => Ok(response),
        401 => Err(AdminError::SignedOut(error_message(response).await)),
        _ => Err(AdminError::Failed(error_message(response).await)),
    }
}
