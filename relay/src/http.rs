//! The HTTPS application: router, JSON API handlers, origin/CSRF enforcement, static portal files
//! and security headers.
//!
//! Handlers are thin: they parse, call [`crate::auth`], [`crate::tickets`] and [`crate::store`], and
//! turn outcomes into the status codes and messages of `docs/contracts.md`. Every error body is
//! `{"error": "<sentence for a person>"}`. Login goes through [`crate::bruteforce`] first: a blocked
//! client IP (see [`ClientIp`]) gets 429 without its password being checked.

use crate::audit::{self, Action, Actor};
use crate::auth::{self, AuthError};
use crate::bruteforce::{self, LoginGuard, Refusal, SecurityError};
use crate::config::{normalize_origin, ServeConfig};
use crate::pipes::PipeRegistry;
use crate::store::{PinOutcome, SessionRecord, Store, StoreError, User, Workstation};
use crate::tickets;
use crate::twofa::{self, SecondStep, TwoFactor, TwoFactorError};
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tower_http::services::ServeDir;

pub const NOT_LOGGED_IN: &str = "You are not logged in.";
pub const NO_WORKSTATION: &str =
    "No workstation is assigned to your account. Contact your administrator.";
pub const NOT_ASSIGNED: &str = "This workstation is not assigned to your account.";
pub const DISABLED: &str = "This workstation is disabled by the administrator.";
pub const FOREIGN_ORIGIN: &str =
    "The request was refused because it did not come from this portal.";
pub const BAD_CSRF: &str =
    "The request was refused (missing or wrong security token). Reload the page and try again.";
pub const INTERNAL: &str = "The relay had an internal error. Please try again later.";
/// The database is locked or unreachable: the request changed nothing and may simply be retried.
pub const DATABASE_UNAVAILABLE: &str =
    "The database is unavailable right now; nothing was changed. Try again in a moment.";
pub const SECOND_FACTOR_NEEDED: &str = "Enter your verification code first.";
pub const CODE_NOT_SENT: &str =
    "The verification code could not be sent. Try again later or contact your administrator.";
pub const FACTOR_EXPIRED: &str = "Your verification has expired. Sign in again.";

/// Content-Security-Policy of every HTTPS response: no inline script or style, wasm allowed,
/// WebSockets only to ourselves (`wss:` for browsers that do not count wss as 'self').
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self'; img-src 'self' data: blob:; connect-src 'self' wss:; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'; form-action 'self'";

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<AppInner>,
}

pub struct AppInner {
    pub store: Store,
    pub guard: LoginGuard,
    pub passwords: auth::Passwords,
    /// The certificate new TLS connections get (decides whether HSTS is sent).
    pub certificate: Arc<crate::tls::CertificateSwitch>,
    pub twofa: TwoFactor,
    pub config: ServeConfig,
    /// The portal's files (changeable while serving; `config.web_root` is only the start's default).
    pub web_root: crate::listeners::WebRoot,
    pub pipes: PipeRegistry,
    /// Names this relay among those sharing the database (listener status, live tunnels).
    pub relay_id: String,
    /// Cancelled when the relay shuts down; open pipes close themselves.
    pub shutdown: CancellationToken,
    /// Tracks spawned tasks (connections, pipes) so that shutdown can wait for them.
    pub tasks: TaskTracker,
}

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.inner
    }
}

impl AppState {
    pub fn new(inner: AppInner) -> Self {
        AppState {
            inner: Arc::new(inner),
        }
    }
}

/// An API error: status plus a sentence for the user.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::error!(%error, "database unavailable");
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, DATABASE_UNAVAILABLE);
        }
        ApiError::internal(error)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, auth::LOGIN_FAILED)
            }
            AuthError::DirectoryUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                crate::directory::DIRECTORY_UNAVAILABLE,
            ),
            AuthError::Store(error) => error.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<TwoFactorError> for ApiError {
    fn from(error: TwoFactorError) -> Self {
        match error {
            TwoFactorError::Code(code @ crate::totp::TotpError::Malformed { .. }) => {
                ApiError::new(StatusCode::BAD_REQUEST, capitalize(&code.to_string()))
            }
            TwoFactorError::Code(code) => {
                ApiError::new(StatusCode::UNAUTHORIZED, capitalize(&code.to_string()))
            }
            TwoFactorError::NotStarted => {
                ApiError::new(StatusCode::UNAUTHORIZED, capitalize(&error.to_string()))
            }
            TwoFactorError::SendLimit => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                capitalize(&error.to_string()),
            ),
            TwoFactorError::Delivery(error) => {
                tracing::error!(%error, "verification code not sent");
                ApiError::new(StatusCode::BAD_GATEWAY, CODE_NOT_SENT)
            }
            TwoFactorError::Store(error) => error.into(),
            other => ApiError::internal(other),
        }
    }
}

