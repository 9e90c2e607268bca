//! `/api/v1/sys/*`: the operator's routes — seal status, unseal, seal, organizations.

use crate::AppState;
use crate::extract::{ApiJson, ApiPath, OperatorAuth};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lockstep_app::{SealStatus, UnsealKey};
use lockstep_domain::OrganizationId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SealStatusBody {
    sealed: bool,
    /// Shares entered so far toward the threshold.
    progress: u8,
    /// Shares needed to unseal.
    threshold: u8,
    /// Shares that exist.
    shares: u8,
}

impl From<SealStatus> for SealStatusBody {
    fn from(s: SealStatus) -> Self {
        SealStatusBody {
            sealed: s.sealed,
            progress: s.progress,
            threshold: s.threshold,
            shares: s.shares,
        }
    }
}

/// Is the hub sealed, and how far is unsealing?
#[utoipa::path(get, path = "/api/v1/sys/seal-status", tag = "system",
    security(()),
    responses((status = 200, body = SealStatusBody)))]
pub(crate) async fn seal_status(State(state): State<AppState>) -> Json<SealStatusBody> {
    Json(state.hub.seal_status().into())
}

/// One unseal key share, or `{"reset": true}` to discard the shares entered so far.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnsealRequest {
    key: Option<String>,
    #[serde(default)]
    reset: bool,
}

impl utoipa::PartialSchema for UnsealRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, AnyOfBuilder, ObjectBuilder, SchemaType, Type,
        };
        let key = || ObjectBuilder::new().schema_type(Type::String);
        let share = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("share"))
            .description(Some("One unseal key share."))
            .property("key", key())
            .property("reset", ObjectBuilder::new().schema_type(Type::Boolean))
            .required("key")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let reset = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("reset"))
            .description(Some(
                "Discard the shares entered so far (a `key` sent is ignored).",
            ))
            .property(
                "key",
                ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])),
            )
            .property(
                "reset",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([true])),
            )
            .required("reset")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        AnyOfBuilder::new().item(share).item(reset).into()
    }
}

impl utoipa::ToSchema for UnsealRequest {}

impl std::fmt::Debug for UnsealRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsealRequest")
            .field("reset", &self.reset)
            .finish_non_exhaustive()
    }
}

/// Enter one unseal key share. A wrong or corrupted share is refused and does not count.
#[utoipa::path(post, path = "/api/v1/sys/unseal", tag = "system",
    security(()),
    request_body = UnsealRequest,
    responses(
        (status = 200, body = SealStatusBody),
        (status = 400, description = "The share was refused", body = ApiError, content_type = "application/problem+json"),
        (status = 422, description = "Neither `key` nor `reset`", body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn unseal(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UnsealRequest>,
) -> Result<Json<SealStatusBody>, ApiError> {
    if body.reset {
        return Ok(Json(state.hub.reset_unseal().into()));
    }
    let Some(key) = body.key else {
        return Err(ApiError::invalid(
            "key",
            "give an unseal key share, or \"reset\": true",
        ));
    };
    let key = UnsealKey::from_text(key.trim());
    Ok(Json(state.hub.submit_unseal_key(&key)?.into()))
}

/// Seal the hub: keys leave memory; only health and unseal are served until unsealed again.
#[utoipa::path(post, path = "/api/v1/sys/seal", tag = "system",
    security(("operator_token" = [])),
    responses(
        (status = 200, body = SealStatusBody),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn seal(
    State(state): State<AppState>,
    OperatorAuth(operator): OperatorAuth,
) -> Json<SealStatusBody> {
    state.hub.seal(&operator);
    state.web.end_all_operators();
    Json(state.hub.seal_status().into())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrganizationRequest {
    /// 1 to 100 characters, no control characters, no white space around.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    name: String,
    /// Receives the invitation to become the organization's first Administrator.
    #[schema(format = "email", max_length = 254)]
    admin_email: String,
}

impl std::fmt::Debug for CreateOrganizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CreateOrganizationRequest(..)")
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedOrganizationBody {
    id: OrganizationId,
    /// Shown once: hand it to the first Administrator, who accepts the invitation with it.
    invitation_token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OrganizationBody {
    id: OrganizationId,
    name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OrganizationList {
    organizations: Vec<OrganizationBody>,
}

/// Create an organization with its own data key and an invitation for its first Administrator.
#[utoipa::path(post, path = "/api/v1/sys/organizations", tag = "organizations",
    security(("operator_token" = [])),
    request_body = CreateOrganizationRequest,
    responses(
        (status = 201, body = CreatedOrganizationBody),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = ApiError, content_type = "application/problem+json"),
        (status = 422, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_organization(
    State(state): State<AppState>,
    OperatorAuth(operator): OperatorAuth,
    ApiJson(body): ApiJson<CreateOrganizationRequest>,
) -> Result<(StatusCode, Json<CreatedOrganizationBody>), ApiError> {
    let created = state
        .hub
        .create_organization(&operator, &body.name, &body.admin_email)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedOrganizationBody {
            id: created.id,
            invitation_token: created.invitation_token.expose().to_owned(),
        }),
    ))
}

/// List organizations: ids and names only.
#[utoipa::path(get, path = "/api/v1/sys/organizations", tag = "organizations",
    security(("operator_token" = [])),
    responses(
        (status = 200, body = OrganizationList),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_organizations(
    State(state): State<AppState>,
    OperatorAuth(operator): OperatorAuth,
) -> Result<Json<OrganizationList>, ApiError> {
    let orgs = state.hub.list_organizations(&operator).await?;
    Ok(Json(OrganizationList {
        organizations: orgs
            .into_iter()
            .map(|o| OrganizationBody {
                id: o.id,
                name: o.name.as_str().to_owned(),
            })
            .collect(),
    }))
}

/// Delete an organization with everything it owns; its key material is destroyed.
#[utoipa::path(delete, path = "/api/v1/sys/organizations/{id}", tag = "organizations",
    security(("operator_token" = [])),
    params(("id" = uuid::Uuid, Path, description = "Organization id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
        (status = 404, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_organization(
    State(state): State<AppState>,
    OperatorAuth(operator): OperatorAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id: OrganizationId = id
        .parse()
        .map_err(|_| ApiError::invalid("id", "is not an organization id"))?;
    state.hub.delete_organization(&operator, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Rotated {
    /// The keyring version new organization keys are now wrapped with.
    keyring_version: u32,
}

/// Rotate the keyring: new organization keys get a new key-encryption key; old versions stay to
/// unwrap existing keys.
#[utoipa::path(post, path = "/api/v1/sys/rotate", tag = "system",
    security(("operator_token" = [])),
    responses(
        (status = 200, body = Rotated),
        (status = 401, body = ApiError, content_type = "application/problem+json"),
    ))]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    OperatorAuth(operator): OperatorAuth,
) -> Result<Json<Rotated>, ApiError> {
    let keyring_version = state.hub.rotate_keyring(&operator).await?;
    Ok(Json(Rotated { keyring_version }))
}
