//! The web UI: server-rendered pages (askama templates, checked at compile time) over the same
//! use cases as the API, with htmx (shipped in the binary) for the few partial updates.
//!
//! Every page works under the strict Content-Security-Policy of `middleware::security_headers`:
//! no inline script or style, scripts and styles only from `/static/`. Forms are plain HTML
//! forms that post and redirect (303) to a page; every form carries a CSRF token (see
//! [`session`]). Authorization is the use cases' (the policy crate decides); pages only hide
//! what the policy would refuse anyway.

mod account;
mod assets;
mod audit;
mod auth;
mod connections;
mod datasets;
mod footprint;
mod multipart;
mod operator;
mod organization;
mod page;
mod pipelines;
mod policies;
pub(crate) mod session;
mod sso;
mod support;
mod teams;
mod users;
mod view_as;

use crate::AppState;
use axum::Router;

pub(crate) use auth::RATE_LIMITED;
pub(crate) use page::{error_page, not_found_page};
pub(crate) use session::WebState;

/// The `Set-Cookie` value that hands pages the session's CSRF token.
pub(crate) fn csrf_cookie(token: &str, max_age: i64) -> Option<axum::http::HeaderValue> {
    session::set_cookie(session::CSRF_COOKIE, token, Some(max_age))
}

/// The `__Host-` cookie binding an OAuth authorization to the browser that started it. It is
/// `SameSite=Lax`, unlike every other cookie: the provider's redirect back is a cross-site
/// top-level GET, which carries Lax cookies and leaves Strict ones out.
pub(crate) const OAUTH_COOKIE: &str = "__Host-lockstep_oauth";

/// The `Set-Cookie` value that gives the starting browser its OAuth binding value (an empty
/// value with `max_age` 0 deletes it).
pub(crate) fn oauth_cookie(value: &str, max_age: i64) -> Option<axum::http::HeaderValue> {
    axum::http::HeaderValue::from_str(&format!(
        "{OAUTH_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    ))
    .ok()
}

/// The OAuth binding value the browser brought back, if any.
pub(crate) fn oauth_binding(headers: &axum::http::HeaderMap) -> Option<String> {
    session::cookie(headers, OAUTH_COOKIE)
}

/// Paths of pages served while the hub is sealed (the unseal page and its assets).
pub(crate) fn served_while_sealed(path: &str) -> bool {
    path == "/" || path == "/unseal" || path.starts_with("/static/")
}

/// An error page answered to a signed-in member is shown inside their own layout (navigation,
/// sign-out), so a refused page is not a dead end.
pub(crate) async fn member_error_pages(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let headers = request.headers().clone();
    let response = next.run(request).await;
    let Some(page::PageError(err)) = response.extensions().get::<page::PageError>().cloned() else {
        return response;
    };
    match session::SignedIn::from_headers(&headers, &state).await {
        Ok(signed) => page::error_page_in(signed.shell(err.title.clone(), ""), &err),
        Err(_) => response,
    }
}

/// Every page's route.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(assets::routes())
        .merge(operator::routes())
        .merge(auth::routes())
        .merge(account::routes())
        .merge(users::routes())
        .merge(organization::routes())
        .merge(footprint::routes())
        .merge(teams::routes())
        .merge(policies::routes())
        .merge(connections::routes())
        .merge(pipelines::routes())
        .merge(datasets::routes())
        .merge(audit::routes())
        .merge(sso::routes())
        .merge(support::routes())
}
