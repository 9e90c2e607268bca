//! The use cases' errors: stable kinds the server maps to HTTP statuses. Messages name the
//! problem, never a secret, an e-mail address or a name.

use lockstep_domain::{Role, TokenScope};
use lockstep_storage::StoreError;
use lockstep_vault::VaultError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum AppError {
    /// The vault is sealed: no customer data can be read or written.
    #[error("the hub is sealed")]
    Sealed,
    /// No valid credentials were presented.
    #[error("authentication required")]
    Unauthenticated,
    /// Sign-in failed. Wrong e-mail, wrong password and a locked account all give this one answer.
    #[error("the e-mail address or password is wrong, or the account is locked")]
    LoginFailed,
    /// The password was right; the account has TOTP, and no code (or a wrong one) was given.
    #[error("a TOTP code (or a recovery code) is required")]
    TotpRequired,
    /// The password was right; the account has a passkey (and perhaps TOTP): send a TOTP code
    /// again with the password, or answer a passkey challenge for the pending sign-in.
    #[error("a second factor is required")]
    SecondFactorRequired(Box<crate::SecondFactorPending>),
    /// A passkey ceremony failed: unknown, expired or used handle, an answer that does not
    /// verify, a passkey no longer stored, or a member who may not sign in.
    #[error("the passkey was not accepted")]
    PasskeyRefused,
    /// The e-mail address and password fit accounts in several organizations: sign in again
    /// naming one of these (only those whose password matched).
    #[error("the password fits accounts in several organizations: choose one")]
    ChooseOrganization(Vec<crate::OrganizationChoice>),
    /// The identity provider's answer was refused; the reason code is in the audit too.
    #[error("single sign-on refused ({0})")]
    SsoRefused(lockstep_sso::RefusalReason),
    /// The password (or passkey) was right, but an Administrator's incident response requires a
    /// new password first: reset it ("forgot password"). No session was made.
    #[error("a password reset is required before you sign in")]
    PasswordResetRequired,
    /// The password was right, but the organization signs in with single sign-on only.
    #[error("your organization signs in with single sign-on: use its sign-in link")]
    SsoRequired,
    /// The object does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may see the object but their role does not allow the action.
    #[error("this needs the {needs} role")]
    Forbidden { needs: Role },
    /// The caller's role allows the action, but the API token they call with has too narrow a
    /// scope.
    #[error("this API token's scope is {scope}; this needs a token with the {needs} scope")]
    ScopeTooNarrow {
        scope: TokenScope,
        needs: TokenScope,
    },
    /// The caller must first do something else (use a session instead of a token, start an
    /// enrolment before confirming it).
    #[error("{0}")]
    NotAllowedYet(&'static str),
    /// The organization requires a second factor (TOTP or a passkey) and the caller has neither:
    /// nothing but their own account until they enrol one.
    #[error("your organization requires a second factor: enrol TOTP or register a passkey first")]
    TotpEnrolmentRequired,
    /// The object is shared with the caller to read; only its owner or an Administrator may
    /// change it.
    #[error("only the owner or an Administrator may do this")]
    OwnerOnly,
    /// A support person asked for something only the organization's own members may do.
    #[error("only the organization's own members may do this, not support")]
    CustomerOnly,
    /// The request cannot be carried out as things are: `reason` says why, `rows` lists up to 20
    /// records in the way (a submit while ticked records have errors).
    #[error("{reason}")]
    Blocked {
        reason: String,
        rows: Vec<BlockedRow>,
    },
    /// The object already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The request is valid but would break a rule (e.g. remove the last Administrator).
    #[error("{0}")]
    Refused(&'static str),
    /// A field of the request is invalid.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A connection's configuration is invalid: `field` is its path (`config.port`).
    #[error("{field}: {reason}")]
    InvalidConfig { field: String, reason: String },
    /// A call to a connected system failed; the message says what, never with a secret.
    #[error("{message}")]
    Connector {
        kind: lockstep_connectors::FailureKind,
        message: String,
    },
    /// An unseal key share was refused; it did not count.
    #[error("{0}")]
    UnsealRefused(#[source] VaultError),
    /// The store failed; nothing was changed.
    #[error("storage failure")]
    Store(#[source] StoreError),
    /// A cryptographic operation failed where it should not (corrupt data or a bug).
    #[error("internal vault failure")]
    Vault(#[source] VaultError),
    /// Password hashing or TOTP failed internally.
    #[error("internal authentication failure")]
    Auth(#[source] lockstep_auth::AuthError),
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => AppError::Conflict(what),
            other => AppError::Store(other),
        }
    }
}

impl From<VaultError> for AppError {
    fn from(err: VaultError) -> Self {
        match err {
            VaultError::Sealed => AppError::Sealed,
            other => AppError::Vault(other),
        }
    }
}

impl From<lockstep_auth::AuthError> for AppError {
    fn from(err: lockstep_auth::AuthError) -> Self {
        AppError::Auth(err)
    }
}

impl From<lockstep_policy::Denial> for AppError {
    fn from(denial: lockstep_policy::Denial) -> Self {
        match denial {
            lockstep_policy::Denial::NotVisible => AppError::NotFound("object"),
            lockstep_policy::Denial::OwnerOnly => AppError::OwnerOnly,
            lockstep_policy::Denial::Forbidden { needs } => AppError::Forbidden { needs },
            lockstep_policy::Denial::ScopeTooNarrow { scope, needs } => {
                AppError::ScopeTooNarrow { scope, needs }
            }
            lockstep_policy::Denial::TotpEnrolmentRequired => AppError::TotpEnrolmentRequired,
            lockstep_policy::Denial::CustomerOnly => AppError::CustomerOnly,
        }
    }
}

impl From<lockstep_connectors::ConnectorError> for AppError {
    fn from(err: lockstep_connectors::ConnectorError) -> Self {
        match err {
            lockstep_connectors::ConnectorError::Config { field, reason } => {
                AppError::InvalidConfig { field, reason }
            }
            lockstep_connectors::ConnectorError::Failed { kind, message } => {
                AppError::Connector { kind, message }
            }
        }
    }
}

/// A record that stands in the way of a submit, and its errors (messages name fields and rules,
/// never values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedRow {
    pub row: u64,
    pub issues: Vec<String>,
}
