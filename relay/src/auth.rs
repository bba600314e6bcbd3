//! Who is asking: password hashing (argon2id), login, cookie sessions and CSRF tokens.
//!
//! The security rules live here so that handlers cannot get them subtly wrong: every login failure
//! looks the same and costs the same (an unknown user is verified against a dummy hash), secrets are
//! compared in constant time, and only SHA-256 hashes of session ids reach the database. Nothing in
//! this module logs a secret.

use crate::store::{self, SessionRecord, Store, StoreError, User};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// The one message for every failed login.
pub const LOGIN_FAILED: &str = "Invalid username or password.";
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "hd_session";
/// Longest password accepted (argon2 would take more, but nobody types this much).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Shortest password an administrator may set.
pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{LOGIN_FAILED}")]
    InvalidCredentials,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password check could not run: {0}")]
    Task(String),
    /// The directory could not check the password (down, TLS, service account); the detail is logged.
    #[error("{}", crate::directory::DIRECTORY_UNAVAILABLE)]
    DirectoryUnavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// 32 random bytes, base64url without padding (session ids, CSRF tokens, tickets).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Lowercase hex SHA-256, the form in which secrets are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Constant-time equality for secrets (CSRF tokens and the like).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A password for a new account: 20 characters from an alphabet without look-alikes (~115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| {
            // Rejection sampling keeps the distribution uniform.
            loop {
                let byte = (rng.next_u32() & 0xff) as usize;
                if byte < 256 - 256 % ALPHABET.len() {
                    return ALPHABET[byte % ALPHABET.len()] as char;
                }
            }
        })
        .collect()
}

/// Usernames: 1–64 characters, letters, digits and `. _ - @`.
pub fn validate_username(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err("a username must have 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(format!(
            "invalid username \"{name}\": use letters, digits and . _ - @ only"
        ));
    }
    Ok(())
}

/// Passwords set by an administrator: at least 8 and at most 1024 characters.
pub fn validate_new_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password is too short (at least {MIN_PASSWORD_LEN} characters)"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "the password is too long (at most {MAX_PASSWORD_LEN} bytes)"
        ));
    }
    Ok(())
}

/// argon2id (the crate's defaults: m=19 MiB, t=2, p=1) with a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

