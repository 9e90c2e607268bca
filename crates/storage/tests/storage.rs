//! The store's behaviour, run on SQLite and on PostgreSQL alike.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use lockstep_domain::{InvitationId, OrganizationId, OrganizationName};
use lockstep_storage::organizations::{Organization, StoredOrgKey};
use lockstep_storage::testing::TestStore;
use lockstep_storage::vault::StoredVault;
use lockstep_storage::{StoreError, footprint, invitations, operator, organizations, vault};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use lockstep_storage::on_both_stores;

const T0: OffsetDateTime = datetime!(2026-11-22 10:00:00.123 UTC);

fn org(n: u128, name: &str) -> Organization {
    Organization {
        id: OrganizationId::from_uuid(Uuid::from_u128(n)),
        name: OrganizationName::parse(name).unwrap(),
        created_at: T0,
    }
}

fn sample_vault() -> StoredVault {
    StoredVault {
        vault_id: vec![7; 16],
        key_shares: 5,
        key_threshold: 3,
        share_verifiers: vec![1; 160],
        encrypted_keyring: vec![9; 80],
        created_at: T0,
    }
}

on_both_stores!(vault_config_is_stored_once_and_read_back);
async fn vault_config_is_stored_once_and_read_back(t: TestStore) {
    let mut conn = t.store.read().await.unwrap();
    assert_eq!(vault::load(&mut conn).await.unwrap(), None);
    drop(conn);

    let mut tx = t.store.write().await.unwrap();
    vault::insert(&mut tx, &sample_vault()).await.unwrap();
    tx.commit().await.unwrap();

    let mut conn = t.store.read().await.unwrap();
    assert_eq!(vault::load(&mut conn).await.unwrap(), Some(sample_vault()));
    let again = vault::insert(&mut conn, &sample_vault()).await;
    assert!(
        matches!(again, Err(StoreError::Conflict("vault"))),
        "{again:?}"
    );

    vault::update_keyring(&mut conn, &[4; 90], T0)
        .await
        .unwrap();
    let loaded = vault::load(&mut conn).await.unwrap().unwrap();
    assert_eq!(loaded.encrypted_keyring, vec![4; 90]);
}

on_both_stores!(uncommitted_transaction_changes_nothing);
async fn uncommitted_transaction_changes_nothing(t: TestStore) {
    let mut tx = t.store.write().await.unwrap();
    organizations::insert(&mut tx, &org(1, "Acme"))
        .await
        .unwrap();
    drop(tx);
    let mut conn = t.store.read().await.unwrap();
    assert!(organizations::list(&mut conn).await.unwrap().is_empty());
}

on_both_stores!(organization_names_are_unique_ignoring_case);
async fn organization_names_are_unique_ignoring_case(t: TestStore) {
    let mut conn = t.store.read().await.unwrap();
    organizations::insert(&mut conn, &org(1, "Acme"))
        .await
        .unwrap();
    let dup = organizations::insert(&mut conn, &org(2, "ACME")).await;
    assert!(
        matches!(dup, Err(StoreError::Conflict("organization"))),
        "{dup:?}"
    );
    organizations::insert(&mut conn, &org(3, "Globex"))
        .await
        .unwrap();
    let names: Vec<String> = organizations::list(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|o| o.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["Acme", "Globex"]);
    let got = organizations::get(&mut conn, org(3, "Globex").id)
        .await
        .unwrap();
    assert_eq!(got, Some(org(3, "Globex")));
    assert_eq!(
        organizations::get(&mut conn, org(9, "X").id).await.unwrap(),
        None
    );
}

