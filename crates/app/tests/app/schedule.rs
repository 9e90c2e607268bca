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
    let clock = Arc::new(ManualClock::new(start));
    let (first, creds) = Hub::initialize(t.store.clone(), clock.clone(), 1, 1)
        .await
        .unwrap();
    let second = Hub::open(t.store.clone(), clock.clone())
        .await
        .unwrap()
        .unwrap();
    second.submit_unseal_key(&creds.unseal_keys[0]).unwrap();
    let op = first
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let org = first
        .create_organization(&op, "Acme", "ada@acme.io")
        .await
        .unwrap();
    let pw = Password::new(PASSWORD.to_owned());
    first
        .accept_invitation(org.invitation_token.expose(), &pw, "Ada")
        .await
        .unwrap();
    let session = first.login("ada@acme.io", &pw, None).await.unwrap();
    let admin = first
        .authenticate(session.session_token.expose())
        .await
        .unwrap();
    let files = first
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
    first
        .upload_file(&admin, files.id, "parts.csv", b"id,name\n1,a\n")
        .await
        .unwrap();
    first.discover_connection(&admin, files.id).await.unwrap();
    let warehouse = first
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
    let pipeline = first
        .create_pipeline(
            &admin,
            "every minute",
            json!({"source": {"connection_id": files.id.to_string(), "object": "uploads/parts.csv"},
                "destination": {"connection_id": warehouse.id.to_string(), "object": "parts"},
                "mode": "full_refresh", "schedule": "* * * * *"}),
        )
        .await
        .unwrap();
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
