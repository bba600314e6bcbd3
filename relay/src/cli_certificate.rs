//! `relay certificate …`: the HTTPS certificate from the command line.
//!
//! Import, restore, reset, status and history work on the database directly; a running relay picks
//! the change up within a second (it polls the active certificate). Requesting and renewing a free
//! certificate need the CA to reach the relay's HTTP port, so the CLI does not talk to the CA: it
//! queues a job for the serving relay (`acme_jobs`) and waits for its outcome.

use crate::cli::{print_table, utc_time, CertificateCommand};
use anyhow::{bail, Context, Result};
use homedesk_relay::acme::{self, Stage};
use homedesk_relay::certificates;
use homedesk_relay::config::DataDir;
use homedesk_relay::store::{self, AcmeJob, AcmeJobKind, CertificateSource, Store};
use std::time::{Duration, Instant};

/// How long a job may wait for a relay to take it.
const PICKUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a taken job may run (the relay gives up on the CA earlier).
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

pub async fn run(store: &Store, data_dir: &DataDir, command: CertificateCommand) -> Result<()> {
    match command {
        CertificateCommand::Request {
            email,
            domain,
            accept_terms,
        } => request(store, &email, &domain, accept_terms).await,
        CertificateCommand::Status => status(store, data_dir).await,
        CertificateCommand::Renew => {
            let job = wait_for(store, AcmeJobKind::Renew, None, None, None).await?;
            println!("{}", outcome(&job)?);
            Ok(())
        }
        CertificateCommand::Reset => {
            certificates::reset(store).await?;
            println!("Domain reset: the relay serves its self-signed certificate again (within a second if running).");
            println!("Kept certificates stay restorable: relay certificate history / restore ID.");
            Ok(())
        }
        CertificateCommand::History => history(store).await,
        CertificateCommand::Restore { id } => {
            let restored = certificates::restore(store, id).await?;
            println!(
                "Certificate #{} for {} (valid until {}) is served again.",
                restored.id,
                restored.domain,
                utc_time(restored.not_after)
            );
            Ok(())
        }
        CertificateCommand::Import { cert, key } => {
            let imported = certificates::import(store, &cert, &key).await?;
            println!(
                "Certificate #{} for {} issued by {} (valid until {}) is now served.",
                imported.id,
                imported.domain,
                imported.issuer,
                utc_time(imported.not_after)
            );
            Ok(())
        }
    }
}

async fn request(store: &Store, email: &str, domain: &str, accept_terms: bool) -> Result<()> {
    let domain = acme::check_domain(domain).map_err(|refusal| {
        acme::AcmeFailure::new(Stage::Validation { renewal: false }, refusal.0, "")
    })?;
    let email = acme::check_email(email)?;
    let terms = outcome(&wait_for(store, AcmeJobKind::Terms, None, None, None).await?)?;
    if !terms.is_empty() {
        println!("The certificate authority's terms of service: {terms}");
    }
    if !accept_terms {
        bail!(acme::AcmeFailure::new(
            Stage::TermsAgreement,
            "Read the terms of service, then run the command again with --accept-terms to accept them.",
            "",
        ));
    }
    println!("Requesting a certificate for {domain} (the CA connects to http://{domain}/ to validate it)…");
    let job = wait_for(
        store,
        AcmeJobKind::Request,
        Some(&email),
        Some(&domain),
        Some(&terms),
    )
    .await?;
    println!("{}", outcome(&job)?);
    Ok(())
}

/// A finished job's message, or its failure as an error with the code.
fn outcome(job: &AcmeJob) -> Result<String> {
    let message = job.result_message.clone().unwrap_or_default();
    match job.result_code {
        Some(0) => Ok(message),
        Some(code) => bail!("{message} (error {code})"),
        None => bail!("the relay did not report an outcome"),
    }
}

/// Queues a job for the serving relay and waits until it is done.
async fn wait_for(
    store: &Store,
    kind: AcmeJobKind,
    email: Option<&str>,
    domain: Option<&str>,
    terms: Option<&str>,
) -> Result<AcmeJob> {
    let id = store
        .insert_acme_job(kind, email, domain, terms, store::unix_ms())
        .await?;
    let queued = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let job = store
            .acme_job(id)
            .await?
            .context("the queued job disappeared")?;
        if job.finished_at.is_some() {
            return Ok(job);
        }
        if job.started_at.is_none()
            && queued.elapsed() > PICKUP_TIMEOUT
            && store.cancel_acme_job(id, store::unix_ms()).await?
        {
            bail!(
                "no running relay took the request: start `relay serve` with this data directory (it answers the \
                 certificate authority's HTTP-01 challenge on its HTTP port)"
            );
        }
        if queued.elapsed() > PICKUP_TIMEOUT + RUN_TIMEOUT {
            bail!("the relay did not finish in time; see its log and `relay certificate status`");
        }
    }
}

async fn status(store: &Store, data_dir: &DataDir) -> Result<()> {
    let row = |name: &str, value: &str| println!("{name:<16}{value}");
    match store.active_certificate().await? {
        Some(active) => {
            let source = match active.source {
                CertificateSource::Acme => "free certificate (ACME)",
                CertificateSource::Imported => "imported",
            };
            row("Certificate", &format!("#{} {source}", active.id));
            row("Domain", &active.domain);
            row("Issuer", &active.issuer);
            row("Expires", &utc_time(active.not_after));
        }
        None => {
            row("Certificate", "self-signed");
            match homedesk_relay::tls::load(data_dir) {
                Ok((certs, _)) => {
                    if let Some(info) = certs
                        .first()
                        .and_then(|der| certificates::certificate_info(der).ok())
                    {
                        row("Names", &info.names.join(", "));
                        row("Expires", &utc_time(info.not_after));
                    }
                }
                Err(_) => row("Names", "(made on the relay's first start)"),
            }
        }
    }
    let Some(settings) = store.acme_settings().await? else {
        row("Free certificate", "never requested");
        return Ok(());
    };
    row(
        "Requested for",
        settings.domain.as_deref().unwrap_or("- (domain reset)"),
    );
    row("Email", &settings.email);
    row("CA directory", &settings.directory_url);
    row(
        "Terms accepted",
        settings.terms_url.as_deref().unwrap_or("-"),
    );
    let last = match (settings.last_attempt_at, settings.last_result_code) {
        (Some(at), Some(0)) => format!("{}: success", utc_time(at)),
        (Some(at), Some(code)) => format!("{}: failed (error {code})", utc_time(at)),
        _ => "-".to_owned(),
    };
    row("Last attempt", &last);
    row(
        "Result",
        settings.last_result_message.as_deref().unwrap_or("-"),
    );
    if settings.domain.is_some() {
        row(
            "Next check",
            &settings
                .next_check_at
                .map(utc_time)
                .unwrap_or_else(|| "at the relay's next start".into()),
        );
    }
    Ok(())
}

async fn history(store: &Store) -> Result<()> {
    let rows: Vec<[String; 7]> = store
        .list_certificates()
        .await?
        .into_iter()
        .map(|c| {
            [
                c.id.to_string(),
                c.source.as_str().to_owned(),
                c.domain,
                c.issuer,
                utc_time(c.not_after),
                utc_time(c.created_at),
                if c.active {
                    "active (served)".to_owned()
                } else {
                    c.replaced_at.map(utc_time).unwrap_or("-".into())
                },
            ]
        })
        .collect();
    print_table(
        [
            "ID",
            "SOURCE",
            "DOMAIN",
            "ISSUER",
            "EXPIRES",
            "INSTALLED",
            "REPLACED",
        ],
        &rows,
    );
    Ok(())
}
