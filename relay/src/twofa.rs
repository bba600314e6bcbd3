//! Two-factor sign-in: who must use it, its settings, enrolment (secret, Key Uri, QR code), and the
//! single-use verification of codes, with the secrets encrypted at rest.
//!
//! Why it exists: a password alone opens an office desktop; members of the 2FA list must also prove
//! they hold their authenticator. The flow (see docs/contracts.md) is: correct password →
//! [`TwoFactor::second_step`] says whether a second step is needed → the session is created in a
//! *pending* state that can get no ticket and so no tunnel → [`TwoFactor::verify`] accepts one code →
//! the HTTP layer promotes the session under a new id.
//!
//! Invariants:
//! - **Single use across relays.** A code is accepted only if one conditional `UPDATE` moves the
//!   user's last used step forward ([`Store::twofa_accept_step`]); of two requests racing with the
//!   same code exactly one wins, also when several relays share one database.
//! - **Secrets** come from the OS CSPRNG (160 bits, [`totp::new_secret`]), are stored sealed with
//!   AES-256-GCM under a 256-bit key file of the data directory (bound to the user id as associated
//!   data, so a row copied to another user does not open), are shown once at enrolment (QR code and
//!   text) and never logged. A reset revokes the secret; the next sign-in enrols a new one.
//! - Enrolment counts only after one valid code from the new secret.
//! - Membership is by name: `user` rows, and `group` rows for directory groups (lowercase, as
//!   [`crate::directory::normalize_group`]), matched against the groups recorded at the user's latest
//!   directory sign-in.

use crate::clock::SharedClock;
use crate::store::{Store, StoreError, User};
use crate::totp::{self, Algorithm, Digits, Params, TotpError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::TryRngCore;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Prefix of this module's rows in the settings table.
pub const SETTING_PREFIX: &str = "twofa.";
/// Setting that makes the portal show the optional Domain field on the login form.
pub const SHOW_DOMAIN_SETTING: &str = "portal.show_domain";
/// Name of the key file inside the data directory.
pub const KEY_FILE: &str = "twofa.key";
/// Default SMS text.
pub const DEFAULT_SMS_TEMPLATE: &str = "Your %ISSUER% verification code is: %CODE%";

const AES_NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum TwoFactorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A refused setting or admin input (the message is for the administrator).
    #[error("{0}")]
    Invalid(String),
    /// The code was refused (never contains the code or the secret).
    #[error(transparent)]
    Code(#[from] TotpError),
    /// No secret to check against (reset meanwhile, or never enrolled).
    #[error("no second factor is set up for this sign-in; sign in again")]
    NotStarted,
    #[error("the two-factor key file {path}: {message}")]
    Key { path: String, message: String },
    #[error("a stored two-factor secret cannot be decrypted (wrong key file?)")]
    Sealed,
    /// The per-user hourly send limit is reached.
    #[error("too many codes were sent in the last hour; try again later")]
    SendLimit,
    /// SMS or email could not be sent (details are logged, not shown to the user).
    #[error(transparent)]
    Delivery(#[from] crate::delivery::DeliveryError),
}

pub type Result<T, E = TwoFactorError> = std::result::Result<T, E>;

/// How a user receives codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// An authenticator app (TOTP), enrolled with a QR code.
    App,
    Sms,
    Email,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::App => "app",
            Method::Sms => "sms",
            Method::Email => "email",
        }
    }
    pub fn parse(text: &str) -> Result<Method> {
        match text {
            "app" | "totp" => Ok(Method::App),
            "sms" => Ok(Method::Sms),
            "email" => Ok(Method::Email),
            other => Err(TwoFactorError::Invalid(format!(
                "unknown method \"{other}\": use app, sms or email"
            ))),
        }
    }
}

