//! Delivery of one-time codes: SMS through Twilio's REST API and email through SMTP.
//!
//! Kept apart from [`crate::twofa`] (which decides *what* to send and when) so that the I/O is in one
//! place and both senders are tested against real local servers: an HTTP server that records the exact
//! Twilio request, and a real SMTP server with STARTTLS. Configuration lives in the settings table
//! (`delivery.*`, set with `relay 2fa sms` and `relay 2fa smtp`); tokens and passwords are never logged
//! and never printed back.
//!
//! The Twilio auth token and the SMTP password are stored sealed (AES-256-GCM under the same key file
//! as the TOTP secrets, [`SecretBox::seal_value`], bound to the setting's name) as `sealed:<base64>`,
//! so a copy of the database alone does not reveal them. Plain values written by older versions are
//! still read, and sealed in place at the next start ([`seal_plain_secrets`]).

use crate::store::{Store, StoreError};
use crate::twofa::SecretBox;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &str = "delivery.";
/// Settings (without [`PREFIX`]) whose values are secrets, stored sealed.
const SECRET_SETTINGS: [&str; 2] = ["twilio_token", "smtp_password"];
/// How a sealed value starts in its settings row. A plain value that happens to start like this
/// fails to open and is reported ([`DeliveryError::Sealed`]) rather than sent.
const SEALED: &str = "sealed:";
/// Twilio's API origin.
pub const TWILIO_BASE_URL: &str = "https://api.twilio.com";
/// Whole-request limit for one delivery.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    #[error("invalid delivery setting: {0}")]
    Invalid(String),
    #[error("the SMS gateway could not be reached: {0}")]
    Connect(String),
    #[error("the SMS gateway refused the message (HTTP {status})")]
    Refused { status: u16 },
    #[error("the email could not be sent: {0}")]
    Smtp(String),
    #[error("sending took longer than {} s", SEND_TIMEOUT.as_secs())]
    Timeout,
    #[error("the stored {0} cannot be decrypted (another twofa.key?); set it again")]
    Sealed(&'static str),
}

pub type Result<T, E = DeliveryError> = std::result::Result<T, E>;

