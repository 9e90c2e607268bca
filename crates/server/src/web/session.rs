//! Who is asking, for pages: the member's session cookie, the operator's page session, and the
//! CSRF check of every form.
//!
//! - A member's page session is the API's session (`__Host-lockstep_session`); its CSRF token is
//!   kept in a second `__Host-` cookie at sign-in so pages can put it into their forms. A form
//!   is accepted only when its `csrf` field (or htmx's `X-CSRF-Token` header) is the session's.
//! - Forms shown before anyone is signed in (sign-in, unseal, invitation, reset) carry a random
//!   token that must equal a cookie set with the page (double submit).
//! - The operator signs in to pages with the operator token once; the page session lives in this
//!   process's memory only, for 30 minutes, and ends when the hub is sealed.
//!
//! Every cookie is `__Host-`, Secure, HttpOnly, SameSite=Strict.

use super::page::{MemberNav, Shell, WebError, Who};
use crate::AppState;
use crate::extract::SESSION_COOKIE;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use lockstep_app::{Caller, Operator, Password, SecretToken};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session's CSRF token, for pages.
pub(crate) const CSRF_COOKIE: &str = "__Host-lockstep_csrf";
/// The double-submit token of forms shown to nobody signed in.
pub(crate) const FORM_COOKIE: &str = "__Host-lockstep_form";
/// The operator's page session.
pub(crate) const OPERATOR_COOKIE: &str = "__Host-lockstep_operator";
/// A sign-in waiting for its TOTP code.
pub(crate) const PENDING_COOKIE: &str = "__Host-lockstep_totp";

const OPERATOR_SESSION: Duration = Duration::from_secs(30 * 60);
const PENDING_LOGIN: Duration = Duration::from_secs(5 * 60);
/// Wrong codes a pending sign-in may take before it has to start over.
const PENDING_ATTEMPTS: u8 = 5;

/// The in-memory state of pages: operator page sessions and sign-ins waiting for a TOTP code.
/// Keys are SHA-256 hashes of the cookie values, so the map holds no usable token.
#[derive(Default)]
pub(crate) struct WebState {
    operators: Mutex<HashMap<[u8; 32], OperatorSession>>,
    pending: Mutex<HashMap<[u8; 32], PendingLogin>>,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebState(..)")
    }
}

struct OperatorSession {
    operator: Operator,
    csrf: String,
    expires: Instant,
}

/// A sign-in whose password was right and that waits for the TOTP code.
pub(crate) struct PendingLogin {
    pub email: String,
    pub password: Password,
    /// The organization chosen when the address has accounts in several.
    pub organization: Option<lockstep_domain::OrganizationId>,
    expires: Instant,
    attempts: u8,
}

impl WebState {
    /// Starts an operator page session; answers the cookie value.
    pub fn start_operator(&self, operator: Operator) -> String {
        let token = new_token("lso_");
        let session = OperatorSession {
            operator,
            csrf: new_token("lsc_").expose().to_owned(),
            expires: Instant::now() + OPERATOR_SESSION,
        };
        if let Ok(mut map) = self.operators.lock() {
            map.retain(|_, s| s.expires > Instant::now());
            map.insert(token.hash(), session);
        }
        token.expose().to_owned()
    }

    fn operator(&self, cookie: &str) -> Option<(Operator, String)> {
        let map = self.operators.lock().ok()?;
        let session = map.get(&SecretToken::from_text(cookie).hash())?;
        (session.expires > Instant::now()).then(|| (session.operator.clone(), session.csrf.clone()))
    }

    pub fn end_operator(&self, cookie: &str) {
        if let Ok(mut map) = self.operators.lock() {
            map.remove(&SecretToken::from_text(cookie).hash());
        }
    }

    /// Ends every operator page session (when the hub is sealed).
    pub fn end_all_operators(&self) {
        if let Ok(mut map) = self.operators.lock() {
            map.clear();
        }
    }

    /// Keeps a sign-in that needs its TOTP code or a choice of organization; answers the cookie
    /// value.
    pub fn hold_login(&self, email: String, password: Password) -> String {
        let token = new_token("lsp_");
        if let Ok(mut map) = self.pending.lock() {
            map.retain(|_, p| p.expires > Instant::now());
            map.insert(
                token.hash(),
                PendingLogin {
                    email,
                    password,
                    organization: None,
                    expires: Instant::now() + PENDING_LOGIN,
                    attempts: 0,
                },
            );
        }
        token.expose().to_owned()
    }

