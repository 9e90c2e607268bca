//! The policy as a table: every action x role x own/foreign organization.

use super::*;
use lockstep_domain::{OrganizationId, Role, TokenScope, UserId};
use uuid_free::id;

mod uuid_free {
    /// Fixed ids without a uuid dependency: parse them from text.
    pub fn id<T: std::str::FromStr>(n: u8) -> T {
        let text = format!("01900000-0000-7000-8000-0000000000{n:02x}");
        match text.parse() {
            Ok(id) => id,
            Err(_) => unreachable!("fixed id"),
        }
    }
}

const ALL_ACTIONS: [Action; 32] = [
    Action::ReadOwnAccount,
    Action::ManageOwnCredentials,
    Action::ListUsers,
    Action::ReadUser,
    Action::InviteUser,
    Action::UpdateUser,
    Action::DeleteUser,
    Action::ReadSettings,
    Action::UpdateSettings,
    Action::ReadAudit,
    Action::ListConnections,
    Action::ReadConnectionConfig,
    Action::ManageConnections,
    Action::ReadConnectionObjects,
    Action::SampleRecords,
    Action::ListPipelines,
    Action::ManagePipelines,
    Action::RunPipelines,
    Action::ReadRunErrors,
    Action::PullDatasets,
    Action::ListAllDatasets,
    Action::ReadTeams,
    Action::ManageTeams,
    Action::ReadPolicies,
    Action::ManagePolicies,
    Action::ViewAs,
    Action::ManageSupportAccess,
    Action::DeleteOrganization,
    Action::ExportOrganization,
    Action::ReadFootprint,
    Action::DeleteRunHistory,
    Action::RespondToIncident,
];

fn member(role: Role) -> Member {
    Member {
        user: id::<UserId>(1),
        organization: id::<OrganizationId>(10),
        role,
        must_enrol_totp: false,
        token_scope: None,
        support: false,
    }
}

fn with_token(role: Role, scope: TokenScope) -> Subject {
    Subject::Member(Member {
        token_scope: Some(scope),
        ..member(role)
    })
}

#[test]
fn another_organization_is_never_visible_whatever_the_role() {
    let foreign = id::<OrganizationId>(11);
    for role in Role::ALL {
        let me = member(role);
        for action in ALL_ACTIONS {
            for owner in [None, Some(me.user), Some(id::<UserId>(2))] {
                let resource = Resource {
                    organization: foreign,
                    owner,
                };
                assert_eq!(
                    decide(&Subject::Member(me), action, &resource),
                    Decision::Deny(Denial::NotVisible),
                    "{role:?} {action:?} {owner:?}"
                );
            }
        }
    }
}

#[test]
fn the_operator_sees_nothing_inside_an_organization() {
    for action in ALL_ACTIONS {
        let resource = Resource::organization(id::<OrganizationId>(10));
        assert_eq!(
            decide(&Subject::Operator, action, &resource),
            Decision::Deny(Denial::NotVisible)
        );
    }
}

#[test]
fn roles_in_their_own_organization() {
    let org = id::<OrganizationId>(10);
    let admin_only = [
        Action::ListUsers,
        Action::ReadUser,
        Action::InviteUser,
        Action::UpdateUser,
        Action::DeleteUser,
        Action::ReadSettings,
        Action::UpdateSettings,
        Action::ReadAudit,
        Action::ReadConnectionConfig,
        Action::ManageConnections,
        Action::ListAllDatasets,
        Action::ReadTeams,
        Action::ManageTeams,
        Action::ReadPolicies,
        Action::ManagePolicies,
        Action::ViewAs,
        Action::ManageSupportAccess,
        Action::DeleteOrganization,
        Action::ExportOrganization,
        Action::ReadFootprint,
        Action::DeleteRunHistory,
        Action::RespondToIncident,
    ];
    for action in admin_only {
        let resource = Resource::organization(org);
        assert!(
            decide(
                &Subject::Member(member(Role::Administrator)),
                action,
                &resource
            )
            .is_allowed()
        );
        for role in [Role::Editor, Role::Viewer] {
            assert_eq!(
                decide(&Subject::Member(member(role)), action, &resource),
                Decision::Deny(Denial::Forbidden {
                    needs: Role::Administrator
                }),
                "{role:?} {action:?}"
            );
        }
    }
}

