//! Middleware around every route: security headers, the sealed gate, rate limits and the body
//! limit.

use crate::AppState;
use crate::problem::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::BodyExt as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The per-address limiter of the sign-in routes.
pub(crate) type AuthLimiter = DefaultKeyedRateLimiter<IpAddr>;

pub(crate) fn auth_limiter(per_minute: u32) -> AuthLimiter {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_minute(n))
}

/// Limits `/api/v1/auth/*`, `/api/v1/sso/*` and the sign-in forms of pages per client address, so passwords
/// cannot be guessed at speed (the account lockout covers one account; this covers many
/// accounts from one address).
pub(crate) async fn auth_rate_limit(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let sign_in_form =
        request.method() == axum::http::Method::POST && crate::web::RATE_LIMITED.contains(&path);
    // Single sign-on's public routes make rows and call the identity provider: limited alike.
    let sso = path.starts_with("/api/v1/sso/") || path.starts_with("/sso/");
    if path.starts_with("/api/v1/auth/") || sign_in_form || sso {
        let address = request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |info| info.0.ip());
        if state.auth_limiter.check_key(&address).is_err() {
            let problem = ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many sign-in requests",
            )
            .detail("Wait a minute and try again.");
            let mut response = if sign_in_form {
                crate::web::error_page(&problem)
            } else {
                problem.into_response()
            };
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return response;
        }
        if state.auth_limiter.len() > 100_000 {
            state.auth_limiter.retain_recent();
        }
    }
    next.run(request).await
}

/// The only API paths served while the vault is sealed (with the unseal page, see
/// `web::served_while_sealed`). Every other API path answers 503 and every other page redirects
/// to the unseal page: deny by default, so a route added later is gated without anyone
/// remembering to.
pub const SEALED_ALLOWED_PATHS: [&str; 3] =
    ["/healthz", "/api/v1/sys/seal-status", "/api/v1/sys/unseal"];

pub(crate) async fn sealed_gate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if state.hub.is_sealed()
        && !SEALED_ALLOWED_PATHS.contains(&path)
        && !crate::web::served_while_sealed(path)
    {
        if path.starts_with("/api/") {
            return ApiError::sealed().into_response();
        }
        let mut response = axum::http::StatusCode::SEE_OTHER.into_response();
        response
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/"));
        return response;
    }
    next.run(request).await
}