on_both_stores!(deleting_an_organization_leaves_none_of_its_rows);
async fn deleting_an_organization_leaves_none_of_its_rows(t: TestStore) {
    let mut conn = t.store.read().await.unwrap();
    let (acme, globex) = (org(1, "Acme"), org(2, "Globex"));
    for o in [&acme, &globex] {
        organizations::insert(&mut conn, o).await.unwrap();
        for version in 1..=2 {
            let key = StoredOrgKey {
                version,
                keyring_version: 1,
                wrapped_key: vec![version as u8; 60],
            };
            organizations::insert_key(&mut conn, o.id, &key, T0)
                .await
                .unwrap();
        }
        let inv = invitations::NewInvitation {
            id: InvitationId::from_uuid(Uuid::now_v7()),
            organization_id: o.id,
            token_hash: *Uuid::now_v7()
                .as_bytes()
                .repeat(2)
                .first_chunk::<32>()
                .unwrap(),
            email_ciphertext: vec![1, 2, 3],
            role: "administrator".into(),
            invited_by: None,
            expires_at: T0,
            created_at: T0,
        };
        invitations::insert(&mut conn, &inv).await.unwrap();
        let user = fill_identity_tables(&mut conn, o.id).await;
        fill_connection_tables(&mut conn, o.id, user).await;
    }
    let tables = footprint::organization_tables(&mut conn, t.store.backend())
        .await
        .unwrap();
    assert!(
        tables.contains(&"organization_keys".to_owned()),
        "{tables:?}"
    );
    assert!(tables.contains(&"invitations".to_owned()), "{tables:?}");
    let before = footprint::organization_footprint(&mut conn, t.store.backend(), acme.id)
        .await
        .unwrap();
    assert_eq!(before.len(), tables.len() + 1, "{before:?}");

    assert!(organizations::delete(&mut conn, acme.id).await.unwrap());
    assert!(!organizations::delete(&mut conn, acme.id).await.unwrap());

    let after = footprint::organization_footprint(&mut conn, t.store.backend(), acme.id)
        .await
        .unwrap();
    let retained = lockstep_storage::ledger::RETAINED_AFTER_DELETION;
    let after: Vec<_> = after
        .into_iter()
        .filter(|(table, _)| !retained.contains(&table.as_str()))
        .collect();
    assert_eq!(after, vec![]);
    assert!(
        organizations::keys(&mut conn, acme.id)
            .await
            .unwrap()
            .is_empty()
    );
    // The other organization keeps everything.
    assert_eq!(
        organizations::keys(&mut conn, globex.id)
            .await
            .unwrap()
            .len(),
        2
    );
    let other = footprint::organization_footprint(&mut conn, t.store.backend(), globex.id)
        .await
        .unwrap();
    assert_eq!(other.len(), tables.len() + 1);
}

on_both_stores!(org_key_versions_are_kept_in_order);
async fn org_key_versions_are_kept_in_order(t: TestStore) {
    let mut conn = t.store.read().await.unwrap();
    let acme = org(1, "Acme");
    organizations::insert(&mut conn, &acme).await.unwrap();
    for (version, keyring_version) in [(2, 2), (1, 1)] {
        let key = StoredOrgKey {
            version,
            keyring_version,
            wrapped_key: vec![version as u8],
        };
        organizations::insert_key(&mut conn, acme.id, &key, T0)
            .await
            .unwrap();
    }
    let dup = StoredOrgKey {
        version: 2,
        keyring_version: 2,
        wrapped_key: vec![0],
    };
    assert!(matches!(
        organizations::insert_key(&mut conn, acme.id, &dup, T0).await,
        Err(StoreError::Conflict(_))
    ));
    let versions: Vec<(u32, u32)> = organizations::keys(&mut conn, acme.id)
        .await
        .unwrap()
        .iter()
        .map(|k| (k.version, k.keyring_version))
        .collect();
    assert_eq!(versions, [(1, 1), (2, 2)]);
}

