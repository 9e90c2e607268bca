//! Pages: data sets (in process, see `web.rs`) against real PostgreSQL: pulled through the
//! form (a bad filter shown next to its field with its position), the review grid with its
//! statuses, an error marked on its cell and a change beside the destination's value, the bad
//! record fixed inline, one record unticked, the submit refused while a ticked record has an
//! error and then written; a Viewer it is shared with reads the grid without any form; another
//! Editor gets 404.

use super::pipelines::{pg, postgres_connection, unique};
use super::web::{Browser, PASSWORD, Page, shows_as_text, web_env};
use axum::http::Method;
use lockstep_app::{Password, RecordQuery};
use lockstep_domain::Role;
use serde_json::json;

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

/// The `<tr>` of record `row` on the page.
fn row_html(page: &Page, row: u64) -> &str {
    let at = page
        .body
        .find(&format!("id=\"row-{row}\""))
        .unwrap_or_else(|| panic!("no row {row}: {}", page.body));
    let rest = &page.body[at..];
    &rest[..rest.find("</tr>").unwrap()]
}

/// Polls the progress fragment until the data set is neither pulling nor submitting.
async fn settled(browser: &mut Browser, path: &str) -> Page {
    for _ in 0..300 {
        let fragment = browser.get(&format!("{path}/progress")).await;
        if fragment.status.as_u16() == 286 {
            assert_eq!(fragment.headers.get("hx-refresh").unwrap(), "true");
            return fragment;
        }
        assert_eq!(fragment.status, 200, "{}", fragment.body);
        assert!(fragment.body.starts_with(r#"<div id="dataset-progress""#));
        assert!(fragment.body.contains(r#"hx-trigger="every 1s""#));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the data set stayed busy for 30 s");
}

#[tokio::test]
async fn members_pull_review_fix_and_submit_data_sets_in_pages() {
    let source = unique("wds_src");
    let target = unique("wds_dst");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id bigint PRIMARY KEY, name text, price numeric(10,2));
         INSERT INTO public.{source} VALUES (1, 'bolt', 1.50), (2, 'nut v2', 0.20), (3, 'washer', 0.05), (4, 'gear', -3.00);
         CREATE TABLE public.{target} (id bigint PRIMARY KEY, name text, price numeric(10,2));
         INSERT INTO public.{target} VALUES (1, 'bolt', 1.50), (2, 'nut', 0.20), (9, 'legacy', 7.00);"
    ))
    .await
    .unwrap();
    let (mut e, mut admin, mut editor, mut viewer) = web_env("loopback").await;
    let warehouse = postgres_connection(&mut e, "Warehouse").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({
                "name": "Parts review",
                "source": {"connection_id": warehouse, "object": format!("public.{source}")},
                "destination": {"connection_id": warehouse, "object": format!("public.{target}")},
                "mode": "upsert",
                "key": ["id"],
                "rules": [{"kind": "validation", "expression": "price >= 0.0",
                           "message": "price must not be negative"}]
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();
    // Another Editor of the same organization.
    let admin_caller = e.hub.authenticate(&e.admin).await.unwrap();
    let invitation = e
        .hub
        .invite_user(&admin_caller, "eve@alpha.io", Role::Editor)
        .await
        .unwrap();
    e.hub
        .accept_invitation(
            invitation.token.expose(),
            &Password::new(PASSWORD.to_owned()),
            "Eve",
        )
        .await
        .unwrap();
    let mut eve = Browser::signed_in(&e.app, "eve@alpha.io").await;
    let editor_caller = e.hub.authenticate(&e.editor).await.unwrap();
    let viewer_id = e
        .hub
        .authenticate(&e.viewer)
        .await
        .unwrap()
        .user()
        .to_string();

    // Every member has the area in the navigation; the pull form picks pipelines by name.
    let list = editor.get("/datasets").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body
            .contains(r#"<a href="/datasets" aria-current="page">Data sets</a>"#)
    );
    assert!(
        list.body.contains(&format!(
            r#"<option value="{pipeline}">Parts review</option>"#
        )),
        "{}",
        list.body
    );
    assert!(
        viewer
            .get("/dashboard")
            .await
            .body
            .contains(r#"<a href="/datasets">Data sets</a>"#)
    );

    // A filter that does not compile: 422, the message with its position next to the field,
    // what was typed kept, nothing pulled.
    let refused = editor
        .post(
            "/datasets",
            &[
                ("pipeline_id", &pipeline),
                ("name", "May parts"),
                ("filter", "price >"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains(r#"aria-invalid="true" aria-describedby="filter-error""#)
    );
    let message = text_of(&refused.body, "filter-error");
    assert!(message.contains("column"), "{message}");
    assert!(refused.body.contains(r#"value="May parts""#));
    assert!(
        refused.body.contains(">price &#62;</textarea>"),
        "{}",
        refused.body
    );
    assert!(
        e.hub
            .list_datasets(&editor_caller, false)
            .await
            .unwrap()
            .is_empty()
    );

    // Pulled: its page follows the pull, then shows the grid.
    let pulled = editor
        .post(
            "/datasets",
            &[
                ("pipeline_id", &pipeline),
                ("name", "May parts"),
                ("filter", "id < 100"),
            ],
        )
        .await;
    assert_eq!(pulled.status, 303, "{}", pulled.body);
    let location = pulled.location().unwrap().to_owned();
    let path = location.trim_end_matches("?notice=pulling").to_owned();
    assert!(path.starts_with("/datasets/"), "{location}");
    let first = editor.get(&location).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.body.contains("The records are being pulled.")
            || first.body.contains(r#"data-state="ready""#)
    );
    let done = settled(&mut editor, &path).await;
    assert!(done.body.contains(r#"data-state="ready""#), "{}", done.body);
    let id: lockstep_domain::DatasetId = path.trim_start_matches("/datasets/").parse().unwrap();
    let records = e
        .hub
        .dataset_records(
            &editor_caller,
            id,
            RecordQuery {
                limit: 100,
                ..RecordQuery::default()
            },
        )
        .await
        .unwrap();
    let row = |key: i64| {
        records
            .records
            .iter()
            .find(|r| r.values["id"].as_i64() == Some(key))
            .unwrap()
            .row
    };
    let (bolt, nut, washer, gear, legacy) = (row(1), row(2), row(3), row(4), row(9));

    let page = editor.get(&path).await;
    assert_eq!(page.status, 200);
    assert_eq!(text_of(&page.body, "count-records"), "5");
    assert_eq!(text_of(&page.body, "count-create"), "2");
    assert_eq!(text_of(&page.body, "count-update"), "1");
    assert_eq!(text_of(&page.body, "count-errors"), "1");
    for (row, status) in [
        (bolt, "unchanged"),
        (nut, "update"),
        (washer, "create"),
        (gear, "create"),
        (legacy, "destination_only"),
    ] {
        assert!(
            row_html(&page, row).contains(&format!(r#"data-status="{status}""#))
                && page
                    .body
                    .contains(&format!(r#"<tr class="status-{status}" id="row-{row}""#)),
            "{status}: {}",
            row_html(&page, row)
        );
    }
    // The error is on its cell, in a title and as text; the change shows the destination's value.
    let bad = row_html(&page, gear);
    assert!(
        bad.contains(
            r#"<td class="cell issue-error" title="price must not be negative" data-field="price">"#
        ),
        "{bad}"
    );
    assert!(bad.contains("Error: price must not be negative"), "{bad}");
    assert!(
        row_html(&page, nut).contains(r#"<del class="was" title="In the destination">nut</del>"#)
    );
    // New and changed records come ticked, the others not; destination-only ones have no box.
    assert!(row_html(&page, gear).contains(&format!(
        r#"name="tick.{gear}" id="tick-{gear}" value="on" checked"#
    )));
    assert!(!row_html(&page, bolt).contains(" checked"));
    assert!(!row_html(&page, legacy).contains("name=\"tick."));
    // Submit is disabled with the reason while a ticked record has an error.
    assert!(
        page.body
            .contains(r#"disabled aria-describedby="submit-blocked""#)
    );
    assert!(text_of(&page.body, "submit-blocked").contains("1 ticked record has errors"));
    // Filtered by issues: only the bad record.
    let errors_only = editor.get(&format!("{path}?issues=errors")).await;
    assert!(errors_only.body.contains(&format!("id=\"row-{gear}\"")));
    assert!(!errors_only.body.contains(&format!("id=\"row-{nut}\"")));

    // The submit is refused on the server too, naming the record; nothing is written.
    let blocked = editor.post(&format!("{path}/submit"), &[]).await;
    assert_eq!(blocked.status, 422, "{}", blocked.body);
    assert!(
        blocked
            .body
            .contains(&format!("<a href=\"#row-{gear}\">Record {}</a>", gear + 1)),
        "{}",
        blocked.body
    );
    let count: i64 = db
        .query_one(&format!("SELECT count(*) FROM public.{target}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);

    // The bad record fixed inline: a value of the wrong type is refused on its field, then a
    // good one clears the error.
    let wrong = editor
        .post(
            &format!("{path}/records/{gear}"),
            &[
                ("values.price", "cheap"),
                ("was.price", "-3.00"),
                ("values.name", "gear"),
                ("was.name", "gear"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    let field_error = text_of(&wrong.body, &format!("edit-{gear}-2-error"));
    assert!(field_error.contains("type"), "{field_error}");
    assert!(wrong.body.contains(r#"value="cheap""#));
    let fixed = editor
        .post(
            &format!("{path}/records/{gear}"),
            &[
                ("values.price", "3.00"),
                ("was.price", "-3.00"),
                ("values.name", "gear"),
                ("was.name", "gear"),
            ],
        )
        .await;
    assert_eq!(fixed.status, 303, "{}", fixed.body);
    // An edit the data set's filter would leave out is refused, saying so on the record.
    let left_out = editor
        .post(
            &format!("{path}/records/{washer}"),
            &[("values.id", "1003"), ("was.id", "3")],
        )
        .await;
    assert_eq!(left_out.status, 422, "{}", left_out.body);
    let open_form = row_html(&left_out, washer);
    assert!(
        open_form.contains(r#"<details class="edit" open>"#),
        "{open_form}"
    );
    assert!(
        open_form.contains("filter leaves the record out"),
        "{open_form}"
    );
    assert!(open_form.contains(r#"value="1003""#), "{open_form}");
    assert!(fixed.location().unwrap().contains("notice=edited"));
    let page = editor.get(&path).await;
    assert!(
        !row_html(&page, gear).contains("issue-error"),
        "{}",
        row_html(&page, gear)
    );
    assert_eq!(text_of(&page.body, "count-errors"), "0");
    // Another Editor's edit is refused as if the data set did not exist.
    assert_eq!(eve.get("/datasets").await.status, 200);
    assert_eq!(
        eve.post(&format!("{path}/records/{gear}"), &[("values.price", "9")])
            .await
            .status,
        404
    );

    // One record unticked (the box of the washer left empty), the others kept.
    let names = [
        format!("shown.{washer}"),
        format!("shown.{gear}"),
        format!("tick.{gear}"),
    ];
    let fields: Vec<(&str, &str)> = names.iter().map(|k| (k.as_str(), "1")).collect();
    let ticks = editor.post(&format!("{path}/ticks"), &fields).await;
    assert_eq!(ticks.status, 303, "{}", ticks.body);
    let page = editor.get(&path).await;
    assert_eq!(text_of(&page.body, "count-ticked"), "2");
    assert!(!row_html(&page, washer).contains(" checked"));
    assert!(!page.body.contains("submit-blocked"));

    // Every record of a status unticked, then ticked again.
    for (process, ticked) in [("off", "1"), ("on", "2")] {
        let changed = editor
            .post(
                &format!("{path}/ticks/status"),
                &[
                    ("status", "update"),
                    ("process", process),
                    ("back", "?status=update"),
                ],
            )
            .await;
        assert_eq!(changed.status, 303, "{}", changed.body);
        assert!(
            changed
                .location()
                .unwrap()
                .starts_with(&format!("{path}?status=update&notice=ticks"))
        );
        let page = editor.get(&path).await;
        assert_eq!(text_of(&page.body, "count-ticked"), ticked);
    }

    // Shared with the Viewer through the picker.
    let shared = editor
        .post(&format!("{path}/share"), &[("user_id", &viewer_id)])
        .await;
    assert_eq!(shared.status, 303, "{}", shared.body);

    // Submitted: the ticked records are written, the unticked one is not.
    let submitted = editor.post(&format!("{path}/submit"), &[]).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let done = settled(&mut editor, &path).await;
    assert!(
        done.body.contains(r#"data-state="submitted""#),
        "{}",
        done.body
    );
    let page = editor.get(&path).await;
    assert!(shows_as_text(&page, "submitted"));
    assert_eq!(text_of(&page.body, "count-submitted"), "2");
    let rows = db
        .query(
            &format!("SELECT id, name, price::text FROM public.{target} ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(i64, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [
            (1, "bolt", "1.50"),
            (2, "nut v2", "0.20"),
            (4, "gear", "3.00"),
            (9, "legacy", "7.00")
        ]
        .map(|(i, n, p)| (i, n.to_owned(), p.to_owned()))
    );

    // The Viewer reads the grid, with no form to change it.
    let seen = viewer.get(&path).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(seen.body.contains(r#"id="review-grid""#));
    for form in [
        "edit-record",
        "name=\"tick.",
        "/submit",
        "/share",
        "/delete",
        "/refresh",
    ] {
        assert!(!seen.body.contains(form), "{form}");
    }
    assert!(viewer.get("/datasets").await.body.contains("May parts"));
    // Administrators may list every data set, with its owner's name.
    let all = admin.get("/datasets?all=1").await;
    assert!(
        all.body.contains("May parts") && all.body.contains("Someone"),
        "{}",
        all.body
    );
    // Another Editor does not even learn it exists.
    let hidden = eve.get(&path).await;
    assert_eq!(hidden.status, 404, "{}", hidden.body);
    assert!(!eve.get("/datasets").await.body.contains("May parts"));

    // Deleting needs the box ticked.
    let unconfirmed = editor.post(&format!("{path}/delete"), &[]).await;
    assert_eq!(unconfirmed.status, 422);
    let deleted = editor
        .post(&format!("{path}/delete"), &[("confirm", "on")])
        .await;
    assert_eq!(deleted.status, 303);
    assert_eq!(editor.get(&path).await.status, 404);
    db.batch_execute(&format!(
        "DROP TABLE public.{source}; DROP TABLE public.{target};"
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn the_retention_and_the_removal_notice_are_settings() {
    let (e, mut admin, mut editor, _viewer) = web_env("loopback").await;
    let settings = admin.get("/settings").await;
    assert!(
        settings
            .body
            .contains(r#"id="dataset_retention_days" name="dataset_retention_days" value="5""#),
        "{}",
        settings.body
    );
    let form = |days: &'static str| {
        [
            ("audit_depth", "100"),
            ("time_zone", "UTC"),
            ("dataset_retention_days", days),
        ]
    };
    let refused = admin.post("/settings", &form("91")).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(text_of(&refused.body, "dataset_retention_days-error").contains("90"));
    let refused = admin.post("/settings", &form("soon")).await;
    assert_eq!(refused.status, 422);
    let saved = admin.post("/settings", &form("30")).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let caller = e.hub.authenticate(&e.admin).await.unwrap();
    assert_eq!(
        e.hub
            .organization_settings(&caller)
            .await
            .unwrap()
            .dataset_retention_days,
        30
    );

    let account = editor.get("/account").await;
    assert!(
        account
            .body
            .contains(r#"name="dataset_removal_notice" value="on" checked"#)
    );
    let off = editor.post("/account/dataset-notice", &[]).await;
    assert_eq!(off.status, 303);
    let editor_caller = e.hub.authenticate(&e.editor).await.unwrap();
    assert!(!e.hub.dataset_removal_notice(&editor_caller).await.unwrap());
    assert!(
        !editor
            .get("/account")
            .await
            .body
            .contains(r#"name="dataset_removal_notice" value="on" checked"#)
    );
}
