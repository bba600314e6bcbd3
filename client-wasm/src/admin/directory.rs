//! Directory: sign-in through LDAP or Active Directory (`/api/admin/directory…`, the same settings as
//! `relay directory set`): server and TLS, how users are bound (a DN/UPN pattern, or a service account
//! that searches first), where groups are read, the Windows domain; a check of the connection with an
//! optional user (their groups shown); clear. The service account's password is write-only: the page
//! only says whether one is stored, and leaving the field empty keeps it.

use super::{api, input_value, set_some, use_load, PageProps};
use serde_json::{json, Value};
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

/// The form's fields, read when the admin saves.
#[derive(Default)]
struct Fields {
    url: NodeRef,
    starttls: NodeRef,
    ca_pem: NodeRef,
    pattern: NodeRef,
    service_dn: NodeRef,
    service_password: NodeRef,
    base_dn: NodeRef,
    user_attribute: NodeRef,
    group_attribute: NodeRef,
    domain: NodeRef,
    timeout: NodeRef,
    test_user: NodeRef,
    test_password: NodeRef,
}

fn text(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn checked(node: &NodeRef) -> bool {
    node.cast::<HtmlInputElement>().is_some_and(|input| input.checked())
}

fn textarea(node: &NodeRef) -> String {
    node.cast::<HtmlTextAreaElement>().map(|area| area.value()).unwrap_or_default()
}

fn select_value(event: &Event) -> String {
    event.target_dyn_into::<HtmlSelectElement>().map(|select| select.value()).unwrap_or_default()
}

/// The JSON the relay stores, from the form (an empty service password is left out: the stored one stays).
fn body(fields: &Fields, bind_mode: &str, group_mode: &str) -> Value {
    let bind = if bind_mode == "search_bind" {
        let mut bind = json!({ "mode": "search_bind", "service_dn": input_value(&fields.service_dn).trim() });
        let password = input_value(&fields.service_password);
        if !password.is_empty() {
            bind["service_password"] = json!(password);
        }
        bind
    } else {
        json!({ "mode": "user_pattern", "pattern": input_value(&fields.pattern).trim() })
    };
    let attribute = input_value(&fields.group_attribute).trim().to_owned();
    let groups = if group_mode == "group_of_names" {
        json!({ "mode": "group_of_names", "member_attribute": if attribute.is_empty() { "member".into() } else { attribute } })
    } else {
        json!({ "mode": "member_of", "attribute": if attribute.is_empty() { "memberOf".into() } else { attribute } })
    };
    let ca = textarea(&fields.ca_pem);
    let domain = input_value(&fields.domain).trim().to_owned();
    let timeout = input_value(&fields.timeout).trim().parse::<u64>().unwrap_or(5);
    json!({
        "url": input_value(&fields.url).trim(),
        "starttls": checked(&fields.starttls),
        "ca_pem": if ca.trim().is_empty() { Value::Null } else { json!(ca) },
        "bind": bind,
        "base_dn": input_value(&fields.base_dn).trim(),
        "user_attribute": match input_value(&fields.user_attribute).trim() { "" => "uid".to_owned(), a => a.to_owned() },
        "groups": groups,
        "domain": if domain.is_empty() { Value::Null } else { json!(domain) },
        "timeout_secs": timeout,
    })
}

/// What the check found, as sentences.
fn check_lines(report: &Value) -> Vec<String> {
    let mut lines = vec!["Connected.".to_owned()];
    match report["service_bind"].as_bool() {
        Some(true) => lines.push("Service account bind: OK.".into()),
        Some(false) => lines.push("The directory refused the service account's DN or password.".into()),
        None => {}
    }
    lines.push(if report["base_readable"] == true {
        "Base DN: readable.".into()
    } else {
        "Base DN: not readable with this identity (check the DN and access rights).".into()
    });
    let user = &report["user"];
    if user["signed_in"] == true {
        let groups: Vec<&str> = user["groups"].as_array().map(|g| g.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        lines.push(format!(
            "User {} signed in; groups: {}.",
            text(user, "username"),
            if groups.is_empty() { "none".to_owned() } else { groups.join(", ") }
        ));
    } else if user["signed_in"] == false {
        lines.push(text(user, "message"));
    }
    lines
}

#[function_component]
pub fn DirectoryPage(props: &PageProps) -> Html {
    let config = use_state(|| None::<Value>);
    let error = use_state(|| None::<String>);
    let notice = use_state(|| None::<Vec<String>>);
    let bind_mode = use_state(|| "user_pattern".to_owned());
    let group_mode = use_state(|| "member_of".to_owned());
    let fields = use_memo((), |_| Fields::default());
    let show = {
        let (config, bind_mode, group_mode) = (config.clone(), bind_mode.clone(), group_mode.clone());
        Callback::from(move |value: Value| {
            if value["configured"] == true {
                bind_mode.set(text(&value["bind"], "mode"));
                group_mode.set(text(&value["groups"], "mode"));
            }
            config.set(Some(value));
        })
    };
    let show_loaded = show.clone();
    use_load("/api/admin/directory", props, move |value| show_loaded.emit(value), set_some(&error));
    let onsubmit = {
        let (props, error, notice, show, fields) = (props.clone(), error.clone(), notice.clone(), show.clone(), fields.clone());
        let (bind_mode, group_mode) = (bind_mode.clone(), group_mode.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let request = body(&fields, &bind_mode, &group_mode);
            let (props, error, notice, show) = (props.clone(), error.clone(), notice.clone(), show.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<_, Value>(&props.session, "/api/admin/directory", &request).await {
                    Ok(saved) => {
                        error.set(None);
                        notice.set(Some(vec!["Saved: the directory is used from the next sign-in.".into()]));
                        show.emit(saved);
                    }
                    Err(e) => error.set(Some(props.failed(e))),
                }
            });
        })
    };
    let on_test = {
        let (props, error, notice, fields) = (props.clone(), error.clone(), notice.clone(), fields.clone());
        Callback::from(move |_: MouseEvent| {
            let request = json!({ "username": input_value(&fields.test_user).trim(), "password": input_value(&fields.test_password) });
            let (props, error, notice) = (props.clone(), error.clone(), notice.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<_, Value>(&props.session, "/api/admin/directory/test", &request).await {
                    Ok(report) => {
                        error.set(None);
                        notice.set(Some(check_lines(&report)));
                    }
                    Err(e) => error.set(Some(props.failed(e))),
                }
            });
        })
    };
    let on_clear = {
        let (props, error, notice, show) = (props.clone(), error.clone(), notice.clone(), show.clone());
        Callback::from(move |_: MouseEvent| {
            let confirmed = web_sys::window()
                .and_then(|w| w.confirm_with_message("Remove the directory? Only local accounts can sign in afterwards.").ok())
                .unwrap_or(false);
            if !confirmed {
                return;
            }
            let (props, error, notice, show) = (props.clone(), error.clone(), notice.clone(), show.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post_no_content(&props.session, "/api/admin/directory/clear", &json!({})).await {
                    Ok(()) => {
                        error.set(None);
                        notice.set(Some(vec!["The directory was removed: only local accounts sign in now.".into()]));
                        show.emit(json!({ "configured": false }));
                    }
                    Err(e) => error.set(Some(props.failed(e))),
                }
            });
        })
    };
    let on_bind_mode = {
        let bind_mode = bind_mode.clone();
        Callback::from(move |event: Event| bind_mode.set(select_value(&event)))
    };
    let on_group_mode = {
        let group_mode = group_mode.clone();
        Callback::from(move |event: Event| group_mode.set(select_value(&event)))
    };

    let Some(current) = (*config).clone() else {
        return match (*error).clone() {
            Some(message) => html! { <p class="hd-error" role="alert" data-testid="admin-directory-error">{ message }</p> },
            None => html! { <p class="hd-admin-muted">{ "Loading…" }</p> },
        };
    };
    let configured = current["configured"] == true;
    let bind = &current["bind"];
    let groups = &current["groups"];
    let search = *bind_mode == "search_bind";
    let group_attribute = if *group_mode == "group_of_names" {
        match text(groups, "member_attribute") { a if a.is_empty() => "member".to_owned(), a => a }
    } else {
        match text(groups, "attribute") { a if a.is_empty() => "memberOf".to_owned(), a => a }
    };
    let password_hint = if bind["service_password_set"] == true { "stored — leave empty to keep it" } else { "" };
    let timeout = current["timeout_secs"].as_u64().unwrap_or(5).to_string();
    html! {
        <>
            <p class="hd-admin-muted" data-testid="admin-directory-state">{
                if configured { "Directory users sign in with their directory password." }
                else { "No directory: only local accounts sign in." }
            }</p>
            <form class="hd-admin-form" {onsubmit} aria-label="Directory settings" novalidate=true>
                <label>{ "Server URL (ldap:// or ldaps://)" }
                    <input ref={fields.url.clone()} type="text" value={text(&current, "url")} placeholder="ldaps://dc.example.org" data-testid="admin-directory-url" /></label>
                <label class="hd-admin-check"><input ref={fields.starttls.clone()} type="checkbox" checked={current["starttls"] == true} data-testid="admin-directory-starttls" />{ "Upgrade ldap:// with StartTLS" }</label>
                <label class="hd-admin-full">{ "CA certificate (PEM; empty: the system's trust store)" }
                    <textarea ref={fields.ca_pem.clone()} rows="3" value={text(&current, "ca_pem")} data-testid="admin-directory-ca" /></label>
                <label>{ "How users are checked" }
                    <select onchange={on_bind_mode} data-testid="admin-directory-bind-mode">
                        <option value="user_pattern" selected={!search}>{ "Bind as the user (DN or UPN pattern)" }</option>
                        <option value="search_bind" selected={search}>{ "Search with a service account, then bind" }</option>
                    </select></label>
                if search {
                    <label>{ "Service account DN" }
                        <input ref={fields.service_dn.clone()} type="text" value={text(bind, "service_dn")} data-testid="admin-directory-service-dn" /></label>
                    <label>{ "Service account password" }
                        <input ref={fields.service_password.clone()} type="password" autocomplete="new-password" placeholder={password_hint} data-testid="admin-directory-service-password" /></label>
                } else {
                    <label>{ "User pattern ({user} is replaced)" }
                        <input ref={fields.pattern.clone()} type="text" value={text(bind, "pattern")} placeholder="uid={user},ou=people,dc=example,dc=org" data-testid="admin-directory-pattern" /></label>
                }
                <label>{ "Base DN" }
                    <input ref={fields.base_dn.clone()} type="text" value={text(&current, "base_dn")} placeholder="dc=example,dc=org" data-testid="admin-directory-base-dn" /></label>
                <label>{ "Sign-in name attribute (uid; sAMAccountName on Active Directory)" }
                    <input ref={fields.user_attribute.clone()} type="text" value={text(&current, "user_attribute")} placeholder="uid" data-testid="admin-directory-user-attribute" /></label>
                <label>{ "Groups from" }
                    <select onchange={on_group_mode} data-testid="admin-directory-group-mode">
                        <option value="member_of" selected={*group_mode != "group_of_names"}>{ "the user's memberOf attribute" }</option>
                        <option value="group_of_names" selected={*group_mode == "group_of_names"}>{ "groupOfNames entries listing members" }</option>
                    </select></label>
                <label>{ "Group attribute" }
                    <input ref={fields.group_attribute.clone()} type="text" value={group_attribute} data-testid="admin-directory-group-attribute" /></label>
                <label>{ "Windows domain (optional)" }
                    <input ref={fields.domain.clone()} type="text" value={text(&current, "domain")} data-testid="admin-directory-domain" /></label>
                <label>{ "Timeout (seconds)" }
                    <input ref={fields.timeout.clone()} type="text" inputmode="numeric" value={timeout} data-testid="admin-directory-timeout" /></label>
                <button type="submit" data-testid="admin-directory-save">{ "Save" }</button>
            </form>
            <form class="hd-admin-form" aria-label="Check the directory" onsubmit={Callback::from(|e: SubmitEvent| e.prevent_default())}>
                <label>{ "Check a user (optional)" }
                    <input ref={fields.test_user.clone()} type="text" autocomplete="off" data-testid="admin-directory-test-user" /></label>
                <label>{ "Their password (used once, never stored)" }
                    <input ref={fields.test_password.clone()} type="password" autocomplete="off" data-testid="admin-directory-test-password" /></label>
                <button type="button" class="hd-secondary" onclick={on_test} disabled={!configured} data-testid="admin-directory-test">{ "Test the saved settings" }</button>
                <button type="button" class="hd-danger" onclick={on_clear} disabled={!configured} data-testid="admin-directory-clear">{ "Remove the directory" }</button>
            </form>
            if let Some(message) = (*error).clone() {
                <div class="hd-error" role="alert" data-testid="admin-directory-error">{ message }</div>
            }
            if let Some(lines) = (*notice).clone() {
                <div class="hd-error hd-info" role="status" data-testid="admin-directory-notice">
                    { for lines.into_iter().map(|line| html! { <p>{ line }</p> }) }
                </div>
            }
        </>
    }
}
