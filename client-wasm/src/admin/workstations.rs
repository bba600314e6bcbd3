//! Workstations: the list (address, state, who is assigned), register one, edit one (name, address,
//! domain, notes), enable/disable, pin a known certificate fingerprint (as read on the PC, e.g. by the
//! onboarding script) or forget the pinned one, remove.

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
    domain: Option<String>,
    notes: Option<String>,
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
    let editing = use_state(|| None::<Workstation>);
    let notice = use_state(|| None::<String>);
    let (name, host, port) = (use_node_ref(), use_node_ref(), use_node_ref());
    let pinning = use_state(|| None::<String>);
    let fingerprint = use_node_ref();
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
    let on_edit_done = {
        let (editing, notice, reload) = (editing.clone(), notice.clone(), reload.clone());
        Callback::from(move |outcome: Option<String>| {
            editing.set(None);
            if let Some(message) = outcome {
                notice.set(Some(message));
                reload.set(reload.wrapping_add(1));
            }
        })
    };
    let on_pin = {
        let (props, error, notice, reload, pinning) =
            (props.clone(), error.clone(), notice.clone(), reload.clone(), pinning.clone());
        let fingerprint = fingerprint.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let Some(name) = (*pinning).clone() else { return };
            let body = json!({ "name": name, "fingerprint": input_value(&fingerprint).trim() });
            let (props, error, notice, reload, pinning) =
                (props.clone(), error.clone(), notice.clone(), reload.clone(), pinning.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post_no_content(&props.session, "/api/admin/workstations/pin", &body).await {
                    Ok(()) => {
                        pinning.set(None);
                        error.set(None);
                        notice.set(Some(format!(
                            "The certificate of {name} is pinned: a connection that meets another certificate is refused."
                        )));
                        reload.set(reload.wrapping_add(1));
                    }
                    // The form stays open with what was typed, to be corrected.
                    Err(e) => error.set(Some(props.failed(e))),
                }
            });
        })
    };
    let pin_form = (*pinning).clone().map(|target| {
        let cancel = {
            let pinning = pinning.clone();
            Callback::from(move |_: MouseEvent| pinning.set(None))
        };
        html! {
            <form class="hd-admin-form" onsubmit={on_pin} aria-label={format!("Pin the certificate of {target}")}
                  novalidate=true data-testid="admin-workstations-pin-form">
                <label>{ format!("SHA-256 of the certificate of {target} (hex; colons allowed)") }
                    <input ref={fingerprint} type="text" autocomplete="off" spellcheck="false"
                           data-testid="admin-workstations-pin-input" /></label>
                <button type="submit" data-testid="admin-workstations-pin-save">{ "Pin" }</button>
                <button type="button" class="hd-secondary" onclick={cancel}>{ "Cancel" }</button>
            </form>
        }
    });
    let rows = (*list).clone().unwrap_or_default().into_iter().map(|w| {
        let edit = {
            let (editing, notice, w) = (editing.clone(), notice.clone(), w.clone());
            Callback::from(move |_: MouseEvent| {
                notice.set(None);
                editing.set(Some(w.clone()));
            })
        };
        let pin = {
            let (pinning, notice, name) = (pinning.clone(), notice.clone(), w.name.clone());
            Callback::from(move |_: MouseEvent| {
                notice.set(None);
                pinning.set(Some(name.clone()));
            })
        };
        let toggle = if w.enabled { "disable" } else { "enable" };
        let assigned: Vec<String> =
            w.users.iter().cloned().chain(w.groups.iter().map(|g| format!("group {g}"))).collect();
        html! {
            <tr data-testid="admin-workstations-row">
                <td>{ &w.name }
                    if let Some(notes) = &w.notes { <div class="hd-admin-muted">{ notes }</div> }</td>
                <td>{ format!("{}:{}", w.host, w.port) }
                    if let Some(domain) = &w.domain { <div class="hd-admin-muted">{ format!("domain {domain}") }</div> }</td>
                <td>{ if w.enabled { "enabled" } else { "disabled" } }</td>
                <td>{ if assigned.is_empty() { "nobody".to_owned() } else { assigned.join(", ") } }</td>
                <td class="hd-admin-muted">{ w.certificate_sha256.as_deref().map_or("not pinned yet", |s| &s[..s.len().min(16)]) }</td>
                <td class="hd-admin-actions">
                    <button type="button" class="hd-secondary" onclick={edit} data-testid="admin-workstations-edit"
                            aria-label={format!("edit {}", w.name)}>{ "Edit" }</button>
                    <button type="button" class="hd-secondary" onclick={change(toggle, &w.name)}
                            aria-label={format!("{toggle} {}", w.name)}>{ capitalized(toggle) }</button>
                    <button type="button" class="hd-secondary" onclick={pin} data-testid="admin-workstations-pin"
                            aria-label={format!("pin a known certificate of {}", w.name)}>{ "Pin…" }</button>
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
            { pin_form.unwrap_or_default() }
            if let Some(message) = (*notice).clone() {
                <div class="hd-error hd-info" role="status" data-testid="admin-workstations-notice">{ message }</div>
            }
            if let Some((key, workstation)) = (*editing).clone().map(|w| (w.name.clone(), w)) {
                <EditWorkstation key={key} {workstation} page={props.clone()} on_done={on_edit_done} />
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

#[derive(Properties, PartialEq)]
struct EditProps {
    workstation: Workstation,
    page: PageProps,
    /// `Some(what happened)` after a save, `None` when cancelled.
    on_done: Callback<Option<String>>,
}

/// The edit form of one workstation; the relay validates (its sentence is shown here) and forgets the
/// pinned certificate when the address changes.
#[function_component]
fn EditWorkstation(props: &EditProps) -> Html {
    let error = use_state(|| None::<String>);
    let refs = (use_node_ref(), use_node_ref(), use_node_ref(), use_node_ref(), use_node_ref());
    let w = &props.workstation;
    let onsubmit = {
        let (props, error, refs) = (props.clone_parts(), error.clone(), refs.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let (old, page, on_done) = props.clone();
            let (name, host, port, domain, notes) = &refs;
            let port_text = input_value(port);
            let Ok(port) = port_text.trim().parse::<u16>() else {
                return error.set(Some(format!("\"{}\" is no port: use a number from 1 to 65535.", port_text.trim())));
            };
            let (new_name, new_host) = (input_value(name).trim().to_owned(), input_value(host).trim().to_owned());
            let moved = !new_host.eq_ignore_ascii_case(&old.host) || port != old.port;
            let body = json!({
                "name": old.name,
                "new_name": new_name,
                "host": new_host,
                "port": port,
                "domain": input_value(domain),
                "notes": input_value(notes),
            });
            let error = error.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match api::post_no_content(&page.session, "/api/admin/workstations/edit", &body).await {
                    Ok(()) => {
                        let mut message = format!("Saved {new_name} ({new_host}:{port}).");
                        if moved && old.certificate_sha256.is_some() {
                            message.push_str(
                                " The address changed, so the pinned certificate was forgotten: \
                                 the next connection pins the certificate found there.",
                            );
                        }
                        on_done.emit(Some(message));
                    }
                    Err(e) => error.set(Some(page.failed(e))),
                }
            });
        })
    };
    let cancel = props.on_done.reform(|_: MouseEvent| None);
    let (name, host, port, domain, notes) = refs;
    html! {
        <form class="hd-admin-form hd-admin-edit" {onsubmit} aria-label={format!("Edit {}", w.name)} novalidate=true
              data-testid="admin-workstations-edit-form">
            <label>{ "Name" }<input ref={name} type="text" value={w.name.clone()} data-testid="admin-workstations-edit-name" /></label>
            <label>{ "Host (DNS name or IP)" }<input ref={host} type="text" value={w.host.clone()} data-testid="admin-workstations-edit-host" /></label>
            <label>{ "Port" }<input ref={port} type="text" inputmode="numeric" value={w.port.to_string()} data-testid="admin-workstations-edit-port" /></label>
            <label>{ "Domain (for the RDP logon)" }<input ref={domain} type="text" value={w.domain.clone().unwrap_or_default()} data-testid="admin-workstations-edit-domain" /></label>
            <label>{ "Notes" }<input ref={notes} type="text" value={w.notes.clone().unwrap_or_default()} data-testid="admin-workstations-edit-notes" /></label>
            <button type="submit" data-testid="admin-workstations-edit-save">{ "Save" }</button>
            <button type="button" class="hd-secondary" onclick={cancel}>{ "Cancel" }</button>
            if let Some(message) = (*error).clone() {
                <div class="hd-error" role="alert" data-testid="admin-workstations-edit-error">{ message }</div>
            }
        </form>
    }
}

impl EditProps {
    fn clone_parts(&self) -> (Workstation, PageProps, Callback<Option<String>>) {
        (self.workstation.clone(), self.page.clone(), self.on_done.clone())
    }
}
