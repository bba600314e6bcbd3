//! TLS from the browser all the way to the workstation (the relay only forwards ciphertext).
//!
//! RDP servers present self-signed certificates, so the usual WebPKI chain check is replaced by
//! pinning: a certificate is trusted when its DER SHA-256 equals the pin the broker recorded, or,
//! with no pin yet, on first use (the caller records what we saw). Handshake signatures are still
//! verified with the crypto provider's algorithms, so the peer must hold the certificate's key.
//! rustls is driven sans-I/O: ciphertext in, plaintext out, and the bytes to send back.

use crate::error::ClientError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

/// Plaintext encrypted per step in [`TlsSession::send`] (rustls' default buffer limit is 64 KiB).
const SEND_PIECE: usize = 16 * 1024;

/// SHA-256 of `bytes` as 64 lowercase hex characters (the fingerprint format of docs/contracts.md).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks and normalises a pin: 64 hex characters, returned lowercase.
pub(crate) fn normalize_pin(pin: &str) -> Result<String, ClientError> {
    let pin = pin.trim().to_ascii_lowercase();
    if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ClientError::InvalidParams(
            "the pinned certificate fingerprint must be 64 hexadecimal characters".to_owned(),
        ));
    }
    Ok(pin)
}

/// What the verifier saw, shared with the session that owns the TLS connection.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Fingerprint of the end-entity certificate the server presented.
    sha256: Option<String>,
    /// The certificate did not match the pin.
    pin_mismatch: bool,
}

/// Accepts the certificate by pin (or on first use) and checks handshake signatures.
#[derive(Debug)]
pub(crate) struct PinningVerifier {
    pin: Option<String>,
    seen: Arc<Mutex<Seen>>,
    algorithms: WebPkiSupportedAlgorithms,
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = sha256_hex(end_entity.as_ref());
        let mut seen = lock(&self.seen);
        seen.sha256 = Some(actual.clone());
        match &self.pin {
            Some(pin) if *pin != actual => {
                seen.pin_mismatch = true;
                Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
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
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Builds the rustls client configuration: TLS 1.2 and 1.3 with ring, pinning verifier, no resumption.
pub(crate) fn client_config(pin: Option<String>) -> Result<(Arc<ClientConfig>, Arc<Mutex<Seen>>), ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let verifier = PinningVerifier { pin, seen: seen.clone(), algorithms: provider.signature_verification_algorithms };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ClientError::TlsRefused(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok((Arc::new(config), seen))
}

/// The name sent as SNI: a DNS name or IP literal; anything else falls back to a neutral name.
fn server_name(host: &str) -> ServerName<'static> {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).unwrap_or_else(|_| {
        tracing::debug!("workstation name is not a valid TLS server name; sending a neutral SNI");
        ServerName::try_from("workstation").expect("static name is a valid DNS name")
    })
}

/// Result of feeding ciphertext.
#[derive(Debug, Default)]
pub(crate) struct TlsInput {
    /// Decrypted application data.
    pub plaintext: Vec<u8>,
    /// Ciphertext to send back (handshake messages, alerts, key updates).
    pub to_send: Vec<u8>,
    /// The server sent close_notify.
    pub peer_closed: bool,
}

/// One client TLS connection, driven by bytes.
pub(crate) struct TlsSession {
    conn: ClientConnection,
    seen: Arc<Mutex<Seen>>,
    pin: Option<String>,
}