/// Sets the security headers on every response: HSTS for two years, no MIME sniffing, a
/// restrictive CSP that forbids framing, no referrer, and no caching of API responses.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A handler's own policy (a part's file: nothing may run) is kept.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if is_api || !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// One log line per request: method, the route's template (never the raw path or query, which
/// could carry values), status and duration. Nothing from headers or bodies.
pub(crate) async fn request_log(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    tracing::info!(
        target: "lockstep::http",
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

/// Request bodies are limited to 1 MiB, except file uploads to connections
/// (`PUT /api/v1/connections/{id}/files/{name}`, and the page's form
/// `POST /connections/{id}/files`), limited to the upload size. A declared length over the
/// limit is refused before the body is read; a body that grows past it (HTTP/2 and chunked
/// bodies need not declare a length) is refused the same way whichever extractor read it: 413
/// problem+json, or the error page for pages.
///
/// An answer given before the body was read to its end keeps the unread body until the answer
/// is sent: over HTTP/2, dropping it earlier resets the stream (`CANCEL`) and the client never
/// sees the answer; dropped after, the server stops the upload with `NO_ERROR` and the client
/// reads the 413 (or 401, 404…).
/// Whether `path` takes a file as its body: a bill of materials made into a data set, the file
/// one is compared with, or its parts' files (API and pages).
fn dataset_upload(path: &str) -> bool {
    let rest = path
        .strip_prefix("/api/v1/datasets/")
        .or_else(|| path.strip_prefix("/datasets/"));
    match rest {
        Some("upload") => true,
        Some(rest) => rest
            .split_once('/')
            .is_some_and(|(id, tail)| !id.is_empty() && matches!(tail, "compare" | "files")),
        None => false,
    }
}

pub(crate) async fn body_limit(request: Request, next: Next) -> Response {
    const DEFAULT: usize = 1024 * 1024;
    let path = request.uri().path();
    let upload = (request.method() == axum::http::Method::PUT
        && path.starts_with("/api/v1/connections/")
        && path.contains("/files/"))
        || (request.method() == axum::http::Method::POST && dataset_upload(path))
        || (request.method() == axum::http::Method::POST
            && path
                .strip_prefix("/connections/")
                .and_then(|rest| rest.strip_suffix("/files"))
                .is_some_and(|id| !id.is_empty() && !id.contains('/')));
    let limit = if upload {
        lockstep_app::MAX_UPLOAD_BYTES + 64 * 1024
    } else {
        DEFAULT
    };
    let is_api = path.starts_with("/api/");
    let too_large = move || {
        let problem = ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The request body is too large",
        )
        .detail(if upload {
            format!("Files are limited to {} MiB.", lockstep_app::MAX_UPLOAD_MIB)
        } else {
            format!("At most {} MiB.", DEFAULT >> 20)
        });
        if is_api {
            problem.into_response()
        } else {
            crate::web::error_page(&problem)
        }
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let (parts, body) = request.into_parts();
    if let Some(declared) = declared.filter(|n| *n > limit) {
        // An HTTP/1.1 client that sends its whole body before reading (most do, unless they
        // asked `Expect: 100-continue`) would find the connection closed under it and never
        // read the answer: take in and throw away a body of a bounded size first.
        if drains(&parts, declared, limit) {
            discard(body, limit).await;
            return too_large();
        }
        return keep_until_sent(too_large(), Some(body));
    }
    let parked = Arc::new(Mutex::new(None));
    let exceeded = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&exceeded);
    let body = http_body_util::Limited::new(
        ParkedBody {
            body: Some(body),
            parked: Arc::clone(&parked),
        },
        limit,
    )
    .map_err(move |err| {
        if err.is::<http_body_util::LengthLimitError>() {
            flag.store(true, Ordering::Relaxed);
        }
        err
    });
    let response = next
        .run(Request::from_parts(parts, axum::body::Body::new(body)))
        .await;
    // Whichever extractor met the limit answered its own error (400, 422…): say what it was.
    let failed = response.status().is_client_error() || response.status().is_server_error();
    let response = if failed && exceeded.load(Ordering::Relaxed) {
        too_large()
    } else {
        response
    };
    let unread = parked.lock().ok().and_then(|mut slot| slot.take());
    keep_until_sent(response, unread)
}

/// At most this much over the limit, an oversized HTTP/1.1 body is read and thrown away so that
/// the client sees its 413; a longer one gets the answer at once and the connection closes.
const DRAIN_AT_MOST: usize = 8 * 1024 * 1024;
/// How long reading an oversized body to throw it away may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether an oversized body of `declared` bytes is read to its end before the 413: HTTP/1.x,
/// no `Expect: 100-continue` (that client waits and sends nothing), and not far over `limit`.
fn drains(parts: &axum::http::request::Parts, declared: usize, limit: usize) -> bool {
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    parts.version <= axum::http::Version::HTTP_11
        && !expects_continue
        && declared <= limit.saturating_add(DRAIN_AT_MOST)
}

/// Reads `body` to its end (at most [`DRAIN_AT_MOST`] bytes over `limit`, for at most
/// [`DRAIN_TIME`]) and drops what it read.
async fn discard(body: axum::body::Body, limit: usize) {
    let mut body = http_body_util::Limited::new(body, limit.saturating_add(DRAIN_AT_MOST));
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
}

/// `response`, holding `unread` (a request body not read to its end) until the response's own
/// body has been sent.
fn keep_until_sent(response: Response, unread: Option<axum::body::Body>) -> Response {
    let Some(unread) = unread else {
        return response;
    };
    response.map(|body| {
        axum::body::Body::new(body.map_frame(move |frame| {
            let _held = &unread;
            frame
        }))
    })
}

/// A request body that, dropped before its end, is put in `parked` instead of being dropped,
/// so [`body_limit`] can keep it until the answer is sent.
struct ParkedBody {
    body: Option<axum::body::Body>,
    parked: Arc<Mutex<Option<axum::body::Body>>>,
}

impl http_body::Body for ParkedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match self.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            http_body::Body::size_hint,
        )
    }
}

impl Drop for ParkedBody {
    fn drop(&mut self) {
        if let Some(body) = self.body.take()
            && !http_body::Body::is_end_stream(&body)
            && let Ok(mut slot) = self.parked.lock()
        {
            *slot = Some(body);
        }
    }
}
