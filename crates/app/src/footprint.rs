//! "What is stored about us": for an organization's Administrators, every kind of thing the hub
//! holds for the organization — how many, how old the oldest is, and when it goes (the
//! retention rule that applies) —, the organization's key versions and which of them its
//! ciphertexts were made with, and who has access (members by role, API tokens by owner).
//!
//! Kinds are named for people, not tables: each [`KIND_TABLES`] entry names the tables it
//! stands for, and a test checks that every table holding an organization's rows belongs to a
//! kind, so a table added later must be named here before the tests pass. The answer is
//! sections of a struct ([`Footprint`]), so a section (support grants) can be added later.

use crate::audit::{Actor, Event};
use crate::identity::Caller;
use crate::{AppError, Hub};
use lockstep_domain::{ApiTokenId, OrganizationId, Role, TokenScope, UserId};
use lockstep_policy::Action;
use lockstep_storage::footprint::{self, Source, Tally};
use lockstep_storage::users::UserStatus;
use lockstep_storage::{api_tokens, settings, users};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// When a kind of stored thing is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retention {
    /// Nothing expires it: kept until someone deletes it (or the organization is deleted).
    UntilDeleted,
    /// Deleted with the thing it belongs to (`parent`), never on its own.
    WithParent { parent: &'static str },
    /// Stops working by itself (`ends` says when); its row is kept until deleted.
    Expires { ends: String },
    /// Deleted once it is this many days old (the hub's setting, the same for every
    /// organization).
    AfterDays { days: u32 },
    /// Deleted when nobody touched it for this many days (the organization's setting).
    WhenUntouched { days: u32 },
    /// Each object keeps only its newest `depth` events; older ones go as new ones come.
    NewestPerObject { depth: u32 },
    /// Kept for good, also after the organization is deleted (ids and keyed hashes only, which
    /// mean nothing once its key is gone).
    KeptForGood,
}

impl Retention {
    /// The rule's short name (`until_deleted`, `after_days`…).
    pub fn rule(&self) -> &'static str {
        match self {
            Retention::UntilDeleted => "until_deleted",
            Retention::WithParent { .. } => "with_parent",
            Retention::Expires { .. } => "expires",
            Retention::AfterDays { .. } => "after_days",
            Retention::WhenUntouched { .. } => "when_untouched",
            Retention::NewestPerObject { .. } => "newest_per_object",
            Retention::KeptForGood => "kept_for_good",
        }
    }

    /// The rule in words, as the footprint page shows it.
    pub fn describe(&self) -> String {
        match self {
            Retention::UntilDeleted => "Kept until deleted.".to_owned(),
            Retention::WithParent { parent } => format!("Deleted with its {parent}."),
            Retention::Expires { ends } => format!("{ends}; kept until deleted."),
            Retention::AfterDays { days } => {
                format!("Deleted {days} days after it was made (the hub's setting).")
            }
            Retention::WhenUntouched { days } => format!(
                "Deleted when nobody opened, edited or submitted it for {days} days, or its \
                 owner has not signed in for as long (the organization's setting)."
            ),
            Retention::NewestPerObject { depth } => format!(
                "Each object keeps its newest {depth} events (the organization's audit depth); \
                 older ones are deleted as new ones come."
            ),
            Retention::KeptForGood => "Kept for good, also after the organization is deleted: \
                 ids and keyed hashes only, unreadable without the organization's key."
                .to_owned(),
        }
    }
}

/// One kind of thing the hub holds for the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKind {
    /// A stable name (`run_errors`).
    pub kind: &'static str,
    /// What it is, for people ("Per-record run errors").
    pub label: &'static str,
    pub count: u64,
    /// When the oldest was made; `None` when there is none or the hub does not keep the time.
    pub oldest: Option<OffsetDateTime>,
    pub retention: Retention,
}

/// A version of the organization's data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyVersionView {
    pub version: u32,
    /// The version of the hub's keyring that wraps it.
    pub keyring_version: u32,
    pub created_at: OffsetDateTime,
}

/// How many ciphertexts of one kind were made with each key version (0: not an
/// organization-key ciphertext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiphertextsByVersion {
    pub kind: &'static str,
    pub label: &'static str,
    pub by_version: BTreeMap<u32, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionFootprint {
    /// The version new data is encrypted with.
    pub current_version: u32,
    pub keys: Vec<KeyVersionView>,
    pub ciphertexts: Vec<CiphertextsByVersion>,
}

