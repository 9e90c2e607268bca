//! Pages: users, settings and audit (in process, see `web.rs`).

use super::connections::Env;
use super::web::{Browser, PASSWORD, Page, web_env};
use axum::http::Method;
use serde_json::Value;

/// The users as the API lists them.
async fn api_users(env: &mut Env) -> Vec<Value> {
    let answer = env.admin(Method::GET, "/api/v1/users", None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["users"].as_array().unwrap().clone()
}

async fn api_user(env: &mut Env, email: &str) -> Value {
    api_users(env)
        .await
        .into_iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not listed"))
}

/// How many invitations the audit knows of.
async fn invitation_events(env: &mut Env) -> usize {
    let answer = env
        .admin(
            Method::GET,
            "/api/v1/audit/events?action=invitation.created",
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["events"].as_array().unwrap().len()
}

async fn api_settings(env: &mut Env) -> Value {
    let answer = env
        .admin(Method::GET, "/api/v1/organization/settings", None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

/// The value of the first `attribute="…"` after `marker` in the page.
fn attribute_after(page: &Page, marker: &str, attribute: &str) -> String {
    let at = page.body.find(marker).unwrap_or_else(|| {
        panic!("{marker} is not on the page: {}", page.body);
    });
    let rest = &page.body[at..];
    let start = rest.find(&format!("{attribute}=\"")).unwrap() + attribute.len() + 2;
    let rest = &rest[start..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Gives a browser the CSRF token of its session (as any of its pages would) when none of the
/// pages it may open has a form.
fn use_session_csrf(browser: &mut Browser) {
    browser.csrf = browser
        .cookie("__Host-lockstep_csrf")
        .expect("the session's CSRF cookie")
        .to_owned();
}

#[tokio::test]
async fn an_administrator_invites_a_member_who_signs_up_through_the_link() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    let page = admin.get("/users").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "admin@alpha.io",
        "editor@alpha.io",
        "viewer@alpha.io",
        "Editor",
        "Viewer",
    ] {
        assert!(page.body.contains(text), "{text} is not on the users page");
    }

    let invited = admin
        .post(
            "/users/invitations",
            &[("email", "newcomer@alpha.io"), ("role", "editor")],
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    let link = attribute_after(&invited, "id=\"invitation-link\"", "href");
    let (path, token) = link.split_once('#').unwrap();
    assert_eq!(path, "/accept-invitation");
    assert!(token.starts_with("lsi"), "{link}");
    assert!(invited.body.contains("data-copy=\"invitation-link\""));

    let again = admin.get("/users").await;
    assert!(
        !again.body.contains(token) && !again.body.contains("invitation-link"),
        "the invitation link is shown a second time"
    );

    // The same address again: the form says why, next to the field.
    let duplicate = admin
        .post(
            "/users/invitations",
            &[("email", "editor@alpha.io"), ("role", "viewer")],
        )
        .await;
    assert_eq!(duplicate.status, 422, "{}", duplicate.body);
    assert!(duplicate.body.contains("id=\"email-error\""));
    assert!(duplicate.body.contains("already exists"));
    let invalid = admin
        .post(
            "/users/invitations",
            &[("email", "not-an-address"), ("role", "editor")],
        )
        .await;
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    assert!(invalid.body.contains("id=\"email-error\""));

    // The invited person follows the link.
    let mut newcomer = Browser::new(&env.app);
    let form = newcomer.get(path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let accepted = newcomer
        .post(
            "/accept-invitation",
            &[
                ("token", token),
                ("display_name", "Nova"),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    assert_eq!(accepted.location(), Some("/login?notice=accepted"));
    let _signed_in = Browser::signed_in(&env.app, "newcomer@alpha.io").await;

    let user = api_user(&mut env, "newcomer@alpha.io").await;
    assert_eq!(user["role"], "editor");
    assert_eq!(user["display_name"], "Nova");
    assert!(admin.get("/users").await.body.contains("Nova"));
}

#[tokio::test]
async fn roles_change_through_the_form_and_the_last_administrator_stays() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    let editor_id = api_user(&mut env, "editor@alpha.io").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let viewer_id = api_user(&mut env, "viewer@alpha.io").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_id = api_user(&mut env, "admin@alpha.io").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let page = admin.get(&format!("/users/{editor_id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("editor@alpha.io"));
    let changed = admin
        .post(&format!("/users/{editor_id}/role"), &[("role", "viewer")])
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(
        changed.location(),
        Some(format!("/users/{editor_id}?notice=saved").as_str())
    );
    assert_eq!(
        api_user(&mut env, "editor@alpha.io").await["role"],
        "viewer"
    );
    let shown = admin.get(changed.location().unwrap()).await;
    assert!(shown.body.contains("Saved."));

    // Deactivate and reactivate.
    let off = admin
        .post(
            &format!("/users/{editor_id}/active"),
            &[("active", "false")],
        )
        .await;
    assert_eq!(off.status, 303, "{}", off.body);
    assert_eq!(api_user(&mut env, "editor@alpha.io").await["active"], false);
    admin.get(&format!("/users/{editor_id}")).await;
    let on = admin
        .post(&format!("/users/{editor_id}/active"), &[("active", "true")])
        .await;
    assert_eq!(on.status, 303, "{}", on.body);
    assert_eq!(api_user(&mut env, "editor@alpha.io").await["active"], true);

    // The only Administrator can be neither demoted, deactivated nor deleted.
    let before = api_users(&mut env).await;
    admin.get(&format!("/users/{admin_id}")).await;
    for (path, fields) in [
        (format!("/users/{admin_id}/role"), vec![("role", "editor")]),
        (
            format!("/users/{admin_id}/active"),
            vec![("active", "false")],
        ),
        (format!("/users/{admin_id}/delete"), vec![]),
    ] {
        let refused = admin.post(&path, &fields).await;
        assert_eq!(refused.status, 422, "{path}: {}", refused.body);
        assert!(
            refused.body.contains("role=\"alert\"")
                && refused.body.contains("last active Administrator"),
            "{path}: {}",
            refused.body
        );
    }
    assert_eq!(
        api_users(&mut env).await,
        before,
        "a refused change changed something"
    );

    // Delete the viewer.
    admin.get(&format!("/users/{viewer_id}")).await;
    let deleted = admin.post(&format!("/users/{viewer_id}/delete"), &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert_eq!(deleted.location(), Some("/users?notice=deleted"));
    assert!(
        api_users(&mut env)
            .await
            .iter()
            .all(|u| u["email"] != "viewer@alpha.io")
    );
    assert_eq!(admin.get(&format!("/users/{viewer_id}")).await.status, 404);
}

#[tokio::test]
async fn editors_and_viewers_get_403_and_change_nothing() {
    let (mut env, mut admin, editor, viewer) = web_env("loopback").await;
    let editor_id = api_user(&mut env, "editor@alpha.io").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_id = api_user(&mut env, "admin@alpha.io").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let users_before = api_users(&mut env).await;
    let settings_before = api_settings(&mut env).await;
    let invitations_before = invitation_events(&mut env).await;
    let events = env
        .admin(Method::GET, "/api/v1/audit/events?limit=1", None)
        .await;
    let object = &events.json()["events"][0]["object"];
    let object_path = format!(
        "/audit/objects/{}/{}",
        object["kind"].as_str().unwrap(),
        object["id"].as_str().unwrap()
    );
    assert_eq!(admin.get(&object_path).await.status, 200);

    for mut browser in [editor, viewer] {
        use_session_csrf(&mut browser);
        for path in [
            "/users".to_owned(),
            format!("/users/{editor_id}"),
            "/settings".to_owned(),
            "/audit".to_owned(),
            "/audit?action=user.updated".to_owned(),
            object_path.clone(),
        ] {
            let page = browser.get(&path).await;
            assert_eq!(page.status, 403, "GET {path}: {}", page.body);
            assert!(
                page.body.contains("Your role does not allow this"),
                "{path}"
            );
        }
        for (path, fields) in [
            (
                "/users/invitations".to_owned(),
                vec![("email", "intruder@alpha.io"), ("role", "administrator")],
            ),
            (
                format!("/users/{editor_id}/role"),
                vec![("role", "administrator")],
            ),
            (
                format!("/users/{admin_id}/active"),
                vec![("active", "false")],
            ),
            (format!("/users/{admin_id}/delete"), vec![]),
            (
                "/settings".to_owned(),
                vec![
                    ("audit_depth", "500"),
                    ("time_zone", "Europe/Paris"),
                    ("require_totp", "on"),
                ],
            ),
            (
                "/settings".to_owned(),
                vec![("audit_depth", "many"), ("time_zone", "UTC")],
            ),
            ("/settings/rotate-key".to_owned(), vec![]),
        ] {
            let page = browser.post(&path, &fields).await;
            assert_eq!(page.status, 403, "POST {path}: {}", page.body);
        }
    }

    assert_eq!(api_users(&mut env).await, users_before);
    assert_eq!(api_settings(&mut env).await, settings_before);
    assert_eq!(invitation_events(&mut env).await, invitations_before);
    // Nobody rotated the key: the Administrator's rotation makes version 2.
    admin.get("/settings").await;
    let rotated = admin.post("/settings/rotate-key", &[]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert!(rotated.body.contains("key version 2"), "{}", rotated.body);
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    let admin_id = api_user(&mut env, "admin@alpha.io").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let users_before = api_users(&mut env).await;
    let settings_before = api_settings(&mut env).await;
    admin.get("/settings").await;
    for (path, fields) in [
        (
            "/users/invitations".to_owned(),
            vec![("email", "forged@alpha.io"), ("role", "administrator")],
        ),
        (format!("/users/{admin_id}/role"), vec![("role", "viewer")]),
        (format!("/users/{admin_id}/totp/reset"), vec![]),
        (
            "/settings".to_owned(),
            vec![("audit_depth", "3"), ("time_zone", "Europe/Paris")],
        ),
        ("/settings/rotate-key".to_owned(), vec![]),
    ] {
        let page = admin.post_raw(&path, &fields).await;
        assert_eq!(page.status, 403, "POST {path}: {}", page.body);
        assert!(page.body.contains("This form has expired"), "{path}");
        let wrong = [vec![("csrf", "lsc_forged")], fields].concat();
        let page = admin.post_raw(&path, &wrong).await;
        assert_eq!(page.status, 403, "POST {path} with a wrong token");
    }
    assert_eq!(api_users(&mut env).await, users_before);
    assert_eq!(api_settings(&mut env).await, settings_before);
}

#[tokio::test]
async fn settings_show_errors_next_to_fields_and_save() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    let page = admin.get("/settings").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("value=\"UTC\""));
    assert!(page.body.contains("value=\"10\""));
    let before = api_settings(&mut env).await;

    let unknown = admin
        .post(
            "/settings",
            &[
                ("audit_depth", "25"),
                ("long_term_audit", "on"),
                ("time_zone", "Mars/Olympus_Mons"),
            ],
        )
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert!(
        unknown
            .body
            .contains("aria-describedby=\"time_zone-error\"")
    );
    assert!(
        unknown
            .body
            .contains("id=\"time_zone-error\">Must be an IANA time zone name")
    );
    assert!(
        unknown.body.contains("value=\"Mars/Olympus_Mons\"")
            && unknown.body.contains("value=\"25\""),
        "the form lost what was typed"
    );
    for depth in ["0", "many", "1001"] {
        let refused = admin
            .post("/settings", &[("audit_depth", depth), ("time_zone", "UTC")])
            .await;
        assert_eq!(refused.status, 422, "{depth}: {}", refused.body);
        assert!(refused.body.contains("id=\"audit_depth-error\""), "{depth}");
    }
    assert_eq!(api_settings(&mut env).await, before, "a refused form saved");

    let saved = admin
        .post(
            "/settings",
            &[("audit_depth", "25"), ("time_zone", "Europe/Berlin")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), Some("/settings?notice=saved"));
    let after = api_settings(&mut env).await;
    assert_eq!(after["time_zone"], "Europe/Berlin");
    assert_eq!(after["audit_depth"], 25);
    assert_eq!(after["long_term_audit"], false);
    assert_eq!(after["require_totp"], false);
    let shown = admin.get("/settings?notice=saved").await;
    assert!(shown.body.contains("Saved.") && shown.body.contains("value=\"Europe/Berlin\""));
    assert!(
        admin
            .get("/audit")
            .await
            .body
            .contains("Long-term audit is off")
    );

    let rotated = admin.post("/settings/rotate-key", &[]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert!(rotated.body.contains("key version 2"));
}

/// The number in `id="ledger-size">N events`.
fn ledger_size(page: &Page) -> u64 {
    let marker = "id=\"ledger-size\">";
    let at = page.body.find(marker).expect("the ledger size") + marker.len();
    let rest = &page.body[at..];
    rest[..rest.find(' ').unwrap()].parse().unwrap()
}

#[tokio::test]
async fn the_audit_page_lists_searches_and_verifies_the_ledger() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    let editor_id = api_user(&mut env, "editor@alpha.io").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.get("/users").await;
    let invited = admin
        .post(
            "/users/invitations",
            &[("email", "auditor@alpha.io"), ("role", "viewer")],
        )
        .await;
    assert_eq!(invited.status, 201);
    admin
        .post(&format!("/users/{editor_id}/role"), &[("role", "viewer")])
        .await;

    let all = admin.get("/audit").await;
    assert_eq!(all.status, 200, "{}", all.body);
    for action in ["invitation.created", "user.updated", "users.listed"] {
        assert!(
            all.body
                .contains(&format!("<td class=\"mono\">{action}</td>")),
            "{action} is not listed"
        );
    }
    assert!(
        all.body
            .contains("<span class=\"mono\">editor</span> → <span class=\"mono\">viewer</span>")
    );
    assert!(!all.body.contains(PASSWORD));
    let newest = all
        .body
        .find("<td class=\"mono\">user.updated</td>")
        .unwrap();
    let older = all
        .body
        .find("<td class=\"mono\">invitation.created</td>")
        .unwrap();
    assert!(newest < older, "the events are not newest first");

    let filtered = admin.get("/audit?action=invitation.created&limit=50").await;
    assert_eq!(filtered.status, 200, "{}", filtered.body);
    assert_eq!(
        filtered
            .body
            .matches("<td class=\"mono\">invitation.created</td>")
            .count(),
        invitation_events(&mut env).await
    );
    assert!(
        !filtered
            .body
            .contains("<td class=\"mono\">user.updated</td>")
    );
    assert!(filtered.body.contains("value=\"invitation.created\""));
    let none = admin.get("/audit?action=no.such.action").await;
    assert!(none.body.contains("No event matches the search."));
    let by_object = admin
        .get(&format!("/audit?object_kind=user&object_id={editor_id}"))
        .await;
    assert!(
        by_object
            .body
            .contains("<td class=\"mono\">user.updated</td>")
    );
    assert!(
        !by_object
            .body
            .contains("<td class=\"mono\">invitation.created</td>")
    );
    let later = admin.get("/audit?from=2999-01-01T00:00").await;
    assert_eq!(later.status, 200);
    assert!(later.body.contains("No event matches the search."));
    let bad_time = admin.get("/audit?from=yesterday").await;
    assert_eq!(bad_time.status, 422, "{}", bad_time.body);
    assert!(bad_time.body.contains("id=\"from-error\""));

    // The object link leads to the object's last events.
    let object_link = format!("/audit/objects/user/{editor_id}");
    assert!(all.body.contains(&format!("href=\"{object_link}\"")));
    let object = admin.get(&object_link).await;
    assert_eq!(object.status, 200, "{}", object.body);
    assert!(object.body.contains("<td class=\"mono\">user.updated</td>"));
    assert_eq!(
        admin.get("/audit/objects/user/no-such-id").await.status,
        404
    );

    // The ledger: the latest checkpoint verifies and counts the events.
    assert!(
        all.body.contains("id=\"ledger-verified\">verified</span>"),
        "{}",
        all.body
    );
    assert!(ledger_size(&all) > 0);
    assert!(all.body.contains("href=\"/api/v1/audit/ledger/export\""));
    let checkpoint = env
        .admin(Method::GET, "/api/v1/audit/ledger/checkpoint", None)
        .await;
    let note = checkpoint.json()["checkpoint"].as_str().unwrap().to_owned();
    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    let page = admin.get("/audit").await;
    assert!(
        ledger_size(&page) >= size,
        "the card shows an older checkpoint"
    );
    assert!(
        page.body.contains(note.lines().next().unwrap()),
        "the origin is not shown"
    );
}

#[tokio::test]
async fn pending_invitations_are_listed_resent_revoked_and_replaced_on_the_users_page() {
    let (mut env, mut admin, _, _) = web_env("loopback").await;
    admin.get("/users").await;
    let first = admin
        .post(
            "/users/invitations",
            &[("email", "pending@alpha.io"), ("role", "viewer")],
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(!first.body.contains("was replaced"));
    let first_link = attribute_after(&first, "id=\"invitation-link\"", "href");
    let second = admin
        .post(
            "/users/invitations",
            &[("email", "pending@alpha.io"), ("role", "editor")],
        )
        .await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert!(
        second
            .body
            .contains("it was replaced, and its link no longer works"),
        "{}",
        second.body
    );

    // The users page lists it once, with who invited and its buttons.
    let page = admin.get("/users").await;
    assert_eq!(page.body.matches("<td>pending@alpha.io</td>").count(), 1);
    let answer = env
        .admin(Method::GET, "/api/v1/users/invitations", None)
        .await;
    let id = answer.json()["invitations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        page.body
            .contains(&format!("/users/invitations/{id}/resend"))
    );
    assert!(
        page.body
            .contains(&format!("/users/invitations/{id}/revoke"))
    );
    assert!(page.body.contains("Resend") && page.body.contains("Revoke"));

    // Resend shows a new link; the first link (replaced) never works.
    let resent = admin
        .post(&format!("/users/invitations/{id}/resend"), &[])
        .await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    let link = attribute_after(&resent, "id=\"invitation-link\"", "href");
    assert_ne!(link, first_link);
    let mut newcomer = Browser::new(&env.app);
    newcomer.get("/accept-invitation").await;
    let (_, old_token) = first_link.split_once('#').unwrap();
    let refused = newcomer
        .post(
            "/accept-invitation",
            &[
                ("token", old_token),
                ("display_name", "Pat"),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await;
    assert_ne!(refused.status, 303, "a replaced link still works");

    // Revoke: gone from the list.
    let revoked = admin
        .post(&format!("/users/invitations/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let page = admin.get(revoked.location().unwrap()).await;
    assert!(page.body.contains("The invitation was revoked"));
    assert!(!page.body.contains("<td>pending@alpha.io</td>"));
    let answer = env
        .admin(Method::GET, "/api/v1/users/invitations", None)
        .await;
    assert!(answer.json()["invitations"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn an_administrator_resets_a_members_second_factor_on_the_users_page() {
    let (mut env, mut admin, mut editor, _) = web_env("loopback").await;
    let editor_id = api_user(&mut env, "editor@alpha.io").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The editor enrols TOTP (through the use cases, as the account page does).
    let caller = env.hub.authenticate(&env.editor.clone()).await.unwrap();
    let enrolment = env.hub.start_totp(&caller).await.unwrap();
    let secret = lockstep_auth::TotpSecret::from_otpauth_uri(&enrolment.otpauth_uri).unwrap();
    let code = secret
        .code_at(lockstep_app::Clock::now(&*env.clock))
        .unwrap();
    env.hub.confirm_totp(&caller, &code).await.unwrap();
    assert_eq!(
        api_user(&mut env, "editor@alpha.io").await["totp_enabled"],
        true
    );

    let page = admin.get("/users").await;
    let action = format!("/users/{editor_id}/totp/reset");
    assert!(page.body.contains(&action), "{}", page.body);
    assert!(page.body.contains("Reset second factor"));

    // Not for the editor: 403, nothing changed.
    use_session_csrf(&mut editor);
    let denied = editor.post(&action, &[]).await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!(
        api_user(&mut env, "editor@alpha.io").await["totp_enabled"],
        true
    );

    let reset = admin.post(&action, &[]).await;
    assert_eq!(reset.status, 303, "{}", reset.body);
    let page = admin.get(reset.location().unwrap()).await;
    assert!(
        page.body.contains("The second factor was reset"),
        "{}",
        page.body
    );
    assert_eq!(
        api_user(&mut env, "editor@alpha.io").await["totp_enabled"],
        false
    );
    // The editor was signed out.
    let signed_out = editor.get("/account").await;
    assert_eq!(signed_out.status, 303);
    assert!(signed_out.location().unwrap().starts_with("/login"));
}
