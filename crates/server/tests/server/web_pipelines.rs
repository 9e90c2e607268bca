//! Pages: pipelines (in process, see `web.rs`): the form fed by discovery, errors next to their
//! inputs, runs started from the page and followed through the progress fragment against real
//! PostgreSQL, rejected records for Editors only, and what Viewers cannot do.

use super::connections::Env;
use super::pipelines::{mysql_connection, pg, postgres_connection, unique, worker};
use super::web::web_env;
use axum::http::Method;
use serde_json::{Value, json};

fn fields(list: &[(String, String)]) -> Vec<(&str, &str)> {
    list.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn pipelines_of(e: &mut Env) -> Vec<Value> {
    let listed = e.admin(Method::GET, "/api/v1/pipelines", None).await;
    assert_eq!(listed.status, 200);
    listed.json()["pipelines"].as_array().unwrap().clone()
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

#[tokio::test]
async fn editors_define_pipelines_from_discovery_run_them_and_read_rejected_records() {
    const REJECTED: &str = "<b>REJ-7f3a</b>";
    let source = unique("web_src");
    let target = unique("web_dst");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id bigint PRIMARY KEY, part_no text NOT NULL, price numeric(12,2) NOT NULL);
         INSERT INTO public.{source} VALUES (1, 'A-1', 12.50), (2, 'A-2', 0.00), (3, '{REJECTED}', -1.00), (4, 'A-4', 7.25);"
    ))
    .await
    .unwrap();
    let (mut e, mut admin, mut editor, mut viewer) = web_env("loopback").await;
    let src = postgres_connection(&mut e, "Parts source").await;
    let dst = postgres_connection(&mut e, "Warehouse").await;
    let object = format!("public.{source}");
    let destination = format!("public.{target}");

    // The form lists the connections; choosing the source lists its discovered objects (the
    // htmx fragment), choosing the object its fields in the mapping selects, one row each.
    let form = editor.get("/pipelines/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("Parts source") && form.body.contains("Warehouse"));
    assert!(
        form.body
            .contains(r#"hx-get="/pipelines/form/objects?role=source""#)
    );
    // Schedules are read in the organization's time zone: Editors see it, Administrators may
    // also follow a link to change it.
    assert!(
        form.body
            .contains("organization's time zone, <strong>UTC</strong>."),
        "{}",
        form.body
    );
    let as_admin = admin.get("/pipelines/new").await;
    assert!(
        as_admin
            .body
            .contains("<strong>UTC</strong> (<a href=\"/settings\">change it</a>)"),
        "{}",
        as_admin.body
    );
    let objects = editor
        .get(&format!(
            "/pipelines/form/objects?role=source&source.connection_id={src}"
        ))
        .await;
    assert_eq!(objects.status, 200, "{}", objects.body);
    assert!(
        objects
            .body
            .starts_with(r#"<div class="field" id="source-object-field">"#)
    );
    assert!(
        objects
            .body
            .contains(&format!(r#"<option value="{object}">"#)),
        "{}",
        objects.body
    );
    let chosen = editor
        .get(&format!(
            "/pipelines/new?source.connection_id={src}&source.object={object}"
        ))
        .await;
    assert_eq!(chosen.status, 200);
    for (i, field) in ["id", "part_no", "price"].iter().enumerate() {
        assert!(
            chosen.body.contains(&format!(
                r#"name="mappings[{i}].destination" value="{field}""#
            )),
            "{}",
            chosen.body
        );
        assert!(chosen.body.contains(&format!(
            r#"<option value="{field}" selected>{field}</option>"#
        )));
    }
    let fragment = editor
        .get(&format!(
            "/pipelines/form/fields?connection={src}&source.object={object}"
        ))
        .await;
    assert_eq!(fragment.status, 200);
    assert!(fragment.body.starts_with(r#"<div id="mappings-field">"#));
    assert!(
        fragment
            .body
            .contains(r#"<option value="part_no">part_no</option>"#)
    );
    // Mappings already there are kept (the htmx request includes them).
    let kept = editor
        .get(&format!(
            "/pipelines/form/fields?connection={src}&source.object={object}&mappings%5B0%5D.source=part_no&mappings%5B0%5D.destination=code"
        ))
        .await;
    assert!(
        kept.body
            .contains(r#"name="mappings[0].destination" value="code""#)
    );
    assert!(!kept.body.contains(r#"name="mappings[1].source""#));
    // The destination's objects are suggestions for a text input (it may be a new table).
    let suggested = editor
        .get(&format!(
            "/pipelines/form/objects?connection={dst}&role=destination&destination.object=public.new_one"
        ))
        .await;
    assert!(
        suggested
            .body
            .starts_with(r#"<div class="field" id="destination-object-field">"#)
    );
    assert!(
        suggested
            .body
            .contains(r#"value="public.new_one" list="destination-objects""#)
    );
    // The hint shows how the destination's kind names a table.
    assert!(
        suggested.body.contains("Named schema.table")
            && suggested.body.contains("<code>public.items</code>"),
        "{}",
        suggested.body
    );
    let shop = mysql_connection(&mut e, "Shop").await;
    let mysql_hint = editor
        .get(&format!(
            "/pipelines/form/objects?connection={shop}&role=destination"
        ))
        .await;
    assert!(
        mysql_hint.body.contains("Named database.table")
            && mysql_hint.body.contains("<code>shop.items</code>"),
        "{}",
        mysql_hint.body
    );
    assert!(
        suggested
            .body
            .contains(&format!(r#"<option value="{object}">"#))
    );
    // Without JavaScript, "Load objects and fields" shows the same and keeps what was typed.
    let reloaded = editor
        .post(
            "/pipelines",
            &[
                ("name", "typed name"),
                ("source.connection_id", &src),
                ("source.object", &object),
                ("destination.connection_id", &dst),
                ("reload", "1"),
            ],
        )
        .await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    assert!(reloaded.body.contains(r#"value="typed name""#));
    assert!(reloaded.body.contains(r#"name="mappings[2].source""#));

    // A rule with a CEL syntax error: 422, the message next to that rule's expression, nothing
    // typed lost, nothing created.
    let mut typed = pairs(&[
        ("name", "parts to warehouse"),
        ("source.connection_id", &src),
        ("source.object", &object),
        ("destination.connection_id", &dst),
        ("destination.object", &destination),
        ("mappings[0].source", "id"),
        ("mappings[0].destination", "id"),
        ("mappings[0].transform", ""),
        ("mappings[0].cast", ""),
        ("mappings[1].source", ""),
        ("mappings[1].destination", ""),
        ("mappings[1].transform", ""),
        ("mappings[1].cast", ""),
        ("mappings[2].source", "part_no"),
        ("mappings[2].destination", "item_code"),
        ("mappings[2].transform", ""),
        ("mappings[2].cast", ""),
        ("mappings[3].source", "price"),
        ("mappings[3].destination", "price"),
        ("mappings[3].transform", ""),
        ("mappings[3].cast", ""),
        ("rules[0].kind", "validation"),
        ("rules[0].expression", "price >= "),
        ("rules[0].target", ""),
        ("rules[0].type", ""),
        ("rules[0].level", "error"),
        ("rules[0].message", "price must not be negative"),
        ("mode", "full_refresh"),
        ("max_rejected_percent", "50"),
        ("key", "id"),
        ("cursor", ""),
        ("filter", ""),
        ("schedule", ""),
    ]);
    let refused = editor.post("/pipelines", &fields(&typed)).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains(r#"aria-invalid="true" aria-describedby="rules-0-expression-error""#),
        "{}",
        refused.body
    );
    let message = text_of(&refused.body, "rules-0-expression-error");
    assert!(
        message.contains("line") && message.contains("column"),
        "{message}"
    );
    assert!(refused.body.contains(r#"value="parts to warehouse""#));
    assert!(
        refused.body.contains(">price &#62;=</textarea>"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains(r#"name="mappings[1].destination" value="item_code""#)
    );
    assert!(pipelines_of(&mut e).await.is_empty());

    // Fixed, it is created with the rename and the rule.
    typed.retain(|(k, _)| k != "rules[0].expression");
    typed.push(("rules[0].expression".to_owned(), "price >= 0.0".to_owned()));
    let created = editor.post("/pipelines", &fields(&typed)).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let location = created.location().unwrap().to_owned();
    let id = location
        .strip_prefix("/pipelines/")
        .and_then(|rest| rest.strip_suffix("?notice=created"))
        .unwrap()
        .to_owned();
    let stored = e
        .admin(Method::GET, &format!("/api/v1/pipelines/{id}"), None)
        .await;
    assert_eq!(stored.status, 200);
    let stored = stored.json();
    assert_eq!(
        stored["mappings"],
        json!([{"source": "id", "destination": "id"},
               {"source": "part_no", "destination": "item_code"},
               {"source": "price", "destination": "price"}])
    );
    assert_eq!(
        stored["rules"],
        json!([{"kind": "validation", "expression": "price >= 0.0", "level": "error",
                "message": "price must not be negative"}])
    );
    assert_eq!(stored["key"], json!(["id"]));
    let page = editor.get(&location).await;
    assert!(page.body.contains("Created.") && page.body.contains("Run now"));

    // The edit form shows the definition; an invalid schedule is shown next to its input.
    let edit = editor.get(&format!("/pipelines/{id}/edit")).await;
    assert_eq!(edit.status, 200);
    assert!(
        edit.body
            .contains(r#"name="mappings[1].destination" value="item_code""#)
    );
    let mut changed = typed.clone();
    changed.retain(|(k, _)| k != "schedule");
    changed.push(("schedule".to_owned(), "every day".to_owned()));
    let bad = editor
        .post(&format!("/pipelines/{id}"), &fields(&changed))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(text_of(&bad.body, "schedule-error").contains("cron"));

    // Viewers see the pipeline but none of the buttons, and every change is refused.
    let list = viewer.get("/pipelines").await;
    assert!(list.body.contains("parts to warehouse"));
    assert!(!list.body.contains("New pipeline"));
    let seen = viewer.get(&format!("/pipelines/{id}")).await;
    assert_eq!(seen.status, 200);
    for button in ["Run now", "/edit", "/delete"] {
        assert!(!seen.body.contains(button), "{button}");
    }
    assert_eq!(viewer.get("/pipelines/new").await.status, 403);
    let mut renamed = typed.clone();
    renamed.retain(|(k, _)| k != "name");
    renamed.push(("name".to_owned(), "renamed by a viewer".to_owned()));
    for (path, form) in [
        (format!("/pipelines/{id}/run"), Vec::new()),
        (format!("/pipelines/{id}"), renamed.clone()),
        (format!("/pipelines/{id}/delete"), Vec::new()),
        ("/pipelines".to_owned(), renamed.clone()),
    ] {
        let refused = viewer.post(&path, &fields(&form)).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
    }
    // Without the CSRF token even an Editor's post is refused.
    let forged = editor
        .post_raw(&format!("/pipelines/{id}/delete"), &[])
        .await;
    assert_eq!(forged.status, 403);
    let forged = editor.post_raw("/pipelines", &fields(&renamed)).await;
    assert_eq!(forged.status, 403);
    let all = pipelines_of(&mut e).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["name"], "parts to warehouse");
    assert!(all[0].get("last_run").is_none(), "a run was started");

    // Run now: to the run's page; a second one while it is queued is refused readably.
    let started = editor.post(&format!("/pipelines/{id}/run"), &[]).await;
    assert_eq!(started.status, 303, "{}", started.body);
    let run_page = started.location().unwrap().to_owned();
    assert!(run_page.starts_with(&format!("/pipelines/{id}/runs/")));
    assert!(run_page.ends_with("?notice=started"));
    let run_path = run_page.trim_end_matches("?notice=started").to_owned();
    let again = editor.post(&format!("/pipelines/{id}/run"), &[]).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("already queued or running"));
    let queued = editor.get(&run_page).await;
    assert!(queued.body.contains("The run was started."));
    assert!(queued.body.contains(&format!(
        r#"hx-get="{run_path}/progress" hx-trigger="every 1s""#
    )));
    assert!(queued.body.contains(r#"data-state="queued""#));

    // A worker executes it; the fragment answers 286 once it has ended.
    let _worker = worker(&e);
    let mut done = None;
    for _ in 0..300 {
        let fragment = editor.get(&format!("{run_path}/progress")).await;
        if fragment.status.as_u16() == 286 {
            done = Some(fragment);
            break;
        }
        assert_eq!(fragment.status, 200);
        assert!(fragment.body.starts_with(r#"<div id="run-progress""#));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let done = done.expect("the run did not end within 30 s");
    assert!(
        done.body
            .contains(r#"data-state="succeeded_with_rejections""#),
        "{}",
        done.body
    );
    assert!(!done.body.contains("hx-trigger"));
    assert_eq!(done.headers.get("hx-refresh").unwrap(), "true");
    assert_eq!(text_of(&done.body, "run-read"), "4");
    assert_eq!(text_of(&done.body, "run-written"), "3");
    assert_eq!(text_of(&done.body, "run-rejected"), "1");
    let rows = db
        .query(
            &format!("SELECT id, item_code FROM public.{target} ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        rows,
        [(1, "A-1"), (2, "A-2"), (4, "A-4")].map(|(i, c)| (i, c.to_owned()))
    );

    // The Editor reads the rejected record (escaped); the Viewer only its count.
    let finished = editor.get(&run_path).await;
    assert_eq!(finished.status, 200);
    assert!(finished.body.contains("price must not be negative"));
    assert!(finished.body.contains("&#60;b&#62;REJ-7f3a&#60;/b&#62;"));
    assert!(!finished.body.contains(REJECTED));
    assert!(!finished.body.contains("Cancel run"));
    let viewed = viewer.get(&run_path).await;
    assert_eq!(viewed.status, 200);
    assert!(
        viewed
            .body
            .contains(r#"data-state="succeeded_with_rejections""#)
    );
    assert!(!viewed.body.contains("REJ-7f3a"));
    assert!(viewed.body.contains("Your role cannot read the values"));
    let history = viewer.get(&format!("/pipelines/{id}")).await;
    assert!(
        history
            .body
            .contains(r#"badge state-succeeded_with_rejections">succeeded with rejections<"#)
    );

    // A queued run can be cancelled (not by a Viewer); the page then shows it ended.
    drop(_worker);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let second = editor.post(&format!("/pipelines/{id}/run"), &[]).await;
    assert_eq!(second.status, 303, "{}", second.body);
    let second = second
        .location()
        .unwrap()
        .trim_end_matches("?notice=started")
        .to_owned();
    assert_eq!(
        viewer.post(&format!("{second}/cancel"), &[]).await.status,
        403
    );
    let cancelled = editor.post(&format!("{second}/cancel"), &[]).await;
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    assert_eq!(
        cancelled.location().unwrap(),
        format!("{second}?notice=cancelled")
    );
    let page = editor.get(cancelled.location().unwrap()).await;
    assert!(page.body.contains("Cancellation was requested."));
    assert!(page.body.contains(r#"data-state="cancelled""#));
    assert!(!page.body.contains("hx-trigger"));

    // Deleting (with the token) removes it.
    let deleted = editor.post(&format!("/pipelines/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(deleted.location(), Some("/pipelines?notice=deleted"));
    assert!(pipelines_of(&mut e).await.is_empty());

    db.batch_execute(&format!(
        "DROP TABLE public.{source}; DROP TABLE IF EXISTS public.{target};"
    ))
    .await
    .unwrap();
}

/// Without JavaScript, "Add mapping", "Add rule" and "Remove" are plain submits that show the
/// form again with the row added or removed, keep everything typed, and save nothing.
#[tokio::test]
async fn row_buttons_work_without_javascript() {
    let (mut e, _admin, mut editor, _viewer) = web_env("loopback").await;
    let before = pipelines_of(&mut e).await.len();
    let typed = [
        ("name", "typed by hand"),
        ("source.connection_id", ""),
        ("source.object", ""),
        ("destination.connection_id", ""),
        ("destination.object", ""),
        ("mappings[0].source", "id"),
        ("mappings[0].destination", "item_id"),
        ("rules[0].kind", "validation"),
        ("rules[0].expression", "id > 0"),
        ("rules[0].message", "first rule"),
        ("rules[1].kind", "validation"),
        ("rules[1].expression", "id < 100"),
        ("rules[1].message", "second rule"),
        ("mode", "full_refresh"),
    ];
    let send = |action: &'static str| {
        let mut list: Vec<(&str, &str)> = typed.to_vec();
        list.push(("row_action", action));
        list
    };

    let added = editor.post("/pipelines", &send("add:rules")).await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(
        added.body.contains(r#"id="rules-2-expression""#),
        "a third rule row"
    );
    assert!(added.body.contains("typed by hand") && added.body.contains("second rule"));

    let added = editor.post("/pipelines", &send("add:mappings")).await;
    assert_eq!(added.status, 200);
    assert!(
        added.body.contains(r#"id="mappings-1-destination""#),
        "a second mapping row"
    );
    assert!(added.body.contains("item_id"));

    let removed = editor.post("/pipelines", &send("remove:rules:0")).await;
    assert_eq!(removed.status, 200);
    assert!(
        !removed.body.contains("first rule"),
        "the first rule is gone"
    );
    assert!(removed.body.contains("second rule"));
    assert!(
        !removed.body.contains(r#"id="rules-1-expression""#),
        "one rule row is left"
    );

    let removed = editor.post("/pipelines", &send("remove:mappings:0")).await;
    assert_eq!(removed.status, 200);
    assert!(!removed.body.contains("item_id"));

    // the buttons are submit buttons that skip the browser's validation
    let form = editor.get("/pipelines/new").await;
    assert!(
        form.body.contains(
            r#"<button type="submit" name="row_action" value="add:rules" formnovalidate"#
        )
    );
    // Saving what cannot be saved shows a summary at the top that links to the field.
    let refused = editor.post("/pipelines", &typed).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let summary = &refused.body[refused
        .body
        .find(r#"id="error-summary""#)
        .expect("a summary")..];
    let link = &summary[summary.find("<a href=\"#").unwrap() + 10..];
    let anchor = &link[..link.find('"').unwrap()];
    assert!(
        refused.body.contains(&format!(r#"id="{anchor}""#)),
        "the summary links to #{anchor}, an input of the form"
    );
    assert_eq!(
        pipelines_of(&mut e).await.len(),
        before,
        "nothing was saved"
    );
}
