//! Test harness: an in-process relay on port 0 (temp data dir), fake workstations (TCP peers), a
//! small HTTPS client and a WebSocket "browser", both trusting exactly the relay's own certificate.

use homedesk_relay::broker;
use homedesk_relay::config::{DataDir, ServeConfig};
use homedesk_relay::RunningServer;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const PASSWORD: &str = "correct horse battery";
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Polls `condition` until it holds, failing the test after [`TIMEOUT`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The test side's certificate check: pinned to one certificate (compared byte for byte), or accepting
/// any; handshake signatures are always checked. Remembers the last leaf, to look at what is served.
#[derive(Debug)]
pub struct LeafVerifier {
    expected: Option<CertificateDer<'static>>,
    last_leaf: std::sync::Mutex<Option<CertificateDer<'static>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl LeafVerifier {
    pub fn pinned(expected: CertificateDer<'static>) -> Arc<LeafVerifier> {
        Self::new(Some(expected))
    }

    pub fn accepting_any() -> Arc<LeafVerifier> {
        Self::new(None)
    }

    fn new(expected: Option<CertificateDer<'static>>) -> Arc<LeafVerifier> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(LeafVerifier {
            expected,
            last_leaf: std::sync::Mutex::new(None),
            provider,
        })
    }

    pub fn client_config(self: &Arc<Self>) -> Arc<ClientConfig> {
        let tls = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth();
        Arc::new(tls)
    }

    pub fn last_leaf(&self) -> Option<CertificateDer<'static>> {
        self.last_leaf.lock().unwrap().clone()
    }
}

