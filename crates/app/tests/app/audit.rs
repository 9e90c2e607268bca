//! Audit events: written with the change, kept to the depth per object, secrets only "changed",
//! and failing closed.

use lockstep_app::{
    AppError, AuditSearch, FieldChange, Hub, Password, SettingsUpdate, SystemClock, UserUpdate,
};
use lockstep_domain::Role;
use lockstep_storage::testing::{TestStore, execute};
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery staple";

fn pw(text: &str) -> Password {
    Password::new(text.to_owned())
}

async fn signed_in(hub: &Hub, email: &str) -> lockstep_app::Caller {
    let done = hub.login(email, &pw(PASSWORD), None).await.unwrap();
    hub.authenticate(done.session_token.expose()).await.unwrap()
}

/// A hub with one organization, its Administrator and an Editor.
async fn setup(t: &TestStore) -> (Hub, lockstep_app::Caller, lockstep_app::Caller) {
    let (hub, creds) = Hub::initialize(t.store.clone(), Arc::new(SystemClock), 1, 1)
        .await
        .unwrap();
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let org = hub
        .create_organization(&op, "Acme", "ada@acme.io")
        .await
        .unwrap();
    hub.accept_invitation(org.invitation_token.expose(), &pw(PASSWORD), "Ada")
        .await
        .unwrap();
    let admin = signed_in(&hub, "ada@acme.io").await;
    let inv = hub
        .invite_user(&admin, "ed@acme.io", Role::Editor)
        .await
        .unwrap();
    hub.accept_invitation(inv.token.expose(), &pw(PASSWORD), "Ed")
        .await
        .unwrap();
    let editor = signed_in(&hub, "ed@acme.io").await;
    (hub, admin, editor)
}

lockstep_storage::on_both_stores!(each_object_keeps_exactly_its_last_n_events_in_order);
async fn each_object_keeps_exactly_its_last_n_events_in_order(t: TestStore) {
    let (hub, admin, editor) = setup(&t).await;
    let depth = 4;
    hub.update_organization_settings(
        &admin,
        SettingsUpdate {
            audit_depth: Some(depth),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let roles = [Role::Viewer, Role::Editor];
    for i in 0..(depth as usize + 5) {
        let update = UserUpdate {
            role: Some(roles[i % 2]),
            ..Default::default()
        };
        hub.update_user(&admin, editor.user(), update)
            .await
            .unwrap();
    }
    let events = hub
        .object_events(&admin, "user", &editor.user().to_string())
        .await
        .unwrap();
    assert_eq!(events.len(), depth as usize, "{events:#?}");
    // Newest first: the last change made the user (8 % 2 = 0 → viewer), alternating before it.
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event.action, "user.updated");
        assert_eq!(
            event.actor_id.as_deref(),
            Some(admin.user().to_string().as_str())
        );
        let after = roles[(depth as usize + 4 - n) % 2].as_str().to_owned();
        assert_eq!(
            event.changes.get("role"),
            Some(&FieldChange::Value {
                before: Some(roles[(depth as usize + 5 - n) % 2].as_str().to_owned()),
                after: Some(after)
            }),
            "event {n}"
        );
    }
    assert!(events.windows(2).all(|w| w[0].at >= w[1].at));
}

