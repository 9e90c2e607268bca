//! Single sign-on: `/api/v1/organization/sso` (Administrators configure the organization's
//! identity provider and try it) and the browser's way through the provider —
//! `/api/v1/sso/oidc/…` and `/api/v1/sso/saml/{organization_id}/…` (start, the provider's answer,
//! the SAML service provider's metadata).
//!
//! The answer routes are opened by the browser coming back from the provider; the single-use
//! request (OIDC `state`, SAML `InResponseTo`) and the `__Host-lockstep_sso` cookie set at the
//! start are the credential. They answer short HTML pages, never the provider's raw answer.

use crate::AppState;
use crate::extract::{ApiJson, ApiPath, Authenticated, SESSION_COOKIE};
use crate::problem::ApiError;
use crate::web::session::{CSRF_COOKIE, cookie, set_cookie};
use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lockstep_app::{
    AppError, LoginSuccess, OidcCallback, OidcConfigInput, SamlConfigInput, SamlPost, SecretToken,
    SsoConfigInput, SsoConfigView, SsoJit, SsoKind, SsoOutcome, SsoStarted, SsoTestResult,
};
use lockstep_domain::{OrganizationId, Role, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The cookie that binds a sign-in at the identity provider to the browser that started it.
/// `SameSite=None`: a SAML response comes back as a cross-site POST, which leaves Lax and Strict
/// cookies out.
pub(crate) const SSO_COOKIE: &str = "__Host-lockstep_sso";

fn sso_cookie(value: &str, max_age: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{SSO_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=None; Max-Age={max_age}"
    ))
    .ok()
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SsoKindBody {
    Oidc,
    Saml,
}

impl From<SsoKindBody> for SsoKind {
    fn from(kind: SsoKindBody) -> SsoKind {
        match kind {
            SsoKindBody::Oidc => SsoKind::Oidc,
            SsoKindBody::Saml => SsoKind::Saml,
        }
    }
}

impl From<SsoKind> for SsoKindBody {
    fn from(kind: SsoKind) -> SsoKindBody {
        match kind {
            SsoKind::Oidc => SsoKindBody::Oidc,
            SsoKind::Saml => SsoKindBody::Saml,
        }
    }
}

fn viewer() -> Role {
    Role::Viewer
}

/// Just-in-time provisioning.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JitBody {
    /// A verified address without a member becomes one (off by default).
    #[serde(default)]
    enabled: bool,
    /// The role such a member gets.
    #[serde(default = "viewer")]
    role: Role,
}

impl Default for JitBody {
    fn default() -> Self {
        JitBody {
            enabled: false,
            role: Role::Viewer,
        }
    }
}

/// An OpenID Connect provider.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OidcBody {
    /// The issuer URL; its discovery document is read when saving.
    #[schema(max_length = 2048)]
    issuer: String,
    #[schema(max_length = 512)]
    client_id: String,
    /// Write-only: never answered. Leave it out to keep the stored one.
    #[serde(default)]
    #[schema(max_length = 1024)]
    client_secret: Option<String>,
    /// `openid` is always asked; default `openid email profile`.
    #[serde(default)]
    scopes: Vec<String>,
    /// The ID token claim holding the e-mail address (default `email`).
    #[serde(default)]
    email_claim: Option<String>,
}

super::auth::opaque_debug!(OidcBody);

/// A SAML 2.0 identity provider.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SamlBody {
    /// The IdP's metadata XML (at most 256 KiB; no DOCTYPE).
    idp_metadata_xml: String,
}

super::auth::opaque_debug!(SamlBody);

/// The organization's single sign-on.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SsoBody {
    kind: SsoKindBody,
    /// Members may sign in through the provider (try it with a test sign-in first).
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    jit: JitBody,
    /// Refuse password sign-in for everyone but the break-glass Administrator.
    #[serde(default)]
    sso_only: bool,
    /// An active Administrator with TOTP who may still sign in with a password.
    #[serde(default)]
    break_glass_user_id: Option<UserId>,
    /// E-mail domains whose people the sign-in page sends to this provider.
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    oidc: Option<OidcBody>,
    #[serde(default)]
    saml: Option<SamlBody>,
}