/// The 2FA settings (rows `twofa.*` of the settings table; defaults when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    /// Steps of 30 s accepted before and after the current one.
    pub discrepancy: u32,
    /// Name shown in authenticator apps; empty means "<server name> Homedesk".
    pub issuer: String,
    /// After the first session following a code, further sessions need no code for this long.
    pub validity_after: Duration,
    /// After a validated code, the time allowed to open the first session (its end included: a first
    /// ticket exactly this long after the code is in time, a millisecond later it is not).
    pub validity_before: Duration,
    pub digits: Digits,
    /// HMAC of new enrolments' TOTP (SHA-1 unless told otherwise). Each user keeps the algorithm they
    /// enrolled with (stored beside the secret), so changing this affects only later enrolments.
    pub algorithm: Algorithm,
    pub sms_template: String,
    /// How long a code sent by SMS or email stays valid.
    pub code_lifetime: Duration,
    /// Codes sent to one user per hour (SMS and email together).
    pub send_limit_per_hour: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: false,
            discrepancy: 1,
            issuer: String::new(),
            validity_after: Duration::from_secs(480 * 60),
            validity_before: Duration::from_secs(3600),
            digits: Digits::default(),
            algorithm: Algorithm::Sha1,
            sms_template: DEFAULT_SMS_TEMPLATE.to_owned(),
            code_lifetime: Duration::from_secs(300),
            send_limit_per_hour: 5,
        }
    }
}

/// Allowed ranges.
pub const MAX_VALIDITY_AFTER_MINUTES: u64 = 30 * 24 * 60;
pub const MAX_VALIDITY_BEFORE_SECS: u64 = 24 * 3600;
pub const MAX_CODE_LIFETIME_SECS: u64 = 3600;
pub const MAX_SEND_LIMIT: u64 = 100;

impl Settings {
    /// Checks every value; returns warnings (allowed but discouraged values).
    pub fn validate(&self) -> Result<Vec<String>> {
        let invalid = |m: String| Err(TwoFactorError::Invalid(m));
        if self.discrepancy > totp::MAX_DISCREPANCY {
            return invalid(format!(
                "discrepancy must be between 0 and {}, not {}",
                totp::MAX_DISCREPANCY,
                self.discrepancy
            ));
        }
        if self.validity_after.as_secs() / 60 > MAX_VALIDITY_AFTER_MINUTES {
            return invalid(format!(
                "validity-after must be at most {MAX_VALIDITY_AFTER_MINUTES} minutes"
            ));
        }
        let before = self.validity_before.as_secs();
        if !(1..=MAX_VALIDITY_BEFORE_SECS).contains(&before) {
            return invalid(format!(
                "validity-before must be between 1 and {MAX_VALIDITY_BEFORE_SECS} seconds"
            ));
        }
        if self.issuer.contains(':')
            || self.issuer.chars().count() > 64
            || self.issuer.chars().any(char::is_control)
        {
            return invalid("the issuer must have at most 64 characters and no colon".to_owned());
        }
        if !self.sms_template.contains("%CODE%") {
            return invalid("the SMS message template must contain %CODE%".to_owned());
        }
        let lifetime = self.code_lifetime.as_secs();
        if !(30..=MAX_CODE_LIFETIME_SECS).contains(&lifetime) {
            return invalid(format!(
                "code-lifetime must be between 30 and {MAX_CODE_LIFETIME_SECS} seconds"
            ));
        }
        if !(1..=MAX_SEND_LIMIT).contains(&u64::from(self.send_limit_per_hour)) {
            return invalid(format!(
                "send-limit must be between 1 and {MAX_SEND_LIMIT} codes per hour"
            ));
        }
        if self.sms_template.chars().count() > 320 {
            return invalid("the SMS message template must have at most 320 characters".to_owned());
        }
        let mut warnings = Vec::new();
        if self.discrepancy > 10 {
            warnings.push(format!(
                "a discrepancy of {} steps accepts codes up to {} minutes old or early; 10 or less is recommended",
                self.discrepancy,
                (u64::from(self.discrepancy) * totp::STEP_SECONDS).div_ceil(60)
            ));
        }
        if self.digits.get() < 6 {
            warnings.push(format!(
                "{} digits are easy to guess: RFC 4226 requires at least 6 (authenticator apps show 6 or 8)",
                self.digits.get()
            ));
        }
        if self.algorithm != Algorithm::Sha1 {
            warnings.push(format!(
                "{} is not supported by every authenticator app (some, e.g. Google Authenticator, ignore the \
                 algorithm and show SHA-1 codes that will be refused): check your users' apps first; \
                 users enrolled already keep their algorithm until their 2FA is reset",
                self.algorithm.uri_name()
            ));
        }
        Ok(warnings)
    }

    /// The issuer shown in authenticator apps.
    pub fn issuer_or_default(&self) -> String {
        if self.issuer.is_empty() {
            let server = crate::tls::machine_hostname().unwrap_or_else(|| "localhost".to_owned());
            format!("{server} Homedesk")
        } else {
            self.issuer.clone()
        }
    }

