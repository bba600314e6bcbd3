//! `relay serve --twofa-key-file`: the key that seals two-factor secrets kept outside the data
//! directory (where relays sharing a database, or a backup policy, want it), as a real process: the
//! key is created there and nowhere else, enrolled secrets open after a restart, and a wrong key is a
//! clear error — refused at start when it is not a key, logged for the administrator when it is
//! another relay's key.

use crate::common::*;
use homedesk_relay::totp::{self, Algorithm, Digits};
use homedesk_relay::twofa::{self, MemberKind};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A `relay serve` child process; killed when dropped.
struct Serve {
    child: Child,
    https: SocketAddr,
    log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `relay serve --twofa-key-file KEY` on `dir`; `Err(stderr)` if it exits before it is ready.
fn serve(dir: &Path, key: &Path, log: &Path) -> Result<Serve, String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_relay"));
    command
        .arg("--data-dir")
        .arg(dir)
        .args([
            "serve",
            "--https-port",
            "0",
            "--http-port",
            "0",
            "--print-ready",
        ])
        .arg("--twofa-key-file")
        .arg(key)
        .env_remove("RUST_LOG")
        .env_remove("HOMEDESK_2FA_KEY_FILE")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"));
    match database_url_for(dir) {
        Some(url) => command.env("HOMEDESK_DATABASE_URL", url),
        None => command.env_remove("HOMEDESK_DATABASE_URL"),
    };
    let mut child = command.spawn().expect("start relay serve");
    let stdout = child.stdout.take().expect("stdout");
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix("HOMEDESK_READY https_port=") {
            let port: u16 = rest
                .split(' ')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
            return Ok(Serve {
                child,
                https: ([127, 0, 0, 1], port).into(),
                log: log.to_owned(),
            });
        }
    }
    let status = child.wait().expect("relay exit");
    assert!(
        !status.success(),
        "relay serve ended without becoming ready"
    );
    Err(std::fs::read_to_string(log).unwrap_or_default())
}

/// The TOTP code of `secret` at the step `offset` steps after now (real time).
fn code(secret: &[u8], offset: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    totp::generate(
        secret,
        now / 30 + offset,
        Algorithm::Sha1,
        Digits::default(),
    )
}

async fn post(
    relay: &Serve,
    dir: &Path,
    path: &str,
    session: Option<&Session>,
    body: String,
) -> HttpResponse {
    let origin = format!("https://localhost:{}", relay.https.port());
    let mut headers = vec![
        ("Origin", origin),
        ("Content-Type", "application/json".to_owned()),
    ];
    if let Some(session) = session {
        headers.push(("Cookie", session.cookie_header()));
        headers.push(("X-CSRF-Token", session.csrf.clone()));
    }
    let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    https_request(
        relay.https,
        &relay_client_tls(dir),
        "POST",
        path,
        &refs,
        Some(&body),
    )
    .await
}

/// The password step of alice: a session pending its second factor at `step`.
async fn password_step(relay: &Serve, dir: &Path, step: &str) -> Session {
    let body = serde_json::json!({ "username": "alice", "password": PASSWORD }).to_string();
    let response = post(relay, dir, "/api/login", None, body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let pending = Session::from_login(&response);
    assert_eq!(
        pending.body["second_factor"]["step"], step,
        "{}",
        pending.body
    );
    pending
}

async fn send_code(relay: &Serve, dir: &Path, pending: &Session, code: &str) -> HttpResponse {
    let body = serde_json::json!({ "code": code }).to_string();
    post(relay, dir, "/api/2fa/verify", Some(pending), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_outside_the_data_directory_seals_and_opens_the_secrets() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let keys = temp.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let key = keys.join("homedesk-2fa.key");
    let log = temp.path().join("relay.log");
    let store = open_test_store(&dir).await;
    homedesk_relay::broker::add_user(&store, "alice", Some(PASSWORD.into()))
        .await
        .unwrap();
    let mut settings = twofa::settings_load(&store).await.unwrap();
    settings.enabled = true;
    twofa::settings_store(&store, &settings).await.unwrap();
    twofa::add_member(&store, MemberKind::User, "alice")
        .await
        .unwrap();

    // Enrolment on a relay whose key lives outside its data directory.
    let relay = serve(&dir, &key, &log).expect("relay starts");
    let pending = password_step(&relay, &dir, "enrol").await;
    let secret =
        crate::twofa::base32_decode(pending.body["second_factor"]["secret"].as_str().unwrap());
    let enrolled = send_code(&relay, &dir, &pending, &code(&secret, 0)).await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.text());
    assert!(
        !dir.join(twofa::KEY_FILE).exists(),
        "no twofa.key in the data directory"
    );
    let bytes = std::fs::read(&key).expect("the key file was created where asked");
    assert_eq!(bytes.len(), 32);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    drop(relay);

    // After a restart with the same key file the enrolled secret opens: a code signs alice in.
    // (The next step's code: the enrolment spent this one; the discrepancy of 1 step accepts it.)
    let relay = serve(&dir, &key, &log).expect("relay restarts");
    let pending = password_step(&relay, &dir, "code").await;
    let signed_in = send_code(&relay, &dir, &pending, &code(&secret, 1)).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
    assert!(!dir.join(twofa::KEY_FILE).exists());
    drop(relay);

    // Another relay's key (32 bytes, but not the one that sealed the secret): the code step fails
    // without a hint to the user, and the relay's log tells the administrator why.
    let other_key = keys.join("other.key");
    std::fs::write(&other_key, [7u8; 32]).unwrap();
    let relay = serve(&dir, &other_key, &log).expect("relay starts with another key");
    let pending = password_step(&relay, &dir, "code").await;
    let refused = send_code(&relay, &dir, &pending, &code(&secret, 1)).await;
    assert_eq!(refused.status, 500, "{}", refused.text());
    assert!(!refused.text().contains("key"), "{}", refused.text());
    let logged = relay.log();
    assert!(
        logged.contains("a stored two-factor secret cannot be decrypted (wrong key file?)"),
        "{logged}"
    );
    drop(relay);

    // A file that is no key at all: the relay refuses to start, naming the file.
    let not_a_key = keys.join("short.key");
    std::fs::write(&not_a_key, b"not a key\n").unwrap();
    let stderr = serve(&dir, &not_a_key, &log)
        .err()
        .expect("the relay refuses to start");
    let expected = format!(
        "the two-factor key file {}: must hold exactly 32 bytes",
        not_a_key.display()
    );
    assert!(
        stderr.starts_with("error: ") && stderr.contains(&expected),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.join(twofa::KEY_FILE).exists());
}
