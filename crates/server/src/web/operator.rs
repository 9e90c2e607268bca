//! The operator's pages: unseal (served while sealed), the operator's sign-in with the operator
//! token, organizations (create with the first Administrator's address, delete after typing the
//! name), seal.

use super::page::{FormErrors, NoticeQuery, Shell, WebError, render, render_status, see_other};
use super::session::{
    AnonCsrf, AnonPosted, OPERATOR_COOKIE, OperatorPosted, OperatorSignedIn, clear_cookies, cookie,
    set_cookie,
};
use crate::AppState;
use crate::extract::SESSION_COOKIE;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Router, extract::FromRequestParts};
use lockstep_app::{SealStatus, SecretToken, UnsealKey};
use lockstep_domain::OrganizationId;
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(start))
        .route("/unseal", get(unseal_page).post(unseal))
        .route("/operator", get(sign_in_page).post(sign_in))
        .route("/operator/sign-out", post(sign_out))
        .route("/operator/seal", post(seal))
        .route(
            "/operator/organizations",
            get(organizations).post(create_organization),
        )
        .route(
            "/operator/organizations/{id}/delete",
            get(delete_page).post(delete_organization),
        )
}

/// `/`: the unseal page while sealed; otherwise where the visitor works (the dashboard for a
/// member, organizations for the operator), or the sign-in page.
async fn start(
    State(state): State<AppState>,
    anon: AnonCsrf,
    Query(query): Query<NoticeQuery>,
    headers: HeaderMap,
) -> Response {
    if state.hub.is_sealed() {
        return unseal_view(&state, &anon, &FormErrors::none(), query.text());
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && state.hub.authenticate(&token).await.is_ok()
    {
        return see_other("/dashboard");
    }
    if cookie(&headers, OPERATOR_COOKIE).is_some() {
        let mut parts = axum::http::Request::new(()).into_parts().0;
        parts.headers = headers;
        if OperatorSignedIn::from_request_parts(&mut parts, &state)
            .await
            .is_ok()
        {
            return see_other("/operator/organizations");
        }
    }
    see_other("/login")
}

#[derive(Template)]
#[template(path = "operator/unseal.html")]
struct UnsealPage {
    shell: Shell,
    status: SealStatus,
    errors: FormErrors,
}

fn unseal_view(
    state: &AppState,
    anon: &AnonCsrf,
    errors: &FormErrors,
    notice: Option<&'static str>,
) -> Response {
    let page = UnsealPage {
        shell: anon.shell("Unseal the hub").with_notice(notice),
        status: state.hub.seal_status(),
        errors: errors.clone(),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    anon.attach(render_status(status, &page))
}

async fn unseal_page(State(state): State<AppState>, anon: AnonCsrf) -> Response {
    if !state.hub.is_sealed() {
        return see_other("/");
    }
    unseal_view(&state, &anon, &FormErrors::none(), None)
}

#[derive(Deserialize)]
struct UnsealForm {
    key: Option<String>,
    reset: Option<String>,
}

async fn unseal(
    State(state): State<AppState>,
    AnonPosted(anon, form, _): AnonPosted<UnsealForm>,
) -> Response {
    if form.reset.is_some() {
        state.hub.reset_unseal();
        return see_other("/");
    }
    if !state.hub.is_sealed() {
        return see_other("/operator?notice=unsealed");
    }
    let key = form.key.unwrap_or_default();
    if key.trim().is_empty() {
        let errors = FormErrors::none().field("key", "Enter one unseal key share.");
        return unseal_view(&state, &anon, &errors, None);
    }
    match state
        .hub
        .submit_unseal_key(&UnsealKey::from_text(key.trim()))
    {
        Ok(status) if !status.sealed => see_other("/operator?notice=unsealed"),
        Ok(_) => see_other("/"),
        Err(err) => {
            let errors = FormErrors::none().field(
                "key",
                match FormErrors::from_app(err).general {
                    Some(message) => message,
                    None => "The share was refused; it was not counted.".to_owned(),
                },
            );
            unseal_view(&state, &anon, &errors, None)
        }
    }
}

#[derive(Template)]
#[template(path = "operator/sign_in.html")]
struct SignInPage {
    shell: Shell,
    errors: FormErrors,
}

async fn sign_in_page(anon: AnonCsrf, Query(query): Query<NoticeQuery>) -> Response {
    let page = SignInPage {
        shell: anon.shell("Operator sign-in").with_notice(query.text()),
        errors: FormErrors::none(),
    };
    anon.attach(render(&page))
}

#[derive(Deserialize)]
struct SignInForm {
    token: String,
}

async fn sign_in(
    State(state): State<AppState>,
    AnonPosted(anon, form, _): AnonPosted<SignInForm>,
) -> Result<Response, WebError> {
    match state
        .hub
        .authenticate_operator(&SecretToken::from_text(form.token.trim()))
        .await
    {
        Ok(operator) => {
            let value = state.web.start_operator(operator);
            let mut response = see_other("/operator/organizations");
            if let Some(cookie) = set_cookie(OPERATOR_COOKIE, &value, None) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok(response)
        }
        Err(lockstep_app::AppError::Sealed) => Err(WebError::Sealed),
        Err(_) => {
            let page = SignInPage {
                shell: anon.shell("Operator sign-in"),
                errors: FormErrors::none().field("token", "This is not the operator token."),
            };
            Ok(render_status(StatusCode::UNAUTHORIZED, &page))
        }
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    OperatorPosted(_, Empty {}): OperatorPosted<Empty>,
) -> Response {
    if let Some(value) = cookie(&headers, OPERATOR_COOKIE) {
        state.web.end_operator(&value);
    }
    signed_out(see_other("/operator?notice=signed-out"))
}

/// Clears the operator's cookie and whatever the browser keeps for the site.
fn signed_out(mut response: Response) -> Response {
    clear_cookies(&mut response, &[OPERATOR_COOKIE]);
    response.headers_mut().insert(
        "clear-site-data",
        axum::http::HeaderValue::from_static("\"cache\", \"cookies\", \"storage\""),
    );
    response
}

async fn seal(
    State(state): State<AppState>,
    OperatorPosted(operator, Empty {}): OperatorPosted<Empty>,
) -> Response {
    state.hub.seal(&operator.operator);
    state.web.end_all_operators();
    signed_out(see_other("/?notice=sealed"))
}

struct OrgRow {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "operator/organizations.html")]
struct OrganizationsPage {
    shell: Shell,
    organizations: Vec<OrgRow>,
    errors: FormErrors,
    name: String,
    admin_email: String,
    /// Just created: the organization's name and its first Administrator's invitation link.
    created: Option<(String, String)>,
}

async fn organization_rows(
    state: &AppState,
    operator: &OperatorSignedIn,
) -> Result<Vec<OrgRow>, WebError> {
    Ok(state
        .hub
        .list_organizations(&operator.operator)
        .await?
        .into_iter()
        .map(|o| OrgRow {
            id: o.id.to_string(),
            name: o.name.as_str().to_owned(),
        })
        .collect())
}

async fn organizations(
    State(state): State<AppState>,
    operator: OperatorSignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let page = OrganizationsPage {
        shell: operator
            .shell("Organizations", "organizations")
            .with_notice(query.text()),
        organizations: organization_rows(&state, &operator).await?,
        errors: FormErrors::none(),
        name: String::new(),
        admin_email: String::new(),
        created: None,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
struct CreateForm {
    name: String,
    admin_email: String,
}

async fn create_organization(
    State(state): State<AppState>,
    OperatorPosted(operator, form): OperatorPosted<CreateForm>,
) -> Result<Response, WebError> {
    let result = state
        .hub
        .create_organization(
            &operator.operator,
            form.name.trim(),
            form.admin_email.trim(),
        )
        .await;
    let (errors, created, status) = match result {
        Ok(created) => {
            let link = format!("/accept-invitation#{}", created.invitation_token.expose());
            (
                FormErrors::none(),
                Some((form.name.trim().to_owned(), link)),
                StatusCode::CREATED,
            )
        }
        Err(err) => (
            FormErrors::from_app(err),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    };
    let keep = created.is_none();
    let page = OrganizationsPage {
        shell: operator.shell("Organizations", "organizations"),
        organizations: organization_rows(&state, &operator).await?,
        errors,
        name: if keep { form.name } else { String::new() },
        admin_email: if keep {
            form.admin_email
        } else {
            String::new()
        },
        created,
    };
    Ok(render_status(status, &page))
}

#[derive(Template)]
#[template(path = "operator/delete.html")]
struct DeletePage {
    shell: Shell,
    id: String,
    name: String,
    errors: FormErrors,
}

async fn find_organization(
    state: &AppState,
    operator: &OperatorSignedIn,
    id: &str,
) -> Result<OrgRow, WebError> {
    let id: OrganizationId = id
        .parse()
        .map_err(|_| WebError::not_found("organization"))?;
    organization_rows(state, operator)
        .await?
        .into_iter()
        .find(|o| o.id == id.to_string())
        .ok_or_else(|| WebError::not_found("organization"))
}

async fn delete_page(
    State(state): State<AppState>,
    operator: OperatorSignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let org = find_organization(&state, &operator, &id).await?;
    let page = DeletePage {
        shell: operator.shell(format!("Delete {}", org.name), "organizations"),
        id: org.id,
        name: org.name,
        errors: FormErrors::none(),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
struct DeleteForm {
    confirm_name: String,
}

async fn delete_organization(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OperatorPosted(operator, form): OperatorPosted<DeleteForm>,
) -> Result<Response, WebError> {
    let org = find_organization(&state, &operator, &id).await?;
    if form.confirm_name.trim() != org.name {
        let page = DeletePage {
            shell: operator.shell(format!("Delete {}", org.name), "organizations"),
            id: org.id,
            name: org.name,
            errors: FormErrors::none().field(
                "confirm_name",
                "Type the organization's name exactly to confirm.",
            ),
        };
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let id: OrganizationId = org
        .id
        .parse()
        .map_err(|_| WebError::not_found("organization"))?;
    state
        .hub
        .delete_organization(&operator.operator, id)
        .await?;
    Ok(see_other("/operator/organizations?notice=deleted"))
}