#[test]
fn own_account_actions_are_for_the_owner_only() {
    for role in Role::ALL {
        let me = member(role);
        for action in [Action::ReadOwnAccount, Action::ManageOwnCredentials] {
            let mine = Resource::owned_by(me.organization, me.user);
            let theirs = Resource::owned_by(me.organization, id::<UserId>(2));
            assert!(decide(&Subject::Member(me), action, &mine).is_allowed());
            assert_eq!(
                decide(&Subject::Member(me), action, &theirs),
                Decision::Deny(Denial::NotVisible),
                "{role:?} {action:?}"
            );
        }
    }
}

#[test]
fn a_member_who_must_enrol_totp_may_only_manage_their_own_account() {
    let me = Member {
        must_enrol_totp: true,
        ..member(Role::Administrator)
    };
    let mine = Resource::owned_by(me.organization, me.user);
    assert!(decide(&Subject::Member(me), Action::ManageOwnCredentials, &mine).is_allowed());
    assert!(decide(&Subject::Member(me), Action::ReadOwnAccount, &mine).is_allowed());
    let org = Resource::organization(me.organization);
    assert_eq!(
        decide(&Subject::Member(me), Action::ListUsers, &org),
        Decision::Deny(Denial::TotpEnrolmentRequired)
    );
}

#[test]
fn connections_by_role() {
    let org = Resource::organization(id::<OrganizationId>(10));
    let allowed = |role, action| decide(&Subject::Member(member(role)), action, &org).is_allowed();
    for role in Role::ALL {
        assert!(
            allowed(role, Action::ListConnections),
            "{role:?} lists connections"
        );
        assert!(
            allowed(role, Action::ReadConnectionObjects),
            "{role:?} reads objects"
        );
    }
    assert!(allowed(Role::Administrator, Action::SampleRecords));
    assert!(allowed(Role::Editor, Action::SampleRecords));
    assert_eq!(
        decide(
            &Subject::Member(member(Role::Viewer)),
            Action::SampleRecords,
            &org
        ),
        Decision::Deny(Denial::Forbidden {
            needs: Role::Editor
        })
    );
    assert!(!allowed(Role::Editor, Action::ReadConnectionConfig));
    assert!(!allowed(Role::Editor, Action::ManageConnections));
}

#[test]
fn pipelines_by_role() {
    let org = Resource::organization(id::<OrganizationId>(10));
    let allowed = |role, action| decide(&Subject::Member(member(role)), action, &org).is_allowed();
    for action in [
        Action::ManagePipelines,
        Action::RunPipelines,
        Action::ReadRunErrors,
    ] {
        assert!(allowed(Role::Administrator, action));
        assert!(allowed(Role::Editor, action));
        assert!(!allowed(Role::Viewer, action), "{action:?}");
    }
    for role in Role::ALL {
        assert!(allowed(role, Action::ListPipelines));
    }
}

#[test]
fn a_read_token_only_reads() {
    let org = Resource::organization(id::<OrganizationId>(10));
    let subject = with_token(Role::Administrator, TokenScope::Read);
    for action in [
        Action::ListUsers,
        Action::ReadUser,
        Action::ReadSettings,
        Action::ReadAudit,
        Action::ListConnections,
        Action::ReadConnectionConfig,
        Action::ReadConnectionObjects,
        Action::SampleRecords,
        Action::ListPipelines,
        Action::ReadRunErrors,
    ] {
        assert!(decide(&subject, action, &org).is_allowed(), "{action:?}");
    }
    for (action, needs) in [
        (Action::RunPipelines, TokenScope::Run),
        (Action::ManagePipelines, TokenScope::Manage),
        (Action::ManageConnections, TokenScope::Manage),
        (Action::InviteUser, TokenScope::Manage),
        (Action::UpdateUser, TokenScope::Manage),
        (Action::DeleteUser, TokenScope::Manage),
        (Action::UpdateSettings, TokenScope::Manage),
    ] {
        assert_eq!(
            decide(&subject, action, &org),
            Decision::Deny(Denial::ScopeTooNarrow {
                scope: TokenScope::Read,
                needs
            }),
            "{action:?}"
        );
    }
}

