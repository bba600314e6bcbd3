//! The console's sign-in: the portal's own `/api/login` (same limiter, 2FA and cookie), then the
//! relay's verdict on whether this account may administer. A non-administrator is signed out again
//! at once and told so.

use super::api::{self, AdminError, AdminSession};
use crate::api as portal_api;
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Clone, PartialEq)]
pub struct Notice {
    text: String,
    is_error: bool,
}

impl Notice {
    pub fn error(text: String) -> Self {
        Notice { text, is_error: true }
    }

    pub fn info(text: String) -> Self {
        Notice { text, is_error: false }
    }
}

#[derive(Properties, PartialEq)]
pub struct SignInProps {
    pub notice: Option<Notice>,
    pub on_signed_in: Callback<AdminSession>,
}

/// The password step, then a code when the account needs a second factor.
#[function_component]
pub fn SignIn(props: &SignInProps) -> Html {
    let username = use_node_ref();
    let password = use_node_ref();
    let code = use_node_ref();
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let pending = use_state(|| None::<portal_api::PendingLogin>);

    let onsubmit = {
        let (username, password, code, busy, error, pending) = (
            username.clone(),
            password.clone(),
            code.clone(),
            busy.clone(),
            error.clone(),
            pending.clone(),
        );
        let on_signed_in = props.on_signed_in.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let step = match (*pending).clone() {
                Some(waiting) => {
                    let typed: String = input_value(&code).chars().filter(|c| !c.is_whitespace()).collect();
                    if typed.is_empty() {
                        error.set(Some("Enter the code.".to_owned()));
                        return;
                    }
                    Step::Code(waiting, typed)
                }
                None => {
                    let (user, pass) = (input_value(&username).trim().to_owned(), input_value(&password));
                    if user.is_empty() || pass.is_empty() {
                        error.set(Some("Enter your username and password.".to_owned()));
                        return;
                    }
                    Step::Password(user, pass)
                }
            };
            busy.set(true);
            error.set(None);
            let (busy, error, pending, on_signed_in) =
                (busy.clone(), error.clone(), pending.clone(), on_signed_in.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match step.run().await {
                    Ok(Outcome::SignedIn(session)) => on_signed_in.emit(session),
                    Ok(Outcome::NeedsCode(waiting)) => {
                        busy.set(false);
                        pending.set(Some(waiting));
                    }
                    Err(message) => {
                        busy.set(false);
                        error.set(Some(message));
                    }
                }
            });
        })
    };

    let shown = (*error).clone().map(Notice::error).or_else(|| props.notice.clone());
    let code_step = (*pending).as_ref().map(|waiting| match &waiting.second_factor {
        portal_api::SecondFactor::Code { method, digits } => html! {
            <div class="hd-field">
                <label for="hd-admin-code">{ code_label(method, *digits) }</label>
                <input id="hd-admin-code" ref={code.clone()} type="text" inputmode="numeric"
                       autocomplete="one-time-code" autofocus=true spellcheck="false" data-testid="admin-login-code" />
            </div>
        },
        portal_api::SecondFactor::Enrol { .. } => html! {
            <p class="hd-tagline">
                { "Your account needs a second factor that is not set up yet. Sign in once on the portal (" }
                <a href="/">{ "/" }</a>{ ") to set it up, then come back." }
            </p>
        },
    });
    html! {
        <main class="hd-login">
            <form class="hd-card" {onsubmit} data-testid="admin-login-form" novalidate=true>
                <div class="hd-brand">
                    <img src="/images/logo.svg" alt="" />
                    <h1>{ "Homedesk admin" }</h1>
                </div>
                <p class="hd-tagline">{ "Sign in with an administrator account." }</p>
                if let Some(notice) = shown {
                    <div class={if notice.is_error { "hd-error" } else { "hd-error hd-info" }} role="alert"
                         data-testid={if notice.is_error { "admin-login-error" } else { "admin-login-info" }}>
                        { notice.text }
                    </div>
                }
                if let Some(step) = code_step {
                    { step }
                } else {
                    <div class="hd-field">
                        <label for="hd-admin-username">{ "Username" }</label>
                        <input id="hd-admin-username" ref={username} type="text" autocomplete="username" autofocus=true
                               autocapitalize="none" spellcheck="false" data-testid="admin-login-username" />
                    </div>
                    <div class="hd-field">
                        <label for="hd-admin-password">{ "Password" }</label>
                        <input id="hd-admin-password" ref={password} type="password" autocomplete="current-password"
                               data-testid="admin-login-password" />
                    </div>
                }
                <button class="hd-button" type="submit" disabled={*busy} data-testid="admin-login-submit">
                    { if *busy { "Signing in…" } else { "Sign in" } }
                </button>
            </form>
        </main>
    }
}

enum Step {
    Password(String, String),
    Code(portal_api::PendingLogin, String),
}

enum Outcome {
    SignedIn(AdminSession),
    NeedsCode(portal_api::PendingLogin),
}

impl Step {
    async fn run(self) -> Result<Outcome, String> {
        match self {
            Step::Password(username, password) => match portal_api::login(&username, &password, None).await? {
                portal_api::LoginAnswer::SignedIn(portal) => admin_session(&portal).await.map(Outcome::SignedIn),
                portal_api::LoginAnswer::SecondFactor(waiting) => Ok(Outcome::NeedsCode(waiting)),
            },
            Step::Code(waiting, code) => {
                let portal = portal_api::verify_code(&waiting, &code).await?;
                admin_session(&portal).await.map(Outcome::SignedIn)
            }
        }
    }
}

/// The relay decides who is an administrator; anyone else is signed out again at once.
async fn admin_session(portal: &portal_api::PortalSession) -> Result<AdminSession, String> {
    api::session().await.map_err(|error| {
        if matches!(error, AdminError::Failed(_)) {
            wasm_bindgen_futures::spawn_local(portal_api::logout_with_token(portal.csrf_token.clone()));
        }
        error.message().to_owned()
    })
}

/// Ends the session (best effort: the console shows its sign-in form whatever the answer).
pub async fn sign_out(session: &AdminSession) {
    let _ = api::post_no_content(session, "/api/logout", &()).await;
}

fn code_label(method: &str, digits: u8) -> String {
    match method {
        "sms" => format!("The {digits}-digit code we sent to your phone"),
        "email" => format!("The {digits}-digit code we sent to your email address"),
        _ => format!("The {digits}-digit code from your authenticator app"),
    }
}

fn input_value(node: &NodeRef) -> String {
    node.cast::<HtmlInputElement>()
        .map(|input| input.value())
        .unwrap_or_default()
}
