//! The byte pipe: one browser WebSocket ⇄ one TCP connection to the user's assigned workstation.
//!
//! This is the only place the relay touches workstation traffic, and it never looks inside: the
//! browser runs TLS (and RDP) end to end with the workstation, so these are ciphertext bytes. The
//! destination comes from the database through a single-use ticket, never from the client. Each
//! pipe is its own task; its failures end only that pipe.

use crate::bruteforce;
use crate::http::{origin_allowed, AppState, ClientIp, FOREIGN_ORIGIN};
use crate::pipes::{PipeKind, PipeStats};
use crate::store::Workstation;
use crate::tickets;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Close codes of `docs/contracts.md`.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED: u16 = 1003;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const BAD_TICKET: u16 = 4401;
    pub const UNREACHABLE: u16 = 4502;
    /// The client IP is blocked after too many failed sign-ins (brute-force defence).
    pub const BLOCKED: u16 = 4429;
    /// An administrator disconnected the session (admin console).
    pub const DISCONNECTED: u16 = 4403;
}

pub const TICKET_INVALID: &str =
    "This connection ticket is invalid, expired or already used. Please try again.";
pub const NO_LONGER_ASSIGNED: &str = "This workstation is no longer assigned to your account.";
pub const WORKSTATION_CLOSED: &str = "The workstation closed the connection.";
pub const WORKSTATION_LOST: &str = "The connection to the workstation was lost.";
pub const TEXT_REFUSED: &str = "The tunnel carries binary messages only.";
pub const TOO_BIG: &str = "A message was larger than the relay accepts (1 MiB).";
pub const SHUTTING_DOWN: &str = "The relay is shutting down.";
pub const INTERNAL: &str = "The relay had an internal error. Please try again later.";

/// Reads from the workstation (one WebSocket message per read) start this small: an idle desktop sends
/// little, and thousands of idle pipes must stay cheap.
const MIN_READ: usize = 4 * 1024;
/// Reads grow up to this while they keep filling the buffer (screen updates, file copies): fewer, larger
/// messages and TLS records per byte.
const MAX_READ: usize = 64 * 1024;
/// tungstenite's read buffer for browser messages (its default, 128 KiB, is zero-filled per connection).
/// Browser messages are small input events; a larger message is read in several chunks.
const WS_READ_BUFFER: usize = 4 * 1024;
/// After one side has finished, how long the other gets to finish cleanly.
const LINGER: Duration = Duration::from_secs(5);

pub fn unreachable_message(name: &str) -> String {
    format!("The workstation {name} cannot be reached.")
}

#[derive(Deserialize)]
pub struct TunnelQuery {
    ticket: Option<String>,
}

/// `GET /api/tunnel?ticket=…`: Origin is checked before the upgrade; the ticket after it, so that the
/// browser can show the close reason.
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<TunnelQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if !origin_allowed(&headers, &uri, &state.config.public_origins) {
        tracing::info!(%peer, "tunnel refused: foreign or missing Origin");
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({ "error": FOREIGN_ORIGIN })),
        )
            .into_response();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    // Only the ticket is read; any other parameter (host, port, …) is ignored.
    let ticket = query.ok().and_then(|Query(q)| q.ticket);
    let max = state.config.max_message_size;
    let tasks = state.tasks.clone();
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(WS_READ_BUFFER)
        // Every message is sent (and flushed) as soon as it is read: no batching in tungstenite.
        .write_buffer_size(0)
        .on_upgrade(move |socket| tasks.track_future(run(state, socket, ticket, peer)))
}

