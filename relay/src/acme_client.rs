//! The ACME conversation (instant-acme) and the worker of the serving relay that runs it.
//!
//! Design: the relay that serves the HTTP port does all ACME work, because HTTP-01 is answered
//! there. The CLI (and later the console) never talks to the CA: it inserts a job in the database
//! (`acme_jobs`: terms, request, renew) and waits for its outcome; [`AcmeWorker::run`] polls for
//! jobs, and checks the renewal time at start and then daily (or earlier when the renewal time or
//! the CA's ARI window comes first). Tokens being validated are rows of `acme_challenges`, so any
//! relay sharing the database answers `/.well-known/acme-challenge/` ([`challenge_response`]).
//! A new certificate is installed in the database; every relay's watcher picks it up
//! ([`crate::certificates::watch`]).

use crate::acme::{self, AcmeFailure, Stage};
use crate::certificates;
use crate::store::{self, AcmeJob, AcmeJobKind, AcmeSettings, CertificateSource, Store};
use axum::http::{Method, Request};
use bytes::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, CertificateIdentifier,
    ChallengeType, HttpClient, Identifier, NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a pending HTTP-01 token is answered at most.
const CHALLENGE_LIFETIME: Duration = Duration::from_secs(600);
/// Longest time one job (or renewal) may take, all network round trips included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(180);
/// A job older than this when a relay sees it is dropped: whoever queued it has given up waiting.
const JOB_MAX_AGE: Duration = Duration::from_secs(300);
/// The path prefix the CA fetches over plain HTTP.
pub const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Where the CA is and how to trust it.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    pub directory_url: String,
    /// An extra root certificate (PEM) trusted for talking to the CA, e.g. a test CA.
    pub extra_root: Option<PathBuf>,
}

type Http = Client<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>;