lockstep_storage::on_both_stores!(secrets_are_recorded_as_changed_without_values);
async fn secrets_are_recorded_as_changed_without_values(t: TestStore) {
    let (hub, admin, editor) = setup(&t).await;
    hub.change_password(&editor, &pw(PASSWORD), &pw("a brand new passphrase"), true)
        .await
        .unwrap();
    let events = hub
        .object_events(&admin, "user", &editor.user().to_string())
        .await
        .unwrap();
    let changed = events
        .iter()
        .find(|e| e.action == "user.password_changed")
        .unwrap();
    assert_eq!(
        changed.changes.get("password"),
        Some(&FieldChange::Secret { changed: true })
    );
    let all = format!("{events:?}");
    assert!(
        !all.contains("brand new passphrase") && !all.contains(PASSWORD),
        "{all}"
    );

    // Failed sign-ins are recorded on the account, without the password tried.
    let _ = hub
        .login("ed@acme.io", &pw("not the password at all"), None)
        .await;
    // Recorded after the answer.
    hub.run_queued_jobs().await;
    let found = hub
        .search_events(
            &admin,
            AuditSearch {
                action: Some("user.sign_in_failed".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].outcome, "failure");
    assert_eq!(found[0].object_id, editor.user().to_string());
    assert!(!format!("{found:?}").contains("not the password"));
}

lockstep_storage::on_both_stores!(only_administrators_read_events_and_only_their_own);
async fn only_administrators_read_events_and_only_their_own(t: TestStore) {
    let (hub, admin, editor) = setup(&t).await;
    let search = || AuditSearch {
        limit: 100,
        ..Default::default()
    };
    assert!(matches!(
        hub.search_events(&editor, search()).await,
        Err(AppError::Forbidden { .. })
    ));
    assert!(matches!(
        hub.object_events(&editor, "user", &editor.user().to_string())
            .await,
        Err(AppError::Forbidden { .. })
    ));
    let all = hub.search_events(&admin, search()).await.unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    for expected in [
        "organization.created",
        "user.created",
        "user.signed_in",
        "invitation.created",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    // Reading users is itself recorded.
    hub.list_users(&admin).await.unwrap();
    let listed = hub
        .search_events(
            &admin,
            AuditSearch {
                action: Some("users.listed".into()),
                ..search()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    // Paging.
    let page = hub
        .search_events(
            &admin,
            AuditSearch {
                limit: 2,
                offset: 1,
                ..search()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(
        page[0].id,
        hub.search_events(&admin, search()).await.unwrap()[1].id
    );
}

lockstep_storage::on_both_stores!(a_change_whose_event_cannot_be_written_is_not_made);
async fn a_change_whose_event_cannot_be_written_is_not_made(t: TestStore) {
    let (hub, admin, editor) = setup(&t).await;
    execute(&t.store, "DROP TABLE audit_events").await.unwrap();
    let update = UserUpdate {
        role: Some(Role::Viewer),
        ..Default::default()
    };
    assert!(
        hub.update_user(&admin, editor.user(), update)
            .await
            .is_err()
    );
    assert!(
        hub.create_api_token(
            &editor,
            "ci",
            lockstep_domain::TokenScope::Manage,
            lockstep_app::TokenExpiry::Days(1)
        )
        .await
        .is_err()
    );
    assert!(
        hub.invite_user(&admin, "vi@acme.io", Role::Viewer)
            .await
            .is_err()
    );
    let mut conn = t.store.read().await.unwrap();
    let stored = lockstep_storage::users::get(&mut conn, admin.organization(), editor.user())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.role,
        Role::Editor,
        "the role changed although its audit event failed"
    );
    let tokens = lockstep_storage::api_tokens::list_for_user(
        &mut conn,
        editor.organization(),
        editor.user(),
    )
    .await
    .unwrap();
    assert!(
        tokens.is_empty(),
        "a token was made although its audit event failed"
    );
}

lockstep_storage::on_both_stores!(concurrent_changes_all_land_and_the_ledger_still_verifies);
async fn concurrent_changes_all_land_and_the_ledger_still_verifies(t: TestStore) {
    let (hub, admin, editor) = setup(&t).await;
    let hub = Arc::new(hub);
    let mut tasks = Vec::new();
    for n in 0..24 {
        let hub = Arc::clone(&hub);
        tasks.push(tokio::spawn(async move {
            hub.create_api_token(
                &editor,
                &format!("token {n}"),
                lockstep_domain::TokenScope::Manage,
                lockstep_app::TokenExpiry::Days(1),
            )
            .await
            .map(|_| ())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(hub.list_api_tokens(&editor).await.unwrap().len(), 24);
    hub.checkpoint_ledgers().await.unwrap();
    let ledger = lockstep_app::stored_ledger(&t.store, admin.organization())
        .await
        .unwrap();
    let verified = lockstep_ledger::verify_export(&ledger).unwrap_or_else(|f| panic!("{f:?}"));
    assert_eq!(verified.unchecked_tail, 0);
    let created = ledger
        .entries
        .iter()
        .filter(|e| String::from_utf8_lossy(e).contains("api_token.created"))
        .count();
    assert_eq!(created, 24);
}

lockstep_storage::on_both_stores!(
    an_administrator_rotates_the_organization_key_and_old_data_still_decrypts
);
async fn an_administrator_rotates_the_organization_key_and_old_data_still_decrypts(t: TestStore) {
    let (hub, admin, editor) = setup(&t).await;
    let aad = lockstep_vault::Aad {
        object_kind: "probe",
        object_id: "1",
        field: "value",
    };
    let before = hub.org_keys(admin.organization()).await.unwrap();
    let old = before.encrypt(&aad, b"old data", &mut rand::rng()).unwrap();
    assert!(matches!(
        hub.rotate_organization_key(&editor).await,
        Err(AppError::Forbidden { .. })
    ));
    assert_eq!(hub.rotate_organization_key(&admin).await.unwrap(), 2);
    let after = hub.org_keys(admin.organization()).await.unwrap();
    assert_eq!(after.current_version(), 2);
    assert_eq!(after.decrypt(&aad, &old).unwrap().as_slice(), b"old data");
    let new = after.encrypt(&aad, b"new data", &mut rand::rng()).unwrap();
    assert!(
        before.decrypt(&aad, &new).is_err(),
        "new data used the old key"
    );
    // Personal data sealed before the rotation still reads.
    assert_eq!(hub.me(&editor).await.unwrap().email, "ed@acme.io");
    let events = hub
        .object_events(&admin, "organization", &admin.organization().to_string())
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "organization.key_rotated")
    );
}