on_both_stores!(operator_tokens_are_found_by_hash_only);
async fn operator_tokens_are_found_by_hash_only(t: TestStore) {
    let mut conn = t.store.read().await.unwrap();
    operator::insert_token(&mut conn, "op1", &[5; 32], T0)
        .await
        .unwrap();
    assert_eq!(
        operator::find_token(&mut conn, &[5; 32]).await.unwrap(),
        Some("op1".into())
    );
    assert_eq!(
        operator::find_token(&mut conn, &[6; 32]).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_not_an_empty_store() {
    let err = lockstep_storage::Store::connect("postgres://postgres@127.0.0.1:1/none").await;
    assert!(matches!(err, Err(StoreError::Database(_))), "{err:?}");
    let err = lockstep_storage::Store::connect("mysql://root@127.0.0.1/test").await;
    assert!(matches!(err, Err(StoreError::UnsupportedUrl)), "{err:?}");
}

/// The embedded store holds everything (ciphertext, hashes, the audit log): its file and
/// SQLite's `-wal` and `-shm` files are the owner's alone, whatever the umask, and a file
/// made before with wider permissions is narrowed.
#[cfg(unix)]
#[tokio::test]
async fn the_embedded_store_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lockstep.db");
    let store = lockstep_storage::Store::open_sqlite(&path).await.unwrap();
    let mut conn = store.write().await.unwrap();
    operator::insert_token(&mut conn, "op1", &[5; 32], T0)
        .await
        .unwrap();
    conn.commit().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("lockstep.db{suffix}"));
        assert!(file.exists(), "{suffix}");
        assert_eq!(mode(&file), 0o600, "lockstep.db{suffix}");
    }
    store.close().await;

    let older = dir.path().join("older.db");
    std::fs::write(&older, b"").unwrap();
    std::fs::set_permissions(&older, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = lockstep_storage::Store::open_sqlite(&older).await.unwrap();
    assert_eq!(mode(&older), 0o600);
    store.close().await;
}

/// One row in each identity table for the organization, so deletion is checked against all.
async fn fill_identity_tables(
    conn: &mut lockstep_storage::Connection,
    org: OrganizationId,
) -> lockstep_domain::UserId {
    use lockstep_domain::{ApiTokenId, Role, SessionId, UserId};
    use lockstep_storage::{api_tokens, password_resets, sessions, settings, users};
    let user = UserId::from_uuid(Uuid::now_v7());
    let unique = |n: u8| {
        let mut h = [n; 32];
        h[..16].copy_from_slice(Uuid::now_v7().as_bytes());
        h
    };
    users::insert(
        conn,
        &users::StoredUser {
            id: user,
            organization_id: org,
            email_index: unique(1).to_vec(),
            email_ciphertext: vec![1],
            display_name_ciphertext: vec![2],
            role: Role::Editor,
            status: users::UserStatus::Active,
            password_hash: "$argon2id$x".into(),
            failed_logins: 0,
            locked_until: None,
            totp_secret_ciphertext: None,
            totp_enabled: false,
            totp_last_step: None,
            created_at: T0,
        },
    )
    .await
    .unwrap();
    users::replace_recovery_codes(conn, org, user, &[unique(2), unique(3)])
        .await
        .unwrap();
    sessions::insert(
        conn,
        &sessions::StoredSession {
            id: SessionId::from_uuid(Uuid::now_v7()),
            organization_id: org,
            user_id: user,
            token_hash: unique(4),
            csrf_hash: unique(5),
            created_at: T0,
            last_seen_at: T0,
        },
    )
    .await
    .unwrap();
    api_tokens::insert(
        conn,
        &api_tokens::StoredApiToken {
            id: ApiTokenId::from_uuid(Uuid::now_v7()),
            organization_id: org,
            user_id: user,
            name: "ci".into(),
            name_ciphertext: Some(vec![11; 40]),
            token_hash: unique(6),
            role: Role::Editor,
            scope: lockstep_domain::TokenScope::Run,
            created_at: T0,
            expires_at: T0,
            last_used_at: None,
        },
    )
    .await
    .unwrap();
    password_resets::insert(conn, &unique(7), org, user, T0)
        .await
        .unwrap();
    let passkey = lockstep_storage::passkeys::StoredPasskey {
        id: lockstep_domain::PasskeyId::from_uuid(Uuid::now_v7()),
        organization_id: org,
        user_id: user,
        credential_hash: unique(8),
        name_ciphertext: vec![12; 40],
        credential_ciphertext: vec![13; 200],
        created_at: T0,
        last_used_at: None,
    };
    lockstep_storage::passkeys::insert(conn, &passkey)
        .await
        .unwrap();
    let again = lockstep_storage::passkeys::insert(
        conn,
        &lockstep_storage::passkeys::StoredPasskey {
            id: lockstep_domain::PasskeyId::from_uuid(Uuid::now_v7()),
            ..passkey.clone()
        },
    )
    .await;
    assert!(
        matches!(again, Err(StoreError::Conflict("passkey"))),
        "a credential id is stored once: {again:?}"
    );
    settings::put(
        conn,
        org,
        settings::OrganizationSettings {
            require_totp: true,
            ..Default::default()
        },
        T0,
    )
    .await
    .unwrap();
    lockstep_storage::audit::append(
        conn,
        &lockstep_storage::audit::StoredEvent {
            id: Uuid::now_v7().to_string(),
            organization_id: org,
            at: T0,
            actor_kind: "user".into(),
            actor_id: Some(user.to_string()),
            action: "user.created".into(),
            object_kind: "user".into(),
            object_id: user.to_string(),
            outcome: "success".into(),
            changes_ciphertext: Some(vec![9, 9]),
        },
        10,
    )
    .await
    .unwrap();
    let head = lockstep_storage::ledger::Head {
        size: 1,
        frontier: vec![[7; 32]],
    };
    lockstep_storage::ledger::append(conn, org, b"{}", &[7; 32], &head, T0)
        .await
        .unwrap();
    lockstep_storage::ledger::insert_checkpoint(conn, org, 1, "note", "vkey", T0)
        .await
        .unwrap();
    let deletion = lockstep_storage::organization_deletions::PendingDeletion {
        organization_id: org,
        requested_by: user,
        requested_at: T0,
        due_at: T0,
    };
    lockstep_storage::organization_deletions::insert(conn, &deletion)
        .await
        .unwrap();
    assert!(matches!(
        lockstep_storage::organization_deletions::insert(conn, &deletion).await,
        Err(StoreError::Conflict("organization deletion"))
    ));
    user
}