    /// Verification parameters for a user enrolled with `algorithm`.
    pub fn params(&self, algorithm: Algorithm) -> Result<Params> {
        Ok(Params::new(algorithm, self.digits, self.discrepancy)?)
    }

    fn as_settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("enabled", u8::from(self.enabled).to_string()),
            ("discrepancy", self.discrepancy.to_string()),
            ("issuer", self.issuer.clone()),
            (
                "validity_after_minutes",
                (self.validity_after.as_secs() / 60).to_string(),
            ),
            (
                "validity_before_secs",
                self.validity_before.as_secs().to_string(),
            ),
            ("digits", self.digits.get().to_string()),
            ("algorithm", self.algorithm.uri_name().to_owned()),
            ("sms_template", self.sms_template.clone()),
            (
                "code_lifetime_secs",
                self.code_lifetime.as_secs().to_string(),
            ),
            ("send_limit_per_hour", self.send_limit_per_hour.to_string()),
        ]
    }

    /// Reads the settings rows; a missing or unreadable value keeps its default (and is logged).
    fn from_settings(rows: &[(String, String)]) -> Settings {
        let mut settings = Settings::default();
        for (name, value) in rows {
            let Some(key) = name.strip_prefix(SETTING_PREFIX) else {
                continue;
            };
            let number = value.parse::<u64>().ok();
            let ok = match (key, number) {
                ("enabled", Some(n)) => {
                    settings.enabled = n != 0;
                    true
                }
                ("discrepancy", Some(n)) if n <= u64::from(totp::MAX_DISCREPANCY) => {
                    settings.discrepancy = n as u32;
                    true
                }
                ("validity_after_minutes", Some(n)) if n <= MAX_VALIDITY_AFTER_MINUTES => {
                    settings.validity_after = Duration::from_secs(n * 60);
                    true
                }
                ("validity_before_secs", Some(n))
                    if (1..=MAX_VALIDITY_BEFORE_SECS).contains(&n) =>
                {
                    settings.validity_before = Duration::from_secs(n);
                    true
                }
                ("digits", Some(n)) => match Digits::new(u32::try_from(n).unwrap_or(0)) {
                    Ok(digits) => {
                        settings.digits = digits;
                        true
                    }
                    Err(_) => false,
                },
                ("code_lifetime_secs", Some(n)) if (30..=MAX_CODE_LIFETIME_SECS).contains(&n) => {
                    settings.code_lifetime = Duration::from_secs(n);
                    true
                }
                ("send_limit_per_hour", Some(n)) if (1..=MAX_SEND_LIMIT).contains(&n) => {
                    settings.send_limit_per_hour = n as u32;
                    true
                }
                ("algorithm", _) => match Algorithm::parse(value) {
                    Some(algorithm) => {
                        settings.algorithm = algorithm;
                        true
                    }
                    None => false,
                },
                ("issuer", _) => {
                    settings.issuer = value.clone();
                    true
                }
                ("sms_template", _) if value.contains("%CODE%") => {
                    settings.sms_template = value.clone();
                    true
                }
                _ => false,
            };
            if !ok {
                tracing::warn!(setting = %name, "ignoring an invalid two-factor setting");
            }
        }
        settings
    }
}

/// Seals and opens TOTP secrets (AES-256-GCM, random 96-bit nonce, the user id as associated data).
pub struct SecretBox {
    cipher: Aes256Gcm,
    /// Key of the MACs under which sent codes are stored (derived from the key file).
    code_mac_key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox").finish_non_exhaustive()
    }
}

