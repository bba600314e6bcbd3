//! Live sessions: who is connected to which workstation, from where, since when, how many bytes;
//! refreshed every few seconds; Disconnect closes the tunnel. With several relays on one database the
//! list holds all their tunnels, with a Relay column naming which one pipes each.

use super::api;
use super::{act, local_time, PageProps};
use serde::Deserialize;
use yew::prelude::*;

/// How often the list is asked for again.
const REFRESH_MS: u32 = 3_000;

#[derive(Clone, PartialEq, Deserialize)]
struct LiveSession {
    id: u64,
    user: String,
    workstation: String,
    kind: String,
    client_ip: String,
    since: f64,
    bytes_up: u64,
    bytes_down: u64,
    relay: String,
}

#[function_component]
pub fn Sessions(props: &PageProps) -> Html {
    let list = use_state(|| None::<Vec<LiveSession>>);
    let error = use_state(|| None::<String>);
    let reload = use_state(|| 0u32);
    {
        let (list, error, props) = (list.clone(), error.clone(), props.clone());
        use_effect_with(*reload, move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                match api::get::<Vec<LiveSession>>("/api/admin/sessions").await {
                    Ok(items) => list.set(Some(items)),
                    Err(e) => error.set(Some(props.failed(e))),
                }
            });
        });
    }
    {
        let reload = reload.clone();
        use_effect_with((), move |_| {
            let timer = gloo::timers::callback::Interval::new(REFRESH_MS, move || reload.set(reload.wrapping_add(1)));
            move || drop(timer)
        });
    }
    let disconnect = |session: &LiveSession| {
        let (props, error, reload, id) = (props.clone(), error.clone(), reload.clone(), session.id);
        Callback::from(move |_: MouseEvent| {
            let session = props.session.clone();
            let path = format!("/api/admin/sessions/{id}/disconnect");
            act(&props, &error, &reload, async move {
                api::post_no_content(&session, &path, &()).await
            });
        })
    };
    let sessions = (*list).clone().unwrap_or_default();
    let several_relays = sessions.iter().any(|s| s.relay != sessions[0].relay);
    let rows = sessions.iter().map(|s| {
        html! {
            <tr data-testid="admin-sessions-row">
                <td>{ &s.user }</td>
                <td>{ &s.workstation }</td>
                <td>{ if s.kind == "native" { "RDP client" } else { "browser" } }</td>
                <td>{ &s.client_ip }</td>
                <td>{ local_time(s.since) }</td>
                <td>{ format!("{} ↑ / {} ↓", bytes(s.bytes_up), bytes(s.bytes_down)) }</td>
                if several_relays { <td>{ &s.relay }</td> }
                <td><button type="button" class="hd-danger" onclick={disconnect(s)} data-testid="admin-sessions-disconnect"
                            aria-label={format!("disconnect {} from {}", s.user, s.workstation)}>{ "Disconnect" }</button></td>
            </tr>
        }
    });
    html! {
        <>
            if let Some(message) = (*error).clone() {
                <div class="hd-error" role="alert" data-testid="admin-sessions-error">{ message }</div>
            }
            if list.is_some() && sessions.is_empty() {
                <p data-testid="admin-sessions-none">{ "Nobody is connected right now." }</p>
            } else {
                <table data-testid="admin-sessions-table">
                    <thead><tr><th>{ "User" }</th><th>{ "Workstation" }</th><th>{ "Through" }</th><th>{ "Client IP" }</th>
                        <th>{ "Since" }</th><th>{ "Traffic" }</th>
                        if several_relays { <th>{ "Relay" }</th> }
                        <th>{ "Actions" }</th></tr></thead>
                    <tbody>{ for rows }</tbody>
                </table>
            }
        </>
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..=9_999 => format!("{n} B"),
        10_000..=9_999_999 => format!("{} KB", n / 1_000),
        _ => format!("{} MB", n / 1_000_000),
    }
}
