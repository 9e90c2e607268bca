//! The customer stays in control: what is stored about the organization (its footprint), its
//! configuration exported without a secret, and run history deleted by hand.

use crate::schedule::{Fixture, acme_with_a_pipeline};
use lockstep_app::{
    AppError, Caller, Hub, KIND_TABLES, NewConnection, Password, Retention, RunState, StoredKind,
    TokenExpiry,
};
use lockstep_domain::{DatasetId, PipelineId, Role, RunId, TokenScope};
use lockstep_storage::datasets::{self, ChunkIndex, ChunkKind, StoredChunk, StoredDataset};
use lockstep_storage::pipelines::{self, Counts, NewRunError};
use lockstep_storage::testing::TestStore;
use lockstep_storage::{Store, footprint};
use serde_json::json;
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

const PASSWORD: &str = "correct horse battery staple";

fn start() -> OffsetDateTime {
    // 2026-11-28 10:00:00 UTC.
    OffsetDateTime::from_unix_timestamp(1_795_860_000).unwrap()
}

/// A member of the caller's organization with `role`, signed in.
async fn member(hub: &Hub, admin: &Caller, email: &str, name: &str, role: Role) -> Caller {
    let invited = hub.invite_user(admin, email, role).await.unwrap();
    let pw = Password::new(PASSWORD.to_owned());
    hub.accept_invitation(invited.token.expose(), &pw, name)
        .await
        .unwrap();
    let session = hub.login(email, &pw, None).await.unwrap();
    hub.authenticate(session.session_token.expose())
        .await
        .unwrap()
}

