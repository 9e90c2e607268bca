//! Teams and data policies through the API: bad input answered as problems naming the field
//! with nothing changed, a redacted sample, "view as" for Administrators only.

use super::connections::env;
use super::pipelines::{pg, postgres_connection, unique};
use axum::http::Method;
use serde_json::json;

const SSN: &str = "SSN-CANARY-4417";

#[tokio::test]
async fn policies_through_the_api() {
    let mut e = env("loopback").await;
    let table = unique("pol_api");
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE {table} (id integer PRIMARY KEY, region text, ssn text); \
             INSERT INTO {table} VALUES (1, 'EU', '{SSN}'), (2, 'US', 'SSN-2');"
        ))
        .await
        .unwrap();
    let conn = postgres_connection(&mut e, "warehouse").await;
    let object = format!("public.{table}");

    let team = e
        .admin(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "north"})),
        )
        .await;
    assert_eq!(team.status, 201, "{}", team.body);
    let team_id = team.json()["id"].as_str().unwrap().to_owned();
    let twice = e
        .admin(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "north"})),
        )
        .await;
    assert_eq!(twice.status, 409, "{}", twice.body);

    // A row filter that does not compile: 422 naming the rule's field, nothing stored.
    let bad = e
        .admin(
            Method::PUT,
            "/api/v1/policies/ownership",
            Some(
                json!({"enabled": true, "rules": [{"team_id": team_id, "connection_id": conn,
                "object": object, "filter": "region == "}]}),
            ),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["field"], "rules[0].filter");
    let stored = e
        .admin(Method::GET, "/api/v1/policies/ownership", None)
        .await;
    assert_eq!(stored.json(), json!({"enabled": false, "rules": []}));

    // Everybody sees `ssn` masked, the region only of EU records for the team.
    let put = e
        .admin(
            Method::PUT,
            "/api/v1/policies/redaction",
            Some(json!({"enabled": true, "rules": [{"field": "ssn", "kind": "mask"}]})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let put = e
        .admin(
            Method::PUT,
            "/api/v1/policies/ownership",
            Some(
                json!({"enabled": true, "rules": [{"team_id": team_id, "connection_id": conn,
                "object": object, "filter": "region == 'EU'"}]}),
            ),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let sample_path = format!("/api/v1/connections/{conn}/objects/{object}/sample?limit=10");
    let sample = e.admin(Method::GET, &sample_path, None).await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    let records = sample.json()["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 2, "Administrators are not row-filtered");
    assert!(records.iter().all(|r| r["ssn"] == "••••"));
    let as_team = e
        .admin(
            Method::GET,
            &format!("{sample_path}&view_as=team:{team_id}"),
            None,
        )
        .await;
    assert_eq!(as_team.status, 200, "{}", as_team.body);
    let records = as_team.json()["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["region"], "EU");
    let bogus = e
        .admin(Method::GET, &format!("{sample_path}&view_as=nobody"), None)
        .await;
    assert_eq!(bogus.status, 422, "{}", bogus.body);
    assert_eq!(bogus.json()["field"], "view_as");
    // Only Administrators view as someone else; an Editor in no team sees no record of an
    // object with row filters.
    let editor = e.editor.clone();
    let denied = e
        .call(
            Method::GET,
            &format!("{sample_path}&view_as=team:{team_id}"),
            &editor,
            None,
        )
        .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    let own = e.call(Method::GET, &sample_path, &editor, None).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.json()["records"], json!([]));
    let events = e
        .admin(Method::GET, "/api/v1/audit/events?limit=500", None)
        .await;
    let actions: Vec<String> = events.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ev| ev["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    for action in ["team.created", "policy.changed", "policy.viewed_as"] {
        assert!(actions.iter().any(|a| a == action), "{action} audited");
    }
    // The masked value reached no answer, log line or stored row.
    e.assert_never_shown(SSN).await;
}

const MAIL: &str = "canary-6b2f@example.com";

/// A pipeline that scrambles a column: the destination holds only hashes (equal values alike),
/// and the clear value reaches no answer, audit event, log line or row of the hub's store.
#[tokio::test]
async fn a_scrambling_pipeline_leaves_no_clear_value_behind() {
    let mut e = env("loopback").await;
    let _worker = super::pipelines::worker(&e);
    let source = unique("scr_src");
    let target = unique("scr_dst");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE {source} (id integer PRIMARY KEY, email text); \
         INSERT INTO {source} VALUES (1, '{MAIL}'), (2, '{MAIL}'), (3, 'x@example.com');"
    ))
    .await
    .unwrap();
    let conn = postgres_connection(&mut e, "warehouse").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({"name": "hashed", "mode": "full_refresh",
                "source": {"connection_id": conn, "object": format!("public.{source}")},
                "destination": {"connection_id": conn, "object": format!("public.{target}")},
                "mappings": [{"source": "id", "destination": "id"},
                             {"source": "email", "destination": "email",
                              "transform": {"redact": "scramble"}}]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();
    let done = super::pipelines::run(&mut e, &pipeline).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let rows = db
        .query(&format!("SELECT id, email FROM {target} ORDER BY id"), &[])
        .await
        .unwrap();
    let emails: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    assert!(emails.iter().all(|m| m.starts_with("scr_")), "{emails:?}");
    assert_eq!(emails[0], emails[1]);
    assert_ne!(emails[0], emails[2]);
    e.assert_never_shown(MAIL).await;
}
