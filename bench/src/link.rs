//! One client connection of any system under test, as a byte stream: plain TCP (direct, socat) or a
//! WebSocket over TLS (Homedesk, websockify) carrying the bytes in binary messages.

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub enum Link {
    Tcp(TcpStream, Vec<u8>),
    Ws(Box<Ws>),
}

impl Link {
    pub async fn tcp(addr: SocketAddr) -> Result<Link> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Link::Tcp(stream, vec![0u8; 64 * 1024]))
    }

    /// `wss://localhost:PORT{path}` on `addr`, with an `Origin` header when given.
    pub async fn wss(addr: SocketAddr, path: &str, origin: Option<&str>, tls: &Arc<ClientConfig>) -> Result<Link> {
        let mut request = format!("wss://localhost:{}{path}", addr.port()).into_client_request()?;
        if let Some(origin) = origin {
            request.headers_mut().insert("Origin", origin.parse()?);
        }
        let tcp = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (ws, _) =
            tokio_tungstenite::client_async_tls_with_config(request, tcp, None, Some(Connector::Rustls(tls.clone())))
                .await
                .with_context(|| format!("WebSocket upgrade at {addr}{}", path.split('?').next().unwrap_or("")))?;
        Ok(Link::Ws(Box::new(ws)))
    }

    pub async fn send(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Link::Tcp(stream, _) => stream.write_all(data).await?,
            Link::Ws(ws) => ws.send(Message::Binary(data.to_vec().into())).await?,
        }
        Ok(())
    }

    /// Waits for the next bytes and returns how many arrived; 0 when the other side closed.
    pub async fn recv(&mut self) -> Result<usize> {
        match self {
            Link::Tcp(stream, buf) => Ok(stream.read(buf).await?),
            Link::Ws(ws) => loop {
                match ws.next().await {
                    None | Some(Ok(Message::Close(_))) => return Ok(0),
                    Some(Ok(Message::Binary(data))) if !data.is_empty() => return Ok(data.len()),
                    Some(Ok(Message::Text(_))) => bail!("unexpected text message"),
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => return Err(error.into()),
                }
            },
        }
    }

    /// Receives until `n` bytes arrived in total; fails if the other side closes first.
    pub async fn recv_exact(&mut self, n: u64) -> Result<()> {
        let mut got = 0u64;
        while got < n {
            let read = self.recv().await?;
            if read == 0 {
                bail!("connection closed after {got} of {n} bytes");
            }
            got += read as u64;
        }
        Ok(())
    }

    pub async fn close(self) {
        match self {
            Link::Tcp(mut stream, _) => {
                let _ = stream.shutdown().await;
            }
            Link::Ws(mut ws) => {
                // On the stream itself: with futures' `alloc` feature `Box<_>` is a Sink too, whose
                // argument-less `close` would otherwise be picked first.
                let _ = (*ws).close(None).await;
            }
        }
    }
}

/// TLS for the benchmark's own loopback servers (the relay's fresh self-signed certificate, also used by
/// websockify): any certificate is accepted, handshake signatures are still checked.
/// The cipher suites are offered in the order browsers (Chrome, Firefox) use, AES-128-GCM first; rustls
/// alone would offer AES-256-GCM first, which the relay (honouring the client's order) would then pick.
pub fn tls_config() -> Arc<ClientConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let provider = Arc::new(provider);
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
        .with_no_client_auth();
    Arc::new(config)
}

/// Connects TLS (HTTPS requests of the relay API).
pub async fn tls_stream(
    addr: SocketAddr,
    tls: &Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    connector.connect(ServerName::try_from("localhost")?, tcp).await.context("TLS handshake")
}

#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
