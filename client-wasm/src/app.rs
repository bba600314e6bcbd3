//! The portal's pages: login, a chooser when the user has several workstations, then the desktop;
//! a session that ends brings the user back to login with the reason shown.

use crate::api;
use crate::desktop::{Desktop, Outcome};
use crate::session::Credentials;
use std::rc::Rc;
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Clone, PartialEq)]
enum Page {
    Login { message: Option<Notice>, username: String },
    Choose { portal: api::PortalSession, credentials: Rc<SharedCredentials> },
    Desktop { portal: api::PortalSession, ticket: api::Ticket, credentials: Rc<SharedCredentials> },
}

/// Where a successful sign-in leads.
type SignedIn = (api::PortalSession, Rc<SharedCredentials>, Option<api::Ticket>);

#[derive(Clone, PartialEq)]
struct Notice {
    text: String,
    is_error: bool,
}

/// The password stays in memory only for the RDP logon (single sign-on); it is never stored.
pub struct SharedCredentials {
    pub username: String,
    pub password: String,
}

impl PartialEq for SharedCredentials {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl SharedCredentials {
    pub fn to_credentials(&self) -> Credentials {
        Credentials { username: self.username.clone(), password: self.password.clone() }
    }
}

#[function_component]
pub fn App() -> Html {
    let page = use_state(|| Page::Login { message: None, username: String::new() });
    match (*page).clone() {
        Page::Login { message, username } => {
            let on_ready = {
                let page = page.clone();
                Callback::from(move |(portal, credentials, ticket): SignedIn| match ticket {
                    Some(ticket) => page.set(Page::Desktop { portal, ticket, credentials }),
                    None => page.set(Page::Choose { portal, credentials }),
                })
            };
            html! { <Login {message} {username} {on_ready} /> }
        }
        Page::Choose { portal, credentials } => {
            let on_ticket = {
                let (page, portal, credentials) = (page.clone(), portal.clone(), credentials.clone());
                Callback::from(move |ticket| {
                    page.set(Page::Desktop { portal: portal.clone(), ticket, credentials: credentials.clone() })
                })
            };
            html! { <Chooser {portal} {on_ticket} /> }
        }
        Page::Desktop { portal, ticket, credentials } => {
            let on_end = {
                let page = page.clone();
                let username = credentials.username.clone();
                Callback::from(move |outcome: Outcome| {
                    let message = Some(Notice { text: outcome.message, is_error: outcome.is_error });
                    page.set(Page::Login { message, username: username.clone() })
                })
            };
            html! { <Desktop {portal} {ticket} {credentials} {on_end} /> }
        }
    }
}

#[derive(Properties, PartialEq)]
struct LoginProps {
    message: Option<Notice>,
    /// Kept from the session that just ended, so only the password is typed again.
    username: String,
    on_ready: Callback<SignedIn>,
}

#[function_component]
fn Login(props: &LoginProps) -> Html {
    let username = use_node_ref();
    let password = use_node_ref();
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);

    let onsubmit = {
        let (username, password, busy, error, on_ready) =
            (username.clone(), password.clone(), busy.clone(), error.clone(), props.on_ready.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let user = input_value(&username);
            let pass = input_value(&password);
            if user.trim().is_empty() || pass.is_empty() {
                error.set(Some("Enter your username and password.".to_owned()));
                return;
            }
            busy.set(true);
            error.set(None);
            let (busy, error, on_ready) = (busy.clone(), error.clone(), on_ready.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match sign_in(user.trim().to_owned(), pass).await {
                    Ok(ready) => on_ready.emit(ready),
                    Err(message) => {
                        busy.set(false);
                        error.set(Some(message));
                    }
                }
            });
        })
    };

    let shown = (*error).clone().map(|text| Notice { text, is_error: true }).or_else(|| props.message.clone());
    html! {
        <main class="hd-login">
            <form class="hd-card" {onsubmit} data-testid="login-form" novalidate=true>
                <div class="hd-brand">
                    <img src="images/logo.svg" alt="" />
                    <h1>{ "Homedesk" }</h1>
                </div>
                <p class="hd-tagline">{ "Sign in to reach your office computer." }</p>
                if let Some(notice) = shown {
                    <div class={if notice.is_error { "hd-error" } else { "hd-error hd-info" }} role="alert"
                         data-testid={if notice.is_error { "login-error" } else { "login-info" }}>
                        { notice.text }
                    </div>
                }
                <div class="hd-field">
                    <label for="hd-username">{ "Username" }</label>
                    <input id="hd-username" ref={username} type="text" autocomplete="username"
                           value={props.username.clone()} autofocus={props.username.is_empty()}
                           autocapitalize="none" spellcheck="false" data-testid="login-username" />
                </div>
                <div class="hd-field">
                    <label for="hd-password">{ "Password" }</label>
                    <input id="hd-password" ref={password} type="password" autocomplete="current-password"
                           autofocus={!props.username.is_empty()}
                           data-testid="login-password" />
                </div>
                <button class="hd-button" type="submit" disabled={*busy} data-testid="login-submit">
                    { if *busy { "Signing in…" } else { "Sign in" } }
                </button>
            </form>
        </main>
    }
}

/// Signs in; with one workstation (or none: the relay says so) a ticket follows at once, with several
/// the user chooses first.
async fn sign_in(username: String, password: String) -> Result<SignedIn, String> {
    let portal = api::login(&username, &password).await?;
    let credentials = Rc::new(SharedCredentials { username, password });
    if portal.workstations.len() > 1 {
        return Ok((portal, credentials, None));
    }
    let ticket = api::ticket(&portal, None).await?;
    Ok((portal, credentials, Some(ticket)))
}

#[derive(Properties, PartialEq)]
struct ChooserProps {
    portal: api::PortalSession,
    on_ticket: Callback<api::Ticket>,
}

/// A user with several workstations (e.g. an office PC and a lab PC) picks one.
#[function_component]
fn Chooser(props: &ChooserProps) -> Html {
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let choices = props.portal.workstations.iter().map(|workstation| {
        let onclick = {
            let (busy, error, portal, on_ticket) =
                (busy.clone(), error.clone(), props.portal.clone(), props.on_ticket.clone());
            let id = workstation.id;
            Callback::from(move |_: MouseEvent| {
                busy.set(true);
                let (busy, error, portal, on_ticket) = (busy.clone(), error.clone(), portal.clone(), on_ticket.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    match api::ticket(&portal, Some(id)).await {
                        Ok(ticket) => on_ticket.emit(ticket),
                        Err(message) => {
                            busy.set(false);
                            error.set(Some(message));
                        }
                    }
                });
            })
        };
        html! {
            <li>
                <button class="hd-button hd-choice" type="button" {onclick} disabled={*busy}
                        data-testid="workstation-choice">{ &workstation.name }</button>
            </li>
        }
    });
    html! {
        <main class="hd-login">
            <section class="hd-card" aria-labelledby="hd-choose-title">
                <div class="hd-brand">
                    <img src="images/logo.svg" alt="" />
                    <h1 id="hd-choose-title">{ "Homedesk" }</h1>
                </div>
                <p class="hd-tagline">{ format!("Welcome, {}. Which computer do you want to use?", props.portal.username) }</p>
                if let Some(message) = (*error).clone() {
                    <div class="hd-error" role="alert" data-testid="chooser-error">{ message }</div>
                }
                <ul class="hd-choices" data-testid="workstation-chooser">{ for choices }</ul>
            </section>
        </main>
    }
}

fn input_value(node: &NodeRef) -> String {
    node.cast::<HtmlInputElement>().map(|input| input.value()).unwrap_or_default()
}
