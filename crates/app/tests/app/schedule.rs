//! Schedules: two hubs over one store (two processes of a scale-out deployment) run their
//! schedulers at the same moments; each scheduled time becomes exactly one run.

use lockstep_app::{Hub, ManualClock, NewConnection, Password, RunState};
use lockstep_storage::testing::TestStore;
use serde_json::json;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const PASSWORD: &str = "correct horse battery staple";

lockstep_storage::on_both_stores!(every_scheduled_time_runs_exactly_once_across_schedulers);
async fn every_scheduled_time_runs_exactly_once_across_schedulers(t: TestStore) {
    // 10:00:30 on some day: the next minute boundary is 30 s away.
    let start = OffsetDateTime::from_unix_timestamp(1_795_860_030).unwrap();
    let Fixture {
        hub: first,
        clock,
        creds,
        admin,
        pipeline,
    } = acme_with_a_pipeline(&t, start, Some("* * * * *")).await;
    let second = Hub::open(t.store.clone(), clock.clone())
        .await
        .unwrap()
        .unwrap();
    second.submit_unseal_key(&creds.unseal_keys[0]).unwrap();
    assert_eq!(
        pipeline.next_run_at,
        Some(start + Duration::seconds(30)),
        "the next minute boundary"
    );

    // Nothing is due yet.
    let (a, b) = tokio::join!(first.schedule_due(), second.schedule_due());
    assert_eq!(a.unwrap() + b.unwrap(), 0);

    for minute in 1..=5 {
        clock.advance(Duration::minutes(1));
        // Both schedulers wake at once, twice.
        let (a, b) = tokio::join!(first.schedule_due(), second.schedule_due());
        let (c, d) = tokio::join!(second.schedule_due(), first.schedule_due());
        let queued = a.unwrap() + b.unwrap() + c.unwrap() + d.unwrap();
        assert_eq!(queued, 1, "minute {minute}: one run, whoever queued it");
        let runs = first.list_runs(&admin, pipeline.id, 100).await.unwrap();
        assert_eq!(runs.len(), minute);
        let run = &runs[0];
        assert_eq!(run.trigger, "schedule");
        assert_eq!(run.state, RunState::Queued);
        // End it (no worker here), so the next time is not skipped as "still running".
        first.cancel_run(&admin, pipeline.id, run.id).await.unwrap();
    }
    let view = first.get_pipeline(&admin, pipeline.id).await.unwrap();
    assert_eq!(
        view.next_run_at,
        Some(start + Duration::seconds(30) + Duration::minutes(5))
    );

    // While a run is still active, a scheduled time is skipped rather than queued twice.
    first.start_run(&admin, pipeline.id).await.unwrap();
    clock.advance(Duration::minutes(1));
    let (a, b) = tokio::join!(first.schedule_due(), second.schedule_due());
    assert_eq!(a.unwrap() + b.unwrap(), 0);
    let view = first.get_pipeline(&admin, pipeline.id).await.unwrap();
    assert!(view.next_run_at.unwrap() > clock_now(&clock));
}

/// A hub with the organization Acme, its Administrator, a files connection with `parts.csv`
/// and a pipeline from it to a PostgreSQL connection that nothing listens behind.
pub(crate) struct Fixture {
    pub(crate) hub: Arc<Hub>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) creds: lockstep_app::Credentials,
    pub(crate) admin: lockstep_app::Caller,
    pub(crate) pipeline: lockstep_app::PipelineView,
}

