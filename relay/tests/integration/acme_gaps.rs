//! The free certificate's rarer paths, against a real pebble (scripts/pebble.sh): the renewal check at
//! every start (even when the next daily check is hours away), the CA's own words in the log when an
//! automatic renewal fails, the terms lookup failing with error 802 (CA unreachable or not trusted),
//! and issuance failing with error 806 while the current certificate stays served.

use crate::acme::*;
use crate::common::*;
use homedesk_relay::store;

const DAY: i64 = 86_400_000;
/// Names of their own, so that this file's log lines are told apart from the other ACME tests'.
const RESTART_DOMAIN: &str = "restart.homedesk-ci.net";
const SHORT_DOMAIN: &str = "short.homedesk-ci.net";
const EMAIL: &str = "admin@homedesk-ci.net";

fn pebble_options(pebble: &Pebble, http_port: u16) -> Options {
    Options {
        http_port,
        acme: Some((pebble.directory.clone(), pebble.ca_root.clone())),
        ..Options::default()
    }
}

async fn request(relay: &TestRelay, domain: &str) -> std::process::Output {
    let args = [
        "certificate",
        "request",
        "--email",
        EMAIL,
        "--domain",
        domain,
        "--accept-terms",
    ];
    cli_async(relay, &args).await
}

/// Sets the validity of certificate `id` and the next renewal check, in the relay's own database.
async fn age(relay: &TestRelay, id: i64, not_before: i64, not_after: i64, next_check_at: i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&shared_database_url(relay))
        .await
        .unwrap();
    sqlx::query("UPDATE certificates SET not_before = $1, not_after = $2 WHERE id = $3")
        .bind(not_before)
        .bind(not_after)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE acme_settings SET next_check_at = $1")
        .bind(next_check_at)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn wait_for_new_active(store: &store::Store, old: i64) -> i64 {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let id = active_id(store).await;
        if id != old {
            return id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "certificate #{old} was not renewed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The log lines that mention `needle` and contain `message`.
fn log_lines(message: &str, needle: &str) -> Vec<String> {
    logs()
        .lines()
        .filter(|l| l.contains(message) && l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_checks_renewal_at_once_and_a_failed_automatic_renewal_logs_the_ca_detail() {
    let http_port = free_port();
    let pebble = Pebble::start_with(http_port, RESTART_DOMAIN, &[]);
    let mut relay = TestRelay::start_with(pebble_options(&pebble, http_port)).await;
    stdout(&request(&relay, RESTART_DOMAIN).await);
    let first_id = active_id(relay.server().store()).await;
    relay.stop().await;

    // While the relay is down the certificate became due (day 61 of 90), and the last daily check
    // planned the next one in 23 hours: a restart must not wait for it.
    let now = store::unix_ms();
    age(
        &relay,
        first_id,
        now - 61 * DAY,
        now + 29 * DAY,
        now + 23 * 3_600_000,
    )
    .await;
    let restarted = TestRelay::start_with(Options {
        data_dir: Some(relay.data_dir.clone()),
        ..pebble_options(&pebble, http_port)
    })
    .await;
    let store = restarted.server().store().clone();
    let second_id = wait_for_new_active(&store, first_id).await;
    let renewed = leaf_of(&store, second_id).await;
    wait_until_served(restarted.https_addr, RESTART_DOMAIN, &renewed).await;
    let settings = store.acme_settings().await.unwrap().unwrap();
    assert_eq!(settings.last_result_code, Some(0), "{settings:?}");

    // The name stops resolving, then the renewal falls due: the automatic attempt fails, the log
    // carries the CA's own problem text (not only our advice), the current certificate stays.
    pebble.forget_host(RESTART_DOMAIN);
    let now = store::unix_ms();
    age(&restarted, second_id, now - 61 * DAY, now + 29 * DAY, now).await;
    wait_until("the automatic renewal failed", || {
        !log_lines("renewal failed", RESTART_DOMAIN).is_empty()
    })
    .await;
    let line = log_lines("renewal failed", RESTART_DOMAIN).remove(0);
    assert!(line.contains("code=805"), "{line}");
    let detail = line
        .split_once("detail=")
        .map(|(_, detail)| detail)
        .unwrap_or_else(|| panic!("no CA detail in {line}"));
    assert!(
        detail.contains(&ca_dns_problem(RESTART_DOMAIN, http_port)),
        "the CA's problem text: {line}"
    );
    assert_eq!(active_id(&store).await, second_id);
    assert_eq!(
        served_leaf(restarted.https_addr, RESTART_DOMAIN)
            .await
            .as_ref(),
        renewed.as_ref()
    );
    let mut restarted = restarted;
    restarted.stop().await;
}

/// How pebble's problem detail begins when `domain` does not resolve (its validation authority's words).
pub(crate) fn ca_dns_problem(domain: &str, http_port: u16) -> String {
    format!("could not resolve URL \"http://{domain}:{http_port}/.well-known/acme-challenge/")
}

/// Runs a `terms` job through the console API and waits for its outcome.
async fn terms_job(relay: &TestRelay) -> serde_json::Value {
    let admin = admin_session(relay).await;
    let queued = relay
        .post(
            "/api/admin/certificate/jobs",
            Some(&admin),
            r#"{"kind": "terms"}"#,
        )
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text());
    let path = format!("/api/admin/certificate/jobs/{}", queued.json()["job_id"]);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let polled = get_json(relay, &path, &admin).await.json();
        if polled["done"] == true {
            return polled;
        }
        assert!(std::time::Instant::now() < deadline, "terms job not done");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_lookup_fails_with_802_when_the_ca_is_unreachable_or_untrusted() {
    let pebble = Pebble::start_with(free_port(), DOMAIN, &[]);
    let closed = free_port();
    let unreachable = format!("https://127.0.0.1:{closed}/dir");
    let cases = [
        // Nothing listens where the directory should be.
        ("unreachable", unreachable.clone(), pebble.ca_root.clone()),
        // pebble answers, but its HTTPS certificate is not signed by the root the relay was given.
        (
            "untrusted",
            pebble.directory.clone(),
            pebble.issuer_root.clone(),
        ),
    ];
    for (what, directory, root) in cases {
        let mut relay = TestRelay::start_with(Options {
            acme: Some((directory.clone(), root)),
            ..Options::default()
        })
        .await;
        let output = cli_async(
            &relay,
            &[
                "certificate",
                "request",
                "--email",
                EMAIL,
                "--domain",
                DOMAIN,
            ],
        )
        .await;
        failure(
            &output,
            &["Could not read the terms of service", "(error 802)"],
        );
        let job = terms_job(&relay).await;
        assert_eq!(job["code"], 802, "{what}: {job}");
        assert!(
            job["message"]
                .as_str()
                .is_some_and(|m| m.contains("check that this server can reach the CA")),
            "{what}: {job}"
        );
        // The log names the directory and what went wrong with it.
        assert!(
            logs().lines().any(|l| l.contains("ACME job failed")
                && l.contains("code=802")
                && l.contains(&directory)),
            "{what}: the directory in the log"
        );
        assert!(relay
            .server()
            .store()
            .list_certificates()
            .await
            .unwrap()
            .is_empty());
        relay.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issued_certificate_that_cannot_be_installed_fails_with_806_and_nothing_changes() {
    // pebble issues certificates that are already expired when they arrive (1 second of lifetime).
    let http_port = free_port();
    let pebble = Pebble::start_with(http_port, SHORT_DOMAIN, &[("PEBBLE_CERT_VALIDITY", "1")]);
    let mut relay = TestRelay::start_with(pebble_options(&pebble, http_port)).await;
    let store = relay.server().store().clone();
    let self_signed = served_leaf(relay.https_addr, SHORT_DOMAIN).await;
    failure(
        &request(&relay, SHORT_DOMAIN).await,
        &["could not be installed", "(error 806)"],
    );
    let status = stdout(&cli_async(&relay, &["certificate", "status"]).await);
    assert!(status.contains("failed (error 806)"), "{status}");
    assert!(store.list_certificates().await.unwrap().is_empty());
    assert_eq!(
        served_leaf(relay.https_addr, SHORT_DOMAIN).await.as_ref(),
        self_signed.as_ref(),
        "the self-signed certificate stays served"
    );
    relay.stop().await;
}
