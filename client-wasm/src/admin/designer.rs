//! The "Portal pages" page: the portal designer. Lists the designed login pages (publish, unpublish,
//! delete, open), and edits one: title, colour theme or any colour picked or typed as a hex code, logo
//! and background (20 stock pictures or an upload), the pre-filled fields and options, with a live
//! preview of the login card as the relay would serve it and its warnings (contrast, visible password).
//!
//! Everything goes through `/api/admin/portal/…` (relay/src/portal_api.rs), the rules of
//! `relay portal page …`. Unsaved edits are kept in the browser's storage per page, so closing the
//! designer loses nothing; Save stores them (a published page shows them at once).

use super::{api, local_time, PageProps};
use crate::branding::LoginLook;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

const PAGES: &str = "/api/admin/portal/pages";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Colors {
    accent: String,
    accent_text: String,
    page: String,
    card: String,
    text: String,
    muted: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Background {
    Theme,
    Stock { number: u8 },
    Upload { asset: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Design {
    title: String,
    theme: String,
    colors: Colors,
    logo: Option<String>,
    background: Background,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
struct Preferences {
    username: String,
    password: String,
    domain: String,
    show_domain: Option<bool>,
    keyboard_layout: String,
    upload_path: String,
    download_path: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Warning {
    message: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct PortalPage {
    name: String,
    design: Design,
    preferences: Preferences,
    published: bool,
    updated_at: f64,
    url: String,
}

#[derive(Deserialize)]
struct PageList {
    pages: Vec<PortalPage>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Theme {
    name: String,
    label: String,
    colors: Colors,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct StockBackground {
    number: u8,
    url: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Defaults {
    design: Design,
    preferences: Preferences,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Catalogue {
    themes: Vec<Theme>,
    backgrounds: Vec<StockBackground>,
    defaults: Defaults,
}

#[derive(Deserialize)]
struct Preview {
    view: LoginLook,
    warnings: Vec<Warning>,
}

/// The login page the relay would serve for the unsaved values, or why it refuses them.
type PreviewResult = Result<(LoginLook, Vec<Warning>), String>;

/// A change to the unsaved values.
type Change = Box<dyn Fn(&mut Draft)>;

/// What is being edited: the design and preferences of one page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Draft {
    design: Design,
    preferences: Preferences,
}

/// The keyboard layouts the client offers (as language tags: `KeyboardLayout::by_tag`). A user's own
/// choice on the key bar wins over the page's.
const LAYOUTS: &[(&str, &str)] = &[
    ("", "The browser's language"),
    ("en-US", "English (US)"),
    ("en-GB", "English (UK)"),
    ("de-DE", "German"),
];

/// The colour fields, in the order shown.
const COLOR_FIELDS: &[(&str, &str)] = &[
    ("accent", "Accent"),
    ("accent_text", "Text on accent"),
    ("page", "Page"),
    ("card", "Card"),
    ("text", "Text"),
    ("muted", "Muted text"),
];

fn color_mut<'a>(colors: &'a mut Colors, field: &str) -> &'a mut String {
    match field {
        "accent" => &mut colors.accent,
        "accent_text" => &mut colors.accent_text,
        "page" => &mut colors.page,
        "card" => &mut colors.card,
        "text" => &mut colors.text,
        _ => &mut colors.muted,
    }
}

fn color_of(colors: &Colors, field: &str) -> String {
    color_mut(&mut colors.clone(), field).clone()
}

#[function_component]
pub fn Designer(props: &PageProps) -> Html {
    let pages = use_state(|| None::<Vec<PortalPage>>);
    let catalogue = use_state(|| None::<Catalogue>);
    let editing = use_state(|| None::<String>);
    let error = use_state(|| None::<String>);
    let reload = use_state(|| 0u32);
    {
        let (pages, catalogue, error, props) = (pages.clone(), catalogue.clone(), error.clone(), props.clone());
        use_effect_with(*reload, move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                if catalogue.is_none() {
                    match api::get::<Catalogue>("/api/admin/portal/catalogue").await {
                        Ok(loaded) => catalogue.set(Some(loaded)),
                        Err(e) => return error.set(Some(props.failed(e))),
                    }
                }
                match api::get::<PageList>(PAGES).await {
                    Ok(list) => pages.set(Some(list.pages)),
                    Err(e) => error.set(Some(props.failed(e))),
                }
            });
        });
    }
    let changed = {
        let reload = reload.clone();
        Callback::from(move |()| reload.set(reload.wrapping_add(1)))
    };
    let open = {
        let editing = editing.clone();
        Callback::from(move |name: String| editing.set(Some(name)))
    };
    let list = pages.as_ref().map(|pages| {
        html! { <PageTable pages={pages.clone()} props={props.clone()} open={open.clone()} changed={changed.clone()} error={error.clone()} /> }
    });
    let editor = match (&*editing, &*catalogue) {
        (Some(name), Some(catalogue)) => html! {
            <Editor key={name.clone()} name={name.clone()} catalogue={catalogue.clone()} props={props.clone()} changed={changed.clone()} />
        },
        _ => html! {},
    };
    html! {
        <>
            <p>{ "Design login pages, then publish them: a page named " }<code>{ "index" }</code>
               { " replaces the default login page, any other is served at /NAME.html." }</p>
            if let Some(message) = (*error).clone() {
                <div class="hd-error" role="alert" data-testid="admin-designer-error">{ message }</div>
            }
            { for list }
            <NewPage open={open} />
            { editor }
        </>
    }
}

#[derive(Properties, PartialEq)]
struct NewPageProps {
    open: Callback<String>,
}

/// A name, then the editor opens with the defaults (the page exists once saved).
#[function_component]
fn NewPage(props: &NewPageProps) -> Html {
    let name = use_node_ref();
    let onsubmit = {
        let (name, open) = (name.clone(), props.open.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let value = super::input_value(&name).trim().to_owned();
            if !value.is_empty() {
                open.emit(value);
            }
        })
    };
    html! {
        <form class="hd-admin-form" {onsubmit} aria-label="New page" novalidate=true>
            <label>{ "Page name (a-z, 0-9, -)" }
                <input ref={name} required=true maxlength="40" data-testid="admin-designer-new-name" /></label>
            <button type="submit" data-testid="admin-designer-new">{ "Design a new page" }</button>
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct TableProps {
    pages: Vec<PortalPage>,
    props: PageProps,
    open: Callback<String>,
    changed: Callback<()>,
    error: UseStateHandle<Option<String>>,
}

#[function_component]
fn PageTable(table: &TableProps) -> Html {
    if table.pages.is_empty() {
        return html! { <p data-testid="admin-designer-none">{ "No page designed yet: the default login page is served." }</p> };
    }
    let action = |name: &str, verb: &'static str| {
        let (props, changed, error) = (table.props.clone(), table.changed.clone(), table.error.clone());
        let path = format!("{PAGES}/{name}/{verb}");
        Callback::from(move |_: MouseEvent| {
            let (props, changed, error, path) = (props.clone(), changed.clone(), error.clone(), path.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let session = props.session.clone();
                let done = if verb == "delete" {
                    api::post_no_content(&session, &path, &json!({})).await
                } else {
                    api::post::<_, serde_json::Value>(&session, &path, &json!({})).await.map(drop)
                };
                match done {
                    Ok(()) => {
                        error.set(None);
                        changed.emit(());
                    }
                    Err(e) => error.set(Some(props.failed(e))),
                }
            });
        })
    };
    let rows = table.pages.iter().map(|page| {
        let name = page.name.clone();
        let edit = {
            let (open, name) = (table.open.clone(), name.clone());
            Callback::from(move |_: MouseEvent| open.emit(name.clone()))
        };
        let (toggle, toggle_label) = if page.published {
            (action(&name, "unpublish"), "Unpublish")
        } else {
            (action(&name, "publish"), "Publish")
        };
        html! {
            <tr data-testid={format!("admin-designer-row-{name}")}>
                <td>{ &page.name }</td>
                <td>if page.published { <a href={page.url.clone()} target="_blank" rel="noopener">{ &page.url }</a> }
                    else { { "not published" } }</td>
                <td>{ local_time(page.updated_at) }</td>
                <td>
                    <button type="button" onclick={edit} data-testid={format!("admin-designer-edit-{name}")}>{ "Edit" }</button>
                    <button type="button" onclick={toggle} data-testid={format!("admin-designer-toggle-{name}")}>{ toggle_label }</button>
                    <button type="button" class="hd-danger" onclick={action(&name, "delete")}
                            data-testid={format!("admin-designer-delete-{name}")}>{ "Delete" }</button>
                </td>
            </tr>
        }
    });
    html! {
        <table data-testid="admin-designer-pages">
            <thead><tr><th>{ "Page" }</th><th>{ "Served at" }</th><th>{ "Changed" }</th><th>{ "Actions" }</th></tr></thead>
            <tbody>{ for rows }</tbody>
        </table>
    }
}

#[derive(Properties, PartialEq)]
struct EditorProps {
    name: String,
    catalogue: Catalogue,
    props: PageProps,
    changed: Callback<()>,
}

/// The browser-storage key of a page's unsaved edits.
fn draft_key(name: &str) -> String {
    format!("homedesk.designer.draft.{name}")
}

fn storage() -> Option<web_sys::Storage> {
    gloo::utils::window().local_storage().ok().flatten()
}

fn stored_draft(name: &str) -> Option<Draft> {
    let text = storage()?.get_item(&draft_key(name)).ok().flatten()?;
    serde_json::from_str(&text).ok()
}

fn keep_draft(name: &str, draft: Option<&Draft>) {
    let Some(storage) = storage() else { return };
    match draft.and_then(|d| serde_json::to_string(d).ok()) {
        Some(text) => drop(storage.set_item(&draft_key(name), &text)),
        None => drop(storage.remove_item(&draft_key(name))),
    }
}

/// One page's design and preferences, its live preview, Save, Reset and Publish.
#[function_component]
fn Editor(editor: &EditorProps) -> Html {
    let name = editor.name.clone();
    let saved = use_state(|| None::<Option<PortalPage>>);
    let draft = use_state(|| None::<Draft>);
    let preview = use_state(|| None::<PreviewResult>);
    let notice = use_state(|| None::<(String, bool)>);
    {
        let (saved, draft, notice, name, props) =
            (saved.clone(), draft.clone(), notice.clone(), name.clone(), editor.props.clone());
        let defaults = editor.catalogue.defaults.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                let page = match api::get::<PortalPage>(&format!("{PAGES}/{name}")).await {
                    Ok(page) => Some(page),
                    Err(api::AdminError::Failed(_)) => None,
                    Err(e) => return notice.set(Some((props.failed(e), true))),
                };
                let stored = page.as_ref().map_or_else(
                    || Draft { design: defaults.design.clone(), preferences: defaults.preferences.clone() },
                    |p| Draft { design: p.design.clone(), preferences: p.preferences.clone() },
                );
                match stored_draft(&name).filter(|kept| *kept != stored) {
                    Some(kept) => {
                        notice.set(Some(("Your unsaved changes from last time are back: Save or Reset.".into(), false)));
                        draft.set(Some(kept));
                    }
                    None => draft.set(Some(stored)),
                }
                saved.set(Some(page));
            });
        });
    }
    {
        // The live preview: the relay checks the unsaved values and answers what the page would get.
        let (preview, session, name) = (preview.clone(), editor.props.session.clone(), name.clone());
        use_effect_with((*draft).clone(), move |draft| {
            if let Some(draft) = draft.clone() {
                wasm_bindgen_futures::spawn_local(async move {
                    let body = json!({ "design": draft.design, "preferences": draft.preferences, "name": name });
                    let result = api::post::<_, Preview>(&session, "/api/admin/portal/preview", &body).await;
                    preview.set(Some(result.map(|p| (p.view, p.warnings)).map_err(|e| e.message().to_owned())));
                });
            }
        });
    }
    let Some(current) = (*draft).clone() else {
        return html! { <section aria-busy="true" data-testid="admin-designer-loading"></section> };
    };
    let update = {
        let (draft, name) = (draft.clone(), name.clone());
        Callback::from(move |change: Change| {
            if let Some(mut next) = (*draft).clone() {
                change(&mut next);
                keep_draft(&name, Some(&next));
                draft.set(Some(next));
            }
        })
    };
    let published = matches!(&*saved, Some(Some(page)) if page.published);
    // Answers a page (save, reset, publish, uploads): it becomes the stored state.
    let on_page = {
        let (saved, draft, notice, name, changed) =
            (saved.clone(), draft.clone(), notice.clone(), name.clone(), editor.changed.clone());
        Callback::from(move |(page, keep_edits, message): (PortalPage, bool, String)| {
            let next = match ((*draft).clone(), keep_edits) {
                // An upload: the new image joins the unsaved edits.
                (Some(mut edits), true) => {
                    edits.design.logo = page.design.logo.clone();
                    edits.design.background = page.design.background.clone();
                    edits
                }
                _ => Draft { design: page.design.clone(), preferences: page.preferences.clone() },
            };
            let unsaved = next != Draft { design: page.design.clone(), preferences: page.preferences.clone() };
            keep_draft(&name, unsaved.then_some(&next));
            draft.set(Some(next));
            saved.set(Some(Some(page)));
            notice.set(Some((message, false)));
            changed.emit(());
        })
    };
    let post = {
        let (notice, props, on_page, name) = (notice.clone(), editor.props.clone(), on_page.clone(), name.clone());
        move |verb: &'static str, body: serde_json::Value, keep_edits: bool, message: &'static str| {
            let (notice, props, on_page) = (notice.clone(), props.clone(), on_page.clone());
            let path = if verb.is_empty() { format!("{PAGES}/{name}") } else { format!("{PAGES}/{name}/{verb}") };
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<_, PortalPage>(&props.session, &path, &body).await {
                    Ok(page) => on_page.emit((page, keep_edits, message.to_owned())),
                    Err(e) => notice.set(Some((props.failed(e), true))),
                }
            });
        }
    };
    let save = {
        let (post, current) = (post.clone(), current.clone());
        let message = if published { "Saved: the published page shows it now." } else { "Saved." };
        Callback::from(move |_: MouseEvent| post("", json!(current), false, message))
    };
    let reset = {
        let post = post.clone();
        Callback::from(move |_: MouseEvent| post("reset", json!({}), false, "Back to the default look."))
    };
    let toggle = {
        let post = post.clone();
        Callback::from(move |_: MouseEvent| {
            if published {
                post("unpublish", json!({}), true, "Unpublished: the page is no longer served.")
            } else {
                post("publish", json!({}), true, "Published.")
            }
        })
    };
    let upload = {
        let (post, notice) = (post.clone(), notice.clone());
        Callback::from(move |(verb, input): (&'static str, HtmlInputElement)| {
            let (post, notice) = (post.clone(), notice.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match read_base64(&input).await {
                    Ok(data) => post(verb, json!({ "data_base64": data }), true, "Image uploaded."),
                    Err(message) => notice.set(Some((message, true))),
                }
            });
        })
    };
    let notice_view = (*notice).clone().map(|(text, is_error)| {
        html! {
            <p class={if is_error { "hd-error" } else { "hd-error hd-info" }} role={if is_error { "alert" } else { "status" }}
               data-testid="admin-designer-notice">{ text }</p>
        }
    });
    let stored = matches!(&*saved, Some(Some(_)));
    html! {
        <section class="hd-designer" aria-labelledby="hd-designer-title" data-testid="admin-designer-editor">
            <h2 id="hd-designer-title">{ format!("Page \"{name}\"") }
                { if published { " (published)" } else if stored { " (not published)" } else { " (new)" } }</h2>
            { for notice_view }
            <div class="hd-designer-columns">
                <div class="hd-designer-fields">
                    <DesignFields draft={current.clone()} catalogue={editor.catalogue.clone()} update={update.clone()} {upload} />
                    <PreferenceFields draft={current.clone()} update={update.clone()} />
                    <div class="hd-admin-form">
                        <button type="button" onclick={save} data-testid="admin-designer-save">{ "Save" }</button>
                        <button type="button" onclick={toggle} disabled={!stored} data-testid="admin-designer-publish">
                            { if published { "Unpublish" } else { "Publish" } }</button>
                        <button type="button" class="hd-danger" onclick={reset} disabled={!stored}
                                data-testid="admin-designer-reset">{ "Reset to defaults" }</button>
                    </div>
                </div>
                <PreviewPane preview={(*preview).clone()} />
            </div>
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct FieldsProps {
    draft: Draft,
    catalogue: Catalogue,
    update: Callback<Change>,
    upload: Callback<(&'static str, HtmlInputElement)>,
}

fn input_of(event: &Event) -> Option<HtmlInputElement> {
    event.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
}

fn select_of(event: &Event) -> Option<HtmlSelectElement> {
    event.target().and_then(|t| t.dyn_into::<HtmlSelectElement>().ok())
}

/// An `oninput` that applies the field's new text to the draft.
fn on_text(update: &Callback<Change>, set: fn(&mut Draft, String)) -> Callback<InputEvent> {
    let update = update.clone();
    Callback::from(move |event: InputEvent| {
        if let Some(input) = input_of(&event) {
            let value = input.value();
            update.emit(Box::new(move |d: &mut Draft| set(d, value.clone())));
        }
    })
}

/// Title, theme, colours, logo and background.
#[function_component]
fn DesignFields(fields: &FieldsProps) -> Html {
    let design = &fields.draft.design;
    let update = &fields.update;
    let on_theme = {
        let (update, themes) = (update.clone(), fields.catalogue.themes.clone());
        Callback::from(move |event: Event| {
            let Some(name) = select_of(&event).map(|s| s.value()) else { return };
            let colors = themes.iter().find(|t| t.name == name).map(|t| t.colors.clone());
            update.emit(Box::new(move |d: &mut Draft| {
                d.design.theme = name.clone();
                if let Some(colors) = &colors {
                    d.design.colors = colors.clone();
                }
            }));
        })
    };
    let theme_options = fields.catalogue.themes.iter().map(|t| {
        html! { <option value={t.name.clone()} selected={t.name == design.theme}>{ &t.label }</option> }
    });
    let colors = COLOR_FIELDS.iter().map(|&(field, label)| {
        let value = color_of(&design.colors, field);
        let set = {
            let update = update.clone();
            Callback::from(move |event: InputEvent| {
                if let Some(input) = input_of(&event) {
                    let value = input.value();
                    update.emit(Box::new(move |d: &mut Draft| {
                        *color_mut(&mut d.design.colors, field) = value.clone();
                        d.design.theme = "custom".to_owned();
                    }));
                }
            })
        };
        html! {
            <label>{ label }
                <span class="hd-designer-color">
                    <input type="color" value={value.clone()} oninput={set.clone()} aria-label={format!("{label} colour picker")}
                           data-testid={format!("admin-designer-pick-{field}")} />
                    <input type="text" value={value} oninput={set} maxlength="7" size="8" aria-label={format!("{label} colour (hex)")}
                           data-testid={format!("admin-designer-color-{field}")} />
                </span>
            </label>
        }
    });
    let file_change = |verb: &'static str| {
        let upload = fields.upload.clone();
        Callback::from(move |event: Event| {
            if let Some(input) = input_of(&event) {
                upload.emit((verb, input));
            }
        })
    };
    let background_button = |choice: Background, label: String, image: Option<String>| {
        let pressed = design.background == choice;
        let testid = match &choice {
            Background::Theme => "admin-designer-bg-theme".to_owned(),
            Background::Stock { number } => format!("admin-designer-bg-{number}"),
            Background::Upload { .. } => "admin-designer-bg-upload".to_owned(),
        };
        let onclick = {
            let update = update.clone();
            Callback::from(move |_: MouseEvent| {
                let choice = choice.clone();
                update.emit(Box::new(move |d: &mut Draft| d.design.background = choice.clone()));
            })
        };
        html! {
            <button type="button" class="hd-designer-swatch" aria-pressed={pressed.to_string()} aria-label={label.clone()}
                    title={label.clone()} {onclick} data-testid={testid}>
                if let Some(src) = image { <img src={src} alt="" loading="lazy" /> } else { { label } }
            </button>
        }
    };
    let stock = fields.catalogue.backgrounds.iter().map(|b| {
        background_button(Background::Stock { number: b.number }, format!("Picture {}", b.number), Some(b.url.clone()))
    });
    let uploaded = match &design.background {
        Background::Upload { asset } => Some(background_button(
            Background::Upload { asset: asset.clone() },
            "Your uploaded picture".to_owned(),
            Some(format!("/api/portal/assets/{asset}")),
        )),
        _ => None,
    };
    let remove_logo = {
        let update = update.clone();
        Callback::from(move |_: MouseEvent| update.emit(Box::new(|d: &mut Draft| d.design.logo = None)))
    };
    html! {
        <fieldset class="hd-admin-form" data-testid="admin-designer-design">
            <legend>{ "Design" }</legend>
            <label>{ "Title" }
                <input value={design.title.clone()} maxlength="80" oninput={on_text(update, |d, v| d.design.title = v)}
                       data-testid="admin-designer-title" /></label>
            <label>{ "Colour theme" }
                <select onchange={on_theme} data-testid="admin-designer-theme">
                    { for theme_options }
                    <option value="custom" selected={design.theme == "custom"}>{ "Custom colours" }</option>
                </select></label>
            { for colors }
            <label>{ "Logo (PNG, JPEG or WebP, at most 256 KB)" }
                <input type="file" accept="image/png,image/jpeg,image/webp" onchange={file_change("logo")}
                       data-testid="admin-designer-logo" /></label>
            <button type="button" onclick={remove_logo} disabled={design.logo.is_none()}
                    data-testid="admin-designer-logo-remove">{ "Use the Homedesk logo" }</button>
            <div class="hd-designer-backgrounds" role="group" aria-label="Background">
                { background_button(Background::Theme, "Theme colour only".to_owned(), None) }
                { for stock }
                { for uploaded }
            </div>
            <label>{ "Your own background (PNG, JPEG or WebP, at most 1 MB)" }
                <input type="file" accept="image/png,image/jpeg,image/webp" onchange={file_change("background")}
                       data-testid="admin-designer-background" /></label>
        </fieldset>
    }
}

#[derive(Properties, PartialEq)]
struct PreferenceProps {
    draft: Draft,
    update: Callback<Change>,
}

/// The pre-filled fields, the domain field's visibility, keyboard layout and transfer folders.
#[function_component]
fn PreferenceFields(fields: &PreferenceProps) -> Html {
    let p = &fields.draft.preferences;
    let update = &fields.update;
    let on_show_domain = {
        let update = update.clone();
        Callback::from(move |event: Event| {
            let value = select_of(&event).map(|s| s.value()).unwrap_or_default();
            let choice = match value.as_str() {
                "show" => Some(true),
                "hide" => Some(false),
                _ => None,
            };
            update.emit(Box::new(move |d: &mut Draft| d.preferences.show_domain = choice));
        })
    };
    let on_layout = {
        let update = update.clone();
        Callback::from(move |event: Event| {
            let value = select_of(&event).map(|s| s.value()).unwrap_or_default();
            update.emit(Box::new(move |d: &mut Draft| d.preferences.keyboard_layout = value.clone()));
        })
    };
    let layouts = LAYOUTS.iter().map(|&(tag, label)| {
        html! { <option value={tag} selected={p.keyboard_layout == tag}>{ label }</option> }
    });
    html! {
        <fieldset class="hd-admin-form" data-testid="admin-designer-preferences">
            <legend>{ "Preferences" }</legend>
            <label>{ "Default user name" }
                <input value={p.username.clone()} oninput={on_text(update, |d, v| d.preferences.username = v)}
                       data-testid="admin-designer-username" /></label>
            <label>{ "Default password (visible to anyone who opens the page)" }
                <input value={p.password.clone()} oninput={on_text(update, |d, v| d.preferences.password = v)}
                       data-testid="admin-designer-password" /></label>
            <label>{ "Default domain" }
                <input value={p.domain.clone()} oninput={on_text(update, |d, v| d.preferences.domain = v)}
                       data-testid="admin-designer-domain" /></label>
            <label>{ "Domain field" }
                <select onchange={on_show_domain} data-testid="admin-designer-show-domain">
                    <option value="" selected={p.show_domain.is_none()}>{ "As the portal setting" }</option>
                    <option value="show" selected={p.show_domain == Some(true)}>{ "Shown" }</option>
                    <option value="hide" selected={p.show_domain == Some(false)}>{ "Hidden" }</option>
                </select></label>
            <label>{ "Keyboard layout" }
                <select onchange={on_layout} data-testid="admin-designer-layout">{ for layouts }</select></label>
            <label>{ "Upload folder in the Browser drive" }
                <input value={p.upload_path.clone()} oninput={on_text(update, |d, v| d.preferences.upload_path = v)}
                       placeholder="Uploads" title="A folder in the drive \"Browser\" the workstation sees (e.g. Inbox or Team/In); empty: Uploads"
                       data-testid="admin-designer-upload-path" /></label>
            <label>{ "Download folder in the Browser drive" }
                <input value={p.download_path.clone()} oninput={on_text(update, |d, v| d.preferences.download_path = v)}
                       placeholder="Downloads" title="Files the workstation saves in this folder of the drive \"Browser\" are downloaded by the browser; empty: Downloads"
                       data-testid="admin-designer-download-path" /></label>
            <p class="hd-admin-muted" data-testid="admin-designer-folders-hint">{ "Upload and download folders are folders in the Browser drive, which the workstation sees as a redirected drive (xrdp: ~/thinclient_drives/Browser), e.g. Inbox or Team/In. Empty: Uploads and Downloads." }</p>
        </fieldset>
    }
}

#[derive(Properties, PartialEq)]
struct PreviewProps {
    preview: Option<PreviewResult>,
}

/// The login card as the page would show it, coloured through the CSSOM like the page itself.
#[function_component]
fn PreviewPane(props: &PreviewProps) -> Html {
    let frame = use_node_ref();
    let look = match &props.preview {
        Some(Ok((look, _))) => Some(look.clone()),
        _ => None,
    };
    {
        let frame = frame.clone();
        use_effect_with(look.clone(), move |look| {
            let design = look.as_ref().and_then(|l| l.design.as_ref());
            if let (Some(element), Some(design)) = (frame.cast::<HtmlElement>(), design) {
                crate::branding::apply_to(&element, design);
            }
        });
    }
    let warnings = match &props.preview {
        Some(Ok((_, warnings))) => warnings.iter().map(|w| html! { <li>{ &w.message }</li> }).collect::<Html>(),
        _ => html! {},
    };
    let refused = match &props.preview {
        Some(Err(message)) => html! { <p class="hd-error" role="alert" data-testid="admin-designer-preview-error">{ message }</p> },
        _ => html! {},
    };
    let card = look.map(|look| {
        let p = &look.preferences;
        html! {
            <div class="hd-login">
                <div class="hd-card" data-testid="admin-designer-preview-card">
                    <div class="hd-brand">
                        <img src={look.logo_url().to_owned()} alt="" data-testid="admin-designer-preview-logo" />
                        <h1 data-testid="admin-designer-preview-title">{ look.title() }</h1>
                    </div>
                    <div class="hd-field"><label for="hd-preview-user">{ "User name" }</label>
                        <input id="hd-preview-user" readonly=true value={p.username.clone()} data-testid="admin-designer-preview-username" /></div>
                    <div class="hd-field"><label for="hd-preview-password">{ "Password" }</label>
                        <input id="hd-preview-password" type="password" readonly=true value={p.password.clone()} /></div>
                    if look.show_domain {
                        <div class="hd-field"><label for="hd-preview-domain">{ "Domain" }</label>
                            <input id="hd-preview-domain" readonly=true value={p.domain.clone()} data-testid="admin-designer-preview-domain" /></div>
                    }
                    <button type="button" class="hd-button" tabindex="-1" data-testid="admin-designer-preview-button">{ "Sign in" }</button>
                </div>
            </div>
        }
    });
    html! {
        <section class="hd-designer-preview-pane" aria-label="Preview">
            <h3>{ "Preview" }</h3>
            { refused }
            <div class="hd-designer-preview" ref={frame} data-testid="admin-designer-preview">{ for card }</div>
            <ul class="hd-designer-warnings" role="status" data-testid="admin-designer-warnings">{ warnings }</ul>
        </section>
    }
}

/// Largest image read (the relay's limit for backgrounds; logos are checked there at 256 KB).
const MAX_IMAGE_BYTES: f64 = 1_048_576.0;

/// The chosen file of a file input, in standard base64 (what the relay's upload takes).
async fn read_base64(input: &HtmlInputElement) -> Result<String, String> {
    use base64::Engine;
    let file = input.files().and_then(|files| files.get(0)).ok_or("Choose an image file first.")?;
    if file.size() > MAX_IMAGE_BYTES {
        return Err(format!("{} is larger than 1 MB: choose a smaller image.", file.name()));
    }
    let buffer = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
        .await
        .map_err(|_| format!("{} cannot be read.", file.name()))?;
    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}