/// Twilio account settings.
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioConfig {
    /// `https://api.twilio.com` unless told otherwise (tests point it at a local server).
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// The sender number (E.164).
    pub from: String,
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required; port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl SmtpSecurity {
    pub fn parse(text: &str) -> Result<SmtpSecurity> {
        match text {
            "starttls" => Ok(SmtpSecurity::Starttls),
            "tls" => Ok(SmtpSecurity::Tls),
            other => Err(DeliveryError::Invalid(format!(
                "SMTP security \"{other}\": use starttls or tls"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::Starttls => "starttls",
            SmtpSecurity::Tls => "tls",
        }
    }
}

/// SMTP server settings.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Login, if the server wants one.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The From address.
    pub from: String,
    /// An extra trusted CA (PEM) for servers with a private certificate; the public roots otherwise.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

async fn setting(store: &Store, name: &str) -> Result<Option<String>> {
    Ok(store
        .setting(&format!("{PREFIX}{name}"))
        .await?
        .filter(|v| !v.is_empty()))
}

async fn set(store: &Store, name: &str, value: &str) -> Result<()> {
    Ok(store.set_setting(&format!("{PREFIX}{name}"), value).await?)
}

/// A secret setting, opened; a plain value (from an older version) is returned as it is.
async fn secret_setting(
    store: &Store,
    secrets: &SecretBox,
    name: &'static str,
) -> Result<Option<String>> {
    let Some(value) = setting(store, name).await? else {
        return Ok(None);
    };
    let Some(sealed) = value.strip_prefix(SEALED) else {
        return Ok(Some(value));
    };
    let opened = secrets
        .open_value(&format!("{PREFIX}{name}"), sealed)
        .map_err(|_| DeliveryError::Sealed(name))?;
    String::from_utf8(opened)
        .map(Some)
        .map_err(|_| DeliveryError::Sealed(name))
}

/// Stores a secret setting sealed (an empty value stays empty: "none").
async fn set_secret(
    store: &Store,
    secrets: &SecretBox,
    name: &'static str,
    value: &str,
) -> Result<()> {
    if value.is_empty() {
        return set(store, name, "").await;
    }
    let sealed = secrets
        .seal_value(&format!("{PREFIX}{name}"), value.as_bytes())
        .map_err(|_| DeliveryError::Sealed(name))?;
    set(store, name, &format!("{SEALED}{sealed}")).await
}

/// Seals the secret settings still stored in plain text (written before they were sealed); returns
/// how many were sealed. Run at every start; idempotent.
pub async fn seal_plain_secrets(store: &Store, secrets: &SecretBox) -> Result<usize> {
    let mut sealed = 0;
    for name in SECRET_SETTINGS {
        if let Some(value) = setting(store, name)
            .await?
            .filter(|v| !v.starts_with(SEALED))
        {
            set_secret(store, secrets, name, &value).await?;
            tracing::info!(setting = %format!("{PREFIX}{name}"), "sealed a stored delivery secret");
            sealed += 1;
        }
    }
    Ok(sealed)
}

/// The Twilio settings, if an account is configured.
pub async fn twilio_config(store: &Store, secrets: &SecretBox) -> Result<Option<TwilioConfig>> {
    let (Some(account_sid), Some(auth_token), Some(from)) = (
        setting(store, "twilio_sid").await?,
        secret_setting(store, secrets, "twilio_token").await?,
        setting(store, "twilio_from").await?,
    ) else {
        return Ok(None);
    };
    let base_url = setting(store, "twilio_base_url")
        .await?
        .unwrap_or_else(|| TWILIO_BASE_URL.to_owned());
    Ok(Some(TwilioConfig {
        base_url,
        account_sid,
        auth_token,
        from,
    }))
}

/// Validates and stores the Twilio settings.
pub async fn set_twilio_config(
    store: &Store,
    secrets: &SecretBox,
    config: &TwilioConfig,
) -> Result<()> {
    let sid_ok = !config.account_sid.is_empty()
        && config
            .account_sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric());
    if !sid_ok {
        return Err(DeliveryError::Invalid(
            "the account SID must be letters and digits (AC…)".into(),
        ));
    }
    if config.auth_token.is_empty()
        || config
            .auth_token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(DeliveryError::Invalid(
            "the auth token must not be empty or contain spaces".into(),
        ));
    }
    crate::twofa::validate_phone(&config.from)
        .map_err(|e| DeliveryError::Invalid(e.to_string()))?;
    parse_base_url(&config.base_url)?;
    set(store, "twilio_sid", &config.account_sid).await?;
    set_secret(store, secrets, "twilio_token", &config.auth_token).await?;
    set(store, "twilio_from", &config.from).await?;
    set(
        store,
        "twilio_base_url",
        config.base_url.trim_end_matches('/'),
    )
    .await
}

/// The SMTP settings, if a server is configured.
pub async fn smtp_config(store: &Store, secrets: &SecretBox) -> Result<Option<SmtpConfig>> {
    let (Some(host), Some(from)) = (
        setting(store, "smtp_host").await?,
        setting(store, "smtp_from").await?,
    ) else {
        return Ok(None);
    };
    let security = SmtpSecurity::parse(
        &setting(store, "smtp_security")
            .await?
            .unwrap_or_else(|| "starttls".into()),
    )?;
    let default_port = if security == SmtpSecurity::Tls {
        465
    } else {
        587
    };
    let port = match setting(store, "smtp_port").await? {
        Some(port) => port
            .parse()
            .map_err(|_| DeliveryError::Invalid(format!("SMTP port {port}")))?,
        None => default_port,
    };
    Ok(Some(SmtpConfig {
        host,
        port,
        security,
        username: setting(store, "smtp_username").await?,
        password: secret_setting(store, secrets, "smtp_password").await?,
        from,
        ca_file: setting(store, "smtp_ca_file").await?.map(PathBuf::from),
    }))
}

/// Validates and stores the SMTP settings.
pub async fn set_smtp_config(
    store: &Store,
    secrets: &SecretBox,
    config: &SmtpConfig,
) -> Result<()> {
    crate::broker::validate_host(&config.host)
        .map_err(|e| DeliveryError::Invalid(e.to_string()))?;
    crate::twofa::validate_email(&config.from)
        .map_err(|e| DeliveryError::Invalid(e.to_string()))?;
    if config.port == 0 {
        return Err(DeliveryError::Invalid(
            "the SMTP port must be 1-65535".into(),
        ));
    }
    if let Some(ca) = &config.ca_file {
        std::fs::read(ca)
            .map_err(|e| DeliveryError::Invalid(format!("cannot read {}: {e}", ca.display())))?;
    }
    set(store, "smtp_host", &config.host).await?;
    set(store, "smtp_port", &config.port.to_string()).await?;
    set(store, "smtp_security", config.security.as_str()).await?;
    set(
        store,
        "smtp_username",
        config.username.as_deref().unwrap_or(""),
    )
    .await?;
    set_secret(
        store,
        secrets,
        "smtp_password",
        config.password.as_deref().unwrap_or(""),
    )
    .await?;
    set(store, "smtp_from", &config.from).await?;
    let ca = config
        .ca_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    set(store, "smtp_ca_file", &ca).await
}

/// (https?, host, port, path prefix) of a base URL such as `https://api.twilio.com`.
fn parse_base_url(url: &str) -> Result<(bool, String, u16, String)> {
    let invalid = || DeliveryError::Invalid(format!("\"{url}\" is not an http(s):// base URL"));
    let uri: hyper::Uri = url.trim_end_matches('/').parse().map_err(|_| invalid())?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(invalid()),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(invalid)?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    if uri.query().is_some() {
        return Err(invalid());
    }
    Ok((tls, host, port, uri.path().trim_end_matches('/').to_owned()))
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Sends one SMS: `POST {base}/2010-04-01/Accounts/{SID}/Messages.json` with the form fields `To`,
/// `From`, `Body` and HTTP basic auth `SID:token`. Success is any 2xx answer.
pub async fn send_sms(config: &TwilioConfig, to: &str, body: &str) -> Result<()> {
    tokio::time::timeout(SEND_TIMEOUT, send_sms_inner(config, to, body))
        .await
        .map_err(|_| DeliveryError::Timeout)?
}

async fn send_sms_inner(config: &TwilioConfig, to: &str, body: &str) -> Result<()> {
    let (tls, host, port, prefix) = parse_base_url(&config.base_url)?;
    let path = format!(
        "{prefix}/2010-04-01/Accounts/{}/Messages.json",
        config.account_sid
    );
    let form = format!(
        "To={}&From={}&Body={}",
        form_encode(to),
        form_encode(&config.from),
        form_encode(body)
    );
    let auth = STANDARD.encode(format!("{}:{}", config.account_sid, config.auth_token));
    let authority = if (tls && port == 443) || (!tls && port == 80) {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::AUTHORIZATION, format!("Basic {auth}"))
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(hyper::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| DeliveryError::Invalid(e.to_string()))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| DeliveryError::Connect(format!("{host}:{port}: {e}")))?;
    let status = if tls {
        let server_name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|_| DeliveryError::Invalid(format!("host {host}")))?;
        let stream = tls_connector()
            .connect(server_name, tcp)
            .await
            .map_err(|e| DeliveryError::Connect(e.to_string()))?;
        exchange(stream, request).await?
    } else {
        exchange(tcp, request).await?
    };
    if !(200..300).contains(&status) {
        return Err(DeliveryError::Refused { status });
    }
    Ok(())
}

/// One HTTP/1.1 request on a fresh connection; returns the status (the body is read and dropped).
async fn exchange<S>(stream: S, request: hyper::Request<Full<Bytes>>) -> Result<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| DeliveryError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| DeliveryError::Connect(e.to_string()))?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Ok(status)
}