/// "the code…" → "The code…." for messages shown as sentences.
fn capitalize(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

impl From<SecurityError> for ApiError {
    fn from(error: SecurityError) -> Self {
        match error {
            SecurityError::Store(error) => error.into(),
            other => ApiError::internal(other),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The 429 of a refused sign-in, with `Retry-After` in seconds.
fn too_many_attempts(refusal: &Refusal) -> Response {
    let mut response =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, refusal.message()).into_response();
    let seconds = refusal.retry_after().as_secs().max(1);
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Closes the live tunnels of an IP that was just blocked.
pub fn close_blocked_tunnels(state: &AppState, ip: IpAddr, retry_after: std::time::Duration) {
    let reason = bruteforce::ip_blocked_message(retry_after);
    let closed = state
        .pipes
        .close_ip(ip, crate::tunnel::close_code::BLOCKED, &reason);
    if closed > 0 {
        tracing::warn!(%ip, closed, "closed the live tunnels of a blocked IP");
    }
}

/// The address of the TCP peer, inserted by the listener.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The client's IP: the TCP peer, or behind a trusted proxy the forwarded address
/// ([`crate::netaddr::client_ip`]). Every security decision about "who" uses this, never the raw header.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let PeerAddr(peer) = PeerAddr::from_request_parts(parts, state).await?;
        Ok(ClientIp(crate::netaddr::client_ip(
            peer.ip(),
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

/// Our own origin as the browser sees it: `https://` + the Host header (or HTTP/2 authority).
fn own_origin(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))?;
    normalize_origin(&format!("https://{host}")).ok()
}

/// True if the request's `Origin` is ours or one of the configured public origins.
pub fn origin_allowed(headers: &HeaderMap, uri: &Uri, public_origins: &[String]) -> bool {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let (Some(origin), None) = (origins.next(), origins.next()) else {
        return false;
    };
    let Some(origin) = origin.to_str().ok().and_then(|o| normalize_origin(o).ok()) else {
        return false;
    };
    public_origins.contains(&origin) || own_origin(headers, uri).is_some_and(|own| own == origin)
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Every state-changing request must come from our own origin (first line of CSRF defence).
async fn require_same_origin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !is_safe_method(request.method())
        && !origin_allowed(
            request.headers(),
            request.uri(),
            &state.config.public_origins,
        )
    {
        return ApiError::new(StatusCode::FORBIDDEN, FOREIGN_ORIGIN).into_response();
    }
    next.run(request).await
}

/// HSTS (one year) once a publicly trusted certificate is served; never with the self-signed one, which
/// browsers would then refuse without the option to continue.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Adds the security headers to every response that does not set them itself.
async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if state.certificate.publicly_trusted() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    let defaults: [(HeaderName, &'static str); 5] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in defaults {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// The value of our session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == auth::SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// A logged-in user who completed every sign-in step. For unsafe methods, extraction also checks
/// the `X-CSRF-Token` header. A session still waiting for its second factor is refused (401).
pub struct CurrentSession {
    pub user: User,
    pub csrf_token: String,
    pub record: SessionRecord,
}

/// The session behind the request's cookie, with the CSRF check for unsafe methods.
async fn any_session(parts: &Parts, state: &AppState) -> Result<SessionRecord, ApiError> {
    let session = match session_cookie(&parts.headers) {
        Some(id) => auth::session_for(&state.store, &id, state.config.session_idle_timeout).await?,
        None => None,
    };
    let Some(session) = session else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, NOT_LOGGED_IN));
    };
    if !is_safe_method(&parts.method) {
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !auth::secrets_equal(sent, &session.csrf_token) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, BAD_CSRF));
        }
    }
    Ok(session)
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let record = any_session(parts, state).await?;
        if record.pending_factor {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                SECOND_FACTOR_NEEDED,
            ));
        }
        Ok(CurrentSession {
            user: record.user.clone(),
            csrf_token: record.csrf_token.clone(),
            record,
        })
    }
}

