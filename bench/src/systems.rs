//! The systems under test, each reachable as a [`Link`] to either workstation.

use crate::link::Link;
use crate::peers::Peer;
use crate::relay::Relay;
use crate::workstation::{Kind, Workstations};
use anyhow::Result;
use rustls::ClientConfig;
use std::sync::Arc;

pub enum System<'a> {
    /// Straight to the workstation over TCP: the limit.
    Direct(Workstations),
    /// The relay: login, ticket, WebSocket over TLS, TCP to the workstation.
    Homedesk(&'a Relay),
    /// websockify: WebSocket over TLS, TCP to the workstation.
    Websockify(&'a Peer, Arc<ClientConfig>),
    /// socat: TCP to TCP.
    Socat(&'a Peer),
}

impl System<'_> {
    pub fn name(&self) -> String {
        match self {
            System::Direct(_) => "direct TCP".into(),
            System::Homedesk(_) => "homedesk".into(),
            System::Websockify(peer, _) => format!("websockify {}", peer.version),
            System::Socat(peer) => format!("socat {}", peer.version),
        }
    }

    pub async fn connect(&self, kind: Kind) -> Result<Link> {
        match self {
            System::Direct(targets) => Link::tcp(if kind == Kind::Source { targets.source } else { targets.echo }).await,
            System::Homedesk(relay) => relay.tunnel(kind).await,
            System::Websockify(peer, tls) => Link::wss(peer.addr(kind), "/", None, tls).await,
            System::Socat(peer) => Link::tcp(peer.addr(kind)).await,
        }
    }
}
