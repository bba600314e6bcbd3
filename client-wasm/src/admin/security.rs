//! "Security": the brute-force defender (failed sign-ins per IP within a window, then a block; the
//! per-account slow-down), the IP whitelist (addresses and ranges never blocked) and the IPs blocked
//! now, each with Unblock. Through `/api/admin/security/...`, which validates exactly like
//! `relay security …`: a refused value keeps everything as it was and its sentence is shown next to
//! the form it came from. Every answer is the page's whole state, shown as the relay now applies it.
//!
//! What the administrator typed stays in the fields until the relay accepts it: the limit fields show
//! a draft (back to the stored values only after a successful save) and the whitelist field is cleared
//! only once the range is added, so a refused value can be corrected instead of typed again.

use super::{api, local_time, PageProps};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::rc::Rc;
use yew::prelude::*;

const PATH: &str = "/api/admin/security";

#[derive(Clone, PartialEq, Deserialize)]
struct Blocked {
    ip: String,
    blocked_until: f64,
    failures: i64,
    reason: String,
    whitelisted: bool,
}

#[derive(Clone, PartialEq, Deserialize)]
struct Status {
    limits: Map<String, Value>,
    whitelist: Vec<String>,
    blocked: Vec<Blocked>,
    your_ip: String,
}

/// The notice after a change, from the page's new state.
type Done = Rc<dyn Fn(&Status) -> String>;

fn fixed(text: &str) -> Done {
    let text = text.to_owned();
    Rc::new(move |_| text.clone())
}

/// The limits in display order: JSON name, label, `data-testid` suffix.
const LIMITS: &[(&str, &str, &str)] = &[
    (
        "max_failures",
        "Maximum failed sign-ins from one IP address",
        "max-failures",
    ),
    ("window_minutes", "…within (minutes)", "window"),
    ("block_minutes", "Then block that IP address for (minutes)", "block"),
    (
        "account_threshold",
        "Failed sign-ins to one account (from any IP) before new IPs are slowed down",
        "account-threshold",
    ),
    (
        "account_max_delay_secs",
        "Longest slow-down of that account (seconds)",
        "account-max-delay",
    ),
];

/// Which part of the page a message belongs to.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Limits,
    Whitelist,
    Blocked,
}

impl Part {
    fn id(self) -> &'static str {
        match self {
            Part::Limits => "limits",
            Part::Whitelist => "whitelist",
            Part::Blocked => "blocked",
        }
    }
}

/// A message under one part: a refusal (error) or what was done.
#[derive(Clone, PartialEq)]
struct Notice {
    part: Part,
    text: String,
    is_error: bool,
}

