//! The relay's JSON API as the portal uses it (docs/contracts.md).
//!
//! Every state-changing request carries the session's CSRF token; errors come back as the relay's
//! human message, ready to show.

use gloo::net::http::{Request, RequestBuilder, Response};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct WorkstationSummary {
    pub id: i64,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PortalSession {
    pub username: String,
    pub csrf_token: String,
    pub workstations: Vec<WorkstationSummary>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TicketWorkstation {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub host: Option<String>,
    pub domain: Option<String>,
    pub certificate_sha256: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Ticket {
    pub ticket: String,
    pub workstation: TicketWorkstation,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

#[derive(Serialize)]
struct LoginBody<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Serialize)]
struct TicketBody {
    workstation_id: Option<i64>,
}

#[derive(Serialize)]
struct CertificateBody<'a> {
    sha256: &'a str,
}

const UNREACHABLE: &str = "The portal cannot be reached. Check your network connection and try again.";

pub async fn login(username: &str, password: &str) -> Result<PortalSession, String> {
    let request = Request::post("/api/login").json(&LoginBody { username, password }).map_err(|e| e.to_string())?;
    json_or_error(request.send().await).await
}

pub async fn ticket(session: &PortalSession, workstation_id: Option<i64>) -> Result<Ticket, String> {
    let request = with_csrf(Request::post("/api/ticket"), session)
        .json(&TicketBody { workstation_id })
        .map_err(|e| e.to_string())?;
    json_or_error(request.send().await).await
}

pub async fn pin_certificate(session: &PortalSession, workstation_id: i64, sha256: &str) -> Result<(), String> {
    let request = with_csrf(Request::post(&format!("/api/workstations/{workstation_id}/certificate")), session)
        .json(&CertificateBody { sha256 })
        .map_err(|e| e.to_string())?;
    let response = request.send().await.map_err(|_| UNREACHABLE.to_owned())?;
    if response.ok() {
        Ok(())
    } else {
        Err(error_message(response).await)
    }
}

pub async fn logout(session: &PortalSession) {
    // Best effort: the page returns to the login form whatever the answer.
    let _ = with_csrf(Request::post("/api/logout"), session).send().await;
}

fn with_csrf(request: RequestBuilder, session: &PortalSession) -> RequestBuilder {
    request.header("X-CSRF-Token", &session.csrf_token)
}

async fn json_or_error<T: for<'de> Deserialize<'de>>(
    response: Result<Response, gloo::net::Error>,
) -> Result<T, String> {
    let response = response.map_err(|_| UNREACHABLE.to_owned())?;
    if response.ok() {
        response.json().await.map_err(|_| "The portal sent an answer this page does not understand.".to_owned())
    } else {
        Err(error_message(response).await)
    }
}

async fn error_message(response: Response) -> String {
    match response.json::<ErrorBody>().await {
        Ok(body) => body.error,
        Err(_) => format!("The portal refused the request (HTTP {}).", response.status()),
    }
}
