//! The "Web server" page (TSplus "Web Server Management"): every serving relay's listeners (HTTPS and
//! HTTP: address, listening or stopped, the last refusal), the ports / bind address / web root, and
//! Restart, Stop, Start. Everything goes through `/api/admin/server…` (relay/src/server_api.rs), the
//! same jobs as `relay server`: a refused port changes nothing and its sentence is shown here.

use super::{api, input_value, local_time, set_error, set_some, use_load, PageProps};
use serde::Deserialize;
use serde_json::{Map, Value};
use yew::prelude::*;

const PATH: &str = "/api/admin/server";

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Status {
    settings: Settings,
    listeners: Vec<Listener>,
    /// The outcome of a change (absent on a plain GET).
    message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Settings {
    https_port: u16,
    http_port: u16,
    bind: String,
    web_root: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Listener {
    relay: String,
    name: String,
    address: String,
    state: String,
    error: Option<String>,
    seen_at: f64,
}

/// The console's own address with another port (where it answers after an HTTPS port change).
fn console_url_on(port: u16) -> Option<String> {
    let location = gloo::utils::window().location();
    let host = location.hostname().ok()?;
    Some(format!("https://{host}:{port}/admin/server"))
}

/// The HTTPS port this page was loaded from (443 when the URL names none).
fn own_port() -> u16 {
    let port = gloo::utils::window().location().port().unwrap_or_default();
    port.parse().unwrap_or(443)
}

#[function_component]
pub fn ServerPage(props: &PageProps) -> Html {
    let status = use_state(|| None::<Status>);
    let notice = use_state(|| None::<(String, bool)>);
    let busy = use_state(|| false);
    let confirm_stop = use_state(|| false);
    let moved_to = use_state(|| None::<String>);
    let (https_port, http_port, bind, web_root) = (use_node_ref(), use_node_ref(), use_node_ref(), use_node_ref());
    use_load(PATH, props, set_some(&status), set_error(&notice));
    // Sends one change and shows the relay's answer (the new status and its sentence) or refusal.
    let send = {
        let (status, notice, busy, moved_to, props) =
            (status.clone(), notice.clone(), busy.clone(), moved_to.clone(), props.clone());
        Callback::from(move |(path, body): (&'static str, Map<String, Value>)| {
            let (status, notice, busy, moved_to, props) =
                (status.clone(), notice.clone(), busy.clone(), moved_to.clone(), props.clone());
            busy.set(true);
            notice.set(Some(("Waiting for the serving relay…".to_owned(), false)));
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<_, Status>(&props.session, path, &body).await {
                    Ok(next) => {
                        // The answer came on the old connection; the next request needs the new port.
                        let asked = body.get("https_port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok());
                        moved_to.set(asked.filter(|port| *port != own_port()).and_then(console_url_on));
                        notice.set(Some((next.message.clone().unwrap_or_else(|| "Done.".to_owned()), false)));
                        status.set(Some(next));
                    }
                    Err(error) => notice.set(Some((props.failed(error), true))),
                }
                busy.set(false);
            });
        })
    };
    let notice_view = match &*notice {
        Some((text, is_error)) => html! {
            <p class={if *is_error { "hd-error" } else { "hd-error hd-info" }} role={if *is_error { "alert" } else { "status" }}
               data-testid="admin-server-notice">{ text }</p>
        },
        None => html! {},
    };
    let Some(current) = (*status).clone() else {
        return html! { <>{ notice_view }<p class="hd-admin-muted">{ "Loading…" }</p></> };
    };
    let onsubmit = {
        let (send, notice, settings) = (send.clone(), notice.clone(), current.settings.clone());
        let (https_port, http_port, bind, web_root) = (https_port.clone(), http_port.clone(), bind.clone(), web_root.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let mut body = Map::new();
            for (node, name, now) in [(&https_port, "https_port", settings.https_port), (&http_port, "http_port", settings.http_port)] {
                let text = input_value(node);
                match text.trim().parse::<u16>() {
                    Ok(port) if port != 0 => {
                        if port != now {
                            body.insert(name.to_owned(), Value::from(port));
                        }
                    }
                    _ => return notice.set(Some((format!("\"{}\" is no port: use a number from 1 to 65535.", text.trim()), true))),
                }
            }
            let bind_text = input_value(&bind).trim().to_owned();
            if bind_text != settings.bind {
                body.insert("bind".to_owned(), Value::from(bind_text));
            }
            let root = input_value(&web_root).trim().to_owned();
            if root != settings.web_root.clone().unwrap_or_default() {
                body.insert("web_root".to_owned(), Value::from(root));
            }
            if body.is_empty() {
                return notice.set(Some(("Nothing changed.".to_owned(), false)));
            }
            send.emit(("/api/admin/server/settings", body));
        })
    };
    let action = |path: &'static str| send.reform(move |_: MouseEvent| (path, Map::new()));
    let ask_stop = {
        let confirm_stop = confirm_stop.clone();
        Callback::from(move |_: MouseEvent| confirm_stop.set(true))
    };
    let stop = {
        let (send, confirm_stop) = (send.clone(), confirm_stop.clone());
        Callback::from(move |_: MouseEvent| {
            confirm_stop.set(false);
            send.emit(("/api/admin/server/stop", Map::new()));
        })
    };
    let cancel_stop = {
        let confirm_stop = confirm_stop.clone();
        Callback::from(move |_: MouseEvent| confirm_stop.set(false))
    };
    let reload = {
        let (status, notice, props) = (status.clone(), notice.clone(), props.clone());
        Callback::from(move |_: MouseEvent| {
            let (status, notice, props) = (status.clone(), notice.clone(), props.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::get::<Status>(PATH).await {
                    Ok(loaded) => status.set(Some(loaded)),
                    Err(error) => notice.set(Some((props.failed(error), true))),
                }
            });
        })
    };
    let busy_now = *busy;
    let settings = &current.settings;
    html! {
        <>
            { notice_view }
            if let Some(url) = (*moved_to).clone() {
                <p class="hd-error hd-info" role="status">
                    { "The portal and this console now answer on the new HTTPS port: " }
                    <a href={url.clone()} data-testid="admin-server-moved-link">{ url }</a>
                </p>
            }
            <h2>{ "Listeners" }</h2>
            { listeners_view(&current.listeners) }
            <div class="hd-admin-actions">
                <button type="button" class="hd-secondary" onclick={reload} data-testid="admin-server-refresh">{ "Refresh" }</button>
                <button type="button" class="hd-secondary" disabled={busy_now} onclick={action("/api/admin/server/restart")}
                        data-testid="admin-server-restart">{ "Restart" }</button>
                <button type="button" class="hd-secondary" disabled={busy_now} onclick={action("/api/admin/server/start")}
                        data-testid="admin-server-start">{ "Start" }</button>
                <button type="button" class="hd-danger" disabled={busy_now} onclick={ask_stop}
                        data-testid="admin-server-stop">{ "Stop" }</button>
            </div>
            if *confirm_stop {
                <div class="hd-error" role="alert" data-testid="admin-server-stop-warning">
                    <p>{ "Stopping closes the HTTPS and HTTP ports: nobody can sign in to the portal, and this console stops answering too (it uses the same port). Open sessions keep running. To start again, run " }
                       <code>{ "relay server start" }</code>{ " on the relay's machine." }</p>
                    <button type="button" class="hd-danger" onclick={stop} data-testid="admin-server-stop-confirm">{ "Stop the web server" }</button>
                    { " " }
                    <button type="button" class="hd-secondary" onclick={cancel_stop}>{ "Cancel" }</button>
                </div>
            }
            <h2>{ "Settings" }</h2>
            <p class="hd-admin-muted">
                { "A new port is opened before the old one closes: a port in use changes nothing. This console moves with the HTTPS port and bind address; open sessions are kept. Settings given as flags of " }
                <code>{ "relay serve" }</code>{ " win over these at the next start." }
            </p>
            <form class="hd-admin-form" {onsubmit} aria-label="Web server settings" novalidate=true>
                <label>{ "HTTPS port" }<input ref={https_port} type="text" inputmode="numeric" value={settings.https_port.to_string()} data-testid="admin-server-https-port" /></label>
                <label>{ "HTTP port (redirects to HTTPS, certificate checks)" }<input ref={http_port} type="text" inputmode="numeric" value={settings.http_port.to_string()} data-testid="admin-server-http-port" /></label>
                <label>{ "Bind address" }<input ref={bind} type="text" value={settings.bind.clone()} data-testid="admin-server-bind" /></label>
                <label>{ "Web root (absolute path, empty: built-in)" }<input ref={web_root} type="text" value={settings.web_root.clone().unwrap_or_default()} data-testid="admin-server-web-root" /></label>
                <button type="submit" disabled={busy_now} data-testid="admin-server-save">{ "Apply" }</button>
            </form>
        </>
    }
}

fn listeners_view(listeners: &[Listener]) -> Html {
    if listeners.is_empty() {
        return html! { <p class="hd-admin-muted" data-testid="admin-server-none">{ "No relay serves with this database right now." }</p> };
    }
    let rows = listeners.iter().map(|l| {
        let label = match l.name.as_str() {
            "https" => "HTTPS",
            "http" => "HTTP",
            other => other,
        };
        html! {
            <tr data-testid="admin-server-listener">
                <td>{ &l.relay }</td>
                <td>{ label }</td>
                <td>{ &l.address }</td>
                <td>{ &l.state }</td>
                <td class={if l.error.is_some() { "hd-admin-warn" } else { "" }}>{ l.error.clone().unwrap_or_else(|| "–".to_owned()) }</td>
                <td class="hd-admin-muted">{ local_time(l.seen_at) }</td>
            </tr>
        }
    });
    html! {
        <table data-testid="admin-server-listeners">
            <thead><tr><th>{ "Relay" }</th><th>{ "Port" }</th><th>{ "Address" }</th><th>{ "State" }</th>
                <th>{ "Last error" }</th><th>{ "Seen" }</th></tr></thead>
            <tbody>{ for rows }</tbody>
        </table>
    }
}
