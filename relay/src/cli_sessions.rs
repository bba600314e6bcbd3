//! `relay sessions …` and `relay audit`: the admin console's live sessions (list, disconnect) and audit
//! log, for scripts.
//!
//! The CLI is a process of its own, so it sees live tunnels only through the `live_tunnels` table every
//! serving relay shares ([`homedesk_relay::tunnel_sync`]); rows not refreshed within the default sync
//! interval's staleness are a dead relay's and are ignored. A disconnect asks the owning relay to close
//! the tunnel (as the console does for another relay's tunnel) and waits until its row is gone.

use crate::cli::{print_table, utc_time};
use anyhow::{bail, Result};
use clap::Subcommand;
use homedesk_relay::audit::{self, Action, Actor};
use homedesk_relay::config::ServeConfig;
use homedesk_relay::store::{LiveTunnelRow, Store};
use homedesk_relay::tunnel_sync::{self, RemoteClose};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Everyone connected now, on every relay of this database.
    List,
    /// End a session (its ID from `sessions list`); waits until its relay closed it.
    Disconnect { id: i64 },
}

pub async fn run(store: &Store, command: SessionsCommand) -> Result<()> {
    match command {
        SessionsCommand::List => list(store).await,
        SessionsCommand::Disconnect { id } => disconnect(store, id).await,
    }
}

/// The sync interval of a relay started with the defaults: the CLI cannot know another one.
fn sync_interval() -> Duration {
    ServeConfig::new(".").tunnel_sync_interval
}

async fn list(store: &Store) -> Result<()> {
    let tunnels = store.live_tunnels(tunnel_sync::fresh_since(sync_interval())).await?;
    if tunnels.is_empty() {
        println!("Nobody is connected right now.");
        return Ok(());
    }
    let rows: Vec<[String; 8]> = tunnels
        .into_iter()
        .map(|t| {
            [
                t.id.to_string(),
                t.username,
                t.workstation,
                through(&t.kind).to_owned(),
                t.client_ip,
                utc_time(t.started_at),
                format!("{}/{}", t.bytes_up, t.bytes_down),
                t.relay_id,
            ]
        })
        .collect();
    print_table(
        ["ID", "USER", "WORKSTATION", "THROUGH", "CLIENT IP", "SINCE", "BYTES UP/DOWN", "RELAY"],
        &rows,
    );
    Ok(())
}

/// What the user connects with, as a person would say it.
fn through(kind: &str) -> &str {
    match kind {
        "websocket" => "browser",
        "native" => "RDP client",
        other => other,
    }
}

async fn disconnect(store: &Store, id: i64) -> Result<()> {
    let row = match tunnel_sync::close_remote(store, id, sync_interval(), None).await? {
        RemoteClose::Closed(row) => row,
        RemoteClose::Gone => {
            bail!("Session {id} does not exist or has already ended (see `relay sessions list`).")
        }
        RemoteClose::TimedOut(row) => bail!(
            "The relay serving session {id} ({}) did not close it within {} seconds; it may be overloaded. \
             It will close the session as soon as it can.",
            row.relay_id,
            tunnel_sync::CLOSE_WAIT.as_secs()
        ),
    };
    record_disconnect(store, &row).await;
    println!("Session {id} ({} on {}) disconnected.", row.username, row.workstation);
    Ok(())
}

/// The same entry as a disconnect in the console, with the CLI as the actor.
async fn record_disconnect(store: &Store, row: &LiveTunnelRow) {
    let detail = format!("{} of {} from {}", row.kind, row.username, row.client_ip);
    let event = audit::Event::new(Actor::Cli, None, Action::SessionDisconnected, &row.workstation);
    audit::record(store, event.detail(detail)).await;
}

/// `relay audit`: the newest entries first, as in the console's audit page.
pub async fn audit_log(store: &Store, filter: &str, limit: i64) -> Result<()> {
    let entries = audit::page(store, filter, None, limit).await?;
    let rows: Vec<[String; 6]> = entries
        .into_iter()
        .map(|e| [utc_time(e.at), e.actor, e.ip.unwrap_or_default(), e.action, e.target, e.detail])
        .collect();
    print_table(["TIME", "ACTOR", "IP", "ACTION", "TARGET", "DETAIL"], &rows);
    Ok(())
}
