//! The portal's certificate as the administrator manages it: import a PEM pair, restore a kept one,
//! reset to the self-signed one, and the watcher that makes every relay serve what the database says.
//!
//! The database is the single source of truth (migration 0005): at most one kept certificate is
//! active, none means "self-signed". The CLI and the ACME worker only change rows; each serving
//! relay polls the active id ([`watch`]) and swaps its [`CertificateSwitch`] when it changes. So a
//! change made by the CLI, another relay or a renewal reaches new TLS handshakes within one poll,
//! and no open connection is touched.

use crate::config::DataDir;
use crate::store::{
    self, CertificatePem, CertificateSource, NewCertificate, Store, StoreError, StoredCertificate,
};
use crate::tls::{self, CertificateSwitch, TlsError};
use rustls::server::ParsedCertificate as WebPkiCertificate;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Largest PEM file accepted on import (a chain of a few certificates is a few KiB).
const MAX_PEM_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("no certificate found (a PEM file with -----BEGIN CERTIFICATE----- is expected)")]
    NoCertificate,
    #[error(
        "no private key found (a PEM file with -----BEGIN PRIVATE KEY----- or similar is expected)"
    )]
    NoKey,
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the certificate cannot be read: {0}")]
    Parse(String),
    #[error("the certificate or key is not usable: {0}")]
    Unusable(String),
    #[error("the certificate expired on {0}")]
    Expired(String),
    #[error("the certificate names no DNS name")]
    NoName,
    #[error("there is no kept certificate #{0} (see `relay certificate history`)")]
    UnknownId(i64),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than 1 MiB: not a PEM certificate or key")]
    TooLarge { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(TlsError),
}

/// What a certificate says about itself (for display and renewal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject's distinguished name (RFC 4514 text).
    pub subject: String,
    /// DNS names (subject alternative names, else the common name).
    pub names: Vec<String>,
    pub issuer: String,
    /// Unix milliseconds.
    pub not_before: i64,
    pub not_after: i64,
}

impl CertificateInfo {
    /// The name shown for the certificate: its first DNS name.
    pub fn domain(&self) -> Option<&str> {
        self.names.first().map(String::as_str)
    }
}

/// Reads validity, issuer and names of a DER certificate.
pub fn certificate_info(der: &CertificateDer<'_>) -> Result<CertificateInfo, CertificateError> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| CertificateError::Parse(e.to_string()))?;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(error) => return Err(CertificateError::Parse(error.to_string())),
    };
    if names.is_empty() {
        if let Some(cn) = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
        {
            names.push(cn.to_ascii_lowercase());
        }
    }
    let validity = cert.validity();
    Ok(CertificateInfo {
        names,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: validity.not_before.timestamp().saturating_mul(1000),
        not_after: validity.not_after.timestamp().saturating_mul(1000),
    })
}

/// A checked PEM pair: the chain parses, the key matches the leaf.
#[derive(Debug, Clone)]
pub struct ParsedCertificate {
    pub info: CertificateInfo,
    pub leaf: CertificateDer<'static>,
    pub certified: Arc<CertifiedKey>,
}

/// Parses a PEM chain (leaf first) and a PEM private key, and checks that they belong together.
pub fn parse_pem_pair(
    chain_pem: &str,
    key_pem: &str,
) -> Result<ParsedCertificate, CertificateError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| CertificateError::Parse(e.to_string()))?;
    let leaf = chain
        .first()
        .cloned()
        .ok_or(CertificateError::NoCertificate)?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| CertificateError::NoKey)?;
    let info = certificate_info(&leaf)?;
    let certified = tls::certified_key(chain, key).map_err(|error| match error {
        TlsError::Rustls(rustls::Error::InconsistentKeys(_)) => CertificateError::KeyMismatch,
        TlsError::Rustls(other) => CertificateError::Unusable(other.to_string()),
        other => CertificateError::Tls(other),
    })?;
    Ok(ParsedCertificate {
        info,
        leaf,
        certified: Arc::new(certified),
    })
}

fn read_pem(path: &Path) -> Result<String, CertificateError> {
    let read_error = |source| CertificateError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_PEM_BYTES {
        return Err(CertificateError::TooLarge {
            path: path.to_owned(),
        });
    }
    std::fs::read_to_string(path).map_err(read_error)
}

fn refuse_expired(info: &CertificateInfo, now: i64) -> Result<(), CertificateError> {
    if info.not_after <= now {
        return Err(CertificateError::Expired(utc_time(info.not_after)));
    }
    Ok(())
}