super::auth::opaque_debug!(SsoBody);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OidcAnswer {
    issuer: String,
    client_id: String,
    /// Whether a client secret is stored (it is never answered).
    client_secret_set: bool,
    scopes: Vec<String>,
    email_claim: String,
    /// Register this redirect URI at the provider.
    redirect_uri: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SamlAnswer {
    idp_entity_id: String,
    idp_sso_url: String,
    /// The hub as a service provider: give the IdP these, or the metadata URL.
    sp_entity_id: String,
    acs_url: String,
    metadata_url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LastTest {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    /// `ok` or the refusal's reason code.
    result: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SsoAnswer {
    kind: SsoKindBody,
    enabled: bool,
    jit: JitBody,
    sso_only: bool,
    break_glass_user_id: Option<UserId>,
    domains: Vec<String>,
    oidc: Option<OidcAnswer>,
    saml: Option<SamlAnswer>,
    /// The organization's sign-in link.
    sign_in_url: String,
    last_test: Option<LastTest>,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<SsoConfigView> for SsoAnswer {
    fn from(v: SsoConfigView) -> Self {
        SsoAnswer {
            kind: v.kind.into(),
            enabled: v.enabled,
            jit: JitBody {
                enabled: v.jit.enabled,
                role: v.jit.role,
            },
            sso_only: v.sso_only,
            break_glass_user_id: v.break_glass_user_id,
            domains: v.domains,
            oidc: v.oidc.map(|o| OidcAnswer {
                issuer: o.issuer,
                client_id: o.client_id,
                client_secret_set: o.client_secret_set,
                scopes: o.scopes,
                email_claim: o.email_claim,
                redirect_uri: o.redirect_uri,
            }),
            saml: v.saml.map(|s| SamlAnswer {
                idp_entity_id: s.idp_entity_id,
                idp_sso_url: s.idp_sso_url,
                sp_entity_id: s.sp_entity_id,
                acs_url: s.acs_url,
                metadata_url: s.metadata_url,
            }),
            sign_in_url: v.sign_in_url,
            last_test: v.last_test.map(|(at, result)| LastTest { at, result }),
            updated_at: v.updated_at,
        }
    }
}

impl From<SsoBody> for SsoConfigInput {
    fn from(b: SsoBody) -> Self {
        SsoConfigInput {
            kind: b.kind.into(),
            enabled: b.enabled,
            jit: SsoJit {
                enabled: b.jit.enabled,
                role: b.jit.role,
            },
            sso_only: b.sso_only,
            break_glass_user_id: b.break_glass_user_id,
            domains: b.domains,
            oidc: b.oidc.map(|o| OidcConfigInput {
                issuer: o.issuer,
                client_id: o.client_id,
                client_secret: o.client_secret.map(Zeroizing::new),
                scopes: o.scopes,
                email_claim: o.email_claim,
            }),
            saml: b.saml.map(|s| SamlConfigInput {
                idp_metadata_xml: s.idp_metadata_xml,
            }),
        }
    }
}

/// The organization's single sign-on (Administrators); 404 when none is configured.
#[utoipa::path(get, path = "/api/v1/organization/sso", tag = "sso",
    responses((status = 200, body = SsoAnswer),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn get_sso(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<SsoAnswer>, ApiError> {
    let view = state
        .hub
        .sso_config(&caller)
        .await?
        .ok_or(AppError::NotFound("single sign-on"))?;
    Ok(Json(view.into()))
}

/// Configure single sign-on (Administrators). The provider is checked before anything is saved:
/// OIDC discovery through the egress policy, SAML metadata read. The client secret is
/// write-only. Audited `sso.configured`.
#[utoipa::path(put, path = "/api/v1/organization/sso", tag = "sso",
    request_body = SsoBody,
    responses((status = 200, body = SsoAnswer),
        (status = 409, body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn put_sso(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<SsoBody>,
) -> Result<Json<SsoAnswer>, ApiError> {
    Ok(Json(
        state.hub.put_sso_config(&caller, body.into()).await?.into(),
    ))
}

/// Remove single sign-on (Administrators): password sign-in works again for every member.
#[utoipa::path(delete, path = "/api/v1/organization/sso", tag = "sso",
    responses((status = 204, description = "Removed"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn delete_sso(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<StatusCode, ApiError> {
    state.hub.delete_sso_config(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TestStart {
    /// Open this in the same browser: the provider's answer comes back to the hub, which shows
    /// what the provider sent and signs nobody in.
    redirect_url: String,
}

/// Start a test sign-in (Administrators): it works before single sign-on is enabled. The
/// answer sets the binding cookie; open `redirect_url` in the same browser.
#[utoipa::path(post, path = "/api/v1/organization/sso/test", tag = "sso",
    responses((status = 200, body = TestStart),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn test_sso(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Response, ApiError> {
    let started = state.hub.sso_test_start(&caller).await?;
    let mut response = Json(TestStart {
        redirect_url: started.redirect_url.clone(),
    })
    .into_response();
    bind(&mut response, &started);
    Ok(response)
}

fn bind(response: &mut Response, started: &SsoStarted) {
    let max_age = lockstep_app::SSO_REQUEST_VALIDITY.whole_seconds();
    if let Some(value) = sso_cookie(started.binding.expose(), max_age) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The browser to the identity provider, holding the binding cookie.
pub(crate) fn redirect_to_provider(started: &SsoStarted) -> Response {
    let mut response = match HeaderValue::from_str(&started.redirect_url) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    bind(&mut response, started);
    response
}

fn organization(id: &str) -> Result<OrganizationId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid("organization_id", "must be an organization id"))
}

/// The hub's SAML service provider metadata for this organization (public: the IdP reads it).
#[utoipa::path(get, path = "/api/v1/sso/saml/{organization_id}/metadata", tag = "sso",
    security(()),
    params(("organization_id" = uuid::Uuid, Path)),
    responses((status = 200, description = "SP metadata", content_type = "application/samlmetadata+xml"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn saml_metadata(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let org = organization(&id)?;
    let xml = state.hub.saml_sp_metadata(org).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/samlmetadata+xml"),
        )],
        xml,
    )
        .into_response())
}

/// Start signing in at the organization's SAML identity provider: a redirect to it
/// (HTTP-Redirect binding). 404 when the organization has no enabled single sign-on.
#[utoipa::path(get, path = "/api/v1/sso/saml/{organization_id}/start", tag = "sso",
    security(()),
    params(("organization_id" = uuid::Uuid, Path)),
    responses((status = 303, description = "To the identity provider"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn saml_start(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let org = organization(&id)?;
    Ok(redirect_to_provider(&state.hub.sso_start(org).await?))
}

/// Start signing in at the organization's OpenID Connect provider: a redirect to its
/// authorization endpoint (code flow with PKCE, `state` and `nonce`).
#[utoipa::path(get, path = "/api/v1/sso/oidc/{organization_id}/start", tag = "sso",
    security(()),
    params(("organization_id" = uuid::Uuid, Path)),
    responses((status = 303, description = "To the identity provider"),
        (status = 404, body = ApiError, content_type = "application/problem+json")))]
pub(crate) async fn oidc_start(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let org = organization(&id)?;
    Ok(redirect_to_provider(&state.hub.sso_start(org).await?))
}

#[derive(Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OidcCallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

super::auth::opaque_debug!(OidcCallbackQuery);

/// The OpenID Connect provider's redirect back: the code is exchanged, the ID token checked
/// (signature, issuer, audience, expiry, nonce), and the member with that verified address
/// signed in. Answers an HTML page.
#[utoipa::path(get, path = "/api/v1/sso/oidc/callback", tag = "sso",
    security(()),
    params(OidcCallbackQuery),
    responses((status = 200, description = "Signed in, or a test sign-in's result", content_type = "text/html"),
        (status = 403, description = "Refused; the reason is in the organization's audit", content_type = "text/html"),
        (status = 404, description = "Single sign-on is gone", content_type = "text/html")))]
pub(crate) async fn oidc_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<OidcCallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let result = state
        .hub
        .sso_oidc_callback(OidcCallback {
            state: query.state,
            code: query.code,
            error: query.error,
            binding: binding(&headers),
        })
        .await;
    answer_page(result)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    #[serde(rename = "RelayState", default)]
    #[allow(dead_code)]
    relay_state: Option<String>,
}

super::auth::opaque_debug!(AcsForm);

/// The SAML identity provider's answer (HTTP-POST binding). The assertion must be signed by the
/// IdP of the metadata, for this service provider and this URL, within its time, never seen
/// before, and answer a request this browser started. Answers an HTML page.
#[utoipa::path(post, path = "/api/v1/sso/saml/{organization_id}/acs", tag = "sso",
    security(()),
    params(("organization_id" = uuid::Uuid, Path)),
    request_body(content = AcsForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Signed in, or a test sign-in's result", content_type = "text/html"),
        (status = 403, description = "Refused; the reason is in the organization's audit", content_type = "text/html"),
        (status = 404, description = "No single sign-on here", content_type = "text/html")))]
pub(crate) async fn saml_acs(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    form: Result<Form<AcsForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let result = match (organization(&id), form) {
        (Ok(org), Ok(Form(form))) => {
            state
                .hub
                .sso_saml_acs(
                    org,
                    SamlPost {
                        saml_response: form.saml_response,
                        binding: binding(&headers),
                    },
                )
                .await
        }
        (Err(_), _) => Err(AppError::NotFound("single sign-on")),
        (Ok(_), Err(_)) => Err(AppError::SsoRefused(
            lockstep_app::SsoRefusalReason::Malformed,
        )),
    };
    answer_page(result)
}

fn binding(headers: &HeaderMap) -> Option<SecretToken> {
    cookie(headers, SSO_COOKIE).map(|value| SecretToken::from_text(&value))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — Lockstep</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css\"><script src=\"/static/app.js\" defer></script></head>\
         <body><main><section class=\"card narrow\"><h1>{title}</h1>{body}</section></main></body></html>"
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(clear) = sso_cookie("", 0) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

/// The page after the provider's answer: signed in (the session's cookies, and a link app.js
/// follows — a 303 would carry the provider's cross-site chain, which leaves the SameSite=Strict
/// session cookie out), a test's result, or the refusal.
fn answer_page(result: Result<SsoOutcome, AppError>) -> Response {
    match result {
        Ok(SsoOutcome::SignedIn(done)) => signed_in_page(&done),
        Ok(SsoOutcome::Tested(test)) => tested_page(&test),
        Err(AppError::SsoRefused(reason)) => page(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            &format!(
                "<p>The identity provider's answer was refused (<code>{}</code>). Nobody was signed in.</p>\
                 <p>Start again from your organization's sign-in link. An Administrator finds the refusal in the audit.</p>\
                 <p><a href=\"/login\">Back to sign-in</a></p>",
                reason.code()
            ),
        ),
        Err(AppError::NotFound(_)) => page(
            StatusCode::NOT_FOUND,
            "No single sign-on",
            "<p>This organization has no single sign-on (any more).</p><p><a href=\"/login\">Back to sign-in</a></p>",
        ),
        Err(AppError::Sealed) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The hub is sealed",
            "<p>Try again once an operator has unsealed it.</p>",
        ),
        Err(err) => {
            let problem = ApiError::from(err);
            page(
                problem.status,
                "Sign-in failed",
                "<p>The sign-in could not be completed. Start again from your organization's sign-in link.</p>\
                 <p><a href=\"/login\">Back to sign-in</a></p>",
            )
        }
    }
}

fn signed_in_page(done: &LoginSuccess) -> Response {
    let mut response = page(
        StatusCode::OK,
        "Signed in",
        "<p>You are signed in through your organization's identity provider.</p>\
         <p><a data-follow href=\"/\">Continue</a></p>",
    );
    let max_age = (done.expires_at - OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0);
    for value in [
        set_cookie(SESSION_COOKIE, done.session_token.expose(), Some(max_age)),
        set_cookie(CSRF_COOKIE, done.csrf_token.expose(), Some(max_age)),
    ]
    .into_iter()
    .flatten()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn tested_page(test: &SsoTestResult) -> Response {
    let mut rows = String::new();
    for (name, values) in &test.attributes {
        rows.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            escape(name),
            escape(&values.join(", "))
        ));
    }
    let outcome = match test.outcome.as_str() {
        "sign_in" => "a member with this address would be signed in".to_owned(),
        "provision" => "a new member would be created (just-in-time provisioning)".to_owned(),
        other => format!(
            "the sign-in would be refused (<code>{}</code>)",
            escape(other)
        ),
    };
    let body = format!(
        "<p>The identity provider's answer passed every check. Nobody was signed in.</p>\
         <dl><dt>Subject</dt><dd><code>{}</code></dd><dt>E-mail</dt><dd>{}</dd>\
         <dt>E-mail verified</dt><dd>{}</dd><dt>A real sign-in</dt><dd>{outcome}</dd></dl>\
         <table class=\"grid\"><caption>What the provider sent</caption><tbody>{rows}</tbody></table>\
         <p><a data-follow href=\"/settings/sso\">Back to the single sign-on settings</a></p>",
        escape(&test.subject),
        escape(test.email.as_deref().unwrap_or("(none)")),
        if test.email_verified { "yes" } else { "no" },
    );
    page(StatusCode::OK, "Test sign-in", &body)
}
