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

    // the form's page gives the CSRF token the posts carry
    assert_eq!(editor.get("/pipelines/new").await.status, 200);
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

#[tokio::test]
async fn a_run_page_groups_rejected_records_by_reason_pages_them_and_counts_add_up() {
    let source = unique("web_rej_src");
    let target = unique("web_rej_dst");
    let db = pg().await;
    // 1..=60 negative prices (rejected by the rule), 61 a quantity that is no integer (an
    // error), 62 a high price (a warning, written), 63 filtered out, 64 fine.
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL, qty text NOT NULL);
         INSERT INTO public.{source} SELECT i, 'neg ' || i, -i, '1' FROM generate_series(1, 60) i;
         INSERT INTO public.{source} VALUES (61, 'lots', 4.00, 'many'), (62, 'big', 5000.00, '2'),
             (63, 'skip me', 1.00, '1'), (64, 'fine', 1.00, '1');"
    ))
    .await
    .unwrap();
    let (mut e, _admin, mut editor, mut viewer) = web_env("loopback").await;
    let src = postgres_connection(&mut e, "Shop").await;
    let dst = postgres_connection(&mut e, "Warehouse").await;
    let token = e.editor.clone();
    let created = e
        .call(
            Method::POST,
            "/api/v1/pipelines",
            &token,
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
                "filter": "id != 63",
                "mode": "full_refresh", "max_rejected_percent": 100})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let _worker = worker(&e);
    assert_eq!(editor.get(&format!("/pipelines/{id}")).await.status, 200);
    let started = editor.post(&format!("/pipelines/{id}/run"), &[]).await;
    assert_eq!(started.status, 303, "{}", started.body);
    let run_path = started
        .location()
        .unwrap()
        .trim_end_matches("?notice=started")
        .to_owned();
    let mut ended = false;
    for _ in 0..300 {
        if editor
            .get(&format!("{run_path}/progress"))
            .await
            .status
            .as_u16()
            == 286
        {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ended, "the run did not end within 30 s");

    let page = editor.get(&run_path).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    // read 64 = written 2 + rejected 61 + filtered out 1 (+ nothing held back)
    assert_eq!(text_of(body, "run-read"), "64");
    assert_eq!(text_of(body, "run-written"), "2");
    assert_eq!(text_of(body, "run-rejected"), "61");
    assert_eq!(text_of(body, "run-skipped"), "1");
    assert_eq!(text_of(body, "run-warnings"), "1");
    assert!(!body.contains("run-held-back"));
    assert!(
        body.contains("<dt>Started by</dt><dd title=\"") && body.contains("\">Someone</dd>"),
        "{body}"
    );
    // grouped by the rule's message with a count; the error apart; the warning visible
    let verdicts =
        &body[body.find("Rules that said no").unwrap()..body.find("<h3>Errors</h3>").unwrap()];
    assert!(
        verdicts.contains(">price must not be negative</a></td>\n    <td>60</td>"),
        "{verdicts}"
    );
    let errors =
        &body[body.find("<h3>Errors</h3>").unwrap()..body.find("<h3>Warnings</h3>").unwrap()];
    assert!(
        errors.contains(">cannot cast &#39;qty&#39; to integer</a></td>\n    <td>1</td>"),
        "{errors}"
    );
    assert!(!errors.contains("price must not be negative"));
    let warnings =
        &body[body.find("<h3>Warnings</h3>").unwrap()..body.find("id=\"rejected\"").unwrap()];
    assert!(
        warnings.contains("<td>unusually high price</td>\n    <td>1</td>"),
        "{warnings}"
    );
    // a page of 50 records, the offending field first, and a link to the next page
    assert!(body.contains("Page 1 of 2."));
    assert!(body.contains(r#"rel="next""#));
    assert!(body.contains("<th scope=\"col\">Offending fields</th>"));
    assert!(
        body.contains(r#"<dt class="mono">price</dt><dd class="mono"><strong>-1.00</strong></dd>"#),
        "{body}"
    );
    assert!(body.contains("rejected.csv"));
    let second = editor.get(&format!("{run_path}?page=2")).await;
    assert!(second.body.contains("Page 2 of 2."));
    assert!(second.body.contains("id = 61"));
    // one group only
    let only = editor
        .get(&format!("{run_path}?kind=error&rule=mappings%5B3%5D"))
        .await;
    assert!(only.body.contains("Page 1 of 1."), "{}", only.body);
    assert!(only.body.contains("id = 61"));
    assert!(!only.body.contains("id = 1,") && !only.body.contains("id = 1<"));

    // the CSV download, for Editors only
    let csv = editor.get(&format!("{run_path}/rejected.csv")).await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(csv.body.lines().count(), 62);
    assert_eq!(
        viewer.get(&format!("{run_path}/rejected.csv")).await.status,
        403
    );
    // Viewers see the reasons and counts, not the records, the download or who started it
    let viewed = viewer.get(&run_path).await;
    assert!(viewed.body.contains("price must not be negative"));
    assert!(!viewed.body.contains("rejected.csv"));
    assert!(!viewed.body.contains("neg 1"));
    assert!(viewed.body.contains("<dt>Started by</dt><dd>a member</dd>"));

    // A run over the threshold fails: the run list says why and who started it.
    let patched = e
        .call(
            Method::PATCH,
            &format!("/api/v1/pipelines/{id}"),
            &token,
            Some(json!({"max_rejected_percent": 10})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(editor.get(&format!("/pipelines/{id}")).await.status, 200);
    let again = editor.post(&format!("/pipelines/{id}/run"), &[]).await;
    assert_eq!(again.status, 303, "{}", again.body);
    let mut list = String::new();
    for _ in 0..300 {
        list = editor.get(&format!("/pipelines/{id}")).await.body;
        if list.contains("state-failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        list.contains("61 of 64 records read were rejected (95.3%), more than the pipeline allows (10%): nothing was written"),
        "{list}"
    );
    assert!(list.contains("\">Someone</td>"), "{list}");
    db.batch_execute(&format!(
        "DROP TABLE public.{source}; DROP TABLE IF EXISTS public.{target};"
    ))
    .await
    .unwrap();
}