/// Checks and keeps a certificate and makes it the served one.
pub async fn install(
    store: &Store,
    source: CertificateSource,
    chain_pem: &str,
    key_pem: &str,
    now: i64,
) -> Result<StoredCertificate, CertificateError> {
    let parsed = parse_pem_pair(chain_pem, key_pem)?;
    refuse_expired(&parsed.info, now)?;
    let domain = parsed
        .info
        .domain()
        .ok_or(CertificateError::NoName)?
        .to_owned();
    let new = NewCertificate {
        source,
        domain,
        issuer: parsed.info.issuer.clone(),
        not_before: parsed.info.not_before,
        not_after: parsed.info.not_after,
        chain_pem: chain_pem.to_owned(),
        key_pem: key_pem.to_owned(),
    };
    let id = store.install_certificate(&new, now).await?;
    store
        .certificate(id)
        .await?
        .ok_or(CertificateError::UnknownId(id))
}

/// Imports the administrator's own PEM certificate (chain) and key files.
pub async fn import(
    store: &Store,
    chain: &Path,
    key: &Path,
) -> Result<StoredCertificate, CertificateError> {
    let (chain_pem, key_pem) = (read_pem(chain)?, read_pem(key)?);
    install(
        store,
        CertificateSource::Imported,
        &chain_pem,
        &key_pem,
        store::unix_ms(),
    )
    .await
}

/// Serves kept certificate `id` again (it must still be usable and not expired).
pub async fn restore(store: &Store, id: i64) -> Result<StoredCertificate, CertificateError> {
    let pem = store
        .certificate_pem(id)
        .await?
        .ok_or(CertificateError::UnknownId(id))?;
    let now = store::unix_ms();
    let parsed = parse_pem_pair(&pem.chain_pem, &pem.key_pem)?;
    refuse_expired(&parsed.info, now)?;
    store.activate_certificate(id, now).await?;
    let restored = store
        .certificate(id)
        .await?
        .ok_or(CertificateError::UnknownId(id))?;
    if restored.source == CertificateSource::Acme {
        // A restored free certificate is renewed again, as if it had just been issued.
        store.set_acme_domain(&restored.domain).await?;
    }
    Ok(restored)
}

/// Reset Domain: back to the self-signed certificate, nothing left to renew. Kept certificates stay.
pub async fn reset(store: &Store) -> Result<bool, CertificateError> {
    let now = store::unix_ms();
    let was_active = store.deactivate_certificates(now).await?;
    store.clear_acme_domain().await?;
    Ok(was_active)
}

/// The certificate to serve: the active kept one, else the self-signed one. Returns the active id
/// and whether the certificate is publicly trusted ([`publicly_trusted`]: then HSTS is sent).
pub async fn load_active(
    store: &Store,
    data_dir: &DataDir,
) -> Result<(Option<i64>, Arc<CertifiedKey>, bool), CertificateError> {
    match store.active_certificate_id().await? {
        Some(id) => {
            let pem = store
                .certificate_pem(id)
                .await?
                .ok_or(CertificateError::UnknownId(id))?;
            let certified = parse_stored(&pem)?;
            let trusted = publicly_trusted(
                pem.source,
                &certified.cert,
                &mozilla_roots(),
                UnixTime::now(),
            );
            Ok((Some(id), certified, trusted))
        }
        None => Ok((
            None,
            tls::self_signed(data_dir).map_err(CertificateError::Tls)?,
            false,
        )),
    }
}

/// Whether browsers trust the served certificate, the condition for HSTS (which makes a browser refuse
/// the portal, without the option to continue, whenever the certificate fails its check):
/// - a free certificate (ACME) counts as trusted: it comes from the CA the administrator configured
///   (`--acme-directory`, Let's Encrypt by default), and whoever points the relay at a private ACME CA
///   has its root in their browsers;
/// - an imported certificate counts only if its chain (leaf first, then the intermediates it came with)
///   verifies against `roots` — the Mozilla roots in production — at `now`. One signed by a private
///   (office) CA gets no HSTS: a visitor whose browser lacks that CA could never click through.
pub fn publicly_trusted(
    source: CertificateSource,
    chain: &[CertificateDer<'_>],
    roots: &RootCertStore,
    now: UnixTime,
) -> bool {
    match source {
        CertificateSource::Acme => true,
        CertificateSource::Imported => {
            let Some((leaf, intermediates)) = chain.split_first() else {
                return false;
            };
            let Ok(leaf) = WebPkiCertificate::try_from(leaf) else {
                return false;
            };
            let algorithms =
                rustls::crypto::ring::default_provider().signature_verification_algorithms;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &leaf,
                roots,
                intermediates,
                now,
                algorithms.all,
            )
            .is_ok()
        }
    }
}

/// The roots browsers ship (Mozilla's list, as compiled into `webpki-roots`).
fn mozilla_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn parse_stored(pem: &CertificatePem) -> Result<Arc<CertifiedKey>, CertificateError> {
    Ok(parse_pem_pair(&pem.chain_pem, &pem.key_pem)?.certified)
}

