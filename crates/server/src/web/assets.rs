//! The static files of pages, compiled into the binary: the style sheet, htmx, and one small
//! script of our own. Nothing is fetched from elsewhere at run time.

use crate::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const CSS: &str = include_str!("../../static/app.css");
const APP_JS: &str = include_str!("../../static/app.js");
/// The browser's side of passkeys (WebAuthn calls and their base64url conversions).
const PASSKEYS_JS: &str = include_str!("../../static/passkeys.js");
/// htmx 2.0.11 (BSD Zero Clause License), unmodified from the npm package `htmx.org`.
const HTMX_JS: &str = include_str!("../../static/htmx.min.js");
const ICON: &str = include_str!("../../static/icon.svg");

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/static/app.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/static/passkeys.js",
            get(|| async { asset("text/javascript; charset=utf-8", PASSKEYS_JS) }),
        )
        .route(
            "/static/htmx.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", HTMX_JS) }),
        )
        .route(
            "/static/icon.svg",
            get(|| async { asset("image/svg+xml", ICON) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { asset("image/svg+xml", ICON) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Revalidated at most hourly; the binary's version is what changes them.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}
