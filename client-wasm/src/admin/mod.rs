//! The browser admin console at `/admin`: sign-in (administrators only), a navigation bar and the
//! pages of the registry below, each at `/admin/<slug>`.
//!
//! To add a page: write `admin/<page>.rs` with a function component that takes [`PageProps`], declare
//! it with `mod <page>;` here, and add one variant to [`Page`] (in `Page::ALL`, in navigation order)
//! with its arm in `Page::entry`. Pages call the relay through [`api`] and hand any error to
//! [`PageProps::failed`], which returns the sentence to show (and signs out when the session ended).

pub mod api;
mod assignments;
mod audit;
mod certificate;
mod client_settings;
mod designer;
mod directory;
mod home;
mod security;
mod server;
mod sessions;
mod signin;
mod twofa;
mod users;
mod workstations;

use api::{AdminError, AdminSession};
use gloo::events::EventListener;
use yew::prelude::*;

/// The console's pages (the registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Home,
    Workstations,
    Users,
    Assignments,
    Sessions,
    AuditLog,
    ClientSettings,
    PortalPages,
    TwoFactor,
    Directory,
    Security,
    Certificate,
    Server,
}

/// What the console needs to know about a page.
struct Entry {
    /// The path below `/admin/` (empty for the start page).
    slug: &'static str,
    /// The navigation bar's label and the page's heading.
    title: &'static str,
    view: fn(PageProps) -> Html,
}

impl Page {
    /// Navigation order.
    const ALL: &'static [Page] = &[
        Page::Home,
        Page::Workstations,
        Page::Users,
        Page::Assignments,
        Page::Sessions,
        Page::AuditLog,
        Page::ClientSettings,
        Page::PortalPages,
        Page::TwoFactor,
        Page::Directory,
        Page::Security,
        Page::Certificate,
        Page::Server,
    ];

    fn entry(self) -> Entry {
        match self {
            Page::Home => Entry {
                slug: "",
                title: "Overview",
                view: |props| html! { <home::Home ..props /> },
            },
            Page::Workstations => Entry {
                slug: "workstations",
                title: "Workstations",
                view: |props| html! { <workstations::Workstations ..props /> },
            },
            Page::Users => Entry {
                slug: "users",
                title: "Users & groups",
                view: |props| html! { <users::Users ..props /> },
            },
            Page::Assignments => Entry {
                slug: "assignments",
                title: "Assignments",
                view: |props| html! { <assignments::Assignments ..props /> },
            },
            Page::Sessions => Entry {
                slug: "sessions",
                title: "Sessions",
                view: |props| html! { <sessions::Sessions ..props /> },
            },
            Page::AuditLog => Entry {
                slug: "audit",
                title: "Audit log",
                view: |props| html! { <audit::AuditLog ..props /> },
            },
            Page::ClientSettings => Entry {
                slug: "client-settings",
                title: "HTML5 client",
                view: |props| html! { <client_settings::ClientSettingsPage ..props /> },
            },
            Page::PortalPages => Entry {
                slug: "portal-pages",
                title: "Portal pages",
                view: |props| html! { <designer::Designer ..props /> },
            },
            Page::TwoFactor => Entry {
                slug: "two-factor",
                title: "Two-factor",
                view: |props| html! { <twofa::TwoFactor ..props /> },
            },
            Page::Directory => Entry {
                slug: "directory",
                title: "Directory",
                view: |props| html! { <directory::DirectoryPage ..props /> },
            },
            Page::Security => Entry {
                slug: "security",
                title: "Security",
                view: |props| html! { <security::Security ..props /> },
            },
            Page::Certificate => Entry {
                slug: "certificate",
                title: "HTTPS certificate",
                view: |props| html! { <certificate::CertificatePage ..props /> },
            },
            Page::Server => Entry {
                slug: "server",
                title: "Web server",
                view: |props| html! { <server::ServerPage ..props /> },
            },
        }
    }

    /// The page for a browser path (`/admin`, `/admin/<slug>`, with or without a trailing slash).
    fn from_path(path: &str) -> Page {
        let slug = path.trim_start_matches("/admin").trim_matches('/');
        Page::ALL
            .iter()
            .copied()
            .find(|page| page.entry().slug == slug)
            .unwrap_or(Page::Home)
    }

    fn path(self) -> String {
        match self.entry().slug {
            "" => "/admin".to_owned(),
            slug => format!("/admin/{slug}"),
        }
    }
}

