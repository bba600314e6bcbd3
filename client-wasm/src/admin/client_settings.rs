//! The "HTML5 client" page: the settings the browser client applies (menu bar, Ctrl+Alt+Del, colours,
//! logo, logon screen, timeout, ...), edited through `/api/admin/client-settings`, which validates
//! them exactly like `relay client-settings set` (one bad value: nothing is saved, its sentence shown).

use super::{api, set_error, set_some, use_load, PageProps};
use serde_json::{Map, Value};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

const PATH: &str = "/api/admin/client-settings";

/// How a setting is edited.
enum Kind {
    Switch,
    Choice(&'static [&'static str]),
    Number,
    Text,
}

/// The settings in display order: JSON name, label, editor.
const FIELDS: &[(&str, &str, Kind)] = &[
    ("menu_bar", "Menu bar shown on", Kind::Choice(&["all", "mobile"])),
    ("menu_transparent", "Transparent top menu", Kind::Switch),
    ("ctrl_alt_del_desktop", "Ctrl+Alt+Del on computers", Kind::Switch),
    ("ctrl_alt_del_mobile", "Ctrl+Alt+Del on phones and tablets", Kind::Switch),
    ("file_transfer", "File transfer", Kind::Switch),
    ("sounds", "Sounds", Kind::Switch),
    ("show_warnings", "Show warning messages", Kind::Switch),
    ("color_depth", "Colour depth (bits)", Kind::Choice(&["15", "16", "24", "32"])),
    ("connection_timeout_secs", "Connection timeout (s)", Kind::Number),
    ("background_color", "Background colour", Kind::Text),
    ("background_logo", "Background logo (portal path or data: URL)", Kind::Text),
    ("logon_message", "Logon-screen message", Kind::Text),
    ("logon_gif", "Logon animated GIF (portal path or data: URL)", Kind::Text),
    ("logon_gif_ms", "GIF display time (ms)", Kind::Number),
];

fn text_of(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

#[function_component]
pub fn ClientSettingsPage(props: &PageProps) -> Html {
    let values = use_state(|| None::<Map<String, Value>>);
    let edits = use_mut_ref(Map::<String, Value>::new);
    let notice = use_state(|| None::<(String, bool)>);
    use_load(PATH, props, set_some(&values), set_error(&notice));
    let Some(current) = (*values).clone() else {
        return html! {
            <div data-testid="client-settings-page">
                if let Some((text, _)) = &*notice { <p class="hd-error" role="alert">{ text }</p> }
                else { <p class="hd-admin-muted">{ "Loading…" }</p> }
            </div>
        };
    };
    let on_save = {
        let (values, edits, notice, props) = (values.clone(), edits.clone(), notice.clone(), props.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let body = edits.borrow().clone();
            if body.is_empty() {
                notice.set(Some(("Nothing changed.".to_owned(), false)));
                return;
            }
            let (values, edits, notice, props) = (values.clone(), edits.clone(), notice.clone(), props.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<_, Map<String, Value>>(&props.session, PATH, &body).await {
                    Ok(map) => {
                        edits.borrow_mut().clear();
                        values.set(Some(map));
                        notice.set(Some(("Saved. Browsers use the new settings from their next page load.".to_owned(), false)));
                    }
                    Err(error) => notice.set(Some((props.failed(error), true))),
                }
            });
        })
    };
    let rows = FIELDS.iter().map(|(name, label, kind)| {
        let name = (*name).to_owned();
        let edits = edits.clone();
        let testid = format!("client-setting-{name}");
        let value = current.get(&name);
        let editor = match kind {
            Kind::Switch => {
                let onchange = Callback::from(move |event: Event| {
                    if let Some(input) = event.target_dyn_into::<HtmlInputElement>() {
                        edits.borrow_mut().insert(name.clone(), Value::Bool(input.checked()));
                    }
                });
                let checked = value.and_then(Value::as_bool).unwrap_or(false);
                html! { <input type="checkbox" {checked} {onchange} data-testid={testid} /> }
            }
            Kind::Choice(options) => {
                let selected = text_of(value);
                let onchange = Callback::from(move |event: Event| {
                    if let Some(select) = event.target_dyn_into::<HtmlSelectElement>() {
                        edits.borrow_mut().insert(name.clone(), Value::String(select.value()));
                    }
                });
                html! {
                    <select {onchange} data-testid={testid}>
                        { for options.iter().map(|o| html! { <option value={*o} selected={*o == selected}>{ *o }</option> }) }
                    </select>
                }
            }
            Kind::Number | Kind::Text => {
                let oninput = Callback::from(move |event: InputEvent| {
                    if let Some(input) = event.target_dyn_into::<HtmlInputElement>() {
                        edits.borrow_mut().insert(name.clone(), Value::String(input.value()));
                    }
                });
                let kind = if matches!(kind, Kind::Number) { "number" } else { "text" };
                html! { <input type={kind} value={text_of(value)} {oninput} data-testid={testid} /> }
            }
        };
        html! { <label>{ *label }{ editor }</label> }
    });
    html! {
        <div data-testid="client-settings-page">
            <p class="hd-admin-muted">{ "What the HTML5 client shows and how it connects, for every user of this portal." }</p>
            <form class="hd-admin-form" onsubmit={on_save}>
                { for rows }
                <button type="submit" data-testid="client-settings-save">{ "Save" }</button>
            </form>
            if let Some((text, is_error)) = &*notice {
                <p class={if *is_error { "hd-error" } else { "hd-error hd-info" }} role="status"
                   data-testid="client-settings-notice">{ text }</p>
            }
        </div>
    }
}