/// Sends a close frame and waits briefly for the browser's answer (messages in between are dropped).
async fn close_with(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

async fn run(state: AppState, socket: WebSocket, ticket: Option<String>, peer: std::net::IpAddr) {
    match state.guard.ip_blocked_for(peer).await {
        Ok(None) => {}
        Ok(Some(retry_after)) => {
            tracing::info!(%peer, "tunnel refused: blocked IP");
            return close_with(
                socket,
                close_code::BLOCKED,
                &bruteforce::ip_blocked_message(retry_after),
            )
            .await;
        }
        Err(error) => {
            tracing::error!(%error, "block check failed");
            return close_with(socket, close_code::INTERNAL, INTERNAL).await;
        }
    }
    let redeemed = match ticket {
        Some(ticket) => tickets::redeem(&state.store, &ticket).await,
        None => Ok(None),
    };
    let redeemed = match redeemed {
        Ok(Some(redeemed)) => redeemed,
        Ok(None) => {
            tracing::info!(%peer, "tunnel refused: invalid ticket");
            return close_with(socket, close_code::BAD_TICKET, TICKET_INVALID).await;
        }
        Err(error) => {
            tracing::error!(%error, "ticket check failed");
            return close_with(socket, close_code::INTERNAL, INTERNAL).await;
        }
    };
    // Where to go comes from the database only, and the assignment must still exist.
    let target = async {
        let user = state.store.user_by_id(redeemed.user_id).await?;
        let workstation = state
            .store
            .assigned_workstation(redeemed.user_id, redeemed.workstation_id)
            .await?;
        Ok::<_, crate::store::StoreError>(user.zip(workstation))
    };
    let (user, workstation) = match target.await {
        Ok(Some((_, workstation))) if !workstation.enabled => {
            return close_with(socket, close_code::BAD_TICKET, crate::http::DISABLED).await
        }
        Ok(Some(found)) => found,
        Ok(None) => return close_with(socket, close_code::BAD_TICKET, NO_LONGER_ASSIGNED).await,
        Err(error) => {
            tracing::error!(%error, "workstation lookup failed");
            return close_with(socket, close_code::INTERNAL, INTERNAL).await;
        }
    };
    let tcp = match dial(&workstation, state.config.connect_timeout).await {
        Ok(tcp) => tcp,
        Err(error) => {
            tracing::info!(user = %user.username, workstation = %workstation.name, %error, "workstation unreachable");
            return close_with(
                socket,
                close_code::UNREACHABLE,
                &unreachable_message(&workstation.name),
            )
            .await;
        }
    };
    let guard = state
        .pipes
        .register(PipeKind::WebSocket, &user.username, &workstation.name, peer);
    tracing::info!(user = %user.username, workstation = %workstation.name, %peer, "tunnel opened");
    crate::audit::record_tunnel_opened(&state.store, guard.stats()).await;
    let end = pipe(socket, tcp, guard.stats(), state.shutdown.clone()).await;
    let stats = guard.stats();
    crate::audit::record_tunnel_closed(&state.store, stats, &end.to_string()).await;
    tracing::info!(
        user = %user.username,
        workstation = %workstation.name,
        duration_ms = stats.duration().as_millis() as u64,
        bytes_up = stats.bytes_up(),
        bytes_down = stats.bytes_down(),
        end = %end,
        "tunnel closed"
    );
}

pub(crate) async fn dial(
    workstation: &Workstation,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let connect = TcpStream::connect((workstation.host.as_str(), workstation.port));
    let tcp = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    // Interactive traffic: do not delay small writes (input events).
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// How the browser side ended.
#[derive(Debug)]
enum UpEnd {
    BrowserClosed,
    Text,
    TooBig,
    WebSocketError(String),
    WorkstationWriteFailed(String),
}

/// How the workstation side ended.
#[derive(Debug)]
enum DownEnd {
    WorkstationClosed,
    WorkstationReadFailed(String),
    Closed(u16),
    Shutdown,
    BrowserGone,
}

/// The summary logged at disconnect.
struct PipeEnd(Option<UpEnd>, Option<DownEnd>);

impl std::fmt::Display for PipeEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let up = match &self.0 {
            Some(UpEnd::BrowserClosed) => "browser closed".to_owned(),
            Some(UpEnd::Text) => "browser sent text".to_owned(),
            Some(UpEnd::TooBig) => "browser message too big".to_owned(),
            Some(UpEnd::WebSocketError(e)) => format!("websocket error: {e}"),
            Some(UpEnd::WorkstationWriteFailed(e)) => format!("write to workstation failed: {e}"),
            None => "browser side still open".to_owned(),
        };
        let down = match &self.1 {
            Some(DownEnd::WorkstationClosed) => "workstation closed".to_owned(),
            Some(DownEnd::WorkstationReadFailed(e)) => format!("read from workstation failed: {e}"),
            Some(DownEnd::Closed(code)) => format!("closed with {code}"),
            Some(DownEnd::Shutdown) => "relay shutdown".to_owned(),
            Some(DownEnd::BrowserGone) => "browser gone".to_owned(),
            None => "workstation side still open".to_owned(),
        };
        write!(f, "{up}; {down}")
    }
}