/// Queues a run of `pipeline`, lets a worker take it now, stores `errors` rejected records and
/// ends it as `state` (or leaves it running when `state` is `Running`).
async fn run_with_errors(
    f: &Fixture,
    store: &Store,
    pipeline: PipelineId,
    errors: u64,
    state: RunState,
) -> RunId {
    use lockstep_app::Clock;
    let run = f.hub.start_run(&f.admin, pipeline).await.unwrap();
    let now = f.clock.now();
    let mut tx = store.write().await.unwrap();
    let leased = pipelines::lease_next_run(
        &mut tx,
        store.backend(),
        "test",
        now,
        now + Duration::minutes(5),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(leased.id, run.id);
    for position in 0..errors {
        let id = uuid::Uuid::now_v7().to_string();
        pipelines::insert_run_error(
            &mut tx,
            f.admin.organization(),
            run.id,
            NewRunError {
                id: &id,
                position,
                rule: "rules[0]",
                kind: "rule",
                ciphertext: b"sealed",
            },
            now,
        )
        .await
        .unwrap();
    }
    if state != RunState::Running {
        pipelines::finish_run(
            &mut tx,
            run.id,
            Some("test"),
            state,
            &Counts::default(),
            None,
            now,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    run.id
}

/// The rows of each table holding rows of the organization, counted straight from the schema.
async fn table_rows(store: &Store, org: lockstep_domain::OrganizationId) -> BTreeMap<String, u64> {
    let mut conn = store.read().await.unwrap();
    footprint::organization_footprint(&mut conn, store.backend(), org)
        .await
        .unwrap()
        .into_iter()
        .map(|(table, n)| (table, u64::try_from(n).unwrap()))
        .collect()
}

async fn errors_of(store: &Store, f: &Fixture) -> u64 {
    table_rows(store, f.admin.organization())
        .await
        .get("run_errors")
        .copied()
        .unwrap_or(0)
}

fn kind<'a>(stored: &'a [StoredKind], name: &str) -> &'a StoredKind {
    stored
        .iter()
        .find(|k| k.kind == name)
        .unwrap_or_else(|| panic!("no kind {name}"))
}

lockstep_storage::on_both_stores!(the_footprint_counts_what_the_store_holds);
async fn the_footprint_counts_what_the_store_holds(t: TestStore) {
    let t0 = start();
    let f = acme_with_a_pipeline(&t, t0, None).await;
    let (hub, clock, admin) = (&f.hub, &f.clock, &f.admin);
    let org = admin.organization();

    clock.advance(Duration::hours(1));
    let eve = member(hub, admin, "eve@acme.io", "Eve", Role::Editor).await;
    hub.invite_user(admin, "vic@acme.io", Role::Viewer)
        .await
        .unwrap();

    clock.advance(Duration::hours(1));
    let ci = hub
        .create_api_token(admin, "ci", TokenScope::Read, TokenExpiry::Days(30))
        .await
        .unwrap();
    hub.create_api_token(&eve, "eve's", TokenScope::Run, TokenExpiry::Days(30))
        .await
        .unwrap();

    clock.advance(Duration::hours(1));
    hub.create_connection(
        admin,
        NewConnection {
            name: "vault".into(),
            kind: "postgres".into(),
            config: json!({"host": "127.0.0.1", "database": "x", "user": "x"}),
            secrets: [(
                "password".to_owned(),
                lockstep_app::connectors::Secret::new("canary-footprint".to_owned()),
            )]
            .into_iter()
            .collect(),
        },
    )
    .await
    .unwrap();

    clock.advance(Duration::hours(1));
    run_with_errors(&f, &t.store, f.pipeline.id, 2, RunState::Succeeded).await;
    clock.advance(Duration::hours(1));
    run_with_errors(&f, &t.store, f.pipeline.id, 1, RunState::Failed).await;

    // A data set with 7 records (and 3 of the destination's, which are not its records).
    let dataset = DatasetId::from_uuid(uuid::Uuid::now_v7());
    {
        let at = t0 + Duration::hours(5);
        let mut tx = t.store.write().await.unwrap();
        datasets::insert(
            &mut tx,
            &StoredDataset {
                id: dataset,
                organization_id: org,
                pipeline_id: f.pipeline.id,
                owner_id: admin.user(),
                key_ciphertext: b"sealed".to_vec(),
                name_ciphertext: b"sealed".to_vec(),
                filter_ciphertext: None,
                schema_ciphertext: None,
                state: "ready".to_owned(),
                message: None,
                counts: "{}".to_owned(),
                lease_owner: None,
                lease_expires_at: None,
                created_at: at,
                touched_at: at,
                updated_at: at,
            },
        )
        .await
        .unwrap();
        for (kind, rows) in [(ChunkKind::Records, 7), (ChunkKind::Destination, 3)] {
            datasets::put_chunk(
                &mut tx,
                org,
                dataset,
                kind,
                &StoredChunk {
                    index: ChunkIndex {
                        chunk: 0,
                        first_row: 0,
                        row_count: rows,
                        flags: vec![0; usize::try_from(rows).unwrap()],
                    },
                    payload: b"sealed".to_vec(),
                },
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    // The token is used once.
    clock.advance(Duration::hours(1));
    let used_at = t0 + Duration::hours(6);
    hub.authenticate(ci.token.expose()).await.unwrap();

    let rows = table_rows(&t.store, org).await;
    let fp = hub.organization_footprint(admin).await.unwrap();
    let s = &fp.stored;
    let check = |name: &str, count: u64, oldest: Option<OffsetDateTime>| {
        let k = kind(s, name);
        assert_eq!((k.count, k.oldest), (count, oldest), "{name}");
    };
    check("users", rows["users"], Some(t0));
    assert_eq!(rows["users"], 2);
    check("sessions", rows["sessions"], Some(t0));
    check("api_tokens", 2, Some(t0 + Duration::hours(2)));
    check("pending_invitations", 1, Some(t0 + Duration::hours(1)));
    check("accepted_invitations", 2, Some(t0));
    assert_eq!(rows["invitations"], 3);
    check("connections", 3, Some(t0));
    check("connection_secrets", 1, Some(t0 + Duration::hours(3)));
    check("uploaded_files", rows["connection_uploads"], Some(t0));
    check("pipelines", 1, Some(t0));
    check("runs", 2, Some(t0 + Duration::hours(4)));
    check("run_errors", 3, Some(t0 + Duration::hours(4)));
    assert_eq!(rows["run_errors"], 3);
    check("datasets", 1, Some(t0 + Duration::hours(5)));
    check("dataset_records", 7, Some(t0 + Duration::hours(5)));
    check("audit_events", rows["audit_events"], Some(t0));
    check("ledger_entries", rows["ledger_entries"], Some(t0));
    check("organization_keys", 1, Some(t0));
    check("teams", 0, None);
    // Retention rules, as the code applies them.
    assert_eq!(
        kind(s, "run_errors").retention,
        Retention::AfterDays { days: 7 }
    );
    assert_eq!(
        kind(s, "datasets").retention,
        Retention::WhenUntouched { days: 5 }
    );
    assert_eq!(
        kind(s, "audit_events").retention,
        Retention::NewestPerObject { depth: 10 }
    );
    assert_eq!(kind(s, "ledger_entries").retention, Retention::KeptForGood);
    assert_eq!(kind(s, "pipelines").retention, Retention::UntilDeleted);

    // Every table holding the organization's rows is some kind's.
    let mut conn = t.store.read().await.unwrap();
    let tables = footprint::organization_tables(&mut conn, t.store.backend())
        .await
        .unwrap();
    drop(conn);
    for table in tables {
        assert!(
            KIND_TABLES
                .iter()
                .any(|(_, ts)| ts.contains(&table.as_str())),
            "the table {table} is in no kind of the footprint: name it in KIND_TABLES"
        );
    }

    // Encryption: one key version, everything made with it.
    assert_eq!(fp.encryption.current_version, 1);
    assert_eq!(fp.encryption.keys.len(), 1);
    assert_eq!(fp.encryption.keys[0].created_at, t0);
    let by_version = |fp: &lockstep_app::Footprint, name: &str| {
        fp.encryption
            .ciphertexts
            .iter()
            .find(|c| c.kind == name)
            .unwrap()
            .by_version
            .clone()
    };
    assert_eq!(by_version(&fp, "connections"), BTreeMap::from([(1, 3)]));
    assert_eq!(by_version(&fp, "users"), BTreeMap::from([(1, 2)]));

    // Access: Administrators by name, tokens by owner with their last use.
    let admins = &fp.access.members_by_role[0];
    assert_eq!((admins.role, admins.active), (Role::Administrator, 1));
    assert_eq!(
        admins
            .names
            .as_ref()
            .unwrap()
            .iter()
            .map(|(_, n)| n.as_str())
            .collect::<Vec<_>>(),
        ["Ada"]
    );
    let editors = &fp.access.members_by_role[1];
    assert_eq!(
        (editors.role, editors.active, editors.names.is_none()),
        (Role::Editor, 1, true)
    );
    assert_eq!(fp.access.members_by_role[2].active, 0);
    let owners: Vec<&str> = fp
        .access
        .api_tokens
        .iter()
        .map(|o| o.display_name.as_str())
        .collect();
    assert_eq!(owners, ["Ada", "Eve"]);
    assert_eq!(
        fp.access.api_tokens[0].tokens[0].last_used_at,
        Some(used_at)
    );
    assert_eq!(fp.access.api_tokens[1].tokens[0].last_used_at, None);

    // After a key rotation new data uses the new version, older data keeps the old one.
    hub.rotate_organization_key(admin).await.unwrap();
    hub.create_connection(
        admin,
        NewConnection {
            name: "later".into(),
            kind: "files".into(),
            config: json!({}),
            secrets: Default::default(),
        },
    )
    .await
    .unwrap();
    let fp = hub.organization_footprint(admin).await.unwrap();
    assert_eq!(fp.encryption.current_version, 2);
    assert_eq!(
        by_version(&fp, "connections"),
        BTreeMap::from([(1, 3), (2, 1)])
    );

    // Only Administrators read it.
    assert!(matches!(
        hub.organization_footprint(&eve).await,
        Err(AppError::Forbidden { .. })
    ));
}

lockstep_storage::on_both_stores!(run_history_is_deleted_by_hand_up_to_a_time);
async fn run_history_is_deleted_by_hand_up_to_a_time(t: TestStore) {
    let t0 = start();
    let f = acme_with_a_pipeline(&t, t0, None).await;
    let (hub, clock, admin) = (&f.hub, &f.clock, &f.admin);
    let pipeline = f.pipeline.id;
    let eve = member(hub, admin, "eve@acme.io", "Eve", Role::Editor).await;

    let old = run_with_errors(&f, &t.store, pipeline, 2, RunState::Succeeded).await;
    clock.advance(Duration::days(1));
    let newer = run_with_errors(&f, &t.store, pipeline, 3, RunState::Failed).await;
    clock.advance(Duration::days(1));
    let running = run_with_errors(&f, &t.store, pipeline, 1, RunState::Running).await;
    assert_eq!(errors_of(&t.store, &f).await, 6);
    let cut = "2026-11-28T22:00:00Z"; // t0 + 12 h

    // Editors may not; another organization's pipeline is not found; a bad time is refused.
    assert!(matches!(
        hub.delete_pipeline_run_history(&eve, pipeline, Some(cut))
            .await,
        Err(AppError::Forbidden { .. })
    ));
    assert!(matches!(
        hub.delete_organization_run_history(&eve, None).await,
        Err(AppError::Forbidden { .. })
    ));
    let op = hub
        .authenticate_operator(&f.creds.operator_token)
        .await
        .unwrap();
    let globex = hub
        .create_organization(&op, "Globex", "gus@globex.io")
        .await
        .unwrap();
    let pw = Password::new(PASSWORD.to_owned());
    hub.accept_invitation(globex.invitation_token.expose(), &pw, "Gus")
        .await
        .unwrap();
    let session = hub.login("gus@globex.io", &pw, None).await.unwrap();
    let gus = hub
        .authenticate(session.session_token.expose())
        .await
        .unwrap();
    assert!(matches!(
        hub.delete_pipeline_run_history(&gus, pipeline, Some(cut))
            .await,
        Err(AppError::NotFound(_))
    ));
    assert!(matches!(
        hub.delete_pipeline_run_history(admin, pipeline, Some("yesterday"))
            .await,
        Err(AppError::Invalid {
            field: "before",
            ..
        })
    ));
    assert_eq!(
        hub.delete_organization_run_history(&gus, None)
            .await
            .unwrap()
            .runs_deleted,
        0
    );
    assert_eq!(errors_of(&t.store, &f).await, 6, "nothing was deleted yet");

    // Before the cut-off: the old run and its errors go; the later and the running one stay.
    let deleted = hub
        .delete_pipeline_run_history(admin, pipeline, Some(cut))
        .await
        .unwrap();
    assert_eq!((deleted.runs_deleted, deleted.errors_deleted), (1, 2));
    let left: Vec<RunId> = hub
        .list_runs(admin, pipeline, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [running, newer]);
    assert!(!left.contains(&old));
    assert_eq!(errors_of(&t.store, &f).await, 4);

    // Without a cut-off: every finished run; the running one is never touched.
    let deleted = hub
        .delete_pipeline_run_history(admin, pipeline, None)
        .await
        .unwrap();
    assert_eq!((deleted.runs_deleted, deleted.errors_deleted), (1, 3));
    let left = hub.list_runs(admin, pipeline, 100).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].id, left[0].state), (running, RunState::Running));
    assert_eq!(errors_of(&t.store, &f).await, 1);

    // Audited with the counts and the cut-off.
    let events = hub
        .object_events(admin, "pipeline", &pipeline.to_string())
        .await
        .unwrap();
    let deletions: Vec<_> = events
        .iter()
        .filter(|e| e.action == "pipeline.runs_deleted")
        .collect();
    assert_eq!(deletions.len(), 2);
    let first = deletions.last().unwrap();
    assert_eq!(
        first.changes["runs_deleted"],
        lockstep_app::FieldChange::value(None::<u64>, Some(1))
    );
    assert_eq!(
        first.changes["before"],
        lockstep_app::FieldChange::value(None::<String>, Some("2026-11-28T22:00:00Z"))
    );

    // The organization-wide form, once the run has ended.
    {
        use lockstep_app::Clock;
        let mut tx = t.store.write().await.unwrap();
        pipelines::finish_run(
            &mut tx,
            running,
            None,
            RunState::Succeeded,
            &Counts::default(),
            None,
            clock.now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let deleted = hub
        .delete_organization_run_history(admin, Some("2999-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!((deleted.runs_deleted, deleted.errors_deleted), (1, 1));
    assert!(
        hub.list_runs(admin, pipeline, 100)
            .await
            .unwrap()
            .is_empty()
    );
}