/// What every console page gets.
#[derive(Properties, Clone, PartialEq)]
pub struct PageProps {
    pub session: AdminSession,
    /// Tells the console that the session ended (with the reason to show on the sign-in form).
    pub on_signed_out: Callback<String>,
}

impl PageProps {
    /// The sentence to show for a failed request; a request refused because the session ended
    /// returns to the sign-in form instead.
    pub fn failed(&self, error: AdminError) -> String {
        if let AdminError::SignedOut(message) = &error {
            self.on_signed_out.emit(message.clone());
        }
        error.message().to_owned()
    }
}

/// Loads `path` once, when the page first renders: the answer goes to `loaded`, a failure's sentence
/// ([`PageProps::failed`]) to `failed`.
#[hook]
pub fn use_load<T, L, F>(path: &'static str, props: &PageProps, loaded: L, failed: F)
where
    T: serde::de::DeserializeOwned + 'static,
    L: FnOnce(T) + 'static,
    F: FnOnce(String) + 'static,
{
    let props = props.clone();
    use_effect_with((), move |_| {
        wasm_bindgen_futures::spawn_local(async move {
            match api::get::<T>(path).await {
                Ok(value) => loaded(value),
                Err(error) => failed(props.failed(error)),
            }
        });
    });
}

/// For [`use_load`]: puts what arrives into an optional state.
pub fn set_some<T: 'static>(state: &UseStateHandle<Option<T>>) -> impl FnOnce(T) {
    let state = state.clone();
    move |value| state.set(Some(value))
}

/// For [`use_load`]: a failure's sentence as an error notice.
pub fn set_error(notice: &UseStateHandle<Option<(String, bool)>>) -> impl FnOnce(String) {
    let notice = notice.clone();
    move |message| notice.set(Some((message, true)))
}

#[derive(Clone, PartialEq)]
enum State {
    /// Asking the relay whether the browser's cookie already belongs to an administrator.
    Starting,
    SignIn {
        notice: Option<signin::Notice>,
    },
    Console {
        session: AdminSession,
    },
}

#[function_component]
pub fn AdminApp() -> Html {
    let state = use_state(|| State::Starting);
    let page = use_state(|| Page::from_path(&current_path()));
    {
        let state = state.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                state.set(match api::session().await {
                    Ok(session) => State::Console { session },
                    Err(AdminError::SignedOut(_)) => State::SignIn { notice: None },
                    Err(AdminError::Failed(message)) => State::SignIn {
                        notice: Some(signin::Notice::error(message)),
                    },
                });
            });
        });
    }
    {
        // The browser's back and forward buttons move between pages.
        let page = page.clone();
        use_effect_with((), move |_| {
            let listener = EventListener::new(&gloo::utils::window(), "popstate", move |_| {
                page.set(Page::from_path(&current_path()));
            });
            move || drop(listener)
        });
    }
    match (*state).clone() {
        State::Starting => html! { <main class="hd-login" aria-busy="true"></main> },
        State::SignIn { notice } => {
            let on_signed_in = {
                let state = state.clone();
                Callback::from(move |session| state.set(State::Console { session }))
            };
            html! { <signin::SignIn {notice} {on_signed_in} /> }
        }
        State::Console { session } => {
            let on_signed_out = {
                let state = state.clone();
                Callback::from(move |message: String| {
                    state.set(State::SignIn {
                        notice: Some(signin::Notice::info(message)),
                    })
                })
            };
            html! { <Console {session} page={*page} on_navigate={navigate(page)} {on_signed_out} /> }
        }
    }
}