fn verify_blocking(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Verifies passwords off the async runtime, a bounded number at a time (argon2 is CPU and memory
/// heavy), and with the same cost whether or not the user exists.
#[derive(Clone)]
pub struct Passwords {
    dummy_hash: Arc<str>,
    limiter: Arc<Semaphore>,
    /// How many argon2 verifications ran: tests prove an unknown user costs one, without timing.
    verifications: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    pub fn new() -> Result<Self, AuthError> {
        let dummy_hash = hash_password(&random_token())?;
        let parallel = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(Passwords {
            dummy_hash: dummy_hash.into(),
            limiter: Arc::new(Semaphore::new(parallel)),
            verifications: Arc::default(),
        })
    }

    /// The number of argon2 verifications run so far.
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True iff `password` matches `hash`. `None` (unknown user) checks against the dummy hash and
    /// returns false, taking the same time.
    pub async fn verify(&self, hash: Option<String>, password: &str) -> Result<bool, AuthError> {
        let _permit = self
            .limiter
            .acquire()
            .await
            .map_err(|e| AuthError::Task(e.to_string()))?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || verify_blocking(&hash, &password))
            .await
            .map_err(|e| AuthError::Task(e.to_string()))?;
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(known && matched)
    }
}

/// A freshly created login session. `session_id` goes into the cookie and nowhere else.
pub struct NewSession {
    pub session_id: String,
    pub user: User,
    pub csrf_token: String,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What the login form sent. `domain` is the optional Windows domain (directory users only).
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub domain: Option<&'a str>,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Who the credentials belong to. A local account (argon2id) always wins over a directory user of the
/// same name, so a local admin can sign in whatever the directory's state. Every other name goes to
/// the directory when one is configured; a successful directory sign-in creates or refreshes the
/// user's local row (no password stored) and their groups. Without a directory an unknown name costs
/// one dummy argon2 verification, like a wrong password.
pub async fn authenticate(
    store: &Store,
    passwords: &Passwords,
    credentials: Credentials<'_>,
) -> Result<User, AuthError> {
    let Credentials {
        username,
        password,
        domain,
    } = credentials;
    // Oversized input is refused only after the same work as a wrong password.
    let sane = password.len() <= MAX_PASSWORD_LEN && username.len() <= 256;
    let local = if sane {
        store.user_credentials(username).await?
    } else {
        None
    };
    let directory = match &local {
        Some((user, _)) if !user.directory => None,
        _ if sane => crate::directory::load(store).await?,
        _ => None,
    };
    let Some(directory) = directory else {
        let (user, hash) = match local {
            Some((user, hash)) if !user.directory => (Some(user), Some(hash)),
            _ => (None, None),
        };
        let password = if password.len() <= MAX_PASSWORD_LEN {
            password
        } else {
            ""
        };
        let ok = passwords.verify(hash, password).await?;
        return match (ok, user) {
            (true, Some(user)) => Ok(user),
            _ => Err(AuthError::InvalidCredentials),
        };
    };
    if !crate::directory::domain_matches(&directory, domain) {
        return Err(AuthError::InvalidCredentials);
    }
    let username = crate::directory::strip_domain(&directory, username);
    let identity = match crate::directory::authenticate(&directory, username, password).await {
        Ok(identity) => identity,
        Err(crate::directory::DirectoryError::InvalidCredentials) => {
            return Err(AuthError::InvalidCredentials)
        }
        Err(crate::directory::DirectoryError::Unavailable(detail)) => {
            tracing::error!(url = %directory.url, %detail, "directory unavailable");
            return Err(AuthError::DirectoryUnavailable);
        }
    };
    match store
        .upsert_directory_user(&identity.username, &identity.groups)
        .await
    {
        Ok(user) => {
            tracing::info!(user = %user.username, dn = %identity.dn, groups = ?identity.groups, "directory sign-in");
            Ok(user)
        }
        Err(StoreError::LocalNameTaken(name)) => {
            tracing::warn!(user = %name, "directory sign-in refused: a local account has this name");
            Err(AuthError::InvalidCredentials)
        }
        Err(error) => Err(error.into()),
    }
}

/// Creates a new session (a fresh id at every login). A `pending_factor` session only allows the
/// second sign-in step (see [`crate::twofa`]).
pub async fn new_session(
    store: &Store,
    user: User,
    idle_timeout: Duration,
    pending_factor: bool,
) -> Result<NewSession, AuthError> {
    let session_id = random_token();
    let csrf_token = random_token();
    let expires_at = store::unix_ms_after(idle_timeout);
    store
        .create_session(
            &sha256_hex(session_id.as_bytes()),
            user.id,
            &csrf_token,
            expires_at,
            pending_factor,
        )
        .await?;
    Ok(NewSession {
        session_id,
        user,
        csrf_token,
    })
}

/// Completes the second factor: the pending session behind `old_hash` becomes a full session under
/// a new id and CSRF token (the old cookie stops working). `None` if it was not pending any more.
pub async fn promote_session(
    store: &Store,
    old_hash: &str,
    user: User,
    now: i64,
) -> Result<Option<NewSession>, AuthError> {
    let session_id = random_token();
    let csrf_token = random_token();
    let promoted = store
        .promote_session(
            old_hash,
            &sha256_hex(session_id.as_bytes()),
            &csrf_token,
            now,
        )
        .await?;
    Ok(promoted.then_some(NewSession {
        session_id,
        user,
        csrf_token,
    }))
}

/// The live session for a cookie value, sliding its idle expiry forward.
pub async fn session_for(
    store: &Store,
    session_id: &str,
    idle_timeout: Duration,
) -> Result<Option<SessionRecord>, StoreError> {
    if session_id.is_empty() || session_id.len() > 128 {
        return Ok(None);
    }
    let id_hash = sha256_hex(session_id.as_bytes());
    let now = store::unix_ms();
    let Some(session) = store.session(&id_hash, now).await? else {
        return Ok(None);
    };
    let new_expiry = store::unix_ms_after(idle_timeout);
    // Write at most about once a minute per session.
    if new_expiry - session.expires_at > 60_000 {
        store.extend_session(&id_hash, new_expiry).await?;
    }
    Ok(Some(session))
}

/// Deletes the session behind a cookie value.
pub async fn logout(store: &Store, session_id: &str) -> Result<(), StoreError> {
    store
        .delete_session(&sha256_hex(session_id.as_bytes()))
        .await
}

/// `Set-Cookie` value that installs a session.
pub fn session_cookie(session_id: &str) -> String {
    format!("{SESSION_COOKIE}={session_id}; Secure; HttpOnly; SameSite=Strict; Path=/")
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert_ne!(a, b, "salts must differ");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_blocking(&a, "correct horse"));
        assert!(!verify_blocking(&a, "wrong horse"));
        assert!(!verify_blocking("not a hash", "x"));
    }

    #[test]
    fn tokens_are_32_random_bytes() {
        let a = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_token());
    }

    #[test]
    fn generated_passwords_are_valid() {
        let p = generate_password();
        assert_eq!(p.len(), 20);
        assert!(validate_new_password(&p).is_ok());
        assert_ne!(p, generate_password());
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }

    #[test]
    fn username_rules() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("a.b-c_d@example.com").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("with space").is_err());
        assert!(validate_username(&"x".repeat(65)).is_err());
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        let passwords = Passwords::new().unwrap();
        assert!(!passwords.verify(None, "anything").await.unwrap());
        let hash = hash_password("secret-pw").unwrap();
        assert!(passwords
            .verify(Some(hash.clone()), "secret-pw")
            .await
            .unwrap());
        assert!(!passwords.verify(Some(hash), "secret-px").await.unwrap());
    }
}