/// A session that passed the password and waits for its second factor (CSRF checked).
pub struct PendingSession(pub SessionRecord);

impl FromRequestParts<AppState> for PendingSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let record = any_session(parts, state).await?;
        if !record.pending_factor {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "No verification code is expected for this session.",
            ));
        }
        Ok(PendingSession(record))
    }
}

impl FromRequestParts<AppState> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<PeerAddr>()
            .copied()
            .unwrap_or(PeerAddr(SocketAddr::from(([0, 0, 0, 0], 0)))))
    }
}

/// Parses a JSON body with a friendly 400 instead of axum's plain-text rejection.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "The request body is not the expected JSON.",
        )
    })
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
    /// Windows domain typed on the login form (directory sign-in; optional).
    #[serde(default)]
    domain: Option<String>,
}

/// The second step announced by a login answer (see docs/contracts.md).
#[derive(Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum SecondFactorBody {
    Enrol {
        qr_svg: String,
        secret: String,
        otpauth_uri: String,
        digits: u8,
    },
    Code {
        method: &'static str,
        digits: u8,
    },
}

#[derive(Serialize)]
struct PendingBody {
    username: String,
    csrf_token: String,
    second_factor: SecondFactorBody,
}

#[derive(Deserialize)]
struct CodeRequest {
    code: String,
}

#[derive(Serialize)]
struct WorkstationItem {
    id: i64,
    name: String,
}

#[derive(Serialize)]
struct SessionBody {
    username: String,
    csrf_token: String,
    workstations: Vec<WorkstationItem>,
}

async fn session_body(store: &Store, user: &User, csrf_token: String) -> ApiResult<SessionBody> {
    let workstations = store
        .assigned_workstations(user.id)
        .await?
        .into_iter()
        .filter(|w| w.enabled)
        .map(|w| WorkstationItem {
            id: w.id,
            name: w.name,
        })
        .collect();
    Ok(SessionBody {
        username: user.username.clone(),
        csrf_token,
        workstations,
    })
}