/// One row in each connection table for the organization.
async fn fill_connection_tables(
    conn: &mut lockstep_storage::Connection,
    org: OrganizationId,
    user: lockstep_domain::UserId,
) {
    use lockstep_domain::{ConnectionId, UploadId};
    use lockstep_storage::connections::{
        self, PendingAuthorization, StoredConnection, StoredUpload,
    };
    let id = ConnectionId::from_uuid(Uuid::now_v7());
    connections::insert(
        conn,
        &StoredConnection {
            id,
            organization_id: org,
            name: "Warehouse".into(),
            name_ciphertext: Some(vec![9; 40]),
            kind: "postgres".into(),
            config_ciphertext: vec![1; 40],
            oauth_connected: false,
            oauth_expires_at: None,
            created_by: Some(user),
            created_at: T0,
            updated_at: T0,
        },
    )
    .await
    .unwrap();
    connections::put_secret(conn, org, id, "password", &[2; 40], T0)
        .await
        .unwrap();
    connections::put_metadata(conn, org, id, &[3; 40], T0)
        .await
        .unwrap();
    let upload = StoredUpload {
        id: UploadId::from_uuid(Uuid::now_v7()),
        name: "bom.csv".into(),
        size: 40,
        created_at: T0,
    };
    connections::put_upload(conn, org, id, &upload, &[4; 40])
        .await
        .unwrap();
    let mut state_hash = [5u8; 32];
    state_hash[..16].copy_from_slice(Uuid::now_v7().as_bytes());
    let pipeline = insert_pipeline(conn, org, id, user).await;
    fill_dataset_tables(conn, org, pipeline, user).await;
    fill_policy_tables(conn, org, user).await;
    fill_sso_tables(conn, org, user).await;
    fill_support_tables(conn, org, user).await;
    let run = insert_run(conn, org, pipeline, user, T0).await;
    lockstep_storage::pipelines::insert_run_error(
        conn,
        org,
        run,
        lockstep_storage::pipelines::NewRunError {
            id: &Uuid::now_v7().to_string(),
            position: 0,
            rule: "rules[0]",
            kind: "rule",
            ciphertext: &[9; 40],
        },
        T0,
    )
    .await
    .unwrap();
    connections::insert_authorization(
        conn,
        &PendingAuthorization {
            state_hash,
            organization_id: org,
            connection_id: id,
            user_id: user,
            verifier_ciphertext: vec![6; 40],
            binding_hash: [8; 32],
            expires_at: T0,
            created_at: T0,
        },
    )
    .await
    .unwrap();
}

