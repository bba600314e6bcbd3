//! PostgreSQL over TLS (PostgreSQL pass only: ignored in the SQLite pass). The test cluster
//! (scripts/postgres.sh) serves TLS with a certificate of its own test CA and lets the role `tls_only`
//! in over TLS only. A relay given `sslmode=verify-full&sslrootcert=CA` serves with encrypted database
//! connections; a certificate from another CA, or a plain connection where the server demands TLS, is
//! refused with a clear error naming the database (password redacted).

use crate::common::*;
use homedesk_relay::config::DataDir;
use homedesk_relay::server::open_store;

/// The test cluster's CA: from xtask, or asked from the script that started the cluster.
fn postgres_ca() -> String {
    if let Ok(path) = std::env::var("HOMEDESK_TEST_POSTGRES_CA") {
        return path;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres.sh");
    let out = std::process::Command::new("bash").arg(script).arg("ca").output().expect("run postgres.sh");
    assert!(
        out.status.success(),
        "this test needs the CA of the test cluster: HOMEDESK_TEST_POSTGRES_CA or scripts/postgres.sh ca ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The data directory's test database, reached as `tls_only` (with a password in the URL, which
/// trust authentication ignores: it must never appear in a message) plus `params`.
fn tls_only_url(data_dir: &std::path::Path, params: &str) -> String {
    let url = database_url_for(data_dir).expect("this test needs PostgreSQL");
    let rest = url.strip_prefix("postgres://postgres@").expect("the test cluster's admin URL");
    format!("postgres://tls_only:hunter2-secret@{rest}&{params}")
}

fn psql(query: &str) -> String {
    let admin = postgres_admin_url().expect("PostgreSQL");
    let out = std::process::Command::new("psql").args([admin.as_str(), "-qAtc", query]).output().expect("psql");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "PostgreSQL only: run by the PostgreSQL pass of cargo xtask test"]
async fn a_relay_serves_over_a_verified_tls_database_connection() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let application = format!("homedesk-tls-{}", std::process::id());
    let url = tls_only_url(
        &data_dir,
        &format!("sslmode=verify-full&sslrootcert={}&application_name={application}", postgres_ca()),
    );
    let relay = TestRelay::start_with(Options { database_url: Some(url), ..Options::default() }).await;
    let password = relay.admin_password.clone().expect("first start on this database");
    assert_eq!(relay.login_response("admin", &password).await.status, 200);

    // Seen from the server: every connection of the relay's pool is encrypted.
    let seen = psql(&format!(
        "SELECT count(*) || ' ' || bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = '{application}'"
    ));
    let (count, all_tls) = seen.split_once(' ').unwrap();
    assert!(count.parse::<u32>().unwrap() >= 1, "{seen}");
    assert_eq!(all_tls, "true", "a connection without TLS: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "PostgreSQL only: run by the PostgreSQL pass of cargo xtask test"]
async fn a_database_certificate_from_another_ca_or_no_tls_is_refused_clearly() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let other_ca = temp.path().join("other-ca.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&other_ca, params.self_signed(&key).unwrap().pem()).unwrap();

    let untrusted = tls_only_url(&data_dir, &format!("sslmode=verify-full&sslrootcert={}", other_ca.display()));
    let plain = tls_only_url(&data_dir, "sslmode=disable");
    for (url, expected) in [(untrusted, "certificate"), (plain, "no encryption")] {
        let error = match open_store(&DataDir::new(&data_dir), Some(&url)).await {
            Ok(_) => panic!("opened {url}"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("cannot reach the database at postgres://tls_only:***@"), "{error}");
        assert!(error.to_lowercase().contains(expected), "expected {expected:?}: {error}");
        assert!(!error.contains("hunter2-secret"), "the password leaked: {error}");
    }
}