fn no_store() -> [(HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let request: LoginRequest = parse_json(&body)?;
    // Refused before the password is looked at (and without the argon2 cost).
    if let Some(refusal) = state.guard.check_login(ip, &request.username).await? {
        let kind = match refusal {
            Refusal::IpBlocked { .. } => "blocked IP",
            Refusal::AccountThrottled { .. } => "account slowed down after failures",
        };
        tracing::info!(%ip, kind, "login refused");
        let actor = audit::typed_account(&state.store, &request.username).await;
        let event = audit::Event::new(actor, Some(ip), Action::LoginRefused, "");
        audit::record(&state.store, event.detail(kind)).await;
        return Ok(too_many_attempts(&refusal));
    }
    // A fresh session id at every login: the old one (if any) is ended.
    if let Some(old) = session_cookie(&headers) {
        auth::logout(&state.store, &old).await?;
    }
    let credentials = auth::Credentials {
        username: &request.username,
        password: &request.password,
        domain: request.domain.as_deref(),
    };
    let result = auth::authenticate(&state.store, &state.passwords, credentials).await;
    let user = match result {
        Ok(user) => user,
        Err(AuthError::InvalidCredentials) => {
            // Not the username: people type passwords into the wrong field.
            tracing::info!(%ip, "login failed");
            let actor = audit::typed_account(&state.store, &request.username).await;
            let event = audit::Event::new(actor, Some(ip), Action::LoginFailed, "");
            audit::record(&state.store, event.detail("wrong username or password")).await;
            record_failure(&state, ip, &request.username).await?;
            return Err(AuthError::InvalidCredentials.into());
        }
        Err(error) => return Err(error.into()),
    };
    state.guard.record_success(ip, &request.username).await?;
    let idle = state.config.session_idle_timeout;
    let second_factor = match state.twofa.second_step(&user, ip).await? {
        SecondStep::None => None,
        SecondStep::Enrol(enrolment) => Some(SecondFactorBody::Enrol {
            qr_svg: enrolment.qr_svg,
            secret: enrolment.secret_base32,
            otpauth_uri: enrolment.otpauth_uri,
            digits: enrolment.digits,
        }),
        SecondStep::Code { method, digits } => {
            if method != twofa::Method::App {
                match state.twofa.deliver_code(&user).await {
                    // Codes sent earlier this hour are still valid: let the user type one.
                    Err(TwoFactorError::SendLimit) => {
                        tracing::warn!(user = %user.username, %ip, "code send limit reached at sign-in")
                    }
                    other => other?,
                }
            }
            Some(SecondFactorBody::Code {
                method: method.as_str(),
                digits,
            })
        }
    };
    let Some(second_factor) = second_factor else {
        let session = auth::new_session(&state.store, user, idle, false).await?;
        tracing::info!(user = %session.user.username, %ip, "login");
        let event = audit::Event::new(Actor::User(session.user.username.clone()), Some(ip), Action::Login, "");
        audit::record(&state.store, event).await;
        let body = session_body(&state.store, &session.user, session.csrf_token.clone()).await?;
        let cookie = auth::session_cookie(&session.session_id);
        return Ok(([(header::SET_COOKIE, cookie)], no_store(), Json(body)).into_response());
    };
    let session = auth::new_session(&state.store, user, idle, true).await?;
    let step = match second_factor {
        SecondFactorBody::Enrol { .. } => "enrol",
        SecondFactorBody::Code { .. } => "code",
    };
    tracing::info!(user = %session.user.username, %ip, step, "password accepted, second factor required");
    let body = PendingBody {
        username: session.user.username.clone(),
        csrf_token: session.csrf_token,
        second_factor,
    };
    let cookie = auth::session_cookie(&session.session_id);
    Ok(([(header::SET_COOKIE, cookie)], no_store(), Json(body)).into_response())
}

/// Counts a failed sign-in step (password or code) and closes the tunnels of an IP it blocks.
async fn record_failure(state: &AppState, ip: IpAddr, account: &str) -> ApiResult<()> {
    if let Some(block) = state.guard.record_failure(ip, Some(account)).await? {
        let left = block.blocked_until.saturating_sub(block.blocked_at);
        close_blocked_tunnels(
            state,
            ip,
            std::time::Duration::from_millis(u64::try_from(left).unwrap_or(0)),
        );
    }
    Ok(())
}

/// `POST /api/2fa/verify`: the second sign-in step. A correct code promotes the pending session
/// under a new id (new cookie, new CSRF token); every refused code counts as a failed sign-in.
async fn verify_code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    PendingSession(pending): PendingSession,
    body: Bytes,
) -> ApiResult<Response> {
    let request: CodeRequest = parse_json(&body)?;
    let user = pending.user.clone();
    if let Some(refusal) = state.guard.check_login(ip, &user.username).await? {
        tracing::info!(%ip, user = %user.username, "verification code refused before checking (limiter)");
        return Ok(too_many_attempts(&refusal));
    }
    if let Err(error) = state.twofa.verify(&user, &request.code).await {
        if matches!(error, TwoFactorError::Code(_) | TwoFactorError::NotStarted) {
            tracing::info!(%ip, user = %user.username, %error, "verification code refused");
            let event = audit::Event::new(Actor::User(user.username.clone()), Some(ip), Action::SecondFactorFailed, "");
            audit::record(&state.store, event.detail(error.to_string())).await;
            record_failure(&state, ip, &user.username).await?;
        }
        return Err(error.into());
    }
    let now = state.config.clock.now_ms();
    let Some(session) = auth::promote_session(&state.store, &pending.id_hash, user, now).await?
    else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, NOT_LOGGED_IN));
    };
    tracing::info!(user = %session.user.username, %ip, "login (second factor accepted)");
    let event = audit::Event::new(Actor::User(session.user.username.clone()), Some(ip), Action::Login, "");
    audit::record(&state.store, event.detail("second factor accepted")).await;
    let body = session_body(&state.store, &session.user, session.csrf_token.clone()).await?;
    let cookie = auth::session_cookie(&session.session_id);
    Ok(([(header::SET_COOKIE, cookie)], no_store(), Json(body)).into_response())
}

