//! The start page (in process, see `web.rs`): a signed-in member of any role lands on the
//! dashboard, which shows the organization's recent runs with their state, the failures and
//! rejections of the last days with each failed run's reason, and never another organization's
//! runs.

use super::connections::{Env, pg_parts};
use super::pipelines::{pg, postgres_connection, unique, worker};
use super::web::{Browser, PASSWORD, web_env};
use axum::http::Method;
use serde_json::{Value, json};

/// Makes a pipeline through the API with `token`; answers its id.
async fn pipeline(e: &mut Env, token: &str, spec: Value) -> String {
    let created = e
        .call(Method::POST, "/api/v1/pipelines", token, Some(spec))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.json()["id"].as_str().unwrap().to_owned()
}

/// Runs the pipeline through the API with `token` and waits for the run to end.
async fn run(e: &mut Env, token: &str, pipeline: &str) -> Value {
    let started = e
        .call(
            Method::POST,
            &format!("/api/v1/pipelines/{pipeline}/runs"),
            token,
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
                token,
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

/// The text of the element with `id` (up to its first `<`).
fn text_of<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[at..];
    let start = rest.find('>').unwrap() + 1;
    let rest = &rest[start..];
    rest[..rest.find('<').unwrap()].trim()
}

fn spec(name: &str, conn: &str, source: &str, target: &str, threshold: Option<u32>) -> Value {
    let mut spec = json!({"name": name,
        "source": {"connection_id": conn, "object": format!("public.{source}")},
        "destination": {"connection_id": conn, "object": format!("public.{target}")},
        "rules": [{"kind": "validation", "expression": "price >= 0.0", "message": "price must not be negative"}],
        "mode": "full_refresh"});
    if let Some(threshold) = threshold {
        spec["max_rejected_percent"] = json!(threshold);
    }
    spec
}

#[tokio::test]
async fn members_of_every_role_start_on_a_dashboard_of_their_own_organizations_runs() {
    let source = unique("dash_src");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id bigint PRIMARY KEY, price numeric(10,2) NOT NULL);
         INSERT INTO public.{source} VALUES (1, 10.00), (2, 5.00), (3, -1.00), (4, 7.00);"
    ))
    .await
    .unwrap();
    let (mut e, _admin, mut editor, mut viewer) = web_env("loopback").await;
    let _worker = worker(&e);

    // Before any pipeline the dashboard says so, and names no section that has nothing in it
    // yet (data sets are only in the navigation).
    let landing = editor.get("/").await;
    assert_eq!(landing.location(), Some("/dashboard"));
    let empty = editor.get("/dashboard").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.body.contains("No pipeline yet."), "{}", empty.body);
    let main = &empty.body[empty.body.find("<main").unwrap()..];
    assert!(!main.to_lowercase().contains("data set"));

    // Alpha: one run committed with a rejection (threshold 50%), one failed on the default 5%.
    let conn = postgres_connection(&mut e, "Parts").await;
    let admin = e.admin.clone();
    let editor_token = e.editor.clone();
    let mut scheduled = spec(
        "Prices lenient",
        &conn,
        &source,
        &unique("dash_a"),
        Some(50),
    );
    scheduled["schedule"] = json!("0 3 * * *");
    let lenient = pipeline(&mut e, &admin, scheduled).await;
    let strict = pipeline(
        &mut e,
        &admin,
        spec("Prices strict", &conn, &source, &unique("dash_b"), None),
    )
    .await;
    let amber = run(&mut e, &editor_token, &lenient).await;
    assert_eq!(amber["state"], "succeeded_with_rejections", "{amber}");
    let failed = run(&mut e, &editor_token, &strict).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let reason = failed["message"].as_str().unwrap().to_owned();
    assert!(reason.contains("records read were rejected"), "{reason}");

    // Beta, in the same hub: its failed run must never show in alpha's dashboard.
    let created = e
        .hub
        .create_organization(&e.operator, "beta", "admin@beta.io")
        .await
        .unwrap();
    e.hub
        .accept_invitation(
            created.invitation_token.expose(),
            &lockstep_app::Password::new(PASSWORD.to_owned()),
            "Bea",
        )
        .await
        .unwrap();
    let beta = e
        .hub
        .login(
            "admin@beta.io",
            &lockstep_app::Password::new(PASSWORD.to_owned()),
            None,
        )
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned();
    let (host, port, database, user) = pg_parts();
    let made = e
        .call(
            Method::POST,
            "/api/v1/connections",
            &beta,
            Some(json!({"name": "Beta store", "kind": "postgres",
                "config": {"host": host, "port": port, "database": database, "user": user, "tls": "disable"},
                "secrets": {}})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let beta_conn = made.json()["id"].as_str().unwrap().to_owned();
    let found = e
        .call(
            Method::POST,
            &format!("/api/v1/connections/{beta_conn}/discover"),
            &beta,
            None,
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let beta_pipeline = pipeline(
        &mut e,
        &beta,
        spec("Beta ledger", &beta_conn, &source, &unique("dash_c"), None),
    )
    .await;
    let beta_run = run(&mut e, &beta, &beta_pipeline).await;
    assert_eq!(beta_run["state"], "failed", "{beta_run}");
    let beta_run = beta_run["id"].as_str().unwrap().to_owned();

    let amber_id = amber["id"].as_str().unwrap();
    let failed_id = failed["id"].as_str().unwrap();
    for browser in [&mut editor, &mut viewer] {
        let page = browser.get("/dashboard").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let body = &page.body;
        // The header links the dashboard.
        assert!(body.contains(r#"<a href="/dashboard" aria-current="page">Dashboard</a>"#));
        // Recent runs with their state (amber for rejections), linked to the run's page.
        assert!(
            body.contains(&format!(
                r#"<a href="/pipelines/{lenient}/runs/{amber_id}" class="badge state-succeeded_with_rejections">succeeded with rejections</a>"#
            )),
            "{body}"
        );
        assert!(body.contains(&format!(
            r#"<a href="/pipelines/{strict}/runs/{failed_id}" class="badge state-failed">failed</a>"#
        )));
        assert!(body.contains("Prices lenient") && body.contains("Prices strict"));
        // The last days add up, and the failed run shows its reason.
        assert_eq!(text_of(body, "count-runs"), "2");
        assert_eq!(text_of(body, "count-succeeded"), "0");
        assert!(body.contains(r#"id="count-failed"><span class="badge state-failed">1</span>"#));
        assert!(body.contains(
            r#"id="count-with-rejections"><span class="badge state-succeeded_with_rejections">1</span>"#
        ));
        assert_eq!(text_of(body, "count-rejected"), "2");
        let failures = &body
            [body.find("<h3>Failed runs</h3>").unwrap()..body.find("id=\"recent-runs\"").unwrap()];
        assert!(failures.contains(&reason), "{failures}");
        assert!(failures.contains("Prices strict") && !failures.contains("Prices lenient"));
        // Pipelines by their next scheduled run: only those on a schedule.
        let next = &body[body.find("id=\"next-runs\"").unwrap()..];
        assert!(
            next.contains(&format!(
                r#"<a href="/pipelines/{lenient}">Prices lenient</a>"#
            )) && next.contains("03:00 UTC")
                && next.contains("0 3 * * *"),
            "{next}"
        );
        assert!(!next.contains("Prices strict"));
        // Never the other organization's.
        assert!(
            !body.contains("Beta ledger")
                && !body.contains(&beta_run)
                && !body.contains(&beta_pipeline)
        );
        assert!(!body.contains("No pipeline yet."));
    }

    // Beta's own member sees only beta's run.
    let mut bea = Browser::signed_in(&e.app, "admin@beta.io").await;
    let page = bea.get("/dashboard").await;
    assert!(page.body.contains("Beta ledger") && page.body.contains(&beta_run));
    assert!(!page.body.contains("Prices strict") && !page.body.contains(amber_id));
    assert_eq!(text_of(&page.body, "count-runs"), "1");

    // Eight days later the failures have left the last days, the runs are still recent.
    e.clock.advance(time::Duration::days(8));
    let mut later = Browser::signed_in(&e.app, "viewer@alpha.io").await;
    let page = later.get("/dashboard").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(text_of(&page.body, "count-runs"), "0");
    assert!(page.body.contains("No run failed in the last 7 days."));
    assert!(page.body.contains(failed_id) && page.body.contains(amber_id));
}
