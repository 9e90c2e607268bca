//! Single sign-on pages: the Administrators' settings (`/settings/sso`: the provider, just-in-time
//! provisioning, SSO only with its break-glass Administrator, a test sign-in), the organization's
//! sign-in link (`/sso/{organization_id}`), and the sign-in page's "single sign-on" form, which
//! finds the organization by the address's domain.

use super::page::{FormErrors, NoticeQuery, Shell, WebError, render, render_status, see_other};
use super::session::{AnonPosted, Posted, SignedIn};
use crate::AppState;
use crate::api::v1::sso::redirect_to_provider;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lockstep_app::{AppError, OidcConfigInput, SamlConfigInput, SsoConfigInput, SsoJit, SsoKind};
use lockstep_domain::{OrganizationId, Role, UserId};
use serde::Deserialize;
use zeroize::Zeroizing;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings/sso", get(sso_page).post(save))
        .route("/settings/sso/test", post(test))
        .route("/settings/sso/delete", post(remove))
        .route("/sso/{organization_id}", get(start))
        .route("/login/sso", post(login_sso))
}

/// A member who may be the break-glass account (an active Administrator with TOTP).
pub(crate) struct BreakGlassOption {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "settings/sso.html")]
struct SsoPage {
    shell: Shell,
    errors: FormErrors,
    configured: bool,
    kind: String,
    enabled: bool,
    jit_enabled: bool,
    jit_role: String,
    sso_only: bool,
    break_glass_user_id: String,
    break_glass: Vec<BreakGlassOption>,
    domains: String,
    issuer: String,
    client_id: String,
    client_secret_set: bool,
    scopes: String,
    email_claim: String,
    redirect_uri: String,
    idp_metadata_xml: String,
    idp_entity_id: String,
    sp_entity_id: String,
    acs_url: String,
    metadata_url: String,
    sign_in_url: String,
    last_test: Option<(String, String)>,
}

impl SsoPage {
    fn role_selected(&self, role: &str) -> bool {
        self.jit_role == role
    }
}

async fn page_for(
    state: &AppState,
    signed: &SignedIn,
    errors: FormErrors,
    notice: Option<&'static str>,
) -> Result<SsoPage, WebError> {
    let view = state.hub.sso_config(&signed.caller).await?;
    let users = state.hub.list_users(&signed.caller).await?;
    let time_zone = state.hub.me(&signed.caller).await?.time_zone;
    let break_glass = users
        .into_iter()
        .filter(|u| u.active && u.role == Role::Administrator && u.totp_enabled)
        .map(|u| BreakGlassOption {
            id: u.id.to_string(),
            name: u.display_name,
        })
        .collect();
    let shell = signed
        .shell("Single sign-on", "settings")
        .with_notice(notice);
    let sign_in_url = state.hub.sso_sign_in_url(signed.caller.organization());
    let sp = state
        .hub
        .saml_service_provider(signed.caller.organization());
    let mut page = SsoPage {
        shell,
        errors,
        configured: view.is_some(),
        kind: "oidc".to_owned(),
        enabled: false,
        jit_enabled: false,
        jit_role: "viewer".to_owned(),
        sso_only: false,
        break_glass_user_id: String::new(),
        break_glass,
        domains: String::new(),
        issuer: String::new(),
        client_id: String::new(),
        client_secret_set: false,
        scopes: "openid email profile".to_owned(),
        email_claim: "email".to_owned(),
        redirect_uri: state.hub.sso_oidc_redirect_uri(),
        idp_metadata_xml: String::new(),
        idp_entity_id: String::new(),
        sp_entity_id: sp.entity_id,
        acs_url: sp.acs_url,
        metadata_url: sp.metadata_url,
        sign_in_url,
        last_test: None,
    };
    if let Some(view) = view {
        page.kind = match view.kind {
            SsoKind::Oidc => "oidc",
            SsoKind::Saml => "saml",
        }
        .to_owned();
        page.enabled = view.enabled;
        page.jit_enabled = view.jit.enabled;
        page.jit_role = view.jit.role.as_str().to_owned();
        page.sso_only = view.sso_only;
        page.break_glass_user_id = view
            .break_glass_user_id
            .map(|id| id.to_string())
            .unwrap_or_default();
        page.domains = view.domains.join(", ");
        if let Some(oidc) = view.oidc {
            page.issuer = oidc.issuer;
            page.client_id = oidc.client_id;
            page.client_secret_set = oidc.client_secret_set;
            page.scopes = oidc.scopes.join(" ");
            page.email_claim = oidc.email_claim;
        }
        if let Some(saml) = view.saml {
            page.idp_entity_id = saml.idp_entity_id;
        }
        page.last_test = view
            .last_test
            .map(|(at, result)| (super::page::when(time_zone, at), result));
    }
    Ok(page)
}

async fn sso_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    Ok(render(
        &page_for(&state, &signed, FormErrors::none(), query.text()).await?,
    ))
}

