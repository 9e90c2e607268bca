//! The API's routes and their OpenAPI description, registered together so the document and the
//! router cannot drift apart.

mod health;
mod responses;
pub(crate) mod v1;

use crate::AppState;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lockstep API",
        description = "Lockstep, the self-hosted data synchronization hub. Errors are `application/problem+json`.",
        license(name = "AGPL-3.0-only")
    ),
    components(schemas(crate::problem::ApiError, v1::audit::AuditedKind)),
    // Members' operations are the default; public ones say `security(())`, the operator's
    // `security(("operator_token" = []))`.
    security(("session_or_api_token" = [])),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "support_session",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session_or_api_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's router and its OpenAPI document, with each operation's common error answers
/// (added once every route is in: see `responses`).
pub(crate) fn router_and_document() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = routes().split_for_parts();
    utoipa::Modify::modify(&responses::CommonResponses, &mut document);
    (router, document)
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(v1::sys::seal_status))
        .routes(routes!(v1::sys::unseal))
        .routes(routes!(v1::sys::seal))
        .routes(routes!(v1::sys::rotate))
        .routes(routes!(
            v1::sys::create_organization,
            v1::sys::list_organizations
        ))
        .routes(routes!(v1::sys::delete_organization))
        .routes(routes!(v1::auth::accept_invitation))
        .routes(routes!(v1::auth::login))
        .routes(routes!(v1::auth::logout))
        .routes(routes!(v1::auth::request_password_reset))
        .routes(routes!(v1::auth::complete_password_reset))
        .routes(routes!(v1::me::me))
        .routes(routes!(v1::me::update_settings))
        .routes(routes!(v1::me::change_password))
        .routes(routes!(v1::me::list_sessions, v1::me::end_all_sessions))
        .routes(routes!(v1::me::end_session))
        .routes(routes!(v1::me::start_totp, v1::me::remove_totp))
        .routes(routes!(v1::me::confirm_totp))
        .routes(routes!(v1::me::create_token, v1::me::list_tokens))
        .routes(routes!(v1::me::revoke_token))
        .routes(routes!(v1::me::begin_passkey_registration))
        .routes(routes!(v1::me::finish_passkey_registration))
        .routes(routes!(v1::me::list_passkeys))
        .routes(routes!(v1::me::rename_passkey, v1::me::remove_passkey))
        .routes(routes!(v1::auth::begin_passkey_second_factor))
        .routes(routes!(v1::auth::finish_passkey_second_factor))
        .routes(routes!(v1::auth::begin_passkey_sign_in))
        .routes(routes!(v1::auth::finish_passkey_sign_in))
        .routes(routes!(v1::users::invite, v1::users::list_invitations))
        .routes(routes!(v1::users::resend_invitation))
        .routes(routes!(v1::users::revoke_invitation))
        .routes(routes!(v1::users::reset_totp))
        .routes(routes!(v1::users::list))
        .routes(routes!(
            v1::users::get,
            v1::users::update,
            v1::users::delete
        ))
        .routes(routes!(v1::users::get_settings, v1::users::update_settings))
        .routes(routes!(v1::users::rotate_key))
        .routes(routes!(
            v1::organization::request_deletion,
            v1::organization::get_deletion,
            v1::organization::cancel_deletion
        ))
        .routes(routes!(v1::organization::incident))
        .routes(routes!(v1::footprint::export))
        .routes(routes!(v1::footprint::footprint))
        .routes(routes!(v1::audit::object_events))
        .routes(routes!(v1::audit::search))
        .routes(routes!(v1::audit::checkpoint))
        .routes(routes!(v1::audit::inclusion))
        .routes(routes!(v1::audit::consistency))
        .routes(routes!(v1::audit::export))
        .routes(routes!(v1::connections::create, v1::connections::list))
        .routes(routes!(
            v1::connections::get,
            v1::connections::update,
            v1::connections::delete
        ))
        .routes(routes!(v1::connections::test))
        .routes(routes!(v1::connections::discover))
        .routes(routes!(v1::connections::objects))
        .routes(routes!(v1::connections::sample))
        .routes(routes!(v1::connections::oauth_start))
        .routes(routes!(v1::connections::oauth_disconnect))
        .routes(routes!(v1::connections::oauth_callback))
        .routes(routes!(
            v1::connections::upload,
            v1::connections::delete_file
        ))
        .routes(routes!(v1::pipelines::create, v1::pipelines::list))
        .routes(routes!(
            v1::pipelines::get,
            v1::pipelines::update,
            v1::pipelines::delete
        ))
        .routes(routes!(
            v1::pipelines::start_run,
            v1::pipelines::list_runs,
            v1::run_history::delete_pipeline_runs
        ))
        .routes(routes!(v1::run_history::delete_runs))
        .routes(routes!(v1::pipelines::get_run))
        .routes(routes!(v1::pipelines::cancel_run))
        .routes(routes!(v1::pipelines::run_errors))
        .routes(routes!(v1::pipelines::run_errors_csv))
        .routes(routes!(v1::datasets::pull, v1::datasets::list))
        .routes(routes!(v1::datasets::get, v1::datasets::delete))
        .routes(routes!(v1::datasets::records))
        .routes(routes!(v1::datasets::update_record))
        .routes(routes!(v1::datasets::process))
        .routes(routes!(v1::datasets::refresh))
        .routes(routes!(v1::datasets::submit))
        .routes(routes!(v1::datasets::share))
        .routes(routes!(v1::datasets::unshare))
        .routes(routes!(v1::datasets::transfer))
        .routes(routes!(v1::boms::upload))
        .routes(routes!(v1::boms::compare))
        .routes(routes!(v1::boms::tree))
        .routes(routes!(v1::boms::parts))
        .routes(routes!(v1::boms::add_files))
        .routes(routes!(v1::boms::file))
        .routes(routes!(v1::policies::create_team, v1::policies::list_teams))
        .routes(routes!(
            v1::policies::get_team,
            v1::policies::rename_team,
            v1::policies::delete_team
        ))
        .routes(routes!(
            v1::policies::add_member,
            v1::policies::remove_member
        ))
        .routes(routes!(v1::policies::get_access, v1::policies::put_access))
        .routes(routes!(
            v1::policies::get_ownership,
            v1::policies::put_ownership
        ))
        .routes(routes!(
            v1::policies::get_redaction,
            v1::policies::put_redaction
        ))
        .routes(routes!(v1::pipelines::set_bom))
        .routes(routes!(
            v1::sso::get_sso,
            v1::sso::put_sso,
            v1::sso::delete_sso
        ))
        .routes(routes!(v1::sso::test_sso))
        .routes(routes!(v1::sso::saml_metadata))
        .routes(routes!(v1::sso::saml_start))
        .routes(routes!(v1::sso::saml_acs))
        .routes(routes!(v1::sso::oidc_start))
        .routes(routes!(v1::sso::oidc_callback))
        .routes(routes!(
            v1::support::add_support_user,
            v1::support::list_support_users
        ))
        .routes(routes!(v1::support::remove_support_user))
        .routes(routes!(v1::support::support_setup))
        .routes(routes!(v1::support::support_setup_confirm))
        .routes(routes!(v1::support::support_login))
        .routes(routes!(v1::support::support_organizations))
        .routes(routes!(v1::support::support_enter))
        .routes(routes!(v1::support::support_logout))
        .routes(routes!(
            v1::support::grant_support_access,
            v1::support::list_support_access
        ))
        .routes(routes!(v1::support::revoke_support_access))
        .routes(routes!(v1::support::support_accounts))
}
