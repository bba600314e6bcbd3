//! The admin console's HTTPS certificate, Web server and workstation edit pages, in headless Chromium
//! against a real relay process. What the pages claim is checked against what the relay really does:
//! the certificate it serves over TLS (read with `openssl s_client`) and the port it listens on.

use anyhow::{bail, Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::{free_port, wait_for};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);
/// A port change is a job for the serving relay; the request waits for it (the relay allows ~50 s).
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

async fn admin_sign_in(browser: &Browser, relay: &Relay) -> Result<()> {
    browser.goto(&format!("{}admin", relay.url())).await?;
    browser.type_into("admin-login-username", "admin").await?;
    browser.type_into("admin-login-password", &relay.admin_password()?).await?;
    browser.click("admin-login-submit").await?;
    browser.wait_testid("admin-nav", TIMEOUT).await.map(drop)
}

/// Waits until the element's visible text contains every one of `needles`; returns that text.
async fn wait_text(browser: &Browser, id: &str, needles: &[&str], timeout: Duration) -> Result<String> {
    wait_for(&format!("{id} to show {needles:?}"), timeout, || async {
        let text = browser.text_of(id, timeout).await?;
        Ok(needles.iter().all(|n| text.contains(n)).then_some(text))
    })
    .await
}

fn run(program: &str, args: &[&str], dir: &Path) -> Result<String> {
    let output = Command::new(program).args(args).current_dir(dir).stdin(Stdio::null()).output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!("{program} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A test CA and a certificate it signed for `portal.e2e.test` and `localhost` (P-256 keys, PKCS#8),
/// written as `ca.key`, `leaf.pem` and `leaf.key` in `dir`.
fn ca_signed_pair(dir: &Path) -> Result<()> {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let ca = [&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Homedesk E2E Test CA"]];
    run("openssl", &ca.concat(), dir)?;
    let csr = [&["req"][..], &ec, &["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=portal.e2e.test"]];
    run("openssl", &csr.concat(), dir)?;
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:portal.e2e.test,DNS:localhost\n")?;
    run(
        "openssl",
        &["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.pem",
          "-days", "2", "-extfile", "san.ext"],
        dir,
    )
    .map(drop)
}

/// What the relay serves on `port` to a TLS client: subject, issuer and the SHA-256 fingerprint
/// (lowercase hex without colons, the console's format).
fn served_certificate(port: u16) -> Result<(String, String)> {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername localhost </dev/null 2>/dev/null \
         | openssl x509 -noout -subject -issuer -fingerprint -sha256"
    );
    let text = run("sh", &["-c", &script], Path::new("/"))?;
    let fingerprint = text
        .lines()
        .find_map(|line| line.split_once("Fingerprint=").map(|(_, hex)| hex.replace(':', "").to_ascii_lowercase()))
        .context("openssl printed no fingerprint")?;
    Ok((text, fingerprint))
}

async fn finish(browser: Browser, relay: &Relay, name: &str, result: Result<()>) -> Result<()> {
    if result.is_err() {
        let _ = browser.screenshot(&format!("{name}-failure")).await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

/// The page shows the self-signed certificate as TLS clients get it; an imported CA-signed pair
/// (files chosen in the browser) replaces it on the page and on the wire; a key of another
/// certificate is refused with the relay's reason; reset and restore work from the page.
#[tokio::test]
async fn certificate_page_shows_and_imports() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.serve().await?;
    let files = tempfile::tempdir()?;
    ca_signed_pair(files.path())?;
    let browser = Browser::start(1400, 1300).await?;
    let result = async {
        admin_sign_in(&browser, &relay).await?;
        browser.click("admin-nav-certificate").await?;
        wait_text(&browser, "admin-certificate-source", &["Self-signed"], TIMEOUT).await?;
        wait_text(&browser, "admin-certificate-trust", &["Self-signed: browsers warn"], TIMEOUT).await?;
        let names = browser.text_of("admin-certificate-names", TIMEOUT).await?;
        assert!(names.split(", ").any(|n| n == "localhost"), "self-signed names: {names}");
        let (served, fingerprint) = served_certificate(relay.https_port)?;
        assert_eq!(browser.text_of("admin-certificate-sha256", TIMEOUT).await?, fingerprint, "served: {served}");
        browser.screenshot("console-certificate-self-signed").await?;

        // A key that does not belong to the certificate: the relay's reason, nothing changes.
        let chain = files.path().join("leaf.pem");
        browser.wait_testid("admin-certificate-import-chain", TIMEOUT).await?.send_keys(&chain.display().to_string()).await?;
        let wrong_key = files.path().join("ca.key");
        browser.wait_testid("admin-certificate-import-key", TIMEOUT).await?.send_keys(&wrong_key.display().to_string()).await?;
        browser.click("admin-certificate-import").await?;
        wait_text(&browser, "admin-certificate-notice", &["does not belong"], TIMEOUT).await?;
        assert_eq!(served_certificate(relay.https_port)?.1, fingerprint, "a refused import changed the served certificate");
        browser.screenshot("console-certificate-wrong-key").await?;

        let key_input = browser.wait_testid("admin-certificate-import-key", TIMEOUT).await?;
        key_input.clear().await?;
        key_input.send_keys(&files.path().join("leaf.key").display().to_string()).await?;
        browser.click("admin-certificate-import").await?;
        wait_text(&browser, "admin-certificate-notice", &["now served"], TIMEOUT).await?;
        wait_text(&browser, "admin-certificate-source", &["Imported"], TIMEOUT).await?;
        // Signed by a private CA: no HSTS (a browser without that CA must still be able to continue).
        wait_text(&browser, "admin-certificate-trust", &["company CA", "HSTS is not sent"], TIMEOUT).await?;
        assert_eq!(browser.text_of("admin-certificate-names", TIMEOUT).await?, "portal.e2e.test, localhost");
        assert!(browser.text_of("admin-certificate-issuer", TIMEOUT).await?.contains("Homedesk E2E Test CA"));
        let imported = browser.text_of("admin-certificate-sha256", TIMEOUT).await?;
        assert_ne!(imported, fingerprint);
        // The relay serves it from the next handshake on (each relay polls the database).
        let port = relay.https_port;
        let served = wait_for("the relay to serve the imported certificate", TIMEOUT, || {
            let imported = imported.clone();
            async move { Ok(served_certificate(port).ok().filter(|(_, sha)| *sha == imported).map(|(text, _)| text)) }
        })
        .await?;
        assert!(served.contains("Homedesk E2E Test CA"), "{served}");
        wait_text(&browser, "admin-certificate-history", &["#1", "Imported", "portal.e2e.test", "served"], TIMEOUT).await?;
        browser.screenshot("console-certificate-imported").await?;

        // Reset: self-signed again, on the page and on the wire; the import is kept and can be restored.
        browser.click("admin-certificate-reset").await?;
        wait_text(&browser, "admin-certificate-source", &["Self-signed"], TIMEOUT).await?;
        wait_for("the relay to serve the self-signed certificate again", TIMEOUT, || async {
            Ok(served_certificate(port).ok().filter(|(_, sha)| *sha == fingerprint).map(drop))
        })
        .await?;
        let restore = browser.client.find(fantoccini::Locator::Css("button[aria-label='restore certificate #1']")).await?;
        restore.click().await?;
        wait_text(&browser, "admin-certificate-notice", &["#1", "served again"], TIMEOUT).await?;
        wait_text(&browser, "admin-certificate-source", &["Imported"], TIMEOUT).await?;
        wait_for("the relay to serve the restored certificate", TIMEOUT, || {
            let imported = imported.clone();
            async move { Ok(served_certificate(port).ok().filter(|(_, sha)| *sha == imported).map(drop)) }
        })
        .await?;
        browser.screenshot("console-certificate-restored").await?;
        Ok(())
    }
    .await;
    finish(browser, &relay, "console-certificate", result).await
}

/// A public-looking name that the test ACME server's DNS resolves to 127.0.0.1.
const ACME_DOMAIN: &str = "desk.homedesk-ci.net";

/// Debian's pebble with its DNS (scripts/pebble.sh), validating HTTP-01 on `http_port`; stopped on drop.
struct Pebble {
    dir: tempfile::TempDir,
    directory: String,
    /// The root of pebble's own HTTPS listener (what the relay is told to trust for the CA).
    ca_root: String,
}

impl Pebble {
    fn script() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pebble.sh")
    }

    fn start(http_port: u16) -> Result<Pebble> {
        let dir = tempfile::tempdir()?;
        let mut start = Command::new("bash");
        start.arg(Self::script()).arg("start").env("PEBBLE_WORKDIR", dir.path());
        start.env("PEBBLE_HTTP_PORT", http_port.to_string()).env("PEBBLE_HOSTS", ACME_DOMAIN);
        for name in ["PEBBLE_PORT", "PEBBLE_MGMT_PORT", "PEBBLE_DNS_PORT", "PEBBLE_DNS_MGMT_PORT", "PEBBLE_TLS_PORT"] {
            start.env(name, free_port()?.to_string());
        }
        let output = start.stdin(Stdio::null()).output().context("cannot run scripts/pebble.sh")?;
        if !output.status.success() {
            bail!("pebble.sh start failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let env = std::fs::read_to_string(dir.path().join("env"))?;
        let var = |name: &str| {
            env.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).map(str::to_owned)
                .with_context(|| format!("{name} missing in pebble's env"))
        };
        Ok(Pebble { directory: var("PEBBLE_DIRECTORY")?, ca_root: var("PEBBLE_CA_ROOT")?, dir })
    }

    /// The terms-of-service URL in the CA's own directory (read with curl, not through the relay).
    fn terms_of_service(&self) -> Result<String> {
        let directory = run("curl", &["-fsS", "--cacert", &self.ca_root, &self.directory], Path::new("/"))?;
        let directory: serde_json::Value = serde_json::from_str(&directory)?;
        directory["meta"]["termsOfService"].as_str().map(str::to_owned).context("no termsOfService in the directory")
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(Self::script()).arg("stop").env("PEBBLE_WORKDIR", self.dir.path()).output();
    }
}

/// "Get a certificate" from the console: the form shows the CA's terms-of-service URL (as the CA's
/// directory has it) before anything is accepted; after accepting, the relay gets the certificate from
/// pebble, the page reports success with that URL as the accepted terms, and the relay serves pebble's
/// certificate on the wire.
#[tokio::test]
async fn certificate_page_shows_the_terms_and_gets_a_free_certificate() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.http_port = free_port()?;
    let pebble = Pebble::start(relay.http_port)?;
    let terms = pebble.terms_of_service()?;
    relay.serve_args =
        vec!["--acme-directory".into(), pebble.directory.clone(), "--acme-ca-root".into(), pebble.ca_root.clone()];
    relay.serve().await?;
    let browser = Browser::start(1400, 1600).await?;
    let result = async {
        admin_sign_in(&browser, &relay).await?;
        browser.click("admin-nav-certificate").await?;
        // The terms are shown before accepting, as a link to exactly the directory's URL.
        let shown = browser.text_of("admin-certificate-terms", JOB_TIMEOUT).await?;
        assert_eq!(shown, terms, "the link's text is the CA's terms URL");
        let link = browser.wait_testid("admin-certificate-terms", TIMEOUT).await?;
        assert_eq!(link.attr("href").await?.as_deref(), Some(terms.as_str()));
        assert!(browser.wait_testid("admin-certificate-request", TIMEOUT).await?.is_enabled().await?);
        browser.screenshot("console-certificate-terms").await?;

        browser.type_into("admin-certificate-email", "admin@homedesk-ci.net").await?;
        browser.type_into("admin-certificate-domain", ACME_DOMAIN).await?;
        browser.click("admin-certificate-accept").await?;
        browser.click("admin-certificate-request").await?;
        let notice =
            wait_text(&browser, "admin-certificate-notice", &["Certificate for", "issued by"], JOB_TIMEOUT).await?;
        assert!(notice.contains(ACME_DOMAIN) && notice.contains("Pebble"), "{notice}");
        wait_text(&browser, "admin-certificate-acme-result", &["Success"], TIMEOUT).await?;
        // The request carried the URL that was shown: the relay stored it as the accepted terms.
        wait_text(&browser, "admin-certificate-acme", &[ACME_DOMAIN, &terms], TIMEOUT).await?;
        wait_text(&browser, "admin-certificate-attempts", &[&format!("Request for {ACME_DOMAIN}"), "Success"], TIMEOUT)
            .await?;
        wait_text(&browser, "admin-certificate-source", &["Free certificate"], TIMEOUT).await?;
        wait_text(&browser, "admin-certificate-trust", &["Issued by a certificate authority", "(HSTS)"], TIMEOUT).await?;
        assert!(browser.text_of("admin-certificate-issuer", TIMEOUT).await?.contains("Pebble Intermediate CA"));
        let port = relay.https_port;
        let served = wait_for("the relay to serve pebble's certificate", TIMEOUT, || async move {
            let served = served_certificate(port).ok().map(|(text, _)| text);
            Ok(served.filter(|text| text.contains("Pebble Intermediate CA")))
        })
        .await?;
        assert!(served.contains(ACME_DOMAIN), "{served}");
        browser.screenshot("console-certificate-free").await?;
        Ok(())
    }
    .await;
    finish(browser, &relay, "console-certificate-free", result).await
}

/// With a CA that cannot be reached the form says why (error 802) and offers no request.
#[tokio::test]
async fn certificate_page_without_a_reachable_ca_offers_no_request() -> Result<()> {
    let mut relay = Relay::new()?;
    let closed = free_port()?;
    relay.serve_args = vec!["--acme-directory".into(), format!("https://127.0.0.1:{closed}/dir")];
    relay.serve().await?;
    let browser = Browser::start(1400, 1300).await?;
    let result = async {
        admin_sign_in(&browser, &relay).await?;
        browser.click("admin-nav-certificate").await?;
        let error = browser.text_of("admin-certificate-terms-error", JOB_TIMEOUT).await?;
        assert!(error.contains("terms of service") && error.ends_with("(error 802)"), "{error}");
        assert!(!browser.wait_testid("admin-certificate-request", TIMEOUT).await?.is_enabled().await?);
        assert!(!browser.wait_testid("admin-certificate-accept", TIMEOUT).await?.is_enabled().await?);
        let link = browser.client.find(fantoccini::Locator::Css("[data-testid='admin-certificate-terms']")).await;
        assert!(link.is_err(), "no terms link without the CA's directory");
        browser.screenshot("console-certificate-ca-unreachable").await?;
        // Looking again asks the CA again: still unreachable, still said so.
        browser.click("admin-certificate-terms-retry").await?;
        wait_text(&browser, "admin-certificate-terms-error", &["(error 802)"], JOB_TIMEOUT).await?;
        Ok(())
    }
    .await;
    finish(browser, &relay, "console-certificate-ca-unreachable", result).await
}

/// The page lists the listener; a taken port is refused with the relay's sentence while the console
/// keeps working on the old port; a free port moves the relay there (and the console with it).
#[tokio::test]
async fn server_page_moves_the_listener() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.serve().await?;
    let old_port = relay.https_port;
    let browser = Browser::start(1400, 1000).await?;
    let result = async {
        admin_sign_in(&browser, &relay).await?;
        browser.click("admin-nav-server").await?;
        let address = format!("127.0.0.1:{old_port}");
        wait_text(&browser, "admin-server-listeners", &[&address, "HTTPS", "HTTP", "listening"], TIMEOUT).await?;
        browser.screenshot("console-server").await?;

        let occupied = std::net::TcpListener::bind("127.0.0.1:0")?;
        let taken = occupied.local_addr()?.port();
        browser.type_into("admin-server-https-port", &taken.to_string()).await?;
        browser.click("admin-server-save").await?;
        let refusal = wait_text(&browser, "admin-server-notice", &["already in use"], JOB_TIMEOUT).await?;
        assert!(refusal.contains(&format!("127.0.0.1:{taken}")) && refusal.contains("keeps serving"), "{refusal}");
        browser.screenshot("console-server-port-taken").await?;
        // The console still answers on its port: another page loads from the relay.
        browser.click("admin-nav-workstations").await?;
        browser.wait_testid("admin-workstations-table", TIMEOUT).await?;
        browser.click("admin-nav-server").await?;
        wait_text(&browser, "admin-server-listeners", &[&address, "listening", "already in use"], TIMEOUT).await?;
        drop(occupied);

        let free = free_port()?;
        browser.type_into("admin-server-https-port", &free.to_string()).await?;
        browser.click("admin-server-save").await?;
        let applied = wait_text(&browser, "admin-server-notice", &["Applied"], JOB_TIMEOUT).await?;
        assert!(applied.contains(&format!("HTTPS on 127.0.0.1:{free}")), "{applied}");
        let link = browser.text_of("admin-server-moved-link", TIMEOUT).await?;
        assert_eq!(link, format!("https://localhost:{free}/admin/server"));
        browser.screenshot("console-server-moved").await?;
        // The relay serves TLS on the new port, no longer on the old one; the console follows the link
        // (same host, so the session cookie still applies).
        served_certificate(free).context("nothing serves TLS on the new port")?;
        wait_for("the old port to stop accepting", TIMEOUT, || async {
            Ok(std::net::TcpStream::connect(("127.0.0.1", old_port)).is_err().then_some(()))
        })
        .await?;
        browser.click("admin-server-moved-link").await?;
        wait_text(&browser, "admin-server-listeners", &[&format!("127.0.0.1:{free}"), "listening"], TIMEOUT).await?;
        browser.screenshot("console-server-new-port").await?;
        Ok(())
    }
    .await;
    finish(browser, &relay, "console-server", result).await
}

/// Edit in the Workstations table: an invalid host gets the relay's sentence; a new host and port are
/// saved, shown in the table, and the pinned certificate is forgotten (shown too).
#[tokio::test]
async fn workstation_edit_changes_the_address() -> Result<()> {
    let mut relay = Relay::new()?;
    relay.add_workstation("Office PC", "desk1.example:3389")?;
    relay.cli(&["workstation", "pin", "Office PC", &"ab".repeat(32)], None)?;
    relay.serve().await?;
    let browser = Browser::start(1400, 1000).await?;
    let result = async {
        admin_sign_in(&browser, &relay).await?;
        browser.click("admin-nav-workstations").await?;
        wait_text(&browser, "admin-workstations-table", &["Office PC", "desk1.example:3389", "abababab"], TIMEOUT).await?;
        browser.click("admin-workstations-edit").await?;
        browser.type_into("admin-workstations-edit-host", "not a host!").await?;
        browser.click("admin-workstations-edit-save").await?;
        let refusal = browser.text_of("admin-workstations-edit-error", TIMEOUT).await?;
        assert!(refusal.contains("not a host!"), "the relay's reason: {refusal}");
        browser.screenshot("console-workstation-edit-invalid").await?;

        browser.type_into("admin-workstations-edit-name", "Office PC 2").await?;
        browser.type_into("admin-workstations-edit-host", "desk2.example").await?;
        browser.type_into("admin-workstations-edit-port", "3390").await?;
        browser.type_into("admin-workstations-edit-domain", "CORP").await?;
        browser.type_into("admin-workstations-edit-notes", "second floor").await?;
        browser.click("admin-workstations-edit-save").await?;
        let notice = browser.text_of("admin-workstations-notice", TIMEOUT).await?;
        assert!(notice.contains("pinned certificate was forgotten"), "{notice}");
        let table = wait_text(
            &browser,
            "admin-workstations-table",
            &["Office PC 2", "desk2.example:3390", "domain CORP", "second floor", "not pinned yet"],
            TIMEOUT,
        )
        .await?;
        assert!(!table.contains("desk1.example"), "{table}");
        browser.screenshot("console-workstation-edited").await?;
        // Stored, not just shown: the CLI reads the same row.
        let list = relay.cli(&["workstation", "list"], None)?;
        assert!(list.contains("Office PC 2") && list.contains("desk2.example") && list.contains("3390"), "{list}");
        Ok(())
    }
    .await;
    finish(browser, &relay, "console-workstation-edit", result).await
}

/// Pinning from the console: a malformed fingerprint is refused with the relay's reason; a wrong one
/// makes the user's connection fail with the certificate message; xrdp's own (its DER SHA-256, typed
/// with colons as tools print it) lets the desktop appear.
#[tokio::test]
async fn workstation_pin_from_the_console_guards_the_connection() -> Result<()> {
    const USER: &str = "rdpuser1";
    let password = homedesk_e2e::required_env("RDP_TEST_PASSWORD")?;
    let addr = homedesk_e2e::required_env("RDP_TESTBED_XRDP_ADDR")?;
    let mut relay = Relay::new()?;
    relay.add_user(USER, &password)?;
    relay.add_workstation("Office PC", &addr)?;
    relay.assign(USER, "Office PC")?;
    relay.serve().await?;
    let der_sha = run("sh", &["-c", "openssl x509 -in /etc/xrdp/cert.pem -outform der | sha256sum"], Path::new("/"))?;
    let xrdp_sha = der_sha.split_whitespace().next().unwrap_or_default().to_owned();
    anyhow::ensure!(xrdp_sha.len() == 64, "cannot read xrdp's certificate: {der_sha}");
    let with_colons = xrdp_sha
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
        .collect::<Vec<_>>()
        .join(":");

    let admin = Browser::start(1400, 1000).await?;
    let pin = |fingerprint: String| {
        let admin = &admin;
        async move {
            admin.click("admin-workstations-pin").await?;
            admin.type_into("admin-workstations-pin-input", &fingerprint).await?;
            admin.click("admin-workstations-pin-save").await
        }
    };
    let result = async {
        admin_sign_in(&admin, &relay).await?;
        admin.click("admin-nav-workstations").await?;
        wait_text(&admin, "admin-workstations-table", &["Office PC", "not pinned yet"], TIMEOUT).await?;
        pin("12:34".into()).await?;
        let refusal = admin.text_of("admin-workstations-error", TIMEOUT).await?;
        assert!(refusal.contains("Invalid fingerprint") && refusal.contains("12:34"), "the relay's reason: {refusal}");
        admin.wait_testid("admin-workstations-pin-form", TIMEOUT).await?; // still open to be corrected
        admin.type_into("admin-workstations-pin-input", &"ab".repeat(32)).await?;
        admin.click("admin-workstations-pin-save").await?;
        wait_text(&admin, "admin-workstations-table", &["abababababababab"], TIMEOUT).await?;

        // The user meets xrdp's real certificate, not the pinned one: refused.
        let message = portal_message(&relay, USER, &password).await?;
        assert!(message.contains("certificate") && message.contains("Office PC"), "{message}");

        pin(with_colons.clone()).await?;
        wait_text(&admin, "admin-workstations-table", &[&xrdp_sha[..16]], TIMEOUT).await?;
        admin.screenshot("console-workstation-pinned").await?;
        let user = Browser::start(1280, 1000).await?;
        let shown = async {
            user.login(&relay.url(), USER, &password).await?;
            let picture = homedesk_e2e::known_picture(homedesk_e2e::Rgb::from_hex("#1e6fd9"));
            user.wait_for_picture(&picture, 8, Duration::from_secs(60)).await
        }
        .await;
        user.close().await?;
        shown.context("the desktop did not appear with xrdp's own certificate pinned")
    }
    .await;
    finish(admin, &relay, "console-workstation-pin", result).await
}

/// A throwaway OpenLDAP of this test's own (scripts/slapd.sh), stopped on drop.
struct Slapd {
    dir: tempfile::TempDir,
    env: std::collections::HashMap<String, String>,
}

impl Slapd {
    fn script() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slapd.sh")
    }

    fn start() -> Result<Slapd> {
        let dir = tempfile::Builder::new().prefix("homedesk-e2e-slapd-").tempdir()?;
        let out = Command::new("bash").arg(Self::script()).arg("start").arg(dir.path().join("slapd")).output()?;
        if !out.status.success() {
            bail!("scripts/slapd.sh start failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Slapd { dir, env })
    }

    fn get(&self, key: &str) -> Result<String> {
        self.env.get(key).cloned().with_context(|| format!("{key} missing from slapd.sh output"))
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(Self::script()).arg("stop").arg(self.dir.path().join("slapd")).output();
    }
}

/// What the portal's login page says to `user` in a fresh browser.
async fn portal_message(relay: &Relay, user: &str, password: &str) -> Result<String> {
    let browser = Browser::start(1280, 1000).await?;
    let message = async {
        browser.login(&relay.url(), user, password).await?;
        browser.text_of("login-error", TIMEOUT).await
    }
    .await;
    browser.close().await?;
    message
}

/// The Directory page against a real OpenLDAP: StartTLS with the test CA pasted as PEM, bind by DN
/// pattern; the check signs a user in and lists their groups; then that directory user gets past the
/// portal's password step (their account has no workstation yet, and the portal says so); removing the
/// directory (after the confirmation) makes the same sign-in fail.
#[tokio::test]
async fn directory_page_configures_checks_and_removes_the_directory() -> Result<()> {
    let slapd = Slapd::start()?;
    let mut relay = Relay::new()?;
    relay.serve().await?;
    let browser = Browser::start(1400, 1000).await?;
    let result = async {
        admin_sign_in(&browser, &relay).await?;
        browser.click("admin-nav-directory").await?;
        wait_text(&browser, "admin-directory-state", &["No directory"], TIMEOUT).await?;
        let base = slapd.get("HOMEDESK_LDAP_BASE")?;
        browser.type_into("admin-directory-url", &slapd.get("HOMEDESK_LDAP_URL")?).await?;
        browser.click("admin-directory-starttls").await?;
        let ca = std::fs::read_to_string(slapd.get("HOMEDESK_LDAP_CA")?)?;
        browser.type_into("admin-directory-ca", &ca).await?;
        browser.type_into("admin-directory-pattern", &format!("uid={{user}},ou=people,{base}")).await?;
        browser.type_into("admin-directory-base-dn", &base).await?;
        browser.click("admin-directory-save").await?;
        wait_text(&browser, "admin-directory-notice", &["Saved"], TIMEOUT).await?;
        wait_text(&browser, "admin-directory-state", &["Directory users sign in"], TIMEOUT).await?;

        browser.type_into("admin-directory-test-user", "alice").await?;
        browser.type_into("admin-directory-test-password", "alice-pass-1").await?;
        browser.click("admin-directory-test").await?;
        let report = wait_text(&browser, "admin-directory-notice", &["User alice signed in"], TIMEOUT).await?;
        assert!(report.contains("groups: staff") && report.contains("Base DN: readable"), "{report}");
        browser.screenshot("console-directory").await?;

        let message = portal_message(&relay, "alice", "alice-pass-1").await?;
        assert!(message.contains("No workstation is assigned"), "the directory password was accepted: {message}");

        browser.click("admin-directory-clear").await?;
        browser.client.accept_alert().await?;
        wait_text(&browser, "admin-directory-state", &["No directory"], TIMEOUT).await?;
        assert_eq!(portal_message(&relay, "alice", "alice-pass-1").await?, "Invalid username or password.");
        Ok(())
    }
    .await;
    finish(browser, &relay, "console-directory", result).await
}
