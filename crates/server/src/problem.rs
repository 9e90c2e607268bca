//! One error type for every route, rendered as RFC 9457 `application/problem+json`.
//!
//! The body says what went wrong in terms the caller can act on; internal details (database
//! errors, crypto failures) are logged by id and never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lockstep_app::AppError;
use serde::Serialize;

/// An API error: status, a stable `type` slug, a title and an optional detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// A stable URI naming the kind of problem, e.g. `urn:lockstep:problem:sealed` (the slug
    /// is kept, the URI written when serialized: the error stays small).
    #[serde(rename = "type", serialize_with = "problem_type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For invalid input: the request field concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For a failed connection: what failed (`refused`, `timeout`, `authentication`, `tls`,
    /// `dns`, `policy`, `not_found`, `protocol`, `other`).
    // The kind itself (one byte, not a `&str`): every handler's `Result` carries an `ApiError`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub failure: Option<lockstep_app::connectors::FailureKind>,
    /// For an ambiguous sign-in (status 300): the organizations whose account the e-mail
    /// address and password both fit; sign in again naming one as `organization`.
    /// Boxed: rare, and every handler's `Result` carries an `ApiError`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizations: Option<Box<OrganizationOptions>>,
    /// For a refused data-set submit (422): up to 20 ticked records with errors, each with its
    /// row and its errors' messages (which name fields and rules, never values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Box<BlockedRows>>,
    /// For a sign-in whose password was right (401 `totp-required` or `second-factor-required`):
    /// the second factors the account has, and with a passkey the pending sign-in to finish.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    pub second_factor: Option<Box<SecondFactorProblem>>,
}

/// What a sign-in still needs after its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SecondFactorProblem {
    /// `totp` (a code or a recovery code, sent again with the password as `totp`) and/or
    /// `passkey` (`POST /api/v1/auth/passkey/second-factor/begin` with `pending_sign_in`).
    // Not required in the schema: the fields are flattened into every problem, and utoipa
    // describes a flattened `Option` as "this object or null", which a problem without them
    // must still match.
    #[schema(value_type = Vec<String>, required = false)]
    pub second_factors: Vec<&'static str>,
    /// The pending sign-in a passkey can finish (five minutes, single use); only with `passkey`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_sign_in: Option<String>,
}

/// Records in the way of a submit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct BlockedRows(pub Vec<BlockedRowBody>);

/// A record in the way of a submit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BlockedRowBody {
    pub row: u64,
    pub issues: Vec<String>,
}

/// The organizations offered by an ambiguous sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct OrganizationOptions(pub Vec<OrganizationOption>);

/// An organization offered by an ambiguous sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrganizationOption {
    pub id: lockstep_domain::OrganizationId,
    pub name: String,
}

