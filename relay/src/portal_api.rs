//! JSON API of the portal designer for the admin console (administrators only), the public images
//! of published pages, and the page-aware `GET /api/portal` the login page reads.
//!
//! The same operations as `relay portal page …` ([`crate::portal`]), so the console and the CLI follow
//! one set of rules. Uploads are base64 inside JSON (at most 1 MiB decoded, well under axum's 2 MB body
//! limit). POSTs go through the router's Origin check and the session's CSRF check.

use crate::http::{parse_json, ApiError, ApiResult, AppState, CurrentSession};
use crate::portal::{self, BackgroundChoice, Page, PortalError};
use crate::portal_design::{self, Design, Preferences};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub const ADMINS_ONLY: &str = "Only administrators can design the portal.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/portal", get(login_page))
        .route("/api/portal/assets/{id}", get(asset))
        .route("/api/admin/portal/catalogue", get(catalogue))
        .route("/api/admin/portal/preview", post(preview))
        .route("/api/admin/portal/pages", get(list))
        .route("/api/admin/portal/pages/{name}", get(show).post(save))
        .route("/api/admin/portal/pages/{name}/logo", post(logo))
        .route(
            "/api/admin/portal/pages/{name}/background",
            post(background),
        )
        .route("/api/admin/portal/pages/{name}/reset", post(reset))
        .route("/api/admin/portal/pages/{name}/publish", post(publish))
        .route("/api/admin/portal/pages/{name}/unpublish", post(unpublish))
        .route("/api/admin/portal/pages/{name}/delete", post(delete))
}

fn require_admin(session: &CurrentSession) -> ApiResult<()> {
    if session.user.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, ADMINS_ONLY))
    }
}

impl From<PortalError> for ApiError {
    fn from(error: PortalError) -> Self {
        match error {
            PortalError::Store(error) => error.into(),
            PortalError::UnknownPage(_) => ApiError::new(StatusCode::NOT_FOUND, sentence(&error)),
            PortalError::Invalid(error) => {
                ApiError::new(StatusCode::BAD_REQUEST, error.to_string())
            }
        }
    }
}

fn sentence(error: &PortalError) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str() + ".")
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<String>,
}

/// `GET /api/portal[?page=NAME]`: the look and pre-filled fields of a published page (404 when the
/// named page is not published).
async fn login_page(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Response> {
    let page = query.page.as_deref().filter(|p| !p.is_empty());
    match portal::login_page_view(&state.store, page).await? {
        Some(mut view) => {
            view["client"] = serde_json::json!(crate::client_settings::load(&state.store).await?);
            Ok(([(header::CACHE_CONTROL, "no-store")], Json(view)).into_response())
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "There is no such portal page.",
        )),
    }
}

/// An uploaded image, by its SHA-256 (content-addressed, so cached for good).
async fn asset(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "There is no such image.");
    if !portal_design::is_asset_id(&id) {
        return Err(not_found());
    }
    let Some(asset) = state.store.portal_asset(&id).await? else {
        return Err(not_found());
    };
    // Only types we accepted at upload are ever served, so a stored value cannot become HTML.
    let content_type = portal_design::ImageKind::from_content_type(&asset.content_type)
        .ok_or_else(not_found)?
        .content_type();
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}

