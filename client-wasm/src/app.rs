//! The portal's pages: login, the second factor (enrolment with a QR code, or a code) when the relay
//! asks for it, a chooser when the user has several workstations, then the desktop; a session that
//! ends brings the user back to login with the reason shown.

use crate::api;
use crate::branding;
use crate::desktop::{Desktop, Outcome};
use crate::session::Credentials;
use std::rc::Rc;
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Clone, PartialEq)]
enum Page {
    Login { message: Option<Notice>, username: String },
    SecondFactor { pending: api::PendingLogin, credentials: Rc<SharedCredentials> },
    Choose { portal: api::PortalSession, credentials: Rc<SharedCredentials> },
    Desktop { portal: api::PortalSession, ticket: api::Ticket, credentials: Rc<SharedCredentials> },
}

/// Where a successful sign-in leads.
type SignedIn = (api::PortalSession, Rc<SharedCredentials>, Option<api::Ticket>);

/// What the password step leads to.
enum LoginStep {
    Ready(SignedIn),
    SecondFactor(api::PendingLogin, Rc<SharedCredentials>),
}

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
    let on_ready = {
        let page = page.clone();
        Callback::from(move |(portal, credentials, ticket): SignedIn| match ticket {
            Some(ticket) => page.set(Page::Desktop { portal, ticket, credentials }),
            None => page.set(Page::Choose { portal, credentials }),
        })
    };
    match (*page).clone() {
        Page::Login { message, username } => {
            let on_second_factor = {
                let page = page.clone();
                Callback::from(move |(pending, credentials)| page.set(Page::SecondFactor { pending, credentials }))
            };
            html! { <Login {message} {username} {on_ready} {on_second_factor} /> }
        }
        Page::SecondFactor { pending, credentials } => {
            let on_cancel = {
                let page = page.clone();
                let username = credentials.username.clone();
                Callback::from(move |_| page.set(Page::Login { message: None, username: username.clone() }))
            };
            html! { <SecondFactorPage {pending} {credentials} {on_ready} {on_cancel} /> }
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
    on_second_factor: Callback<(api::PendingLogin, Rc<SharedCredentials>)>,
}

#[function_component]
fn Login(props: &LoginProps) -> Html {
    let username = use_node_ref();
    let password = use_node_ref();
    let domain = use_node_ref();
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let look = use_state(branding::LoginLook::default);
    {
        let look = look.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                look.set(branding::load().await);
            });
        });
    }
    let defaults = &look.preferences;
    let username_value = if props.username.is_empty() { defaults.username.clone() } else { props.username.clone() };

    let onsubmit = {
        let (username, password, domain, busy, error) =
            (username.clone(), password.clone(), domain.clone(), busy.clone(), error.clone());
        let (on_ready, on_second_factor) = (props.on_ready.clone(), props.on_second_factor.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            // A click: the one moment the browser lets the page start its sound.
            crate::audio::unlock(crate::client_settings::current().sounds);
            let user = input_value(&username);
            let pass = input_value(&password);
            let domain = Some(input_value(&domain).trim().to_owned()).filter(|d| !d.is_empty());
            if user.trim().is_empty() || pass.is_empty() {
                error.set(Some("Enter your username and password.".to_owned()));
                return;
            }
            busy.set(true);
            error.set(None);
            let (busy, error, on_ready, on_second_factor) =
                (busy.clone(), error.clone(), on_ready.clone(), on_second_factor.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match sign_in(user.trim().to_owned(), pass, domain).await {
                    Ok(LoginStep::Ready(ready)) => on_ready.emit(ready),
                    Ok(LoginStep::SecondFactor(pending, credentials)) => on_second_factor.emit((pending, credentials)),
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
                    <img src={look.logo_url().to_owned()} alt="" data-testid="login-logo" />
                    <h1 data-testid="login-title">{ look.title() }</h1>
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
                           value={username_value.clone()} autofocus={username_value.is_empty()}
                           autocapitalize="none" spellcheck="false" data-testid="login-username" />
                </div>
                <div class="hd-field">
                    <label for="hd-password">{ "Password" }</label>
                    <input id="hd-password" ref={password} type="password" autocomplete="current-password"
                           autofocus={!username_value.is_empty()} value={defaults.password.clone()}
                           data-testid="login-password" />
                </div>
                if look.show_domain {
                    <div class="hd-field">
                        <label for="hd-domain">{ "Domain" }</label>
                        <input id="hd-domain" ref={domain} type="text" autocomplete="off" autocapitalize="none"
                               value={defaults.domain.clone()}
                               spellcheck="false" data-testid="login-domain" />
                    </div>
                }
                <button class="hd-button" type="submit" disabled={*busy} data-testid="login-submit">
                    { if *busy { "Signing in…" } else { "Sign in" } }
                </button>
            </form>
        </main>
    }
}

/// The password step; the relay may ask for a second factor before anything else.
async fn sign_in(username: String, password: String, domain: Option<String>) -> Result<LoginStep, String> {
    let answer = api::login(&username, &password, domain.as_deref()).await?;
    let credentials = Rc::new(SharedCredentials { username, password });
    match answer {
        api::LoginAnswer::SignedIn(portal) => Ok(LoginStep::Ready(to_workstation(portal, credentials).await?)),
        api::LoginAnswer::SecondFactor(pending) => Ok(LoginStep::SecondFactor(pending, credentials)),
    }
}

/// With one workstation (or none: the relay says so) a ticket follows at once, with several the user
/// chooses first.
async fn to_workstation(portal: api::PortalSession, credentials: Rc<SharedCredentials>) -> Result<SignedIn, String> {
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
                crate::audio::unlock(crate::client_settings::current().sounds);
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

#[derive(Properties, PartialEq)]
struct SecondFactorProps {
    pending: api::PendingLogin,
    credentials: Rc<SharedCredentials>,
    on_ready: Callback<SignedIn>,
    on_cancel: Callback<()>,
}

/// The second sign-in step: enrolment (QR code, the key as text, one code) or a code.
#[function_component]
fn SecondFactorPage(props: &SecondFactorProps) -> Html {
    let code = use_node_ref();
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let info = use_state(|| None::<String>);
    let (digits, method) = match &props.pending.second_factor {
        api::SecondFactor::Enrol { digits, .. } => (*digits, "app".to_owned()),
        api::SecondFactor::Code { digits, method } => (*digits, method.clone()),
    };

    let onsubmit = {
        let (code, busy, error, info) = (code.clone(), busy.clone(), error.clone(), info.clone());
        let (pending, credentials, on_ready) = (props.pending.clone(), props.credentials.clone(), props.on_ready.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            // A click: the one moment the browser lets the page start its sound.
            crate::audio::unlock(crate::client_settings::current().sounds);
            // People type or paste codes with spaces ("123 456"); the relay wants digits only.
            let typed: String = input_value(&code).chars().filter(|c| !c.is_whitespace()).collect();
            if typed.is_empty() {
                error.set(Some("Enter the code.".to_owned()));
                return;
            }
            busy.set(true);
            error.set(None);
            info.set(None);
            let (code, busy, error) = (code.clone(), busy.clone(), error.clone());
            let (pending, credentials, on_ready) = (pending.clone(), credentials.clone(), on_ready.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let result = match api::verify_code(&pending, &typed).await {
                    Ok(portal) => to_workstation(portal, credentials).await,
                    Err(message) => Err(message),
                };
                match result {
                    Ok(ready) => on_ready.emit(ready),
                    Err(message) => {
                        busy.set(false);
                        error.set(Some(message));
                        if let Some(input) = code.cast::<HtmlInputElement>() {
                            input.set_value("");
                            let _ = input.focus();
                        }
                    }
                }
            });
        })
    };
    let resend = {
        let (error, info, pending) = (error.clone(), info.clone(), props.pending.clone());
        Callback::from(move |_: MouseEvent| {
            let (error, info, pending) = (error.clone(), info.clone(), pending.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::resend_code(&pending).await {
                    Ok(()) => {
                        error.set(None);
                        info.set(Some("A new code is on its way.".to_owned()));
                    }
                    Err(message) => error.set(Some(message)),
                }
            });
        })
    };
    let cancel = {
        let on_cancel = props.on_cancel.clone();
        Callback::from(move |_: MouseEvent| on_cancel.emit(()))
    };

    let instructions = match (&props.pending.second_factor, method.as_str()) {
        (api::SecondFactor::Enrol { .. }, _) => format!(
            "Your account needs a second factor. Scan this QR code with an authenticator app (for example \
             Microsoft Authenticator, Google Authenticator or FreeOTP), then enter the {digits}-digit code it shows."
        ),
        (_, "sms") => format!("We sent a {digits}-digit code to your phone. Enter it below."),
        (_, "email") => format!("We sent a {digits}-digit code to your email address. Enter it below."),
        _ => format!("Enter the {digits}-digit code shown by your authenticator app."),
    };
    let enrolment = match &props.pending.second_factor {
        api::SecondFactor::Enrol { qr_svg, secret, .. } => html! {
            <div class="hd-enrol" data-testid="twofa-enrol">
                <img class="hd-qr" src={svg_data_uri(qr_svg)} alt="QR code for your authenticator app"
                     width="200" height="200" data-testid="twofa-qr" />
                <p class="hd-secret-label">{ "Cannot scan? Enter this key in the app:" }</p>
                <p class="hd-secret" data-testid="twofa-secret">{ group_secret(secret) }</p>
            </div>
        },
        api::SecondFactor::Code { .. } => html! {},
    };
    html! {
        <main class="hd-login">
            <form class="hd-card" {onsubmit} data-testid="twofa-form" novalidate=true>
                <div class="hd-brand">
                    <img src={branding::current().logo_url().to_owned()} alt="" />
                    <h1>{ branding::current().title() }</h1>
                </div>
                <p class="hd-tagline" data-testid="twofa-instructions">{ instructions }</p>
                { enrolment }
                if let Some(message) = (*error).clone() {
                    <div class="hd-error" role="alert" data-testid="twofa-error">{ message }</div>
                }
                if let Some(message) = (*info).clone() {
                    <div class="hd-error hd-info" role="status" data-testid="twofa-info">{ message }</div>
                }
                <div class="hd-field">
                    <label for="hd-code">{ "Verification code" }</label>
                    <input id="hd-code" ref={code} type="text" inputmode="numeric" autocomplete="one-time-code"
                           pattern="[0-9 ]*" maxlength={(usize::from(digits) * 2).to_string()} autofocus=true
                           spellcheck="false" data-testid="twofa-code" />
                </div>
                <button class="hd-button" type="submit" disabled={*busy} data-testid="twofa-submit">
                    { if *busy { "Checking…" } else { "Continue" } }
                </button>
                <div class="hd-links">
                    if method != "app" {
                        <button class="hd-link" type="button" onclick={resend} data-testid="twofa-resend">
                            { "Send a new code" }
                        </button>
                    }
                    <button class="hd-link" type="button" onclick={cancel} data-testid="twofa-cancel">
                        { "Back to sign-in" }
                    </button>
                </div>
            </form>
        </main>
    }
}

/// The QR code as an image URL: an SVG document inside `data:` (allowed by the portal's CSP
/// `img-src data:`; an `<img>` never runs scripts from it).
fn svg_data_uri(svg: &str) -> String {
    let encoded = web_sys::window().and_then(|w| w.btoa(svg).ok()).unwrap_or_default();
    format!("data:image/svg+xml;base64,{encoded}")
}

/// "ABCDEFGH…" → "ABCD EFGH …" for reading and typing.
fn group_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars.chunks(4).map(|chunk| chunk.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

fn input_value(node: &NodeRef) -> String {
    node.cast::<HtmlInputElement>().map(|input| input.value()).unwrap_or_default()
}
