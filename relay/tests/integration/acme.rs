//! The HTTPS certificate: a free certificate from a real ACME server (Debian's pebble, started through
//! scripts/pebble.sh with pebble-challtestsrv as its DNS), renewal and reset while WebSocket tunnels
//! keep passing bytes, history and restore, import of a PEM pair, refusals with their codes, and the
//! HTTP-01 challenge path. Every served certificate is checked on a real TLS handshake.

use crate::common::*;
use homedesk_relay::certificates::certificate_info;
use homedesk_relay::store::{self, AcmeJobKind, Store};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpStream;

/// A public-looking name that pebble's DNS resolves to 127.0.0.1.
pub(crate) const DOMAIN: &str = "desk.homedesk-ci.net";
/// A public-looking name that does not resolve.
const UNRESOLVED: &str = "nowhere.homedesk-ci.net";
const TUNNELS: usize = 12;

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pebble_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pebble.sh")
}

/// pebble + pebble-challtestsrv in a temp dir, validating HTTP-01 on `http_port`; stopped on drop.
pub(crate) struct Pebble {
    dir: tempfile::TempDir,
    pub(crate) directory: String,
    /// Root of pebble's own HTTPS listener (what the relay must trust to talk to it).
    pub(crate) ca_root: PathBuf,
    /// Root of the certificates pebble issues (what a browser would trust).
    pub(crate) issuer_root: PathBuf,
    /// pebble-challtestsrv's management port (its DNS records).
    dns_management_port: u16,
}

impl Pebble {
    fn start(http_port: u16) -> Pebble {
        Self::start_with(http_port, DOMAIN, &[])
    }

    /// Resolving only `hosts` (space separated), with extra `scripts/pebble.sh` settings.
    pub(crate) fn start_with(http_port: u16, hosts: &str, settings: &[(&str, &str)]) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        let dns_management_port = free_port();
        let output = Command::new("bash")
            .arg(pebble_script())
            .arg("start")
            .envs(settings.iter().copied())
            .env("PEBBLE_WORKDIR", dir.path())
            .env("PEBBLE_HTTP_PORT", http_port.to_string())
            .env("PEBBLE_HOSTS", hosts)
            .env("PEBBLE_PORT", free_port().to_string())
            .env("PEBBLE_MGMT_PORT", free_port().to_string())
            .env("PEBBLE_DNS_PORT", free_port().to_string())
            .env("PEBBLE_DNS_MGMT_PORT", dns_management_port.to_string())
            .env("PEBBLE_TLS_PORT", free_port().to_string())
            .output()
            .expect("run scripts/pebble.sh");
        assert!(
            output.status.success(),
            "pebble.sh start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let env = Command::new("bash")
            .arg(pebble_script())
            .arg("env")
            .env("PEBBLE_WORKDIR", dir.path())
            .output()
            .unwrap();
        let env = String::from_utf8_lossy(&env.stdout).into_owned();
        let var = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} in {env}"))
        };
        Pebble {
            directory: var("PEBBLE_DIRECTORY").to_owned(),
            ca_root: var("PEBBLE_CA_ROOT").into(),
            issuer_root: var("PEBBLE_ISSUER_ROOT").into(),
            dns_management_port,
            dir,
        }
    }

    /// Makes `host` stop resolving (pebble-challtestsrv's management API).
    pub(crate) fn forget_host(&self, host: &str) {
        let url = format!("http://127.0.0.1:{}/clear-a", self.dns_management_port);
        let body = format!("{{\"host\":\"{host}\"}}");
        let output = Command::new("curl")
            .args(["-fsS", "-X", "POST", &url, "-d", &body])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "clear-a: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(pebble_script())
            .arg("stop")
            .env("PEBBLE_WORKDIR", self.dir.path())
            .output();
    }
}

pub(crate) async fn relay_with_pebble() -> (TestRelay, Pebble) {
    let http_port = free_port();
    let pebble = Pebble::start(http_port);
    let relay = TestRelay::start_with(Options {
        http_port,
        acme: Some((pebble.directory.clone(), pebble.ca_root.clone())),
        ..Options::default()
    })
    .await;
    (relay, pebble)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The leaf certificate a new TLS connection gets.
pub(crate) async fn served_leaf(addr: SocketAddr, server_name: &str) -> CertificateDer<'static> {
    let verifier = LeafVerifier::accepting_any();
    let config = verifier.client_config();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    verifier.last_leaf().expect("a certificate")
}