impl SecretBox {
    /// Loads the 32-byte key file, creating it (mode 0600, from the OS CSPRNG) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<SecretBox> {
        let error = |message: String| TwoFactorError::Key {
            path: path.display().to_string(),
            message,
        };
        if !path.exists() {
            let mut key = [0u8; 32];
            rand::rngs::OsRng
                .try_fill_bytes(&mut key)
                .map_err(|e| error(e.to_string()))?;
            write_private_file(path, &key).map_err(|e| error(e.to_string()))?;
        }
        let key = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let cipher = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| error("must hold exactly 32 bytes".to_owned()))?;
        use sha2::Digest;
        let code_mac_key: [u8; 32] = sha2::Sha256::new()
            .chain_update(b"homedesk 2fa sent-code mac\0")
            .chain_update(&key)
            .finalize()
            .into();
        Ok(SecretBox {
            cipher,
            code_mac_key,
        })
    }

    /// HMAC-SHA256 of a sent code, bound to the user (what the database stores instead of the code).
    pub fn code_mac(&self, user_id: i64, code: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = match <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.code_mac_key) {
            Ok(mac) => mac,
            // HMAC takes keys of any length.
            Err(_) => return String::new(),
        };
        mac.update(&user_id.to_be_bytes());
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// base64(nonce || ciphertext) of `secret`, bound to `user_id`.
    pub fn seal(&self, user_id: i64, secret: &[u8]) -> Result<String> {
        self.seal_with(&user_id.to_be_bytes(), secret)
    }

    /// The secret sealed by [`SecretBox::seal`] for this user.
    pub fn open(&self, user_id: i64, sealed: &str) -> Result<Vec<u8>> {
        self.open_with(&user_id.to_be_bytes(), sealed)
    }

    /// base64(nonce || ciphertext) of another secret (a gateway token, a mail password), bound to
    /// `context` (its setting name), so a sealed value cannot stand in for another one or for a
    /// user's TOTP secret (whose associated data is an 8-byte user id; contexts are longer).
    pub fn seal_value(&self, context: &str, value: &[u8]) -> Result<String> {
        self.seal_with(&value_aad(context), value)
    }

    /// A value sealed by [`SecretBox::seal_value`] under the same `context`.
    pub fn open_value(&self, context: &str, sealed: &str) -> Result<Vec<u8>> {
        self.open_with(&value_aad(context), sealed)
    }

    fn seal_with(&self, aad: &[u8], secret: &[u8]) -> Result<String> {
        let mut nonce = [0u8; AES_NONCE_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| TwoFactorError::Sealed)?;
        let sealed = self
            .cipher
            .encrypt(&nonce.into(), Payload { msg: secret, aad })
            .map_err(|_| TwoFactorError::Sealed)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    fn open_with(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| TwoFactorError::Sealed)?;
        if bytes.len() <= AES_NONCE_LEN {
            return Err(TwoFactorError::Sealed);
        }
        let (nonce, ciphertext) = bytes.split_at(AES_NONCE_LEN);
        let nonce: [u8; AES_NONCE_LEN] = nonce.try_into().map_err(|_| TwoFactorError::Sealed)?;
        self.cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| TwoFactorError::Sealed)
    }
}

/// Associated data of a sealed setting value.
fn value_aad(context: &str) -> Vec<u8> {
    let mut aad = b"homedesk sealed setting\0".to_vec();
    aad.extend_from_slice(context.as_bytes());
    aad
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// What enrolment shows the user, once: the QR code, the secret as text and the Key Uri.
#[derive(Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
    pub digits: u8,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("digits", &self.digits)
            .finish_non_exhaustive()
    }
}

/// What a user must do after a correct password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondStep {
    /// Nothing: 2FA is off, the user is not a member, or within the validity window.
    None,
    /// Scan the QR code, then enter one code.
    Enrol(Enrolment),
    /// Enter a code from the enrolled method.
    Code { method: Method, digits: u8 },
}

/// The second factor's service (cheap to clone).
#[derive(Debug, Clone)]
pub struct TwoFactor {
    store: Store,
    clock: SharedClock,
    secrets: Arc<SecretBox>,
}

fn username_valid(name: &str) -> Result<()> {
    crate::auth::validate_username(name).map_err(TwoFactorError::Invalid)
}

fn group_valid(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(TwoFactorError::Invalid(
            "a group name must have 1 to 256 printable characters".to_owned(),
        ));
    }
    Ok(())
}

/// A member of the 2FA list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "user",
            MemberKind::Group => "group",
        }
    }
}

