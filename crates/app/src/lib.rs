//! Lockstep's use cases, with no HTTP in them: each handler of the server is one call here plus
//! an error mapping.
//!
//! A [`Hub`] owns the store and the vault. Operations that change state open one write
//! transaction, make every change in it, and commit; the in-memory vault state (key caches) is
//! updated only after the commit succeeded.

mod account;
mod audit;
mod audit_names;
mod clock;
mod connections;
mod datasets;
mod deletion;
mod error;
mod export;
mod footprint;
mod hub;
mod identity;
mod incident;
mod jobs;
mod ledger;
mod members;
mod names;
mod organizations;
mod passkeys;
mod personal;
mod pipelines;
mod policies;
mod redaction;
mod run_history;
mod sso;
mod support;
mod teams;
mod time_zone;

pub use account::{
    AccountView, ApiTokenView, DEFAULT_API_TOKEN_DAYS, MAX_API_TOKEN_DAYS, NewApiToken,
    SessionView, TokenExpiry, TotpEnrolment,
};
pub use audit::{AuditEvent, FieldChange};
pub use audit_names::{AUDIT_ACTIONS, AuditNames};
pub use clock::{Clock, ManualClock, SystemClock};
pub use connections::{
    ConnectionDetails, ConnectionUpdate, ConnectionView, Discovery, MAX_UPLOAD_BYTES,
    MAX_UPLOAD_MIB, NewConnection, OAuthCallback, OAuthConnected, OAuthStart, OAuthStatus,
    TestOutcome, UploadView,
};
pub use datasets::{
    BOM_FIELDS, BomInfo, MAX_PART_FILE_BYTES, PartFile, PartFileView, PartTotalView, TreeNode,
    TreePage, TreeQuery, part_file_type,
};
pub use datasets::{
    CHUNK_ROWS as DATASET_CHUNK_ROWS, Change,
    DEFAULT_RETENTION_DAYS as DEFAULT_DATASET_RETENTION_DAYS, DatasetCounts, DatasetState,
    DatasetView, IssueFilter, MAX_PAGE as MAX_DATASET_PAGE,
    MAX_RETENTION_DAYS as MAX_DATASET_RETENTION_DAYS, ProcessSelection, RecordIssue, RecordOutcome,
    RecordPage, RecordQuery, RecordStatus, RecordView,
};
pub use deletion::{
    DEFAULT_DELETION_GRACE_DAYS, DeletionConfirmation, DeletionView, MAX_DELETION_GRACE_DAYS,
};
pub use error::{AppError, BlockedRow};
pub use export::{
    EXPORT_FORMAT, ExportedConnection, ExportedInvitation, ExportedOidc, ExportedOrganization,
    ExportedPipeline, ExportedPolicies, ExportedSaml, ExportedSettings, ExportedSso, ExportedTeam,
    ExportedUser, OrganizationExport,
};
pub use footprint::{
    AccessFootprint, CiphertextsByVersion, EncryptionFootprint, Footprint, KIND_TABLES,
    KeyVersionView, Retention, RoleMembers, StoredKind, TokenAccess, TokenOwner,
};
pub use hub::{Credentials, Hub, HubOptions, Operator};
pub use identity::{
    Caller, Credential, LoginSuccess, MAX_ACCOUNTS_PER_ADDRESS, MailOutcome, OrganizationChoice,
};
pub use incident::IncidentOutcome;
pub use ledger::{KEY_NAME as LEDGER_KEY_NAME, origin as ledger_origin, stored_ledger};
pub use lockstep_auth::{LockoutPolicy, Password, SecretToken, SessionPolicy};
pub use lockstep_connectors as connectors;
pub use lockstep_engine as engine;
pub use lockstep_engine::RejectionKind;
pub use lockstep_ledger::ExportedLedger;
pub use lockstep_sso::RefusalReason as SsoRefusalReason;
pub use lockstep_storage::audit::Search as AuditSearch;
pub use lockstep_storage::pipelines::RunState;
pub use lockstep_storage::settings::OrganizationSettings;
pub use lockstep_vault::{SealStatus, UnsealKey};
pub use members::{InvitationCreated, InvitationView, SettingsUpdate, UserUpdate, UserView};
pub use organizations::{CreatedOrganization, OrganizationSummary};
pub use passkeys::{
    CEREMONY_VALIDITY as PASSKEY_CEREMONY_VALIDITY, MAX_PASSKEYS_PER_MEMBER, PasskeyChallenge,
    PasskeyView, SecondFactorPending,
};
pub use pipelines::{
    EXPORT_LIMIT as RUN_ERRORS_EXPORT_LIMIT, LEASE as RUN_LEASE, PipelineView, RejectionGroup,
    RunErrorView, RunView,
};
pub use policies::{
    AccessGrant, AccessPolicy, OwnershipPolicy, OwnershipRule, PolicyObjectKind, RedactionKind,
    RedactionPolicy, RedactionRule, ViewAs, Viewer,
};
pub use run_history::RunHistoryDeleted;
pub use sso::{
    MAX_IDP_METADATA, MAX_SSO_DOMAINS, OidcCallback, OidcConfigInput, OidcConfigView,
    SSO_REQUEST_VALIDITY, SamlConfigInput, SamlConfigView, SamlPost, SsoConfigInput, SsoConfigView,
    SsoJit, SsoKind, SsoOutcome, SsoStarted, SsoTestResult,
};
pub use support::{
    MAX_GRANT_HOURS as MAX_SUPPORT_GRANT_HOURS, NewSupportAccount, SupportAccount,
    SupportGrantView, SupportLogin, SupportOrganization, SupportTotpEnrolment,
};
pub use teams::{MAX_TEAM_NAME, TeamView};
pub use time_zone::TimeZone;