    /// Takes the pending sign-in out, counting an attempt; `put_back` returns it after a wrong
    /// code. A pending sign-in past its time or its attempts is gone.
    pub fn take_login(&self, cookie: &str) -> Option<PendingLogin> {
        let mut map = self.pending.lock().ok()?;
        let mut pending = map.remove(&SecretToken::from_text(cookie).hash())?;
        pending.attempts += 1;
        (pending.expires > Instant::now()).then_some(pending)
    }

    pub fn put_back_login(&self, cookie: &str, pending: PendingLogin) {
        if pending.attempts >= PENDING_ATTEMPTS {
            return;
        }
        if let Ok(mut map) = self.pending.lock() {
            map.insert(SecretToken::from_text(cookie).hash(), pending);
        }
    }
}

fn new_token(prefix: &str) -> SecretToken {
    SecretToken::generate(prefix, &mut rand::rng())
}

/// The value of cookie `name`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for a `__Host-` cookie; `max_age` `None` is a browser-session cookie.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> Option<HeaderValue> {
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}"
    ))
    .ok()
}

/// Adds `Set-Cookie` headers that delete `names`.
pub(crate) fn clear_cookies(response: &mut Response, names: &[&str]) {
    for name in names {
        if let Some(value) = set_cookie(name, "", Some(0)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// A signed-in member (session cookie). Pages without one send the browser to `/login`.
#[derive(Debug)]
pub(crate) struct SignedIn {
    pub caller: Caller,
    pub csrf: String,
    pub nav: MemberNav,
}

impl SignedIn {
    /// The layout's context for a page of this member.
    pub fn shell(&self, title: impl Into<String>, section: &'static str) -> Shell {
        Shell {
            title: title.into(),
            section,
            csrf: self.csrf.clone(),
            who: Who::Member(Box::new(self.nav.clone())),
            notice: None,
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let signed_in = SignedIn::from_headers(&parts.headers, state).await?;
        crate::extract::audit_support_request(parts, state, &signed_in.caller).await?;
        Ok(signed_in)
    }
}

impl SignedIn {
    /// The member of the session cookie among `headers`.
    pub async fn from_headers(headers: &HeaderMap, state: &AppState) -> Result<Self, WebError> {
        if state.hub.is_sealed() {
            return Err(WebError::Sealed);
        }
        let token = cookie(headers, SESSION_COOKIE).ok_or(WebError::SignIn)?;
        let caller = state.hub.authenticate(&token).await?;
        let account = state.hub.me(&caller).await?;
        let support_until = state
            .hub
            .support_access_until(&caller)
            .await?
            .map(|until| crate::web::page::when(account.time_zone, until));
        let deletion_due = state
            .hub
            .organization_deletion_due(&caller)
            .await?
            .map(|t| super::page::when(account.time_zone, t));
        Ok(SignedIn {
            csrf: cookie(headers, CSRF_COOKIE).unwrap_or_default(),
            nav: MemberNav {
                organization: account.organization_name,
                display_name: account.display_name,
                email: account.email,
                role: account.role,
                member: caller.member,
                time_zone: account.time_zone,
                support_until,
                deletion_due,
            },
            caller,
        })
    }
}

/// The `csrf` field every form carries (the rest of the body is the handler's).
#[derive(serde::Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

fn form_csrf(parts: &Parts, body: &[u8]) -> String {
    if let Some(header) = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
    {
        return header.to_owned();
    }
    serde_urlencoded::from_bytes::<CsrfField>(body)
        .ok()
        .and_then(|f| f.csrf)
        .unwrap_or_default()
}

/// Parses an `application/x-www-form-urlencoded` body into `T`. A field of the wrong shape is
/// a 400 page naming the problem, never the value.
pub(crate) fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, WebError> {
    // serde's message can quote a field's value (an unknown variant, say): it is not logged.
    serde_urlencoded::from_bytes(body).map_err(|_| {
        tracing::debug!("a form could not be read");
        WebError::bad_request("A field of the form is missing or has the wrong shape.")
    })
}

async fn read_body(body: axum::body::Body) -> Result<Bytes, WebError> {
    axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| WebError::bad_request("The form could not be read (it may be too large)."))
}

/// A member's form post: the session, the CSRF check, then the form as `T`.
#[derive(Debug)]
pub(crate) struct Posted<T>(pub SignedIn, pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let signed = SignedIn::from_request_parts(&mut parts, state).await?;
        let body = read_body(body).await?;
        if !signed.caller.csrf_matches(&form_csrf(&parts, &body)) {
            return Err(WebError::Csrf);
        }
        Ok(Posted(signed, parse_form(&body)?))
    }
}

/// The double-submit token of a page for nobody signed in: the cookie's, or a new one that
/// [`AnonCsrf::attach`] sets on the response.
#[derive(Debug)]
pub(crate) struct AnonCsrf {
    pub token: String,
    fresh: bool,
}

impl AnonCsrf {
    /// Sets the cookie on `response` when the token is new.
    pub fn attach(&self, mut response: Response) -> Response {
        if self.fresh
            && let Some(value) = set_cookie(FORM_COOKIE, &self.token, None)
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }

    pub fn shell(&self, title: impl Into<String>) -> Shell {
        Shell {
            title: title.into(),
            section: "",
            csrf: self.token.clone(),
            who: Who::Anonymous,
            notice: None,
        }
    }
}

impl FromRequestParts<AppState> for AnonCsrf {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, WebError> {
        Ok(match cookie(&parts.headers, FORM_COOKIE) {
            Some(token) => AnonCsrf {
                token,
                fresh: false,
            },
            None => AnonCsrf {
                token: new_token("lsf_").expose().to_owned(),
                fresh: true,
            },
        })
    }
}

/// A form post from a page for nobody signed in: the double-submit check, then `T`.
#[derive(Debug)]
pub(crate) struct AnonPosted<T>(pub AnonCsrf, pub T, pub HeaderMap);

impl<T: DeserializeOwned> FromRequest<AppState> for AnonPosted<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, WebError> {
        let (parts, body) = req.into_parts();
        let body = read_body(body).await?;
        let expected = cookie(&parts.headers, FORM_COOKIE).ok_or(WebError::Csrf)?;
        let sent = form_csrf(&parts, &body);
        if !lockstep_auth::hashes_equal(
            &SecretToken::from_text(&sent).hash(),
            &SecretToken::from_text(&expected).hash(),
        ) {
            return Err(WebError::Csrf);
        }
        Ok(AnonPosted(
            AnonCsrf {
                token: expected,
                fresh: false,
            },
            parse_form(&body)?,
            parts.headers,
        ))
    }
}

/// The operator, signed in to pages.
#[derive(Debug)]
pub(crate) struct OperatorSignedIn {
    pub operator: Operator,
    pub csrf: String,
}

impl OperatorSignedIn {
    pub fn shell(&self, title: impl Into<String>, section: &'static str) -> Shell {
        Shell {
            title: title.into(),
            section,
            csrf: self.csrf.clone(),
            who: Who::Operator,
            notice: None,
        }
    }
}

impl FromRequestParts<AppState> for OperatorSignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        if state.hub.is_sealed() {
            return Err(WebError::Sealed);
        }
        let cookie = cookie(&parts.headers, OPERATOR_COOKIE).ok_or(WebError::OperatorSignIn)?;
        let (operator, csrf) = state
            .web
            .operator(&cookie)
            .ok_or(WebError::OperatorSignIn)?;
        Ok(OperatorSignedIn { operator, csrf })
    }
}

/// An operator's form post: the page session, the CSRF check, then `T`.
#[derive(Debug)]
pub(crate) struct OperatorPosted<T>(pub OperatorSignedIn, pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for OperatorPosted<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let signed = OperatorSignedIn::from_request_parts(&mut parts, state).await?;
        let body = read_body(body).await?;
        let sent = form_csrf(&parts, &body);
        if !lockstep_auth::hashes_equal(
            &SecretToken::from_text(&sent).hash(),
            &SecretToken::from_text(&signed.csrf).hash(),
        ) {
            return Err(WebError::Csrf);
        }
        Ok(OperatorPosted(signed, parse_form(&body)?))
    }
}
