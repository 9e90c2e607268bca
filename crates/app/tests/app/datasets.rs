//! Data sets against a real PostgreSQL source and destination: pulled, compared, edited, ticked
//! and submitted; visible to their owner, sharees and Administrators only; sealed under a key of
//! their own that goes with them; deleted when stale.

use lockstep_app::{
    AppError, Caller, DatasetState, DatasetView, Hub, IssueFilter, ManualClock, NewConnection,
    Password, ProcessSelection, RecordQuery, RecordStatus, SettingsUpdate,
};
use lockstep_domain::Role;
use lockstep_storage::Backend;
use lockstep_storage::testing::TestStore;
use serde_json::json;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const PASSWORD: &str = "correct horse battery staple";
const CANARY: &str = "CANARY-7f3a9c";

fn pw() -> Password {
    Password::new(PASSWORD.to_owned())
}

async fn pg() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &lockstep_storage::testing::postgres_admin_url(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    )
}

struct World {
    hub: Arc<Hub>,
    clock: Arc<ManualClock>,
    admin: Caller,
    editor: Caller,
    other_editor: Caller,
    viewer: Caller,
    pipeline: lockstep_app::PipelineView,
    source: String,
    destination: String,
}

async fn member(hub: &Hub, admin: &Caller, email: &str, role: Role) -> Caller {
    let inv = hub.invite_user(admin, email, role).await.unwrap();
    hub.accept_invitation(inv.token.expose(), &pw(), "M")
        .await
        .unwrap();
    let done = hub.login(email, &pw(), None).await.unwrap();
    hub.authenticate(done.session_token.expose()).await.unwrap()
}

