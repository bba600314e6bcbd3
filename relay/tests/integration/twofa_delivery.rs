//! Codes sent by SMS (Twilio's REST API, checked request by request on a local HTTP server) and by
//! email (a real SMTP server with STARTTLS or implicit TLS, `scripts/smtp-test-server.sh`): the exact
//! request, single use, expiry on the manual clock, the hourly send limit, and gateway failures.

use crate::common::*;
use base64::Engine;
use homedesk_relay::clock::{ManualClock, SharedClock};
use homedesk_relay::delivery::{self, SmtpConfig, SmtpSecurity, TwilioConfig};
use homedesk_relay::twofa::{self, MemberKind, Method};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SID: &str = "AC0123456789abcdef";
const TOKEN: &str = "s3cret-auth-token";
const FROM: &str = "+15005550006";
const PHONE: &str = "+41791234567";
const MAIL_PASSWORD: &str = "mail-pa55word";

/// One request as the fake Twilio received it.
#[derive(Debug, Clone)]
struct Recorded {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The decoded form fields, in order.
    fn form(&self) -> Vec<(String, String)> {
        self.body
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect()
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A local HTTP server standing in for api.twilio.com: records each request, answers `status`.
struct FakeTwilio {
    base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeTwilio {
    async fn start(status: u16) -> FakeTwilio {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut raw = Vec::new();
                    let mut buf = [0u8; 4096];
                    let recorded = loop {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        raw.extend_from_slice(&buf[..n]);
                        if let Some(recorded) = parse_request(&raw) {
                            break recorded;
                        }
                    };
                    log.lock().unwrap().push(recorded);
                    let body = r#"{"sid":"SM0123","status":"queued"}"#;
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        FakeTwilio { base_url, requests }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn parse_request(raw: &[u8]) -> Option<Recorded> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body = raw.get(end + 4..end + 4 + length)?;
    Some(Recorded {
        request_line,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

struct Fixture {
    relay: TestRelay,
    clock: ManualClock,
}

/// A relay on a manual clock with 2FA on, issuer "ACME", and `user` on the list with `method`.
async fn fixture(user: &str, method: Method, address: &str) -> Fixture {
    let clock = ManualClock::new(1_700_000_000_000);
    let shared: SharedClock = Arc::new(clock.clone());
    let options = Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        clock: Some(shared),
        ..Options::default()
    };
    let relay = TestRelay::start_with(options).await;
    let (addr, _) = echo_peer().await;
    relay
        .user_with_workstation(user, &format!("{user}-pc"), addr)
        .await;
    let store = relay.server().store();
    let mut settings = twofa::settings_load(store).await.unwrap();
    settings.enabled = true;
    settings.issuer = "ACME".into();
    twofa::settings_store(store, &settings).await.unwrap();
    twofa::add_member(store, MemberKind::User, user)
        .await
        .unwrap();
    let (phone, email) = match method {
        Method::Sms => (Some(address), None),
        _ => (None, Some(address)),
    };
    twofa::set_method(store, user, method, phone, email)
        .await
        .unwrap();
    Fixture { relay, clock }
}

impl Fixture {
    async fn use_twilio(&self, base_url: &str) {
        let config = TwilioConfig {
            base_url: base_url.to_owned(),
            account_sid: SID.into(),
            auth_token: TOKEN.into(),
            from: FROM.into(),
        };
        let server = self.relay.server();
        delivery::set_twilio_config(server.store(), server.twofa().secrets(), &config)
            .await
            .unwrap();
    }

    /// Mail through `smtp` (trusting its test CA), with `login` if the server requires one.
    async fn use_smtp(
        &self,
        smtp: &SmtpServer,
        security: SmtpSecurity,
        login: Option<(&str, &str)>,
    ) {
        let config = SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp.port,
            security,
            username: login.map(|(user, _)| user.to_owned()),
            password: login.map(|(_, password)| password.to_owned()),
            from: "homedesk@example.com".into(),
            ca_file: Some(smtp.dir.path().join("ca.pem")),
        };
        let server = self.relay.server();
        delivery::set_smtp_config(server.store(), server.twofa().secrets(), &config)
            .await
            .unwrap();
    }

    async fn verify(&self, session: &Session, code: &str) -> HttpResponse {
        let body = serde_json::json!({ "code": code }).to_string();
        self.relay
            .post("/api/2fa/verify", Some(session), &body)
            .await
    }

    async fn resend(&self, session: &Session) -> HttpResponse {
        self.relay.post("/api/2fa/resend", Some(session), "").await
    }
}

/// The code inside "…verification code is: 123456".
fn code_in(text: &str) -> String {
    let at = text
        .find("verification code is: ")
        .unwrap_or_else(|| panic!("no code in {text:?}"));
    text[at + "verification code is: ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

#[tokio::test]
async fn sms_code_is_sent_through_twilio_exactly_and_accepted_once() {
    let f = fixture("bob", Method::Sms, PHONE).await;
    let twilio = FakeTwilio::start(201).await;
    f.use_twilio(&twilio.base_url).await;
    let login = f.relay.login_response("bob", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text());
    assert_eq!(
        login.json()["second_factor"],
        serde_json::json!({ "step": "code", "method": "sms", "digits": 6 })
    );
    let pending = Session::from_login(&login);

    let requests = twilio.requests();
    assert_eq!(requests.len(), 1);
    let sms = &requests[0];
    assert_eq!(
        sms.request_line,
        format!("POST /2010-04-01/Accounts/{SID}/Messages.json HTTP/1.1")
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"));
    assert_eq!(
        sms.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        sms.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = sms.form();
    let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["To", "From", "Body"]);
    assert_eq!((form[0].1.as_str(), form[1].1.as_str()), (PHONE, FROM));
    let code = code_in(&form[2].1);
    assert_eq!(form[2].1, format!("Your ACME verification code is: {code}"));
    assert_eq!(code.len(), 6);
    assert!(!logs().contains(TOKEN) && !logs().contains(&format!("is: {code}")));

    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert_eq!(f.verify(&pending, &wrong).await.status, 401);
    let ok = f.verify(&pending, &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let full = Session::from_login(&ok);
    assert_eq!(f.relay.ticket_response(&full, None).await.status, 200);
    // The same code from a new password step: refused (a new SMS was sent for that one).
    // (from another IP: the same IP is inside the validity window after its first session)
    let again = Session::from_login(&f.relay.login_from("198.51.100.50", "bob", PASSWORD).await);
    assert_eq!(twilio.requests().len(), 2);
    assert_eq!(f.verify(&again, &code).await.status, 401);
}

#[tokio::test]
async fn an_email_code_is_accepted_once() {
    let smtp = SmtpServer::start(None);
    let f = fixture("carol", Method::Email, "carol@example.com").await;
    f.use_smtp(&smtp, SmtpSecurity::Starttls, None).await;
    let pending = Session::from_login(&f.relay.login_response("carol", PASSWORD).await);
    let code = code_in(&smtp.mails()[0]);
    let ok = f.verify(&pending, &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // The same code from a new password step (which mailed a new code) is refused; the new one works.
    let again = Session::from_login(&f.relay.login_from("198.51.100.51", "carol", PASSWORD).await);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2);
    let replay = f.verify(&again, &code).await;
    assert_eq!(
        (replay.status, replay.error().as_str()),
        (401, "The code is wrong or has expired.")
    );
    // (`mails()` is sorted by content, not by arrival: the new mail is the one with another code.)
    let second = mails
        .iter()
        .map(|mail| code_in(mail))
        .find(|other| *other != code)
        .expect("a second, different code");
    let ok = f.verify(&again, &second).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // Each code once: a third sign-in's page does not take the second code either.
    let third = Session::from_login(&f.relay.login_from("198.51.100.52", "carol", PASSWORD).await);
    assert_eq!(f.verify(&third, &second).await.status, 401);
}

#[tokio::test]
async fn sms_codes_expire_and_send_again_sends_a_new_one() {
    let f = fixture("bob", Method::Sms, PHONE).await;
    let twilio = FakeTwilio::start(201).await;
    f.use_twilio(&twilio.base_url).await;
    let pending = Session::from_login(&f.relay.login_response("bob", PASSWORD).await);
    let first = code_in(&twilio.requests()[0].form()[2].1);
    f.clock.advance(Duration::from_secs(5 * 60));
    let expired = f.verify(&pending, &first).await;
    assert_eq!(
        (expired.status, expired.error().as_str()),
        (401, "The code is wrong or has expired.")
    );
    assert_eq!(f.resend(&pending).await.status, 204);
    let second = code_in(&twilio.requests()[1].form()[2].1);
    f.clock.advance(Duration::from_secs(5 * 60 - 1));
    assert_eq!(f.verify(&pending, &second).await.status, 200);
}

#[tokio::test]
async fn sends_are_limited_per_user_per_hour() {
    let f = fixture("bob", Method::Sms, PHONE).await;
    let twilio = FakeTwilio::start(201).await;
    f.use_twilio(&twilio.base_url).await;
    let pending = Session::from_login(&f.relay.login_response("bob", PASSWORD).await);
    for _ in 0..4 {
        assert_eq!(f.resend(&pending).await.status, 204);
    }
    let limited = f.resend(&pending).await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.error(),
        "Too many codes were sent in the last hour; try again later."
    );
    assert_eq!(twilio.requests().len(), 5);
    // A new password step within the hour sends nothing, but the page still asks for a code.
    let login = f.relay.login_response("bob", PASSWORD).await;
    assert_eq!(
        (
            login.status,
            login.json()["second_factor"]["method"].as_str()
        ),
        (200, Some("sms"))
    );
    assert_eq!(twilio.requests().len(), 5);
    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(f.resend(&pending).await.status, 204);
    assert_eq!(twilio.requests().len(), 6);
}

#[tokio::test]
async fn a_refusing_gateway_gives_a_clear_error_and_no_session() {
    let f = fixture("bob", Method::Sms, PHONE).await;
    let twilio = FakeTwilio::start(401).await;
    f.use_twilio(&twilio.base_url).await;
    let login = f.relay.login_response("bob", PASSWORD).await;
    assert_eq!(login.status, 502);
    assert_eq!(
        login.error(),
        "The verification code could not be sent. Try again later or contact your administrator."
    );
    assert!(login.header("set-cookie").is_none());
    assert!(logs().contains("the SMS gateway refused the message (HTTP 401)"));
    // Failed sends do not use up the hourly limit.
    let user = f.relay.server().store().user_by_name("bob").await.unwrap();
    assert_eq!(
        f.relay
            .server()
            .store()
            .twofa_codes_sent_since(user.id, 0)
            .await
            .unwrap(),
        0
    );
}

/// The project's SMTP test server, killed on drop.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// With a login, the server requires AUTH with exactly that user and password.
    fn start(login: Option<(&str, &str)>) -> SmtpServer {
        Self::start_with(login, false)
    }

    /// `implicit_tls`: TLS from the first byte (SMTPS) instead of STARTTLS.
    fn start_with(login: Option<(&str, &str)>, implicit_tls: bool) -> SmtpServer {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/smtp-test-server.sh"
        );
        let mut command = std::process::Command::new("bash");
        command.env(
            "SMTP_TEST_IMPLICIT_TLS",
            if implicit_tls { "1" } else { "0" },
        );
        if let Some((user, password)) = login {
            command
                .env("SMTP_TEST_USER", user)
                .env("SMTP_TEST_PASSWORD", password);
        }
        let mut child = command
            .arg(script)
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start scripts/smtp-test-server.sh (install: scripts/install-toolchain.sh --for-tests)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("SMTP_READY port=")
            .unwrap_or_else(|| panic!("SMTP server: {line:?}"));
        SmtpServer {
            port: port.parse().unwrap(),
            child,
            dir,
        }
    }

    fn mails(&self) -> Vec<String> {
        let mut mails: Vec<_> = std::fs::read_dir(self.dir.path().join("mail"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect();
        mails.sort();
        mails
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn email_code_reaches_a_real_smtp_server_over_starttls() {
    let smtp = SmtpServer::start(Some(("relay-mailer", MAIL_PASSWORD)));
    let f = fixture("carol", Method::Email, "carol@example.com").await;
    let config = SmtpConfig {
        host: "127.0.0.1".into(),
        port: smtp.port,
        security: SmtpSecurity::Starttls,
        username: Some("relay-mailer".into()),
        password: Some(MAIL_PASSWORD.into()),
        from: "homedesk@example.com".into(),
        ca_file: Some(smtp.dir.path().join("ca.pem")),
    };
    let server = f.relay.server();
    delivery::set_smtp_config(server.store(), server.twofa().secrets(), &config)
        .await
        .unwrap();
    let login = f.relay.login_response("carol", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text());
    assert_eq!(login.json()["second_factor"]["method"], "email");
    let pending = Session::from_login(&login);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(
        mail.contains("X-Envelope-To: carol@example.com")
            && mail.contains("X-Envelope-From: homedesk@example.com")
    );
    assert!(mail.contains("Subject: ACME verification code"), "{mail}");
    let code = code_in(mail);
    assert_eq!(code.len(), 6, "{mail}");
    let ok = f.verify(&pending, &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // The password is stored sealed, was sent to the server (which requires it) and never logged.
    let row = server
        .store()
        .setting("delivery.smtp_password")
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.starts_with("sealed:") && !row.contains(MAIL_PASSWORD),
        "{row}"
    );
    assert!(!logs().contains(MAIL_PASSWORD));
    assert!(!smtp.dir.path().join("auth-refused.log").exists());

    // A wrong password: refused by the server, a clear 502 for the user, nothing sent.
    let wrong = SmtpConfig {
        password: Some("not-the-password".into()),
        ..config.clone()
    };
    delivery::set_smtp_config(server.store(), server.twofa().secrets(), &wrong)
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(f.relay.login_response("carol", PASSWORD).await.status, 502);
    assert!(smtp.dir.path().join("auth-refused.log").exists());
    assert_eq!(smtp.mails().len(), 1);

    // The relay does not send mail in clear text: a server without our trusted certificate fails.
    let untrusted = SmtpConfig {
        ca_file: None,
        ..config
    };
    delivery::set_smtp_config(server.store(), server.twofa().secrets(), &untrusted)
        .await
        .unwrap();
    assert_eq!(f.relay.login_response("carol", PASSWORD).await.status, 502);
    assert_eq!(smtp.mails().len(), 1);
}

#[tokio::test]
async fn email_code_reaches_a_real_smtp_server_over_implicit_tls() {
    let smtp = SmtpServer::start_with(Some(("relay-mailer", MAIL_PASSWORD)), true);
    let f = fixture("carol", Method::Email, "carol@example.com").await;
    let login = Some(("relay-mailer", MAIL_PASSWORD));
    f.use_smtp(&smtp, SmtpSecurity::Tls, login).await;
    let signed_in = f.relay.login_response("carol", PASSWORD).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
    let pending = Session::from_login(&signed_in);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("X-Envelope-To: carol@example.com"),
        "{}",
        mails[0]
    );
    let ok = f.verify(&pending, &code_in(&mails[0])).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(!smtp.dir.path().join("auth-refused.log").exists());

    // Set to implicit TLS, the relay does not fall back to clear text with a server that expects
    // STARTTLS: a clear 502 and nothing sent.
    let starttls_only = SmtpServer::start_with(login, false);
    f.use_smtp(&starttls_only, SmtpSecurity::Tls, login).await;
    let refused = f.relay.login_response("carol", PASSWORD).await;
    assert_eq!(refused.status, 502, "{}", refused.text());
    assert!(starttls_only.mails().is_empty());
    assert_eq!(smtp.mails().len(), 1);
}

#[tokio::test]
async fn the_twilio_token_is_sealed_at_rest_and_an_old_plain_row_is_sealed_at_start() {
    let f = fixture("dave", Method::Sms, PHONE).await;
    let twilio = FakeTwilio::start(201).await;
    f.use_twilio(&twilio.base_url).await;
    let store = f.relay.server().store();
    let row = store
        .setting("delivery.twilio_token")
        .await
        .unwrap()
        .unwrap();
    assert!(row.starts_with("sealed:") && !row.contains(TOKEN), "{row}");

    // A row as an older version wrote it (plain text), then a restart on the same data directory.
    store
        .set_setting("delivery.twilio_token", TOKEN)
        .await
        .unwrap();
    let mut first = f.relay;
    first.stop().await;
    let shared: SharedClock = Arc::new(f.clock.clone());
    let relay = TestRelay::start_with(Options {
        data_dir: Some(first.data_dir.clone()),
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        clock: Some(shared),
        ..Options::default()
    })
    .await;
    let store = relay.server().store();
    let row = store
        .setting("delivery.twilio_token")
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.starts_with("sealed:") && !row.contains(TOKEN),
        "sealed at start: {row}"
    );
    assert!(logs().contains("sealed a stored delivery secret"));

    // Sending still works: the gateway gets the real token.
    let login = relay.login_response("dave", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text());
    let requests = twilio.requests();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"));
    assert_eq!(
        requests.last().unwrap().header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert!(!logs().contains(TOKEN));

    // A row sealed under another key is reported, not sent.
    let other = tempfile::tempdir().unwrap();
    let foreign = twofa::SecretBox::load_or_create(&other.path().join("other.key")).unwrap();
    let config = TwilioConfig {
        base_url: twilio.base_url.clone(),
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        from: FROM.into(),
    };
    delivery::set_twilio_config(store, &foreign, &config)
        .await
        .unwrap();
    let sent = twilio.requests().len();
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(
        relay
            .login_from("198.51.100.60", "dave", PASSWORD)
            .await
            .status,
        502
    );
    assert_eq!(twilio.requests().len(), sent);
}
