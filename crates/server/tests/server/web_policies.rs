//! Pages: teams and data policies (in process, see `web.rs`): a team made and filled through
//! the forms; policies saved per layer, a bad row filter shown on its row with nothing saved;
//! "view as" on the pages that show records; every other role refused.

use super::web::{Browser, Page, shows_as_text, web_env};

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