impl TwoFactor {
    pub fn new(store: Store, clock: SharedClock, secrets: SecretBox) -> Self {
        TwoFactor {
            store,
            clock,
            secrets: Arc::new(secrets),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The key that also seals the delivery gateways' secrets ([`crate::delivery`]).
    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    pub async fn settings(&self) -> Result<Settings> {
        Ok(Settings::from_settings(
            &self.store.settings_with_prefix(SETTING_PREFIX).await?,
        ))
    }

    /// Validates and stores settings; returns the warnings of [`Settings::validate`].
    pub async fn set_settings(&self, settings: &Settings) -> Result<Vec<String>> {
        settings_store(&self.store, settings).await
    }

    /// Whether the user must pass a second factor: 2FA is on and the user, or one of their directory
    /// groups (as recorded at their latest directory sign-in), is listed.
    pub async fn required(&self, user: &User) -> Result<bool> {
        Ok(self.settings().await?.enabled && self.is_member(user).await?)
    }

    async fn is_member(&self, user: &User) -> Result<bool> {
        let groups = if user.directory {
            self.store.user_groups(user.id).await?
        } else {
            Vec::new()
        };
        Ok(self.store.twofa_is_member(&user.username, &groups).await?)
    }

    /// Decides the second step after a correct password. Starting an enrolment stores a new,
    /// unconfirmed secret.
    pub async fn second_step(&self, user: &User, ip: IpAddr) -> Result<SecondStep> {
        let settings = self.settings().await?;
        if !settings.enabled || !self.is_member(user).await? {
            return Ok(SecondStep::None);
        }
        let row = self.store.twofa_user(user.id).await?.unwrap_or_default();
        let method = Method::parse(&row.method).unwrap_or(Method::App);
        let ready = match method {
            Method::App => row.enrolled && row.secret_enc.is_some(),
            Method::Sms => row.phone.is_some(),
            Method::Email => row.email.is_some(),
        };
        if ready {
            let now = self.now();
            let window = i64::try_from(settings.validity_after.as_millis()).unwrap_or(i64::MAX);
            let within = row
                .session_at
                .is_some_and(|at| now >= at && now - at < window)
                && row.session_ip.as_deref() == Some(&crate::netaddr::canonical(ip).to_string());
            if within {
                return Ok(SecondStep::None);
            }
            return Ok(SecondStep::Code {
                method,
                digits: settings.digits.get(),
            });
        }
        let secret = totp::new_secret();
        let sealed = self.secrets.seal(user.id, &secret)?;
        self.store
            .twofa_set_secret(user.id, &sealed, settings.algorithm.uri_name(), self.now())
            .await?;
        let issuer = settings.issuer_or_default();
        let uri = totp::otpauth_uri(
            &issuer,
            &user.username,
            &secret,
            settings.algorithm,
            settings.digits,
            30,
        );
        let qr_svg = qr_svg(&uri)?;
        Ok(SecondStep::Enrol(Enrolment {
            secret_base32: totp::base32_secret(&secret),
            otpauth_uri: uri,
            qr_svg,
            digits: settings.digits.get(),
        }))
    }

    /// Sends a new code by the user's SMS or email method, within the hourly send limit. The code is
    /// stored only as a MAC and expires after the code lifetime.
    pub async fn deliver_code(&self, user: &User) -> Result<()> {
        let settings = self.settings().await?;
        let row = self.store.twofa_user(user.id).await?.unwrap_or_default();
        let method = Method::parse(&row.method).unwrap_or(Method::App);
        let now = self.now();
        let sent = self
            .store
            .twofa_codes_sent_since(user.id, now.saturating_sub(3_600_000))
            .await?;
        if sent >= i64::from(settings.send_limit_per_hour) {
            return Err(TwoFactorError::SendLimit);
        }
        let code = random_code(settings.digits);
        let lifetime = i64::try_from(settings.code_lifetime.as_millis()).unwrap_or(i64::MAX);
        let id = self
            .store
            .twofa_code_insert(
                user.id,
                &self.secrets.code_mac(user.id, &code),
                now,
                now + lifetime,
            )
            .await?;
        let issuer = settings.issuer_or_default();
        let result = match (method, row.phone, row.email) {
            (Method::Sms, Some(phone), _) => {
                let config = crate::delivery::twilio_config(&self.store, &self.secrets)
                    .await?
                    .ok_or(crate::delivery::DeliveryError::NotConfigured(
                        "SMS (Twilio)",
                    ))?;
                let text = settings
                    .sms_template
                    .replace("%ISSUER%", &issuer)
                    .replace("%CODE%", &code);
                crate::delivery::send_sms(&config, &phone, &text).await
            }
            (Method::Email, _, Some(email)) => {
                let config = crate::delivery::smtp_config(&self.store, &self.secrets)
                    .await?
                    .ok_or(crate::delivery::DeliveryError::NotConfigured(
                        "email (SMTP)",
                    ))?;
                let minutes = settings.code_lifetime.as_secs().div_ceil(60);
                let text = format!(
                    "Your {issuer} verification code is: {code}\n\nIt is valid for {minutes} minutes and can be used once.\n\
                     If you did not just try to sign in, tell your administrator.\n"
                );
                crate::delivery::send_email(
                    &config,
                    &email,
                    &format!("{issuer} verification code"),
                    &text,
                )
                .await
            }
            _ => Err(crate::delivery::DeliveryError::NotConfigured(
                "a phone number or email address for this user",
            )),
        };
        if let Err(error) = result {
            self.store.twofa_code_delete(id).await?;
            return Err(error.into());
        }
        tracing::info!(user = %user.username, method = method.as_str(), "verification code sent");
        Ok(())
    }

    /// Checks a code — from the authenticator app, or one sent by SMS or email — and spends it
    /// atomically (see the module doc). Completes an enrolment in progress.
    pub async fn verify(&self, user: &User, code: &str) -> Result<()> {
        let settings = self.settings().await?;
        let row = self
            .store
            .twofa_user(user.id)
            .await?
            .ok_or(TwoFactorError::NotStarted)?;
        if matches!(Method::parse(&row.method), Ok(Method::Sms | Method::Email)) {
            let digits = settings.digits.get();
            if code.len() != usize::from(digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TotpError::Malformed { expected: digits }.into());
            }
            let mac = self.secrets.code_mac(user.id, code);
            if !self
                .store
                .twofa_code_consume(user.id, &mac, self.now())
                .await?
            {
                return Err(TotpError::Invalid.into());
            }
            return Ok(());
        }
        let sealed = row.secret_enc.ok_or(TwoFactorError::NotStarted)?;
        let secret = self.secrets.open(user.id, &sealed)?;
        // The algorithm the user enrolled with, not today's setting.
        let algorithm = Algorithm::parse(&row.algorithm).ok_or(TwoFactorError::NotStarted)?;
        let params = settings.params(algorithm)?;
        let now_secs = u64::try_from(self.now() / 1000).unwrap_or(0);
        let last = row.last_step.and_then(|s| u64::try_from(s).ok());
        let verified = totp::verify(&secret, code, now_secs, &params, last)?;
        let step = i64::try_from(verified.step).map_err(|_| TotpError::Invalid)?;
        if !self
            .store
            .twofa_accept_step(user.id, &sealed, step, self.now())
            .await?
        {
            // Another request spent this step (or a later one) first, or the secret was reset.
            return Err(TotpError::Reused.into());
        }
        Ok(())
    }

    /// Starts the "validity after first session" window (called at a session's first ticket).
    pub async fn record_first_session(&self, user: &User, ip: IpAddr) -> Result<()> {
        let ip = crate::netaddr::canonical(ip).to_string();
        Ok(self
            .store
            .twofa_record_session(user.id, self.now(), &ip)
            .await?)
    }
}

/// `digits` uniformly random decimal digits from a CSPRNG (a code sent by SMS or email).
fn random_code(digits: Digits) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..digits.get())
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// The QR code of a Key Uri as an SVG document (black modules on white, quiet zone included).
pub fn qr_svg(uri: &str) -> Result<String> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| TwoFactorError::Invalid(format!("cannot make the QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

// ---------------------------------------------------------------- administration (CLI, console)

/// The settings stored in the database (also usable without the key file, e.g. by the CLI).
pub async fn settings_load(store: &Store) -> Result<Settings> {
    Ok(Settings::from_settings(
        &store.settings_with_prefix(SETTING_PREFIX).await?,
    ))
}

/// Validates and stores settings; returns warnings.
pub async fn settings_store(store: &Store, settings: &Settings) -> Result<Vec<String>> {
    let warnings = settings.validate()?;
    for (name, value) in settings.as_settings() {
        store
            .set_setting(&format!("{SETTING_PREFIX}{name}"), &value)
            .await?;
    }
    Ok(warnings)
}

/// Adds a user or group to the 2FA list; false if already listed.
pub async fn add_member(store: &Store, kind: MemberKind, name: &str) -> Result<bool> {
    let name = match kind {
        MemberKind::User => {
            username_valid(name)?;
            name.to_owned()
        }
        MemberKind::Group => {
            group_valid(name)?;
            crate::directory::normalize_group(name)
        }
    };
    Ok(store
        .twofa_member_add(kind.as_str(), &name, crate::store::unix_ms())
        .await?)
}

/// Removes a user or group from the 2FA list; false if not listed.
pub async fn remove_member(store: &Store, kind: MemberKind, name: &str) -> Result<bool> {
    let name = match kind {
        MemberKind::User => name.to_owned(),
        MemberKind::Group => crate::directory::normalize_group(name),
    };
    Ok(store.twofa_member_remove(kind.as_str(), &name).await?)
}

/// One row of the 2FA list for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub kind: String,
    pub name: String,
    /// For users: method, whether enrolled, and the phone or email.
    pub method: Option<String>,
    pub enrolled: Option<bool>,
    pub address: Option<String>,
}

pub async fn members(store: &Store) -> Result<Vec<MemberInfo>> {
    let mut out = Vec::new();
    for (kind, name) in store.twofa_members().await? {
        let mut info = MemberInfo {
            kind: kind.clone(),
            name: name.clone(),
            method: None,
            enrolled: None,
            address: None,
        };
        if kind == "user" {
            if let Ok(user) = store.user_by_name(&name).await {
                let row = store.twofa_user(user.id).await?.unwrap_or_default();
                let method = Method::parse(&row.method).unwrap_or(Method::App);
                info.address = match method {
                    Method::App => None,
                    Method::Sms => row.phone.clone(),
                    Method::Email => row.email.clone(),
                };
                info.method = Some(method.as_str().to_owned());
                info.enrolled = Some(row.enrolled && row.secret_enc.is_some());
            }
        }
        out.push(info);
    }
    Ok(out)
}

/// Phone numbers in E.164 form (`+` and 8 to 15 digits), as Twilio expects.
pub fn validate_phone(phone: &str) -> Result<()> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(TwoFactorError::Invalid(format!(
            "\"{phone}\" is not a phone number in international form such as +41791234567"
        )))
    }
}