impl TlsSession {
    /// Starts the handshake; returns the session and the ClientHello bytes.
    pub(crate) fn start(host: &str, pin: Option<String>) -> Result<(Self, Vec<u8>), ClientError> {
        let (config, seen) = client_config(pin.clone())?;
        let conn = ClientConnection::new(config, server_name(host)).map_err(|e| ClientError::TlsRefused(e.to_string()))?;
        let mut session = Self { conn, seen, pin };
        let hello = session.drain_outgoing()?;
        Ok((session, hello))
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Fingerprint of the certificate the server presented, once it did.
    pub(crate) fn fingerprint(&self) -> Option<String> {
        lock(&self.seen).sha256.clone()
    }

    /// Feeds up to one TLS read's worth of `input` (advancing it); call again while bytes remain.
    /// Keeping each step small bounds how much plaintext is produced before it is framed.
    pub(crate) fn receive_some(&mut self, input: &mut &[u8]) -> Result<TlsInput, ClientError> {
        let mut out = TlsInput::default();
        if input.is_empty() {
            return Ok(out);
        }
        let was_handshaking = self.conn.is_handshaking();
        self.conn
            .read_tls(input)
            .map_err(|e| ClientError::protocol(format!("TLS record error: {e}")))?;
        let state = self.conn.process_new_packets().map_err(|e| self.map_error(e, was_handshaking))?;
        let available = state.plaintext_bytes_to_read();
        if available > 0 {
            out.plaintext.resize(available, 0);
            self.conn
                .reader()
                .read_exact(&mut out.plaintext)
                .map_err(|e| ClientError::protocol(format!("TLS read error: {e}")))?;
        }
        out.peer_closed = state.peer_has_closed();
        out.to_send = self.drain_outgoing()?;
        Ok(out)
    }

    /// Encrypts application data; returns the ciphertext to send.
    pub(crate) fn send(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ClientError> {
        // rustls buffers a limited amount of unsent data: encrypt a big message (a large clipboard
        // paste) piece by piece, taking the records out after each piece.
        let mut out = Vec::new();
        for piece in plaintext.chunks(SEND_PIECE) {
            self.conn
                .writer()
                .write_all(piece)
                .map_err(|e| ClientError::protocol(format!("TLS write error: {e}")))?;
            out.extend(self.drain_outgoing()?);
        }
        Ok(out)
    }

    /// close_notify, for a clean end of the connection.
    pub(crate) fn close(&mut self) -> Result<Vec<u8>, ClientError> {
        self.conn.send_close_notify();
        self.drain_outgoing()
    }

    /// The subjectPublicKey bits of the server certificate, which CredSSP binds the NLA exchange to.
    pub(crate) fn server_public_key(&self) -> Result<Vec<u8>, ClientError> {
        let certificate = self
            .conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .ok_or_else(|| ClientError::TlsRefused("the workstation presented no certificate".to_owned()))?;
        subject_public_key(certificate.as_ref())
    }

    fn drain_outgoing(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            self.conn
                .write_tls(&mut out)
                .map_err(|e| ClientError::protocol(format!("TLS write error: {e}")))?;
        }
        Ok(out)
    }

    fn map_error(&self, error: rustls::Error, during_handshake: bool) -> ClientError {
        let seen = lock(&self.seen);
        if seen.pin_mismatch {
            return ClientError::CertificateChanged {
                expected: self.pin.clone().unwrap_or_default(),
                actual: seen.sha256.clone().unwrap_or_default(),
            };
        }
        if during_handshake {
            ClientError::TlsRefused(error.to_string())
        } else {
            ClientError::protocol(format!("TLS error: {error}"))
        }
    }
}

/// Extracts the raw subjectPublicKey BIT STRING contents from a DER certificate.
pub(crate) fn subject_public_key(certificate_der: &[u8]) -> Result<Vec<u8>, ClientError> {
    use x509_cert::der::Decode as _;
    let certificate = x509_cert::Certificate::from_der(certificate_der)
        .map_err(|e| ClientError::TlsRefused(format!("the workstation's certificate cannot be parsed: {e}")))?;
    Ok(certificate.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes().to_vec())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::{ServerConfig, ServerConnection};

    /// A self-signed certificate like an RDP server's, and a TLS server config using it.
    pub(crate) struct TestServer {
        pub config: Arc<ServerConfig>,
        pub cert_der: Vec<u8>,
        pub spki: Vec<u8>,
    }

    impl TestServer {
        pub(crate) fn new(name: &str, versions: &[&'static rustls::SupportedProtocolVersion]) -> Self {
            let key = rcgen::KeyPair::generate().unwrap();
            let spki = key.public_key_raw().to_vec();
            let cert = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&key).unwrap();
            let cert_der = cert.der().to_vec();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(versions)
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![CertificateDer::from(cert_der.clone())],
                    PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
                )
                .unwrap();
            Self { config: Arc::new(config), cert_der, spki }
        }

        pub(crate) fn connection(&self) -> ServerConnection {
            ServerConnection::new(self.config.clone()).unwrap()
        }
    }

    /// Moves all pending ciphertext from the server to the client; returns the client's replies.
    pub(crate) fn server_to_client(server: &mut ServerConnection, client: &mut TlsSession) -> Result<TlsInput, ClientError> {
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        let mut total = TlsInput::default();
        let mut rest = wire.as_slice();
        while !rest.is_empty() {
            let step = client.receive_some(&mut rest)?;
            total.plaintext.extend(step.plaintext);
            total.to_send.extend(step.to_send);
            total.peer_closed |= step.peer_closed;
        }
        Ok(total)
    }

    pub(crate) fn client_to_server(bytes: &[u8], server: &mut ServerConnection) {
        let mut rest = bytes;
        while !rest.is_empty() {
            server.read_tls(&mut rest).unwrap();
            server.process_new_packets().unwrap();
        }
    }

