//! Native RDP clients (mstsc, xfreerdp) on the portal's own port: parse the routing cookie of the
//! X.224 Connection Request, route to the user's assigned workstation, pipe TCP both ways.
//!
//! [`crate::listener`] sends here every connection whose first byte is a TPKT version (0x03). We read
//! exactly one TPKT packet (at most [`MAX_REQUEST`] bytes, within [`REQUEST_TIMEOUT`]) and take from
//! it only the routing cookie `Cookie: mstshash=USER\r\n` (MS-RDPBCGR 2.2.1.1); `DOMAIN\user`, `user@domain`
//! and mstsc's 9-character truncations are matched by [`crate::native_route`] (one user or none). The workstation is the
//! first (by name) assigned to that user in the database, as for tickets: the client never names an
//! address. The relay forwards the Connection Request bytes it read unchanged, then pipes both ways.
//! It does not terminate TLS or NLA: client and workstation negotiate end to end, so the cookie only
//! *routes*; the workstation's own authentication (NLA) decides who gets in. Knowing a user's name
//! therefore reaches that user's workstation's login, not more.
//!
//! Refused (connection closed, reason logged): a blocked client IP ([`crate::bruteforce`]), a
//! malformed or oversized request, no cookie, an unknown user, a user without a workstation, an
//! unreachable workstation. The client IP is the TCP peer (no proxy headers on raw TCP). Each tunnel
//! is registered in [`crate::pipes`] with kind `native` (so blocking its IP closes it) and logged
//! like the WebSocket tunnels (user, workstation, client IP, duration, bytes).
//!
//! Two-factor authentication: users who must pass a second factor ([`crate::twofa`]) are refused here
//! unless their client IP is whitelisted, because native RDP has no way to ask for the second factor.

use crate::http::AppState;
use crate::native_route::{self, Route};
use crate::pipes::{PipeKind, PipeStats};
use crate::store::StoreError;
use crate::tunnel;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest Connection Request accepted (real ones are well under 100 bytes plus the user name).
pub const MAX_REQUEST: usize = 1024;
/// How long a client gets to send its whole Connection Request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// TPKT header (4) + the fixed part of the X.224 Connection Request (7).
const MIN_REQUEST: usize = 11;
const COOKIE_PREFIX: &[u8] = b"Cookie: mstshash=";
/// Longest user name taken from a cookie (user names have at most 64 characters).
const MAX_COOKIE_USER: usize = 64;
/// Buffer of each pipe direction.
const READ_BUFFER: usize = 64 * 1024;
/// After one direction has finished, how long the other gets to finish.
const LINGER: Duration = Duration::from_secs(5);

/// Why a Connection Request was refused before any routing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("not a TPKT packet (version {0:#04x})")]
    NotTpkt(u8),
    #[error("TPKT length {0} is too small for an X.224 Connection Request")]
    TooShort(usize),
    #[error("TPKT length {0} exceeds the {MAX_REQUEST}-byte limit")]
    TooLong(usize),
    #[error("not an X.224 Connection Request (length indicator {li}, code {code:#04x})")]
    NotConnectionRequest { li: u8, code: u8 },
    #[error("the routing cookie is not terminated by CR LF")]
    UnterminatedCookie,
    #[error("the routing cookie's user name is empty, too long or not printable")]
    BadCookieUser,
}

/// The total length of the TPKT packet that starts with `header` (at least 4 bytes), checked
/// against [`MAX_REQUEST`].
pub fn tpkt_length(header: &[u8; 4]) -> Result<usize, RequestError> {
    if header[0] != 0x03 {
        return Err(RequestError::NotTpkt(header[0]));
    }
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if length < MIN_REQUEST {
        return Err(RequestError::TooShort(length));
    }
    if length > MAX_REQUEST {
        return Err(RequestError::TooLong(length));
    }
    Ok(length)
}

/// The user name of the routing cookie in a whole TPKT packet holding an X.224 Connection Request;
/// `Ok(None)` when the request carries no `mstshash` cookie (e.g. none, or a routing token).
pub fn cookie_user(packet: &[u8]) -> Result<Option<String>, RequestError> {
    let header: &[u8; 4] = packet
        .first_chunk()
        .ok_or(RequestError::TooShort(packet.len()))?;
    let length = tpkt_length(header)?;
    if packet.len() != length {
        return Err(RequestError::TooShort(packet.len()));
    }
    // X.224: length indicator (the rest of the packet), then CR code 0xE0 (low nibble: credit).
    let (li, code) = (packet[4], packet[5]);
    if usize::from(li) != length - 5 || code & 0xF0 != 0xE0 {
        return Err(RequestError::NotConnectionRequest { li, code });
    }
    let Some(cookie) = packet[MIN_REQUEST..].strip_prefix(COOKIE_PREFIX) else {
        return Ok(None);
    };
    let end = cookie
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(RequestError::UnterminatedCookie)?;
    let user = &cookie[..end];
    if user.is_empty()
        || user.len() > MAX_COOKIE_USER
        || !user.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
    {
        return Err(RequestError::BadCookieUser);
    }
    // Only printable ASCII passed: this is valid UTF-8.
    Ok(Some(String::from_utf8_lossy(user).into_owned()))
}

