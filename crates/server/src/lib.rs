//! Lockstep's HTTPS server: the JSON API under `/api/v1` and the web UI (server-rendered pages,
//! `web`) over the use cases in `lockstep-app`.
//!
//! Each handler is one call into the [`Hub`](lockstep_app::Hub) plus an error mapping
//! ([`problem::ApiError`] → `application/problem+json`). Around every route: security headers on
//! every response, and the sealed gate — while the vault is sealed, only `/healthz`,
//! `/api/v1/sys/seal-status`, `/api/v1/sys/unseal` and the unseal page are served; other API
//! routes are 503 and other pages lead to the unseal page.

pub(crate) mod api;
mod extract;
mod middleware;
pub mod problem;
mod rejected_csv;
pub mod tls;
mod web;

use axum::Router;
use lockstep_app::Hub;
use std::sync::Arc;

pub use middleware::SEALED_ALLOWED_PATHS;

/// What every handler gets.
#[derive(Clone, Debug)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub(crate) auth_limiter: Arc<middleware::AuthLimiter>,
    pub(crate) web: Arc<web::WebState>,
}

/// Settings of the HTTP layer.
#[derive(Clone, Copy, Debug)]
pub struct RouterOptions {
    /// Requests per minute one client address may make to `/api/v1/auth/*` (bursts included).
    pub auth_requests_per_minute: u32,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            auth_requests_per_minute: 30,
        }
    }
}

/// The whole application with default options.
pub fn router(hub: Arc<Hub>) -> Router {
    router_with(hub, RouterOptions::default())
}

/// The whole application: API routes, OpenAPI document, fallbacks and middleware.
pub fn router_with(hub: Arc<Hub>, options: RouterOptions) -> Router {
    let state = AppState {
        hub,
        auth_limiter: Arc::new(middleware::auth_limiter(options.auth_requests_per_minute)),
        web: Arc::new(web::WebState::default()),
    };
    let (api, openapi) = api::router_and_document();
    let openapi = Arc::new(openapi);
    Router::new()
        .merge(api)
        .merge(web::routes().layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::member_error_pages,
        )))
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = Arc::clone(&openapi);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(fallback)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::auth_rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::sealed_gate,
        ))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .route_layer(axum::middleware::from_fn(middleware::request_log))
        .layer(axum::middleware::from_fn(middleware::body_limit))
        // The limit is middleware::body_limit's (per route); the extractors' own 2 MB default
        // would cut uploads short.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Unknown paths: problem+json under `/api/`, the HTML 404 page elsewhere.
async fn fallback(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/api/") {
        problem::not_found().await.into_response()
    } else {
        web::not_found_page()
    }
}

/// The OpenAPI document of the API, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router_and_document().1
}