pub(crate) async fn acme_with_a_pipeline(
    t: &TestStore,
    start: OffsetDateTime,
    schedule: Option<&str>,
) -> Fixture {
    let clock = Arc::new(ManualClock::new(start));
    let (hub, creds) = Hub::initialize(t.store.clone(), clock.clone(), 1, 1)
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
    let pw = Password::new(PASSWORD.to_owned());
    hub.accept_invitation(org.invitation_token.expose(), &pw, "Ada")
        .await
        .unwrap();
    let session = hub.login("ada@acme.io", &pw, None).await.unwrap();
    let admin = hub
        .authenticate(session.session_token.expose())
        .await
        .unwrap();
    let files = hub
        .create_connection(
            &admin,
            NewConnection {
                name: "exports".into(),
                kind: "files".into(),
                config: json!({}),
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    hub.upload_file(&admin, files.id, "parts.csv", b"id,name\n1,a\n")
        .await
        .unwrap();
    hub.discover_connection(&admin, files.id).await.unwrap();
    let warehouse = hub
        .create_connection(
            &admin,
            NewConnection {
                name: "warehouse".into(),
                kind: "postgres".into(),
                config: json!({"host": "127.0.0.1", "database": "x", "user": "x"}),
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    let pipeline = hub
        .create_pipeline(
            &admin,
            "every minute",
            {
                let mut spec = json!({"source": {"connection_id": files.id.to_string(), "object": "uploads/parts.csv"},
                    "destination": {"connection_id": warehouse.id.to_string(), "object": "parts"},
                    "mode": "full_refresh"});
                if let Some(schedule) = schedule {
                    spec["schedule"] = json!(schedule);
                }
                spec
            },
        )
        .await
        .unwrap();
    Fixture {
        hub: Arc::new(hub),
        clock,
        creds,
        admin,
        pipeline,
    }
}

fn clock_now(clock: &ManualClock) -> OffsetDateTime {
    use lockstep_app::Clock;
    clock.now()
}

lockstep_storage::on_both_stores!(schedules_follow_the_organization_time_zone);
async fn schedules_follow_the_organization_time_zone(t: TestStore) {
    // 2026-11-28 10:00:30 UTC: Berlin is on CET (UTC+1).
    let start = OffsetDateTime::from_unix_timestamp(1_795_860_030).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let (hub, creds) = Hub::initialize(t.store.clone(), clock.clone(), 1, 1)
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
    let pw = Password::new(PASSWORD.to_owned());
    hub.accept_invitation(org.invitation_token.expose(), &pw, "Ada")
        .await
        .unwrap();
    let session = hub.login("ada@acme.io", &pw, None).await.unwrap();
    let admin = hub
        .authenticate(session.session_token.expose())
        .await
        .unwrap();
    let bad = hub
        .update_organization_settings(
            &admin,
            lockstep_app::SettingsUpdate {
                time_zone: Some("Mars/Olympus".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(
        bad,
        Err(lockstep_app::AppError::Invalid {
            field: "time_zone",
            ..
        })
    ));
    hub.update_organization_settings(
        &admin,
        lockstep_app::SettingsUpdate {
            time_zone: Some("Europe/Berlin".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let files = hub
        .create_connection(
            &admin,
            NewConnection {
                name: "exports".into(),
                kind: "files".into(),
                config: json!({}),
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    hub.upload_file(&admin, files.id, "parts.csv", b"id\n1\n")
        .await
        .unwrap();
    hub.discover_connection(&admin, files.id).await.unwrap();
    let warehouse = hub
        .create_connection(
            &admin,
            NewConnection {
                name: "warehouse".into(),
                kind: "postgres".into(),
                config: json!({"host": "127.0.0.1", "database": "x", "user": "x"}),
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    let pipeline = hub
        .create_pipeline(
            &admin,
            "nightly",
            json!({"source": {"connection_id": files.id.to_string(), "object": "uploads/parts.csv"},
                "destination": {"connection_id": warehouse.id.to_string(), "object": "parts"},
                "mode": "full_refresh", "schedule": "0 2 * * *"}),
        )
        .await
        .unwrap();
    // 02:00 in Berlin on the 29th is 01:00 UTC.
    let expected =
        OffsetDateTime::from_unix_timestamp(1_795_860_030 - 10 * 3600 - 30 + 25 * 3600).unwrap();
    assert_eq!(pipeline.next_run_at, Some(expected));
}

lockstep_storage::on_both_stores!(a_run_whose_workers_keep_dying_fails_and_says_why);
async fn a_run_whose_workers_keep_dying_fails_and_says_why(t: TestStore) {
    let start = OffsetDateTime::from_unix_timestamp(1_795_860_030).unwrap();
    let Fixture {
        hub,
        clock,
        admin,
        pipeline,
        ..
    } = acme_with_a_pipeline(&t, start, None).await;
    let run = hub.start_run(&admin, pipeline.id).await.unwrap();
    // Three workers lease the run and die with it (a crash, a kill, a lost machine): each
    // lease expires unrenewed.
    for _ in 0..3 {
        let now = clock_now(&clock);
        let mut tx = t.store.write().await.unwrap();
        let leased = lockstep_storage::pipelines::lease_next_run(
            &mut tx,
            t.store.backend(),
            "a worker that dies",
            now,
            now + lockstep_app::RUN_LEASE,
        )
        .await
        .unwrap()
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(leased.id, run.id);
        clock.advance(lockstep_app::RUN_LEASE + Duration::seconds(1));
    }
    // The next worker fails it instead of executing it a fourth time.
    let shutdown = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = tokio::spawn(Arc::clone(&hub).work("w".into(), Arc::clone(&shutdown)));
    let mut ended = None;
    for _ in 0..100 {
        let got = hub.get_run(&admin, pipeline.id, run.id).await.unwrap();
        if got.state.is_finished() {
            ended = Some(got);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    worker.abort();
    let ended = ended.expect("the run ended");
    assert_eq!(ended.state, RunState::Failed);
    assert_eq!(ended.attempts, 4);
    assert!(
        ended
            .message
            .as_deref()
            .unwrap()
            .starts_with("the run stopped its worker 3 times without finishing"),
        "{:?}",
        ended.message
    );
}