/// Reads exactly one TPKT packet (the Connection Request) from the client.
async fn read_request<R: AsyncRead + Unpin>(client: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut header = [0u8; 4];
    client.read_exact(&mut header).await?;
    let length = tpkt_length(&header)?;
    let mut packet = vec![0u8; length];
    packet[..4].copy_from_slice(&header);
    client.read_exact(&mut packet[4..]).await?;
    Ok(packet)
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Request(#[from] RequestError),
}

/// Serves one connection whose first byte was 0x03: routes it or closes it.
pub async fn handle(state: AppState, mut client: TcpStream, peer: SocketAddr) {
    let ip = peer.ip().to_canonical();
    match state.guard.ip_blocked_for(ip).await {
        Ok(None) => {}
        Ok(Some(_)) => return tracing::info!(%ip, "native RDP refused: blocked IP"),
        Err(error) => return tracing::error!(%error, "block check failed"),
    }
    let packet = tokio::select! {
        _ = state.shutdown.cancelled() => return,
        read = tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut client)) => match read {
            Ok(Ok(packet)) => packet,
            Ok(Err(error)) => return tracing::info!(%ip, %error, "native RDP refused: bad connection request"),
            Err(_) => return tracing::info!(%ip, "native RDP refused: connection request timed out"),
        },
    };
    let username = match cookie_user(&packet) {
        Ok(Some(username)) => username,
        Ok(None) => return tracing::info!(%ip, "native RDP refused: no mstshash cookie"),
        Err(error) => {
            return tracing::info!(%ip, %error, "native RDP refused: bad connection request")
        }
    };
    let user = match resolve_user(&state, &username).await {
        Ok(Route::User(name)) => match state.store.user_by_name(&name).await {
            Ok(user) => user,
            Err(StoreError::UnknownUser(_)) => {
                return tracing::info!(%ip, cookie_user = %username, "native RDP refused: unknown user")
            }
            Err(error) => return tracing::error!(%error, "user lookup failed"),
        },
        Ok(Route::Unknown) => {
            return tracing::info!(%ip, cookie_user = %username, "native RDP refused: unknown user")
        }
        Ok(Route::Ambiguous(users)) => {
            return tracing::info!(%ip, cookie_user = %username, candidates = users.len(),
                "native RDP refused: the cookie may be a truncated name of several users")
        }
        Err(error) => return tracing::error!(%error, "user lookup failed"),
    };
    // Native clients cannot be asked for a second factor: 2FA users only from whitelisted networks.
    match state.twofa.required(&user).await {
        Ok(false) => {}
        Ok(true) => match state.guard.is_whitelisted(ip).await {
            Ok(true) => {}
            Ok(false) => {
                return tracing::info!(%ip, user = %user.username, "native RDP refused: two-factor user, IP not whitelisted")
            }
            Err(error) => return tracing::error!(%error, "whitelist check failed"),
        },
        Err(error) => return tracing::error!(%error, "two-factor check failed"),
    }
    let workstation = match state.store.assigned_workstations(user.id).await {
        Ok(list) if list.is_empty() => {
            return tracing::info!(%ip, user = %user.username, "native RDP refused: no workstation assigned")
        }
        Ok(list) => match list.into_iter().find(|w| w.enabled) {
            Some(workstation) => workstation,
            None => {
                return tracing::info!(%ip, user = %user.username, "native RDP refused: workstation disabled by the administrator")
            }
        },
        Err(error) => return tracing::error!(%error, "workstation lookup failed"),
    };
    let mut target = match tunnel::dial(&workstation, state.config.connect_timeout).await {
        Ok(tcp) => tcp,
        Err(error) => {
            return tracing::info!(user = %user.username, workstation = %workstation.name, %ip, %error,
                "native RDP refused: workstation unreachable")
        }
    };
    let _ = client.set_nodelay(true);
    let guard = state
        .pipes
        .register(PipeKind::Native, &user.username, &workstation.name, ip);
    let stats = guard.stats();
    tracing::info!(user = %user.username, workstation = %workstation.name, %ip, "native tunnel opened");
    crate::audit::record_tunnel_opened(&state.store, stats).await;
    let end = match target.write_all(&packet).await {
        Ok(()) => {
            stats.add_up(packet.len());
            tokio::select! {
                end = pipe(client, target, stats) => end,
                _ = state.shutdown.cancelled() => "relay shutdown",
                _ = stats.close_requested() => "closed by the relay",
            }
        }
        Err(_) => "write to workstation failed",
    };
    crate::audit::record_tunnel_closed(&state.store, stats, end).await;
    tracing::info!(
        user = %user.username,
        workstation = %workstation.name,
        %ip,
        duration_ms = stats.duration().as_millis() as u64,
        bytes_up = stats.bytes_up(),
        bytes_down = stats.bytes_down(),
        end,
        "native tunnel closed"
    );
}

