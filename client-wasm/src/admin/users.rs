//! Users & groups: local and directory accounts with their workstations, add a local account, set a
//! new password, remove; the directory groups that have workstations.

use super::api;
use super::{act, input_value, PageProps};
use serde::Deserialize;
use serde_json::json;
use yew::prelude::*;

#[derive(Clone, PartialEq, Deserialize)]
struct User {
    username: String,
    admin: bool,
    directory: bool,
    workstations: Vec<String>,
}

#[derive(Clone, PartialEq, Deserialize)]
struct GroupAssignment {
    group: String,
    workstation: String,
}

#[derive(Clone, PartialEq, Deserialize)]
struct Listing {
    users: Vec<User>,
    group_assignments: Vec<GroupAssignment>,
}

#[function_component]
pub fn Users(props: &PageProps) -> Html {
    let listing = use_state(|| None::<Listing>);
    let error = use_state(|| None::<String>);
    let notice = use_state(|| None::<String>);
    let reload = use_state(|| 0u32);
    let (name, password) = (use_node_ref(), use_node_ref());
    {
        let (listing, error, props) = (listing.clone(), error.clone(), props.clone());
        use_effect_with(*reload, move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                match api::get::<Listing>("/api/admin/users").await {
                    Ok(loaded) => listing.set(Some(loaded)),
                    Err(e) => error.set(Some(props.failed(e))),
                }
            });
        });
    }
    let onsubmit = {
        let (props, error, reload, notice) = (props.clone(), error.clone(), reload.clone(), notice.clone());
        let (name, password) = (name.clone(), password.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let body = json!({ "username": input_value(&name).trim(), "password": input_value(&password) });
            notice.set(None);
            let session = props.session.clone();
            act(&props, &error, &reload, async move {
                api::post_no_content(&session, "/api/admin/users", &body).await
            });
        })
    };
    let reset = |user: &str| {
        let (props, error, reload, notice, user) = (
            props.clone(),
            error.clone(),
            reload.clone(),
            notice.clone(),
            user.to_owned(),
        );
        let password = password.clone();
        Callback::from(move |_: MouseEvent| {
            let new_password = input_value(&password);
            if new_password.is_empty() {
                error.set(Some(format!(
                    "Type the new password for {user} in the Password field first."
                )));
                return;
            }
            notice.set(Some(format!(
                "The password of {user} was changed; their sessions have ended."
            )));
            let (session, body) = (
                props.session.clone(),
                json!({ "username": user, "password": new_password }),
            );
            act(&props, &error, &reload, async move {
                api::post_no_content(&session, "/api/admin/users/password", &body).await
            });
        })
    };
    let remove = |user: &str| {
        let (props, error, reload, user) = (props.clone(), error.clone(), reload.clone(), user.to_owned());
        Callback::from(move |_: MouseEvent| {
            let (session, body) = (props.session.clone(), json!({ "username": user }));
            act(&props, &error, &reload, async move {
                api::post_no_content(&session, "/api/admin/users/remove", &body).await
            });
        })
    };
    let loaded = (*listing).clone();
    let users = loaded.as_ref().map(|l| l.users.clone()).unwrap_or_default();
    let groups = loaded.map(|l| l.group_assignments).unwrap_or_default();
    let rows = users.iter().map(|u| {
        let kind = match (u.admin, u.directory) {
            (true, _) => "administrator",
            (false, true) => "directory",
            (false, false) => "local",
        };
        html! {
            <tr data-testid="admin-users-row">
                <td>{ &u.username }</td>
                <td>{ kind }</td>
                <td>{ if u.workstations.is_empty() { "none".to_owned() } else { u.workstations.join(", ") } }</td>
                <td class="hd-admin-actions">
                    if !u.directory {
                        <button type="button" class="hd-secondary" onclick={reset(&u.username)}
                                aria-label={format!("set the typed password for {}", u.username)}>{ "Set password" }</button>
                    }
                    if u.username != props.session.username {
                        <button type="button" class="hd-danger" onclick={remove(&u.username)}
                                aria-label={format!("remove {}", u.username)}>{ "Remove" }</button>
                    }
                </td>
            </tr>
        }
    });
    let group_rows = groups
        .iter()
        .map(|g| html! { <tr><td>{ &g.group }</td><td>{ &g.workstation }</td></tr> });
    html! {
        <>
            <form class="hd-admin-form" {onsubmit} aria-label="Add a local account" novalidate=true>
                <label>{ "Username" }<input ref={name} type="text" autocomplete="off" data-testid="admin-users-name" /></label>
                <label>{ "Password" }<input ref={password.clone()} type="password" autocomplete="new-password" data-testid="admin-users-password" /></label>
                <button type="submit" data-testid="admin-users-add">{ "Add user" }</button>
            </form>
            if let Some(message) = (*error).clone() {
                <div class="hd-error" role="alert" data-testid="admin-users-error">{ message }</div>
            } else if let Some(message) = (*notice).clone() {
                <div class="hd-error hd-info" role="status">{ message }</div>
            }
            <table data-testid="admin-users-table">
                <thead><tr><th>{ "User" }</th><th>{ "Account" }</th><th>{ "Workstations" }</th><th>{ "Actions" }</th></tr></thead>
                <tbody>{ for rows }</tbody>
            </table>
            <h2>{ "Directory groups with workstations" }</h2>
            if groups.is_empty() {
                <p class="hd-admin-muted">{ "No directory group is assigned (see Assignments)." }</p>
            } else {
                <table><thead><tr><th>{ "Group" }</th><th>{ "Workstation" }</th></tr></thead><tbody>{ for group_rows }</tbody></table>
            }
            <p class="hd-admin-muted">{ "Directory users appear here after their first sign-in." }</p>
        </>
    }
}
