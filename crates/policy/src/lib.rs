//! Who may do what. One function, [`decide`], answers every authorization question of the hub:
//! given who asks ([`Subject`]), what they want to do ([`Action`]) and to what ([`Resource`]), it
//! allows, or denies with a [`Denial`] that says why. Pure: no IO, no clock; deny by default.
//!
//! Tenant isolation is the first rule: anything of another organization is [`Denial::NotVisible`],
//! which the server answers exactly like a missing object (404), so its existence does not leak.
//!
//! A member calling with an API token is held to the token's [`TokenScope`] as well as to their
//! role: the action must be allowed by both, so a token never does more than its owner may now.

use lockstep_domain::{OrganizationId, Role, TokenScope, UserId};

/// A signed-in member of an organization, as the policy needs to know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub user: UserId,
    pub organization: OrganizationId,
    pub role: Role,
    /// The organization requires TOTP and this member has not enrolled yet: until they do, they may
    /// only look at their own account and manage their own credentials.
    pub must_enrol_totp: bool,
    /// The scope of the API token the member calls with; `None` for a signed-in session, which
    /// may do everything the role allows.
    pub token_scope: Option<TokenScope>,
    /// A support person of the platform working here under a grant the organization's
    /// Administrator gave (with `role`), not a member: they have no account of their own here,
    /// so they may not act on one, own anything, or change who else may get in.
    pub support: bool,
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The platform operator: runs the hub, never sees inside an organization.
    Operator,
    Member(Member),
}

/// What they want to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read one's own profile.
    ReadOwnAccount,
    /// Change one's own password, sessions, TOTP and API tokens.
    ManageOwnCredentials,
    ListUsers,
    ReadUser,
    InviteUser,
    UpdateUser,
    DeleteUser,
    ReadSettings,
    UpdateSettings,
    /// Read the organization's audit events.
    ReadAudit,
    /// See the organization's connections: id, name and kind only.
    ListConnections,
    /// See a connection's configuration (never its secrets: no action shows those).
    ReadConnectionConfig,
    /// Create, edit, test, discover, connect (OAuth), upload to and delete connections.
    ManageConnections,
    /// See the objects and fields a connection exposes (discovered metadata).
    ReadConnectionObjects,
    /// Read a sample of a connection's records.
    SampleRecords,
    /// See pipelines and their runs.
    ListPipelines,
    /// Create, edit and delete pipelines.
    ManagePipelines,
    /// Start and cancel runs.
    RunPipelines,
    /// Read a run's per-record errors (they hold record values).
    ReadRunErrors,
    /// Pull a data set through a pipeline (it is the caller's own).
    PullDatasets,
    /// List every data set of the organization, whoever owns it (governance).
    ListAllDatasets,
    /// See the organization's teams and their members.
    ReadTeams,
    /// Create, rename and delete teams; add and remove their members.
    ManageTeams,
    /// Read the data policies (access, ownership, redaction).
    ReadPolicies,
    /// Change the data policies.
    ManagePolicies,
    /// See what another member or a team sees ("view as"): audited each time.
    ViewAs,
    /// Grant and revoke support access to the organization, and see the grants.
    ManageSupportAccess,
    /// Ask for the whole organization to be deleted, or cancel that during its grace period.
    DeleteOrganization,
    /// Download the organization's configuration as one document.
    ExportOrganization,
    /// See what the hub stores about the organization (kinds, counts, ages, keys, access).
    ReadFootprint,
    /// Delete run history and its per-record errors before their retention ends.
    DeleteRunHistory,
    /// End every session and API token of a member or of everyone, forcing a password reset.
    RespondToIncident,
}

impl Action {
    /// Actions on one's own account, allowed to every member for their own objects.
    fn is_own_account(self) -> bool {
        matches!(self, Action::ReadOwnAccount | Action::ManageOwnCredentials)
    }

    /// Actions a support person may never take, whatever role their grant gives: they own
    /// nothing here (no account, no data set) and may not change who gets in, delete, export
    /// or lock out the organization.
    fn is_customer_only(self) -> bool {
        matches!(
            self,
            Action::ReadOwnAccount
                | Action::ManageOwnCredentials
                | Action::PullDatasets
                | Action::InviteUser
                | Action::UpdateUser
                | Action::DeleteUser
                | Action::ManageSupportAccess
                | Action::DeleteOrganization
                | Action::ExportOrganization
                | Action::RespondToIncident
        )
    }