#[test]
fn a_run_token_starts_runs_but_edits_nothing() {
    let org = Resource::organization(id::<OrganizationId>(10));
    let subject = with_token(Role::Editor, TokenScope::Run);
    assert!(decide(&subject, Action::RunPipelines, &org).is_allowed());
    assert!(decide(&subject, Action::ListPipelines, &org).is_allowed());
    assert_eq!(
        decide(&subject, Action::ManagePipelines, &org),
        Decision::Deny(Denial::ScopeTooNarrow {
            scope: TokenScope::Run,
            needs: TokenScope::Manage
        })
    );
}

#[test]
fn a_token_never_exceeds_its_owners_role() {
    // Every scope x role x action: a token is allowed exactly when both the role (as for a
    // session) and the scope allow; a wide scope never lifts a narrow role.
    let org = id::<OrganizationId>(10);
    for role in Role::ALL {
        for scope in TokenScope::ALL {
            for action in ALL_ACTIONS {
                let resource = Resource::owned_by(org, id::<UserId>(1));
                let by_role = decide(&Subject::Member(member(role)), action, &resource);
                let by_token = decide(&with_token(role, scope), action, &resource);
                if !by_role.is_allowed() {
                    assert_eq!(by_token, by_role, "{role:?} {scope:?} {action:?}");
                } else {
                    assert_eq!(
                        by_token.is_allowed(),
                        scope >= action.minimum_scope(),
                        "{role:?} {scope:?} {action:?}"
                    );
                }
            }
        }
    }
    assert_eq!(
        decide(
            &with_token(Role::Viewer, TokenScope::Manage),
            Action::RunPipelines,
            &Resource::organization(org)
        ),
        Decision::Deny(Denial::Forbidden {
            needs: Role::Editor
        })
    );
}

#[test]
fn a_manage_token_may_do_what_the_role_may() {
    let org = Resource::organization(id::<OrganizationId>(10));
    for action in ALL_ACTIONS {
        if action.is_own_account() {
            continue;
        }
        assert_eq!(
            decide(
                &with_token(Role::Administrator, TokenScope::Manage),
                action,
                &org
            ),
            Decision::Allow,
            "{action:?}"
        );
    }
}

#[test]
fn a_support_person_works_with_the_granted_role_but_never_as_a_customer() {
    let support = Member {
        support: true,
        ..member(Role::Administrator)
    };
    let org = Resource::organization(support.organization);
    let own = Resource::owned_by(support.organization, support.user);
    for action in ALL_ACTIONS {
        let resource = if action.is_own_account() { own } else { org };
        let decision = decide(&Subject::Member(support), action, &resource);
        if action.is_customer_only() {
            assert_eq!(decision, Decision::Deny(Denial::CustomerOnly), "{action:?}");
        } else {
            assert!(decision.is_allowed(), "{action:?}");
        }
    }
    for action in [
        Action::ListPipelines,
        Action::RunPipelines,
        Action::ReadAudit,
        Action::ManageConnections,
    ] {
        assert!(
            decide(&Subject::Member(member(Role::Administrator)), action, &org).is_allowed(),
            "{action:?}"
        );
    }
    let viewer = Member {
        support: true,
        ..member(Role::Viewer)
    };
    assert!(decide(&Subject::Member(viewer), Action::ListPipelines, &org).is_allowed());
    assert_eq!(
        decide(&Subject::Member(viewer), Action::RunPipelines, &org),
        Decision::Deny(Denial::Forbidden {
            needs: Role::Editor
        })
    );
    let elsewhere = Resource::organization(id::<OrganizationId>(11));
    assert_eq!(
        decide(&Subject::Member(support), Action::ListPipelines, &elsewhere),
        Decision::Deny(Denial::NotVisible)
    );
}