impl ServerCertVerifier for LeafVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.last_leaf.lock().unwrap() = Some(end_entity.clone().into_owned());
        match &self.expected {
            Some(expected) if expected.as_ref() != end_entity.as_ref() => {
                Err(rustls::Error::General("not the relay's certificate".into()))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

pub struct TestRelay {
    pub server: Option<RunningServer>,
    pub data_dir: PathBuf,
    pub https_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub tls: Arc<ClientConfig>,
    pub admin_password: Option<String>,
    /// `None`: the SQLite file of `data_dir`.
    pub database_url: Option<String>,
    _temp: Option<tempfile::TempDir>,
}

pub struct Options {
    pub ticket_ttl: Duration,
    pub connect_timeout: Duration,
    pub web_root: Option<PathBuf>,
    pub public_origins: Vec<String>,
    pub data_dir: Option<PathBuf>,
    /// Peers whose X-Forwarded-For is believed (tests use 127.0.0.1 to inject client IPs).
    pub trusted_proxies: Vec<homedesk_relay::netaddr::Cidr>,
    /// Time of the brute-force limiter; the real clock when `None`.
    pub clock: Option<homedesk_relay::clock::SharedClock>,
    /// Plain-HTTP port (0: any free port).
    pub http_port: u16,
    /// ACME directory and the extra root to trust for it (a test ACME server).
    pub acme: Option<(String, PathBuf)>,
    /// Another relay's database (scale-out tests); `None` → this test's own (see [`database_url_for`]).
    pub database_url: Option<String>,
    /// The key that seals 2FA secrets; `None` → `twofa.key` in the data directory.
    pub twofa_key_file: Option<PathBuf>,
}

/// The PostgreSQL server the tests use, if they run against PostgreSQL: `HOMEDESK_TEST_POSTGRES_URL`,
/// or with `HOMEDESK_TEST_DATABASE=postgres` the project's own throwaway cluster (started here if needed).
/// A PostgreSQL run that has no server fails loudly instead of quietly testing SQLite.
pub fn postgres_admin_url() -> Option<String> {
    static URL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Some(url) = std::env::var("HOMEDESK_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            return Some(url);
        }
        match std::env::var("HOMEDESK_TEST_DATABASE").as_deref() {
            Ok("postgres") => {}
            Ok("sqlite") | Ok("") | Err(_) => return None,
            Ok(other) => panic!("HOMEDESK_TEST_DATABASE={other}: expected sqlite or postgres"),
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI asked for PostgreSQL but gave no HOMEDESK_TEST_POSTGRES_URL \
             (cargo xtask test starts scripts/postgres.sh and passes it)"
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres.sh");
        let run = |action: &str| {
            let out = std::process::Command::new("bash")
                .arg(script)
                .arg(action)
                .output()
                .expect("run postgres.sh");
            assert!(
                out.status.success(),
                "postgres.sh {action} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        run("start");
        Some(run("url"))
    })
    .clone()
}

/// The database of a test's data directory: under PostgreSQL a schema of its own, named after the
/// directory (so a restarted relay and the CLI find the same one) and created on first use; under
/// SQLite `None`, i.e. the directory's own file.
pub fn database_url_for(data_dir: &std::path::Path) -> Option<String> {
    use sha2::Digest;
    let admin = postgres_admin_url()?;
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let schema = format!("t_{}", hex::encode(&digest[..10]));
    let out = std::process::Command::new("psql")
        .args([
            admin.as_str(),
            "-qAtc",
            &format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "creating schema {schema}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let separator = if admin.contains('?') { '&' } else { '?' };
    Some(format!(
        "{admin}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// Opens a test data directory's database directly (as the relay and the CLI do).
pub async fn open_test_store(data_dir: &std::path::Path) -> homedesk_relay::store::Store {
    let url = database_url_for(data_dir);
    homedesk_relay::server::open_store(&DataDir::new(data_dir), url.as_deref())
        .await
        .expect("open the test database")
}

/// The database a second relay must open to share `relay`'s: the same PostgreSQL schema, or the
/// first relay's SQLite file (WAL lets two processes share it on one machine).
pub fn shared_database_url(relay: &TestRelay) -> String {
    relay.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            DataDir::new(&relay.data_dir).database().display()
        )
    })
}

impl Default for Options {
    fn default() -> Self {
        Options {
            database_url: None,
            ticket_ttl: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(3),
            web_root: None,
            public_origins: Vec::new(),
            data_dir: None,
            trusted_proxies: Vec::new(),
            clock: None,
            http_port: 0,
            acme: None,
            twofa_key_file: None,
        }
    }
}

/// Everything the relay logged during this test run (all tests share one subscriber).
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        if std::env::var_os("HOMEDESK_TEST_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the relay's logs (info and up) into [`logs`]; `HOMEDESK_TEST_LOG=1` also prints them.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "warn,homedesk_relay=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .try_init();
}

pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// A TLS client that trusts exactly the certificate in a relay's data directory.
pub fn relay_client_tls(data_dir: &std::path::Path) -> Arc<ClientConfig> {
    let (certs, _) = homedesk_relay::tls::load(&DataDir::new(data_dir)).expect("certificate");
    LeafVerifier::pinned(certs[0].clone()).client_config()
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestRelay {
        init_logs();
        let (temp, data_dir) = match options.data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        };
        let mut config = ServeConfig::new(&data_dir);
        config.database_url = options.database_url.or_else(|| database_url_for(&data_dir));
        let database_url = config.database_url.clone();
        config.https_port = 0;
        config.http_port = options.http_port;
        config.certificate_poll_interval = Duration::from_millis(200);
        config.tunnel_sync_interval = Duration::from_millis(200);
        if let Some((directory, root)) = options.acme {
            config.acme_directory = directory;
            config.acme_ca_root = Some(root);
        }
        config.ticket_ttl = options.ticket_ttl;
        config.connect_timeout = options.connect_timeout;
        config.web_root = options.web_root;
        config.public_origins = options.public_origins;
        config.shutdown_grace = Duration::from_secs(2);
        config.trusted_proxies = options.trusted_proxies;
        config.twofa_key_file = options.twofa_key_file;
        if let Some(clock) = options.clock {
            config.clock = clock;
        }
        let server = homedesk_relay::start(config).await.expect("relay starts");
        let tls = relay_client_tls(&data_dir);
        TestRelay {
            https_addr: server.https_addr,
            http_addr: server.http_addr,
            admin_password: server.admin_password.clone(),
            server: Some(server),
            database_url,
            data_dir,
            tls,
            _temp: temp,
        }
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("running")
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// The origin a browser on `https://localhost:PORT` sends.
    pub fn origin(&self) -> String {
        format!("https://localhost:{}", self.https_addr.port())
    }

    pub async fn add_user(&self, name: &str) {
        broker::add_user(self.server().store(), name, Some(PASSWORD.into()))
            .await
            .expect("add user");
    }

    pub async fn add_workstation(&self, name: &str, addr: SocketAddr) -> i64 {
        broker::add_workstation(
            self.server().store(),
            name,
            &addr.ip().to_string(),
            addr.port(),
            None,
            None,
        )
        .await
        .expect("add workstation")
        .id
    }

    pub async fn assign(&self, user: &str, workstation: &str) {
        broker::assign(self.server().store(), user, workstation)
            .await
            .expect("assign");
    }

    /// A user with one workstation pointing at `addr`; returns the workstation id.
    pub async fn user_with_workstation(
        &self,
        user: &str,
        workstation: &str,
        addr: SocketAddr,
    ) -> i64 {
        self.add_user(user).await;
        let id = self.add_workstation(workstation, addr).await;
        self.assign(user, workstation).await;
        id
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HttpResponse {
        https_request(self.https_addr, &self.tls, method, path, headers, body).await
    }

    /// POST with our Origin and, given a session, its cookie and CSRF token.
    pub async fn post(&self, path: &str, session: Option<&Session>, body: &str) -> HttpResponse {
        let origin = self.origin();
        let mut headers = vec![
            ("Origin", origin.as_str()),
            ("Content-Type", "application/json"),
        ];
        let cookie;
        if let Some(session) = session {
            cookie = session.cookie_header();
            headers.push(("Cookie", cookie.as_str()));
            headers.push(("X-CSRF-Token", session.csrf.as_str()));
        }
        self.request("POST", path, &headers, Some(body)).await
    }

    pub async fn login_response(&self, user: &str, password: &str) -> HttpResponse {
        let body = serde_json::json!({ "username": user, "password": password }).to_string();
        self.post("/api/login", None, &body).await
    }

    /// A login attempt that the relay attributes to `ip` (via X-Forwarded-For: only believed when
    /// 127.0.0.1 is a trusted proxy).
    pub async fn login_from(&self, ip: &str, user: &str, password: &str) -> HttpResponse {
        let body = serde_json::json!({ "username": user, "password": password }).to_string();
        let origin = self.origin();
        let headers = [
            ("Origin", origin.as_str()),
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", ip),
        ];
        self.request("POST", "/api/login", &headers, Some(&body))
            .await
    }

    pub async fn login(&self, user: &str) -> Session {
        let response = self.login_response(user, PASSWORD).await;
        assert_eq!(response.status, 200, "login of {user}: {}", response.text());
        Session::from_login(&response)
    }

    /// A ticket for the user's (given or first) workstation.
    pub async fn ticket(&self, session: &Session, workstation_id: Option<i64>) -> String {
        let response = self.ticket_response(session, workstation_id).await;
        assert_eq!(response.status, 200, "ticket: {}", response.text());
        response.json()["ticket"]
            .as_str()
            .expect("ticket string")
            .to_owned()
    }

    pub async fn ticket_response(
        &self,
        session: &Session,
        workstation_id: Option<i64>,
    ) -> HttpResponse {
        let body = serde_json::json!({ "workstation_id": workstation_id }).to_string();
        self.post("/api/ticket", Some(session), &body).await
    }

    /// Opens the tunnel as a browser on our origin would.
    pub async fn tunnel(&self, ticket: &str) -> Ws {
        let origin = self.origin();
        self.ws_connect(&format!("ticket={ticket}"), Some(&origin))
            .await
            .expect("tunnel upgrade")
    }

    pub async fn ws_connect(
        &self,
        query: &str,
        origin: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        self.ws_connect_with(query, origin, &[]).await
    }

    /// Opens the tunnel on our origin with extra request headers (e.g. X-Forwarded-For).
    pub async fn ws_connect_with(
        &self,
        query: &str,
        origin: Option<&str>,
        extra_headers: &[(&'static str, &str)],
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let url = format!(
            "wss://localhost:{}/api/tunnel?{query}",
            self.https_addr.port()
        );
        let mut request = url.into_client_request()?;
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("Origin", origin.parse().unwrap());
        }
        for (name, value) in extra_headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        let tcp = TcpStream::connect(self.https_addr).await?;
        let (ws, _) = tokio_tungstenite::client_async_tls_with_config(
            request,
            tcp,
            None,
            Some(Connector::Rustls(self.tls.clone())),
        )
        .await?;
        Ok(ws)
    }

    /// Runs the built `relay` binary against this relay's data directory.
    ///
    /// It blocks the calling thread, so a test using it runs on the multi-thread runtime: on a
    /// current-thread one the relay's tasks freeze meanwhile, and one caught inside a write
    /// transaction holds SQLite's lock until the CLI gives up with "database is locked".
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        cli_on_database(&self.data_dir, self.database_url.as_deref(), args, None)
    }
}

/// Runs the built `relay` binary on a data directory (and that directory's test database).
pub fn run_cli(
    data_dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    cli_on_database(data_dir, database_url_for(data_dir).as_deref(), args, stdin)
}

pub fn cli_on_database(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_relay"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("HOMEDESK_DATA_DIR");
    match database_url {
        Some(url) => command.env("HOMEDESK_DATABASE_URL", url),
        None => command.env_remove("HOMEDESK_DATABASE_URL"),
    };
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run relay binary");
    if let Some(mut pipe) = child.stdin.take() {
        use std::io::Write;
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("relay binary output")
}

/// A logged-in browser: its cookie and CSRF token.
#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub body: Value,
}

impl Session {
    pub fn from_login(response: &HttpResponse) -> Session {
        let set_cookie = response.header("set-cookie").expect("Set-Cookie");
        let cookie = set_cookie
            .split(';')
            .next()
            .unwrap()
            .trim()
            .strip_prefix("hd_session=")
            .unwrap()
            .to_owned();
        let body = response.json();
        Session {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
            body,
        }
    }
    pub fn cookie_header(&self) -> String {
        format!("hd_session={}", self.cookie)
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("JSON body expected, got {:?}", self.text()))
    }
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub async fn https_request(
    addr: SocketAddr,
    tls: &Arc<ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpResponse {
    https_request_named(addr, tls, "localhost", method, path, headers, body).await
}

/// One HTTP/1.1 request over TLS to `addr`, with `server_name` as SNI and Host.
pub async fn https_request_named(
    addr: SocketAddr,
    tls: &Arc<ClientConfig>,
    server_name: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpResponse {
    let tcp = TcpStream::connect(addr).await.expect("connect relay");
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let name = ServerName::try_from(server_name.to_owned()).expect("server name");
    let stream = connector.connect(name, tcp).await.expect("TLS handshake");
    let host = format!("{server_name}:{}", addr.port());
    http_exchange(stream, &host, method, path, headers, body).await
}

/// Plain HTTP (for the redirect listener).
pub async fn http_request(addr: SocketAddr, path: &str, host: &str) -> HttpResponse {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    http_exchange(tcp, host, "GET", path, &[], None).await
}

async fn http_exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpResponse {
    let body = body.unwrap_or("");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    stream.flush().await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(_) => break, // EOF without close_notify
            }
            if response_complete(&raw) {
                break;
            }
        }
    };
    tokio::time::timeout(TIMEOUT, read_all)
        .await
        .expect("response in time");
    parse_response(&raw)
}

type Headers = Vec<(String, String)>;

/// (body offset, lowercase headers, status) once the head is complete.
fn split_head(raw: &[u8]) -> Option<(usize, Headers, u16)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((end + 4, headers, status))
}

fn response_complete(raw: &[u8]) -> bool {
    let Some((start, headers, _)) = split_head(raw) else {
        return false;
    };
    match headers.iter().find(|(n, _)| n == "content-length") {
        Some((_, len)) => raw.len() - start >= len.parse::<usize>().unwrap_or(0),
        None => false,
    }
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let (start, headers, status) = split_head(raw)
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(raw)));
    let mut body = raw[start..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    } else if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        body.truncate(len.parse().unwrap_or(0));
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let chunk_start = line_end + 2;
        out.extend_from_slice(&data[chunk_start..(chunk_start + size).min(data.len())]);
        data = &data[(chunk_start + size + 2).min(data.len())..];
    }
    out
}

/// A fake workstation: a TCP listener whose connections the test takes one by one.
pub struct Peer {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    connections: mpsc::UnboundedReceiver<TcpStream>,
}

impl Peer {
    pub async fn start() -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, connections) = mpsc::unbounded_channel();
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                if tx.send(stream).is_err() {
                    break;
                }
            }
        });
        Peer {
            addr,
            accepted,
            connections,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub async fn next(&mut self) -> TcpStream {
        tokio::time::timeout(TIMEOUT, self.connections.recv())
            .await
            .expect("workstation connection in time")
            .unwrap()
    }
}