/// The user a cookie names ([`crate::native_route`]): exact lookups, or all names for a cookie that
/// mstsc may have truncated.
async fn resolve_user(state: &AppState, cookie: &str) -> Result<Route, StoreError> {
    let names = if native_route::may_be_truncated(cookie) {
        state.store.usernames().await?
    } else {
        let mut existing = Vec::new();
        for name in native_route::exact_names(cookie) {
            match state.store.user_by_name(&name).await {
                Ok(user) => existing.push(user.username),
                Err(StoreError::UnknownUser(_)) => {}
                Err(error) => return Err(error),
            }
        }
        existing
    };
    Ok(native_route::route(
        cookie,
        names.iter().map(String::as_str),
    ))
}

/// Copies until EOF or error, then half-closes the writer; `count` sees every forwarded chunk.
async fn pump<R, W>(mut from: R, mut to: W, count: impl Fn(usize)) -> bool
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; READ_BUFFER];
    let clean = loop {
        match from.read(&mut buf).await {
            Ok(0) => break true,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    break false;
                }
                count(n);
            }
            Err(_) => break false,
        }
    };
    let _ = to.shutdown().await;
    clean
}

/// Both directions until both end (or one ends and the other had [`LINGER`]).
async fn pipe(client: TcpStream, target: TcpStream, stats: &PipeStats) -> &'static str {
    let (client_rd, client_wr) = client.into_split();
    let (target_rd, target_wr) = target.into_split();
    let up = pump(client_rd, target_wr, |n| stats.add_up(n));
    let down = pump(target_rd, client_wr, |n| stats.add_down(n));
    tokio::pin!(up, down);
    tokio::select! {
        clean = &mut up => {
            let _ = tokio::time::timeout(LINGER, &mut down).await;
            if clean { "client closed" } else { "client connection lost" }
        }
        clean = &mut down => {
            let _ = tokio::time::timeout(LINGER, &mut up).await;
            if clean { "workstation closed" } else { "workstation connection lost" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Connection Request as mstsc/xfreerdp send it: cookie, then an 8-byte RDP_NEG_REQ.
    fn request(variable: &[u8]) -> Vec<u8> {
        let length = MIN_REQUEST + variable.len();
        let mut packet = vec![0x03, 0x00];
        packet.extend_from_slice(&(length as u16).to_be_bytes());
        packet.extend_from_slice(&[(length - 5) as u8, 0xE0, 0, 0, 0, 0, 0]);
        packet.extend_from_slice(variable);
        packet
    }

    fn with_neg(cookie: &[u8]) -> Vec<u8> {
        let mut variable = cookie.to_vec();
        variable.extend_from_slice(&[0x01, 0x00, 0x08, 0x00, 0x0b, 0x00, 0x00, 0x00]);
        request(&variable)
    }

    #[test]
    fn cookie_is_parsed() {
        let packet = with_neg(b"Cookie: mstshash=alice\r\n");
        assert_eq!(cookie_user(&packet), Ok(Some("alice".to_owned())));
        assert_eq!(tpkt_length(packet.first_chunk().unwrap()), Ok(packet.len()));
        let packet = request(b"Cookie: mstshash=DOMAIN\\bob smith\r\n");
        assert_eq!(
            cookie_user(&packet),
            Ok(Some("DOMAIN\\bob smith".to_owned()))
        );
    }

    #[test]
    fn no_cookie_or_routing_token_is_none() {
        assert_eq!(cookie_user(&request(b"")), Ok(None));
        assert_eq!(cookie_user(&with_neg(b"")), Ok(None));
        assert_eq!(
            cookie_user(&with_neg(b"Cookie: msts=3640205228.15629.0000\r\n")),
            Ok(None)
        );
        assert_eq!(
            cookie_user(&with_neg(b"cookie: mstshash=alice\r\n")),
            Ok(None)
        );
    }

    #[test]
    fn malformed_requests_are_refused() {
        let good = with_neg(b"Cookie: mstshash=alice\r\n");
        // Wrong TPKT version, too short, too long.
        let mut bad = good.clone();
        bad[0] = 0x16;
        assert_eq!(cookie_user(&bad), Err(RequestError::NotTpkt(0x16)));
        assert_eq!(tpkt_length(&[3, 0, 0, 4]), Err(RequestError::TooShort(4)));
        assert_eq!(
            tpkt_length(&[3, 0, 0xFF, 0xFF]),
            Err(RequestError::TooLong(65535))
        );
        assert_eq!(tpkt_length(&[3, 0, 4, 1]), Err(RequestError::TooLong(1025)));
        assert_eq!(tpkt_length(&[3, 0, 4, 0]), Ok(1024));
        // Packet shorter or longer than its TPKT length.
        assert!(cookie_user(&good[..good.len() - 1]).is_err());
        let mut longer = good.clone();
        longer.push(0);
        assert!(cookie_user(&longer).is_err());
        // Not a Connection Request (Connection Confirm code 0xD0), or a lying length indicator.
        let mut confirm = good.clone();
        confirm[5] = 0xD0;
        assert!(matches!(
            cookie_user(&confirm),
            Err(RequestError::NotConnectionRequest { .. })
        ));
        let mut li = good.clone();
        li[4] = 0xFF;
        assert!(matches!(
            cookie_user(&li),
            Err(RequestError::NotConnectionRequest { .. })
        ));
        // Cookie without CR LF, empty, control characters, non-ASCII, too long.
        assert_eq!(
            cookie_user(&request(b"Cookie: mstshash=alice")),
            Err(RequestError::UnterminatedCookie)
        );
        assert_eq!(
            cookie_user(&request(b"Cookie: mstshash=alice\n")),
            Err(RequestError::UnterminatedCookie)
        );
        assert_eq!(
            cookie_user(&request(b"Cookie: mstshash=\r\n")),
            Err(RequestError::BadCookieUser)
        );
        assert_eq!(
            cookie_user(&request(b"Cookie: mstshash=al\x00ce\r\n")),
            Err(RequestError::BadCookieUser)
        );
        assert_eq!(
            cookie_user(&request(b"Cookie: mstshash=al\x1b[2Jce\r\n")),
            Err(RequestError::BadCookieUser)
        );
        assert_eq!(
            cookie_user(&request("Cookie: mstshash=ålice\r\n".as_bytes())),
            Err(RequestError::BadCookieUser)
        );
        let long = format!("Cookie: mstshash={}\r\n", "a".repeat(65));
        assert_eq!(
            cookie_user(&request(long.as_bytes())),
            Err(RequestError::BadCookieUser)
        );
        let max = format!("Cookie: mstshash={}\r\n", "a".repeat(64));
        assert_eq!(
            cookie_user(&request(max.as_bytes())),
            Ok(Some("a".repeat(64)))
        );
        // Empty input.
        assert_eq!(cookie_user(&[]), Err(RequestError::TooShort(0)));
        assert!(cookie_user(&[3, 0, 0]).is_err());
    }

    #[test]
    fn hostile_inputs_never_panic() {
        use rand::{Rng, RngCore, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let good = with_neg(b"Cookie: mstshash=alice\r\n");
        for round in 0..20_000 {
            let mut packet = if round % 2 == 0 {
                let mut data = vec![0u8; rng.random_range(0..1100)];
                rng.fill_bytes(&mut data);
                data
            } else {
                let mut data = good.clone();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..data.len());
                    data[at] = rng.random();
                }
                data
            };
            if round % 3 == 0 && packet.len() >= 4 {
                // A consistent TPKT length so that the X.224 and cookie parsing are reached.
                let length = packet.len().min(MAX_REQUEST);
                packet.truncate(length);
                packet[0] = 3;
                packet[2..4].copy_from_slice(&(length as u16).to_be_bytes());
            }
            let _ = cookie_user(&packet);
        }
    }

    #[tokio::test]
    async fn reads_exactly_one_packet() {
        let mut data = with_neg(b"Cookie: mstshash=alice\r\n");
        let expected = data.clone();
        data.extend_from_slice(b"\x16\x03\x01 TLS follows");
        let mut reader = &data[..];
        assert_eq!(read_request(&mut reader).await.unwrap(), expected);
        assert_eq!(reader, b"\x16\x03\x01 TLS follows");
        let mut huge: &[u8] = &[3, 0, 0x10, 0];
        assert!(matches!(
            read_request(&mut huge).await,
            Err(ReadError::Request(RequestError::TooLong(4096)))
        ));
        let mut truncated: &[u8] = &expected[..20];
        assert!(matches!(
            read_request(&mut truncated).await,
            Err(ReadError::Io(_))
        ));
    }
}