/// `POST /api/2fa/resend`: a new code by SMS or email (within the hourly send limit).
async fn resend_code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    PendingSession(pending): PendingSession,
) -> ApiResult<Response> {
    if let Some(refusal) = state.guard.check_login(ip, &pending.user.username).await? {
        return Ok(too_many_attempts(&refusal));
    }
    let row = state
        .store
        .twofa_user(pending.user.id)
        .await?
        .unwrap_or_default();
    if !matches!(
        twofa::Method::parse(&row.method),
        Ok(twofa::Method::Sms | twofa::Method::Email)
    ) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "Your codes come from your authenticator app.",
        ));
    }
    state.twofa.deliver_code(&pending.user).await?;
    Ok((StatusCode::NO_CONTENT, no_store()).into_response())
}

/// `GET /api/portal`: what the login page needs to know before anyone signs in.
async fn current_session(
    State(state): State<AppState>,
    session: CurrentSession,
) -> ApiResult<Response> {
    let body = session_body(&state.store, &session.user, session.csrf_token).await?;
    Ok((no_store(), Json(body)).into_response())
}

async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(id) = session_cookie(&headers) {
        if let Some(session) =
            auth::session_for(&state.store, &id, state.config.session_idle_timeout).await?
        {
            let sent = headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !auth::secrets_equal(sent, &session.csrf_token) {
                return Err(ApiError::new(StatusCode::FORBIDDEN, BAD_CSRF));
            }
            auth::logout(&state.store, &id).await?;
            tracing::info!(user = %session.user.username, "logout");
            let event = audit::Event::new(Actor::User(session.user.username.clone()), Some(ip), Action::Logout, "");
            audit::record(&state.store, event).await;
        }
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::clear_session_cookie())],
    )
        .into_response())
}

#[derive(Deserialize, Default)]
struct TicketRequest {
    #[serde(default)]
    workstation_id: Option<i64>,
}

#[derive(Serialize)]
struct TicketWorkstation {
    id: i64,
    name: String,
    /// The client names the server in TLS (SNI) and CredSSP; it cannot choose where the relay dials.
    host: String,
    domain: Option<String>,
    certificate_sha256: Option<String>,
}

#[derive(Serialize)]
struct TicketResponse {
    ticket: String,
    expires_in_secs: u64,
    workstation: TicketWorkstation,
}

async fn ticket(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    let request: TicketRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TicketRequest::default()
    } else {
        parse_json(&body)?
    };
    first_session_after_code(&state, &session, ip).await?;
    let mut assigned = state.store.assigned_workstations(session.user.id).await?;
    if assigned.is_empty() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, NO_WORKSTATION));
    }
    let workstation: Workstation = match request.workstation_id {
        Some(id) => assigned
            .into_iter()
            .find(|w| w.id == id)
            .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, NOT_ASSIGNED))?,
        // No choice made: the first enabled one by name (a chooser comes later).
        None => match assigned.iter().position(|w| w.enabled) {
            Some(index) => assigned.swap_remove(index),
            None => assigned.swap_remove(0),
        },
    };
    if !workstation.enabled {
        return Err(ApiError::new(StatusCode::FORBIDDEN, DISABLED));
    }
    // The workstation's own domain, else (directory users) the directory's: the client logs on with it.
    let domain = match workstation.domain {
        Some(domain) => Some(domain),
        None if session.user.directory => crate::directory::load(&state.store)
            .await?
            .and_then(|d| d.domain),
        None => None,
    };
    let ttl = state.config.ticket_ttl;
    let ticket = tickets::issue(&state.store, session.user.id, workstation.id, ttl).await?;
    let body = TicketResponse {
        ticket,
        expires_in_secs: ttl.as_secs().max(1),
        workstation: TicketWorkstation {
            id: workstation.id,
            name: workstation.name,
            host: workstation.host,
            domain,
            certificate_sha256: workstation.cert_sha256,
        },
    };
    Ok((no_store(), Json(body)).into_response())
}

