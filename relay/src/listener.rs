//! Accept loops of both ports, first-byte sniffing, and graceful shutdown.
//!
//! Both listeners (HTTPS, the main port, and plain HTTP) peek at the first byte of each connection
//! without consuming it ([`classify`]): 0x03 (a TPKT header: an RDP X.224 Connection Request) goes to
//! [`crate::native`], 0x16 (a TLS handshake record) to HTTPS (TLS, then HTTP/1.1 with upgrades), and
//! anything else to plain HTTP, which answers 308 to the same URL over HTTPS, except ACME HTTP-01
//! challenges (`/.well-known/acme-challenge/<token>`: the pending token's answer, else 404). So `mstsc` and
//! `https://` share one port, and `http://` typed against the HTTPS port still lands on HTTPS. A
//! client that sends nothing within [`SNIFF_TIMEOUT`] is dropped.
//!
//! We own the accept loop instead of using `axum::serve` so that TLS, per-connection timeouts and
//! the sniffing are under our control. Every connection is a task on the shared [`TaskTracker`];
//! cancelling the relay's shutdown token stops accepting and asks connections to finish, while a
//! listener's own stop token only stops accepting (ports are moved by [`crate::listeners`]).

use crate::acme_client::{challenge_response, CHALLENGE_PREFIX};
use crate::http::{https_redirect, AppState, PeerAddr};
use crate::native;
use crate::store::Store;
use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new connection gets to send its first byte.
pub const SNIFF_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight HTTP requests get after a shutdown signal.
const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

fn connection_builder() -> auto::Builder<TokioExecutor> {
    // HTTP/1.1 only (see `tls::server_config`); the auto builder keeps the door open for HTTP/2.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// Accepts until `stop`, then hands the socket back (so that a restart can keep serving on it without a
/// moment of refused connections); transient accept errors (e.g. too many open files) are logged and retried.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    stop: CancellationToken,
    tasks: TaskTracker,
    mut on_connection: F,
) -> TcpListener
where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tasks.spawn(on_connection(stream, peer));
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    listener
}

/// Serves one HTTP connection until it ends or, after `shutdown`, until it drains.
async fn serve_connection<I>(io: I, peer: SocketAddr, router: Router, shutdown: CancellationToken)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(PeerAddr(peer));
        router.clone().oneshot(request)
    });
    let builder = connection_builder();
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(HTTP_DRAIN_TIMEOUT, connection.as_mut()).await;
        }
    }
}

/// What a connection's first byte says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TPKT version 3: a native RDP client's X.224 Connection Request.
    Rdp,
    /// A TLS handshake record (ClientHello).
    Tls,
    /// Anything else: treated as plain HTTP.
    Http,
}

pub fn classify(first_byte: u8) -> Protocol {
    match first_byte {
        0x03 => Protocol::Rdp,
        0x16 => Protocol::Tls,
        _ => Protocol::Http,
    }
}

/// Waits for the first byte without consuming it; `None` on EOF, error or [`SNIFF_TIMEOUT`].
async fn sniff(tcp: &TcpStream) -> Option<Protocol> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(SNIFF_TIMEOUT, tcp.peek(&mut first)).await {
        Ok(Ok(1)) => Some(classify(first[0])),
        _ => None,
    }
}

/// What every connection on either port may need.
#[derive(Clone)]
pub struct Services {
    pub tls: Arc<rustls::ServerConfig>,
    pub router: Router,
    pub state: AppState,
    /// Where plain-HTTP requests are redirected (changes when the HTTPS port is moved).
    pub https_port: Arc<AtomicU16>,
}

/// Accepts on one port (HTTPS or HTTP: both behave the same) until `stop` (this listener is closed or
/// handed over, see [`crate::listeners`]) or the relay's shutdown, and returns the socket. Connections
/// already accepted are not tied to `stop`: they run on until they end or the relay shuts down.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    stop: CancellationToken,
) -> TcpListener {
    let acceptor = TlsAcceptor::from(services.tls.clone());
    let shutdown = services.state.shutdown.clone();
    let tasks = services.state.tasks.clone();
    accept_loop(listener, stop, tasks, move |tcp, peer| {
        let acceptor = acceptor.clone();
        let services = services.clone();
        let shutdown = shutdown.clone();
        async move {
            let protocol = tokio::select! {
                _ = shutdown.cancelled() => return,
                protocol = sniff(&tcp) => protocol,
            };
            match protocol {
                Some(Protocol::Rdp) => native::handle(services.state, tcp, peer).await,
                Some(Protocol::Tls) => {
                    serve_tls(acceptor, tcp, peer, services.router, shutdown).await
                }
                Some(Protocol::Http) => {
                    serve_redirect(
                        tcp,
                        peer,
                        services.https_port.load(Ordering::Relaxed),
                        services.state.store.clone(),
                        shutdown,
                    )
                    .await
                }
                None => tracing::debug!(%peer, "connection sent nothing"),
            }
        }
    })
    .await
}

/// TLS handshake, then the router.
async fn serve_tls(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::select! {
        _ = shutdown.cancelled() => return,
        handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => handshake,
    };
    match handshake {
        Ok(Ok(tls)) => serve_connection(tls, peer, router, shutdown).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// Plain HTTP: every request gets a 308 to the same URL over HTTPS, except ACME challenges.
async fn serve_redirect(
    tcp: TcpStream,
    peer: SocketAddr,
    https_port: u16,
    store: Store,
    shutdown: CancellationToken,
) {
    let fallback_host = match tcp.local_addr() {
        Ok(SocketAddr::V6(addr)) => format!("[{}]", addr.ip()),
        Ok(addr) => addr.ip().to_string(),
        Err(_) => "localhost".to_owned(),
    };
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let store = store.clone();
        let fallback_host = fallback_host.clone();
        async move {
            let response = if request.uri().path().starts_with(CHALLENGE_PREFIX) {
                acme_challenge(&store, request.uri().path()).await
            } else {
                https_redirect(request.headers(), request.uri(), https_port, &fallback_host)
            };
            Ok::<_, Infallible>(response.map(Body::new))
        }
    });
    let builder = connection_builder();
    let connection = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "redirect connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(HTTP_DRAIN_TIMEOUT, connection.as_mut()).await;
        }
    }
}

/// The answer to an HTTP-01 challenge: only tokens being validated right now, else 404.
async fn acme_challenge(store: &Store, path: &str) -> hyper::Response<Body> {
    let (status, body) = match challenge_response(store, path).await {
        Some(answer) => (hyper::StatusCode::OK, answer),
        None => (hyper::StatusCode::NOT_FOUND, "Not found.\n".to_owned()),
    };
    let mut response = hyper::Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_decides() {
        assert_eq!(classify(0x03), Protocol::Rdp);
        assert_eq!(classify(0x16), Protocol::Tls);
        for byte in [b'G', b'P', 0x00, 0xFF, 0x04, 0x15] {
            assert_eq!(classify(byte), Protocol::Http);
        }
    }
}