/// Polls the active certificate id every `interval` and swaps `switch` when it changes. A row that
/// cannot be loaded is logged and the current certificate stays.
pub async fn watch(
    store: Store,
    data_dir: DataDir,
    switch: Arc<CertificateSwitch>,
    mut served: Option<i64>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let active = match store.active_certificate_id().await {
            Ok(active) => active,
            Err(error) => {
                tracing::warn!(%error, "cannot read the active certificate");
                continue;
            }
        };
        if active == served {
            continue;
        }
        match load_active(&store, &data_dir).await {
            Ok((id, certificate, trusted)) => {
                switch.install(certificate, trusted);
                served = id;
                match id {
                    Some(id) => tracing::info!(
                        certificate = id,
                        "new TLS connections use the kept certificate"
                    ),
                    None => tracing::info!("new TLS connections use the self-signed certificate"),
                }
            }
            Err(error) => {
                tracing::error!(%error, ?active, "cannot load the active certificate; keeping the current one");
                served = active;
            }
        }
    }
}

/// UTC, ISO 8601 without a date library: days since the epoch → civil date (H. Hinnant).
pub fn utc_time(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_is_parsed() {
        let (chain, key) = pair(&["desk.example.com", "www.example.com"]);
        let parsed = parse_pem_pair(&chain, &key).unwrap();
        assert_eq!(parsed.info.names, ["desk.example.com", "www.example.com"]);
        assert_eq!(parsed.info.domain(), Some("desk.example.com"));
        assert!(parsed.info.not_after > parsed.info.not_before);
    }

    #[test]
    fn a_foreign_key_is_refused() {
        let (chain, _) = pair(&["desk.example.com"]);
        let (_, other_key) = pair(&["desk.example.com"]);
        assert!(matches!(
            parse_pem_pair(&chain, &other_key),
            Err(CertificateError::KeyMismatch)
        ));
    }

    #[test]
    fn garbage_is_refused_clearly() {
        let (chain, key) = pair(&["desk.example.com"]);
        assert!(matches!(
            parse_pem_pair("nothing here", &key),
            Err(CertificateError::NoCertificate)
        ));
        assert!(matches!(
            parse_pem_pair(&chain, "nothing"),
            Err(CertificateError::NoKey)
        ));
        assert!(matches!(
            parse_pem_pair(&key, &chain),
            Err(CertificateError::NoCertificate | CertificateError::NoKey)
        ));
    }

    /// A private CA and a leaf it signed for `name` (chain: leaf, CA), valid from yesterday for 30 days.
    fn office_ca_chain(name: &str) -> (Vec<CertificateDer<'static>>, CertificateDer<'static>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Office CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        (leaf.not_before, leaf.not_after) = (
            now - time::Duration::days(1),
            now + time::Duration::days(30),
        );
        let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let chain = vec![leaf.der().clone(), ca.der().clone()];
        (chain, ca.der().clone())
    }

    #[test]
    fn hsts_only_for_free_certificates_and_publicly_verifiable_imports() {
        let (chain, office_root) = office_ca_chain("portal.example.org");
        let now = UnixTime::now();
        let mozilla = mozilla_roots();
        assert!(!mozilla.is_empty());
        // A private CA's certificate: not trusted by browsers, so no HSTS.
        assert!(!publicly_trusted(
            CertificateSource::Imported,
            &chain,
            &mozilla,
            now
        ));
        // The same chain verifies once its root is trusted (the check itself works)...
        let mut office = RootCertStore::empty();
        office.add(office_root).unwrap();
        assert!(publicly_trusted(
            CertificateSource::Imported,
            &chain,
            &office,
            now
        ));
        // ...but not when the leaf is outside its validity.
        let in_a_year =
            UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() + 366 * 86_400));
        assert!(!publicly_trusted(
            CertificateSource::Imported,
            &chain,
            &office,
            in_a_year
        ));
        // A self-signed leaf and an empty chain never are.
        let (self_signed, _) = pair(&["portal.example.org"]);
        let self_signed: Vec<_> = CertificateDer::pem_slice_iter(self_signed.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!publicly_trusted(
            CertificateSource::Imported,
            &self_signed,
            &mozilla,
            now
        ));
        assert!(!publicly_trusted(
            CertificateSource::Imported,
            &[],
            &office,
            now
        ));
        // A free certificate comes from the CA the administrator configured: trusted by rule.
        assert!(publicly_trusted(
            CertificateSource::Acme,
            &chain,
            &mozilla,
            now
        ));
    }

    #[test]
    fn utc_time_is_iso() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(1_709_251_199_000), "2024-02-29 23:59:59 UTC");
    }
}