/// The members of one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMembers {
    pub role: Role,
    pub active: u64,
    pub deactivated: u64,
    /// Administrators only: the active ones, as (id, display name), sorted by name.
    pub names: Option<Vec<(UserId, String)>>,
}

/// One API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAccess {
    pub id: ApiTokenId,
    pub name: String,
    pub scope: TokenScope,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// A member's API tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub user_id: UserId,
    pub display_name: String,
    pub tokens: Vec<TokenAccess>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFootprint {
    /// Administrators, Editors, Viewers, in that order.
    pub members_by_role: Vec<RoleMembers>,
    /// By owner's name; an owner's tokens newest first.
    pub api_tokens: Vec<TokenOwner>,
    /// Support access grants in force now, soonest to end first.
    pub support_grants: Vec<crate::SupportGrantView>,
}

/// What the hub stores about an organization, in sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    pub organization: OrganizationId,
    pub taken_at: OffsetDateTime,
    pub stored: Vec<StoredKind>,
    pub encryption: EncryptionFootprint,
    pub access: AccessFootprint,
}

/// Every kind and the tables it stands for (the first is the one counted, except where the
/// kind's count is worked out otherwise). A table holding rows of an organization must be in
/// one of these: a test reads the schema and fails otherwise.
pub const KIND_TABLES: &[(&str, &[&str])] = &[
    ("organization", &["organizations", "organization_settings"]),
    ("organization_keys", &["organization_keys"]),
    ("users", &["users"]),
    ("recovery_codes", &["recovery_codes"]),
    ("passkeys", &["passkeys"]),
    ("sessions", &["sessions"]),
    ("api_tokens", &["api_tokens"]),
    ("password_resets", &["password_resets"]),
    ("pending_invitations", &["invitations"]),
    ("accepted_invitations", &["invitations"]),
    ("teams", &["teams"]),
    ("team_memberships", &["team_members"]),
    ("data_policies", &["data_policies"]),
    ("connections", &["connections"]),
    ("connection_secrets", &["connection_secrets"]),
    ("connection_metadata", &["connection_metadata"]),
    ("uploaded_files", &["connection_uploads"]),
    ("oauth_authorizations", &["oauth_authorizations"]),
    ("pipelines", &["pipelines"]),
    ("runs", &["runs"]),
    ("run_errors", &["run_errors"]),
    ("datasets", &["datasets", "dataset_shares"]),
    ("dataset_records", &["dataset_chunks"]),
    ("dataset_edits", &["dataset_edits"]),
    ("dataset_files", &["dataset_files"]),
    ("audit_events", &["audit_events"]),
    ("ledger_entries", &["ledger_entries", "ledger_heads"]),
    ("ledger_checkpoints", &["ledger_checkpoints"]),
    ("sso_configuration", &["sso_configs", "sso_domains"]),
    ("sso_sign_ins", &["sso_requests", "sso_assertions"]),
    ("support_access", &["support_grants", "support_sessions"]),
    ("pending_deletion", &["organization_deletions"]),
];

/// The organization-key ciphertexts whose key versions are counted: (kind, label, table,
/// column).
const CIPHERTEXTS: &[(&str, &str, &str, &str)] = &[
    (
        "users",
        "Members' e-mail addresses",
        "users",
        "email_ciphertext",
    ),
    (
        "connections",
        "Connections' configurations",
        "connections",
        "config_ciphertext",
    ),
    (
        "connection_secrets",
        "Connection secrets",
        "connection_secrets",
        "ciphertext",
    ),
    (
        "uploaded_files",
        "Uploaded files",
        "connection_uploads",
        "ciphertext",
    ),
    (
        "pipelines",
        "Pipelines' specifications",
        "pipelines",
        "spec_ciphertext",
    ),
    (
        "run_errors",
        "Per-record run errors",
        "run_errors",
        "ciphertext",
    ),
    (
        "datasets",
        "Data sets' own keys",
        "datasets",
        "key_ciphertext",
    ),
    (
        "audit_events",
        "Audit events' changes",
        "audit_events",
        "changes_ciphertext",
    ),
    ("teams", "Team names", "teams", "name_ciphertext"),
    (
        "data_policies",
        "Data policies",
        "data_policies",
        "document",
    ),
    ("passkeys", "Passkeys", "passkeys", "credential_ciphertext"),
    (
        "sso_configuration",
        "Single sign-on settings",
        "sso_configs",
        "settings",
    ),
];

