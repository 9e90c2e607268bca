//! Data sets through the API against a real PostgreSQL source and destination: pulled, reviewed
//! beside the destination, fixed, ticked and submitted by an Editor; bad input refused naming
//! its field; every route's visibility for the owner, a sharee, an Administrator, other members,
//! another organization and anonymous callers.

use super::call;
use super::connections::{Env, env};
use super::pipelines::{pg, postgres_connection, unique};
use axum::http::Method;
use lockstep_app::Password;
use lockstep_domain::Role;
use lockstep_storage::testing::snapshot;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
/// Short enough for the warning rule (a name of at most 12 characters).
const CANARY: &str = "CANARY-41c7";

/// A signed-in member: session token and user id.
#[derive(Clone, Debug)]
struct Who {
    token: String,
    id: String,
}

/// The user id behind a token.
async fn me(e: &mut Env, token: &str) -> String {
    let got = e.call(Method::GET, "/api/v1/me", token, None).await;
    assert_eq!(got.status, 200, "{}", got.body);
    got.json()["id"].as_str().unwrap().to_owned()
}

/// Another member of the first organization, signed in.
async fn another(e: &mut Env, email: &str, role: Role) -> Who {
    let admin = e.hub.authenticate(&e.admin).await.unwrap();
    let invitation = e.hub.invite_user(&admin, email, role).await.unwrap();
    let pw = Password::new(PASSWORD.to_owned());
    e.hub
        .accept_invitation(invitation.token.expose(), &pw, "Someone")
        .await
        .unwrap();
    let token = e
        .hub
        .login(email, &pw, None)
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned();
    let id = me(e, &token).await;
    Who { token, id }
}

/// The Administrator of a second organization, signed in.
async fn foreign_admin(e: &mut Env) -> Who {
    let created = e
        .hub
        .create_organization(&e.operator, "beta", "admin@beta.io")
        .await
        .unwrap();
    let pw = Password::new(PASSWORD.to_owned());
    e.hub
        .accept_invitation(created.invitation_token.expose(), &pw, "Bea")
        .await
        .unwrap();
    let token = e
        .hub
        .login("admin@beta.io", &pw, None)
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned();
    let id = me(e, &token).await;
    Who { token, id }
}

/// Source: six parts (one unchanged, one changed, four new: one with a negative price, one with
/// a long name, one named by the canary). Destination: the first two and a part only it has.
/// Answers the pipeline's id and the two tables.
async fn parts(e: &mut Env) -> (String, String, String) {
    let source = unique("dsapi_src");
    let destination = unique("dsapi_dst");
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE public.{source} (id integer PRIMARY KEY, name text, price numeric(10,2));
             INSERT INTO public.{source} VALUES (1, 'bolt', 1.50), (2, 'nut v2', 0.20),
               (3, 'washer', 0.05), (4, 'gear', -3.00), (5, 'a very long part name', 2.00),
               (6, '{CANARY}', 9.99);
             CREATE TABLE public.{destination} (id integer PRIMARY KEY, name text, price numeric(10,2));
             INSERT INTO public.{destination} VALUES (1, 'bolt', 1.5), (2, 'nut', 0.20), (9, 'legacy', 7.00);"
        ))
        .await
        .unwrap();
    let warehouse = postgres_connection(e, "Warehouse").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({
                "name": "parts",
                "source": {"connection_id": warehouse, "object": format!("public.{source}")},
                "destination": {"connection_id": warehouse, "object": format!("public.{destination}")},
                "mode": "upsert",
                "key": ["id"],
                "rules": [
                    {"kind": "validation", "expression": "price >= 0.0",
                     "message": "price must not be negative"},
                    {"kind": "validation", "expression": "size(name) <= 12", "level": "warning",
                     "message": "name is long"}
                ]
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();
    (pipeline, source, destination)
}

async fn drop_tables(source: &str, destination: &str) {
    pg().await
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS public.{source}; DROP TABLE IF EXISTS public.{destination}"
        ))
        .await
        .unwrap();
}

