//! Pipelines and runs through the API, executed by a worker of the hub against real PostgreSQL
//! and MariaDB: every mode, reruns, type edge cases, rejected records with their reasons, and a
//! cursor that never passes a failed record.

use super::connections::{Env, env, mysql_parts, pg_parts};
use axum::http::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// A PostgreSQL client for the tests' own tables.
pub(super) async fn pg() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &lockstep_storage::testing::postgres_admin_url(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

/// A name no other test run uses.
pub(super) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    )
}

/// A worker of the hub, stopped when dropped.
pub(super) struct Worker(Arc<AtomicBool>);

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub(super) fn worker(e: &Env) -> Worker {
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(Arc::clone(&e.hub).work("test-worker".to_owned(), Arc::clone(&stop)));
    Worker(stop)
}

async fn connection(e: &mut Env, name: &str, kind: &str, config: Value, secrets: Value) -> String {
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": name, "kind": kind, "config": config, "secrets": secrets})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let found = e
        .admin(
            Method::POST,
            &format!("/api/v1/connections/{id}/discover"),
            None,
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    id
}

/// A PostgreSQL connection made and discovered through the API (as the Administrator).
pub(super) async fn postgres_connection(e: &mut Env, name: &str) -> String {
    let (host, port, database, user) = pg_parts();
    connection(
        e,
        name,
        "postgres",
        json!({"host": host, "port": port, "database": database, "user": user, "tls": "disable"}),
        json!({}),
    )
    .await
}

/// A MySQL connection to the test server's database.
pub(super) async fn mysql_connection(e: &mut Env, name: &str) -> String {
    let (host, port, database, user, password) = mysql_parts();
    let secrets = if password.is_empty() {
        json!({})
    } else {
        json!({"password": password})
    };
    connection(
        e,
        name,
        "mysql",
        json!({"host": host, "port": port, "database": database, "user": user, "tls": "disable"}),
        secrets,
    )
    .await
}

/// Runs the pipeline through the API (as an Editor) and waits for the run to end.
pub(super) async fn run(e: &mut Env, pipeline: &str) -> Value {
    let editor = e.editor.clone();
    let started = e
        .call(
            Method::POST,
            &format!("/api/v1/pipelines/{pipeline}/runs"),
            &editor,
            None,
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let run = started.json()["id"].as_str().unwrap().to_owned();
    for _ in 0..600 {
        let got = e
            .call(
                Method::GET,
                &format!("/api/v1/pipelines/{pipeline}/runs/{run}"),
                &editor,
                None,
            )
            .await;
        let body = got.json();
        if matches!(
            body["state"].as_str(),
            Some("succeeded" | "succeeded_with_rejections" | "failed" | "cancelled")
        ) {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the run did not end within a minute");
}

#[tokio::test]
async fn postgres_to_postgres_full_refresh_with_renames_a_rule_and_rejected_records() {
    const CANARY: &str = "CANARY-rejected-8d2f";
    let source = unique("parts_src");
    let target = unique("parts_dst");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (
            id bigint PRIMARY KEY, part_no text NOT NULL, description text,
            price numeric(12,2) NOT NULL, weight double precision, active boolean,
            made_at timestamptz, specs jsonb, uid uuid, born date);
         INSERT INTO public.{source} VALUES
            (1, 'A-1', 'Grüße 😀', 12.50, 1.5, true, '2026-11-22T10:00:00+01:00', '{{\"a\": [1, 2]}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1999-12-31'),
            (2, 'A-2', NULL, 0.00, NULL, NULL, NULL, NULL, NULL, NULL),
            (3, 'A-3', '{CANARY}', -1.00, 2.0, false, '2026-01-01T00:00:00Z', '[]', NULL, '2100-01-01'),
            (4, 'A-4', 'last', 99999999.99, -0.5, true, '1970-01-01T00:00:00Z', '{{}}', NULL, NULL);"
    ))
    .await
    .unwrap();
    let mut e = env("loopback").await;
    let _worker = worker(&e);
    let src = postgres_connection(&mut e, "Source").await;
    let dst = postgres_connection(&mut e, "Warehouse").await;

    // An invalid rule is refused with its position; nothing is stored.
    let editor = e.editor.clone();
    let bad = e
        .call(
            Method::POST,
            "/api/v1/pipelines",
            &editor,
            Some(json!({"name": "parts", "source": {"connection_id": src, "object": format!("public.{source}")},
                "destination": {"connection_id": dst, "object": format!("public.{target}")},
                "rules": [{"kind": "validation", "expression": "price >= "}], "mode": "full_refresh"})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["field"], "rules[0].expression");
    assert!(
        bad.json()["detail"].as_str().unwrap().contains("column"),
        "{}",
        bad.body
    );
    // A destination name its kind cannot read (PostgreSQL: schema.table) is refused on save.
    let bad = e
        .call(
            Method::POST,
            "/api/v1/pipelines",
            &editor,
            Some(json!({"name": "parts", "source": {"connection_id": src, "object": format!("public.{source}")},
                "destination": {"connection_id": dst, "object": "public.a.b"}, "mode": "full_refresh"})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["field"], "destination.object");
    let viewer = e.viewer.clone();
    let denied = e
        .call(
            Method::POST,
            "/api/v1/pipelines",
            &viewer,
            Some(json!({"name": "x", "mode": "append"})),
        )
        .await;
    assert_eq!(denied.status, 403);

    let mappings: Vec<Value> = [
        ("id", "id"),
        ("part_no", "item_code"),
        ("description", "item_name"),
        ("price", "price"),
        ("weight", "weight"),
        ("active", "active"),
        ("made_at", "made_at"),
        ("specs", "specs"),
        ("uid", "uid"),
        ("born", "born"),
    ]
    .iter()
    .map(|(s, d)| json!({"source": s, "destination": d}))
    .collect();
    let created = e
        .call(
            Method::POST,
            "/api/v1/pipelines",
            &editor,
            Some(json!({"name": "parts", "source": {"connection_id": src, "object": format!("public.{source}")},
                "destination": {"connection_id": dst, "object": format!("public.{target}")},
                "mappings": mappings,
                "rules": [{"kind": "validation", "expression": "price >= 0.0", "level": "error", "message": "price must not be negative"}],
                "mode": "full_refresh", "max_rejected_percent": 50})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();

    let done = run(&mut e, &pipeline).await;
    assert_eq!(done["state"], "succeeded_with_rejections", "{done}");
    assert_eq!(done["records_read"], 4);
    assert_eq!(done["records_written"], 3);
    assert_eq!(done["records_rejected"], 1);

    // The destination: renamed columns, the source's exact types, nullability and key.
    let columns = db
        .query(
            "SELECT column_name::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
             FROM information_schema.columns c JOIN pg_attribute a \
               ON a.attrelid = ('public.' || c.table_name)::regclass AND a.attname = c.column_name \
             WHERE c.table_name = $1 ORDER BY c.ordinal_position",
            &[&target],
        )
        .await
        .unwrap();
    let columns: Vec<(String, String, bool)> = columns
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", "bigint", true),
            ("item_code", "text", true),
            ("item_name", "text", false),
            ("price", "numeric(12,2)", true),
            ("weight", "double precision", false),
            ("active", "boolean", false),
            ("made_at", "timestamp with time zone", false),
            ("specs", "jsonb", false),
            ("uid", "uuid", false),
            ("born", "date", false),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c))
    );
    let same = db
        .query_one(
            &format!(
                "SELECT count(*) FROM (SELECT id, part_no, description, price, weight, active, made_at, specs, uid, born \
                 FROM public.{source} WHERE price >= 0 EXCEPT SELECT * FROM public.{target}) d"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        same.get::<_, i64>(0),
        0,
        "every accepted row arrived exactly"
    );
    let pk = db
        .query_one(
            "SELECT count(*) FROM pg_index WHERE indrelid = ('public.' || $1)::regclass AND indisprimary",
            &[&target],
        )
        .await
        .unwrap();
    assert_eq!(pk.get::<_, i64>(0), 1, "the primary key came along");

    // The rejected record: its key, the rule, its values — for Editors, not Viewers.
    let run_id = done["id"].as_str().unwrap();
    let errors_path = format!("/api/v1/pipelines/{pipeline}/runs/{run_id}/errors");
    let forbidden = e.call(Method::GET, &errors_path, &viewer, None).await;
    assert_eq!(forbidden.status, 403);
    let errors = e.call(Method::GET, &errors_path, &editor, None).await;
    assert_eq!(errors.status, 200, "{}", errors.body);
    let rejected = errors.json()["errors"].clone();
    assert_eq!(rejected.as_array().unwrap().len(), 1);
    assert_eq!(rejected[0]["key"], json!({"id": 3}));
    assert_eq!(rejected[0]["reason"], "price must not be negative");
    assert_eq!(rejected[0]["rule"], "rules[0]");
    assert_eq!(rejected[0]["kind"], "rule");
    assert_eq!(rejected[0]["values"]["description"], CANARY);

    // A rerun replaces: the same rows, no duplicates.
    let again = run(&mut e, &pipeline).await;
    assert_eq!(again["state"], "succeeded_with_rejections");
    let n = db
        .query_one(&format!("SELECT count(*) FROM public.{target}"), &[])
        .await
        .unwrap();
    assert_eq!(n.get::<_, i64>(0), 3);

    // The rejected values are in no log line and not in the store in clear.
    assert!(!e.logs.text().contains(CANARY));
    let rows = lockstep_storage::testing::snapshot(&e.store.store)
        .await
        .unwrap()
        .join("\n");
    assert!(!rows.contains(CANARY));
    // Audited: the pipeline's creation and each run.
    let events = e
        .admin(
            Method::GET,
            "/api/v1/audit/events?object_kind=run&limit=50",
            None,
        )
        .await;
    let actions: Vec<String> = events.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ev| ev["action"].as_str().unwrap().to_owned())
        .collect();
    for action in ["run.requested", "run.succeeded", "run_errors.read"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not in {actions:?}"
        );
    }
    db.batch_execute(&format!(
        "DROP TABLE public.{source}; DROP TABLE public.{target}"
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn incremental_upsert_into_mariadb_never_passes_a_failed_record() {
    let source = unique("orders_src");
    let target = unique("orders_dst");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id int PRIMARY KEY, customer text NOT NULL, amount numeric(10,3), updated_at timestamptz NOT NULL);
         INSERT INTO public.{source} VALUES
            (1, 'Zoë', 1.250, '2026-11-01T00:00:00Z'),
            (2, 'Bob', 2.500, '2026-11-02T00:00:00Z'),
            (3, 'BAD', 3.000, '2026-11-03T00:00:00Z'),
            (4, 'Eve', 4.000, '2026-11-04T00:00:00Z');"
    ))
    .await
    .unwrap();
    let mut e = env("loopback").await;
    let _worker = worker(&e);
    let src = postgres_connection(&mut e, "Orders").await;
    let dst = mysql_connection(&mut e, "Shop").await;
    let (host, port, database, user, password) = mysql_parts();
    let editor = e.editor.clone();
    let created = e
        .call(
            Method::POST,
            "/api/v1/pipelines",
            &editor,
            Some(json!({"name": "orders", "source": {"connection_id": src, "object": format!("public.{source}")},
                "destination": {"connection_id": dst, "object": target},
                "rules": [{"kind": "validation", "expression": "customer != 'BAD'", "message": "customer is blocked"}],
                "mode": "incremental", "cursor": "updated_at", "key": ["id"],
                "max_rejected_percent": 50})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();

    let pool = mysql_async::Pool::new(
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(host.clone())
            .tcp_port(port)
            .user(Some(user.clone()))
            .pass((!password.is_empty()).then(|| password.clone()))
            .db_name(Some(database.clone())),
    );
    use mysql_async::prelude::Queryable;
    let rows = |pool: mysql_async::Pool, target: String| async move {
        let mut conn = pool.get_conn().await.unwrap();
        let rows: Vec<(i64, String, String)> = conn
            .query(format!(
                "SELECT id, customer, COALESCE(CAST(amount AS CHAR), 'NULL') FROM `{target}` ORDER BY id"
            ))
            .await
            .unwrap();
        rows
    };

    let first = run(&mut e, &pipeline).await;
    assert_eq!(first["state"], "succeeded_with_rejections", "{first}");
    assert_eq!(first["records_rejected"], 1);
    // The counts add up: 4 read = 2 written + 1 rejected + 0 filtered out + 1 held back (4 comes
    // after the rejected cursor and is read again next run).
    assert_eq!(first["records_read"], 4);
    assert_eq!(first["records_written"], 2);
    assert_eq!(first["records_skipped"], 0);
    assert_eq!(first["records_held_back"], 1, "{first}");
    assert_eq!(first["started_by"], "Someone");
    // Record 3 failed: the cursor stays before it, so 4 is not written yet either.
    assert_eq!(
        rows(pool.clone(), target.clone()).await,
        [
            (1, "Zoë".into(), "1.250".into()),
            (2, "Bob".into(), "2.500".into())
        ]
    );

    // Fix the record, change one already synced, add one: the rerun catches up without
    // duplicates.
    db.batch_execute(&format!(
        "UPDATE public.{source} SET customer = 'Carol' WHERE id = 3;
         UPDATE public.{source} SET amount = 2.750, updated_at = '2026-11-05T00:00:00Z' WHERE id = 2;
         INSERT INTO public.{source} VALUES (5, 'Dan', NULL, '2026-11-06T00:00:00Z');"
    ))
    .await
    .unwrap();
    let second = run(&mut e, &pipeline).await;
    assert_eq!(second["state"], "succeeded", "{second}");
    assert_eq!(second["records_rejected"], 0);
    let got = rows(pool.clone(), target.clone()).await;
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[1], (2, "Bob".into(), "2.750".into()));
    assert_eq!(got[2].1, "Carol");
    // Nothing new: a third run reads nothing and changes nothing.
    let third = run(&mut e, &pipeline).await;
    assert_eq!(third["records_read"], 0, "{third}");
    assert_eq!(rows(pool.clone(), target.clone()).await.len(), 5);

    let mut conn = pool.get_conn().await.unwrap();
    conn.query_drop(format!("DROP TABLE `{target}`"))
        .await
        .unwrap();
    drop(conn);
    pool.disconnect().await.unwrap();
    db.batch_execute(&format!("DROP TABLE public.{source}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn csv_upload_appended_to_postgres_and_a_queued_run_cancelled() {
    let target = unique("bom");
    let mut e = env("loopback").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "BOM exports", "kind": "files"})),
        )
        .await;
    let files = created.json()["id"].as_str().unwrap().to_owned();
    let request = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/connections/{files}/files/bom.csv"))
        .header("authorization", format!("Bearer {}", e.admin))
        .body(axum::body::Body::from(
            "PartNo,Qty,Unit\nP-100,2,pcs\nP-200,1.5,kg\nP-300,,m\n",
        ))
        .unwrap();
    let response = tower::ServiceExt::oneshot(e.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    e.admin(
        Method::POST,
        &format!("/api/v1/connections/{files}/discover"),
        None,
    )
    .await;
    let dst = postgres_connection(&mut e, "ERP").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({"name": "bom", "source": {"connection_id": files, "object": "uploads/bom.csv"},
                "destination": {"connection_id": dst, "object": format!("public.{target}")},
                "mappings": [{"source": "PartNo", "destination": "item_code"}, {"source": "Qty", "destination": "quantity"}],
                "rules": [{"kind": "export", "expression": "item_code.lowerAscii()", "target": "item_code"}],
                "mode": "append"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();

    // Queued with no worker running: cancelled at once.
    let started = e
        .admin(
            Method::POST,
            &format!("/api/v1/pipelines/{pipeline}/runs"),
            None,
        )
        .await;
    let queued = started.json()["id"].as_str().unwrap().to_owned();
    let second = e
        .admin(
            Method::POST,
            &format!("/api/v1/pipelines/{pipeline}/runs"),
            None,
        )
        .await;
    assert_eq!(second.status, 409, "one run of a pipeline at a time");
    // Waiting for a run that does not end answers its state when the wait is over.
    let waited = e
        .admin(
            Method::GET,
            &format!("/api/v1/pipelines/{pipeline}/runs/{queued}?wait=1"),
            None,
        )
        .await;
    assert_eq!(waited.status, 200, "{}", waited.body);
    assert_eq!(waited.json()["state"], "queued");
    let too_long = e
        .admin(
            Method::GET,
            &format!("/api/v1/pipelines/{pipeline}/runs/{queued}?wait=11"),
            None,
        )
        .await;
    assert_eq!(too_long.status, 422, "{}", too_long.body);
    assert!(too_long.body.contains("wait"), "{}", too_long.body);
    let cancelled = e
        .admin(
            Method::POST,
            &format!("/api/v1/pipelines/{pipeline}/runs/{queued}/cancel"),
            None,
        )
        .await;
    assert_eq!(cancelled.json()["state"], "cancelled", "{}", cancelled.body);

    let _worker = worker(&e);
    for _ in 0..2 {
        let done = run(&mut e, &pipeline).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        assert_eq!(done["records_written"], 3);
    }
    // A client that waits for a run gets it once it has ended, in one request.
    let started = e
        .admin(
            Method::POST,
            &format!("/api/v1/pipelines/{pipeline}/runs"),
            None,
        )
        .await;
    let third = started.json()["id"].as_str().unwrap().to_owned();
    let waited = e
        .admin(
            Method::GET,
            &format!("/api/v1/pipelines/{pipeline}/runs/{third}?wait=10"),
            None,
        )
        .await;
    assert_eq!(waited.json()["state"], "succeeded", "{}", waited.body);
    assert_eq!(waited.json()["records_written"], 3);
    let db = pg().await;
    let rows = db
        .query(
            &format!(
                "SELECT item_code, quantity::text FROM public.{target} ORDER BY item_code, quantity"
            ),
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(rows.len(), 9, "appended three times: {rows:?}");
    assert_eq!(rows[0], ("p-100".into(), Some("2".into())));
    assert_eq!(rows[3].1.as_deref(), Some("1.5"));
    assert_eq!(rows[6].1, None);
    db.batch_execute(&format!("DROP TABLE public.{target}"))
        .await
        .unwrap();

    // A connection used by a pipeline cannot be deleted.
    let refused = e
        .admin(Method::DELETE, &format!("/api/v1/connections/{dst}"), None)
        .await;
    assert_eq!(refused.status, 409);
}

/// PATCH changes only the fields sent, like a connection's: the rest of the stored definition
/// stays, `null` resets a field, and the merged result is checked like a new one.
#[tokio::test]
async fn patching_a_pipeline_keeps_the_fields_not_sent() {
    let mut e = env("loopback").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/connections",
            Some(json!({"name": "BOM exports", "kind": "files"})),
        )
        .await;
    let files = created.json()["id"].as_str().unwrap().to_owned();
    let request = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/connections/{files}/files/bom.csv"))
        .header("authorization", format!("Bearer {}", e.admin))
        .body(axum::body::Body::from("PartNo,Qty\nP-100,2\n"))
        .unwrap();
    let response = tower::ServiceExt::oneshot(e.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    e.admin(
        Method::POST,
        &format!("/api/v1/connections/{files}/discover"),
        None,
    )
    .await;
    let dst = postgres_connection(&mut e, "ERP").await;
    let target = unique("patched");
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({"name": "bom", "source": {"connection_id": files, "object": "uploads/bom.csv"},
                "destination": {"connection_id": dst, "object": format!("public.{target}")},
                "mappings": [{"source": "PartNo", "destination": "item_code"}, {"source": "Qty", "destination": "quantity"}],
                "rules": [{"kind": "export", "expression": "item_code.lowerAscii()", "target": "item_code"}],
                "mode": "append", "schedule": "0 3 * * *"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let before = created.json();
    let id = before["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/pipelines/{id}");

    // One field: the mappings change, everything else stays.
    let patched = e
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"mappings": [{"source": "PartNo", "destination": "item_code"}]})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let after = patched.json();
    assert_eq!(after["mappings"].as_array().unwrap().len(), 1);
    for field in ["name", "source", "destination", "rules", "mode", "schedule"] {
        assert_eq!(after[field], before[field], "{field} changed");
    }
    // The name alone.
    let patched = e
        .admin(Method::PATCH, &path, Some(json!({"name": "bom nightly"})))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.json()["name"], "bom nightly");
    assert_eq!(patched.json()["rules"], before["rules"]);
    // `null` resets a field to its default.
    let patched = e
        .admin(Method::PATCH, &path, Some(json!({"schedule": null})))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert!(patched.json().get("schedule").is_none(), "{}", patched.body);
    assert_eq!(patched.json()["mode"], "append");
    // An invalid merged definition is refused, naming the field, and nothing changes.
    let refused = e
        .admin(Method::PATCH, &path, Some(json!({"mode": "sideways"})))
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let refused = e
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"rules": [{"kind": "export", "expression": "item_code.(", "target": "item_code"}]})),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("rules"), "{}", refused.body);
    let now = e.admin(Method::GET, &path, None).await.json();
    assert_eq!(now["rules"], before["rules"]);
    assert_eq!(now["mode"], "append");
    assert_eq!(now["mappings"].as_array().unwrap().len(), 1);
}