    /// Runs a handshake in memory; returns the client result and the server connection.
    fn handshake(
        pin: Option<String>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (TestServer, Result<TlsSession, ClientError>, ServerConnection) {
        let server = TestServer::new("ws1.example", versions);
        let mut server_conn = server.connection();
        let (mut client, hello) = TlsSession::start("ws1.example", pin).unwrap();
        client_to_server(&hello, &mut server_conn);
        for _ in 0..10 {
            let replies = match server_to_client(&mut server_conn, &mut client) {
                Ok(replies) => replies,
                Err(e) => return (server, Err(e), server_conn),
            };
            let mut rest = replies.to_send.as_slice();
            while !rest.is_empty() {
                server_conn.read_tls(&mut rest).unwrap();
                if server_conn.process_new_packets().is_err() {
                    break;
                }
            }
            if !client.is_handshaking() && !server_conn.is_handshaking() {
                break;
            }
        }
        (server, Ok(client), server_conn)
    }

    #[test]
    fn trust_on_first_use_records_the_fingerprint() {
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
            let (server, client, mut server_conn) = handshake(None, versions);
            let mut client = client.unwrap();
            assert!(!client.is_handshaking());
            assert_eq!(client.fingerprint(), Some(sha256_hex(&server.cert_der)));
            assert_eq!(client.server_public_key().unwrap(), server.spki);

            // Application data flows both ways.
            let ciphertext = client.send(b"hello server").unwrap();
            client_to_server(&ciphertext, &mut server_conn);
            let mut got = vec![0; 12];
            server_conn.reader().read_exact(&mut got).unwrap();
            assert_eq!(got, b"hello server");
            server_conn.writer().write_all(b"hello client").unwrap();
            let input = server_to_client(&mut server_conn, &mut client).unwrap();
            assert_eq!(input.plaintext, b"hello client");
        }
    }

    #[test]
    fn matching_pin_is_accepted() {
        // The fingerprint is only known after generating the certificate: generate, then pin it.
        let server = TestServer::new("ws1.example", &[&rustls::version::TLS13]);
        let pin = sha256_hex(&server.cert_der);
        let mut server_conn = server.connection();
        let normalized = normalize_pin(&pin.to_uppercase()).unwrap();
        let (mut client, hello) = TlsSession::start("ws1.example", Some(normalized)).unwrap();
        client_to_server(&hello, &mut server_conn);
        let replies = server_to_client(&mut server_conn, &mut client).unwrap();
        client_to_server(&replies.to_send, &mut server_conn);
        assert!(!client.is_handshaking());
        assert_eq!(client.fingerprint(), Some(pin));
    }

    #[test]
    fn mismatching_pin_is_refused_as_certificate_changed() {
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
            let pin = "ab".repeat(32);
            let (server, client, _) = handshake(Some(pin.clone()), versions);
            match client {
                Err(ClientError::CertificateChanged { expected, actual }) => {
                    assert_eq!(expected, pin);
                    assert_eq!(actual, sha256_hex(&server.cert_der));
                }
                Err(other) => panic!("wrong error: {other:?}"),
                Ok(_) => panic!("a mismatching certificate was accepted"),
            }
        }
    }

    #[derive(Debug)]
    struct FixedCert(Arc<rustls::sign::CertifiedKey>);

    impl rustls::server::ResolvesServerCert for FixedCert {
        fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    #[test]
    fn forged_handshake_signature_is_refused() {
        // The server proves possession of a *different* key than the certificate names: signatures
        // must still be checked even though the certificate itself is trusted on first use.
        let key = rcgen::KeyPair::generate().unwrap();
        let other_key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["ws1.example".to_owned()]).unwrap().self_signed(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing_key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::try_from(other_key.serialize_der()).unwrap())
            .unwrap();
        let certified = Arc::new(rustls::sign::CertifiedKey::new(vec![cert.der().clone()], signing_key));
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(FixedCert(certified)));
        let mut server_conn = ServerConnection::new(Arc::new(config)).unwrap();
        let (mut client, hello) = TlsSession::start("ws1.example", None).unwrap();
        client_to_server(&hello, &mut server_conn);
        let result = server_to_client(&mut server_conn, &mut client);
        assert!(matches!(result, Err(ClientError::TlsRefused(_))), "{result:?}");
    }

    #[test]
    fn pins_are_validated() {
        assert!(normalize_pin("abc").is_err());
        assert!(normalize_pin(&"g".repeat(64)).is_err());
        assert_eq!(normalize_pin(&"AB".repeat(32)).unwrap(), "ab".repeat(32));
    }

    #[test]
    fn server_names() {
        assert_eq!(server_name("ws1.corp.example").to_str(), "ws1.corp.example");
        assert!(matches!(server_name("10.0.0.21"), ServerName::IpAddress(_)));
        assert!(matches!(server_name("[::1]"), ServerName::IpAddress(_)));
        assert_eq!(server_name("bad name!").to_str(), "workstation");
    }
}
