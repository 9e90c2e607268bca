//! Pages name people, connections and pipelines (ids only on hover) and show times in the
//! organization's time zone (in process, see `web.rs`).

use super::connections::Env;
use super::web::{Browser, PASSWORD, Page, shows_as_text, web_env};
use lockstep_app::{Clock as _, Password};
use lockstep_domain::Role;
use time::macros::datetime;

/// Invites grace@alpha.io, who accepts as "Grace Hopper"; answers her id.
async fn grace(env: &Env) -> String {
    let admin = env.hub.authenticate(&env.admin).await.unwrap();
    let invitation = env
        .hub
        .invite_user(&admin, "grace@alpha.io", Role::Editor)
        .await
        .unwrap();
    let password = Password::new(PASSWORD.to_owned());
    env.hub
        .accept_invitation(invitation.token.expose(), &password, "Grace Hopper")
        .await
        .unwrap()
        .to_string()
}

/// How many events the page lists.
fn rows(page: &Page) -> usize {
    page.body.matches("<td class=\"mono\">").count()
}

#[tokio::test]
async fn the_audit_page_names_members_and_shows_their_ids_only_on_hover() {
    let (env, mut admin, _, _) = web_env("loopback").await;
    let grace_id = grace(&env).await;
    Browser::signed_in(&env.app, "grace@alpha.io").await;

    let page = admin.get("/audit").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(shows_as_text(&page, "Grace Hopper"), "{}", page.body);
    assert!(
        !shows_as_text(&page, &grace_id),
        "her id is shown as text: {}",
        page.body
    );
    // Her sign-in: she is the actor, by name, her id on hover.
    assert!(page.body.contains(&format!(
        "<a href=\"/audit?actor={grace_id}\" title=\"user {grace_id}\">Grace Hopper</a>"
    )));
    // Her account's creation: the object, leading to her page.
    assert!(page.body.contains(&format!(
        "<a href=\"/users/{grace_id}\" title=\"user {grace_id}\">Grace Hopper</a>"
    )));
    let object = admin.get(&format!("/audit/objects/user/{grace_id}")).await;
    assert_eq!(object.status, 200, "{}", object.body);
    assert!(object.body.contains("<title>Events of member Grace Hopper"));
    assert!(!shows_as_text(&object, &grace_id), "{}", object.body);
}

#[tokio::test]
async fn the_audit_search_picks_a_person_and_an_action_from_lists() {
    let (env, mut admin, _, _) = web_env("loopback").await;
    let grace_id = grace(&env).await;
    Browser::signed_in(&env.app, "grace@alpha.io").await;

    let page = admin.get("/audit").await;
    assert!(page.body.contains("<select id=\"actor\" name=\"actor\""));
    assert!(!page.body.contains("<input type=\"text\" id=\"actor\""));
    assert!(
        page.body.contains(&format!(
            "<option value=\"{grace_id}\">Grace Hopper</option>"
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("<select id=\"action\" name=\"action\""));
    assert!(!page.body.contains("<input type=\"text\" id=\"action\""));
    // Every known action, also one that has not happened yet.
    for action in ["user.signed_in", "invitation.created", "run.succeeded"] {
        assert!(
            page.body
                .contains(&format!("<option value=\"{action}\">{action}</option>")),
            "{action} is not offered"
        );
    }

    // Picking Grace lists her events only.
    let hers = admin.get(&format!("/audit?actor={grace_id}")).await;
    assert_eq!(hers.status, 200, "{}", hers.body);
    assert!(hers.body.contains(&format!(
        "<option value=\"{grace_id}\" selected>Grace Hopper</option>"
    )));
    let by_her =
        format!("href=\"/audit?actor={grace_id}\" title=\"user {grace_id}\">Grace Hopper</a>");
    assert!(hers.body.contains("<td class=\"mono\">user.signed_in</td>"));
    assert!(
        !hers
            .body
            .contains("<td class=\"mono\">invitation.created</td>")
    );
    assert!(rows(&hers) > 0);
    assert_eq!(
        hers.body.matches(&by_her).count(),
        rows(&hers),
        "{}",
        hers.body
    );
    assert!(rows(&hers) < rows(&page), "the person filters nothing");

    // Picking an action lists its events only.
    let sign_ins = admin.get("/audit?action=user.signed_in").await;
    assert_eq!(sign_ins.status, 200, "{}", sign_ins.body);
    assert!(
        sign_ins
            .body
            .contains("<option value=\"user.signed_in\" selected>user.signed_in</option>")
    );
    let listed = sign_ins
        .body
        .matches("<td class=\"mono\">user.signed_in</td>")
        .count();
    assert!(listed >= 4, "admin, editor, viewer and Grace signed in");
    assert_eq!(listed, rows(&sign_ins), "another action is listed");

    // Both at once.
    let both = admin
        .get(&format!(
            "/audit?actor={grace_id}&action=invitation.created"
        ))
        .await;
    assert!(both.body.contains("No event matches the search."));
}

/// The text of the first `<time>` of the page and its `datetime`.
fn first_time(page: &Page) -> (String, String) {
    let at = page.body.find("<time datetime=\"").expect("a time") + 16;
    let rest = &page.body[at..];
    let datetime = rest[..rest.find('"').unwrap()].to_owned();
    let text = &rest[rest.find('>').unwrap() + 1..rest.find("</time>").unwrap()];
    (datetime, text.to_owned())
}

#[tokio::test]
async fn times_show_in_the_organizations_time_zone_and_name_it() {
    let (env, _, _, _) = web_env("loopback").await;
    // A winter morning: Berlin is an hour ahead of UTC.
    let at = datetime!(2031-01-15 09:30 UTC);
    env.clock.advance(at - env.clock.now());
    let mut admin = Browser::signed_in(&env.app, "admin@alpha.io").await;

    let before = admin.get("/audit").await;
    assert_eq!(first_time(&before).1, "2031-01-15 09:30 UTC");
    assert!(
        before
            .body
            .contains("<label for=\"from\">From (UTC)</label>")
    );

    admin.get("/settings").await;
    let saved = admin
        .post(
            "/settings",
            &[
                ("audit_depth", "10"),
                ("long_term_audit", "on"),
                ("time_zone", "Europe/Berlin"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);

    let after = admin.get("/audit").await;
    let (datetime, text) = first_time(&after);
    assert_eq!(datetime, "2031-01-15T09:30:00Z");
    assert_eq!(text, "2031-01-15 10:30 Europe/Berlin");
    assert!(!after.body.contains("09:30 UTC"), "{}", after.body);
    assert!(
        after
            .body
            .contains("<label for=\"from\">From (Europe/Berlin)</label>")
    );
    // The search reads its times there too: 10:15 in Berlin is before the change, 10:15 UTC
    // would be after it.
    let from = admin.get("/audit?from=2031-01-15T10:15").await;
    assert!(
        from.body
            .contains("<td class=\"mono\">organization.settings_changed</td>"),
        "{}",
        from.body
    );
    assert!(from.body.contains("value=\"2031-01-15T10:15:00\""));
    let until = admin.get("/audit?to=2031-01-15T10:15").await;
    assert!(
        !until
            .body
            .contains("<td class=\"mono\">organization.settings_changed</td>")
    );

    // Every page: the sessions of the account page.
    let account = admin.get("/account").await;
    assert!(
        account.body.contains("2031-01-15 10:30 Europe/Berlin"),
        "{}",
        account.body
    );
    assert!(!account.body.contains("2031-01-15 09:30 UTC"));
}