/// A plausible single email address (`local@domain`, no spaces or control characters).
pub fn validate_email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && email.matches('@').count() == 1
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if ok {
        Ok(())
    } else {
        Err(TwoFactorError::Invalid(format!(
            "\"{email}\" is not an email address"
        )))
    }
}

/// Sets a user's delivery method (a phone number for SMS, an address for email).
pub async fn set_method(
    store: &Store,
    username: &str,
    method: Method,
    phone: Option<&str>,
    email: Option<&str>,
) -> Result<()> {
    let user = store.user_by_name(username).await?;
    let (phone, email) = match method {
        Method::App => (None, None),
        Method::Sms => {
            let phone =
                phone.ok_or_else(|| TwoFactorError::Invalid("SMS needs --phone".to_owned()))?;
            validate_phone(phone)?;
            (Some(phone), None)
        }
        Method::Email => {
            let email =
                email.ok_or_else(|| TwoFactorError::Invalid("email needs --email".to_owned()))?;
            validate_email(email)?;
            (None, Some(email))
        }
    };
    Ok(store
        .twofa_set_method(
            user.id,
            method.as_str(),
            phone,
            email,
            crate::store::unix_ms(),
        )
        .await?)
}

/// Revokes a user's secret and ends their sessions: the next sign-in enrols anew (new QR code).
pub async fn reset(store: &Store, username: &str) -> Result<()> {
    let user = store.user_by_name(username).await?;
    Ok(store.twofa_reset(user.id, crate::store::unix_ms()).await?)
}

