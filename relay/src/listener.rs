//! Accept loops: HTTPS (TLS + HTTP/1.1 with upgrades) and the plain-HTTP redirector,
//! with graceful shutdown.
//!
//! We own the accept loop instead of using `axum::serve` so that TLS, per-connection timeouts and
//! (later) first-byte sniffing of a single port are under our control. Every connection is a task on
//! the shared [`TaskTracker`]; cancelling the token stops accepting and asks connections to finish.

use crate::http::{https_redirect, PeerAddr};
use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight HTTP requests get after a shutdown signal.
const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

fn connection_builder() -> auto::Builder<TokioExecutor> {
    // HTTP/1.1 only (see `tls::server_config`); the auto builder keeps the door open for HTTP/2.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// Accepts until `shutdown`; transient accept errors (e.g. too many open files) are logged and retried.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    mut on_connection: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
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

/// The HTTPS listener: TLS handshake, then the router.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let acceptor = TlsAcceptor::from(tls);
    let token = shutdown.clone();
    accept_loop(listener, shutdown, tasks, move |tcp, peer| {
        let acceptor = acceptor.clone();
        let router = router.clone();
        let shutdown = token.clone();
        async move {
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
    })
    .await;
}

/// The plain-HTTP listener: every request gets a 308 to the same URL over HTTPS.
pub async fn serve_redirect(listener: TcpListener, https_port: u16, shutdown: CancellationToken, tasks: TaskTracker) {
    let token = shutdown.clone();
    accept_loop(listener, shutdown, tasks, move |tcp, peer| {
        let shutdown = token.clone();
        let fallback_host = match tcp.local_addr() {
            Ok(SocketAddr::V6(addr)) => format!("[{}]", addr.ip()),
            Ok(addr) => addr.ip().to_string(),
            Err(_) => "localhost".to_owned(),
        };
        async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = https_redirect(request.headers(), request.uri(), https_port, &fallback_host);
                async move { Ok::<_, Infallible>(response.map(Body::new)) }
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
    })
    .await;
}