    /// The lowest role allowed to do this in one's own organization.
    fn minimum_role(self) -> Role {
        match self {
            Action::ReadOwnAccount
            | Action::ManageOwnCredentials
            | Action::ListConnections
            | Action::ReadConnectionObjects
            | Action::ListPipelines
            | Action::PullDatasets => Role::Viewer,
            Action::SampleRecords
            | Action::ManagePipelines
            | Action::RunPipelines
            | Action::ReadRunErrors => Role::Editor,
            Action::ListUsers
            | Action::ReadUser
            | Action::InviteUser
            | Action::UpdateUser
            | Action::DeleteUser
            | Action::ReadSettings
            | Action::UpdateSettings
            | Action::ReadAudit
            | Action::ReadConnectionConfig
            | Action::ManageConnections
            | Action::ListAllDatasets
            | Action::ReadTeams
            | Action::ManageTeams
            | Action::ReadPolicies
            | Action::ManagePolicies
            | Action::ViewAs
            | Action::ManageSupportAccess
            | Action::DeleteOrganization
            | Action::ExportOrganization
            | Action::ReadFootprint
            | Action::DeleteRunHistory
            | Action::RespondToIncident => Role::Administrator,
        }
    }

    /// The narrowest API token scope that covers this action: reading is `read`, starting and
    /// cancelling runs is `run`, any other change is `manage`.
    pub fn minimum_scope(self) -> TokenScope {
        match self {
            Action::ReadOwnAccount
            | Action::ListUsers
            | Action::ReadUser
            | Action::ReadSettings
            | Action::ReadAudit
            | Action::ListConnections
            | Action::ReadConnectionConfig
            | Action::ReadConnectionObjects
            | Action::SampleRecords
            | Action::ListPipelines
            | Action::ReadRunErrors
            | Action::ListAllDatasets
            | Action::ReadTeams
            | Action::ReadPolicies
            | Action::ViewAs
            | Action::ExportOrganization
            | Action::ReadFootprint => TokenScope::Read,
            Action::RunPipelines | Action::PullDatasets => TokenScope::Run,
            Action::ManageOwnCredentials
            | Action::InviteUser
            | Action::UpdateUser
            | Action::DeleteUser
            | Action::UpdateSettings
            | Action::ManageConnections
            | Action::ManagePipelines
            | Action::ManageTeams
            | Action::ManagePolicies
            | Action::ManageSupportAccess
            | Action::DeleteOrganization
            | Action::DeleteRunHistory
            | Action::RespondToIncident => TokenScope::Manage,
        }
    }
}

/// What it is done to: an object of an organization, owned by a user or by the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub organization: OrganizationId,
    /// The user who owns the object (the user themself for a user account), if any.
    pub owner: Option<UserId>,
}

impl Resource {
    /// The organization itself (settings, its user list).
    pub fn organization(organization: OrganizationId) -> Resource {
        Resource {
            organization,
            owner: None,
        }
    }

    /// An object owned by `owner` in `organization` (an account, a session, a token).
    pub fn owned_by(organization: OrganizationId, owner: UserId) -> Resource {
        Resource {
            organization,
            owner: Some(owner),
        }
    }
}

/// Why a request is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The object belongs to another organization (or another user's private object): answer as
    /// if it did not exist.
    NotVisible,
    /// The object is visible (shared with the caller) but only its owner or an Administrator
    /// may do this.
    OwnerOnly,
    /// Visible, but the member's role does not allow this action.
    Forbidden { needs: Role },
    /// The role allows it, but the API token the member calls with has too narrow a scope.
    ScopeTooNarrow {
        scope: TokenScope,
        needs: TokenScope,
    },
    /// The organization requires TOTP and the member must enrol first.
    TotpEnrolmentRequired,
    /// A support person asked for something only the organization's own members may do.
    CustomerOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Denial),
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// Decides whether `subject` may do `action` to `resource`.
pub fn decide(subject: &Subject, action: Action, resource: &Resource) -> Decision {
    let member = match subject {
        // The operator has no route into an organization's objects.
        Subject::Operator => return Decision::Deny(Denial::NotVisible),
        Subject::Member(member) => member,
    };
    if member.organization != resource.organization {
        return Decision::Deny(Denial::NotVisible);
    }
    if member.support && action.is_customer_only() {
        return Decision::Deny(Denial::CustomerOnly);
    }
    if action.is_own_account() {
        // Another member's sessions, tokens and credentials are private to them.
        if resource.owner != Some(member.user) {
            return Decision::Deny(Denial::NotVisible);
        }
        return within_scope(member, action);
    }
    if member.must_enrol_totp {
        return Decision::Deny(Denial::TotpEnrolmentRequired);
    }
    let needs = action.minimum_role();
    if member.role < needs {
        return Decision::Deny(Denial::Forbidden { needs });
    }
    within_scope(member, action)
}

/// The scope check, after the role (or ownership) allowed the action: the two intersect.
fn within_scope(member: &Member, action: Action) -> Decision {
    match member.token_scope {
        None => Decision::Allow,
        Some(scope) if scope >= action.minimum_scope() => Decision::Allow,
        Some(scope) => Decision::Deny(Denial::ScopeTooNarrow {
            scope,
            needs: action.minimum_scope(),
        }),
    }
}