async fn catalogue(session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    Ok(Json(portal::catalogue()).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageBody {
    #[serde(default)]
    design: Design,
    #[serde(default)]
    preferences: Preferences,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    #[serde(default)]
    design: Design,
    #[serde(default)]
    preferences: Preferences,
    /// The page being designed, if it has a name yet.
    #[serde(default)]
    name: Option<String>,
}

/// Checks unsaved values and answers what the login page would receive, with the warnings (the
/// designer's live preview).
async fn preview(
    State(state): State<AppState>,
    session: CurrentSession,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&session)?;
    let PreviewBody {
        mut design,
        preferences,
        name,
    } = parse_json(&body)?;
    // The page's name makes the warnings name its address; a new page may not have a valid one yet.
    let name = name
        .filter(|n| portal_design::validate_page_name(n).is_ok())
        .unwrap_or_else(|| "NAME".to_owned());
    let mut warnings = portal_design::validate_design(&mut design).map_err(PortalError::from)?;
    warnings.extend(
        portal_design::validate_preferences(&name, &preferences).map_err(PortalError::from)?,
    );
    let show_domain = portal::show_domain_setting(&state.store).await?;
    let view = portal::view(None, &design, &preferences, show_domain);
    Ok(Json(json!({ "view": view, "warnings": warnings })).into_response())
}

async fn list(State(state): State<AppState>, session: CurrentSession) -> ApiResult<Response> {
    require_admin(&session)?;
    let pages = portal::list(&state.store).await?;
    Ok(Json(json!({ "pages": pages })).into_response())
}

async fn show(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(name): Path<String>,
) -> ApiResult<Json<Page>> {
    require_admin(&session)?;
    Ok(Json(portal::get(&state.store, &name).await?))
}

/// Refuses a name whose `<name>.html` is a file of the web root (files are served first, so the
/// page could never be reached and the file must not be replaced).
fn name_free(state: &AppState, name: &str) -> ApiResult<()> {
    portal_design::validate_page_name(name).map_err(PortalError::from)?;
    let shadowed = name != portal_design::INDEX_PAGE
        && state
            .web_root
            .get()
            .is_some_and(|root| root.join(format!("{name}.html")).exists());
    if shadowed {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("\"{name}\" is the name of one of the portal's files; choose another name."),
        ));
    }
    Ok(())
}

async fn save(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Page>> {
    require_admin(&session)?;
    name_free(&state, &name)?;
    let PageBody {
        design,
        preferences,
    } = parse_json(&body)?;
    let page = portal::save(&state.store, &name, design, preferences, None).await?;
    tracing::info!(page = %name, admin = %session.user.username, "portal page saved");
    Ok(Json(page))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageBody {
    /// The file, standard base64; absent or null to clear.
    data_base64: Option<String>,
    /// For backgrounds: a stock picture instead of an upload.
    stock: Option<u8>,
}

fn decode(data: &str) -> ApiResult<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "The image is not valid base64."))
}

async fn logo(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Page>> {
    require_admin(&session)?;
    name_free(&state, &name)?;
    let request: ImageBody = parse_json(&body)?;
    let bytes = request.data_base64.as_deref().map(decode).transpose()?;
    Ok(Json(portal::set_logo(&state.store, &name, bytes).await?))
}

async fn background(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Page>> {
    require_admin(&session)?;
    name_free(&state, &name)?;
    let request: ImageBody = parse_json(&body)?;
    let choice = match (request.data_base64.as_deref(), request.stock) {
        (Some(data), None) => BackgroundChoice::Upload(decode(data)?),
        (None, Some(number)) => BackgroundChoice::Stock(number),
        (None, None) => BackgroundChoice::Theme,
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "Give either an uploaded image or a stock number, not both.",
            ))
        }
    };
    Ok(Json(
        portal::set_background(&state.store, &name, choice).await?,
    ))
}

async fn reset(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(name): Path<String>,
) -> ApiResult<Json<Page>> {
    require_admin(&session)?;
    Ok(Json(portal::reset(&state.store, &name).await?))
}

async fn publish(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(name): Path<String>,
) -> ApiResult<Json<Page>> {
    require_admin(&session)?;
    name_free(&state, &name)?;
    let page = portal::publish(&state.store, &name).await?;
    tracing::info!(page = %name, admin = %session.user.username, "portal page published");
    Ok(Json(page))
}

async fn unpublish(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(name): Path<String>,
) -> ApiResult<Json<Page>> {
    require_admin(&session)?;
    let page = portal::unpublish(&state.store, &name).await?;
    tracing::info!(page = %name, admin = %session.user.username, "portal page unpublished");
    Ok(Json(page))
}

async fn delete(
    State(state): State<AppState>,
    session: CurrentSession,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&session)?;
    portal::delete(&state.store, &name).await?;
    tracing::info!(page = %name, admin = %session.user.username, "portal page deleted");
    Ok(StatusCode::NO_CONTENT)
}
