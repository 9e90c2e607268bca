//! Pages: "What is stored about us", the export links in Settings, and the run history form on
//! a pipeline's page (Administrators only).

use super::web::{shows_as_text, web_env};
use lockstep_app::{NewConnection, RunState};
use serde_json::json;

#[tokio::test]
async fn administrators_see_the_footprint_and_download_the_exports() {
    let (_env, mut admin, mut editor, _viewer) = web_env("loopback").await;
    let settings = admin.get("/settings").await;
    assert_eq!(settings.status, 200, "{}", settings.body);
    for link in [
        "href=\"/settings/footprint\"",
        "href=\"/api/v1/organization/export\"",
        "href=\"/api/v1/audit/ledger/export\"",
    ] {
        assert!(settings.body.contains(link), "no {link}");
    }
    assert!(shows_as_text(&settings, "Export configuration"));

    let page = admin.get("/settings/footprint").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "Per-record run errors (sealed record values)",
        "Deleted 7 days after it was made",
        "Kept for good",
        "Ada",
    ] {
        assert!(shows_as_text(&page, text), "no {text}: {}", page.body);
    }
    assert!(page.body.contains("id=\"kind-users\""));

    // The download links work with the page session.
    let export = admin.get("/api/v1/organization/export").await;
    assert_eq!(export.status, 200, "{}", export.body);
    assert!(export.body.contains("admin@alpha.io"));

    assert_eq!(editor.get("/settings/footprint").await.status, 403);
}

#[tokio::test]
async fn administrators_delete_a_pipelines_run_history_from_its_page() {
    let (env, mut admin, mut editor, _viewer) = web_env("loopback").await;
    let caller = env.hub.authenticate(&env.admin).await.unwrap();
    let files = env
        .hub
        .create_connection(
            &caller,
            NewConnection {
                name: "exports".into(),
                kind: "files".into(),
                config: json!({}),
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    env.hub
        .upload_file(&caller, files.id, "parts.csv", b"id,name\n1,a\n")
        .await
        .unwrap();
    env.hub
        .discover_connection(&caller, files.id)
        .await
        .unwrap();
    let warehouse = env
        .hub
        .create_connection(
            &caller,
            NewConnection {
                name: "warehouse".into(),
                kind: "postgres".into(),
                config: json!({"host": "127.0.0.1", "database": "x", "user": "x"}),
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    let pipeline = env
        .hub
        .create_pipeline(
            &caller,
            "parts",
            json!({"source": {"connection_id": files.id.to_string(), "object": "uploads/parts.csv"},
                "destination": {"connection_id": warehouse.id.to_string(), "object": "parts"},
                "mode": "full_refresh"}),
        )
        .await
        .unwrap();
    // One finished run (cancelled before it started).
    let run = env.hub.start_run(&caller, pipeline.id).await.unwrap();
    let ended = env
        .hub
        .cancel_run(&caller, pipeline.id, run.id)
        .await
        .unwrap();
    assert_eq!(ended.state, RunState::Cancelled);
    let path = format!("/pipelines/{}", pipeline.id);

    let page = admin.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("action=\"/pipelines/"));
    assert!(shows_as_text(&page, "Delete run history"));
    let seen = editor.get(&path).await;
    assert_eq!(seen.status, 200);
    assert!(!shows_as_text(&seen, "Delete run history"));
    let refused = editor
        .post(&format!("{path}/runs/delete"), &[("before", "2999-01-01")])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // A day that is no day: the page again, nothing deleted.
    let bad = admin
        .post(&format!("{path}/runs/delete"), &[("before", "soon")])
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(
        env.hub
            .list_runs(&caller, pipeline.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    let done = admin
        .post(&format!("{path}/runs/delete"), &[("before", "2999-01-01")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location(),
        Some(format!("{path}?notice=history-deleted").as_str())
    );
    assert!(
        env.hub
            .list_runs(&caller, pipeline.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