/// "Validity before first session": after a code, the first ticket must come within the limit (at
/// exactly the limit is in time); it then starts the "validity after first session" window.
async fn first_session_after_code(
    state: &AppState,
    session: &CurrentSession,
    ip: IpAddr,
) -> ApiResult<()> {
    let (Some(factor_at), None) = (session.record.factor_at, session.record.first_ticket_at) else {
        return Ok(());
    };
    let settings = state.twofa.settings().await?;
    let now = state.config.clock.now_ms();
    let limit = i64::try_from(settings.validity_before.as_millis()).unwrap_or(i64::MAX);
    if now.saturating_sub(factor_at) > limit {
        state.store.delete_session(&session.record.id_hash).await?;
        tracing::info!(user = %session.user.username, %ip, "verification expired before the first session");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, FACTOR_EXPIRED));
    }
    if state
        .store
        .mark_first_ticket(&session.record.id_hash, now)
        .await?
    {
        state.twofa.record_first_session(&session.user, ip).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct CertificateReport {
    sha256: String,
}

fn is_fingerprint(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The 409 message when a workstation presents a different certificate than the pinned one.
pub fn certificate_changed_message(name: &str) -> String {
    format!(
        "The certificate of workstation {name} has changed since it was first seen. This can mean that \
         someone is intercepting the connection. If the workstation's certificate was renewed, ask your \
         administrator to run: relay workstation repin \"{name}\""
    )
}

async fn report_certificate(
    State(state): State<AppState>,
    session: CurrentSession,
    id: Result<Path<i64>, PathRejection>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "There is no such workstation.",
        ));
    };
    let report: CertificateReport = parse_json(&body)?;
    if !is_fingerprint(&report.sha256) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "The fingerprint must be 64 lowercase hexadecimal characters (SHA-256).",
        ));
    }
    let Some(workstation) = state
        .store
        .assigned_workstation(session.user.id, id)
        .await?
    else {
        return Err(ApiError::new(StatusCode::FORBIDDEN, NOT_ASSIGNED));
    };
    match state
        .store
        .pin_certificate(workstation.id, &report.sha256)
        .await?
    {
        PinOutcome::Pinned => {
            tracing::info!(workstation = %workstation.name, user = %session.user.username, sha256 = %report.sha256, "certificate pinned (first use)");
            Ok(StatusCode::NO_CONTENT)
        }
        PinOutcome::Unchanged => Ok(StatusCode::NO_CONTENT),
        PinOutcome::Mismatch { pinned } => {
            tracing::warn!(workstation = %workstation.name, user = %session.user.username, pinned = %pinned, seen = %report.sha256, "certificate mismatch");
            Err(ApiError::new(
                StatusCode::CONFLICT,
                certificate_changed_message(&workstation.name),
            ))
        }
    }
}

async fn api_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "There is no such API endpoint.")
}

/// The text shown at `/` when the browser client has not been built.
pub const CLIENT_NOT_BUILT: &str = "Homedesk: the browser client has not been built yet.\n\n\
The relay is running, but its web root holds no index.html. Build the client with\n\n    cargo xtask client\n\n\
and start the relay with --web-root pointing at the result (cargo xtask run does both), then reload this page.\n";

/// SHA-256 sources (`'sha256-…'`) for the inline `<script>` elements of a page, so that the CSP can
/// allow exactly those (trunk injects an inline module script that starts the wasm client).
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let lower = html.to_ascii_lowercase();
    let mut hashes = Vec::new();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<script").map(|i| at + i) {
        let Some(tag_end) = lower[start..].find('>').map(|i| start + i) else {
            break;
        };
        let Some(close) = lower[tag_end..].find("</script").map(|i| tag_end + i) else {
            break;
        };
        let attributes = &lower[start + "<script".len()..tag_end];
        let external = attributes
            .split(|c: char| c.is_ascii_whitespace())
            .any(|a| a == "src" || a.starts_with("src="));
        if !external {
            let digest = Sha256::digest(&html.as_bytes()[tag_end + 1..close]);
            hashes.push(format!("'sha256-{}'", STANDARD.encode(digest)));
        }
        at = close;
    }
    hashes
}

/// The CSP for a page with the given inline script hashes.
pub fn content_security_policy(script_hashes: &[String]) -> String {
    if script_hashes.is_empty() {
        return CONTENT_SECURITY_POLICY.to_owned();
    }
    CONTENT_SECURITY_POLICY.replacen(
        "'wasm-unsafe-eval'",
        &format!("'wasm-unsafe-eval' {}", script_hashes.join(" ")),
        1,
    )
}