/// Reads `at` (Unix milliseconds) from a ledger entry.
fn ledger_entry_time(entry: &[u8]) -> Option<OffsetDateTime> {
    #[derive(serde::Deserialize)]
    struct At {
        at: i64,
    }
    let at: At = serde_json::from_slice(entry).ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.at) * 1_000_000).ok()
}

fn minutes_or_hours(d: Duration) -> String {
    if d.whole_minutes() % 60 == 0 {
        format!("{} hours", d.whole_hours())
    } else {
        format!("{} minutes", d.whole_minutes())
    }
}

impl Hub {
    /// What the hub stores about the caller's organization (Administrators). It names members
    /// (Administrators and token owners), so the read is audited (`organization.footprint_read`)
    /// and the answer withheld if the event cannot be written.
    pub async fn organization_footprint(&self, caller: &Caller) -> Result<Footprint, AppError> {
        self.authorize_in_organization(caller, Action::ReadFootprint)?;
        let org = caller.organization();
        let taken_at = self.clock.now();
        let stored = self.stored_kinds(org).await?;
        let encryption = self.encryption_footprint(org).await?;
        let access = self.access_footprint(org).await?;
        let event = Event::new(
            Actor::User(caller.user()),
            "organization.footprint_read",
            "organization",
            org,
        );
        self.record_read(caller, event).await?;
        Ok(Footprint {
            organization: org,
            taken_at,
            stored,
            encryption,
            access,
        })
    }