/// An HTTPS client trusting the Mozilla roots plus the configured extra root.
fn http_client(extra_root: Option<&Path>) -> Result<Http, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_root {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| format!("cannot read the CA root file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("unusable CA root in {}: {e}", path.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The type and the whole text of an instant-acme error.
fn problem(error: &instant_acme::Error) -> (Option<String>, String) {
    match error {
        instant_acme::Error::Api(problem) => (problem.r#type.clone(), problem.to_string()),
        other => (None, other.to_string()),
    }
}

fn fail(stage: Stage, domain: &str, error: &instant_acme::Error) -> AcmeFailure {
    let (kind, detail) = problem(error);
    acme::failure(stage, domain, kind.as_deref(), &detail)
}

/// The answer to `GET /.well-known/acme-challenge/<token>`: the key authorization of a pending token.
pub async fn challenge_response(store: &Store, path: &str) -> Option<String> {
    let token = path.strip_prefix(CHALLENGE_PREFIX)?;
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    match store.acme_challenge(token, store::unix_ms()).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(%error, "cannot read ACME challenges");
            None
        }
    }
}

/// Runs ACME jobs and renewals for one relay.
pub struct AcmeWorker {
    store: Store,
    config: AcmeConfig,
    /// `None` if the extra root file is unusable (every attempt then reports it).
    http: Result<Http, String>,
    poll_interval: Duration,
}

impl AcmeWorker {
    pub fn new(store: Store, config: AcmeConfig, poll_interval: Duration) -> Self {
        let http = http_client(config.extra_root.as_deref());
        if let Err(error) = &http {
            tracing::error!(%error, "the ACME client cannot be set up; free certificates will fail");
        }
        AcmeWorker {
            store,
            config,
            http,
            poll_interval,
        }
    }

    /// Until shutdown: jobs as they come, and the renewal check once at start (unless another relay
    /// claimed one moments ago, [`acme::check_due`]), then whenever it is due (`next_check_at` in the
    /// past or unset, e.g. after a new certificate). With several relays on one database exactly one
    /// takes each check: it moves `next_check_at` forward with a conditional UPDATE from the value it
    /// read ([`Store::claim_acme_check`]); the others lose the race or see it not due.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut starting = true;
        loop {
            let now = store::unix_ms();
            match self.store.claim_acme_job(now).await {
                Ok(Some(job)) => self.run_job(job, &shutdown).await,
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot read ACME jobs"),
            }
            if let Ok(settings) = self.store.acme_settings().await {
                let due = settings.as_ref().is_some_and(|s| {
                    acme::check_due(now, s.next_check_at, starting, ATTEMPT_TIMEOUT)
                });
                if let Some(settings) = settings.filter(|s| s.domain.is_some() && due) {
                    // Scheduled first, so that an attempt that fails early is not retried every poll,
                    // and claimed, so that only one relay orders.
                    let claimed = self
                        .store
                        .claim_acme_check(settings.next_check_at, acme::next_check(now, i64::MAX))
                        .await
                        .unwrap_or(false);
                    if claimed {
                        let outcome = self
                            .with_timeout(&shutdown, self.renew(&settings, false))
                            .await;
                        if let Some(Err(failure)) = outcome {
                            tracing::warn!(code = failure.code, reason = %failure.message, detail = %failure.detail,
                                "renewal failed");
                        }
                    } else {
                        tracing::info!("another relay took this renewal check");
                    }
                }
            }
            starting = false;
            let _ = self.store.purge_acme_challenges(now).await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// `None` when shutdown interrupted the attempt.
    async fn with_timeout<T>(
        &self,
        shutdown: &CancellationToken,
        attempt: impl std::future::Future<Output = Result<T, AcmeFailure>>,
    ) -> Option<Result<T, AcmeFailure>> {
        tokio::select! {
            _ = shutdown.cancelled() => None,
            result = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt) => Some(result.unwrap_or_else(|_| Err(
                AcmeFailure::new(Stage::Issuance, "The certificate authority did not answer in time.", "timeout")
            ))),
        }
    }

    async fn run_job(&self, job: AcmeJob, shutdown: &CancellationToken) {
        let now = store::unix_ms();
        if now.saturating_sub(job.created_at) > JOB_MAX_AGE.as_millis() as i64 {
            tracing::info!(
                job = job.id,
                kind = job.kind.as_str(),
                "dropping a stale ACME job"
            );
            let _ = self
                .store
                .finish_acme_job(job.id, now, -1, "expired before a relay took it")
                .await;
            return;
        }
        tracing::info!(job = job.id, kind = job.kind.as_str(), "ACME job");
        let outcome = match job.kind {
            AcmeJobKind::Terms => self.with_timeout(shutdown, self.terms_of_service()).await,
            AcmeJobKind::Request => self.with_timeout(shutdown, self.request(&job)).await,
            AcmeJobKind::Renew => match self.store.acme_settings().await {
                Ok(Some(settings)) if settings.domain.is_some() => {
                    self.with_timeout(shutdown, self.renew(&settings, true))
                        .await
                }
                Ok(_) => Some(Err(AcmeFailure::new(
                    Stage::Validation { renewal: true },
                    "No free certificate to renew: request one first.",
                    "",
                ))),
                Err(error) => Some(Err(AcmeFailure::new(
                    Stage::Issuance,
                    "Database error.",
                    error.to_string(),
                ))),
            },
        };
        let Some(outcome) = outcome else { return };
        let (code, message) = match outcome {
            Ok(message) => (0, message),
            Err(failure) => {
                tracing::warn!(job = job.id, code = failure.code, reason = %failure.message, detail = %failure.detail,
                    "ACME job failed");
                (i64::from(failure.code), failure.message)
            }
        };
        if let Err(error) = self
            .store
            .finish_acme_job(job.id, store::unix_ms(), code, &message)
            .await
        {
            tracing::warn!(%error, job = job.id, "cannot record the outcome of an ACME job");
        }
    }

    fn http(&self) -> Result<Http, AcmeFailure> {
        self.http
            .clone()
            .map_err(|e| AcmeFailure::new(Stage::TermsUrl, e.clone(), e))
    }

    /// The terms-of-service URL of the CA's directory (empty if it names none).
    async fn terms_of_service(&self) -> Result<String, AcmeFailure> {
        let url = &self.config.directory_url;
        let failed =
            |detail: String| acme::failure(Stage::TermsUrl, "", None, &format!("{url}: {detail}"));
        let request = Request::builder()
            .method(Method::GET)
            .uri(url)
            .body(BodyWrapper::default())
            .map_err(|e| failed(e.to_string()))?;
        let mut response = HttpClient::request(&self.http()?, request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.parts.status.is_success() {
            return Err(failed(format!("HTTP {}", response.parts.status)));
        }
        let body = response
            .body
            .into_bytes()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let directory: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| failed(e.to_string()))?;
        Ok(directory["meta"]["termsOfService"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// A new certificate for the job's domain: check, terms, account, order, install.
    async fn request(&self, job: &AcmeJob) -> Result<String, AcmeFailure> {
        let creation = Stage::Validation { renewal: false };
        let domain = acme::check_domain(job.domain.as_deref().unwrap_or_default())
            .map_err(|refusal| AcmeFailure::new(creation, refusal.0, ""))?;
        let email = acme::check_email(job.email.as_deref().unwrap_or_default())?;
        let terms = self.terms_of_service().await?;
        let accepted = job.terms_url.as_deref().unwrap_or_default();
        if !terms.is_empty() && accepted != terms {
            return Err(AcmeFailure::new(
                Stage::TermsAgreement,
                format!("Accept the certificate authority's terms of service first: {terms}"),
                format!("accepted {accepted:?}, directory has {terms:?}"),
            ));
        }
        self.store
            .save_acme_request(&email, &domain, &terms, &self.config.directory_url)
            .await
            .map_err(|e| AcmeFailure::new(Stage::Account, "Database error.", e.to_string()))?;
        let settings = self.settings().await?;
        let result = self.issue(&settings, &domain, false, None).await;
        self.record(&result).await;
        result
    }

    /// Renews when due (or `force`d); otherwise only schedules the next check.
    async fn renew(&self, settings: &AcmeSettings, force: bool) -> Result<String, AcmeFailure> {
        let Some(domain) = settings.domain.clone() else {
            return Ok("Nothing to renew.".into());
        };
        let now = store::unix_ms();
        let active = self.store.active_certificate().await.ok().flatten();
        let current = active.filter(|c| c.source == CertificateSource::Acme && c.domain == domain);
        let Some(current) = current else {
            let _ = self
                .store
                .set_acme_next_check(acme::next_check(now, i64::MAX))
                .await;
            if force {
                return Err(AcmeFailure::new(
                    Stage::Validation { renewal: true },
                    format!("The served certificate is not the free certificate of {domain}: request one first."),
                    "",
                ));
            }
            return Ok("The served certificate is not a free certificate.".into());
        };
        // Without the account (CA unreachable) the third-of-lifetime rule still decides.
        let account = self.account(settings).await;
        let pem = self.store.certificate_pem(current.id).await.ok().flatten();
        let identifier = pem.as_ref().and_then(|pem| {
            let der = CertificateDer::pem_slice_iter(pem.chain_pem.as_bytes())
                .next()?
                .ok()?;
            CertificateIdentifier::try_from(&der)
                .ok()
                .map(CertificateIdentifier::into_owned)
        });
        let ari_window = match (&account, &identifier) {
            (Ok(account), Some(id)) => match account.renewal_info(id).await {
                Ok((info, _)) => Some((
                    (info.suggested_window.start.unix_timestamp_nanos() / 1_000_000) as i64,
                    (info.suggested_window.end.unix_timestamp_nanos() / 1_000_000) as i64,
                )),
                Err(error) => {
                    tracing::debug!(%error, "no ACME renewal information; renewing at a third of the lifetime");
                    None
                }
            },
            _ => None,
        };
        let renew_at = acme::renewal_time(
            current.not_before,
            current.not_after,
            ari_window,
            rand::random::<f64>(),
        );
        if !force && now < renew_at {
            let _ = self
                .store
                .set_acme_next_check(acme::next_check(now, renew_at))
                .await;
            tracing::info!(renew_at = %certificates::utc_time(renew_at), "certificate not due for renewal");
            return Ok("Not due for renewal.".into());
        }
        let replaces = identifier.filter(|_| ari_window.is_some());
        let result = match account {
            Ok(account) => self.issue_with(&account, &domain, true, replaces).await,
            Err(failure) => Err(failure),
        };
        self.record(&result).await;
        result
    }

    async fn settings(&self) -> Result<AcmeSettings, AcmeFailure> {
        match self.store.acme_settings().await {
            Ok(Some(settings)) => Ok(settings),
            Ok(None) => Err(AcmeFailure::new(
                Stage::Account,
                "No free-certificate settings.",
                "",
            )),
            Err(error) => Err(AcmeFailure::new(
                Stage::Account,
                "Database error.",
                error.to_string(),
            )),
        }
    }

    /// Records the attempt for `status` (and the console) and schedules the next check.
    async fn record(&self, result: &Result<String, AcmeFailure>) {
        let now = store::unix_ms();
        let (code, message) = match result {
            Ok(message) => (0, message.clone()),
            Err(failure) => (i64::from(failure.code), failure.message.clone()),
        };
        let next = match self.store.active_certificate().await {
            Ok(Some(current)) if result.is_ok() => {
                acme::next_check(now, acme::third_left(current.not_before, current.not_after))
            }
            _ => acme::next_check(now, i64::MAX),
        };
        if let Err(error) = self
            .store
            .record_acme_attempt(now, code, &message, Some(next))
            .await
        {
            tracing::warn!(%error, "cannot record the ACME attempt");
        }
    }

    /// The stored account, or a new one registered with the settings' email.
    async fn account(&self, settings: &AcmeSettings) -> Result<Account, AcmeFailure> {
        let http = self
            .http()
            .map_err(|f| AcmeFailure::new(Stage::Account, f.message, f.detail))?;
        if let Some(json) = &settings.account_credentials {
            match serde_json::from_str::<AccountCredentials>(json) {
                Ok(credentials) => {
                    match Account::builder_with_http(Box::new(http.clone()))
                        .from_credentials(credentials)
                        .await
                    {
                        Ok(account) => return Ok(account),
                        Err(error) => {
                            tracing::warn!(%error, "stored ACME account unusable; registering a new one")
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "stored ACME account unreadable; registering a new one")
                }
            }
        }
        let contact = format!("mailto:{}", settings.email);
        let new_account = NewAccount {
            contact: &[contact.as_str()],
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, credentials) = Account::builder_with_http(Box::new(http))
            .create(&new_account, settings.directory_url.clone(), None)
            .await
            .map_err(|e| fail(Stage::Account, "", &e))?;
        let json = serde_json::to_string(&credentials).map_err(|e| {
            AcmeFailure::new(Stage::Account, "Cannot store the account.", e.to_string())
        })?;
        self.store.save_acme_account(&json).await.map_err(|e| {
            AcmeFailure::new(Stage::Account, "Cannot store the account.", e.to_string())
        })?;
        tracing::info!(account = account.id(), "ACME account registered");
        Ok(account)
    }

    async fn issue(
        &self,
        settings: &AcmeSettings,
        domain: &str,
        renewal: bool,
        replaces: Option<CertificateIdentifier<'static>>,
    ) -> Result<String, AcmeFailure> {
        let account = self.account(settings).await?;
        self.issue_with(&account, domain, renewal, replaces).await
    }

    /// Orders, validates (HTTP-01), finalises with a fresh key and installs the certificate.
    async fn issue_with(
        &self,
        account: &Account,
        domain: &str,
        renewal: bool,
        replaces: Option<CertificateIdentifier<'static>>,
    ) -> Result<String, AcmeFailure> {
        let validation = Stage::Validation { renewal };
        let identifiers = [Identifier::Dns(domain.to_owned())];
        let mut new_order = NewOrder::new(&identifiers);
        if let Some(replaces) = replaces {
            new_order = new_order.replaces(replaces);
        }
        let mut order = account
            .new_order(&new_order)
            .await
            .map_err(|e| fail(validation, domain, &e))?;
        let mut tokens = Vec::new();
        let validated = self
            .validate(&mut order, domain, validation, &mut tokens)
            .await;
        for token in &tokens {
            let _ = self.store.remove_acme_challenge(token).await;
        }
        validated?;

        let issuance = |detail: String| acme::failure(Stage::Issuance, domain, None, &detail);
        let key = rcgen::KeyPair::generate().map_err(|e| issuance(e.to_string()))?;
        let csr = rcgen::CertificateParams::new(vec![domain.to_owned()])
            .and_then(|params| params.serialize_request(&key))
            .map_err(|e| issuance(e.to_string()))?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|e| fail(Stage::Issuance, domain, &e))?;
        let chain = order
            .poll_certificate(&retry_policy())
            .await
            .map_err(|e| fail(Stage::Issuance, domain, &e))?;
        let installed = certificates::install(
            &self.store,
            CertificateSource::Acme,
            &chain,
            &key.serialize_pem(),
            store::unix_ms(),
        )
        .await
        .map_err(|e| {
            AcmeFailure::new(
                Stage::Issuance,
                "The issued certificate could not be installed.",
                e.to_string(),
            )
        })?;
        tracing::info!(domain, issuer = %installed.issuer, certificate = installed.id, renewal, "certificate installed");
        Ok(format!(
            "Certificate for {domain} issued by {}, valid until {}.",
            installed.issuer,
            certificates::utc_time(installed.not_after)
        ))
    }

    /// Publishes the HTTP-01 answers, tells the CA, waits for the order to be ready.
    async fn validate(
        &self,
        order: &mut Order,
        domain: &str,
        stage: Stage,
        tokens: &mut Vec<String>,
    ) -> Result<(), AcmeFailure> {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(|e| fail(stage, domain, &e))?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(acme::failure(
                        stage,
                        domain,
                        None,
                        &format!("authorization is {other:?}"),
                    ));
                }
            }
            let mut challenge =
                authorization
                    .challenge(ChallengeType::Http01)
                    .ok_or_else(|| {
                        acme::failure(stage, domain, None, "the CA offers no HTTP-01 challenge")
                    })?;
            let answer = challenge.key_authorization();
            let expires = store::unix_ms().saturating_add(CHALLENGE_LIFETIME.as_millis() as i64);
            self.store
                .put_acme_challenge(&challenge.token, answer.as_str(), expires)
                .await
                .map_err(|e| AcmeFailure::new(stage, "Database error.", e.to_string()))?;
            tokens.push(challenge.token.clone());
            challenge
                .set_ready()
                .await
                .map_err(|e| fail(stage, domain, &e))?;
        }
        let status = order.poll_ready(&retry_policy()).await;
        match status {
            Ok(OrderStatus::Ready) => Ok(()),
            Ok(other) => Err(self
                .validation_failure(order, domain, stage, &format!("order is {other:?}"))
                .await),
            Err(error) => Err(self
                .validation_failure(order, domain, stage, &problem(&error).1)
                .await),
        }
    }

    /// The challenge's own error (what the CA saw) is more telling than the order's.
    async fn validation_failure(
        &self,
        order: &mut Order,
        domain: &str,
        stage: Stage,
        fallback: &str,
    ) -> AcmeFailure {
        let mut authorizations = order.authorizations();
        while let Some(Ok(authorization)) = authorizations.next().await {
            if let Some(error) = authorization
                .challenges
                .iter()
                .find_map(|c| c.error.as_ref())
            {
                return acme::failure(stage, domain, error.r#type.as_deref(), &error.to_string());
            }
        }
        acme::failure(stage, domain, None, fallback)
    }
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(Duration::from_secs(90))
}