/// Polls the data set until it is neither pulling nor submitting.
async fn settled(e: &mut Env, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let got = e
            .call(Method::GET, &format!("/api/v1/datasets/{id}"), token, None)
            .await;
        assert_eq!(got.status, 200, "{}", got.body);
        let body = got.json();
        if !matches!(body["state"].as_str(), Some("pulling" | "submitting")) {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the data set stayed busy for half a minute");
}

/// Pulls a data set as `token` and waits until it is ready.
async fn pulled(e: &mut Env, token: &str, pipeline: &str) -> String {
    let started = e
        .call(
            Method::POST,
            "/api/v1/datasets",
            token,
            Some(json!({"pipeline_id": pipeline})),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let id = started.json()["id"].as_str().unwrap().to_owned();
    let ready = settled(e, token, &id).await;
    assert_eq!(ready["state"], "ready", "{ready}");
    id
}

/// Every record of a data set.
async fn records(e: &mut Env, token: &str, id: &str) -> Vec<Value> {
    let got = e
        .call(
            Method::GET,
            &format!("/api/v1/datasets/{id}/records?limit=500"),
            token,
            None,
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.body);
    got.json()["records"].as_array().unwrap().clone()
}

/// The row of the record with this id.
fn row_of(records: &[Value], id: i64) -> u64 {
    records
        .iter()
        .find(|r| r["values"]["id"] == json!(id))
        .unwrap_or_else(|| panic!("no record {id}"))["row"]
        .as_u64()
        .unwrap()
}

/// What a data set is, as its owner sees it: the body (without the times that reading it
/// moves) and every record.
async fn state_of(e: &mut Env, token: &str, id: &str) -> (Value, Vec<Value>) {
    let got = e
        .call(Method::GET, &format!("/api/v1/datasets/{id}"), token, None)
        .await;
    assert_eq!(got.status, 200, "{}", got.body);
    let mut body = got.json();
    let fields = body.as_object_mut().unwrap();
    fields.remove("touched_at");
    fields.remove("expires_at");
    (body, records(e, token, id).await)
}

fn problem(answer: &super::Answer, status: u16, field: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/problem+json");
    assert_eq!(answer.json()["field"], field, "{}", answer.body);
}

/// A key the source repeats is an error on every later record of that key, whether the
/// destination has the key or not; the first record of each key is compared as usual.
#[tokio::test]
async fn a_key_the_source_repeats_is_an_error_on_each_later_record() {
    let mut e = env("loopback").await;
    let source = unique("dsdup_src");
    let destination = unique("dsdup_dst");
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE public.{source} (id integer, name text);
             INSERT INTO public.{source} VALUES (1, 'bolt'), (7, 'gear'), (1, 'bolt again'),
               (8, 'nut'), (7, 'gear again'), (1, 'bolt thrice');
             CREATE TABLE public.{destination} (id integer PRIMARY KEY, name text);
             INSERT INTO public.{destination} VALUES (1, 'bolt'), (9, 'legacy');"
        ))
        .await
        .unwrap();
    let warehouse = postgres_connection(&mut e, "Warehouse").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({
                "name": "repeats",
                "source": {"connection_id": warehouse, "object": format!("public.{source}")},
                "destination": {"connection_id": warehouse, "object": format!("public.{destination}")},
                "mode": "upsert",
                "key": ["id"]
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();
    let editor = e.editor.clone();
    let id = pulled(&mut e, &editor, &pipeline).await;
    let all = records(&mut e, &editor, &id).await;
    let repeated = |r: &Value| {
        r["issues"].as_array().unwrap().iter().any(|i| {
            i["level"] == "error"
                && i["message"]
                    .as_str()
                    .unwrap()
                    .contains("another record of this data set has the same key")
        })
    };
    let seen: Vec<(Value, Value, bool)> = all
        .iter()
        .filter(|r| r["status"] != "destination_only")
        .map(|r| {
            (
                r["values"]["name"].clone(),
                r["status"].clone(),
                repeated(r),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (json!("bolt"), json!("unchanged"), false),
            (json!("gear"), json!("create"), false),
            (json!("bolt again"), json!("update"), true),
            (json!("nut"), json!("create"), false),
            (json!("gear again"), json!("create"), true),
            (json!("bolt thrice"), json!("update"), true),
        ]
    );
    assert_eq!(
        all.iter()
            .filter(|r| r["status"] == "destination_only")
            .count(),
        1,
        "the legacy record is shown"
    );
    drop_tables(&source, &destination).await;
}

#[tokio::test]
async fn an_editor_pulls_reviews_fixes_unticks_and_submits_a_data_set() {
    let mut e = env("loopback").await;
    let (pipeline, source, destination) = parts(&mut e).await;
    let editor = e.editor.clone();
    let editor_id = me(&mut e, &editor).await;

    let started = e
        .call(
            Method::POST,
            "/api/v1/datasets",
            &editor,
            Some(json!({"pipeline_id": pipeline, "name": "March parts"})),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let body = started.json();
    assert_eq!(body["state"], "pulling");
    assert_eq!(body["owner"], editor_id.as_str());
    assert_eq!(body["pipeline_id"], pipeline.as_str());
    assert_eq!(body["may_edit"], true);
    assert_eq!(body["may_manage"], true);
    assert_eq!(body["shared_with"], json!([]));
    for time in ["created_at", "touched_at", "expires_at"] {
        time::OffsetDateTime::parse(
            body[time].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
    }
    let id = body["id"].as_str().unwrap().to_owned();

    let ds = settled(&mut e, &editor, &id).await;
    assert_eq!(ds["state"], "ready", "{ds}");
    assert_eq!(ds["name"], "March parts");
    assert_eq!(ds["fields"], json!(["id", "name", "price"]));
    assert_eq!(ds["key"], json!(["id"]));
    let c = &ds["counts"];
    assert_eq!(
        [
            &c["records"],
            &c["create"],
            &c["update"],
            &c["unchanged"],
            &c["destination_only"]
        ],
        [&json!(7), &json!(4), &json!(1), &json!(1), &json!(1)],
        "{c}"
    );
    assert_eq!(
        (&c["errors"], &c["warnings"], &c["read"]),
        (&json!(1), &json!(1), &json!(6))
    );
    assert_eq!(c["ticked"], 5, "create and update are ticked: {c}");
    assert_eq!(c["ticked_with_errors"], 1);
    let listed = e.call(Method::GET, "/api/v1/datasets", &editor, None).await;
    assert_eq!(listed.json()["datasets"][0]["id"], id.as_str());

    // Pages: in row order, the total beside them.
    let path = format!("/api/v1/datasets/{id}/records");
    let first = e
        .call(Method::GET, &format!("{path}?limit=3"), &editor, None)
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    assert_eq!(first["total"], 7);
    let rows: Vec<u64> = first["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [0, 1, 2]);
    let last = e
        .call(
            Method::GET,
            &format!("{path}?offset=6&limit=3"),
            &editor,
            None,
        )
        .await
        .json();
    assert_eq!(last["records"].as_array().unwrap().len(), 1);
    assert_eq!(last["records"][0]["row"], 6);

    // The update shows what differs, the destination's value beside the new one.
    let updates = e
        .call(Method::GET, &format!("{path}?status=update"), &editor, None)
        .await
        .json();
    assert_eq!(updates["total"], 1);
    let update = &updates["records"][0];
    assert_eq!(update["key"], json!({"id": 2}));
    assert_eq!(update["status"], "update");
    assert_eq!(
        update["changes"],
        json!([{"field": "name", "destination": "nut", "value": "nut v2"}])
    );
    assert_eq!(update["process"], true);
    assert_eq!(update["outcome"], Value::Null);
    let unchanged = e
        .call(
            Method::GET,
            &format!("{path}?status=unchanged"),
            &editor,
            None,
        )
        .await
        .json();
    assert_eq!(unchanged["records"][0]["values"]["id"], 1);
    assert_eq!(unchanged["records"][0]["changes"], json!([]));
    assert_eq!(unchanged["records"][0]["process"], false);

    // Issues per field, filterable, also with a status.
    let errors = e
        .call(Method::GET, &format!("{path}?issues=errors"), &editor, None)
        .await
        .json();
    assert_eq!(errors["total"], 1);
    let bad = errors["records"][0].clone();
    assert_eq!(bad["values"]["id"], 4);
    assert_eq!(
        bad["issues"],
        json!([{"field": "price", "level": "error", "message": "price must not be negative"}])
    );
    let bad_row = bad["row"].as_u64().unwrap();
    let warned = e
        .call(
            Method::GET,
            &format!("{path}?issues=warnings&status=create"),
            &editor,
            None,
        )
        .await
        .json();
    assert_eq!(warned["total"], 1);
    assert_eq!(warned["records"][0]["issues"][0]["field"], "name");
    assert_eq!(warned["records"][0]["issues"][0]["level"], "warning");
    let clean = e
        .call(Method::GET, &format!("{path}?issues=none"), &editor, None)
        .await
        .json();
    assert_eq!(clean["total"], 5);
    let only = e
        .call(
            Method::GET,
            &format!("{path}?status=destination_only"),
            &editor,
            None,
        )
        .await
        .json();
    assert_eq!(only["records"][0]["values"]["id"], 9);
    assert_eq!(only["records"][0]["process"], false);

    // A submit is refused while a ticked record has an error, naming it; nothing is written.
    let refused = e
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{id}/submit"),
            &editor,
            None,
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.content_type(), "application/problem+json");
    assert_eq!(refused.json()["type"], "urn:lockstep:problem:blocked");
    assert_eq!(
        refused.json()["rows"],
        json!([{"row": bad_row, "issues": ["price: price must not be negative"]}])
    );
    let db = pg().await;
    let count: i64 = db
        .query_one(&format!("SELECT count(*) FROM public.{destination}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3, "a refused submit wrote");

    // The fix: the rules run again and the error is gone; the record stays ticked.
    let fixed = e
        .call(
            Method::PATCH,
            &format!("{path}/{bad_row}"),
            &editor,
            Some(json!({"values": {"price": "3.00"}})),
        )
        .await;
    assert_eq!(fixed.status, 200, "{}", fixed.body);
    let fixed = fixed.json();
    assert_eq!(fixed["row"], bad_row);
    assert_eq!(fixed["issues"], json!([]));
    assert_eq!(fixed["values"]["price"], "3.00");
    assert_eq!(fixed["status"], "create");
    assert_eq!(fixed["process"], true);

    // Untick the long name (one record), tick and untick by rows and by status.
    let all = records(&mut e, &editor, &id).await;
    let long = row_of(&all, 5);
    let unticked = e
        .call(
            Method::PATCH,
            &format!("{path}/{long}"),
            &editor,
            Some(json!({"process": false})),
        )
        .await;
    assert_eq!(unticked.status, 200, "{}", unticked.body);
    assert_eq!(unticked.json()["process"], false);
    assert_eq!(unticked.json()["values"]["id"], 5);
    let process = format!("/api/v1/datasets/{id}/process");
    let washer = row_of(&all, 3);
    let counts = e
        .call(
            Method::POST,
            &process,
            &editor,
            Some(json!({"rows": [washer], "process": false})),
        )
        .await;
    assert_eq!(counts.status, 200, "{}", counts.body);
    assert_eq!(counts.json()["ticked"], 3);
    assert_eq!(counts.json()["ticked_with_errors"], 0);
    let counts = e
        .call(
            Method::POST,
            &process,
            &editor,
            Some(json!({"status": "unchanged", "process": true})),
        )
        .await;
    assert_eq!(counts.json()["ticked"], 4, "{}", counts.body);
    let counts = e
        .call(
            Method::POST,
            &process,
            &editor,
            Some(json!({"status": "unchanged", "process": false})),
        )
        .await;
    assert_eq!(counts.json()["ticked"], 3);
    let counts = e
        .call(
            Method::POST,
            &process,
            &editor,
            Some(json!({"rows": [washer], "process": true})),
        )
        .await;
    assert_eq!(counts.json()["ticked"], 4);
    let ds = e
        .call(
            Method::GET,
            &format!("/api/v1/datasets/{id}"),
            &editor,
            None,
        )
        .await
        .json();
    assert_eq!(ds["counts"]["ticked"], 4, "the counts are stored");

    // The submit: the ticked records, by key; the destination-only one stays.
    let submitted = e
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{id}/submit"),
            &editor,
            None,
        )
        .await;
    assert_eq!(submitted.status, 202, "{}", submitted.body);
    assert_eq!(submitted.json()["state"], "submitting");
    let done = settled(&mut e, &editor, &id).await;
    assert_eq!(done["state"], "submitted", "{done}");
    assert_eq!(done["counts"]["submitted"], 4, "{done}");
    assert_eq!(done["counts"]["failed"], 0);
    let rows: Vec<(i32, String, String)> = db
        .query(
            &format!("SELECT id, name, price::text FROM public.{destination} ORDER BY id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected: Vec<(i32, String, String)> = [
        (1, "bolt", "1.50"),
        (2, "nut v2", "0.20"),
        (3, "washer", "0.05"),
        (4, "gear", "3.00"),
        (6, CANARY, "9.99"),
        (9, "legacy", "7.00"),
    ]
    .iter()
    .map(|(i, n, p)| (*i, (*n).to_owned(), (*p).to_owned()))
    .collect();
    assert_eq!(rows, expected);
    for record in records(&mut e, &editor, &id).await {
        let want = match record["values"]["id"].as_i64().unwrap() {
            2 | 3 | 4 | 6 => json!("submitted"),
            _ => Value::Null,
        };
        assert_eq!(record["outcome"], want, "{record}");
    }

    // The records' values are in no log line and not in the store in clear.
    assert!(!e.logs.text().contains(CANARY), "a log line holds a value");
    let stored = snapshot(&e.store.store).await.unwrap().join("\n");
    assert!(!stored.contains(CANARY), "the store holds a value in clear");
    drop_tables(&source, &destination).await;
}

#[tokio::test]
async fn bad_input_is_refused_naming_its_field_and_changes_nothing() {
    let mut e = env("loopback").await;
    let (pipeline, source, destination) = parts(&mut e).await;
    let editor = e.editor.clone();
    let editor_id = me(&mut e, &editor).await;

    // Pulls: an unknown pipeline, a malformed id, a filter that does not compile, an empty
    // name, an unknown field. None leaves a data set behind.
    for (body, field) in [
        (
            json!({"pipeline_id": "01900000-0000-7000-8000-000000000009"}),
            "pipeline_id",
        ),
        (json!({"pipeline_id": "nope"}), "pipeline_id"),
        (
            json!({"pipeline_id": pipeline, "filter": "price >"}),
            "filter",
        ),
        (json!({"pipeline_id": pipeline, "name": "  "}), "name"),
    ] {
        let answer = e
            .call(
                Method::POST,
                "/api/v1/datasets",
                &editor,
                Some(body.clone()),
            )
            .await;
        problem(&answer, 422, field);
        if field == "filter" {
            let detail = answer.json()["detail"].as_str().unwrap().to_owned();
            assert!(detail.contains("column"), "no position: {detail}");
        }
    }
    let unknown = e
        .call(
            Method::POST,
            "/api/v1/datasets",
            &editor,
            Some(json!({"pipeline_id": pipeline, "colour": "red"})),
        )
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert!(unknown.body.contains("colour"), "{}", unknown.body);
    let listed = e.call(Method::GET, "/api/v1/datasets", &editor, None).await;
    assert_eq!(
        listed.json()["datasets"],
        json!([]),
        "a refused pull left a data set"
    );

    // A data set with a filter of its own: only what it admits.
    let filtered = e
        .call(
            Method::POST,
            "/api/v1/datasets",
            &editor,
            Some(json!({"pipeline_id": pipeline, "filter": "id <= 2"})),
        )
        .await;
    assert_eq!(filtered.status, 202, "{}", filtered.body);
    let filtered_id = filtered.json()["id"].as_str().unwrap().to_owned();
    let filtered = settled(&mut e, &editor, &filtered_id).await;
    let c = &filtered["counts"];
    assert_eq!(
        (&c["create"], &c["update"], &c["unchanged"]),
        (&json!(0), &json!(1), &json!(1)),
        "{filtered}"
    );

    let id = pulled(&mut e, &editor, &pipeline).await;
    let all = records(&mut e, &editor, &id).await;
    let bad = row_of(&all, 4);
    let before = state_of(&mut e, &editor, &id).await;
    let record = format!("/api/v1/datasets/{id}/records/{bad}");

    // Edits: an unknown field, a value of the wrong type, nothing to change, both absent.
    let cases = [
        (json!({"values": {"nope": 1}}), "values.nope"),
        (json!({"values": {"price": "cheap"}}), "values.price"),
        (json!({"values": {}}), "values"),
        (json!({}), "values"),
    ];
    for (body, field) in cases {
        let answer = e
            .call(Method::PATCH, &record, &editor, Some(body.clone()))
            .await;
        problem(&answer, 422, field);
        assert!(
            !answer.body.contains("cheap"),
            "a value came back: {}",
            answer.body
        );
    }
    let malformed = e
        .call(
            Method::PATCH,
            &format!("/api/v1/datasets/{id}/records/minus-one"),
            &editor,
            Some(json!({"process": false})),
        )
        .await;
    problem(&malformed, 422, "row");
    let missing = e
        .call(
            Method::PATCH,
            &format!("/api/v1/datasets/{id}/records/999"),
            &editor,
            Some(json!({"values": {"price": 1}})),
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let missing = e
        .call(
            Method::PATCH,
            &format!("/api/v1/datasets/{id}/records/999"),
            &editor,
            Some(json!({"process": true})),
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let only = row_of(&all, 9);
    let never = e
        .call(
            Method::PATCH,
            &format!("/api/v1/datasets/{id}/records/{only}"),
            &editor,
            Some(json!({"process": true})),
        )
        .await;
    problem(&never, 422, "process");

    // Ticks: both selections, neither, an unknown status, a row past the end.
    let process = format!("/api/v1/datasets/{id}/process");
    for (body, field) in [
        (
            json!({"rows": [0], "status": "create", "process": true}),
            "status",
        ),
        (json!({"process": true}), "rows"),
        (json!({"status": "brand_new", "process": true}), "status"),
        (json!({"rows": [99], "process": true}), "rows"),
        (json!({"rows": [only], "process": true}), "rows"),
        (json!({"rows": [], "process": true}), "rows"),
    ] {
        let answer = e.call(Method::POST, &process, &editor, Some(body)).await;
        problem(&answer, 422, field);
    }

    // Shares: another organization's member, a deactivated member, the owner, not an id.
    let beta = foreign_admin(&mut e).await;
    let gone = another(&mut e, "gone@alpha.io", Role::Viewer).await;
    let deactivated = e
        .admin(
            Method::PATCH,
            &format!("/api/v1/users/{}", gone.id),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    let shares = format!("/api/v1/datasets/{id}/shares");
    for user in [
        beta.id.as_str(),
        gone.id.as_str(),
        editor_id.as_str(),
        "nobody",
    ] {
        let answer = e
            .call(
                Method::POST,
                &shares,
                &editor,
                Some(json!({"user_id": user})),
            )
            .await;
        problem(&answer, 422, "user_id");
    }
    let transfer = format!("/api/v1/datasets/{id}/transfer");
    for user in [editor_id.as_str(), beta.id.as_str(), gone.id.as_str()] {
        let answer = e
            .call(
                Method::POST,
                &transfer,
                &editor,
                Some(json!({"user_id": user})),
            )
            .await;
        problem(&answer, 422, "user_id");
    }
    let not_shared = e
        .call(
            Method::DELETE,
            &format!("{shares}/{}", gone.id),
            &editor,
            None,
        )
        .await;
    assert_eq!(not_shared.status, 404, "{}", not_shared.body);

    // Queries: an unknown status or issue filter, a limit out of range, an unknown parameter.
    let path = format!("/api/v1/datasets/{id}/records");
    for (query, field) in [
        ("status=brand_new", "status"),
        ("issues=lots", "issues"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("colour=red", "query"),
    ] {
        let answer = e
            .call(Method::GET, &format!("{path}?{query}"), &editor, None)
            .await;
        problem(&answer, 422, field);
    }
    let all_as_editor = e
        .call(Method::GET, "/api/v1/datasets?all=true", &editor, None)
        .await;
    assert_eq!(all_as_editor.status, 403, "{}", all_as_editor.body);
    let bad_id = e
        .call(Method::GET, "/api/v1/datasets/nope", &editor, None)
        .await;
    problem(&bad_id, 422, "id");

    assert_eq!(
        state_of(&mut e, &editor, &id).await,
        before,
        "refused requests changed the data set"
    );
    drop_tables(&source, &destination).await;
}

/// Every data-set route, with a body that would do something if it were allowed, in an order in
/// which each succeeds for someone allowed to do everything.
fn routes(
    id: &str,
    row: u64,
    sharee: &str,
    share_to: &str,
    transfer_to: &str,
) -> Vec<(Method, String, Option<Value>)> {
    let ds = format!("/api/v1/datasets/{id}");
    vec![
        (Method::GET, ds.clone(), None),
        (Method::GET, format!("{ds}/records"), None),
        (
            Method::PATCH,
            format!("{ds}/records/{row}"),
            Some(json!({"values": {"price": "3.00"}})),
        ),
        (
            Method::PATCH,
            format!("{ds}/records/{row}"),
            Some(json!({"process": false})),
        ),
        (Method::POST, format!("{ds}/refresh"), None),
        (
            Method::POST,
            format!("{ds}/process"),
            Some(json!({"status": "unchanged", "process": true})),
        ),
        (Method::POST, format!("{ds}/submit"), None),
        (
            Method::POST,
            format!("{ds}/shares"),
            Some(json!({"user_id": share_to})),
        ),
        (Method::DELETE, format!("{ds}/shares/{sharee}"), None),
        (
            Method::POST,
            format!("{ds}/transfer"),
            Some(json!({"user_id": transfer_to})),
        ),
        (Method::DELETE, ds, None),
    ]
}

#[tokio::test]
async fn every_data_set_route_is_for_its_owner_sharees_to_read_and_administrators() {
    let mut e = env("loopback").await;
    let (pipeline, source, destination) = parts(&mut e).await;
    let (editor, viewer, admin) = (e.editor.clone(), e.viewer.clone(), e.admin.clone());
    let owner = Who {
        id: me(&mut e, &editor).await,
        token: editor,
    };
    let sharee = Who {
        id: me(&mut e, &viewer).await,
        token: viewer,
    };
    let admin = Who {
        id: me(&mut e, &admin).await,
        token: admin,
    };
    let other_editor = another(&mut e, "eve@alpha.io", Role::Editor).await;
    let other_viewer = another(&mut e, "val@alpha.io", Role::Viewer).await;
    let beta = foreign_admin(&mut e).await;

    let id = pulled(&mut e, &owner.token, &pipeline).await;
    let shared = e
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{id}/shares"),
            &owner.token,
            Some(json!({"user_id": sharee.id})),
        )
        .await;
    assert_eq!(shared.status, 200, "{}", shared.body);
    assert_eq!(shared.json()["shared_with"], json!([sharee.id]));
    let all = records(&mut e, &owner.token, &id).await;
    let bad = row_of(&all, 4);

    // Lists: the owner's and the sharee's hold it; nobody else's; Administrators see it all.
    for (who, sees) in [
        (&owner, true),
        (&sharee, true),
        (&other_editor, false),
        (&other_viewer, false),
        (&beta, false),
    ] {
        let listed = e
            .call(Method::GET, "/api/v1/datasets", &who.token, None)
            .await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        let holds = listed.json()["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == id.as_str());
        assert_eq!(holds, sees, "{}", who.id);
    }
    let everything = e
        .call(Method::GET, "/api/v1/datasets?all=true", &admin.token, None)
        .await;
    assert_eq!(everything.status, 200);
    assert_eq!(everything.json()["datasets"][0]["id"], id.as_str());
    let foreign_all = e
        .call(Method::GET, "/api/v1/datasets?all=true", &beta.token, None)
        .await;
    assert_eq!(foreign_all.json()["datasets"], json!([]));
    let anonymous = call(&e.app, Method::GET, "/api/v1/datasets", None, None).await;
    assert_eq!(anonymous.status, 401);
    let anonymous = call(
        &e.app,
        Method::POST,
        "/api/v1/datasets",
        None,
        Some(&json!({"pipeline_id": pipeline}).to_string()),
    )
    .await;
    assert_eq!(anonymous.status, 401);

    // The sharee reads it (and may neither edit nor manage it).
    let seen = e
        .call(
            Method::GET,
            &format!("/api/v1/datasets/{id}"),
            &sharee.token,
            None,
        )
        .await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.json()["may_edit"], false);
    assert_eq!(seen.json()["may_manage"], false);
    assert_eq!(records(&mut e, &sharee.token, &id).await, all);

    // Denied: anonymous (401), other members and another organization (404, as if it did not
    // exist), the sharee's writes (403 owner-only). None changes anything.
    let before = state_of(&mut e, &owner.token, &id).await;
    for (method, path, body) in routes(&id, bad, &sharee.id, &other_viewer.id, &other_viewer.id) {
        let text = body.as_ref().map(Value::to_string);
        let store = snapshot(&e.store.store).await.unwrap();
        let answer = call(&e.app, method.clone(), &path, None, text.as_deref()).await;
        assert_eq!(answer.status, 401, "anonymous {method} {path}");
        for who in [&other_editor, &other_viewer, &beta] {
            let answer = e
                .call(method.clone(), &path, &who.token, body.clone())
                .await;
            assert_eq!(
                answer.status, 404,
                "{} {method} {path}: {}",
                who.id, answer.body
            );
            assert_eq!(answer.content_type(), "application/problem+json");
            assert_eq!(answer.json()["type"], "urn:lockstep:problem:not-found");
        }
        if method != Method::GET {
            let answer = e
                .call(method.clone(), &path, &sharee.token, body.clone())
                .await;
            assert_eq!(
                answer.status, 403,
                "sharee {method} {path}: {}",
                answer.body
            );
            assert_eq!(answer.json()["type"], "urn:lockstep:problem:owner-only");
        }
        assert_eq!(
            snapshot(&e.store.store).await.unwrap(),
            store,
            "a denied {method} {path} changed the store"
        );
    }
    assert_eq!(
        state_of(&mut e, &owner.token, &id).await,
        before,
        "denied requests changed the data set"
    );

    // The owner and an Administrator may do everything, each to a data set of the owner's
    // (shared with the sharee): the owner hands theirs to the Administrator and then has no
    // access; the Administrator hands the other to another Editor and deletes it.
    let second = pulled(&mut e, &owner.token, &pipeline).await;
    let shared = e
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{second}/shares"),
            &owner.token,
            Some(json!({"user_id": sharee.id})),
        )
        .await;
    assert_eq!(shared.status, 200);
    for (who, target, heir) in [(&owner, &id, &admin), (&admin, &second, &other_editor)] {
        let all = records(&mut e, &who.token, target).await;
        let bad = row_of(&all, 4);
        for (method, path, body) in routes(target, bad, &sharee.id, &other_viewer.id, &heir.id) {
            let answer = e
                .call(method.clone(), &path, &who.token, body.clone())
                .await;
            let last = path.rsplit('/').next().unwrap();
            let expected = match (method.as_str(), last) {
                ("POST", "refresh" | "submit") => 202,
                // The owner handed it over just before.
                ("DELETE", t) if t == target.as_str() && who.id == owner.id => 404,
                ("DELETE", t) if t == target.as_str() => 204,
                _ => 200,
            };
            assert_eq!(
                answer.status, expected,
                "{} {method} {path}: {}",
                who.id, answer.body
            );
            if expected == 202 {
                let done = settled(&mut e, &who.token, target).await;
                let want = if last == "refresh" {
                    "ready"
                } else {
                    "submitted"
                };
                assert_eq!(done["state"], want, "{done}");
            }
            if last == "transfer" {
                assert_eq!(answer.json()["owner"], heir.id.as_str());
                assert_eq!(answer.json()["may_manage"], who.id == admin.id);
            }
        }
        let after = e
            .call(
                Method::GET,
                &format!("/api/v1/datasets/{target}"),
                &admin.token,
                None,
            )
            .await;
        if who.id == owner.id {
            assert_eq!(after.status, 200, "{}", after.body);
            assert_eq!(after.json()["owner"], admin.id.as_str());
            let shared_with = after.json()["shared_with"].clone();
            assert_eq!(
                shared_with,
                json!([other_viewer.id]),
                "shares: {shared_with}"
            );
        } else {
            assert_eq!(after.status, 404, "{}", after.body);
        }
    }
    drop_tables(&source, &destination).await;
}

#[tokio::test]
async fn a_member_turns_the_removal_notice_off_and_on_for_themselves_only() {
    let mut e = env("loopback").await;
    let (editor, viewer) = (e.editor.clone(), e.viewer.clone());
    let mine = e.call(Method::GET, "/api/v1/me", &editor, None).await;
    assert_eq!(mine.json()["dataset_removal_notice"], true, "on by default");
    let off = e
        .call(
            Method::PUT,
            "/api/v1/me/settings",
            &editor,
            Some(json!({"dataset_removal_notice": false})),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.json(), json!({"dataset_removal_notice": false}));
    let mine = e.call(Method::GET, "/api/v1/me", &editor, None).await;
    assert_eq!(mine.json()["dataset_removal_notice"], false);
    let theirs = e.call(Method::GET, "/api/v1/me", &viewer, None).await;
    assert_eq!(
        theirs.json()["dataset_removal_notice"],
        true,
        "another's setting changed"
    );
    for body in [
        json!({"dataset_removal_notice": "no"}),
        json!({}),
        json!({"notice": true}),
    ] {
        let refused = e
            .call(
                Method::PUT,
                "/api/v1/me/settings",
                &editor,
                Some(body.clone()),
            )
            .await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.body);
        assert_eq!(refused.content_type(), "application/problem+json");
    }
    let anonymous = call(
        &e.app,
        Method::PUT,
        "/api/v1/me/settings",
        None,
        Some(r#"{"dataset_removal_notice": true}"#),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    let on = e
        .call(
            Method::PUT,
            "/api/v1/me/settings",
            &editor,
            Some(json!({"dataset_removal_notice": true})),
        )
        .await;
    assert_eq!(on.json()["dataset_removal_notice"], true);
    let mine = e.call(Method::GET, "/api/v1/me", &editor, None).await;
    assert_eq!(mine.json()["dataset_removal_notice"], true);
}