/// rustls with the public web roots (Twilio's certificate chains to one of them).
fn tls_connector() -> tokio_rustls::TlsConnector {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    match config {
        Ok(config) => tokio_rustls::TlsConnector::from(Arc::new(config)),
        // ring supports the default versions; this branch cannot be reached with this provider.
        Err(_) => tokio_rustls::TlsConnector::from(Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )),
    }
}

/// Sends one plain-text email.
pub async fn send_email(config: &SmtpConfig, to: &str, subject: &str, body: &str) -> Result<()> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let smtp = |e: &dyn std::fmt::Display| DeliveryError::Smtp(e.to_string());
    let message = Message::builder()
        .from(config.from.parse().map_err(|e| smtp(&e))?)
        .to(to.parse().map_err(|e| smtp(&e))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .map_err(|e| smtp(&e))?;
    let mut tls = TlsParameters::builder(config.host.clone());
    if let Some(ca) = &config.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| DeliveryError::Smtp(format!("cannot read {}: {e}", ca.display())))?;
        tls = tls.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| smtp(&e))?);
    }
    let tls = tls.build_rustls().map_err(|e| smtp(&e))?;
    let tls = match config.security {
        SmtpSecurity::Starttls => Tls::Required(tls),
        SmtpSecurity::Tls => Tls::Wrapper(tls),
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
        .port(config.port)
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let transport = transport.build();
    tokio::time::timeout(SEND_TIMEOUT, transport.send(message))
        .await
        .map_err(|_| DeliveryError::Timeout)?
        .map_err(|e| smtp(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base_url("https://api.twilio.com").unwrap(),
            (true, "api.twilio.com".into(), 443, "".into())
        );
        assert_eq!(
            parse_base_url("http://127.0.0.1:9000/x/").unwrap(),
            (false, "127.0.0.1".into(), 9000, "/x".into())
        );
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("api.twilio.com").is_err());
        assert!(parse_base_url("https://x/?a=b").is_err());
    }

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(form_encode("+41 79/1&x=é"), "%2B41+79%2F1%26x%3D%C3%A9");
    }
}