/// Source: six parts (one unchanged, one changed, four new: one with a negative price, one with
/// a long name, one named by the canary). Destination: the first two and a part only it has.
async fn world(t: &TestStore) -> World {
    let start = OffsetDateTime::from_unix_timestamp(1_795_860_000).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let (hub, creds) = Hub::initialize(t.store.clone(), clock.clone(), 1, 1)
        .await
        .unwrap();
    let connectors = lockstep_app::connectors::Context::new(
        lockstep_app::connectors::EgressPolicy::parse("loopback,private").unwrap(),
        None,
    );
    let hub = Arc::new(hub.with_options(lockstep_app::HubOptions {
        password_permits: 2,
        connectors,
        ..lockstep_app::HubOptions::default()
    }));
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let org = hub
        .create_organization(&op, "Acme", "ada@acme.io")
        .await
        .unwrap();
    hub.accept_invitation(org.invitation_token.expose(), &pw(), "Ada")
        .await
        .unwrap();
    let done = hub.login("ada@acme.io", &pw(), None).await.unwrap();
    let admin = hub.authenticate(done.session_token.expose()).await.unwrap();
    let editor = member(&hub, &admin, "ed@acme.io", Role::Editor).await;
    let other_editor = member(&hub, &admin, "eve@acme.io", Role::Editor).await;
    let viewer = member(&hub, &admin, "vi@acme.io", Role::Viewer).await;

    let source = unique("ds_src");
    let destination = unique("ds_dst");
    let client = pg().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {source} (id integer PRIMARY KEY, name text, price numeric(10,2));
             INSERT INTO {source} VALUES (1, 'bolt', 1.50), (2, 'nut v2', 0.20), (3, 'washer', 0.05),
               (4, 'gear', -3.00), (5, 'a very long part name', 2.00), (6, '{CANARY}', 9.99);
             CREATE TABLE {destination} (id integer PRIMARY KEY, name text, price numeric(10,2));
             INSERT INTO {destination} VALUES (1, 'bolt', 1.5), (2, 'nut', 0.20), (9, 'legacy', 7.00);"
        ))
        .await
        .unwrap();
    let url: tokio_postgres::Config = lockstep_storage::testing::postgres_admin_url()
        .parse()
        .unwrap();
    let host = match &url.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".to_owned(),
    };
    let config = json!({
        "host": host,
        "port": url.get_ports().first().copied().unwrap_or(5432),
        "database": url.get_dbname().unwrap_or("postgres"),
        "user": url.get_user().unwrap_or("postgres"),
        "tls": "disable",
    });
    let warehouse = hub
        .create_connection(
            &admin,
            NewConnection {
                name: "warehouse".into(),
                kind: "postgres".into(),
                config,
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    hub.discover_connection(&admin, warehouse.id).await.unwrap();
    let c = warehouse.id.to_string();
    let pipeline = hub
        .create_pipeline(
            &admin,
            "parts",
            json!({
                "source": {"connection_id": c, "object": format!("public.{source}")},
                "destination": {"connection_id": c, "object": format!("public.{destination}")},
                "mode": "upsert",
                "key": ["id"],
                "rules": [
                    {"kind": "validation", "expression": "price >= 0.0",
                     "message": "price must not be negative"},
                    {"kind": "validation", "expression": "size(name) <= 15", "level": "warning",
                     "message": "name is long"}
                ]
            }),
        )
        .await
        .unwrap();
    World {
        hub,
        clock,
        admin,
        editor,
        other_editor,
        viewer,
        pipeline,
        source,
        destination,
    }
}

/// Waits until the data set is neither pulling nor submitting.
async fn settled(w: &World, who: &Caller, id: lockstep_domain::DatasetId) -> DatasetView {
    for _ in 0..300 {
        let view = w.hub.get_dataset(who, id).await.unwrap();
        if !view.state.is_busy() {
            return view;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the data set stayed busy");
}

async fn rows_by_id(w: &World, who: &Caller, id: lockstep_domain::DatasetId) -> Vec<(i64, u64)> {
    let page = w
        .hub
        .dataset_records(
            who,
            id,
            RecordQuery {
                limit: 100,
                ..RecordQuery::default()
            },
        )
        .await
        .unwrap();
    page.records
        .iter()
        .map(|r| (r.values["id"].as_i64().unwrap(), r.row))
        .collect()
}

fn row_of(rows: &[(i64, u64)], id: i64) -> u64 {
    rows.iter().find(|(i, _)| *i == id).unwrap().1
}

/// Every byte the store holds, as text (SQLite: the files; PostgreSQL: every row of every table).
pub(super) async fn store_contents(t: &TestStore) -> String {
    match t.store.backend() {
        Backend::Sqlite => {
            let path = t.url.trim_start_matches("sqlite://");
            let path = path.split('?').next().unwrap();
            let mut all = Vec::new();
            for suffix in ["", "-wal", "-shm", "-journal"] {
                if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                    all.extend(bytes);
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        Backend::Postgres => {
            let (client, connection) = tokio_postgres::connect(&t.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let tables = client
                .query(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema()",
                    &[],
                )
                .await
                .unwrap();
            let mut all = String::new();
            for t in tables {
                let name: String = t.get(0);
                for row in client
                    .query(&format!("SELECT x::text FROM \"{name}\" x"), &[])
                    .await
                    .unwrap()
                {
                    let text: String = row.get(0);
                    all.push_str(&text);
                    all.push('\n');
                }
            }
            all
        }
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

lockstep_storage::on_both_stores!(a_data_set_is_pulled_compared_fixed_ticked_and_submitted);
async fn a_data_set_is_pulled_compared_fixed_ticked_and_submitted(t: TestStore) {
    let w = world(&t).await;
    let hub = &w.hub;
    let pulled = hub
        .pull_dataset(&w.editor, w.pipeline.id, Some("March parts"), None)
        .await
        .unwrap();
    assert_eq!(pulled.state, DatasetState::Pulling);
    assert_eq!(pulled.owner, w.editor.user());
    let ds = settled(&w, &w.editor, pulled.id).await;
    assert_eq!(ds.state, DatasetState::Ready, "{:?}", ds.message);
    assert_eq!(ds.name, "March parts");
    assert_eq!(ds.fields, ["id", "name", "price"]);
    assert_eq!(ds.key, ["id"]);
    let c = &ds.counts;
    assert_eq!(
        (
            c.records,
            c.create,
            c.update,
            c.unchanged,
            c.destination_only
        ),
        (7, 4, 1, 1, 1),
        "{c:?}"
    );
    assert_eq!((c.errors, c.warnings, c.read), (1, 1, 6));
    assert_eq!(c.ticked, 5, "create and update are ticked by default");
    assert_eq!(c.ticked_with_errors, 1);

    // The update shows what differs, the destination's value beside the new one.
    let updates = hub
        .dataset_records(
            &w.editor,
            ds.id,
            RecordQuery {
                status: Some(RecordStatus::Update),
                ..RecordQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updates.total, 1);
    let update = &updates.records[0];
    assert_eq!(update.key["id"], json!(2));
    assert_eq!(update.changes.len(), 1, "{:?}", update.changes);
    assert_eq!(update.changes[0].field, "name");
    assert_eq!(update.changes[0].destination, json!("nut"));
    assert_eq!(update.changes[0].value, json!("nut v2"));
    assert!(update.process);

    // Issues per field, filterable.
    let errors = hub
        .dataset_records(
            &w.editor,
            ds.id,
            RecordQuery {
                issues: Some(IssueFilter::Errors),
                ..RecordQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(errors.total, 1);
    let bad = &errors.records[0];
    assert_eq!(bad.values["id"], json!(4));
    assert_eq!(bad.issues.len(), 1);
    assert_eq!(bad.issues[0].field, "price");
    assert_eq!(bad.issues[0].message, "price must not be negative");
    let warned = hub
        .dataset_records(
            &w.editor,
            ds.id,
            RecordQuery {
                issues: Some(IssueFilter::Warnings),
                ..RecordQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(warned.records[0].issues[0].field, "name");
    let only = hub
        .dataset_records(
            &w.editor,
            ds.id,
            RecordQuery {
                status: Some(RecordStatus::DestinationOnly),
                ..RecordQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(only.records[0].values["id"], json!(9));
    assert!(!only.records[0].process);

    // A submit is refused while a ticked record has an error, naming it; nothing is written.
    match hub.submit_dataset(&w.editor, ds.id).await {
        Err(AppError::Blocked { rows, .. }) => {
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].row, bad.row);
            assert_eq!(rows[0].issues, ["price: price must not be negative"]);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Bad edits change nothing.
    let unknown = hub
        .update_dataset_record(
            &w.editor,
            ds.id,
            bad.row,
            json!({"nope": 1}).as_object().unwrap().clone(),
        )
        .await;
    assert!(
        matches!(&unknown, Err(AppError::InvalidConfig { field, .. }) if field == "values.nope"),
        "{unknown:?}"
    );
    let wrong = hub
        .update_dataset_record(
            &w.editor,
            ds.id,
            bad.row,
            json!({"price": "cheap"}).as_object().unwrap().clone(),
        )
        .await;
    assert!(
        matches!(&wrong, Err(AppError::InvalidConfig { field, .. }) if field == "values.price"),
        "{wrong:?}"
    );
    // A viewer (even the owner's sharee) never edits.
    hub.share_dataset(&w.editor, ds.id, w.viewer.user())
        .await
        .unwrap();
    assert!(matches!(
        hub.update_dataset_record(
            &w.viewer,
            ds.id,
            bad.row,
            json!({"price": 1}).as_object().unwrap().clone()
        )
        .await,
        Err(AppError::OwnerOnly)
    ));

    // The fix: the rules run again and the error is gone.
    let fixed = hub
        .update_dataset_record(
            &w.editor,
            ds.id,
            bad.row,
            json!({"price": "3.00"}).as_object().unwrap().clone(),
        )
        .await
        .unwrap();
    assert!(fixed.issues.is_empty(), "{:?}", fixed.issues);
    assert_eq!(fixed.values["price"], json!("3.00"));
    assert_eq!(fixed.status, RecordStatus::Create);

    // Pulled again, the edit is kept: its key still exists.
    let refreshing = hub.refresh_dataset(&w.editor, ds.id).await.unwrap();
    assert_eq!(refreshing.state, DatasetState::Pulling);
    let refreshed = settled(&w, &w.editor, ds.id).await;
    assert_eq!(
        refreshed.state,
        DatasetState::Ready,
        "{:?}",
        refreshed.message
    );
    assert_eq!(refreshed.counts.records, 7);
    assert_eq!(refreshed.counts.errors, 0, "the edit fixed the only error");
    let rows = rows_by_id(&w, &w.editor, ds.id).await;
    let again = hub
        .dataset_records(
            &w.editor,
            ds.id,
            RecordQuery {
                offset: row_of(&rows, 4),
                limit: 1,
                ..RecordQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(again.records[0].values["price"], json!("3.00"));

    // Untick the long name; ticking a destination-only record is refused.
    let rows = rows_by_id(&w, &w.editor, ds.id).await;
    let counts = hub
        .set_dataset_process(
            &w.editor,
            ds.id,
            ProcessSelection::Rows(vec![row_of(&rows, 5)]),
            false,
        )
        .await
        .unwrap();
    assert_eq!(counts.ticked, 4);
    assert!(
        hub.set_dataset_process(
            &w.editor,
            ds.id,
            ProcessSelection::Rows(vec![row_of(&rows, 9)]),
            true,
        )
        .await
        .is_err()
    );

    let submitting = hub.submit_dataset(&w.editor, ds.id).await.unwrap();
    assert_eq!(submitting.state, DatasetState::Submitting);
    let done = settled(&w, &w.editor, ds.id).await;
    assert_eq!(done.state, DatasetState::Submitted, "{:?}", done.message);
    assert_eq!(done.counts.submitted, 4);

    let client = pg().await;
    let written: Vec<(i32, String)> = client
        .query(
            &format!("SELECT id, name FROM {} ORDER BY id", w.destination),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        written,
        [
            (1, "bolt".to_owned()),
            (2, "nut v2".to_owned()),
            (3, "washer".to_owned()),
            (4, "gear".to_owned()),
            (6, CANARY.to_owned()),
            (9, "legacy".to_owned()),
        ],
        "unticked 5 not written, destination-only 9 never deleted"
    );
    let price: String = client
        .query_one(
            &format!("SELECT price::text FROM {} WHERE id = 4", w.destination),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(price, "3.00", "the edited value was written");

    // The record values never reach the store in clear.
    let contents = store_contents(&t).await;
    assert!(
        !contents.contains(CANARY),
        "the canary is in the store in clear"
    );
    assert!(!contents.contains(&hex(CANARY)));
    assert!(!contents.contains("March parts"));

    // The audit names what happened, never values.
    let events = hub
        .object_events(&w.admin, "dataset", &ds.id.to_string())
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for a in [
        "dataset.pulled",
        "dataset.read",
        "dataset.record_updated",
        "dataset.shared",
        "dataset.submitted",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(!format!("{events:?}").contains(CANARY));

    // Deleting it removes its key: nothing of it is left to read.
    hub.delete_dataset(&w.editor, ds.id).await.unwrap();
    assert!(matches!(
        hub.get_dataset(&w.editor, ds.id).await,
        Err(AppError::NotFound(_))
    ));
    let _ = (&w.source, &w.clock);
}

lockstep_storage::on_both_stores!(a_data_set_is_its_owners_and_goes_when_stale);
async fn a_data_set_is_its_owners_and_goes_when_stale(t: TestStore) {
    let w = world(&t).await;
    let hub = &w.hub;
    let ds = hub
        .pull_dataset(&w.editor, w.pipeline.id, None, Some("id <= 3"))
        .await
        .unwrap();
    let ds = settled(&w, &w.editor, ds.id).await;
    assert_eq!(ds.counts.read, 6);
    assert_eq!(ds.counts.skipped, 3, "the data set's filter");
    assert!(ds.name.starts_with("parts "), "{}", ds.name);

    // Another Editor and a Viewer do not see it; the Administrator does (governance).
    for who in [&w.other_editor, &w.viewer] {
        assert!(matches!(
            hub.get_dataset(who, ds.id).await,
            Err(AppError::NotFound(_))
        ));
        assert!(hub.list_datasets(who, false).await.unwrap().is_empty());
        assert!(matches!(
            hub.delete_dataset(who, ds.id).await,
            Err(AppError::NotFound(_))
        ));
    }
    assert!(hub.get_dataset(&w.admin, ds.id).await.is_ok());
    assert_eq!(hub.list_datasets(&w.admin, true).await.unwrap().len(), 1);
    assert!(matches!(
        hub.list_datasets(&w.editor, true).await,
        Err(AppError::Forbidden { .. })
    ));

    // Bad shares and transfers change nothing.
    assert!(matches!(
        hub.transfer_dataset(&w.editor, ds.id, w.editor.user())
            .await,
        Err(AppError::Invalid {
            field: "user_id",
            ..
        })
    ));
    let stranger = lockstep_domain::UserId::from_uuid(uuid::Uuid::now_v7());
    assert!(matches!(
        hub.share_dataset(&w.editor, ds.id, stranger).await,
        Err(AppError::Invalid {
            field: "user_id",
            ..
        })
    ));

    // Handed over: the previous owner keeps nothing unless it is shared with them.
    hub.transfer_dataset(&w.editor, ds.id, w.other_editor.user())
        .await
        .unwrap();
    assert!(matches!(
        hub.get_dataset(&w.editor, ds.id).await,
        Err(AppError::NotFound(_))
    ));
    let mine = hub.list_datasets(&w.other_editor, false).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].owner, w.other_editor.user());

    // Untouched for longer than the organization keeps data sets: deleted, with its key.
    hub.update_organization_settings(
        &w.admin,
        SettingsUpdate {
            dataset_retention_days: Some(2),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        hub.update_organization_settings(
            &w.admin,
            SettingsUpdate {
                dataset_retention_days: Some(91),
                ..Default::default()
            },
        )
        .await
        .is_err()
    );
    w.clock.advance(Duration::days(1));
    assert_eq!(hub.sweep_datasets().await.unwrap(), 0);
    w.clock.advance(Duration::days(1) + Duration::minutes(1));
    assert_eq!(hub.sweep_datasets().await.unwrap(), 1);
    assert!(matches!(
        hub.get_dataset(&w.admin, ds.id).await,
        Err(AppError::NotFound(_))
    ));
    let events = hub
        .object_events(&w.admin, "dataset", &ds.id.to_string())
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.action == "dataset.expired"));
    let contents = store_contents(&t).await;
    assert!(!contents.contains("washer"));
}