#[derive(Deserialize)]
struct SsoForm {
    kind: String,
    enabled: Option<String>,
    jit_enabled: Option<String>,
    #[serde(default)]
    jit_role: String,
    sso_only: Option<String>,
    #[serde(default)]
    break_glass_user_id: String,
    #[serde(default)]
    domains: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    email_claim: String,
    #[serde(default)]
    idp_metadata_xml: String,
}

super::super::api::v1::auth::opaque_debug!(SsoForm);

async fn save(
    State(state): State<AppState>,
    Posted(signed, form): Posted<SsoForm>,
) -> Result<Response, WebError> {
    let kind = if form.kind == "saml" {
        SsoKind::Saml
    } else {
        SsoKind::Oidc
    };
    let role = form.jit_role.parse::<Role>().unwrap_or(Role::Viewer);
    let break_glass = match form.break_glass_user_id.trim() {
        "" => None,
        id => id.parse::<UserId>().ok(),
    };
    let split = |text: &str| -> Vec<String> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let input = SsoConfigInput {
        kind,
        enabled: form.enabled.is_some(),
        jit: SsoJit {
            enabled: form.jit_enabled.is_some(),
            role,
        },
        sso_only: form.sso_only.is_some(),
        break_glass_user_id: break_glass,
        domains: split(&form.domains),
        oidc: (kind == SsoKind::Oidc).then(|| OidcConfigInput {
            issuer: form.issuer.clone(),
            client_id: form.client_id.clone(),
            client_secret: Some(Zeroizing::new(form.client_secret.clone()))
                .filter(|s| !s.trim().is_empty()),
            scopes: split(&form.scopes),
            email_claim: Some(form.email_claim.clone()),
        }),
        saml: (kind == SsoKind::Saml).then(|| SamlConfigInput {
            idp_metadata_xml: form.idp_metadata_xml.clone(),
        }),
    };
    match state.hub.put_sso_config(&signed.caller, input).await {
        Ok(_) => Ok(see_other("/settings/sso?notice=saved")),
        Err(
            err @ (AppError::Invalid { .. }
            | AppError::Conflict(_)
            | AppError::Connector { .. }
            | AppError::Refused(_)),
        ) => {
            let mut page = page_for(&state, &signed, FormErrors::from_app(err), None).await?;
            // What was typed stays in the form (never the secret).
            page.kind = if kind == SsoKind::Saml {
                "saml"
            } else {
                "oidc"
            }
            .to_owned();
            page.enabled = form.enabled.is_some();
            page.jit_enabled = form.jit_enabled.is_some();
            page.jit_role = role.as_str().to_owned();
            page.sso_only = form.sso_only.is_some();
            page.break_glass_user_id = form.break_glass_user_id;
            page.domains = form.domains;
            page.issuer = form.issuer;
            page.client_id = form.client_id;
            page.scopes = form.scopes;
            page.email_claim = form.email_claim;
            page.idp_metadata_xml = form.idp_metadata_xml;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
struct Empty {}

/// Starts the Administrator's test sign-in: to the provider, and back to a page that shows what
/// it sent.
async fn test(
    State(state): State<AppState>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    match state.hub.sso_test_start(&signed.caller).await {
        Ok(started) => Ok(redirect_to_provider(&started)),
        Err(err @ (AppError::NotFound(_) | AppError::Connector { .. } | AppError::Refused(_))) => {
            let page = page_for(&state, &signed, FormErrors::from_app(err), None).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(err) => Err(err.into()),
    }
}

async fn remove(
    State(state): State<AppState>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    state.hub.delete_sso_config(&signed.caller).await?;
    Ok(see_other("/settings/sso?notice=deleted"))
}

/// The organization's sign-in link: straight to its identity provider.
async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let org: OrganizationId = id
        .parse()
        .map_err(|_| WebError::from(AppError::NotFound("single sign-on")))?;
    Ok(redirect_to_provider(&state.hub.sso_start(org).await?))
}

#[derive(Deserialize)]
struct SsoLoginForm {
    email: String,
}

super::super::api::v1::auth::opaque_debug!(SsoLoginForm);

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginAgain {
    shell: Shell,
    email: String,
    errors: FormErrors,
}

/// The sign-in page's single sign-on form: the address's domain leads to an organization's
/// identity provider.
async fn login_sso(
    State(state): State<AppState>,
    AnonPosted(anon, form, _): AnonPosted<SsoLoginForm>,
) -> Result<Response, WebError> {
    match state.hub.sso_organization_for_email(&form.email).await? {
        Some(org) => Ok(see_other(&format!("/sso/{org}"))),
        None => {
            let page = LoginAgain {
                shell: anon.shell("Sign in"),
                email: form.email.trim().to_owned(),
                errors: FormErrors::none().field(
                    "sso_email",
                    "No single sign-on is set up for this address's domain: sign in with your password, or use your organization's sign-in link.",
                ),
            };
            Ok(anon.attach(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)))
        }
    }
}