/// A page of the client (`file`, see [`index_file`]) with a CSP that admits its own inline scripts
/// (and nothing else inline); for a designed page ([`crate::portal`]) with its name in
/// `<meta name="homedesk-page">`.
async fn index_page(root: &std::path::Path, file: &str, page: Option<&str>) -> Response {
    let html = match tokio::fs::read_to_string(root.join(file)).await {
        Ok(html) => html,
        Err(error) => {
            return ApiError::internal(format!("cannot read {file}: {error}")).into_response()
        }
    };
    let html = match page {
        Some(name) => crate::portal::with_page_meta(&html, name),
        None => html,
    };
    let csp = content_security_policy(&inline_script_hashes(&html));
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The admin console's own bundle in the web root (`cargo xtask client` builds it apart, so the
/// portal's users never download it).
pub const ADMIN_CONSOLE_INDEX: &str = "admin-console/index.html";

/// The page a path is answered with: the portal's `index.html`, or for the admin console's pages
/// (which the console routes itself) its own bundle's.
fn index_file(path: &str) -> Option<&'static str> {
    let console = matches!(path, "/admin" | "/admin-console/" | "/admin-console/index.html")
        || path.starts_with("/admin/");
    match path {
        _ if console => Some(ADMIN_CONSOLE_INDEX),
        "/" | "/index.html" => Some("index.html"),
        _ => None,
    }
}

/// Static portal files from the web root; a clear 503 at `/` if the client is not built.
async fn portal(State(state): State<AppState>, request: Request) -> Response {
    let root = state
        .web_root
        .get()
        .filter(|root| root.join("index.html").is_file());
    let is_get = matches!(*request.method(), Method::GET | Method::HEAD);
    let index = index_file(request.uri().path()).filter(|_| is_get);
    let page = match &root {
        Some(root) if is_get => published_page(&state, root, request.uri().path()).await,
        _ => None,
    };
    match root {
        Some(root) if let Some(file) = index => index_page(&root, file, None).await,
        Some(root) if page.is_some() => index_page(&root, "index.html", page.as_deref()).await,
        // `cargo xtask client` writes `.br` and `.gz` beside the wasm and js: browsers that accept them get
        // the compressed file (a third of the size), others the plain one.
        Some(root) => match ServeDir::new(root)
            .precompressed_br()
            .precompressed_gzip()
            .oneshot(request)
            .await
        {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        },
        None if index_file(request.uri().path()).is_some() => (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            CLIENT_NOT_BUILT,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Not found.\n",
        )
            .into_response(),
    }
}

/// The name of the published designed page at `path` (`/<name>.html`), unless a file of the web root
/// has that path (files are never shadowed).
async fn published_page(state: &AppState, root: &std::path::Path, path: &str) -> Option<String> {
    let name = crate::portal::page_name_of_path(path)?;
    if root.join(format!("{name}.html")).exists() {
        return None;
    }
    match crate::portal::is_published(&state.store, name).await {
        Ok(true) => Some(name.to_owned()),
        Ok(false) => None,
        Err(error) => {
            tracing::error!(%error, "cannot look up a portal page");
            None
        }
    }
}

/// The routes of an admin API whose console changes [`crate::admin_audit`] records under `area`.
fn audited(routes: Router<AppState>, state: &AppState, area: &'static str) -> Router<AppState> {
    routes.route_layer(middleware::from_fn_with_state(
        (state.clone(), area),
        crate::admin_audit::record_change,
    ))
}

/// The complete HTTPS application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/session", get(current_session))
        .route("/api/logout", post(logout))
        .route("/api/2fa/verify", post(verify_code))
        .route("/api/2fa/resend", post(resend_code))
        .route("/api/ticket", post(ticket))
        .route(
            "/api/workstations/{id}/certificate",
            post(report_certificate),
        )
        .route("/api/tunnel", get(crate::tunnel::handler))
        .merge(crate::certificate_api::routes())
        .merge(crate::admin_api::routes())
        .merge(crate::server_api::routes())
        .merge(audited(crate::config_api::routes(), &state, "config import"))
        .merge(audited(crate::client_settings_api::routes(), &state, "html5 client"))
        .merge(audited(crate::portal_api::routes(), &state, "portal"))
        .merge(audited(crate::twofa_api::routes(), &state, "2fa"))
        .merge(crate::security_api::routes())
        .merge(crate::directory_api::routes())
        .route("/api", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .fallback(portal)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_same_origin,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state)
}

