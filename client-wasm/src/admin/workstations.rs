//! Workstations: the list (address, state, who is assigned), register one, enable/disable, forget the
//! pinned certificate, remove.

use super::api;
use super::{act, input_value, PageProps};
use serde::Deserialize;
use serde_json::json;
use yew::prelude::*;

#[derive(Clone, PartialEq, Deserialize)]
struct Workstation {
    name: String,
    host: String,
    port: u16,
    certificate_sha256: Option<String>,
    enabled: bool,
    users: Vec<String>,
    groups: Vec<String>,
}

#[function_component]
pub fn Workstations(props: &PageProps) -> Html {
    let list = use_state(|| None::<Vec<Workstation>>);
    let error = use_state(|| None::<String>);
    let reload = use_state(|| 0u32);
    let (name, host, port) = (use_node_ref(), use_node_ref(), use_node_ref());
    {
        let (list, error, props) = (list.clone(), error.clone(), props.clone());
        use_effect_with(*reload, move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                match api::get::<Vec<Workstation>>("/api/admin/workstations").await {
                    Ok(items) => list.set(Some(items)),
                    Err(e) => error.set(Some(props.failed(e))),
                }
            });
        });
    }
    let onsubmit = {
        let (props, error, reload) = (props.clone(), error.clone(), reload.clone());
        let (name, host, port) = (name.clone(), host.clone(), port.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let port = match input_value(&port).trim() {
                "" => 3389,
                text => match text.parse::<u16>() {
                    Ok(port) => port,
                    Err(_) => return error.set(Some("The port must be a number from 1 to 65535.".to_owned())),
                },
            };
            let body = json!({ "name": input_value(&name), "host": input_value(&host), "port": port });
            let session = props.session.clone();
            act(&props, &error, &reload, async move {
                api::post_no_content(&session, "/api/admin/workstations", &body).await
            });
        })
    };
    let change = |action: &'static str, name: &str| {
        let (props, error, reload, name) = (props.clone(), error.clone(), reload.clone(), name.to_owned());
        Callback::from(move |_: MouseEvent| {
            let session = props.session.clone();
            let path = format!("/api/admin/workstations/{action}");
            let body = json!({ "name": name });
            act(&props, &error, &reload, async move {
                api::post_no_content(&session, &path, &body).await
            });
        })
    };
    let rows = (*list).clone().unwrap_or_default().into_iter().map(|w| {
        let toggle = if w.enabled { "disable" } else { "enable" };
        let assigned: Vec<String> =
            w.users.iter().cloned().chain(w.groups.iter().map(|g| format!("group {g}"))).collect();
        html! {
            <tr data-testid="admin-workstations-row">
                <td>{ &w.name }</td>
                <td>{ format!("{}:{}", w.host, w.port) }</td>
                <td>{ if w.enabled { "enabled" } else { "disabled" } }</td>
                <td>{ if assigned.is_empty() { "nobody".to_owned() } else { assigned.join(", ") } }</td>
                <td class="hd-admin-muted">{ w.certificate_sha256.as_deref().map_or("not pinned yet", |s| &s[..s.len().min(16)]) }</td>
                <td class="hd-admin-actions">
                    <button type="button" class="hd-secondary" onclick={change(toggle, &w.name)}
                            aria-label={format!("{toggle} {}", w.name)}>{ capitalized(toggle) }</button>
                    <button type="button" class="hd-secondary" onclick={change("repin", &w.name)}
                            aria-label={format!("forget the pinned certificate of {}", w.name)}>{ "Re-pin" }</button>
                    <button type="button" class="hd-danger" onclick={change("remove", &w.name)}
                            aria-label={format!("remove {}", w.name)}>{ "Remove" }</button>
                </td>
            </tr>
        }
    });
    html! {
        <>
            <form class="hd-admin-form" {onsubmit} aria-label="Add a workstation" novalidate=true>
                <label>{ "Name" }<input ref={name} type="text" data-testid="admin-workstations-name" /></label>
                <label>{ "Host (DNS name or IP)" }<input ref={host} type="text" data-testid="admin-workstations-host" /></label>
                <label>{ "Port" }<input ref={port} type="text" inputmode="numeric" placeholder="3389" data-testid="admin-workstations-port" /></label>
                <button type="submit" data-testid="admin-workstations-add">{ "Add workstation" }</button>
            </form>
            if let Some(message) = (*error).clone() {
                <div class="hd-error" role="alert" data-testid="admin-workstations-error">{ message }</div>
            }
            <table data-testid="admin-workstations-table">
                <thead><tr><th>{ "Name" }</th><th>{ "Address" }</th><th>{ "State" }</th><th>{ "Assigned to" }</th>
                    <th>{ "Certificate" }</th><th>{ "Actions" }</th></tr></thead>
                <tbody>{ for rows }</tbody>
            </table>
        </>
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
