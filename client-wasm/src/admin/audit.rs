//! Audit log: sign-ins, failures, admin changes and tunnels, newest first, with a text filter and
//! older pages on request.

use super::api;
use super::{input_value, local_time, PageProps};
use serde::Deserialize;
use yew::prelude::*;

#[derive(Clone, PartialEq, Deserialize)]
struct Entry {
    id: i64,
    at: f64,
    actor: String,
    ip: Option<String>,
    action: String,
    target: String,
    detail: String,
}

#[derive(Clone, PartialEq, Deserialize)]
struct AuditPage {
    entries: Vec<Entry>,
    next_before: Option<i64>,
}

/// Which page to show: the filter and where it starts (`None`: the newest).
#[derive(Clone, PartialEq)]
struct Query {
    filter: String,
    before: Option<i64>,
}

#[function_component]
pub fn AuditLog(props: &PageProps) -> Html {
    let query = use_state(|| Query {
        filter: String::new(),
        before: None,
    });
    let page = use_state(|| None::<AuditPage>);
    let error = use_state(|| None::<String>);
    let filter = use_node_ref();
    {
        let (page, error, props) = (page.clone(), error.clone(), props.clone());
        use_effect_with((*query).clone(), move |query| {
            let mut path = format!(
                "/api/admin/audit?q={}",
                String::from(js_sys::encode_uri_component(&query.filter))
            );
            if let Some(before) = query.before {
                path.push_str(&format!("&before={before}"));
            }
            wasm_bindgen_futures::spawn_local(async move {
                match api::get::<AuditPage>(&path).await {
                    Ok(loaded) => {
                        error.set(None);
                        page.set(Some(loaded));
                    }
                    Err(e) => error.set(Some(props.failed(e))),
                }
            });
        });
    }
    let onsubmit = {
        let (query, filter) = (query.clone(), filter.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            query.set(Query {
                filter: input_value(&filter).trim().to_owned(),
                before: None,
            });
        })
    };
    let newest = {
        let query = query.clone();
        Callback::from(move |_: MouseEvent| {
            query.set(Query {
                filter: query.filter.clone(),
                before: None,
            })
        })
    };
    let loaded = (*page).clone();
    let older = loaded.as_ref().and_then(|p| p.next_before).map(|before| {
        let query = query.clone();
        Callback::from(move |_: MouseEvent| {
            query.set(Query {
                filter: query.filter.clone(),
                before: Some(before),
            })
        })
    });
    let rows = loaded.map(|p| p.entries).unwrap_or_default().into_iter().map(|e| {
        html! {
            <tr data-testid="admin-audit-row" key={e.id.to_string()}>
                <td>{ local_time(e.at) }</td>
                <td>{ &e.actor }</td>
                <td>{ e.ip.as_deref().unwrap_or("–") }</td>
                <td>{ &e.action }</td>
                <td>{ &e.target }</td>
                <td>{ &e.detail }</td>
            </tr>
        }
    });
    html! {
        <>
            <form class="hd-admin-form" {onsubmit} role="search" aria-label="Filter the audit log">
                <label>{ "Contains" }<input ref={filter} type="search" data-testid="admin-audit-filter" /></label>
                <button type="submit" data-testid="admin-audit-search">{ "Filter" }</button>
                <button type="button" class="hd-secondary" onclick={newest}>{ "Newest" }</button>
                if let Some(older) = older {
                    <button type="button" class="hd-secondary" onclick={older}>{ "Older entries" }</button>
                }
            </form>
            if let Some(message) = (*error).clone() {
                <div class="hd-error" role="alert" data-testid="admin-audit-error">{ message }</div>
            }
            <table data-testid="admin-audit-table">
                <thead><tr><th>{ "Time" }</th><th>{ "Who" }</th><th>{ "IP" }</th><th>{ "Action" }</th>
                    <th>{ "Target" }</th><th>{ "Detail" }</th></tr></thead>
                <tbody>{ for rows }</tbody>
            </table>
        </>
    }
}
