//! The relay's two listening sockets (HTTPS and plain HTTP) as something an administrator can move,
//! restart and stop while desktop sessions keep running.
//!
//! Why a manager: a port change must never leave the relay deaf nor cut a session. So a change binds
//! every new socket first; if one bind fails (port in use, permission) nothing is switched, the old
//! listeners keep serving and the caller gets a clear error. Only then do the old accept loops stop.
//! Connections they accepted (WebSocket tunnels, native RDP pipes, HTTP requests) are tied to the
//! relay's shutdown, not to their listener, so they run on. A restart hands each unchanged socket to
//! a fresh accept loop (the socket is never closed, so no connection is refused meanwhile).
//!
//! Also holds the web root, which an administrator may change on a running relay.

use crate::listener::{self, Services};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which of the two listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerName {
    Https,
    Http,
}

impl ListenerName {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerName::Https => "https",
            ListenerName::Http => "http",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ListenerError {
    #[error(
        "cannot listen on {addr} ({name}): the port is already in use by another program; \
         the relay keeps serving on its current ports"
    )]
    InUse {
        name: &'static str,
        addr: SocketAddr,
    },
    #[error(
        "cannot listen on {addr} ({name}): permission denied (ports below 1024 need root or the \
         CAP_NET_BIND_SERVICE capability); the relay keeps serving on its current ports"
    )]
    Permission {
        name: &'static str,
        addr: SocketAddr,
    },
    #[error(
        "cannot listen on {addr} ({name}): the address is not one of this machine's; the relay keeps \
         serving on its current ports"
    )]
    NotLocal {
        name: &'static str,
        addr: SocketAddr,
    },
    #[error(
        "cannot listen on {addr} ({name}): {message}; the relay keeps serving on its current ports"
    )]
    Other {
        name: &'static str,
        addr: SocketAddr,
        message: String,
    },
    #[error("the HTTPS and HTTP ports must differ (both are {0})")]
    SamePort(u16),
}

impl ListenerError {
    fn bind(name: ListenerName, addr: SocketAddr, error: &std::io::Error) -> Self {
        let name = name.as_str();
        match error.kind() {
            std::io::ErrorKind::AddrInUse => ListenerError::InUse { name, addr },
            std::io::ErrorKind::PermissionDenied => ListenerError::Permission { name, addr },
            std::io::ErrorKind::AddrNotAvailable => ListenerError::NotLocal { name, addr },
            _ => ListenerError::Other {
                name,
                addr,
                message: error.to_string(),
            },
        }
    }
}

/// Where both listeners should be (port 0: any free port, for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub https: SocketAddr,
    pub http: SocketAddr,
}

/// One listener as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStatus {
    pub name: ListenerName,
    /// The bound address while listening, else the wanted one.
    pub address: SocketAddr,
    pub listening: bool,
    /// Why the last change of this listener was refused (cleared by the next success).
    pub error: Option<String>,
}

/// The web root served at `/`, changeable while serving (`None`: the "client not built" page).
#[derive(Debug, Clone, Default)]
pub struct WebRoot(Arc<RwLock<Option<PathBuf>>>);