impl ApiError {
    pub fn new(status: StatusCode, slug: &'static str, title: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind: slug,
            title: title.into(),
            detail: None,
            field: None,
            failure: None,
            organizations: None,
            rows: None,
            second_factor: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> ApiError {
        self.detail = Some(detail.into());
        self
    }

    pub fn sealed() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sealed",
            "The hub is sealed",
        )
        .detail("Enter the unseal key shares (POST /api/v1/sys/unseal) to unseal it.")
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
        )
        .detail("Send a valid token as `Authorization: Bearer <token>`.")
    }

    pub fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
        let mut err = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "The request is invalid",
        )
        .detail(format!("{field}: {}", reason.into()));
        err.field = Some(field.to_owned());
        err
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> ApiError {
        match err {
            AppError::Sealed => ApiError::sealed(),
            AppError::Unauthenticated => ApiError::unauthenticated(),
            AppError::LoginFailed => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "login-failed",
                "Sign-in failed",
            )
            .detail(
                "The e-mail address or password is wrong, or the account is locked for a while.",
            ),
            AppError::ChooseOrganization(choices) => {
                let mut err = ApiError::new(
                    StatusCode::MULTIPLE_CHOICES,
                    "choose-organization",
                    "Choose an organization",
                )
                .detail(
                    "Your e-mail address and password fit accounts in several organizations: \
                     sign in again with one of these ids as `organization`.",
                );
                err.organizations = Some(Box::new(OrganizationOptions(
                    choices
                        .into_iter()
                        .map(|c| OrganizationOption {
                            id: c.id,
                            name: c.name,
                        })
                        .collect(),
                )));
                err
            }
            AppError::TotpRequired => {
                let mut err = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "totp-required",
                    "A TOTP code is required",
                )
                .detail(
                    "Send the current code of your authenticator (or a recovery code) as `totp`.",
                );
                err.second_factor = Some(Box::new(SecondFactorProblem {
                    second_factors: vec!["totp"],
                    pending_sign_in: None,
                }));
                err
            }
            AppError::SecondFactorRequired(pending) => {
                let mut second_factors = Vec::with_capacity(2);
                if pending.totp {
                    second_factors.push("totp");
                }
                if pending.passkey {
                    second_factors.push("passkey");
                }
                let mut err = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "second-factor-required",
                    "A second factor is required",
                )
                .detail(
                    "Answer a passkey challenge for `pending_sign_in` \
                     (POST /api/v1/auth/passkey/second-factor/begin), or, with TOTP, send the \
                     password again with the current code (or a recovery code) as `totp`.",
                );
                err.second_factor = Some(Box::new(SecondFactorProblem {
                    second_factors,
                    pending_sign_in: pending.pending.map(|p| p.expose().to_owned()),
                }));
                err
            }
            AppError::PasskeyRefused => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "passkey-refused",
                "The passkey was not accepted",
            )
            .detail(
                "The sign-in expired or was used, the answer does not verify, or the passkey \
                 is not registered here. Start again.",
            ),
            AppError::Forbidden { needs } => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Your role does not allow this",
            )
            .detail(format!("This needs the {needs} role.")),
            AppError::ScopeTooNarrow { scope, needs } => ApiError::new(
                StatusCode::FORBIDDEN,
                "token-scope-too-narrow",
                "Your API token's scope is too narrow for this",
            )
            .detail(format!(
                "This token's scope is {scope}; this needs a token with the {needs} scope."
            )),
            AppError::TotpEnrolmentRequired => {
                ApiError::new(StatusCode::FORBIDDEN, "not-allowed-yet", "Not allowed yet").detail(
                    "your organization requires a second factor: enrol TOTP (POST /api/v1/me/totp) or register a passkey (POST /api/v1/me/passkeys/register/begin) first",
                )
            }
            AppError::NotAllowedYet(what) => {
                ApiError::new(StatusCode::FORBIDDEN, "not-allowed-yet", "Not allowed yet")
                    .detail(what)
            }
            AppError::Refused(why) => {
                ApiError::new(StatusCode::CONFLICT, "refused", "The change was refused").detail(why)
            }
            AppError::CustomerOnly => ApiError::new(
                StatusCode::FORBIDDEN,
                "customer-only",
                "Only the organization's own members may do this",
            )
            .detail(
                "You work here under a support access grant: you have no account, data sets or \
                 API tokens of your own here, and may not change who gets in, export or delete \
                 the organization.",
            ),
            AppError::OwnerOnly => ApiError::new(
                StatusCode::FORBIDDEN,
                "owner-only",
                "Only the owner or an Administrator may do this",
            )
            .detail("This data set is shared with you to read: ask its owner."),
            AppError::Blocked { reason, rows } => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "blocked",
                    "The request cannot be carried out as things are",
                )
                .detail(reason);
                err.rows = Some(Box::new(BlockedRows(
                    rows.into_iter()
                        .map(|r| BlockedRowBody {
                            row: r.row,
                            issues: r.issues,
                        })
                        .collect(),
                )));
                err
            }
            AppError::SsoRefused(reason) => ApiError::new(
                    StatusCode::FORBIDDEN,
                "sso-refused",
                "The identity provider's answer was refused",
            )
            .detail(format!(
                    "reason: {reason}. Start the sign-in again from your organization's sign-in link; \
                     an Administrator finds the refusal in the audit (sso.refused)."
                )),
            AppError::SsoRequired => ApiError::new(
                StatusCode::FORBIDDEN,
                "sso-required",
                "Your organization signs in with single sign-on",
            )
            .detail("Password sign-in is off for your organization: sign in through its identity provider."),
            AppError::PasswordResetRequired => ApiError::new(
                StatusCode::FORBIDDEN,
                "password-reset-required",
                "A new password is required",
            )
            .detail(
                "An Administrator ended your sessions and requires a new password: use \"Forgot \
                 password\" (POST /api/v1/auth/password-reset) to choose one, then sign in.",
            ),
            AppError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("No such {what}"),
            ),
            AppError::Conflict(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("The {what} already exists"),
            ),
            AppError::Invalid { field, reason } => ApiError::invalid(field, reason),
            AppError::InvalidConfig { field, reason } => ApiError::invalid(&field, reason),
            AppError::Connector { kind, message } => {
                let mut err = ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "connection-failed",
                    "The connection failed",
                )
                .detail(message);
                err.failure = Some(kind);
                err
            }
            AppError::UnsealRefused(reason) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "unseal-key-refused",
                "The unseal key share was refused",
            )
            .detail(format!("{reason}; it was not counted.")),
            err @ (AppError::Store(_) | AppError::Vault(_) | AppError::Auth(_)) => {
                let id = uuid_like_id();
                tracing::error!(error_id = %id, error = %err, source = ?std::error::Error::source(&err).map(ToString::to_string), "request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "The request failed inside the hub",
                )
                .detail(format!(
                    "Nothing was changed. Error id {id} is in the server log."
                ))
            }
        }
    }
}

/// `urn:lockstep:problem:<slug>`.
fn problem_type<S: serde::Serializer>(
    slug: &&'static str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("urn:lockstep:problem:{slug}"))
}

/// A random id to find an internal error in the log.
fn uuid_like_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "No such route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "This method is not allowed on this route",
    )
}