fn is_too_big(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(current) = source {
        if let Some(tungstenite::Error::Capacity(_)) = current.downcast_ref::<tungstenite::Error>()
        {
            return true;
        }
        source = current.source();
    }
    false
}

/// Browser → workstation. Asks the other half (through `control`) to close the WebSocket when the
/// browser breaks the rules.
async fn pump_up(
    ws_rx: &mut SplitStream<WebSocket>,
    tcp_wr: &mut OwnedWriteHalf,
    control: mpsc::Sender<(u16, &'static str)>,
    stats: &PipeStats,
) -> UpEnd {
    let mut browser_closed = false;
    loop {
        match ws_rx.next().await {
            Some(Ok(Message::Binary(data))) => {
                if browser_closed {
                    continue;
                }
                if let Err(error) = tcp_wr.write_all(&data).await {
                    let _ = control.try_send((close_code::INTERNAL, WORKSTATION_LOST));
                    return UpEnd::WorkstationWriteFailed(error.to_string());
                }
                stats.add_up(data.len());
            }
            Some(Ok(Message::Text(_))) => {
                let _ = control.try_send((close_code::UNSUPPORTED, TEXT_REFUSED));
                return UpEnd::Text;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_))) => {
                // The browser is done sending: half-close towards the workstation, then keep
                // polling so that the close handshake completes.
                browser_closed = true;
                let _ = tcp_wr.shutdown().await;
            }
            Some(Err(error)) if is_too_big(&error) => {
                let _ = control.try_send((close_code::TOO_BIG, TOO_BIG));
                return UpEnd::TooBig;
            }
            Some(Err(error)) => {
                let _ = tcp_wr.shutdown().await;
                return if browser_closed {
                    UpEnd::BrowserClosed
                } else {
                    UpEnd::WebSocketError(error.to_string())
                };
            }
            None => {
                if !browser_closed {
                    let _ = tcp_wr.shutdown().await;
                }
                return UpEnd::BrowserClosed;
            }
        }
    }
}

