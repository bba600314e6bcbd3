//! Audits the console's changes of the admin APIs whose handlers record nothing themselves: two-factor
//! (`twofa_api`), the portal designer (`portal_api`), the HTML5 client settings (`client_settings_api`)
//! and the configuration import (`config_api`). The CLI audits the same commands as `settings.change`
//! entries of the same area (`cli.rs` `audit_event`); this layer does it for the console.
//!
//! A successful (2xx) POST by a signed-in user becomes one `settings.change` entry: actor, client IP,
//! the area as target, and as detail the route plus the identifying fields of a JSON body (`name`,
//! `kind`, `method`, `enabled`). Only those fields are read, so secrets in a body (the Twilio auth
//! token, the SMTP password, default portal passwords) never reach the log. A refused request changed
//! nothing and is not recorded; a preview is not a change.

use crate::audit::{self, Action, Actor};
use crate::http::{AppState, ClientIp, CurrentSession};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// Bodies up to this size are read for their identifying fields (larger ones: the route only).
const DESCRIBED_BODY_LIMIT: usize = 64 * 1024;
/// The body fields that say what was changed (never secrets).
const IDENTIFYING_FIELDS: &[&str] = &["name", "kind", "method", "enabled"];

/// The middleware: `router.route_layer(from_fn_with_state((state, "area"), record_change))`.
pub async fn record_change(
    State((state, area)): State<(AppState, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST || request.uri().path().ends_with("/preview") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let session = CurrentSession::from_request_parts(&mut parts, &state).await.ok();
    let Ok(ClientIp(ip)) = ClientIp::from_request_parts(&mut parts, &state).await;
    let small = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|length| length <= DESCRIBED_BODY_LIMIT);
    let (body, detail_fields) = if small {
        match axum::body::to_bytes(body, DESCRIBED_BODY_LIMIT).await {
            Ok(bytes) => {
                let fields = identifying_fields(&bytes);
                (Body::from(bytes), fields)
            }
            Err(_) => (Body::empty(), String::new()),
        }
    } else {
        (body, String::new())
    };
    let route = parts.uri.path().trim_start_matches("/api/admin/").to_owned();
    let response = next.run(Request::from_parts(parts, body)).await;
    if let Some(session) = session.filter(|_| response.status().is_success()) {
        let detail = format!("{route}{detail_fields}");
        let event = audit::Event::new(Actor::User(session.user.username), Some(ip), Action::SettingsChanged, area);
        audit::record(&state.store, event.detail(detail)).await;
    }
    response
}

/// ` name=alice kind=user` from a JSON object body (nothing for anything else).
fn identifying_fields(body: &[u8]) -> String {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body) else {
        return String::new();
    };
    IDENTIFYING_FIELDS
        .iter()
        .filter_map(|&field| {
            let value = match object.get(field)? {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            Some(format!(" {field}={value}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::identifying_fields;

    #[test]
    fn only_identifying_fields_are_described() {
        let body = br#"{"kind":"user","name":"alice","auth_token":"secret-token","password":"p","enabled":true}"#;
        assert_eq!(identifying_fields(body), " name=alice kind=user enabled=true");
        assert_eq!(identifying_fields(b"not json"), "");
        assert_eq!(identifying_fields(br#"["name"]"#), "");
    }
}