#[cfg(test)]
mod tests;

/// What can be done to one data set. A data set belongs to its owner: it is visible to the owner,
/// to the members it is shared with and to the organization's Administrators, and to nobody
/// else (not even as "forbidden": [`Denial::NotVisible`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetAction {
    /// See it and its records.
    Read,
    /// Edit its records, tick and untick them, pull it again (Editors and Administrators; the
    /// owner, or an Administrator).
    Edit,
    /// Write its ticked records to the destination (as `Edit`).
    Submit,
    /// Share, unshare, hand over or delete it (any role; the owner, or an Administrator).
    Manage,
}

impl DatasetAction {
    pub fn minimum_role(self) -> Role {
        match self {
            DatasetAction::Read | DatasetAction::Manage => Role::Viewer,
            DatasetAction::Edit | DatasetAction::Submit => Role::Editor,
        }
    }

    pub fn minimum_scope(self) -> TokenScope {
        match self {
            DatasetAction::Read => TokenScope::Read,
            DatasetAction::Edit | DatasetAction::Submit | DatasetAction::Manage => TokenScope::Run,
        }
    }
}

/// One data set as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dataset {
    pub organization: OrganizationId,
    pub owner: UserId,
    /// Whether it is shared with the member asking.
    pub shared_with_caller: bool,
}

/// May `subject` do `action` to this data set?
pub fn decide_dataset(subject: &Subject, action: DatasetAction, dataset: &Dataset) -> Decision {
    let member = match subject {
        Subject::Operator => return Decision::Deny(Denial::NotVisible),
        Subject::Member(member) => member,
    };
    if member.organization != dataset.organization {
        return Decision::Deny(Denial::NotVisible);
    }
    let owner = member.user == dataset.owner;
    let administrator = member.role == Role::Administrator;
    if !(owner || administrator || dataset.shared_with_caller) {
        return Decision::Deny(Denial::NotVisible);
    }
    if member.must_enrol_totp {
        return Decision::Deny(Denial::TotpEnrolmentRequired);
    }
    if action != DatasetAction::Read && !(owner || administrator) {
        return Decision::Deny(Denial::OwnerOnly);
    }
    let needs = action.minimum_role();
    if member.role < needs {
        return Decision::Deny(Denial::Forbidden { needs });
    }
    let scope = action.minimum_scope();
    match member.token_scope {
        Some(have) if have < scope => Decision::Deny(Denial::ScopeTooNarrow {
            scope: have,
            needs: scope,
        }),
        _ => Decision::Allow,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod dataset_tests {
    use super::*;

    fn id<T: std::str::FromStr>(n: u128) -> T {
        match format!("01900000-0000-7000-8000-0000000000{n:02x}").parse() {
            Ok(id) => id,
            Err(_) => unreachable!("fixed id"),
        }
    }

    fn member(user: u128, org: u128, role: Role) -> Subject {
        Subject::Member(Member {
            user: id(user),
            organization: id(org),
            role,
            must_enrol_totp: false,
            token_scope: None,
            support: false,
        })
    }

    #[test]
    fn a_data_set_is_its_owners_its_sharees_to_read_and_administrators() {
        use DatasetAction::{Edit, Manage, Read, Submit};
        let ds = Dataset {
            organization: id(1),
            owner: id(10),
            shared_with_caller: false,
        };
        let shared = Dataset {
            shared_with_caller: true,
            ..ds
        };
        let owner_viewer = member(10, 1, Role::Viewer);
        let owner_editor = member(10, 1, Role::Editor);
        let other_editor = member(11, 1, Role::Editor);
        let admin = member(12, 1, Role::Administrator);
        let stranger_admin = member(13, 2, Role::Administrator);
        let hidden = Decision::Deny(Denial::NotVisible);
        for action in [Read, Edit, Submit, Manage] {
            assert_eq!(decide_dataset(&other_editor, action, &ds), hidden);
            assert_eq!(decide_dataset(&stranger_admin, action, &shared), hidden);
            assert_eq!(decide_dataset(&Subject::Operator, action, &ds), hidden);
            assert!(decide_dataset(&admin, action, &ds).is_allowed());
            assert!(decide_dataset(&owner_editor, action, &ds).is_allowed());
        }
        assert!(decide_dataset(&other_editor, Read, &shared).is_allowed());
        for action in [Edit, Submit, Manage] {
            assert_eq!(
                decide_dataset(&other_editor, action, &shared),
                Decision::Deny(Denial::OwnerOnly)
            );
        }
        assert!(decide_dataset(&owner_viewer, Manage, &ds).is_allowed());
        assert_eq!(
            decide_dataset(&owner_viewer, Edit, &ds),
            Decision::Deny(Denial::Forbidden {
                needs: Role::Editor
            })
        );
    }
}