    async fn stored_kinds(&self, org: OrganizationId) -> Result<Vec<StoredKind>, AppError> {
        let mut conn = self.store.read().await?;
        let s = settings::get(&mut conn, org).await?;
        let sessions = self.options.sessions;
        let dataset_days = Retention::WhenUntouched {
            days: s.dataset_retention_days,
        };
        let run_error_days =
            u32::try_from(self.options.run_error_retention.whole_days()).unwrap_or(u32::MAX);
        let kinds: Vec<(&'static str, &'static str, Source, Retention)> = vec![
            (
                "organization",
                "The organization and its settings",
                Source {
                    table: "organization_settings",
                    made_at: None,
                    only: None,
                },
                Retention::UntilDeleted,
            ),
            (
                "organization_keys",
                "Versions of the organization's data key (wrapped)",
                Source::table("organization_keys", "created_at"),
                Retention::UntilDeleted,
            ),
            (
                "users",
                "Members (e-mail and name sealed, password hash)",
                Source::table("users", "created_at"),
                Retention::UntilDeleted,
            ),
            (
                "recovery_codes",
                "Second-factor recovery codes (hashes)",
                Source {
                    table: "recovery_codes",
                    made_at: None,
                    only: None,
                },
                Retention::WithParent { parent: "member" },
            ),
            (
                "passkeys",
                "Passkeys",
                Source::table("passkeys", "created_at"),
                Retention::UntilDeleted,
            ),
            (
                "sessions",
                "Sign-in sessions (token hashes)",
                Source::table("sessions", "created_at"),
                Retention::Expires {
                    ends: format!(
                        "Ends after {} unused or {} at most, at sign-out, or when its member's \
                         sessions are ended",
                        minutes_or_hours(sessions.idle_timeout),
                        minutes_or_hours(sessions.max_lifetime)
                    ),
                },
            ),
            (
                "api_tokens",
                "API tokens (hashes)",
                Source::table("api_tokens", "created_at"),
                Retention::Expires {
                    ends: format!(
                        "Stops working at its expiry (at most {} days) or when its owner's role \
                         changes",
                        crate::MAX_API_TOKEN_DAYS
                    ),
                },
            ),
            (
                "password_resets",
                "Password reset requests (token hashes)",
                Source {
                    table: "password_resets",
                    made_at: None,
                    only: None,
                },
                Retention::Expires {
                    ends: format!(
                        "Usable {} minutes, once",
                        crate::identity::PASSWORD_RESET_VALIDITY.whole_minutes()
                    ),
                },
            ),
            (
                "pending_invitations",
                "Invitations not yet accepted (e-mail sealed, token hash)",
                Source {
                    table: "invitations",
                    made_at: Some("created_at"),
                    only: Some("accepted_at IS NULL"),
                },
                Retention::Expires {
                    ends: format!(
                        "Usable {} days, until revoked or accepted",
                        crate::organizations::INVITATION_VALIDITY.whole_days()
                    ),
                },
            ),
            (
                "accepted_invitations",
                "Accepted invitations (e-mail sealed)",
                Source {
                    table: "invitations",
                    made_at: Some("created_at"),
                    only: Some("accepted_at IS NOT NULL"),
                },
                Retention::UntilDeleted,
            ),
            (
                "teams",
                "Teams",
                Source::table("teams", "created_at"),
                Retention::UntilDeleted,
            ),
            (
                "team_memberships",
                "Team memberships",
                Source::table("team_members", "added_at"),
                Retention::UntilDeleted,
            ),
            (
                "data_policies",
                "Data policy layers (access, ownership, redaction)",
                Source {
                    table: "data_policies",
                    made_at: None,
                    only: None,
                },
                Retention::UntilDeleted,
            ),
            (
                "connections",
                "Connections (configuration sealed)",
                Source::table("connections", "created_at"),
                Retention::UntilDeleted,
            ),
            (
                "connection_secrets",
                "Connection secrets (sealed, write-only)",
                Source::table("connection_secrets", "updated_at"),
                Retention::WithParent {
                    parent: "connection",
                },
            ),
            (
                "connection_metadata",
                "Discovered objects and fields of connections",
                Source::table("connection_metadata", "discovered_at"),
                Retention::WithParent {
                    parent: "connection (replaced by each discovery)",
                },
            ),
            (
                "uploaded_files",
                "Uploaded files (sealed)",
                Source::table("connection_uploads", "created_at"),
                Retention::UntilDeleted,
            ),
            (
                "oauth_authorizations",
                "OAuth authorizations waiting for the provider",
                Source::table("oauth_authorizations", "created_at"),
                Retention::Expires {
                    ends: "Usable 10 minutes; expired ones are deleted when the next starts"
                        .to_owned(),
                },
            ),
            (
                "pipelines",
                "Pipelines (specification sealed)",
                Source::table("pipelines", "created_at"),
                Retention::UntilDeleted,
            ),
            (
                "runs",
                "Runs (states and counts)",
                Source::table("runs", "created_at"),
                Retention::UntilDeleted,
            ),
            (
                "run_errors",
                "Per-record run errors (sealed record values)",
                Source::table("run_errors", "created_at"),
                Retention::AfterDays {
                    days: run_error_days,
                },
            ),
            (
                "datasets",
                "Data sets",
                Source::table("datasets", "created_at"),
                dataset_days.clone(),
            ),
            (
                "dataset_records",
                "Records staged in data sets (sealed)",
                Source {
                    table: "datasets",
                    made_at: Some("created_at"),
                    only: Some(
                        "id IN (SELECT dataset_id FROM dataset_chunks WHERE kind = 'records')",
                    ),
                },
                dataset_days.clone(),
            ),
            (
                "dataset_edits",
                "Edits made to data sets' records (sealed)",
                Source::table("dataset_edits", "updated_at"),
                dataset_days.clone(),
            ),
            (
                "dataset_files",
                "Files of data sets: bills of materials, parts' files (sealed)",
                Source::table("dataset_files", "created_at"),
                dataset_days,
            ),
            (
                "audit_events",
                "Audit events",
                Source::table("audit_events", "at"),
                Retention::NewestPerObject {
                    depth: s.audit_depth,
                },
            ),
            (
                "ledger_entries",
                "Long-term audit ledger entries",
                Source {
                    table: "ledger_entries",
                    made_at: None,
                    only: None,
                },
                Retention::KeptForGood,
            ),
            (
                "ledger_checkpoints",
                "Signed ledger checkpoints",
                Source::table("ledger_checkpoints", "created_at"),
                Retention::KeptForGood,
            ),
            (
                "sso_configuration",
                "Single sign-on settings (sealed)",
                Source::table("sso_configs", "created_at"),
                Retention::UntilDeleted,
            ),
            (
                "sso_sign_ins",
                "Single sign-on sign-ins in progress",
                Source::table("sso_requests", "created_at"),
                Retention::Expires {
                    ends: "Usable 10 minutes; expired ones are deleted when the next starts"
                        .to_owned(),
                },
            ),
            (
                "support_access",
                "Support access grants, active and past (reason and address sealed)",
                Source::table("support_grants", "created_at"),
                Retention::UntilDeleted,
            ),
            (
                "pending_deletion",
                "A deletion of the organization an Administrator asked for",
                Source::table("organization_deletions", "requested_at"),
                Retention::UntilDeleted,
            ),
        ];
        let mut out = Vec::with_capacity(kinds.len());
        for (kind, label, source, retention) in kinds {
            let Tally { rows, mut oldest } = footprint::tally(&mut conn, org, source).await?;
            let count = match kind {
                "dataset_records" => footprint::dataset_records(&mut conn, org).await?,
                _ => rows,
            };
            if kind == "ledger_entries" {
                oldest = footprint::first_ledger_entry(&mut conn, org)
                    .await?
                    .as_deref()
                    .and_then(ledger_entry_time);
            }
            out.push(StoredKind {
                kind,
                label,
                count,
                oldest,
                retention,
            });
        }
        Ok(out)
    }

