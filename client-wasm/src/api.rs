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

/// The second sign-in step the relay asks for after a correct password.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum SecondFactor {
    /// First sign-in after being added: scan the QR code, then enter one code.
    Enrol { qr_svg: String, secret: String, otpauth_uri: String, digits: u8 },
    /// Enter a code; `method` is `app`, `sms` or `email`.
    Code { method: String, digits: u8 },
}

/// A session that passed the password and waits for its second factor.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingLogin {
    pub username: String,
    pub csrf_token: String,
    pub second_factor: SecondFactor,
}

/// What a login answers: a full session, or a second step to do first.
#[derive(Clone, Debug, PartialEq)]
pub enum LoginAnswer {
    SignedIn(PortalSession),
    SecondFactor(PendingLogin),
}

#[derive(Deserialize)]
struct LoginReply {
    username: String,
    csrf_token: String,
    #[serde(default)]
    workstations: Vec<WorkstationSummary>,
    #[serde(default)]
    second_factor: Option<SecondFactor>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
}

#[derive(Serialize)]
struct CodeBody<'a> {
    code: &'a str,
}

#[derive(Serialize)]
struct TicketBody {
    workstation_id: Option<i64>,
}

#[derive(Serialize)]
struct CertificateBody<'a> {
    sha256: &'a str,
}

pub(crate) const UNREACHABLE: &str = "The portal cannot be reached. Check your network connection and try again.";

pub async fn login(username: &str, password: &str, domain: Option<&str>) -> Result<LoginAnswer, String> {
    let request =
        Request::post("/api/login").json(&LoginBody { username, password, domain }).map_err(|e| e.to_string())?;
    let reply: LoginReply = json_or_error(request.send().await).await?;
    Ok(match reply.second_factor {
        Some(second_factor) => LoginAnswer::SecondFactor(PendingLogin {
            username: reply.username,
            csrf_token: reply.csrf_token,
            second_factor,
        }),
        None => LoginAnswer::SignedIn(PortalSession {
            username: reply.username,
            csrf_token: reply.csrf_token,
            workstations: reply.workstations,
        }),
    })
}

/// The second step: a correct code turns the pending session into a full one (new cookie and token).
pub async fn verify_code(pending: &PendingLogin, code: &str) -> Result<PortalSession, String> {
    let request = Request::post("/api/2fa/verify")
        .header("X-CSRF-Token", &pending.csrf_token)
        .json(&CodeBody { code })
        .map_err(|e| e.to_string())?;
    json_or_error(request.send().await).await
}

/// Asks the relay to send a new code by SMS or email.
pub async fn resend_code(pending: &PendingLogin) -> Result<(), String> {
    let response = Request::post("/api/2fa/resend")
        .header("X-CSRF-Token", &pending.csrf_token)
        .send()
        .await
        .map_err(|_| UNREACHABLE.to_owned())?;
    if response.ok() {
        Ok(())
    } else {
        Err(error_message(response).await)
    }
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
    logout_with_token(session.csrf_token.clone()).await;
}

/// Ends the session the cookie names (best effort: the page returns to its login form whatever the answer).
pub async fn logout_with_token(csrf_token: String) {
    let _ = Request::post("/api/logout").header("X-CSRF-Token", &csrf_token).send().await;
}

fn with_csrf(request: RequestBuilder, session: &PortalSession) -> RequestBuilder {
    request.header("X-CSRF-Token", &session.csrf_token)
}

pub(crate) async fn json_or_error<T: for<'de> Deserialize<'de>>(
    response: Result<Response, gloo::net::Error>,
) -> Result<T, String> {
    let response = response.map_err(|_| UNREACHABLE.to_owned())?;
    if response.ok() {
        response.json().await.map_err(|_| "The portal sent an answer this page does not understand.".to_owned())
    } else {
        Err(error_message(response).await)
    }
}

pub(crate) async fn error_message(response: Response) -> String {
    match response.json::<ErrorBody>().await {
        Ok(body) => body.error,
        Err(_) => format!("The portal refused the request (HTTP {}).", response.status()),
    }
}