fn current_path() -> String {
    gloo::utils::window().location().pathname().unwrap_or_default()
}

/// Shows a page and puts its path in the address bar (so reload and bookmarks keep it).
fn navigate(page: UseStateHandle<Page>) -> Callback<Page> {
    Callback::from(move |next: Page| {
        if let Ok(history) = gloo::utils::window().history() {
            let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&next.path()));
        }
        page.set(next);
    })
}

#[derive(Properties, PartialEq)]
struct ConsoleProps {
    session: AdminSession,
    page: Page,
    on_navigate: Callback<Page>,
    on_signed_out: Callback<String>,
}

/// The navigation bar and the current page.
#[function_component]
fn Console(props: &ConsoleProps) -> Html {
    let links = Page::ALL.iter().copied().map(|page| {
        let onclick = {
            let on_navigate = props.on_navigate.clone();
            Callback::from(move |event: MouseEvent| {
                event.prevent_default();
                on_navigate.emit(page);
            })
        };
        let current = page == props.page;
        html! {
            <li>
                <a href={page.path()} {onclick} aria-current={current.then_some("page")}
                   data-testid={format!("admin-nav-{}", page_id(page))}>{ page.entry().title }</a>
            </li>
        }
    });
    let sign_out = {
        let (session, on_signed_out) = (props.session.clone(), props.on_signed_out.clone());
        Callback::from(move |_: MouseEvent| {
            let (session, on_signed_out) = (session.clone(), on_signed_out.clone());
            wasm_bindgen_futures::spawn_local(async move {
                signin::sign_out(&session).await;
                on_signed_out.emit("You have signed out.".to_owned());
            });
        })
    };
    let entry = props.page.entry();
    let page_props = PageProps {
        session: props.session.clone(),
        on_signed_out: props.on_signed_out.clone(),
    };
    html! {
        <div class="hd-admin">
            <header class="hd-admin-bar">
                <span class="hd-admin-brand"><img src="/images/logo.svg" alt="" />{ "Homedesk admin" }</span>
                <nav aria-label="Admin console" data-testid="admin-nav"><ul>{ for links }</ul></nav>
                <span class="hd-admin-user" data-testid="admin-user">{ &props.session.username }</span>
                <button type="button" onclick={sign_out} data-testid="admin-logout">{ "Sign out" }</button>
            </header>
            <main class="hd-admin-page" data-testid={format!("admin-page-{}", page_id(props.page))}>
                <h1>{ entry.title }</h1>
                { (entry.view)(page_props) }
            </main>
        </div>
    }
}

/// A page's name in `data-testid`s: its slug, `home` for the start page.
fn page_id(page: Page) -> &'static str {
    match page.entry().slug {
        "" => "home",
        slug => slug,
    }
}

/// Runs a change, then shows the list again (reload) or the reason it failed.
pub fn act(
    props: &PageProps,
    error: &UseStateHandle<Option<String>>,
    reload: &UseStateHandle<u32>,
    change: impl std::future::Future<Output = Result<(), AdminError>> + 'static,
) {
    let (props, error, reload) = (props.clone(), error.clone(), reload.clone());
    wasm_bindgen_futures::spawn_local(async move {
        match change.await {
            Ok(()) => {
                error.set(None);
                reload.set(reload.wrapping_add(1));
            }
            Err(e) => error.set(Some(props.failed(e))),
        }
    });
}

pub fn input_value(node: &NodeRef) -> String {
    node.cast::<web_sys::HtmlInputElement>()
        .map(|input| input.value())
        .unwrap_or_default()
}

/// A Unix-ms time as the browser's local date and time.
pub fn local_time(ms: f64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    String::from(date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}