/// Whether the portal shows the Domain field.
pub async fn show_domain(store: &Store) -> Result<bool> {
    Ok(store
        .setting(SHOW_DOMAIN_SETTING)
        .await?
        .is_some_and(|v| v == "1"))
}

pub async fn set_show_domain(store: &Store, show: bool) -> Result<()> {
    Ok(store
        .set_setting(SHOW_DOMAIN_SETTING, if show { "1" } else { "0" })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_user_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let secrets = SecretBox::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let secret = totp::new_secret();
        let sealed = secrets.seal(7, &secret).unwrap();
        assert!(!sealed.contains(&totp::base32_secret(&secret)));
        assert_ne!(sealed, secrets.seal(7, &secret).unwrap(), "random nonce");
        assert_eq!(secrets.open(7, &sealed).unwrap(), secret);
        assert!(matches!(
            secrets.open(8, &sealed),
            Err(TwoFactorError::Sealed)
        ));
        // The same key file loads again; another key does not open.
        assert_eq!(
            SecretBox::load_or_create(&path)
                .unwrap()
                .open(7, &sealed)
                .unwrap(),
            secret
        );
        let other = SecretBox::load_or_create(&dir.path().join("other.key")).unwrap();
        assert!(matches!(
            other.open(7, &sealed),
            Err(TwoFactorError::Sealed)
        ));
        assert!(matches!(
            secrets.open(7, "not base64!"),
            Err(TwoFactorError::Sealed)
        ));
        assert!(matches!(
            secrets.open(7, "AAAA"),
            Err(TwoFactorError::Sealed)
        ));
        // Setting values: bound to their name, never to a user's secret or another setting.
        let token = secrets.seal_value("delivery.twilio_token", b"tok").unwrap();
        assert_eq!(
            secrets.open_value("delivery.twilio_token", &token).unwrap(),
            b"tok"
        );
        assert!(secrets
            .open_value("delivery.smtp_password", &token)
            .is_err());
        assert!(secrets.open(7, &token).is_err());
        assert!(secrets
            .open_value("delivery.twilio_token", &sealed)
            .is_err());
        std::fs::write(dir.path().join("short.key"), b"short").unwrap();
        assert!(SecretBox::load_or_create(&dir.path().join("short.key")).is_err());
    }

    #[test]
    fn settings_validation_and_warnings() {
        let defaults = Settings::default();
        assert_eq!(defaults.validate().unwrap(), Vec::<String>::new());
        let wide = Settings {
            discrepancy: 11,
            ..Settings::default()
        };
        assert_eq!(wide.validate().unwrap().len(), 1);
        assert!(Settings {
            discrepancy: 481,
            ..Settings::default()
        }
        .validate()
        .is_err());
        assert!(Settings {
            discrepancy: 480,
            ..Settings::default()
        }
        .validate()
        .is_ok());
        let short = Settings {
            digits: Digits::new(5).unwrap(),
            ..Settings::default()
        };
        assert!(short.validate().unwrap()[0].contains("RFC 4226"));
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let warnings = Settings {
                algorithm,
                ..Settings::default()
            }
            .validate()
            .unwrap();
            assert!(warnings[0].contains(algorithm.uri_name()), "{warnings:?}");
        }
        // An unknown algorithm in the database keeps the default (SHA-1).
        let rows = vec![(format!("{SETTING_PREFIX}algorithm"), "MD5".to_owned())];
        assert_eq!(Settings::from_settings(&rows).algorithm, Algorithm::Sha1);
        assert!(Settings {
            sms_template: "no code".into(),
            ..Settings::default()
        }
        .validate()
        .is_err());
        assert!(Settings {
            issuer: "a:b".into(),
            ..Settings::default()
        }
        .validate()
        .is_err());
        assert!(Settings {
            validity_before: Duration::ZERO,
            ..Settings::default()
        }
        .validate()
        .is_err());
        // Round trip through the settings rows.
        let custom = Settings {
            enabled: true,
            discrepancy: 3,
            issuer: "ACME Desk".into(),
            validity_after: Duration::from_secs(60 * 60),
            validity_before: Duration::from_secs(120),
            digits: Digits::new(8).unwrap(),
            algorithm: Algorithm::Sha512,
            sms_template: "Code %CODE%".into(),
            code_lifetime: Duration::from_secs(120),
            send_limit_per_hour: 3,
        };
        let rows: Vec<(String, String)> = custom
            .as_settings()
            .into_iter()
            .map(|(n, v)| (format!("{SETTING_PREFIX}{n}"), v))
            .collect();
        assert_eq!(Settings::from_settings(&rows), custom);
        assert!(Settings::default()
            .issuer_or_default()
            .ends_with(" Homedesk"));
    }

    #[test]
    fn qr_code_is_plain_svg() {
        let svg = qr_svg("otpauth://totp/X:alice?secret=ABC&issuer=X").unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        // The portal's CSP forbids inline styles.
        assert!(!svg.contains("style="), "{svg}");
    }

    #[test]
    fn addresses() {
        assert!(validate_phone("+41791234567").is_ok());
        assert!(validate_phone("0791234567").is_err());
        assert!(validate_phone("+41 79").is_err());
        assert!(validate_email("alice@example.com").is_ok());
        assert!(validate_email("alice@example").is_err());
        assert!(validate_email("a@b.c, evil@x.y").is_err());
        assert!(validate_email("a\r\n@b.c").is_err());
    }
}