fn number_text(value: Option<&Value>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// The limit fields as typed, one entry per `LIMITS` row; `None` shows the stored value.
#[derive(Clone, Default, PartialEq)]
struct LimitDrafts(Vec<Option<String>>);

enum DraftChange {
    Typed(usize, String),
    /// After a successful save: every field shows what the relay stored.
    Saved,
}

impl Reducible for LimitDrafts {
    type Action = DraftChange;

    fn reduce(self: std::rc::Rc<Self>, change: DraftChange) -> std::rc::Rc<Self> {
        match change {
            DraftChange::Typed(index, text) => {
                let mut drafts = self.0.clone();
                drafts.resize(LIMITS.len(), None);
                if let Some(slot) = drafts.get_mut(index) {
                    *slot = Some(text);
                }
                Self(drafts).into()
            }
            DraftChange::Saved => Self::default().into(),
        }
    }
}

#[function_component]
pub fn Security(props: &PageProps) -> Html {
    let status = use_state(|| None::<Status>);
    let notice = use_state(|| None::<Notice>);
    let reload = use_state(|| 0u32);
    let limit_inputs = use_memo((), |_| LIMITS.iter().map(|_| NodeRef::default()).collect::<Vec<_>>());
    let limit_drafts = use_reducer(LimitDrafts::default);
    let whitelist_input = use_node_ref();
    {
        let (status, notice, props) = (status.clone(), notice.clone(), props.clone());
        use_effect_with(*reload, move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                match api::get::<Status>(PATH).await {
                    Ok(loaded) => status.set(Some(loaded)),
                    Err(error) => notice.set(Some(Notice {
                        part: Part::Blocked,
                        text: props.failed(error),
                        is_error: true,
                    })),
                }
            });
        });
    }
    // Sends a change; the answer is the new state (then `accepted` runs), or the refusal shown under `part`.
    let send = {
        let (status, notice, props) = (status.clone(), notice.clone(), props.clone());
        move |part: Part, path: &'static str, body: Value, done: Done, accepted: Callback<()>| {
            let (status, notice, props) = (status.clone(), notice.clone(), props.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<_, Status>(&props.session, path, &body).await {
                    Ok(now) => {
                        let text = done(&now);
                        status.set(Some(now));
                        accepted.emit(());
                        notice.set(Some(Notice {
                            part,
                            text,
                            is_error: false,
                        }));
                    }
                    Err(error) => notice.set(Some(Notice {
                        part,
                        text: props.failed(error),
                        is_error: true,
                    })),
                }
            });
        }
    };
    let Some(current) = (*status).clone() else {
        return html! {
            <div>
                if let Some(n) = &*notice { <p class="hd-error" role="alert" data-testid="admin-security-error">{ &n.text }</p> }
                else { <p class="hd-admin-muted">{ "Loading…" }</p> }
            </div>
        };
    };
    let message = |part: Part| match &*notice {
        Some(n) if n.part == part => html! {
            <p class={if n.is_error { "hd-error" } else { "hd-error hd-info" }} role={if n.is_error { "alert" } else { "status" }}
               data-testid={format!("admin-security-{}-{}", part.id(), if n.is_error { "error" } else { "notice" })}>{ &n.text }</p>
        },
        _ => html! {},
    };

    let save_limits = {
        let (send, inputs, drafts) = (send.clone(), limit_inputs.clone(), limit_drafts.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let body: Map<String, Value> = LIMITS
                .iter()
                .zip(inputs.iter())
                .map(|((name, _, _), input)| {
                    (
                        (*name).to_owned(),
                        Value::String(super::input_value(input).trim().to_owned()),
                    )
                })
                .collect();
            send(
                Part::Limits,
                "/api/admin/security/limits",
                Value::Object(body),
                fixed("Saved: the new limits apply from the next sign-in."),
                {
                    let drafts = drafts.clone();
                    Callback::from(move |()| drafts.dispatch(DraftChange::Saved))
                },
            );
        })
    };
    let limit_rows = LIMITS
        .iter()
        .zip(limit_inputs.iter())
        .enumerate()
        .map(|(index, ((name, label, id), input))| {
            let shown = match limit_drafts.0.get(index) {
                Some(Some(draft)) => draft.clone(),
                _ => number_text(current.limits.get(*name)),
            };
            let oninput = {
                let drafts = limit_drafts.clone();
                Callback::from(move |event: InputEvent| {
                    if let Some(field) = event.target_dyn_into::<web_sys::HtmlInputElement>() {
                        drafts.dispatch(DraftChange::Typed(index, field.value()));
                    }
                })
            };
            html! {
                <label>{ *label }
                    <input ref={input.clone()} type="text" inputmode="numeric" value={shown} {oninput}
                           data-testid={format!("admin-security-{id}")} />
                </label>
            }
        });

    let add_to_whitelist = {
        let (send, input) = (send.clone(), whitelist_input.clone());
        let whitelist_before = current.whitelist.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let cidr = super::input_value(&input).trim().to_owned();
            if cidr.is_empty() {
                return;
            }
            // The relay lists the range normalised (192.0.2.99/24 → 192.0.2.0/24): name what it listed.
            let (before, typed) = (whitelist_before.clone(), cidr.clone());
            let done: Done = Rc::new(move |now: &Status| {
                let added = now.whitelist.iter().find(|listed| !before.contains(listed)).unwrap_or(&typed);
                format!("{added} is never blocked from now on.")
            });
            // Emptied only once the range is on the list: a refused one stays there to be corrected.
            let clear = {
                let input = input.clone();
                Callback::from(move |()| {
                    if let Some(field) = input.cast::<web_sys::HtmlInputElement>() {
                        field.set_value("");
                    }
                })
            };
            send(
                Part::Whitelist,
                "/api/admin/security/whitelist",
                json!({ "cidr": cidr }),
                done,
                clear,
            );
        })
    };
    let whitelist_rows = current.whitelist.iter().map(|cidr| {
        let onclick = {
            let (send, cidr) = (send.clone(), cidr.clone());
            Callback::from(move |_: MouseEvent| {
                let done = fixed(&format!("{cidr} was removed from the whitelist."));
                send(
                    Part::Whitelist,
                    "/api/admin/security/whitelist/remove",
                    json!({ "cidr": cidr }),
                    done,
                    Callback::noop(),
                );
            })
        };
        html! {
            <tr data-testid="admin-security-whitelist-row">
                <td>{ cidr }</td>
                <td><button type="button" class="hd-danger" {onclick} data-testid="admin-security-whitelist-remove"
                            aria-label={format!("remove {cidr} from the whitelist")}>{ "Remove" }</button></td>
            </tr>
        }
    });

    let blocked_rows = current.blocked.iter().map(|block| {
        let onclick = {
            let (send, ip) = (send.clone(), block.ip.clone());
            Callback::from(move |_: MouseEvent| {
                let done = fixed(&format!("{ip} was unblocked: it can sign in again."));
                send(
                    Part::Blocked,
                    "/api/admin/security/unblock",
                    json!({ "ip": ip }),
                    done,
                    Callback::noop(),
                );
            })
        };
        html! {
            <tr data-testid="admin-security-blocked-row">
                <td data-testid="admin-security-blocked-ip">{ &block.ip }</td>
                <td>{ block.failures }</td>
                <td>{ local_time(block.blocked_until) }</td>
                <td class="hd-admin-muted">{ &block.reason }{ if block.whitelisted { " (whitelisted: not applied)" } else { "" } }</td>
                <td><button type="button" class="hd-secondary" {onclick} data-testid="admin-security-unblock"
                            aria-label={format!("unblock {}", block.ip)}>{ "Unblock" }</button></td>
            </tr>
        }
    });
    let refresh = {
        let reload = reload.clone();
        Callback::from(move |_: MouseEvent| reload.set(reload.wrapping_add(1)))
    };

    html! {
        <div data-testid="admin-security">
            <h2>{ "Brute-force defender" }</h2>
            <p class="hd-admin-muted">{ "After too many failed sign-ins from one IP address within the window, that address is \
                refused for the block time (its open sessions are closed too)." }</p>
            <form class="hd-admin-form" onsubmit={save_limits} aria-label="Brute-force limits" novalidate=true>
                { for limit_rows }
                <button type="submit" data-testid="admin-security-save">{ "Save limits" }</button>
            </form>
            { message(Part::Limits) }

            <h2>{ "IP whitelist" }</h2>
            <p class="hd-admin-muted">{ "Addresses and ranges (CIDR, IPv4 or IPv6) that are never blocked. Your address: " }
                <code data-testid="admin-security-your-ip">{ &current.your_ip }</code></p>
            <form class="hd-admin-form" onsubmit={add_to_whitelist} aria-label="Add to the whitelist" novalidate=true>
                <label>{ "Address or range" }
                    <input ref={whitelist_input} type="text" placeholder="192.168.1.0/24" data-testid="admin-security-whitelist-input" />
                </label>
                <button type="submit" data-testid="admin-security-whitelist-add">{ "Add" }</button>
            </form>
            { message(Part::Whitelist) }
            if current.whitelist.is_empty() {
                <p data-testid="admin-security-whitelist-none">{ "The whitelist is empty." }</p>
            } else {
                <table data-testid="admin-security-whitelist-table">
                    <thead><tr><th>{ "Address or range" }</th><th>{ "Actions" }</th></tr></thead>
                    <tbody>{ for whitelist_rows }</tbody>
                </table>
            }

            <h2>{ "Blocked IP addresses" }</h2>
            <p><button type="button" class="hd-secondary" onclick={refresh} data-testid="admin-security-refresh">{ "Refresh" }</button></p>
            { message(Part::Blocked) }
            if current.blocked.is_empty() {
                <p data-testid="admin-security-blocked-none">{ "No IP address is blocked right now." }</p>
            } else {
                <table data-testid="admin-security-blocked-table">
                    <thead><tr><th>{ "IP address" }</th><th>{ "Failed sign-ins" }</th><th>{ "Blocked until" }</th>
                        <th>{ "Reason" }</th><th>{ "Actions" }</th></tr></thead>
                    <tbody>{ for blocked_rows }</tbody>
                </table>
            }
        </div>
    }
}