/// Waits until new connections get `expected` (the relay polls the database every 200 ms).
pub(crate) async fn wait_until_served(
    addr: SocketAddr,
    server_name: &str,
    expected: &CertificateDer<'_>,
) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if served_leaf(addr, server_name).await.as_ref() == expected.as_ref() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was not served in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A client that trusts only `root_pem` (webpki verification, name checked).
pub(crate) fn trusting(root_pem: &Path) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub(crate) async fn leaf_of(store: &Store, id: i64) -> CertificateDer<'static> {
    let pem = store
        .certificate_pem(id)
        .await
        .unwrap()
        .expect("kept certificate");
    CertificateDer::pem_slice_iter(pem.chain_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
}

pub(crate) async fn active_id(store: &Store) -> i64 {
    store
        .active_certificate_id()
        .await
        .unwrap()
        .expect("an active certificate")
}

/// Runs the CLI without blocking the relay that runs in this process.
pub(crate) async fn cli_async(relay: &TestRelay, args: &[&str]) -> std::process::Output {
    let dir = relay.data_dir.clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&dir, &args, None)
    })
    .await
    .unwrap()
}

pub(crate) fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "CLI failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn failure(output: &std::process::Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected a failure: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "expected {needle:?} in {stderr}");
    }
}

/// Tunnels that echo bytes in a loop until stopped, each counting its round trips.
struct BusyTunnels {
    counts: Vec<Arc<AtomicUsize>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl BusyTunnels {
    async fn open(relay: &TestRelay, n: usize) -> BusyTunnels {
        let (echo, _) = echo_peer().await;
        relay.user_with_workstation("alice", "pc", echo).await;
        let session = relay.login("alice").await;
        let stop = Arc::new(AtomicBool::new(false));
        let (mut counts, mut tasks) = (Vec::new(), Vec::new());
        for index in 0..n {
            let mut ws = relay.tunnel(&relay.ticket(&session, None).await).await;
            let (count, stop) = (Arc::new(AtomicUsize::new(0)), stop.clone());
            counts.push(count.clone());
            tasks.push(tokio::spawn(async move {
                let mut round = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    let payload: Vec<u8> = (0..2048u32)
                        .map(|i| (i.wrapping_mul(31) ^ round ^ index as u32) as u8)
                        .collect();
                    echo_roundtrip(&mut ws, &payload).await;
                    count.fetch_add(1, Ordering::SeqCst);
                    round += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                echo_roundtrip(&mut ws, b"still here").await;
            }));
        }
        BusyTunnels {
            counts,
            stop,
            tasks,
        }
    }

    fn counts(&self) -> Vec<usize> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }

    /// Waits until every tunnel did more round trips than in `before`.
    async fn all_progress_since(&self, before: &[usize]) {
        wait_until("every tunnel passes bytes", || {
            self.counts()
                .iter()
                .zip(before)
                .all(|(now, then)| now > then)
        })
        .await;
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await
                .expect("a tunnel failed while certificates changed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_certificate_renewal_reset_and_restore_keep_tunnels_up() {
    let (mut relay, pebble) = relay_with_pebble().await;
    let store = relay.server().store().clone();
    let self_signed = served_leaf(relay.https_addr, DOMAIN).await;
    let tunnels = BusyTunnels::open(&relay, TUNNELS).await;
    tunnels.all_progress_since(&[0; TUNNELS]).await;

    // Terms first: their URL comes from pebble's directory; nothing is requested without accepting.
    let output = cli_async(
        &relay,
        &[
            "certificate",
            "request",
            "--email",
            "admin@homedesk-ci.net",
            "--domain",
            DOMAIN,
        ],
    )
    .await;
    failure(&output, &["--accept-terms", "(error 803)"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("terms of service: data:text/plain,"),
        "{output:?}"
    );
    assert_eq!(store.list_certificates().await.unwrap().len(), 0);

    let args = [
        "certificate",
        "request",
        "--email",
        "admin@homedesk-ci.net",
        "--domain",
        DOMAIN,
        "--accept-terms",
    ];
    let out = stdout(&cli_async(&relay, &args).await);
    assert!(
        out.contains(&format!(
            "Certificate for {DOMAIN} issued by CN=Pebble Intermediate CA"
        )),
        "{out}"
    );
    let first = leaf_of(&store, active_id(&store).await).await;
    wait_until_served(relay.https_addr, DOMAIN, &first).await;

    // A browser that trusts pebble's root accepts the portal under the domain: issuer and SAN are right.
    let browser = trusting(&pebble.issuer_root);
    let response =
        https_request_named(relay.https_addr, &browser, DOMAIN, "GET", "/", &[], None).await;
    assert_eq!(
        response.header("strict-transport-security"),
        Some("max-age=31536000"),
        "HSTS with a CA certificate"
    );
    let info = certificate_info(&served_leaf(relay.https_addr, DOMAIN).await).unwrap();
    assert_eq!(info.names, [DOMAIN]);
    assert!(
        info.issuer.contains("Pebble Intermediate CA"),
        "{}",
        info.issuer
    );

    let status = stdout(&cli_async(&relay, &["certificate", "status"]).await);
    for needle in [
        DOMAIN,
        "Pebble Intermediate CA",
        "free certificate (ACME)",
        ": success",
        "Expires",
        "Next check",
    ] {
        assert!(status.contains(needle), "{needle:?} in {status}");
    }

    // Forced renewal while every tunnel keeps echoing.
    let before = tunnels.counts();
    let out = stdout(&cli_async(&relay, &["certificate", "renew"]).await);
    assert!(out.contains("issued by CN=Pebble Intermediate CA"), "{out}");
    let second_id = active_id(&store).await;
    let second = leaf_of(&store, second_id).await;
    assert_ne!(second.as_ref(), first.as_ref(), "a new certificate");
    wait_until_served(relay.https_addr, DOMAIN, &second).await;
    https_request_named(relay.https_addr, &browser, DOMAIN, "GET", "/", &[], None).await;
    tunnels.all_progress_since(&before).await;

    let history = stdout(&cli_async(&relay, &["certificate", "history"]).await);
    let lines: Vec<&str> = history.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{history}");
    assert!(
        lines[0].starts_with(&second_id.to_string()) && lines[0].contains("active (served)"),
        "{history}"
    );
    assert!(
        lines[1].contains(DOMAIN) && lines[1].trim_end().ends_with("UTC"),
        "replaced date shown: {history}"
    );

    // Reset Domain: self-signed again, no HSTS; nothing is deleted.
    let before = tunnels.counts();
    stdout(&cli_async(&relay, &["certificate", "reset"]).await);
    wait_until_served(relay.https_addr, DOMAIN, &self_signed).await;
    let response = relay.request("GET", "/", &[], None).await;
    assert_eq!(
        response.header("strict-transport-security"),
        None,
        "no HSTS with the self-signed certificate"
    );
    assert_eq!(store.list_certificates().await.unwrap().len(), 2);
    assert!(stdout(&cli_async(&relay, &["certificate", "status"]).await).contains("self-signed"));

    // Restore the first certificate from the history.
    let first_id = store.list_certificates().await.unwrap().last().unwrap().id;
    let out = stdout(&cli_async(&relay, &["certificate", "restore", &first_id.to_string()]).await);
    assert!(out.contains("served again"), "{out}");
    wait_until_served(relay.https_addr, DOMAIN, &first).await;
    failure(
        &cli_async(&relay, &["certificate", "restore", "999"]).await,
        &["no kept certificate #999"],
    );
    tunnels.all_progress_since(&before).await;

    assert_eq!(
        relay.server().pipes().snapshot().len(),
        TUNNELS,
        "no tunnel was dropped"
    );
    tunnels.finish().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_failed_validations_have_codes() {
    let (mut relay, pebble) = relay_with_pebble().await;
    let store = relay.server().store().clone();
    let email = "admin@homedesk-ci.net";

    // Refused by the CLI before anything is queued.
    for (domain, needle) in [
        ("192.168.1.20", "is an IP address"),
        ("desk.local", "internal name"),
        ("nas", "internal name"),
    ] {
        let output = cli_async(
            &relay,
            &[
                "certificate",
                "request",
                "--email",
                email,
                "--domain",
                domain,
                "--accept-terms",
            ],
        )
        .await;
        failure(&output, &[needle, "(error 804)"]);
    }
    failure(
        &cli_async(
            &relay,
            &[
                "certificate",
                "request",
                "--email",
                "nobody",
                "--domain",
                DOMAIN,
                "--accept-terms",
            ],
        )
        .await,
        &["not a valid email address", "(error 801)"],
    );

    // Refused by the relay too (what the future console's requests go through).
    for (domain, needle) in [
        ("10.0.0.5", "is an IP address"),
        ("pc.corp", "internal name"),
    ] {
        let id = store
            .insert_acme_job(
                AcmeJobKind::Request,
                Some(email),
                Some(domain),
                None,
                store::unix_ms(),
            )
            .await
            .unwrap();
        let job = wait_for_job(&store, id).await;
        assert_eq!(job.result_code, Some(804), "{job:?}");
        assert!(job.result_message.unwrap().contains(needle));
    }
    // Terms that are not the CA's current ones.
    let id = store
        .insert_acme_job(
            AcmeJobKind::Request,
            Some(email),
            Some(DOMAIN),
            Some("https://old.terms/"),
            store::unix_ms(),
        )
        .await
        .unwrap();
    assert_eq!(wait_for_job(&store, id).await.result_code, Some(803));

    // The console's way to the terms: queue a job, poll it.
    let admin = admin_session(&relay).await;
    let queued = relay
        .post(
            "/api/admin/certificate/jobs",
            Some(&admin),
            r#"{"kind": "terms"}"#,
        )
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text());
    let path = format!("/api/admin/certificate/jobs/{}", queued.json()["job_id"]);
    let mut polled = get_json(&relay, &path, &admin).await.json();
    while polled["done"] != true {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        polled = get_json(&relay, &path, &admin).await.json();
    }
    assert_eq!(polled["code"], 0);
    assert!(
        polled["message"]
            .as_str()
            .unwrap()
            .starts_with("data:text/plain,"),
        "{polled}"
    );

    // A public-looking name the CA cannot resolve: validation fails with 804 and advice; CA detail in the log.
    let args = [
        "certificate",
        "request",
        "--email",
        email,
        "--domain",
        UNRESOLVED,
        "--accept-terms",
    ];
    failure(
        &cli_async(&relay, &args).await,
        &["could not find", UNRESOLVED, "DNS", "(error 804)"],
    );
    let status = stdout(&cli_async(&relay, &["certificate", "status"]).await);
    assert!(status.contains("failed (error 804)"), "{status}");
    // The CA's own problem text (not only the advice) is in the job's log line.
    let ca_problem = crate::acme_gaps::ca_dns_problem(UNRESOLVED, relay.http_addr.port());
    assert!(
        logs().lines().any(|l| l.contains("ACME job failed")
            && l.contains("code=804")
            && l.contains(&ca_problem)),
        "the CA's detail {ca_problem:?} is logged"
    );
    assert!(store.list_certificates().await.unwrap().is_empty());
    // Renewing without a free certificate is refused with the renewal code.
    failure(
        &cli_async(&relay, &["certificate", "renew"]).await,
        &["(error 805)"],
    );

    // A renewal whose validation fails (the name stopped resolving): 805, and the current certificate
    // stays served.
    stdout(
        &cli_async(
            &relay,
            &[
                "certificate",
                "request",
                "--email",
                email,
                "--domain",
                DOMAIN,
                "--accept-terms",
            ],
        )
        .await,
    );
    let issued = leaf_of(&store, active_id(&store).await).await;
    wait_until_served(relay.https_addr, DOMAIN, &issued).await;
    pebble.forget_host(DOMAIN);
    failure(
        &cli_async(&relay, &["certificate", "renew"]).await,
        &["could not find", DOMAIN, "(error 805)"],
    );
    let status = stdout(&cli_async(&relay, &["certificate", "status"]).await);
    assert!(
        status.contains("failed (error 805)") && status.contains(DOMAIN),
        "{status}"
    );
    assert_eq!(store.list_certificates().await.unwrap().len(), 1);
    assert_eq!(
        served_leaf(relay.https_addr, DOMAIN).await.as_ref(),
        issued.as_ref()
    );
    relay.stop().await;
}

pub(crate) async fn wait_for_job(store: &Store, id: i64) -> homedesk_relay::store::AcmeJob {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let job = store.acme_job(id).await.unwrap().unwrap();
        if job.finished_at.is_some() {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} not finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_path_answers_only_pending_tokens() {
    let mut relay = TestRelay::start().await;
    let store = relay.server().store().clone();
    let now = store::unix_ms();
    store
        .put_acme_challenge(
            "pending_Token-1",
            "pending_Token-1.thumbprint",
            now + 60_000,
        )
        .await
        .unwrap();
    store
        .put_acme_challenge("expired", "expired.thumbprint", now - 1)
        .await
        .unwrap();
    let host = "desk.example.com";

    let answer = http_request(
        relay.http_addr,
        "/.well-known/acme-challenge/pending_Token-1",
        host,
    )
    .await;
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (200, "pending_Token-1.thumbprint")
    );
    for path in [
        "/.well-known/acme-challenge/expired",
        "/.well-known/acme-challenge/unknown",
        "/.well-known/acme-challenge/",
        "/.well-known/acme-challenge/../pending_Token-1",
        "/.well-known/acme-challenge/pending_Token-1/x",
    ] {
        assert_eq!(
            http_request(relay.http_addr, path, host).await.status,
            404,
            "{path}"
        );
    }
    store
        .remove_acme_challenge("pending_Token-1")
        .await
        .unwrap();
    let gone = http_request(
        relay.http_addr,
        "/.well-known/acme-challenge/pending_Token-1",
        host,
    )
    .await;
    assert_eq!(gone.status, 404);
    // Everything else still redirects to HTTPS.
    let redirect = http_request(relay.http_addr, "/portal?x=1", host).await;
    assert_eq!(redirect.status, 308);
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://{host}:{}/portal?x=1", relay.https_addr.port()).as_str())
    );
    relay.stop().await;
}

/// A CA and a certificate it signed for `name`, valid from `not_before` to `not_after` days from now.
pub(crate) fn ca_signed(name: &str, not_before: i64, not_after: i64) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Homedesk Test Office CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    let day = time::Duration::days(1);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + day * not_before as i32;
    params.not_after = now + day * not_after as i32;
    let cert = params.signed_by(&key, &issuer).unwrap();
    (
        format!("{}{}", cert.pem(), ca.pem()),
        key.serialize_pem(),
        ca.pem(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_certificate_is_served_and_bad_pairs_are_refused() {
    let mut relay = TestRelay::start().await;
    let self_signed = served_leaf(relay.https_addr, "portal.example.org").await;
    let temp = tempfile::tempdir().unwrap();
    let write = |name: &str, contents: &str| {
        let path = temp.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    };
    let (chain, key, ca) = ca_signed("portal.example.org", -1, 60);
    let (other_chain, other_key, _) = ca_signed("portal.example.org", -1, 60);
    let (expired_chain, expired_key, _) = ca_signed("portal.example.org", -30, -1);
    let (chain, key, ca) = (
        write("chain.pem", &chain),
        write("key.pem", &key),
        write("ca.pem", &ca),
    );
    let other_key = write("other-key.pem", &other_key);
    let _ = other_chain;

    let import =
        |cert: &str, key: &str| relay.cli(&["certificate", "import", "--cert", cert, "--key", key]);
    let garbage = write("garbage.pem", "not a certificate");
    failure(
        &import(&chain, &other_key),
        &["private key does not belong to the certificate"],
    );
    failure(&import(&garbage, &key), &["no certificate found"]);
    failure(&import(&chain, &garbage), &["no private key found"]);
    failure(
        &import(
            &write("expired.pem", &expired_chain),
            &write("expired-key.pem", &expired_key),
        ),
        &["certificate expired on"],
    );
    failure(&import(&format!("{chain}.missing"), &key), &["cannot read"]);
    assert!(
        relay
            .server()
            .store()
            .list_certificates()
            .await
            .unwrap()
            .is_empty(),
        "nothing kept from bad imports"
    );

    let out = stdout(&import(&chain, &key));
    assert!(
        out.contains("portal.example.org") && out.contains("Homedesk Test Office CA"),
        "{out}"
    );
    let store = relay.server().store().clone();
    let imported = leaf_of(&store, active_id(&store).await).await;
    wait_until_served(relay.https_addr, "portal.example.org", &imported).await;
    let office = trusting(Path::new(&ca));
    let response = https_request_named(
        relay.https_addr,
        &office,
        "portal.example.org",
        "GET",
        "/",
        &[],
        None,
    )
    .await;
    // Served and valid for the office's browsers, but signed by a private CA: no HSTS, so that a
    // browser without the office's root can still click through (docs/certificates.md).
    assert_eq!(response.header("strict-transport-security"), None);
    let history = relay.cli(&["certificate", "history"]);
    assert!(stdout(&history).contains("imported"));

    stdout(&relay.cli(&["certificate", "reset"]));
    wait_until_served(relay.https_addr, "portal.example.org", &self_signed).await;
    relay.stop().await;
}

pub(crate) async fn admin_session(relay: &TestRelay) -> Session {
    let password = relay
        .admin_password
        .clone()
        .expect("first start made the admin");
    let response = relay.login_response("admin", &password).await;
    assert_eq!(response.status, 200, "{}", response.text());
    Session::from_login(&response)
}

pub(crate) async fn get_json(relay: &TestRelay, path: &str, session: &Session) -> HttpResponse {
    let cookie = session.cookie_header();
    relay
        .request("GET", path, &[("Cookie", cookie.as_str())], None)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_api_manages_the_certificate() {
    let mut relay = TestRelay::start().await;
    let admin = admin_session(&relay).await;
    relay.add_user("bob").await;
    let bob = relay.login("bob").await;

    let status = get_json(&relay, "/api/admin/certificate", &admin).await;
    assert_eq!(status.status, 200, "{}", status.text());
    assert_eq!(status.json()["served"]["source"], "self-signed");
    assert_eq!(status.json()["hsts"], false);
    // The self-signed certificate's own details, as a TLS client receives it.
    let details = &status.json()["served"]["details"];
    let names: Vec<&str> = details["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(names.contains(&"localhost"), "{details}");
    assert_eq!(
        details["subject"], details["issuer"],
        "self-signed: {details}"
    );
    assert!(
        details["not_after"].as_i64().unwrap() > store::unix_ms(),
        "{details}"
    );
    let self_signed_leaf = served_leaf(relay.https_addr, "localhost").await;
    assert_eq!(
        details["sha256"],
        homedesk_relay::tls::fingerprint(&self_signed_leaf)
    );
    assert_eq!(
        get_json(&relay, "/api/admin/certificate", &bob)
            .await
            .status,
        403,
        "administrators only"
    );
    assert_eq!(
        relay
            .post("/api/admin/certificate/reset", Some(&bob), "")
            .await
            .status,
        403
    );
    let no_csrf = relay
        .request(
            "POST",
            "/api/admin/certificate/reset",
            &[("Origin", &relay.origin())],
            None,
        )
        .await;
    assert_eq!(no_csrf.status, 401);

    let (chain, key, _) = ca_signed("portal.example.org", -1, 60);
    let (_, other_key, _) = ca_signed("portal.example.org", -1, 60);
    let body = |chain: &str, key: &str| {
        serde_json::json!({ "certificate_pem": chain, "key_pem": key }).to_string()
    };
    let mismatch = relay
        .post(
            "/api/admin/certificate/import",
            Some(&admin),
            &body(&chain, &other_key),
        )
        .await;
    assert_eq!(
        (
            mismatch.status,
            mismatch.error().contains("does not belong")
        ),
        (400, true),
        "{}",
        mismatch.text()
    );
    let imported = relay
        .post(
            "/api/admin/certificate/import",
            Some(&admin),
            &body(&chain, &key),
        )
        .await;
    assert_eq!(imported.status, 200, "{}", imported.text());
    let served = &imported.json()["served"];
    assert_eq!(
        (served["source"].as_str(), served["domain"].as_str()),
        (Some("imported"), Some("portal.example.org"))
    );
    assert!(served["issuer"]
        .as_str()
        .unwrap()
        .contains("Homedesk Test Office CA"));
    let id = served["id"].as_i64().unwrap();
    assert_eq!(
        served["details"]["names"],
        serde_json::json!(["portal.example.org"])
    );
    // The fixture's subject is rcgen's default; the issuer is the test CA's.
    assert_eq!(served["details"]["subject"], "CN=rcgen self signed cert");
    assert_eq!(served["details"]["issuer"], served["issuer"]);

    // From here the relay serves the imported certificate: talk to it as a client that accepts it.
    let store = relay.server().store().clone();
    let imported_leaf = leaf_of(&store, id).await;
    assert_eq!(
        served["details"]["sha256"],
        homedesk_relay::tls::fingerprint(&imported_leaf)
    );
    wait_until_served(relay.https_addr, "localhost", &imported_leaf).await;
    relay.tls = accepting_any();
    let status = get_json(&relay, "/api/admin/certificate", &admin).await;
    assert_eq!(
        status.json()["hsts"],
        false,
        "a private CA's certificate gets no HSTS"
    );
    assert_eq!(status.json()["history"].as_array().unwrap().len(), 1);

    let unknown = relay
        .post(
            "/api/admin/certificate/restore",
            Some(&admin),
            r#"{"id": 999}"#,
        )
        .await;
    assert_eq!(unknown.status, 404);
    let reset = relay
        .post("/api/admin/certificate/reset", Some(&admin), "")
        .await;
    assert_eq!(reset.json()["served"]["source"], "self-signed");
    let restored = relay
        .post(
            "/api/admin/certificate/restore",
            Some(&admin),
            &format!(r#"{{"id": {id}}}"#),
        )
        .await;
    assert_eq!(restored.json()["served"]["id"], id);
    // Console changes are audited like the CLI's (`settings.change`, target `certificate`).
    let audit = get_json(&relay, "/api/admin/audit?q=certificate", &admin)
        .await
        .json();
    let details: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "settings.change" && e["actor"] == "admin")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert_eq!(
        details,
        [
            format!("restored #{id} for portal.example.org"),
            "reset to the self-signed certificate".to_owned(),
            format!("imported #{id} for portal.example.org"),
        ],
        "{audit}"
    );

    let job = |body: serde_json::Value| {
        let relay = &relay;
        let admin = &admin;
        async move {
            relay
                .post(
                    "/api/admin/certificate/jobs",
                    Some(admin),
                    &body.to_string(),
                )
                .await
        }
    };
    let ip = job(
        serde_json::json!({"kind": "request", "email": "a@example.com", "domain": "192.168.1.5"}),
    )
    .await;
    assert_eq!(ip.status, 400);
    assert!(
        ip.error().contains("IP address") && ip.error().ends_with("(error 804)"),
        "{}",
        ip.error()
    );
    let email =
        job(serde_json::json!({"kind": "request", "email": "a", "domain": "desk.example.com"}))
            .await;
    assert!(email.error().ends_with("(error 801)"), "{}", email.error());
    assert_eq!(
        job(serde_json::json!({"kind": "explode"})).await.status,
        400
    );
    assert_eq!(
        get_json(&relay, "/api/admin/certificate/jobs/12345", &admin)
            .await
            .status,
        404
    );

    // A renewal with nothing to renew fails; the status lists the attempt with its code and reason.
    let renew = job(serde_json::json!({"kind": "renew"})).await;
    assert_eq!(renew.status, 202, "{}", renew.text());
    let job_id = renew.json()["job_id"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let progress = get_json(
            &relay,
            &format!("/api/admin/certificate/jobs/{job_id}"),
            &admin,
        )
        .await;
        if progress.json()["done"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewal job never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let status = get_json(&relay, "/api/admin/certificate", &admin)
        .await
        .json();
    let attempt = &status["attempts"][0];
    assert_eq!(
        (&attempt["id"], &attempt["kind"]),
        (&serde_json::json!(job_id), &serde_json::json!("renew")),
        "{status}"
    );
    assert!(
        attempt["code"]
            .as_i64()
            .is_some_and(|code| (801..=806).contains(&code)),
        "{status}"
    );
    assert!(
        attempt["message"]
            .as_str()
            .unwrap_or_default()
            .contains("No free certificate to renew"),
        "{status}"
    );
    assert_eq!(
        status["attempts"].as_array().unwrap().len(),
        1,
        "terms lookups are no attempts: {status}"
    );
    relay.stop().await;
}

/// A client config that accepts whatever the relay serves (for API calls after a certificate change).
fn accepting_any() -> Arc<ClientConfig> {
    LeafVerifier::accepting_any().client_config()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_with_a_third_of_its_lifetime_left_is_renewed_by_itself() {
    let (mut relay, _pebble) = relay_with_pebble().await;
    let store = relay.server().store().clone();
    let args = [
        "certificate",
        "request",
        "--email",
        "admin@homedesk-ci.net",
        "--domain",
        DOMAIN,
        "--accept-terms",
    ];
    stdout(&cli_async(&relay, &args).await);
    let first_id = active_id(&store).await;
    let settings = store.acme_settings().await.unwrap().unwrap();
    let day = 86_400_000;
    assert!(
        settings.next_check_at.unwrap() <= store::unix_ms() + day,
        "checked again within a day"
    );

    // Not due: the daily check leaves it alone.
    // The relay's own database, whichever backend this run uses.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&shared_database_url(&relay))
        .await
        .unwrap();
    let now = store::unix_ms();
    let age = |not_before: i64, not_after: i64, pool: sqlx::AnyPool| async move {
        sqlx::query("UPDATE certificates SET not_before = $1, not_after = $2 WHERE id = $3")
            .bind(not_before)
            .bind(not_after)
            .bind(first_id)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE acme_settings SET next_check_at = $1")
            .bind(store::unix_ms())
            .execute(&pool)
            .await
            .unwrap();
    };
    let not_due = || logs().matches("certificate not due for renewal").count();
    let checks_before = not_due();
    age(now - 59 * day, now + 31 * day, pool.clone()).await;
    wait_until("the daily check decided", || not_due() > checks_before).await;
    assert_eq!(
        active_id(&store).await,
        first_id,
        "day 59 of 90: not renewed"
    );

    // Day 61 of 90: less than a third left, renewed at the next check without anyone asking.
    age(now - 61 * day, now + 29 * day, pool.clone()).await;
    let deadline = std::time::Instant::now() + TIMEOUT;
    while active_id(&store).await == first_id {
        assert!(
            std::time::Instant::now() < deadline,
            "not renewed by itself"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let renewed = leaf_of(&store, active_id(&store).await).await;
    wait_until_served(relay.https_addr, DOMAIN, &renewed).await;
    let settings = store.acme_settings().await.unwrap().unwrap();
    assert_eq!(settings.last_result_code, Some(0), "{settings:?}");
    pool.close().await;
    relay.stop().await;
}

/// Two relays on one database (two connection pools, as two processes have), racing for the same
/// ACME jobs and the same due renewal check: each job and each check goes to exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_claim_each_job_and_each_due_renewal_check_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = open_test_store(dir.path()).await;
    let second = open_test_store(dir.path()).await;
    let now = store::unix_ms();
    let mut queued = Vec::new();
    for _ in 0..20 {
        queued.push(
            first
                .insert_acme_job(AcmeJobKind::Renew, None, None, None, now)
                .await
                .unwrap(),
        );
    }
    let drain = |store: Store| async move {
        let mut mine = Vec::new();
        while let Some(job) = store.claim_acme_job(store::unix_ms()).await.unwrap() {
            mine.push(job.id);
        }
        mine
    };
    let (a, b) = tokio::join!(
        tokio::spawn(drain(first.clone())),
        tokio::spawn(drain(second.clone()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
    all.sort();
    assert_eq!(
        all, queued,
        "every job claimed exactly once (a: {a:?}, b: {b:?})"
    );

    first
        .save_acme_request(
            "admin@homedesk-ci.net",
            DOMAIN,
            "",
            "https://ca.invalid/dir",
        )
        .await
        .unwrap();
    for round in 0..30i64 {
        let observed = if round == 0 { None } else { Some(now + round) };
        if let Some(at) = observed {
            first.set_acme_next_check(at).await.unwrap();
        }
        let next = now + 1_000 + round;
        let (x, y) = tokio::join!(
            first.claim_acme_check(observed, next),
            second.claim_acme_check(observed, next)
        );
        assert!(
            x.unwrap() ^ y.unwrap(),
            "round {round}: exactly one relay takes the check"
        );
        let settings = second.acme_settings().await.unwrap().unwrap();
        assert_eq!(settings.next_check_at, Some(next));
        // A relay that read an older value gets nothing.
        assert!(!second.claim_acme_check(observed, next + 1).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_starting_while_a_renewal_is_due_order_it_once() {
    let (mut relay, pebble) = relay_with_pebble().await;
    let store = relay.server().store().clone();
    let args = [
        "certificate",
        "request",
        "--email",
        "admin@homedesk-ci.net",
        "--domain",
        DOMAIN,
        "--accept-terms",
    ];
    stdout(&cli_async(&relay, &args).await);
    let first_id = active_id(&store).await;

    // Day 61 of 90 and due now; two more relays start at once on the same database. The first relay
    // keeps the HTTP port pebble validates (the challenge tokens are in the shared database).
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&shared_database_url(&relay))
        .await
        .unwrap();
    let (now, day) = (store::unix_ms(), 86_400_000);
    sqlx::query("UPDATE certificates SET not_before = $1, not_after = $2 WHERE id = $3")
        .bind(now - 61 * day)
        .bind(now + 29 * day)
        .bind(first_id)
        .execute(&pool)
        .await
        .unwrap();
    let start = || {
        TestRelay::start_with(Options {
            database_url: Some(shared_database_url(&relay)),
            acme: Some((pebble.directory.clone(), pebble.ca_root.clone())),
            ..Options::default()
        })
    };
    sqlx::query("UPDATE acme_settings SET next_check_at = $1")
        .bind(now)
        .execute(&pool)
        .await
        .unwrap();
    let (mut second, mut third) = tokio::join!(start(), start());

    let deadline = std::time::Instant::now() + TIMEOUT;
    while active_id(&store).await == first_id {
        assert!(std::time::Instant::now() < deadline, "not renewed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Every relay has polled several times since (200 ms interval): still exactly one new certificate.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let acme = store
        .list_certificates()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.source == homedesk_relay::store::CertificateSource::Acme)
        .count();
    assert_eq!(acme, 2, "the first certificate and one renewal");
    second.stop().await;
    third.stop().await;
    pool.close().await;
    relay.stop().await;
}
