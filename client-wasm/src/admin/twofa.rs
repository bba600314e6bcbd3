//! The console's "Two-factor" page: on/off, who must use a second factor (users and directory groups),
//! each user's method (edit, reset), and the settings with the relay's warnings. Everything goes
//! through `/api/admin/twofa…` (relay/src/twofa_api.rs), the same rules as `relay 2fa`.

use super::api;
use super::{set_some, use_load, PageProps};
use serde::Deserialize;
use serde_json::{json, Value};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Status {
    enabled: bool,
    settings: Settings,
    warnings: Vec<String>,
    members: Vec<Member>,
    sms_configured: bool,
    email_configured: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Settings {
    discrepancy: u32,
    issuer: String,
    issuer_shown: String,
    validity_after_minutes: u64,
    validity_before_secs: u64,
    digits: u32,
    algorithm: String,
    sms_template: String,
    code_lifetime_secs: u64,
    send_limit_per_hour: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Member {
    kind: String,
    name: String,
    method: Option<String>,
    enrolled: Option<bool>,
    address: Option<String>,
}

/// Runs one request and shows its answer (the new status) or its error.
type Act = Callback<(&'static str, Value)>;

fn input_value(node: &NodeRef) -> String {
    node.cast::<HtmlInputElement>().map(|input| input.value()).unwrap_or_default()
}

fn select_value(node: &NodeRef) -> String {
    node.cast::<HtmlSelectElement>().map(|select| select.value()).unwrap_or_default()
}

#[function_component]
pub fn TwoFactor(props: &PageProps) -> Html {
    let status = use_state(|| None::<Status>);
    let error = use_state(|| None::<String>);
    use_load("/api/admin/twofa", props, set_some(&status), set_some(&error));
    let act: Act = {
        let (status, error, props) = (status.clone(), error.clone(), props.clone());
        Callback::from(move |(path, body): (&'static str, Value)| {
            let (status, error, props) = (status.clone(), error.clone(), props.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<_, Status>(&props.session, path, &body).await {
                    Ok(next) => {
                        status.set(Some(next));
                        error.set(None);
                    }
                    Err(failure) => error.set(Some(props.failed(failure))),
                }
            });
        })
    };
    let error_view = match &*error {
        Some(message) => html! { <div class="hd-error" role="alert" data-testid="admin-two-factor-error">{ message }</div> },
        None => html! {},
    };
    let Some(current) = (*status).clone() else {
        return html! { <>{ error_view }<p class="hd-admin-muted">{ "Loading…" }</p></> };
    };
    html! {
        <>
            { error_view }
            <OnOff enabled={current.enabled} act={act.clone()} />
            { warnings(&current.warnings) }
            <h2>{ "Who must use a second factor" }</h2>
            <Members members={current.members.clone()} act={act.clone()}
                     sms={current.sms_configured} email={current.email_configured} />
            <AddMember act={act.clone()} />
            <h2>{ "Settings" }</h2>
            <SettingsForm settings={current.settings.clone()} {act} />
        </>
    }
}

fn warnings(list: &[String]) -> Html {
    if list.is_empty() {
        return html! {};
    }
    html! {
        <ul class="hd-error" role="status" data-testid="admin-two-factor-warnings">
            { for list.iter().map(|warning| html! { <li>{ warning }</li> }) }
        </ul>
    }
}

#[derive(Properties, PartialEq)]
struct OnOffProps {
    enabled: bool,
    act: Act,
}

#[function_component]
fn OnOff(props: &OnOffProps) -> Html {
    let enabled = props.enabled;
    let onclick = {
        let act = props.act.clone();
        Callback::from(move |_: MouseEvent| act.emit(("/api/admin/twofa/enabled", json!({ "enabled": !enabled }))))
    };
    html! {
        <div class="hd-admin-form">
            <span data-testid="admin-two-factor-state">
                { if enabled { "Two-factor sign-in is on for the users and groups below." }
                  else { "Two-factor sign-in is off: everyone signs in with the password only." } }
            </span>
            <button type="button" class={if enabled { "hd-danger" } else { "" }} {onclick} data-testid="admin-two-factor-toggle">
                { if enabled { "Turn off" } else { "Turn on" } }
            </button>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct MembersProps {
    members: Vec<Member>,
    act: Act,
    sms: bool,
    email: bool,
}

#[function_component]
fn Members(props: &MembersProps) -> Html {
    if props.members.is_empty() {
        return html! { <p class="hd-admin-muted" data-testid="admin-two-factor-members">{ "Nobody is on the list." }</p> };
    }
    html! {
        <table data-testid="admin-two-factor-members">
            <thead><tr><th>{ "Kind" }</th><th>{ "Name" }</th><th>{ "Method" }</th><th>{ "Enrolled" }</th>
                <th>{ "Phone or email" }</th><th>{ "Actions" }</th></tr></thead>
            <tbody>
                { for props.members.iter().map(|member| html! {
                    <MemberRow member={member.clone()} act={props.act.clone()} sms={props.sms} email={props.email} />
                }) }
            </tbody>
        </table>
    }
}

#[derive(Properties, PartialEq)]
struct MemberRowProps {
    member: Member,
    act: Act,
    sms: bool,
    email: bool,
}

#[function_component]
fn MemberRow(props: &MemberRowProps) -> Html {
    let (method, address) = (NodeRef::default(), NodeRef::default());
    let member = &props.member;
    let remove = {
        let (act, kind, name) = (props.act.clone(), member.kind.clone(), member.name.clone());
        Callback::from(move |_: MouseEvent| {
            act.emit(("/api/admin/twofa/members/remove", json!({ "kind": kind, "name": name })))
        })
    };
    let actions = if member.kind == "user" {
        let reset = {
            let (act, name) = (props.act.clone(), member.name.clone());
            Callback::from(move |_: MouseEvent| act.emit(("/api/admin/twofa/users/reset", json!({ "name": name }))))
        };
        let save = {
            let (act, name, method, address) = (props.act.clone(), member.name.clone(), method.clone(), address.clone());
            Callback::from(move |_: MouseEvent| {
                let chosen = select_value(&method);
                let to = input_value(&address);
                let body = match chosen.as_str() {
                    "sms" => json!({ "name": name, "method": chosen, "phone": to }),
                    "email" => json!({ "name": name, "method": chosen, "email": to }),
                    _ => json!({ "name": name, "method": chosen }),
                };
                act.emit(("/api/admin/twofa/users/method", body));
            })
        };
        let current = member.method.clone().unwrap_or_else(|| "app".to_owned());
        html! {
            <div class="hd-admin-actions">
                <select ref={method} aria-label={format!("Method of {}", member.name)}
                        data-testid={format!("admin-two-factor-method-{}", member.name)}>
                    <option value="app" selected={current == "app"}>{ "Authenticator app" }</option>
                    <option value="sms" selected={current == "sms"} disabled={!props.sms && current != "sms"}>{ "SMS" }</option>
                    <option value="email" selected={current == "email"} disabled={!props.email && current != "email"}>{ "Email" }</option>
                </select>
                <input ref={address} value={member.address.clone().unwrap_or_default()} placeholder="+41… or name@…"
                       aria-label={format!("Phone or email of {}", member.name)}
                       data-testid={format!("admin-two-factor-address-{}", member.name)} />
                <button type="button" class="hd-secondary" onclick={save}
                        data-testid={format!("admin-two-factor-save-{}", member.name)}>{ "Save method" }</button>
                <button type="button" class="hd-secondary" onclick={reset}
                        data-testid={format!("admin-two-factor-reset-{}", member.name)}>{ "Reset" }</button>
                <button type="button" class="hd-danger" onclick={remove}
                        data-testid={format!("admin-two-factor-remove-{}", member.name)}>{ "Remove" }</button>
            </div>
        }
    } else {
        html! {
            <div class="hd-admin-actions">
                <button type="button" class="hd-danger" onclick={remove}
                        data-testid={format!("admin-two-factor-remove-{}", member.name)}>{ "Remove" }</button>
            </div>
        }
    };
    let enrolled = match member.enrolled {
        Some(true) => "yes",
        Some(false) => "no",
        None => "–",
    };
    html! {
        <tr data-testid={format!("admin-two-factor-member-{}", member.name)}>
            <td>{ if member.kind == "user" { "User" } else { "Directory group" } }</td>
            <td>{ &member.name }</td>
            <td>{ member.method.clone().unwrap_or_else(|| "–".to_owned()) }</td>
            <td>{ enrolled }</td>
            <td>{ member.address.clone().unwrap_or_default() }</td>
            <td>{ actions }</td>
        </tr>
    }
}

#[derive(Properties, PartialEq)]
struct AddMemberProps {
    act: Act,
}

#[function_component]
fn AddMember(props: &AddMemberProps) -> Html {
    let (kind, name) = (NodeRef::default(), NodeRef::default());
    let onsubmit = {
        let (act, kind, name) = (props.act.clone(), kind.clone(), name.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let body = json!({ "kind": select_value(&kind), "name": input_value(&name).trim() });
            act.emit(("/api/admin/twofa/members", body));
        })
    };
    html! {
        <form class="hd-admin-form" {onsubmit} data-testid="admin-two-factor-add">
            <label>{ "Kind" }
                // `selected` makes "User" the default (yew inserts options last to first).
                <select ref={kind} data-testid="admin-two-factor-add-kind">
                    <option value="user" selected=true>{ "User" }</option>
                    <option value="group">{ "Directory group" }</option>
                </select>
            </label>
            <label>{ "Name" }<input ref={name} required=true data-testid="admin-two-factor-add-name" /></label>
            <button type="submit" data-testid="admin-two-factor-add-submit">{ "Add" }</button>
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct SettingsProps {
    settings: Settings,
    act: Act,
}

#[function_component]
fn SettingsForm(props: &SettingsProps) -> Html {
    let s = &props.settings;
    let fields: [(&'static str, &'static str, String); 8] = [
        ("discrepancy", "Clock drift tolerated (30 s steps, 0–480)", s.discrepancy.to_string()),
        ("issuer", "Name in authenticator apps (empty: server name)", s.issuer.clone()),
        ("validity_after_minutes", "No new code after the first session for (min)", s.validity_after_minutes.to_string()),
        ("validity_before_secs", "First session within (s) of the code", s.validity_before_secs.to_string()),
        ("digits", "Digits per code (4–12)", s.digits.to_string()),
        ("sms_template", "SMS text (%CODE%, %ISSUER%)", s.sms_template.clone()),
        ("code_lifetime_secs", "SMS/email code valid for (s)", s.code_lifetime_secs.to_string()),
        ("send_limit_per_hour", "Codes sent per user per hour", s.send_limit_per_hour.to_string()),
    ];
    let refs: Vec<NodeRef> = fields.iter().map(|_| NodeRef::default()).collect();
    let algorithm = NodeRef::default();
    let onsubmit = {
        let (act, refs, algorithm) = (props.act.clone(), refs.clone(), algorithm.clone());
        let names: Vec<&'static str> = fields.iter().map(|(name, _, _)| *name).collect();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let mut body = serde_json::Map::new();
            for (name, node) in names.iter().zip(&refs) {
                let text = input_value(node);
                // Numbers as numbers; text fields as typed (the relay validates and explains).
                let value = match *name {
                    "issuer" | "sms_template" => Value::String(text),
                    _ => text.trim().parse::<u64>().map(Value::from).unwrap_or(Value::String(text)),
                };
                body.insert((*name).to_owned(), value);
            }
            body.insert("algorithm".to_owned(), Value::String(select_value(&algorithm)));
            act.emit(("/api/admin/twofa/settings", Value::Object(body)));
        })
    };
    html! {
        <form class="hd-admin-form" {onsubmit} data-testid="admin-two-factor-settings">
            { for fields.iter().zip(&refs).map(|((name, label, value), node)| html! {
                <label>{ *label }
                    <input ref={node.clone()} value={value.clone()} data-testid={format!("admin-two-factor-setting-{name}")} />
                </label>
            }) }
            <label>{ "Algorithm of new enrolments" }
                <select ref={algorithm} data-testid="admin-two-factor-setting-algorithm">
                    { for ["SHA1", "SHA256", "SHA512"].iter().map(|name| html! {
                        <option value={*name} selected={s.algorithm == *name}>
                            { if *name == "SHA1" { "SHA1 (every app)".to_owned() } else { format!("{name} (not every app)") } }
                        </option>
                    }) }
                </select>
            </label>
            <span class="hd-admin-muted">{ format!("Apps show: {}", s.issuer_shown) }</span>
            <button type="submit" data-testid="admin-two-factor-settings-save">{ "Save settings" }</button>
        </form>
    }
}