/// A 308 to the same path on the HTTPS port (the plain-HTTP listener's only answer).
pub fn https_redirect(
    headers: &HeaderMap,
    uri: &Uri,
    https_port: u16,
    fallback_host: &str,
) -> Response<Body> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(host_without_port)
        .unwrap_or_else(|| fallback_host.to_owned());
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = format!("https://{host}{port}{path}");
    match HeaderValue::from_str(&location) {
        Ok(location) => {
            let mut response = Response::new(Body::from("Homedesk is served over HTTPS.\n"));
            *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => {
            let mut response = Response::new(Body::from("Bad request.\n"));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
    }
}

/// `host[:port]` → `host` (IPv6 stays bracketed); `None` if it is not a plausible host.
fn host_without_port(authority: &str) -> Option<String> {
    let host = if authority.starts_with('[') {
        let end = authority.find(']')?;
        &authority[..=end]
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    };
    let plausible = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        });
    plausible.then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn origin_rules() {
        let uri: Uri = "/api/login".parse().unwrap();
        let ok = headers(&[("host", "desk:8443"), ("origin", "https://desk:8443")]);
        assert!(origin_allowed(&ok, &uri, &[]));
        let http = headers(&[("host", "desk:8443"), ("origin", "http://desk:8443")]);
        assert!(!origin_allowed(&http, &uri, &[]));
        let foreign = headers(&[("host", "desk:8443"), ("origin", "https://evil.example")]);
        assert!(!origin_allowed(&foreign, &uri, &[]));
        assert!(origin_allowed(
            &foreign,
            &uri,
            &["https://evil.example".into()]
        ));
        let missing = headers(&[("host", "desk:8443")]);
        assert!(!origin_allowed(&missing, &uri, &[]));
        let null = headers(&[("host", "desk:8443"), ("origin", "null")]);
        assert!(!origin_allowed(&null, &uri, &[]));
        let twice = headers(&[
            ("host", "desk:8443"),
            ("origin", "https://desk:8443"),
            ("origin", "https://desk:8443"),
        ]);
        assert!(!origin_allowed(&twice, &uri, &[]));
        let default_port = headers(&[("host", "desk:443"), ("origin", "https://desk")]);
        assert!(origin_allowed(&default_port, &uri, &[]));
    }

    #[test]
    fn cookie_parsing() {
        let h = headers(&[("cookie", "a=1; hd_session=abc ; b=2")]);
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        let h = headers(&[("cookie", "hd_session_x=1")]);
        assert_eq!(session_cookie(&h), None);
    }

    #[test]
    fn redirect_location() {
        let uri: Uri = "/a/b?c=1".parse().unwrap();
        let r = https_redirect(&headers(&[("host", "desk:8080")]), &uri, 8443, "127.0.0.1");
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(r.headers()[header::LOCATION], "https://desk:8443/a/b?c=1");
        let r = https_redirect(&headers(&[("host", "[::1]:80")]), &uri, 443, "127.0.0.1");
        assert_eq!(r.headers()[header::LOCATION], "https://[::1]/a/b?c=1");
        let r = https_redirect(&HeaderMap::new(), &"/".parse().unwrap(), 8443, "127.0.0.1");
        assert_eq!(r.headers()[header::LOCATION], "https://127.0.0.1:8443/");
    }

    #[test]
    fn inline_scripts_are_hashed() {
        let html = "<html><head><script type=\"module\">import init from '/a.js';init();</script>\
                    <script src=\"/b.js\"></script><SCRIPT>x()</SCRIPT><link data-src=x></head></html>";
        let hashes = inline_script_hashes(html);
        assert_eq!(hashes.len(), 2);
        use base64::Engine;
        use sha2::Digest;
        let expected = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(b"import init from '/a.js';init();"));
        assert_eq!(hashes[0], format!("'sha256-{expected}'"));
        let csp = content_security_policy(&hashes);
        assert!(
            csp.contains(&format!(
                "script-src 'self' 'wasm-unsafe-eval' {} {};",
                hashes[0], hashes[1]
            )),
            "{csp}"
        );
        assert_eq!(content_security_policy(&[]), CONTENT_SECURITY_POLICY);
        assert!(inline_script_hashes("<script src=/x.js></script><script").is_empty());
    }

    #[test]
    fn fingerprints() {
        assert!(is_fingerprint(&"ab".repeat(32)));
        assert!(!is_fingerprint(&"AB".repeat(32)));
        assert!(!is_fingerprint(&"ab".repeat(31)));
    }
}
