//! The HTTPS certificate: a self-signed one made on first start, and the switch that serves it or
//! a publicly trusted one (free ACME certificate or imported, see [`crate::certificates`]).
//!
//! Homedesk must work out of the box on an office network without a CA, so the relay creates its
//! own certificate (SANs: localhost, 127.0.0.1, ::1 and the machine's hostname).
//!
//! The listeners keep one [`ServerConfig`] for their whole life; its certificate comes from a
//! [`CertificateSwitch`] (a rustls `ResolvesServerCert`) whose certificate is swapped atomically.
//! A new certificate therefore applies to the next TLS handshake, and connections that are open keep
//! the session they negotiated: nothing is dropped by a renewal.

use crate::config::{create_private_dir, DataDir};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path} holds no usable {what} (PEM expected)")]
    Pem { path: PathBuf, what: &'static str },
    #[error("the TLS certificate or key is not usable: {0}")]
    Rustls(#[from] rustls::Error),
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> TlsError + 'a {
    move |source| TlsError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The machine's hostname if it is a usable DNS name (Linux: /proc or /etc/hostname, else $HOSTNAME).
pub fn machine_hostname() -> Option<String> {
    let candidates = [
        std::fs::read_to_string("/proc/sys/kernel/hostname").ok(),
        std::fs::read_to_string("/etc/hostname").ok(),
        std::env::var("HOSTNAME").ok(),
        std::env::var("COMPUTERNAME").ok(),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty() && crate::broker::validate_host(name).is_ok())
        .map(|name| name.to_ascii_lowercase())
}

/// Subject alternative names of the generated certificate.
pub fn subject_alt_names() -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = machine_hostname() {
        if !names.contains(&host) {
            names.push(host);
        }
    }
    names
}

/// Writes a new self-signed certificate and key (key mode 0600) unless both files exist.
/// Returns true if it created them.
pub fn ensure_certificate(dir: &DataDir) -> Result<bool, TlsError> {
    let (cert_path, key_path) = (dir.certificate(), dir.private_key());
    if cert_path.exists() && key_path.exists() {
        return Ok(false);
    }
    let tls_dir = dir.tls_dir();
    create_private_dir(&tls_dir).map_err(io_error("create", &tls_dir))?;
    let mut params = rcgen::CertificateParams::new(subject_alt_names())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Homedesk relay (self-signed)");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Homedesk");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    write_atomically(&key_path, key.serialize_pem().as_bytes())?;
    write_atomically(&cert_path, cert.pem().as_bytes())?;
    Ok(true)
}

/// Writes `contents` to a temporary file (mode 0600) in the same directory, syncs it, then renames
/// it over `path`: a crash or a full disk never leaves a half-written key or certificate behind.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    let mut temp_name = path.file_name().unwrap_or_default().to_owned();
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&temp).map_err(io_error("create", &temp))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // A leftover temporary file may exist with other permissions.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io_error("protect", &temp))?;
        }
        file.write_all(contents).map_err(io_error("write", &temp))?;
        file.sync_all().map_err(io_error("write", &temp))?;
        std::fs::rename(&temp, path).map_err(io_error("rename", &temp))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Loads the certificate chain and key from the data dir.
pub fn load(
    dir: &DataDir,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let (cert_path, key_path) = (dir.certificate(), dir.private_key());
    let cert_pem = std::fs::read(&cert_path).map_err(io_error("read", &cert_path))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem {
            path: cert_path.clone(),
            what: "certificate",
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: cert_path,
            what: "certificate",
        });
    }
    let key_pem = std::fs::read(&key_path).map_err(io_error("read", &key_path))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Pem {
        path: key_path,
        what: "private key",
    })?;
    Ok((certs, key))
}

/// A certificate chain with its key, ready for rustls; refuses a key that does not match the leaf.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    Ok(CertifiedKey::from_der(
        chain,
        key,
        &rustls::crypto::ring::default_provider(),
    )?)
}

/// The self-signed certificate of the data dir, ready for rustls.
pub fn self_signed(dir: &DataDir) -> Result<Arc<CertifiedKey>, TlsError> {
    let (certs, key) = load(dir)?;
    Ok(Arc::new(certified_key(certs, key)?))
}

/// The certificate new TLS connections get, swappable while the listeners run.
#[derive(Debug)]
pub struct CertificateSwitch {
    current: RwLock<Arc<CertifiedKey>>,
    publicly_trusted: AtomicBool,
}

impl CertificateSwitch {
    pub fn new(certificate: Arc<CertifiedKey>, publicly_trusted: bool) -> Self {
        CertificateSwitch {
            current: RwLock::new(certificate),
            publicly_trusted: AtomicBool::new(publicly_trusted),
        }
    }

    /// Serves `certificate` from the next handshake on; open connections are not touched.
    pub fn install(&self, certificate: Arc<CertifiedKey>, publicly_trusted: bool) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = certificate;
        self.publicly_trusted
            .store(publicly_trusted, Ordering::SeqCst);
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// True while a publicly trusted certificate is served (a free one, or an import that chains to the
    /// public roots: [`crate::certificates::publicly_trusted`]): HSTS is sent only then,
    /// so that browsers never pin HTTPS to a self-signed certificate they would have to click through.
    pub fn publicly_trusted(&self) -> bool {
        self.publicly_trusted.load(Ordering::SeqCst)
    }
}

impl ResolvesServerCert for CertificateSwitch {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3, ALPN http/1.1) whose certificate
/// comes from `switch`.
///
/// HTTP/2 is not offered: hyper answers an early response (e.g. a 403 before the body was read)
/// with RST_STREAM, which some clients report as a framing error instead of showing the response.
/// The portal is a handful of files and the tunnel is HTTP/1.1 anyway.
pub fn server_config(switch: Arc<CertificateSwitch>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(switch);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// SHA-256 of a DER certificate, lowercase hex (the fingerprint format of the contract).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    crate::auth::sha256_hex(cert.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_and_loads() {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path().join("data"));
        assert!(ensure_certificate(&dir).unwrap());
        let first = std::fs::read(dir.certificate()).unwrap();
        assert!(!ensure_certificate(&dir).unwrap());
        assert_eq!(
            first,
            std::fs::read(dir.certificate()).unwrap(),
            "an existing certificate is kept"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.private_key())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let switch = Arc::new(CertificateSwitch::new(self_signed(&dir).unwrap(), false));
        server_config(switch).unwrap();
        let (certs, _) = load(&dir).unwrap();
        assert_eq!(fingerprint(&certs[0]).len(), 64);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path());
        std::fs::create_dir_all(dir.tls_dir()).unwrap();
        std::fs::write(dir.certificate(), "nope").unwrap();
        std::fs::write(dir.private_key(), "nope").unwrap();
        let error = self_signed(&dir).unwrap_err().to_string();
        assert!(error.contains("cert.pem"), "{error}");
    }
}