/// A table dropped after discovery: the sample's and the run's errors name it (an object's
/// name is no secret), so the user knows what is missing.
#[tokio::test]
async fn a_missing_table_is_named_in_the_sample_and_run_errors() {
    let source = unique("gone");
    let target = unique("gone_dst");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id int PRIMARY KEY, name text); INSERT INTO public.{source} VALUES (1, 'a')"
    ))
    .await
    .unwrap();
    let mut e = env("loopback").await;
    let conn = postgres_connection(&mut e, "Warehouse").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({"name": "gone", "source": {"connection_id": conn, "object": format!("public.{source}")},
                "destination": {"connection_id": conn, "object": format!("public.{target}")},
                "mappings": [{"source": "id", "destination": "id"}, {"source": "name", "destination": "name"}],
                "mode": "full_refresh"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();
    db.batch_execute(&format!("DROP TABLE public.{source}"))
        .await
        .unwrap();

    let sample = e
        .admin(
            Method::GET,
            &format!("/api/v1/connections/{conn}/objects/public.{source}/sample?limit=5"),
            None,
        )
        .await;
    assert_eq!(sample.status, 502, "{}", sample.body);
    assert_eq!(sample.json()["failure"], "not_found");
    assert!(
        sample.json()["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("public.{source}")),
        "{}",
        sample.body
    );

    let _worker = worker(&e);
    let done = run(&mut e, &pipeline).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done["message"]
            .as_str()
            .unwrap()
            .contains(&format!("public.{source}")),
        "{done}"
    );
}

#[tokio::test]
async fn rejected_records_grouped_by_reason_with_their_fields_warnings_counts_and_a_csv() {
    let source = unique("rej_src");
    let target = unique("rej_dst");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL, qty text NOT NULL);
         INSERT INTO public.{source} VALUES
            (1, 'ok', 10.00, '5'),
            (2, '=HYPERLINK(\"http://evil.example\")', -1.00, '1'),
            (3, 'negative', -2.00, '2'),
            (4, 'big', 5000.00, '3'),
            (5, 'lots', 4.00, 'many'),
            (6, 'skip me', 1.00, '1');"
    ))
    .await
    .unwrap();
    let mut e = env("loopback").await;
    let _worker = worker(&e);
    let src = postgres_connection(&mut e, "Shop").await;
    let dst = postgres_connection(&mut e, "Warehouse").await;
    let editor = e.editor.clone();
    let viewer = e.viewer.clone();
    let created = e
        .call(
            Method::POST,
            "/api/v1/pipelines",
            &editor,
            Some(json!({"name": "stock", "source": {"connection_id": src, "object": format!("public.{source}")},
                "destination": {"connection_id": dst, "object": format!("public.{target}")},
                "mappings": [
                    {"source": "id", "destination": "id"},
                    {"source": "name", "destination": "name"},
                    {"source": "price", "destination": "price"},
                    {"source": "qty", "destination": "qty", "cast": "integer"}
                ],
                "rules": [
                    {"kind": "validation", "expression": "price >= 0.0", "message": "price must not be negative"},
                    {"kind": "validation", "expression": "price < 1000.0", "level": "warning", "message": "unusually high price"}
                ],
                "filter": "id != 6",
                "mode": "full_refresh", "max_rejected_percent": 80})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();

    let done = run(&mut e, &pipeline).await;
    assert_eq!(done["state"], "succeeded_with_rejections", "{done}");
    // 6 read = 2 written + 3 rejected + 1 filtered out + 0 held back
    assert_eq!(done["records_read"], 6);
    assert_eq!(done["records_written"], 2);
    assert_eq!(done["records_rejected"], 3);
    assert_eq!(done["records_skipped"], 1);
    assert_eq!(done["records_held_back"], 0);
    // the warning rule's failures are counted per rule; its record was written
    assert_eq!(done["warnings"], 1);
    assert_eq!(done["warnings_by_rule"], json!({"rules[1]": 1}));
    assert_eq!(done["started_by"], "Someone");
    let run_id = done["id"].as_str().unwrap().to_owned();
    let listed = e
        .call(
            Method::GET,
            &format!("/api/v1/pipelines/{pipeline}/runs"),
            &viewer,
            None,
        )
        .await;
    // Viewers see the counts, not who started it
    assert_eq!(listed.json()["runs"][0]["records_skipped"], 1);
    assert!(listed.json()["runs"][0].get("started_by").is_none());

    // Each rejected record names the fields its rule refers to; errors are apart from verdicts.
    let errors = e
        .call(
            Method::GET,
            &format!("/api/v1/pipelines/{pipeline}/runs/{run_id}/errors"),
            &editor,
            None,
        )
        .await;
    assert_eq!(errors.status, 200, "{}", errors.body);
    let errors = errors.json()["errors"].clone();
    let summary: Vec<(Value, Value, Value, Value)> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].clone(),
                r["rule"].clone(),
                r["kind"].clone(),
                r["fields"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                json!({"id": 2}),
                json!("rules[0]"),
                json!("rule"),
                json!(["price"])
            ),
            (
                json!({"id": 3}),
                json!("rules[0]"),
                json!("rule"),
                json!(["price"])
            ),
            (
                json!({"id": 5}),
                json!("mappings[3]"),
                json!("error"),
                json!(["qty"])
            ),
        ]
    );
    assert_eq!(errors[2]["reason"], "cannot cast 'qty' to integer");

    // The CSV download: Editors only, an attachment, values as text, formulas neutralised.
    let csv_path = format!("/api/v1/pipelines/{pipeline}/runs/{run_id}/errors.csv");
    assert_eq!(
        e.call(Method::GET, &csv_path, &viewer, None).await.status,
        403
    );
    let csv = e.call(Method::GET, &csv_path, &editor, None).await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "rule,kind,reason,key,fields,id,name,price,qty");
    assert_eq!(
        lines[1],
        r#"rules[0],rule,price must not be negative,id=2,price,2,"'=HYPERLINK(""http://evil.example"")",'-1.00,1"#
    );
    assert_eq!(
        lines[3],
        "mappings[3],error,cannot cast 'qty' to integer,id=5,qty,5,lots,4.00,many"
    );
    assert_eq!(lines.len(), 4);
    let events = e
        .admin(
            Method::GET,
            "/api/v1/audit/events?object_kind=run&limit=50",
            None,
        )
        .await;
    assert!(
        events.json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |ev| ev["action"] == "run_errors.exported" && ev["object"]["id"] == run_id.as_str()
            ),
        "{}",
        events.body
    );
    db.batch_execute(&format!(
        "DROP TABLE public.{source}; DROP TABLE IF EXISTS public.{target}"
    ))
    .await
    .unwrap();
}
