//! Redact transforms in pipelines against a real PostgreSQL source and destination: the
//! destination gets only keyed hashes and masked values, equal values hash alike within an
//! organization and differently in another, and the clear values reach no row of the store.

use super::datasets::store_contents;
use lockstep_app::{Caller, Hub, HubOptions, ManualClock, NewConnection, Password, RunState};
use lockstep_storage::testing::TestStore;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use time::OffsetDateTime;

const PASSWORD: &str = "correct horse battery staple";
const CANARY_MAIL: &str = "canary-5d1e@example.com";
const CANARY_CARD: &str = "CANARY-4242-1234";

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

/// The PostgreSQL the tests use, as a connection's configuration.
fn postgres_config() -> serde_json::Value {
    let url: tokio_postgres::Config = lockstep_storage::testing::postgres_admin_url()
        .parse()
        .unwrap();
    let host = match &url.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".to_owned(),
    };
    json!({
        "host": host,
        "port": url.get_ports().first().copied().unwrap_or(5432),
        "database": url.get_dbname().unwrap_or("postgres"),
        "user": url.get_user().unwrap_or("postgres"),
        "tls": "disable",
    })
}

/// A new organization's Administrator.
async fn organization(
    hub: &Hub,
    operator: &lockstep_app::Operator,
    name: &str,
    email: &str,
) -> Caller {
    let pw = Password::new(PASSWORD.to_owned());
    let org = hub
        .create_organization(operator, name, email)
        .await
        .unwrap();
    hub.accept_invitation(org.invitation_token.expose(), &pw, "Admin")
        .await
        .unwrap();
    let done = hub.login(email, &pw, None).await.unwrap();
    hub.authenticate(done.session_token.expose()).await.unwrap()
}

/// Runs a pipeline that scrambles `email` and keeps the last 4 characters of `card` from
/// `source` into `destination`, as `admin`'s organization; answers the destination's rows.
async fn run_redacting_pipeline(
    hub: &Arc<Hub>,
    admin: &Caller,
    source: &str,
    destination: &str,
) -> Vec<(i64, Option<String>, Option<String>)> {
    let warehouse = hub
        .create_connection(
            admin,
            NewConnection {
                name: "warehouse".into(),
                kind: "postgres".into(),
                config: postgres_config(),
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    hub.discover_connection(admin, warehouse.id).await.unwrap();
    let c = warehouse.id.to_string();
    let pipeline = hub
        .create_pipeline(
            admin,
            "customers",
            json!({
                "source": {"connection_id": c, "object": format!("public.{source}")},
                "destination": {"connection_id": c, "object": format!("public.{destination}")},
                "mode": "full_refresh",
                "mappings": [
                    {"source": "id", "destination": "id"},
                    {"source": "email", "destination": "email", "transform": {"redact": "scramble"}},
                    {"source": "card", "destination": "card", "transform": {"redact": "partial", "keep": 4}}
                ]
            }),
        )
        .await
        .unwrap();
    let run = hub.start_run(admin, pipeline.id).await.unwrap();
    let mut state = run.state;
    let mut message = None;
    for _ in 0..400 {
        let view = hub.get_run(admin, pipeline.id, run.id).await.unwrap();
        state = view.state;
        message = view.message;
        if !matches!(state, RunState::Queued | RunState::Running) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state, RunState::Succeeded, "{message:?}");
    pg().await
        .query(
            &format!("SELECT id, email, card FROM public.{destination} ORDER BY id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

lockstep_storage::on_both_stores!(a_pipeline_scrambles_and_masks_columns_before_the_destination);
async fn a_pipeline_scrambles_and_masks_columns_before_the_destination(t: TestStore) {
    let start = OffsetDateTime::from_unix_timestamp(1_795_860_000).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let (hub, creds) = Hub::initialize(t.store.clone(), clock, 1, 1).await.unwrap();
    let connectors = lockstep_app::connectors::Context::new(
        lockstep_app::connectors::EgressPolicy::parse("loopback,private").unwrap(),
        None,
    );
    let hub = Arc::new(hub.with_options(HubOptions {
        password_permits: 2,
        connectors,
        ..HubOptions::default()
    }));
    let operator = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let acme = organization(&hub, &operator, "Acme", "ada@acme.io").await;
    let globex = organization(&hub, &operator, "Globex", "hank@globex.io").await;
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(Arc::clone(&hub).work("redaction-worker".to_owned(), Arc::clone(&stop)));

    let source = unique("redact_src");
    let acme_dst = unique("redact_acme");
    let globex_dst = unique("redact_globex");
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE public.{source} (id bigint PRIMARY KEY, email text, card text);
             INSERT INTO public.{source} VALUES
               (1, '{CANARY_MAIL}', '{CANARY_CARD}'),
               (2, 'bob@example.com', '5500000000009876'),
               (3, '{CANARY_MAIL}', NULL),
               (4, NULL, '12');
             CREATE TABLE public.{acme_dst} (id bigint PRIMARY KEY, email text, card text);
             CREATE TABLE public.{globex_dst} (id bigint PRIMARY KEY, email text, card text);"
        ))
        .await
        .unwrap();

    let rows = run_redacting_pipeline(&hub, &acme, &source, &acme_dst).await;
    assert_eq!(rows.len(), 4);
    let email = |i: usize| rows[i].1.clone();
    let card = |i: usize| rows[i].2.clone();
    // Only keyed hashes: equal addresses alike, others not; null stays null.
    for i in [0, 1, 2] {
        let e = email(i).unwrap();
        assert!(e.starts_with("scr_") && e.len() == 28, "{e}");
    }
    assert_eq!(email(0), email(2));
    assert_ne!(email(0), email(1));
    assert_eq!(email(3), None);
    // Only the last four characters; a shorter value fully masked.
    assert_eq!(card(0).as_deref(), Some("••••1234"));
    assert_eq!(card(1).as_deref(), Some("••••9876"));
    assert_eq!(card(2), None);
    assert_eq!(card(3).as_deref(), Some("••••"));
    for row in &rows {
        let text = format!("{row:?}");
        assert!(
            !text.contains("canary") && !text.contains("CANARY"),
            "{text}"
        );
    }

    // The same value scrambles differently in another organization.
    let theirs = run_redacting_pipeline(&hub, &globex, &source, &globex_dst).await;
    assert_eq!(theirs[0].1, theirs[2].1);
    assert!(theirs[0].1.as_deref().unwrap().starts_with("scr_"));
    assert_ne!(theirs[0].1, email(0));
    assert_ne!(theirs[1].1, email(1));
    assert_eq!(theirs[0].2, card(0), "a partial value needs no key");

    // The clear values reach no row of the hub's store.
    let contents = store_contents(&t).await;
    for canary in [CANARY_MAIL, CANARY_CARD, "5500000000009876"] {
        assert!(!contents.contains(canary), "{canary} is in the store");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}
