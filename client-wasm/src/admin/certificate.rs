//! The "HTTPS certificate" page: the certificate the portal serves (names, issuer, validity, kind), the
//! free certificate (Let's Encrypt / ACME: email, domain, directory, last result, "Get a certificate",
//! "Renew now") with the latest attempts and their errors, import of a PEM certificate + key read in the
//! browser, the kept certificates with "Restore", and "Reset to self-signed". Everything goes through
//! `/api/admin/certificate…` (relay/src/certificate_api.rs), the same rules as `relay certificate`.

use super::{api, input_value, local_time, set_error, set_some, use_load, PageProps};
use serde::Deserialize;
use serde_json::{json, Value};
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use yew::prelude::*;

const PATH: &str = "/api/admin/certificate";
/// How long the page waits for the serving relay to finish a job (an order takes a few seconds to
/// a minute; the relay's own ACME timeout ends it before this).
const JOB_POLLS: u32 = 300;
const JOB_POLL_MS: i32 = 1_000;

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Status {
    served: Served,
    hsts: bool,
    acme: Option<Acme>,
    history: Vec<Kept>,
    #[serde(default)]
    attempts: Vec<Attempt>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Served {
    source: String,
    details: Option<Details>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Details {
    subject: String,
    names: Vec<String>,
    issuer: String,
    not_before: f64,
    not_after: f64,
    sha256: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Acme {
    email: Option<String>,
    domain: Option<String>,
    terms_url: Option<String>,
    directory_url: Option<String>,
    last_attempt_at: Option<f64>,
    last_result_code: Option<i64>,
    last_result_message: Option<String>,
    next_check_at: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Kept {
    id: i64,
    source: String,
    domain: String,
    issuer: String,
    not_before: f64,
    not_after: f64,
    installed_at: f64,
    active: bool,
    replaced_at: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Attempt {
    kind: String,
    domain: Option<String>,
    requested_at: f64,
    finished_at: Option<f64>,
    code: Option<i64>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Queued {
    job_id: i64,
}

#[derive(Deserialize)]
struct Job {
    done: bool,
    code: Option<i64>,
    message: Option<String>,
}

/// What the page tells the administrator: a sentence and whether it is an error.
type Notice = Option<(String, bool)>;

fn kind_label(source: &str) -> &'static str {
    match source {
        "acme" => "Free certificate (Let's Encrypt / ACME)",
        "imported" => "Imported",
        _ => "Self-signed",
    }
}

#[function_component]
pub fn CertificatePage(props: &PageProps) -> Html {
    let status = use_state(|| None::<Status>);
    let notice = use_state(|| None::<(String, bool)>);
    let busy = use_state(|| false);
    use_load(PATH, props, set_some(&status), set_error(&notice));
    // Runs a change that answers the new status (import, restore, reset).
    let change = {
        let (status, notice, props) = (status.clone(), notice.clone(), props.clone());
        Callback::from(move |(path, body, done): (&'static str, Value, String)| {
            let (status, notice, props) = (status.clone(), notice.clone(), props.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<_, Status>(&props.session, path, &body).await {
                    Ok(next) => {
                        status.set(Some(next));
                        notice.set(Some((done, false)));
                    }
                    Err(error) => notice.set(Some((props.failed(error), true))),
                }
            });
        })
    };
    let notice_view = match &*notice {
        Some((text, is_error)) => html! {
            <p class={if *is_error { "hd-error" } else { "hd-error hd-info" }} role={if *is_error { "alert" } else { "status" }}
               data-testid="admin-certificate-notice">{ text }</p>
        },
        None => html! {},
    };
    let Some(current) = (*status).clone() else {
        return html! { <>{ notice_view }<p class="hd-admin-muted">{ "Loading…" }</p></> };
    };
    let jobs = JobRunner { status: status.clone(), notice: notice.clone(), busy: busy.clone(), props: props.clone() };
    html! {
        <>
            { notice_view }
            { served_view(&current, &change) }
            <h2>{ "Free certificate (Let's Encrypt)" }</h2>
            <AcmeSection acme={current.acme.clone()} {jobs} />
            { attempts_view(&current.attempts) }
            <h2>{ "Import a certificate" }</h2>
            <ImportForm change={change.clone()} notice={notice.clone()} />
            <h2>{ "Kept certificates" }</h2>
            { history_view(&current.history, &change) }
        </>
    }
}

fn served_view(current: &Status, change: &Callback<(&'static str, Value, String)>) -> Html {
    let row = |label: &str, value: String, id: &str| {
        html! { <tr><th scope="row">{ label.to_owned() }</th><td data-testid={format!("admin-certificate-{id}")}>{ value }</td></tr> }
    };
    let details = match &current.served.details {
        Some(d) => html! {
            <>
                { row("Subject", d.subject.clone(), "subject") }
                { row("Names (SANs)", d.names.join(", "), "names") }
                { row("Issuer", d.issuer.clone(), "issuer") }
                { row("Valid from", local_time(d.not_before), "not-before") }
                { row("Valid until", local_time(d.not_after), "not-after") }
                { row("SHA-256", d.sha256.clone(), "sha256") }
            </>
        },
        None => row("Details", "The served certificate cannot be read (see the relay's log).".to_owned(), "details"),
    };
    // `hsts`: the relay's rule for the stored certificate (free, or imported with a chain to the public
    // roots), docs/certificates.md.
    let trust = match (current.served.source.as_str(), current.hsts) {
        ("self-signed", _) => "Self-signed: browsers warn until you install a certificate for the portal's public name.",
        (_, true) => "Issued by a certificate authority: browsers are told to use HTTPS only (HSTS).",
        (_, false) => {
            "Issued by a certificate authority that browsers do not know by themselves (such as a company CA):              HSTS is not sent, so a browser without that CA can still continue."
        }
    };
    let reset = change.reform(|_: MouseEvent| {
        ("/api/admin/certificate/reset", json!({}), "The portal now serves its self-signed certificate.".to_owned())
    });
    html! {
        <>
            <h2>{ "Served certificate" }</h2>
            <table class="hd-admin-details" data-testid="admin-certificate-served">
                <tbody>
                    { row("Type", kind_label(&current.served.source).to_owned(), "source") }
                    { details }
                </tbody>
            </table>
            <p class="hd-admin-muted" data-testid="admin-certificate-trust">{ trust }</p>
            if current.served.source != "self-signed" {
                <button type="button" class="hd-danger" onclick={reset} data-testid="admin-certificate-reset">
                    { "Reset to self-signed" }
                </button>
            }
        </>
    }
}

/// Queues an ACME job, polls it until the serving relay finished it, then reloads the status.
#[derive(Clone, PartialEq)]
struct JobRunner {
    status: UseStateHandle<Option<Status>>,
    notice: UseStateHandle<Notice>,
    busy: UseStateHandle<bool>,
    props: PageProps,
}

impl JobRunner {
    /// The job's message on success; on failure its message with the code, as the CLI says it.
    async fn run(&self, body: Value) -> Result<String, String> {
        let session = &self.props.session;
        let queued: Queued =
            api::post(session, "/api/admin/certificate/jobs", &body).await.map_err(|e| self.props.failed(e))?;
        let path = format!("/api/admin/certificate/jobs/{}", queued.job_id);
        for _ in 0..JOB_POLLS {
            sleep_ms(JOB_POLL_MS).await;
            let job: Job = api::get(&path).await.map_err(|e| self.props.failed(e))?;
            if job.done {
                let message = job.message.unwrap_or_default();
                return match job.code {
                    Some(0) | None => Ok(message),
                    Some(code) => Err(format!("{message} (error {code})")),
                };
            }
        }
        Err("The serving relay did not finish the job in time; its result will appear below.".to_owned())
    }

    /// The CA's current terms-of-service URL (a `terms` job: the serving relay reads the directory).
    async fn terms(&self) -> Terms {
        match self.run(json!({ "kind": "terms" })).await {
            Ok(url) => Terms::Url(url),
            Err(message) => Terms::Failed(message),
        }
    }

    /// Request with the terms URL the form showed and the administrator accepted.
    fn request(&self, email: String, domain: String, terms_url: String) {
        let this = self.clone();
        self.start(async move {
            let body = json!({ "kind": "request", "email": email, "domain": domain, "terms_url": terms_url });
            this.run(body).await
        });
    }

    fn renew(&self) {
        let this = self.clone();
        self.start(async move { this.run(json!({ "kind": "renew" })).await });
    }

    fn start(&self, work: impl std::future::Future<Output = Result<String, String>> + 'static) {
        let this = self.clone();
        this.busy.set(true);
        this.notice.set(Some(("Working: the serving relay talks to the certificate authority…".to_owned(), false)));
        wasm_bindgen_futures::spawn_local(async move {
            let outcome = work.await;
            if let Ok(next) = api::get::<Status>(PATH).await {
                this.status.set(Some(next));
            }
            this.notice.set(Some(match outcome {
                Ok(message) => (message, false),
                Err(message) => (message, true),
            }));
            this.busy.set(false);
        });
    }
}

/// The CA's terms of service as the request form shows them: looked up when the form is shown, so
/// the administrator accepts the terms they saw, and exactly that URL goes back with the request.
#[derive(Clone, Debug, PartialEq)]
enum Terms {
    Loading,
    /// From the CA's directory (`meta.termsOfService`); empty when the CA names none.
    Url(String),
    /// Why they could not be read (error 802: the CA is unreachable or its directory unreadable).
    Failed(String),
}

/// Only web addresses become links (a CA's directory is not trusted to supply `javascript:`).
fn is_linkable(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["https://", "http://", "data:text/plain,"].iter().any(|scheme| lower.starts_with(scheme))
}

fn terms_view(terms: &Terms, retry: Callback<MouseEvent>) -> Html {
    match terms {
        Terms::Loading => html! {
            <p class="hd-admin-muted" data-testid="admin-certificate-terms-loading">
                { "Looking up the certificate authority's terms of service…" }
            </p>
        },
        Terms::Url(url) if url.is_empty() => html! {
            <p class="hd-admin-muted" data-testid="admin-certificate-terms-none">
                { "The certificate authority names no terms of service." }
            </p>
        },
        Terms::Url(url) => html! {
            <p class="hd-admin-muted">
                { "The certificate authority's terms of service: " }
                if is_linkable(url) {
                    <a href={url.clone()} target="_blank" rel="noopener noreferrer" data-testid="admin-certificate-terms">
                        { url }
                    </a>
                } else {
                    <span data-testid="admin-certificate-terms">{ url }</span>
                }
            </p>
        },
        Terms::Failed(message) => html! {
            <>
                <p class="hd-error" role="alert" data-testid="admin-certificate-terms-error">{ message }</p>
                <button type="button" class="hd-secondary" onclick={retry} data-testid="admin-certificate-terms-retry">
                    { "Look up the terms again" }
                </button>
            </>
        },
    }
}

#[derive(Properties, PartialEq)]
struct AcmeProps {
    acme: Option<Acme>,
    jobs: JobRunner,
}

/// The free certificate's settings and last result, "Get a certificate" and "Renew now".
#[function_component]
fn AcmeSection(props: &AcmeProps) -> Html {
    let (acme, jobs) = (props.acme.as_ref(), &props.jobs);
    let email = use_node_ref();
    let domain = use_node_ref();
    let accept = use_node_ref();
    let terms = use_state(|| Terms::Loading);
    // Bumped by "Look up the terms again".
    let lookups = use_state(|| 0u32);
    {
        let (jobs, terms) = (jobs.clone(), terms.clone());
        use_effect_with(*lookups, move |_| {
            terms.set(Terms::Loading);
            wasm_bindgen_futures::spawn_local(async move { terms.set(jobs.terms().await) });
        });
    }
    let retry = {
        let lookups = lookups.clone();
        Callback::from(move |_: MouseEvent| lookups.set(*lookups + 1))
    };
    let onsubmit = {
        let (jobs, email, domain, accept, terms) =
            (jobs.clone(), email.clone(), domain.clone(), accept.clone(), terms.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let Terms::Url(terms_url) = &*terms else {
                return;
            };
            let accepted = accept.cast::<HtmlInputElement>().is_some_and(|input| input.checked());
            if !accepted {
                jobs.notice.set(Some(("Accept the certificate authority's terms of service first.".to_owned(), true)));
                return;
            }
            let (email, domain) = (input_value(&email).trim().to_owned(), input_value(&domain).trim().to_owned());
            jobs.request(email, domain, terms_url.clone());
        })
    };
    let terms_known = matches!(*terms, Terms::Url(_));
    let renew = {
        let jobs = jobs.clone();
        Callback::from(move |_: MouseEvent| jobs.renew())
    };
    let busy = *jobs.busy;
    let text = |value: Option<&String>| value.cloned().unwrap_or_else(|| "–".to_owned());
    let time = |value: Option<f64>| value.map_or_else(|| "–".to_owned(), local_time);
    let settings = match acme {
        Some(acme) => {
            let result = match (acme.last_result_code, &acme.last_result_message) {
                (None, _) => "–".to_owned(),
                (Some(0), message) => format!("Success. {}", message.clone().unwrap_or_default()),
                (Some(code), message) => format!("Error {code}: {}", message.clone().unwrap_or_default()),
            };
            html! {
                <table class="hd-admin-details" data-testid="admin-certificate-acme">
                    <tbody>
                        <tr><th scope="row">{ "Domain" }</th><td>{ text(acme.domain.as_ref()) }</td></tr>
                        <tr><th scope="row">{ "Email" }</th><td>{ text(acme.email.as_ref()) }</td></tr>
                        <tr><th scope="row">{ "Certificate authority (directory)" }</th><td>{ text(acme.directory_url.as_ref()) }</td></tr>
                        <tr><th scope="row">{ "Terms accepted" }</th><td>{ text(acme.terms_url.as_ref()) }</td></tr>
                        <tr><th scope="row">{ "Last attempt" }</th><td>{ time(acme.last_attempt_at) }</td></tr>
                        <tr><th scope="row">{ "Last result" }</th><td data-testid="admin-certificate-acme-result">{ result }</td></tr>
                        <tr><th scope="row">{ "Next renewal check" }</th><td>{ time(acme.next_check_at) }</td></tr>
                    </tbody>
                </table>
            }
        }
        None => html! { <p class="hd-admin-muted">{ "No free certificate has been requested yet." }</p> },
    };
    let can_renew = acme.is_some_and(|a| a.domain.is_some());
    let (email_value, domain_value) = match acme {
        Some(a) => (a.email.clone().unwrap_or_default(), a.domain.clone().unwrap_or_default()),
        None => (String::new(), String::new()),
    };
    html! {
        <>
            { settings }
            <p class="hd-admin-muted">
                { "The portal's public DNS name must point to this relay and its HTTP port (80) must be reachable from the internet: the certificate authority checks it (HTTP-01). The certificate is renewed automatically." }
            </p>
            <form class="hd-admin-form" {onsubmit} aria-label="Get a free certificate" novalidate=true>
                <label>{ "Email" }<input ref={email} type="email" value={email_value} data-testid="admin-certificate-email" /></label>
                <label>{ "Domain (public DNS name)" }<input ref={domain} type="text" value={domain_value} data-testid="admin-certificate-domain" /></label>
                { terms_view(&terms, retry) }
                <label class="hd-admin-check">
                    <input ref={accept} type="checkbox" disabled={!terms_known}
                           data-testid="admin-certificate-accept" />
                    { "I accept the certificate authority's terms of service" }
                </label>
                <button type="submit" disabled={busy || !terms_known} data-testid="admin-certificate-request">
                    { "Get a certificate" }
                </button>
                if can_renew {
                    <button type="button" class="hd-secondary" disabled={busy} onclick={renew} data-testid="admin-certificate-renew">{ "Renew now" }</button>
                }
            </form>
        </>
    }
}

fn attempts_view(attempts: &[Attempt]) -> Html {
    if attempts.is_empty() {
        return html! {};
    }
    let rows = attempts.iter().map(|a| {
        let result = match (a.finished_at, a.code) {
            (None, _) => "waiting for the serving relay".to_owned(),
            (Some(_), Some(0) | None) => format!("Success. {}", a.message.clone().unwrap_or_default()),
            (Some(_), Some(code)) => format!("Error {code}: {}", a.message.clone().unwrap_or_default()),
        };
        let what = match (a.kind.as_str(), &a.domain) {
            ("request", Some(domain)) => format!("Request for {domain}"),
            ("renew", _) => "Renewal".to_owned(),
            (kind, _) => kind.to_owned(),
        };
        html! {
            <tr data-testid="admin-certificate-attempt">
                <td>{ local_time(a.requested_at) }</td><td>{ what }</td><td>{ result }</td>
            </tr>
        }
    });
    html! {
        <>
            <h3>{ "Latest requests and renewals" }</h3>
            <table data-testid="admin-certificate-attempts">
                <thead><tr><th>{ "Asked at" }</th><th>{ "What" }</th><th>{ "Result" }</th></tr></thead>
                <tbody>{ for rows }</tbody>
            </table>
        </>
    }
}

fn history_view(history: &[Kept], change: &Callback<(&'static str, Value, String)>) -> Html {
    if history.is_empty() {
        return html! { <p class="hd-admin-muted">{ "None yet: imported and free certificates are kept here, never deleted." }</p> };
    }
    let rows = history.iter().map(|kept| {
        let restore = {
            let id = kept.id;
            let done = format!("Certificate #{id} ({}) is served again.", kept.domain);
            change.reform(move |_: MouseEvent| ("/api/admin/certificate/restore", json!({ "id": id }), done.clone()))
        };
        let state = match (kept.active, kept.replaced_at) {
            (true, _) => "served".to_owned(),
            (false, Some(at)) => format!("replaced {}", local_time(at)),
            (false, None) => "kept".to_owned(),
        };
        html! {
            <tr data-testid="admin-certificate-kept">
                <td>{ format!("#{}", kept.id) }</td>
                <td>{ kind_label(&kept.source) }</td>
                <td>{ &kept.domain }</td>
                <td>{ &kept.issuer }</td>
                <td>{ format!("{} – {}", local_time(kept.not_before), local_time(kept.not_after)) }</td>
                <td>{ local_time(kept.installed_at) }</td>
                <td>{ state }</td>
                <td class="hd-admin-actions">
                    if !kept.active {
                        <button type="button" class="hd-secondary" onclick={restore}
                                aria-label={format!("restore certificate #{}", kept.id)}>{ "Restore" }</button>
                    }
                </td>
            </tr>
        }
    });
    html! {
        <table data-testid="admin-certificate-history">
            <thead><tr><th>{ "#" }</th><th>{ "Type" }</th><th>{ "Domain" }</th><th>{ "Issuer" }</th>
                <th>{ "Valid" }</th><th>{ "Installed" }</th><th>{ "State" }</th><th>{ "Actions" }</th></tr></thead>
            <tbody>{ for rows }</tbody>
        </table>
    }
}

#[derive(Properties, PartialEq)]
struct ImportProps {
    change: Callback<(&'static str, Value, String)>,
    notice: UseStateHandle<Notice>,
}

/// Two file inputs read in the browser (the files never leave it except as the import request).
#[function_component]
fn ImportForm(props: &ImportProps) -> Html {
    let (certificate, key) = (use_node_ref(), use_node_ref());
    let onsubmit = {
        let (change, notice) = (props.change.clone(), props.notice.clone());
        let (certificate, key) = (certificate.clone(), key.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let (change, notice) = (change.clone(), notice.clone());
            let (certificate, key) = (certificate.clone(), key.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let files = (read_file(&certificate, "certificate").await, read_file(&key, "private key").await);
                match files {
                    (Ok(certificate_pem), Ok(key_pem)) => change.emit((
                        "/api/admin/certificate/import",
                        json!({ "certificate_pem": certificate_pem, "key_pem": key_pem }),
                        "The imported certificate is now served.".to_owned(),
                    )),
                    (Err(message), _) | (_, Err(message)) => notice.set(Some((message, true))),
                }
            });
        })
    };
    html! {
        <form class="hd-admin-form" {onsubmit} aria-label="Import a certificate" novalidate=true>
            <label>{ "Certificate (PEM, leaf first, then the chain)" }
                <input ref={certificate} type="file" accept=".pem,.crt,.cer" data-testid="admin-certificate-import-chain" /></label>
            <label>{ "Private key (PEM)" }
                <input ref={key} type="file" accept=".pem,.key" data-testid="admin-certificate-import-key" /></label>
            <button type="submit" data-testid="admin-certificate-import">{ "Import" }</button>
        </form>
    }
}

/// Largest file read (the relay accepts 1 MiB PEM files too).
const MAX_PEM_BYTES: f64 = 1_048_576.0;

/// The text of the file chosen in a file input: `input.files[0].text()`, through `js_sys::Reflect` so
/// the client needs no extra web-sys features (File, FileList, Blob) for this one call.
async fn read_file(input: &NodeRef, what: &str) -> Result<String, String> {
    use js_sys::{Function, Promise, Reflect};
    let unreadable = || format!("The {what} file cannot be read.");
    let input = input.cast::<HtmlInputElement>().ok_or_else(unreadable)?;
    let files = Reflect::get(&input, &"files".into()).map_err(|_| unreadable())?;
    let file = Reflect::get(&files, &0.into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
    if file.is_undefined() || file.is_null() {
        return Err(format!("Choose the {what} file."));
    }
    let size = Reflect::get(&file, &"size".into()).ok().and_then(|size| size.as_f64()).unwrap_or(0.0);
    if size > MAX_PEM_BYTES {
        return Err(format!("The {what} file is larger than 1 MiB: not a PEM file."));
    }
    let text: Function = Reflect::get(&file, &"text".into())
        .map_err(|_| unreadable())?
        .dyn_into()
        .map_err(|_| unreadable())?;
    let promise: Promise = text.call0(&file).map_err(|_| unreadable())?.dyn_into().map_err(|_| unreadable())?;
    let text = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(|_| unreadable())?;
    text.as_string().ok_or_else(|| format!("The {what} file is not text."))
}

/// Waits `ms` milliseconds (a `setTimeout` promise; gloo's timer futures are not built into the client).
async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = gloo::utils::window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