    async fn encryption_footprint(
        &self,
        org: OrganizationId,
    ) -> Result<EncryptionFootprint, AppError> {
        let mut conn = self.store.read().await?;
        let keys: Vec<KeyVersionView> = footprint::key_versions(&mut conn, org)
            .await?
            .into_iter()
            .map(|k| KeyVersionView {
                version: k.version,
                keyring_version: k.keyring_version,
                created_at: k.created_at,
            })
            .collect();
        let mut ciphertexts = Vec::with_capacity(CIPHERTEXTS.len());
        for &(kind, label, table, column) in CIPHERTEXTS {
            let by_version =
                footprint::ciphertexts_by_key_version(&mut conn, org, table, column).await?;
            ciphertexts.push(CiphertextsByVersion {
                kind,
                label,
                by_version,
            });
        }
        Ok(EncryptionFootprint {
            current_version: keys.iter().map(|k| k.version).max().unwrap_or(0),
            keys,
            ciphertexts,
        })
    }

    async fn access_footprint(&self, org: OrganizationId) -> Result<AccessFootprint, AppError> {
        let mut conn = self.store.read().await?;
        let members = users::list(&mut conn, org).await?;
        let tokens = api_tokens::list_for_organization(&mut conn, org).await?;
        drop(conn);
        let mut names: BTreeMap<UserId, String> = BTreeMap::new();
        for member in &members {
            let name = self
                .open_text(
                    org,
                    "user",
                    &member.id.to_string(),
                    "display_name",
                    &member.display_name_ciphertext,
                )
                .await?;
            names.insert(member.id, name);
        }
        let mut members_by_role = Vec::with_capacity(3);
        for role in [Role::Administrator, Role::Editor, Role::Viewer] {
            let of_role: Vec<_> = members.iter().filter(|m| m.role == role).collect();
            let active: Vec<_> = of_role
                .iter()
                .filter(|m| m.status == UserStatus::Active)
                .collect();
            let listed = (role == Role::Administrator).then(|| {
                let mut listed: Vec<(UserId, String)> = active
                    .iter()
                    .map(|m| (m.id, names.get(&m.id).cloned().unwrap_or_default()))
                    .collect();
                listed.sort_by_cached_key(|(id, name)| (name.to_lowercase(), id.to_string()));
                listed
            });
            members_by_role.push(RoleMembers {
                role,
                active: active.len() as u64,
                deactivated: (of_role.len() - active.len()) as u64,
                names: listed,
            });
        }
        let mut by_owner: BTreeMap<UserId, Vec<TokenAccess>> = BTreeMap::new();
        for token in tokens {
            let name = self
                .open_name(
                    org,
                    lockstep_storage::names::NamedTable::ApiTokens,
                    &token.id.to_string(),
                    &token.name,
                    token.name_ciphertext.as_deref(),
                )
                .await?;
            by_owner
                .entry(token.user_id)
                .or_default()
                .push(TokenAccess {
                    id: token.id,
                    name,
                    scope: token.scope,
                    created_at: token.created_at,
                    expires_at: token.expires_at,
                    last_used_at: token.last_used_at,
                });
        }
        let mut api_tokens: Vec<TokenOwner> = by_owner
            .into_iter()
            .map(|(user_id, mut tokens)| {
                tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
                TokenOwner {
                    user_id,
                    display_name: names.get(&user_id).cloned().unwrap_or_default(),
                    tokens,
                }
            })
            .collect();
        api_tokens.sort_by_cached_key(|o| (o.display_name.to_lowercase(), o.user_id.to_string()));
        let now = self.clock.now();
        let mut conn = self.store.read().await?;
        let grants = lockstep_storage::support::active_grants(&mut conn, org, now).await?;
        drop(conn);
        let mut support_grants = Vec::with_capacity(grants.len());
        for grant in grants {
            support_grants.push(self.grant_view(grant, now).await?);
        }
        Ok(AccessFootprint {
            members_by_role,
            api_tokens,
            support_grants,
        })
    }
}