/// A fake workstation that echoes every connection until EOF.
pub async fn echo_peer() -> (SocketAddr, Arc<AtomicUsize>) {
    let mut peer = Peer::start().await;
    let addr = peer.addr;
    let accepted = peer.accepted.clone();
    tokio::spawn(async move {
        while let Some(mut stream) = peer.connections.recv().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = stream.split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
                let _ = wr.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

/// A port on which nothing listens.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// Reads binary messages until a close frame (or the end); returns the bytes and the close frame.
pub async fn read_until_close<S>(ws: &mut S) -> (Vec<u8>, Option<CloseFrame>)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    use futures_util::StreamExt;
    let mut data = Vec::new();
    let result = tokio::time::timeout(TIMEOUT, async {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Binary(bytes)) => data.extend_from_slice(&bytes),
                Ok(Message::Close(frame)) => return frame,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("close in time");
    (data, result)
}

/// Sends binary data and expects it echoed back exactly.
pub async fn echo_roundtrip(ws: &mut Ws, payload: &[u8]) {
    use futures_util::{SinkExt, StreamExt};
    ws.send(Message::Binary(payload.to_vec().into()))
        .await
        .expect("send");
    let mut got = Vec::new();
    while got.len() < payload.len() {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("echo in time")
        {
            Some(Ok(Message::Binary(bytes))) => got.extend_from_slice(&bytes),
            other => panic!("unexpected while waiting for echo: {other:?}"),
        }
    }
    assert_eq!(got, payload);
}

pub fn close_code(frame: &Option<CloseFrame>) -> Option<u16> {
    frame.as_ref().map(|f| u16::from(f.code))
}

/// Requests to a `relay serve` child process (see `storage::spawn_relay`) as the browser sends them:
/// Origin always, the session's cookie and CSRF token when signed in.
#[derive(Clone)]
pub struct ChildClient {
    https: SocketAddr,
    tls: Arc<ClientConfig>,
    origin: String,
}

impl ChildClient {
    /// For the relay serving `data_dir` on HTTPS `port`.
    pub fn new(data_dir: &std::path::Path, port: u16) -> ChildClient {
        ChildClient {
            https: ([127, 0, 0, 1], port).into(),
            tls: relay_client_tls(data_dir),
            origin: format!("https://localhost:{port}"),
        }
    }

    pub async fn post(&self, path: &str, session: Option<&Session>, body: &str) -> HttpResponse {
        let mut headers = vec![("Origin", self.origin.clone()), ("Content-Type", "application/json".to_owned())];
        if let Some(session) = session {
            headers.push(("Cookie", session.cookie_header()));
            headers.push(("X-CSRF-Token", session.csrf.clone()));
        }
        let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        https_request(self.https, &self.tls, "POST", path, &refs, Some(body)).await
    }

    /// `POST /api/login` with [`PASSWORD`].
    pub async fn sign_in(&self, user: &str) -> HttpResponse {
        let body = serde_json::json!({ "username": user, "password": PASSWORD }).to_string();
        self.post("/api/login", None, &body).await
    }
}