impl WebRoot {
    pub fn new(root: Option<PathBuf>) -> Self {
        WebRoot(Arc::new(RwLock::new(root)))
    }
    pub fn get(&self) -> Option<PathBuf> {
        match self.0.read() {
            Ok(root) => root.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
    pub fn set(&self, root: Option<PathBuf>) {
        match self.0.write() {
            Ok(mut current) => *current = root,
            Err(poisoned) => *poisoned.into_inner() = root,
        }
    }
}

struct Running {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<TcpListener>,
}

struct Slot {
    name: ListenerName,
    wanted: SocketAddr,
    running: Option<Running>,
    error: Option<String>,
}

impl Slot {
    /// True if the running socket already is what `wanted` asks for.
    fn serves(&self, wanted: SocketAddr) -> bool {
        self.running.as_ref().is_some_and(|running| {
            running.addr == wanted || (wanted.port() == 0 && running.addr.ip() == wanted.ip())
        })
    }

    async fn stop(&mut self) -> Option<TcpListener> {
        let running = self.running.take()?;
        running.stop.cancel();
        running.task.await.ok()
    }
}

/// Both listeners of a serving relay.
pub struct Listeners {
    services: Services,
    slots: Mutex<[Slot; 2]>,
}

impl Listeners {
    /// Binds both addresses and starts accepting.
    pub async fn start(
        services: Services,
        addresses: Addresses,
    ) -> Result<Arc<Self>, ListenerError> {
        let listeners = Arc::new(Listeners {
            services,
            slots: Mutex::new([
                Slot {
                    name: ListenerName::Https,
                    wanted: addresses.https,
                    running: None,
                    error: None,
                },
                Slot {
                    name: ListenerName::Http,
                    wanted: addresses.http,
                    running: None,
                    error: None,
                },
            ]),
        });
        listeners.change(addresses, false).await?;
        Ok(listeners)
    }

    /// Moves listeners whose address changed (bind first; nothing changes if a bind fails). Returns
    /// the bound addresses.
    pub async fn apply(&self, addresses: Addresses) -> Result<Addresses, ListenerError> {
        self.change(addresses, false).await
    }

    /// Like [`Listeners::apply`], and every listener that stays where it is gets a fresh accept loop on
    /// the same socket; stopped listeners listen again. Open connections are not touched.
    pub async fn restart(&self, addresses: Addresses) -> Result<Addresses, ListenerError> {
        self.change(addresses, true).await
    }

    /// Stops accepting on both ports; open connections and pipes run on.
    pub async fn stop(&self) {
        let mut slots = self.slots.lock().await;
        for slot in slots.iter_mut() {
            slot.stop().await;
        }
    }

    pub async fn status(&self) -> Vec<ListenerStatus> {
        let slots = self.slots.lock().await;
        slots
            .iter()
            .map(|slot| ListenerStatus {
                name: slot.name,
                address: slot.running.as_ref().map_or(slot.wanted, |r| r.addr),
                listening: slot.running.is_some(),
                error: slot.error.clone(),
            })
            .collect()
    }

    async fn change(
        &self,
        addresses: Addresses,
        handover: bool,
    ) -> Result<Addresses, ListenerError> {
        if addresses.https.port() != 0 && addresses.https.port() == addresses.http.port() {
            return Err(ListenerError::SamePort(addresses.https.port()));
        }
        let wanted = [addresses.https, addresses.http];
        let mut slots = self.slots.lock().await;
        // Phase 1: bind every new socket. On failure the fresh ones are dropped (closed) here.
        let mut fresh: [Option<TcpListener>; 2] = [None, None];
        for (index, slot) in slots.iter_mut().enumerate() {
            if slot.serves(wanted[index]) {
                continue;
            }
            match TcpListener::bind(wanted[index]).await {
                Ok(listener) => fresh[index] = Some(listener),
                Err(error) => {
                    let error = ListenerError::bind(slot.name, wanted[index], &error);
                    slot.error = Some(error.to_string());
                    return Err(error);
                }
            }
        }
        // Phase 2: switch. The old accept loop stops only once the new one runs.
        for (index, slot) in slots.iter_mut().enumerate() {
            let listener = match fresh[index].take() {
                Some(listener) => {
                    let old = slot.stop();
                    let started = self.spawn(listener);
                    drop(old.await);
                    started
                }
                None if handover => match slot.stop().await {
                    Some(listener) => self.spawn(listener),
                    None => continue,
                },
                None => {
                    slot.error = None;
                    continue;
                }
            };
            match listener {
                Ok(running) => {
                    tracing::info!(listener = slot.name.as_str(), addr = %running.addr, "listening");
                    slot.running = Some(running);
                    slot.wanted = wanted[index];
                    slot.error = None;
                }
                Err(error) => {
                    let error = ListenerError::bind(slot.name, wanted[index], &error);
                    slot.error = Some(error.to_string());
                    return Err(error);
                }
            }
        }
        let bound = |slot: &Slot| slot.running.as_ref().map_or(slot.wanted, |r| r.addr);
        let https = bound(&slots[0]);
        self.services
            .https_port
            .store(https.port(), Ordering::Relaxed);
        Ok(Addresses {
            https,
            http: bound(&slots[1]),
        })
    }

    fn spawn(&self, listener: TcpListener) -> std::io::Result<Running> {
        let addr = listener.local_addr()?;
        let stop = self.services.state.shutdown.child_token();
        let task = self.services.state.tasks.spawn(listener::serve(
            listener,
            self.services.clone(),
            stop.clone(),
        ));
        Ok(Running { addr, stop, task })
    }
}
