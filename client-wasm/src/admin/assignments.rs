//! Assignments: which user or directory group may reach which workstation (add and remove).

use super::api;
use super::{act, input_value, PageProps};
use serde::Deserialize;
use serde_json::json;
use yew::prelude::*;

#[derive(Clone, PartialEq, Deserialize)]
struct Workstation {
    name: String,
    users: Vec<String>,
    groups: Vec<String>,
}

#[function_component]
pub fn Assignments(props: &PageProps) -> Html {
    let list = use_state(|| None::<Vec<Workstation>>);
    let error = use_state(|| None::<String>);
    let reload = use_state(|| 0u32);
    let (who, kind, workstation) = (use_node_ref(), use_node_ref(), use_node_ref());
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
        let (who, kind, workstation) = (who.clone(), kind.clone(), workstation.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let key = if select_value(&kind) == "group" {
                "group"
            } else {
                "user"
            };
            let body = json!({ key: input_value(&who), "workstation": select_value(&workstation) });
            let session = props.session.clone();
            act(&props, &error, &reload, async move {
                api::post_no_content(&session, "/api/admin/assignments", &body).await
            });
        })
    };
    let remove = |key: &'static str, who: &str, workstation: &str| {
        let (props, error, reload) = (props.clone(), error.clone(), reload.clone());
        let body = json!({ key: who, "workstation": workstation });
        Callback::from(move |_: MouseEvent| {
            let (session, body) = (props.session.clone(), body.clone());
            act(&props, &error, &reload, async move {
                api::post_no_content(&session, "/api/admin/assignments/remove", &body).await
            });
        })
    };
    let workstations = (*list).clone().unwrap_or_default();
    // `selected` on the first option: yew inserts a list's children last to first, and a browser
    // selects the first option *inserted*, so without it the last one would be the default.
    let options = workstations
        .iter()
        .enumerate()
        .map(|(i, w)| html! { <option value={w.name.clone()} selected={i == 0}>{ &w.name }</option> });
    let rows =
        workstations.iter().flat_map(|w| {
            let users = w.users.iter().map(|u| ("user", u.clone()));
            let groups = w.groups.iter().map(|g| ("group", g.clone()));
            users.chain(groups).map(|(key, who)| {
            html! {
                <tr data-testid="admin-assignments-row">
                    <td>{ if key == "group" { format!("group {who}") } else { who.clone() } }</td>
                    <td>{ &w.name }</td>
                    <td><button type="button" class="hd-danger" onclick={remove(key, &who, &w.name)}
                                aria-label={format!("unassign {who} from {}", w.name)}>{ "Remove" }</button></td>
                </tr>
            }
        }).collect::<Vec<_>>()
        });
    html! {
        <>
            <form class="hd-admin-form" {onsubmit} aria-label="Assign a workstation" novalidate=true>
                <label>{ "Assign a" }
                    <select ref={kind} data-testid="admin-assignments-kind">
                        <option value="user" selected=true>{ "user" }</option>
                        <option value="group">{ "directory group" }</option>
                    </select>
                </label>
                <label>{ "Name" }<input ref={who} type="text" data-testid="admin-assignments-who" /></label>
                <label>{ "to workstation" }
                    <select ref={workstation} data-testid="admin-assignments-workstation">{ for options }</select>
                </label>
                <button type="submit" data-testid="admin-assignments-add">{ "Assign" }</button>
            </form>
            if let Some(message) = (*error).clone() {
                <div class="hd-error" role="alert" data-testid="admin-assignments-error">{ message }</div>
            }
            <table data-testid="admin-assignments-table">
                <thead><tr><th>{ "User or group" }</th><th>{ "Workstation" }</th><th>{ "Actions" }</th></tr></thead>
                <tbody>{ for rows }</tbody>
            </table>
        </>
    }
}

fn select_value(node: &NodeRef) -> String {
    node.cast::<web_sys::HtmlSelectElement>()
        .map(|select| select.value())
        .unwrap_or_default()
}
