//! The second-factor page for users who receive their code by SMS or email, in headless Chromium:
//! password → the code page (saying where the code went) → the code, read from what the relay really
//! sent (a local HTTP server recording the Twilio API request; the project's SMTP test server) →
//! the desktop. "Send a new code" sends another one, which is the one that works.

use anyhow::{bail, Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::{known_picture, required_env, Rgb};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "Passw0rd!";
const TOLERANCE: u8 = 8;
const DESKTOP_TIMEOUT: Duration = Duration::from_secs(60);
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(45);
const PHONE: &str = "+41791234567";

/// A local stand-in for api.twilio.com: answers 201 and keeps each request's form body.
struct RecordingGateway {
    base_url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl RecordingGateway {
    async fn start() -> Result<RecordingGateway> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let log = bodies.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut raw = Vec::new();
                    let mut buf = [0u8; 4096];
                    let body = loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => raw.extend_from_slice(&buf[..n]),
                        }
                        if let Some(body) = complete_body(&raw) {
                            break body;
                        }
                    };
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(body);
                    let answer = "{\"sid\":\"SM1\",\"status\":\"queued\"}";
                    let response = format!(
                        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(RecordingGateway { base_url, bodies })
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits for the `n`-th message (1-based) and returns the code in its `Body` field.
    async fn code(&self, n: usize) -> Result<String> {
        homedesk_e2e::wait_for(&format!("SMS number {n}"), MESSAGE_TIMEOUT, || async {
            Ok(self.bodies().get(n - 1).cloned())
        })
        .await
        .and_then(|body| {
            let text = form_field(&body, "Body").context("no Body field")?;
            code_in(&text)
        })
    }
}

/// The body of a whole HTTP request (headers plus Content-Length bytes), once it has all arrived.
fn complete_body(raw: &[u8]) -> Option<String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let body = raw.get(end + 4..end + 4 + length)?;
    Some(String::from_utf8_lossy(body).into_owned())
}

/// One field of an `application/x-www-form-urlencoded` body, decoded.
fn form_field(body: &str, name: &str) -> Option<String> {
    let value = body.split('&').find_map(|pair| pair.strip_prefix(&format!("{name}=")))?;
    let bytes = value.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(value.get(i + 1..i + 3)?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The digits after "verification code is: ".
fn code_in(text: &str) -> Result<String> {
    let marker = "verification code is: ";
    let at = text.find(marker).with_context(|| format!("no code in {text:?}"))?;
    let code: String = text[at + marker.len()..].chars().take_while(char::is_ascii_digit).collect();
    if code.len() != 6 {
        bail!("not a 6-digit code in {text:?}");
    }
    Ok(code)
}

/// A relay with 2FA on and `user` on the list, on the xrdp testbed workstation.
fn two_factor_relay(user: &str) -> Result<Relay> {
    let relay = Relay::new()?;
    relay.add_user(user, PASSWORD)?;
    relay.add_workstation("Office PC", &required_env("RDP_TESTBED_XRDP_ADDR")?)?;
    relay.assign(user, "Office PC")?;
    relay.cli(&["2fa", "enable"], None)?;
    relay.cli(&["2fa", "add", user], None)?;
    relay.cli(&["2fa", "settings", "set", "--issuer", "Homedesk Test"], None)?;
    Ok(relay)
}

/// Enters `code` (as a person does, with a space in the middle) and waits for the desktop.
async fn code_to_desktop(browser: &Browser, code: &str, shot: &str) -> Result<()> {
    browser.type_into("twofa-code", &format!("{} {}", &code[..3], &code[3..])).await?;
    browser.click("twofa-submit").await?;
    browser.wait_testid("desktop-canvas", Duration::from_secs(20)).await?;
    browser
        .wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), TOLERANCE, DESKTOP_TIMEOUT)
        .await
        .context("the canvas never showed the workstation's known picture")?;
    browser.screenshot(shot).await?;
    Ok(())
}

/// "Send a new code" on the code page: the page says a new code is on its way (earlier codes stay
/// valid until they expire, docs/contracts.md; the callers sign in with the new one).
async fn resend(browser: &Browser, shot: &str) -> Result<String> {
    browser.click("twofa-resend").await?;
    let info = browser.text_of("twofa-info", MESSAGE_TIMEOUT).await?;
    if info != "A new code is on its way." {
        bail!("the page did not say a new code was sent: {info:?}");
    }
    browser.screenshot(shot).await?;
    Ok(info)
}