async fn send_close(ws_tx: &mut SplitSink<WebSocket, Message>, code: u16, reason: &str) {
    let _ = ws_tx
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// The size of the next read from the workstation: doubles while reads fill it, halves when they use
/// less than a quarter of it, within [`MIN_READ`, `MAX_READ`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReadSize(usize);

impl ReadSize {
    fn after_read(self, filled: usize) -> ReadSize {
        if filled >= self.0 {
            ReadSize((self.0 * 2).min(MAX_READ))
        } else if filled < self.0 / 4 {
            ReadSize((self.0 / 2).max(MIN_READ))
        } else {
            self
        }
    }
}

/// Workstation → browser, and the only writer of the WebSocket.
///
/// Each read lands directly in the buffer that is sent as the message (no copy); once tungstenite has
/// framed it, the allocation is unique again and the next read reuses it.
async fn pump_down(
    ws_tx: &mut SplitSink<WebSocket, Message>,
    tcp_rd: &mut OwnedReadHalf,
    mut control: mpsc::Receiver<(u16, &'static str)>,
    stats: &PipeStats,
    shutdown: CancellationToken,
) -> DownEnd {
    let mut buf = BytesMut::new();
    let mut size = ReadSize(MIN_READ);
    let mut control_open = true;
    // Created once: polling a fresh `cancelled()` per message would lock the shared token's waiter list.
    let shutdown = shutdown.cancelled();
    let close_requested = stats.close_requested();
    tokio::pin!(shutdown, close_requested);
    loop {
        if buf.capacity() > 2 * size.0 {
            // Traffic calmed down: give the large buffer back.
            buf = BytesMut::new();
        }
        buf.reserve(size.0);
        let mut window = (&mut buf).limit(size.0);
        tokio::select! {
            biased;
            _ = &mut shutdown => {
                send_close(ws_tx, close_code::GOING_AWAY, SHUTTING_DOWN).await;
                return DownEnd::Shutdown;
            }
            (code, reason) = &mut close_requested => {
                send_close(ws_tx, code, reason).await;
                return DownEnd::Closed(code);
            }
            request = control.recv(), if control_open => match request {
                Some((code, reason)) => {
                    send_close(ws_tx, code, reason).await;
                    return DownEnd::Closed(code);
                }
                None => control_open = false,
            },
            read = tcp_rd.read_buf(&mut window) => match read {
                Ok(0) => {
                    // Everything read before has been sent: now say goodbye.
                    send_close(ws_tx, close_code::NORMAL, WORKSTATION_CLOSED).await;
                    return DownEnd::WorkstationClosed;
                }
                Ok(n) => {
                    size = size.after_read(n);
                    if ws_tx.send(Message::Binary(buf.split().freeze())).await.is_err() {
                        return DownEnd::BrowserGone;
                    }
                    stats.add_down(n);
                }
                Err(error) => {
                    send_close(ws_tx, close_code::INTERNAL, WORKSTATION_LOST).await;
                    return DownEnd::WorkstationReadFailed(error.to_string());
                }
            },
        }
    }
}

/// Pipes bytes both ways until both sides are done (or one is done and the other had [`LINGER`]).
async fn pipe(
    socket: WebSocket,
    tcp: TcpStream,
    stats: &PipeStats,
    shutdown: CancellationToken,
) -> PipeEnd {
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (mut tcp_rd, mut tcp_wr) = tcp.into_split();
    let (control_tx, control_rx) = mpsc::channel(1);
    let (up_end, down_end) = {
        let up = pump_up(&mut ws_rx, &mut tcp_wr, control_tx, stats);
        let down = pump_down(&mut ws_tx, &mut tcp_rd, control_rx, stats, shutdown);
        tokio::pin!(up);
        tokio::pin!(down);
        tokio::select! {
            up_end = &mut up => {
                let down_end = tokio::time::timeout(LINGER, &mut down).await.ok();
                (Some(up_end), down_end)
            }
            down_end = &mut down => {
                let up_end = tokio::time::timeout(LINGER, &mut up).await.ok();
                (up_end, Some(down_end))
            }
        }
    };
    if matches!(up_end, Some(UpEnd::TooBig)) {
        // Unread input remains (the oversized message): closing the socket now would reset it and
        // could discard our close frame before the browser reads it. Give it a moment.
        let started = Instant::now();
        let _ = tokio::time::timeout(Duration::from_millis(300), ws_tx.flush()).await;
        tokio::time::sleep(Duration::from_millis(300).saturating_sub(started.elapsed())).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws_tx.close()).await;
    let _ = tcp_wr.shutdown().await;
    PipeEnd(up_end, down_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_size_grows_under_load_and_shrinks_when_idle() {
        let mut size = ReadSize(MIN_READ);
        for _ in 0..10 {
            size = size.after_read(size.0);
        }
        assert_eq!(size, ReadSize(MAX_READ));
        assert_eq!(
            size.after_read(MAX_READ / 2),
            size,
            "half-full reads keep the size"
        );
        for _ in 0..10 {
            size = size.after_read(100);
        }
        assert_eq!(size, ReadSize(MIN_READ));
    }
}