async fn insert_pipeline(
    conn: &mut lockstep_storage::Connection,
    org: OrganizationId,
    connection: lockstep_domain::ConnectionId,
    user: lockstep_domain::UserId,
) -> lockstep_domain::PipelineId {
    let pipeline = lockstep_domain::PipelineId::from_uuid(Uuid::now_v7());
    lockstep_storage::pipelines::insert(
        conn,
        &lockstep_storage::pipelines::StoredPipeline {
            id: pipeline,
            organization_id: org,
            name: format!("import {pipeline}"),
            name_ciphertext: Some(vec![10; 40]),
            source_connection_id: connection,
            destination_connection_id: connection,
            mode: "append".into(),
            spec_ciphertext: vec![7; 40],
            schedule: Some("* * * * *".into()),
            next_run_at: Some(T0),
            cursor_ciphertext: Some(vec![8; 40]),
            created_by: Some(user),
            created_at: T0,
            updated_at: T0,
        },
    )
    .await
    .unwrap();
    pipeline
}

async fn insert_run(
    conn: &mut lockstep_storage::Connection,
    org: OrganizationId,
    pipeline: lockstep_domain::PipelineId,
    user: lockstep_domain::UserId,
    at: OffsetDateTime,
) -> lockstep_domain::RunId {
    let run = lockstep_domain::RunId::from_uuid(Uuid::now_v7());
    lockstep_storage::pipelines::insert_run(
        conn,
        &lockstep_storage::pipelines::StoredRun {
            id: run,
            organization_id: org,
            pipeline_id: pipeline,
            state: lockstep_storage::pipelines::RunState::Queued,
            trigger: "manual".into(),
            requested_by: Some(user),
            scheduled_for: None,
            records_read: 0,
            records_written: 0,
            records_rejected: 0,
            warnings: 0,
            records_skipped: 0,
            records_held_back: 0,
            warning_counts: Default::default(),
            message: None,
            cancel_requested: false,
            lease_owner: None,
            lease_expires_at: None,
            attempts: 0,
            created_at: at,
            started_at: None,
            finished_at: None,
            updated_at: at,
        },
    )
    .await
    .unwrap();
    run
}