#[tokio::test]
async fn sms_user_gets_the_code_page_and_reaches_the_desktop_with_the_texted_code() -> Result<()> {
    let gateway = RecordingGateway::start().await?;
    let mut relay = two_factor_relay("rdpuser1")?;
    relay.cli(
        &["2fa", "sms", "--account-sid", "AC0123456789abcdef", "--from", "+15005550006", "--base-url", &gateway.base_url],
        Some("e2e-auth-token\n"),
    )?;
    relay.cli(&["2fa", "method", "rdpuser1", "sms", "--phone", PHONE], None)?;
    relay.serve().await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        browser.wait_testid("twofa-form", MESSAGE_TIMEOUT).await?;
        let instructions = browser.text_of("twofa-instructions", MESSAGE_TIMEOUT).await?;
        let field = browser.wait_testid("twofa-code", MESSAGE_TIMEOUT).await?;
        assert_eq!(field.attr("autocomplete").await?.as_deref(), Some("one-time-code"));
        browser.wait_testid("twofa-resend", MESSAGE_TIMEOUT).await?;
        browser.screenshot("twofa-sms-code-page").await?;
        assert_eq!(instructions, "We sent a 6-digit code to your phone. Enter it below.");
        let first = gateway.code(1).await?;

        resend(&browser, "twofa-sms-resent").await?;
        let second = gateway.code(2).await?;
        assert_eq!(gateway.bodies().len(), 2);
        let to = form_field(&gateway.bodies()[1], "To");
        assert_eq!(to.as_deref(), Some(PHONE));
        assert_ne!(first, second, "a new code");
        code_to_desktop(&browser, &second, "twofa-sms-desktop").await
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("twofa-sms-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

/// The project's SMTP test server (STARTTLS, its own test CA), killed on drop.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    fn start() -> Result<SmtpServer> {
        use std::io::BufRead;
        let dir = tempfile::tempdir()?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/smtp-test-server.sh");
        let mut child = std::process::Command::new("bash")
            .arg(&script)
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("start scripts/smtp-test-server.sh (scripts/install-toolchain.sh --for-tests)")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let port = line.trim().strip_prefix("SMTP_READY port=").with_context(|| format!("SMTP server: {line:?}"))?;
        Ok(SmtpServer { port: port.parse()?, child, dir })
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Waits for the `n`-th mail (1-based) and returns its code.
    async fn code(&self, n: usize) -> Result<String> {
        let path = self.dir.path().join("mail").join(format!("{n}.eml"));
        let mail = homedesk_e2e::wait_for(&format!("mail number {n}"), MESSAGE_TIMEOUT, || async {
            Ok(std::fs::read_to_string(&path).ok())
        })
        .await?;
        code_in(&mail)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn email_user_gets_the_code_page_and_reaches_the_desktop_with_the_mailed_code() -> Result<()> {
    let smtp = SmtpServer::start()?;
    let mut relay = two_factor_relay("rdpuser1")?;
    let port = smtp.port.to_string();
    let ca = smtp.ca().display().to_string();
    relay.cli(
        &["2fa", "smtp", "--host", "127.0.0.1", "--port", &port, "--from", "desk@example.com", "--ca-file", &ca],
        None,
    )?;
    relay.cli(&["2fa", "method", "rdpuser1", "email", "--email", "rdpuser1@example.com"], None)?;
    relay.serve().await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), "rdpuser1", PASSWORD).await?;
        browser.wait_testid("twofa-form", MESSAGE_TIMEOUT).await?;
        let instructions = browser.text_of("twofa-instructions", MESSAGE_TIMEOUT).await?;
        browser.wait_testid("twofa-resend", MESSAGE_TIMEOUT).await?;
        browser.screenshot("twofa-email-code-page").await?;
        assert_eq!(instructions, "We sent a 6-digit code to your email address. Enter it below.");
        let first = smtp.code(1).await?;
        resend(&browser, "twofa-email-resent").await?;
        let second = smtp.code(2).await?;
        assert_ne!(first, second, "a new code");
        code_to_desktop(&browser, &second, "twofa-email-desktop").await
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("twofa-email-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}
