//! Pages: teams and data policies (in process, see `web.rs`): a team made and filled through
//! the forms; policies saved per layer, a bad row filter shown on its row with nothing saved;
//! "view as" on the pages that show records; every other role refused.

use super::pipelines::{pg, postgres_connection, run, unique, worker};
use super::web::{Browser, Page, shows_as_text, summary_anchors, web_env};
use axum::http::Method;
use serde_json::json;

/// The id of the team named `name` on the teams page (its section's `id="team-…"`).
fn team_id(page: &Page, name: &str) -> String {
    let heading = page
        .body
        .match_indices("<h2 id=\"team-")
        .map(|(at, _)| &page.body[at + "<h2 id=\"team-".len()..])
        .find(|rest| rest[rest.find('>').unwrap() + 1..].starts_with(&format!("{name}</h2>")))
        .unwrap_or_else(|| panic!("no team {name}: {}", page.body));
    heading[..heading.find("-heading").unwrap()].to_owned()
}

async fn team_through_the_form(admin: &mut Browser, name: &str) -> String {
    let page = admin.get("/teams").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let created = admin.post("/teams", &[("name", name)]).await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.location(), Some("/teams?notice=created"));
    team_id(&admin.get("/teams").await, name)
}

#[tokio::test]
async fn administrators_make_teams_and_fill_them_through_the_forms() {
    let (e, mut admin, mut editor, mut viewer) = web_env("loopback").await;
    let editor_id = e
        .hub
        .authenticate(&e.editor)
        .await
        .unwrap()
        .user()
        .to_string();

    // The navigation has the page for Administrators only.
    let list = admin.get("/teams").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body
            .contains(r#"<a href="/teams" aria-current="page">Teams</a>"#)
    );
    assert!(
        list.body
            .contains(r#"<a href="/policies">Data policies</a>"#)
    );
    assert!(shows_as_text(&list, "No teams yet."));

    let team = team_through_the_form(&mut admin, "Field crew").await;
    // A second team of that name is refused next to the name field.
    let twice = admin.post("/teams", &[("name", "Field crew")]).await;
    assert_eq!(twice.status, 422, "{}", twice.body);
    assert!(twice.body.contains(r#"id="name-error""#), "{}", twice.body);
    assert!(shows_as_text(
        &twice,
        "A team with this name already exists."
    ));
    // An empty name too.
    let empty = admin.post("/teams", &[("name", "  ")]).await;
    assert_eq!(empty.status, 422, "{}", empty.body);
    assert!(empty.body.contains(r#"id="name-error""#), "{}", empty.body);

    // Add the Editor: picked by name, listed as a member afterwards.
    let page = admin.get("/teams").await;
    assert!(
        page.body
            .contains(&format!(r#"<option value="{editor_id}">Editor</option>"#))
            || page
                .body
                .contains(&format!(r#"<option value="{editor_id}">"#)),
        "{}",
        page.body
    );
    let added = admin
        .post(
            &format!("/teams/{team}/members"),
            &[("user_id", &editor_id)],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let page = admin.get("/teams").await;
    assert!(
        page.body.contains(&format!(
            r#"action="/teams/{team}/members/{editor_id}/remove""#
        )),
        "{}",
        page.body
    );
    let view = e
        .hub
        .get_team(
            &e.hub.authenticate(&e.admin).await.unwrap(),
            team.parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(view.members.len(), 1);
    // Nobody picked: the error is next to the select of that team.
    let none = admin
        .post(&format!("/teams/{team}/members"), &[("user_id", "")])
        .await;
    assert_eq!(none.status, 422, "{}", none.body);
    assert!(
        none.body
            .contains(&format!(r#"id="team-{team}-user-error""#)),
        "{}",
        none.body
    );

    // Rename, then remove the member, then delete the team.
    let renamed = admin
        .post(&format!("/teams/{team}/rename"), &[("name", "Night shift")])
        .await;
    assert_eq!(renamed.status, 303, "{}", renamed.body);
    assert_eq!(team_id(&admin.get("/teams").await, "Night shift"), team);
    let removed = admin
        .post(&format!("/teams/{team}/members/{editor_id}/remove"), &[])
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    let page = admin.get("/teams").await;
    assert!(!page.body.contains(&format!("/members/{editor_id}/remove")));
    let deleted = admin.post(&format!("/teams/{team}/delete"), &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert!(shows_as_text(&admin.get("/teams").await, "No teams yet."));

    // Other roles: no link, and the pages and forms are refused.
    for browser in [&mut editor, &mut viewer] {
        let dashboard = browser.get("/dashboard").await;
        assert!(!dashboard.body.contains(r#"href="/teams""#));
        assert!(!dashboard.body.contains(r#"href="/policies""#));
        for path in ["/teams", "/policies"] {
            let page = browser.get(path).await;
            assert!(
                page.status == 403 || page.status == 404,
                "{path}: {}",
                page.status
            );
        }
        let made = browser.post("/teams", &[("name", "Sneaky")]).await;
        assert!(made.status == 403 || made.status == 404, "{}", made.status);
    }
    let admin_caller = e.hub.authenticate(&e.admin).await.unwrap();
    assert!(e.hub.list_teams(&admin_caller).await.unwrap().is_empty());
}

#[tokio::test]
async fn policies_saved_through_the_forms_redact_and_filter_what_members_see() {
    let table = unique("wpol");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE public.{table} (id bigint PRIMARY KEY, name text, card text);
         INSERT INTO public.{table} VALUES (1, 'bolt', '4111111111111234'), (2, 'nut', '5500000000005678');"
    ))
    .await
    .unwrap();
    let object = format!("public.{table}");
    let (mut e, mut admin, mut editor, _viewer) = web_env("loopback").await;
    let warehouse = postgres_connection(&mut e, "Warehouse").await;
    let editor_id = e
        .hub
        .authenticate(&e.editor)
        .await
        .unwrap()
        .user()
        .to_string();
    let team = team_through_the_form(&mut admin, "Field crew").await;
    let added = admin
        .post(
            &format!("/teams/{team}/members"),
            &[("user_id", &editor_id)],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let admin_caller = e.hub.authenticate(&e.admin).await.unwrap();

    // The page picks teams and connections by name.
    let page = admin.get("/policies").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(r#"<a href="/policies" aria-current="page">Data policies</a>"#)
    );
    assert!(
        page.body
            .contains(&format!(r#"<option value="{team}">Field crew</option>"#))
    );
    assert!(page.body.contains(&format!(
        r#"<option value="{warehouse}">Warehouse</option>"#
    )));

    // A bad filter on the third row (the first is ticked "remove"): its error is next to that
    // row's filter and in the summary, the rows come back as typed, and nothing is saved.
    let bad = admin
        .post(
            "/policies/ownership",
            &[
                ("enabled", "on"),
                ("rules[0].team_id", &team),
                ("rules[0].connection_id", &warehouse),
                ("rules[0].object", &object),
                ("rules[0].filter", "id > 0"),
                ("rules[0].remove", "on"),
                ("rules[1].team_id", &team),
                ("rules[1].connection_id", &warehouse),
                ("rules[1].object", &object),
                ("rules[1].filter", "name == 'bolt'"),
                ("rules[2].team_id", &team),
                ("rules[2].connection_id", &warehouse),
                ("rules[2].object", &object),
                ("rules[2].filter", "name == "),
                ("rules[3].team_id", ""),
                ("rules[3].connection_id", ""),
                ("rules[3].object", ""),
                ("rules[3].filter", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.contains(r#"id="ownership-rules-2-filter-error""#),
        "{}",
        bad.body
    );
    assert!(!bad.body.contains(r#"id="ownership-rules-1-filter-error""#));
    assert_eq!(summary_anchors(&bad), ["ownership-rules-2-filter"]);
    assert!(bad.body.contains(r#"value="name ==""#), "{}", bad.body);
    let stored = e.hub.ownership_policy(&admin_caller).await.unwrap();
    assert!(!stored.enabled && stored.rules.is_empty(), "{stored:?}");

    // The good rule alone is saved.
    let saved = admin
        .post(
            "/policies/ownership",
            &[
                ("enabled", "on"),
                ("rules[0].team_id", &team),
                ("rules[0].connection_id", &warehouse),
                ("rules[0].object", &object),
                ("rules[0].filter", "name == 'bolt'"),
                ("rules[1].team_id", ""),
                ("rules[1].connection_id", ""),
                ("rules[1].object", ""),
                ("rules[1].filter", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), Some("/policies?notice=saved#ownership"));
    let stored = e.hub.ownership_policy(&admin_caller).await.unwrap();
    assert!(stored.enabled && stored.rules.len() == 1, "{stored:?}");

    // Redaction: the card number cut to its last 4 for everybody, the name hidden from the team.
    let saved = admin
        .post(
            "/policies/redaction",
            &[
                ("enabled", "on"),
                ("rules[0].team_id", ""),
                ("rules[0].connection_id", &warehouse),
                ("rules[0].object", &object),
                ("rules[0].field", "card"),
                ("rules[0].pattern", ""),
                ("rules[0].kind", "partial"),
                ("rules[0].keep", "4"),
                ("rules[1].team_id", &team),
                ("rules[1].connection_id", &warehouse),
                ("rules[1].object", &object),
                ("rules[1].field", "name"),
                ("rules[1].pattern", ""),
                ("rules[1].kind", "hide"),
                ("rules[1].keep", ""),
                ("rules[2].team_id", ""),
                ("rules[2].connection_id", ""),
                ("rules[2].object", ""),
                ("rules[2].field", ""),
                ("rules[2].pattern", ""),
                ("rules[2].kind", "mask"),
                ("rules[2].keep", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let stored = e.hub.redaction_policy(&admin_caller).await.unwrap();
    assert_eq!(stored.rules.len(), 2, "{stored:?}");
    // The page shows them again as rows, plus an empty one.
    let page = admin.get("/policies").await;
    assert!(
        page.body.contains(r#"name="rules[1].field" value="name""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"name="rules[2].field" value="""#));

    // A bad keep is refused on its row, nothing changes.
    let bad = admin
        .post(
            "/policies/redaction",
            &[
                ("enabled", "on"),
                ("rules[0].connection_id", &warehouse),
                ("rules[0].object", &object),
                ("rules[0].field", "card"),
                ("rules[0].kind", "mask"),
                ("rules[0].keep", "4"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.contains(r#"id="redaction-rules-0-keep-error""#),
        "{}",
        bad.body
    );
    assert_eq!(e.hub.redaction_policy(&admin_caller).await.unwrap(), stored);

    // The Editor (in the team) samples: one record, the card cut, the name hidden.
    let sample_path = format!("/connections/{warehouse}/objects/{object}/sample");
    let sample = editor.get(&sample_path).await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    assert!(shows_as_text(&sample, "••••1234"), "{}", sample.body);
    assert!(!sample.body.contains("4111111111111234"));
    assert!(!sample.body.contains("5678"), "{}", sample.body);
    assert!(!shows_as_text(&sample, "bolt"));
    assert!(sample.body.contains(r#"title="hidden by a data policy""#));
    assert!(
        !sample.body.contains("View as"),
        "only Administrators view as"
    );
    assert!(!sample.body.contains("view_as"));
    let refused = editor
        .get(&format!("{sample_path}?view_as=team:{team}"))
        .await;
    assert!(
        refused.status == 403 || refused.status == 404,
        "{}",
        refused.status
    );

    // The Administrator sees every record (the cards cut), and as the team what it sees.
    let sample = admin.get(&sample_path).await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    assert!(shows_as_text(&sample, "••••5678") && shows_as_text(&sample, "bolt"));
    assert!(!sample.body.contains(r#"id="view-as-banner""#));
    let sample = admin
        .get(&format!("{sample_path}?view_as=team:{team}"))
        .await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    assert!(sample.body.contains(r#"class="banner-preview""#));
    assert!(
        shows_as_text(
            &sample,
            "Viewing as Field crew: records and values as the data policies show them to this team."
        ),
        "{}",
        sample.body
    );
    assert!(shows_as_text(&sample, "••••1234") && !sample.body.contains("5678"));
    assert!(sample.body.contains(r#"title="hidden by a data policy""#));
    assert!(
        sample
            .body
            .contains(&format!(r#"<option value="team:{team}" selected>"#))
    );
    let sample = admin
        .get(&format!("{sample_path}?view_as=user:{editor_id}"))
        .await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    assert!(shows_as_text(&sample, "to this member."), "{}", sample.body);
    assert_eq!(
        admin
            .get(&format!("{sample_path}?view_as=bogus"))
            .await
            .status,
        400
    );

    // The preview on the policies page says the same.
    let preview = admin
        .get(&format!(
            "/policies?preview_connection={warehouse}&preview_object={object}&view_as=team:{team}"
        ))
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        shows_as_text(&preview, "1 sample record was kept"),
        "{}",
        preview.body
    );
    assert!(shows_as_text(&preview, "••••1234") && !preview.body.contains("5678"));
    assert!(preview.body.contains(r#"id="view-as-banner""#));
    let missing = admin
        .get(&format!(
            "/policies?preview_connection={warehouse}&preview_object=public.nope"
        ))
        .await;
    assert_eq!(missing.status, 200, "{}", missing.body);
    assert!(
        missing.body.contains(r#"class="alert" role="alert""#),
        "{}",
        missing.body
    );

    // Access: a grant of a data set that does not exist is refused on its row; a grant of the
    // connection is saved and shown picked again.
    let bad = admin
        .post(
            "/policies/access",
            &[
                ("grants[0].team_id", &team),
                ("grants[0].object", "dataset"),
                ("grants[0].dataset_id", "not-an-id"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.contains(r#"id="access-grants-0-object_id-error""#),
        "{}",
        bad.body
    );
    assert_eq!(summary_anchors(&bad), ["access-grants-0-object_id"]);
    assert!(
        e.hub
            .access_policy(&admin_caller)
            .await
            .unwrap()
            .grants
            .is_empty()
    );
    let connection_choice = format!("connection:{warehouse}");
    let saved = admin
        .post(
            "/policies/access",
            &[
                ("grants[0].team_id", &team),
                ("grants[0].object", &connection_choice),
                ("grants[0].dataset_id", ""),
                ("grants[1].team_id", ""),
                ("grants[1].object", ""),
                ("grants[1].dataset_id", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let access = e.hub.access_policy(&admin_caller).await.unwrap();
    assert!(!access.enabled && access.grants.len() == 1, "{access:?}");
    let page = admin.get("/policies").await;
    assert!(
        page.body.contains(&format!(
            r#"<option value="{connection_choice}" selected>Warehouse</option>"#
        )),
        "{}",
        page.body
    );

    // Other roles may not save a layer.
    let refused = editor.post("/policies/redaction", &[("enabled", "")]).await;
    assert!(
        refused.status == 403 || refused.status == 404,
        "{}",
        refused.status
    );
    assert_eq!(e.hub.redaction_policy(&admin_caller).await.unwrap(), stored);
}

/// Saves the row filter `name == 'bolt'` for `team` and the redaction "card: last 4 for
/// everybody, name hidden from the team" on `object` through the forms.
async fn bolt_policies(admin: &mut Browser, team: &str, connection: &str, object: &str) {
    admin.get("/policies").await;
    let saved = admin
        .post(
            "/policies/ownership",
            &[
                ("enabled", "on"),
                ("rules[0].team_id", team),
                ("rules[0].connection_id", connection),
                ("rules[0].object", object),
                ("rules[0].filter", "name == 'bolt'"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let saved = admin
        .post(
            "/policies/redaction",
            &[
                ("enabled", "on"),
                ("rules[0].connection_id", connection),
                ("rules[0].object", object),
                ("rules[0].field", "card"),
                ("rules[0].kind", "partial"),
                ("rules[1].team_id", team),
                ("rules[1].connection_id", connection),
                ("rules[1].object", object),
                ("rules[1].field", "name"),
                ("rules[1].kind", "hide"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
}

#[tokio::test]
async fn data_set_pages_show_records_as_the_policies_and_view_as_say() {
    let source = unique("wpol_src");
    let target = unique("wpol_dst");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id bigint PRIMARY KEY, name text, card text);
         INSERT INTO public.{source} VALUES (1, 'bolt', '4111111111111234'), (2, 'nut', '5500000000005678');
         CREATE TABLE public.{target} (id bigint PRIMARY KEY, name text, card text);"
    ))
    .await
    .unwrap();
    let (mut e, mut admin, mut editor, _viewer) = web_env("loopback").await;
    let warehouse = postgres_connection(&mut e, "Warehouse").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({
                "name": "Cards",
                "source": {"connection_id": warehouse, "object": format!("public.{source}")},
                "destination": {"connection_id": warehouse, "object": format!("public.{target}")},
                "mode": "upsert",
                "key": ["id"]
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();

    // The Editor pulls both records before any policy is on.
    editor.get("/datasets").await;
    let pulled = editor
        .post(
            "/datasets",
            &[
                ("pipeline_id", &pipeline),
                ("name", "Cards"),
                ("filter", ""),
            ],
        )
        .await;
    assert_eq!(pulled.status, 303, "{}", pulled.body);
    let path = pulled
        .location()
        .unwrap()
        .trim_end_matches("?notice=pulling")
        .to_owned();
    let mut ready = false;
    for _ in 0..300 {
        if editor
            .get(&format!("{path}/progress"))
            .await
            .status
            .as_u16()
            == 286
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the pull did not end");
    let page = editor.get(&path).await;
    assert!(shows_as_text(&page, "4111111111111234") && shows_as_text(&page, "nut"));

    let editor_id = e
        .hub
        .authenticate(&e.editor)
        .await
        .unwrap()
        .user()
        .to_string();
    let team = team_through_the_form(&mut admin, "Field crew").await;
    let added = admin
        .post(
            &format!("/teams/{team}/members"),
            &[("user_id", &editor_id)],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    bolt_policies(&mut admin, &team, &warehouse, &format!("public.{source}")).await;

    // The Editor now sees the bolt only, its card cut and its name hidden; the page says one
    // record is withheld.
    let page = editor.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(shows_as_text(&page, "••••1234"), "{}", page.body);
    assert!(!page.body.contains("4111111111111234") && !page.body.contains("5678"));
    assert!(!shows_as_text(&page, "nut"));
    assert!(page.body.contains(r#"title="hidden by a data policy""#));
    assert!(
        shows_as_text(&page, "1 record on this page is withheld by data policies."),
        "{}",
        page.body
    );
    assert!(!page.body.contains(r#"name="view_as""#));

    // The Administrator sees both records (cards cut), and as the team what the team sees.
    let page = admin.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(shows_as_text(&page, "••••1234") && shows_as_text(&page, "••••5678"));
    assert!(page.body.contains(r#"name="view_as""#));
    assert!(!page.body.contains(r#"id="view-as-banner""#));
    let page = admin.get(&format!("{path}?view_as=team:{team}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        shows_as_text(
            &page,
            "Viewing as Field crew: records and values as the data policies show them to this team."
        ),
        "{}",
        page.body
    );
    assert!(shows_as_text(&page, "••••1234") && !page.body.contains("5678"));
    assert!(shows_as_text(
        &page,
        "1 record on this page is withheld by data policies."
    ));
    assert!(page.body.contains(r#"title="hidden by a data policy""#));
    // The filter links keep the view.
    assert!(
        page.body.contains(&format!("view_as=team:{team}#records")),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn rejected_records_show_as_the_policies_and_view_as_say() {
    let source = unique("wpol_rsrc");
    let target = unique("wpol_rdst");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE public.{source} (id bigint PRIMARY KEY, name text, card text);
         INSERT INTO public.{source} VALUES (1, 'bolt', '4111111111111234'), (2, 'nut', '5500000000005678');
         CREATE TABLE public.{target} (id bigint PRIMARY KEY, name text, card text);"
    ))
    .await
    .unwrap();
    let (mut e, mut admin, _editor, _viewer) = web_env("loopback").await;
    let _worker = worker(&e);
    let warehouse = postgres_connection(&mut e, "Warehouse").await;
    let created = e
        .admin(
            Method::POST,
            "/api/v1/pipelines",
            Some(json!({
                "name": "Cards",
                "source": {"connection_id": warehouse, "object": format!("public.{source}")},
                "destination": {"connection_id": warehouse, "object": format!("public.{target}")},
                "mode": "upsert",
                "key": ["id"],
                "rules": [{"kind": "validation", "expression": "id > 5",
                           "message": "id must be over 5"}]
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pipeline = created.json()["id"].as_str().unwrap().to_owned();
    let ended = run(&mut e, &pipeline).await;
    assert_eq!(ended["records_rejected"], 2, "{ended}");
    let run_id = ended["id"].as_str().unwrap().to_owned();

    let team = team_through_the_form(&mut admin, "Field crew").await;
    bolt_policies(&mut admin, &team, &warehouse, &format!("public.{source}")).await;

    let path = format!("/pipelines/{pipeline}/runs/{run_id}");
    let page = admin.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(shows_as_text(&page, "••••1234") && shows_as_text(&page, "••••5678"));
    assert!(page.body.contains(r#"name="view_as""#));
    assert!(page.body.contains("rejected.csv\""));
    let page = admin.get(&format!("{path}?view_as=team:{team}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(r#"id="view-as-banner""#),
        "{}",
        page.body
    );
    assert!(shows_as_text(&page, "••••1234") && !page.body.contains("5678"));
    assert!(
        !shows_as_text(&page, "bolt"),
        "the name is hidden from the team"
    );
    assert!(
        page.body
            .contains(&format!("rejected.csv?view_as=team:{team}\"")),
        "{}",
        page.body
    );
    let csv = admin
        .get(&format!("{path}/rejected.csv?view_as=team:{team}"))
        .await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(
        csv.body.contains("••••1234") && !csv.body.contains("5678"),
        "{}",
        csv.body
    );
}