on_both_stores!(recent_runs_are_the_organizations_own_newest_first);
async fn recent_runs_are_the_organizations_own_newest_first(t: TestStore) {
    use lockstep_storage::pipelines::recent_runs;
    let mut conn = t.store.read().await.unwrap();
    let (acme, globex) = (org(1, "Acme"), org(2, "Globex"));
    let mut pipelines = Vec::new();
    for o in [&acme, &globex] {
        organizations::insert(&mut conn, o).await.unwrap();
        let user = fill_identity_tables(&mut conn, o.id).await;
        fill_connection_tables(&mut conn, o.id, user).await;
        let connection = lockstep_storage::connections::list(&mut conn, o.id)
            .await
            .unwrap()[0]
            .id;
        pipelines.push((
            o.id,
            insert_pipeline(&mut conn, o.id, connection, user).await,
            user,
        ));
    }
    let minutes = |n: i64| T0 + time::Duration::minutes(n);
    let (a, a_pipeline, a_user) = pipelines[0];
    let (b, b_pipeline, b_user) = pipelines[1];
    let mut acme_runs = Vec::new();
    for n in 1..=3 {
        acme_runs.push(insert_run(&mut conn, a, a_pipeline, a_user, minutes(n)).await);
    }
    let newest_of_globex = insert_run(&mut conn, b, b_pipeline, b_user, minutes(9)).await;

    let ids = |runs: Vec<lockstep_storage::pipelines::StoredRun>| {
        runs.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    // since 1½ minutes after T0: the two newest of Acme's, newest first; never Globex's
    let got = recent_runs(&mut conn, a, minutes(1) + time::Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(ids(got), [acme_runs[2], acme_runs[1]]);
    let got = recent_runs(&mut conn, a, T0, 2).await.unwrap();
    assert_eq!(ids(got), [acme_runs[2], acme_runs[1]]);
    let got = recent_runs(&mut conn, b, T0, 10).await.unwrap();
    // Globex: the run made by fill_connection_tables at T0, and the newest one
    assert_eq!(ids(got)[0], newest_of_globex);
}

on_both_stores!(email_addresses_are_unique_per_organization);
async fn email_addresses_are_unique_per_organization(t: TestStore) {
    use lockstep_domain::{Role, UserId};
    use lockstep_storage::users;
    let mut conn = t.store.read().await.unwrap();
    let (acme, globex) = (org(1, "Acme"), org(2, "Globex"));
    let user = |o: &Organization, n: u128| users::StoredUser {
        id: UserId::from_uuid(Uuid::from_u128(n)),
        organization_id: o.id,
        email_index: vec![7; 32],
        email_ciphertext: vec![1],
        display_name_ciphertext: vec![2],
        role: Role::Editor,
        status: users::UserStatus::Active,
        password_hash: "$argon2id$x".into(),
        failed_logins: 0,
        locked_until: None,
        totp_secret_ciphertext: None,
        totp_enabled: false,
        totp_last_step: None,
        created_at: T0,
    };
    for o in [&acme, &globex] {
        organizations::insert(&mut conn, o).await.unwrap();
    }
    // The same address in two organizations: two accounts.
    users::insert(&mut conn, &user(&acme, 10)).await.unwrap();
    users::insert(&mut conn, &user(&globex, 20)).await.unwrap();
    // Twice in one organization: a conflict.
    let again = users::insert(&mut conn, &user(&acme, 11)).await;
    assert!(
        matches!(again, Err(StoreError::Conflict("user"))),
        "{again:?}"
    );

    let found = users::find_by_email_index(&mut conn, &[7; 32], 10)
        .await
        .unwrap();
    let orgs: Vec<_> = found.iter().map(|u| u.organization_id).collect();
    assert_eq!(orgs, vec![acme.id, globex.id]);
    let bounded = users::find_by_email_index(&mut conn, &[7; 32], 1)
        .await
        .unwrap();
    assert_eq!(bounded.len(), 1);
    let in_globex = users::find_in_organization_by_email_index(&mut conn, globex.id, &[7; 32])
        .await
        .unwrap();
    assert_eq!(in_globex.map(|u| u.id), Some(user(&globex, 20).id));
    assert_eq!(
        users::find_in_organization_by_email_index(&mut conn, acme.id, &[8; 32])
            .await
            .unwrap(),
        None
    );
}

on_both_stores!(an_invitation_keeps_what_became_of_its_mail);
async fn an_invitation_keeps_what_became_of_its_mail(t: TestStore) {
    let mut conn = t.store.read().await.unwrap();
    let acme = org(1, "Acme");
    organizations::insert(&mut conn, &acme).await.unwrap();
    let inv = invitations::NewInvitation {
        id: InvitationId::from_uuid(Uuid::now_v7()),
        organization_id: acme.id,
        token_hash: [3; 32],
        email_ciphertext: vec![1, 2, 3],
        role: "editor".into(),
        invited_by: None,
        expires_at: T0,
        created_at: T0,
    };
    invitations::insert(&mut conn, &inv).await.unwrap();
    async fn mail(
        conn: &mut lockstep_storage::Connection,
        org: OrganizationId,
        id: InvitationId,
    ) -> Option<invitations::MailStatus> {
        let pending = invitations::get_pending(conn, org, id).await.unwrap();
        pending.unwrap().mail
    }
    assert_eq!(mail(&mut conn, acme.id, inv.id).await, None);
    for status in [
        invitations::MailStatus::Failed,
        invitations::MailStatus::Sent,
    ] {
        assert!(
            invitations::set_mail_status(&mut conn, acme.id, inv.id, Some(status))
                .await
                .unwrap()
        );
        assert_eq!(mail(&mut conn, acme.id, inv.id).await, Some(status));
    }
    // Another organization's invitation is not touched.
    assert!(
        !invitations::set_mail_status(&mut conn, org(2, "Globex").id, inv.id, None)
            .await
            .unwrap()
    );
}

/// A data set with a share, a chunk and an edit.
async fn fill_dataset_tables(
    conn: &mut lockstep_storage::Connection,
    org: OrganizationId,
    pipeline: lockstep_domain::PipelineId,
    user: lockstep_domain::UserId,
) {
    use lockstep_storage::datasets::{self, ChunkIndex, ChunkKind, StoredChunk, StoredDataset};
    let id = lockstep_domain::DatasetId::from_uuid(Uuid::now_v7());
    datasets::insert(
        conn,
        &StoredDataset {
            id,
            organization_id: org,
            pipeline_id: pipeline,
            owner_id: user,
            key_ciphertext: vec![1; 40],
            name_ciphertext: vec![2; 40],
            filter_ciphertext: None,
            schema_ciphertext: Some(vec![3; 40]),
            state: "ready".into(),
            message: None,
            counts: "{}".into(),
            lease_owner: None,
            lease_expires_at: None,
            created_at: T0,
            touched_at: T0,
            updated_at: T0,
        },
    )
    .await
    .unwrap();
    assert!(datasets::add_share(conn, org, id, user, T0).await.unwrap());
    datasets::put_chunk(
        conn,
        org,
        id,
        ChunkKind::Records,
        &StoredChunk {
            index: ChunkIndex {
                chunk: 0,
                first_row: 0,
                row_count: 1,
                flags: vec![0],
            },
            payload: vec![4; 40],
        },
    )
    .await
    .unwrap();
    datasets::put_edit(conn, org, id, &[5; 16], &[6; 40], T0)
        .await
        .unwrap();
    datasets::put_file(
        conn,
        org,
        id,
        &datasets::StoredFile {
            kind: datasets::FileKind::Part,
            file_key: vec![7; 16],
            part_key: vec![8; 16],
            size: 3,
            header: vec![10; 40],
            payload: vec![9; 40],
            created_at: T0,
        },
    )
    .await
    .unwrap();
}

/// A team with a member, and a policy layer.
async fn fill_policy_tables(
    conn: &mut lockstep_storage::Connection,
    org: OrganizationId,
    user: lockstep_domain::UserId,
) {
    use lockstep_storage::teams::{self, StoredPolicy, StoredTeam};
    let team = StoredTeam {
        id: lockstep_domain::TeamId::from_uuid(Uuid::now_v7()),
        organization_id: org,
        name: format!("hmac1:{}", Uuid::now_v7().simple()),
        name_ciphertext: vec![7; 40],
        created_at: T0,
        updated_at: T0,
    };
    teams::insert(conn, &team).await.unwrap();
    assert!(
        teams::add_member(conn, org, team.id, user, T0)
            .await
            .unwrap()
    );
    teams::put_policy(
        conn,
        org,
        "redaction",
        &StoredPolicy {
            enabled: true,
            document: vec![8; 40],
            updated_at: T0,
        },
    )
    .await
    .unwrap();
}

/// Single sign-on: a configuration, a domain, a waiting sign-in and a used assertion id.
async fn fill_sso_tables(
    conn: &mut lockstep_storage::Connection,
    org: OrganizationId,
    user: lockstep_domain::UserId,
) {
    use lockstep_domain::Role;
    use lockstep_storage::sso::{self, PendingSignIn, SsoKind, StoredSsoConfig};
    let config = StoredSsoConfig {
        organization_id: org,
        kind: SsoKind::Saml,
        enabled: true,
        sso_only: true,
        jit_enabled: false,
        jit_role: Role::Viewer,
        break_glass_user_id: Some(user),
        settings: vec![3; 40],
        client_secret: Some(vec![4; 40]),
        last_test_at: Some(T0),
        last_test_result: Some("ok".into()),
        created_at: T0,
        updated_at: T0,
    };
    sso::put(conn, &config).await.unwrap();
    let domain = Uuid::now_v7().as_bytes().to_vec();
    sso::set_domains(conn, org, &[domain]).await.unwrap();
    let lookup = *Uuid::now_v7()
        .as_bytes()
        .repeat(2)
        .first_chunk::<32>()
        .unwrap();
    sso::insert_request(
        conn,
        &PendingSignIn {
            lookup_hash: lookup,
            organization_id: org,
            kind: SsoKind::Saml,
            binding_hash: [1; 32],
            pending: vec![5; 40],
            tested_by: Some(user),
            created_at: T0,
            expires_at: T0,
        },
    )
    .await
    .unwrap();
    assert!(
        sso::remember_assertion(conn, org, &lookup, T0)
            .await
            .unwrap()
    );
    assert!(
        !sso::remember_assertion(conn, org, &lookup, T0)
            .await
            .unwrap()
    );
}

/// Support access: a support account (the hub's, in no organization), a grant of this
/// organization and a support session that entered it.
async fn fill_support_tables(
    conn: &mut lockstep_storage::Connection,
    org: OrganizationId,
    user: lockstep_domain::UserId,
) {
    use lockstep_domain::Role;
    use lockstep_storage::support::{self, StoredGrant, StoredSupportSession, StoredSupportUser};
    let support_user = StoredSupportUser {
        id: Uuid::now_v7(),
        email_index: Uuid::now_v7().as_bytes().to_vec(),
        email_ciphertext: vec![1; 30],
        password_hash: None,
        totp_secret_ciphertext: None,
        totp_last_step: None,
        active: false,
        setup_token_hash: Some(Uuid::now_v7().as_bytes().to_vec()),
        setup_expires_at: Some(T0),
        failed_logins: 0,
        locked_until: None,
        created_at: T0,
    };
    support::insert_user(conn, &support_user).await.unwrap();
    let grant = StoredGrant {
        id: Uuid::now_v7(),
        organization_id: org,
        support_user_id: support_user.id,
        role: Role::Viewer,
        reason_ciphertext: vec![2; 30],
        email_ciphertext: vec![3; 30],
        granted_by: Some(user),
        created_at: T0,
        expires_at: T0 + time::Duration::hours(1),
        revoked_at: None,
        revoked_by: None,
    };
    support::insert_grant(conn, &grant).await.unwrap();
    assert!(grant.is_active(T0));
    assert_eq!(
        support::active_grants(conn, org, T0).await.unwrap(),
        std::slice::from_ref(&grant)
    );
    let token_hash = *Uuid::now_v7()
        .as_bytes()
        .repeat(2)
        .first_chunk::<32>()
        .unwrap();
    let session = StoredSupportSession {
        id: Uuid::now_v7(),
        support_user_id: support_user.id,
        token_hash,
        csrf_hash: [7; 32],
        organization_id: None,
        grant_id: None,
        created_at: T0,
        last_seen_at: T0,
    };
    support::insert_session(conn, &session).await.unwrap();
    support::enter(conn, session.id, org, grant.id)
        .await
        .unwrap();
    let found = support::find_session_by_token_hash(conn, &token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.organization_id, Some(org));
    assert_eq!(found.grant_id, Some(grant.id));
}
